//! Carrying out a prepared manifest as a stream: jobs flow from the manifest through a window of
//! at most `window` sessions pending on each server, topped up as items finish; results flow
//! out to files as they come; the servers are cleaned up at the end. Every step goes through
//! the run's [`Ledger`] (journaled first), so a run started again after a crash, Ctrl-C or a
//! server outage resumes instead of repeating.
//!
//! [`Run`] owns everything a run changes (its ledger, its lanes, its job source, its downloads,
//! its running report); its steps are methods that take `&mut self`: resume
//! ([`super::resume`]), submit and upload ([`super::submit`]), collect
//! ([`super::collect`]), leaving the pool ([`super::failover`]), cleanup
//! ([`super::cleanup`]) and the end ([`super::finish`]).

use std::time::{Duration, Instant};

use super::balance::{moved_share, next_share, pool_room};
use super::collect::Ended;
use super::download::{DownloadResult, Downloads};
use super::error::RunError;
use super::journal::Entry;
use super::lane::{Follow, Lane, next_event};
use super::ledger::Ledger;
use super::preflight::{Absent, PoolServer};
use super::progress::RunEvent;
use super::running::Run;
use super::running::RunContext;
use super::source::JobSource;
use super::submit::QUEUE_FULL_PAUSE;
use super::take_back::Which;
use crate::client::tracker::TrackEvent;

/// How many outputs download at once.
const DOWNLOADS_AT_ONCE: usize = 4;

/// The sessions a run keeps pending on its server unless told otherwise (`--window`): enough that
/// the server never waits for the next enqueue (the window is topped up when half of it is
/// done), few enough that Ctrl-C, another user of the server or a restart cost little.
pub const DEFAULT_WINDOW: usize = 16;

/// How many saved outputs start a cleanup pass while the run goes.
const CLEANUP_BATCH: usize = 32;

/// The most sessions one enqueue carries (also a batch shared by the runs of a burst of images,
/// see [`super::coalesce`]).
pub const MAX_ENQUEUE: usize = 64;

/// How long a run waits for a server that stopped answering, unless told otherwise
/// (`--server-wait`).
pub const DEFAULT_SERVER_WAIT: Duration = Duration::from_secs(300);

/// How long Ctrl-C spends taking the run's items back from each server.
const INTERRUPT_TAKE_BACK_FOR: Duration = Duration::from_secs(30);

impl<'a> Run<'a> {
    /// Starts a run on `servers` (as the preflight left them, in order) with the journal
    /// `ledger` opened: the run is journaled as started and each server's tracker starts.
    ///
    /// # Errors
    /// The journal cannot be written.
    pub(super) async fn open(
        ctx: RunContext<'a>,
        mut ledger: Ledger,
        servers: Vec<PoolServer>,
        absent: Vec<Absent>,
    ) -> Result<Run<'a>, RunError> {
        let count = ctx.prepared.expansion.job_count();
        // A resumed run checks on the servers it runs on that the items it re-attaches to and
        // the uploads it reuses are still there, so a journal of other servers is safe to use.
        ledger.record(Entry::Started {
            run_id: ctx.run_id.clone(),
            plan_hash: format!("{}-{count}", ctx.prepared.workflow_hash),
            server: servers
                .iter()
                .map(|s| s.entry.url.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            jobs: Some(count),
        })?;
        // A server is given up after the grace while another can take its jobs.
        let wait = ctx.wait_for(servers.len() > 1);
        let follow = Follow::new(ctx.track_mode, ctx.poll_interval, ctx.window, ctx.grace());
        let mut numbered = Vec::with_capacity(servers.len());
        for server in servers {
            let number = ledger.server_number(&server.entry.url)?;
            numbered.push((server, number));
        }
        // Each server's event socket is opened at once: the start takes as long as the slowest
        // server, not the sum of all (a pool of 32 took 10 s one after the other).
        let lanes: Vec<Lane> = futures_util::future::join_all(
            numbered
                .into_iter()
                .map(|(server, number)| Lane::start(server, number, &follow, wait)),
        )
        .await;
        // A download from a server that stopped answering waits longer than the grace: the
        // server leaves the pool first, and its downloads are given up (their jobs run
        // elsewhere) instead of failing their jobs.
        let downloads = Downloads::new(DOWNLOADS_AT_ONCE, ctx.server_wait + ctx.grace());
        let source = JobSource::new(&ctx.prepared.expansion, Default::default(), None);
        let mut run = Run {
            ctx,
            ledger,
            lanes,
            source,
            downloads,
            live: None,
            interrupted: false,
            cleaned: 0,
            started: Instant::now(),
            steal_after: None,
            moved_to: None,
            held_away: Vec::new(),
            follow,
            absent: Vec::new(),
            returns: tokio::task::JoinSet::new(),
        };
        run.watch_absent(absent);
        Ok(run)
    }

    /// Runs the manifest to its end; returns its outcome.
    ///
    /// # Errors
    /// Server errors that stop the whole run (an enqueue refused, the last server gone for
    /// longer than the wait); job failures are part of the outcome instead.
    pub(super) async fn go(mut self) -> Result<super::outcome::ManifestOutcome, RunError> {
        self.resume().await?;
        self.drive().await?;
        self.finish().await
    }

    /// The loop: keeps each server's window full, acts on what the trackers and downloads
    /// tell, until every job has ended or Ctrl-C came.
    async fn drive(&mut self) -> Result<(), RunError> {
        let cancel = self.ctx.cancel.clone();
        loop {
            if !self.interrupted && !cancel.is_cancelled() {
                if self.submit_next().await? {
                    continue;
                }
                // The tail: an idle server takes pending sessions over from a busy one.
                if self.source.is_empty() && self.steal().await? {
                    continue;
                }
            }
            if let Some(coalescer) = &self.ctx.coalescer {
                // Waiting for the server, not about to enqueue: other runs need not wait for
                // this one; what it has pending tells whether the server has work enough.
                coalescer.waiting(&self.ctx.name, self.ledger.open_count());
            }
            let nothing_open = self.ledger.nothing_open() && self.downloads.tasks.is_empty();
            if nothing_open && (self.interrupted || self.source.is_empty()) {
                return Ok(());
            }
            let listening: Vec<bool> = self
                .lanes
                .iter()
                .map(|lane| lane.listening(&self.ledger))
                .collect();
            let retry_at = self
                .lanes
                .iter()
                .filter(|l| l.in_run())
                .filter_map(|l| l.retry_at)
                .min();
            tokio::select! {
                biased;
                () = cancel.cancelled(), if !self.interrupted => {
                    self.interrupted = true;
                    self.interrupt().await?;
                    return Ok(());
                }
                Some(done) = self.downloads.tasks.join_next(), if !self.downloads.tasks.is_empty() => {
                    self.download_ended(done).await?;
                }
                (i, event) = next_event(&mut self.lanes, &listening), if listening.contains(&true) => {
                    self.heard(i, event)?;
                }
                Some(Ok((away, client))) = self.returns.join_next(), if !self.returns.is_empty() => {
                    self.came_back(away, client).await?;
                }
                () = sleep_until(retry_at), if retry_at.is_some() => {
                    let now = tokio::time::Instant::now();
                    for lane in &mut self.lanes {
                        if lane.retry_at.is_some_and(|at| at <= now) {
                            lane.retry_at = None;
                        }
                    }
                }
            }
        }
    }

    /// Tops a server's window up once half of it is done: the server with the most room takes
    /// the next jobs (pull, not push: a slow server takes fewer), and once the jobs left fit in
    /// the pool's room they are split by the servers' windows ([`super::balance`]). Returns
    /// whether it submitted.
    async fn submit_next(&mut self) -> Result<bool, RunError> {
        if self.source.is_empty() {
            return Ok(false);
        }
        let seats = self.seats();
        let left = self.source.count_up_to(pool_room(&seats) + 1);
        let Some((i, share)) =
            moved_share(self.moved_to.take(), &seats, left).or_else(|| next_share(&seats, left))
        else {
            return Ok(false);
        };
        let jobs = self
            .source
            .take(share.min(MAX_ENQUEUE), &self.ctx.prepared.expansion.inputs);
        let submitted = self.submit(i, jobs).await?;
        self.lanes[i].idle = false;
        self.source.hand_back(submitted.handed_back);
        if let Some(error) = submitted.gone {
            if !self.others_in_run(i) {
                return Err(error);
            }
            let why = crate::error_chain::error_chain(&error);
            if matches!(error, RunError::Model(_)) {
                self.leave(i, why)?;
            } else {
                self.leave_unanswering(i, why)?;
            }
            return Ok(true);
        }
        let lane = &mut self.lanes[i];
        lane.retry_at = submitted
            .queue_full
            .then(|| tokio::time::Instant::now() + QUEUE_FULL_PAUSE);
        if submitted.queue_full && !lane.told_full {
            lane.told_full = true;
            let which = self.on_server(i);
            self.ctx.warn(format!(
                "the server's queue is full{which} (its `max_queue_size`); waiting for room and \
                 submitting the rest as it drains"
            ));
        }
        Ok(true)
    }

    /// Acts on an event of lane `i`'s tracker.
    fn heard(&mut self, i: usize, event: Option<TrackEvent>) -> Result<(), RunError> {
        match event {
            Some(TrackEvent::Finished(item)) => {
                let at = self.lanes[i].item(item.item_id);
                self.lanes[i].running.remove(&at);
                self.server_up(i);
                self.item_ended(i, at, |run| run.finished(at, item))?;
            }
            Some(TrackEvent::Vanished { item_id }) => {
                let at = self.lanes[i].item(item_id);
                self.lanes[i].running.remove(&at);
                self.item_ended(i, at, |run| run.vanished(at).map(|()| Ended::Recorded))?;
            }
            Some(TrackEvent::Started { item_id }) => {
                let at = self.lanes[i].item(item_id);
                self.server_up(i);
                self.lanes[i].running.insert(at);
                self.tell_status(i);
            }
            Some(TrackEvent::PollFailed { error, .. }) => {
                if let Err(gone) = self.server_down(i, &error) {
                    if !self.others_in_run(i) {
                        return Err(gone);
                    }
                    let why = format!("it did not answer for {} s", self.ctx.grace().as_secs());
                    self.leave_unanswering(i, why)?;
                }
                self.tell_status(i);
            }
            Some(TrackEvent::ServerBack) => {
                self.server_up(i);
                self.tell_status(i);
            }
            Some(TrackEvent::ServerDown { since }) => {
                self.lanes[i].health.saw_down(since.into_std());
            }
            Some(TrackEvent::Reconnected) => {}
            Some(_) => self.server_up(i),
            None => self.lanes[i].idle = true,
        }
        Ok(())
    }

    /// An item of lane `i` ended, as `step` records it: a job handed back is submitted again, a
    /// job that failed counts for the server (which may leave the pool for it), and the
    /// listeners hear where the job and the server stand.
    fn item_ended(
        &mut self,
        i: usize,
        at: super::key::ItemRef,
        step: impl FnOnce(&mut Self) -> Result<Ended, RunError>,
    ) -> Result<(), RunError> {
        let job = self.ledger.job_of(at);
        let failed_before = self.ledger.failed_count();
        if let Ended::Resubmit(job) = step(self)? {
            self.hand_back(job);
        }
        if let Some(job) = job
            && self.ledger.failed_count() > failed_before
        {
            self.lanes[i].failed_jobs.push(job);
        }
        self.leave_if_failing()?;
        self.tell_live_warnings();
        self.tell_status(i);
        Ok(())
    }

    /// A download task ended: its files are journaled, its job counts for its server, and a
    /// cleanup pass starts once enough outputs are on disk.
    async fn download_ended(
        &mut self,
        done: Result<DownloadResult, tokio::task::JoinError>,
    ) -> Result<(), RunError> {
        let item = done.as_ref().ok().map(|(item, ..)| *item);
        let job = item.and_then(|item| self.ledger.job_of(item));
        self.downloaded(done)?;
        self.tell_live_warnings();
        if let (Some(item), Some(job)) = (item, job) {
            self.count_end(item, job);
            self.leave_if_failing()?;
        }
        if self.ledger.fresh_count() >= CLEANUP_BATCH {
            match self.cleanup_outputs().await {
                Ok(n) => self.cleaned += n,
                // What this pass could not delete, the end's pass does.
                Err(e) => self.ctx.warn(format!(
                    "cannot delete saved outputs from the server yet: {}",
                    crate::error_chain::error_chain(&e)
                )),
            }
        }
        Ok(())
    }

    /// Ctrl-C: the run's items that have not started are taken back (cancelled on the server,
    /// journaled as withdrawn: the next run submits them again); running ones are left to
    /// finish on the server, and the next run collects them.
    async fn interrupt(&mut self) -> Result<(), RunError> {
        let mut withdrawn = 0;
        let mut running = 0;
        let mut unreachable = None;
        for lane in self.lanes.iter().filter(|l| l.in_run()) {
            let open: Vec<_> = self.ledger.open_on(lane.number).collect();
            let ledger = &mut self.ledger;
            let taken = lane
                .take_back(&open, Which::NotStarted, INTERRUPT_TAKE_BACK_FOR, |item| {
                    ledger.withdraw(item)
                })
                .await?;
            withdrawn += taken.taken;
            running += taken.running;
            unreachable = unreachable.or(taken
                .unreachable
                .map(|e| crate::error_chain::error_chain(&e)));
        }
        self.ctx.tell(&RunEvent::Interrupted {
            manifest: self.ctx.name.clone(),
            withdrawn,
            running,
            error: unreachable,
            output_dir: self.ctx.prepared.output_dir.display().to_string(),
        });
        Ok(())
    }
}

/// Sleeps until `at` (forever when `None`).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
