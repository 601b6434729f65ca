//! What every step of a run shares: the prepared manifest, the servers' clients, the reporter
//! and the run's settings.

use std::time::Duration;

use super::coalesce::Coalescer;
use super::key::ItemRef;
use super::prepare::Prepared;
use super::progress::Reporter;
use crate::client::Client;
use crate::client::tracker::TrackMode;

/// A server of the run's pool.
pub(super) struct Lane {
    /// Its URL, as given.
    pub(super) url: String,
    /// Its client.
    pub(super) client: Client,
    /// Its number in the run's journal: the server part of its items' [`ItemRef`]s.
    pub(super) number: u16,
    /// The most sessions of the run pending on it at once.
    pub(super) window: usize,
    /// The models the manifest names, as resolved on it before the run (a pool's preflight).
    pub(super) models: crate::client::ModelResolver,
}

/// Run-wide facts the steps share.
pub(super) struct Execution<'a> {
    pub(super) prepared: &'a Prepared,
    /// The servers the run spreads its jobs over (one, unless several were named), in the
    /// order they were named.
    pub(super) lanes: Vec<Lane>,
    pub(super) reporter: &'a Reporter,
    pub(super) name: String,
    pub(super) run_id: String,
    pub(super) retry_failed: bool,
    pub(super) poll_interval: Duration,
    pub(super) track_mode: TrackMode,
    /// The most sessions of the run pending on a server at once, unless the server's entry
    /// says otherwise (each lane has its own).
    pub(super) window: usize,
    /// How long to wait for a server that stopped answering (the last one of a pool; the
    /// others are given up after [`Execution::grace`]).
    pub(super) server_wait: Duration,
    /// Shares the run's enqueues with other runs that go at once (`invk-run watch --each`; one
    /// server only).
    pub(super) coalescer: Option<Coalescer>,
}

impl Execution<'_> {
    /// The server an item of the run is on (`None`: a server of an earlier run that is not in
    /// this run's pool).
    pub(super) fn lane_of(&self, item: i64) -> Option<&Lane> {
        self.lane_index(item).map(|i| &self.lanes[i])
    }

    /// The index in [`Execution::lanes`] of the server an item is on.
    pub(super) fn lane_index(&self, item: i64) -> Option<usize> {
        let number = ItemRef(item).server();
        self.lanes.iter().position(|l| l.number == number)
    }

    /// Whether the run spreads its jobs over several servers.
    pub(super) fn is_pool(&self) -> bool {
        self.lanes.len() > 1
    }

    /// The URL of the server an item is on, for messages, sidecars and the summary.
    pub(super) fn url_of(&self, item: i64) -> String {
        self.lane_of(item)
            .map_or_else(|| self.lanes[0].url.clone(), |l| l.url.clone())
    }

    /// The URL of the server an item is on when the run has several (`None` for a one-server
    /// run, whose events do not name it).
    pub(super) fn pool_url_of(&self, item: i64) -> Option<String> {
        self.is_pool().then(|| self.url_of(item))
    }

    /// How long a server of a pool may not answer before its jobs go to the others.
    pub(super) fn grace(&self) -> Duration {
        self.server_wait.min(POOL_GRACE)
    }
}

/// How long a server of a pool may not answer before its unfinished jobs are handed to the
/// others (unless `--server-wait` is shorter).
pub(super) const POOL_GRACE: Duration = Duration::from_secs(20);
