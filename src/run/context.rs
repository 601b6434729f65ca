//! What every step of a run reads and never changes: the prepared manifest, who hears of the
//! run, its name and id, and the settings it runs with.

use std::time::Duration;

use std::sync::Arc;

use super::coalesce::Coalescer;
use super::prepare::Prepared;
use super::progress::{Reporter, RunEvent};
use crate::client::tracker::TrackMode;
use crate::store::OutputStore;

/// How long a server may not answer before its unfinished jobs are handed to the other servers
/// of the run (unless `--server-wait` is shorter); the last server that answers is waited for
/// as long as `--server-wait` says.
pub(super) const POOL_GRACE: Duration = Duration::from_secs(20);

/// Run-wide facts the steps share.
pub(super) struct RunContext<'a> {
    pub(super) prepared: &'a Prepared,
    /// Who hears of the run's events.
    pub(super) reporter: Reporter,
    /// The name the run reports under.
    pub(super) name: String,
    /// The run's id (also its queue items' destination tag).
    pub(super) run_id: String,
    pub(super) retry_failed: bool,
    pub(super) poll_interval: Duration,
    pub(super) track_mode: TrackMode,
    /// The most sessions of the run pending on a server at once, unless the server's entry
    /// says otherwise (each lane has its own).
    pub(super) window: usize,
    /// How long to wait for the last server that answers when it stops answering.
    pub(super) server_wait: Duration,
    /// Shares the run's enqueues with other runs that go at once (`invk-run watch --each`).
    pub(super) coalescer: Option<Coalescer>,
    /// Where its outputs, sidecars, journal and summary go.
    pub(super) store: Arc<dyn OutputStore>,
    /// Whether the run's messages name the server they are about (the run has several).
    pub(super) names_servers: bool,
}

impl RunContext<'_> {
    /// Tells the run's listeners of an event.
    pub(super) fn tell(&self, event: &RunEvent) {
        self.reporter.event(event);
    }

    /// Tells the run's listeners of a problem that does not stop the run.
    pub(super) fn warn(&self, message: String) {
        self.tell(&RunEvent::Warning {
            manifest: self.name.clone(),
            message,
        });
    }

    /// How long a server may not answer before the run gives up on it: the grace when another
    /// server can take its jobs, else `--server-wait`.
    pub(super) fn wait_for(&self, others_answer: bool) -> Duration {
        if others_answer {
            self.grace()
        } else {
            self.server_wait
        }
    }

    /// How long a server may not answer before its jobs go to the other servers.
    pub(super) fn grace(&self) -> Duration {
        self.server_wait.min(POOL_GRACE)
    }
}
