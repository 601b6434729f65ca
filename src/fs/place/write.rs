//! Writing: placing a complete file with its companions without replacing anything, replacing
//! a file the run owns, writing new files and appending.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Name, OutputRoot, PlaceError, companion, io_error};

impl OutputRoot {
    /// A temporary file (deleted when dropped) in the folder `rel` will be written to, that
    /// folder made ready as by [`OutputRoot::prepare`]: fill it, then [`OutputRoot::place`] it.
    ///
    /// # Errors
    /// As [`OutputRoot::prepare`].
    pub fn temporary_for(&self, rel: &Path) -> Result<tempfile::TempPath, PlaceError> {
        let full = self.prepare(rel)?;
        let dir = crate::fs::parent_dir(&full);
        let tmp = crate::fs::temporary::builder()
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
    pub(super) fn place_at(
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
    let mut tmp = crate::fs::temporary::builder().tempfile_in(&dir)?;
    tmp.write_all(bytes)?;
    crate::fs::set_file_mode(tmp.as_file())?;
    tmp.as_file().sync_all()?;
    link_noclobber(tmp.path(), path)
}
