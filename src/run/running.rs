//! The run object: what a run of one manifest reads and never changes ([`RunContext`]),
//! everything it changes as it goes ([`Run`]), and the questions its steps ask of them. The
//! steps are methods of [`Run`] in files of their own: starting and driving it
//! ([`super::engine`]), resuming ([`super::resume`]), submitting and uploading
//! ([`super::submit`]), collecting ([`super::collect`]), leaving the pool ([`super::failover`]),
//! cleaning up ([`super::cleanup`]) and ending ([`super::finish`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::coalesce::Coalescer;
use super::download::Downloads;
use super::error::RunError;
use super::key::ItemRef;
use super::lane::Lane;
use super::ledger::Ledger;
use super::prepare::Prepared;
use super::progress::{LiveGallery, Reporter, RunEvent};
use super::source::JobSource;
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
    /// The shard of the sweep the run does (the whole sweep when not sharded).
    pub(super) shard: super::shard::Shard,
    /// Ctrl-C: the run stops submitting, takes back what has not started and ends.
    pub(super) cancel: tokio_util::sync::CancellationToken,
}

impl RunContext<'_> {
    /// How many jobs the run has: those of its shard.
    pub(super) fn job_count(&self) -> usize {
        self.shard.jobs_of(self.prepared.expansion.job_count())
    }
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
    /// Moving pending sessions to an idle server is not tried again before then.
    pub(super) steal_after: Option<tokio::time::Instant>,
    /// Jobs just moved off a busy server: the idle server (lane index) they go to, and how
    /// many (the next submit gives them there, not by the windows' split).
    pub(super) moved_to: Option<(usize, usize)>,
    /// Items of the journal on servers left out at the start, taken back when they join.
    pub(super) held_away: Vec<ItemRef>,
    /// How it follows its servers (for a server that joins later).
    pub(super) follow: super::lane::Follow,
    /// The servers left out at the start because they did not answer, until they join.
    pub(super) absent: Vec<Option<crate::server_entry::ServerEntry>>,
    /// Servers away from the pool, each waiting (on its own) until it answers.
    pub(super) returns: tokio::task::JoinSet<(Away, crate::client::Client)>,
}

/// A server away from the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Away {
    /// The lane at this index, which left.
    Lane(usize),
    /// The server left out at the start at this index of the run's absent ones.
    Absent(usize),
}

impl Run<'_> {
    /// Lane `i`'s server answered: an outage, if there was one, is over (and told).
    pub(super) fn server_up(&mut self, i: usize) {
        if let Some(news) = self.lanes[i].health.up() {
            self.ctx.warn(news);
        }
    }

    /// A request to lane `i`'s server failed because it is unreachable: the first failure of
    /// an outage is told; past its wait, [`RunError::ServerGone`].
    pub(super) fn server_down(&mut self, i: usize, error: &str) -> Result<(), RunError> {
        if let Some(news) = self.lanes[i].health.down(error)? {
            self.ctx.warn(news);
        }
        Ok(())
    }

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
