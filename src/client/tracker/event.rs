//! What a [`Tracker`](super::Tracker) reports, and how it learns it.

use tokio::time::Instant;

use crate::client::queue::QueueItem;

/// How a [`Tracker`](super::Tracker) learns about items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrackMode {
    /// The server's Socket.IO events, with polling as the safety net (falls back to polling
    /// alone when the socket cannot be opened).
    #[default]
    Events,
    /// REST polling only (no socket; no per-node progress).
    PollOnly,
}

/// What a [`Tracker`](super::Tracker) reports.
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
    /// A poll (or a fetch) of the queue failed, after the client's own retries; the tracker
    /// tries again at the next interval (informational: see [`TrackEvent::ServerDown`]).
    PollFailed {
        /// The error, with its cause.
        error: String,
        /// How many requests in a row have failed.
        consecutive: u32,
    },
    /// The server stopped answering: a poll or fetch failed (after the client's own retries,
    /// a few seconds) and none has succeeded since. Reported once per outage, just before the
    /// outage's first [`TrackEvent::PollFailed`]; the tracker goes on polling at its interval
    /// and reports [`TrackEvent::ServerBack`] when the server answers again. An event socket
    /// that drops while polls still succeed is no outage.
    ServerDown {
        /// When the outage began: when the event socket dropped, if it has been down since
        /// and no request has succeeded since; else when the failed request was sent.
        since: Instant,
    },
    /// The server answers again after a [`TrackEvent::ServerDown`]: a poll or fetch succeeded,
    /// or the event socket reconnected, whichever came first. Reported once per outage, before
    /// any news the answer brought (a restarted InvokeAI cancels the items it had, so
    /// [`TrackEvent::Finished`] with `canceled` may follow).
    ServerBack,
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
            TrackEvent::Reconnected
            | TrackEvent::PollFailed { .. }
            | TrackEvent::ServerDown { .. }
            | TrackEvent::ServerBack => None,
        }
    }

    /// Whether the event ends the tracking of its item ([`TrackEvent::Finished`] or
    /// [`TrackEvent::Vanished`]).
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        matches!(self, TrackEvent::Finished(_) | TrackEvent::Vanished { .. })
    }
}
