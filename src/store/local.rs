//! [`LocalStore`]: an output folder on the local disk, written under the rules of
//! [`crate::fs::place`] (no clobber, sidecar first, temporary file then linked into place,
//! nothing written through a symbolic link inside the folder).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use super::{Candidate, Log, OutputStore, Staged};
use crate::fs::place::{MAX_COMPANION_READ, Name, OutputRoot, PlaceError, io_error};

/// At most this many entries are looked at when the folder is listed.
const MAX_WALK: usize = 200_000;

/// An output folder on the local disk. Writes never go through a symbolic link inside it
/// ([`PlaceError::Link`] names the link); reads ([`OutputStore::exists`], [`OutputStore::open`],
/// the sidecars of [`OutputStore::list_outputs`]) follow one, as reading any file would, but a
/// linked sub-folder is not listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalStore {
    root: OutputRoot,
}

impl LocalStore {
    /// The folder `dir`, created when missing; refused when it is a symbolic link.
    ///
    /// # Errors
    /// [`PlaceError::Link`], [`PlaceError::NotAFolder`], or [`PlaceError::Io`].
    pub fn open(dir: impl Into<PathBuf>) -> Result<LocalStore, PlaceError> {
        Ok(LocalStore {
            root: OutputRoot::open(dir)?,
        })
    }

    /// The folder `dir`, not looked at yet: reading a missing folder finds nothing, and each
    /// write checks the folder (and creates it when missing).
    #[must_use]
    pub fn at(dir: impl Into<PathBuf>) -> LocalStore {
        LocalStore {
            root: OutputRoot::at(dir),
        }
    }

    /// The folder.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// Where `rel` (relative to the folder) is on disk, for messages and for what is handed to
    /// the user.
    #[must_use]
    pub fn full_path(&self, rel: &Path) -> PathBuf {
        self.root.path().join(rel)
    }

    /// `rel` under the folder, when it is a plain relative path; else [`PlaceError::Outside`].
    fn full(&self, rel: &Path) -> Result<PathBuf, PlaceError> {
        let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain || rel.as_os_str().is_empty() {
            return Err(PlaceError::Outside {
                path: rel.to_path_buf(),
                root: self.root.path().to_path_buf(),
            });
        }
        Ok(self.root.path().join(rel))
    }

    /// Refuses a name whose candidates would not be plain relative paths.
    fn check_name(&self, name: &Name) -> Result<(), PlaceError> {
        self.full(&name.candidate(0)).map(drop)
    }

    /// `full` (under the folder) relative to it.
    fn strip(&self, full: &Path) -> PathBuf {
        full.strip_prefix(self.root.path())
            .map_or_else(|_| full.to_path_buf(), Path::to_path_buf)
    }
}

impl OutputStore for LocalStore {
    fn location(&self) -> String {
        format!("`{}`", self.root.path().display())
    }

    fn local_folder(&self) -> Option<&Path> {
        Some(self.root.path())
    }

    fn prepare(&self, rel: &Path) -> Result<(), PlaceError> {
        self.root.prepare(&self.full(rel)?).map(drop)
    }

    fn free_name(
        &self,
        name: &Name,
        companions: &[&str],
        start: u32,
        taken: &HashSet<PathBuf>,
    ) -> Result<(u32, PathBuf), PlaceError> {
        self.check_name(name)?;
        let (n, full) = self
            .root
            .free_candidate_by(name, companions, start, |p| taken.contains(&self.strip(p)))?;
        Ok((n, self.strip(&full)))
    }

    fn find_earlier(
        &self,
        name: &Name,
        companion: &str,
        pick: &mut dyn FnMut(&Candidate<'_>) -> bool,
    ) -> Result<Option<PathBuf>, PlaceError> {
        self.check_name(name)?;
        let found = self
            .root
            .scan_earlier(name, companion, |full, has_file, bytes| {
                pick(&Candidate {
                    path: &self.strip(full),
                    has_file,
                    companion: bytes,
                })
            })?;
        Ok(found.map(|full| self.strip(&full)))
    }

    fn stage(&self, rel: &Path) -> Result<Staged, PlaceError> {
        Ok(Staged::new(self.root.temporary_for(&self.full(rel)?)?))
    }

    fn commit(
        &self,
        staged: Staged,
        name: &Name,
        companions: &[(&str, &[u8])],
        start: u32,
        taken: &HashSet<PathBuf>,
    ) -> Result<PathBuf, PlaceError> {
        self.check_name(name)?;
        let full = self
            .root
            .place_by(staged.path(), name, companions, start, |p| {
                taken.contains(&self.strip(p))
            })?;
        // The staged file is deleted with `staged`; the placed one is a link of its own.
        Ok(self.strip(&full))
    }

    fn replace(
        &self,
        staged: Staged,
        rel: &Path,
        companions: &[(&str, &[u8])],
    ) -> Result<PathBuf, PlaceError> {
        let full = self
            .root
            .replace(staged.path(), &self.full(rel)?, companions)?;
        Ok(self.strip(&full))
    }

    fn exists(&self, rel: &Path) -> Result<bool, PlaceError> {
        Ok(self.full(rel)?.is_file())
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "its error becomes PlaceError::Io, which names the path; NotFound is matched"
    )]
    fn open(&self, rel: &Path) -> Result<Option<Box<dyn Read + Send>>, PlaceError> {
        let full = self.full(rel)?;
        if !full.is_file() {
            return Ok(None);
        }
        match std::fs::File::open(&full) {
            Ok(file) => Ok(Some(Box::new(file))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&full, "open")(e)),
        }
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "the root's error becomes PlaceError::Io, which names the path; NotFound is matched"
    )]
    fn list_outputs(
        &self,
        companion: &str,
        visit: &mut dyn FnMut(&Path, &[u8]),
    ) -> Result<(), PlaceError> {
        let root = self.root.path();
        if let Err(e) = std::fs::read_dir(root) {
            return if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(io_error(root, "list")(e))
            };
        }
        let mut seen = 0usize;
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = crate::fs::read_dir(&dir) else {
                continue;
            };
            let mut entries: Vec<_> = entries.flatten().collect();
            entries.sort_by_key(crate::fs::DirEntry::file_name);
            for entry in entries {
                seen += 1;
                if seen > MAX_WALK {
                    return Ok(());
                }
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(path);
                    continue;
                }
                let Some(output) = name.strip_suffix(companion).filter(|o| !o.is_empty()) else {
                    continue;
                };
                let output = path.with_file_name(output);
                if !output.is_file() {
                    continue;
                }
                let small = crate::fs::metadata(&path)
                    .is_ok_and(|m| m.is_file() && m.len() <= MAX_COMPANION_READ);
                if !small {
                    continue;
                }
                if let Ok(bytes) = crate::fs::read(&path) {
                    visit(&self.strip(&output), &bytes);
                }
            }
        }
        Ok(())
    }

    fn open_log(&self, rel: &Path) -> Result<Box<dyn Log>, PlaceError> {
        let full = self.full(rel)?;
        let file = self.root.open_append(&full)?;
        Ok(Box::new(LocalLog {
            path: full,
            file: std::io::BufWriter::new(file),
        }))
    }

    fn write_replacing(&self, rel: &Path, bytes: &[u8]) -> Result<(), PlaceError> {
        self.root.write_replacing(&self.full(rel)?, bytes).map(drop)
    }

    fn write_new(&self, name: &Name, bytes: &[u8]) -> Result<PathBuf, PlaceError> {
        self.check_name(name)?;
        let full = self.root.write_new(name, bytes)?;
        Ok(self.strip(&full))
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "its error becomes PlaceError::Io, which names the path"
    )]
    fn move_aside(&self, rel: &Path, to: &Path) -> Result<(), PlaceError> {
        let from = self.root.prepare(&self.full(rel)?)?;
        let to = self.root.prepare(&self.full(to)?)?;
        crate::fs::place::link_noclobber(&from, &to).map_err(io_error(&to, "move a file to"))?;
        std::fs::remove_file(&from).map_err(io_error(&from, "move a file from"))
    }
}

/// A log file of a [`LocalStore`], appended to through a buffer.
#[derive(Debug)]
pub struct LocalLog {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
}

impl Log for LocalLog {
    fn append(&mut self, bytes: &[u8]) -> Result<(), PlaceError> {
        self.file
            .write_all(bytes)
            .map_err(io_error(&self.path, "write"))
    }

    fn sync(&mut self) -> Result<(), PlaceError> {
        self.file
            .flush()
            .and_then(|()| self.file.get_ref().sync_data())
            .map_err(io_error(&self.path, "write"))
    }
}
