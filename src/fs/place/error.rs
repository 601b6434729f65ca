//! Why a file could not be placed.

use std::path::{Path, PathBuf};

use super::MAX_SUFFIX;
use crate::exit_status::ExitStatus;

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
    /// A file or folder could not be read or written. When the disk (or the quota) is full, the
    /// message says what to do: free some space and run the same command again.
    #[error("could not {action} `{}`{}", path.display(), full_disk_hint(source))]
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

/// What to do when a write failed because the disk or the quota is full (empty for any other
/// error). What was written before is whole and journaled, so the same command resumes.
pub(crate) fn full_disk_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            ": the disk is full. Free some space, then run the same command again: the run \
             resumes where it stopped, and what is on disk is whole"
        }
        _ => "",
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
