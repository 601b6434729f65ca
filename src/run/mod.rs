//! A run of manifests: plan, submit, track, download, clean up, resume.

pub mod journal;
pub mod output_path;
pub mod report;
pub mod settings;

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
