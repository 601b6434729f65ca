//! Where a run's outputs go: one interface, [`OutputStore`], through which outputs and their
//! sidecars are named, written, found again and listed, and the run's own files (`runs.jsonl`,
//! the journal, the gallery and grids) are appended to or rewritten. [`LocalStore`], the output
//! folder on the local disk under the rules of [`crate::fs::place`] (no clobber, sidecar first,
//! no writing through links), is its implementation today.
//!
//! Every path given to or returned by a store is **relative to its root** (`cat/0-out.png`,
//! `.invk-run/journal.jsonl`): only plain parts; an absolute path, `..`, `.` or an empty path is
//! refused with [`PlaceError::Outside`], so no name can leave the root.
//!
//! ```text
//! plan      free_name(name, companions, start, taken)     a name nothing else has or is given
//!           find_earlier(name, companion, pick)           an earlier try, by its sidecar
//! write     stage(rel) -> Staged                          a local file to fill (download into)
//!           commit(staged, name, companions, ...)         sidecar first, then the file; no clobber
//!           replace(staged, rel, companions)              an earlier try's file, same name
//! read      exists(rel), open(rel), read(rel, max)
//!           list_outputs(companion, visit)                every output with its sidecar
//! own files open_log(rel) -> Log                          runs.jsonl, the journal (append only)
//!           write_replacing(rel, bytes)                   index.html, grids, a checkpoint
//!           write_new(name, bytes)                        a new file under a free name
//!           move_aside(rel, to), prepare(rel)
//! ```
//!
//! **Synchronous, object-safe.** The local tree is synchronous, and the one slow step, the
//! download, writes into the [`Staged`] file, outside the store; so the trait is synchronous
//! (an async caller moves a call that may block for long into `spawn_blocking`). It is
//! object-safe: a run holds an `Arc<dyn OutputStore>` chosen when the manifest is read (a folder
//! today, say a bucket tomorrow), so neither the run nor the gallery is generic over a store
//! type, and the cost of dynamic dispatch is nothing beside a file write. That is why the
//! callbacks are `&mut dyn FnMut` and [`OutputStore::find_earlier`]'s `pick` answers yes or no
//! (a caller wanting more keeps it in the closure's captures).
//!
//! **Errors** are [`PlaceError`]s: each names its path. A store other than the local tree
//! returns [`PlaceError::Io`] with its own cause inside (`std::io::Error::other(e)`),
//! [`PlaceError::Outside`], [`PlaceError::NoFreeName`] and [`PlaceError::TooLarge`] as the
//! trait says, and never [`PlaceError::Link`] or [`PlaceError::NotAFolder`] (those are the
//! local tree's own).
//!
//! # Adding a store
//!
//! 1. Implement [`OutputStore`] (and a [`Log`] for [`OutputStore::open_log`]) in a module of
//!    its own under `src/store/`. What each method must do is in its documentation; the rules
//!    that matter most: a name is free only when the file **and** each companion are free, and
//!    a commit never replaces either; the companion (sidecar) is stored **before** the file, so
//!    an interrupted commit leaves a sidecar without its file, which
//!    [`OutputStore::find_earlier`] shows to `pick` (and a later try refills that slot with
//!    [`OutputStore::replace`]) and [`OutputStore::free_name`] treats as taken; a staged file
//!    never committed leaves nothing behind; names starting with a `.` are the run's own and
//!    never listed as outputs.
//! 2. Staging may be a local temporary file for any store ([`Staged::new`] takes any
//!    [`tempfile::TempPath`]): the download fills it, and `commit` uploads it.
//! 3. Return `None` from [`OutputStore::local_folder`] unless the outputs can be read as local
//!    files: the gallery then writes its page and grids through the store but draws no
//!    thumbnails, and refuses to draw grids (they decode the images from local files).
//! 4. Run the conformance suite against it: a test that, for each rule of
//!    [`conformance::RULES`], makes a fresh, empty store and calls the rule on it:
//!
//! ```ignore
//! #[test]
//! fn my_store_keeps_the_rules() {
//!     for (name, rule) in invk_run::store::conformance::RULES {
//!         let store = MyStore::new(fresh_bucket_prefix());
//!         eprintln!("rule: {name}");
//!         rule(&store);
//!     }
//! }
//! ```
//!
//! The local store runs it in this module's tests (`cargo test --lib store`), with the
//! local-only rules ([`conformance::LOCAL_RULES`]: links refused) besides.

use std::collections::HashSet;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

pub mod conformance;
mod local;

pub use crate::fs::place::{Name, PlaceError, companion};
pub use local::{LocalLog, LocalStore};

/// A file being written, not yet in the store: fill the file at [`Staged::path`] completely
/// (a download, a copy), then give it to [`OutputStore::commit`] or [`OutputStore::replace`].
/// Dropped without that, it is deleted and leaves nothing in the store.
#[derive(Debug)]
pub struct Staged {
    file: tempfile::TempPath,
}

impl Staged {
    /// A staged file kept in `file` (deleted when the [`Staged`] is dropped).
    #[must_use]
    pub fn new(file: tempfile::TempPath) -> Staged {
        Staged { file }
    }

    /// The local file to write the content into.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.file
    }
}

/// A candidate name [`OutputStore::find_earlier`] shows its `pick`.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Its path.
    pub path: &'a Path,
    /// Whether the file itself is there (else only its companion is: a commit cut short).
    pub has_file: bool,
    /// The companion's bytes, when it is there and small enough to read.
    pub companion: Option<&'a [u8]>,
}

/// A file that is only ever appended to (`runs.jsonl`, the journal), opened by
/// [`OutputStore::open_log`]. What was in it before is kept.
pub trait Log: fmt::Debug + Send {
    /// Appends `bytes` (whole lines) after everything written before; it may be buffered
    /// until [`Log::sync`].
    ///
    /// # Errors
    /// The write fails.
    fn append(&mut self, bytes: &[u8]) -> Result<(), PlaceError>;

    /// Makes everything appended so far durable (on disk, or stored) before returning.
    ///
    /// # Errors
    /// The write fails.
    fn sync(&mut self) -> Result<(), PlaceError>;
}

/// What a run needs of the place its outputs go; every path is relative to the store's root
/// (see the [module documentation](self) for the rules and for how to add a store).
pub trait OutputStore: fmt::Debug + Send + Sync {
    /// Where the store is, for messages (a folder, a URL).
    fn location(&self) -> String;

    /// The local folder holding the outputs as ordinary files (`rel` is at
    /// `folder.join(rel)`), when there is one; `None` for a store whose files cannot be read
    /// from the local disk.
    fn local_folder(&self) -> Option<&Path>;

    /// Checks that `rel` can be written (for the local tree: no link in its way, its folders
    /// made), before a run sends anything.
    ///
    /// # Errors
    /// [`PlaceError::Outside`], or why it cannot be written.
    fn prepare(&self, rel: &Path) -> Result<(), PlaceError>;

    /// The first candidate of `name` (`stem.ext`, `stem-1.ext`, ...) from `start` on that is
    /// free: neither it nor any of its companions (`name + suffix` for each of `companions`)
    /// is in the store, and `taken` (names handed out already, relative) does not hold it.
    /// Returns its number and path.
    ///
    /// # Errors
    /// [`PlaceError::NoFreeName`], [`PlaceError::Outside`], or the store cannot be read.
    fn free_name(
        &self,
        name: &Name,
        companions: &[&str],
        start: u32,
        taken: &HashSet<PathBuf>,
    ) -> Result<(u32, PathBuf), PlaceError>;

    /// A file written earlier that `pick` recognises: the candidates of `name` are looked at
    /// in order while the file or its companion `companion` is there, and the first for which
    /// `pick` says yes is returned. `pick` is given the [`Candidate`]: its path, whether the
    /// file itself is there, and the companion's bytes (when it is there and at most
    /// [`crate::fs::place::MAX_COMPANION_READ`] bytes). A companion whose file is missing (a
    /// commit cut short) is shown too.
    ///
    /// # Errors
    /// [`PlaceError::Outside`], or the store cannot be read.
    fn find_earlier(
        &self,
        name: &Name,
        companion: &str,
        pick: &mut dyn FnMut(&Candidate<'_>) -> bool,
    ) -> Result<Option<PathBuf>, PlaceError>;

    /// A new staged file for content that will go to `rel` (or a free name near it).
    ///
    /// # Errors
    /// [`PlaceError::Outside`], or why the staged file cannot be made.
    fn stage(&self, rel: &Path) -> Result<Staged, PlaceError>;

    /// Stores `staged` under the first free candidate of `name` from `start` on (as
    /// [`OutputStore::free_name`] picks it) with its companions (suffix, bytes), never
    /// replacing anything: the companions are stored first, then the file; a name taken
    /// meanwhile is left alone (what this attempt stored under it is removed) and the next is
    /// tried. Returns the file's path.
    ///
    /// # Errors
    /// As [`OutputStore::free_name`], or a write fails.
    fn commit(
        &self,
        staged: Staged,
        name: &Name,
        companions: &[(&str, &[u8])],
        start: u32,
        taken: &HashSet<PathBuf>,
    ) -> Result<PathBuf, PlaceError>;

    /// Stores `staged` at `rel`, replacing the file there (an earlier, superseded try at the
    /// same output, or nothing: a sidecar without its file), then each companion beside it.
    /// Returns `rel`.
    ///
    /// # Errors
    /// [`PlaceError::Outside`], or a write fails.
    fn replace(
        &self,
        staged: Staged,
        rel: &Path,
        companions: &[(&str, &[u8])],
    ) -> Result<PathBuf, PlaceError>;

    /// Whether a file is at `rel`.
    ///
    /// # Errors
    /// [`PlaceError::Outside`], or the store cannot be read.
    fn exists(&self, rel: &Path) -> Result<bool, PlaceError>;

    /// The file at `rel` for reading; `None` when there is none.
    ///
    /// # Errors
    /// [`PlaceError::Outside`], or it cannot be opened.
    fn open(&self, rel: &Path) -> Result<Option<Box<dyn Read + Send>>, PlaceError>;

    /// The bytes of the file at `rel`, at most `max`; `None` when there is none.
    ///
    /// # Errors
    /// [`PlaceError::TooLarge`] when it is larger, or as [`OutputStore::open`].
    fn read(&self, rel: &Path, max: u64) -> Result<Option<Vec<u8>>, PlaceError> {
        let Some(file) = self.open(rel)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        file.take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| PlaceError::Io {
                path: rel.to_path_buf(),
                action: "read",
                source,
            })?;
        if bytes.len() as u64 > max {
            return Err(PlaceError::TooLarge {
                path: rel.to_path_buf(),
                limit: max,
            });
        }
        Ok(Some(bytes))
    }

    /// Calls `visit` with each output that has its companion `companion` (`x.png` with
    /// `x.png.json`) and that companion's bytes; names starting with a `.` (the run's own
    /// files, staged files) are passed over, and so are companions larger than
    /// [`crate::fs::place::MAX_COMPANION_READ`] bytes and companions without their file. A
    /// store may stop after a bound it documents (the local tree: 200 000 entries).
    ///
    /// # Errors
    /// The store cannot be listed at all (a part that cannot be read is passed over).
    fn list_outputs(
        &self,
        companion: &str,
        visit: &mut dyn FnMut(&Path, &[u8]),
    ) -> Result<(), PlaceError>;

    /// Opens the log at `rel` (created when missing) for appending.
    ///
    /// # Errors
    /// [`PlaceError::Outside`], or it cannot be opened or created.
    fn open_log(&self, rel: &Path) -> Result<Box<dyn Log>, PlaceError>;

    /// Writes `bytes` at `rel` atomically (a reader sees the old file or the new one),
    /// replacing what is there: for files the run owns and rewrites (the gallery page, a grid,
    /// a journal checkpoint).
    ///
    /// # Errors
    /// [`PlaceError::Outside`], or the write fails.
    fn write_replacing(&self, rel: &Path, bytes: &[u8]) -> Result<(), PlaceError>;

    /// Writes `bytes` as a new file under the first free candidate of `name`, replacing
    /// nothing. Returns its path.
    ///
    /// # Errors
    /// As [`OutputStore::commit`].
    fn write_new(&self, name: &Name, bytes: &[u8]) -> Result<PathBuf, PlaceError>;

    /// Moves the file at `rel` to `to`, which must be free (a journal set aside for a fresh
    /// run); nothing is replaced.
    ///
    /// # Errors
    /// [`PlaceError::Outside`], [`PlaceError::Io`] with `AlreadyExists` when `to` is taken, or
    /// the move fails.
    fn move_aside(&self, rel: &Path, to: &Path) -> Result<(), PlaceError>;
}

#[cfg(test)]
mod tests;
