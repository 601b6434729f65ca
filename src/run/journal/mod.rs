//! The run journal: an append-only JSON-lines file in the output folder that records every step
//! that has an effect on the server or on disk, so that a run started again after a crash or
//! Ctrl-C re-attaches to what is still on the server, downloads what is missing, resubmits what
//! was lost and never submits a finished job twice.
//!
//! Each line is one [`Entry`]. A line cut short by a crash (the last one) is ignored.
//! An enqueue is journaled twice: its intent (with the batch id we chose) before the request,
//! and its result after it; an intent without a result is looked up on the server by batch id.
//!
//! The entries fold into a [`State`] (`state.rs`), which says what a new run does with each job
//! ([`Resume`], `resume.rs`).

mod resume;
mod state;

pub use resume::Resume;
pub use state::{Batch, Finished, State};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::key::{ItemRef, SessionKey};
use super::shard::Shard;
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
        #[serde(default, skip_serializing_if = "state::is_zero")]
        first: usize,
        /// The number of the server it is sent to (see [`Entry::Server`]); 0, the first server
        /// the journal knew, is left out.
        #[serde(default, skip_serializing_if = "state::is_zero_u16")]
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
        /// Found by the end's look among the server's images for what an item the run took
        /// back (or a restart cancelled) made before it stopped: not looked for again.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        found: bool,
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
    /// The run ended with every job done and its end's work done: the server cleaned up, the
    /// summary, gallery and grids written. A later entry (another run's) unsets it.
    Ended,
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

impl Journal {
    /// The journal's path for an output folder (of a run that is not sharded).
    #[must_use]
    pub fn path_in(output_dir: &Path) -> PathBuf {
        output_dir.join(Shard::WHOLE.journal())
    }

    /// Whether an output folder holds a journal: of a run, or of one of its shards.
    #[must_use]
    pub fn any_in(output_dir: &Path) -> bool {
        !Shard::journals_in(output_dir).is_empty()
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
        Journal::open_shard_in(store, fresh, Shard::WHOLE)
    }

    /// [`Journal::open_in`] for the journal of shard `shard` (each shard has its own, see
    /// [`Shard::journal`]).
    ///
    /// # Errors
    /// As [`Journal::open_in`].
    pub fn open_shard_in(
        store: &dyn OutputStore,
        fresh: bool,
        shard: Shard,
    ) -> std::io::Result<(Journal, State)> {
        let journal = shard.journal();
        let rel = journal.as_path();
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
        let state = match read_text(store, rel)? {
            Some(text) => {
                let state = State::from_entries(parse(&text));
                if text.lines().count() > COMPACT_AT_LINES {
                    compact(store, rel, &state)?;
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

    /// Reads the journal of shard `shard` of an output folder (`None` when there is none).
    ///
    /// # Errors
    /// When the file exists but cannot be read.
    pub fn read_shard(output_dir: &Path, shard: Shard) -> std::io::Result<Option<State>> {
        Journal::read_shard_in(&LocalStore::at(output_dir), shard)
    }

    /// Reads the journal of shard `shard` of a store (`None` when there is none).
    ///
    /// # Errors
    /// When the file exists but cannot be read.
    pub fn read_shard_in(store: &dyn OutputStore, shard: Shard) -> std::io::Result<Option<State>> {
        Ok(read_text(store, &shard.journal())?.map(|text| State::from_entries(parse(&text))))
    }

    /// Reads a store's journal without opening it for writing (`None` when there is none).
    ///
    /// # Errors
    /// When the file exists but cannot be read.
    pub fn read_in(store: &dyn OutputStore) -> std::io::Result<Option<State>> {
        Journal::read_shard_in(store, Shard::WHOLE)
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
fn read_text(store: &dyn OutputStore, rel: &Path) -> std::io::Result<Option<String>> {
    let Some(bytes) = store.read(rel, u64::MAX).map_err(PlaceError::into_io)? else {
        return Ok(None);
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Replaces the journal by one checkpoint line holding `state` (atomically: a crash leaves
/// either the old journal or the new one).
fn compact(store: &dyn OutputStore, rel: &Path, state: &State) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(&Entry::Checkpoint {
        state: Box::new(state.clone()),
    })
    .map_err(std::io::Error::other)?;
    line.push(b'\n');
    store
        .write_replacing(rel, &line)
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

#[cfg(test)]
mod tests;
