//! The end of a run: downloads under way finished, leftovers on servers that left the pool taken
//! back, the servers cleaned up, `runs.jsonl` appended, the gallery and grids written, and the
//! outcome told. Also the running report, which shows the run as it goes.

use std::collections::HashMap;
use std::time::Duration;

use super::error::RunError;
use super::journal::Entry;
use super::outcome::{JobFailure, ManifestOutcome};
use super::progress::RunEvent;
use super::progress::{Listener, LiveGallery};
use super::running::Away;
use super::running::Run;
use super::summary::{JobSummary, SummaryWriter};
use crate::gallery::ReportConfig;
use crate::gallery::live::{JobState, LiveJob, LiveReport};
use crate::manifest::Job;
use std::sync::Arc;

/// Runs of more jobs than this get no gallery or grids at the end (building them holds every
/// job's entry in memory); `invk-run report` still builds them on request.
pub(super) const GALLERY_MAX_JOBS: usize = 20_000;

/// How long the end waits at most for a server that left the pool and holds the run's images.
const END_WAIT: Duration = Duration::from_secs(60);

impl Run<'_> {
    /// Starts the report kept up to date while the run goes: none past [`GALLERY_MAX_JOBS`]
    /// jobs, or when neither a gallery nor a grid is asked for.
    pub(super) fn start_live_report(&mut self) {
        let p = self.ctx.prepared;
        let report = self.gallery_config();
        // The gallery shows the whole sweep, also a shard's.
        if p.expansion.job_count() > GALLERY_MAX_JOBS
            || (!report.gallery && report.grids.is_empty())
        {
            return;
        }
        let jobs = p
            .expansion
            .jobs()
            .map(|job| LiveJob {
                sweep: super::summary::sweep_map(&job).sweep,
                inputs: self.named_inputs(&job),
            })
            .collect();
        let ledger = &self.ledger;
        let mut earlier: Vec<(usize, JobState)> = ledger
            .completed()
            .chain(ledger.failures().iter().map(|f| f.job))
            .map(|job| (job, ledger.job_state(job)))
            .collect();
        if !self.ctx.shard.is_whole() {
            // The other shards' jobs as the folder shows them now (this shard keeps its own
            // current; the shard that ends last writes them all).
            let shard = self.ctx.shard;
            earlier.extend(crate::gallery::live::ended_on_disk(
                &*self.ctx.store,
                |job| shard.contains(job),
            ));
        }
        let live = Arc::new(LiveGallery::new(
            &self.ctx.name,
            LiveReport::start(&p.output_dir, report, jobs, earlier),
        ));
        self.ctx.reporter = self
            .ctx
            .reporter
            .with(Arc::clone(&live) as Arc<dyn Listener>);
        self.live = Some(live);
    }

    fn gallery_config(&self) -> ReportConfig {
        ReportConfig::from_manifest(&self.ctx.name, self.ctx.prepared.file.manifest())
    }

    /// Ends the run; returns its outcome.
    ///
    /// # Errors
    /// The journal or `runs.jsonl` cannot be written, or the cleanup fails.
    pub(super) async fn finish(mut self) -> Result<ManifestOutcome, RunError> {
        let count = self.ctx.job_count();
        // Downloads already started are finished and journaled either way.
        while let Some(done) = self.downloads.tasks.join_next().await {
            let item = done.as_ref().ok().map(|(item, ..)| *item);
            let job = item.and_then(|item| self.ledger.job_of(item));
            self.downloaded(done)?;
            if let (Some(item), Some(job)) = (item, job) {
                self.count_end(item, job);
            }
        }
        // The end's report below replaces the running one.
        if let Some(live) = self.live.take() {
            for message in live.close().await {
                self.ctx.warn(message);
            }
        }
        let all_done = self.ledger.failures().is_empty() && self.ledger.completed_count() == count;
        let mut every_server_cleaned = false;
        if !self.interrupted {
            self.wait_for_away_servers().await;
            self.take_back_leftovers().await;
            let (deleted, every_server) = self.cleanup(all_done).await?;
            self.cleaned += deleted;
            // A server left out at the start that never joined still holds an earlier run's
            // items: a rerun takes them back and cleans it.
            let held_away = self
                .held_away
                .iter()
                .any(|item| !self.lanes.iter().any(|l| l.number == item.server()));
            every_server_cleaned = every_server && !held_away;
        }
        let statuses: Vec<RunEvent> = self
            .lanes
            .iter()
            .map(|lane| lane.status(&self.ctx.name, &self.ledger, true))
            .collect();
        if self.cleaned > 0 {
            self.ctx.tell(&RunEvent::CleanedUp {
                manifest: self.ctx.name.clone(),
                images: self.cleaned,
            });
        }
        if self.ctx.names_servers {
            for status in &statuses {
                self.ctx.tell(status);
            }
        }
        let out_dir = &self.ctx.prepared.output_dir;
        // The shards of a sweep end one after the other into one folder: each appends its
        // jobs' lines and writes the gallery and grids of everything on disk holding the
        // folder's report lock, so the shard that ends last writes them whole.
        let _report_lock = (!self.ctx.shard.is_whole())
            .then(|| super::shard::lock_report(&*self.ctx.store))
            .flatten();
        self.write_summary()?;
        if self.ctx.prepared.expansion.job_count() > GALLERY_MAX_JOBS {
            self.ctx.warn(format!(
                "no gallery or grids for a run of more than {GALLERY_MAX_JOBS} jobs (they would hold every job in memory); `invk-run report {}` builds them",
                out_dir.display()
            ));
        } else if let Err(e) = crate::gallery::refresh_in(&*self.ctx.store, &self.gallery_config())
        {
            self.ctx.warn(format!(
                "cannot write the report: {}",
                crate::error_chain::error_chain(&e)
            ));
        }
        // Everything the end does is done (every server the run used was there to be cleaned
        // up): a rerun has nothing to do, here or on a server. A server still away keeps what
        // the run left on it until a rerun finds it back.
        if all_done && every_server_cleaned {
            self.ledger.record(Entry::Ended)?;
        }
        let ledger = &self.ledger;
        let outcome = ManifestOutcome {
            manifest: self.ctx.name.clone(),
            output_dir: out_dir.clone(),
            jobs: count,
            completed: ledger.completed_count(),
            failures: ledger.failures().to_vec(),
            not_run: if self.interrupted {
                0
            } else {
                // Completed and failed jobs are disjoint sets.
                count.saturating_sub(ledger.completed_count() + ledger.failed_count())
            },
            files: ledger.all_files().cloned().collect(),
            seconds: self.started.elapsed().as_secs_f64(),
            interrupted: self.interrupted,
        };
        self.ctx.tell(&RunEvent::Finished {
            manifest: self.ctx.name.clone(),
            completed: outcome.completed,
            failed: outcome.failures.len(),
            seconds: outcome.seconds,
            output_dir: out_dir.display().to_string(),
        });
        for lane in self.lanes.drain(..) {
            lane.tracker.close().await;
        }
        Ok(outcome)
    }

    /// Servers away from the pool that hold something of the run (its items, its uploads, what
    /// they made; for one left out at the start, an earlier run's items) are waited for before
    /// the end's cleanup, at most [`END_WAIT`] (or `--server-wait` when shorter), so that one
    /// restarting as the run ends (an InvokeAI start takes 15-45 s) is cleaned now rather than
    /// by a rerun. One that answers is checked and taken back into the run as while it goes
    /// (what it still holds of the run is taken back). Told once, with the bound.
    async fn wait_for_away_servers(&mut self) {
        let state = self.ledger.state();
        let mut waiting: Vec<(Away, String)> = Vec::new();
        for (i, lane) in self.lanes.iter().enumerate() {
            let holds = state.batches.values().any(|b| b.server == lane.number)
                || lane.uploads.names().next().is_some();
            if !lane.in_run() && holds && !super::cleanup::answers_now(lane).await {
                waiting.push((Away::Lane(i), lane.url.clone()));
            }
        }
        for (k, entry) in self.absent.iter().enumerate() {
            let Some(entry) = entry else { continue };
            let number = self.ledger.number_of(&entry.url);
            if self
                .held_away
                .iter()
                .any(|item| Some(item.server()) == number)
            {
                waiting.push((Away::Absent(k), entry.url.clone()));
            }
        }
        if waiting.is_empty() {
            return;
        }
        let bound = self.ctx.server_wait.min(END_WAIT);
        let names: Vec<String> = waiting
            .iter()
            .map(|(_, url)| format!("the server at {url}"))
            .collect();
        self.ctx.warn(format!(
            "waiting up to {} s for {} to answer again, to clean up what the run left there \
             (if it does not, a rerun of the same command cleans it)",
            bound.as_secs(),
            names.join(", ")
        ));
        let deadline = tokio::time::Instant::now() + bound;
        while !waiting.is_empty() {
            let Ok(Some(returned)) =
                tokio::time::timeout_at(deadline, self.returns.join_next()).await
            else {
                break;
            };
            let Ok((away, client)) = returned else {
                continue;
            };
            waiting.retain(|(w, _)| *w != away);
            if let Err(e) = self.came_back(away, client).await {
                self.ctx.warn(crate::error_chain::error_chain(&e));
            }
        }
    }

    /// The items given up on servers that left the pool are taken back where the server
    /// answers again; what cannot be is reported.
    async fn take_back_leftovers(&self) {
        for lane in &self.lanes {
            if lane.abandoned.is_empty() {
                continue;
            }
            // Journaled as taken back when the server left.
            let taken = lane.take_back_again(&lane.abandoned).await;
            if let Some(error) = taken.unreachable {
                let error = crate::error_chain::error_chain(&error);
                self.ctx.warn(format!(
                    "{} left the pool and still does not answer ({error}): up to {} of the \
                     run's items may still be on it, and the images of what it ran",
                    lane.name(),
                    lane.abandoned.len()
                ));
            }
        }
    }

    /// Appends a line per job of the manifest to `runs.jsonl`.
    fn write_summary(&self) -> Result<(), RunError> {
        let first_items = self.ledger.first_items();
        let failures: HashMap<usize, &JobFailure> =
            self.ledger.failures().iter().map(|f| (f.job, f)).collect();
        let mut writer = SummaryWriter::open_in(&*self.ctx.store)?;
        let expansion = &self.ctx.prepared.expansion;
        // A shard's lines are its jobs' only: the other shards write theirs.
        for index in self.ctx.shard.indices(expansion.job_count()) {
            let job = expansion.job(index);
            let first_item = first_items.get(&job.index).copied();
            let failure = failures.get(&job.index).copied();
            writer.append(&self.summary(&job, first_item, failure))?;
        }
        writer.finish()?;
        Ok(())
    }

    fn summary(
        &self,
        job: &Job,
        first_item: Option<super::key::ItemRef>,
        failure: Option<&JobFailure>,
    ) -> JobSummary {
        let ledger = &self.ledger;
        let status = if ledger.is_completed(job.index) {
            "completed"
        } else if failure.is_some() {
            "failed"
        } else {
            "not_run"
        };
        let left = ledger.left_on_server(job.index);
        // The summary names the server of every job that ran when the run names servers; else
        // the server of what it left there.
        let server = first_item
            .filter(|_| self.ctx.names_servers || left.is_some())
            .map(|item| self.url_of(item))
            .or_else(|| left.and(self.lanes.first()).map(|l| l.url.clone()));
        JobSummary {
            run_id: self.ctx.run_id.clone(),
            job: job.index,
            status: status.to_owned(),
            item_id: first_item
                .map(super::key::ItemRef::id)
                .or(failure.map(|f| f.item_id)),
            inputs: self.named_inputs(job),
            sweep: super::summary::sweep_map(job),
            files: ledger.files_of(job.index).to_vec(),
            left_on_server: left.cloned().unwrap_or_default(),
            server,
            error: failure.map(|f| f.error.clone()),
        }
    }
}
