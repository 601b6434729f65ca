//! One server of a run (a run on one server has one lane; a pool has several): its client and
//! number in the journal, its window, its tracker (events plus polling), the models and uploads
//! of the run on it, its health, and where it stands in the run.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::future::select_all;
use serde_json::Value;

use super::clock::{human, pause_after};
use super::error::RunError;
use super::key::ItemRef;
use super::ledger::Ledger;
use super::needs::model_types_of;
use super::preflight::PoolServer;
use super::progress::RunEvent;
use super::take_back::{TakenBack, Which, take_back};

/// How long taking back, on a server that answers again, what the run had taken back while it
/// was away may take.
const TAKE_BACK_AGAIN_FOR: Duration = Duration::from_secs(10);
use crate::client::tracker::{TrackEvent, TrackMode, Tracker};
use crate::client::{Client, ModelRef, ModelResolver};
use crate::manifest::{EnqueuePlan, InputInfo, InputKind, LocalImage};
use crate::workflow::Workflow;

/// How the run follows its servers: the tracker's mode and polling interval, and the window
/// each server gets unless its entry says otherwise.
pub(super) struct Follow {
    pub(super) mode: TrackMode,
    pub(super) poll_interval: Duration,
    pub(super) window: usize,
    /// How long one request following the run's items may take: a server that accepts
    /// connections and answers nothing is down within the grace, not after the client's read
    /// time-out (downloads and enqueues keep the client's own bounds).
    pub(super) answer_within: Duration,
}

/// How long a request following a server's items may take at most, however long the grace.
const ANSWER_WITHIN_AT_MOST: Duration = Duration::from_secs(10);

/// How long a request following a server's items may take at least, however short the grace.
const ANSWER_WITHIN_AT_LEAST: Duration = Duration::from_secs(3);

impl Follow {
    /// How the run follows servers it gives up on after `grace` without an answer.
    pub(super) fn new(
        mode: TrackMode,
        poll_interval: Duration,
        window: usize,
        grace: Duration,
    ) -> Follow {
        Follow {
            mode,
            poll_interval,
            window,
            answer_within: (grace / 2).clamp(ANSWER_WITHIN_AT_LEAST, ANSWER_WITHIN_AT_MOST),
        }
    }
}

/// A server of the run.
pub(super) struct Lane {
    /// Its URL, as given.
    pub(super) url: String,
    /// Its client.
    pub(super) client: Client,
    /// Its number in the run's journal: the server part of its items' [`ItemRef`]s.
    pub(super) number: u16,
    /// The most sessions of the run pending on it at once.
    pub(super) window: usize,
    /// How long a short call to it (following its items, taking some back) may take.
    pub(super) answer_within: Duration,
    /// Follows the run's items on it.
    pub(super) tracker: Tracker,
    /// The models the manifest names, as resolved on it.
    pub(super) models: ModelResolver,
    /// The run's uploads to it.
    pub(super) uploads: Uploads,
    /// Whether it answers.
    pub(super) health: Health,
    /// While its queue is full: when to try again.
    pub(super) retry_at: Option<tokio::time::Instant>,
    /// Whether its full queue was reported.
    pub(super) told_full: bool,
    /// Its tracker has nothing more to tell.
    pub(super) idle: bool,
    /// Why it left the run, if it did: nothing more is sent to it, its events are not
    /// followed.
    pub(super) left: Option<String>,
    /// Its items the run gave up when it left: taken back at the end if it answers again.
    pub(super) abandoned: Vec<ItemRef>,
    /// Jobs it completed.
    pub(super) completed: usize,
    /// Jobs that failed on it.
    pub(super) failed_jobs: Vec<usize>,
    /// Its items running now.
    pub(super) running: HashSet<ItemRef>,
}

impl Lane {
    /// Starts following the run's items on `server`, number `number` in the journal, which the
    /// run gives up on after `wait` without an answer.
    pub(super) async fn start(
        server: PoolServer,
        number: u16,
        follow: &Follow,
        wait: Duration,
    ) -> Lane {
        let tracker = Tracker::start(
            &server.client.with_timeout(follow.answer_within),
            follow.mode,
            follow.poll_interval,
        )
        .await;
        Lane {
            window: server.entry.window_of(follow.window).max(1),
            answer_within: follow.answer_within,
            health: Health::new(wait, &server.entry.url),
            url: server.entry.url,
            client: server.client,
            number,
            tracker,
            models: server.models,
            uploads: Uploads::default(),
            retry_at: None,
            told_full: false,
            idle: false,
            left: None,
            abandoned: Vec::new(),
            completed: 0,
            failed_jobs: Vec::new(),
            running: HashSet::new(),
        }
    }

    /// Item `id` of this server, as the run knows it.
    pub(super) fn item(&self, id: i64) -> ItemRef {
        ItemRef::new(self.number, id)
    }

    /// `the server at URL`, for messages.
    pub(super) fn name(&self) -> String {
        format!("the server at {}", self.url)
    }

    /// Whether it is still part of the run.
    pub(super) fn in_run(&self) -> bool {
        self.left.is_none()
    }

    /// Whether its tracker may have something to tell: it is in the run and the run has items
    /// open on it.
    pub(super) fn listening(&self, ledger: &Ledger) -> bool {
        !self.idle && self.in_run() && ledger.open_on(self.number).next().is_some()
    }

    /// Follows items of the run on it.
    pub(super) fn watch(&mut self, items: impl IntoIterator<Item = ItemRef>) {
        let number = self.number;
        self.tracker.watch(
            items
                .into_iter()
                .filter(|item| item.server() == number)
                .map(ItemRef::id),
        );
    }

    /// Stops following items of the run on it.
    pub(super) fn forget(&mut self, items: impl IntoIterator<Item = ItemRef>) {
        let number = self.number;
        self.tracker.forget(
            items
                .into_iter()
                .filter(|item| item.server() == number)
                .map(ItemRef::id),
        );
    }

    /// A job whose item ran on it ended: counted as completed or failed here.
    pub(super) fn count_end(&mut self, job: usize, ledger: &Ledger) {
        if ledger.is_completed(job) {
            self.completed += 1;
        } else if ledger.has_failed(job) && !self.failed_jobs.contains(&job) {
            self.failed_jobs.push(job);
        }
    }

    /// Where it stands in the run, as its listeners hear it (`end`: for the last time).
    pub(super) fn status(&self, manifest: &str, ledger: &Ledger, end: bool) -> RunEvent {
        let open = ledger.open_on(self.number).count();
        RunEvent::ServerStatus {
            manifest: manifest.to_owned(),
            server: self.url.clone(),
            done: self.completed,
            running: self.running.len(),
            pending: open.saturating_sub(self.running.len()),
            failed: self.failed_jobs.len(),
            down: self.health.is_down(),
            left: !self.in_run(),
            reason: self.left.clone(),
            on_server: open + self.abandoned.len(),
            end,
        }
    }

    /// Resolves the enqueue's models given by name (or key alone) on this server, each with its
    /// field's model types, once per reference and types in the run.
    pub(super) async fn resolve_models(
        &mut self,
        workflow: &Workflow,
        inputs: &indexmap::IndexMap<String, InputInfo>,
        enqueue: &EnqueuePlan,
    ) -> Result<(), RunError> {
        for (_, reference, types) in model_inputs(workflow, inputs, enqueue) {
            self.models
                .resolve(&self.client, &reference, &types)
                .await
                .map_err(RunError::Model)?;
        }
        Ok(())
    }

    /// The identifier a model value of input `system` was resolved to on this server (for
    /// [`super::submit::build_batch`]).
    pub(super) fn model_id(
        &self,
        workflow: &Workflow,
        system: &str,
        value: &Value,
    ) -> Option<Value> {
        let reference = ModelRef::of(value)?;
        let id = self
            .models
            .get(&reference, &model_types_of(workflow, system))?;
        serde_json::to_value(id).ok()
    }

    /// Takes back `which` of the run's `items` on it (see [`take_back`]).
    pub(super) async fn take_back<E>(
        &self,
        items: &[ItemRef],
        which: Which,
        bound: Duration,
        taken: impl FnMut(ItemRef) -> Result<(), E>,
    ) -> Result<TakenBack, E> {
        take_back(&self.client, self.number, items, which, bound, taken).await
    }

    /// Takes back what is unfinished of `items`, which the journal says were taken back already
    /// (the server was away then: it left the pool, or was left out at the start), so nothing
    /// more is journaled; at most [`TAKE_BACK_AGAIN_FOR`].
    pub(super) async fn take_back_again(&self, items: &[ItemRef]) -> TakenBack {
        let Ok(taken) = self
            .take_back(items, Which::Unfinished, TAKE_BACK_AGAIN_FOR, |_| {
                Ok::<(), std::convert::Infallible>(())
            })
            .await;
        taken
    }
}

/// The server's health as the run saw it.
#[derive(Debug)]
pub(super) struct Health {
    down_since: Option<Instant>,
    /// When the first request of an outage not yet told was sent (its tracker says).
    first_unanswered: Option<Instant>,
    wait: Duration,
    /// The server's URL, for messages.
    url: String,
}

impl Health {
    /// A server that answers, and how long to wait for it when it stops.
    pub(super) fn new(wait: Duration, url: &str) -> Health {
        Health {
            down_since: None,
            first_unanswered: None,
            wait,
            url: url.to_owned(),
        }
    }

    /// Sets how long to wait for the server when it stops answering.
    pub(super) fn set_wait(&mut self, wait: Duration) {
        self.wait = wait;
    }

    /// Whether the server is in an outage.
    pub(super) fn is_down(&self) -> bool {
        self.down_since.is_some()
    }

    /// The server's tracker says an outage began at `since` (when its first unanswered request
    /// was sent): the outage counts from then, not from when that request gave up.
    pub(super) fn saw_down(&mut self, since: Instant) {
        if self.down_since.is_none() {
            self.first_unanswered = Some(since);
        }
    }

    /// A request failed because the server is unreachable. The first failure of an outage gives
    /// the warning to tell; past the wait the run stops with [`RunError::ServerGone`].
    pub(super) fn down(&mut self, error: &str) -> Result<Option<String>, RunError> {
        let mut news = None;
        let since = match self.down_since {
            Some(since) => since,
            None => {
                let since = self.first_unanswered.take().unwrap_or_else(Instant::now);
                self.down_since = Some(since);
                news = Some(format!(
                    "the server at {} does not answer ({error}); waiting up to {} for it",
                    self.url,
                    human(self.wait)
                ));
                since
            }
        };
        if since.elapsed() >= self.wait {
            return Err(RunError::ServerGone {
                server: self.url.clone(),
                waited: human(since.elapsed()),
            });
        }
        Ok(news)
    }

    /// A request succeeded: an outage, if there was one, is over (the warning to tell).
    pub(super) fn up(&mut self) -> Option<String> {
        self.first_unanswered = None;
        let since = self.down_since.take()?;
        Some(format!(
            "the server at {} answers again (after {}); going on",
            self.url,
            human(since.elapsed())
        ))
    }

    /// How long to pause before the next attempt while the server is down.
    pub(super) fn backoff(&self) -> Duration {
        pause_after(self.down_since.map_or(Duration::ZERO, |s| s.elapsed()))
    }
}

/// The run's uploads so far.
#[derive(Debug, Default)]
pub(super) struct Uploads {
    /// Local path → server image name.
    pub(super) by_path: HashMap<PathBuf, String>,
    /// Content hash → server image name, of this run.
    pub(super) by_hash: HashMap<String, String>,
    /// Uploads of earlier runs the server still has (checked once, when first needed).
    pub(super) earlier: Option<BTreeSet<String>>,
}

impl Uploads {
    /// The server name of an uploaded local image.
    pub(super) fn name(&self, image: &LocalImage) -> String {
        self.by_path.get(&image.path).cloned().unwrap_or_default()
    }

    /// Every image name this run uploaded or reused.
    pub(super) fn names(&self) -> impl Iterator<Item = &String> {
        self.by_path.values()
    }
}

/// The next event of the lanes whose `listening` flag is set, with the lane's index.
pub(super) async fn next_event(
    lanes: &mut [Lane],
    listening: &[bool],
) -> (usize, Option<TrackEvent>) {
    let futures: Vec<_> = lanes
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| listening.get(*i).copied().unwrap_or(false))
        .map(|(i, lane)| Box::pin(async move { (i, lane.tracker.next().await) }))
        .collect();
    if futures.is_empty() {
        return std::future::pending().await;
    }
    select_all(futures).await.0
}

/// The model inputs of an enqueue whose values need the server: system name, reference, and
/// the model types the field accepts.
#[must_use]
fn model_inputs(
    workflow: &Workflow,
    inputs: &indexmap::IndexMap<String, InputInfo>,
    enqueue: &EnqueuePlan,
) -> Vec<(String, ModelRef, Vec<String>)> {
    enqueue
        .fixed
        .iter()
        .filter(|(system, _)| {
            inputs
                .get(*system)
                .is_some_and(|i| i.kind == InputKind::Model)
        })
        .filter_map(|(system, v)| {
            let reference = v.as_value().and_then(ModelRef::of)?;
            Some((system.clone(), reference, model_types_of(workflow, system)))
        })
        .collect()
}
