//! What a new run does with a job, from what the journal says of it.

use std::path::PathBuf;

use super::ItemEnd;
use super::state::{Finished, State};
use crate::run::key::{ItemRef, JobKey, SessionKey};

impl State {
    /// What a new run should do with a job, from what the journal says of it.
    #[must_use]
    pub fn resume(&self, key: JobKey) -> Resume {
        let Some((batch_id, batch)) = self
            .latest
            .get(&key)
            .and_then(|id| self.batches.get_key_value(id))
        else {
            return Resume::Submit;
        };
        let slots: Vec<(usize, SessionKey)> = batch
            .jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| j.job == key)
            .map(|(pos, j)| (pos, *j))
            .collect();
        // A slot ended in this batch when its latest end is of this batch's item.
        let ids = batch.item_ids.as_deref().unwrap_or_default();
        let ended_here = |pos: usize, slot: &SessionKey| {
            self.finished
                .get(slot)
                .filter(|f| ids.get(pos) == Some(&f.item_id))
        };
        let ended: Vec<&Finished> = slots
            .iter()
            .filter_map(|(pos, j)| ended_here(*pos, j))
            .collect();
        if ended.iter().any(|f| f.status == ItemEnd::Withdrawn) {
            return Resume::Submit;
        }
        let failure = |f: &&&Finished| f.status != ItemEnd::Completed;
        if ended.len() == slots.len() {
            if let Some(failed) = ended.iter().find(failure) {
                return Resume::Failed {
                    item_id: failed.item_id,
                    error: failed
                        .error
                        .clone()
                        .unwrap_or_else(|| failed.status.as_str().to_owned()),
                };
            }
            let files = self.files_of(key).cloned().collect();
            return Resume::Done { files };
        }
        if batch.item_ids.is_none() {
            return Resume::Recover {
                batch_id: batch_id.clone(),
            };
        }
        if slots.iter().any(|(pos, _)| ids.get(*pos).is_none()) {
            // The queue was full and took only part of the batch: submit the job again.
            return Resume::Submit;
        }
        let open = slots
            .iter()
            .filter(|(pos, j)| ended_here(*pos, j).is_none())
            .filter_map(|(pos, j)| ids.get(*pos).map(|id| (*j, *id)))
            .collect();
        let failed = ended.iter().find(failure).map(|f| {
            (
                f.item_id,
                f.error
                    .clone()
                    .unwrap_or_else(|| f.status.as_str().to_owned()),
            )
        });
        Resume::Attach {
            batch_id: batch_id.clone(),
            open,
            done: ended.len(),
            failed,
        }
    }
}

/// What a run does with a job the journal may know.
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// Never submitted (or its enqueue never reached the server, or the run took it back):
    /// submit it.
    Submit,
    /// Every session completed and its outputs are on disk.
    Done {
        /// Its files, relative to the output folder.
        files: Vec<PathBuf>,
    },
    /// It ended with a failure (resubmitted only with `--retry-failed`).
    Failed {
        /// The failed item.
        item_id: ItemRef,
        /// The server's error.
        error: String,
    },
    /// Its enqueue was sent but the answer was lost: look the batch up on the server.
    Recover {
        /// The batch.
        batch_id: String,
    },
    /// Still on the server: follow the open sessions.
    Attach {
        /// The batch.
        batch_id: String,
        /// Open sessions and their item ids.
        open: Vec<(SessionKey, ItemRef)>,
        /// Sessions already ended.
        done: usize,
        /// A session that already failed (item id, error): the job has failed whatever the
        /// rest do.
        failed: Option<(ItemRef, String)>,
    },
}
