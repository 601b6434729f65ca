//! One run spread over a pool of two real InvokeAI servers (the shared one and a private one):
//! both take jobs and every file lands once; a server killed mid-run leaves the pool and the
//! run completes on the other; a server whose schema lacks a node type the workflow uses is
//! left out before anything is sent.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::runner::{
    Workspace, assert_server_keeps_nothing_at, files_under, is_output_png, journal_images, text,
};
use crate::support;
use crate::support::private::PrivateServer;

/// 24 jobs of two outputs each.
pub(crate) const POOL_SWEEP: &str = r#"
version: 1
workflow: blur-and-tint.json
inputs:
  Source image: photos/sunset.png
  Width: 48
sweep:
  matrix:
    Hue shift: [0, 90, 180, 270]
    Blur radius: [1, 2, 3, 4, 5, 6]
output:
  dir: out
  name: "hue-{{ sweep['Hue shift'] }}/blur-{{ sweep['Blur radius'] }}-{{ node.label }}"
"#;

/// `invk-run --server A --server B ARGS...` in the workspace.
fn pool_command(ws: &Workspace, servers: &[&str], args: &[&str]) -> std::process::Command {
    pool_command_in(ws.dir.path(), servers, args)
}

/// `invk-run --server A --server B ARGS...` in `dir`.
fn pool_command_in(
    dir: &std::path::Path,
    servers: &[&str],
    args: &[&str],
) -> std::process::Command {
    let mut cmd = support::invk_run();
    cmd.current_dir(dir);
    for url in servers {
        cmd.arg("--server").arg(url);
    }
    cmd.args(args);
    cmd
}

/// Runs `cmd` to its end off the async runtime (its fake servers answer meanwhile).
async fn output_of(mut cmd: std::process::Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join")
}

fn both(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// The output images of the run, and each one's server, from the sidecars.
fn outputs_by_server(ws: &Workspace) -> (Vec<String>, BTreeMap<String, usize>) {
    let files: Vec<String> = files_under(&ws.path("out"))
        .into_iter()
        .filter(|f| is_output_png(f))
        .collect();
    let mut servers: BTreeMap<String, usize> = BTreeMap::new();
    for file in &files {
        let sidecar = ws.path(&format!("out/{file}.json"));
        let sidecar: Value = serde_json::from_str(
            &fs_err::read_to_string(&sidecar)
                .unwrap_or_else(|e| panic!("{}: {e}", sidecar.display())),
        )
        .expect("sidecar JSON");
        let server = sidecar["server"]
            .as_str()
            .expect("sidecar names its server");
        *servers.entry(server.to_owned()).or_default() += 1;
    }
    (files, servers)
}

/// How many outputs of the run, so far, name `server` in their sidecars (an output whose
/// sidecar is not placed yet is not counted).
fn saved_by(ws: &Workspace, server: &str) -> usize {
    files_under(&ws.path("out"))
        .into_iter()
        .filter(|f| f.ends_with(".png.json"))
        .filter_map(|f| fs_err::read_to_string(ws.path(&format!("out/{f}"))).ok())
        .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
        .filter(|v| v["server"] == server)
        .count()
}

/// Exactly the 48 expected outputs, none written twice (no `-1` copies).
fn assert_every_output_once(files: &[String]) {
    let expected: BTreeSet<String> = [0, 90, 180, 270]
        .iter()
        .flat_map(|hue| {
            (1..=6).flat_map(move |blur| {
                ["Blurred", "Tinted"].map(|label| format!("hue-{hue}/blur-{blur}-{label}.png"))
            })
        })
        .collect();
    let got: BTreeSet<String> = files.iter().cloned().collect();
    assert_eq!(got.len(), files.len());
    assert_eq!(
        got,
        expected,
        "missing: {:?}\nextra: {:?}",
        expected.difference(&got).collect::<Vec<_>>(),
        got.difference(&expected).collect::<Vec<_>>()
    );
}

/// Each job completed exactly once, per the journal.
fn assert_each_job_completed_once(ws: &Workspace) {
    let completed: Vec<String> = ws
        .journal("out")
        .iter()
        .filter(|e| e["event"] == "finished" && e["status"] == "completed")
        .filter_map(|e| e["job"].as_str().map(str::to_owned))
        .collect();
    let unique: BTreeSet<&String> = completed.iter().collect();
    assert_eq!(unique.len(), 24, "{completed:#?}");
    assert_eq!(completed.len(), 24, "a job completed twice: {completed:#?}");
}

#[test]
fn a_sweep_spread_over_two_servers_runs_on_both_and_lands_every_file_once() {
    let private = PrivateServer::start(None);
    let private_url = private.url();
    let shared = support::server().url();
    // The pool as the manifest names it, the second server with a window of its own.
    let ws = Workspace::new(&format!(
        "{POOL_SWEEP}server:\n  - {private_url}\n  - {{url: {shared}, window: 4}}\n"
    ));
    let out = pool_command(&ws, &[], &["--json", "job.yaml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    // The journal numbers the servers in the order named; no enqueue to the second server
    // carried more than its window.
    let journal = ws.journal("out");
    let numbered: Vec<(u64, &str)> = journal
        .iter()
        .filter(|e| e["event"] == "server")
        .map(|e| {
            (
                e["number"].as_u64().unwrap_or(99),
                e["url"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(numbered, [(0, private_url.as_str()), (1, shared)]);
    let sizes = |number: u64| -> Vec<usize> {
        journal
            .iter()
            .filter(|e| e["event"] == "enqueue_intent")
            .filter(|e| e["server"].as_u64().unwrap_or(0) == number)
            .map(|e| e["jobs"].as_array().map_or(0, Vec::len))
            .collect()
    };
    assert!(sizes(1).iter().all(|n| *n <= 4), "{:?}", sizes(1));
    assert!(sizes(0).iter().any(|n| *n > 4), "{:?}", sizes(0));

    let (files, servers) = outputs_by_server(&ws);
    assert_every_output_once(&files);
    assert_each_job_completed_once(&ws);
    // Both servers ran some of the jobs (each job's two outputs come from one server).
    assert_eq!(servers.len(), 2, "{servers:?}");
    for (server, n) in &servers {
        assert!(*n >= 2 && n % 2 == 0, "{server}: {n} outputs");
    }
    assert!(servers.contains_key(&private_url) && servers.contains_key(shared));

    // The JSON events give each server's share, and name the server of each job.
    let events: Vec<Value> = text(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let shares: BTreeMap<String, u64> = events
        .iter()
        .filter(|e| e["event"] == "server_status" && e["end"] == true)
        .map(|e| {
            (
                e["server"].as_str().unwrap_or_default().to_owned(),
                e["done"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(shares.values().sum::<u64>(), 24, "{shares:?}");
    for (server, n) in &servers {
        assert_eq!(
            shares.get(server).copied(),
            Some(*n as u64 / 2),
            "{shares:?}"
        );
    }
    // Progress events follow each server: its running items, and at the end all it did.
    for server in servers.keys() {
        let progress: Vec<&Value> = events
            .iter()
            .filter(|e| {
                e["event"] == "server_status" && e["end"] == false && e["server"] == server.as_str()
            })
            .collect();
        assert!(
            progress.iter().any(|e| e["running"].as_u64() > Some(0)),
            "{server}: {progress:?}"
        );
        let last = progress.last().expect("progress");
        assert_eq!(last["done"].as_u64(), shares.get(server).copied(), "{last}");
        assert_eq!(last["left"], false);
    }
    assert!(
        events
            .iter()
            .filter(|e| e["event"] == "job_completed")
            .all(|e| e["server"] == private_url.as_str() || e["server"] == shared),
        "every completed job names its server"
    );
    // The summary names the server of every job.
    let summary = fs_err::read_to_string(ws.path("out/runs.jsonl")).expect("summary");
    let lines: Vec<Value> = summary
        .lines()
        .map(|l| serde_json::from_str(l).expect("summary line"))
        .collect();
    assert_eq!(lines.len(), 24);
    assert!(lines.iter().all(|l| l["server"].is_string()), "{summary}");

    // Nothing of the run stays on either server.
    let journal = ws.journal("out");
    assert_server_keeps_nothing_at(&private_url, &journal);
    assert_server_keeps_nothing_at(shared, &journal);

    // Run again: everything is done, nothing is sent to either server.
    let again = pool_command(&ws, &[], &["job.yaml"])
        .output()
        .expect("run again");
    assert_eq!(again.status.code(), Some(0), "{}", both(&again));
    let intents = |journal: &[Value]| {
        journal
            .iter()
            .filter(|e| e["event"] == "enqueue_intent")
            .count()
    };
    assert_eq!(intents(&ws.journal("out")), intents(&journal));
}

#[test]
fn a_server_killed_mid_run_leaves_the_pool_and_the_run_completes_on_the_other() {
    let mut private = PrivateServer::start(None);
    let private_url = private.url();
    let shared = support::server().url();
    // Larger images, so that the private server still has jobs when it is killed.
    let ws = Workspace::new(&POOL_SWEEP.replace("Width: 48", "Width: 384"));
    // The private server is named first: it takes the first window of jobs.
    let child = pool_command(
        &ws,
        &[&private_url, shared],
        &["--server-wait", "8", "job.yaml"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn");
    // Kill the private server once it has finished a job and still holds others.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        if saved_by(&ws, &private_url) >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the private server finished no job"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let busy = private.busy().unwrap_or(0);
    private.kill();
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        busy > 0,
        "the private server had nothing left when it was killed"
    );
    assert!(
        both(&out).contains(&format!("the server at {private_url} leaves the pool")),
        "{}",
        both(&out)
    );

    let (files, servers) = outputs_by_server(&ws);
    assert_every_output_once(&files);
    assert_each_job_completed_once(&ws);
    assert!(
        servers.get(shared).copied().unwrap_or(0) > 0,
        "the shared server took over nothing: {servers:?}"
    );
    // Nothing of the run stays on the surviving server.
    let journal = ws.journal("out");
    let on_shared: Vec<String> = journal_images(&journal, true)
        .into_iter()
        .filter(|n| crate::runner::image_exists_at(shared, n))
        .collect();
    assert!(
        on_shared.is_empty(),
        "left on the shared server: {on_shared:?}"
    );
}

#[test]
fn a_server_lacking_a_node_type_of_the_workflow_is_left_out_with_a_warning() {
    let private = PrivateServer::start_denying(&["img_hue_adjust"]);
    let private_url = private.url();
    let shared = support::server().url();
    let ws = Workspace::new(POOL_SWEEP);
    let out = pool_command(&ws, &[&private_url, shared], &["job.yaml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        both(&out).contains(&format!(
            "the server at {private_url} is left out of the pool: it lacks the node type `img_hue_adjust` that the workflow uses"
        )),
        "{}",
        both(&out)
    );
    let (files, servers) = outputs_by_server(&ws);
    assert_every_output_once(&files);
    assert_eq!(
        servers.keys().collect::<Vec<_>>(),
        [shared],
        "only the shared server ran jobs"
    );
    // Nothing was sent to the private server.
    assert_eq!(private.busy(), Some(0));
    let queue = private
        .get("/api/v1/queue/default/status")
        .expect("queue status");
    assert_eq!(queue["queue"]["total"], 0, "{queue}");
}

#[test]
fn a_pool_run_killed_mid_run_is_finished_on_one_of_its_servers_without_duplicates() {
    let private = PrivateServer::start(None);
    let private_url = private.url();
    let shared = support::server().url();
    let ws = Workspace::new(&POOL_SWEEP.replace("Width: 48", "Width: 384"));
    let mut child = pool_command(&ws, &[&private_url, shared], &["-q", "job.yaml"])
        .spawn()
        .expect("spawn");
    crate::runner::kill_after_downloads(&ws, &mut child, "out", 4);
    let before = ws.journal("out");
    let completed_before = before
        .iter()
        .filter(|e| e["event"] == "finished" && e["status"] == "completed")
        .count();
    assert!(
        completed_before < 24,
        "the run finished before it was killed"
    );

    // The same manifest on the shared server alone: what the private server had is submitted
    // again there; what the shared server had is collected.
    let out = pool_command(&ws, &[shared], &["job.yaml"])
        .output()
        .expect("resume");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let (files, servers) = outputs_by_server(&ws);
    assert_every_output_once(&files);
    assert_each_job_completed_once(&ws);
    assert!(servers.contains_key(shared), "{servers:?}");

    // `status` reads the pool's journal: every job completed, nothing on either server.
    let status = pool_command(&ws, &[], &["status", "--json", "out"])
        .output()
        .expect("status");
    assert_eq!(status.status.code(), Some(0), "{}", both(&status));
    let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(status["completed"], 24, "{status}");
    assert_eq!(status["on_server"], 0, "{status}");
    let on_shared: Vec<String> = journal_images(&ws.journal("out"), true)
        .into_iter()
        .filter(|n| crate::runner::image_exists_at(shared, n))
        .collect();
    assert!(
        on_shared.is_empty(),
        "left on the shared server: {on_shared:?}"
    );
}

/// A fake server's queue for a pool's run: each enqueue (of one session) gets the next item id,
/// and every item fails at once with a model error (the fakes run nothing).
async fn fake_queue(server: &wiremock::MockServer) {
    use std::sync::atomic::{AtomicI64, Ordering};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, Request, ResponseTemplate};

    let next = std::sync::Arc::new(AtomicI64::new(1));
    Mock::given(method("POST"))
        .and(path("/api/v1/queue/default/enqueue_batch"))
        .respond_with(move |request: &Request| {
            let body: Value = serde_json::from_slice(&request.body).expect("enqueue JSON");
            let id = next.fetch_add(1, Ordering::SeqCst);
            ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "queue_id": "default", "enqueued": 1, "requested": 1, "priority": 0,
                "batch": body["batch"], "item_ids": [id],
            }))
        })
        .mount(server)
        .await;
    let ids = |request: &Request| -> Vec<i64> {
        let body: Value = serde_json::from_slice(&request.body).expect("ids JSON");
        body["item_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64)
            .collect()
    };
    Mock::given(method("POST"))
        .and(path("/api/v1/queue/default/item_summaries_by_ids"))
        .respond_with(move |request: &Request| {
            let rows: Vec<Value> = ids(request)
                .into_iter()
                .map(|id| serde_json::json!({"item_id": id, "status": "failed"}))
                .collect();
            ResponseTemplate::new(200).set_body_json(rows)
        })
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/queue/default/items_by_ids"))
        .respond_with(move |request: &Request| {
            let items: Vec<Value> = ids(request)
                .into_iter()
                .map(|id| {
                    serde_json::json!({
                        "item_id": id, "status": "failed", "batch_id": "b",
                        "session_id": format!("s{id}"), "queue_id": "default",
                        "error_type": "ValueError",
                        "error_message": "the fake runs nothing",
                    })
                })
                .collect();
            ResponseTemplate::new(200).set_body_json(items)
        })
        .mount(server)
        .await;
}

/// The model keys a fake server's enqueues carried.
async fn enqueued_keys(server: &wiremock::MockServer) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for request in server.received_requests().await.unwrap_or_default() {
        if !request.url.path().ends_with("/enqueue_batch") {
            continue;
        }
        let text = String::from_utf8_lossy(&request.body).into_owned();
        for key in ["a-main", "a-vae", "b-main", "b-vae", "c-main"] {
            if text.contains(&format!("\"{key}\"")) {
                keys.insert(key.to_owned());
            }
        }
    }
    keys
}

#[tokio::test(flavor = "multi_thread")]
async fn models_given_by_name_are_resolved_on_each_server_of_the_pool_and_one_lacking_them_is_left_out()
 {
    use crate::servers::{FLUX_MODEL, FLUX_VAE, fake_server, flux_models};

    let a = fake_server(flux_models("a", true)).await;
    let b = fake_server(flux_models("b", true)).await;
    let no_vae = fake_server(flux_models("c", false)).await;
    for server in [&a, &b, &no_vae] {
        fake_queue(server).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    fs_err::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/workflows/flux-image-to-image.json"),
        dir.path().join("flux.json"),
    )
    .expect("copy");
    fs_err::write(
        dir.path().join("job.yaml"),
        format!(
            "version: 1\nworkflow: flux.json\ninputs:\n  {FLUX_MODEL}: FLUX\n  {FLUX_VAE}: FLUX\nruns: 4\noutput:\n  dir: out\n"
        ),
    )
    .expect("manifest");
    let output = output_of(pool_command_in(
        dir.path(),
        &[&no_vae.uri(), &a.uri(), &b.uri()],
        &["--poll-only", "--window", "1", "job.yaml"],
    ))
    .await;
    // Every job fails on the fakes, which run nothing.
    assert_eq!(output.status.code(), Some(1), "{}", both(&output));
    assert!(
        both(&output).contains(&format!(
            "the server at {} lacks the model `FLUX` (vae)",
            no_vae.uri()
        )) && both(&output).contains("it is left out of the pool"),
        "{}",
        both(&output)
    );
    // Each server got the keys of its own install; the one lacking the VAE got nothing.
    assert_eq!(
        enqueued_keys(&a).await,
        ["a-main", "a-vae"].map(str::to_owned).into()
    );
    assert_eq!(
        enqueued_keys(&b).await,
        ["b-main", "b-vae"].map(str::to_owned).into()
    );
    assert!(
        enqueued_keys(&no_vae).await.is_empty(),
        "a server left out of the pool was sent jobs"
    );
}

/// A fake server that answers as InvokeAI 6.14.2 with no models, and fails every item.
async fn failing_server() -> wiremock::MockServer {
    let server = crate::servers::fake_base().await;
    fake_queue(&server).await;
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_fails_every_job_leaves_the_pool_and_its_jobs_run_on_the_others() {
    let shared = support::server().url().to_owned();
    let failing = failing_server().await;
    // The source image is on the real server already (the fake takes any name and fails).
    let photo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/images/sunset.png");
    let uploaded = invk_run::client::Client::new(&shared)
        .expect("client")
        .images()
        .upload(&photo, &invk_run::client::UploadOptions::default())
        .await
        .expect("upload");
    let ws = Workspace::new(&POOL_SWEEP.replace(
        "Source image: photos/sunset.png",
        &format!("Source image: {{image_name: {}}}", uploaded.image_name),
    ));
    let output = output_of(pool_command(
        &ws,
        &[&failing.uri(), &shared],
        &["--poll-only", "--window", "4", "job.yaml"],
    ))
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(
        both(&output).contains(&format!(
            "the server at {} leaves the pool: it failed all",
            failing.uri()
        )),
        "{}",
        both(&output)
    );
    let (files, servers) = outputs_by_server(&ws);
    assert_every_output_once(&files);
    assert_eq!(
        servers.keys().collect::<Vec<_>>(),
        [&shared],
        "every output comes from the working server"
    );
    let _ = invk_run::client::Client::new(&shared)
        .expect("client")
        .images()
        .delete_many(&[uploaded.image_name])
        .await;
}

/// A fake server that takes jobs and never runs them, stops answering (503) for a while from
/// one second after its first enqueue, then answers again; it records the items cancelled on it.
struct ComesBack {
    server: wiremock::MockServer,
    cancelled: std::sync::Arc<std::sync::Mutex<Vec<i64>>>,
}

impl ComesBack {
    async fn start(down_for: Duration) -> ComesBack {
        use std::sync::{Arc, Mutex};
        use wiremock::matchers::{method, path, path_regex};
        use wiremock::{Mock, Request, ResponseTemplate};

        let server = crate::servers::fake_base().await;
        let first_enqueue: Arc<Mutex<Option<Instant>>> = Arc::default();
        let enqueued: Arc<Mutex<Vec<i64>>> = Arc::default();
        let (first, items) = (first_enqueue.clone(), enqueued.clone());
        Mock::given(method("POST"))
            .and(path("/api/v1/queue/default/enqueue_batch"))
            .respond_with(move |request: &Request| {
                let body: Value = serde_json::from_slice(&request.body).expect("enqueue JSON");
                first.lock().expect("lock").get_or_insert_with(Instant::now);
                // Sessions: runs times the product of each data group's length.
                let batch = &body["batch"];
                let sessions = batch["runs"].as_u64().unwrap_or(1)
                    * batch["data"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|group| group[0]["items"].as_array().map_or(1, |i| i.len() as u64))
                        .product::<u64>();
                let mut items = items.lock().expect("lock");
                let ids: Vec<i64> = (0..sessions)
                    .map(|_| {
                        let id = i64::try_from(items.len()).expect("small") + 1;
                        items.push(id);
                        id
                    })
                    .collect();
                ResponseTemplate::new(200).set_body_json(serde_json::json!({
                    "queue_id": "default", "enqueued": sessions, "requested": sessions,
                    "priority": 0, "batch": batch, "item_ids": ids,
                }))
            })
            .mount(&server)
            .await;
        let gone = first_enqueue.clone();
        // Pending while it answers; 503 while it is down.
        let answering = move || {
            first_enqueue.lock().expect("lock").is_none_or(|t| {
                !(Duration::from_secs(1)..Duration::from_secs(1) + down_for).contains(&t.elapsed())
            })
        };
        let answering = Arc::new(answering);
        // Its version, once it went away, is never told again: it does not rejoin the pool, and
        // what it holds is taken back at the end of the run.
        Mock::given(method("GET"))
            .and(path("/api/v1/app/version"))
            .respond_with(move |_: &Request| {
                if gone
                    .lock()
                    .expect("lock")
                    .is_some_and(|t| t.elapsed() >= Duration::from_secs(1))
                {
                    ResponseTemplate::new(503)
                } else {
                    ResponseTemplate::new(200)
                        .set_body_json(serde_json::json!({"version": "6.14.2"}))
                }
            })
            .with_priority(1)
            .mount(&server)
            .await;
        for (route, full) in [("item_summaries_by_ids", false), ("items_by_ids", true)] {
            let answering = answering.clone();
            Mock::given(method("POST"))
                .and(path(format!("/api/v1/queue/default/{route}")))
                .respond_with(move |request: &Request| {
                    if !answering() {
                        return ResponseTemplate::new(503);
                    }
                    let body: Value = serde_json::from_slice(&request.body).expect("ids");
                    let rows: Vec<Value> = body["item_ids"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|id| {
                            if full {
                                serde_json::json!({"item_id": id, "status": "pending",
                                    "batch_id": "b", "queue_id": "default"})
                            } else {
                                serde_json::json!({"item_id": id, "status": "pending"})
                            }
                        })
                        .collect();
                    ResponseTemplate::new(200).set_body_json(rows)
                })
                .mount(&server)
                .await;
        }
        let cancelled: Arc<Mutex<Vec<i64>>> = Arc::default();
        let record = cancelled.clone();
        Mock::given(method("PUT"))
            .and(path_regex(r"^/api/v1/queue/default/i/\d+/cancel$"))
            .respond_with(move |request: &Request| {
                let id: i64 = request
                    .url
                    .path()
                    .split('/')
                    .nth(6)
                    .and_then(|s| s.parse().ok())
                    .expect("item id");
                record.lock().expect("lock").push(id);
                ResponseTemplate::new(200).set_body_json(serde_json::json!({
                    "item_id": id, "status": "canceled", "batch_id": "b", "queue_id": "default"
                }))
            })
            .mount(&server)
            .await;
        ComesBack { server, cancelled }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_comes_back_after_leaving_the_pool_gets_its_leftovers_cancelled_and_writes_nothing()
 {
    let shared = support::server().url().to_owned();
    let back = ComesBack::start(Duration::from_secs(6)).await;
    let photo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/images/sunset.png");
    let uploaded = invk_run::client::Client::new(&shared)
        .expect("client")
        .images()
        .upload(&photo, &invk_run::client::UploadOptions::default())
        .await
        .expect("upload");
    // Larger images keep the real server busy after the fake left the pool, so the fake is
    // back before the run ends.
    let ws = Workspace::new(
        &POOL_SWEEP
            .replace(
                "Source image: photos/sunset.png",
                &format!("Source image: {{image_name: {}}}", uploaded.image_name),
            )
            .replace("Width: 48", "Width: 384"),
    );
    let mut cmd = pool_command(
        &ws,
        &[&back.server.uri(), &shared],
        &[
            "--poll-only",
            "--window",
            "4",
            "--server-wait",
            "2",
            "job.yaml",
        ],
    );
    cmd.env("INVK_TEST_NO_RETRY_DELAY", "1");
    let output = output_of(cmd).await;
    assert_eq!(output.status.code(), Some(0), "{}", both(&output));
    assert!(
        both(&output).contains(&format!(
            "the server at {} leaves the pool",
            back.server.uri()
        )),
        "{}",
        both(&output)
    );
    // What it still had when it came back was cancelled at the end of the run.
    let mut cancelled = back.cancelled.lock().expect("lock").clone();
    cancelled.sort_unstable();
    assert_eq!(cancelled, [1, 2, 3, 4], "{}", both(&output));
    // Every output once, all from the real server.
    let (files, by_server) = outputs_by_server(&ws);
    assert_every_output_once(&files);
    assert_eq!(by_server.keys().collect::<Vec<_>>(), [&shared]);
    let _ = invk_run::client::Client::new(&shared)
        .expect("client")
        .images()
        .delete_many(&[uploaded.image_name])
        .await;
}
