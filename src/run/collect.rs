//! Collecting what a finished item made: its session and intermediates journaled, each output
//! named from the manifest's templates, downloaded (a server image downloaded once per run and
//! copied after that) and placed with its sidecar under the output folder's rules
//! ([`crate::fs::place`]: no links, nothing replaced, sidecars follow their file), and every
//! file journaled once it is on disk. An output that cannot be saved fails its job and stays on
//! the server (the summary's `left_on_server`).

use super::RunError;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::task::JoinSet;

use super::execution::Execution;
use super::journal::{Entry, ItemEnd};
use super::key::ItemRef;
use super::ledger::{Ledger, Slot};
use super::progress::RunEvent;
use super::server_fault::server_fault;
use super::summary::{JobValues, Sidecar};
use crate::client::{Client, QueueItem, QueueItemStatus};
use crate::fs::output_tree::sanitize_relative;
use crate::fs::place::{Name, OutputRoot};
use crate::manifest::{Job, OutputVars};
use crate::workflow::OutputNode;

/// What a download task hands back: the item, the files written, the files that failed.
pub(super) type DownloadResult = (i64, Vec<Planned>, Vec<(Planned, String)>);

/// The suffix of an output's sidecar (`x.png` → `x.png.json`).
const SIDECAR: &str = ".json";

/// One file to write: where, from which server image.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    image_name: String,
    /// Its name before a free suffix is chosen.
    name: Name,
    /// The suffix number planned (the first free one when it was planned).
    start: u32,
    /// Where it goes (once written: where it went).
    path: PathBuf,
    sidecar: Option<Sidecar>,
    /// What is on disk already.
    have: Have,
    /// Its node feeds no other node: once on disk, the image may go from the server while the
    /// run goes (no running session of the run can still be reading it).
    terminal: bool,
}

/// Whether a planned file is on disk already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Have {
    /// Not yet: download (or copy) it.
    Nothing,
    /// Written and journaled by an earlier run.
    Journaled,
    /// Written by an earlier run that was killed before journaling it (its sidecar names the
    /// same server image): journal it.
    Found,
    /// Written by an earlier try of the same session (its item was lost, or its job is tried
    /// again): download it and replace that file, so the job keeps one file per output.
    Superseded,
}

/// The downloads under way.
pub(super) struct Downloads {
    pub tasks: JoinSet<DownloadResult>,
    semaphore: Arc<tokio::sync::Semaphore>,
    /// How long a download waits for a server that does not answer.
    server_wait: Duration,
    /// Items the run gave up (their server left the pool): a download of theirs still under
    /// way places nothing, so that a late result is not written beside the job's new one.
    abandoned: Arc<std::sync::Mutex<HashSet<i64>>>,
}

impl Downloads {
    /// At most `at_once` downloads at a time.
    pub fn new(at_once: usize, server_wait: Duration) -> Downloads {
        Downloads {
            tasks: JoinSet::new(),
            semaphore: Arc::new(tokio::sync::Semaphore::new(at_once)),
            server_wait,
            abandoned: Arc::default(),
        }
    }

    /// Gives items up: what their downloads have not placed yet is not placed.
    pub fn abandon(&self, items: impl IntoIterator<Item = i64>) {
        if let Ok(mut abandoned) = self.abandoned.lock() {
            abandoned.extend(items);
        }
    }
}

/// How an item's end affects its job.
pub(super) enum Ended {
    /// Recorded (the job completed, failed, or waits for its other sessions or downloads).
    Recorded,
    /// A server restart cancelled it, or the server failed it by a transient fault of its own:
    /// submit the job again.
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
    ) -> Result<Ended, RunError> {
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
        if item.status == QueueItemStatus::Failed {
            let fault = server_fault(
                item.error_type.as_deref(),
                item.error_message.as_deref(),
                item.error_traceback.as_deref(),
            );
            let resubmits = ledger.resubmits.get(&slot.job).copied().unwrap_or(0);
            if let Some(fault) = fault.filter(|_| resubmits < MAX_RESUBMITS) {
                ledger.resubmits.insert(slot.job, resubmits + 1);
                ledger.record(Entry::Withdrawn {
                    job: slot.key,
                    item_id: item.item_id,
                })?;
                ledger.item_ended(item.item_id);
                self.reporter.event(&RunEvent::Warning {
                    manifest: self.name.clone(),
                    message: format!(
                        "job {}: queue item {} failed by a fault of the server's own ({fault}); the job is submitted again ({} of {MAX_RESUBMITS})",
                        slot.job,
                        item.item_id,
                        resubmits + 1
                    ),
                });
                return Ok(Ended::Resubmit(slot.job));
            }
        }
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
                // its outputs stay on the server (its intermediates go with the cleanup).
                ledger.item_ended(item.item_id);
                let names = output_nodes
                    .iter()
                    .filter_map(|node| outputs.get(&node.node_id))
                    .filter(|out| !out.is_intermediate)
                    .flat_map(|o| o.images.iter().chain(o.videos.iter()).cloned());
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
        let Some(lane) = self.lane_of(item.item_id) else {
            return Ok(Ended::Recorded);
        };
        spawn_download(
            lane.client.clone(),
            OutputRoot::at(&self.prepared.output_dir),
            item.item_id,
            planned,
            copies,
            downloads,
        );
        Ok(Ended::Recorded)
    }

    /// An item disappeared from the queue before it was seen finishing (someone deleted it):
    /// the job failed; a later run with `--retry-failed` submits it again.
    pub(super) fn vanished(&self, item_id: i64, ledger: &mut Ledger) -> Result<(), RunError> {
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
    ) -> Result<(), RunError> {
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
                item_id: ItemRef(item_id).id(),
                error,
                server: self.pool_url_of(item_id),
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
    ) -> Result<Vec<Planned>, RunError> {
        let p = self.prepared;
        let output_nodes = p.workflow.outputs();
        let earlier = ledger.state.downloads.get(&slot.key).cloned();
        // Files of an earlier try of this session: journaled for other server images.
        let this_item: HashSet<&String> = outputs
            .values()
            .flat_map(|o| o.images.iter().chain(o.videos.iter()))
            .collect();
        let superseded: HashSet<PathBuf> = earlier
            .iter()
            .flatten()
            .filter(|(image, _)| !this_item.contains(image))
            .map(|(_, file)| p.output_dir.join(file))
            .collect();
        let root = OutputRoot::at(&p.output_dir);
        let sidecars = p.file.manifest().output.sidecar;
        let suffixes: &[&str] = if sidecars { &[SIDECAR] } else { &[] };
        let now = super::clock::now_utc();
        let mut planned = Vec::new();
        for node in &output_nodes {
            let Some(out) = outputs.get(&node.node_id) else {
                continue;
            };
            let terminal = !p
                .workflow
                .definition()
                .edges()
                .iter()
                .any(|e| e.source == node.node_id);
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
                        ledger.take(slot.job, path.clone());
                        planned.push(Planned {
                            image_name: (*image_name).clone(),
                            name: Name::new(file, ""),
                            start: 0,
                            path,
                            sidecar: None,
                            have: Have::Journaled,
                            terminal,
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
                let name = Name::new(rel, &ext);
                // Written by an earlier run of this session that was killed before journaling
                // it (its sidecar names the same server image), or by an earlier try of this
                // session (journaled, or its sidecar names an item of this session and node).
                let found = root.find_earlier(&name, SIDECAR, |path, sidecar| {
                    if ledger.taken.contains(path) {
                        return None;
                    }
                    let same = sidecar.is_some_and(|bytes| same_image(bytes, image_name));
                    if same && path.is_file() {
                        return Some(Have::Found);
                    }
                    // A sidecar of this image without its file (a write cut short) is
                    // replaced like an earlier try's.
                    let earlier_try = same
                        || superseded.contains(path)
                        || sidecar.is_some_and(|bytes| {
                            self.earlier_try(bytes, slot, job.index, &node.node_id, ledger)
                        });
                    earlier_try.then_some(Have::Superseded)
                });
                let (start, path, have) = match found {
                    Some((path, have)) => (0, path, have),
                    None => {
                        // A link or a full folder is reported when the file is written.
                        let (start, path) = root
                            .free_candidate(&name, suffixes, 0, &ledger.taken)
                            .unwrap_or_else(|_| (0, p.output_dir.join(name.candidate(0))));
                        (start, path, Have::Nothing)
                    }
                };
                ledger.take(slot.job, path.clone());
                let sidecar = (sidecars && matches!(have, Have::Nothing | Have::Superseded))
                    .then(|| self.sidecar(job, node, image_name, item, &slot.batch));
                planned.push(Planned {
                    image_name: (*image_name).clone(),
                    name,
                    start,
                    path,
                    sidecar,
                    have,
                    terminal,
                });
            }
        }
        Ok(planned)
    }

    /// Whether a sidecar describes an output of an earlier item of this session, made by the
    /// same node (an item of this output folder's journal that ran the session).
    fn earlier_try(
        &self,
        sidecar: &[u8],
        slot: &Slot,
        job: usize,
        node_id: &str,
        ledger: &Ledger,
    ) -> bool {
        let Ok(v) = serde_json::from_slice::<Value>(sidecar) else {
            return false;
        };
        v["job"] == job
            && v["node"]["id"] == node_id
            && v["item_id"]
                .as_i64()
                .map(|id| {
                    // A sidecar names its item by its id on the server it names.
                    let server = v["server"].as_str().and_then(|url| {
                        ledger
                            .state
                            .servers
                            .iter()
                            .find(|(_, u)| *u == url)
                            .map(|(n, _)| *n)
                    });
                    ItemRef::new(server.unwrap_or(0), id).0
                })
                .and_then(|id| ledger.state.item(id))
                .is_some_and(|(key, batch)| *key == slot.key && v["batch_id"] == batch.as_str())
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
        let mut values = sweep_map(job);
        if values.seed.is_none() {
            values.seed = inputs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("seed") || k.ends_with(".seed"))
                .map(|(_, v)| v.clone());
        }
        Sidecar {
            manifest: self.name.clone(),
            workflow: self.prepared.workflow_ref.clone(),
            server: self.url_of(item.item_id),
            run_id: self.run_id.clone(),
            job: job.index,
            inputs,
            sweep: values,
            node: json!({"id": node.node_id, "label": node.label, "type": node.node_type}),
            image_name: image_name.to_owned(),
            item_id: ItemRef(item.item_id).id(),
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
    ) -> Result<(), RunError> {
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
    ) -> Result<(), RunError> {
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
            if file.have != Have::Journaled {
                ledger.record(Entry::Downloaded {
                    job: slot.key,
                    image_name: file.image_name.clone(),
                    file: rel.clone(),
                })?;
                if file.terminal {
                    ledger.fresh_outputs.push(file.image_name.clone());
                }
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
                    item_id: ItemRef(item_id).id(),
                    server: self.pool_url_of(item_id),
                    files: ledger.files[&slot.job]
                        .iter()
                        .map(|f| f.display().to_string())
                        .collect(),
                });
            }
        } else {
            let names: Vec<String> = failed.iter().map(|(f, _)| f.image_name.clone()).collect();
            let error = format!(
                "could not save {}: {}; left on the server",
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

/// How often a server restart (or a transient fault of the server's own, see
/// [`super::server_fault`]) may end the same job before it counts as failed.
const MAX_RESUBMITS: u32 = 3;

/// Starts writing an item's files: each downloaded (or copied from a file of this run with the
/// same server image) and placed with its sidecar. A download that fails because the server
/// does not answer is tried again until the server has been gone for `server_wait`.
fn spawn_download(
    client: Client,
    root: OutputRoot,
    item_id: i64,
    planned: Vec<Planned>,
    copies: std::collections::HashMap<String, PathBuf>,
    downloads: &mut Downloads,
) {
    let semaphore = Arc::clone(&downloads.semaphore);
    let server_wait = downloads.server_wait;
    let abandoned = Arc::clone(&downloads.abandoned);
    downloads.tasks.spawn(async move {
        let _permit = semaphore.acquire_owned().await;
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        for mut file in planned {
            if matches!(file.have, Have::Journaled | Have::Found) {
                ok.push(file);
                continue;
            }
            let copy_from = copies.get(&file.image_name);
            let given_up = || abandoned.lock().is_ok_and(|a| a.contains(&item_id));
            match save(&client, &root, &mut file, copy_from, server_wait, given_up).await {
                Ok(()) => ok.push(file),
                Err(e) => failed.push((file, e)),
            }
        }
        (item_id, ok, failed)
    });
}

/// Writes one planned file: into a temporary file in its folder (downloaded, or copied from
/// `copy_from`), then placed with its sidecar under the first free name from the planned one
/// on. `file.path` becomes where it went.
async fn save(
    client: &Client,
    root: &OutputRoot,
    file: &mut Planned,
    copy_from: Option<&PathBuf>,
    server_wait: Duration,
    given_up: impl Fn() -> bool,
) -> Result<(), String> {
    let chain = |e: &dyn std::error::Error| crate::error_chain::error_chain(e);
    let tmp = root.temporary_for(&file.path).map_err(|e| chain(&e))?;
    match copy_from {
        Some(existing) if existing.is_file() => {
            crate::fs::tokio::copy(existing, &tmp)
                .await
                .map_err(|e| chain(&e))?;
        }
        _ => download(client, &file.image_name, &tmp, server_wait, &given_up).await?,
    }
    // The temporary file goes with `tmp` when this returns.
    if given_up() {
        return Err("the run gave the item up (its server left the pool)".to_owned());
    }
    let sidecar = match &file.sidecar {
        Some(s) => Some(s.to_bytes().map_err(|e| chain(&e))?),
        None => None,
    };
    let companions: Vec<(&str, &[u8])> = sidecar
        .iter()
        .map(|bytes| (SIDECAR, bytes.as_slice()))
        .collect();
    file.path = if file.have == Have::Superseded {
        root.replace(&tmp, &file.path, &companions)
    } else {
        root.place(&tmp, &file.name, &companions, file.start, &HashSet::new())
    }
    .map_err(|e| chain(&e))?;
    Ok(())
}

/// Downloads one image, waiting out an outage of up to `server_wait` (less once the run gives
/// the item up).
async fn download(
    client: &Client,
    image_name: &str,
    path: &Path,
    server_wait: Duration,
    given_up: &impl Fn() -> bool,
) -> Result<(), String> {
    let mut down_since: Option<Instant> = None;
    loop {
        match client.images().download(image_name, path).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_unreachable() => {
                let since = *down_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= server_wait || given_up() {
                    return Err(crate::error_chain::error_chain(&e));
                }
                tokio::time::sleep(super::health::pause_after(since.elapsed())).await;
            }
            Err(e) => return Err(crate::error_chain::error_chain(&e)),
        }
    }
}

/// Whether a sidecar's text names `image_name` as its server image.
fn same_image(sidecar: &[u8], image_name: &str) -> bool {
    serde_json::from_slice::<Value>(sidecar).is_ok_and(|v| v["image_name"] == image_name)
}

/// A job's sweep values, by sweep key, and its seeds: those derived for it, or else the value
/// of an input whose field is named `seed`.
pub(super) fn sweep_map(job: &Job) -> JobValues {
    let seeds: Map<String, Value> = job
        .seeds
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(*v)))
        .collect();
    let seed = seeds.values().next().cloned().or_else(|| {
        job.inputs
            .iter()
            .find(|(system, _)| system.ends_with(".seed"))
            .map(|(_, v)| v.display_json())
    });
    JobValues {
        sweep: job
            .sweep
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        seed,
        seeds,
    }
}
