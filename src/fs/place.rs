//! One no-clobber file placement for everything written under an output folder: the runner's
//! outputs and sidecars, its journal and `runs.jsonl`, a [`crate::client::WorkflowHandle`]'s
//! downloads, and reports (grids, galleries).
//!
//! The rules:
//! - **No links.** Nothing is written through a symbolic link inside the output folder: not the
//!   folder itself, not a sub-folder, not a link (dangling or not) at the path to write. Such a
//!   link is refused with [`PlaceError::Link`], naming it. (Links above the output folder are
//!   the user's business and are followed.)
//! - **Nothing replaced.** A file and its companions (a sidecar `x.png.json` of `x.png`) get
//!   their names together: `x.png` is free only when `x.png.json` is free too; otherwise both
//!   take the next suffix (`x-1.png`, `x-1.png.json`). Files are written complete into a
//!   temporary file first and then linked into place without replacing: a file that appears
//!   meanwhile is left alone and the next suffix is tried.
//!
//! The checks are made just before each write; they guard against mistakes and surprises in the
//! output folder, not against another program racing to swap folders for links.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::exit_status::ExitStatus;

/// How many `-N` suffixes are tried before giving up.
const MAX_SUFFIX: u32 = 100_000;

/// The largest companion file read to recognise a file written earlier (or listed with its
/// output by [`crate::store::LocalStore`]).
pub const MAX_COMPANION_READ: u64 = 1 << 20;

/// Why a file could not be placed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlaceError {
    /// A symbolic link where a folder or file of the output folder would be written.
    #[error(
        "`{}` is a symbolic link{}; invk-run never writes through links in an output folder: {}",
        path.display(),
        target.as_ref().map(|t| format!(" (to `{}`)", t.display())).unwrap_or_default(),
        if *is_root {
            "name the folder it points to as the output folder instead"
        } else {
            "remove or rename the link, or use a real folder there, and run again"
        }
    )]
    Link {
        /// The link.
        path: PathBuf,
        /// Where it points, when it can be read.
        target: Option<PathBuf>,
        /// Whether it is the output folder itself.
        is_root: bool,
    },
    /// Something that is not a folder where a folder is needed.
    #[error(
        "`{}` is not a folder, but `{}` needs it to be one: move it away or change the output name",
        path.display(),
        wanted.display()
    )]
    NotAFolder {
        /// What is in the way.
        path: PathBuf,
        /// The file to write.
        wanted: PathBuf,
    },
    /// A path that is not inside the output folder (a bug of the caller: names are sanitized
    /// before they get here).
    #[error("`{}` is not inside the output folder `{}`", path.display(), root.display())]
    Outside {
        /// The path.
        path: PathBuf,
        /// The output folder.
        root: PathBuf,
    },
    /// A file larger than its reader takes (a sidecar of megabytes is no sidecar).
    #[error("`{}` is larger than the {limit} bytes read of it", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The most that is read.
        limit: u64,
    },
    /// Every suffix is taken.
    #[error(
        "no free name for `{}`: it and {MAX_SUFFIX} names with `-N` suffixes exist",
        path.display()
    )]
    NoFreeName {
        /// The first name tried.
        path: PathBuf,
    },
    /// A file or folder could not be read or written.
    #[error("could not {action} `{}`", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl PlaceError {
    /// Whether this is a refused link.
    #[must_use]
    pub fn is_link(&self) -> bool {
        matches!(self, PlaceError::Link { .. })
    }

    /// This error as an [`std::io::Error`] (for callers that return those); the message and the
    /// cause chain are kept, and [`PlaceError::find`] gets it back.
    #[must_use]
    pub fn into_io(self) -> std::io::Error {
        let kind = match &self {
            PlaceError::Io { source, .. } => source.kind(),
            PlaceError::NoFreeName { .. } => std::io::ErrorKind::AlreadyExists,
            _ => std::io::ErrorKind::InvalidInput,
        };
        std::io::Error::new(kind, self)
    }

    /// The placement error inside an [`std::io::Error`] made by [`PlaceError::into_io`].
    #[must_use]
    pub fn find(error: &std::io::Error) -> Option<&PlaceError> {
        error.get_ref().and_then(|e| e.downcast_ref::<PlaceError>())
    }

    /// The exit status of an I/O error: [`ExitStatus::Invalid`] for a refused link (a link in
    /// an output folder is the user's to remove, and a run checks its folder before it sends
    /// anything), [`ExitStatus::Failed`] for any other.
    #[must_use]
    pub fn exit_status_of(error: &std::io::Error) -> ExitStatus {
        if PlaceError::find(error).is_some_and(PlaceError::is_link) {
            ExitStatus::Invalid
        } else {
            ExitStatus::Failed
        }
    }
}

/// Wraps an I/O error of `action` on `path` (for `map_err`).
pub(crate) fn io_error(
    path: &Path,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> PlaceError {
    let path = path.to_path_buf();
    move |source| PlaceError::Io {
        path,
        action,
        source,
    }
}

/// A file's name under an output folder, before a free suffix is chosen: `stem` (relative, may
/// hold sub-folders) and the extension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name {
    stem: PathBuf,
    ext: String,
}

impl Name {
    /// `stem.ext` (`ext` without its dot; empty for none).
    #[must_use]
    pub fn new(stem: impl Into<PathBuf>, ext: &str) -> Name {
        Name {
            stem: stem.into(),
            ext: ext.trim_start_matches('.').to_owned(),
        }
    }

    /// The `n`-th candidate, relative to the output folder: `stem.ext`, then `stem-1.ext`,
    /// `stem-2.ext`, ...
    #[must_use]
    pub fn candidate(&self, n: u32) -> PathBuf {
        let mut name = self.stem.as_os_str().to_owned();
        if n > 0 {
            name.push(format!("-{n}"));
        }
        if !self.ext.is_empty() {
            name.push(".");
            name.push(&self.ext);
        }
        PathBuf::from(name)
    }
}

/// The path of a companion of `file`: its name with `suffix` added (`x.png` → `x.png.json`).
#[must_use]
pub fn companion(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// An output folder: the root of a tree written under the rules of this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRoot {
    root: PathBuf,
}

/// What is at a path, without following a link.
enum Entry {
    Missing,
    Link,
    Folder,
    File,
}

#[allow(
    clippy::disallowed_methods,
    reason = "its error becomes PlaceError::Io, which names the path; NotFound is matched"
)]
fn entry(path: &Path) -> Result<Entry, PlaceError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Ok(Entry::Link),
        Ok(m) if m.is_dir() => Ok(Entry::Folder),
        Ok(_) => Ok(Entry::File),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Entry::Missing),
        Err(e) => Err(io_error(path, "look at")(e)),
    }
}

fn link_error(path: &Path, is_root: bool) -> PlaceError {
    PlaceError::Link {
        path: path.to_path_buf(),
        target: crate::fs::read_link(path).ok(),
        is_root,
    }
}

impl OutputRoot {
    /// The output folder `root`, created when missing; refused when it is a link.
    ///
    /// # Errors
    /// [`PlaceError::Link`], [`PlaceError::NotAFolder`], or [`PlaceError::Io`].
    pub fn open(root: impl Into<PathBuf>) -> Result<OutputRoot, PlaceError> {
        let root = root.into();
        match entry(&root)? {
            Entry::Link => return Err(link_error(&root, true)),
            Entry::File => {
                return Err(PlaceError::NotAFolder {
                    path: root.clone(),
                    wanted: root,
                });
            }
            Entry::Folder => {}
            Entry::Missing => {
                crate::fs::create_dir_all(&root).map_err(io_error(&root, "create the folder"))?;
            }
        }
        Ok(OutputRoot { root })
    }

    /// The output folder `root`, not looked at yet: every write checks it (and creates it when
    /// missing) as [`OutputRoot::prepare`] says.
    #[must_use]
    pub fn at(root: impl Into<PathBuf>) -> OutputRoot {
        OutputRoot { root: root.into() }
    }

    /// The folder.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `path` relative to the root (`path` may be relative already, or absolute under the
    /// root); only plain components are allowed.
    fn relative<'p>(&self, path: &'p Path) -> Result<&'p Path, PlaceError> {
        let rel = if path.is_absolute() || path.starts_with(&self.root) {
            path.strip_prefix(&self.root)
                .map_err(|_| self.outside(path))?
        } else {
            path
        };
        let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain || rel.as_os_str().is_empty() {
            return Err(self.outside(path));
        }
        Ok(rel)
    }

    fn outside(&self, path: &Path) -> PlaceError {
        PlaceError::Outside {
            path: path.to_path_buf(),
            root: self.root.clone(),
        }
    }

    /// Makes `path` (relative to the root, or absolute under it) ready to be written: the root
    /// and every folder down to it must be real folders (missing ones are created), and `path`
    /// itself must not be a link. Returns the absolute path.
    ///
    /// # Errors
    /// [`PlaceError::Link`] naming the link, [`PlaceError::NotAFolder`], [`PlaceError::Outside`],
    /// or [`PlaceError::Io`].
    #[allow(
        clippy::disallowed_methods,
        reason = "a failed create_dir becomes PlaceError::Io, which names the folder; AlreadyExists is matched"
    )]
    pub fn prepare(&self, path: &Path) -> Result<PathBuf, PlaceError> {
        let rel = self.relative(path)?;
        let full = self.root.join(rel);
        match entry(&self.root)? {
            Entry::Link => return Err(link_error(&self.root, true)),
            Entry::Missing => crate::fs::create_dir_all(&self.root)
                .map_err(io_error(&self.root, "create the folder"))?,
            Entry::Folder | Entry::File => {}
        }
        let mut dir = self.root.clone();
        let parts: Vec<_> = rel.components().collect();
        for part in &parts[..parts.len() - 1] {
            dir.push(part);
            loop {
                match entry(&dir)? {
                    Entry::Folder => break,
                    Entry::Link => return Err(link_error(&dir, false)),
                    Entry::File => {
                        return Err(PlaceError::NotAFolder {
                            path: dir,
                            wanted: full,
                        });
                    }
                    Entry::Missing => match std::fs::create_dir(&dir) {
                        // Made by someone else meanwhile: look again.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        other => other.map_err(io_error(&dir, "create the folder"))?,
                    },
                }
            }
        }
        if matches!(entry(&full)?, Entry::Link) {
            return Err(link_error(&full, false));
        }
        Ok(full)
    }

    /// The first candidate of `name` from `start` on that is free: neither it nor any of its
    /// companions (`suffixes`) exists, and `taken` (absolute paths handed out already) does not
    /// hold it. Returns its number and absolute path.
    ///
    /// # Errors
    /// [`PlaceError::Link`] when a candidate or companion is a link (it is never passed over
    /// silently), [`PlaceError::NoFreeName`], or [`PlaceError::Io`].
    pub fn free_candidate(
        &self,
        name: &Name,
        suffixes: &[&str],
        start: u32,
        taken: &HashSet<PathBuf>,
    ) -> Result<(u32, PathBuf), PlaceError> {
        self.free_candidate_by(name, suffixes, start, |path| taken.contains(path))
    }

    /// [`OutputRoot::free_candidate`] with "handed out already" asked of `taken` (given the
    /// candidate's absolute path).
    pub(crate) fn free_candidate_by(
        &self,
        name: &Name,
        suffixes: &[&str],
        start: u32,
        taken: impl Fn(&Path) -> bool,
    ) -> Result<(u32, PathBuf), PlaceError> {
        for n in start..MAX_SUFFIX {
            let path = self.root.join(name.candidate(n));
            if taken(&path) {
                continue;
            }
            let mut free = true;
            for p in
                std::iter::once(path.clone()).chain(suffixes.iter().map(|s| companion(&path, s)))
            {
                match entry(&p)? {
                    Entry::Missing => {}
                    Entry::Link => return Err(link_error(&p, false)),
                    _ => free = false,
                }
            }
            if free {
                return Ok((n, path));
            }
        }
        Err(PlaceError::NoFreeName {
            path: self.root.join(name.candidate(0)),
        })
    }

    /// A file written earlier that `pick` recognises: the candidates of `name` are looked at in
    /// order while they exist, and the first regular file for which `pick` (given its path and
    /// the bytes of its companion `suffix`, when that is a small regular file) says something
    /// is returned with what it said. A companion whose file is missing (a placing cut short:
    /// the companion goes first) is shown to `pick` too. Links are never followed.
    pub fn find_earlier<T>(
        &self,
        name: &Name,
        suffix: &str,
        pick: impl Fn(&Path, Option<&[u8]>) -> Option<T>,
    ) -> Option<(PathBuf, T)> {
        let mut said = None;
        let path = self
            .scan_earlier(name, suffix, |path, _, bytes| {
                said = pick(path, bytes);
                said.is_some()
            })
            .ok()??;
        Some((path, said?))
    }

    /// The search of [`OutputRoot::find_earlier`], whose `pick` is also told whether the file
    /// itself is there (a regular file) and which says yes or no; an I/O error while looking
    /// ends the search with that error.
    pub(crate) fn scan_earlier(
        &self,
        name: &Name,
        suffix: &str,
        mut pick: impl FnMut(&Path, bool, Option<&[u8]>) -> bool,
    ) -> Result<Option<PathBuf>, PlaceError> {
        for n in 0..MAX_SUFFIX {
            let path = self.root.join(name.candidate(n));
            let side = companion(&path, suffix);
            let (file, side_entry) = (entry(&path)?, entry(&side)?);
            if matches!((&file, &side_entry), (Entry::Missing, Entry::Missing)) {
                return Ok(None);
            }
            let orphan = matches!((&file, &side_entry), (Entry::Missing, Entry::File));
            let is_file = matches!(file, Entry::File);
            if !is_file && !orphan {
                continue;
            }
            let bytes = match side_entry {
                Entry::File
                    if crate::fs::symlink_metadata(&side)
                        .is_ok_and(|m| m.len() <= MAX_COMPANION_READ) =>
                {
                    crate::fs::read(&side).ok()
                }
                _ => None,
            };
            if pick(&path, is_file, bytes.as_deref()) {
                return Ok(Some(path));
            }
        }
        Ok(None)
    }

    /// A temporary file (deleted when dropped) in the folder `rel` will be written to, that
    /// folder made ready as by [`OutputRoot::prepare`]: fill it, then [`OutputRoot::place`] it.
    ///
    /// # Errors
    /// As [`OutputRoot::prepare`].
    pub fn temporary_for(&self, rel: &Path) -> Result<tempfile::TempPath, PlaceError> {
        let full = self.prepare(rel)?;
        let dir = crate::fs::parent_dir(&full);
        let tmp = tempfile::Builder::new()
            .prefix(".invk-")
            .suffix(".part")
            .tempfile_in(&dir)
            .map_err(io_error(&dir, "create a temporary file in"))?;
        Ok(tmp.into_temp_path())
    }

    /// Places the complete file `from` (a temporary file under the root, left where it is)
    /// under the first free candidate of `name` from `start` on, with its companions (suffix,
    /// bytes) beside it, never replacing anything: each is linked into place only if its name
    /// is still free. When a name was taken meanwhile, what was placed under that candidate is
    /// removed again and the next candidate is tried. Returns the file's absolute path.
    ///
    /// # Errors
    /// As [`OutputRoot::prepare`] and [`OutputRoot::free_candidate`].
    pub fn place(
        &self,
        from: &Path,
        name: &Name,
        companions: &[(&str, &[u8])],
        start: u32,
        taken: &HashSet<PathBuf>,
    ) -> Result<PathBuf, PlaceError> {
        self.place_by(from, name, companions, start, |path| taken.contains(path))
    }

    /// [`OutputRoot::place`] with "handed out already" asked of `taken` (given the candidate's
    /// absolute path).
    pub(crate) fn place_by(
        &self,
        from: &Path,
        name: &Name,
        companions: &[(&str, &[u8])],
        start: u32,
        taken: impl Fn(&Path) -> bool,
    ) -> Result<PathBuf, PlaceError> {
        let suffixes: Vec<&str> = companions.iter().map(|(s, _)| *s).collect();
        let mut n = start;
        loop {
            let (found, path) = self.free_candidate_by(name, &suffixes, n, &taken)?;
            if self.place_at(from, &path, companions)? {
                return Ok(path);
            }
            n = found + 1;
        }
    }

    /// Places `from` at `path` and its companions beside it; false (and nothing of this
    /// attempt left behind) when one of the names is taken. The companions go first: a
    /// process killed in between leaves a companion without its file, which names what was
    /// being written (see [`OutputRoot::find_earlier`]), never a file nothing describes.
    fn place_at(
        &self,
        from: &Path,
        path: &Path,
        companions: &[(&str, &[u8])],
    ) -> Result<bool, PlaceError> {
        let path = self.prepare(path)?;
        for (suffix, _) in companions {
            self.prepare(&companion(&path, suffix))?;
        }
        let mut placed = Vec::with_capacity(companions.len());
        let undo = |placed: &[PathBuf]| {
            for p in placed {
                let _ = crate::fs::remove_file(p);
            }
        };
        for (suffix, bytes) in companions {
            let side = companion(&path, suffix);
            match write_noclobber(&side, bytes) {
                Ok(()) => placed.push(side),
                Err(e) => {
                    undo(&placed);
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        return Ok(false);
                    }
                    return Err(io_error(&side, "write")(e));
                }
            }
        }
        match set_mode_and_link(from, &path) {
            Ok(()) => Ok(true),
            Err(e) => {
                undo(&placed);
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Ok(false)
                } else {
                    Err(io_error(&path, "write")(e))
                }
            }
        }
    }

    /// Puts the complete file `from` (a temporary file under the root) at `path`, replacing the
    /// regular file there (an earlier, superseded try at the same output), then each companion
    /// beside it, each step atomic; links are refused like everywhere else. The file goes
    /// first: a companion left from before names what was there, so the file is recognised as
    /// superseded again and nothing is mistaken for finished.
    ///
    /// # Errors
    /// As [`OutputRoot::prepare`].
    #[allow(
        clippy::disallowed_methods,
        reason = "errors become PlaceError::Io, which names the path"
    )]
    pub fn replace(
        &self,
        from: &Path,
        path: &Path,
        companions: &[(&str, &[u8])],
    ) -> Result<PathBuf, PlaceError> {
        let path = self.prepare(path)?;
        for (suffix, _) in companions {
            self.prepare(&companion(&path, suffix))?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(from, std::fs::Permissions::from_mode(crate::fs::FILE_MODE))
                .map_err(io_error(from, "write"))?;
        }
        std::fs::rename(from, &path).map_err(io_error(&path, "write"))?;
        for (suffix, bytes) in companions {
            let side = companion(&path, suffix);
            crate::fs::write_atomic(&side, bytes).map_err(io_error(&side, "write"))?;
        }
        Ok(path)
    }

    /// Writes `bytes` as a new file under the first free name of `name` (for grids and other
    /// files a run adds); never replaces anything. Returns its absolute path.
    ///
    /// # Errors
    /// As [`OutputRoot::place`].
    pub fn write_new(&self, name: &Name, bytes: &[u8]) -> Result<PathBuf, PlaceError> {
        let tmp = self.temporary_for(&name.candidate(0))?;
        crate::fs::write(&tmp, bytes).map_err(io_error(&tmp, "write"))?;
        self.place(&tmp, name, &[], 0, &HashSet::new())
    }

    /// Writes `bytes` at `rel`, atomically replacing the regular file there (for a file the
    /// run owns and rewrites, such as a gallery's `index.html`); links are refused like
    /// everywhere else. Returns its absolute path.
    ///
    /// # Errors
    /// As [`OutputRoot::prepare`].
    pub fn write_replacing(&self, rel: &Path, bytes: &[u8]) -> Result<PathBuf, PlaceError> {
        let full = self.prepare(rel)?;
        crate::fs::write_atomic(&full, bytes).map_err(io_error(&full, "write"))?;
        Ok(full)
    }

    /// Opens `rel` for appending (created when missing), refusing links (for `runs.jsonl`).
    ///
    /// # Errors
    /// As [`OutputRoot::prepare`].
    #[allow(
        clippy::disallowed_methods,
        reason = "returns a std File, and its error becomes PlaceError::Io, which names the path"
    )]
    pub fn open_append(&self, rel: &Path) -> Result<std::fs::File, PlaceError> {
        let full = self.prepare(rel)?;
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        no_follow(&mut options);
        options.open(&full).map_err(io_error(&full, "open"))
    }
}

/// On unix, an open that fails on a link at the last component (a link made after the check).
fn no_follow(options: &mut std::fs::OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(not(unix))]
    let _ = options;
}

/// Gives `from` an ordinary file's mode and links it at `to` without replacing anything.
#[allow(
    clippy::disallowed_methods,
    reason = "the caller matches AlreadyExists and makes other errors PlaceError::Io, which names the path"
)]
fn set_mode_and_link(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(from, std::fs::Permissions::from_mode(crate::fs::FILE_MODE))?;
    }
    link_noclobber(from, to)
}

/// Makes `to` a copy of the complete file `from`, failing with `AlreadyExists` when `to`
/// exists (a link at `to`, even a dangling one, exists). A hard link where the file system has
/// them (atomic: `to` appears complete or not at all), else a copy into a new file.
#[allow(
    clippy::disallowed_methods,
    reason = "AlreadyExists is matched, and callers make the other errors PlaceError::Io, which names the path"
)]
pub(crate) fn link_noclobber(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
        Err(link_error) => {
            // No hard links here (some network and removable file systems): copy into a file
            // that must not exist yet.
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            no_follow(&mut options);
            let mut out = match options.open(to) {
                Ok(out) => out,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(e),
                Err(_) => return Err(link_error),
            };
            let copied = std::fs::File::open(from)
                .and_then(|mut input| std::io::copy(&mut input, &mut out))
                .and_then(|_| out.flush())
                .and_then(|()| out.sync_all())
                .and_then(|()| crate::fs::set_file_mode(&out));
            if let Err(e) = copied {
                let _ = crate::fs::remove_file(to);
                return Err(e);
            }
            Ok(())
        }
    }
}

/// Writes `bytes` at `path` through a temporary file beside it, never replacing anything.
fn write_noclobber(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = crate::fs::parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".invk-")
        .suffix(".part")
        .tempfile_in(&dir)?;
    tmp.write_all(bytes)?;
    crate::fs::set_file_mode(tmp.as_file())?;
    tmp.as_file().sync_all()?;
    link_noclobber(tmp.path(), path)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(dir: &Path) -> Vec<String> {
        let mut out: Vec<String> = crate::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }

    fn place_bytes(root: &OutputRoot, name: &Name, bytes: &[u8], side: &[u8]) -> PathBuf {
        let tmp = root.temporary_for(&name.candidate(0)).expect("tmp");
        crate::fs::write(&tmp, bytes).expect("fill");
        root.place(&tmp, name, &[(".json", side)], 0, &HashSet::new())
            .expect("placed")
    }

    #[test]
    fn a_file_and_its_sidecar_take_their_names_together() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = OutputRoot::open(dir.path()).expect("root");
        // A sidecar without its image: the image name is not free.
        crate::fs::write(dir.path().join("x.png.json"), "user data").expect("write");
        let name = Name::new("x", "png");
        let first = place_bytes(&root, &name, b"one", b"{1}");
        assert_eq!(first, dir.path().join("x-1.png"));
        let second = place_bytes(&root, &name, b"two", b"{2}");
        assert_eq!(second, dir.path().join("x-2.png"));
        assert_eq!(
            crate::fs::read_to_string(dir.path().join("x.png.json")).expect("read"),
            "user data"
        );
        assert_eq!(
            crate::fs::read_to_string(dir.path().join("x-2.png.json")).expect("read"),
            "{2}"
        );
        assert_eq!(
            names(dir.path()),
            [
                "x-1.png",
                "x-1.png.json",
                "x-2.png",
                "x-2.png.json",
                "x.png.json"
            ],
            "no temporary file is left"
        );
        let mode = crate::fs::metadata(&first).expect("stat");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o644);
    }

    #[test]
    fn a_name_taken_while_placing_is_left_alone_and_what_was_placed_is_taken_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = OutputRoot::open(dir.path()).expect("root");
        let tmp = root.temporary_for(Path::new("x.png")).expect("tmp");
        crate::fs::write(&tmp, b"new").expect("fill");
        // The image name is free but its sidecar appeared "meanwhile".
        crate::fs::write(dir.path().join("x.png.json"), "theirs").expect("write");
        let placed = root
            .place_at(&tmp, &dir.path().join("x.png"), &[(".json", b"ours")])
            .expect("attempt");
        assert!(!placed);
        assert!(
            !dir.path().join("x.png").exists(),
            "our image is taken back"
        );
        assert_eq!(
            crate::fs::read_to_string(dir.path().join("x.png.json")).expect("read"),
            "theirs"
        );
        // And an image that appeared meanwhile is not replaced.
        crate::fs::write(dir.path().join("y.png"), "theirs").expect("write");
        let placed = root
            .place_at(&tmp, &dir.path().join("y.png"), &[])
            .expect("attempt");
        assert!(!placed);
        assert_eq!(
            crate::fs::read_to_string(dir.path().join("y.png")).expect("read"),
            "theirs"
        );
    }

    #[test]
    fn links_inside_the_output_folder_are_refused_and_nothing_is_written_through_them() {
        let outside = tempfile::tempdir().expect("outside");
        let dir = tempfile::tempdir().expect("tempdir");
        let root = OutputRoot::open(dir.path()).expect("root");
        symlink(outside.path(), dir.path().join("sub")).expect("link");
        let err = root
            .temporary_for(Path::new("sub/x.png"))
            .expect_err("linked sub-folder");
        assert!(err.is_link(), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "`{}` is a symbolic link (to `{}`); invk-run never writes through links in an \
                 output folder: remove or rename the link, or use a real folder there, and run again",
                dir.path().join("sub").display(),
                outside.path().display()
            )
        );
        // A dangling link and a link to a file at the target path.
        symlink(dir.path().join("nowhere"), dir.path().join("a.png")).expect("link");
        crate::fs::write(outside.path().join("f"), "theirs").expect("write");
        symlink(outside.path().join("f"), dir.path().join("b.png.json")).expect("link");
        let tmp = root.temporary_for(Path::new("t")).expect("tmp");
        for (stem, link) in [("a", "a.png"), ("b", "b.png.json")] {
            let err = root
                .place(
                    &tmp,
                    &Name::new(stem, "png"),
                    &[(".json", b"{}")],
                    0,
                    &HashSet::new(),
                )
                .expect_err("link at the target");
            assert!(
                matches!(&err, PlaceError::Link { path, .. } if path == &dir.path().join(link)),
                "{err}"
            );
        }
        assert_eq!(names(outside.path()), ["f"]);
        assert_eq!(
            crate::fs::read_to_string(outside.path().join("f")).expect("read"),
            "theirs"
        );
        // The output folder itself.
        let linked_root = dir.path().join("root-link");
        symlink(outside.path(), &linked_root).expect("link");
        let err = OutputRoot::open(&linked_root).expect_err("linked root");
        assert!(
            err.to_string()
                .ends_with("name the folder it points to as the output folder instead"),
            "{err}"
        );
        let err = root
            .open_append(Path::new("a.png"))
            .expect_err("append through a link");
        assert!(err.is_link(), "{err}");
    }

    #[test]
    fn a_file_written_earlier_is_found_by_its_companion() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = OutputRoot::open(dir.path()).expect("root");
        let name = Name::new("sub/x", "png");
        crate::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        crate::fs::write(dir.path().join("sub/x.png"), "other").expect("write");
        crate::fs::write(dir.path().join("sub/x.png.json"), "image-a").expect("write");
        crate::fs::write(dir.path().join("sub/x-1.png"), "ours").expect("write");
        crate::fs::write(dir.path().join("sub/x-1.png.json"), "image-b").expect("write");
        let same = |want: &'static str| {
            move |_: &Path, b: Option<&[u8]>| (b == Some(want.as_bytes())).then_some(())
        };
        assert_eq!(
            root.find_earlier(&name, ".json", same("image-b")),
            Some((dir.path().join("sub/x-1.png"), ()))
        );
        assert_eq!(
            root.find_earlier(&name, ".json", same("image-a")),
            Some((dir.path().join("sub/x.png"), ()))
        );
        assert_eq!(root.find_earlier(&name, ".json", same("image-c")), None);
        // A companion whose file is missing (a placing cut short) is recognised too.
        crate::fs::write(dir.path().join("sub/y.png.json"), "image-e").expect("write");
        assert_eq!(
            root.find_earlier(&Name::new("sub/y", "png"), ".json", same("image-e")),
            Some((dir.path().join("sub/y.png"), ()))
        );
        // Without a companion, the path alone decides.
        crate::fs::write(dir.path().join("sub/x-2.png"), "bare").expect("write");
        let bare = dir.path().join("sub/x-2.png");
        assert_eq!(
            root.find_earlier(&name, ".json", |p, b| (p == bare && b.is_none())
                .then_some(2)),
            Some((bare.clone(), 2))
        );
        // A superseded file is replaced in place, its companion after it.
        let tmp = root.temporary_for(Path::new("sub/x.png")).expect("tmp");
        crate::fs::write(&tmp, "newer").expect("write");
        let placed = root
            .replace(&tmp, &bare, &[(".json", b"image-d")])
            .expect("replace");
        assert_eq!(placed, bare);
        assert_eq!(crate::fs::read(&bare).expect("read"), b"newer");
        assert_eq!(
            crate::fs::read(dir.path().join("sub/x-2.png.json")).expect("read"),
            b"image-d"
        );
    }

    #[test]
    fn new_and_replaced_files_follow_the_same_rules() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = OutputRoot::open(dir.path()).expect("root");
        let name = Name::new("grids/sheet", "png");
        assert_eq!(
            root.write_new(&name, b"1").expect("new"),
            dir.path().join("grids/sheet.png")
        );
        assert_eq!(
            root.write_new(&name, b"2").expect("new"),
            dir.path().join("grids/sheet-1.png")
        );
        let index = Path::new("index.html");
        root.write_replacing(index, b"old").expect("write");
        root.write_replacing(index, b"new").expect("replace");
        assert_eq!(
            crate::fs::read(dir.path().join(index)).expect("read"),
            b"new"
        );
        assert!(matches!(
            root.prepare(Path::new("../escape")),
            Err(PlaceError::Outside { .. })
        ));
    }
}
