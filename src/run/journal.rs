//! The run journal: an append-only JSON-lines file in the output folder that records every step
//! that has an effect on the server or on disk, so that a run started again after a crash or
//! Ctrl-C re-attaches to what is still on the server, downloads what is missing, resubmits what
//! was lost and never submits a finished job twice.
//!
//! Each line is one [`Entry`]. A line cut short by a crash (the last one) is ignored.
//! An enqueue is journaled twice: its intent (with the batch id we chose) before the request,
//! and its result after it; an intent without a result is looked up on the server by batch id.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::key::{ItemRef, JobKey, SessionKey};
use crate::fs::place::PlaceError;
use crate::store::{LocalStore, Log, OutputStore};

/// A journal longer than this many lines is compacted into one checkpoint line when it is opened.
const COMPACT_AT_LINES: usize = 5_000;

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    /// A run of this manifest started (one per invocation of `invk-run`).
    Started {
        /// The run's id (also the queue items' destination tag).
        run_id: String,
        /// The workflow's fingerprint and the job count (informational: each job's own key
        /// tells whether it is the job an earlier run did).
        plan_hash: String,
        /// Server URL.
        server: String,
        /// How many jobs the manifest makes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        jobs: Option<usize>,
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
        /// The sessions it carries, in session order.
        jobs: Vec<SessionKey>,
        /// Where its first session is among the sessions of the batch the server gets: not 0
        /// when the batch is shared with other runs (`invk-run watch --each`), whose sessions
        /// come before it.
        #[serde(default, skip_serializing_if = "is_zero")]
        first: usize,
        /// The number of the server it is sent to (see [`Entry::Server`]); 0, the first server
        /// the journal knew, is left out.
        #[serde(default, skip_serializing_if = "is_zero_u16")]
        server: u16,
    },
    /// A server of the run's pool got a number: its queue items are journaled as
    /// [`super::key::ItemRef`]s holding that number. A journal written before pools numbered
    /// no server: its item ids are those of server 0.
    Server {
        /// The server's number.
        number: u16,
        /// Its URL.
        url: String,
    },
    /// An enqueue was accepted.
    Enqueued {
        /// The batch id.
        batch_id: String,
        /// Queue item ids, ascending, one per session of the intent (fewer when the queue was
        /// full: the sessions at the end were not taken). Of a shared batch, only the run's
        /// own items: those of its sessions, from `first` on.
        item_ids: Vec<ItemRef>,
    },
    /// A queue item ended.
    Finished {
        /// The session.
        job: SessionKey,
        /// Queue item id.
        item_id: ItemRef,
        /// How it ended.
        status: ItemEnd,
        /// The server's error, for a failed item.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The run took a queue item back before it ran (Ctrl-C, `invk-run cancel`), or a server
    /// restart cancelled it: its job is submitted again by the next run.
    Withdrawn {
        /// The session.
        job: SessionKey,
        /// Queue item id.
        item_id: ItemRef,
    },
    /// A queue item of the run ended: its session, and the images its nodes made that are not
    /// outputs (intermediates), for the cleanup (also of a later, resumed run).
    Produced {
        /// Queue item id.
        item_id: ItemRef,
        /// Its session.
        session_id: String,
        /// Images of its intermediate and non-output nodes.
        images: Vec<String>,
    },
    /// An output file is safely on disk.
    Downloaded {
        /// The session.
        job: SessionKey,
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
    /// Everything the lines before it said, folded (written when a long journal is compacted).
    Checkpoint {
        /// The state.
        state: Box<State>,
    },
}

/// How a queue item ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemEnd {
    /// Completed; its outputs are on disk.
    Completed,
    /// Failed on the server (or its outputs could not be saved).
    Failed,
    /// Cancelled by someone else, or deleted from the queue.
    Canceled,
    /// Taken back by the run, or cancelled by a server restart: not the job's failure.
    Withdrawn,
}

impl ItemEnd {
    /// The server's word for it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ItemEnd::Completed => "completed",
            ItemEnd::Failed => "failed",
            ItemEnd::Canceled => "canceled",
            ItemEnd::Withdrawn => "withdrawn",
        }
    }
}

/// The journal file, opened for appending.
#[derive(Debug)]
pub struct Journal {
    /// Where it is, for messages.
    location: PathBuf,
    log: Box<dyn Log>,
}

/// The journal's path in an output folder (or store).
const JOURNAL: &str = ".invk-run/journal.jsonl";

impl Journal {
    /// The journal's path for an output folder.
    #[must_use]
    pub fn path_in(output_dir: &Path) -> PathBuf {
        output_dir.join(JOURNAL)
    }

    /// Opens (creating) the journal of the output folder `output_dir` (see
    /// [`Journal::open_in`]).
    ///
    /// # Errors
    /// When the file cannot be read or created, or the folder or one of the run's own files is
    /// a link.
    pub fn open(output_dir: &Path, fresh: bool) -> std::io::Result<(Journal, State)> {
        let store = LocalStore::open(output_dir).map_err(PlaceError::into_io)?;
        Journal::open_in(&store, fresh)
    }

    /// Opens (creating) the journal of a store for appending and reads what it already holds; a
    /// long journal is compacted into a checkpoint line first. With `fresh`, an earlier journal
    /// is set aside (renamed with a timestamp) first.
    ///
    /// # Errors
    /// When the file cannot be read or created, or (of the local store) it or `runs.jsonl` is a
    /// link.
    pub fn open_in(store: &dyn OutputStore, fresh: bool) -> std::io::Result<(Journal, State)> {
        let rel = Path::new(JOURNAL);
        // The run's own files are checked before anything is sent: a linked output folder,
        // `.invk-run`, journal or `runs.jsonl` is refused (see `crate::fs::place`).
        for own in [rel, Path::new(super::summary::SUMMARY_FILE)] {
            store.prepare(own).map_err(PlaceError::into_io)?;
        }
        if fresh && store.exists(rel).map_err(PlaceError::into_io)? {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            store
                .move_aside(rel, &rel.with_extension(format!("jsonl.{stamp}")))
                .map_err(PlaceError::into_io)?;
        }
        let state = match read_text(store)? {
            Some(text) => {
                let state = State::from_entries(parse(&text));
                if text.lines().count() > COMPACT_AT_LINES {
                    compact(store, &state)?;
                }
                state
            }
            None => State::default(),
        };
        let log = store.open_log(rel).map_err(PlaceError::into_io)?;
        let location = store
            .local_folder()
            .map_or_else(|| rel.to_path_buf(), |dir| dir.join(rel));
        Ok((Journal { location, log }, state))
    }

    /// Reads an output folder's journal without opening it for writing (`None` when there is
    /// none).
    ///
    /// # Errors
    /// When the file exists but cannot be read.
    pub fn read(output_dir: &Path) -> std::io::Result<Option<State>> {
        Journal::read_in(&LocalStore::at(output_dir))
    }

    /// Reads a store's journal without opening it for writing (`None` when there is none).
    ///
    /// # Errors
    /// When the file exists but cannot be read.
    pub fn read_in(store: &dyn OutputStore) -> std::io::Result<Option<State>> {
        Ok(read_text(store)?.map(|text| State::from_entries(parse(&text))))
    }

    /// Appends an entry and flushes it to disk before returning.
    ///
    /// # Errors
    /// When the write fails.
    pub fn append(&mut self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.log
            .append(&line)
            .and_then(|()| self.log.sync())
            .map_err(PlaceError::into_io)
    }

    /// The journal's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.location
    }
}

/// The journal's text, if the store has one.
fn read_text(store: &dyn OutputStore) -> std::io::Result<Option<String>> {
    let Some(bytes) = store
        .read(Path::new(JOURNAL), u64::MAX)
        .map_err(PlaceError::into_io)?
    else {
        return Ok(None);
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Replaces the journal by one checkpoint line holding `state` (atomically: a crash leaves
/// either the old journal or the new one).
fn compact(store: &dyn OutputStore, state: &State) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(&Entry::Checkpoint {
        state: Box::new(state.clone()),
    })
    .map_err(std::io::Error::other)?;
    line.push(b'\n');
    store
        .write_replacing(Path::new(JOURNAL), &line)
        .map_err(PlaceError::into_io)
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The plan fingerprint of the latest run.
    pub plan_hash: Option<String>,
    /// The server of the latest run.
    pub server: Option<String>,
    /// The job count of the latest run, when it said.
    #[serde(default)]
    pub jobs: Option<usize>,
    /// Uploaded files by content hash → image name.
    pub uploads: BTreeMap<String, String>,
    /// Sessions of the runs' items.
    pub sessions: BTreeSet<String>,
    /// Images of intermediate and non-output nodes of the runs' items.
    pub intermediates: BTreeSet<String>,
    /// Enqueues by batch id, in journal order: the sessions they carry, and their item ids once
    /// known.
    pub batches: indexmap::IndexMap<String, Batch>,
    /// The latest end of each session.
    pub finished: BTreeMap<SessionKey, Finished>,
    /// Files downloaded for each session: image name → file.
    pub downloads: BTreeMap<SessionKey, BTreeMap<String, PathBuf>>,
    /// Server images already deleted.
    pub deleted: BTreeSet<String>,
    /// The servers the runs used, by number (see [`Entry::Server`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub servers: BTreeMap<u16, String>,
    /// Each job's latest batch.
    #[serde(skip)]
    latest: HashMap<JobKey, String>,
    /// Each item's session and batch.
    #[serde(skip)]
    items: HashMap<ItemRef, (SessionKey, String)>,
}

/// An enqueue in the journal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Sessions in session order.
    pub jobs: Vec<SessionKey>,
    /// Item ids, when the enqueue's result was journaled.
    pub item_ids: Option<Vec<ItemRef>>,
    /// Where its first session is in the batch the server got (see [`Entry::EnqueueIntent`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub first: usize,
    /// The number of the server it was sent to.
    #[serde(default, skip_serializing_if = "is_zero_u16")]
    pub server: u16,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero_u16(n: &u16) -> bool {
    *n == 0
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    /// Queue item id.
    pub item_id: ItemRef,
    /// How.
    pub status: ItemEnd,
    /// The server's error.
    pub error: Option<String>,
}

impl State {
    /// Folds entries in order.
    #[must_use]
    pub fn from_entries(entries: Vec<Entry>) -> State {
        let mut state = State::default();
        for entry in entries {
            state.apply(entry);
        }
        state
    }

    /// Folds one entry in.
    pub fn apply(&mut self, entry: Entry) {
        match entry {
            Entry::Started {
                plan_hash,
                server,
                jobs,
                ..
            } => {
                self.plan_hash = Some(plan_hash);
                self.server = Some(server);
                self.jobs = jobs;
            }
            Entry::Uploaded {
                sha256, image_name, ..
            } => {
                self.uploads.insert(sha256, image_name);
            }
            Entry::Produced {
                session_id, images, ..
            } => {
                self.sessions.insert(session_id);
                self.intermediates.extend(images);
            }
            Entry::EnqueueIntent {
                batch_id,
                jobs,
                first,
                server,
            } => {
                for slot in &jobs {
                    self.latest.insert(slot.job, batch_id.clone());
                }
                self.batches.insert(
                    batch_id,
                    Batch {
                        jobs,
                        item_ids: None,
                        first,
                        server,
                    },
                );
            }
            Entry::Enqueued { batch_id, item_ids } => {
                let batch = self.batches.entry(batch_id.clone()).or_default();
                for (slot, id) in batch.jobs.iter().zip(&item_ids) {
                    self.items.insert(*id, (*slot, batch_id.clone()));
                }
                batch.item_ids = Some(item_ids);
            }
            Entry::Finished {
                job,
                item_id,
                status,
                error,
            } => {
                self.finished.insert(
                    job,
                    Finished {
                        item_id,
                        status,
                        error,
                    },
                );
            }
            Entry::Withdrawn { job, item_id } => {
                self.finished.insert(
                    job,
                    Finished {
                        item_id,
                        status: ItemEnd::Withdrawn,
                        error: None,
                    },
                );
            }
            Entry::Downloaded {
                job,
                image_name,
                file,
            } => {
                // A file that replaced an earlier try's output at the same path stands for it.
                let files = self.downloads.entry(job).or_default();
                files.retain(|_, f| *f != file);
                files.insert(image_name, file);
            }
            Entry::Deleted { image_names } => self.deleted.extend(image_names),
            Entry::Server { number, url } => {
                self.servers.insert(number, url);
            }
            Entry::Checkpoint { state } => {
                *self = *state;
                self.reindex();
            }
        }
    }

    /// Rebuilds the indexes a checkpoint does not carry.
    fn reindex(&mut self) {
        self.latest.clear();
        self.items.clear();
        for (batch_id, batch) in &self.batches {
            for slot in &batch.jobs {
                self.latest.insert(slot.job, batch_id.clone());
            }
            for (slot, id) in batch.jobs.iter().zip(batch.item_ids.iter().flatten()) {
                self.items.insert(*id, (*slot, batch_id.clone()));
            }
        }
    }

    /// The session a queue item runs, and its batch.
    #[must_use]
    pub fn item(&self, item_id: ItemRef) -> Option<&(SessionKey, String)> {
        self.items.get(&item_id)
    }

    /// The jobs the journal knows of (those ever enqueued).
    pub fn known_jobs(&self) -> impl Iterator<Item = &JobKey> {
        self.latest.keys()
    }

    /// The files of a job's sessions on disk, per the journal.
    pub fn files_of(&self, job: JobKey) -> impl Iterator<Item = &PathBuf> {
        self.downloads
            .range(SessionKey { job, session: None }..)
            .take_while(move |(k, _)| k.job == job)
            .flat_map(|(_, files)| files.values())
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn r(id: i64) -> ItemRef {
        ItemRef::new(0, id)
    }

    fn refs(ids: &[i64]) -> Vec<ItemRef> {
        ids.iter().map(|id| r(*id)).collect()
    }

    fn key(i: usize) -> JobKey {
        JobKey {
            index: i,
            hash: 0xfeed,
        }
    }

    fn k(i: usize) -> SessionKey {
        key(i).into()
    }

    fn ks(i: usize, n: usize) -> SessionKey {
        key(i).session(2, n)
    }

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
                    jobs: None,
                },
                Entry::EnqueueIntent {
                    batch_id: "b1".into(),
                    jobs: vec![k(0), k(1)],
                    first: 0,
                    server: 0,
                },
                Entry::Enqueued {
                    batch_id: "b1".into(),
                    item_ids: refs(&[7, 8]),
                },
                Entry::Finished {
                    job: k(1),
                    item_id: r(8),
                    status: ItemEnd::Completed,
                    error: None,
                },
                Entry::Downloaded {
                    job: k(1),
                    image_name: "x.png".into(),
                    file: "a/x.png".into(),
                },
                Entry::EnqueueIntent {
                    batch_id: "b2".into(),
                    jobs: vec![k(2)],
                    first: 0,
                    server: 0,
                },
            ] {
                journal.append(&entry).expect("append");
            }
        }
        // A crash in the middle of a write leaves a torn line.
        let mut f = crate::fs::OpenOptions::new()
            .append(true)
            .open(Journal::path_in(dir.path()))
            .expect("reopen");
        f.write_all(b"{\"event\":\"enqueued\",\"batch_id\":\"b2\",\"item_")
            .expect("torn");
        drop(f);

        let (_, state) = Journal::open(dir.path(), false).expect("open again");
        assert_eq!(state.plan_hash.as_deref(), Some("h"));
        assert_eq!(
            state.resume(key(1)),
            Resume::Done {
                files: vec!["a/x.png".into()]
            }
        );
        assert_eq!(
            state.resume(key(0)),
            Resume::Attach {
                batch_id: "b1".into(),
                open: vec![(k(0), r(7))],
                done: 0,
                failed: None,
            }
        );
        assert_eq!(
            state.resume(key(2)),
            Resume::Recover {
                batch_id: "b2".into()
            }
        );
        assert_eq!(state.resume(key(9)), Resume::Submit);
    }

    #[test]
    fn a_part_of_a_shared_batch_says_where_it_starts_and_a_batch_of_its_own_does_not() {
        let shared = Entry::EnqueueIntent {
            batch_id: "shared".into(),
            jobs: vec![k(0), k(1)],
            first: 4,
            server: 0,
        };
        let own = Entry::EnqueueIntent {
            batch_id: "own".into(),
            jobs: vec![k(2)],
            first: 0,
            server: 0,
        };
        let line = serde_json::to_string(&shared).expect("json");
        assert!(line.contains(r#""first":4"#), "{line}");
        let line = serde_json::to_string(&own).expect("json");
        assert!(
            !line.contains("first"),
            "unchanged for a batch of its own: {line}"
        );
        let state = State::from_entries(parse(&format!(
            "{}\n{line}\n",
            serde_json::to_string(&shared).expect("json")
        )));
        assert_eq!(state.batches["shared"].first, 4);
        assert_eq!(state.batches["own"].first, 0);
    }

    #[test]
    fn a_pools_journal_numbers_its_servers_and_keeps_their_items_apart() {
        use crate::run::key::ItemRef;
        let on_second = ItemRef::new(1, 7);
        let entries = [
            Entry::Server {
                number: 0,
                url: "http://a:1".into(),
            },
            Entry::Server {
                number: 1,
                url: "http://b:1".into(),
            },
            Entry::EnqueueIntent {
                batch_id: "on-a".into(),
                jobs: vec![k(0)],
                first: 0,
                server: 0,
            },
            Entry::Enqueued {
                batch_id: "on-a".into(),
                item_ids: refs(&[7]),
            },
            Entry::EnqueueIntent {
                batch_id: "on-b".into(),
                jobs: vec![k(1)],
                first: 0,
                server: 1,
            },
            Entry::Enqueued {
                batch_id: "on-b".into(),
                item_ids: vec![on_second],
            },
        ];
        let lines: Vec<String> = entries
            .iter()
            .map(|e| serde_json::to_string(e).expect("json"))
            .collect();
        assert!(
            !lines[2].contains("server"),
            "server 0 is left out: {}",
            lines[2]
        );
        assert!(lines[4].contains(r#""server":1"#), "{}", lines[4]);
        let state = State::from_entries(parse(&lines.join("\n")));
        assert_eq!(state.servers.len(), 2);
        assert_eq!(state.batches["on-b"].server, 1);
        // Item 7 of each server is its own item.
        assert_eq!(state.item(r(7)).map(|(key, _)| *key), Some(k(0)));
        assert_eq!(state.item(on_second).map(|(key, _)| *key), Some(k(1)));
        // A checkpoint keeps the servers.
        let again: State =
            serde_json::from_str(&serde_json::to_string(&state).expect("json")).expect("parse");
        assert_eq!(again.servers, state.servers);
    }

    #[test]
    fn a_job_the_full_queue_did_not_take_is_submitted_again() {
        let state = State::from_entries(vec![
            Entry::EnqueueIntent {
                batch_id: "b".into(),
                jobs: vec![k(10), k(11)],
                first: 0,
                server: 0,
            },
            Entry::Enqueued {
                batch_id: "b".into(),
                item_ids: refs(&[1]),
            },
        ]);
        assert!(matches!(state.resume(key(10)), Resume::Attach { .. }));
        assert_eq!(state.resume(key(11)), Resume::Submit);
    }

    #[test]
    fn a_file_replaced_by_a_later_try_is_listed_once() {
        let downloaded = |image: &str, file: &str| Entry::Downloaded {
            job: k(3),
            image_name: image.into(),
            file: file.into(),
        };
        let state = State::from_entries(vec![
            downloaded("old-a.png", "a.png"),
            downloaded("old-b.png", "b.png"),
            downloaded("new-a.png", "a.png"),
        ]);
        let files: Vec<(&str, &str)> = state.downloads[&k(3)]
            .iter()
            .map(|(image, file)| (image.as_str(), file.to_str().expect("utf-8")))
            .collect();
        assert_eq!(files, [("new-a.png", "a.png"), ("old-b.png", "b.png")]);
    }

    #[test]
    fn a_job_of_several_sessions_is_done_only_when_all_are() {
        let entries = vec![
            Entry::EnqueueIntent {
                batch_id: "b".into(),
                jobs: vec![ks(10, 0), ks(10, 1), ks(11, 0), ks(11, 1)],
                first: 0,
                server: 0,
            },
            Entry::Enqueued {
                batch_id: "b".into(),
                item_ids: refs(&[1, 2, 3, 4]),
            },
            Entry::Finished {
                job: ks(10, 0),
                item_id: r(1),
                status: ItemEnd::Completed,
                error: None,
            },
            Entry::Finished {
                job: ks(10, 1),
                item_id: r(2),
                status: ItemEnd::Completed,
                error: None,
            },
            Entry::Finished {
                job: ks(11, 0),
                item_id: r(3),
                status: ItemEnd::Failed,
                error: Some("boom".into()),
            },
        ];
        let state = State::from_entries(entries.clone());
        assert_eq!(state.resume(key(10)), Resume::Done { files: vec![] });
        assert_eq!(
            state.resume(key(11)),
            Resume::Attach {
                batch_id: "b".into(),
                open: vec![(ks(11, 1), r(4))],
                done: 1,
                failed: Some((r(3), "boom".into())),
            }
        );
        let mut more = entries;
        more.push(Entry::Finished {
            job: ks(11, 1),
            item_id: r(4),
            status: ItemEnd::Completed,
            error: None,
        });
        let state = State::from_entries(more.clone());
        assert_eq!(
            state.resume(key(11)),
            Resume::Failed {
                item_id: r(3),
                error: "boom".into()
            }
        );
        // A retry is a newer batch: it decides.
        more.push(Entry::EnqueueIntent {
            batch_id: "a-retry".into(),
            jobs: vec![ks(11, 0), ks(11, 1)],
            first: 0,
            server: 0,
        });
        let state = State::from_entries(more);
        assert_eq!(
            state.resume(key(11)),
            Resume::Recover {
                batch_id: "a-retry".into()
            }
        );
    }

    #[test]
    fn a_withdrawn_item_is_submitted_again() {
        let mut entries = vec![
            Entry::EnqueueIntent {
                batch_id: "b".into(),
                jobs: vec![k(0), k(1)],
                first: 0,
                server: 0,
            },
            Entry::Enqueued {
                batch_id: "b".into(),
                item_ids: refs(&[1, 2]),
            },
            Entry::Withdrawn {
                job: k(1),
                item_id: r(2),
            },
        ];
        let state = State::from_entries(entries.clone());
        assert!(matches!(state.resume(key(0)), Resume::Attach { .. }));
        assert_eq!(state.resume(key(1)), Resume::Submit);
        assert_eq!(state.item(r(2)), Some(&(k(1), "b".to_owned())));
        // Submitted again in a later batch, which then decides.
        entries.push(Entry::EnqueueIntent {
            batch_id: "c".into(),
            jobs: vec![k(1)],
            first: 0,
            server: 0,
        });
        assert!(matches!(
            State::from_entries(entries).resume(key(1)),
            Resume::Recover { .. }
        ));
    }

    #[test]
    fn a_long_journal_is_compacted_into_one_checkpoint_with_the_same_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let jobs = COMPACT_AT_LINES / 2;
        {
            let (mut journal, _) = Journal::open(dir.path(), false).expect("open");
            for i in 0..jobs {
                let batch_id = format!("b{i}");
                for entry in [
                    Entry::EnqueueIntent {
                        batch_id: batch_id.clone(),
                        jobs: vec![k(i)],
                        first: 0,
                        server: 0,
                    },
                    Entry::Enqueued {
                        batch_id,
                        item_ids: refs(&[i64::try_from(i).expect("small")]),
                    },
                    Entry::Finished {
                        job: k(i),
                        item_id: r(i64::try_from(i).expect("small")),
                        status: ItemEnd::Completed,
                        error: None,
                    },
                ] {
                    journal.append(&entry).expect("append");
                }
            }
        }
        let path = Journal::path_in(dir.path());
        let before = State::from_entries(parse(&crate::fs::read_to_string(&path).expect("read")));
        let (mut journal, state) = Journal::open(dir.path(), false).expect("reopen");
        assert_eq!(state, before);
        let text = crate::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 1, "one checkpoint line");
        assert_eq!(state.resume(key(7)), Resume::Done { files: vec![] });
        // Appending goes on after the checkpoint, and both are read back.
        journal
            .append(&Entry::Withdrawn {
                job: k(jobs + 1),
                item_id: r(99),
            })
            .expect("append");
        let (_, again) = Journal::open(dir.path(), false).expect("third open");
        assert_eq!(again.resume(key(3)), Resume::Done { files: vec![] });
        assert_eq!(again.finished.len(), jobs + 1);
        assert_eq!(again.item(r(5)), Some(&(k(5), "b5".to_owned())));
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
        let kept = crate::fs::read_dir(dir.path().join(".invk-run"))
            .expect("list")
            .count();
        assert_eq!(kept, 2, "the old journal is kept beside the new one");
    }
}
