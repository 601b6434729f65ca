//! A pool that balances, on two real InvokeAI servers (a private one and the shared one): a
//! short sweep is split by the servers' windows; at the tail an idle server takes pending jobs
//! over from a busy one (taken back there first, journaled); a server killed mid-run and
//! started again on the same port rejoins the pool, its leftovers are taken back at once and it
//! takes jobs again; a server that accepts connections and answers nothing is out of the pool
//! within the grace.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;

use serde_json::Value;

use crate::runner::{Workspace, assert_server_keeps_nothing_at, files_under, is_output_png, text};
use crate::support;
use crate::support::private::PrivateServer;

/// `jobs` jobs (2 × `jobs / 2`) of two outputs each.
fn sweep(blurs: usize, width: u32) -> String {
    let blurs: Vec<String> = (1..=blurs).map(|b| b.to_string()).collect();
    format!(
        r#"
version: 1
workflow: blur-and-tint.json
inputs:
  Source image: photos/sunset.png
  Width: {width}
sweep:
  matrix:
    Hue shift: [0, 180]
    Blur radius: [{}]
output:
  dir: out
  name: "hue-{{{{ sweep['Hue shift'] }}}}/blur-{{{{ sweep['Blur radius'] }}}}-{{{{ node.label }}}}"
"#,
        blurs.join(", ")
    )
}

/// `invk-run --server A --server B ARGS...` in the workspace.
fn pool_command(ws: &Workspace, servers: &[&str], args: &[&str]) -> std::process::Command {
    let mut cmd = support::invk_run();
    cmd.current_dir(ws.dir.path());
    for url in servers {
        cmd.arg("--server").arg(url);
    }
    cmd.args(args);
    cmd
}

fn both(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// The server number of a journaled item reference.
fn server_of(item: &Value) -> u64 {
    item.as_u64().unwrap_or(u64::MAX) >> 40
}

/// The index of a journaled job key (`INDEX-HASH`).
fn job_of(key: &Value) -> String {
    key.as_str()
        .and_then(|k| k.split('-').next())
        .unwrap_or_default()
        .to_owned()
}

/// Per job, the servers it completed on (journal numbers), per the journal.
fn completions(journal: &[Value]) -> BTreeMap<String, Vec<u64>> {
    let mut by_job: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in journal
        .iter()
        .filter(|e| e["event"] == "finished" && e["status"] == "completed")
    {
        by_job
            .entry(job_of(&e["job"]))
            .or_default()
            .push(server_of(&e["item_id"]));
    }
    by_job
}

/// Each of `jobs` jobs completed exactly once; returns how many completed on each server.
fn assert_each_job_completed_once(journal: &[Value], jobs: usize) -> BTreeMap<u64, usize> {
    let by_job = completions(journal);
    assert_eq!(by_job.len(), jobs, "{by_job:?}");
    let mut per_server = BTreeMap::new();
    for (job, servers) in &by_job {
        assert_eq!(servers.len(), 1, "job {job} completed {servers:?}");
        *per_server.entry(servers[0]).or_default() += 1;
    }
    per_server
}

/// Every output of a `blurs`-wide sweep once (no `-1` copies).
fn assert_every_output_once(ws: &Workspace, blurs: usize) {
    let files: Vec<String> = files_under(&ws.path("out"))
        .into_iter()
        .filter(|f| is_output_png(f))
        .collect();
    let expected: BTreeSet<String> = [0, 180]
        .iter()
        .flat_map(|hue| {
            (1..=blurs).flat_map(move |blur| {
                ["Blurred", "Tinted"].map(|label| format!("hue-{hue}/blur-{blur}-{label}.png"))
            })
        })
        .collect();
    let got: BTreeSet<String> = files.iter().cloned().collect();
    assert_eq!(got.len(), files.len());
    assert_eq!(got, expected);
}

/// The jobs each server's first enqueue carried.
fn first_enqueues(journal: &[Value]) -> BTreeMap<u64, usize> {
    let mut first = BTreeMap::new();
    for e in journal.iter().filter(|e| e["event"] == "enqueue_intent") {
        first
            .entry(e["server"].as_u64().unwrap_or(0))
            .or_insert_with(|| e["jobs"].as_array().map_or(0, Vec::len));
    }
    first
}

#[test]
fn ten_jobs_on_two_idle_servers_are_split_by_their_windows() {
    let private = PrivateServer::start(None);
    let private_url = private.url();
    let shared = support::server().url();
    let ws = Workspace::new(&sweep(5, 48));
    let out = pool_command(&ws, &[&private_url, shared], &["--json", "job.yaml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let journal = ws.journal("out");
    // Equal (default) windows: each server's first enqueue carries half the sweep.
    assert_eq!(
        first_enqueues(&journal),
        BTreeMap::from([(0, 5), (1, 5)]),
        "{}",
        both(&out)
    );
    // Both ran jobs (a few may move at the tail).
    let per_server = assert_each_job_completed_once(&journal, 10);
    for server in [0, 1] {
        let n = per_server.get(&server).copied().unwrap_or(0);
        assert!((4..=6).contains(&n), "{per_server:?}");
    }
    // The run's JSON events tell each server's share, as the journal does.
    let shares: BTreeMap<String, u64> = text(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "server_status" && e["end"] == true)
        .map(|e| {
            (
                e["server"].as_str().unwrap_or_default().to_owned(),
                e["done"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        shares,
        BTreeMap::from([
            (private_url.clone(), per_server[&0] as u64),
            (shared.to_owned(), per_server[&1] as u64)
        ])
    );
    assert_every_output_once(&ws, 5);
    assert_server_keeps_nothing_at(&private_url, &journal);
    assert_server_keeps_nothing_at(shared, &journal);
}

#[test]
fn an_idle_server_takes_pending_jobs_over_from_a_busy_one() {
    let private = PrivateServer::start(None);
    let private_url = private.url();
    let shared = support::server().url();
    // The first server's window is 8 and the second's 2: the 10 jobs go 8 and 2, and the second
    // server is idle while the first still holds pending jobs.
    let ws = Workspace::new(&format!(
        "{}server:\n  - {{url: {private_url}, window: 8}}\n  - {{url: {shared}, window: 2}}\n",
        sweep(5, 192)
    ));
    let out = pool_command(&ws, &[], &["job.yaml"]).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let journal = ws.journal("out");
    assert_eq!(
        first_enqueues(&journal),
        BTreeMap::from([(0, 8), (1, 2)]),
        "{}",
        both(&out)
    );
    // Pending jobs were taken back on the first server (journaled) ...
    let moved: Vec<String> = journal
        .iter()
        .filter(|e| e["event"] == "withdrawn" && server_of(&e["item_id"]) == 0)
        .map(|e| job_of(&e["job"]))
        .collect();
    assert!(!moved.is_empty(), "nothing moved: {}", both(&out));
    // ... and each ran once, on the second.
    let by_job = completions(&journal);
    for job in &moved {
        assert_eq!(by_job.get(job), Some(&vec![1]), "job {job}: {by_job:?}");
    }
    let per_server = assert_each_job_completed_once(&journal, 10);
    assert!(per_server[&1] > 2, "{per_server:?}");
    assert_every_output_once(&ws, 5);
    assert_server_keeps_nothing_at(&private_url, &journal);
    assert_server_keeps_nothing_at(shared, &journal);
}
