//! The one state of a run: what its journal says (replayed when it opens, folded as it grows)
//! plus what this process saw. The steps of the run ask it questions and record facts through
//! its methods; every fact that has an effect is journaled before the state it leads to is
//! acted on.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::journal::{Entry, ItemEnd, Journal, State};
use super::key::{ItemRef, SessionKey};
use super::outcome::JobFailure;
use crate::gallery::live::JobState;
use crate::store::OutputStore;

/// How often a server restart (or a transient fault of the server's own, see
/// [`super::server_fault`]) may end the same job before it counts as failed.
pub(super) const MAX_RESUBMITS: u32 = 3;

/// A queue item of this run: which session of which job it runs.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    /// The job's index.
    pub(super) job: usize,
    /// The session.
    pub(super) key: SessionKey,
    /// Its batch.
    pub(super) batch: String,
}

/// The run's state.
#[derive(Debug)]
pub(super) struct Ledger {
    journal: Journal,
    /// What the journal says, this run's entries included.
    state: State,
    /// This run's items.
    items: HashMap<ItemRef, Slot>,
    /// Items of this run still open on their servers.
    open: BTreeSet<ItemRef>,
    /// Image name → a file already written in this run (to copy instead of downloading again).
    written: HashMap<String, PathBuf>,
    /// Paths handed out in this run (relative to the store).
    taken: HashSet<PathBuf>,
    /// The paths handed out to each job (given back when it is submitted again).
    handed_out: HashMap<usize, Vec<PathBuf>>,
    /// Outputs that could not be saved, per job.
    left_on_server: BTreeMap<usize, Vec<String>>,
    /// Files per job.
    files: BTreeMap<usize, Vec<PathBuf>>,
    /// Failed jobs, in the order they failed.
    failures: Vec<JobFailure>,
    failed_jobs: HashSet<usize>,
    /// Sessions still open, per job.
    pending: HashMap<usize, usize>,
    /// Completed jobs.
    completed: BTreeSet<usize>,
    /// How often each job was submitted again after a server restart cancelled it.
    resubmits: HashMap<usize, u32>,
    /// Outputs of terminal nodes now on disk that no cleanup pass has looked at yet.
    fresh_outputs: Vec<String>,
    /// Outputs of nodes the server may answer from its invocation cache: the same image may
    /// reach later sessions of the run.
    shared: HashSet<String>,
    /// Such outputs a cleanup pass kept on the server because the run had sessions open there.
    held: BTreeSet<String>,
}

impl Ledger {
    /// Opens the journal of the run's store (see [`Journal::open_in`]).
    pub(super) fn open(
        store: &dyn OutputStore,
        fresh: bool,
        shard: super::shard::Shard,
    ) -> std::io::Result<Ledger> {
        let (journal, state) = Journal::open_shard_in(store, fresh, shard)?;
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
            shared: HashSet::new(),
            held: BTreeSet::new(),
        })
    }

    /// What the journal says, this run's entries included.
    pub(super) fn state(&self) -> &State {
        &self.state
    }

    /// Journals an entry (on disk when this returns) and folds it into the state.
    pub(super) fn record(&mut self, entry: Entry) -> std::io::Result<()> {
        self.journal.append(&entry)?;
        self.state.apply(entry);
        Ok(())
    }

    // ---- items ----

    /// Follows a queue item of job `slot.job`.
    pub(super) fn track(&mut self, item: ItemRef, slot: Slot) {
        self.open.insert(item);
        self.items.insert(item, slot);
    }

    /// What one of the run's queue items runs.
    pub(super) fn slot(&self, item: ItemRef) -> Option<&Slot> {
        self.items.get(&item)
    }

    /// The job of one of the run's queue items.
    pub(super) fn job_of(&self, item: ItemRef) -> Option<usize> {
        self.items.get(&item).map(|s| s.job)
    }

    /// The first item of each job this run followed (for the summary).
    pub(super) fn first_items(&self) -> HashMap<usize, ItemRef> {
        let mut first: HashMap<usize, ItemRef> = HashMap::new();
        for (item, slot) in &self.items {
            let at = first.entry(slot.job).or_insert(*item);
            *at = (*at).min(*item);
        }
        first
    }

    /// Whether no item of the run is open on any server.
    pub(super) fn nothing_open(&self) -> bool {
        self.open.is_empty()
    }

    /// Whether item `item` of the run is still open.
    pub(super) fn is_open(&self, item: ItemRef) -> bool {
        self.open.contains(&item)
    }

    /// How many items of the run are open.
    pub(super) fn open_count(&self) -> usize {
        self.open.len()
    }

    /// The open items of the run on server `number`.
    pub(super) fn open_on(&self, number: u16) -> impl Iterator<Item = ItemRef> + '_ {
        self.open
            .iter()
            .copied()
            .filter(move |item| item.server() == number)
    }

    /// Sets how many sessions of a job are open.
    pub(super) fn expect_sessions(&mut self, job: usize, sessions: usize) {
        self.pending.insert(job, sessions);
    }

    /// An item ended; returns whether it was its job's last open session.
    pub(super) fn item_ended(&mut self, item: ItemRef) -> bool {
        self.open.remove(&item);
        let Some(job) = self.items.get(&item).map(|s| s.job) else {
            return false;
        };
        let left = self.pending.entry(job).or_insert(1);
        *left = left.saturating_sub(1);
        *left == 0
    }

    /// An item of the run was taken back (Ctrl-C, a full queue, a server restart, a server
    /// leaving the pool): journaled as withdrawn, so that its job is submitted again, and
    /// ended. An item the run does not follow is left alone.
    pub(super) fn withdraw(&mut self, item: ItemRef) -> std::io::Result<()> {
        match self.items.get(&item).map(|s| s.key) {
            Some(key) => self.withdraw_session(item, key),
            None => Ok(()),
        }
    }

    /// Item `item` of session `key` was taken back (see [`Ledger::withdraw`]), also when the run
    /// does not follow it (a full queue took part of a job's sessions).
    pub(super) fn withdraw_session(
        &mut self,
        item: ItemRef,
        key: SessionKey,
    ) -> std::io::Result<()> {
        self.record(Entry::Withdrawn {
            job: key,
            item_id: item,
        })?;
        self.item_ended(item);
        Ok(())
    }

    /// Forgets a job's sessions of this run (it is submitted again); returns their items.
    pub(super) fn forget_job(&mut self, job: usize) -> Vec<ItemRef> {
        let items: Vec<ItemRef> = self
            .items
            .iter()
            .filter(|(_, s)| s.job == job)
            .map(|(item, _)| *item)
            .collect();
        for item in &items {
            self.open.remove(item);
            self.items.remove(item);
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
        items
    }

    /// Whether this process took item `item` (of session `key`) back: it is journaled as
    /// withdrawn (see [`withdrawn_in`]).
    pub(super) fn took_back(&self, item: ItemRef, key: SessionKey) -> bool {
        withdrawn_in(&self.state, item, key)
    }

    /// Counts a resubmission of `job` after a server restart or fault; `None` when it has been
    /// resubmitted [`MAX_RESUBMITS`] times already (it then counts as failed). Returns the
    /// number of this resubmission.
    pub(super) fn resubmit(&mut self, job: usize) -> Option<u32> {
        let count = self.resubmits.entry(job).or_default();
        (*count < MAX_RESUBMITS).then(|| {
            *count += 1;
            *count
        })
    }

    // ---- files ----

    /// Hands out `path` to an output of `job`.
    pub(super) fn take(&mut self, job: usize, path: PathBuf) {
        self.taken.insert(path.clone());
        self.handed_out.entry(job).or_default().push(path);
    }

    /// Whether `path` was handed out in this run.
    pub(super) fn is_taken(&self, path: &Path) -> bool {
        self.taken.contains(path)
    }

    /// The paths handed out in this run.
    pub(super) fn taken(&self) -> &HashSet<PathBuf> {
        &self.taken
    }

    /// A file this run wrote of server image `image_name`.
    pub(super) fn written(&self, image_name: &str) -> Option<&PathBuf> {
        self.written.get(image_name)
    }

    /// A file of server image `image_name` is on disk at `path` (the first one counts).
    pub(super) fn wrote(&mut self, image_name: &str, path: &Path) {
        self.written
            .entry(image_name.to_owned())
            .or_insert_with(|| path.to_path_buf());
    }

    /// Every server image this run wrote a file of.
    pub(super) fn written_images(&self) -> impl Iterator<Item = &String> {
        self.written.keys()
    }

    /// Adds files (relative to the output folder) to a job's.
    pub(super) fn add_files(&mut self, job: usize, files: impl IntoIterator<Item = PathBuf>) {
        self.files.entry(job).or_default().extend(files);
    }

    /// A job's files, relative to the output folder.
    pub(super) fn files_of(&self, job: usize) -> &[PathBuf] {
        self.files.get(&job).map_or(&[], Vec::as_slice)
    }

    /// Every file of the run, relative to the output folder.
    pub(super) fn all_files(&self) -> impl Iterator<Item = &PathBuf> {
        self.files.values().flatten()
    }

    /// Outputs of `job` that could not be saved stay on the server.
    pub(super) fn leave_on_server(&mut self, job: usize, names: impl IntoIterator<Item = String>) {
        self.left_on_server.entry(job).or_default().extend(names);
    }

    /// The outputs of `job` left on the server, if any.
    pub(super) fn left_on_server(&self, job: usize) -> Option<&Vec<String>> {
        self.left_on_server.get(&job)
    }

    /// Every output left on the server.
    pub(super) fn all_left_on_server(&self) -> BTreeSet<String> {
        self.left_on_server.values().flatten().cloned().collect()
    }

    /// A terminal node's output is on disk: the next cleanup pass may delete it. `cached`: its
    /// node may be answered from the server's invocation cache (see [`Ledger::is_shared`]).
    pub(super) fn fresh_output(&mut self, image_name: String, cached: bool) {
        if cached {
            self.shared.insert(image_name.clone());
        }
        self.fresh_outputs.push(image_name);
    }

    /// How many outputs wait for a cleanup pass (those held back not counted).
    pub(super) fn fresh_count(&self) -> usize {
        self.fresh_outputs.len()
    }

    /// The outputs waiting for a cleanup pass, with those an earlier pass held back, handed to
    /// it.
    pub(super) fn take_fresh(&mut self) -> Vec<String> {
        let mut fresh = std::mem::take(&mut self.fresh_outputs);
        fresh.extend(std::mem::take(&mut self.held));
        fresh
    }

    /// Whether output `image_name` is of a node the server may answer from its invocation
    /// cache: a later session of the run may be handed the same image.
    pub(super) fn is_shared(&self, image_name: &str) -> bool {
        self.shared.contains(image_name)
    }

    /// Outputs a cleanup pass kept on the server: the next pass looks at them again.
    pub(super) fn hold(&mut self, names: impl IntoIterator<Item = String>) {
        self.held.extend(names);
    }

    // ---- jobs ----

    /// A job completed (all its sessions, with every output on disk).
    pub(super) fn complete(&mut self, job: usize, files: Vec<PathBuf>) {
        self.completed.insert(job);
        if !files.is_empty() {
            self.files.insert(job, files);
        }
    }

    /// Whether a job completed.
    pub(super) fn is_completed(&self, job: usize) -> bool {
        self.completed.contains(&job)
    }

    /// The completed jobs.
    pub(super) fn completed(&self) -> impl Iterator<Item = usize> + '_ {
        self.completed.iter().copied()
    }

    /// How many jobs completed.
    pub(super) fn completed_count(&self) -> usize {
        self.completed.len()
    }

    /// Records a job's failure; false when it had already failed.
    pub(super) fn fail(&mut self, job: usize, item: ItemRef, error: String) -> bool {
        if self.failed_jobs.insert(job) {
            self.failures.push(JobFailure {
                job,
                // As the server knows it.
                item_id: item.id(),
                error,
            });
            true
        } else {
            false
        }
    }

    /// The failed jobs, in the order they failed.
    pub(super) fn failures(&self) -> &[JobFailure] {
        &self.failures
    }

    /// A failed job's failure.
    pub(super) fn failure_of(&self, job: usize) -> Option<&JobFailure> {
        self.failed_jobs
            .contains(&job)
            .then(|| self.failures.iter().find(|f| f.job == job))
            .flatten()
    }

    /// Whether a job has failed.
    pub(super) fn has_failed(&self, job: usize) -> bool {
        self.failed_jobs.contains(&job)
    }

    /// How many jobs failed.
    pub(super) fn failed_count(&self) -> usize {
        self.failed_jobs.len()
    }

    // ---- servers ----

    /// The number of the server at `url` in the journal, numbering it when the journal does not
    /// know it yet: the first server a journal knows is 0 (also for a journal written before
    /// servers were numbered, whose items are then taken for its items: the resume checks
    /// that the server has them).
    pub(super) fn server_number(&mut self, url: &str) -> std::io::Result<u16> {
        if let Some(number) = self.number_of(url) {
            return Ok(number);
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

    /// The number the journal gives the server at `url`, if it knows it.
    pub(super) fn number_of(&self, url: &str) -> Option<u16> {
        self.state
            .servers
            .iter()
            .find(|(_, u)| *u == url)
            .map(|(n, _)| *n)
    }

    /// Where `job` stands, for the running report.
    pub(super) fn job_state(&self, job: usize) -> JobState {
        let files = || self.files_of(job).to_vec();
        if self.is_completed(job) {
            return JobState::Completed { files: files() };
        }
        match self.failure_of(job) {
            Some(failure) => JobState::Failed {
                error: failure.error.clone(),
                files: files(),
            },
            None => JobState::Pending,
        }
    }
}

/// Whether `state` journals item `item` of session `key` as taken back by the run (Ctrl-C, a
/// full queue, a server leaving the pool, `invk-run cancel`): a cancel the run asked for. Any
/// other cancel of the run's item is a server restart's (or someone else's): the job goes again.
pub(super) fn withdrawn_in(state: &State, item: ItemRef, key: SessionKey) -> bool {
    state
        .finished
        .get(&key)
        .is_some_and(|f| f.item_id == item && f.status == ItemEnd::Withdrawn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_outputs_go_back_to_the_next_pass_without_starting_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::store::LocalStore::open(dir.path()).expect("store");
        let mut ledger =
            Ledger::open(&store, false, crate::run::shard::Shard::WHOLE).expect("ledger");
        ledger.fresh_output("shared.png".into(), true);
        ledger.fresh_output("own.png".into(), false);
        assert!(ledger.is_shared("shared.png"));
        assert!(!ledger.is_shared("own.png"));
        assert_eq!(ledger.take_fresh(), ["shared.png", "own.png"]);
        ledger.hold(["shared.png".to_owned()]);
        // Held outputs do not count toward the next pass, but it looks at them again.
        assert_eq!(ledger.fresh_count(), 0);
        ledger.fresh_output("next.png".into(), false);
        assert_eq!(ledger.take_fresh(), ["next.png", "shared.png"]);
        assert!(ledger.take_fresh().is_empty());
    }
}
