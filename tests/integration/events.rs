//! The Socket.IO event stream: fault injection against the fake server, and job event sequences
//! on a real InvokeAI server.

use std::time::Duration;

use invk_run::events::{Event, EventError, EventStream, EventsConfig, ItemStatus, StreamItem};
use serde_json::{Value, json};
use tokio::sync::mpsc::Receiver;

use crate::fake_socketio::{FakeSocketIo, Timing};

const WAIT: Duration = Duration::from_secs(10);

fn fast_config(fake: &FakeSocketIo) -> EventsConfig {
    let mut config = EventsConfig::new(fake.base_url());
    config.reconnect_min_delay = Duration::from_millis(50);
    config.reconnect_max_delay = Duration::from_millis(200);
    config.connect_timeout = Duration::from_secs(5);
    config
}

async fn next(rx: &mut Receiver<StreamItem>) -> StreamItem {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("an item from the event stream within 10 s")
        .expect("the event stream is still open")
}

fn status_payload(item_id: i64, status: &str, sequence: i64) -> Value {
    json!({
        "timestamp": 1, "queue_id": "default", "item_id": item_id, "batch_id": "batch-1",
        "origin": "test", "destination": "dest-1", "user_id": "system", "session_id": "sess-1",
        "status": status, "status_sequence": sequence, "error_type": null,
        "error_message": null, "error_traceback": null,
        "created_at": "2026-01-01 00:00:00.000", "updated_at": "2026-01-01 00:00:00.000",
        "started_at": null, "completed_at": null,
        "batch_status": {"queue_id": "default", "batch_id": "batch-1", "origin": "test",
            "destination": "dest-1", "pending": 0, "in_progress": 1, "waiting": 0,
            "completed": 0, "failed": 0, "canceled": 0, "total": 1},
        "queue_status": {},
    })
}

fn invocation_payload(item_id: i64, source: &str) -> Value {
    json!({
        "timestamp": 1, "queue_id": "default", "item_id": item_id, "batch_id": "batch-1",
        "origin": "test", "destination": "dest-1", "user_id": "system", "session_id": "sess-1",
        "invocation_source_id": source, "invocation": {"id": format!("{source}-prepared"), "type": "save_image"},
        "result": {"type": "image_output", "image": {"image_name": "out.png"}, "width": 8, "height": 8},
    })
}

/// A short label per item, to compare sequences.
fn label(item: &StreamItem) -> String {
    match item {
        StreamItem::Connected => "connected".into(),
        StreamItem::Reconnected => "reconnected".into(),
        StreamItem::Disconnected { .. } => "disconnected".into(),
        StreamItem::Event(Event::QueueItemStatusChanged(change)) => {
            format!("status {} {}", change.item.item_id, change.status.as_str())
        }
        StreamItem::Event(event) => match event.invocation_source_id() {
            Some(source) => format!("{} {source}", event.name()),
            None => event.name().to_owned(),
        },
    }
}

#[tokio::test]
async fn connects_subscribes_and_delivers_typed_events() {
    let fake = FakeSocketIo::start().await;
    let (handle, mut rx) = EventStream::connect(fast_config(&fake))
        .await
        .expect("connects to the fake");
    assert_eq!(next(&mut rx).await, StreamItem::Connected);
    assert_eq!(
        fake.wait_for_subscriptions(1).await,
        [json!({"queue_id": "default"})]
    );
    let (uri, authorization, auth) = fake.seen(|s| {
        (
            s.handshakes[0].uri.clone(),
            s.handshakes[0].authorization.clone(),
            s.connects[0].clone(),
        )
    });
    assert!(uri.starts_with("/ws/socket.io/?"), "{uri}");
    assert!(
        uri.contains("EIO=4") && uri.contains("transport=websocket"),
        "{uri}"
    );
    assert_eq!((authorization, auth), (None, None), "no token, no auth");

    fake.emit(
        "queue_item_status_changed",
        status_payload(7, "in_progress", 2),
    );
    let StreamItem::Event(Event::QueueItemStatusChanged(change)) = next(&mut rx).await else {
        panic!("expected a status change");
    };
    assert_eq!(change.item.item_id, 7);
    assert_eq!(change.status, ItemStatus::InProgress);
    assert_eq!(change.item.destination.as_deref(), Some("dest-1"));

    handle.close().await.expect("closes cleanly");
    fake.wait_for("the session to end", |s| {
        (s.live_sessions == 0).then_some(())
    })
    .await;
    assert_eq!(rx.recv().await, None, "the stream ends after close");
}

#[tokio::test]
async fn auth_token_reaches_connect_and_the_handshake_header() {
    let fake = FakeSocketIo::start().await;
    let config = fast_config(&fake).with_token("tok-123");
    let (handle, mut rx) = EventStream::connect(config).await.expect("connects");
    assert_eq!(next(&mut rx).await, StreamItem::Connected);
    let (authorization, auth) =
        fake.seen(|s| (s.handshakes[0].authorization.clone(), s.connects[0].clone()));
    assert_eq!(authorization.as_deref(), Some("Bearer tok-123"));
    assert_eq!(auth, Some(json!({"token": "tok-123"})));

    // A token set later is used by the next connection.
    handle.set_token(Some("tok-456".into()));
    fake.reset_sockets();
    assert!(matches!(
        next(&mut rx).await,
        StreamItem::Disconnected { .. }
    ));
    assert_eq!(next(&mut rx).await, StreamItem::Reconnected);
    let auth = fake.seen(|s| s.connects.last().cloned().flatten());
    assert_eq!(auth, Some(json!({"token": "tok-456"})));
    handle.close().await.expect("closes");
}

#[tokio::test]
async fn lifecycle_notice_comes_before_events_sent_right_after_connect() {
    let fake = FakeSocketIo::start().await;
    fake.greet_on_connect(
        "queue_item_status_changed",
        status_payload(1, "in_progress", 2),
    );
    let (handle, mut rx) = EventStream::connect(fast_config(&fake))
        .await
        .expect("connects");
    assert_eq!(label(&next(&mut rx).await), "connected");
    assert_eq!(label(&next(&mut rx).await), "status 1 in_progress");
    fake.wait_for_subscriptions(1).await;
    fake.reset_sockets();
    assert_eq!(label(&next(&mut rx).await), "disconnected");
    assert_eq!(label(&next(&mut rx).await), "reconnected");
    assert_eq!(label(&next(&mut rx).await), "status 1 in_progress");
    handle.close().await.expect("closes");
}

#[tokio::test]
async fn unknown_events_and_extra_fields_are_delivered() {
    let fake = FakeSocketIo::start().await;
    let (handle, mut rx) = EventStream::connect(fast_config(&fake))
        .await
        .expect("connects");
    assert_eq!(next(&mut rx).await, StreamItem::Connected);
    fake.wait_for_subscriptions(1).await;

    fake.emit("brand_new_event", json!({"answer": 42}));
    let mut with_extra = invocation_payload(3, "noise");
    with_extra["field_from_the_future"] = json!({"nested": true});
    fake.emit("invocation_started", with_extra);
    fake.send_raw(r#"42["event_without_payload"]"#);

    assert_eq!(
        next(&mut rx).await,
        StreamItem::Event(Event::Other {
            name: "brand_new_event".into(),
            payload: json!({"answer": 42})
        })
    );
    assert_eq!(label(&next(&mut rx).await), "invocation_started noise");
    assert_eq!(
        next(&mut rx).await,
        StreamItem::Event(Event::Other {
            name: "event_without_payload".into(),
            payload: Value::Null
        })
    );
    handle.close().await.expect("closes");
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// TCP reset, no close frame.
    Reset,
    /// A clean websocket close.
    Close,
    /// Socket.IO DISCONNECT from the server.
    ServerDisconnect,
    /// The server goes silent; only the missed pings tell.
    Stall,
}

async fn drop_mid_job(fault: Fault) {
    let timing = match fault {
        Fault::Stall => Timing {
            ping_interval: Duration::from_millis(200),
            ping_timeout: Duration::from_millis(200),
        },
        _ => Timing::default(),
    };
    let fake = FakeSocketIo::start_with(timing).await;
    let (handle, mut rx) = EventStream::connect(fast_config(&fake))
        .await
        .expect("connects");
    assert_eq!(next(&mut rx).await, StreamItem::Connected);
    fake.wait_for_subscriptions(1).await;

    fake.emit(
        "queue_item_status_changed",
        status_payload(9, "in_progress", 2),
    );
    fake.emit("invocation_started", invocation_payload(9, "save"));
    assert_eq!(label(&next(&mut rx).await), "status 9 in_progress");
    assert_eq!(label(&next(&mut rx).await), "invocation_started save");

    match fault {
        Fault::Reset => fake.reset_sockets(),
        Fault::Close => fake.close_sockets(),
        Fault::ServerDisconnect => fake.disconnect_sessions(),
        Fault::Stall => fake.stall_sockets(),
    }
    let StreamItem::Disconnected { reason } = next(&mut rx).await else {
        panic!("{fault:?}: expected Disconnected");
    };
    assert!(!reason.is_empty(), "{fault:?}: the reason is given");
    assert_eq!(next(&mut rx).await, StreamItem::Reconnected, "{fault:?}");
    let subscriptions = fake.wait_for_subscriptions(2).await;
    assert_eq!(
        subscriptions,
        [
            json!({"queue_id": "default"}),
            json!({"queue_id": "default"})
        ],
        "{fault:?}: subscribed again on the new connection"
    );

    fake.emit("invocation_complete", invocation_payload(9, "save"));
    fake.emit(
        "queue_item_status_changed",
        status_payload(9, "completed", 3),
    );
    assert_eq!(label(&next(&mut rx).await), "invocation_complete save");
    assert_eq!(label(&next(&mut rx).await), "status 9 completed");
    assert_eq!(
        fake.seen(|s| s.live_sessions),
        1,
        "{fault:?}: the old session is gone, one live session remains"
    );
    handle.close().await.expect("closes");
}

#[tokio::test]
async fn socket_reset_mid_job_reconnects_and_resubscribes() {
    drop_mid_job(Fault::Reset).await;
}

#[tokio::test]
async fn clean_websocket_close_mid_job_reconnects_and_resubscribes() {
    drop_mid_job(Fault::Close).await;
}

#[tokio::test]
async fn server_side_disconnect_mid_job_reconnects_and_resubscribes() {
    drop_mid_job(Fault::ServerDisconnect).await;
}

#[tokio::test]
async fn silent_server_is_detected_by_missed_pings() {
    drop_mid_job(Fault::Stall).await;
}

#[tokio::test]
async fn reconnect_waits_out_an_outage_and_close_stops_it() {
    let fake = FakeSocketIo::start().await;
    let (handle, mut rx) = EventStream::connect(fast_config(&fake))
        .await
        .expect("connects");
    assert_eq!(next(&mut rx).await, StreamItem::Connected);
    fake.wait_for_subscriptions(1).await;

    // The server goes away for a while: the session keeps trying, then gets back in.
    fake.refuse_connections(true);
    fake.reset_sockets();
    assert!(matches!(
        next(&mut rx).await,
        StreamItem::Disconnected { .. }
    ));
    let before = fake.seen(|s| s.tcp_accepts);
    fake.wait_for("three refused reconnect attempts", |s| {
        (s.tcp_accepts >= before + 3).then_some(())
    })
    .await;
    fake.refuse_connections(false);
    assert_eq!(next(&mut rx).await, StreamItem::Reconnected);
    fake.wait_for_subscriptions(2).await;

    // Down again; this time the consumer gives up while the session is retrying.
    fake.refuse_connections(true);
    fake.reset_sockets();
    assert!(matches!(
        next(&mut rx).await,
        StreamItem::Disconnected { .. }
    ));
    let before = fake.seen(|s| s.tcp_accepts);
    fake.wait_for("a refused reconnect attempt", |s| {
        (s.tcp_accepts > before).then_some(())
    })
    .await;
    tokio::time::timeout(Duration::from_secs(3), handle.close())
        .await
        .expect("close does not hang while the server is down")
        .expect("closes");
    let after_close = fake.seen(|s| s.tcp_accepts);
    tokio::time::sleep(Duration::from_millis(800)).await; // several backoff periods
    assert_eq!(
        fake.seen(|s| s.tcp_accepts),
        after_close,
        "no connection attempts after close"
    );
    assert_eq!(rx.recv().await, None);
}

/// Waits until the runtime runs `expected` tasks; returns how many it runs at the end.
async fn settle_tasks(expected: usize) -> usize {
    let metrics = tokio::runtime::Handle::current().metrics();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while metrics.num_alive_tasks() != expected && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    metrics.num_alive_tasks()
}

#[tokio::test]
async fn no_socket_tasks_outlive_reconnects_and_close() {
    let fake = FakeSocketIo::start().await;
    let baseline = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let (handle, mut rx) = EventStream::connect(fast_config(&fake))
        .await
        .expect("connects");
    assert_eq!(next(&mut rx).await, StreamItem::Connected);
    for n in 1..=3 {
        fake.wait_for_subscriptions(n).await;
        fake.reset_sockets();
        assert_eq!(label(&next(&mut rx).await), "disconnected");
        assert_eq!(label(&next(&mut rx).await), "reconnected");
    }
    handle.close().await.expect("closes");
    fake.wait_for("all sessions to end", |s| {
        (s.live_sessions == 0).then_some(())
    })
    .await;
    assert_eq!(
        settle_tasks(baseline).await,
        baseline,
        "every rust_socketio task of the four connections has ended"
    );
}

#[tokio::test]
async fn dropping_the_handle_ends_the_session() {
    let fake = FakeSocketIo::start().await;
    let baseline = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    let (handle, mut rx) = EventStream::connect(fast_config(&fake))
        .await
        .expect("connects");
    assert_eq!(next(&mut rx).await, StreamItem::Connected);
    drop(handle);
    assert_eq!(
        tokio::time::timeout(WAIT, rx.recv()).await.expect("ends"),
        None
    );
    fake.wait_for("the session to end", |s| {
        (s.live_sessions == 0).then_some(())
    })
    .await;
    assert_eq!(settle_tasks(baseline).await, baseline);
}

#[tokio::test]
async fn slow_consumer_loses_progress_but_never_status() {
    let fake = FakeSocketIo::start().await;
    let mut config = fast_config(&fake);
    config.channel_capacity = 4;
    let (handle, mut rx) = EventStream::connect(config).await.expect("connects");
    assert_eq!(next(&mut rx).await, StreamItem::Connected);
    fake.wait_for_subscriptions(1).await;

    let mut progress = invocation_payload(5, "denoise");
    progress["message"] = json!("step");
    for _ in 0..200 {
        fake.emit("invocation_progress", progress.clone());
    }
    fake.emit("invocation_complete", invocation_payload(5, "denoise"));
    fake.emit(
        "queue_item_status_changed",
        status_payload(5, "completed", 3),
    );
    tokio::time::sleep(Duration::from_millis(500)).await; // the consumer is busy elsewhere

    let mut labels = Vec::new();
    loop {
        let item = label(&next(&mut rx).await);
        let done = item == "status 5 completed";
        labels.push(item);
        if done {
            break;
        }
    }
    let progress_seen = labels
        .iter()
        .filter(|l| l.starts_with("invocation_progress"))
        .count();
    assert!(progress_seen < 200, "progress was dropped: {progress_seen}");
    assert_eq!(
        labels[labels.len() - 2..],
        ["invocation_complete denoise", "status 5 completed"]
    );
    handle.close().await.expect("closes");
}

#[tokio::test]
async fn refused_session_is_an_error_naming_the_url() {
    let fake = FakeSocketIo::start().await;
    fake.reject_connects(Some("Connection rejected by server"));
    let err = EventStream::connect(fast_config(&fake).with_token("expired"))
        .await
        .expect_err("the server refuses");
    assert!(matches!(err, EventError::Rejected { .. }), "{err:?}");
    insta::with_settings!({filters => vec![(r"127\.0\.0\.1:\d+", "[SERVER]")]}, {
        insta::assert_snapshot!(err.to_string(), @r"
        the server refused the event stream at `http://[SERVER]/ws/socket.io/`: Connection rejected by server
        hint: on a multi-user server, check the access token
        ");
    });
    fake.wait_for("the refused socket to close", |s| {
        (s.handshakes.len() == 1 && s.live_sessions == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn unreachable_server_is_an_error_naming_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    let config = EventsConfig::new(url::Url::parse(&format!("http://{addr}/sub")).expect("url"));
    let err = EventStream::connect(config)
        .await
        .expect_err("nothing listens there");
    assert!(matches!(err, EventError::Connect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "could not connect to the event stream at `http://{addr}/sub/ws/socket.io/`: "
        )),
        "{message}"
    );
    assert!(
        message.ends_with(
            "hint: check that the InvokeAI server is running and that the server URL is right"
        ),
        "{message}"
    );
}

/// Tests on a real InvokeAI server.
mod live {
    use std::panic::AssertUnwindSafe;

    use futures_util::FutureExt;

    use super::*;

    /// The shared real server (started on first use, off the async runtime).
    async fn server() -> url::Url {
        let url = tokio::task::spawn_blocking(|| crate::support::server().url().to_owned())
            .await
            .expect("starting the test server");
        url::Url::parse(&url).expect("the test server URL parses")
    }

    /// The shared multi-user server and an admin token for it.
    async fn multiuser_server() -> (url::Url, String) {
        let (url, email, password) = tokio::task::spawn_blocking(|| {
            let server = crate::support::multiuser_server();
            (
                server.url().to_owned(),
                server.admin_email.clone(),
                server.admin_password.clone(),
            )
        })
        .await
        .expect("starting the multi-user test server");
        let client = invk_run::client::Client::new(&url).expect("client");
        let login = client
            .auth()
            .login(&email, &password)
            .await
            .expect("admin login");
        let base = url::Url::parse(&url).expect("the test server URL parses");
        (base, login.token.expose().to_owned())
    }

    fn api(base: &url::Url, path: &str) -> String {
        format!("{}/api/v1/{path}", base.as_str().trim_end_matches('/'))
    }

    /// Enqueues `nodes`/`edges` as one run under a fresh destination; returns the item id and
    /// the destination.
    async fn enqueue(http: &reqwest::Client, base: &url::Url, graph: Value) -> (i64, String) {
        enqueue_as(http, base, graph, None).await
    }

    async fn enqueue_as(
        http: &reqwest::Client,
        base: &url::Url,
        graph: Value,
        token: Option<&str>,
    ) -> (i64, String) {
        let destination = format!("invk-run-test-{}", uuid::Uuid::new_v4());
        let body = json!({
            "batch": {"graph": graph, "runs": 1, "origin": "invk-run-test",
                      "destination": destination, "batch_id": uuid::Uuid::new_v4().to_string()},
            "prepend": false,
        });
        let mut request = http
            .post(api(base, "queue/default/enqueue_batch"))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("enqueue request");
        let status = response.status();
        let answer: Value = response.json().await.expect("enqueue answer is JSON");
        assert!(status.is_success(), "enqueue refused: {answer}");
        let item_id = answer["item_ids"][0].as_i64().expect("one item id");
        (item_id, destination)
    }

    /// Collects the events of `item_id` until it reaches a terminal status, plus anything that
    /// follows it within `linger` (the error event comes after the failed status).
    async fn events_of(
        rx: &mut Receiver<StreamItem>,
        item_id: i64,
        linger: Duration,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let mut finished_at = None;
        loop {
            let until = finished_at.map_or(deadline, |t: tokio::time::Instant| t + linger);
            let item = match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(item)) => item,
                Ok(None) => panic!("the event stream ended"),
                Err(_) if finished_at.is_some() => return events,
                Err(_) => panic!("item {item_id} did not finish within 120 s: {events:#?}"),
            };
            let StreamItem::Event(event) = item else {
                continue;
            };
            if event.item_id() != Some(item_id) || event.is_progress() {
                continue;
            }
            if matches!(&event, Event::QueueItemStatusChanged(c) if c.status.is_terminal()) {
                finished_at = Some(tokio::time::Instant::now());
            }
            events.push(event);
        }
    }

    async fn delete_item(http: &reqwest::Client, base: &url::Url, item_id: i64) {
        delete_item_as(http, base, item_id, None).await;
    }

    async fn delete_item_as(
        http: &reqwest::Client,
        base: &url::Url,
        item_id: i64,
        token: Option<&str>,
    ) {
        let mut request = http.delete(api(base, &format!("queue/default/i/{item_id}")));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let _ = request.send().await;
    }

    #[tokio::test]
    async fn blank_image_job_emits_status_and_node_events_in_order() {
        let base = server().await;
        let http = reqwest::Client::new();
        let (handle, mut rx) = EventStream::connect(EventsConfig::new(base.clone()))
            .await
            .expect("connects to the real server");
        assert_eq!(next(&mut rx).await, StreamItem::Connected);

        let graph = json!({
            "nodes": {
                "b": {"id": "b", "type": "blank_image", "width": 32, "height": 32, "use_cache": false},
                "s": {"id": "s", "type": "save_image", "use_cache": false, "is_intermediate": false},
            },
            "edges": [{"source": {"node_id": "b", "field": "image"},
                       "destination": {"node_id": "s", "field": "image"}}],
        });
        let (item_id, destination) = enqueue(&http, &base, graph).await;
        let outcome = AssertUnwindSafe(events_of(&mut rx, item_id, Duration::ZERO))
            .catch_unwind()
            .await;
        // Clean up whatever happened: the saved image and the queue item.
        let mut images = Vec::new();
        if let Ok(events) = &outcome {
            for event in events {
                if let Event::InvocationComplete { result, .. } = event {
                    images.extend(result["image"]["image_name"].as_str().map(str::to_owned));
                }
            }
        }
        for name in &images {
            let _ = http
                .delete(api(&base, &format!("images/i/{name}")))
                .send()
                .await;
        }
        delete_item(&http, &base, item_id).await;
        handle.close().await.expect("closes");
        let events = outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic));

        let labels: Vec<String> = events
            .iter()
            .map(|e| label(&StreamItem::Event(e.clone())))
            .collect();
        assert_eq!(
            labels,
            [
                format!("status {item_id} in_progress"),
                "invocation_started b".into(),
                "invocation_complete b".into(),
                "invocation_started s".into(),
                "invocation_complete s".into(),
                format!("status {item_id} completed"),
            ]
        );
        for event in &events {
            assert_eq!(event.destination(), Some(destination.as_str()), "{event:?}");
            assert_eq!(event.queue_id(), Some("default"));
        }
        let Event::InvocationComplete { result, invocation } = &events[4] else {
            panic!("the save node's completion");
        };
        assert_eq!(result["type"], "image_output");
        assert_eq!(
            (result["width"].as_i64(), result["height"].as_i64()),
            (Some(32), Some(32))
        );
        assert_eq!(invocation.invocation_type(), Some("save_image"));
        assert_eq!(
            images.len(),
            2,
            "blank_image and save_image each made an image"
        );
    }

    #[tokio::test]
    async fn failing_graph_reports_the_servers_error() {
        let base = server().await;
        let http = reqwest::Client::new();
        let (handle, mut rx) = EventStream::connect(EventsConfig::new(base.clone()))
            .await
            .expect("connects to the real server");
        assert_eq!(next(&mut rx).await, StreamItem::Connected);

        let bogus_key = format!("bogus-{}", uuid::Uuid::new_v4());
        let graph = json!({
            "nodes": {"m": {"id": "m", "type": "main_model_loader", "model": {
                "key": bogus_key, "hash": "blake3:00", "name": "bogus", "base": "sd-1", "type": "main"}}},
            "edges": [],
        });
        let (item_id, _) = enqueue(&http, &base, graph).await;
        let outcome = AssertUnwindSafe(events_of(&mut rx, item_id, Duration::from_secs(2)))
            .catch_unwind()
            .await;
        delete_item(&http, &base, item_id).await;
        handle.close().await.expect("closes");
        let events = outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic));

        let failed = events
            .iter()
            .find_map(|e| match e {
                Event::QueueItemStatusChanged(c) if c.status == ItemStatus::Failed => Some(c),
                _ => None,
            })
            .unwrap_or_else(|| panic!("a failed status: {events:#?}"));
        let expected = format!("Unknown model {bogus_key}");
        assert_eq!(failed.error_message.as_deref(), Some(expected.as_str()));
        let Some(Event::InvocationError { invocation, error }) = events.last() else {
            panic!("the error event comes last: {events:#?}");
        };
        assert_eq!(invocation.invocation_source_id, "m");
        assert_eq!(error.error_message, expected);
        assert!(!error.error_traceback.is_empty());
    }

    #[tokio::test]
    async fn multiuser_server_needs_the_token_and_sends_the_owner_its_events() {
        let (base, token) = multiuser_server().await;
        let err = EventStream::connect(EventsConfig::new(base.clone()))
            .await
            .expect_err("no token, no session");
        assert!(matches!(err, EventError::Rejected { .. }), "{err}");
        let err = EventStream::connect(EventsConfig::new(base.clone()).with_token("not-a-jwt"))
            .await
            .expect_err("a forged token is refused");
        assert!(matches!(err, EventError::Rejected { .. }), "{err}");

        let (handle, mut rx) =
            EventStream::connect(EventsConfig::new(base.clone()).with_token(&token))
                .await
                .expect("the admin's token opens a session");
        assert_eq!(next(&mut rx).await, StreamItem::Connected);
        let http = reqwest::Client::new();
        let graph = json!({
            "nodes": {"m": {"id": "m", "type": "main_model_loader", "model": {
                "key": "bogus-multiuser", "hash": "blake3:00", "name": "bogus", "base": "sd-1",
                "type": "main"}}},
            "edges": [],
        });
        let (item_id, destination) = enqueue_as(&http, &base, graph, Some(&token)).await;
        let outcome = AssertUnwindSafe(events_of(&mut rx, item_id, Duration::from_secs(2)))
            .catch_unwind()
            .await;
        delete_item_as(&http, &base, item_id, Some(&token)).await;
        handle.close().await.expect("closes");
        let events = outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        assert!(
            events
                .iter()
                .all(|e| e.destination() == Some(destination.as_str())),
            "the owner gets the full, unredacted events: {events:#?}"
        );
        assert!(
            matches!(events.last(), Some(Event::InvocationError { .. })),
            "{events:#?}"
        );
    }
}
