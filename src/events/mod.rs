//! The server's Socket.IO event stream, as a task behind a handle.
//!
//! [`EventStream::connect`] opens a Socket.IO session (Engine.IO 4, Socket.IO 5, over a
//! websocket) to `{base_url}/ws/socket.io/`, subscribes to the queue and returns an
//! [`EventsHandle`] plus a bounded receiver of [`StreamItem`]s: typed [`Event`]s and the
//! lifecycle notices [`StreamItem::Connected`], [`StreamItem::Disconnected`] and
//! [`StreamItem::Reconnected`].
//!
//! # Reconnects
//! When the socket drops (network error, server restart, missed pings, server-side disconnect),
//! the session reconnects by itself with exponential backoff and jitter, re-sends
//! `subscribe_queue` on every new connection, and then sends [`StreamItem::Reconnected`]. Events
//! the server emitted while the socket was down are lost: after `Reconnected` the consumer must
//! poll the queue (the client's `Tracker` does, and keeps polling as a safety net).
//!
//! rust_socketio 0.6 has its own reconnect loop, but it neither re-subscribes nor tells the
//! caller, cannot be stopped while the server is unreachable, and spins without delay once its
//! backoff has run for 15 minutes. So each connection here is a fresh rust_socketio client whose
//! own reconnect is used only as the "socket dropped" signal; the session then retires that
//! client and builds the next one itself (see `session.rs`).
//!
//! # Slow consumers
//! The socket callbacks never wait for the consumer. Events go through the session task into the
//! bounded channel; when the channel is full, progress events (see [`Event::is_progress`]) are
//! dropped, and every other item (status, complete, error, lifecycle notices) waits in order in
//! the session's backlog until the consumer catches up. Nothing but progress is ever dropped.

mod config;
mod item_status;
mod message;
mod outbox;
mod session;

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use config::{EventsConfig, socket_url};
/// The status of a queue item; the same type the REST client reports.
pub use item_status::QueueItemStatus as ItemStatus;
pub use message::{
    BatchCounts, BatchEnqueued, BulkDownload, ErrorDetails, Event, InvocationContext, ItemContext,
    StatusChange,
};

/// One item from the event stream.
// Events are moved once through the channel; boxing them would only add an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    /// The first connection is up and subscribed. Always the first item.
    Connected,
    /// The socket dropped; the session is reconnecting. Events are lost until
    /// [`StreamItem::Reconnected`].
    Disconnected {
        /// Why it dropped, for logs.
        reason: String,
    },
    /// A new connection is up and subscribed. Events sent while disconnected are lost: poll the
    /// queue to catch up.
    Reconnected,
    /// A server event.
    Event(Event),
}

/// An error of the event stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The base URL cannot carry a Socket.IO session.
    #[error("cannot open an event stream at `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The first connection could not be made (server down, wrong URL, TLS, proxy).
    #[error(
        "could not connect to the event stream at `{url}`: {cause}\nhint: check that the \
         InvokeAI server is running and that the server URL is right"
    )]
    Connect {
        /// The Socket.IO URL.
        url: String,
        /// The cause, with its chain.
        cause: String,
    },
    /// The server refused the Socket.IO session (CONNECT_ERROR), e.g. a missing or expired token
    /// on a multi-user server.
    #[error(
        "the server refused the event stream at `{url}`: {message}\nhint: on a multi-user \
         server, check the access token"
    )]
    Rejected {
        /// The Socket.IO URL.
        url: String,
        /// The server's message.
        message: String,
    },
    /// The server accepted the websocket but did not confirm the Socket.IO session in time.
    #[error("the event stream at `{url}` did not answer within {after:?}")]
    Timeout {
        /// The Socket.IO URL.
        url: String,
        /// How long we waited.
        after: Duration,
    },
    /// The session task ended abnormally.
    #[error("the event stream task for `{url}` failed: {message}")]
    Task {
        /// The Socket.IO URL.
        url: String,
        /// What happened.
        message: String,
    },
}

/// Opens event streams.
#[derive(Debug, Clone, Copy)]
pub struct EventStream;

impl EventStream {
    /// Connects, subscribes to `config.queue_id` and starts the session task.
    ///
    /// Returns once the server has confirmed the first Socket.IO session; the receiver's first
    /// item is then [`StreamItem::Connected`]. Later drops are handled by reconnecting.
    ///
    /// # Errors
    /// [`EventError::InvalidUrl`] for a base URL that is not http(s) or ws(s),
    /// [`EventError::Connect`] when the server cannot be reached, [`EventError::Rejected`] when it
    /// refuses the session, [`EventError::Timeout`] when it does not confirm it in time.
    pub async fn connect(
        config: EventsConfig,
    ) -> Result<(EventsHandle, mpsc::Receiver<StreamItem>), EventError> {
        let url = socket_url(&config.base_url)?;
        let (items_tx, items_rx) = mpsc::channel(config.channel_capacity.max(1));
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(session::run(
            config,
            url.clone(),
            items_tx,
            control_rx,
            ready_tx,
        ));
        match ready_rx.await {
            Ok(Ok(())) => Ok((
                EventsHandle {
                    control: control_tx,
                    task,
                    url: url.to_string(),
                },
                items_rx,
            )),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(EventError::Task {
                url: url.to_string(),
                message: match task.await {
                    Err(join) => join.to_string(),
                    Ok(()) => "it ended before connecting".to_owned(),
                },
            }),
        }
    }
}

/// Commands from the handle to the session task.
#[derive(Debug)]
pub(crate) enum Control {
    /// Use this token for the next connections.
    SetToken(Option<String>),
    /// Disconnect and end the task.
    Close,
}

/// The handle to a running event stream. Dropping it also ends the session (without waiting).
#[derive(Debug)]
pub struct EventsHandle {
    control: mpsc::UnboundedSender<Control>,
    task: JoinHandle<()>,
    url: String,
}

impl EventsHandle {
    /// The Socket.IO URL of the session.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Replaces the access token used by the next reconnects (e.g. after the REST client got a
    /// refreshed token). The current connection is kept.
    pub fn set_token(&self, token: Option<String>) {
        // A send error means the task has ended; there is nothing left to update.
        let _ = self.control.send(Control::SetToken(token));
    }

    /// Whether the session task has ended (closed, or its receiver was dropped).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Disconnects cleanly and waits for the session task to end. The receiver then yields the
    /// items still queued and ends.
    ///
    /// # Errors
    /// [`EventError::Task`] if the session task panicked.
    pub async fn close(self) -> Result<(), EventError> {
        let _ = self.control.send(Control::Close);
        self.task.await.map_err(|err| EventError::Task {
            url: self.url,
            message: err.to_string(),
        })
    }
}
