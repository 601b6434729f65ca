//! The run object: everything a run of one manifest changes as it goes, and the questions its
//! steps ask of it. The steps are methods of [`Run`] in files of their own: starting and driving
//! it ([`super::engine`]), resuming ([`super::resume`]), submitting ([`super::submit`],
//! [`super::upload`]), collecting ([`super::collect`]), leaving the pool ([`super::failover`]),
//! cleaning up ([`super::cleanup`]) and ending ([`super::finish`]).

use std::time::Instant;

use super::context::RunContext;
use super::download::Downloads;
use super::key::ItemRef;
use super::lane::Lane;
use super::ledger::Ledger;
use super::source::JobSource;
use std::sync::Arc;

use super::progress::LiveGallery;

/// A run of one manifest: what it changes as it goes.
pub(super) struct Run<'a> {
    /// What it reads.
    pub(super) ctx: RunContext<'a>,
    /// Its state, journaled.
    pub(super) ledger: Ledger,
    /// Its servers, in the order they were named.
    pub(super) lanes: Vec<Lane>,
    /// The jobs it still has to submit.
    pub(super) source: JobSource<'a>,
    /// The downloads under way.
    pub(super) downloads: Downloads,
    /// The gallery and grids kept current while it goes (a listener of the run), if asked for.
    pub(super) live: Option<Arc<LiveGallery>>,
    /// Whether Ctrl-C came.
    pub(super) interrupted: bool,
    /// Images deleted from the servers so far.
    pub(super) cleaned: usize,
    /// When it started.
    pub(super) started: Instant,
}

impl Run<'_> {
    /// Whether a server other than lane `i` is still in the run.
    pub(super) fn others_in_run(&self, i: usize) -> bool {
        self.lanes
            .iter()
            .enumerate()
            .any(|(j, lane)| j != i && lane.in_run())
    }

    /// A download task of `item` ended: a completed or failed job counts for its server.
    pub(super) fn count_end(&mut self, item: ItemRef, job: usize) {
        let Some(i) = self.lane_of(item) else {
            return;
        };
        self.lanes[i].count_end(job, &self.ledger);
        self.tell_status(i);
    }

    /// A job is submitted again: its items are forgotten (each server's tracker stops following
    /// its own) and it goes back to the source.
    pub(super) fn hand_back(&mut self, job: usize) {
        let items = self.ledger.forget_job(job);
        for lane in &mut self.lanes {
            lane.forget(items.iter().copied());
        }
        self.source.hand_back([job]);
    }

    /// The index of the lane an item of the run is on (`None`: a server of an earlier run that
    /// is not in this run).
    pub(super) fn lane_of(&self, item: ItemRef) -> Option<usize> {
        self.lanes.iter().position(|l| l.number == item.server())
    }

    /// Tells the run what the running report warns about.
    pub(super) fn tell_live_warnings(&self) {
        for message in self.live.iter().flat_map(|live| live.warnings()) {
            self.ctx.warn(message);
        }
    }

    /// Tells the listeners where lane `i` stands, when the run's messages name servers.
    pub(super) fn tell_status(&self, i: usize) {
        if self.ctx.names_servers {
            self.ctx
                .tell(&self.lanes[i].status(&self.ctx.name, &self.ledger, false));
        }
    }

    /// ` on the server at URL` when the run's messages name servers, else nothing.
    pub(super) fn on_server(&self, i: usize) -> String {
        if self.ctx.names_servers {
            format!(" on {}", self.lanes[i].name())
        } else {
            String::new()
        }
    }

    /// The URL of the server an item is on, for messages, sidecars and the summary.
    pub(super) fn url_of(&self, item: ItemRef) -> String {
        let lane = self.lane_of(item).unwrap_or(0);
        self.lanes
            .get(lane)
            .map(|l| l.url.clone())
            .unwrap_or_default()
    }

    /// The URL of the server an item is on when the run's messages name servers.
    pub(super) fn named_url_of(&self, item: ItemRef) -> Option<String> {
        self.ctx.names_servers.then(|| self.url_of(item))
    }
}
