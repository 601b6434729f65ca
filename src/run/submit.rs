//! Submitting a window's jobs: models by name resolved (once per name), the local images an
//! enqueue needs uploaded (each file once per server, by content, reusing what an earlier run
//! uploaded while the server still has it), the batch journaled before it is sent, the answer journaled after. A full queue takes part of a
//! batch or none: the rest is handed back and tried again later. A server that does not answer
//! is waited for; an enqueue whose answer was lost is looked up by its batch id before it is
//! sent again, so nothing runs twice.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::coalesce::{Answer, Share, Ticket, Withdrawn};
use super::error::RunError;
use super::journal::Entry;
use super::key::{ItemRef, JobKey, SessionKey};
use super::lane::Uploads;
use super::ledger::{Ledger, Slot};
use super::prepare::Prepared;
use super::progress::RunEvent;
use super::running::Run;
use crate::client::{Client, ClientError, UploadOptions};
use crate::manifest::{EnqueuePlan, InputKind, Job, LocalImage, Plan};
use crate::workflow::{Batch, ConvertOptions, EnqueueBatch, InputRef};

/// What the submitting of a window's jobs left to do.
#[derive(Debug, Default)]
pub(super) struct Submitted {
    /// Jobs the server did not take (a full queue, or Ctrl-C during an outage): submit later.
    pub(super) handed_back: Vec<usize>,
    /// Whether the queue was full.
    pub(super) queue_full: bool,
    /// Why the server cannot take jobs (it stopped answering past the wait, or lacks a model
    /// the jobs name): it leaves the run when another server can take its jobs, else the run
    /// stops with this error. Its jobs are handed back.
    pub(super) gone: Option<RunError>,
}

/// An enqueue the server took: its batch, the sessions per job, and the run's items (fewer
/// than asked when the queue was full).
struct Sent {
    batch_id: String,
    per_job: usize,
    items: Vec<ItemRef>,
}

impl Run<'_> {
    /// Submits `jobs` to lane `i` (one enqueue per group of equal non-batchable values) and
    /// follows their items.
    pub(super) async fn submit(&mut self, i: usize, jobs: Vec<Job>) -> Result<Submitted, RunError> {
        let workflow_hash = &self.ctx.prepared.workflow_hash;
        let keys: HashMap<usize, JobKey> = jobs
            .iter()
            .map(|j| (j.index, JobKey::of(j, workflow_hash)))
            .collect();
        let plan = Plan::from_jobs(jobs, &self.ctx.prepared.expansion.inputs);
        let mut out = Submitted::default();
        for enqueue in &plan.enqueues {
            if self.ctx.cancel.is_cancelled() || out.gone.is_some() {
                out.handed_back.extend(&enqueue.job_indices);
                continue;
            }
            let slots: Vec<(usize, JobKey)> =
                enqueue.job_indices.iter().map(|i| (*i, keys[i])).collect();
            let sent = self.enqueue(i, enqueue, &slots).await;
            let sent = match sent {
                Ok(sent) => sent,
                // A server that is gone or lacks a model: the jobs go elsewhere, if there is
                // an elsewhere.
                Err(e) if leaves_run(&e) => {
                    out.gone = Some(e);
                    out.handed_back.extend(&enqueue.job_indices);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(sent) = sent else {
                out.handed_back.extend(&enqueue.job_indices);
                continue;
            };
            self.follow(i, &sent, &slots, &mut out).await?;
        }
        Ok(out)
    }

    /// Follows the items of an enqueue the server took; a job the full queue took only part
    /// of is taken back and handed back whole.
    async fn follow(
        &mut self,
        i: usize,
        sent: &Sent,
        slots: &[(usize, JobKey)],
        out: &mut Submitted,
    ) -> Result<(), RunError> {
        let per_job = sent.per_job;
        for (n, &(job, key)) in slots.iter().enumerate() {
            let items: Vec<ItemRef> = sent
                .items
                .iter()
                .skip(n * per_job)
                .take(per_job)
                .copied()
                .collect();
            if items.len() == per_job {
                self.ledger.expect_sessions(job, per_job);
                for (s, item) in items.iter().enumerate() {
                    let slot = Slot {
                        job,
                        key: key.session(per_job, s),
                        batch: sent.batch_id.clone(),
                    };
                    self.ledger.track(*item, slot);
                }
                self.lanes[i].watch(items);
            } else {
                // The full queue took none or only some of the job's sessions: take those
                // back and submit the job whole later.
                for (s, item) in items.iter().enumerate() {
                    self.lanes[i].client.queue().cancel_item(item.id()).await?;
                    self.ledger
                        .withdraw_session(*item, key.session(per_job, s))?;
                }
                out.handed_back.push(job);
                out.queue_full = true;
            }
        }
        Ok(())
    }

    /// Resolves the models of one enqueue on lane `i` and uploads its images, then journals and
    /// sends it; `None` when Ctrl-C came while the server was down.
    async fn enqueue(
        &mut self,
        i: usize,
        enqueue: &EnqueuePlan,
        slots: &[(usize, JobKey)],
    ) -> Result<Option<Sent>, RunError> {
        let p = self.ctx.prepared;
        self.lanes[i]
            .resolve_models(&p.workflow, &p.expansion.inputs, enqueue)
            .await?;
        self.upload_for(i, enqueue).await?;
        let batch_id = uuid::Uuid::new_v4().to_string();
        let batch = {
            let lane = &self.lanes[i];
            let p = self.ctx.prepared;
            let image_name = |image: &LocalImage| lane.uploads.name(image);
            let options = ConvertOptions {
                destination: Some(format!("invk-run:{}", self.ctx.run_id)),
                origin: Some("invk-run".to_owned()),
                batch_id: Some(batch_id.clone()),
                ..ConvertOptions::default()
            };
            build_batch(
                p,
                enqueue,
                &image_name,
                &|system, value| lane.model_id(&p.workflow, system, value),
                &options,
            )?
        };
        let sessions = usize::try_from(batch.session_count()).unwrap_or(usize::MAX);
        let per_job = (sessions / slots.len().max(1)).max(1);
        let keys: Vec<SessionKey> = slots
            .iter()
            .flat_map(|(_, key)| (0..per_job).map(move |n| key.session(per_job, n)))
            .collect();
        if let Shared::Done(sent) = self.enqueue_shared(i, &batch, &keys, per_job).await? {
            return Ok(sent);
        }
        let count = keys.len();
        self.ledger.record(Entry::EnqueueIntent {
            batch_id: batch_id.clone(),
            jobs: keys,
            first: 0,
            server: self.lanes[i].number,
        })?;
        let request = EnqueueBatch {
            batch,
            prepend: false,
        };
        loop {
            let sent = match self.lanes[i].client.queue().enqueue_batch(&request).await {
                Ok(result) => Ok(result.item_ids),
                Err(ClientError::QueueFull { result, .. }) => Ok(result.item_ids),
                Err(e) if e.is_unreachable() => Err(crate::error_chain::error_chain(&e)),
                Err(e) => return Err(e.into()),
            };
            match sent {
                Ok(ids) => {
                    self.server_up(i);
                    return self.enqueued(i, &batch_id, per_job, ids).map(Some);
                }
                // The request may or may not have reached the server: wait for it, then look
                // the batch up before sending it again.
                Err(error) => match self
                    .recover_after_loss(i, &batch_id, (0, count), &error)
                    .await?
                {
                    Recovery::Found(ids) => {
                        return self.enqueued(i, &batch_id, per_job, ids).map(Some);
                    }
                    Recovery::Missing => {}
                    Recovery::Cancelled => return Ok(None),
                },
            }
        }
    }

    /// Hands a batch to the run's coalescer, if it has one: `Alone` when it shares no batch
    /// with other runs' (then the run sends its own), else what became of the run's part of the
    /// shared one (`None`: nothing of it reached the server, or Ctrl-C came while the server
    /// was down; the jobs are submitted again).
    async fn enqueue_shared(
        &mut self,
        i: usize,
        batch: &Batch,
        keys: &[SessionKey],
        per_job: usize,
    ) -> Result<Shared, RunError> {
        let Some(coalescer) = &self.ctx.coalescer else {
            return Ok(Shared::Alone);
        };
        let lane = &self.lanes[i];
        let share = match coalescer
            .join(
                &self.ctx.name,
                &lane.url,
                &lane.client,
                batch,
                &self.ctx.cancel,
            )
            .await
        {
            Ok(Ticket::Alone) => return Ok(Shared::Alone),
            Ok(Ticket::Shared(share)) => share,
            // Ctrl-C before it was sent: nothing was journaled or sent.
            Err(Withdrawn) => return Ok(Shared::Done(None)),
        };
        let Share {
            batch_id,
            first,
            journaled,
            answer,
        } = share;
        // Journaled before it is sent, as the run's own batch would be; if this fails, dropping
        // `journaled` keeps the shared batch from being sent at all.
        self.ledger.record(Entry::EnqueueIntent {
            batch_id: batch_id.clone(),
            jobs: keys.to_vec(),
            first,
            server: self.lanes[i].number,
        })?;
        let _ = journaled.send(());
        let sent = match answer.await {
            Ok(Answer::Items(ids)) => {
                self.server_up(i);
                Some(self.enqueued(i, &batch_id, per_job, ids)?)
            }
            Ok(Answer::Refused) => return Ok(Shared::Alone),
            Ok(Answer::Lost(error)) => match self
                .recover_after_loss(i, &batch_id, (first, keys.len()), &error)
                .await?
            {
                Recovery::Found(ids) => Some(self.enqueued(i, &batch_id, per_job, ids)?),
                // Never arrived: the jobs are submitted again, in a batch of their own or
                // shared anew.
                Recovery::Missing | Recovery::Cancelled => None,
            },
            Err(_) => None,
        };
        Ok(Shared::Done(sent))
    }

    /// After an enqueue to lane `i` whose answer was lost: waits for the server, then looks up
    /// the batch's items (the `count` from `first` on that are the run's).
    async fn recover_after_loss(
        &mut self,
        i: usize,
        batch_id: &str,
        (first, count): (usize, usize),
        error: &str,
    ) -> Result<Recovery, RunError> {
        self.server_down(i, error)?;
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.lanes[i].health.backoff()) => {}
                () = self.ctx.cancel.cancelled() => return Ok(Recovery::Cancelled),
            }
            match recover_batch(&self.lanes[i].client, batch_id, first, count).await {
                Ok(Some(ids)) => {
                    self.server_up(i);
                    return Ok(Recovery::Found(ids));
                }
                Ok(None) => return Ok(Recovery::Missing),
                Err(RunError::Client(e)) if e.is_unreachable() => {
                    self.server_down(i, &crate::error_chain::error_chain(&e))?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Journals an enqueue's answer: the run's items on lane `i`.
    fn enqueued(
        &mut self,
        i: usize,
        batch_id: &str,
        per_job: usize,
        item_ids: Vec<i64>,
    ) -> Result<Sent, RunError> {
        let lane = &self.lanes[i];
        let items: Vec<ItemRef> = item_ids.into_iter().map(|id| lane.item(id)).collect();
        self.ledger.record(Entry::Enqueued {
            batch_id: batch_id.to_owned(),
            item_ids: items.clone(),
        })?;
        if !items.is_empty() {
            self.ctx.tell(&RunEvent::Enqueued {
                manifest: self.ctx.name.clone(),
                batch_id: batch_id.to_owned(),
                items: items.len(),
            });
        }
        Ok(Sent {
            batch_id: batch_id.to_owned(),
            per_job,
            items,
        })
    }
}

/// Finds the run's items of a batch whose enqueue answer was lost: the `count` from `first` on
/// (a batch shared with other runs holds theirs too); `None` when the server has none of the
/// batch (the enqueue never arrived).
pub(super) async fn recover_batch(
    client: &Client,
    batch_id: &str,
    first: usize,
    count: usize,
) -> Result<Option<Vec<i64>>, RunError> {
    let status = client.queue().batch_status(batch_id).await?;
    if status.total == 0 {
        return Ok(None);
    }
    let mut ids = client.queue().item_ids_of_batch(batch_id).await?;
    ids.sort_unstable();
    Ok(Some(super::merge::slice(&ids, first, count)))
}

/// Whether an error of a server takes it out of the run (when another server can take its
/// jobs) rather than failing the enqueue.
fn leaves_run(e: &RunError) -> bool {
    match e {
        RunError::ServerGone { .. } | RunError::Model(_) => true,
        RunError::Client(e) => e.is_unreachable(),
        _ => false,
    }
}

/// What became of a batch handed to the coalescer.
enum Shared {
    /// It shares no batch: the run sends its own.
    Alone,
    /// The run's part of a shared batch, if it reached the server.
    Done(Option<Sent>),
}

/// How the wait for an enqueue whose answer was lost ended.
enum Recovery {
    /// The server has the batch: the run's item ids.
    Found(Vec<i64>),
    /// The server has none of it: it never arrived.
    Missing,
    /// Ctrl-C came first.
    Cancelled,
}

/// The pause before trying a full queue again.
pub(super) const QUEUE_FULL_PAUSE: Duration = Duration::from_secs(2);

impl Run<'_> {
    /// Uploads to lane `i` the images an enqueue needs that are not on it yet.
    pub(super) async fn upload_for(
        &mut self,
        i: usize,
        enqueue: &EnqueuePlan,
    ) -> Result<(), RunError> {
        for image in enqueue.local_images() {
            if self.lanes[i].uploads.by_path.contains_key(&image.path) {
                continue;
            }
            let bytes = crate::fs::read(&image.path)?;
            let sha = format!("{:x}", Sha256::digest(&bytes));
            drop(bytes);
            let lane = &mut self.lanes[i];
            let known = match lane.uploads.by_hash.get(&sha) {
                Some(name) => Some(name.clone()),
                None => earlier_upload(&lane.client, &sha, &mut lane.uploads, &self.ledger).await?,
            };
            let name = match known {
                Some(name) => name,
                None => self.upload(i, image, &sha).await?,
            };
            let uploads = &mut self.lanes[i].uploads;
            uploads.by_hash.insert(sha, name.clone());
            uploads.by_path.insert(image.path.clone(), name);
        }
        Ok(())
    }

    /// Uploads one image (its content hash `sha`) to lane `i` and journals it.
    async fn upload(
        &mut self,
        i: usize,
        image: &LocalImage,
        sha: &str,
    ) -> Result<String, RunError> {
        let dto = (self.lanes[i].client.images())
            .upload(&image.path, &UploadOptions::default())
            .await?;
        self.ledger.record(Entry::Uploaded {
            sha256: sha.to_owned(),
            path: image.path.clone(),
            image_name: dto.image_name.clone(),
        })?;
        self.ctx.tell(&RunEvent::Uploaded {
            manifest: self.ctx.name.clone(),
            path: image.written.clone(),
            image_name: dto.image_name.clone(),
        });
        Ok(dto.image_name)
    }
}

/// An earlier run's upload of the same content, if the server still has it (it may be another
/// server, or someone cleaned up).
async fn earlier_upload(
    client: &Client,
    sha: &str,
    uploads: &mut Uploads,
    ledger: &Ledger,
) -> Result<Option<String>, RunError> {
    let state = ledger.state();
    if state.uploads_of(sha).next().is_none() {
        return Ok(None);
    }
    if uploads.earlier.is_none() {
        let earlier: Vec<String> = state
            .upload_names()
            .filter(|name| !state.deleted.contains(*name))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let there = client
            .images()
            .by_names(&earlier)
            .await?
            .into_iter()
            .map(|dto| dto.image_name)
            .collect();
        uploads.earlier = Some(there);
    }
    let there = uploads.earlier.as_ref();
    Ok(state
        .uploads_of(sha)
        .find(|name| there.is_some_and(|t| t.contains(*name)))
        .cloned())
}

/// Builds the batch of one enqueue of `prepared`: its workflow with the enqueue's fixed values
/// set, converted, with the varying values as batch data (what the dry run shows, too). `image_name` names
/// uploaded local images; `model` gives the identifier of a model value given by name or key
/// (the input's system name, its value).
///
/// # Errors
/// A value the workflow refuses, or a model `model` does not know.
pub(super) fn build_batch(
    prepared: &Prepared,
    enqueue: &EnqueuePlan,
    image_name: &impl Fn(&LocalImage) -> String,
    model: &dyn Fn(&str, &Value) -> Option<Value>,
    options: &ConvertOptions,
) -> Result<Batch, RunError> {
    let mut workflow = prepared.workflow.clone();
    for (system, value) in &enqueue.fixed {
        let mut json = value.to_json(image_name);
        if (prepared.expansion.inputs)
            .get(system)
            .is_some_and(|i| i.kind == InputKind::Model)
        {
            if let Some(id) = model(system, &json) {
                json = id;
            }
        }
        workflow.set(&InputRef::parse(system), json)?;
    }
    let mut batch = workflow.to_batch(&ConvertOptions {
        runs: enqueue.runs(),
        ..options.clone()
    })?;
    if let Some(mut data) = enqueue.batch_data(image_name) {
        // Our zip group goes first: the server's product makes it the slowest-varying, so
        // each job's sessions are consecutive.
        data.extend(batch.data.take().unwrap_or_default());
        batch.data = Some(data);
    }
    Ok(batch)
}
