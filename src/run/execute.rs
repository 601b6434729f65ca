//! Carrying out a prepared manifest on a server: uploads, enqueues, tracking, downloads and
//! cleanup, every step journaled so that a second run resumes instead of repeating.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::batch::{build_batch, model_refs};
use super::journal::{Entry, Journal, Resume, State};
use super::output_path::{sanitize_relative, unique_path};
use super::prepare::{Prepared, job_key};
use super::report::{Reporter, RunEvent};
use super::summary::{JobSummary, Sidecar, append_summary};
use super::{JobFailure, ManifestOutcome, RunError};
use crate::client::tracker::{TrackEvent, TrackMode, Tracker};
use crate::client::{Client, QueueItem, QueueItemStatus, UploadOptions};
use crate::manifest::{
    Cleanup, EnqueuePlan, IntermediatesPolicy, Job, LocalImage, OutputVars, OutputsPolicy, Plan,
    UploadsPolicy,
};
use crate::workflow::{ConvertOptions, EnqueueBatch, OutputNode};

/// How many outputs download at once.
const DOWNLOADS_AT_ONCE: usize = 4;

/// Run-wide facts the steps share.
pub struct Execution<'a> {
    pub(super) prepared: &'a Prepared,
    pub(super) client: Client,
    pub(super) server: String,
    pub(super) reporter: &'a Reporter,
    pub(super) name: String,
    pub(super) run_id: String,
    pub(super) retry_failed: bool,
    pub(super) fresh: bool,
    pub(super) poll_interval: Duration,
    pub(super) track_mode: TrackMode,
}

/// A job's place in a batch: its key and which session of the job it is.
#[derive(Debug, Clone)]
struct Slot {
    job: usize,
    key: String,
}

/// What the tracking loop knows about each queue item of this run.
#[derive(Debug, Default)]
struct Book {
    /// Item id → the job it runs and its batch.
    items: HashMap<i64, (Slot, String)>,
    /// Image name → a file already written in this run (to copy instead of downloading again).
    written: HashMap<String, PathBuf>,
    /// Paths handed out in this run.
    taken: HashSet<PathBuf>,
    /// Sessions of this run's items.
    sessions: BTreeSet<String>,
    /// Images of intermediate and non-output nodes of this run's items.
    intermediates: BTreeSet<String>,
    /// Outputs that could not be downloaded, per job.
    left_on_server: BTreeMap<usize, Vec<String>>,
    /// Files per job in this run.
    files: BTreeMap<usize, Vec<PathBuf>>,
    failures: Vec<JobFailure>,
    /// Jobs that failed (reported once, whatever the number of their sessions).
    failed_jobs: BTreeSet<usize>,
    /// Sessions still open, per job.
    pending: HashMap<usize, usize>,
    completed: BTreeSet<usize>,
}

impl Book {
    /// A session of a job ended; returns whether it was the job's last.
    fn session_ended(&mut self, job: usize) -> bool {
        let left = self.pending.entry(job).or_insert(1);
        *left = left.saturating_sub(1);
        *left == 0
    }

    /// Records a job's failure once.
    fn fail(&mut self, job: usize, item_id: i64, error: String) -> bool {
        if self.failed_jobs.insert(job) {
            self.failures.push(JobFailure {
                job,
                item_id,
                error,
            });
            true
        } else {
            false
        }
    }
}

/// The journal key of session `n` of a job that runs as `per_job` sessions.
fn slot_key(job_key: &str, per_job: usize, n: usize) -> String {
    if per_job == 1 {
        job_key.to_owned()
    } else {
        format!("{job_key}#{n}")
    }
}

/// What a download task hands back: the item, the files written, the files that failed.
type DownloadResult = (i64, Vec<Planned>, Vec<(Planned, String)>);

/// One file to write: where, from which server image.
#[derive(Debug, Clone)]
struct Planned {
    image_name: String,
    path: PathBuf,
    sidecar: Option<Sidecar>,
    /// Written and journaled by an earlier run: nothing to do.
    on_disk: bool,
}

impl Execution<'_> {
    /// Runs the manifest; returns its outcome.
    ///
    /// # Errors
    /// Server errors that stop the whole run (enqueue refused, server gone); job failures are
    /// part of the outcome instead.
    pub async fn run(&self, cancel: CancellationToken) -> Result<ManifestOutcome, crate::Error> {
        let started = Instant::now();
        let p = self.prepared;
        let out_dir = &p.output_dir;
        // A resumed run checks on the server it runs on that the items it re-attaches to and the
        // uploads it reuses are still there, so a journal of another server is safe to use.
        let (mut journal, mut state) = Journal::open(out_dir, self.fresh)?;
        journal.append(&Entry::Started {
            run_id: self.run_id.clone(),
            plan_hash: plan_hash(&p.plan),
            server: self.server.clone(),
        })?;
        let keys: Vec<String> = p
            .plan
            .jobs
            .iter()
            .map(|job| job_key(job, &p.workflow_hash))
            .collect();
        let mut book = Book::default();
        let (to_submit, reattach, done_before) = self
            .resume(&keys, &mut state, &mut journal, &mut book)
            .await?;
        let subset: Vec<Job> = to_submit
            .iter()
            .map(|&pos| p.plan.jobs[pos].clone())
            .collect();
        let sub_plan = Plan::from_jobs(subset, &p.expansion.inputs);
        self.reporter.event(&RunEvent::Planned {
            manifest: self.name.clone(),
            jobs: p.plan.job_count(),
            done: done_before,
            failed: book.failures.len(),
            enqueues: sub_plan.enqueue_count(),
            output_dir: out_dir.display().to_string(),
        });
        for failure in &book.failures {
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

        let mut tracker = Tracker::start(&self.client, self.track_mode, self.poll_interval).await;
        for (item_id, slot, batch) in reattach {
            book.items.insert(item_id, (slot, batch));
            tracker.watch([item_id]);
        }

        // Models by name, then uploads (deduplicated by content), then the enqueues.
        let models = self.resolve_models(&sub_plan).await?;
        let uploads = self.upload_images(&sub_plan, &state, &mut journal).await?;
        let positions: HashMap<usize, usize> = p
            .plan
            .jobs
            .iter()
            .enumerate()
            .map(|(pos, j)| (j.index, pos))
            .collect();
        let mut interrupted = false;
        for enqueue in &sub_plan.enqueues {
            if cancel.is_cancelled() {
                interrupted = true;
                break;
            }
            let slots: Vec<Slot> = enqueue
                .job_indices
                .iter()
                .map(|i| Slot {
                    job: *i,
                    key: keys[positions[i]].clone(),
                })
                .collect();
            let (batch_id, ids, per_job) = self
                .enqueue(enqueue, &slots, &uploads, &models, &mut journal)
                .await?;
            for (n, id) in ids.iter().enumerate() {
                if let Some(slot) = slots.get(n / per_job) {
                    let key = slot_key(&slot.key, per_job, n % per_job);
                    book.items
                        .insert(*id, (Slot { job: slot.job, key }, batch_id.clone()));
                }
            }
            for slot in &slots {
                book.pending.insert(slot.job, per_job);
            }
            tracker.watch(ids);
        }

        // Track and download. Ctrl-C stops tracking; downloads already started are finished
        // and journaled either way, and what is left is resumed by the next run.
        let mut downloads: JoinSet<DownloadResult> = JoinSet::new();
        let semaphore = Arc::new(tokio::sync::Semaphore::new(DOWNLOADS_AT_ONCE));
        let mut tracking = !interrupted;
        while tracking {
            tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    interrupted = true;
                    tracking = false;
                }
                Some(done) = downloads.join_next(), if !downloads.is_empty() => {
                    self.record_download_task(done, &mut book, &mut journal)?;
                }
                event = tracker.next() => match event {
                    Some(TrackEvent::Finished(item)) => {
                        self.finished(item, &state, &mut book, &mut journal, &mut downloads, &semaphore)?;
                    }
                    Some(TrackEvent::Vanished { item_id }) => {
                        self.vanished(item_id, &mut book, &mut journal)?;
                    }
                    Some(TrackEvent::PollFailed { error, consecutive }) if consecutive % 10 == 1 => {
                        self.reporter.event(&RunEvent::Warning {
                            manifest: self.name.clone(),
                            message: format!("cannot poll the queue ({consecutive} times in a row): {error}"),
                        });
                    }
                    Some(_) => {}
                    None => tracking = false,
                },
            }
        }
        while let Some(done) = downloads.join_next().await {
            self.record_download_task(done, &mut book, &mut journal)?;
        }
        if !interrupted {
            self.cleanup(&state, &uploads, &mut book, &mut journal)
                .await?;
        }

        let summaries: Vec<JobSummary> = p
            .plan
            .jobs
            .iter()
            .map(|job| self.summary(job, &book))
            .collect();
        append_summary(out_dir, &summaries)?;
        let report = crate::report::ReportConfig::for_run(p, &self.name);
        if let Err(e) = crate::report::refresh(out_dir, &report) {
            self.reporter.event(&RunEvent::Warning {
                manifest: self.name.clone(),
                message: format!("cannot write the report: {}", crate::error::error_chain(&e)),
            });
        }
        let outcome = ManifestOutcome {
            manifest: self.name.clone(),
            output_dir: out_dir.clone(),
            jobs: p.plan.job_count(),
            completed: book.completed.len(),
            failures: book.failures.clone(),
            not_run: if interrupted {
                0
            } else {
                // Completed and failed jobs are disjoint sets.
                p.plan
                    .job_count()
                    .saturating_sub(book.completed.len() + book.failed_jobs.len())
            },
            files: book.files.values().flatten().cloned().collect(),
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

    /// Decides, from the journal, what happens to each job: done before, failed before, still
    /// on the server (returned to re-attach), or to submit (returned as plan positions).
    async fn resume(
        &self,
        keys: &[String],
        state: &mut State,
        journal: &mut Journal,
        book: &mut Book,
    ) -> Result<(Vec<usize>, Vec<(i64, Slot, String)>, usize), crate::Error> {
        let p = self.prepared;
        let mut to_submit: Vec<usize> = Vec::new();
        let mut reattach: Vec<(i64, Slot, String)> = Vec::new();
        let mut done_before = 0;
        for (pos, job) in p.plan.jobs.iter().enumerate() {
            let key = &keys[pos];
            let mut decision = state.resume(key);
            if let Resume::Recover { batch_id } = &decision {
                // Sent, but the answer was lost: find the batch's items on the server.
                decision = match self.recover_batch(batch_id).await? {
                    Some(ids) => {
                        journal.append(&Entry::Enqueued {
                            batch_id: batch_id.clone(),
                            item_ids: ids.clone(),
                        })?;
                        if let Some(b) = state.batches.get_mut(batch_id) {
                            b.item_ids = Some(ids);
                        }
                        state.resume(key)
                    }
                    None => Resume::Submit,
                };
            }
            match decision {
                Resume::Submit | Resume::Recover { .. } => {
                    if !self.retry_failed {
                        to_submit.push(pos);
                    }
                }
                Resume::Done { files } => {
                    done_before += 1;
                    book.completed.insert(job.index);
                    book.files.insert(job.index, files);
                }
                Resume::Failed { item_id, error } => {
                    if self.retry_failed {
                        to_submit.push(pos);
                    } else {
                        book.fail(job.index, item_id, error);
                    }
                }
                Resume::Attach {
                    batch_id,
                    open,
                    done,
                    failed,
                } => {
                    book.pending.insert(job.index, open.len());
                    if let Some((item_id, error)) = failed {
                        book.fail(job.index, item_id, error);
                    }
                    if done > 0 {
                        // Sessions that finished before: their files count for the job.
                        let prefix = format!("{key}#");
                        let earlier = state
                            .downloads
                            .iter()
                            .filter(|(slot, _)| slot.starts_with(&prefix))
                            .filter(|(slot, _)| !open.iter().any(|(o, _)| o == *slot))
                            .flat_map(|(_, files)| files.values().cloned());
                        book.files.entry(job.index).or_default().extend(earlier);
                    }
                    for (slot_key, item_id) in open {
                        reattach.push((
                            item_id,
                            Slot {
                                job: job.index,
                                key: slot_key,
                            },
                            batch_id.clone(),
                        ));
                    }
                }
            }
        }
        // Items the server no longer has (its queue was cleared, or it is another server):
        // their jobs are submitted again.
        if !reattach.is_empty() {
            let ids: Vec<i64> = reattach.iter().map(|(id, _, _)| *id).collect();
            let known: HashMap<i64, String> = self
                .client
                .queue()
                .items_by_ids(&ids)
                .await?
                .into_iter()
                .map(|item| (item.item_id, item.batch_id))
                .collect();
            let mut lost: BTreeSet<usize> = BTreeSet::new();
            reattach.retain(|(id, slot, batch)| {
                let here = known.get(id).is_some_and(|b| b == batch);
                if !here {
                    lost.insert(slot.job);
                }
                here
            });
            reattach.retain(|(_, slot, _)| !lost.contains(&slot.job));
            for job in lost {
                book.pending.remove(&job);
                book.files.remove(&job);
                book.failed_jobs.remove(&job);
                book.failures.retain(|f| f.job != job);
                if let Some(pos) = p.plan.jobs.iter().position(|j| j.index == job) {
                    to_submit.push(pos);
                }
            }
            to_submit.sort_unstable();
        }
        Ok((to_submit, reattach, done_before))
    }

    /// A finished download task: its files are journaled (a panicked task fails its job).
    fn record_download_task(
        &self,
        done: Result<DownloadResult, tokio::task::JoinError>,
        book: &mut Book,
        journal: &mut Journal,
    ) -> Result<(), crate::Error> {
        match done {
            Ok((item_id, written, failed)) => {
                self.record_downloads(item_id, written, failed, book, journal)
            }
            Err(e) => {
                tracing::error!("a download task ended abnormally: {e}");
                Ok(())
            }
        }
    }

    /// Finds the items of a batch whose enqueue answer was lost; `None` when the server has none
    /// (the enqueue never arrived).
    async fn recover_batch(&self, batch_id: &str) -> Result<Option<Vec<i64>>, crate::Error> {
        let status = self.client.queue().batch_status(batch_id).await?;
        if status.total == 0 {
            return Ok(None);
        }
        let mut ids = self.client.queue().item_ids_of_batch(batch_id).await?;
        ids.sort_unstable();
        Ok(Some(ids))
    }

    /// Resolves every model given by name (or key alone) against the server's installed models,
    /// before anything is uploaded or enqueued.
    async fn resolve_models(&self, plan: &Plan) -> Result<HashMap<String, Value>, crate::Error> {
        let inputs = &self.prepared.expansion.inputs;
        let mut models: HashMap<String, Value> = HashMap::new();
        for enqueue in &plan.enqueues {
            for reference in model_refs(inputs, enqueue) {
                if let std::collections::hash_map::Entry::Vacant(slot) = models.entry(reference) {
                    let id = resolve_model(&self.client, slot.key()).await?;
                    slot.insert(serde_json::to_value(id).map_err(std::io::Error::other)?);
                }
            }
        }
        Ok(models)
    }

    async fn upload_images(
        &self,
        plan: &Plan,
        state: &State,
        journal: &mut Journal,
    ) -> Result<HashMap<PathBuf, String>, crate::Error> {
        let mut images: BTreeMap<PathBuf, &LocalImage> = BTreeMap::new();
        for job in &plan.jobs {
            for value in job.inputs.values() {
                if let Some(image) = value.as_local_image() {
                    images.insert(image.path.clone(), image);
                }
            }
        }
        let mut by_path = HashMap::new();
        let mut by_hash: HashMap<String, String> = HashMap::new();
        // Uploads of earlier runs are reused only while the server still has them (it may be
        // another server, or someone cleaned up).
        let earlier: Vec<String> = if images.is_empty() {
            Vec::new()
        } else {
            state
                .uploads
                .values()
                .filter(|name| !state.deleted.contains(*name))
                .cloned()
                .collect()
        };
        let still_there: BTreeSet<String> = if earlier.is_empty() {
            BTreeSet::new()
        } else {
            self.client
                .images()
                .by_names(&earlier)
                .await?
                .into_iter()
                .map(|dto| dto.image_name)
                .collect()
        };
        for (path, image) in images {
            let bytes = crate::fs::read(&path)?;
            let sha = format!("{:x}", Sha256::digest(&bytes));
            let known = by_hash.get(&sha).cloned().or_else(|| {
                state
                    .uploads
                    .get(&sha)
                    .filter(|name| still_there.contains(*name))
                    .cloned()
            });
            let name = match known {
                Some(name) => name,
                None => {
                    let dto = self
                        .client
                        .images()
                        .upload(&path, &UploadOptions::default())
                        .await?;
                    journal.append(&Entry::Uploaded {
                        sha256: sha.clone(),
                        path: path.clone(),
                        image_name: dto.image_name.clone(),
                    })?;
                    self.reporter.event(&RunEvent::Uploaded {
                        manifest: self.name.clone(),
                        path: image.written.clone(),
                        image_name: dto.image_name.clone(),
                    });
                    dto.image_name
                }
            };
            by_hash.insert(sha, name.clone());
            by_path.insert(path, name);
        }
        Ok(by_path)
    }

    async fn enqueue(
        &self,
        enqueue: &EnqueuePlan,
        slots: &[Slot],
        uploads: &HashMap<PathBuf, String>,
        models: &HashMap<String, Value>,
        journal: &mut Journal,
    ) -> Result<(String, Vec<i64>, usize), crate::Error> {
        let image_name = |i: &LocalImage| uploads.get(&i.path).cloned().unwrap_or_default();
        let inputs = &self.prepared.expansion.inputs;
        let batch_id = uuid::Uuid::new_v4().to_string();
        let options = ConvertOptions {
            destination: Some(format!("invk-run:{}", self.run_id)),
            origin: Some("invk-run".to_owned()),
            batch_id: Some(batch_id.clone()),
            ..ConvertOptions::default()
        };
        let batch = build_batch(
            &self.prepared.workflow,
            inputs,
            enqueue,
            &image_name,
            models,
            &options,
        )?;
        let sessions = usize::try_from(batch.session_count()).unwrap_or(usize::MAX);
        let per_job = (sessions / slots.len().max(1)).max(1);
        let jobs: Vec<String> = slots
            .iter()
            .flat_map(|s| (0..per_job).map(|n| slot_key(&s.key, per_job, n)))
            .collect();
        journal.append(&Entry::EnqueueIntent {
            batch_id: batch_id.clone(),
            jobs,
        })?;
        let result = match self
            .client
            .queue()
            .enqueue_batch(&EnqueueBatch {
                batch,
                prepend: false,
            })
            .await
        {
            Ok(r) => r,
            Err(e) => {
                if let Some(partial) = e.partial_enqueue() {
                    journal.append(&Entry::Enqueued {
                        batch_id: batch_id.clone(),
                        item_ids: partial.item_ids.clone(),
                    })?;
                }
                return Err(e.into());
            }
        };
        journal.append(&Entry::Enqueued {
            batch_id: batch_id.clone(),
            item_ids: result.item_ids.clone(),
        })?;
        self.reporter.event(&RunEvent::Enqueued {
            manifest: self.name.clone(),
            batch_id: batch_id.clone(),
            items: result.item_ids.len(),
        });
        Ok((batch_id, result.item_ids, per_job))
    }

    /// An item ended: a failure is recorded; a completion's outputs are planned and their
    /// downloads started.
    fn finished(
        &self,
        item: QueueItem,
        state: &State,
        book: &mut Book,
        journal: &mut Journal,
        downloads: &mut JoinSet<DownloadResult>,
        semaphore: &Arc<tokio::sync::Semaphore>,
    ) -> Result<(), crate::Error> {
        let Some((slot, batch_id)) = book.items.get(&item.item_id).cloned() else {
            return Ok(());
        };
        let outputs = item.outputs();
        let output_nodes = self.prepared.workflow.outputs();
        // Journal the item's session and its intermediate images first, so that a run killed
        // from here on still cleans them up when it is resumed.
        let intermediates: Vec<String> = outputs
            .iter()
            .filter(|(node_id, out)| {
                out.is_intermediate || !output_nodes.iter().any(|o| &o.node_id == *node_id)
            })
            .flat_map(|(_, out)| out.images.iter().cloned())
            .collect();
        journal.append(&Entry::Produced {
            item_id: item.item_id,
            session_id: item.session_id.clone(),
            images: intermediates.clone(),
        })?;
        book.sessions.insert(item.session_id.clone());
        book.intermediates.extend(intermediates);
        if item.status != QueueItemStatus::Completed {
            let error = match (&item.error_type, &item.error_message) {
                (Some(t), Some(m)) => format!("{t}: {m}"),
                (None, Some(m)) => m.clone(),
                _ => item.status.as_str().to_owned(),
            };
            self.session_failed(
                &slot,
                item.item_id,
                item.status.as_str(),
                error,
                book,
                journal,
            )?;
            return Ok(());
        }
        let planned = match self.plan_files(&item, &slot, &batch_id, &outputs, state, book) {
            Ok(planned) => planned,
            Err(e) => {
                // A name the templates cannot make for this job fails the job, not the run;
                // its outputs stay on the server.
                book.session_ended(slot.job);
                let names: Vec<String> = outputs
                    .values()
                    .flat_map(|o| o.images.iter().cloned())
                    .collect();
                book.left_on_server
                    .entry(slot.job)
                    .or_default()
                    .extend(names);
                self.job_failed(
                    slot.job,
                    item.item_id,
                    format!("cannot name its outputs: {e}"),
                    book,
                );
                return Ok(());
            }
        };
        let client = self.client.clone();
        let semaphore = Arc::clone(semaphore);
        let written = book.written.clone();
        let item_id = item.item_id;
        downloads.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let mut ok = Vec::new();
            let mut failed = Vec::new();
            for file in planned {
                if file.on_disk {
                    ok.push(file);
                    continue;
                }
                let result = match written.get(&file.image_name) {
                    Some(existing) if existing.is_file() => copy_atomic(existing, &file.path).await,
                    _ => client
                        .images()
                        .download(&file.image_name, &file.path)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                };
                let result = result.and_then(|()| match &file.sidecar {
                    Some(s) => s.write(&file.path).map_err(|e| e.to_string()),
                    None => Ok(()),
                });
                match result {
                    Ok(()) => ok.push(file),
                    Err(e) => failed.push((file, e)),
                }
            }
            (item_id, ok, failed)
        });
        Ok(())
    }

    /// An item disappeared from the queue before it was seen finishing (someone deleted it):
    /// the job failed; a later run with `--retry-failed` submits it again.
    fn vanished(
        &self,
        item_id: i64,
        book: &mut Book,
        journal: &mut Journal,
    ) -> Result<(), crate::Error> {
        let Some((slot, _)) = book.items.get(&item_id).cloned() else {
            return Ok(());
        };
        let error = "the queue item was deleted from the server before it finished".to_owned();
        self.session_failed(&slot, item_id, "canceled", error, book, journal)
    }

    /// A session ended without its outputs: journaled, and its job reported failed (once).
    fn session_failed(
        &self,
        slot: &Slot,
        item_id: i64,
        status: &str,
        error: String,
        book: &mut Book,
        journal: &mut Journal,
    ) -> Result<(), crate::Error> {
        journal.append(&Entry::Finished {
            job: slot.key.clone(),
            item_id,
            status: status.to_owned(),
            error: Some(error.clone()),
        })?;
        book.session_ended(slot.job);
        self.job_failed(slot.job, item_id, error, book);
        Ok(())
    }

    fn job_failed(&self, job: usize, item_id: i64, error: String, book: &mut Book) {
        if book.fail(job, item_id, error.clone()) {
            self.reporter.event(&RunEvent::JobFailed {
                manifest: self.name.clone(),
                job,
                item_id,
                error,
            });
        }
    }

    fn plan_files(
        &self,
        item: &QueueItem,
        slot: &Slot,
        batch_id: &str,
        outputs: &BTreeMap<String, crate::client::NodeOutput>,
        state: &State,
        book: &mut Book,
    ) -> Result<Vec<Planned>, crate::Error> {
        let p = self.prepared;
        let output_nodes = p.workflow.outputs();
        let Some(job) = p.plan.jobs.iter().find(|j| j.index == slot.job) else {
            return Ok(Vec::new());
        };
        let earlier = state.downloads.get(&slot.key);
        let now = now_utc();
        let mut planned = Vec::new();
        for node in &output_nodes {
            let Some(out) = outputs.get(&node.node_id) else {
                continue;
            };
            let names: Vec<&String> = out.images.iter().chain(out.videos.iter()).collect();
            for (index, image_name) in names.iter().enumerate() {
                let vars = OutputVars {
                    node_id: node.node_id.clone(),
                    node_label: node.label.clone(),
                    node_type: node.node_type.clone(),
                    image_index: index,
                    image_count: names.len(),
                    image_name: (*image_name).clone(),
                    item_id: item.item_id,
                    batch_id: batch_id.to_owned(),
                    run_id: self.run_id.clone(),
                    date: now.0.clone(),
                    time: now.1.clone(),
                };
                // Already on disk from an earlier run of this session (killed before it
                // journaled the session's end): keep that file.
                if let Some(file) = earlier.and_then(|d| d.get(image_name.as_str())) {
                    let path = p.output_dir.join(file);
                    if path.is_file() {
                        book.taken.insert(path.clone());
                        planned.push(Planned {
                            image_name: (*image_name).clone(),
                            path,
                            sidecar: None,
                            on_disk: true,
                        });
                        continue;
                    }
                }
                let target = p.expansion.output_path(job, &vars)?;
                let rel = sanitize_relative(&target.name.to_string_lossy())
                    .unwrap_or_else(|| PathBuf::from(format!("{}-{index}", job.index)));
                let ext = Path::new(image_name.as_str())
                    .extension()
                    .map_or_else(|| "png".to_owned(), |e| e.to_string_lossy().into_owned());
                // The folder is the run's output folder (`output.dir` cannot vary per job).
                let path = reuse_or_unique(&p.output_dir, &rel, &ext, image_name, &book.taken);
                book.taken.insert(path.clone());
                let sidecar = p
                    .file
                    .manifest()
                    .output
                    .sidecar
                    .then(|| self.sidecar(job, node, image_name, item, batch_id));
                planned.push(Planned {
                    image_name: (*image_name).clone(),
                    path,
                    sidecar,
                    on_disk: false,
                });
            }
        }
        Ok(planned)
    }

    fn sidecar(
        &self,
        job: &Job,
        node: &OutputNode,
        image_name: &str,
        item: &QueueItem,
        batch_id: &str,
    ) -> Sidecar {
        let inputs = self.named_inputs(job);
        let seed = inputs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("seed") || k.ends_with(".seed"))
            .map(|(_, v)| v.clone());
        Sidecar {
            manifest: self.name.clone(),
            workflow: self.prepared.workflow_ref.clone(),
            server: self.server.clone(),
            run_id: self.run_id.clone(),
            job: job.index,
            inputs,
            sweep: sweep_map(job),
            seed,
            node: json!({"id": node.node_id, "label": node.label, "type": node.node_type}),
            image_name: image_name.to_owned(),
            item_id: item.item_id,
            batch_id: batch_id.to_owned(),
            session_id: item.session_id.clone(),
            times: json!({
                "created_at": item.created_at,
                "started_at": item.started_at,
                "completed_at": item.completed_at,
            }),
        }
    }

    fn named_inputs(&self, job: &Job) -> Map<String, Value> {
        job.inputs
            .iter()
            .map(|(system, value)| {
                let name = self
                    .prepared
                    .expansion
                    .inputs
                    .get(system)
                    .map_or_else(|| system.clone(), |i| i.user_name.clone());
                (name, value.display_json())
            })
            .collect()
    }

    fn record_downloads(
        &self,
        item_id: i64,
        written: Vec<Planned>,
        failed: Vec<(Planned, String)>,
        book: &mut Book,
        journal: &mut Journal,
    ) -> Result<(), crate::Error> {
        let Some((slot, _)) = book.items.get(&item_id).cloned() else {
            return Ok(());
        };
        let out_dir = &self.prepared.output_dir;
        let mut files = Vec::new();
        for file in written {
            let rel = file
                .path
                .strip_prefix(out_dir)
                .unwrap_or(&file.path)
                .to_path_buf();
            if !file.on_disk {
                journal.append(&Entry::Downloaded {
                    job: slot.key.clone(),
                    image_name: file.image_name.clone(),
                    file: rel.clone(),
                })?;
            }
            book.written
                .entry(file.image_name.clone())
                .or_insert(file.path.clone());
            files.push(rel);
        }
        if failed.is_empty() {
            journal.append(&Entry::Finished {
                job: slot.key.clone(),
                item_id,
                status: "completed".to_owned(),
                error: None,
            })?;
            book.files
                .entry(slot.job)
                .or_default()
                .extend(files.iter().cloned());
            if book.session_ended(slot.job) && !book.failed_jobs.contains(&slot.job) {
                book.completed.insert(slot.job);
                self.reporter.event(&RunEvent::JobCompleted {
                    manifest: self.name.clone(),
                    job: slot.job,
                    item_id,
                    files: book.files[&slot.job]
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect(),
                });
            }
            return Ok(());
        } else {
            let names: Vec<String> = failed.iter().map(|(f, _)| f.image_name.clone()).collect();
            let error = format!(
                "could not download {}: {}; left on the server",
                names.join(", "),
                failed
                    .iter()
                    .map(|(_, e)| e.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            book.left_on_server
                .entry(slot.job)
                .or_default()
                .extend(names);
            book.session_ended(slot.job);
            self.job_failed(slot.job, item_id, error, book);
        }
        book.files.entry(slot.job).or_default().extend(files);
        Ok(())
    }

    async fn cleanup(
        &self,
        state: &State,
        uploads: &HashMap<PathBuf, String>,
        book: &mut Book,
        journal: &mut Journal,
    ) -> Result<(), crate::Error> {
        let all_done =
            book.failures.is_empty() && book.completed.len() == self.prepared.plan.job_count();
        let on_disk: BTreeSet<String> = book
            .written
            .keys()
            .cloned()
            .chain(state.downloads.values().flat_map(|f| f.keys().cloned()))
            .collect();
        let uploaded: BTreeSet<String> = uploads
            .values()
            .cloned()
            .chain(state.uploads.values().cloned())
            .collect();
        let left: BTreeSet<String> = book.left_on_server.values().flatten().cloned().collect();
        let candidates = images_to_delete(
            &self.prepared.file.manifest().cleanup,
            &Produced {
                on_disk: &on_disk,
                intermediates: &book.intermediates,
                uploaded: &uploaded,
                left_on_server: &left,
                already_deleted: &state.deleted,
            },
            all_done,
        );
        // Outputs and intermediates are deleted only when the server says one of this run's
        // sessions made them: the invocation cache can hand a job an image another session made
        // (maybe another user's), and a pass-through node can list an image the user owns.
        let sessions: BTreeSet<&String> =
            book.sessions.iter().chain(state.sessions.iter()).collect();
        let ours: BTreeSet<String> = self
            .client
            .images()
            .by_names(&candidates)
            .await?
            .into_iter()
            .filter(|dto| {
                dto.session_id
                    .as_ref()
                    .is_some_and(|s| sessions.contains(s))
            })
            .map(|dto| dto.image_name)
            .collect();
        let delete: Vec<String> = candidates
            .into_iter()
            .filter(|name| ours.contains(name) || uploaded.contains(name))
            .collect();
        if delete.is_empty() {
            return Ok(());
        }
        for chunk in delete.chunks(200) {
            let result = self.client.images().delete_many(chunk).await?;
            journal.append(&Entry::Deleted {
                image_names: result.deleted_images.clone(),
            })?;
            if !result.failed_images.is_empty() {
                self.reporter.event(&RunEvent::Warning {
                    manifest: self.name.clone(),
                    message: format!(
                        "could not delete {} server images: {}",
                        result.failed_images.len(),
                        result.failed_images.join(", ")
                    ),
                });
            }
        }
        self.reporter.event(&RunEvent::CleanedUp {
            manifest: self.name.clone(),
            images: delete.len(),
        });
        Ok(())
    }

    fn summary(&self, job: &Job, book: &Book) -> JobSummary {
        let failure = book.failures.iter().find(|f| f.job == job.index);
        let status = if book.completed.contains(&job.index) {
            "completed"
        } else if failure.is_some() {
            "failed"
        } else {
            "not_run"
        };
        JobSummary {
            run_id: self.run_id.clone(),
            job: job.index,
            status: status.to_owned(),
            item_id: book
                .items
                .iter()
                .filter(|(_, (s, _))| s.job == job.index)
                .map(|(id, _)| *id)
                .min()
                .or(failure.map(|f| f.item_id)),
            inputs: self.named_inputs(job),
            sweep: sweep_map(job),
            files: book.files.get(&job.index).cloned().unwrap_or_default(),
            left_on_server: book
                .left_on_server
                .get(&job.index)
                .cloned()
                .unwrap_or_default(),
            server: book
                .left_on_server
                .contains_key(&job.index)
                .then(|| self.server.clone()),
            error: failure.map(|f| f.error.clone()),
        }
    }
}

/// The server images of a run, by what the cleanup policy says of them.
struct Produced<'a> {
    /// Outputs journaled as safely on disk.
    on_disk: &'a BTreeSet<String>,
    /// Images of intermediate (or non-output) nodes of the run's items.
    intermediates: &'a BTreeSet<String>,
    /// Images the run uploaded.
    uploaded: &'a BTreeSet<String>,
    /// Outputs that could not be downloaded.
    left_on_server: &'a BTreeSet<String>,
    /// Images an earlier run already deleted.
    already_deleted: &'a BTreeSet<String>,
}

/// What the cleanup deletes: outputs only once they are on disk (and never one that could not
/// be downloaded, even if it is also an intermediate or an upload), intermediates and uploads as
/// the policy says, nothing already deleted.
fn images_to_delete(policy: &Cleanup, produced: &Produced<'_>, all_done: bool) -> Vec<String> {
    let mut delete: BTreeSet<String> = BTreeSet::new();
    if policy.outputs == OutputsPolicy::AfterDownload {
        delete.extend(produced.on_disk.iter().cloned());
    }
    if policy.intermediates == IntermediatesPolicy::Delete {
        delete.extend(produced.intermediates.iter().cloned());
    }
    let uploads_go = match policy.uploads {
        UploadsPolicy::Always => true,
        UploadsPolicy::OnSuccess => all_done,
        UploadsPolicy::Never => false,
    };
    if uploads_go {
        delete.extend(produced.uploaded.iter().cloned());
    }
    delete
        .into_iter()
        .filter(|n| !produced.left_on_server.contains(n) && !produced.already_deleted.contains(n))
        .collect()
}

/// Resolves a [`super::batch::model_ref`] against the server's installed models.
async fn resolve_model(
    client: &Client,
    reference: &str,
) -> Result<crate::client::ModelIdentifier, crate::Error> {
    if let Some(key) = reference.strip_prefix("key:") {
        return client
            .models()
            .get(key)
            .await
            .map(|m| m.identifier())
            .map_err(|e| RunError::Model(e).into());
    }
    let name = reference.strip_prefix("name:").unwrap_or(reference);
    client
        .models()
        .resolve(name, None, None)
        .await
        .map_err(|e| RunError::Model(e).into())
}

/// A fingerprint of the plan (its jobs' values), recorded with each run.
fn plan_hash(plan: &Plan) -> String {
    let jobs: Vec<Value> = plan
        .jobs
        .iter()
        .map(|j| {
            json!([
                j.index,
                j.run,
                j.inputs
                    .iter()
                    .map(|(k, v)| json!([k, v.display_json()]))
                    .collect::<Vec<_>>()
            ])
        })
        .collect();
    let digest = Sha256::digest(Value::Array(jobs).to_string().as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// The path for an output: the file already written there for the same server image (a run
/// that crashed after writing it), else a fresh unique path.
fn reuse_or_unique(
    dir: &Path,
    rel: &Path,
    ext: &str,
    image_name: &str,
    taken: &HashSet<PathBuf>,
) -> PathBuf {
    let mut first = rel.as_os_str().to_owned();
    first.push(".");
    first.push(ext);
    let first = dir.join(first);
    if !taken.contains(&first) {
        if let Ok(text) = std::fs::read_to_string(Sidecar::path_for(&first)) {
            let same = serde_json::from_str::<Value>(&text)
                .ok()
                .is_some_and(|v| v["image_name"] == image_name);
            if same {
                return first;
            }
        }
    }
    unique_path(dir, rel, ext, taken)
}

async fn copy_atomic(from: &Path, to: &Path) -> Result<(), String> {
    let bytes = crate::fs::tokio::read(from)
        .await
        .map_err(|e| e.to_string())?;
    let to = to.to_path_buf();
    tokio::task::spawn_blocking(move || crate::fs::write_atomic(&to, &bytes))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// A job's sweep values, by sweep key.
fn sweep_map(job: &Job) -> Map<String, Value> {
    job.sweep
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Today's date (`YYYY-MM-DD`) and time (`HHMMSS`), UTC.
pub(super) fn now_utc() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60),
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn cleanup_never_deletes_what_is_not_on_disk_and_follows_the_policy() {
        let on_disk = set(&["out1", "out2"]);
        let intermediates = set(&["mid", "out3"]);
        let uploaded = set(&["up"]);
        let left = set(&["out3"]);
        let deleted = set(&["out2"]);
        let produced = Produced {
            on_disk: &on_disk,
            intermediates: &intermediates,
            uploaded: &uploaded,
            left_on_server: &left,
            already_deleted: &deleted,
        };
        let mut policy = Cleanup::default();
        // Defaults: outputs after download, intermediates deleted, uploads on success.
        assert_eq!(
            images_to_delete(&policy, &produced, true),
            ["mid", "out1", "up"]
        );
        // A job failed: the uploads stay for a retry.
        assert_eq!(images_to_delete(&policy, &produced, false), ["mid", "out1"]);
        policy.uploads = UploadsPolicy::Always;
        policy.outputs = OutputsPolicy::Never;
        policy.intermediates = IntermediatesPolicy::Keep;
        assert_eq!(images_to_delete(&policy, &produced, false), ["up"]);
        policy.uploads = UploadsPolicy::Never;
        assert!(images_to_delete(&policy, &produced, true).is_empty());
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_417), (2025, 11, 25));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
