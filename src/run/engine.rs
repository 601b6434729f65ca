//! Carrying out a prepared manifest on a server as a stream: jobs flow from the manifest through a
//! window of at most `window` sessions pending on the server, topped up as items finish; results
//! flow out to files as they come; the server is cleaned up at the end. Every step goes through
//! the run's [`Ledger`] (journaled first), so a run started again after a crash, Ctrl-C or a
//! server outage resumes instead of repeating.

use super::RunError;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::collect::{Downloads, Ended, sweep_map};
use super::execution::Execution;
use super::health::Health;
use super::journal::Entry;
use super::ledger::Ledger;
use super::report::RunEvent;
use super::source::JobSource;
use super::submit::{QUEUE_FULL_PAUSE, Submitter};
use super::summary::{JobSummary, SummaryWriter};
use super::{JobFailure, ManifestOutcome};
use crate::client::QueueItemStatus;
use crate::client::tracker::{TrackEvent, Tracker};
use crate::manifest::Job;
use crate::report::ReportConfig;
use crate::report::live::{JobState, LiveJob, LiveReport};

/// How many outputs download at once.
const DOWNLOADS_AT_ONCE: usize = 4;

/// The sessions a run keeps pending on its server unless told otherwise (`--window`): enough that
/// the server never waits for the next enqueue (the window is topped up when half of it is
/// done), few enough that Ctrl-C, another user of the server or a restart cost little.
pub const DEFAULT_WINDOW: usize = 16;

/// Runs of more jobs than this get no gallery or grids at the end (building them holds every
/// job's entry in memory); `invk-run report` still builds them on request.
const GALLERY_MAX_JOBS: usize = 20_000;

/// How many saved outputs start a cleanup pass while the run goes.
const CLEANUP_BATCH: usize = 32;

/// The most sessions one enqueue carries (also a batch shared by the runs of a burst of images,
/// see [`super::coalesce`]).
pub const MAX_ENQUEUE: usize = 64;

/// How long a run waits for a server that stopped answering, unless told otherwise
/// (`--server-wait`).
pub const DEFAULT_SERVER_WAIT: Duration = Duration::from_secs(300);

impl Execution<'_> {
    /// Runs the manifest; returns its outcome.
    ///
    /// # Errors
    /// Server errors that stop the whole run (an enqueue refused, a server gone for longer than
    /// the wait); job failures are part of the outcome instead.
    pub async fn run(&self, cancel: CancellationToken) -> Result<ManifestOutcome, RunError> {
        let started = Instant::now();
        let p = self.prepared;
        let out_dir = &p.output_dir;
        let count = p.expansion.job_count();
        let window = self.window.max(1);
        // A resumed run checks on the server it runs on that the items it re-attaches to and the
        // uploads it reuses are still there, so a journal of another server is safe to use.
        let mut ledger = Ledger::open(out_dir, self.fresh)?;
        ledger.record(Entry::Started {
            run_id: self.run_id.clone(),
            plan_hash: format!("{}-{count}", p.workflow_hash),
            server: self.server.clone(),
            jobs: Some(count),
        })?;
        let resumed = self.resume(&mut ledger).await?;
        self.reporter.event(&RunEvent::Planned {
            manifest: self.name.clone(),
            jobs: count,
            done: resumed.done,
            failed: ledger.failed_count(),
            window,
            output_dir: out_dir.display().to_string(),
        });
        for failure in &ledger.failures {
            self.reporter.event(&RunEvent::JobFailed {
                manifest: self.name.clone(),
                job: failure.job,
                item_id: failure.item_id,
                error: format!(
                    "{} (in an earlier run; `--retry-failed` runs it again)",
                    failure.error
                ),
            });
        }

        let report = ReportConfig::from_manifest(&self.name, p.file.manifest());
        let live = self.live_report(&ledger, &report);
        let mut health = Health::new(self.server_wait);
        let mut tracker = Tracker::start(&self.client, self.track_mode, self.poll_interval).await;
        tracker.watch(self.attach(&resumed, &mut ledger, health.epoch));
        let mut source = JobSource::new(&p.expansion, resumed.skip, resumed.only);
        let mut submitter = Submitter::default();
        let mut downloads = Downloads::new(DOWNLOADS_AT_ONCE, self.server_wait);
        let mut interrupted = false;
        let mut tracker_idle = false;
        // While the queue is full: when to try again.
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut told_full = false;
        // Images deleted from the server so far.
        let mut cleaned = 0;
        loop {
            // Top the window up once half of it is done.
            let room = window.saturating_sub(ledger.open.len());
            let may_submit = retry_at.is_none_or(|at| tokio::time::Instant::now() >= at);
            // After Ctrl-C nothing more is submitted (what a submit handed back stays so); the
            // wait below takes the cancellation.
            if !interrupted
                && !cancel.is_cancelled()
                && room * 2 >= window
                && may_submit
                && !source.is_empty()
            {
                let jobs = source.take(room.min(MAX_ENQUEUE), &p.expansion.inputs);
                let submitted = self
                    .submit(
                        jobs,
                        &mut submitter,
                        &mut ledger,
                        &mut tracker,
                        &mut health,
                        &cancel,
                    )
                    .await?;
                tracker_idle = false;
                source.hand_back(submitted.handed_back);
                retry_at = submitted
                    .queue_full
                    .then(|| tokio::time::Instant::now() + QUEUE_FULL_PAUSE);
                if submitted.queue_full && !told_full {
                    told_full = true;
                    self.reporter.event(&RunEvent::Warning {
                        manifest: self.name.clone(),
                        message: "the server's queue is full (its `max_queue_size`); waiting for \
                                  room and submitting the rest as it drains"
                            .to_owned(),
                    });
                }
                continue;
            }
            if let Some(coalescer) = &self.coalescer {
                // Waiting for the server, not about to enqueue: other runs need not wait for
                // this one; what it has pending tells whether the server has work enough.
                coalescer.waiting(&self.name, ledger.open.len());
            }
            let nothing_open = ledger.open.is_empty() && downloads.tasks.is_empty();
            if nothing_open && (interrupted || source.is_empty()) {
                break;
            }
            tokio::select! {
                biased;
                () = cancel.cancelled(), if !interrupted => {
                    interrupted = true;
                    self.interrupt(&mut ledger).await?;
                    break;
                }
                Some(done) = downloads.tasks.join_next(), if !downloads.tasks.is_empty() => {
                    let job = done.as_ref().ok().and_then(|(id, ..)| job_of(&ledger, *id));
                    self.downloaded(done, &mut ledger)?;
                    self.tell_live(&live, job, &ledger);
                    if ledger.fresh_outputs.len() >= CLEANUP_BATCH {
                        match self.cleanup_outputs(&mut ledger).await {
                            Ok(n) => cleaned += n,
                            // What this pass could not delete, the end's pass does.
                            Err(e) => self.warn(format!(
                                "cannot delete saved outputs from the server yet: {}",
                                crate::error_chain::error_chain(&e)
                            )),
                        }
                    }
                }
                event = tracker.next(), if !tracker_idle && !ledger.open.is_empty() => match event {
                    Some(TrackEvent::Finished(item)) => {
                        health.up(self);
                        let job = job_of(&ledger, item.item_id);
                        if let Ended::Resubmit(job) =
                            self.finished(item, health.epoch, &mut ledger, &mut downloads)?
                        {
                            tracker.forget(ledger.forget_job(job));
                            source.hand_back([job]);
                        }
                        self.tell_live(&live, job, &ledger);
                    }
                    Some(TrackEvent::Vanished { item_id }) => {
                        let job = job_of(&ledger, item_id);
                        self.vanished(item_id, &mut ledger)?;
                        self.tell_live(&live, job, &ledger);
                    }
                    Some(TrackEvent::PollFailed { error, .. }) => health.down(self, &error)?,
                    Some(TrackEvent::ServerBack) => health.up(self),
                    Some(TrackEvent::Reconnected | TrackEvent::ServerDown { .. }) => {}
                    Some(_) => health.up(self),
                    None => tracker_idle = true,
                },
                () = sleep_until(retry_at), if retry_at.is_some() => retry_at = None,
            }
        }
        // Downloads already started are finished and journaled either way.
        while let Some(done) = downloads.tasks.join_next().await {
            self.downloaded(done, &mut ledger)?;
        }
        // The end's report below replaces the running one.
        for message in live.finish().await {
            self.warn(message);
        }
        tracker.close().await;
        let all_done = ledger.failures.is_empty() && ledger.completed.len() == count;
        if !interrupted {
            cleaned += self
                .cleanup(&submitter.uploads, all_done, &mut ledger)
                .await?;
        }
        if cleaned > 0 {
            self.reporter.event(&RunEvent::CleanedUp {
                manifest: self.name.clone(),
                images: cleaned,
            });
        }
        self.write_summary(&ledger)?;
        if count > GALLERY_MAX_JOBS {
            self.warn(format!(
                "no gallery or grids for a run of more than {GALLERY_MAX_JOBS} jobs (they would hold every job in memory); `invk-run report {}` builds them",
                out_dir.display()
            ));
        } else if let Err(e) = crate::report::refresh(out_dir, &report) {
            self.warn(format!(
                "cannot write the report: {}",
                crate::error_chain::error_chain(&e)
            ));
        }
        let outcome = ManifestOutcome {
            manifest: self.name.clone(),
            output_dir: out_dir.clone(),
            jobs: count,
            completed: ledger.completed.len(),
            failures: ledger.failures.clone(),
            not_run: if interrupted {
                0
            } else {
                // Completed and failed jobs are disjoint sets.
                count.saturating_sub(ledger.completed.len() + ledger.failed_count())
            },
            files: ledger.files.values().flatten().cloned().collect(),
            seconds: started.elapsed().as_secs_f64(),
            interrupted,
        };
        self.reporter.event(&RunEvent::Finished {
            manifest: self.name.clone(),
            completed: outcome.completed,
            failed: outcome.failures.len(),
            seconds: outcome.seconds,
            output_dir: out_dir.display().to_string(),
        });
        Ok(outcome)
    }

    /// The report kept up to date while the run goes: none past [`GALLERY_MAX_JOBS`] jobs, or
    /// when neither a gallery nor a grid is asked for.
    fn live_report(&self, ledger: &Ledger, report: &ReportConfig) -> LiveReport {
        let p = self.prepared;
        if p.expansion.job_count() > GALLERY_MAX_JOBS
            || (!report.gallery && report.grids.is_empty())
        {
            return LiveReport::off();
        }
        let jobs = p
            .expansion
            .jobs()
            .map(|job| LiveJob {
                sweep: sweep_map(&job).sweep,
                inputs: self.named_inputs(&job),
            })
            .collect();
        let earlier = ledger
            .completed
            .iter()
            .chain(ledger.failures.iter().map(|f| &f.job))
            .map(|&job| (job, live_state(ledger, job)))
            .collect();
        LiveReport::start(&p.output_dir, report.clone(), jobs, earlier)
    }

    /// Tells the running report where `job` stands, and the run what the report warns about.
    fn tell_live(&self, live: &LiveReport, job: Option<usize>, ledger: &Ledger) {
        if let Some(job) = job {
            live.job(job, live_state(ledger, job));
        }
        for message in live.warnings() {
            self.warn(message);
        }
    }

    fn warn(&self, message: String) {
        self.reporter.event(&RunEvent::Warning {
            manifest: self.name.clone(),
            message,
        });
    }

    /// Ctrl-C: the run's items that have not started are taken back (cancelled on the server,
    /// journaled as withdrawn: the next run submits them again); running ones are left to
    /// finish on the server, and the next run collects them.
    async fn interrupt(&self, ledger: &mut Ledger) -> Result<(), RunError> {
        let open: Vec<i64> = ledger.open.iter().copied().collect();
        let mut withdrawn = 0;
        let mut running = 0;
        let mut unreachable = None;
        for chunk in open.chunks(500) {
            let items = match self.client.queue().items_by_ids(chunk).await {
                Ok(items) => items,
                Err(e) => {
                    unreachable = Some(crate::error_chain::error_chain(&e));
                    break;
                }
            };
            for item in items {
                match item.status {
                    QueueItemStatus::Pending => {
                        let Some(key) = ledger.items.get(&item.item_id).map(|s| s.key) else {
                            continue;
                        };
                        match self.withdraw(item.item_id, key, ledger).await {
                            Ok(()) => withdrawn += 1,
                            Err(RunError::Client(e)) => {
                                unreachable = Some(crate::error_chain::error_chain(&e));
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    QueueItemStatus::InProgress => running += 1,
                    _ => {}
                }
            }
        }
        self.reporter.event(&RunEvent::Interrupted {
            manifest: self.name.clone(),
            withdrawn,
            running,
            error: unreachable,
            output_dir: self.prepared.output_dir.display().to_string(),
        });
        Ok(())
    }

    /// Appends a line per job of the manifest to `runs.jsonl`.
    fn write_summary(&self, ledger: &Ledger) -> Result<(), RunError> {
        let mut first_items: HashMap<usize, i64> = HashMap::new();
        for (id, slot) in &ledger.items {
            let first = first_items.entry(slot.job).or_insert(*id);
            *first = (*first).min(*id);
        }
        let failures: HashMap<usize, &JobFailure> =
            ledger.failures.iter().map(|f| (f.job, f)).collect();
        let mut writer = SummaryWriter::open(&self.prepared.output_dir)?;
        for job in self.prepared.expansion.jobs() {
            let first_item = first_items.get(&job.index).copied();
            let failure = failures.get(&job.index).copied();
            writer.append(&self.summary(&job, first_item, failure, ledger))?;
        }
        writer.finish()?;
        Ok(())
    }

    fn summary(
        &self,
        job: &Job,
        first_item: Option<i64>,
        failure: Option<&JobFailure>,
        ledger: &Ledger,
    ) -> JobSummary {
        let status = if ledger.completed.contains(&job.index) {
            "completed"
        } else if failure.is_some() {
            "failed"
        } else {
            "not_run"
        };
        let left = ledger.left_on_server.get(&job.index);
        JobSummary {
            run_id: self.run_id.clone(),
            job: job.index,
            status: status.to_owned(),
            item_id: first_item.or(failure.map(|f| f.item_id)),
            inputs: self.named_inputs(job),
            sweep: sweep_map(job),
            files: ledger.files.get(&job.index).cloned().unwrap_or_default(),
            left_on_server: left.cloned().unwrap_or_default(),
            server: left.map(|_| self.server.clone()),
            error: failure.map(|f| f.error.clone()),
        }
    }
}

/// The job of one of the run's queue items.
fn job_of(ledger: &Ledger, item_id: i64) -> Option<usize> {
    ledger.items.get(&item_id).map(|s| s.job)
}

/// Where `job` stands, for the running report.
fn live_state(ledger: &Ledger, job: usize) -> JobState {
    let files = || ledger.files.get(&job).cloned().unwrap_or_default();
    if ledger.completed.contains(&job) {
        return JobState::Completed { files: files() };
    }
    match ledger
        .has_failed(job)
        .then(|| ledger.failures.iter().find(|f| f.job == job))
        .flatten()
    {
        Some(failure) => JobState::Failed {
            error: failure.error.clone(),
            files: files(),
        },
        None => JobState::Pending,
    }
}

/// Sleeps until `at` (forever when `None`).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
