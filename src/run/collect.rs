//! Collecting what a finished item made: its session and intermediates journaled, each output
//! named from the manifest's templates, downloaded (atomically, a server image written once per
//! run and copied after that), its sidecar written, and every file journaled once it is on disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::task::JoinSet;

use super::engine::Execution;
use super::journal::{Entry, ItemEnd};
use super::ledger::{Ledger, Slot};
use super::output_path::{sanitize_relative, unique_path};
use super::report::RunEvent;
use super::summary::Sidecar;
use crate::client::{Client, QueueItem, QueueItemStatus};
use crate::manifest::{Job, OutputVars};
use crate::workflow::OutputNode;

/// What a download task hands back: the item, the files written, the files that failed.
pub(super) type DownloadResult = (i64, Vec<Planned>, Vec<(Planned, String)>);

/// One file to write: where, from which server image.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    image_name: String,
    path: PathBuf,
    sidecar: Option<Sidecar>,
    /// Written and journaled by an earlier run: nothing to do.
    on_disk: bool,
}

/// The downloads under way.
pub(super) struct Downloads {
    pub tasks: JoinSet<DownloadResult>,
    semaphore: Arc<tokio::sync::Semaphore>,
    /// How long a download waits for a server that does not answer.
    server_wait: Duration,
}

impl Downloads {
    /// At most `at_once` downloads at a time.
    pub fn new(at_once: usize, server_wait: Duration) -> Downloads {
        Downloads {
            tasks: JoinSet::new(),
            semaphore: Arc::new(tokio::sync::Semaphore::new(at_once)),
            server_wait,
        }
    }
}

/// How an item's end affects its job.
pub(super) enum Ended {
    /// Recorded (the job completed, failed, or waits for its other sessions or downloads).
    Recorded,
    /// A server restart cancelled it: submit the job again.
    Resubmit(usize),
}

impl Execution<'_> {
    /// An item ended: a failure is recorded; a completion's outputs are planned and their
    /// downloads started. `epoch` is the outage count now: an item cancelled after an outage
    /// that began after it was submitted was cancelled by the server's restart.
    pub(super) fn finished(
        &self,
        item: QueueItem,
        epoch: u64,
        ledger: &mut Ledger,
        downloads: &mut Downloads,
    ) -> Result<Ended, crate::Error> {
        let Some(slot) = ledger.items.get(&item.item_id).cloned() else {
            return Ok(Ended::Recorded);
        };
        if item.status == QueueItemStatus::Canceled && epoch > slot.epoch {
            let resubmits = ledger.resubmits.entry(slot.job).or_default();
            if *resubmits < MAX_RESUBMITS {
                *resubmits += 1;
                ledger.record(Entry::Withdrawn {
                    job: slot.key,
                    item_id: item.item_id,
                })?;
                ledger.item_ended(item.item_id);
                return Ok(Ended::Resubmit(slot.job));
            }
        }
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
        ledger.record(Entry::Produced {
            item_id: item.item_id,
            session_id: item.session_id.clone(),
            images: intermediates,
        })?;
        if item.status != QueueItemStatus::Completed {
            let error = match (&item.error_type, &item.error_message) {
                (Some(t), Some(m)) => format!("{t}: {m}"),
                (None, Some(m)) => m.clone(),
                _ => item.status.as_str().to_owned(),
            };
            let status = if item.status == QueueItemStatus::Canceled {
                ItemEnd::Canceled
            } else {
                ItemEnd::Failed
            };
            self.session_failed(&slot, item.item_id, status, error, ledger)?;
            return Ok(Ended::Recorded);
        }
        let job = self.prepared.expansion.job(slot.job);
        let planned = match self.plan_files(&item, &slot, &job, &outputs, ledger) {
            Ok(planned) => planned,
            Err(e) => {
                // A name the templates cannot make for this job fails the job, not the run;
                // its outputs stay on the server.
                ledger.item_ended(item.item_id);
                let names = outputs.values().flat_map(|o| o.images.iter().cloned());
                ledger
                    .left_on_server
                    .entry(slot.job)
                    .or_default()
                    .extend(names);
                self.job_failed(
                    slot.job,
                    item.item_id,
                    format!("cannot name its outputs: {e}"),
                    ledger,
                );
                return Ok(Ended::Recorded);
            }
        };
        let copies = planned
            .iter()
            .filter_map(|f| {
                let existing = ledger.written.get(&f.image_name)?;
                Some((f.image_name.clone(), existing.clone()))
            })
            .collect();
        spawn_download(
            self.client.clone(),
            item.item_id,
            planned,
            copies,
            downloads,
        );
        Ok(Ended::Recorded)
    }

    /// An item disappeared from the queue before it was seen finishing (someone deleted it):
    /// the job failed; a later run with `--retry-failed` submits it again.
    pub(super) fn vanished(&self, item_id: i64, ledger: &mut Ledger) -> Result<(), crate::Error> {
        let Some(slot) = ledger.items.get(&item_id).cloned() else {
            return Ok(());
        };
        let error = "the queue item was deleted from the server before it finished".to_owned();
        self.session_failed(&slot, item_id, ItemEnd::Canceled, error, ledger)
    }

    /// A session ended without its outputs: journaled, and its job reported failed (once).
    fn session_failed(
        &self,
        slot: &Slot,
        item_id: i64,
        status: ItemEnd,
        error: String,
        ledger: &mut Ledger,
    ) -> Result<(), crate::Error> {
        ledger.record(Entry::Finished {
            job: slot.key,
            item_id,
            status,
            error: Some(error.clone()),
        })?;
        ledger.item_ended(item_id);
        self.job_failed(slot.job, item_id, error, ledger);
        Ok(())
    }

    fn job_failed(&self, job: usize, item_id: i64, error: String, ledger: &mut Ledger) {
        if ledger.fail(job, item_id, error.clone()) {
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
        job: &Job,
        outputs: &BTreeMap<String, crate::client::NodeOutput>,
        ledger: &mut Ledger,
    ) -> Result<Vec<Planned>, crate::Error> {
        let p = self.prepared;
        let output_nodes = p.workflow.outputs();
        let earlier = ledger.state.downloads.get(&slot.key).cloned();
        let now = super::clock::now_utc();
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
                    batch_id: slot.batch.clone(),
                    run_id: self.run_id.clone(),
                    date: now.0.clone(),
                    time: now.1.clone(),
                };
                // Already on disk from an earlier run of this session (killed before it
                // journaled the session's end): keep that file.
                if let Some(file) = earlier.as_ref().and_then(|d| d.get(image_name.as_str())) {
                    let path = p.output_dir.join(file);
                    if path.is_file() {
                        ledger.taken.insert(path.clone());
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
                let path = reuse_or_unique(&p.output_dir, &rel, &ext, image_name, &ledger.taken);
                ledger.taken.insert(path.clone());
                let sidecar = p
                    .file
                    .manifest()
                    .output
                    .sidecar
                    .then(|| self.sidecar(job, node, image_name, item, &slot.batch));
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

    /// A job's inputs by user name.
    pub(super) fn named_inputs(&self, job: &Job) -> Map<String, Value> {
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

    /// A finished download task: its files are journaled (a panicked task fails its job).
    pub(super) fn downloaded(
        &self,
        done: Result<DownloadResult, tokio::task::JoinError>,
        ledger: &mut Ledger,
    ) -> Result<(), crate::Error> {
        match done {
            Ok((item_id, written, failed)) => {
                self.record_downloads(item_id, written, failed, ledger)
            }
            Err(e) => {
                tracing::error!("a download task ended abnormally: {e}");
                Ok(())
            }
        }
    }

    fn record_downloads(
        &self,
        item_id: i64,
        written: Vec<Planned>,
        failed: Vec<(Planned, String)>,
        ledger: &mut Ledger,
    ) -> Result<(), crate::Error> {
        let Some(slot) = ledger.items.get(&item_id).cloned() else {
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
                ledger.record(Entry::Downloaded {
                    job: slot.key,
                    image_name: file.image_name.clone(),
                    file: rel.clone(),
                })?;
            }
            ledger
                .written
                .entry(file.image_name.clone())
                .or_insert(file.path.clone());
            files.push(rel);
        }
        ledger.files.entry(slot.job).or_default().extend(files);
        if failed.is_empty() {
            ledger.record(Entry::Finished {
                job: slot.key,
                item_id,
                status: ItemEnd::Completed,
                error: None,
            })?;
            if ledger.item_ended(item_id) && !ledger.has_failed(slot.job) {
                ledger.completed.insert(slot.job);
                self.reporter.event(&RunEvent::JobCompleted {
                    manifest: self.name.clone(),
                    job: slot.job,
                    item_id,
                    files: ledger.files[&slot.job]
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect(),
                });
            }
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
            ledger
                .left_on_server
                .entry(slot.job)
                .or_default()
                .extend(names);
            ledger.item_ended(item_id);
            self.job_failed(slot.job, item_id, error, ledger);
        }
        Ok(())
    }
}

/// How often a server restart may cancel the same job before it counts as failed.
const MAX_RESUBMITS: u32 = 3;

/// Starts writing an item's files: each downloaded (or copied from a file of this run with the
/// same server image) and its sidecar written. A download that fails because the server does
/// not answer is tried again until the server has been gone for `server_wait`.
fn spawn_download(
    client: Client,
    item_id: i64,
    planned: Vec<Planned>,
    copies: std::collections::HashMap<String, PathBuf>,
    downloads: &mut Downloads,
) {
    let semaphore = Arc::clone(&downloads.semaphore);
    let server_wait = downloads.server_wait;
    downloads.tasks.spawn(async move {
        let _permit = semaphore.acquire_owned().await;
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        for file in planned {
            if file.on_disk {
                ok.push(file);
                continue;
            }
            let result = match copies.get(&file.image_name) {
                Some(existing) if existing.is_file() => copy_atomic(existing, &file.path).await,
                _ => download(&client, &file.image_name, &file.path, server_wait).await,
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
}

/// Downloads one image, waiting out an outage of up to `server_wait`.
async fn download(
    client: &Client,
    image_name: &str,
    path: &Path,
    server_wait: Duration,
) -> Result<(), String> {
    let mut down_since: Option<Instant> = None;
    loop {
        match client.images().download(image_name, path).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_unreachable() => {
                let since = *down_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= server_wait {
                    return Err(crate::error_chain::error_chain(&e));
                }
                let pause =
                    (since.elapsed() / 4).clamp(Duration::from_millis(500), Duration::from_secs(5));
                tokio::time::sleep(pause).await;
            }
            Err(e) => return Err(crate::error_chain::error_chain(&e)),
        }
    }
}

/// The path for an output: the file already written there for the same server image (a run
/// that crashed after writing it), else a fresh unique path.
fn reuse_or_unique(
    dir: &Path,
    rel: &Path,
    ext: &str,
    image_name: &str,
    taken: &std::collections::HashSet<PathBuf>,
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
pub(super) fn sweep_map(job: &Job) -> Map<String, Value> {
    job.sweep
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
