//! The run journal: an append-only JSON-lines file in the output folder that records every step
//! that has an effect on the server or on disk, so that a run started again after a crash or
//! Ctrl-C re-attaches to what is still on the server, downloads what is missing, resubmits what
//! was lost and never submits a finished job twice.
//!
//! Each line is one [`Entry`]. A line cut short by a crash (the last one) is ignored.
//! An enqueue is journaled twice: its intent (with the batch id we chose) before the request,
//! and its result after it; an intent without a result is looked up on the server by batch id.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    /// A run of this manifest started (one per invocation of `invk-run`).
    Started {
        /// The run's id (also the queue items' destination tag).
        run_id: String,
        /// Fingerprint of the manifest's expanded plan; a different one means the manifest changed.
        plan_hash: String,
        /// Server URL.
        server: String,
    },
    /// A local file was uploaded.
    Uploaded {
        /// Content hash of the file.
        sha256: String,
        /// The local path.
        path: PathBuf,
        /// The name the server gave it.
        image_name: String,
    },
    /// An enqueue is about to be sent.
    EnqueueIntent {
        /// The batch id we chose.
        batch_id: String,
        /// Keys of the jobs it carries, in session order.
        jobs: Vec<String>,
    },
    /// An enqueue was accepted.
    Enqueued {
        /// The batch id.
        batch_id: String,
        /// Queue item ids, ascending, one per job of the intent.
        item_ids: Vec<i64>,
    },
    /// A queue item ended.
    Finished {
        /// The job's key.
        job: String,
        /// Queue item id.
        item_id: i64,
        /// `completed`, `failed` or `canceled`.
        status: String,
        /// The server's error, for a failed item.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A queue item of the run ended: its session, and the images its nodes made that are not
    /// outputs (intermediates), for the cleanup (also of a later, resumed run).
    Produced {
        /// Queue item id.
        item_id: i64,
        /// Its session.
        session_id: String,
        /// Images of its intermediate and non-output nodes.
        images: Vec<String>,
    },
    /// An output file is safely on disk.
    Downloaded {
        /// The job's key.
        job: String,
        /// Server image (or video) name.
        image_name: String,
        /// The file, relative to the output folder.
        file: PathBuf,
    },
    /// Server images were deleted.
    Deleted {
        /// Their names.
        image_names: Vec<String>,
    },
}

/// The journal file, opened for appending.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: std::fs::File,
}

impl Journal {
    /// The journal's path for an output folder.
    #[must_use]
    pub fn path_in(output_dir: &Path) -> PathBuf {
        output_dir.join(".invk-run").join("journal.jsonl")
    }

    /// Opens (creating) the journal for appending and reads what it already holds.
    /// With `fresh`, an earlier journal is set aside (renamed with a timestamp) first.
    ///
    /// # Errors
    /// When the file cannot be read or created.
    pub fn open(output_dir: &Path, fresh: bool) -> std::io::Result<(Journal, State)> {
        let path = Journal::path_in(output_dir);
        crate::fs::create_dir_all(crate::fs::parent_dir(&path))?;
        if fresh && path.exists() {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            crate::fs::rename(&path, path.with_extension(format!("jsonl.{stamp}")))?;
        }
        let state = if path.exists() {
            State::from_entries(parse(&crate::fs::read_to_string(&path)?))
        } else {
            State::default()
        };
        let file = crate::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?
            .into_parts()
            .0;
        Ok((Journal { path, file }, state))
    }

    /// Appends an entry and flushes it to disk before returning.
    ///
    /// # Errors
    /// When the write fails.
    pub fn append(&mut self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("{e} (writing `{}`)", self.path.display()))
            })
    }

    /// The journal's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Parses journal text; a malformed line (a write cut short) is skipped.
#[must_use]
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// What the journal says happened, folded from its entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    /// The plan hash of the latest run.
    pub plan_hash: Option<String>,
    /// The server of the latest run.
    pub server: Option<String>,
    /// Uploaded files by content hash → image name.
    pub uploads: BTreeMap<String, String>,
    /// Sessions of the runs' items.
    pub sessions: BTreeSet<String>,
    /// Images of intermediate and non-output nodes of the runs' items.
    pub intermediates: BTreeSet<String>,
    /// Enqueues by batch id, in journal order: the job slots they carry, and their item ids
    /// once known.
    pub batches: indexmap::IndexMap<String, Batch>,
    /// The latest end of each job (by job key).
    pub finished: BTreeMap<String, Finished>,
    /// Files downloaded for each job: image name → file.
    pub downloads: BTreeMap<String, BTreeMap<String, PathBuf>>,
    /// Server images already deleted.
    pub deleted: BTreeSet<String>,
}

/// An enqueue in the journal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Job slots in session order: a job's key, or `KEY#N` for session N of a job that the
    /// server runs as several sessions (a workflow with batch nodes of its own).
    pub jobs: Vec<String>,
    /// Item ids, when the enqueue's result was journaled.
    pub item_ids: Option<Vec<i64>>,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// Queue item id.
    pub item_id: i64,
    /// Terminal status.
    pub status: String,
    /// The server's error.
    pub error: Option<String>,
}

impl State {
    /// Folds entries in order.
    #[must_use]
    pub fn from_entries(entries: Vec<Entry>) -> State {
        let mut state = State::default();
        for entry in entries {
            match entry {
                Entry::Started {
                    plan_hash, server, ..
                } => {
                    state.plan_hash = Some(plan_hash);
                    state.server = Some(server);
                }
                Entry::Uploaded {
                    sha256, image_name, ..
                } => {
                    state.uploads.insert(sha256, image_name);
                }
                Entry::Produced {
                    session_id, images, ..
                } => {
                    state.sessions.insert(session_id);
                    state.intermediates.extend(images);
                }
                Entry::EnqueueIntent { batch_id, jobs } => {
                    state.batches.insert(
                        batch_id,
                        Batch {
                            jobs,
                            item_ids: None,
                        },
                    );
                }
                Entry::Enqueued { batch_id, item_ids } => {
                    state.batches.entry(batch_id).or_default().item_ids = Some(item_ids);
                }
                Entry::Finished {
                    job,
                    item_id,
                    status,
                    error,
                } => {
                    state.finished.insert(
                        job,
                        Finished {
                            item_id,
                            status,
                            error,
                        },
                    );
                }
                Entry::Downloaded {
                    job,
                    image_name,
                    file,
                } => {
                    state
                        .downloads
                        .entry(job)
                        .or_default()
                        .insert(image_name, file);
                }
                Entry::Deleted { image_names } => state.deleted.extend(image_names),
            }
        }
        state
    }

    /// What a new run should do with a job, from what the journal says of it.
    #[must_use]
    pub fn resume(&self, key: &str) -> Resume {
        let prefix = format!("{key}#");
        let is_slot = |j: &str| j == key || j.starts_with(&prefix);
        let Some((batch_id, batch)) = self
            .batches
            .iter()
            .rev()
            .find(|(_, b)| b.jobs.iter().any(|j| is_slot(j)))
        else {
            return Resume::Submit;
        };
        let slots: Vec<(usize, &String)> = batch
            .jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| is_slot(j))
            .collect();
        // A slot ended in this batch when its latest end is of this batch's item.
        let ids = batch.item_ids.as_deref().unwrap_or_default();
        let ended_here = |pos: usize, slot: &str| {
            self.finished
                .get(slot)
                .filter(|f| ids.get(pos) == Some(&f.item_id))
        };
        let ended: Vec<&Finished> = slots
            .iter()
            .filter_map(|(pos, j)| ended_here(*pos, j))
            .collect();
        if ended.len() == slots.len() {
            if let Some(failed) = ended.iter().find(|f| f.status != "completed") {
                return Resume::Failed {
                    item_id: failed.item_id,
                    error: failed
                        .error
                        .clone()
                        .unwrap_or_else(|| failed.status.clone()),
                };
            }
            let files = slots
                .iter()
                .filter_map(|(_, j)| self.downloads.get(*j))
                .flat_map(|d| d.values().cloned())
                .collect();
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
            .filter_map(|(pos, j)| ids.get(*pos).map(|id| ((*j).clone(), *id)))
            .collect();
        let failed = ended.iter().find(|f| f.status != "completed").map(|f| {
            (
                f.item_id,
                f.error.clone().unwrap_or_else(|| f.status.clone()),
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
    /// Never submitted (or its enqueue never reached the server): submit it.
    Submit,
    /// Every session completed and its outputs are on disk.
    Done {
        /// Its files, relative to the output folder.
        files: Vec<PathBuf>,
    },
    /// It ended with a failure (resubmitted only with `--retry-failed`).
    Failed {
        /// The failed item.
        item_id: i64,
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
        /// Open slots and their item ids.
        open: Vec<(String, i64)>,
        /// Slots already ended.
        done: usize,
        /// A slot that already failed (item id, error): the job has failed whatever the rest do.
        failed: Option<(i64, String)>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_folds_entries_and_skips_a_torn_last_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (mut journal, state) = Journal::open(dir.path(), false).expect("open");
            assert_eq!(state, State::default());
            for entry in [
                Entry::Started {
                    run_id: "r".into(),
                    plan_hash: "h".into(),
                    server: "s".into(),
                },
                Entry::EnqueueIntent {
                    batch_id: "b1".into(),
                    jobs: vec!["j0".into(), "j1".into()],
                },
                Entry::Enqueued {
                    batch_id: "b1".into(),
                    item_ids: vec![7, 8],
                },
                Entry::Finished {
                    job: "j1".into(),
                    item_id: 8,
                    status: "completed".into(),
                    error: None,
                },
                Entry::Downloaded {
                    job: "j1".into(),
                    image_name: "x.png".into(),
                    file: "a/x.png".into(),
                },
                Entry::EnqueueIntent {
                    batch_id: "b2".into(),
                    jobs: vec!["j2".into()],
                },
            ] {
                journal.append(&entry).expect("append");
            }
        }
        // A crash in the middle of a write leaves a torn line.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(Journal::path_in(dir.path()))
            .expect("reopen");
        f.write_all(b"{\"event\":\"enqueued\",\"batch_id\":\"b2\",\"item_")
            .expect("torn");
        drop(f);

        let (_, state) = Journal::open(dir.path(), false).expect("open again");
        assert_eq!(state.plan_hash.as_deref(), Some("h"));
        assert_eq!(
            state.resume("j1"),
            Resume::Done {
                files: vec!["a/x.png".into()]
            }
        );
        assert_eq!(
            state.resume("j0"),
            Resume::Attach {
                batch_id: "b1".into(),
                open: vec![("j0".into(), 7)],
                done: 0,
                failed: None,
            }
        );
        assert_eq!(
            state.resume("j2"),
            Resume::Recover {
                batch_id: "b2".into()
            }
        );
        assert_eq!(state.resume("j9"), Resume::Submit);
    }

    #[test]
    fn a_job_the_full_queue_did_not_take_is_submitted_again() {
        let state = State::from_entries(vec![
            Entry::EnqueueIntent {
                batch_id: "b".into(),
                jobs: vec!["a".into(), "b".into()],
            },
            Entry::Enqueued {
                batch_id: "b".into(),
                item_ids: vec![1],
            },
        ]);
        assert!(matches!(state.resume("a"), Resume::Attach { .. }));
        assert_eq!(state.resume("b"), Resume::Submit);
    }

    #[test]
    fn a_job_of_several_sessions_is_done_only_when_all_are() {
        let entries = vec![
            Entry::EnqueueIntent {
                batch_id: "b".into(),
                jobs: vec!["a#0".into(), "a#1".into(), "b#0".into(), "b#1".into()],
            },
            Entry::Enqueued {
                batch_id: "b".into(),
                item_ids: vec![1, 2, 3, 4],
            },
            Entry::Finished {
                job: "a#0".into(),
                item_id: 1,
                status: "completed".into(),
                error: None,
            },
            Entry::Finished {
                job: "a#1".into(),
                item_id: 2,
                status: "completed".into(),
                error: None,
            },
            Entry::Finished {
                job: "b#0".into(),
                item_id: 3,
                status: "failed".into(),
                error: Some("boom".into()),
            },
        ];
        let state = State::from_entries(entries.clone());
        assert_eq!(state.resume("a"), Resume::Done { files: vec![] });
        assert_eq!(
            state.resume("b"),
            Resume::Attach {
                batch_id: "b".into(),
                open: vec![("b#1".into(), 4)],
                done: 1,
                failed: Some((3, "boom".into())),
            }
        );
        let mut more = entries;
        more.push(Entry::Finished {
            job: "b#1".into(),
            item_id: 4,
            status: "completed".into(),
            error: None,
        });
        let state = State::from_entries(more.clone());
        assert_eq!(
            state.resume("b"),
            Resume::Failed {
                item_id: 3,
                error: "boom".into()
            }
        );
        // A retry is a newer batch: it decides.
        more.push(Entry::EnqueueIntent {
            batch_id: "a-retry".into(),
            jobs: vec!["b#0".into(), "b#1".into()],
        });
        let state = State::from_entries(more);
        assert_eq!(
            state.resume("b"),
            Resume::Recover {
                batch_id: "a-retry".into()
            }
        );
    }

    #[test]
    fn fresh_sets_the_old_journal_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut journal, _) = Journal::open(dir.path(), false).expect("open");
        journal
            .append(&Entry::Deleted {
                image_names: vec!["x.png".into()],
            })
            .expect("append");
        drop(journal);
        let (_, state) = Journal::open(dir.path(), true).expect("fresh");
        assert!(state.deleted.is_empty());
        let kept = std::fs::read_dir(dir.path().join(".invk-run"))
            .expect("list")
            .count();
        assert_eq!(kept, 2, "the old journal is kept beside the new one");
    }
}
