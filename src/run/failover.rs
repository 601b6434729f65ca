//! A server leaving the run: one that stops answering past the grace, lacks what the jobs need,
//! or fails every job while another server completes them. Its open items are journaled as
//! taken back and their jobs go to the other servers; its downloads under way place nothing;
//! at the end, what it still holds is taken back if it answers again. The last server of a run
//! never leaves: it is waited for as long as `--server-wait` says.

use std::collections::BTreeSet;

use super::error::RunError;
use super::progress::RunEvent;
use super::running::Run;

/// How many jobs a server fails, with none completed, while another server completes jobs,
/// before it leaves the run.
const FAILURES_TO_LEAVE: usize = 3;

impl Run<'_> {
    /// Takes out of the run each server that failed [`FAILURES_TO_LEAVE`] jobs and completed
    /// none while another server completed jobs; the jobs that failed on it go to the others.
    pub(super) fn leave_if_failing(&mut self) -> Result<(), RunError> {
        for i in 0..self.lanes.len() {
            let lane = &self.lanes[i];
            let others_work = self
                .lanes
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && other.in_run() && other.completed > 0);
            if !lane.in_run()
                || !others_work
                || lane.completed > 0
                || lane.failed_jobs.len() < FAILURES_TO_LEAVE
            {
                continue;
            }
            let last_error = lane
                .failed_jobs
                .last()
                .and_then(|job| self.ledger.failure_of(*job))
                .map(|f| f.error.clone())
                .unwrap_or_default();
            let failed: Vec<usize> = std::mem::take(&mut self.lanes[i].failed_jobs);
            let why = format!(
                "it failed all {} jobs it ran (the last with: {last_error}) while other servers completed theirs",
                failed.len()
            );
            for job in failed {
                self.hand_back(job);
            }
            self.leave(i, why)?;
        }
        Ok(())
    }

    /// Server `i` leaves the run for `why`, which is reported: its downloads under way are
    /// given up, its open items journaled as taken back and their jobs handed to the source.
    pub(super) fn leave(&mut self, i: usize, why: String) -> Result<(), RunError> {
        let number = self.lanes[i].number;
        let open: Vec<_> = self.ledger.open_on(number).collect();
        self.downloads.abandon(open.iter().copied());
        self.ctx.tell(&RunEvent::ServerLeft {
            manifest: self.ctx.name.clone(),
            server: self.lanes[i].url.clone(),
            reason: why.clone(),
            handed_over: open.len(),
        });
        let mut jobs = BTreeSet::new();
        for item in &open {
            if let Some(job) = self.ledger.job_of(*item) {
                self.ledger.withdraw(*item)?;
                jobs.insert(job);
            }
        }
        for job in jobs {
            self.hand_back(job);
        }
        let lane = &mut self.lanes[i];
        lane.abandoned.extend(open);
        lane.left = Some(why);
        lane.running.clear();
        self.tell_status(i);
        // The last server left waits for an outage as long as a one-server run would.
        let mut in_run = self.lanes.iter_mut().filter(|l| l.in_run());
        if let (Some(last), None) = (in_run.next(), in_run.next()) {
            last.health.set_wait(self.ctx.wait_for(false));
        }
        Ok(())
    }
}
