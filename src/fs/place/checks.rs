//! The checks before a write: what is at a path, links refused, folders made ready.

use std::path::{Component, Path, PathBuf};

use super::{OutputRoot, PlaceError, io_error};

/// What is at a path, without following a link.
pub(super) enum Entry {
    Missing,
    Link,
    Folder,
    File,
}

#[allow(
    clippy::disallowed_methods,
    reason = "its error becomes PlaceError::Io, which names the path; NotFound is matched"
)]
pub(super) fn entry(path: &Path) -> Result<Entry, PlaceError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Ok(Entry::Link),
        Ok(m) if m.is_dir() => Ok(Entry::Folder),
        Ok(_) => Ok(Entry::File),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Entry::Missing),
        Err(e) => Err(io_error(path, "look at")(e)),
    }
}

pub(super) fn link_error(path: &Path, is_root: bool) -> PlaceError {
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
}
