//! The client against local fake servers that inject faults: wiremock for scripted answers, and a
//! raw TCP listener for what an HTTP mock cannot do (reset a connection, stall or cut a body).
//!
//! Retry policy under test: transient failures (connection reset, time-out, 502/503/504) are
//! retried for requests that are safe to repeat; `500` is not retried (InvokeAI answers `500` for
//! deterministic failures); `4xx` never; an enqueue is never repeated once it was sent.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use invk_run::client::{Client, ClientError, RetryPolicy};
use invk_run::workflow::payload::{Batch, EnqueueBatch, Graph};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Retries without waiting, so the tests are fast.
fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    }
}

fn client(base: &str) -> Client {
    Client::builder(base)
        .retry(fast_retries())
        .build()
        .expect("client")
}

fn tiny_batch() -> EnqueueBatch {
    EnqueueBatch {
        batch: Batch {
            batch_id: Some("b-1".to_owned()),
            origin: None,
            destination: None,
            data: None,
            graph: Graph::default(),
            workflow: None,
            runs: 3,
        },
        prepend: false,
    }
}

/// What the raw server does with each connection, in turn.
#[derive(Clone, Copy, Debug)]
enum Act {
    /// Read the request, then reset the connection (RST) without answering.
    Reset,
    /// Answer 200 with a JSON body.
    Json(&'static str),
    /// Send headers announcing `announced` bytes, send `sent` bytes, then stall forever.
    Stall { announced: usize, sent: usize },
    /// Send headers announcing `announced` bytes, send `sent` bytes, then close.
    Cut { announced: usize, sent: usize },
}

/// A raw HTTP/1.1 server on a free loopback port that plays `acts` (the last one repeats).
/// Returns its base URL and a counter of connections handled.
async fn raw_server(acts: Vec<Act>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let act = acts
                .get(n)
                .or(acts.last())
                .copied()
                .expect("at least one act");
            tokio::spawn(play(stream, act));
        }
    });
    (format!("http://{addr}"), count)
}

async fn read_request(stream: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return;
            }
        }
    }
}

async fn play(mut stream: TcpStream, act: Act) {
    read_request(&mut stream).await;
    let head = |len: usize, kind: &str| {
        format!("HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {len}\r\n\r\n")
    };
    match act {
        Act::Reset => {
            let _ = stream.set_zero_linger();
            drop(stream);
        }
        Act::Json(body) => {
            let _ = stream
                .write_all(head(body.len(), "application/json").as_bytes())
                .await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.flush().await;
        }
        Act::Stall { announced, sent } => {
            let _ = stream
                .write_all(head(announced, "image/png").as_bytes())
                .await;
            let _ = stream.write_all(&vec![7u8; sent]).await;
            let _ = stream.flush().await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Act::Cut { announced, sent } => {
            let _ = stream
                .write_all(head(announced, "image/png").as_bytes())
                .await;
            let _ = stream.write_all(&vec![7u8; sent]).await;
            let _ = stream.flush().await;
            let _ = stream.shutdown().await;
        }
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs_err::read_dir(dir)
        .expect("list dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_reset_connection_is_retried_for_a_get() {
    let (base, connections) =
        raw_server(vec![Act::Reset, Act::Json(r#"{"version":"6.14.2"}"#)]).await;
    let version = client(&base)
        .app()
        .version()
        .await
        .expect("retried after the reset");
    assert_eq!(version, "6.14.2");
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_enqueue_is_not_repeated_after_it_was_sent() {
    let (base, connections) = raw_server(vec![Act::Reset, Act::Json("{}")]).await;
    let err = client(&base)
        .queue()
        .enqueue_batch(&tiny_batch())
        .await
        .expect_err("reset");
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("POST http://127.0.0.1:"),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with("/api/v1/queue/default/enqueue_batch failed"),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "the enqueue was sent again"
    );
}

#[tokio::test]
async fn an_enqueue_answered_503_is_not_repeated_but_a_get_is() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/queue/default/enqueue_batch"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"detail": "busy"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/app/version"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/app/version"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"version": "6.14.2"})))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let err = client
        .queue()
        .enqueue_batch(&tiny_batch())
        .await
        .expect_err("503");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(client.app().version().await.expect("third try"), "6.14.2");
    // The `expect` counts are checked when the server drops.
}

#[tokio::test]
async fn a_500_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/workflows/i/w1"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"detail": "boom"})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server.uri())
        .workflows()
        .get("w1")
        .await
        .expect_err("500");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(500));
    assert_eq!(err.detail(), Some("boom"));
}

#[tokio::test]
async fn client_errors_are_never_retried() {
    let server = MockServer::start().await;
    for (status, route) in [
        (404, "/api/v1/boards/nope"),
        (401, "/api/v1/boards/locked"),
        (409, "/api/v1/boards/busy"),
    ] {
        Mock::given(method("GET"))
            .and(path(route))
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({"detail": "no"})))
            .expect(1)
            .mount(&server)
            .await;
    }
    let client = client(&server.uri());
    for (id, status) in [("nope", 404), ("locked", 401), ("busy", 409)] {
        let err = client.boards().get(id).await.expect_err("4xx");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status), "{err}");
    }
    let requests = server.received_requests().await.expect("recording");
    assert_eq!(requests.len(), 3, "each 4xx was sent exactly once");
}

#[tokio::test]
async fn a_stalled_download_times_out_and_leaves_no_file() {
    let (base, _) = raw_server(vec![Act::Stall {
        announced: 1000,
        sent: 10,
    }])
    .await;
    let client = Client::builder(&base)
        .request_timeout(Duration::from_millis(500))
        .retry(RetryPolicy::none())
        .build()
        .expect("client");
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("out.png");
    let err = client
        .images()
        .download("a.png", &dest)
        .await
        .expect_err("stalled");
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    let shown = err.to_string();
    assert!(shown.starts_with("GET http://127.0.0.1:"), "{shown}");
    assert!(
        shown.ends_with("/api/v1/images/i/a.png/full timed out (limit 0.5s)"),
        "{shown}"
    );
    assert_eq!(
        files_in(dir.path()),
        Vec::<String>::new(),
        "no partial or temporary file is left"
    );
}

#[tokio::test]
async fn a_truncated_download_fails_and_leaves_no_file() {
    let (base, connections) = raw_server(vec![Act::Cut {
        announced: 100,
        sent: 10,
    }])
    .await;
    let client = Client::builder(&base)
        .retry(RetryPolicy {
            max_retries: 1,
            ..fast_retries()
        })
        .build()
        .expect("client");
    let dir = tempfile::tempdir().expect("tempdir");
    fs_err::write(dir.path().join("keep.txt"), "other file").expect("write");
    let dest = dir.path().join("out.png");
    let err = client
        .images()
        .download("a.png", &dest)
        .await
        .expect_err("truncated");
    assert!(
        matches!(
            err,
            ClientError::Transport { .. } | ClientError::Truncated { .. }
        ),
        "{err:?}"
    );
    assert_eq!(
        connections.load(Ordering::SeqCst),
        2,
        "a GET download is retried once"
    );
    assert_eq!(files_in(dir.path()), ["keep.txt"]);
}

#[tokio::test]
async fn a_complete_download_lands_at_the_destination() {
    let (base, _) = raw_server(vec![Act::Cut {
        announced: 64,
        sent: 64,
    }])
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("sub/out.png");
    let bytes = client(&base)
        .images()
        .download("a.png", &dest)
        .await
        .expect("download");
    assert_eq!(bytes, 64);
    assert_eq!(fs_err::read(&dest).expect("read"), vec![7u8; 64]);
    assert_eq!(files_in(&dir.path().join("sub")), ["out.png"]);
}

#[tokio::test]
async fn an_unreachable_server_is_named_with_a_hint() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let err = client(&base).app().version().await.expect_err("refused");
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
    let shown = err.to_string().replace(&port.to_string(), "[PORT]");
    insta::assert_snapshot!(shown, @"could not reach the InvokeAI server at `http://127.0.0.1:[PORT]/` (GET http://127.0.0.1:[PORT]/api/v1/app/version); is it running? Point invk-run at it with `--server URL` or `INVK_SERVER`");
}

#[tokio::test]
async fn a_server_under_a_sub_path_is_reached_there() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/invoke/api/v1/app/version"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"version": "6.14.2"})))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&format!("{}/invoke", server.uri()));
    assert_eq!(client.app().version().await.expect("version"), "6.14.2");
}

#[tokio::test]
async fn a_refreshed_token_is_used_by_later_calls() {
    let server = MockServer::start().await;
    let board = json!({"board_id": "b1", "board_name": "x", "user_id": "u", "created_at": "t", "updated_at": "t",
                       "archived": false, "image_count": 0, "asset_count": 0});
    Mock::given(method("POST"))
        .and(path("/api/v1/boards/"))
        .and(query_param("board_name", "x"))
        .and(header("authorization", "Bearer old-token"))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("X-Refreshed-Token", "new-token")
                .set_body_json(&board),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/boards/b1"))
        .and(header("authorization", "Bearer new-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&board))
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::builder(server.uri())
        .token("old-token")
        .build()
        .expect("client");
    let clone = client.clone();
    client.boards().create("x").await.expect("create");
    assert_eq!(
        clone.token().expect("token").expose(),
        "new-token",
        "clones share the refreshed token"
    );
    clone
        .boards()
        .get("b1")
        .await
        .expect("the new token is sent");
}

#[tokio::test]
async fn a_truncated_enqueue_is_reported_as_a_full_queue_with_what_was_enqueued() {
    let server = MockServer::start().await;
    let mut echo = serde_json::to_value(tiny_batch().batch).expect("batch");
    echo["batch_id"] = json!("b-1");
    Mock::given(method("POST"))
        .and(path("/api/v1/queue/default/enqueue_batch"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "queue_id": "default", "enqueued": 2, "requested": 3, "batch": echo, "priority": 0, "item_ids": [12, 11]
        })))
        .mount(&server)
        .await;
    let err = client(&server.uri())
        .queue()
        .enqueue_batch(&tiny_batch())
        .await
        .expect_err("full");
    let partial = err.partial_enqueue().expect("partial result");
    assert_eq!(partial.item_ids, [11, 12]);
    assert_eq!(partial.batch_id(), "b-1");
    insta::assert_snapshot!(err.to_string(), @r"the queue `default` is full: it took 2 of 3 sessions (the server's `max_queue_size` counts pending items); wait for it to drain or raise the limit");
}

#[tokio::test]
async fn an_answer_of_the_wrong_shape_names_the_field() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/queue/default/status"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "queue": {"queue_id": "default", "pending": "many"}, "processor": {"is_started": true, "is_processing": false}
        })))
        .mount(&server)
        .await;
    let err = client(&server.uri())
        .queue()
        .status()
        .await
        .expect_err("shape");
    let shown = err.to_string().replace(&server.uri(), "[SERVER]");
    insta::assert_snapshot!(shown, @r"GET [SERVER]/api/v1/queue/default/status: unexpected answer at `queue.pending`");
}

/// Runs `invk-run ARGS --server URL` against a fake server and snapshots its output.
async fn run_cli(server: &MockServer, args: &'static [&'static str]) -> std::process::Output {
    let url = server.uri();
    tokio::task::spawn_blocking(move || {
        crate::support::invk_run()
            .args(args)
            .args(["--server", &url])
            .output()
            .expect("run invk-run")
    })
    .await
    .expect("join")
}

fn text(output: &std::process::Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_list_commands_print_tables_and_json() {
    let server = MockServer::start().await;
    let workflow = |id: &str, name: &str, category: &str| {
        json!({"workflow_id": id, "name": name, "created_at": "2026-01-01 10:00:00.000",
               "updated_at": "2026-01-02 11:00:00.000", "opened_at": null, "user_id": "system", "is_public": true,
               "description": "", "category": category, "tags": "", "thumbnail_url": null})
    };
    Mock::given(method("GET"))
        .and(path("/api/v1/workflows/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "page": 0, "pages": 1, "per_page": 2, "total": 2,
            "items": [workflow("default_abc", "Text to Image - SDXL", "default"),
                      workflow("9f1c", "my \u{1b}[31mred\u{1b}[0m sweep", "user")]
        })))
        .mount(&server)
        .await;
    let board = |id: &str, name: &str, images: u64, archived: bool| {
        json!({"board_id": id, "board_name": name, "user_id": "system", "created_at": "2026-01-01 10:00:00.000",
               "updated_at": "2026-01-01 10:00:00.000", "cover_image_name": null, "archived": archived,
               "board_visibility": "private", "image_count": images, "asset_count": 1, "video_count": 0})
    };
    Mock::given(method("GET"))
        .and(path("/api/v1/boards/"))
        .and(query_param("all", "true"))
        .and(query_param("include_archived", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            board("b-1", "portraits", 12, false),
            board("b-2", "old", 0, true)
        ])))
        .mount(&server)
        .await;
    let workflows = run_cli(&server, &["workflows", "list"]).await;
    insta::assert_snapshot!(text(&workflows), @r"
    exit: Some(0)
    --- stdout
    ID           CATEGORY  UPDATED                  NAME
    default_abc  default   2026-01-02 11:00:00.000  Text to Image - SDXL
    9f1c         user      2026-01-02 11:00:00.000  my \u{1b}[31mred\u{1b}[0m sweep
    --- stderr
    ");
    let boards = run_cli(&server, &["boards", "list"]).await;
    insta::assert_snapshot!(text(&boards), @r"
    exit: Some(0)
    --- stdout
    ID   IMAGES  ASSETS  ARCHIVED  NAME
    b-1  12      1                 portraits
    b-2  0       1       yes       old
    --- stderr
    ");
    let json_out = run_cli(&server, &["boards", "list", "--json"]).await;
    assert_eq!(json_out.status.code(), Some(0));
    let parsed: serde_json::Value = serde_json::from_slice(&json_out.stdout).expect("json");
    assert_eq!(parsed[1]["board_name"], "old");
    assert_eq!(parsed[1]["archived"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_against_an_unreachable_server_fail_with_the_hint() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let output = tokio::task::spawn_blocking(move || {
        crate::support::invk_run()
            .args(["boards", "list"])
            .env("INVK_SERVER", format!("http://127.0.0.1:{port}"))
            .output()
            .expect("run")
    })
    .await
    .expect("join");
    insta::assert_snapshot!(text(&output).replace(&port.to_string(), "[PORT]"), @r"
    exit: Some(1)
    --- stdout
    --- stderr
    error: could not reach the InvokeAI server at `http://127.0.0.1:[PORT]/` (GET http://127.0.0.1:[PORT]/api/v1/boards/?all=true&include_archived=true&order_by=board_name&direction=ASC); is it running? Point invk-run at it with `--server URL` or `INVK_SERVER`
      Caused by: error sending request for url (http://127.0.0.1:[PORT]/api/v1/boards/?all=true&include_archived=true&order_by=board_name&direction=ASC)
      Caused by: client error (Connect)
      Caused by: tcp connect error
      Caused by: Connection refused (os error 111)
    ");
}

/// Two installed models with the same name and different types, as the models API lists them.
fn same_name_models() -> serde_json::Value {
    let model = |key: &str, ty: &str| {
        json!({"key": key, "hash": format!("blake3:{key}"), "name": "FLUX", "base": "flux",
               "type": ty, "format": "checkpoint", "description": null})
    };
    json!({"models": [model("k-main", "main"), model("k-vae", "vae"), model("k-lora", "lora")]})
}

/// A server whose model list (asked for once) is [`same_name_models`].
async fn models_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/models/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(same_name_models()))
        .expect(1)
        .mount(&server)
        .await;
    server
}

const FLUX_MODEL: &str = "f8d9d7c8-9ed7-4bd7-9e42-ab0e89bfac90.model";
const FLUX_VAE: &str = "f8d9d7c8-9ed7-4bd7-9e42-ab0e89bfac90.vae_model";

fn flux_workflow() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/workflows/flux-image-to-image.json")
}

#[tokio::test]
async fn the_handle_resolves_models_of_the_same_name_by_the_field_type_listing_them_once() {
    use invk_run::client::SchemaSource;
    use invk_run::workflow::{InputRef, WorkflowDefinition};
    let server = models_server().await;
    let client = client(&server.uri());
    let definition = WorkflowDefinition::load(flux_workflow()).expect("workflow");
    let mut handle = invk_run::client::WorkflowHandle::with_schemas(
        &client,
        definition,
        crate::support::schemas(),
        SchemaSource::Snapshot {
            reason: "test".into(),
        },
    )
    .expect("handle");
    handle.set(FLUX_MODEL, "FLUX").expect("model by name");
    handle.set(FLUX_VAE, "FLUX").expect("vae by name");
    handle.resolve_models().await.expect("resolved");
    let key_of = |system: &str| {
        handle
            .workflow()
            .input(&InputRef::parse(system))
            .expect("input")
            .value
            .as_ref()
            .expect("value")
            .to_json()["key"]
            .clone()
    };
    assert_eq!(key_of(FLUX_MODEL), "k-main");
    assert_eq!(key_of(FLUX_VAE), "k-vae");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runner_resolves_models_of_the_same_name_by_the_field_type() {
    let server = models_server().await;
    // The enqueue is refused: what matters is what was sent.
    Mock::given(method("POST"))
        .and(path("/api/v1/queue/default/enqueue_batch"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(json!({"detail": "test stops here"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    fs_err::copy(flux_workflow(), dir.path().join("flux.json")).expect("copy");
    fs_err::write(
        dir.path().join("job.yaml"),
        format!(
            "version: 1\nworkflow: flux.json\ninputs:\n  {FLUX_MODEL}: FLUX\n  {FLUX_VAE}: FLUX\noutput:\n  dir: out\n"
        ),
    )
    .expect("manifest");
    let url = server.uri();
    let cwd = dir.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        crate::support::invk_run()
            .current_dir(cwd)
            .args(["job.yaml", "--server", &url, "--poll-only"])
            .output()
            .expect("run invk-run")
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("test stops here"), "{stderr}");
    let requests = server.received_requests().await.expect("recording");
    let enqueue = requests
        .iter()
        .find(|r| r.url.path().ends_with("/enqueue_batch"))
        .expect("an enqueue was sent");
    let body: serde_json::Value = serde_json::from_slice(&enqueue.body).expect("json body");
    let loader = &body["batch"]["graph"]["nodes"]["f8d9d7c8-9ed7-4bd7-9e42-ab0e89bfac90"];
    assert_eq!(loader["model"]["key"], "k-main", "{loader}");
    assert_eq!(loader["vae_model"]["key"], "k-vae", "{loader}");
}
