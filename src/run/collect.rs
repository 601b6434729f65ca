//! Collecting what a finished item made: its session and intermediates journaled, each output
//! named from the manifest's templates, downloaded (a server image downloaded once per run and
//! copied after that, see [`super::download`]) and placed with its sidecar under the output
//! folder's rules ([`crate::fs::place`]: no links, nothing replaced, sidecars follow their
//! file), and every file journaled once it is on disk. An output that cannot be saved fails its
//! job and stays on the server (the summary's `left_on_server`).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::download::{DownloadResult, Have, Planned, SIDECAR, SaveError};
use super::error::RunError;
use super::journal::{Entry, ItemEnd, Journal};
use super::key::ItemRef;
use super::ledger::{Slot, withdrawn_in};
use super::progress::RunEvent;
use super::running::Run;
use super::server_fault::server_fault;
use super::summary::{Sidecar, sweep_map};
use crate::client::{NodeOutput, QueueItem, QueueItemStatus};
use crate::fs::output_tree::sanitize_relative;
use crate::fs::place::Name;
use crate::manifest::{Job, OutputVars};
use crate::workflow::OutputNode;

/// How an item's end affects its job.
pub(super) enum Ended {
    /// Recorded (the job completed, failed, or waits for its other sessions or downloads).
    Recorded,
    /// A server restart cancelled it, or the server failed it by a transient fault of its own:
    /// submit the job again.
    Resubmit(usize),
}

/// A finished item of the run and what it runs.
pub(super) struct Made<'i> {
    /// The item, as the server tells it.
    pub(super) item: &'i QueueItem,
    /// Which item of the run it is.
    pub(super) at: ItemRef,
    /// What it runs.
    pub(super) slot: &'i Slot,
    /// Its job.
    pub(super) job: &'i Job,
}

impl Run<'_> {
    /// Item `at` ended as `item` says: a failure is recorded; a completion's outputs are
    /// planned and their downloads started. A cancel the run did not ask for (it journals
    /// every take-back: Ctrl-C, `invk-run cancel`, a server leaving the pool) is a server
    /// restart's, whenever the restart was and whether or not the run saw the server go (a
    /// quick restart between two polls, a restart while the runner itself was down): the job is
    /// submitted again.
    pub(super) fn finished(&mut self, at: ItemRef, item: QueueItem) -> Result<Ended, RunError> {
        let Some(slot) = self.ledger.slot(at).cloned() else {
            return Ok(Ended::Recorded);
        };
        if item.status == QueueItemStatus::Canceled
            && let Some(ended) = self.canceled(at, &slot, &item)?
        {
            return Ok(ended);
        }
        let outputs = item.outputs();
        let output_nodes = self.ctx.prepared.workflow.outputs();
        // Journal the item's session and its intermediate images first, so that a run killed
        // from here on still cleans them up when it is resumed.
        let intermediates: Vec<String> = outputs
            .iter()
            .filter(|(node_id, out)| {
                out.is_intermediate || !output_nodes.iter().any(|o| &o.node_id == *node_id)
            })
            .flat_map(|(_, out)| out.images.iter().cloned())
            .collect();
        self.ledger.record(Entry::Produced {
            item_id: at,
            session_id: item.session_id.clone(),
            images: intermediates,
            found: false,
        })?;
        if item.status == QueueItemStatus::Failed
            && let Some(fault) = server_fault(
                item.error_type.as_deref(),
                item.error_message.as_deref(),
                item.error_traceback.as_deref(),
            )
            && let Some(n) = self.ledger.resubmit(slot.job)
        {
            self.ledger.withdraw(at)?;
            self.ctx.warn(format!(
                "job {}: queue item {} failed by a fault of the server's own ({fault}); the job is submitted again ({n} of {})",
                slot.job,
                at.id(),
                super::ledger::MAX_RESUBMITS
            ));
            return Ok(Ended::Resubmit(slot.job));
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
            self.session_failed(&slot, at, status, error)?;
            return Ok(Ended::Recorded);
        }
        let job = self.ctx.prepared.expansion.job(slot.job);
        let made = Made {
            item: &item,
            at,
            slot: &slot,
            job: &job,
        };
        let planned = match self.plan_files(&made, &outputs) {
            Ok(planned) => planned,
            Err(e) => {
                // A name the templates cannot make for this job fails the job, not the run;
                // its outputs stay on the server (its intermediates go with the cleanup).
                self.ledger.item_ended(at);
                let names = output_nodes
                    .iter()
                    .filter_map(|node| outputs.get(&node.node_id))
                    .filter(|out| !out.is_intermediate)
                    .flat_map(|o| o.images.iter().chain(o.videos.iter()).cloned());
                self.ledger.leave_on_server(slot.job, names);
                self.job_failed(slot.job, at, format!("cannot name its outputs: {e}"));
                return Ok(Ended::Recorded);
            }
        };
        let files = planned
            .into_iter()
            .map(|f| {
                let copy = self.ledger.written(&f.image_name).cloned();
                (f, copy)
            })
            .collect();
        let Some(lane) = self.lane_of(at) else {
            return Ok(Ended::Recorded);
        };
        let client = self.lanes[lane].client.clone();
        let store = std::sync::Arc::clone(&self.ctx.store);
        self.downloads.spawn(client, store, at, files);
        Ok(Ended::Recorded)
    }

    /// Item `at`, of `slot`, ended cancelled. A cancel the run asked for ends it; another (a
    /// server restart's) submits its job again while it may be: journals the images its nodes
    /// made for the cleanup and returns how it ended. `None`: the job may not be submitted
    /// again, and the cancel is recorded as its failure.
    fn canceled(
        &mut self,
        at: ItemRef,
        slot: &Slot,
        item: &QueueItem,
    ) -> Result<Option<Ended>, RunError> {
        if self.cancel_asked_for(at, slot)? {
            // Journaled as taken back already: its job is left for the next run.
            if self.ledger.is_open(at) {
                self.ledger.item_ended(at);
            }
            return Ok(Some(Ended::Recorded));
        }
        if let Some(n) = self.ledger.resubmit(slot.job) {
            // What its nodes made before the cancel is the run's to clean up.
            let images = item
                .outputs()
                .into_values()
                .flat_map(|out| out.images)
                .collect();
            self.ledger.record(Entry::Produced {
                item_id: at,
                session_id: item.session_id.clone(),
                images,
                found: false,
            })?;
            self.ledger.withdraw(at)?;
            let on = self
                .named_url_of(at)
                .map(|url| format!(" on {url}"))
                .unwrap_or_default();
            self.ctx.warn(format!(
                "job {}: queue item {}{on} was cancelled, not by this run (a server restart \
                 cancels what it was running); the job is submitted again ({n} of {})",
                slot.job,
                at.id(),
                super::ledger::MAX_RESUBMITS
            ));
            return Ok(Some(Ended::Resubmit(slot.job)));
        }
        Ok(None)
    }

    /// Whether the run asked for item `at` to be cancelled: journaled as taken back by this
    /// process, or by `invk-run cancel` (another process writing the same journal, read again
    /// from the store for this).
    fn cancel_asked_for(&self, at: ItemRef, slot: &Slot) -> Result<bool, RunError> {
        if self.ledger.took_back(at, slot.key) {
            return Ok(true);
        }
        let on_disk = Journal::read_shard_in(&*self.ctx.store, self.ctx.shard)?;
        Ok(on_disk.is_some_and(|state| withdrawn_in(&state, at, slot.key)))
    }

    /// An item disappeared from the queue before it was seen finishing (someone deleted it):
    /// the job failed; a later run with `--retry-failed` submits it again.
    pub(super) fn vanished(&mut self, at: ItemRef) -> Result<(), RunError> {
        let Some(slot) = self.ledger.slot(at).cloned() else {
            return Ok(());
        };
        let error = "the queue item was deleted from the server before it finished".to_owned();
        self.session_failed(&slot, at, ItemEnd::Canceled, error)
    }

    /// A session ended without its outputs: journaled, and its job reported failed (once).
    fn session_failed(
        &mut self,
        slot: &Slot,
        at: ItemRef,
        status: ItemEnd,
        error: String,
    ) -> Result<(), RunError> {
        self.ledger.record(Entry::Finished {
            job: slot.key,
            item_id: at,
            status,
            error: Some(error.clone()),
        })?;
        self.ledger.item_ended(at);
        self.job_failed(slot.job, at, error);
        Ok(())
    }

    /// A job failed (reported once).
    fn job_failed(&mut self, job: usize, at: ItemRef, error: String) {
        if self.ledger.fail(job, at, error.clone()) {
            self.ctx.tell(&RunEvent::JobFailed {
                manifest: self.ctx.name.clone(),
                job,
                item_id: at.id(),
                error,
                server: self.named_url_of(at),
            });
        }
    }

    /// Where each output of a finished item goes, and what is on disk of it already.
    fn plan_files(
        &mut self,
        made: &Made<'_>,
        outputs: &BTreeMap<String, NodeOutput>,
    ) -> Result<Vec<Planned>, RunError> {
        let p = self.ctx.prepared;
        let earlier = self.ledger.state().downloads.get(&made.slot.key).cloned();
        // Files of an earlier try of this session: journaled for other server images.
        let this_item: HashSet<&String> = outputs
            .values()
            .flat_map(|o| o.images.iter().chain(o.videos.iter()))
            .collect();
        let superseded: HashSet<PathBuf> = earlier
            .iter()
            .flatten()
            .filter(|(image, _)| !this_item.contains(image))
            .map(|(_, file)| file.clone())
            .collect();
        let now = super::clock::now_utc();
        let mut planned = Vec::new();
        for node in &p.workflow.outputs() {
            let Some(out) = outputs.get(&node.node_id) else {
                continue;
            };
            let terminal = !p
                .workflow
                .definition()
                .edges()
                .iter()
                .any(|e| e.source == node.node_id);
            // As the graph sends it: `use_cache` is false unless the workflow says true.
            let cached = p
                .workflow
                .definition()
                .node(&node.node_id)
                .and_then(|n| n.data.as_ref())
                .and_then(|d| d.use_cache)
                .unwrap_or(false);
            let names: Vec<&String> = out.images.iter().chain(out.videos.iter()).collect();
            for (index, image_name) in names.iter().enumerate() {
                let vars = OutputVars {
                    node_id: node.node_id.clone(),
                    node_label: node.label.clone(),
                    node_type: node.node_type.clone(),
                    image_index: index,
                    image_count: names.len(),
                    image_name: (*image_name).clone(),
                    item_id: made.at.id(),
                    batch_id: made.slot.batch.clone(),
                    run_id: self.ctx.run_id.clone(),
                    date: now.0.clone(),
                    time: now.1.clone(),
                };
                // Already on disk from an earlier run of this session (killed before it
                // journaled the session's end): keep that file.
                if let Some(file) = earlier.as_ref().and_then(|d| d.get(image_name.as_str())) {
                    let path = file.clone();
                    if self.ctx.store.exists(&path).unwrap_or(false) {
                        self.ledger.take(made.slot.job, path.clone());
                        planned.push(Planned {
                            image_name: (*image_name).clone(),
                            name: Name::new(file, ""),
                            start: 0,
                            path,
                            sidecar: None,
                            have: Have::Journaled,
                            terminal,
                            cached,
                        });
                        continue;
                    }
                }
                let target = p.expansion.output_path(made.job, &vars)?;
                let rel = sanitize_relative(&target.name.to_string_lossy())
                    .unwrap_or_else(|| PathBuf::from(format!("{}-{index}", made.job.index)));
                let ext = Path::new(image_name.as_str())
                    .extension()
                    .map_or_else(|| "png".to_owned(), |e| e.to_string_lossy().into_owned());
                // The folder is the run's output folder (`output.dir` cannot vary per job).
                let name = Name::new(rel, &ext);
                let (start, path, have) = self.place_of(made, node, image_name, &name, &superseded);
                self.ledger.take(made.slot.job, path.clone());
                let sidecar = (p.file.manifest().output.sidecar
                    && matches!(have, Have::Nothing | Have::Superseded))
                .then(|| self.sidecar(made, node, image_name));
                planned.push(Planned {
                    image_name: (*image_name).clone(),
                    name,
                    start,
                    path,
                    sidecar,
                    have,
                    terminal,
                    cached,
                });
            }
        }
        Ok(planned)
    }

    /// Where output `image_name` of `node` goes under `name`, and what is there: a file written
    /// by an earlier run of this session that was killed before journaling it (its sidecar
    /// names the same server image), or by an earlier try of this session (journaled, or its
    /// sidecar names an item of this session and node) to replace, or else the first free name.
    fn place_of(
        &self,
        made: &Made<'_>,
        node: &OutputNode,
        image_name: &str,
        name: &Name,
        superseded: &HashSet<PathBuf>,
    ) -> (u32, PathBuf, Have) {
        let p = self.ctx.prepared;
        let store = &self.ctx.store;
        let mut have = Have::Nothing;
        // A name the store cannot look at is taken for one with nothing earlier there.
        let found = store
            .find_earlier(name, SIDECAR, &mut |c| {
                if self.ledger.is_taken(c.path) {
                    return false;
                }
                let same = c
                    .companion
                    .is_some_and(|bytes| same_image(bytes, image_name));
                if same && c.has_file {
                    have = Have::Found;
                    return true;
                }
                // A sidecar of this image without its file (a write cut short) is replaced
                // like an earlier try's.
                let earlier_try = same
                    || superseded.contains(c.path)
                    || c.companion
                        .is_some_and(|bytes| self.earlier_try(bytes, made, &node.node_id));
                if earlier_try {
                    have = Have::Superseded;
                }
                earlier_try
            })
            .unwrap_or(None);
        if let Some(path) = found {
            return (0, path, have);
        }
        let suffixes: &[&str] = if p.file.manifest().output.sidecar {
            &[SIDECAR]
        } else {
            &[]
        };
        // A link or a full folder is reported when the file is written.
        let (start, path) = store
            .free_name(name, suffixes, 0, self.ledger.taken())
            .unwrap_or_else(|_| (0, name.candidate(0)));
        (start, path, Have::Nothing)
    }

    /// Whether a sidecar describes an output of an earlier item of this session, made by the
    /// same node (an item of this output folder's journal that ran the session).
    fn earlier_try(&self, sidecar: &[u8], made: &Made<'_>, node_id: &str) -> bool {
        let Ok(v) = serde_json::from_slice::<Value>(sidecar) else {
            return false;
        };
        let state = self.ledger.state();
        v["job"] == made.slot.job
            && v["node"]["id"] == node_id
            && v["item_id"]
                .as_i64()
                .map(|id| {
                    // A sidecar names its item by its id on the server it names.
                    let server = v["server"]
                        .as_str()
                        .and_then(|url| self.ledger.number_of(url));
                    ItemRef::new(server.unwrap_or(0), id)
                })
                .and_then(|item| state.item(item))
                .is_some_and(|(key, batch)| {
                    *key == made.slot.key && v["batch_id"] == batch.as_str()
                })
    }

    /// The sidecar of output `image_name` of `node`, made by the item `made`.
    pub(super) fn sidecar(&self, made: &Made<'_>, node: &OutputNode, image_name: &str) -> Sidecar {
        let (job, item) = (made.job, made.item);
        let inputs = self.named_inputs(job);
        let mut values = sweep_map(job);
        if values.seed.is_none() {
            values.seed = inputs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("seed") || k.ends_with(".seed"))
                .map(|(_, v)| v.clone());
        }
        Sidecar {
            manifest: self.ctx.name.clone(),
            workflow: self.ctx.prepared.workflow_ref.clone(),
            server: self.url_of(made.at),
            run_id: self.ctx.run_id.clone(),
            job: job.index,
            inputs,
            sweep: values,
            node: json!({"id": node.node_id, "label": node.label, "type": node.node_type}),
            image_name: image_name.to_owned(),
            item_id: made.at.id(),
            batch_id: made.slot.batch.clone(),
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
                    .ctx
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
        &mut self,
        done: Result<DownloadResult, tokio::task::JoinError>,
    ) -> Result<(), RunError> {
        match done {
            Ok((at, written, failed)) => self.record_downloads(at, written, failed),
            Err(e) => {
                tracing::error!("a download task ended abnormally: {e}");
                Ok(())
            }
        }
    }

    fn record_downloads(
        &mut self,
        at: ItemRef,
        written: Vec<Planned>,
        failed: Vec<(Planned, SaveError)>,
    ) -> Result<(), RunError> {
        let Some(slot) = self.ledger.slot(at).cloned() else {
            return Ok(());
        };
        let mut files = Vec::new();
        for file in written {
            let rel = file.path.clone();
            if file.have != Have::Journaled {
                self.ledger.record(Entry::Downloaded {
                    job: slot.key,
                    image_name: file.image_name.clone(),
                    file: rel.clone(),
                })?;
                if file.terminal {
                    self.ledger
                        .fresh_output(file.image_name.clone(), file.cached);
                }
            }
            self.ledger.wrote(&file.image_name, &file.path);
            files.push(rel);
        }
        self.ledger.add_files(slot.job, files);
        if failed.is_empty() {
            self.ledger.record(Entry::Finished {
                job: slot.key,
                item_id: at,
                status: ItemEnd::Completed,
                error: None,
            })?;
            if self.ledger.item_ended(at) && !self.ledger.has_failed(slot.job) {
                self.ledger.complete(slot.job, Vec::new());
                self.ctx.tell(&RunEvent::JobCompleted {
                    manifest: self.ctx.name.clone(),
                    job: slot.job,
                    item_id: at.id(),
                    server: self.named_url_of(at),
                    files: self
                        .ledger
                        .files_of(slot.job)
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
                    .map(|(_, e)| crate::error_chain::error_chain(e))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            self.ledger.leave_on_server(slot.job, names);
            self.ledger.item_ended(at);
            self.job_failed(slot.job, at, error);
        }
        Ok(())
    }
}

/// Whether a sidecar's text names `image_name` as its server image.
fn same_image(sidecar: &[u8], image_name: &str) -> bool {
    serde_json::from_slice::<Value>(sidecar).is_ok_and(|v| v["image_name"] == image_name)
}
