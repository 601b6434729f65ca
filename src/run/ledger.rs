//! The one state of a run: what its journal says (replayed when it opens, folded as it grows)
//! plus what this process saw. Every step of the engine reads and writes it; every entry is
//! on disk before the state it leads to is acted on.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::JobFailure;
use super::journal::{Entry, Journal, State};
use super::key::SessionKey;

/// A queue item of this run: which session of which job it runs.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    /// The job's index.
    pub job: usize,
    /// The session.
    pub key: SessionKey,
    /// Its batch.
    pub batch: String,
    /// The server outage count when it was submitted (or re-attached): an item cancelled after
    /// a later outage was cancelled by the server's restart, not by a user.
    pub epoch: u64,
}

/// The run's state.
#[derive(Debug)]
pub(super) struct Ledger {
    journal: Journal,
    /// What the journal says, this run's entries included.
    pub state: State,
    /// This run's items, by id.
    pub items: HashMap<i64, Slot>,
    /// Items of this run still open on the server.
    pub open: BTreeSet<i64>,
    /// Image name → a file already written in this run (to copy instead of downloading again).
    pub written: HashMap<String, PathBuf>,
    /// Paths handed out in this run.
    pub taken: HashSet<PathBuf>,
    /// The paths handed out to each job (given back when it is submitted again).
    handed_out: HashMap<usize, Vec<PathBuf>>,
    /// Outputs that could not be saved, per job.
    pub left_on_server: BTreeMap<usize, Vec<String>>,
    /// Files per job.
    pub files: BTreeMap<usize, Vec<PathBuf>>,
    /// Failed jobs, in the order they failed.
    pub failures: Vec<JobFailure>,
    failed_jobs: HashSet<usize>,
    /// Sessions still open, per job.
    pending: HashMap<usize, usize>,
    /// Completed jobs.
    pub completed: BTreeSet<usize>,
    /// How often each job was submitted again after a server restart cancelled it.
    pub resubmits: HashMap<usize, u32>,
    /// Outputs of terminal nodes now on disk that no cleanup pass has looked at yet.
    pub fresh_outputs: Vec<String>,
}

impl Ledger {
    /// Opens an output folder's journal (see [`Journal::open`]).
    pub fn open(output_dir: &Path, fresh: bool) -> std::io::Result<Ledger> {
        let (journal, state) = Journal::open(output_dir, fresh)?;
        Ok(Ledger {
            journal,
            state,
            items: HashMap::new(),
            open: BTreeSet::new(),
            written: HashMap::new(),
            taken: HashSet::new(),
            handed_out: HashMap::new(),
            left_on_server: BTreeMap::new(),
            files: BTreeMap::new(),
            failures: Vec::new(),
            failed_jobs: HashSet::new(),
            pending: HashMap::new(),
            completed: BTreeSet::new(),
            resubmits: HashMap::new(),
            fresh_outputs: Vec::new(),
        })
    }

    /// Journals an entry (on disk when this returns) and folds it into the state.
    pub fn record(&mut self, entry: Entry) -> std::io::Result<()> {
        self.journal.append(&entry)?;
        self.state.apply(entry);
        Ok(())
    }

    /// Follows a queue item of job `slot.job`.
    pub fn track(&mut self, item_id: i64, slot: Slot) {
        self.open.insert(item_id);
        self.items.insert(item_id, slot);
    }

    /// Hands out `path` to an output of `job`.
    pub fn take(&mut self, job: usize, path: PathBuf) {
        self.taken.insert(path.clone());
        self.handed_out.entry(job).or_default().push(path);
    }

    /// The job of one of the run's queue items.
    pub fn job_of(&self, item_id: i64) -> Option<usize> {
        self.items.get(&item_id).map(|s| s.job)
    }

    /// Sets how many sessions of a job are open.
    pub fn expect_sessions(&mut self, job: usize, sessions: usize) {
        self.pending.insert(job, sessions);
    }

    /// An item ended; returns whether it was its job's last open session.
    pub fn item_ended(&mut self, item_id: i64) -> bool {
        self.open.remove(&item_id);
        let Some(job) = self.items.get(&item_id).map(|s| s.job) else {
            return false;
        };
        let left = self.pending.entry(job).or_insert(1);
        *left = left.saturating_sub(1);
        *left == 0
    }

    /// Forgets a job's sessions of this run (it is submitted again); returns their item ids.
    pub fn forget_job(&mut self, job: usize) -> Vec<i64> {
        let ids: Vec<i64> = self
            .items
            .iter()
            .filter(|(_, s)| s.job == job)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            self.open.remove(id);
            self.items.remove(id);
        }
        self.pending.remove(&job);
        self.files.remove(&job);
        // The paths its items were to be written to are free again, unless written (a file
        // there is found as an earlier try's when the job's new item plans its outputs).
        for path in self.handed_out.remove(&job).unwrap_or_default() {
            self.taken.remove(&path);
        }
        self.left_on_server.remove(&job);
        if self.failed_jobs.remove(&job) {
            self.failures.retain(|f| f.job != job);
        }
        ids
    }

    /// Records a job's failure; false when it had already failed.
    pub fn fail(&mut self, job: usize, item_id: i64, error: String) -> bool {
        if self.failed_jobs.insert(job) {
            self.failures.push(JobFailure {
                job,
                // As the server knows it.
                item_id: super::key::ItemRef(item_id).id(),
                error,
            });
            true
        } else {
            false
        }
    }

    /// The number of the server at `url` in the journal, numbering it when the journal does not
    /// know it yet: the first server a journal knows is 0 (also for a journal written before
    /// servers were numbered, whose items are then taken for its items: the resume checks
    /// that the server has them).
    pub fn server_number(&mut self, url: &str) -> std::io::Result<u16> {
        if let Some((number, _)) = self.state.servers.iter().find(|(_, u)| *u == url) {
            return Ok(*number);
        }
        let number = self
            .state
            .servers
            .keys()
            .next_back()
            .map_or(0, |n| n.saturating_add(1));
        self.record(Entry::Server {
            number,
            url: url.to_owned(),
        })?;
        Ok(number)
    }

    /// The open items of the run on server `number`.
    pub fn open_on(&self, number: u16) -> impl Iterator<Item = i64> + '_ {
        self.open
            .iter()
            .copied()
            .filter(move |id| super::key::ItemRef(*id).server() == number)
    }

    /// Whether a job has failed.
    pub fn has_failed(&self, job: usize) -> bool {
        self.failed_jobs.contains(&job)
    }

    /// How many jobs failed.
    pub fn failed_count(&self) -> usize {
        self.failed_jobs.len()
    }
}
