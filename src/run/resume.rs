//! Taking up what an earlier run of the same manifest left: jobs done or failed before are
//! counted, items still on the server are followed again, enqueues whose answer was lost are
//! looked up by batch id, and jobs whose items the server no longer has are submitted again.
//! Only the jobs the journal knows are looked at: a run of a million jobs that never ran before
//! resumes in no time.

use super::error::RunError;
use std::collections::{BTreeSet, HashMap, HashSet};

use super::journal::{Entry, Resume};
use super::key::{ItemRef, JobKey, SessionKey};
use super::ledger::Slot;
use super::progress::RunEvent;
use super::running::Run;
use super::source::JobSource;

/// What the journal leaves this run to do.
#[derive(Debug, Default)]
struct Resumed {
    /// Jobs not to submit: done, failed, or still on the server.
    skip: HashSet<usize>,
    /// With `--retry-failed`: the only jobs to submit.
    only: Option<Vec<usize>>,
    /// Items still on a server: (item, job, session, batch).
    attach: Vec<(ItemRef, usize, SessionKey, String)>,
    /// Jobs done before.
    done: usize,
    /// What became of the missing files of jobs done before.
    repaired: super::repair::Repaired,
}

impl Run<'_> {
    /// Takes up what the journal says: jobs done or failed before are counted (and told),
    /// items still on a server of the run are followed again, and the job source holds the
    /// rest. The running report starts from there.
    pub(super) async fn resume(&mut self) -> Result<(), RunError> {
        let resumed = self.decide().await?;
        let ctx = &self.ctx;
        if let Some(message) = resumed.repaired.message() {
            ctx.tell(&RunEvent::Repairing {
                manifest: ctx.name.clone(),
                missing: display(&resumed.repaired.missing),
                downloaded: display(&resumed.repaired.downloaded),
                run_again: resumed.repaired.run_again.keys().copied().collect(),
                message,
            });
        }
        ctx.tell(&RunEvent::Planned {
            manifest: ctx.name.clone(),
            jobs: ctx.job_count(),
            done: resumed.done,
            failed: self.ledger.failed_count(),
            window: ctx.window.max(1),
            servers: if ctx.names_servers {
                self.lanes.iter().map(|l| l.url.clone()).collect()
            } else {
                Vec::new()
            },
            windows: if ctx.names_servers {
                self.lanes.iter().map(|l| l.window).collect()
            } else {
                Vec::new()
            },
            output_dir: ctx.prepared.output_dir.display().to_string(),
        });
        for failure in self.ledger.failures() {
            ctx.tell(&RunEvent::JobFailed {
                manifest: ctx.name.clone(),
                job: failure.job,
                item_id: failure.item_id,
                error: format!(
                    "{} (in an earlier run; `--retry-failed` runs it again)",
                    failure.error
                ),
                server: None,
            });
        }
        self.start_live_report();
        for (item, job, key, batch) in &resumed.attach {
            self.ledger.track(
                *item,
                Slot {
                    job: *job,
                    key: *key,
                    batch: batch.clone(),
                },
            );
        }
        for lane in &mut self.lanes {
            lane.watch(resumed.attach.iter().map(|(item, ..)| *item));
        }
        self.source = JobSource::of_shard(
            &self.ctx.prepared.expansion,
            self.ctx.shard,
            resumed.skip,
            resumed.only,
        );
        Ok(())
    }

    /// Decides, from the journal, what happens to each job it knows.
    async fn decide(&mut self) -> Result<Resumed, RunError> {
        let p = self.ctx.prepared;
        let count = p.expansion.job_count();
        let shard = self.ctx.shard;
        // The journal's jobs that are jobs of this manifest (and shard) as it is now.
        let mut known: Vec<JobKey> = self
            .ledger
            .state()
            .known_jobs()
            .filter(|k| k.index < count && shard.contains(k.index))
            .copied()
            .collect();
        known.sort_unstable();
        known.retain(|k| JobKey::of(&p.expansion.job(k.index), &p.workflow_hash) == *k);

        let mut out = Resumed::default();
        let mut retry = Vec::new();
        // Jobs done before whose files are not all on disk: each with its files and the
        // missing ones.
        let mut incomplete = Vec::new();
        for key in known {
            let job = key.index;
            let mut decision = self.ledger.state().resume(key);
            if let Resume::Recover { batch_id } = &decision {
                decision = self.recover(key, batch_id).await?;
            }
            let ledger = &mut self.ledger;
            match decision {
                Resume::Submit | Resume::Recover { .. } => {}
                Resume::Done { files } => {
                    let missing = super::repair::missing_of(ledger.state(), &*self.ctx.store, key);
                    if missing.is_empty() {
                        out.done += 1;
                        out.skip.insert(job);
                        ledger.complete(job, files);
                    } else {
                        incomplete.push((job, files, missing));
                    }
                }
                Resume::Failed { item_id, error } => {
                    if self.ctx.retry_failed {
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
                            .state()
                            .downloads
                            .iter()
                            .filter(|(k, _)| k.job == key && !open_keys.contains(k))
                            .flat_map(|(_, files)| files.values().cloned())
                            .collect();
                        ledger.add_files(job, earlier);
                    }
                    for (session, item) in open {
                        out.attach.push((item, job, session, batch_id.clone()));
                    }
                }
            }
        }
        let lost = self.drop_lost(&mut out).await?;
        retry.extend(lost);
        // A job whose files went missing is done again once they are back; else it runs again.
        out.repaired = self.repair(incomplete).await?;
        for (job, files) in std::mem::take(&mut out.repaired.restored) {
            out.done += 1;
            out.skip.insert(job);
            self.ledger.complete(job, files);
        }
        retry.extend(out.repaired.run_again.keys().copied());
        retry.sort_unstable();
        if self.ctx.retry_failed {
            out.only = Some(retry);
        }
        Ok(out)
    }

    /// A job whose enqueue was sent but whose answer was lost: the batch's items are looked up
    /// on its server. A batch sent to a server that is not in this run cannot be looked up: its
    /// jobs are submitted again (what that server runs of it is not collected).
    async fn recover(&mut self, key: JobKey, batch_id: &str) -> Result<Resume, RunError> {
        let (first, count, server) = self
            .ledger
            .state()
            .batches
            .get(batch_id)
            .map_or((0, usize::MAX, 0), |b| (b.first, b.jobs.len(), b.server));
        let Some(lane) = self.lanes.iter().find(|l| l.number == server) else {
            return Ok(Resume::Submit);
        };
        let Some(ids) = super::submit::recover_batch(&lane.client, batch_id, first, count).await?
        else {
            return Ok(Resume::Submit);
        };
        let item_ids = ids.into_iter().map(|id| lane.item(id)).collect();
        self.ledger.record(Entry::Enqueued {
            batch_id: batch_id.to_owned(),
            item_ids,
        })?;
        Ok(self.ledger.state().resume(key))
    }

    /// Items the server no longer has (its queue was cleared, or it is another server), and
    /// items of a server that is not in this run: their jobs are submitted again.
    async fn drop_lost(&mut self, out: &mut Resumed) -> Result<BTreeSet<usize>, RunError> {
        if out.attach.is_empty() {
            return Ok(BTreeSet::new());
        }
        let mut known: HashMap<ItemRef, String> = HashMap::new();
        for lane in &self.lanes {
            let ids: Vec<i64> = out
                .attach
                .iter()
                .map(|(item, ..)| *item)
                .filter(|item| item.server() == lane.number)
                .map(ItemRef::id)
                .collect();
            for item in lane.client.queue().items_by_ids(&ids).await? {
                known.insert(lane.item(item.item_id), item.batch_id);
            }
        }
        let mut lost: BTreeSet<usize> = BTreeSet::new();
        for (item, job, key, batch) in &out.attach {
            if known.get(item) != Some(batch) {
                lost.insert(*job);
                // On a server left out of this run (it did not answer yet): journaled as taken
                // back, and taken back when it joins or at the end (it would run it for
                // nothing); what it made of it is cleaned then.
                if !self.lanes.iter().any(|l| l.number == item.server()) {
                    self.ledger.withdraw_session(*item, *key)?;
                    self.held_away.push(*item);
                }
            }
        }
        out.attach.retain(|(_, job, _, _)| !lost.contains(job));
        for &job in &lost {
            self.ledger.forget_job(job);
            out.skip.remove(&job);
        }
        Ok(lost)
    }
}

/// Paths as text, for an event.
fn display(files: &[std::path::PathBuf]) -> Vec<String> {
    files.iter().map(|f| f.display().to_string()).collect()
}

/// Removes the temporary files a killed run of this host left in the output folder, in any of
/// its folders (links not followed). Only a journal whose last run did not end can have left
/// any: after an ended run nothing is looked at. A file another live process is writing (a
/// shard) stays. A failure is logged, not fatal: a stray temporary file loses nothing.
pub(super) fn remove_stale_temporaries(out: &std::path::Path, state: &super::journal::State) {
    if state.ended {
        return;
    }
    let mut dirs = vec![out.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        if let Ok(entries) = crate::fs::read_dir(&dir) {
            dirs.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        match crate::fs::temporary::remove_stale(&dir) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(
                "removed {n} temporary files a killed run left in {}",
                dir.display()
            ),
            Err(e) => tracing::warn!("cannot remove the temporary files a killed run left: {e}"),
        }
    }
}
