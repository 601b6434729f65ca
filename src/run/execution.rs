//! What every step of a run shares: the prepared manifest, the server's client, the reporter and
//! the run's settings.

use std::time::Duration;

use super::coalesce::Coalescer;
use super::prepare::Prepared;
use super::report::Reporter;
use crate::client::Client;
use crate::client::tracker::TrackMode;

/// Run-wide facts the steps share.
pub(super) struct Execution<'a> {
    pub(super) prepared: &'a Prepared,
    pub(super) client: Client,
    pub(super) server: String,
    pub(super) reporter: &'a Reporter,
    pub(super) name: String,
    pub(super) run_id: String,
    pub(super) retry_failed: bool,
    pub(super) fresh: bool,
    pub(super) poll_interval: Duration,
    pub(super) track_mode: TrackMode,
    /// The most sessions of the run pending on the server at once.
    pub(super) window: usize,
    /// How long to wait for a server that stopped answering.
    pub(super) server_wait: Duration,
    /// Shares the run's enqueues with other runs that go at once (`invk-run watch --each`).
    pub(super) coalescer: Option<Coalescer>,
}
