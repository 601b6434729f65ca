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
use super::execution::Execution;
use super::health::Health;
use super::journal::Entry;
use super::key::{JobKey, SessionKey};
use super::ledger::{Ledger, Slot};
use super::report::RunEvent;
use super::upload::Uploads;
use crate::client::tracker::Tracker;
use crate::client::{ClientError, EnqueueResult, ModelResolver};
use crate::manifest::{EnqueuePlan, Job, LocalImage, Plan};
use crate::workflow::{ConvertOptions, EnqueueBatch};

/// What the submitting of a window's jobs left to do.
#[derive(Debug, Default)]
pub(super) struct Submitted {
    /// Jobs the server did not take (a full queue, or Ctrl-C during an outage): submit later.
    pub handed_back: Vec<usize>,
    /// Whether the queue was full.
    pub queue_full: bool,
}

/// Per-run caches of the submit step.
#[derive(Debug, Default)]
pub(super) struct Submitter {
    /// Models given by name or key, resolved on the server.
    models: ModelResolver,
    /// The run's uploads.
    pub uploads: Uploads,
}

impl Execution<'_> {
    /// Submits `jobs` (one enqueue per group of equal non-batchable values) and follows their
    /// items.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn submit(
        &self,
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
            if cancel.is_cancelled() {
                out.handed_back.extend(&enqueue.job_indices);
                continue;
            }
            self.resolve_models(enqueue, &mut submitter.models).await?;
            self.upload_for(enqueue, &mut submitter.uploads, ledger)
                .await?;
            let slots: Vec<(usize, JobKey)> =
                enqueue.job_indices.iter().map(|i| (*i, keys[i])).collect();
            let sent = self
                .enqueue(enqueue, &slots, submitter, ledger, health, cancel)
                .await?;
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
                    tracker.watch(ids);
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
    async fn enqueue(
        &self,
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
        ledger.record(Entry::EnqueueIntent {
            batch_id: batch_id.clone(),
            jobs: keys,
        })?;
        let request = EnqueueBatch {
            batch,
            prepend: false,
        };
        loop {
            let result = match self.client.queue().enqueue_batch(&request).await {
                Ok(result) => Ok(result),
                Err(ClientError::QueueFull { result, .. }) => Ok(*result),
                Err(e) if e.is_unreachable() => Err(e),
                Err(e) => return Err(e.into()),
            };
            match result {
                Ok(result) => {
                    health.up(self);
                    return self.enqueued(&batch_id, per_job, result, ledger).map(Some);
                }
                Err(e) => {
                    // The request may or may not have reached the server: wait for it, then
                    // look the batch up before sending it again.
                    health.down(self, &crate::error_chain::error_chain(&e))?;
                    loop {
                        tokio::select! {
                            () = tokio::time::sleep(health.backoff()) => {}
                            () = cancel.cancelled() => return Ok(None),
                        }
                        match self.recover_batch(&batch_id).await {
                            Ok(Some(ids)) => {
                                health.up(self);
                                ledger.record(Entry::Enqueued {
                                    batch_id: batch_id.clone(),
                                    item_ids: ids.clone(),
                                })?;
                                return Ok(Some((batch_id, per_job, ids)));
                            }
                            Ok(None) => break,
                            Err(RunError::Client(e)) if e.is_unreachable() => {
                                health.down(self, &crate::error_chain::error_chain(&e))?;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
    }

    /// Journals an enqueue's answer.
    fn enqueued(
        &self,
        batch_id: &str,
        per_job: usize,
        result: EnqueueResult,
        ledger: &mut Ledger,
    ) -> Result<(String, usize, Vec<i64>), RunError> {
        ledger.record(Entry::Enqueued {
            batch_id: batch_id.to_owned(),
            item_ids: result.item_ids.clone(),
        })?;
        if !result.item_ids.is_empty() {
            self.reporter.event(&RunEvent::Enqueued {
                manifest: self.name.clone(),
                batch_id: batch_id.to_owned(),
                items: result.item_ids.len(),
            });
        }
        Ok((batch_id.to_owned(), per_job, result.item_ids))
    }

    /// Finds the items of a batch whose enqueue answer was lost; `None` when the server has none
    /// (the enqueue never arrived).
    pub(super) async fn recover_batch(&self, batch_id: &str) -> Result<Option<Vec<i64>>, RunError> {
        let status = self.client.queue().batch_status(batch_id).await?;
        if status.total == 0 {
            return Ok(None);
        }
        let mut ids = self.client.queue().item_ids_of_batch(batch_id).await?;
        ids.sort_unstable();
        Ok(Some(ids))
    }

    /// Takes back an item that has not run: cancelled on the server and journaled as withdrawn,
    /// so that its job is submitted again.
    pub(super) async fn withdraw(
        &self,
        item_id: i64,
        key: SessionKey,
        ledger: &mut Ledger,
    ) -> Result<(), RunError> {
        self.client.queue().cancel_item(item_id).await?;
        ledger.record(Entry::Withdrawn { job: key, item_id })?;
        ledger.item_ended(item_id);
        Ok(())
    }
}

/// The pause before trying a full queue again.
pub(super) const QUEUE_FULL_PAUSE: Duration = Duration::from_secs(2);
