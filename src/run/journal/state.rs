//! What the journal says happened, folded from its entries.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Entry, ItemEnd};
use crate::run::key::{ItemRef, JobKey, SessionKey};

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
    /// Uploaded files by content hash → image name (the latest upload of that content).
    pub uploads: BTreeMap<String, String>,
    /// Every upload of the runs, image name → content hash: a file uploaded to each server of a
    /// pool has a name on each, and each is reused and cleaned up on its own server.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub uploaded: BTreeMap<String, String>,
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
    /// The latest run ended with every job done and its end's work done (see [`Entry::Ended`]):
    /// a rerun with every file on disk has nothing to do, on the server either.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ended: bool,
    /// The servers the runs used, by number (see [`Entry::Server`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub servers: BTreeMap<u16, String>,
    /// Items the runs took back, or that a server restart cancelled: what their nodes made
    /// before they stopped is looked for at the end (see [`State::looked_for`]).
    #[serde(skip)]
    pub taken_back: BTreeSet<ItemRef>,
    /// Items whose images the end looked for already ([`Entry::Produced`] with `found`).
    #[serde(skip)]
    pub looked_for: BTreeSet<ItemRef>,
    /// Each job's latest batch.
    #[serde(skip)]
    pub(super) latest: HashMap<JobKey, String>,
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
pub(super) fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[allow(clippy::trivially_copy_pass_by_ref)]
pub(super) fn is_zero_u16(n: &u16) -> bool {
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
        // Anything a run does after an end is another run's, whose own end is still to come.
        self.ended = matches!(entry, Entry::Ended);
        match entry {
            Entry::Ended => {}
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
                self.uploaded.insert(image_name.clone(), sha256.clone());
                self.uploads.insert(sha256, image_name);
            }
            Entry::Produced {
                item_id,
                session_id,
                images,
                found,
            } => {
                if found {
                    self.looked_for.insert(item_id);
                }
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
                self.taken_back.insert(item_id);
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

    /// Every image name the runs uploaded.
    pub fn upload_names(&self) -> impl Iterator<Item = &String> {
        self.uploaded.keys().chain(self.uploads.values())
    }

    /// The names the runs uploaded content `sha256` under (one per server it went to).
    pub fn uploads_of<'s>(&'s self, sha256: &'s str) -> impl Iterator<Item = &'s String> {
        self.uploaded
            .iter()
            .filter(move |(_, sha)| *sha == sha256)
            .map(|(name, _)| name)
            .chain(self.uploads.get(sha256))
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
}
