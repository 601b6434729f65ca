//! A run's progress, read from its journal (and from its server, when it answers), and taking a
//! run's items back from the server (`invk-run status`, `invk-run cancel`).

use super::error::RunError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::journal::{Entry, Journal, Resume, State};
use super::key::{ItemRef, SessionKey};
use super::shard::Shard;
use super::take_back::{Stopped, Which, take_back};
use crate::client::Client;
use crate::store::{LocalStore, OutputStore};

/// What a run's journal says of its jobs; of a sweep run in shards, what all their journals
/// say, with each shard's own status in [`RunStatus::shards`].
#[derive(Debug, Clone, Serialize)]
pub struct RunStatus {
    /// The output folder.
    pub output_dir: PathBuf,
    /// The shard this status is of (`K/N`); none for a whole run or the sum of the shards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// The server of the latest run.
    pub server: Option<String>,
    /// The manifest's job count, as the latest run recorded it.
    pub jobs: Option<usize>,
    /// Jobs completed, their files on disk.
    pub completed: usize,
    /// Jobs that failed.
    pub failed: usize,
    /// Jobs with items still on the server (pending, running, or finished and not collected).
    pub on_server: usize,
    /// Jobs never submitted (or taken back): the next run submits them.
    pub not_started: Option<usize>,
    /// Files the journal records, and how many of them are still on disk.
    pub files: usize,
    /// Of those, on disk.
    pub files_on_disk: usize,
    /// The files of completed jobs that are no longer on disk, and what a rerun does of each.
    pub missing: Vec<super::repair::MissingFile>,
    /// What the server says of the items still there (when it was asked and answered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<BTreeMap<String, usize>>,
    /// Of a sweep run in shards, each shard's status, in shard order (a shard that has not
    /// started yet too: all its jobs not started).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<RunStatus>,
    /// Of a shard, whether it has a journal (it started).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub never_started: bool,
    /// The job count of the whole sweep, as the journal recorded it.
    #[serde(skip)]
    sweep_total: Option<usize>,
}

/// A run's items that are still on server `number`, with their sessions.
fn open_items(state: &State, number: u16) -> BTreeMap<ItemRef, SessionKey> {
    let mut open = BTreeMap::new();
    for key in state.known_jobs() {
        if let Resume::Attach { open: items, .. } = state.resume(*key) {
            for (session, item) in items {
                if item.server() == number {
                    open.insert(item, session);
                }
            }
        }
    }
    open
}

/// The servers a run's journal names, by number: those of a pool's run, or the one of a
/// journal written before servers were numbered (its latest run's, as 0).
///
/// # Errors
/// When the folder holds no journal, or it cannot be read.
pub fn servers_of(output_dir: &Path) -> std::io::Result<Vec<(u16, String)>> {
    servers_of_shard(output_dir, Shard::WHOLE)
}

/// [`servers_of`] in the journal of shard `shard` (each shard numbers its servers itself).
///
/// # Errors
/// When the folder holds no journal of the shard, or it cannot be read.
pub fn servers_of_shard(output_dir: &Path, shard: Shard) -> std::io::Result<Vec<(u16, String)>> {
    let state = read_state(output_dir, shard)?;
    if state.servers.is_empty() {
        return Ok(state.server.into_iter().map(|url| (0, url)).collect());
    }
    Ok(state.servers.into_iter().collect())
}

/// The number a run's journal gives the server at `url` (URLs compared as the client
/// normalises them); 0, the first server, when it names none such.
///
/// # Errors
/// When the folder holds no journal, or it cannot be read.
pub fn server_number_of(output_dir: &Path, shard: Shard, url: &str) -> std::io::Result<u16> {
    let normal = |u: &str| Client::base_url_of(u).map_or_else(|_| u.to_owned(), |b| b.to_string());
    let wanted = normal(url);
    Ok(servers_of_shard(output_dir, shard)?
        .into_iter()
        .find(|(_, u)| normal(u) == wanted)
        .map_or(0, |(n, _)| n))
}

/// How many folders [`runs_below`] looks at, at most.
const MAX_FOLDERS_LOOKED_AT: usize = 10_000;

/// How deep below a folder [`runs_below`] looks.
const RUNS_BELOW_DEPTH: usize = 3;

/// The output folders of runs below `dir` (not `dir` itself), sorted: folders holding a
/// journal, looked for a few levels down (a run's folder is not looked into). The runs of
/// `invk-run watch DIR --each MANIFEST` are such folders, one per image.
#[must_use]
pub fn runs_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut looked_at = 0;
    let mut level = vec![dir.to_path_buf()];
    for _ in 0..RUNS_BELOW_DEPTH {
        let mut next = Vec::new();
        for folder in level {
            let Ok(entries) = crate::fs::read_dir(&folder) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                // Links are not followed: a run's folder is never reached through one.
                if hidden || !entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                looked_at += 1;
                if looked_at > MAX_FOLDERS_LOOKED_AT {
                    break;
                }
                if Journal::any_in(&path) {
                    found.push(path);
                } else {
                    next.push(path);
                }
            }
        }
        level = next;
    }
    found.sort();
    found
}

/// The journal of shard `shard` of an output folder.
///
/// # Errors
/// When there is none, or it cannot be read.
fn read_state(output_dir: &Path, shard: Shard) -> std::io::Result<State> {
    Journal::read_shard(output_dir, shard)?.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "`{}` holds no run (no `.invk-run/journal.jsonl`, here or in the folders below it): name a run's output folder or its manifest",
                output_dir.display()
            ),
        )
    })
}

impl RunStatus {
    /// Reads an output folder's journal; of a sweep run in shards, every shard's, summed, with
    /// each shard's status in [`RunStatus::shards`].
    ///
    /// # Errors
    /// When the folder holds no journal, or one cannot be read.
    pub fn read(output_dir: &Path) -> std::io::Result<RunStatus> {
        let journals = Shard::journals_in(output_dir);
        let Some(last) = journals.last().copied() else {
            return Err(read_state(output_dir, Shard::WHOLE)
                .err()
                .unwrap_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no journal")
                }));
        };
        if last.is_whole() {
            return RunStatus::read_shard(output_dir, Shard::WHOLE);
        }
        // The shards of the latest count (a folder holds one count unless `--fresh` changed
        // it, which sets the others aside).
        let count = last.count();
        let mut shards = Vec::with_capacity(count as usize);
        for index in 0..count {
            let shard = Shard::new(index, count).map_err(std::io::Error::other)?;
            shards.push(if journals.contains(&shard) {
                RunStatus::read_shard(output_dir, shard)?
            } else {
                RunStatus::empty(output_dir, Some(shard))
            });
        }
        let total = shards.iter().filter_map(|s| s.sweep_total).max();
        for s in &mut shards {
            if s.never_started {
                s.jobs = total.map(|t| s.shard.map_or(t, |sh| sh.jobs_of(t)));
                s.not_started = s.jobs;
            }
        }
        let mut all = RunStatus::empty(output_dir, None);
        all.shards = shards;
        all.fold_shards();
        Ok(all)
    }

    /// A status with nothing in it.
    fn empty(output_dir: &Path, shard: Option<Shard>) -> RunStatus {
        RunStatus {
            output_dir: output_dir.to_path_buf(),
            shard,
            server: None,
            jobs: None,
            completed: 0,
            failed: 0,
            on_server: 0,
            not_started: None,
            files: 0,
            files_on_disk: 0,
            missing: Vec::new(),
            items: None,
            shards: Vec::new(),
            never_started: shard.is_some(),
            sweep_total: None,
        }
    }

    /// The sums of the shards' statuses (what the servers said of them included).
    pub fn fold_shards(&mut self) {
        if self.shards.is_empty() {
            return;
        }
        let shards = &self.shards;
        let sum = |f: fn(&RunStatus) -> usize| shards.iter().map(f).sum::<usize>();
        self.jobs = shards.iter().filter_map(|s| s.sweep_total).max();
        self.completed = sum(|s| s.completed);
        self.failed = sum(|s| s.failed);
        self.on_server = sum(|s| s.on_server);
        self.files = sum(|s| s.files);
        self.files_on_disk = sum(|s| s.files_on_disk);
        self.missing = shards.iter().flat_map(|s| s.missing.clone()).collect();
        self.server = shards.iter().find_map(|s| s.server.clone());
        self.not_started = self
            .jobs
            .map(|n| n.saturating_sub(self.completed + self.failed + self.on_server));
        let mut items: Option<BTreeMap<String, usize>> = None;
        for s in shards {
            for (k, n) in s.items.iter().flatten() {
                *items.get_or_insert_default().entry(k.clone()).or_default() += n;
            }
        }
        self.items = items;
    }

    /// Reads the journal of shard `shard` of an output folder ([`Shard::WHOLE`]: of a run that
    /// is not sharded).
    ///
    /// # Errors
    /// When the folder holds no such journal, or it cannot be read.
    pub fn read_shard(output_dir: &Path, shard: Shard) -> std::io::Result<RunStatus> {
        let state = read_state(output_dir, shard)?;
        let mut status = RunStatus {
            server: state.server.clone(),
            jobs: state.jobs.map(|n| shard.jobs_of(n)),
            never_started: false,
            sweep_total: state.jobs,
            ..RunStatus::empty(output_dir, (!shard.is_whole()).then_some(shard))
        };
        let store = LocalStore::at(output_dir);
        let mut known: Vec<_> = state.known_jobs().copied().collect();
        known.sort_unstable();
        for key in known {
            match state.resume(key) {
                Resume::Done { .. } => {
                    status.completed += 1;
                    status
                        .missing
                        .extend(super::repair::missing_of(&state, &store, key));
                }
                Resume::Failed { .. } => status.failed += 1,
                Resume::Attach { .. } | Resume::Recover { .. } => status.on_server += 1,
                Resume::Submit => {}
            }
        }
        for file in state.downloads.values().flat_map(BTreeMap::values) {
            status.files += 1;
            if store.exists(file).unwrap_or(false) {
                status.files_on_disk += 1;
            }
        }
        status.not_started = status
            .jobs
            .map(|n| n.saturating_sub(status.completed + status.failed + status.on_server));
        Ok(status)
    }

    /// Whether a server of the run is worth asking: items of the run are still there, or it
    /// may still have the images of missing files.
    #[must_use]
    pub fn asks_server(&self) -> bool {
        self.on_server > 0
            || (self.missing.iter()).any(|m| m.repair == super::repair::Repair::DownloadIfOnServer)
    }

    /// Asks server `number` of the run (see [`servers_of`]) whether it still has the images of
    /// the missing files it made: what a rerun does of each becomes certain.
    ///
    /// # Errors
    /// When the server does not answer.
    pub async fn ask_server_for_missing(
        &mut self,
        number: u16,
        client: &Client,
    ) -> Result<(), RunError> {
        use super::repair::Repair;
        let names: Vec<String> = (self.missing.iter())
            .filter(|m| m.repair == Repair::DownloadIfOnServer && m.server() == number)
            .map(|m| m.image_name.clone())
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let there: std::collections::HashSet<String> = (client.images().by_names(&names).await?)
            .into_iter()
            .map(|dto| dto.image_name)
            .collect();
        for m in &mut self.missing {
            if m.repair == Repair::DownloadIfOnServer && m.server() == number {
                m.repair = if there.contains(&m.image_name) {
                    Repair::Download
                } else {
                    Repair::RunAgain
                };
            }
        }
        Ok(())
    }

    /// Asks server `number` of the run (see [`servers_of`]) what became of the run's items
    /// still there; the counts add up over the servers asked.
    ///
    /// # Errors
    /// When the server does not answer.
    pub async fn ask_server(&mut self, number: u16, client: &Client) -> Result<(), RunError> {
        self.ask_server_for_missing(number, client).await?;
        if self.on_server == 0 {
            return Ok(());
        }
        let state = read_state(&self.output_dir, self.shard.unwrap_or_default())?;
        let ids: Vec<i64> = open_items(&state, number)
            .into_keys()
            .map(ItemRef::id)
            .collect();
        let mut items: BTreeMap<String, usize> = self.items.take().unwrap_or_default();
        for item in client.queue().items_by_ids(&ids).await? {
            *items.entry(item.status.as_str().to_owned()).or_default() += 1;
        }
        self.items = Some(items);
        Ok(())
    }
}

/// What `cancel` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cancelled {
    /// Items cancelled (pending or running).
    pub cancelled: usize,
    /// Items that had finished already (the next run collects them).
    pub finished: usize,
    /// Items the server no longer has.
    pub gone: usize,
}

/// How long `invk-run cancel` spends on each server.
const CANCEL_FOR: Duration = Duration::from_secs(60);

/// Cancels a run's items (of shard `shard`) that are pending or running on its server `number`
/// (see [`servers_of_shard`]) and journals them as taken back, so that the next run submits their jobs
/// again.
///
/// # Errors
/// When the journal cannot be read or written, or the server does not answer.
pub async fn cancel(
    output_dir: &Path,
    shard: Shard,
    number: u16,
    client: &Client,
) -> Result<Cancelled, RunError> {
    let state = read_state(output_dir, shard)?;
    let open = open_items(&state, number);
    let items: Vec<ItemRef> = open.keys().copied().collect();
    let store = LocalStore::open(output_dir).map_err(crate::fs::place::PlaceError::into_io)?;
    let (mut journal, _) = Journal::open_shard_in(&store, false, shard)?;
    let taken = take_back(
        client,
        number,
        &items,
        Which::Unfinished,
        CANCEL_FOR,
        |item| match open.get(&item) {
            Some(session) => journal.append(&Entry::Withdrawn {
                job: *session,
                item_id: item,
            }),
            None => Ok(()),
        },
    )
    .await?;
    match taken.unreachable {
        Some(Stopped::Client(e)) => return Err(e.into()),
        Some(Stopped::Timeout(waited)) => {
            return Err(RunError::ServerGone {
                server: client.base_url().to_string(),
                waited: super::clock::human(waited),
            });
        }
        None => {}
    }
    Ok(Cancelled {
        cancelled: taken.taken,
        finished: taken.finished + taken.running,
        gone: taken.gone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes `dir` a run's output folder (an empty journal).
    fn run_in(dir: &Path) {
        crate::fs::create_dir_all(dir.join(".invk-run")).expect("mkdir");
        crate::fs::write(Journal::path_in(dir), "").expect("journal");
    }

    #[test]
    fn runs_below_a_folder_are_found_a_few_levels_down_and_not_inside_a_run_or_a_link() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        for run in ["cat", "b/dog", "b/c/fox", "cat/inner", "a/b/c/too-deep"] {
            run_in(&root.join(run));
        }
        crate::fs::create_dir_all(root.join(".hidden/run")).expect("mkdir");
        run_in(&root.join(".hidden/run"));
        crate::fs::create_dir_all(root.join("empty")).expect("mkdir");
        std::os::unix::fs::symlink(root.join("cat"), root.join("link")).expect("link");
        let found: Vec<PathBuf> = runs_below(root)
            .into_iter()
            .map(|p| p.strip_prefix(root).expect("below").to_path_buf())
            .collect();
        assert_eq!(
            found,
            [
                PathBuf::from("b/c/fox"),
                PathBuf::from("b/dog"),
                PathBuf::from("cat")
            ]
        );
        assert!(runs_below(&root.join("empty")).is_empty());
        assert!(runs_below(&root.join("missing")).is_empty());
    }
}
