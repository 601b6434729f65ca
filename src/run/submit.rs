//! Submitting a window's jobs: models by name resolved (once per name), images uploaded, the
//! batch journaled before it is sent, the answer journaled after. A full queue takes part of a
//! batch or none: the rest is handed back and tried again later. A server that does not answer
//! is waited for; an enqueue whose answer was lost is looked up by its batch id before it is
//! sent again, so nothing runs twice.

use super::RunError;
use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::batch::build_batch;
use super::coalesce::{Answer, Coalescer, Share, Ticket, Withdrawn};
use super::execution::{Execution, Lane};
use super::health::Health;
use super::journal::Entry;
use super::key::{ItemRef, JobKey, SessionKey};
use super::ledger::{Ledger, Slot};
use super::progress::RunEvent;
use super::upload::Uploads;
use crate::client::tracker::Tracker;
use crate::client::{ClientError, ModelResolver};
use crate::manifest::{EnqueuePlan, Job, LocalImage, Plan};
use crate::workflow::{Batch, ConvertOptions, EnqueueBatch};

/// What the submitting of a window's jobs left to do.
#[derive(Debug, Default)]
pub(super) struct Submitted {
    /// Jobs the server did not take (a full queue, or Ctrl-C during an outage): submit later.
    pub handed_back: Vec<usize>,
    /// Whether the queue was full.
    pub queue_full: bool,
    /// Of a pool's server: why it cannot take jobs (it stopped answering past the grace, or
    /// lacks a model the jobs name). Its jobs are handed back.
    pub gone: Option<RunError>,
}

/// Per-run caches of the submit step.
#[derive(Debug, Default)]
pub(super) struct Submitter {
    /// Models given by name or key, resolved on the server.
    pub models: ModelResolver,
    /// The run's uploads.
    pub uploads: Uploads,
}

impl Execution<'_> {
    /// Submits `jobs` (one enqueue per group of equal non-batchable values) and follows their
    /// items.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn submit(
        &self,
        lane: &Lane,
        jobs: Vec<Job>,
        submitter: &mut Submitter,
        ledger: &mut Ledger,
        tracker: &mut Tracker,
        health: &mut Health,
        cancel: &CancellationToken,
    ) -> Result<Submitted, RunError> {
        let keys: HashMap<usize, JobKey> = jobs
            .iter()
            .map(|j| (j.index, JobKey::of(j, &self.prepared.workflow_hash)))
            .collect();
        let plan = Plan::from_jobs(jobs, &self.prepared.expansion.inputs);
        let mut out = Submitted::default();
        for enqueue in &plan.enqueues {
            if cancel.is_cancelled() || out.gone.is_some() {
                out.handed_back.extend(&enqueue.job_indices);
                continue;
            }
            let slots: Vec<(usize, JobKey)> =
                enqueue.job_indices.iter().map(|i| (*i, keys[i])).collect();
            let sent = async {
                self.resolve_models(lane, enqueue, &mut submitter.models)
                    .await?;
                self.upload_for(lane, enqueue, &mut submitter.uploads, ledger)
                    .await?;
                self.enqueue(lane, enqueue, &slots, submitter, ledger, health, cancel)
                    .await
            }
            .await;
            let sent = match sent {
                Ok(sent) => sent,
                // A server of a pool that is gone or lacks a model: the jobs go elsewhere.
                Err(e) if self.is_pool() && leaves_pool(&e) => {
                    out.gone = Some(e);
                    out.handed_back.extend(&enqueue.job_indices);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some((batch_id, per_job, item_ids)) = sent else {
                out.handed_back.extend(&enqueue.job_indices);
                continue;
            };
            for (n, &(job, key)) in slots.iter().enumerate() {
                let ids: Vec<i64> = item_ids
                    .iter()
                    .skip(n * per_job)
                    .take(per_job)
                    .copied()
                    .collect();
                if ids.len() == per_job {
                    ledger.expect_sessions(job, per_job);
                    for (s, id) in ids.iter().enumerate() {
                        let slot = Slot {
                            job,
                            key: key.session(per_job, s),
                            batch: batch_id.clone(),
                            epoch: health.epoch,
                        };
                        ledger.track(*id, slot);
                    }
                    tracker.watch(ids.iter().map(|v| ItemRef(*v).id()));
                } else {
                    // The full queue took none or only some of the job's sessions: take those
                    // back and submit the job whole later.
                    for (s, id) in ids.iter().enumerate() {
                        self.withdraw(*id, key.session(per_job, s), ledger).await?;
                    }
                    out.handed_back.push(job);
                    out.queue_full = true;
                }
            }
        }
        Ok(out)
    }

    /// Journals and sends one enqueue; returns its batch id, sessions per job and item ids
    /// (fewer than asked when the queue was full), or `None` when Ctrl-C came while the server
    /// was down.
    #[allow(clippy::too_many_arguments)]
    async fn enqueue(
        &self,
        lane: &Lane,
        enqueue: &EnqueuePlan,
        slots: &[(usize, JobKey)],
        submitter: &Submitter,
        ledger: &mut Ledger,
        health: &mut Health,
        cancel: &CancellationToken,
    ) -> Result<Option<(String, usize, Vec<i64>)>, RunError> {
        let uploads = &submitter.uploads;
        let image_name = |i: &LocalImage| uploads.name(i);
        let batch_id = uuid::Uuid::new_v4().to_string();
        let options = ConvertOptions {
            destination: Some(format!("invk-run:{}", self.run_id)),
            origin: Some("invk-run".to_owned()),
            batch_id: Some(batch_id.clone()),
            ..ConvertOptions::default()
        };
        let batch = build_batch(
            &self.prepared.workflow,
            &self.prepared.expansion.inputs,
            enqueue,
            &image_name,
            &|system, value| {
                super::models::resolved(&submitter.models, &self.prepared.workflow, system, value)
            },
            &options,
        )?;
        let sessions = usize::try_from(batch.session_count()).unwrap_or(usize::MAX);
        let per_job = (sessions / slots.len().max(1)).max(1);
        let keys: Vec<SessionKey> = slots
            .iter()
            .flat_map(|(_, key)| (0..per_job).map(move |n| key.session(per_job, n)))
            .collect();
        if let Some(coalescer) = &self.coalescer {
            if let Shared::Done(sent) = self
                .enqueue_shared(coalescer, &batch, &keys, per_job, ledger, health, cancel)
                .await?
            {
                return Ok(sent);
            }
        }
        let count = keys.len();
        ledger.record(Entry::EnqueueIntent {
            batch_id: batch_id.clone(),
            jobs: keys,
            first: 0,
            server: lane.number,
        })?;
        let request = EnqueueBatch {
            batch,
            prepend: false,
        };
        loop {
            let sent = match lane.client.queue().enqueue_batch(&request).await {
                Ok(result) => Ok(result.item_ids),
                Err(ClientError::QueueFull { result, .. }) => Ok(result.item_ids),
                Err(e) if e.is_unreachable() => Err(crate::error_chain::error_chain(&e)),
                Err(e) => return Err(e.into()),
            };
            match sent {
                Ok(ids) => {
                    health.up(self);
                    return self
                        .enqueued(lane, &batch_id, per_job, ids, ledger)
                        .map(Some);
                }
                // The request may or may not have reached the server: wait for it, then look
                // the batch up before sending it again.
                Err(error) => match self
                    .recover_after_loss(lane, &batch_id, 0, count, &error, health, cancel)
                    .await?
                {
                    Recovery::Found(ids) => {
                        return self
                            .enqueued(lane, &batch_id, per_job, ids, ledger)
                            .map(Some);
                    }
                    Recovery::Missing => {}
                    Recovery::Cancelled => return Ok(None),
                },
            }
        }
    }

    /// Hands a batch to the coalescer: `Alone` when it shares no batch with other runs' (then
    /// the run sends its own), else what became of the run's part of the shared one (`None`:
    /// nothing of it reached the server, or Ctrl-C came while the server was down; the jobs are
    /// submitted again).
    #[allow(clippy::too_many_arguments)]
    async fn enqueue_shared(
        &self,
        coalescer: &Coalescer,
        batch: &Batch,
        keys: &[SessionKey],
        per_job: usize,
        ledger: &mut Ledger,
        health: &mut Health,
        cancel: &CancellationToken,
    ) -> Result<Shared, RunError> {
        // A coalescer is given to one-server runs only.
        let lane = &self.lanes[0];
        let share = match coalescer
            .join(&self.name, &lane.url, &lane.client, batch, cancel)
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
        ledger.record(Entry::EnqueueIntent {
            batch_id: batch_id.clone(),
            jobs: keys.to_vec(),
            first,
            server: lane.number,
        })?;
        let _ = journaled.send(());
        let sent = match answer.await {
            Ok(Answer::Items(ids)) => {
                health.up(self);
                Some(self.enqueued(lane, &batch_id, per_job, ids, ledger)?)
            }
            Ok(Answer::Refused) => return Ok(Shared::Alone),
            Ok(Answer::Lost(error)) => match self
                .recover_after_loss(lane, &batch_id, first, keys.len(), &error, health, cancel)
                .await?
            {
                Recovery::Found(ids) => Some(self.enqueued(lane, &batch_id, per_job, ids, ledger)?),
                // Never arrived: the jobs are submitted again, in a batch of their own or
                // shared anew.
                Recovery::Missing | Recovery::Cancelled => None,
            },
            Err(_) => None,
        };
        Ok(Shared::Done(sent))
    }

    /// After an enqueue whose answer was lost: waits for the server, then looks up the batch's
    /// items (the `count` from `first` on that are the run's).
    #[allow(clippy::too_many_arguments)]
    async fn recover_after_loss(
        &self,
        lane: &Lane,
        batch_id: &str,
        first: usize,
        count: usize,
        error: &str,
        health: &mut Health,
        cancel: &CancellationToken,
    ) -> Result<Recovery, RunError> {
        health.down(self, error)?;
        loop {
            tokio::select! {
                () = tokio::time::sleep(health.backoff()) => {}
                () = cancel.cancelled() => return Ok(Recovery::Cancelled),
            }
            match self.recover_batch(lane, batch_id, first, count).await {
                Ok(Some(ids)) => {
                    health.up(self);
                    return Ok(Recovery::Found(ids));
                }
                Ok(None) => return Ok(Recovery::Missing),
                Err(RunError::Client(e)) if e.is_unreachable() => {
                    health.down(self, &crate::error_chain::error_chain(&e))?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Journals an enqueue's answer: the run's item ids.
    fn enqueued(
        &self,
        lane: &Lane,
        batch_id: &str,
        per_job: usize,
        item_ids: Vec<i64>,
        ledger: &mut Ledger,
    ) -> Result<(String, usize, Vec<i64>), RunError> {
        let item_ids: Vec<i64> = item_ids
            .into_iter()
            .map(|id| ItemRef::new(lane.number, id).0)
            .collect();
        ledger.record(Entry::Enqueued {
            batch_id: batch_id.to_owned(),
            item_ids: item_ids.clone(),
        })?;
        if !item_ids.is_empty() {
            self.reporter.event(&RunEvent::Enqueued {
                manifest: self.name.clone(),
                batch_id: batch_id.to_owned(),
                items: item_ids.len(),
            });
        }
        Ok((batch_id.to_owned(), per_job, item_ids))
    }

    /// Finds the run's items of a batch whose enqueue answer was lost: the `count` from `first`
    /// on (a batch shared with other runs holds theirs too); `None` when the server has none of
    /// the batch (the enqueue never arrived).
    pub(super) async fn recover_batch(
        &self,
        lane: &Lane,
        batch_id: &str,
        first: usize,
        count: usize,
    ) -> Result<Option<Vec<i64>>, RunError> {
        let status = lane.client.queue().batch_status(batch_id).await?;
        if status.total == 0 {
            return Ok(None);
        }
        let mut ids = lane.client.queue().item_ids_of_batch(batch_id).await?;
        ids.sort_unstable();
        Ok(Some(super::merge::slice(&ids, first, count)))
    }

    /// Takes back an item that has not run: cancelled on the server and journaled as withdrawn,
    /// so that its job is submitted again.
    pub(super) async fn withdraw(
        &self,
        item_id: i64,
        key: SessionKey,
        ledger: &mut Ledger,
    ) -> Result<(), RunError> {
        if let Some(lane) = self.lane_of(item_id) {
            lane.client
                .queue()
                .cancel_item(ItemRef(item_id).id())
                .await?;
        }
        ledger.record(Entry::Withdrawn { job: key, item_id })?;
        ledger.item_ended(item_id);
        Ok(())
    }
}

/// Whether an error of a pool's server takes it out of the pool rather than ending the run.
fn leaves_pool(e: &RunError) -> bool {
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
    /// The run's part of a shared batch: as [`Execution::enqueue`] returns it.
    Done(Option<(String, usize, Vec<i64>)>),
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
