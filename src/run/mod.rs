//! A run of manifests: plan, submit, track, download, clean up, resume.

pub mod journal;
pub mod output_path;
pub mod report;
pub mod settings;
pub mod summary;

use crate::error::ExitStatus;

/// An error of a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {}

impl RunError {
    /// The exit status this error ends the process with.
    #[must_use]
    pub fn exit_status(&self) -> ExitStatus {
        ExitStatus::Failed
    }
}

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::run::report::Reporter;
use crate::run::settings::RunSettings;

/// Where a manifest's relative paths (workflow, images, output folder) are resolved from.
#[derive(Debug, Clone)]
pub struct ManifestSource {
    /// The manifest file to read.
    pub path: PathBuf,
    /// The folder its relative paths are relative to (its own folder, unless the hot folder
    /// moved it while it runs).
    pub base_dir: PathBuf,
    /// The name to report it under.
    pub display_name: String,
}

impl ManifestSource {
    /// A manifest read where it is.
    #[must_use]
    pub fn new(path: &Path) -> ManifestSource {
        ManifestSource {
            path: path.to_path_buf(),
            base_dir: crate::fs::parent_dir(path),
            display_name: path.display().to_string(),
        }
    }
}

/// A job that failed, with the server's error.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobFailure {
    /// Job index.
    pub job: usize,
    /// Queue item id.
    pub item_id: i64,
    /// The server's error.
    pub error: String,
}

/// How a manifest's run ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ManifestOutcome {
    /// The manifest.
    pub manifest: String,
    /// The output folder.
    pub output_dir: PathBuf,
    /// Jobs in the manifest.
    pub jobs: usize,
    /// Jobs completed with their outputs on disk.
    pub completed: usize,
    /// Jobs that failed.
    pub failures: Vec<JobFailure>,
    /// Output files, relative to the output folder.
    pub files: Vec<PathBuf>,
    /// Wall time of the run, in seconds.
    pub seconds: f64,
    /// Whether the run was interrupted (Ctrl-C) before it finished.
    pub interrupted: bool,
}

impl ManifestOutcome {
    /// The exit status this outcome stands for.
    #[must_use]
    pub fn exit_status(&self) -> ExitStatus {
        if self.interrupted {
            ExitStatus::Interrupted
        } else if self.failures.is_empty() {
            ExitStatus::Success
        } else {
            ExitStatus::Failed
        }
    }
}

/// Runs one manifest to the end: validate, plan, upload, submit, track, download, clean up.
/// Cancelling `cancel` stops submitting, checkpoints the journal and returns an interrupted
/// outcome; running the manifest again resumes it.
///
/// # Errors
/// An invalid manifest (nothing is sent), or a server that cannot be reached.
pub async fn run_manifest(
    source: &ManifestSource,
    settings: &RunSettings,
    reporter: &Reporter,
    cancel: CancellationToken,
) -> Result<ManifestOutcome, crate::Error> {
    let _ = (source, settings, reporter, cancel);
    Err(crate::Error::Io(std::io::Error::other(
        "the runner is not implemented yet",
    )))
}
