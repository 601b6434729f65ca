//! The session task: one Socket.IO connection at a time, rebuilt when it drops.
//!
//! Each connection is a fresh rust_socketio client (`attempt`). Its callbacks only forward what
//! happens to the task over an unbounded channel, so the socket never waits for the consumer:
//! events, "the socket ended" and the CONNECT outcome.
//!
//! rust_socketio runs the socket in a task of its own and, when the stream ends, enters its own
//! reconnect loop. We keep that loop enabled only because its `on_reconnect` callback is the one
//! place that learns about *every* end of the stream (including a clean websocket close, which
//! produces no other callback). The callback reports the end, then waits until the session has
//! retired the client: `Client::disconnect` marks it as closed by hand, after which
//! rust_socketio's loop gives up instead of reconnecting (the callback hands it an unusable
//! address so that its one remaining attempt fails at once). The session then connects again
//! itself, with its own backoff, re-subscribes, and tells the consumer.

use crate::error_chain::error_chain;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use rust_socketio::asynchronous::{Client, ClientBuilder, ReconnectSettings};
use rust_socketio::{Event as SioEvent, Payload, TransportType};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};
use url::Url;

use super::outbox::Outbox;
use super::{Control, Event, EventError, EventsConfig, StreamItem};

/// How long a retiring client may take to say goodbye.
const RETIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// The prefix rust_socketio puts before a CONNECT_ERROR payload in its error callback.
const CONNECT_ERROR_PREFIX: &str = "Received an ConnectError frame: ";

/// What the callbacks and attempts tell the session task.
enum Signal {
    /// A server event on connection `generation`.
    Event {
        generation: u64,
        name: String,
        args: Vec<Value>,
    },
    /// The socket of connection `generation` has ended.
    Ended { generation: u64, reason: String },
    /// A connection attempt finished.
    Attempt {
        generation: u64,
        result: Result<Connection, AttemptError>,
    },
}

/// Why a connection attempt failed.
#[derive(Debug)]
enum AttemptError {
    Connect(String),
    Rejected(String),
    Timeout(Duration),
}

impl AttemptError {
    fn into_event_error(self, url: &Url) -> EventError {
        let url = url.to_string();
        match self {
            AttemptError::Connect(cause) => EventError::Connect { url, cause },
            AttemptError::Rejected(message) => EventError::Rejected { url, message },
            AttemptError::Timeout(after) => EventError::Timeout { url, after },
        }
    }
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptError::Connect(cause) => write!(f, "{cause}"),
            AttemptError::Rejected(message) => write!(f, "the server refused: {message}"),
            AttemptError::Timeout(after) => write!(f, "no answer within {after:?}"),
        }
    }
}

/// How the CONNECT handshake of an attempt ended, as seen by the callbacks.
enum Ack {
    Accepted,
    Rejected(String),
    Closed(String),
}

/// Set once a connection's client has been disconnected by hand.
#[derive(Default)]
struct RetireFlag {
    done: AtomicBool,
    notify: Notify,
}

impl RetireFlag {
    fn set(&self) {
        self.done.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    async fn wait(&self) {
        let notified = self.notify.notified();
        if self.done.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }
}

/// One live rust_socketio client. Retire it (or drop it inside a runtime) to stop its socket task.
struct Connection {
    generation: u64,
    client: Option<Client>,
    flag: Arc<RetireFlag>,
}

impl Connection {
    /// Disconnects the client and releases its parked reconnect callback, if any.
    async fn retire(mut self) {
        if let Some(client) = self.client.take() {
            retire_client(client, self.flag.clone()).await;
        }
    }
}

async fn retire_client(client: Client, flag: Arc<RetireFlag>) {
    // `disconnect` marks the client as closed by hand before it tries to send anything; the
    // sends may fail on a dead socket, which is expected.
    if let Ok(Err(err)) = timeout(RETIRE_TIMEOUT, client.disconnect()).await {
        tracing::trace!("disconnecting a dead socket: {err}");
    }
    flag.set();
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let flag = self.flag.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(retire_client(client, flag));
                }
                Err(_) => flag.set(),
            }
        }
    }
}

/// Where the session is with its connection.
enum Link {
    /// Next attempt at `until`.
    Waiting { until: Instant },
    /// An attempt task is running.
    Attempting {
        generation: u64,
        task: JoinHandle<()>,
    },
    /// Connected and subscribed.
    Up(Connection),
}

/// What an attempt needs, copied out of the config so the token can change.
#[derive(Clone)]
struct AttemptSettings {
    url: Url,
    token: Option<String>,
    queue_id: String,
    subscribe_bulk_downloads: bool,
    timeout: Duration,
}

/// The session task. Reports the first connection's outcome through `ready`, then keeps the
/// stream going until closed, or until the handle or the receiver is dropped.
pub(crate) async fn run(
    config: EventsConfig,
    url: Url,
    items: mpsc::Sender<StreamItem>,
    mut control: mpsc::UnboundedReceiver<Control>,
    ready: oneshot::Sender<Result<(), EventError>>,
) {
    let (signal_tx, mut signals) = mpsc::unbounded_channel();
    let mut settings = AttemptSettings {
        url: url.clone(),
        token: config.token.clone(),
        queue_id: config.queue_id.clone(),
        subscribe_bulk_downloads: config.subscribe_bulk_downloads,
        timeout: config.connect_timeout,
    };
    let mut ready = Some(ready);
    let mut outbox = Outbox::default();
    let mut link = Link::Waiting {
        until: Instant::now(),
    };
    let mut generation = 0_u64;
    let mut failures = 0_u32;
    let mut early = Vec::new();

    loop {
        let wake_at = match &link {
            Link::Waiting { until } => Some(*until),
            _ => None,
        };
        tokio::select! {
            biased;
            command = control.recv() => match command {
                Some(Control::SetToken(token)) => settings.token = token,
                Some(Control::Close) | None => break,
            },
            () = items.closed() => break,
            Some(signal) = signals.recv() => match signal {
                Signal::Event { generation: g, name, args } => {
                    let payload = args.into_iter().next().unwrap_or(Value::Null);
                    let item = StreamItem::Event(Event::parse(&name, payload));
                    // Events can overtake the attempt's own report; they follow its notice.
                    let attempting = matches!(&link, Link::Attempting { generation, .. } if *generation == g);
                    if attempting {
                        early.push(item);
                    } else if outbox.push(item, &items).is_err() {
                        break;
                    }
                }
                Signal::Attempt { generation: g, result } => {
                    let current = matches!(&link, Link::Attempting { generation, .. } if *generation == g);
                    if !current {
                        continue; // A stale attempt: dropping its connection retires it.
                    }
                    match result {
                        Ok(connection) => {
                            link = Link::Up(connection);
                            failures = 0;
                            let notice = if let Some(ready) = ready.take() {
                                let _ = ready.send(Ok(()));
                                StreamItem::Connected
                            } else {
                                tracing::info!(url = %url, "event stream reconnected");
                                StreamItem::Reconnected
                            };
                            let gone = std::iter::once(notice)
                                .chain(early.drain(..))
                                .any(|item| outbox.push(item, &items).is_err());
                            if gone {
                                break;
                            }
                        }
                        Err(err) => {
                            if let Some(ready) = ready.take() {
                                let _ = ready.send(Err(err.into_event_error(&url)));
                                return;
                            }
                            failures = failures.saturating_add(1);
                            let delay = backoff_delay(failures, &config, jitter());
                            tracing::warn!(url = %url, attempt = failures, "event stream reconnect failed: {err}; next try in {delay:?}");
                            link = Link::Waiting { until: Instant::now() + delay };
                            if early.drain(..).any(|item| outbox.push(item, &items).is_err()) {
                                break;
                            }
                        }
                    }
                }
                Signal::Ended { generation: g, reason } => {
                    let is_current = matches!(&link, Link::Up(c) if c.generation == g);
                    if is_current {
                        let next = Link::Waiting { until: Instant::now() + backoff_delay(0, &config, jitter()) };
                        if let Link::Up(connection) = std::mem::replace(&mut link, next) {
                            tokio::spawn(connection.retire());
                        }
                        tracing::warn!(url = %url, "event stream disconnected: {reason}");
                        if outbox.push(StreamItem::Disconnected { reason }, &items).is_err() {
                            break;
                        }
                    }
                }
            },
            permit = items.reserve(), if outbox.has_backlog() => match permit {
                Ok(permit) => outbox.send_one(permit),
                Err(_) => break,
            },
            () = sleep_until(wake_at.unwrap_or_else(Instant::now)), if wake_at.is_some() => {
                generation += 1;
                let attempt_settings = settings.clone();
                let tx = signal_tx.clone();
                let g = generation;
                let task = tokio::spawn(async move {
                    let limit = attempt_settings.timeout;
                    let result = timeout(limit, attempt(attempt_settings, g, tx.clone()))
                        .await
                        .unwrap_or(Err(AttemptError::Timeout(limit)));
                    // If the session is gone, the connection is dropped here and retires itself.
                    let _ = tx.send(Signal::Attempt { generation: g, result });
                });
                link = Link::Attempting { generation: g, task };
            }
        }
    }

    if outbox.dropped() > 0 {
        tracing::debug!(
            dropped = outbox.dropped(),
            "progress events dropped for a slow consumer"
        );
    }
    match link {
        Link::Up(connection) => connection.retire().await,
        Link::Attempting { task, .. } => task.abort(),
        Link::Waiting { .. } => {}
    }
    if let Some(ready) = ready.take() {
        let _ = ready.send(Err(EventError::Task {
            url: url.to_string(),
            message: "closed before the first connection was made".to_owned(),
        }));
    }
}

/// The delay before reconnect attempt `failures + 1`: the minimum doubled per failure, capped,
/// then scaled by `jitter` (expected in 0.8..=1.2).
pub(crate) fn backoff_delay(failures: u32, config: &EventsConfig, jitter: f64) -> Duration {
    let base = config
        .reconnect_min_delay
        .saturating_mul(2_u32.saturating_pow(failures.min(16)))
        .min(config.reconnect_max_delay);
    base.mul_f64(jitter.clamp(0.0, 2.0))
}

/// A factor in 0.8..1.2, from the standard library's randomly seeded hasher.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    let unit = (hasher.finish() >> 11) as f64 / (1_u64 << 53) as f64;
    0.8 + 0.4 * unit
}

/// The text of an error callback's payload.
fn payload_text(payload: &Payload) -> String {
    match payload {
        Payload::Text(values) => values
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Payload::Binary(bytes) => format!("{} bytes of binary data", bytes.len()),
        #[allow(deprecated)]
        Payload::String(s) => s.clone(),
    }
}

/// The event name and arguments of a callback. rust_socketio reads a packet with only an event
/// name (`42["name"]`) as a `message` event whose argument is the name; InvokeAI never sends
/// `message` events, so that shape is turned back into the named event without arguments.
fn event_name_and_args(event: &SioEvent, args: Vec<Value>) -> (String, Vec<Value>) {
    match (event, args.as_slice()) {
        (SioEvent::Message, [Value::String(name)]) => (name.clone(), Vec::new()),
        _ => (event.as_str().to_owned(), args),
    }
}

/// The server's message in a CONNECT_ERROR payload (`{"message": ...}`), or the payload itself.
pub(crate) fn connect_error_message(data: &str) -> String {
    serde_json::from_str::<Value>(data)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| data.trim_matches('"').to_owned())
}

type AckSlot = Arc<Mutex<Option<oneshot::Sender<Ack>>>>;

fn settle_ack(slot: &AckSlot, ack: Ack) -> bool {
    let sender = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    match sender {
        Some(sender) => {
            let _ = sender.send(ack);
            true
        }
        None => false,
    }
}

/// Opens one connection: websocket, Socket.IO CONNECT, subscriptions, and the server's CONNECT
/// acknowledgement.
async fn attempt(
    settings: AttemptSettings,
    generation: u64,
    signals: mpsc::UnboundedSender<Signal>,
) -> Result<Connection, AttemptError> {
    let flag = Arc::new(RetireFlag::default());
    let (ack_tx, ack_rx) = oneshot::channel();
    let slot: AckSlot = Arc::new(Mutex::new(Some(ack_tx)));
    let last_error: Arc<Mutex<Option<String>>> = Arc::default();

    let mut builder = ClientBuilder::new(settings.url.as_str())
        .transport_type(TransportType::Websocket)
        // rust_socketio's own reconnect only serves as the end-of-stream signal; see the module
        // docs. One attempt, 1 ms apart, against the unusable address the callback returns.
        .reconnect(true)
        .reconnect_on_disconnect(false)
        .max_reconnect_attempts(1)
        .reconnect_delay(1, 1);
    if let Some(token) = &settings.token {
        builder = builder
            .auth(json!({ "token": token }))
            .opening_header("Authorization", format!("Bearer {token}"));
    }

    builder = builder.on(SioEvent::Connect, {
        let slot = slot.clone();
        let queue_id = settings.queue_id.clone();
        let bulk = settings.subscribe_bulk_downloads;
        move |_payload: Payload, client: Client| -> BoxFuture<'static, ()> {
            let slot = slot.clone();
            let queue_id = queue_id.clone();
            async move {
                let mut result = client
                    .emit("subscribe_queue", json!({ "queue_id": queue_id }))
                    .await;
                if bulk && result.is_ok() {
                    result = client
                        .emit(
                            "subscribe_bulk_download",
                            json!({ "bulk_download_id": "default" }),
                        )
                        .await;
                }
                let ack = match result {
                    Ok(()) => Ack::Accepted,
                    Err(err) => Ack::Closed(format!("could not subscribe: {}", error_chain(&err))),
                };
                settle_ack(&slot, ack);
            }
            .boxed()
        }
    });

    builder = builder.on(SioEvent::Error, {
        let slot = slot.clone();
        let signals = signals.clone();
        let last_error = last_error.clone();
        move |payload: Payload, _client: Client| -> BoxFuture<'static, ()> {
            let text = payload_text(&payload);
            if let Some(data) = text.strip_prefix(CONNECT_ERROR_PREFIX) {
                let message = connect_error_message(data);
                if !settle_ack(&slot, Ack::Rejected(message.clone())) {
                    let _ = signals.send(Signal::Ended {
                        generation,
                        reason: format!("the server refused the session: {message}"),
                    });
                }
            } else {
                tracing::debug!("event socket error: {text}");
                *last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(text);
            }
            async {}.boxed()
        }
    });

    builder = builder.on(SioEvent::Close, {
        let slot = slot.clone();
        let signals = signals.clone();
        move |_payload: Payload, _client: Client| -> BoxFuture<'static, ()> {
            let reason = "the server closed the session".to_owned();
            settle_ack(&slot, Ack::Closed(reason.clone()));
            let _ = signals.send(Signal::Ended { generation, reason });
            async {}.boxed()
        }
    });

    builder = builder.on_any({
        let signals = signals.clone();
        move |event: SioEvent, payload: Payload, _client: Client| -> BoxFuture<'static, ()> {
            match payload {
                Payload::Text(args) => {
                    let (name, args) = event_name_and_args(&event, args);
                    let _ = signals.send(Signal::Event {
                        generation,
                        name,
                        args,
                    });
                }
                other => tracing::debug!(
                    event = event.as_str(),
                    "ignoring a non-JSON event payload: {}",
                    payload_text(&other)
                ),
            }
            async {}.boxed()
        }
    });

    builder = builder.on_reconnect({
        let slot = slot.clone();
        let signals = signals.clone();
        let flag = flag.clone();
        let last_error = last_error.clone();
        move || -> BoxFuture<'static, ReconnectSettings> {
            let reason = last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or_else(|| "the connection was closed".to_owned());
            settle_ack(&slot, Ack::Closed(reason.clone()));
            let _ = signals.send(Signal::Ended { generation, reason });
            let flag = flag.clone();
            async move {
                // Park rust_socketio's reconnect loop until the session has disconnected this
                // client by hand; then let its last attempt fail on an unusable address.
                flag.wait().await;
                let mut settings = ReconnectSettings::new();
                settings.address("");
                settings
            }
            .boxed()
        }
    });

    let client = builder
        .connect()
        .await
        .map_err(|err| AttemptError::Connect(error_chain(&err)))?;
    let connection = Connection {
        generation,
        client: Some(client),
        flag,
    };
    match ack_rx.await {
        Ok(Ack::Accepted) => Ok(connection),
        Ok(Ack::Rejected(message)) => {
            connection.retire().await;
            Err(AttemptError::Rejected(message))
        }
        Ok(Ack::Closed(reason)) => {
            connection.retire().await;
            Err(AttemptError::Connect(reason))
        }
        Err(_) => {
            connection.retire().await;
            Err(AttemptError::Connect(
                "the connection closed before the server confirmed the session".to_owned(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(min_ms: u64, max_ms: u64) -> EventsConfig {
        let mut config = EventsConfig::new(Url::parse("http://h").expect("parses"));
        config.reconnect_min_delay = Duration::from_millis(min_ms);
        config.reconnect_max_delay = Duration::from_millis(max_ms);
        config
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_applies_jitter() {
        let c = config(250, 10_000);
        let ms = |failures, jitter| backoff_delay(failures, &c, jitter).as_millis();
        assert_eq!(
            [0, 1, 2, 3, 5, 6, 40].map(|f| ms(f, 1.0)),
            [250, 500, 1000, 2000, 8000, 10_000, 10_000]
        );
        assert_eq!(ms(1, 0.8), 400);
        assert_eq!(ms(1, 1.2), 600);
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.8..1.2).contains(&j), "{j}");
        }
    }

    #[test]
    fn name_only_packets_keep_their_name() {
        let (name, args) = event_name_and_args(&SioEvent::Message, vec![json!("ping_me")]);
        assert_eq!((name.as_str(), args.len()), ("ping_me", 0));
        let (name, args) =
            event_name_and_args(&SioEvent::Custom("queue_cleared".into()), vec![json!({})]);
        assert_eq!((name.as_str(), args), ("queue_cleared", vec![json!({})]));
    }

    #[test]
    fn connect_error_payloads() {
        assert_eq!(
            connect_error_message(r#"{"message":"Connection rejected by server"}"#),
            "Connection rejected by server"
        );
        assert_eq!(connect_error_message("\"nope\""), "nope");
    }
}
