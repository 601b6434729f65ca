//! Taking up what an earlier run of the same manifest left: jobs done or failed before are
//! counted, items still on the server are followed again, enqueues whose answer was lost are
//! looked up by batch id, and jobs whose items the server no longer has are submitted again.
//! Only the jobs the journal knows are looked at: a run of a million jobs that never ran before
//! resumes in no time.

use super::RunError;
use std::collections::{BTreeSet, HashMap, HashSet};

use super::execution::Execution;
use super::journal::{Entry, Resume};
use super::key::{ItemRef, JobKey, SessionKey};
use super::ledger::{Ledger, Slot};

/// What the journal leaves this run to do.
#[derive(Debug, Default)]
pub(super) struct Resumed {
    /// Jobs not to submit: done, failed, or still on the server.
    pub skip: HashSet<usize>,
    /// With `--retry-failed`: the only jobs to submit.
    pub only: Option<Vec<usize>>,
    /// Items still on the server: (item id, job, session, batch).
    pub attach: Vec<(i64, usize, SessionKey, String)>,
    /// Jobs done before.
    pub done: usize,
}

impl Execution<'_> {
    /// Decides, from the journal, what happens to each job it knows.
    pub(super) async fn resume(&self, ledger: &mut Ledger) -> Result<Resumed, RunError> {
        let p = self.prepared;
        let count = p.expansion.job_count();
        // The journal's jobs that are jobs of this manifest as it is now.
        let mut known: Vec<JobKey> = ledger
            .state
            .known_jobs()
            .filter(|k| k.index < count)
            .copied()
            .collect();
        known.sort_unstable();
        known.retain(|k| JobKey::of(&p.expansion.job(k.index), &p.workflow_hash) == *k);

        let mut out = Resumed::default();
        let mut retry = Vec::new();
        for key in known {
            let job = key.index;
            let mut decision = ledger.state.resume(key);
            if let Resume::Recover { batch_id } = &decision {
                // Sent, but the answer was lost: find the batch's items on the server.
                let (first, count, server) = ledger
                    .state
                    .batches
                    .get(batch_id)
                    .map_or((0, usize::MAX, 0), |b| (b.first, b.jobs.len(), b.server));
                // A batch sent to a server that is not in this run's pool cannot be looked
                // up: its jobs are submitted again (what that server runs of it is not
                // collected).
                let lane = self.lanes.iter().find(|l| l.number == server);
                let found = match lane {
                    Some(lane) => self
                        .recover_batch(lane, batch_id, first, count)
                        .await?
                        .map(|ids| (lane.number, ids)),
                    None => None,
                };
                decision = match found {
                    Some((number, ids)) => {
                        ledger.record(Entry::Enqueued {
                            batch_id: batch_id.clone(),
                            item_ids: ids
                                .into_iter()
                                .map(|id| ItemRef::new(number, id).0)
                                .collect(),
                        })?;
                        ledger.state.resume(key)
                    }
                    None => Resume::Submit,
                };
            }
            match decision {
                Resume::Submit | Resume::Recover { .. } => {}
                Resume::Done { files } => {
                    out.done += 1;
                    out.skip.insert(job);
                    ledger.completed.insert(job);
                    ledger.files.insert(job, files);
                }
                Resume::Failed { item_id, error } => {
                    if self.retry_failed {
                        retry.push(job);
                    } else {
                        out.skip.insert(job);
                        ledger.fail(job, item_id, error);
                    }
                }
                Resume::Attach {
                    batch_id,
                    open,
                    done,
                    failed,
                } => {
                    out.skip.insert(job);
                    ledger.expect_sessions(job, open.len());
                    if let Some((item_id, error)) = failed {
                        ledger.fail(job, item_id, error);
                    }
                    if done > 0 {
                        // Sessions that finished before: their files count for the job.
                        let open_keys: BTreeSet<SessionKey> =
                            open.iter().map(|(k, _)| *k).collect();
                        let earlier: Vec<_> = ledger
                            .state
                            .downloads
                            .iter()
                            .filter(|(k, _)| k.job == key && !open_keys.contains(k))
                            .flat_map(|(_, files)| files.values().cloned())
                            .collect();
                        ledger.files.entry(job).or_default().extend(earlier);
                    }
                    for (session, item_id) in open {
                        out.attach.push((item_id, job, session, batch_id.clone()));
                    }
                }
            }
        }
        let lost = self.drop_lost(&mut out, ledger).await?;
        retry.extend(lost);
        retry.sort_unstable();
        if self.retry_failed {
            out.only = Some(retry);
        }
        Ok(out)
    }

    /// Items the server no longer has (its queue was cleared, or it is another server), and
    /// items of a server that is not in this run's pool: their jobs are submitted again.
    async fn drop_lost(
        &self,
        out: &mut Resumed,
        ledger: &mut Ledger,
    ) -> Result<BTreeSet<usize>, RunError> {
        if out.attach.is_empty() {
            return Ok(BTreeSet::new());
        }
        let mut known: HashMap<i64, String> = HashMap::new();
        for lane in &self.lanes {
            let ids: Vec<i64> = out
                .attach
                .iter()
                .map(|(id, ..)| ItemRef(*id))
                .filter(|r| r.server() == lane.number)
                .map(ItemRef::id)
                .collect();
            for chunk in ids.chunks(500) {
                for item in lane.client.queue().items_by_ids(chunk).await? {
                    known.insert(ItemRef::new(lane.number, item.item_id).0, item.batch_id);
                }
            }
        }
        let mut lost: BTreeSet<usize> = BTreeSet::new();
        for (id, job, _, batch) in &out.attach {
            if known.get(id) != Some(batch) {
                lost.insert(*job);
            }
        }
        out.attach.retain(|(_, job, _, _)| !lost.contains(job));
        for &job in &lost {
            ledger.forget_job(job);
            out.skip.remove(&job);
        }
        Ok(lost)
    }

    /// Follows the items an earlier run left on the server.
    pub(super) fn attach(&self, resumed: &Resumed, ledger: &mut Ledger, epoch: u64) -> Vec<i64> {
        let mut ids = Vec::with_capacity(resumed.attach.len());
        for (item_id, job, key, batch) in &resumed.attach {
            ledger.track(
                *item_id,
                Slot {
                    job: *job,
                    key: *key,
                    batch: batch.clone(),
                    epoch,
                },
            );
            ids.push(*item_id);
        }
        ids
    }
}
