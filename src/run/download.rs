//! The downloads of a run's outputs, as tasks: each file downloaded (or copied from a file of
//! this run with the same server image) into a temporary file in its folder, then placed with
//! its sidecar under the output folder's rules. A download that fails because the server does
//! not answer is tried again until the server has been gone for the run's wait, or until the
//! run gives its item up (its server left the pool).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::key::ItemRef;
use super::summary::Sidecar;
use crate::client::{Client, ClientError};
use crate::fs::place::Name;
use crate::store::{OutputStore, Staged};

/// What a download task hands back: the item, the files written, the files that failed.
pub(super) type DownloadResult = (ItemRef, Vec<Planned>, Vec<(Planned, SaveError)>);

/// The suffix of an output's sidecar (`x.png` → `x.png.json`).
pub(super) const SIDECAR: &str = ".json";

/// One file to write: where, from which server image.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    pub(super) image_name: String,
    /// Its name before a free suffix is chosen.
    pub(super) name: Name,
    /// The suffix number planned (the first free one when it was planned).
    pub(super) start: u32,
    /// Where it goes (once written: where it went).
    pub(super) path: PathBuf,
    pub(super) sidecar: Option<Sidecar>,
    /// What is on disk already.
    pub(super) have: Have,
    /// Its node feeds no other node: once on disk, the image may go from the server while the
    /// run goes (no running session of the run can still be reading it).
    pub(super) terminal: bool,
    /// Its node may be answered from the server's invocation cache (`use_cache`): the server
    /// may hand the same image to later sessions of the run, so it stays on the server while
    /// the run has sessions open there (see [`super::cleanup`]).
    pub(super) cached: bool,
}

/// Whether a planned file is on disk already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Have {
    /// Not yet: download (or copy) it.
    Nothing,
    /// Written and journaled by an earlier run.
    Journaled,
    /// Written by an earlier run that was killed before journaling it (its sidecar names the
    /// same server image): journal it.
    Found,
    /// Written by an earlier try of the same session (its item was lost, or its job is tried
    /// again): download it and replace that file, so the job keeps one file per output.
    Superseded,
}

/// The downloads under way.
pub(super) struct Downloads {
    pub(super) tasks: JoinSet<DownloadResult>,
    semaphore: Arc<tokio::sync::Semaphore>,
    /// How long a download waits for a server that does not answer.
    server_wait: Duration,
    /// Items the run gave up (their server left the pool): a download of theirs still under
    /// way places nothing, so that a late result is not written beside the job's new one.
    abandoned: Arc<Mutex<HashSet<ItemRef>>>,
}

impl Downloads {
    /// At most `at_once` downloads at a time.
    pub(super) fn new(at_once: usize, server_wait: Duration) -> Downloads {
        Downloads {
            tasks: JoinSet::new(),
            semaphore: Arc::new(tokio::sync::Semaphore::new(at_once)),
            server_wait,
            abandoned: Arc::default(),
        }
    }

    /// Gives items up: what their downloads have not placed yet is not placed.
    pub(super) fn abandon(&self, items: impl IntoIterator<Item = ItemRef>) {
        if let Ok(mut abandoned) = self.abandoned.lock() {
            abandoned.extend(items);
        }
    }

    /// Starts writing item `item`'s files into `store`, each from `client` (or copied from the
    /// file of the store given beside it).
    pub(super) fn spawn(
        &mut self,
        client: Client,
        store: Arc<dyn OutputStore>,
        item: ItemRef,
        files: Vec<(Planned, Option<PathBuf>)>,
    ) {
        let semaphore = Arc::clone(&self.semaphore);
        let fetch = Fetch {
            client,
            server_wait: self.server_wait,
            item,
            abandoned: Arc::clone(&self.abandoned),
        };
        self.tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let mut ok = Vec::new();
            let mut failed = Vec::new();
            for (mut file, copy_from) in files {
                if matches!(file.have, Have::Journaled | Have::Found) {
                    ok.push(file);
                    continue;
                }
                match fetch.save(&*store, &mut file, copy_from.as_deref()).await {
                    Ok(()) => ok.push(file),
                    Err(e) => failed.push((file, e)),
                }
            }
            (item, ok, failed)
        });
    }
}

/// How often a download under way checks whether the run gave its item up.
const GIVEN_UP_CHECK: Duration = Duration::from_millis(250);

/// Where an item's files come from.
struct Fetch {
    client: Client,
    server_wait: Duration,
    item: ItemRef,
    abandoned: Arc<Mutex<HashSet<ItemRef>>>,
}

impl Fetch {
    /// Whether the run gave the item up.
    fn given_up(&self) -> bool {
        self.abandoned.lock().is_ok_and(|a| a.contains(&self.item))
    }

    /// Returns once the run gives the item up.
    async fn until_given_up(&self) {
        while !self.given_up() {
            tokio::time::sleep(GIVEN_UP_CHECK).await;
        }
    }

    /// Writes one planned file: staged in the store (downloaded, or copied from `copy_from`,
    /// a file of the store), then committed with its sidecar under the first free name from
    /// the planned one on, or replacing an earlier try's file. `file.path` becomes where it
    /// went.
    async fn save(
        &self,
        store: &dyn OutputStore,
        file: &mut Planned,
        copy_from: Option<&Path>,
    ) -> Result<(), SaveError> {
        let staged = store.stage(&file.path)?;
        match copy_from {
            Some(existing) if store.exists(existing).unwrap_or(false) => {
                copy_into(store, existing, &staged)?;
            }
            // A download from a server that left the run (one that stopped answering, say) is
            // given up at once rather than at the end of its own time-out.
            _ => tokio::select! {
                done = self.download(&file.image_name, staged.path()) => done?,
                () = self.until_given_up() => return Err(SaveError::GivenUp),
            },
        }
        // The staged file goes with `staged` when this returns without committing it.
        if self.given_up() {
            return Err(SaveError::GivenUp);
        }
        let sidecar = match &file.sidecar {
            Some(s) => Some(s.to_bytes().map_err(SaveError::Sidecar)?),
            None => None,
        };
        let companions: Vec<(&str, &[u8])> = sidecar
            .iter()
            .map(|bytes| (SIDECAR, bytes.as_slice()))
            .collect();
        file.path = if file.have == Have::Superseded {
            store.replace(staged, &file.path, &companions)
        } else {
            store.commit(staged, &file.name, &companions, file.start, &HashSet::new())
        }?;
        Ok(())
    }

    /// Downloads one image, waiting out an outage of up to the run's wait (less once the run
    /// gives the item up).
    async fn download(&self, image_name: &str, path: &Path) -> Result<(), ClientError> {
        let mut down_since: Option<Instant> = None;
        loop {
            match self.client.images().download(image_name, path).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_unreachable() => {
                    let since = *down_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.server_wait || self.given_up() {
                        return Err(e);
                    }
                    tokio::time::sleep(super::clock::pause_after(since.elapsed())).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Copies the store's file `from` into the staged file.
fn copy_into(store: &dyn OutputStore, from: &Path, staged: &Staged) -> Result<(), SaveError> {
    let Some(mut reader) = store.open(from)? else {
        return Err(SaveError::Gone(from.to_path_buf()));
    };
    let mut to = crate::fs::File::create(staged.path())?;
    std::io::copy(&mut reader, &mut to)?;
    Ok(())
}

/// Why an output could not be saved (its job fails, and the output stays on the server).
#[derive(Debug, thiserror::Error)]
pub(super) enum SaveError {
    /// The store refused to stage, commit or replace it.
    #[error(transparent)]
    Store(#[from] crate::fs::place::PlaceError),
    /// The download failed.
    #[error(transparent)]
    Download(#[from] ClientError),
    /// The file of this run it was to be copied from went away.
    #[error("`{}` went away before it was copied", .0.display())]
    Gone(PathBuf),
    /// Copying it failed.
    #[error(transparent)]
    Copy(#[from] std::io::Error),
    /// Its sidecar could not be written out.
    #[error("cannot write its sidecar")]
    Sidecar(#[source] std::io::Error),
    /// The run gave the item up while it downloaded.
    #[error("the run gave the item up (its server left the pool)")]
    GivenUp,
}
