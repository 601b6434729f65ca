//! Compound faults on real servers, each the focused form of a failure a soak run showed:
//! - an output the server's invocation cache hands to many sessions, deleted from the server
//!   (by the cleanup of saved outputs) while sessions of the run that were handed it were not
//!   collected yet, then collected by a runner started again after a `kill -9`: their download
//!   got 404 and their jobs failed;
//! - in a pool, an item that a server restart cancelled while the runner itself was down was
//!   reported failed ("canceled") by the runner started again, instead of being sent again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::runner::{
    Workspace, assert_server_keeps_nothing_at, files_under, image_exists_at, is_output_png,
    journal_images, text,
};
use crate::support;
use crate::support::private::PrivateServer;

/// The bits of a journaled item id below its server's number.
const ID_BITS: u32 = 40;

/// How many jobs the shared-output sweep has.
const SHARED_JOBS: usize = 40;

/// How many copies of the `Tinted` output each job saves besides it.
const COPIES: usize = 5;

/// `blur-and-tint` whose `Blurred` output node may be answered from the server's invocation
/// cache: its input (the blur of the shrunk photo, one radius for every job) is the same for
/// every job, so every session is handed the same saved image. The tinted image is also saved
/// [`COPIES`] more times (`Copy 1`, ...), so that the run's cleanup passes start after a few
/// jobs, with many more of them still to write.
fn shared_blur_workflow(dir: &Path) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workflows/blur-and-tint.json");
    let mut workflow: Value =
        serde_json::from_str(&fs_err::read_to_string(path).expect("workflow")).expect("JSON");
    let nodes = workflow["nodes"].as_array_mut().expect("nodes");
    let blurred = nodes
        .iter_mut()
        .find(|n| n["data"]["label"] == "Blurred")
        .expect("the Blurred node");
    blurred["data"]["useCache"] = Value::Bool(true);
    let tinted = nodes
        .iter()
        .find(|n| n["data"]["label"] == "Tinted")
        .cloned()
        .expect("the Tinted node");
    let edges = workflow["edges"].as_array().expect("edges");
    let into_tinted = edges
        .iter()
        .find(|e| e["target"] == tinted["id"])
        .cloned()
        .expect("the Tinted node's edge");
    let mut copies = Vec::new();
    let mut copy_edges = Vec::new();
    for n in 1..=COPIES {
        let id = format!("0c0b1e5{n}-0000-4000-8000-000000000000");
        let mut copy = tinted.clone();
        copy["id"] = Value::from(id.clone());
        copy["data"]["id"] = Value::from(id.clone());
        copy["data"]["label"] = Value::from(format!("Copy {n}"));
        copy["data"]["inputs"]["board"]["label"] = Value::from(format!("Copy {n} board"));
        copies.push(copy);
        let mut edge = into_tinted.clone();
        edge["id"] = Value::from(format!("edge-to-{id}"));
        edge["target"] = Value::from(id);
        copy_edges.push(edge);
    }
    workflow["nodes"]
        .as_array_mut()
        .expect("nodes")
        .extend(copies);
    workflow["edges"]
        .as_array_mut()
        .expect("edges")
        .extend(copy_edges);
    fs_err::write(
        dir.join("shared-blur.json"),
        serde_json::to_string_pretty(&workflow).expect("JSON"),
    )
    .expect("write workflow");
}

/// The labels of the shared-output workflow's outputs.
fn shared_labels() -> Vec<String> {
    let mut labels = vec!["Blurred".to_owned(), "Tinted".to_owned()];
    labels.extend((1..=COPIES).map(|n| format!("Copy {n}")));
    labels
}

/// A hue sweep of `SHARED_JOBS` jobs over one blur radius: every job's `Blurred` output is the
/// same cached image.
fn shared_sweep() -> String {
    let hues: Vec<String> = (0..SHARED_JOBS).map(|h| (h * 6).to_string()).collect();
    format!(
        r#"
version: 1
workflow: shared-blur.json
inputs:
  Source image: photos/sunset.png
  Width: 48
  Blur radius: 2
sweep:
  matrix:
    Hue shift: [{}]
output:
  dir: out
  name: "hue-{{{{ sweep['Hue shift'] }}}}-{{{{ node.label }}}}"
"#,
        hues.join(", ")
    )
}

/// Waits until `done` says so, or fails after `secs` with `what`.
fn wait_until(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `kill -9`, as a crash would.
fn kill(mut child: Child) {
    child.kill().expect("kill -9");
    child.wait().expect("reap");
}

/// The journal's entries of `event`.
fn entries<'j>(journal: &'j [Value], event: &str) -> impl Iterator<Item = &'j Value> {
    journal.iter().filter(move |e| e["event"] == event)
}

/// Every job completed once, per the journal, and none ended failed or cancelled.
fn assert_each_job_completed_once(journal: &[Value], jobs: usize) {
    let mut completed: BTreeMap<String, usize> = BTreeMap::new();
    for e in entries(journal, "finished") {
        assert_eq!(e["status"], "completed", "a session did not complete: {e}");
        *completed
            .entry(e["job"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    assert_eq!(completed.len(), jobs, "{completed:#?}");
    assert!(
        completed.values().all(|&n| n == 1),
        "a job completed twice: {completed:#?}"
    );
}

/// The output files (sidecars and the run's own files aside): each expected one, once.
fn assert_every_file_once(ws: &Workspace, expected: &BTreeSet<String>) {
    let files: BTreeSet<String> = files_under(&ws.path("out"))
        .into_iter()
        .filter(|f| is_output_png(f))
        .collect();
    assert_eq!(
        &files,
        expected,
        "missing: {:?}\nextra: {:?}",
        expected.difference(&files).collect::<Vec<_>>(),
        files.difference(expected).collect::<Vec<_>>()
    );
}

fn report(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

#[test]
fn a_cached_output_shared_by_many_sessions_is_not_deleted_while_the_run_can_still_receive_it() {
    let server = PrivateServer::start(None);
    let url = server.url();
    let ws = Workspace::new(&shared_sweep());
    shared_blur_workflow(ws.dir.path());
    let args = ["--poll-only", "--window", "64", "job.yaml"];

    // The first runner sends every job, collects the first (whose session made the shared
    // image) and is killed: the server runs the others meanwhile, and every session is handed
    // the same `Blurred` image.
    let first = ws.command(&url, &args).spawn().expect("spawn");
    wait_until(300, "the first job", || {
        entries(&ws.journal("out"), "finished").next().is_some()
    });
    kill(first);
    wait_until(600, "the server to run every job", || {
        server.busy() == Some(0)
    });

    // The second runner collects them all at once; it is killed as soon as its cleanup deleted
    // saved outputs from the server, with sessions handed the shared image not collected yet.
    let second = ws.command(&url, &args).spawn().expect("spawn");
    wait_until(300, "a cleanup pass of the resumed run", || {
        entries(&ws.journal("out"), "deleted").next().is_some()
    });
    kill(second);
    let journal = ws.journal("out");
    let collected = entries(&journal, "finished").count();
    assert!(
        collected < SHARED_JOBS,
        "every job was collected before the kill: the test proves nothing"
    );
    // Its download tasks run beside its loop, which journals them: on this machine they have
    // mostly written the other jobs' files by the time the cleanup pass goes, and the next run
    // takes such a file (found by its sidecar) without downloading it. Those not journaled are
    // removed, as if the kill had come before they were written (as it does when downloads are
    // slower than here): the next run must download them.
    let journaled: BTreeSet<String> = entries(&journal, "downloaded")
        .filter_map(|e| e["file"].as_str().map(str::to_owned))
        .collect();
    for file in files_under(&ws.path("out")) {
        let output = file.strip_suffix(".json").unwrap_or(&file);
        if !file.starts_with(".invk-run") && !journaled.contains(output) {
            fs_err::remove_file(ws.path(&format!("out/{file}"))).expect("remove");
        }
    }

    // The third runner collects the rest: the shared image is still there for them.
    let third = ws.run_on(&url, &args);
    let stderr = text(&third.stderr);
    assert_eq!(third.status.code(), Some(0), "{}", report(&third));
    assert!(!stderr.contains("404"), "{stderr}");
    let journal = ws.journal("out");
    assert_each_job_completed_once(&journal, SHARED_JOBS);
    let expected: BTreeSet<String> = (0..SHARED_JOBS)
        .flat_map(|h| {
            shared_labels()
                .into_iter()
                .map(move |label| format!("hue-{}-{label}.png", h * 6))
        })
        .collect();
    assert_every_file_once(&ws, &expected);
    // The jobs were handed one `Blurred` image (or a few, made again after one was deleted).
    let blurred: BTreeSet<&str> = entries(&journal, "downloaded")
        .filter(|e| {
            e["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("Blurred.png"))
        })
        .filter_map(|e| e["image_name"].as_str())
        .collect();
    assert!(
        blurred.len() < SHARED_JOBS / 4,
        "the server's cache shared no output: the test proves nothing ({} images)",
        blurred.len()
    );
    assert_server_keeps_nothing_at(&url, &journal);
    assert_eq!(server.busy(), Some(0), "items left on the server");
}

#[test]
fn an_item_a_server_restart_cancelled_while_the_runner_was_down_is_sent_again_in_a_pool() {
    let shared = support::server().url().to_owned();
    let mut private = PrivateServer::start(None);
    let url = private.url();
    // 24 jobs of two outputs each, large enough that a server is running one most of the time.
    let ws = Workspace::new(&crate::pool::POOL_SWEEP.replace("Width: 48", "Width: 1024"));
    let command = || {
        let mut cmd = support::invk_run();
        cmd.current_dir(ws.dir.path());
        for server in [&url, &shared] {
            cmd.arg("--server").arg(server);
        }
        cmd.args(["--window", "4", "job.yaml"]);
        cmd
    };

    // The runner and the private server are killed while the private server runs an item of
    // the run (and has more waiting); the server starts again first: at start-up it cancels
    // what it was running. The item seen running may end before the kill lands (a loaded
    // machine): then the restart cancelled nothing, and the runner is started and killed again.
    let mut cancelled: Vec<i64> = Vec::new();
    for _attempt in 0..3 {
        let runner = command()
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        wait_until(
            600,
            "an item of the run running on the private server",
            || {
                entries(&ws.journal("out"), "finished").count() >= 2
                    && private.in_progress().unwrap_or_default() >= 1
                    && private.busy().unwrap_or_default() >= 2
            },
        );
        kill(runner);
        private.kill();
        private.restart();
        let journal = ws.journal("out");
        let number = entries(&journal, "server")
            .find(|e| e["url"] == url.as_str())
            .and_then(|e| e["number"].as_i64())
            .expect("the private server's number");
        let on_private: BTreeSet<i64> = entries(&journal, "enqueued")
            .flat_map(|e| e["item_ids"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_i64())
            .filter(|v| v >> ID_BITS == number)
            .collect();
        cancelled = on_private
            .iter()
            .copied()
            .filter(|item| {
                let id = item & ((1 << ID_BITS) - 1);
                private
                    .get(&format!("/api/v1/queue/default/i/{id}"))
                    .is_some_and(|item| item["status"] == "canceled")
            })
            .collect();
        if !cancelled.is_empty() {
            break;
        }
    }
    assert!(
        !cancelled.is_empty(),
        "the restart cancelled no item of the run in 3 tries: the test proves nothing"
    );

    // The runner started again resumes: the cancelled item's job goes again, in the same run.
    let out = command().output().expect("run");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}", report(&out));
    assert!(!stderr.contains("failed: canceled"), "{stderr}");
    let journal = ws.journal("out");
    assert_each_job_completed_once(&journal, 24);
    let withdrawn: BTreeSet<i64> = entries(&journal, "withdrawn")
        .filter_map(|e| e["item_id"].as_i64())
        .collect();
    for item in &cancelled {
        assert!(
            withdrawn.contains(item),
            "item {}, cancelled by the restart, was not taken back",
            item & ((1 << ID_BITS) - 1)
        );
    }
    let expected: BTreeSet<String> = [0, 90, 180, 270]
        .iter()
        .flat_map(|hue| {
            (1..=6).flat_map(move |blur| {
                ["Blurred", "Tinted"].map(|label| format!("hue-{hue}/blur-{blur}-{label}.png"))
            })
        })
        .collect();
    assert_every_file_once(&ws, &expected);
    for server in [&url, &shared] {
        let left: Vec<&Value> = journal
            .iter()
            .filter(|e| {
                journal_images(std::slice::from_ref(*e), true)
                    .iter()
                    .any(|name| image_exists_at(server, name))
            })
            .collect();
        assert!(left.is_empty(), "left on {server}: {left:#?}");
    }
    assert_server_keeps_nothing_at(&url, &journal);
    assert_eq!(private.busy(), Some(0), "items left on the private server");
}
