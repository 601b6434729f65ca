//! [`Tracker`]: the one place that waits for queue items, for the workflow handle and the runner.
//!
//! A tracker follows any number of queue items ([`Tracker::watch`], at any time, repeatedly) and
//! yields [`TrackEvent`]s from [`Tracker::next`]: [`TrackEvent::Finished`] exactly once per
//! watched item, with the **full** queue item fetched over REST after its terminal status was
//! seen (the server saves the session's results before it changes the status, so that item holds
//! the final results), and progress news in between.
//!
//! # Sources
//! - **Events** ([`TrackMode::Events`], the default): the server's Socket.IO stream. Status
//!   changes of watched items settle them; stale ones are discarded by `status_sequence`; items
//!   canceled in bulk (which get no status event of their own when pending) settle from
//!   `queue_items_canceled`. If the socket cannot be opened at start, the tracker polls instead
//!   (with a warning): a run never fails for want of events.
//! - **Polling** (always, as the safety net): one `item_summaries_by_ids` call for all open items
//!   (1000 ids per call), right after every [`Tracker::watch`] (an item may have finished before it
//!   was watched), after every reconnect or queue clear, and every `poll_interval`. Polling never
//!   infers "done" from "not pending": only a terminal status settles an item; an item that is no
//!   longer in the queue at all settles as [`TrackEvent::Vanished`].
//!
//! The server pauses about a second before each item and its HTTP answers stall meanwhile, so
//! the tracker never polls in a tight loop: keep `poll_interval` at a second or more.
//!
//! ```no_run
//! # async fn demo(client: invk_run::client::Client, item_ids: Vec<i64>) {
//! use std::time::Duration;
//! use invk_run::client::{TrackEvent, TrackMode, Tracker};
//!
//! let mut tracker = Tracker::start(&client, TrackMode::Events, Duration::from_secs(5)).await;
//! tracker.watch(item_ids);
//! while let Some(event) = tracker.next().await {
//!     if let TrackEvent::Finished(item) = event {
//!         println!("item {} ended {}", item.item_id, item.status.as_str());
//!     }
//! }
//! tracker.close().await;
//! # }
//! ```

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::queue::QueueItem;
use super::{Body, Client, ClientError, Replay};
use crate::error_chain::error_chain;
use crate::events::{
    Event, EventStream, EventsConfig, EventsHandle, ItemSnapshot, ItemStatus, Outcome, Reconciler,
    Settled, StreamItem,
};

/// The most ids the server takes in one `item_summaries_by_ids` or `items_by_ids` call.
const IDS_PER_CALL: usize = 1000;

/// The shortest pause between two polls, whatever `poll_interval` says.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How long a failed item's report waits for its node's `invocation_error` event, which the
/// server sends just after the item's `failed` status.
const ERROR_EVENT_GRACE: Duration = Duration::from_secs(1);

/// How a [`Tracker`] learns about items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrackMode {
    /// The server's Socket.IO events, with polling as the safety net (falls back to polling
    /// alone when the socket cannot be opened).
    #[default]
    Events,
    /// REST polling only (no socket; no per-node progress).
    PollOnly,
}

/// What a [`Tracker`] reports.
// A finished item is moved once to the caller; boxing it would only add an allocation.
#[non_exhaustive]
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum TrackEvent {
    /// A watched item reached a terminal status (completed, failed or canceled). The item was
    /// fetched after that status was seen, so its session holds the final results and its error
    /// fields the server's error. Reported exactly once per watched item.
    Finished(QueueItem),
    /// A watched item is no longer in the queue (deleted or cleared) and was not seen finishing.
    /// Also terminal: the item is no longer watched.
    Vanished {
        /// The item.
        item_id: i64,
    },
    /// A watched item started running (reported once, when `in_progress` was seen).
    Started {
        /// The item.
        item_id: i64,
    },
    /// A node of a watched item began executing (events only).
    NodeStarted {
        /// The item.
        item_id: i64,
        /// The node's id in the submitted graph (its source id).
        node_id: String,
        /// The node's type, when the event says.
        node_type: Option<String>,
    },
    /// A node of a watched item reported progress (events only).
    Progress {
        /// The item.
        item_id: i64,
        /// The node's id in the submitted graph (its source id).
        node_id: String,
        /// The node's type, when the event says.
        node_type: Option<String>,
        /// What it is doing.
        message: String,
        /// How far along, from 0 to 1, when known.
        percentage: Option<f64>,
    },
    /// A node of a watched item finished (events only).
    NodeCompleted {
        /// The item.
        item_id: i64,
        /// The node's id in the submitted graph (its source id).
        node_id: String,
    },
    /// A node of a watched item failed (events only). The item's own
    /// [`TrackEvent::Finished`] follows, with the same error in its fields.
    NodeFailed {
        /// The item.
        item_id: i64,
        /// The node's id in the submitted graph (its source id).
        node_id: String,
        /// The server's error type.
        error_type: String,
        /// The server's error message.
        error_message: String,
    },
    /// The event socket reconnected; the tracker has polled to catch up (informational).
    Reconnected,
    /// A poll of the queue failed; the tracker tries again at the next interval
    /// (informational: a caller may give up after a while).
    PollFailed {
        /// The error, with its cause.
        error: String,
        /// How many polls in a row have failed.
        consecutive: u32,
    },
}

impl TrackEvent {
    /// The item the event is about, if any.
    #[must_use]
    pub fn item_id(&self) -> Option<i64> {
        match self {
            TrackEvent::Finished(item) => Some(item.item_id),
            TrackEvent::Vanished { item_id }
            | TrackEvent::Started { item_id }
            | TrackEvent::NodeStarted { item_id, .. }
            | TrackEvent::Progress { item_id, .. }
            | TrackEvent::NodeCompleted { item_id, .. }
            | TrackEvent::NodeFailed { item_id, .. } => Some(*item_id),
            TrackEvent::Reconnected | TrackEvent::PollFailed { .. } => None,
        }
    }

    /// Whether the event ends the tracking of its item ([`TrackEvent::Finished`] or
    /// [`TrackEvent::Vanished`]).
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        matches!(self, TrackEvent::Finished(_) | TrackEvent::Vanished { .. })
    }
}

/// What the tracker needs to do next, decided by [`TrackState`].
// Short-lived: each value is matched at once.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
enum Need {
    /// Report this event.
    Emit(TrackEvent),
    /// Fetch these settled items in full.
    Fetch(Vec<i64>),
    /// Poll these open items' statuses.
    Poll(Vec<i64>),
    /// Wait for news (events or the poll timer).
    Wait,
    /// Nothing is watched any more.
    Idle,
}

/// The tracker's bookkeeping, without I/O: fed with stream items, poll answers and fetched
/// items, it says what to report and what to ask the server next.
#[derive(Debug, Default)]
struct TrackState {
    reconciler: Reconciler,
    /// Watched items not yet settled.
    open: HashSet<i64>,
    /// Items reported as started.
    started: HashSet<i64>,
    /// Settled items still to fetch in full.
    to_fetch: BTreeSet<i64>,
    /// Items already reported as finished or vanished (never reported twice).
    done: HashSet<i64>,
    /// Events to report, in order.
    out: VecDeque<TrackEvent>,
    /// A poll was asked for (after `watch`, a reconnect, a queue clear).
    poll_requested: bool,
    /// With events: how long a failed item waits for its `invocation_error` before it is
    /// fetched (so that [`TrackEvent::NodeFailed`] comes before [`TrackEvent::Finished`]).
    error_grace: Option<Duration>,
    /// Failed items waiting for their error event, until when.
    awaiting_error: HashMap<i64, Instant>,
}

impl TrackState {
    fn watch(&mut self, item_ids: impl IntoIterator<Item = i64>) {
        let fresh: Vec<i64> = item_ids
            .into_iter()
            .filter(|id| !self.done.contains(id) && !self.to_fetch.contains(id))
            .filter(|id| self.open.insert(*id))
            .collect();
        if fresh.is_empty() {
            return;
        }
        for id in &fresh {
            if self.reconciler.status(*id) == Some(ItemStatus::InProgress) {
                self.mark_started(*id);
            }
        }
        let settled = self.reconciler.watch(fresh);
        self.apply_settled(settled);
        self.poll_requested = true;
    }

    fn mark_started(&mut self, item_id: i64) {
        if self.open.contains(&item_id) && self.started.insert(item_id) {
            self.out.push_back(TrackEvent::Started { item_id });
        }
    }

    fn apply_settled(&mut self, settled: Vec<Settled>) {
        for s in settled {
            if !self.open.remove(&s.item_id) {
                continue;
            }
            match s.outcome {
                Outcome::Finished { status, .. } => {
                    if let (ItemStatus::Failed, Some(grace)) = (status, self.error_grace) {
                        self.awaiting_error
                            .insert(s.item_id, Instant::now() + grace);
                    }
                    self.to_fetch.insert(s.item_id);
                }
                Outcome::Vanished => self.vanish(s.item_id),
            }
        }
    }

    fn vanish(&mut self, item_id: i64) {
        if self.done.insert(item_id) {
            self.out.push_back(TrackEvent::Vanished { item_id });
        }
    }

    fn on_stream_item(&mut self, item: StreamItem) {
        match item {
            StreamItem::Connected | StreamItem::Disconnected { .. } => {}
            StreamItem::Reconnected => {
                self.out.push_back(TrackEvent::Reconnected);
                self.poll_requested = true;
            }
            StreamItem::Event(event) => self.on_event(&event),
        }
    }

    fn on_event(&mut self, event: &Event) {
        match event {
            Event::QueueItemStatusChanged(change) => {
                let id = change.item.item_id;
                let settled = self.reconciler.on_event(event);
                if change.status == ItemStatus::InProgress
                    && self.reconciler.status(id) == Some(ItemStatus::InProgress)
                {
                    self.mark_started(id);
                }
                self.apply_settled(settled);
            }
            Event::QueueItemsCanceled { .. } => {
                let settled = self.reconciler.on_event(event);
                self.apply_settled(settled);
            }
            Event::QueueCleared { .. } => self.poll_requested = true,
            Event::InvocationStarted(invocation)
                if self.open.contains(&invocation.item.item_id) =>
            {
                self.out.push_back(TrackEvent::NodeStarted {
                    item_id: invocation.item.item_id,
                    node_id: invocation.invocation_source_id.clone(),
                    node_type: invocation.invocation_type().map(str::to_owned),
                });
            }
            Event::InvocationError { invocation, error } => {
                // The server sends the item's `failed` status first: the item may have settled.
                let id = invocation.item.item_id;
                self.awaiting_error.remove(&id);
                if self.open.contains(&id) || self.to_fetch.contains(&id) {
                    self.out.push_back(TrackEvent::NodeFailed {
                        item_id: id,
                        node_id: invocation.invocation_source_id.clone(),
                        error_type: error.error_type.clone(),
                        error_message: error.error_message.clone(),
                    });
                }
            }
            Event::InvocationProgress {
                invocation,
                message,
                percentage,
            } if self.open.contains(&invocation.item.item_id) => {
                self.out.push_back(TrackEvent::Progress {
                    item_id: invocation.item.item_id,
                    node_id: invocation.invocation_source_id.clone(),
                    node_type: invocation.invocation_type().map(str::to_owned),
                    message: message.clone(),
                    percentage: *percentage,
                });
            }
            Event::InvocationComplete { invocation, .. }
                if self.open.contains(&invocation.item.item_id) =>
            {
                self.out.push_back(TrackEvent::NodeCompleted {
                    item_id: invocation.item.item_id,
                    node_id: invocation.invocation_source_id.clone(),
                });
            }
            _ => {}
        }
    }

    fn on_poll(&mut self, asked: &[i64], snapshots: &[ItemSnapshot]) {
        for snap in snapshots {
            if snap.status == ItemStatus::InProgress {
                self.mark_started(snap.item_id);
            }
        }
        let settled = self.reconciler.apply_snapshots(asked, snapshots);
        self.apply_settled(settled);
    }

    fn on_fetched(&mut self, asked: &[i64], items: Vec<QueueItem>) {
        let mut got = HashSet::with_capacity(items.len());
        for item in items {
            let id = item.item_id;
            if !asked.contains(&id) || !self.to_fetch.remove(&id) {
                continue;
            }
            got.insert(id);
            if !item.status.is_terminal() {
                tracing::warn!(
                    item_id = id,
                    status = item.status.as_str(),
                    "a queue item reported as finished is not terminal on the server"
                );
            }
            if self.done.insert(id) {
                self.out.push_back(TrackEvent::Finished(item));
            }
        }
        for id in asked {
            if !got.contains(id) && self.to_fetch.remove(id) {
                self.vanish(*id);
            }
        }
    }

    /// What to do next.
    fn need(&mut self) -> Need {
        if let Some(event) = self.out.pop_front() {
            return Need::Emit(event);
        }
        let now = Instant::now();
        let ready: Vec<i64> = self
            .to_fetch
            .iter()
            .copied()
            .filter(|id| {
                self.awaiting_error
                    .get(id)
                    .is_none_or(|until| *until <= now)
            })
            .collect();
        if !ready.is_empty() {
            for id in &ready {
                self.awaiting_error.remove(id);
            }
            return Need::Fetch(ready);
        }
        if self.open.is_empty() && self.to_fetch.is_empty() {
            return Need::Idle;
        }
        if !self.open.is_empty() && std::mem::take(&mut self.poll_requested) {
            return Need::Poll(self.open_items());
        }
        Need::Wait
    }

    /// When a failed item stops waiting for its error event, if any does.
    fn wake_at(&self) -> Option<Instant> {
        self.awaiting_error.values().min().copied()
    }

    /// Stops waiting for error events (the event stream is gone).
    fn without_events(&mut self) {
        self.error_grace = None;
        self.awaiting_error.clear();
    }

    fn open_items(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.open.iter().copied().collect();
        ids.sort_unstable();
        ids
    }
}

/// One row of `item_summaries_by_ids`.
#[derive(Deserialize)]
struct Summary {
    item_id: i64,
    status: ItemStatus,
}

/// Follows queue items until each has finished; see the [module docs](self).
#[derive(Debug)]
pub struct Tracker {
    client: Client,
    queue_id: String,
    events: Option<(EventsHandle, mpsc::Receiver<StreamItem>)>,
    poll_interval: Duration,
    next_poll: Instant,
    failures: u32,
    state: TrackState,
}

impl Tracker {
    /// A tracker of the `default` queue; see [`Tracker::start_for_queue`].
    pub async fn start(client: &Client, mode: TrackMode, poll_interval: Duration) -> Tracker {
        Tracker::start_for_queue(client, "default", mode, poll_interval).await
    }

    /// A tracker of the queue `queue_id`. With [`TrackMode::Events`] it opens the event socket
    /// first; when that fails it logs a warning and polls instead. It never fails.
    ///
    /// `poll_interval` is the pause between two polls (at least 200 ms): a few seconds with
    /// events (polling is only the safety net), about a second when polling alone.
    pub async fn start_for_queue(
        client: &Client,
        queue_id: &str,
        mode: TrackMode,
        poll_interval: Duration,
    ) -> Tracker {
        let events = match mode {
            TrackMode::PollOnly => None,
            TrackMode::Events => {
                let mut config = EventsConfig::new(client.base_url().clone());
                config.queue_id = queue_id.to_owned();
                config.token = client.token().map(|t| t.expose().to_owned());
                match EventStream::connect(config).await {
                    Ok(stream) => Some(stream),
                    Err(err) => {
                        tracing::warn!(
                            "no event stream ({err}); following the queue by polling every {poll_interval:?}"
                        );
                        None
                    }
                }
            }
        };
        let poll_interval = poll_interval.max(MIN_POLL_INTERVAL);
        let uses_events = events.is_some();
        Tracker {
            client: client.clone(),
            queue_id: queue_id.to_owned(),
            events,
            poll_interval,
            next_poll: Instant::now() + poll_interval,
            failures: 0,
            state: TrackState {
                error_grace: uses_events.then_some(ERROR_EVENT_GRACE),
                ..TrackState::default()
            },
        }
    }

    /// Whether the event socket is in use (false when polling only).
    #[must_use]
    pub fn uses_events(&self) -> bool {
        self.events.is_some()
    }

    /// Follows these items too (ids already watched or reported are ignored). The next call to
    /// [`Tracker::next`] polls them once at once, so items that finished before they were
    /// watched are found.
    pub fn watch(&mut self, item_ids: impl IntoIterator<Item = i64>) {
        self.state.watch(item_ids);
    }

    /// The watched items that have not finished yet, ascending.
    #[must_use]
    pub fn open_items(&self) -> Vec<i64> {
        let mut ids = self.state.open_items();
        ids.extend(self.state.to_fetch.iter().copied());
        ids.sort_unstable();
        ids
    }

    /// The next event; `None` when every watched item has been reported finished (or vanished)
    /// and nothing else is pending. Call [`Tracker::watch`] again to go on.
    pub async fn next(&mut self) -> Option<TrackEvent> {
        loop {
            match self.state.need() {
                Need::Emit(event) => return Some(event),
                Need::Idle => return None,
                Need::Fetch(ids) => {
                    if let Some(event) = self.fetch(&ids).await {
                        return Some(event);
                    }
                }
                Need::Poll(ids) => {
                    if let Some(event) = self.poll(&ids).await {
                        return Some(event);
                    }
                }
                Need::Wait => self.wait().await,
            }
        }
    }

    /// Waits for an event or the poll timer, and applies what came.
    async fn wait(&mut self) {
        let deadline = self
            .state
            .wake_at()
            .map_or(self.next_poll, |at| at.min(self.next_poll));
        let Some((_, receiver)) = &mut self.events else {
            tokio::time::sleep_until(deadline).await;
            self.state.poll_requested = Instant::now() >= self.next_poll;
            return;
        };
        tokio::select! {
            item = receiver.recv() => match item {
                Some(item) => {
                    self.state.on_stream_item(item);
                    // Take whatever else is already there, so that one fetch serves them all.
                    while let Ok(more) = receiver.try_recv() {
                        self.state.on_stream_item(more);
                    }
                }
                None => {
                    tracing::warn!("the event stream ended; following the queue by polling");
                    self.events = None;
                    self.state.without_events();
                    self.state.poll_requested = true;
                }
            },
            () = tokio::time::sleep_until(deadline) => {
                self.state.poll_requested |= Instant::now() >= self.next_poll;
            }
        }
    }

    /// Polls the statuses of `ids`; returns a [`TrackEvent::PollFailed`] when the poll failed.
    async fn poll(&mut self, ids: &[i64]) -> Option<TrackEvent> {
        self.next_poll = Instant::now() + self.poll_interval;
        match self.summaries(ids).await {
            Ok(snapshots) => {
                self.failures = 0;
                self.state.on_poll(ids, &snapshots);
                None
            }
            Err(err) => Some(self.failed(&err)),
        }
    }

    /// Fetches settled items in full; on failure, they are fetched again after the interval.
    async fn fetch(&mut self, ids: &[i64]) -> Option<TrackEvent> {
        match self
            .client
            .queue_with_id(&self.queue_id)
            .items_by_ids(ids)
            .await
        {
            Ok(items) => {
                self.failures = 0;
                self.state.on_fetched(ids, items);
                None
            }
            Err(err) => {
                let event = self.failed(&err);
                tokio::time::sleep(self.poll_interval).await;
                Some(event)
            }
        }
    }

    fn failed(&mut self, err: &ClientError) -> TrackEvent {
        self.failures = self.failures.saturating_add(1);
        let error = error_chain(err);
        tracing::warn!(
            consecutive = self.failures,
            "polling the queue failed: {error}; trying again in {:?}",
            self.poll_interval
        );
        TrackEvent::PollFailed {
            error,
            consecutive: self.failures,
        }
    }

    async fn summaries(&self, ids: &[i64]) -> Result<Vec<ItemSnapshot>, ClientError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_CALL) {
            let url = self.client.endpoint(&[
                "api",
                "v1",
                "queue",
                &self.queue_id,
                "item_summaries_by_ids",
            ]);
            let rows: Vec<Summary> = self
                .client
                .send_json(
                    Method::POST,
                    url,
                    Replay::Idempotent,
                    Body::json(&json!({ "item_ids": chunk })),
                )
                .await?;
            out.extend(rows.into_iter().map(|row| ItemSnapshot {
                item_id: row.item_id,
                status: row.status,
                status_sequence: None,
                error_message: None,
            }));
        }
        Ok(out)
    }

    /// Closes the event socket (if any) and waits for its task to end.
    pub async fn close(self) {
        if let Some((handle, _receiver)) = self.events
            && let Err(err) = handle.close().await
        {
            tracing::debug!("closing the event stream: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn event(name: &str, payload: Value) -> StreamItem {
        StreamItem::Event(Event::parse(name, payload))
    }

    fn status(item_id: i64, status: &str, seq: i64) -> StreamItem {
        event(
            "queue_item_status_changed",
            json!({"queue_id": "default", "item_id": item_id, "batch_id": "b",
                   "status": status, "status_sequence": seq}),
        )
    }

    fn progress(item_id: i64, node: &str) -> StreamItem {
        event(
            "invocation_progress",
            json!({"queue_id": "default", "item_id": item_id, "batch_id": "b",
                   "session_id": "s", "invocation_source_id": node,
                   "invocation": {"id": "p", "type": "denoise_latents"},
                   "message": "step 1/2", "percentage": 0.5}),
        )
    }

    fn snap(item_id: i64, status: &str) -> ItemSnapshot {
        ItemSnapshot {
            item_id,
            status: serde_json::from_value(json!(status)).expect("a status"),
            status_sequence: None,
            error_message: None,
        }
    }

    fn item(item_id: i64, status: &str) -> QueueItem {
        serde_json::from_value(json!({"item_id": item_id, "status": status}))
            .expect("a minimal queue item parses")
    }

    /// Drains the reports, stopping at the first I/O need.
    fn drain(state: &mut TrackState) -> (Vec<TrackEvent>, Need) {
        let mut events = Vec::new();
        loop {
            match state.need() {
                Need::Emit(e) => events.push(e),
                other => return (events, other),
            }
        }
    }

    #[test]
    fn watching_polls_once_at_once_and_a_terminal_poll_is_fetched_then_reported_once() {
        let mut s = TrackState::default();
        assert_eq!(s.need(), Need::Idle, "nothing watched");
        s.watch([3, 1, 2]);
        assert_eq!(s.need(), Need::Poll(vec![1, 2, 3]));
        assert_eq!(s.need(), Need::Wait, "one poll per request");
        s.on_poll(
            &[1, 2, 3],
            &[
                snap(1, "completed"),
                snap(2, "in_progress"),
                snap(3, "pending"),
            ],
        );
        let (events, need) = drain(&mut s);
        assert_eq!(events, [TrackEvent::Started { item_id: 2 }]);
        assert_eq!(need, Need::Fetch(vec![1]));
        s.on_fetched(&[1], vec![item(1, "completed")]);
        let (events, need) = drain(&mut s);
        assert_eq!(events, [TrackEvent::Finished(item(1, "completed"))]);
        assert_eq!(need, Need::Wait);
        // The same item again: from a late event, a poll, or watching it again.
        s.on_stream_item(status(1, "completed", 3));
        s.on_poll(&[1], &[snap(1, "completed")]);
        s.watch([1]);
        assert_eq!(drain(&mut s), (vec![], Need::Wait));
    }

    #[test]
    fn events_settle_items_and_stale_ones_are_discarded() {
        let mut s = TrackState::default();
        s.watch([7]);
        assert_eq!(s.need(), Need::Poll(vec![7]));
        s.on_poll(&[7], &[snap(7, "pending")]);
        s.on_stream_item(status(7, "in_progress", 2));
        s.on_stream_item(event(
            "invocation_started",
            json!({"queue_id": "default", "item_id": 7, "batch_id": "b", "session_id": "s",
                   "invocation_source_id": "denoise", "invocation": {"id": "p", "type": "denoise_latents"}}),
        ));
        s.on_stream_item(progress(7, "denoise"));
        s.on_stream_item(progress(8, "other-item"));
        s.on_stream_item(event(
            "invocation_complete",
            json!({"queue_id": "default", "item_id": 7, "batch_id": "b", "session_id": "s",
                   "invocation_source_id": "denoise", "invocation": {"id": "p"}, "result": {}}),
        ));
        let (events, need) = drain(&mut s);
        assert_eq!(
            events,
            [
                TrackEvent::Started { item_id: 7 },
                TrackEvent::NodeStarted {
                    item_id: 7,
                    node_id: "denoise".into(),
                    node_type: Some("denoise_latents".into()),
                },
                TrackEvent::Progress {
                    item_id: 7,
                    node_id: "denoise".into(),
                    node_type: Some("denoise_latents".into()),
                    message: "step 1/2".into(),
                    percentage: Some(0.5),
                },
                TrackEvent::NodeCompleted {
                    item_id: 7,
                    node_id: "denoise".into()
                },
            ]
        );
        assert_eq!(need, Need::Wait);
        // A stale `pending` (older sequence) changes nothing; `failed` settles it.
        s.on_stream_item(status(7, "pending", 1));
        assert_eq!(s.need(), Need::Wait);
        s.on_stream_item(status(7, "failed", 3));
        s.on_stream_item(event(
            "invocation_error",
            json!({"queue_id": "default", "item_id": 7, "batch_id": "b", "session_id": "s",
                   "invocation_source_id": "denoise", "invocation": {"id": "p"},
                   "error_type": "OutOfMemoryError", "error_message": "CUDA out of memory",
                   "error_traceback": "..."}),
        ));
        assert_eq!(
            s.need(),
            Need::Emit(TrackEvent::NodeFailed {
                item_id: 7,
                node_id: "denoise".into(),
                error_type: "OutOfMemoryError".into(),
                error_message: "CUDA out of memory".into(),
            })
        );
        assert_eq!(s.need(), Need::Fetch(vec![7]));
        s.on_fetched(&[7], vec![item(7, "failed")]);
        assert_eq!(
            s.need(),
            Need::Emit(TrackEvent::Finished(item(7, "failed")))
        );
        assert_eq!(s.need(), Need::Idle);
    }

    #[test]
    fn bulk_cancels_settle_pending_items_and_reconnects_poll() {
        let mut s = TrackState::default();
        s.watch([1, 2, 3]);
        let _ = s.need();
        s.on_stream_item(event(
            "queue_items_canceled",
            json!({"queue_id": "default", "canceled_item_ids": [1, 3, 99]}),
        ));
        assert_eq!(s.need(), Need::Fetch(vec![1, 3]));
        s.on_fetched(&[1, 3], vec![item(1, "canceled"), item(3, "canceled")]);
        let (events, need) = drain(&mut s);
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(TrackEvent::is_terminal));
        assert_eq!(need, Need::Wait);
        s.on_stream_item(StreamItem::Reconnected);
        assert_eq!(s.need(), Need::Emit(TrackEvent::Reconnected));
        assert_eq!(s.need(), Need::Poll(vec![2]));
    }

    #[test]
    fn events_before_watch_count_and_gone_items_vanish() {
        let mut s = TrackState::default();
        // The socket reports the item done before the enqueue call returned its id.
        s.on_stream_item(status(5, "in_progress", 2));
        s.on_stream_item(status(5, "completed", 3));
        s.watch([5, 6]);
        assert_eq!(s.need(), Need::Fetch(vec![5]));
        // Item 5 was deleted between the event and the fetch: it vanishes, once.
        s.on_fetched(&[5], vec![]);
        assert_eq!(s.need(), Need::Emit(TrackEvent::Vanished { item_id: 5 }));
        assert_eq!(s.need(), Need::Poll(vec![6]));
        // The poll does not find 6 at all (queue cleared): it vanishes too; never "done"
        // because it is merely not pending.
        s.on_poll(&[6], &[]);
        assert_eq!(s.need(), Need::Emit(TrackEvent::Vanished { item_id: 6 }));
        assert_eq!(s.need(), Need::Idle);
    }

    #[test]
    fn a_failed_item_waits_briefly_for_its_node_error_event() {
        let grace = Duration::from_millis(300);
        let mut s = TrackState {
            error_grace: Some(grace),
            ..TrackState::default()
        };
        s.watch([1, 2]);
        let _ = s.need();
        s.on_stream_item(status(1, "failed", 3));
        s.on_stream_item(status(2, "failed", 3));
        assert_eq!(s.need(), Need::Wait, "both wait for their error event");
        s.on_stream_item(event(
            "invocation_error",
            json!({"queue_id": "default", "item_id": 1, "batch_id": "b", "session_id": "s",
                   "invocation_source_id": "model", "invocation": {"id": "p"},
                   "error_type": "UnknownModelException", "error_message": "Unknown model k",
                   "error_traceback": ""}),
        ));
        assert!(matches!(
            s.need(),
            Need::Emit(TrackEvent::NodeFailed { item_id: 1, .. })
        ));
        assert_eq!(
            s.need(),
            Need::Fetch(vec![1]),
            "its error came: fetched at once"
        );
        s.on_fetched(&[1], vec![item(1, "failed")]);
        assert!(matches!(s.need(), Need::Emit(TrackEvent::Finished(_))));
        assert_eq!(s.need(), Need::Wait);
        // Item 2's error event never comes: it is fetched after the grace period anyway.
        std::thread::sleep(grace);
        assert_eq!(s.need(), Need::Fetch(vec![2]));
    }

    #[test]
    fn many_items_are_fetched_in_one_request() {
        let mut s = TrackState::default();
        let ids: Vec<i64> = (1..=60).collect();
        s.watch(ids.clone());
        assert_eq!(s.need(), Need::Poll(ids.clone()));
        for id in &ids {
            s.on_stream_item(status(*id, "completed", 3));
        }
        assert_eq!(s.need(), Need::Fetch(ids.clone()));
        s.on_fetched(&ids, ids.iter().map(|id| item(*id, "completed")).collect());
        let (events, need) = drain(&mut s);
        assert_eq!(events.len(), 60);
        assert_eq!(need, Need::Idle);
    }
}
