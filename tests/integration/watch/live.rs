//! `invk-run watch` against a real InvokeAI server, with the real runner: a burst of twenty
//! manifests (one written slowly, one invalid), and a watcher killed in the middle and started
//! again.
//!
//! The manifests run the example workflow `blur-and-tint` on a small photo: no models needed.
//! Its workflow file and photo are copied into the hot folder and named by relative paths, so
//! the tests also check that a claimed manifest's paths still resolve from the hot folder.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::list;
use crate::support;

/// Long enough for a busy shared server.
const TIMEOUT: Duration = Duration::from_secs(600);

/// A hot folder with the example workflow and a photo in it.
pub(super) fn hot_folder() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hot = tmp.path().join("hot");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    fs_err::create_dir_all(hot.join("flows")).expect("mkdir");
    fs_err::create_dir_all(hot.join("photos")).expect("mkdir");
    fs_err::copy(
        repo.join("examples/workflows/blur-and-tint.json"),
        hot.join("flows/blur-and-tint.json"),
    )
    .expect("copy workflow");
    fs_err::copy(
        repo.join("tests/fixtures/manifests/photos/cat.png"),
        hot.join("photos/cat.png"),
    )
    .expect("copy photo");
    (tmp, hot)
}

/// A manifest for the example workflow.
pub(super) fn manifest(hue: u32, extra: &str) -> String {
    format!(
        "version: 1\nworkflow: flows/blur-and-tint.json\ninputs:\n  Source image: photos/cat.png\n  Hue shift: {hue}\n{extra}"
    )
}

/// A running `invk-run watch --json`, its JSON lines collected as they come.
pub(super) struct Watcher {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
    /// When each event was read, in the same order.
    arrivals: Arc<Mutex<Vec<Instant>>>,
    stderr: Arc<Mutex<String>>,
}

impl Watcher {
    pub(super) fn start(hot: &Path, args: &[&str]) -> Watcher {
        Watcher::start_on(support::server().url(), hot, args)
    }

    /// As [`Watcher::start`], on the server at `url`.
    pub(super) fn start_on(url: &str, hot: &Path, args: &[&str]) -> Watcher {
        let mut child = support::invk_run()
            .arg("watch")
            .arg(hot)
            .args(["--json", "--server", url])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start invk-run watch");
        let events = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = events.clone();
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let times = arrivals.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                let mut sink = sink.lock().expect("lock");
                times.lock().expect("lock").push(Instant::now());
                sink.push(value);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr");
        let text = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut text = text.lock().expect("lock");
                text.push_str(&line);
                text.push('\n');
            }
        });
        Watcher {
            child,
            events,
            arrivals,
            stderr,
        }
    }

    pub(super) fn events(&self) -> Vec<Value> {
        self.events.lock().expect("lock").clone()
    }

    /// The events with the moment each was read.
    pub(super) fn events_at(&self) -> Vec<(Instant, Value)> {
        let events = self.events.lock().expect("lock");
        let arrivals = self.arrivals.lock().expect("lock");
        arrivals
            .iter()
            .copied()
            .zip(events.iter().cloned())
            .collect()
    }

    /// Waits until `done` says so, failing the test after [`TIMEOUT`] or if the watcher ends.
    pub(super) fn wait_until(&mut self, what: &str, done: impl Fn(&[Value]) -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        while !done(&self.events()) {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "the watcher ended ({status}) before {what}; stderr:\n{}",
                    self.stderr.lock().expect("lock")
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; events: {:#?}",
                self.events()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Ctrl-C; returns the exit code and every event.
    pub(super) fn interrupt(mut self) -> (Option<i32>, Vec<Value>) {
        self.signal("-INT");
        let status = self.child.wait().expect("wait");
        // Let the reader thread take the last lines.
        std::thread::sleep(Duration::from_millis(200));
        (status.code(), self.events())
    }

    /// `kill -9`: no clean-up at all.
    pub(super) fn kill(mut self) -> Vec<Value> {
        self.signal("-KILL");
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(200));
        self.events()
    }
}

pub(super) fn count(events: &[Value], event: &str) -> usize {
    events.iter().filter(|e| e["event"] == event).count()
}

/// How many times each manifest had `event`.
pub(super) fn per_manifest(events: &[Value], event: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in events.iter().filter(|e| e["event"] == event) {
        *counts
            .entry(e["manifest"].as_str().expect("manifest").to_owned())
            .or_default() += 1;
    }
    counts
}

pub(super) fn reports(dir: &Path, suffix: &str) -> usize {
    list(dir).iter().filter(|f| f.ends_with(suffix)).count()
}

/// Enqueue requests the run's journal records for a manifest's output folder.
pub(super) fn journaled_enqueues(output_dir: &Path) -> usize {
    let journal =
        fs_err::read_to_string(output_dir.join(".invk-run/journal.jsonl")).expect("journal");
    journal
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["event"] == "enqueue_intent")
        .count()
}

#[test]
fn live_a_burst_of_twenty_runs_each_once_on_the_real_server() {
    let (_tmp, hot) = hot_folder();
    let mut watcher = Watcher::start(&hot, &["--settle-ms", "1500", "-j", "3"]);
    watcher.wait_until("the watcher started", |e| count(e, "watch_started") == 1);

    let valid: Vec<String> = (0..18).map(|i| format!("burst-{i:02}.yaml")).collect();
    for (i, name) in valid.iter().enumerate() {
        fs_err::write(
            hot.join(name),
            manifest(u32::try_from(i).expect("small") * 20, ""),
        )
        .expect("write");
    }
    fs_err::write(hot.join("bad.yaml"), manifest(0, "  Hue shfit: 30\n")).expect("write");
    // The slow one: its last piece sends its outputs elsewhere, so a manifest read before it
    // was complete would put them in the wrong folder (or fail).
    let slow = manifest(45, "output:\n  dir: out/slow-complete\n");
    let mut file = fs_err::File::create(hot.join("slow.yaml")).expect("create");
    for piece in slow.as_bytes().chunks(slow.len().div_ceil(8)) {
        file.write_all(piece).expect("write");
        file.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(file);

    let (done, failed) = (hot.join("done"), hot.join("failed"));
    watcher.wait_until("19 done and 1 failed", |_| {
        reports(&done, ".report.json") == 19 && reports(&failed, ".error.txt") == 1
    });
    let (code, events) = watcher.interrupt();
    assert_eq!(code, Some(130));

    // Each valid manifest ran once: planned once, enqueued once, filed once.
    let mut expected: Vec<String> = valid.clone();
    expected.push("slow.yaml".into());
    expected.sort();
    let once: BTreeMap<String, usize> = expected.iter().map(|n| (n.clone(), 1)).collect();
    assert_eq!(per_manifest(&events, "watch_done"), once);
    assert_eq!(
        per_manifest(&events, "enqueued"),
        once,
        "each enqueued exactly once"
    );
    let filed: Vec<String> = list(&done)
        .into_iter()
        .filter(|f| f.ends_with(".yaml"))
        .collect();
    assert_eq!(filed, expected, "done/ holds each once");

    // With their outputs.
    for name in &expected {
        let report: Value = serde_json::from_slice(
            &fs_err::read(done.join(format!("{name}.report.json"))).expect("report"),
        )
        .expect("json");
        assert_eq!(report["verdict"], "done", "{name}");
        let output_dir = PathBuf::from(
            report["outcome"]["output_dir"]
                .as_str()
                .expect("output dir"),
        );
        let files = report["outcome"]["files"].as_array().expect("files");
        assert_eq!(files.len(), 2, "{name}: {files:?}");
        for file in files {
            assert!(
                output_dir.join(file.as_str().expect("file")).is_file(),
                "{name}: {file}"
            );
        }
        assert_eq!(journaled_enqueues(&output_dir), 1, "{name}");
    }
    // The slow one was read whole.
    assert_eq!(
        fs_err::read_to_string(done.join("slow.yaml")).expect("slow"),
        slow
    );
    assert!(
        hot.join("out/slow-complete/0-Tinted-0.png").is_file(),
        "the slow manifest's outputs"
    );
    assert!(!hot.join("out/slow").exists());

    // The invalid one is in failed/ with a report naming its error; it sent nothing.
    assert_eq!(
        list(&failed),
        ["bad.yaml", "bad.yaml.error.txt", "bad.yaml.report.json"]
    );
    let error = fs_err::read_to_string(failed.join("bad.yaml.error.txt")).expect("error report");
    assert!(
        error.starts_with("bad.yaml: invalid manifest, nothing was sent\n"),
        "{error}"
    );
    assert!(
        error.contains("Hue shfit"),
        "the error names the bad input: {error}"
    );
    assert_eq!(per_manifest(&events, "planned").get("bad.yaml"), None);

    assert_eq!(
        list(&hot),
        Vec::<String>::new(),
        "no manifest left in the hot folder"
    );
    assert_eq!(list(&hot.join("processing")), Vec::<String>::new());
}

#[test]
fn live_a_killed_watcher_restarted_completes_the_rest_with_nothing_twice() {
    let (_tmp, hot) = hot_folder();
    let names: Vec<String> = (0..6).map(|i| format!("restart-{i}.yaml")).collect();
    for (i, name) in names.iter().enumerate() {
        fs_err::write(
            hot.join(name),
            manifest(u32::try_from(i).expect("small") * 50, ""),
        )
        .expect("write");
    }

    // Killed (kill -9) as soon as two manifests have been enqueued.
    let mut first = Watcher::start(&hot, &["--settle-ms", "300", "-j", "2"]);
    first.wait_until("two enqueues", |e| count(e, "enqueued") >= 2);
    let first_events = first.kill();
    let left = list(&hot.join("processing"));
    assert!(!left.is_empty(), "the kill left manifests in processing/");

    // Started again: it resumes what was left, then claims the rest.
    let mut second = Watcher::start(&hot, &["--settle-ms", "300", "-j", "2"]);
    let done = hot.join("done");
    second.wait_until("all six done", |_| reports(&done, ".report.json") == 6);
    let (code, second_events) = second.interrupt();
    assert_eq!(code, Some(130));

    let resumed: Vec<String> = per_manifest(&second_events, "watch_resumed")
        .into_keys()
        .collect();
    assert_eq!(resumed, left, "what was left in processing/ is resumed");
    let filed: Vec<String> = list(&done)
        .into_iter()
        .filter(|f| f.ends_with(".yaml"))
        .collect();
    assert_eq!(filed, names, "each filed once");

    // Nothing was submitted twice: one enqueue per manifest over both watchers, and one in
    // each manifest's journal.
    let mut enqueued = per_manifest(&first_events, "enqueued");
    for (name, n) in per_manifest(&second_events, "enqueued") {
        *enqueued.entry(name).or_default() += n;
    }
    let once: BTreeMap<String, usize> = names.iter().map(|n| (n.clone(), 1)).collect();
    assert_eq!(enqueued, once, "enqueues per manifest over both watchers");
    for name in &names {
        let stem = name.trim_end_matches(".yaml");
        let output_dir = hot.join("out").join(stem);
        assert_eq!(journaled_enqueues(&output_dir), 1, "{name}");
        assert!(
            output_dir.join("0-Tinted-0.png").is_file(),
            "{name} has its outputs"
        );
        let report: Value = serde_json::from_slice(
            &fs_err::read(done.join(format!("{name}.report.json"))).expect("report"),
        )
        .expect("json");
        assert_eq!(report["resumed"], left.contains(name), "{name}");
    }
    assert_eq!(list(&hot.join("processing")), Vec::<String>::new());
}

#[test]
fn live_a_hot_folder_spreads_its_manifests_over_a_pool_of_two_servers() {
    let private = support::private::PrivateServer::start(None);
    let private_url = private.url();
    let (_tmp, hot) = hot_folder();
    let mut watcher = Watcher::start(
        &hot,
        &["--server", &private_url, "--window", "4", "-j", "2"],
    );
    watcher.wait_until("the watcher started", |e| count(e, "watch_started") == 1);
    let names: Vec<String> = (0..3).map(|i| format!("pool-{i}.yaml")).collect();
    for (i, name) in names.iter().enumerate() {
        fs_err::write(
            hot.join(name),
            manifest(u32::try_from(i).expect("small") * 90, "runs: 8\n"),
        )
        .expect("write");
    }
    let done = hot.join("done");
    watcher.wait_until("3 done", |_| reports(&done, ".report.json") == 3);
    let (code, _) = watcher.interrupt();
    assert_eq!(code, Some(130));

    // Every manifest completed its 8 jobs, and both servers ran some of them.
    let mut servers: BTreeMap<String, usize> = BTreeMap::new();
    for name in &names {
        let report: Value = serde_json::from_slice(
            &fs_err::read(done.join(format!("{name}.report.json"))).expect("report"),
        )
        .expect("json");
        assert_eq!(report["verdict"], "done", "{name}: {report}");
        assert_eq!(report["outcome"]["completed"], 8, "{name}: {report}");
        let output_dir = PathBuf::from(report["outcome"]["output_dir"].as_str().expect("dir"));
        let files = report["outcome"]["files"].as_array().expect("files");
        assert_eq!(files.len(), 16, "{name}: {files:?}");
        for file in files {
            let sidecar = output_dir.join(format!("{}.json", file.as_str().expect("file")));
            let sidecar: Value =
                serde_json::from_slice(&fs_err::read(&sidecar).expect("sidecar")).expect("json");
            *servers
                .entry(sidecar["server"].as_str().expect("server").to_owned())
                .or_default() += 1;
        }
    }
    assert_eq!(servers.len(), 2, "{servers:?}");
    assert!(servers.contains_key(&private_url), "{servers:?}");
}
