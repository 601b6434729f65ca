//! The servers of a run as the engine drives them: each has its own tracker, window, uploads,
//! models and health. The server with the most room takes the next jobs; a server that stops
//! answering past a short grace, or that fails every job while another completes them, leaves
//! the pool and its unfinished jobs go to the others. A one-server run is a pool of one: it
//! waits for its server as long as `--server-wait` says instead.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::future::select_all;

use super::RunError;
use super::collect::{Downloads, Ended};
use super::execution::{Execution, Lane};
use super::health::Health;
use super::journal::Entry;
use super::key::ItemRef;
use super::ledger::Ledger;
use super::progress::RunEvent;
use super::source::JobSource;
use super::submit::Submitter;
use crate::client::QueueItemStatus;
use crate::client::tracker::{TrackEvent, Tracker};
use crate::gallery::live::LiveReport;
use crate::server_entry::ServerEntry;

/// How many jobs a server of a pool fails, with none completed, while another server completes
/// jobs, before it leaves the pool.
const FAILURES_TO_LEAVE: usize = 3;

/// How long the end of a run tries to cancel what it left on a server that left the pool.
const CANCEL_LEFTOVERS_FOR: Duration = Duration::from_secs(10);

/// A server of the pool while the run goes.
pub(super) struct LaneRun {
    pub tracker: Tracker,
    pub submitter: Submitter,
    pub health: Health,
    /// While its queue is full: when to try again.
    pub retry_at: Option<tokio::time::Instant>,
    /// Whether the full queue was reported.
    pub told_full: bool,
    /// Its tracker has nothing more to tell.
    pub idle: bool,
    /// It left the pool: nothing more is sent to it, its events are not followed.
    pub gone: bool,
    /// Why it left the pool.
    pub why_gone: Option<String>,
    /// Its items the run gave up when it left the pool: cancelled at the end if it answers.
    pub abandoned: Vec<i64>,
    /// Jobs it completed.
    pub completed: usize,
    /// Jobs that failed on it.
    pub failed_jobs: Vec<usize>,
    /// Its items running now (their ids on it).
    pub running: std::collections::HashSet<i64>,
}

/// What a server did in a run, for the summary of a pool's run.
#[derive(Debug, Clone, Default)]
pub(super) struct LaneShare {
    pub completed: usize,
    pub failed: usize,
    /// Items of the run still open on it.
    pub left: usize,
    /// Why it left the pool, if it did.
    pub out: Option<String>,
}

impl LaneRun {
    /// What it did.
    pub fn share(&self, ledger: &Ledger, number: u16) -> LaneShare {
        LaneShare {
            completed: self.completed,
            failed: self.failed_jobs.len(),
            left: ledger.open_on(number).count() + self.abandoned.len(),
            out: self.why_gone.clone(),
        }
    }
}

/// The next event of the servers whose `listening` flag is set, with the server's index.
pub(super) async fn next_event(
    lanes: &mut [LaneRun],
    listening: &[bool],
) -> (usize, Option<TrackEvent>) {
    let futures: Vec<_> = lanes
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| listening.get(*i).copied().unwrap_or(false))
        .map(|(i, run)| Box::pin(async move { (i, run.tracker.next().await) }))
        .collect();
    if futures.is_empty() {
        return std::future::pending().await;
    }
    select_all(futures).await.0
}

impl Execution<'_> {
    /// A tracker, submitter and health per server.
    pub(super) async fn start_lanes(&self) -> Vec<LaneRun> {
        let wait = if self.is_pool() {
            self.grace()
        } else {
            self.server_wait
        };
        let mut runs = Vec::with_capacity(self.lanes.len());
        for lane in &self.lanes {
            runs.push(LaneRun {
                tracker: Tracker::start(&lane.client, self.track_mode, self.poll_interval).await,
                submitter: Submitter {
                    models: lane.models.clone(),
                    ..Submitter::default()
                },
                health: Health::new(wait, &lane.url),
                retry_at: None,
                told_full: false,
                idle: false,
                gone: false,
                why_gone: None,
                abandoned: Vec::new(),
                completed: 0,
                failed_jobs: Vec::new(),
                running: std::collections::HashSet::new(),
            });
        }
        runs
    }

    /// The server that takes the next jobs, and how many it has room for: of the servers in
    /// the pool whose window is at least half empty (and, of a pool, that answer and whose
    /// queue is not full), the one with the most room; the first named on a tie.
    pub(super) fn next_lane(&self, lanes: &[LaneRun], ledger: &Ledger) -> Option<(usize, usize)> {
        let now = tokio::time::Instant::now();
        let pool = self.is_pool();
        let mut best: Option<(usize, usize)> = None;
        for (i, (lane, run)) in self.lanes.iter().zip(lanes).enumerate() {
            if run.gone || (pool && run.health.is_down()) || run.retry_at.is_some_and(|at| now < at)
            {
                continue;
            }
            let window = lane.window;
            let room = window.saturating_sub(ledger.open_on(lane.number).count());
            if room * 2 >= window && best.is_none_or(|(_, r)| room > r) {
                best = Some((i, room));
            }
        }
        best
    }

    /// The servers still in the pool.
    pub(super) fn live_lanes<'l>(&'l self, lanes: &[LaneRun]) -> Vec<&'l Lane> {
        self.lanes
            .iter()
            .zip(lanes)
            .filter(|(_, run)| !run.gone)
            .map(|(lane, _)| lane)
            .collect()
    }

    /// `the server at URL`, for messages.
    pub(super) fn server_name(&self, i: usize) -> String {
        format!("the server at {}", self.lanes[i].url)
    }

    /// Acts on an event of server `i`'s tracker.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn tracked(
        &self,
        i: usize,
        event: Option<TrackEvent>,
        lanes: &mut [LaneRun],
        ledger: &mut Ledger,
        source: &mut JobSource<'_>,
        downloads: &mut Downloads,
        live: &LiveReport,
    ) -> Result<(), RunError> {
        let number = self.lanes[i].number;
        match event {
            Some(TrackEvent::Finished(mut item)) => {
                lanes[i].running.remove(&item.item_id);
                item.item_id = ItemRef::new(number, item.item_id).0;
                lanes[i].health.up(self);
                let job = ledger.job_of(item.item_id);
                let failed = ledger.failed_count();
                let epoch = lanes[i].health.epoch;
                if let Ended::Resubmit(job) = self.finished(item, epoch, ledger, downloads)? {
                    self.forget(job, lanes, ledger);
                    source.hand_back([job]);
                }
                self.failures_since(failed, i, job, lanes, ledger, source, downloads)?;
                self.tell_live(live, job, ledger);
                self.tell_share(i, lanes, ledger);
            }
            Some(TrackEvent::Vanished { item_id }) => {
                lanes[i].running.remove(&item_id);
                let item_id = ItemRef::new(number, item_id).0;
                let job = ledger.job_of(item_id);
                let failed = ledger.failed_count();
                self.vanished(item_id, ledger)?;
                self.failures_since(failed, i, job, lanes, ledger, source, downloads)?;
                self.tell_live(live, job, ledger);
                self.tell_share(i, lanes, ledger);
            }
            Some(TrackEvent::Started { item_id }) => {
                lanes[i].health.up(self);
                lanes[i].running.insert(item_id);
                self.tell_share(i, lanes, ledger);
            }
            Some(TrackEvent::PollFailed { error, .. }) => {
                if let Err(gone) = lanes[i].health.down(self, &error) {
                    if !self.others_live(lanes, i) {
                        return Err(gone);
                    }
                    self.fail_over(i, lanes, ledger, source, downloads)?;
                }
                self.tell_share(i, lanes, ledger);
            }
            Some(TrackEvent::ServerBack) => {
                lanes[i].health.up(self);
                self.tell_share(i, lanes, ledger);
            }
            Some(TrackEvent::Reconnected | TrackEvent::ServerDown { .. }) => {}
            Some(_) => lanes[i].health.up(self),
            None => lanes[i].idle = true,
        }
        Ok(())
    }

    /// A job's items are forgotten (it is submitted again): each server's tracker stops
    /// following its own.
    fn forget(&self, job: usize, lanes: &mut [LaneRun], ledger: &mut Ledger) {
        for id in ledger.forget_job(job) {
            if let Some(i) = self.lane_index(id) {
                lanes[i].tracker.forget([ItemRef(id).id()]);
            }
        }
    }

    /// Where server `i` stands, for a pool's progress (nothing for a one-server run).
    pub(super) fn tell_share(&self, i: usize, lanes: &[LaneRun], ledger: &Ledger) {
        if !self.is_pool() {
            return;
        }
        let run = &lanes[i];
        self.reporter.event(&RunEvent::ServerProgress {
            manifest: self.name.clone(),
            server: self.lanes[i].url.clone(),
            done: run.completed,
            running: run.running.len(),
            pending: ledger
                .open_on(self.lanes[i].number)
                .count()
                .saturating_sub(run.running.len()),
            failed: run.failed_jobs.len(),
            down: run.health.is_down(),
            left: run.gone,
        });
    }

    /// A download task of item `item_id` ended: a completed job counts for its server.
    pub(super) fn count_end(
        &self,
        item_id: i64,
        job: usize,
        lanes: &mut [LaneRun],
        ledger: &Ledger,
    ) {
        let Some(i) = self.lane_index(item_id) else {
            return;
        };
        if ledger.completed.contains(&job) {
            lanes[i].completed += 1;
        } else if ledger.has_failed(job) && !lanes[i].failed_jobs.contains(&job) {
            lanes[i].failed_jobs.push(job);
        }
        self.tell_share(i, lanes, ledger);
    }

    /// After an item of server `i` ended: a job that failed counts for the server; a server of
    /// a pool that fails every job while another completes them leaves the pool, and the jobs
    /// that failed on it go to the others.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn failures_since(
        &self,
        failed_before: usize,
        i: usize,
        job: Option<usize>,
        lanes: &mut [LaneRun],
        ledger: &mut Ledger,
        source: &mut JobSource<'_>,
        downloads: &Downloads,
    ) -> Result<(), RunError> {
        if let Some(job) = job
            && ledger.failed_count() > failed_before
        {
            lanes[i].failed_jobs.push(job);
        }
        self.leave_if_failing(lanes, ledger, source, downloads)
    }

    /// Takes out of the pool each server that failed [`FAILURES_TO_LEAVE`] jobs and completed
    /// none while another server completed jobs.
    pub(super) fn leave_if_failing(
        &self,
        lanes: &mut [LaneRun],
        ledger: &mut Ledger,
        source: &mut JobSource<'_>,
        downloads: &Downloads,
    ) -> Result<(), RunError> {
        if !self.is_pool() {
            return Ok(());
        }
        let working = lanes.iter().any(|r| !r.gone && r.completed > 0);
        for i in 0..lanes.len() {
            let run = &lanes[i];
            if run.gone
                || !working
                || run.completed > 0
                || run.failed_jobs.len() < FAILURES_TO_LEAVE
            {
                continue;
            }
            let last_error = run
                .failed_jobs
                .last()
                .and_then(|job| ledger.failures.iter().find(|f| f.job == *job))
                .map(|f| f.error.clone())
                .unwrap_or_default();
            let failed: Vec<usize> = std::mem::take(&mut lanes[i].failed_jobs);
            let why = format!(
                "it failed all {} jobs it ran (the last with: {last_error}) while other servers completed theirs",
                failed.len()
            );
            for &job in &failed {
                self.forget(job, lanes, ledger);
                source.hand_back([job]);
            }
            self.drop_lane(i, why, lanes, ledger, source, downloads)?;
        }
        Ok(())
    }

    /// Server `i` stopped answering past the grace: it leaves the pool and its unfinished jobs
    /// go to the other servers.
    pub(super) fn fail_over(
        &self,
        i: usize,
        lanes: &mut [LaneRun],
        ledger: &mut Ledger,
        source: &mut JobSource<'_>,
        downloads: &Downloads,
    ) -> Result<(), RunError> {
        let why = format!("it did not answer for {} s", self.grace().as_secs());
        self.drop_lane(i, why, lanes, ledger, source, downloads)
    }

    /// Server `i` leaves the pool for `why`, which is reported; its unfinished jobs go to the
    /// other servers.
    pub(super) fn drop_lane(
        &self,
        i: usize,
        why: String,
        lanes: &mut [LaneRun],
        ledger: &mut Ledger,
        source: &mut JobSource<'_>,
        downloads: &Downloads,
    ) -> Result<(), RunError> {
        downloads.abandon(ledger.open_on(self.lanes[i].number));
        self.reporter.event(&RunEvent::ServerLeft {
            manifest: self.name.clone(),
            server: self.lanes[i].url.clone(),
            reason: why.clone(),
            handed_over: ledger.open_on(self.lanes[i].number).count(),
        });
        self.leave(i, why, lanes, ledger, source)
    }

    /// Whether a server other than `i` is still in the pool.
    pub(super) fn others_live(&self, lanes: &[LaneRun], i: usize) -> bool {
        lanes.iter().enumerate().any(|(j, r)| j != i && !r.gone)
    }

    /// Takes server `i` out of the pool: its open items are journaled as taken back and their
    /// jobs handed to the source.
    fn leave(
        &self,
        i: usize,
        why: String,
        lanes: &mut [LaneRun],
        ledger: &mut Ledger,
        source: &mut JobSource<'_>,
    ) -> Result<(), RunError> {
        let number = self.lanes[i].number;
        let open: Vec<i64> = ledger.open_on(number).collect();
        let mut jobs = BTreeSet::new();
        for id in &open {
            if let Some(slot) = ledger.items.get(id).cloned() {
                ledger.record(Entry::Withdrawn {
                    job: slot.key,
                    item_id: *id,
                })?;
                jobs.insert(slot.job);
            }
        }
        for job in jobs {
            self.forget(job, lanes, ledger);
            source.hand_back([job]);
        }
        let run = &mut lanes[i];
        run.abandoned.extend(open);
        run.gone = true;
        run.why_gone = Some(why);
        run.running.clear();
        self.tell_share(i, lanes, ledger);
        // The last server left waits for an outage as long as a one-server run would.
        let mut live = lanes.iter_mut().filter(|r| !r.gone);
        if let (Some(last), None) = (live.next(), live.next()) {
            last.health.set_wait(self.server_wait);
        }
        Ok(())
    }

    /// At the end: the items given up on servers that left the pool are cancelled where the
    /// server answers again; what cannot be is reported.
    pub(super) async fn cancel_abandoned(&self, lanes: &[LaneRun]) {
        for (i, run) in lanes.iter().enumerate() {
            if run.abandoned.is_empty() {
                continue;
            }
            let client = &self.lanes[i].client;
            let ids: Vec<i64> = run.abandoned.iter().map(|id| ItemRef(*id).id()).collect();
            let attempt = async {
                let mut cancelled = 0;
                for chunk in ids.chunks(500) {
                    for item in client.queue().items_by_ids(chunk).await? {
                        if matches!(
                            item.status,
                            QueueItemStatus::Pending | QueueItemStatus::InProgress
                        ) {
                            client.queue().cancel_item(item.item_id).await?;
                            cancelled += 1;
                        }
                    }
                }
                Ok::<usize, crate::client::ClientError>(cancelled)
            };
            match tokio::time::timeout(CANCEL_LEFTOVERS_FOR, attempt).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => self.warn(format!(
                    "{} left the pool and still does not answer ({}): up to {} of the run's \
                     items may still be on it, and the images of what it ran",
                    self.server_name(i),
                    crate::error_chain::error_chain(&e),
                    ids.len()
                )),
                Err(_) => self.warn(format!(
                    "{} left the pool and does not answer: up to {} of the run's items may \
                     still be on it, and the images of what it ran",
                    self.server_name(i),
                    ids.len()
                )),
            }
        }
    }
}

/// Before a pool's run sends anything: each server is asked for its version and invocation
/// schema. A server that does not answer, or lacks a node type the workflow uses, is left out
/// with a warning naming why; the manifest is checked against the schema of the first server
/// that can run it. Returns the checked manifest and the servers that take part, in order.
///
/// # Errors
/// An invalid manifest (nothing is sent), or no server that answers and can run it.
pub(super) async fn preflight(
    source: &super::ManifestSource,
    settings: &super::settings::RunSettings,
    reporter: &super::progress::Reporter,
    entries: &[ServerEntry],
) -> Result<(super::prepare::Prepared, Vec<PoolServer>), RunError> {
    let warn = |message: String| {
        reporter.event(&super::progress::RunEvent::Warning {
            manifest: source.run_name(),
            message,
        });
    };
    // Each server's own credentials are read first: a variable an entry names that is not set
    // stops the run before anything is sent.
    let credentials = entries
        .iter()
        .map(|e| super::settings::entry_credentials(e, &settings.credentials))
        .collect::<Result<Vec<_>, _>>()?;
    // The servers are asked at once: the preflight takes as long as the slowest.
    let reached = futures_util::future::join_all(entries.iter().zip(&credentials).map(
        |(entry, credentials)| async move {
            let client = crate::client::Client::connect(&entry.url, credentials).await?;
            let version = client.app().version().await?;
            let schemas = schemas_of(&client, &entry.url, &version).await;
            Ok::<_, crate::client::ClientError>((client, schemas))
        },
    ))
    .await;
    let mut answering = Vec::new();
    let mut last_error = None;
    for (entry, reached) in entries.iter().zip(reached) {
        match reached {
            Ok((client, schemas)) => answering.push((entry.clone(), client, schemas)),
            Err(e) => {
                warn(format!(
                    "the server at {} is left out of the pool: {}",
                    entry.url,
                    crate::error_chain::error_chain(&e)
                ));
                last_error = Some(e);
            }
        }
    }
    let Some(first_error) = (answering.is_empty()).then_some(last_error).flatten() else {
        return check_pool(source, settings, answering, warn).await;
    };
    Err(first_error.into())
}

/// The invocation schemas of the server at `url`, which runs `version`: read from the server
/// once per process (not from the cache kept per server version: servers of one version differ
/// in their custom nodes and `deny_nodes`), then kept while the server runs that version.
async fn schemas_of(
    client: &crate::client::Client,
    url: &str,
    version: &str,
) -> Option<Arc<crate::workflow::SchemaSet>> {
    type Seen = Mutex<HashMap<(String, String), Arc<crate::workflow::SchemaSet>>>;
    static SEEN: OnceLock<Seen> = OnceLock::new();
    let seen = SEEN.get_or_init(Seen::default);
    let key = (url.to_owned(), version.to_owned());
    if let Some(set) = seen.lock().ok().and_then(|s| s.get(&key).cloned()) {
        return Some(set);
    }
    match crate::client::read_server_schemas(client).await {
        Ok(set) => {
            let set = Arc::new(set);
            if let Ok(mut s) = seen.lock() {
                s.insert(key, Arc::clone(&set));
            }
            Some(set)
        }
        Err(_) => crate::client::server_schemas(client).await.0.map(Arc::new),
    }
}

/// The manifest checked against the first answering server's schema that accepts it, and the
/// servers that have every node type its workflow uses.
async fn check_pool(
    source: &super::ManifestSource,
    settings: &super::settings::RunSettings,
    answering: Vec<(
        ServerEntry,
        crate::client::Client,
        Option<Arc<crate::workflow::SchemaSet>>,
    )>,
    warn: impl Fn(String),
) -> Result<(super::prepare::Prepared, Vec<PoolServer>), RunError> {
    let display_path = std::path::PathBuf::from(&source.display_name);
    let mut prepared = None;
    let mut first_error = None;
    for (_, client, schemas) in &answering {
        let schemas = schemas
            .as_deref()
            .unwrap_or_else(|| crate::workflow::SchemaSet::snapshot());
        match super::prepare::prepare(
            &source.path,
            &display_path,
            &source.base_dir,
            source.image.as_ref(),
            settings.max_jobs,
            Some(client),
            schemas,
        )
        .await
        {
            Ok(p) => {
                prepared = Some(p);
                break;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let Some(prepared) = prepared else {
        return Err(first_error.unwrap_or(RunError::NoManifest));
    };
    let node_types = super::needs::node_types(prepared.workflow.definition());
    // The models of the inputs the manifest sets (those the workflow itself names keep their
    // keys: they are sent as they are, as to one server).
    let set = &prepared.expansion.inputs;
    let models: Vec<super::needs::ModelNeed> =
        super::needs::Needs::of_manifest(&source.display_name, &prepared)
            .models
            .into_iter()
            .filter(|need| need.inputs.iter().any(|input| set.contains_key(input)))
            .collect();
    let mut model_error = None;
    let mut lanes = Vec::with_capacity(answering.len());
    for (entry, client, schemas) in answering {
        let url = &entry.url;
        let schemas = schemas
            .as_deref()
            .unwrap_or_else(|| crate::workflow::SchemaSet::snapshot());
        let missing: Vec<String> = node_types
            .iter()
            .filter(|t| schemas.invocation(t).is_none())
            .map(|t| format!("`{t}`"))
            .collect();
        if !missing.is_empty() {
            warn(format!(
                "the server at {url} is left out of the pool: it lacks the node type{} {} that the workflow uses",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            ));
            continue;
        }
        match resolve_named_models(url, &client, &models).await {
            Ok(models) => lanes.push(PoolServer {
                entry,
                client,
                models,
            }),
            Err(e) => {
                warn(format!(
                    "{}; it is left out of the pool",
                    crate::error_chain::error_chain(&e)
                ));
                model_error.get_or_insert(e);
            }
        }
    }
    match model_error {
        Some(e) if lanes.is_empty() => Err(e),
        _ => Ok((prepared, lanes)),
    }
}

/// A server that takes part in a run: as named, its client, and the manifest's models as
/// resolved on it (by a pool's preflight).
pub(super) struct PoolServer {
    pub entry: ServerEntry,
    pub client: crate::client::Client,
    pub models: crate::client::ModelResolver,
}

/// The models a manifest names by name (or key) on model inputs it sets, each looked up among
/// the server's own models (keys differ between installs) as the run will look them up.
async fn resolve_named_models(
    url: &str,
    client: &crate::client::Client,
    models: &[super::needs::ModelNeed],
) -> Result<crate::client::ModelResolver, RunError> {
    let mut resolver = crate::client::ModelResolver::new();
    for need in models {
        if let Err(e) = resolver.resolve(client, &need.reference, &need.types).await {
            return Err(RunError::PoolModel {
                server: url.to_owned(),
                model: need.describe(),
                inputs: need.inputs.join(", "),
                source: Box::new(e),
            });
        }
    }
    Ok(resolver)
}
