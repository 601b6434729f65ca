//! How a manifest's run ended: its counts, its failed jobs with their errors, its files.

use std::path::PathBuf;

use crate::exit_status::ExitStatus;

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
    /// Jobs that neither completed nor failed (a full queue refused them; a later run
    /// submits them).
    pub not_run: usize,
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
        } else if self.failures.is_empty() && self.not_run == 0 {
            ExitStatus::Success
        } else {
            ExitStatus::Failed
        }
    }
}
