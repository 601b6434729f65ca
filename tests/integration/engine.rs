//! The streaming engine on real servers: the window, a full queue, a server killed and started
//! again in the middle of a run, and Ctrl-C.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::runner::{
    SWEEP, Workspace, assert_server_keeps_nothing_at, files_under, is_output_png, text,
};
use crate::support;
use crate::support::private::PrivateServer;

/// The runner's sweep with six hues: 18 jobs, 36 files.
fn sweep_18() -> String {
    SWEEP.replace("[0, 90, 180, 270]", "[0, 60, 120, 180, 240, 300]")
}

/// The PNG files under the run's output folder.
fn pngs(ws: &Workspace) -> Vec<String> {
    files_under(&ws.path("out/job"))
        .into_iter()
        .filter(|f| is_output_png(f))
        .collect()
}

/// Checks a finished run: every expected file exactly once, each job finished once.
fn assert_each_job_done_once(ws: &Workspace, jobs: usize) {
    let files = pngs(ws);
    assert_eq!(files.len(), jobs * 2, "{files:#?}");
    assert!(files.iter().all(|f| !f.contains("-1.png")), "{files:#?}");
    let mut completed: BTreeMap<String, usize> = BTreeMap::new();
    for e in ws.journal("out/job") {
        if e["event"] == "finished" && e["status"] == "completed" {
            *completed
                .entry(e["job"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
    }
    assert_eq!(completed.len(), jobs, "{completed:#?}");
    assert!(completed.values().all(|&n| n == 1), "{completed:#?}");
}

/// `invk-run ARGS...` in the workspace (a command with its own options, e.g. `status`).
fn command(ws: &Workspace, args: &[&str]) -> std::process::Output {
    support::invk_run()
        .current_dir(ws.dir.path())
        .args(args)
        .output()
        .expect("run invk-run")
}

/// Waits until the run in `ws` has saved its first output.
fn wait_for_first_download(ws: &Workspace) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while ws
        .journal("out/job")
        .iter()
        .all(|e| e["event"] != "downloaded")
    {
        assert!(Instant::now() < deadline, "no output appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The queue items the journal says the server took.
fn enqueued_items(journal: &[Value]) -> BTreeSet<i64> {
    journal
        .iter()
        .filter(|e| e["event"] == "enqueued")
        .flat_map(|e| e["item_ids"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_i64())
        .collect()
}

fn intents(journal: &[Value]) -> Vec<usize> {
    journal
        .iter()
        .filter(|e| e["event"] == "enqueue_intent")
        .map(|e| e["jobs"].as_array().map_or(0, Vec::len))
        .collect()
}

#[test]
fn the_window_bounds_what_is_pending_and_a_queue_smaller_than_the_sweep_is_waited_for() {
    let server = PrivateServer::start(Some(8));
    let url = server.url();

    // A queue of 8 and a sweep of 12 sent 16 at a time: the server takes part of the first
    // enqueue; the rest waits for room, nothing is dropped.
    let ws = Workspace::new(SWEEP);
    let out = ws.run_on(&url, &["--window", "16", "job.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("queue is full"),
        "{}",
        text(&out.stderr)
    );
    assert_each_job_done_once(&ws, 12);
    let journal = ws.journal("out/job");
    let took_part = journal.iter().any(|e| {
        e["event"] == "enqueued" && e["item_ids"].as_array().is_some_and(|ids| ids.len() < 12)
    });
    assert!(took_part, "the server never refused part of an enqueue");
    assert_server_keeps_nothing_at(&url, &journal);

    // 18 jobs, 4 at a time, on a queue that holds 8: never more than 4 pending or running.
    let ws = Workspace::new(&sweep_18());
    let mut child = ws
        .command(&url, &["-q", "--window", "4", "job.yaml"])
        .spawn()
        .expect("spawn");
    let mut most = 0;
    let mut samples = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the run did not end");
        if let Some(busy) = server.busy() {
            most = most.max(busy);
            samples += 1;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    assert!(samples > 20, "too few samples ({samples})");
    assert!(
        most <= 4,
        "{most} items were pending or running with a window of 4"
    );
    assert!(most >= 2, "the window was never used ({most})");
    assert_each_job_done_once(&ws, 18);
    let sizes = intents(&ws.journal("out/job"));
    assert!(
        sizes.iter().all(|&n| n <= 4),
        "an enqueue above the window: {sizes:?}"
    );
    assert!(sizes.len() >= 5, "{sizes:?}");
    // Saved outputs leave the server while the run goes (36 of them: a pass every 32), not
    // all at its end; nothing of the run is left after it.
    let journal = ws.journal("out/job");
    let last_finished = journal
        .iter()
        .rposition(|e| e["event"] == "finished")
        .expect("finished entries");
    assert!(
        journal[..last_finished]
            .iter()
            .any(|e| e["event"] == "deleted"
                && e["image_names"].as_array().is_some_and(|n| !n.is_empty())),
        "nothing was deleted before the run's last job finished"
    );
    assert_server_keeps_nothing_at(&url, &journal);
}

#[test]
fn a_server_killed_and_restarted_mid_run_is_waited_for_and_the_run_completes_once() {
    let mut server = PrivateServer::start(None);
    let url = server.url();
    // Larger images, so that an item is running most of the time: a restart cancels the item
    // that was running when the server died.
    let ws = Workspace::new(&sweep_18().replace("Width: 48", "Width: 1536"));
    let mut child = ws
        .command(&url, &["--window", "4", "job.yaml"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Kill it once some jobs finished, one runs and others wait on the server.
    let deadline = Instant::now() + Duration::from_secs(300);
    while ws
        .journal("out/job")
        .iter()
        .filter(|e| e["event"] == "finished")
        .count()
        < 4
        || server.in_progress().unwrap_or_default() < 1
        || server.busy().unwrap_or_default() < 2
    {
        assert!(Instant::now() < deadline, "no job finished");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill();
    std::thread::sleep(Duration::from_secs(2));
    server.restart();
    let out = child.wait_with_output().expect("wait");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("does not answer"), "{stderr}");
    assert!(stderr.contains("answers again"), "{stderr}");
    assert_each_job_done_once(&ws, 18);
    let journal = ws.journal("out/job");
    // The restart cancelled the item that was running when the server died (InvokeAI cancels
    // in-progress items at start-up; pending ones stay): each item of the run the server
    // cancelled was taken back and its job submitted again. (The kill waits for a running
    // item, but on a loaded machine that item can still finish in the moment before the kill.)
    let withdrawn: BTreeSet<i64> = journal
        .iter()
        .filter(|e| e["event"] == "withdrawn")
        .filter_map(|e| e["item_id"].as_i64())
        .collect();
    let cancelled: BTreeSet<i64> = enqueued_items(&journal)
        .into_iter()
        .filter(|id| {
            server
                .get(&format!("/api/v1/queue/default/i/{id}"))
                .is_some_and(|item| item["status"] == "canceled")
        })
        .collect();
    assert!(
        cancelled.is_subset(&withdrawn),
        "items the restart cancelled were not taken back: cancelled {cancelled:?}, withdrawn \
         {withdrawn:?}"
    );
    if cancelled.is_empty() {
        eprintln!("note: the running item finished before the kill; no item was cancelled");
    }
    assert_server_keeps_nothing_at(&url, &journal);
    let pending = server.busy().expect("queue status");
    assert_eq!(pending, 0, "items left on the server");
}

#[test]
fn ctrl_c_takes_back_the_pending_items_and_the_next_run_finishes() {
    let ws = Workspace::new(&sweep_18());
    let url = support::server().url();
    let child = ws
        .command(url, &["--window", "8", "job.yaml"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_for_first_download(&ws);
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = child.wait_with_output().expect("wait");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("took back"), "{stderr}");

    // None of the run's items is still pending on the server.
    let journal = ws.journal("out/job");
    let ids = enqueued_items(&journal);
    assert!(!ids.is_empty());
    let addr = url.trim_start_matches("http://").parse().expect("addr");
    for id in &ids {
        let (status, body) =
            invk_run::local_server::http_get(addr, &format!("/api/v1/queue/default/i/{id}"))
                .expect("GET");
        assert_eq!(status, 200, "{body}");
        let item: Value = serde_json::from_str(&body).expect("json");
        assert_ne!(item["status"], "pending", "item {id} is still pending");
    }
    assert!(
        ids.len() < 18,
        "every job was submitted: the window did not hold"
    );

    let again = ws.run_on(url, &["-q", "job.yaml"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_each_job_done_once(&ws, 18);
}

#[test]
fn status_reports_a_killed_run_and_cancel_takes_its_items_back() {
    let ws = Workspace::new(&sweep_18());
    let url = support::server().url();
    let mut child = ws
        .command(url, &["-q", "--window", "8", "job.yaml"])
        .spawn()
        .expect("spawn");
    wait_for_first_download(&ws);
    child.kill().expect("kill -9");
    child.wait().expect("reap");

    let status = command(&ws, &["status", "--server", url, "--json", "out/job"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    let report: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
    assert_eq!(report["jobs"], 18, "{report}");
    assert!(report["on_server"].as_u64() > Some(0), "{report}");
    let counted = ["completed", "failed", "on_server", "not_started"]
        .iter()
        .map(|k| report[k].as_u64().unwrap_or_default())
        .sum::<u64>();
    assert_eq!(counted, 18, "{report}");

    let cancel = command(&ws, &["cancel", "--json", "job.yaml"]);
    assert_eq!(cancel.status.code(), Some(0), "{}", text(&cancel.stderr));
    let cancelled: Value = serde_json::from_slice(&cancel.stdout).expect("cancel JSON");
    assert!(cancelled["cancelled"].as_u64() > Some(0), "{cancelled}");
    let after = command(&ws, &["status", "--json", "out/job"]);
    let after: Value = serde_json::from_slice(&after.stdout).expect("status JSON");
    assert!(
        after["not_started"].as_u64() > report["not_started"].as_u64(),
        "{after}"
    );

    let again = ws.run_on(url, &["-q", "job.yaml"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_each_job_done_once(&ws, 18);
}
