//! The hot folder: settle, claim by rename, run, file away.
//!
//! `invk-run watch DIR` runs every manifest dropped into `DIR`, exactly once:
//!
//! 1. Manifests left in the processing folder by a watcher that crashed or was interrupted are
//!    run again first ([`run::run_manifest`](crate::run::run_manifest)'s journal resumes them, so
//!    nothing is submitted twice).
//! 2. Files in `DIR` that match the include patterns ([`FilePatterns`]) are candidates, those
//!    present at the start and those that arrive later (file events through notify, plus a
//!    periodic listing in case events are lost).
//! 3. A candidate is claimed once it has settled ([`Settler`]): closed by its writer (or moved
//!    in) and unchanged, or, where the platform reports no closes, its size and modification
//!    time unchanged for the settle window, confirmed by looking again after the window. A PNG,
//!    JPEG or WebP file is claimed only once it is whole ([`complete`]); one that stays
//!    incomplete is filed as failed after a bound, never sent. Claiming is
//!    a rename into the processing folder ([`claim`]): atomic, and it fails for a second
//!    claimer, so duplicate or bursty events never run a manifest twice.
//! 4. At most N manifests run at once, each through a [`ManifestRunner`].
//! 5. A finished manifest is moved into the done folder with `NAME.report.json` beside it; an
//!    invalid manifest or a failed run into the failed folder with `NAME.report.json` and
//!    `NAME.error.txt` ([`filing`]). Names are never overwritten (`a-1.yaml`, ...).
//! 6. When told to stop (Ctrl-C), no new manifest is claimed, running ones are cancelled at a
//!    checkpoint and stay in the processing folder for the next start.
//!
//! [`watch`] is the loop; [`WatchConfig`] its settings; [`WatchStatus`] where its
//! [`WatchEvent`]s go. With `--each MANIFEST --as INPUT` the claimed files are images, and
//! [`RunEach`] runs one manifest for each of them ([`each`]).

pub mod claim;
pub mod complete;
pub mod config;
pub mod each;
pub mod filing;
pub mod fs_events;
pub mod hot_folder;
mod manifest_run;
pub mod patterns;
pub mod runner;
pub mod settle;
pub mod status;

use std::path::PathBuf;

pub use config::WatchConfig;
pub use each::RunEach;
pub use hot_folder::{WatchSummary, watch};
pub use patterns::FilePatterns;
pub use runner::{ManifestRunner, RunManifest};
pub use settle::{FileStamp, Settler};
pub use status::{Counts, WatchEvent, WatchStatus};

use crate::exit_status::ExitStatus;

/// An error that stops the hot folder before or while it starts. Errors of single manifests
/// never stop it: they are filed into the failed folder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// An include or exclude glob does not parse.
    #[error("invalid {option} pattern `{pattern}`")]
    Pattern {
        /// `--include` or `--exclude`.
        option: &'static str,
        /// The glob.
        pattern: String,
        /// Why.
        #[source]
        source: globset::Error,
    },
    /// `--concurrency 0`.
    #[error("--concurrency must be at least 1")]
    Concurrency,
    /// The hot folder does not exist.
    #[error("the hot folder `{}` does not exist", path.display())]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// The hot folder is a file.
    #[error("the hot folder `{}` is not a folder", path.display())]
    NotAFolder {
        /// The path given.
        path: PathBuf,
    },
    /// A folder cannot be read or created.
    #[error("cannot use the folder `{}`", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Two of the folders are the same.
    #[error("the {label} `{}` is also the {other}; give {option} a folder of its own", path.display())]
    FolderClash {
        /// The option that sets the folder.
        option: &'static str,
        /// Which folder it is.
        label: &'static str,
        /// The folder.
        path: PathBuf,
        /// Which folder it clashes with.
        other: &'static str,
    },
    /// The system refuses to watch the folder.
    #[error(
        "cannot watch `{}` for new files (on Linux, raise fs.inotify.max_user_watches or max_user_instances if the limit is reached)",
        path.display()
    )]
    Notify {
        /// The hot folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: notify::Error,
    },
}

impl WatchError {
    /// The exit status this error ends the process with: 2 for bad arguments and folders,
    /// 1 when the system refuses to watch.
    #[must_use]
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            WatchError::Notify { .. } => ExitStatus::Failed,
            _ => ExitStatus::Invalid,
        }
    }
}
