//! What the watcher runs a claimed manifest with: normally [`run::run_manifest`], or anything
//! else that implements [`ManifestRunner`] (programs that embed the watcher, and tests).

use std::future::Future;

use tokio_util::sync::CancellationToken;

use crate::run::progress::Reporter;
use crate::run::settings::RunSettings;
use crate::run::{self, ManifestOutcome, ManifestSource};

/// Runs one manifest to the end.
///
/// The contract is [`run::run_manifest`]'s: an `Err` whose
/// [`exit_status`](crate::run::RunError::exit_status) is [`Invalid`](crate::ExitStatus::Invalid)
/// means the manifest is invalid and nothing was sent; any other `Err` is a failed run.
/// Cancelling `cancel` stops the run at a checkpoint and returns an outcome marked
/// `interrupted`. Running the same manifest again must resume it, never submit twice.
pub trait ManifestRunner {
    /// Runs the manifest `source`.
    fn run(
        &self,
        source: ManifestSource,
        cancel: CancellationToken,
    ) -> impl Future<Output = Result<ManifestOutcome, crate::run::RunError>>;
}

/// The real runner: [`run::run_manifest`] with the watcher's run settings and reporter.
#[derive(Debug, Clone, Copy)]
pub struct RunManifest<'a> {
    settings: &'a RunSettings,
    reporter: &'a Reporter,
}

impl<'a> RunManifest<'a> {
    /// A runner with these settings, reporting through `reporter`.
    #[must_use]
    pub fn new(settings: &'a RunSettings, reporter: &'a Reporter) -> RunManifest<'a> {
        RunManifest { settings, reporter }
    }
}

impl ManifestRunner for RunManifest<'_> {
    async fn run(
        &self,
        source: ManifestSource,
        cancel: CancellationToken,
    ) -> Result<ManifestOutcome, crate::run::RunError> {
        run::run_manifest(&source, self.settings, self.reporter, cancel).await
    }
}
