//! Notifications (`notify:`, `--notify`, `--notify-command`), end to end on the real server with
//! a local HTTP receiver: what a run-end POST says, the same JSON on a command's stdin, a
//! receiver that fails or hangs costing at most its bound without changing the run's exit
//! status, and secrets written in a manifest refused before anything is sent.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::runner::{Workspace, text};
use crate::support;

/// Two jobs: the photo completes, the image the server does not have fails there.
const ONE_FAILS: &str = r"
version: 1
workflow: blur-and-tint.json
inputs:
  Width: 48
sweep:
  matrix:
    Source image: [photos/sunset.png, {image_name: no-such-image.png}]
output:
  dir: out
  gallery: false
";

/// One job that completes.
const ALL_DONE: &str = r"
version: 1
workflow: blur-and-tint.json
inputs:
  Width: 48
  Source image: photos/sunset.png
output:
  dir: out
  gallery: false
";

/// A receiver on this machine that answers every POST with `answer`.
struct Receiver {
    runtime: tokio::runtime::Runtime,
    server: MockServer,
}

impl Receiver {
    fn start(answer: ResponseTemplate) -> Receiver {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime.block_on(async {
            let server = MockServer::start().await;
            Mock::given(method("POST"))
                .respond_with(answer)
                .mount(&server)
                .await;
            server
        });
        Receiver { runtime, server }
    }

    fn url(&self) -> String {
        format!("{}/hook", self.server.uri())
    }

    /// The bodies (JSON) and `Authorization` headers of the POSTs received.
    fn received(&self) -> Vec<(Value, Option<String>)> {
        self.runtime
            .block_on(self.server.received_requests())
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                let body = serde_json::from_slice(&r.body).expect("a JSON body");
                let auth = r
                    .headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                (body, auth)
            })
            .collect()
    }
}

/// The manifest with `notify` appended.
fn with_notify(manifest: &str, notify: &str) -> String {
    format!("{manifest}notify:\n{notify}")
}

/// Runs `invk-run --json ARGS` in `ws` and measures how long it takes after the run reports
/// `finished` (the notifications' share); returns the output, that time and the JSON lines.
fn run_timed(ws: &Workspace, args: &[&str]) -> (std::process::ExitStatus, Duration, Vec<Value>) {
    let mut args = args.to_vec();
    args.insert(0, "--json");
    let mut child = ws
        .command(support::server().url(), &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn invk-run");
    let stdout = child.stdout.take().expect("stdout");
    let mut finished_at = None;
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line: Value = serde_json::from_str(&line.expect("a line")).expect("a JSON line");
        if line["event"] == "finished" {
            finished_at = Some(Instant::now());
        }
        lines.push(line);
    }
    let status = child.wait().expect("wait");
    let after = finished_at.expect("a finished event").elapsed();
    (status, after, lines)
}

fn warnings(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["event"] == "warning")
        .filter_map(|l| l["message"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_run_end_post_carries_the_summary_and_each_failed_job_is_posted() {
    let receiver = Receiver::start(ResponseTemplate::new(204));
    let ws = Workspace::new(&with_notify(
        ONE_FAILS,
        &format!(
            "  url: {}\n  on: [done, failed, job_failed]\n  headers_env: {{Authorization: HOOK_AUTH}}\n",
            receiver.url()
        ),
    ));
    let out = ws
        .command(support::server().url(), &["job.yaml"])
        .env("HOOK_AUTH", "Bearer test-token")
        .output()
        .expect("run");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("could not notify"), "{stderr}");

    let received = receiver.received();
    assert_eq!(received.len(), 2, "{received:?}");
    for (_, auth) in &received {
        assert_eq!(auth.as_deref(), Some("Bearer test-token"));
    }
    let out_dir = ws.path("out").canonicalize().expect("out");
    let job_failed = &received
        .iter()
        .find(|(b, _)| b["event"] == "job_failed")
        .expect("a job_failed POST")
        .0;
    let end = &received
        .iter()
        .find(|(b, _)| b["event"] == "run_finished")
        .expect("a run_finished POST")
        .0;
    assert_eq!(end["status"], "failed");
    assert_eq!(end["manifest"], "job.yaml");
    let posted_dir = std::path::Path::new(end["output_dir"].as_str().expect("output_dir"));
    assert!(posted_dir.is_absolute(), "{posted_dir:?}");
    assert_eq!(posted_dir.canonicalize().expect("posted dir"), out_dir);
    assert_eq!(
        (
            &end["jobs"],
            &end["completed"],
            &end["failed"],
            &end["not_run"],
            &end["interrupted"]
        ),
        (
            &Value::from(2),
            &Value::from(1),
            &Value::from(1),
            &Value::from(0),
            &Value::from(false)
        )
    );
    assert!(end["seconds"].as_f64().is_some_and(|s| s > 0.0));
    assert!(end.get("error").is_none(), "{end}");
    let failed = end["failed_jobs"].as_array().expect("failed_jobs");
    assert_eq!(failed.len(), 1);
    // The error is the server's, as the run's own summary records it.
    let runs = fs_err::read_to_string(ws.path("out/runs.jsonl")).expect("runs.jsonl");
    let recorded = runs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["status"] == "failed")
        .expect("a failed job in runs.jsonl");
    assert_eq!(failed[0]["error"], recorded["error"]);
    assert!(
        failed[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("Image record not found")),
        "{failed:?}"
    );
    assert_eq!(failed[0]["item_id"], recorded["item_id"]);
    assert_eq!(job_failed["job"], failed[0]["job"]);
    assert_eq!(job_failed["error"], failed[0]["error"]);
    assert_eq!(job_failed["output_dir"], end["output_dir"]);
}

#[test]
fn the_command_form_reads_the_same_json_on_its_stdin() {
    let receiver = Receiver::start(ResponseTemplate::new(200));
    let ws = Workspace::new(&with_notify(
        ALL_DONE,
        &format!(
            "  - url: {}\n  - command: [sh, -c, 'cat > notified.json']\n",
            receiver.url()
        ),
    ));
    let out = ws
        .command(support::server().url(), &["job.yaml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let from_command: Value = serde_json::from_str(
        &fs_err::read_to_string(ws.path("notified.json")).expect("the command wrote its stdin"),
    )
    .expect("JSON on stdin");
    assert_eq!(from_command["event"], "run_finished");
    assert_eq!(from_command["status"], "done");
    assert_eq!(from_command["completed"], 1);
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].0, from_command);
}

#[test]
fn a_receiver_that_answers_500_costs_at_most_its_bound_and_the_run_still_succeeds() {
    let receiver = Receiver::start(ResponseTemplate::new(500));
    let ws = Workspace::new(ALL_DONE);
    let bound = 2.0;
    let (status, after, lines) = run_timed(
        &ws,
        &[
            "--notify",
            &receiver.url(),
            "--notify-timeout",
            "2",
            "job.yaml",
        ],
    );
    assert_eq!(status.code(), Some(0), "{lines:?}");
    assert!(
        after.as_secs_f64() < bound + 1.5,
        "the notification took {after:?}, its bound is {bound}s"
    );
    // Retried, then given up with a warning that names the answer.
    assert!(receiver.received().len() >= 2, "no retry");
    let warnings = warnings(&lines);
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("could not notify") && w.contains("500")),
        "{warnings:?}"
    );
}

#[test]
fn a_receiver_that_hangs_costs_at_most_its_bound_and_the_run_exits_as_it_would_have() {
    let receiver = Receiver::start(ResponseTemplate::new(200).set_delay(Duration::from_secs(120)));
    let ws = Workspace::new(&with_notify(
        ONE_FAILS,
        &format!("  url: {}\n  timeout: 2\n", receiver.url()),
    ));
    let bound = 2.0;
    let (status, after, lines) = run_timed(&ws, &["job.yaml"]);
    assert_eq!(status.code(), Some(1), "{lines:?}");
    assert!(
        after.as_secs_f64() >= bound - 0.1 && after.as_secs_f64() < bound + 1.5,
        "the notification took {after:?}, its bound is {bound}s"
    );
    let warnings = warnings(&lines);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("could not notify") && w.contains("no answer within 2s")),
        "{warnings:?}"
    );
}

/// A notification with a token written in its header.
const SECRET_HEADER: &str = r"
version: 1
workflow: blur-and-tint.json
inputs:
  Source image: photos/sunset.png
notify:
  url: https://hooks.example.com/invk-run
  headers:
    Authorization: Bearer 0123456789abcdef
";

#[test]
fn validate_refuses_a_secret_written_in_a_notification_with_its_place() {
    let ws = Workspace::new(SECRET_HEADER);
    let out = support::invk_run()
        .current_dir(ws.dir.path())
        .args(["validate", "job.yaml"])
        .output()
        .expect("validate");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("job.yaml:9:20"), "{stderr}");
    assert!(stderr.contains("headers_env"), "{stderr}");
    insta::assert_snapshot!(stderr);
}

#[test]
fn a_run_refuses_a_secret_written_in_a_notification_before_anything_is_sent() {
    let ws = Workspace::new(SECRET_HEADER);
    // Port 1 has no server: a run that tried to reach one would fail with exit 1.
    let out = ws.run_on("http://127.0.0.1:1", &["job.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("job.yaml:9:20"));
}

#[test]
fn the_command_line_refuses_a_notification_url_with_a_password() {
    let ws = Workspace::new(ALL_DONE);
    let out = ws.run_on(
        "http://127.0.0.1:1",
        &[
            "--notify",
            "https://bot:hunter2@hooks.example.com/x",
            "job.yaml",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("password"), "{stderr}");
    assert!(stderr.contains("url_env"), "{stderr}");
}

#[test]
fn a_manifest_dropped_into_a_hot_folder_notifies_as_its_notify_says() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hot = tmp.path().join("hot");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    fs_err::create_dir_all(hot.join("photos")).expect("mkdir");
    fs_err::copy(
        repo.join("examples/workflows/blur-and-tint.json"),
        hot.join("blur-and-tint.json"),
    )
    .expect("copy workflow");
    fs_err::copy(
        repo.join("examples/images/sunset.png"),
        hot.join("photos/sunset.png"),
    )
    .expect("copy photo");
    let notified = tmp.path().join("notified.json");
    let mut watcher = support::invk_run()
        .arg("watch")
        .arg(&hot)
        .args(["--json", "--server", support::server().url()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start invk-run watch");
    // Written elsewhere, then moved in whole.
    let manifest = with_notify(
        ALL_DONE,
        &format!("  command: [sh, -c, 'cat > {}']\n", notified.display()),
    );
    fs_err::write(tmp.path().join("tint.yaml"), manifest).expect("write");
    fs_err::rename(tmp.path().join("tint.yaml"), hot.join("tint.yaml")).expect("move in");
    let started = Instant::now();
    let summary = loop {
        let text = fs_err::read_to_string(&notified).unwrap_or_default();
        if let Ok(summary) = serde_json::from_str::<Value>(&text) {
            break summary;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no notification from the hot folder's run"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert_eq!(summary["event"], "run_finished");
    assert_eq!(summary["status"], "done");
    assert_eq!(summary["completed"], 1);
    assert!(
        summary["manifest"]
            .as_str()
            .is_some_and(|m| m.contains("tint.yaml")),
        "{summary}"
    );
}
