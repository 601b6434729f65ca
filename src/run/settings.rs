//! The settings of a run, resolved from the command line and the environment before anything
//! is sent. The run never sees clap types.

use crate::cli::{GlobalArgs, RunArgs};
use crate::run::report::ReportMode;

/// The default server URL.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:9090";

/// How to run manifests.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Server URL given on the command line or in `INVK_SERVER` (it beats the manifest's).
    pub server_override: Option<String>,
    /// How to authenticate with a multi-user server.
    pub credentials: crate::client::Credentials,
    /// How to report.
    pub mode: ReportMode,
    /// Print the plan and payloads, send nothing.
    pub dry_run: bool,
    /// Refuse manifests that expand to more jobs.
    pub max_jobs: u64,
    /// Ignore an earlier run's journal.
    pub fresh: bool,
    /// Run only the jobs that failed before.
    pub retry_failed: bool,
    /// Track by polling only.
    pub poll_only: bool,
    /// Check the manifest and stop before anything is sent (`invk-run validate`).
    pub validate_only: bool,
    /// The most sessions of a run pending on the server at once.
    pub window: usize,
    /// How long to wait for a server that stopped answering.
    pub server_wait: std::time::Duration,
}

impl RunSettings {
    /// Resolves the settings.
    #[must_use]
    pub fn resolve(global: &GlobalArgs, run: &RunArgs) -> RunSettings {
        let mode = if global.json {
            ReportMode::Json
        } else if global.quiet {
            ReportMode::Quiet
        } else {
            ReportMode::Human
        };
        RunSettings {
            server_override: global.server.clone().filter(|s| !s.trim().is_empty()),
            credentials: crate::commands::connect::credentials(global),
            mode,
            dry_run: run.dry_run,
            max_jobs: run.max_jobs,
            fresh: run.fresh,
            retry_failed: run.retry_failed,
            poll_only: run.poll_only,
            validate_only: false,
            window: run
                .window
                .map_or(crate::run::DEFAULT_WINDOW, |w| w as usize),
            server_wait: std::time::Duration::from_secs(run.server_wait),
        }
    }

    /// The server URL for a manifest: the command line or environment, else the manifest's,
    /// else the default.
    #[must_use]
    pub fn server_for(&self, manifest_server: Option<&str>) -> String {
        self.server_override
            .clone()
            .or_else(|| manifest_server.map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned())
    }
}
