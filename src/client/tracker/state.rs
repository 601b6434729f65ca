//! The tracker's state machine: what is known of each queue item, fed by the event stream, by
//! polls and by fetches, without I/O. [`Tracker`](super::Tracker) drives it: it hands over what
//! came ([`TrackState::on_stream_item`], [`TrackState::on_poll`], [`TrackState::on_fetched`], the
//! failures) and asks [`TrackState::need`] what to report or request next.
//!
//! Each item is one [`Item`]: its [`Phase`], its newest known status (with the `status_sequence`
//! events carry, and whether an event or a poll said it), and whether it was reported started.
//!
//! ```text
//! event about an unknown item ─► Unwatched ─watch─┐
//! watch ──────────────────────────────────────────┴─► Open ─terminal status─► Settled
//!                                                      │   (event or poll)       │ fetch
//!                                  not in a poll's answer                        ▼
//!                                                      └──────────────────────► Reported
//! ```
//! (`Finished` when the fetch returns the item, `Vanished` when the queue no longer has it;
//! `forget` removes an item from any phase.)
//!
//! A status is news unless it is older than the known one (a lower or equal `status_sequence`,
//! or a non-terminal status after a terminal one: terminal statuses never change). Only news
//! moves an item; so duplicate and stale events, and polls that confirm what an event said, do
//! nothing. An item is reported [`TrackEvent::Finished`] or [`TrackEvent::Vanished`] once: after
//! that it is `Reported` and nothing about it is reported again, until it is forgotten.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::event::TrackEvent;
use crate::client::queue::QueueItem;
use crate::events::{Event, ItemStatus, StreamItem};

/// How many items known only from events (not watched) are remembered; beyond it the oldest
/// (lowest id) are dropped. Events about other clients' items come through the same socket: this
/// bounds what they cost. Ours are watched within moments of their enqueue.
const UNWATCHED_KEPT: usize = 10_000;

/// What a poll says about one item (a row of `item_summaries_by_ids`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(super) struct Polled {
    /// The queue item.
    pub(super) item_id: i64,
    /// Its status.
    pub(super) status: ItemStatus,
}

/// Where the newest known status of an item came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// The event stream.
    Event,
    /// A poll of the queue.
    Poll,
}

/// Where an item is in its life, as far as the tracker knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Known from the event stream only, not watched: its status is kept in case it is watched
    /// later (an enqueue's events can come before the enqueue call returns the ids).
    Unwatched,
    /// Watched, not seen terminal.
    Open,
    /// Watched and seen terminal; to be fetched in full, not before `fetch_at` when set.
    Settled {
        /// When it may be fetched (a failed item waiting for its error event, or a fetch that
        /// failed and waits for the next try); `None`: at once.
        fetch_at: Option<Instant>,
        /// It failed and waits for its node's `invocation_error` event.
        awaiting_error: bool,
    },
    /// Reported finished or vanished: nothing more is reported about it.
    Reported,
}

/// The newest known status of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Known {
    status: ItemStatus,
    sequence: Option<i64>,
    source: Source,
}

/// All the tracker knows of one item.
#[derive(Debug, Clone)]
struct Item {
    phase: Phase,
    known: Option<Known>,
    /// [`TrackEvent::Started`] was reported.
    started: bool,
}

/// What the tracker needs to do next, decided by [`TrackState::need`].
// Short-lived: each value is matched at once.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Need {
    /// Report this event.
    Emit(TrackEvent),
    /// Fetch these settled items in full.
    Fetch(Vec<i64>),
    /// Poll these open items' statuses.
    Poll(Vec<i64>),
    /// Wait for news (events, the poll timer, or [`TrackState::wake_at`]).
    Wait,
    /// Nothing is watched any more.
    Idle,
}

/// The tracker's one state: every item it knows, what to report, and the server's health.
#[derive(Debug, Default)]
pub(super) struct TrackState {
    items: HashMap<i64, Item>,
    /// The ids of `items` by phase, kept in step by [`TrackState::set_phase`] (reported items
    /// need no index).
    unwatched: BTreeSet<i64>,
    open: BTreeSet<i64>,
    settled: BTreeSet<i64>,
    /// Events to report, in order.
    out: VecDeque<TrackEvent>,
    /// A poll was asked for (after `watch`, a socket drop or reconnect, a queue clear, the timer).
    poll_requested: bool,
    /// With events: how long a failed item waits for its `invocation_error` before it is
    /// fetched (so that [`TrackEvent::NodeFailed`] comes before [`TrackEvent::Finished`]).
    error_grace: Option<Duration>,
    /// Requests (polls, fetches) that failed in a row.
    failures: u32,
    /// Since when the event socket has been down, while it is and no request has succeeded
    /// since.
    socket_down_since: Option<Instant>,
    /// [`TrackEvent::ServerDown`] was reported and no sign of life has come since.
    server_down: bool,
}

impl TrackState {
    /// A state whose failed items wait up to `error_grace` for their error event (with the
    /// event stream), or not at all (`None`, polling).
    pub(super) fn new(error_grace: Option<Duration>) -> TrackState {
        TrackState {
            error_grace,
            ..TrackState::default()
        }
    }

    /// Watches these items. Items already watched or reported are left as they are; items whose
    /// terminal status is known already settle at once. A poll is asked for when any item is new
    /// (it may have finished before it was watched, with its event gone by).
    pub(super) fn watch(&mut self, item_ids: impl IntoIterator<Item = i64>, now: Instant) {
        for id in item_ids {
            match self.items.get(&id).map(|item| item.phase) {
                Some(Phase::Unwatched) => {
                    self.set_phase(id, Phase::Open);
                    self.poll_requested = true;
                    if let Some(known) = self.known(id) {
                        self.apply(id, known, now);
                    }
                }
                None => {
                    self.items.insert(
                        id,
                        Item {
                            phase: Phase::Open,
                            known: None,
                            started: false,
                        },
                    );
                    self.open.insert(id);
                    self.poll_requested = true;
                }
                Some(_) => {}
            }
        }
    }

    /// Forgets these items: nothing more is reported about them, events about them not yet
    /// reported are dropped, and watching them again starts afresh.
    pub(super) fn forget(&mut self, item_ids: impl IntoIterator<Item = i64>) {
        let mut gone = BTreeSet::new();
        for id in item_ids {
            if self.items.remove(&id).is_some() {
                self.unwatched.remove(&id);
                self.open.remove(&id);
                self.settled.remove(&id);
                gone.insert(id);
            }
        }
        if !gone.is_empty() {
            self.out
                .retain(|event| event.item_id().is_none_or(|id| !gone.contains(&id)));
        }
    }

    /// Applies one item of the event stream.
    pub(super) fn on_stream_item(&mut self, item: StreamItem, now: Instant) {
        match item {
            StreamItem::Connected => self.socket_down_since = None,
            StreamItem::Disconnected { .. } => {
                // Events are lost until the socket is back: look at the queue now.
                self.socket_down_since.get_or_insert(now);
                self.poll_requested = true;
            }
            StreamItem::Reconnected => {
                self.socket_down_since = None;
                self.server_answers();
                self.out.push_back(TrackEvent::Reconnected);
                self.poll_requested = true;
            }
            StreamItem::Event(event) => self.on_event(&event, now),
        }
    }

    fn on_event(&mut self, event: &Event, now: Instant) {
        match event {
            Event::QueueItemStatusChanged(change) => self.observe(
                change.item.item_id,
                Known {
                    status: change.status,
                    sequence: change.status_sequence,
                    source: Source::Event,
                },
                now,
            ),
            // Pending items canceled in bulk get no status event of their own.
            Event::QueueItemsCanceled {
                canceled_item_ids, ..
            } => {
                for &id in canceled_item_ids {
                    self.observe(
                        id,
                        Known {
                            status: ItemStatus::Canceled,
                            sequence: None,
                            source: Source::Event,
                        },
                        now,
                    );
                }
            }
            // Every item may be gone: the next poll finds out.
            Event::QueueCleared { .. } => self.poll_requested = true,
            Event::InvocationStarted(invocation) if self.is_open(invocation.item.item_id) => {
                self.out.push_back(TrackEvent::NodeStarted {
                    item_id: invocation.item.item_id,
                    node_id: invocation.invocation_source_id.clone(),
                    node_type: invocation.invocation_type().map(str::to_owned),
                });
            }
            Event::InvocationProgress {
                invocation,
                message,
                percentage,
            } if self.is_open(invocation.item.item_id) => {
                self.out.push_back(TrackEvent::Progress {
                    item_id: invocation.item.item_id,
                    node_id: invocation.invocation_source_id.clone(),
                    node_type: invocation.invocation_type().map(str::to_owned),
                    message: message.clone(),
                    percentage: *percentage,
                });
            }
            Event::InvocationComplete { invocation, .. }
                if self.is_open(invocation.item.item_id) =>
            {
                self.out.push_back(TrackEvent::NodeCompleted {
                    item_id: invocation.item.item_id,
                    node_id: invocation.invocation_source_id.clone(),
                });
            }
            Event::InvocationError { invocation, error } => {
                // The server sends the item's `failed` status first: it may have settled, and
                // then waits for this event; it is fetched at once now.
                let id = invocation.item.item_id;
                let phase = self.items.get(&id).map(|item| item.phase);
                if let Some(Phase::Settled {
                    awaiting_error: true,
                    ..
                }) = phase
                {
                    self.set_phase(
                        id,
                        Phase::Settled {
                            fetch_at: None,
                            awaiting_error: false,
                        },
                    );
                }
                if matches!(phase, Some(Phase::Open | Phase::Settled { .. })) {
                    self.out.push_back(TrackEvent::NodeFailed {
                        item_id: id,
                        node_id: invocation.invocation_source_id.clone(),
                        error_type: error.error_type.clone(),
                        error_message: error.error_message.clone(),
                    });
                }
            }
            _ => {}
        }
    }

    /// Applies the answer to a poll of `asked`. Asked items that are still open and missing
    /// from the answer have left the queue: they vanish. An item is never taken as finished
    /// because it is merely not pending: only a terminal status settles it.
    pub(super) fn on_poll(&mut self, asked: &[i64], polled: &[Polled], now: Instant) {
        self.server_answers();
        let asked_set: HashSet<i64> = asked.iter().copied().collect();
        let answered: HashSet<i64> = polled.iter().map(|row| row.item_id).collect();
        for row in polled {
            if asked_set.contains(&row.item_id) {
                self.observe(
                    row.item_id,
                    Known {
                        status: row.status,
                        sequence: None,
                        source: Source::Poll,
                    },
                    now,
                );
            }
        }
        for &id in asked {
            if self.is_open(id) && !answered.contains(&id) {
                self.report(id, TrackEvent::Vanished { item_id: id });
            }
        }
    }

    /// Applies fetched items: each asked item that was settled is reported finished; one the
    /// server no longer has vanished.
    pub(super) fn on_fetched(&mut self, asked: &[i64], items: Vec<QueueItem>) {
        self.server_answers();
        let asked_set: HashSet<i64> = asked.iter().copied().collect();
        for item in items {
            let id = item.item_id;
            if !asked_set.contains(&id) || !self.settled.contains(&id) {
                continue;
            }
            if !item.status.is_terminal() {
                tracing::warn!(
                    item_id = id,
                    status = item.status.as_str(),
                    seen_by = ?self.known(id).map(|k| k.source),
                    "a queue item reported as finished is not terminal on the server"
                );
            }
            self.report(id, TrackEvent::Finished(item));
        }
        for &id in asked {
            if self.settled.contains(&id) {
                self.report(id, TrackEvent::Vanished { item_id: id });
            }
        }
    }

    /// A poll sent at `sent` failed: reports it (and the outage, the first time).
    pub(super) fn on_poll_failed(&mut self, error: String, sent: Instant) {
        self.request_failed(error, sent);
    }

    /// A fetch of `asked`, sent at `sent`, failed: reports it, and fetches them again not
    /// before `retry_at`.
    pub(super) fn on_fetch_failed(
        &mut self,
        asked: &[i64],
        error: String,
        sent: Instant,
        retry_at: Instant,
    ) {
        for &id in asked {
            if self.settled.contains(&id) {
                self.set_phase(
                    id,
                    Phase::Settled {
                        fetch_at: Some(retry_at),
                        awaiting_error: false,
                    },
                );
            }
        }
        self.request_failed(error, sent);
    }

    /// Asks for a poll (the poll timer ran out).
    pub(super) fn request_poll(&mut self) {
        self.poll_requested = true;
    }

    /// Stops waiting for error events (the event stream is gone).
    pub(super) fn without_events(&mut self) {
        self.error_grace = None;
        self.socket_down_since = None;
        let waiting: Vec<i64> = self
            .settled
            .iter()
            .copied()
            .filter(|id| {
                matches!(
                    self.items.get(id).map(|item| item.phase),
                    Some(Phase::Settled {
                        awaiting_error: true,
                        ..
                    })
                )
            })
            .collect();
        for id in waiting {
            self.set_phase(
                id,
                Phase::Settled {
                    fetch_at: None,
                    awaiting_error: false,
                },
            );
        }
        self.poll_requested = true;
    }

    /// What to do next: report what is queued, fetch settled items that are due, poll the open
    /// ones when asked to, else wait.
    pub(super) fn need(&mut self, now: Instant) -> Need {
        if let Some(event) = self.out.pop_front() {
            return Need::Emit(event);
        }
        let due: Vec<i64> = self
            .settled
            .iter()
            .copied()
            .filter(|id| self.fetch_at(*id).is_none_or(|at| at <= now))
            .collect();
        if !due.is_empty() {
            return Need::Fetch(due);
        }
        if self.open.is_empty() && self.settled.is_empty() {
            return Need::Idle;
        }
        if !self.open.is_empty() && std::mem::take(&mut self.poll_requested) {
            return Need::Poll(self.open_items());
        }
        Need::Wait
    }

    /// When a settled item becomes due for its fetch, if one waits.
    pub(super) fn wake_at(&self) -> Option<Instant> {
        self.settled
            .iter()
            .filter_map(|id| self.fetch_at(*id))
            .min()
    }

    /// The watched items not yet settled, ascending.
    pub(super) fn open_items(&self) -> Vec<i64> {
        self.open.iter().copied().collect()
    }

    /// The watched items not yet reported finished or vanished, ascending.
    pub(super) fn unfinished_items(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.open.union(&self.settled).copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Records a status and moves the item on if it is news.
    fn observe(&mut self, id: i64, report: Known, now: Instant) {
        let phase = match self.items.get(&id) {
            Some(item) => item.phase,
            None => {
                self.remember_unwatched(id);
                Phase::Unwatched
            }
        };
        if phase == Phase::Reported {
            return;
        }
        let Some(item) = self.items.get_mut(&id) else {
            return;
        };
        let news = match item.known {
            None => true,
            Some(known) => match (report.sequence, known.sequence) {
                (Some(new), Some(old)) => new > old,
                // Terminal statuses never change; otherwise any different status is news.
                _ => {
                    (report.status.is_terminal() || !known.status.is_terminal())
                        && report.status != known.status
                }
            },
        };
        if !news {
            return;
        }
        let sequence = report
            .sequence
            .or(item.known.and_then(|known| known.sequence));
        let known = Known { sequence, ..report };
        item.known = Some(known);
        self.apply(id, known, now);
    }

    /// What a newly known status means for a watched item: started, or settled.
    fn apply(&mut self, id: i64, known: Known, now: Instant) {
        if !self.is_open(id) {
            return;
        }
        if known.status == ItemStatus::InProgress {
            if let Some(item) = self.items.get_mut(&id)
                && !item.started
            {
                item.started = true;
                self.out.push_back(TrackEvent::Started { item_id: id });
            }
        } else if known.status.is_terminal() {
            let grace = self
                .error_grace
                .filter(|_| known.status == ItemStatus::Failed);
            tracing::debug!(
                item_id = id,
                status = known.status.as_str(),
                seen_by = ?known.source,
                "queue item settled"
            );
            self.set_phase(
                id,
                Phase::Settled {
                    fetch_at: grace.map(|grace| now + grace),
                    awaiting_error: grace.is_some(),
                },
            );
        }
    }

    /// Reports an item's end, once.
    fn report(&mut self, id: i64, event: TrackEvent) {
        if matches!(
            self.items.get(&id).map(|item| item.phase),
            Some(Phase::Open | Phase::Settled { .. })
        ) {
            self.set_phase(id, Phase::Reported);
            self.out.push_back(event);
        }
    }

    /// Adds an entry for an item seen only in events, dropping the oldest beyond the bound.
    fn remember_unwatched(&mut self, id: i64) {
        self.items.insert(
            id,
            Item {
                phase: Phase::Unwatched,
                known: None,
                started: false,
            },
        );
        self.unwatched.insert(id);
        while self.unwatched.len() > UNWATCHED_KEPT {
            if let Some(oldest) = self.unwatched.pop_first() {
                self.items.remove(&oldest);
            }
        }
    }

    fn request_failed(&mut self, error: String, sent: Instant) {
        self.failures = self.failures.saturating_add(1);
        if !self.server_down {
            self.server_down = true;
            let since = self.socket_down_since.map_or(sent, |at| at.min(sent));
            self.out.push_back(TrackEvent::ServerDown { since });
        }
        self.out.push_back(TrackEvent::PollFailed {
            error,
            consecutive: self.failures,
        });
    }

    /// A sign of life: a request succeeded, or the socket reconnected. A later outage begins
    /// after it, whenever the socket dropped.
    fn server_answers(&mut self) {
        self.failures = 0;
        self.socket_down_since = None;
        if std::mem::take(&mut self.server_down) {
            self.out.push_back(TrackEvent::ServerBack);
        }
    }

    /// Moves an item to `phase`, keeping the indexes in step.
    fn set_phase(&mut self, id: i64, phase: Phase) {
        let Some(item) = self.items.get_mut(&id) else {
            return;
        };
        match item.phase {
            Phase::Unwatched => self.unwatched.remove(&id),
            Phase::Open => self.open.remove(&id),
            Phase::Settled { .. } => self.settled.remove(&id),
            Phase::Reported => false,
        };
        item.phase = phase;
        match phase {
            Phase::Unwatched => self.unwatched.insert(id),
            Phase::Open => self.open.insert(id),
            Phase::Settled { .. } => self.settled.insert(id),
            Phase::Reported => false,
        };
    }

    fn is_open(&self, id: i64) -> bool {
        self.open.contains(&id)
    }

    fn known(&self, id: i64) -> Option<Known> {
        self.items.get(&id).and_then(|item| item.known)
    }

    fn fetch_at(&self, id: i64) -> Option<Instant> {
        match self.items.get(&id).map(|item| item.phase) {
            Some(Phase::Settled { fetch_at, .. }) => fetch_at,
            _ => None,
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

    fn invocation(name: &str, item_id: i64, extra: Value) -> StreamItem {
        let mut payload = json!({"queue_id": "default", "item_id": item_id, "batch_id": "b",
            "session_id": "s", "invocation_source_id": "denoise",
            "invocation": {"id": "p", "type": "denoise_latents"}});
        if let (Some(payload), Value::Object(extra)) = (payload.as_object_mut(), extra) {
            payload.extend(extra);
        }
        event(name, payload)
    }

    fn progress(item_id: i64) -> StreamItem {
        invocation(
            "invocation_progress",
            item_id,
            json!({"message": "step 1/2", "percentage": 0.5}),
        )
    }

    fn node_error(item_id: i64) -> StreamItem {
        invocation(
            "invocation_error",
            item_id,
            json!({"error_type": "OutOfMemoryError", "error_message": "CUDA out of memory",
                   "error_traceback": "..."}),
        )
    }

    fn node_failed(item_id: i64) -> TrackEvent {
        TrackEvent::NodeFailed {
            item_id,
            node_id: "denoise".into(),
            error_type: "OutOfMemoryError".into(),
            error_message: "CUDA out of memory".into(),
        }
    }

    fn polled(item_id: i64, status: &str) -> Polled {
        Polled {
            item_id,
            status: serde_json::from_value(json!(status)).expect("a status"),
        }
    }

    fn item(item_id: i64, status: &str) -> QueueItem {
        serde_json::from_value(json!({"item_id": item_id, "status": status}))
            .expect("a minimal queue item parses")
    }

    fn finished(item_id: i64, status: &str) -> TrackEvent {
        TrackEvent::Finished(item(item_id, status))
    }

    /// A state with the event stream's grace for error events.
    fn with_events() -> TrackState {
        TrackState::new(Some(Duration::from_secs(1)))
    }

    /// Drains the reports, stopping at the first need that is not a report.
    fn drain(state: &mut TrackState, now: Instant) -> (Vec<TrackEvent>, Need) {
        let mut events = Vec::new();
        loop {
            match state.need(now) {
                Need::Emit(e) => events.push(e),
                other => return (events, other),
            }
        }
    }

    #[test]
    fn watching_polls_once_at_once_and_a_terminal_poll_is_fetched_then_reported_once() {
        let now = Instant::now();
        let mut s = TrackState::new(None);
        assert_eq!(s.need(now), Need::Idle, "nothing watched");
        s.watch([3, 1, 2], now);
        assert_eq!(s.need(now), Need::Poll(vec![1, 2, 3]));
        assert_eq!(s.need(now), Need::Wait, "one poll per request");
        s.on_poll(
            &[1, 2, 3],
            &[
                polled(1, "completed"),
                polled(2, "in_progress"),
                polled(3, "pending"),
            ],
            now,
        );
        let (events, need) = drain(&mut s, now);
        assert_eq!(events, [TrackEvent::Started { item_id: 2 }]);
        assert_eq!(need, Need::Fetch(vec![1]));
        s.on_fetched(&[1], vec![item(1, "completed")]);
        let (events, need) = drain(&mut s, now);
        assert_eq!(events, [finished(1, "completed")]);
        assert_eq!(need, Need::Wait);
        // The same item again: from a late event, a poll, or watching it again.
        s.on_stream_item(status(1, "completed", 3), now);
        s.on_poll(&[1], &[polled(1, "completed")], now);
        s.watch([1], now);
        assert_eq!(drain(&mut s, now), (vec![], Need::Wait));
        assert_eq!(s.unfinished_items(), [2, 3]);
    }

    #[test]
    fn an_event_before_the_poll_settles_and_the_poll_only_confirms() {
        let now = Instant::now();
        let mut s = TrackState::new(None);
        s.watch([4], now);
        assert_eq!(s.need(now), Need::Poll(vec![4]));
        s.on_stream_item(status(4, "in_progress", 2), now);
        s.on_stream_item(status(4, "completed", 3), now);
        assert_eq!(s.known(4).map(|k| k.source), Some(Source::Event));
        // The poll that was on its way says "in progress": older news, ignored.
        s.on_poll(&[4], &[polled(4, "in_progress")], now);
        let (events, need) = drain(&mut s, now);
        assert_eq!(events, [TrackEvent::Started { item_id: 4 }]);
        assert_eq!(need, Need::Fetch(vec![4]));
        s.on_fetched(&[4], vec![item(4, "completed")]);
        assert_eq!(
            drain(&mut s, now),
            (vec![finished(4, "completed")], Need::Idle)
        );
    }

    #[test]
    fn a_poll_before_the_event_settles_and_the_late_event_is_a_duplicate() {
        let now = Instant::now();
        let mut s = with_events();
        s.watch([5], now);
        let _ = s.need(now);
        s.on_poll(&[5], &[polled(5, "completed")], now);
        assert_eq!(s.known(5).map(|k| k.source), Some(Source::Poll));
        assert_eq!(s.need(now), Need::Fetch(vec![5]));
        // The events come late, while the fetch is out: nothing more to do.
        s.on_stream_item(status(5, "in_progress", 2), now);
        s.on_stream_item(status(5, "completed", 3), now);
        s.on_fetched(&[5], vec![item(5, "completed")]);
        s.on_stream_item(status(5, "completed", 3), now);
        assert_eq!(
            drain(&mut s, now),
            (vec![finished(5, "completed")], Need::Idle)
        );
    }

    #[test]
    fn statuses_are_news_unless_stale_or_duplicate() {
        let now = Instant::now();
        let mut s = TrackState::new(None);
        s.watch([1, 2], now);
        let _ = s.need(now);
        // (item, status, sequence, then known status)
        let table: [(i64, &str, Option<i64>, &str); 8] = [
            (1, "pending", Some(1), "pending"),
            (1, "in_progress", Some(2), "in_progress"),
            (1, "in_progress", Some(2), "in_progress"), // duplicate
            (1, "pending", Some(1), "in_progress"),     // older
            (1, "completed", Some(3), "completed"),
            (2, "completed", None, "completed"),
            (2, "in_progress", None, "completed"), // terminal never goes back
            (2, "failed", None, "failed"),         // a different end, from a poll
        ];
        for (i, (id, text, seq, then)) in table.into_iter().enumerate() {
            let known = Known {
                status: polled(id, text).status,
                sequence: seq,
                source: Source::Event,
            };
            s.observe(id, known, now);
            assert_eq!(
                s.known(id).map(|k| k.status.as_str()),
                Some(then),
                "row {i}: item {id} {text} {seq:?}"
            );
        }
        let (events, need) = drain(&mut s, now);
        assert_eq!(events, [TrackEvent::Started { item_id: 1 }], "started once");
        assert_eq!(need, Need::Fetch(vec![1, 2]));
    }

    #[test]
    fn items_that_finished_before_they_were_watched_settle_at_watch() {
        let now = Instant::now();
        let mut s = with_events();
        // The socket reports the items before the enqueue call returned their ids.
        s.on_stream_item(status(5, "in_progress", 2), now);
        s.on_stream_item(status(5, "completed", 3), now);
        s.on_stream_item(status(6, "in_progress", 2), now);
        assert_eq!(
            s.need(now),
            Need::Idle,
            "nothing is reported before it is watched"
        );
        s.watch([5, 6, 7], now);
        let (events, need) = drain(&mut s, now);
        assert_eq!(events, [TrackEvent::Started { item_id: 6 }]);
        assert_eq!(need, Need::Fetch(vec![5]));
        s.on_fetched(&[5], vec![item(5, "completed")]);
        let (events, need) = drain(&mut s, now);
        assert_eq!(events, [finished(5, "completed")]);
        assert_eq!(need, Need::Poll(vec![6, 7]), "the new ones are polled once");
        // Finished before watched and found by the poll alone (its events were missed).
        // A row the poll was not asked about (another client's item) is no news.
        s.on_poll(
            &[6, 7],
            &[
                polled(6, "in_progress"),
                polled(7, "canceled"),
                polled(99, "failed"),
            ],
            now,
        );
        assert_eq!(s.need(now), Need::Fetch(vec![7]));
        assert!(s.known(99).is_none());
    }

    #[test]
    fn items_gone_from_the_queue_vanish_once() {
        let now = Instant::now();
        let mut s = with_events();
        s.on_stream_item(status(5, "completed", 3), now);
        s.watch([5, 6], now);
        assert_eq!(s.need(now), Need::Fetch(vec![5]));
        // Item 5 was deleted between the event and the fetch.
        s.on_fetched(&[5], vec![]);
        assert_eq!(s.need(now), Need::Emit(TrackEvent::Vanished { item_id: 5 }));
        assert_eq!(s.need(now), Need::Poll(vec![6]));
        // The queue was cleared: the poll does not find 6 at all. Never "done" because it is
        // merely not pending.
        s.on_stream_item(event("queue_cleared", json!({"queue_id": "default"})), now);
        s.on_poll(&[6], &[], now);
        assert_eq!(s.need(now), Need::Emit(TrackEvent::Vanished { item_id: 6 }));
        assert_eq!(s.need(now), Need::Idle);
        s.on_poll(&[6], &[], now);
        s.on_fetched(&[5], vec![item(5, "completed")]);
        assert_eq!(s.need(now), Need::Idle, "reported once");
    }

    #[test]
    fn events_of_watched_items_are_reported_in_order_and_stale_ones_dropped() {
        let now = Instant::now();
        let mut s = with_events();
        s.watch([7], now);
        assert_eq!(s.need(now), Need::Poll(vec![7]));
        s.on_poll(&[7], &[polled(7, "pending")], now);
        s.on_stream_item(status(7, "in_progress", 2), now);
        s.on_stream_item(invocation("invocation_started", 7, json!({})), now);
        s.on_stream_item(progress(7), now);
        s.on_stream_item(progress(8), now);
        s.on_stream_item(
            invocation("invocation_complete", 7, json!({"result": {}})),
            now,
        );
        let (events, need) = drain(&mut s, now);
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
        // A stale `pending` changes nothing; `failed` settles it, its error event reports it.
        s.on_stream_item(status(7, "pending", 1), now);
        assert_eq!(s.need(now), Need::Wait);
        s.on_stream_item(status(7, "failed", 3), now);
        s.on_stream_item(node_error(7), now);
        assert_eq!(s.need(now), Need::Emit(node_failed(7)));
        assert_eq!(s.need(now), Need::Fetch(vec![7]));
        s.on_fetched(&[7], vec![item(7, "failed")]);
        assert_eq!(s.need(now), Need::Emit(finished(7, "failed")));
        assert_eq!(s.need(now), Need::Idle);
    }

    #[test]
    fn a_failed_item_waits_briefly_for_its_node_error_event() {
        let now = Instant::now();
        let grace = Duration::from_secs(1);
        let mut s = with_events();
        s.watch([1, 2], now);
        let _ = s.need(now);
        s.on_stream_item(status(1, "failed", 3), now);
        s.on_stream_item(status(2, "failed", 3), now);
        assert_eq!(s.need(now), Need::Wait, "both wait for their error event");
        assert_eq!(s.wake_at(), Some(now + grace));
        s.on_stream_item(node_error(1), now);
        assert_eq!(s.need(now), Need::Emit(node_failed(1)));
        assert_eq!(s.need(now), Need::Fetch(vec![1]), "its error came: at once");
        s.on_fetched(&[1], vec![item(1, "failed")]);
        assert_eq!(s.need(now), Need::Emit(finished(1, "failed")));
        assert_eq!(s.need(now), Need::Wait);
        // Item 2's error event never comes: it is fetched after the grace anyway.
        assert_eq!(s.need(now + grace), Need::Fetch(vec![2]));
        // Without the event stream nothing waits.
        let mut s = with_events();
        s.watch([3], now);
        let _ = s.need(now);
        s.on_stream_item(status(3, "failed", 3), now);
        assert_eq!(s.need(now), Need::Wait);
        s.without_events();
        assert_eq!(s.need(now), Need::Fetch(vec![3]));
    }

    #[test]
    fn bulk_cancels_settle_pending_items_and_reconnects_poll() {
        let now = Instant::now();
        let mut s = with_events();
        s.watch([1, 2, 3], now);
        let _ = s.need(now);
        s.on_stream_item(
            event(
                "queue_items_canceled",
                json!({"queue_id": "default", "canceled_item_ids": [1, 3, 99]}),
            ),
            now,
        );
        assert_eq!(s.need(now), Need::Fetch(vec![1, 3]), "99 is not ours");
        s.on_fetched(&[1, 3], vec![item(1, "canceled"), item(3, "canceled")]);
        let (events, need) = drain(&mut s, now);
        assert_eq!(events, [finished(1, "canceled"), finished(3, "canceled")]);
        assert_eq!(need, Need::Wait);
        s.on_stream_item(StreamItem::Reconnected, now);
        assert_eq!(s.need(now), Need::Emit(TrackEvent::Reconnected));
        assert_eq!(s.need(now), Need::Poll(vec![2]));
    }

    #[test]
    fn many_items_are_fetched_in_one_request() {
        let now = Instant::now();
        let mut s = with_events();
        let ids: Vec<i64> = (1..=60).collect();
        s.watch(ids.clone(), now);
        assert_eq!(s.need(now), Need::Poll(ids.clone()));
        for id in &ids {
            s.on_stream_item(status(*id, "completed", 3), now);
        }
        assert_eq!(s.need(now), Need::Fetch(ids.clone()));
        s.on_fetched(&ids, ids.iter().map(|id| item(*id, "completed")).collect());
        let (events, need) = drain(&mut s, now);
        assert_eq!(events.len(), 60);
        assert_eq!(need, Need::Idle);
    }

    #[test]
    fn forgotten_items_are_reported_no_more_and_can_be_watched_afresh() {
        let now = Instant::now();
        let mut s = with_events();
        s.watch([1, 2, 3], now);
        let _ = s.need(now);
        s.on_stream_item(status(1, "in_progress", 2), now);
        s.on_stream_item(status(2, "canceled", 3), now);
        // Item 1's Started is queued, 2 is due for a fetch: forgetting drops both.
        s.forget([1, 2, 42]);
        assert_eq!(s.need(now), Need::Wait);
        assert_eq!(s.unfinished_items(), [3]);
        s.on_stream_item(status(1, "completed", 3), now);
        s.on_stream_item(progress(1), now);
        assert_eq!(
            s.need(now),
            Need::Wait,
            "events of forgotten items are not ours"
        );
        // Watched again (a caller changed its mind): it starts from what is known now.
        s.watch([1], now);
        assert_eq!(s.need(now), Need::Fetch(vec![1]));
        // Forgetting a reported item frees it.
        s.on_fetched(&[1], vec![item(1, "completed")]);
        assert_eq!(s.need(now), Need::Emit(finished(1, "completed")));
        s.forget([1, 3]);
        assert!(s.items.is_empty(), "{:?}", s.items);
        assert_eq!(s.need(now), Need::Idle);
    }

    #[test]
    fn the_server_is_reported_down_once_and_back_once_per_outage() {
        let t0 = Instant::now();
        let later = |secs| t0 + Duration::from_secs(secs);
        let mut s = with_events();
        s.watch([1, 2], t0);
        let _ = s.need(t0);
        // A socket drop alone is no outage, but asks for a poll at once.
        s.on_stream_item(
            StreamItem::Disconnected {
                reason: "reset".into(),
            },
            later(1),
        );
        assert_eq!(s.need(later(1)), Need::Poll(vec![1, 2]));
        s.on_poll_failed("connection refused".into(), later(2));
        let (events, _) = drain(&mut s, later(5));
        assert_eq!(
            events,
            [
                TrackEvent::ServerDown { since: later(1) },
                TrackEvent::PollFailed {
                    error: "connection refused".into(),
                    consecutive: 1
                },
            ],
            "down since the socket dropped"
        );
        assert_eq!(s.open_items(), [1, 2], "a failed poll changes no item");
        s.on_poll_failed("connection refused".into(), later(10));
        let (events, _) = drain(&mut s, later(10));
        assert_eq!(
            events,
            [TrackEvent::PollFailed {
                error: "connection refused".into(),
                consecutive: 2
            }]
        );
        // The socket comes back first: the server is back, then the poll finds the restart
        // canceled item 1.
        s.on_stream_item(StreamItem::Reconnected, later(20));
        let (events, need) = drain(&mut s, later(20));
        assert_eq!(events, [TrackEvent::ServerBack, TrackEvent::Reconnected]);
        assert_eq!(need, Need::Poll(vec![1, 2]));
        s.on_poll(
            &[1, 2],
            &[polled(1, "canceled"), polled(2, "pending")],
            later(21),
        );
        assert_eq!(drain(&mut s, later(21)), (vec![], Need::Fetch(vec![1])));
        // A second outage, found by a failed fetch (no socket drop): since the fetch was sent.
        s.on_fetch_failed(&[1], "timed out".into(), later(30), later(35));
        let (events, need) = drain(&mut s, later(31));
        assert_eq!(
            events,
            [
                TrackEvent::ServerDown { since: later(30) },
                TrackEvent::PollFailed {
                    error: "timed out".into(),
                    consecutive: 1
                },
            ]
        );
        assert_eq!(need, Need::Wait, "the fetch waits for its retry");
        assert_eq!(s.wake_at(), Some(later(35)));
        assert_eq!(s.need(later(35)), Need::Fetch(vec![1]));
        s.on_fetched(&[1], vec![item(1, "canceled")]);
        let (events, _) = drain(&mut s, later(36));
        assert_eq!(events, [TrackEvent::ServerBack, finished(1, "canceled")]);
        // Answers while the server is up report nothing about it.
        s.on_poll(&[2], &[polled(2, "pending")], later(40));
        assert_eq!(drain(&mut s, later(40)).0, []);
        // A socket that dropped before a poll succeeded does not date the next outage.
        s.on_stream_item(
            StreamItem::Disconnected {
                reason: "reset".into(),
            },
            later(50),
        );
        s.on_poll(&[2], &[polled(2, "pending")], later(51));
        s.on_poll_failed("connection refused".into(), later(60));
        assert_eq!(
            s.need(later(61)),
            Need::Emit(TrackEvent::ServerDown { since: later(60) })
        );
    }

    #[test]
    fn events_of_items_never_watched_are_kept_within_a_bound() {
        let now = Instant::now();
        let mut s = with_events();
        let count = i64::try_from(UNWATCHED_KEPT).expect("small") + 5;
        for id in 1..=count {
            s.on_stream_item(status(id, "completed", 3), now);
        }
        assert_eq!(s.items.len(), UNWATCHED_KEPT);
        assert_eq!(s.unwatched.first(), Some(&6), "the oldest were dropped");
        // The newest are still known when watched; a dropped one is polled instead.
        s.watch([count, 1], now);
        assert_eq!(s.need(now), Need::Fetch(vec![count]));
        s.on_fetched(&[count], vec![item(count, "completed")]);
        let _ = s.need(now);
        assert_eq!(s.need(now), Need::Poll(vec![1]));
    }
}
