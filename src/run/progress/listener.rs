//! One who hears the events of a run, and how a run's end is told to it.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;

use super::event::RunEvent;

/// One who hears the events of a run.
pub trait Listener: Send + Sync {
    /// Hears an event. It must not block: work that takes time is started here and finished
    /// in [`Listener::finish`].
    fn hear(&self, event: &RunEvent);

    /// Finishes what is still under way when a manifest's run ends, told how it ended; returns
    /// warnings for the user (the run's outcome never depends on a listener). The default has
    /// nothing to finish.
    fn finish<'a>(&'a self, end: &'a RunEnd) -> Finishing<'a> {
        let _ = end;
        Box::pin(std::future::ready(Vec::new()))
    }

    /// The longest [`Listener::finish`] may take; the reporter stops waiting for it then.
    fn finish_within(&self) -> Duration {
        Duration::ZERO
    }
}

/// What [`Listener::finish`] returns: its warnings, once done.
pub type Finishing<'a> = Pin<Box<dyn Future<Output = Vec<String>> + Send + 'a>>;

/// How a manifest's run ended, for its listeners.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    /// The manifest, as the run's events name it.
    pub manifest: String,
    /// The output folder (absolute).
    pub output_dir: PathBuf,
    /// What the run did; `None` when it stopped with an error before its end.
    pub totals: Option<RunTotals>,
    /// The error the run stopped with, with its causes.
    pub error: Option<String>,
}

/// The counts of a run that went to its end.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTotals {
    /// Jobs in the manifest.
    pub jobs: usize,
    /// Jobs completed (this run and earlier ones).
    pub completed: usize,
    /// Jobs that failed.
    pub failed: Vec<FailedJob>,
    /// Jobs neither completed nor failed.
    pub not_run: usize,
    /// Whether the run was interrupted (Ctrl-C).
    pub interrupted: bool,
    /// Seconds the run took.
    pub seconds: f64,
}

/// A failed job, as listeners are told of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedJob {
    /// Job index.
    pub job: usize,
    /// Queue item id (on its server).
    pub item_id: i64,
    /// The server's error.
    pub error: String,
    /// The server that ran it, when the run has several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}
