//! Carrying out a prepared manifest on a server as a stream: jobs flow from the manifest through a
//! window of at most `window` sessions pending on the server, topped up as items finish; results
//! flow out to files as they come; the server is cleaned up at the end. Every step goes through
//! the run's [`Ledger`] (journaled first), so a run started again after a crash, Ctrl-C or a
//! server outage resumes instead of repeating.

use super::RunError;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::collect::{Downloads, sweep_map};
use super::execution::{Execution, Lane};
use super::journal::Entry;
use super::key::ItemRef;
use super::ledger::Ledger;
use super::pool::{LaneRun, LaneShare, next_event};
use super::progress::RunEvent;
use super::source::JobSource;
use super::submit::QUEUE_FULL_PAUSE;
use super::summary::{JobSummary, SummaryWriter};
use super::upload::Uploads;
use super::{JobFailure, ManifestOutcome};
use crate::client::QueueItemStatus;
use crate::gallery::ReportConfig;
use crate::gallery::live::{JobState, LiveJob, LiveReport};
use crate::manifest::Job;

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
    /// Runs the manifest on the journal `ledger` opened; returns its outcome.
    ///
    /// # Errors
    /// Server errors that stop the whole run (an enqueue refused, a server gone for longer than
    /// the wait); job failures are part of the outcome instead.
    pub async fn run(
        &self,
        mut ledger: Ledger,
        cancel: CancellationToken,
    ) -> Result<ManifestOutcome, RunError> {
        let started = Instant::now();
        let p = self.prepared;
        let out_dir = &p.output_dir;
        let count = p.expansion.job_count();
        let window = self.window.max(1);
        // A resumed run checks on the servers it runs on that the items it re-attaches to and
        // the uploads it reuses are still there, so a journal of other servers is safe to use.
        ledger.record(Entry::Started {
            run_id: self.run_id.clone(),
            plan_hash: format!("{}-{count}", p.workflow_hash),
            server: self
                .lanes
                .iter()
                .map(|l| l.url.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            jobs: Some(count),
        })?;
        let resumed = self.resume(&mut ledger).await?;
        self.reporter.event(&RunEvent::Planned {
            manifest: self.name.clone(),
            jobs: count,
            done: resumed.done,
            failed: ledger.failed_count(),
            window,
            servers: if self.is_pool() {
                self.lanes.iter().map(|l| l.url.clone()).collect()
            } else {
                Vec::new()
            },
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
                server: None,
            });
        }

        let report = ReportConfig::from_manifest(&self.name, p.file.manifest());
        let live = self.live_report(&ledger, &report);
        let mut lanes = self.start_lanes().await;
        let attached = self.attach(&resumed, &mut ledger, 0);
        for (lane, run) in self.lanes.iter().zip(lanes.iter_mut()) {
            run.tracker.watch(
                attached
                    .iter()
                    .map(|id| ItemRef(*id))
                    .filter(|r| r.server() == lane.number)
                    .map(ItemRef::id),
            );
        }
        let mut source = JobSource::new(&p.expansion, resumed.skip, resumed.only);
        // A download from a pool's server that stopped answering waits longer than the grace:
        // the server leaves the pool first, and its downloads are given up (their jobs run
        // elsewhere) instead of failing their jobs.
        let wait = if self.is_pool() {
            self.server_wait + self.grace()
        } else {
            self.server_wait
        };
        let mut downloads = Downloads::new(DOWNLOADS_AT_ONCE, wait);
        let mut interrupted = false;
        // Images deleted from the servers so far.
        let mut cleaned = 0;
        loop {
            // Top a server's window up once half of it is done: the server with the most room
            // takes the next jobs (pull, not push: a slow server takes fewer).
            let target = self.next_lane(&lanes, &ledger);
            if !interrupted && !cancel.is_cancelled() && !source.is_empty() {
                if let Some((i, room)) = target {
                    let jobs = source.take(room.min(MAX_ENQUEUE), &p.expansion.inputs);
                    let run = &mut lanes[i];
                    let submitted = self
                        .submit(
                            &self.lanes[i],
                            jobs,
                            &mut run.submitter,
                            &mut ledger,
                            &mut run.tracker,
                            &mut run.health,
                            &cancel,
                        )
                        .await?;
                    run.idle = false;
                    source.hand_back(submitted.handed_back);
                    if let Some(error) = submitted.gone {
                        if !self.others_live(&lanes, i) {
                            return Err(error);
                        }
                        let why = crate::error_chain::error_chain(&error);
                        self.drop_lane(i, why, &mut lanes, &mut ledger, &mut source, &downloads)?;
                        continue;
                    }
                    let run = &mut lanes[i];
                    run.retry_at = submitted
                        .queue_full
                        .then(|| tokio::time::Instant::now() + QUEUE_FULL_PAUSE);
                    if submitted.queue_full && !run.told_full {
                        run.told_full = true;
                        let which = if self.is_pool() {
                            format!(" on {}", self.server_name(i))
                        } else {
                            String::new()
                        };
                        self.warn(format!(
                            "the server's queue is full{which} (its `max_queue_size`); waiting for \
                             room and submitting the rest as it drains"
                        ));
                    }
                    continue;
                }
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
            // The servers whose trackers have something to tell.
            let listening: Vec<bool> = self
                .lanes
                .iter()
                .zip(&lanes)
                .map(|(lane, run)| {
                    !run.idle && !run.gone && ledger.open_on(lane.number).next().is_some()
                })
                .collect();
            let retry_at = lanes
                .iter()
                .filter(|l| !l.gone)
                .filter_map(|l| l.retry_at)
                .min();
            tokio::select! {
                biased;
                () = cancel.cancelled(), if !interrupted => {
                    interrupted = true;
                    self.interrupt(&lanes, &mut ledger).await?;
                    break;
                }
                Some(done) = downloads.tasks.join_next(), if !downloads.tasks.is_empty() => {
                    let item = done.as_ref().ok().map(|(id, ..)| *id);
                    let job = item.and_then(|id| ledger.job_of(id));
                    self.downloaded(done, &mut ledger)?;
                    self.tell_live(&live, job, &ledger);
                    if let (Some(item), Some(job)) = (item, job) {
                        self.count_end(item, job, &mut lanes, &ledger);
                        self.leave_if_failing(&mut lanes, &mut ledger, &mut source, &downloads)?;
                    }
                    if ledger.fresh_outputs.len() >= CLEANUP_BATCH {
                        let servers = self.live_lanes(&lanes);
                        match self.cleanup_outputs(&servers, &mut ledger).await {
                            Ok(n) => cleaned += n,
                            // What this pass could not delete, the end's pass does.
                            Err(e) => self.warn(format!(
                                "cannot delete saved outputs from the server yet: {}",
                                crate::error_chain::error_chain(&e)
                            )),
                        }
                    }
                }
                (i, event) = next_event(&mut lanes, &listening), if listening.contains(&true) => {
                    self.tracked(i, event, &mut lanes, &mut ledger, &mut source, &mut downloads, &live)?;
                }
                () = sleep_until(retry_at), if retry_at.is_some() => {
                    let now = tokio::time::Instant::now();
                    for run in &mut lanes {
                        if run.retry_at.is_some_and(|at| at <= now) {
                            run.retry_at = None;
                        }
                    }
                }
            }
        }
        // Downloads already started are finished and journaled either way.
        while let Some(done) = downloads.tasks.join_next().await {
            let item = done.as_ref().ok().map(|(id, ..)| *id);
            let job = item.and_then(|id| ledger.job_of(id));
            self.downloaded(done, &mut ledger)?;
            if let (Some(item), Some(job)) = (item, job) {
                self.count_end(item, job, &mut lanes, &ledger);
            }
        }
        // The end's report below replaces the running one.
        for message in live.finish().await {
            self.warn(message);
        }
        let all_done = ledger.failures.is_empty() && ledger.completed.len() == count;
        if !interrupted {
            self.cancel_abandoned(&lanes).await;
            let servers: Vec<(&Lane, &Uploads)> = self
                .lanes
                .iter()
                .zip(&lanes)
                .filter(|(_, run)| !run.gone)
                .map(|(lane, run)| (lane, &run.submitter.uploads))
                .collect();
            cleaned += self.cleanup(&servers, all_done, &mut ledger).await?;
        }
        let shares: Vec<(String, LaneShare)> = self
            .lanes
            .iter()
            .zip(&lanes)
            .map(|(lane, run)| (lane.url.clone(), run.share(&ledger, lane.number)))
            .collect();
        for run in lanes {
            run.tracker.close().await;
        }
        if cleaned > 0 {
            self.reporter.event(&RunEvent::CleanedUp {
                manifest: self.name.clone(),
                images: cleaned,
            });
        }
        if self.is_pool() {
            for (server, share) in shares {
                self.reporter.event(&RunEvent::ServerShare {
                    manifest: self.name.clone(),
                    server,
                    completed: share.completed,
                    failed: share.failed,
                    left: share.left,
                    out: share.out,
                });
            }
        }
        self.write_summary(&ledger)?;
        if count > GALLERY_MAX_JOBS {
            self.warn(format!(
                "no gallery or grids for a run of more than {GALLERY_MAX_JOBS} jobs (they would hold every job in memory); `invk-run report {}` builds them",
                out_dir.display()
            ));
        } else if let Err(e) = crate::gallery::refresh(out_dir, &report) {
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
    pub(super) fn tell_live(&self, live: &LiveReport, job: Option<usize>, ledger: &Ledger) {
        if let Some(job) = job {
            live.job(job, live_state(ledger, job));
        }
        for message in live.warnings() {
            self.warn(message);
        }
    }

    pub(super) fn warn(&self, message: String) {
        self.reporter.event(&RunEvent::Warning {
            manifest: self.name.clone(),
            message,
        });
    }

    /// Ctrl-C: the run's items that have not started are taken back (cancelled on the server,
    /// journaled as withdrawn: the next run submits them again); running ones are left to
    /// finish on the server, and the next run collects them.
    async fn interrupt(&self, lanes: &[LaneRun], ledger: &mut Ledger) -> Result<(), RunError> {
        let mut withdrawn = 0;
        let mut running = 0;
        let mut unreachable = None;
        for (lane, _) in self.lanes.iter().zip(lanes).filter(|(_, run)| !run.gone) {
            let open: Vec<i64> = ledger
                .open_on(lane.number)
                .map(|id| ItemRef(id).id())
                .collect();
            for chunk in open.chunks(500) {
                let items = match lane.client.queue().items_by_ids(chunk).await {
                    Ok(items) => items,
                    Err(e) => {
                        unreachable = Some(crate::error_chain::error_chain(&e));
                        break;
                    }
                };
                for item in items {
                    let id = ItemRef::new(lane.number, item.item_id).0;
                    match item.status {
                        QueueItemStatus::Pending => {
                            let Some(key) = ledger.items.get(&id).map(|s| s.key) else {
                                continue;
                            };
                            match self.withdraw(id, key, ledger).await {
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
        // A pool's summary names the server of every job that ran; a one-server run's, the
        // server of what it left there.
        let server = first_item
            .filter(|_| self.is_pool() || left.is_some())
            .map(|id| self.url_of(id))
            .or_else(|| left.map(|_| self.lanes[0].url.clone()));
        JobSummary {
            run_id: self.run_id.clone(),
            job: job.index,
            status: status.to_owned(),
            item_id: first_item
                .map(|id| ItemRef(id).id())
                .or(failure.map(|f| f.item_id)),
            inputs: self.named_inputs(job),
            sweep: sweep_map(job),
            files: ledger.files.get(&job.index).cloned().unwrap_or_default(),
            left_on_server: left.cloned().unwrap_or_default(),
            server,
            error: failure.map(|f| f.error.clone()),
        }
    }
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
