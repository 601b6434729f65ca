//! A small fake Socket.IO server (Engine.IO 4, Socket.IO 5, websocket transport only) for fault
//! injection: the real server cannot drop a socket on demand.
//!
//! It does the Engine.IO handshake (`0{"sid":..}`), pings, accepts or rejects the Socket.IO
//! CONNECT (`40`/`44`) and records its auth payload and the handshake's `Authorization` header,
//! records client events (`42[...]`), emits server events, and on request resets, closes,
//! disconnects or stalls the live sockets, or refuses new ones. It serves only
//! `/ws/socket.io/`, like InvokeAI; other paths get 404.

#![allow(dead_code)] // Each test uses a different part of it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use url::Url;

/// The path InvokeAI serves Socket.IO on.
pub(crate) const SOCKET_PATH: &str = "/ws/socket.io/";

/// Engine.IO timing the fake announces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// How often the fake pings.
    pub ping_interval: Duration,
    /// How long the client should wait for a ping beyond the interval.
    pub ping_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
        }
    }
}

/// What a websocket handshake request looked like.
#[derive(Debug, Clone)]
pub(crate) struct Handshake {
    /// Path and query.
    pub uri: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

/// What the fake has seen.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// TCP connections accepted (including refused ones).
    pub tcp_accepts: usize,
    /// Websocket handshakes on the Socket.IO path.
    pub handshakes: Vec<Handshake>,
    /// The auth payload of every Socket.IO CONNECT (`None` when it had none).
    pub connects: Vec<Option<Value>>,
    /// Every client event: name and first argument.
    pub client_events: Vec<(String, Value)>,
    /// Sockets whose Socket.IO session is currently accepted.
    pub live_sessions: usize,
}

impl Seen {
    /// The `subscribe_queue` payloads received, in order.
    pub(crate) fn subscriptions(&self) -> Vec<Value> {
        self.client_events
            .iter()
            .filter(|(name, _)| name == "subscribe_queue")
            .map(|(_, payload)| payload.clone())
            .collect()
    }
}

#[derive(Debug, Clone)]
enum Command {
    Send(String),
    Reset,
    Close,
    Disconnect,
    Stall,
}

#[derive(Default)]
struct State {
    seen: Seen,
    sockets: Vec<(u64, mpsc::UnboundedSender<Command>)>,
    next_id: u64,
    reject_with: Option<String>,
    refuse: bool,
    greeting: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    changed: Notify,
    timing: Timing,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.lock());
        self.changed.notify_waiters();
        out
    }
}

/// A running fake server; it stops when dropped.
pub(crate) struct FakeSocketIo {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Drop for FakeSocketIo {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FakeSocketIo {
    /// Starts a fake with InvokeAI's default timing.
    pub(crate) async fn start() -> FakeSocketIo {
        Self::start_with(Timing::default()).await
    }

    /// Starts a fake with the given ping timing.
    pub(crate) async fn start_with(timing: Timing) -> FakeSocketIo {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port for the fake Socket.IO server");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            changed: Notify::new(),
            timing,
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        FakeSocketIo {
            addr,
            shared,
            accept,
        }
    }

    /// The base URL to give the client (the socket path is added by it).
    pub(crate) fn base_url(&self) -> Url {
        Url::parse(&format!("http://{}", self.addr)).expect("a valid URL")
    }

    /// Runs `f` on what the fake has seen so far.
    pub(crate) fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.shared.lock().seen)
    }

    /// Waits (up to 10 s) until `f` returns `Some`, and returns it.
    pub(crate) async fn wait_for<T>(&self, what: &str, f: impl Fn(&Seen) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.shared.changed.notified();
            if let Some(found) = f(&self.shared.lock().seen) {
                return found;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let seen = format!("{:?}", self.shared.lock().seen);
                panic!("the fake Socket.IO server never saw {what}; it saw {seen}");
            }
        }
    }

    /// Waits until `n` `subscribe_queue` events have arrived; returns all of them.
    pub(crate) async fn wait_for_subscriptions(&self, n: usize) -> Vec<Value> {
        self.wait_for(&format!("{n} subscribe_queue events"), |seen| {
            let subs = seen.subscriptions();
            (subs.len() >= n).then_some(subs)
        })
        .await
    }

    /// Emits a server event to every accepted session.
    pub(crate) fn emit(&self, name: &str, payload: Value) {
        let frame = format!("42{}", json!([name, payload]));
        self.broadcast(&Command::Send(frame));
    }

    /// Sends a raw Engine.IO frame (e.g. `42[...]` with odd content) to every accepted session.
    pub(crate) fn send_raw(&self, frame: &str) {
        self.broadcast(&Command::Send(frame.to_owned()));
    }

    /// Resets every live socket (TCP RST, no close frame).
    pub(crate) fn reset_sockets(&self) {
        self.broadcast(&Command::Reset);
    }

    /// Closes every live socket with a websocket close frame.
    pub(crate) fn close_sockets(&self) {
        self.broadcast(&Command::Close);
    }

    /// Ends every Socket.IO session from the server side (`41`), keeping the websocket.
    pub(crate) fn disconnect_sessions(&self) {
        self.broadcast(&Command::Disconnect);
    }

    /// Stops answering and pinging on every live socket, keeping the TCP connection open.
    pub(crate) fn stall_sockets(&self) {
        self.broadcast(&Command::Stall);
    }

    /// Answers future CONNECTs with CONNECT_ERROR and this message (or accepts them again).
    pub(crate) fn reject_connects(&self, message: Option<&str>) {
        self.shared
            .update(|s| s.reject_with = message.map(str::to_owned));
    }

    /// Emits this event right after accepting each future Socket.IO CONNECT, in the same burst
    /// as the acknowledgement (before the client can have subscribed).
    pub(crate) fn greet_on_connect(&self, name: &str, payload: Value) {
        let frame = format!("42{}", json!([name, payload]));
        self.shared.update(|s| s.greeting = Some(frame));
    }

    /// Closes new TCP connections at once (the server is "down"), or accepts them again.
    pub(crate) fn refuse_connections(&self, refuse: bool) {
        self.shared.update(|s| s.refuse = refuse);
    }

    fn broadcast(&self, command: &Command) {
        let state = self.shared.lock();
        for (_, socket) in &state.sockets {
            let _ = socket.send(command.clone());
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let refuse = shared.update(|s| {
                    s.seen.tcp_accepts += 1;
                    s.refuse
                });
                if refuse {
                    reset_on_drop(&stream);
                    drop(stream);
                    continue;
                }
                connections.spawn(serve(stream, shared.clone()));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Makes dropping the stream send a TCP RST instead of a FIN.
fn reset_on_drop(stream: &TcpStream) {
    // The deprecation is about linger times that block the dropping thread; zero does not.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let recorder = shared.clone();
    // The callback's signature is tungstenite's.
    #[allow(clippy::result_large_err)]
    let callback = move |request: &Request,
                         response: Response|
          -> Result<Response, ErrorResponse> {
        if request.uri().path() != SOCKET_PATH {
            let mut not_found = ErrorResponse::new(Some("not the Socket.IO path".into()));
            *not_found.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::NOT_FOUND;
            return Err(not_found);
        }
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        recorder.update(|s| {
            s.seen.handshakes.push(Handshake {
                uri: request.uri().to_string(),
                authorization,
            });
        });
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };

    let (id, mut commands) = shared.update(|s| {
        s.next_id += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        s.sockets.push((s.next_id, tx));
        (s.next_id, rx)
    });
    let timing = shared.timing;
    let open = json!({
        "sid": format!("fake-{id}"),
        "upgrades": [],
        "pingInterval": timing.ping_interval.as_millis(),
        "pingTimeout": timing.ping_timeout.as_millis(),
        "maxPayload": 1_000_000,
    });
    let mut session_open = false;
    if ws.send(Message::text(format!("0{open}"))).await.is_ok() {
        session_open = run_socket(&mut ws, &mut commands, &shared, timing).await;
    }
    shared.update(|s| {
        s.sockets.retain(|(sid, _)| *sid != id);
        if session_open {
            s.seen.live_sessions -= 1;
        }
    });
}

/// Runs one socket until it ends; returns whether its Socket.IO session was still open.
async fn run_socket(
    ws: &mut WebSocketStream<TcpStream>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    shared: &Shared,
    timing: Timing,
) -> bool {
    let mut session_open = false;
    let mut stalled = false;
    let mut pings = tokio::time::interval(timing.ping_interval);
    pings.tick().await;
    loop {
        tokio::select! {
            _ = pings.tick(), if !stalled => {
                if ws.send(Message::text("2")).await.is_err() {
                    return session_open;
                }
            }
            command = commands.recv() => {
                let Some(command) = command else { return session_open };
                match command {
                    Command::Send(frame) => {
                        if session_open && !stalled && ws.send(Message::text(frame)).await.is_err() {
                            return session_open;
                        }
                    }
                    Command::Reset => {
                        reset_on_drop(ws.get_ref());
                        return session_open;
                    }
                    Command::Close => {
                        let _ = ws.close(None).await;
                        return session_open;
                    }
                    Command::Disconnect => {
                        if session_open {
                            let _ = ws.send(Message::text("41")).await;
                            session_open = false;
                            shared.update(|s| s.seen.live_sessions -= 1);
                        }
                    }
                    Command::Stall => stalled = true,
                }
            }
            message = ws.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return session_open,
                    Some(Ok(_)) => continue,
                };
                if stalled {
                    continue;
                }
                // Replies go out in one write, so the client reads them in one go.
                for reply in handle_frame(&text, &mut session_open, shared) {
                    if ws.feed(Message::text(reply)).await.is_err() {
                        return session_open;
                    }
                }
                if ws.flush().await.is_err() {
                    return session_open;
                }
                if text == "1" {
                    return session_open;
                }
            }
        }
    }
}

/// Handles one client frame; returns the replies to send.
fn handle_frame(text: &str, session_open: &mut bool, shared: &Shared) -> Vec<String> {
    if let Some(rest) = text.strip_prefix("40") {
        let auth = serde_json::from_str::<Value>(rest).ok();
        let (reject, greeting) = shared.update(|s| {
            s.seen.connects.push(auth);
            (s.reject_with.clone(), s.greeting.clone())
        });
        return match reject {
            Some(message) => vec![format!("44{}", json!({ "message": message }))],
            None => {
                *session_open = true;
                shared.update(|s| s.seen.live_sessions += 1);
                let ack = format!("40{}", json!({ "sid": "fake-session" }));
                std::iter::once(ack).chain(greeting).collect()
            }
        };
    }
    if let Some(rest) = text.strip_prefix("42") {
        if let Ok(Value::Array(parts)) = serde_json::from_str::<Value>(rest) {
            let name = parts.first().and_then(Value::as_str).unwrap_or_default();
            let payload = parts.get(1).cloned().unwrap_or(Value::Null);
            shared.update(|s| s.seen.client_events.push((name.to_owned(), payload)));
        }
        return Vec::new();
    }
    if text == "41" && *session_open {
        *session_open = false;
        shared.update(|s| s.seen.live_sessions -= 1);
    }
    // "3" (pong) and "1" (close) need no answer.
    Vec::new()
}
