//! A pool that balances, on two real InvokeAI servers (a private one and the shared one): a
//! short sweep is split by the servers' windows; at the tail an idle server takes pending jobs
//! over from a busy one (taken back there first, journaled); a server killed mid-run and
//! started again on the same port rejoins the pool, its leftovers are taken back at once and it
//! takes jobs again; a server that accepts connections and answers nothing is out of the pool
//! within the grace.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
    // The shared server's window is 8 and the private one's 2: the 10 jobs go 8 and 2, and the
    // private server (which only this test uses) is idle while the shared one, busy with the
    // other tests too, still holds pending jobs.
    let ws = Workspace::new(&format!(
        "{}server:\n  - {{url: {shared}, window: 8}}\n  - {{url: {private_url}, window: 2}}\n",
        sweep(5, 192)
    ));
    let out = pool_command(&ws, &[], &["job.yaml"]).output().expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    // The plan names each server's window.
    assert!(
        text(&out.stderr).contains(&format!(
            "job.yaml: 10 jobs, on 2 servers, up to 8 on {shared}, 2 on {private_url} at a time"
        )),
        "{}",
        both(&out)
    );
    let journal = ws.journal("out");
    assert_eq!(
        first_enqueues(&journal),
        BTreeMap::from([(0, 8), (1, 2)]),
        "{}",
        both(&out)
    );
    // Pending jobs were taken back on the busy server (journaled) ...
    let moved: Vec<String> = journal
        .iter()
        .filter(|e| e["event"] == "withdrawn" && server_of(&e["item_id"]) == 0)
        .map(|e| job_of(&e["job"]))
        .collect();
    assert!(!moved.is_empty(), "nothing moved: {}", both(&out));
    // ... and each ran once, on the idle one.
    let by_job = completions(&journal);
    for job in &moved {
        assert_eq!(by_job.get(job), Some(&vec![1]), "job {job}: {by_job:?}");
    }
    // A moved job is sent to the idle server, never back to the busy one.
    let first_move = journal
        .iter()
        .position(|e| e["event"] == "withdrawn")
        .unwrap_or_default();
    let sent_back = journal[first_move..].iter().any(|e| {
        e["event"] == "enqueue_intent"
            && e["server"].as_u64().unwrap_or(0) == 0
            && e["jobs"]
                .as_array()
                .is_some_and(|jobs| jobs.iter().any(|j| moved.contains(&job_of(j))))
    });
    assert!(!sent_back, "a moved job went back: {journal:#?}");
    let per_server = assert_each_job_completed_once(&journal, 10);
    assert!(per_server[&1] > 2, "{per_server:?}");
    assert_every_output_once(&ws, 5);
    assert_server_keeps_nothing_at(&private_url, &journal);
    assert_server_keeps_nothing_at(shared, &journal);
}

/// A TCP proxy to `upstream` that relays until the flag it returns is set; from then on it
/// answers nothing: open connections and new ones are held open and never answered, as a hung
/// server would. Returns its URL.
async fn stall_proxy(upstream: SocketAddr) -> (String, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let stalled = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stalled);
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(relay(client, upstream, Arc::clone(&flag)));
        }
    });
    (url, stalled)
}

async fn relay(client: TcpStream, upstream: SocketAddr, stalled: Arc<AtomicBool>) {
    let (mut client_read, mut client_write) = client.into_split();
    if stalled.load(Ordering::SeqCst) {
        // Accepted, read, never answered.
        let mut buf = vec![0u8; 16 * 1024];
        while matches!(client_read.read(&mut buf).await, Ok(n) if n > 0) {}
        std::future::pending::<()>().await;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut server_read, mut server_write) = server.into_split();
    let pass = |stalled: Arc<AtomicBool>| async move {
        if stalled.load(Ordering::SeqCst) {
            // Held open, silent.
            std::future::pending::<()>().await;
        }
    };
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            pass(Arc::clone(&stalled)).await;
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            pass(Arc::clone(&stalled)).await;
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(up, down);
    // The connection stays open while stalled.
    pass(stalled).await;
}

/// How many outputs of the run, so far, name `server` in their sidecars.
fn saved_by(ws: &Workspace, server: &str) -> usize {
    files_under(&ws.path("out"))
        .into_iter()
        .filter(|f| f.ends_with(".png.json"))
        .filter_map(|f| fs_err::read_to_string(ws.path(&format!("out/{f}"))).ok())
        .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
        .filter(|v| v["server"] == server)
        .count()
}

/// A child's stderr lines, each with when it came.
type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

/// Spawns `cmd` with its stderr read line by line, each line with when it came.
fn spawn_timed(mut cmd: std::process::Command) -> (std::process::Child, Lines) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let lines: Lines = Arc::default();
    let stderr = child.stderr.take().expect("stderr");
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            sink.lock().expect("lock").push((Instant::now(), line));
        }
    });
    (child, lines)
}

/// Waits until `ready` holds, at most `limit`.
async fn wait_for(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The child's exit code, waited for off the runtime.
async fn exit_of(mut child: std::process::Child) -> Option<i32> {
    tokio::task::spawn_blocking(move || child.wait().expect("wait").code())
        .await
        .expect("join")
}

fn all_lines(lines: &Mutex<Vec<(Instant, String)>>) -> String {
    lines
        .lock()
        .expect("lock")
        .iter()
        .map(|(_, l)| format!("{l}\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_accepts_connections_and_answers_nothing_is_out_of_the_pool_within_the_grace()
{
    let private = PrivateServer::start(None);
    let private_url = private.url();
    let shared = support::server().url();
    let upstream: SocketAddr = shared
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let (hung_url, stall) = stall_proxy(upstream).await;
    let ws = Workspace::new(&sweep(12, 192));
    // A grace of 8 s (`--server-wait 8`).
    let cmd = pool_command(
        &ws,
        &[&hung_url, &private_url],
        &["--server-wait", "8", "job.yaml"],
    );
    let (child, lines) = spawn_timed(cmd);
    // The proxied server hangs once it has finished a job and still holds others.
    wait_for(
        Duration::from_secs(240),
        "a job done on the proxied server",
        || saved_by(&ws, &hung_url) >= 2,
    )
    .await;
    stall.store(true, Ordering::SeqCst);
    let hung_at = Instant::now();
    // Its jobs done on the other server, the run waits for it at the end (it holds the run's
    // images), and it answers again before the bound (8 s, the grace): it is cleaned now.
    wait_for(Duration::from_secs(240), "the end's wait", || {
        all_lines(&lines).contains(&format!(
            "waiting up to 8 s for the server at {hung_url} to answer again, to clean up what the run left there"
        ))
    })
    .await;
    stall.store(false, Ordering::SeqCst);
    let code = exit_of(child).await;
    let output = all_lines(&lines);
    assert_eq!(code, Some(0), "{output}");
    let left_at = lines
        .lock()
        .expect("lock")
        .iter()
        .find(|(_, l)| l.contains(&format!("the server at {hung_url} leaves the pool")))
        .map(|(at, _)| *at)
        .unwrap_or_else(|| panic!("the hung server never left: {output}"));
    let noticed = left_at.duration_since(hung_at);
    eprintln!("the hung server left the pool {noticed:?} after it stopped answering");
    // Within the grace and one poll of the tracker (5 s, plus its 4 s bound on the poll),
    // far from the client's 120 s read time-out.
    assert!(
        noticed < Duration::from_secs(8 + 5 + 4 + 5),
        "{noticed:?}\n{output}"
    );
    // The run completed on the other server: every job once, every file once.
    let journal = ws.journal("out");
    let per_server = assert_each_job_completed_once(&journal, 24);
    assert!(
        per_server.get(&1).copied().unwrap_or(0) > 12,
        "{per_server:?}"
    );
    assert_every_output_once(&ws, 12);
    assert_server_keeps_nothing_at(&private_url, &journal);
    // What it ran (the sessions it held when it left, which its server still ran) is gone
    // too, and the run ended: a rerun has nothing to do.
    assert_server_keeps_nothing_at(shared, &journal);
    assert!(journal.iter().any(|e| e["event"] == "ended"), "{output}");
}

/// The 60-job sweep of the restart tests on the private server (window 4) and the shared one
/// (window 1): the shared server takes one job at a time, so while the private server is away
/// (a restart is 15-45 s) most of the sweep waits to be submitted.
fn restart_sweep(private_url: &str, shared: &str) -> Workspace {
    Workspace::new(&format!(
        "{}server:\n  - {{url: {private_url}, window: 4}}\n  - {{url: {shared}, window: 1}}\n",
        sweep(30, 1024)
    ))
}

/// Waits (at most 240 s) until the journal has a job completed on the first server.
fn wait_for_a_job_done_on_the_first_server(ws: &Workspace, lines: &Lines) {
    let deadline = Instant::now() + Duration::from_secs(240);
    while !ws.journal("out").iter().any(|e| {
        e["event"] == "finished" && e["status"] == "completed" && server_of(&e["item_id"]) == 0
    }) {
        assert!(Instant::now() < deadline, "{}", all_lines(lines));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The private server holds no item of its queue and no image at all.
fn assert_holds_nothing(private: &PrivateServer, output: &str) {
    assert_eq!(private.busy(), Some(0), "{output}");
    assert_eq!(
        private.image_count(),
        Some(0),
        "{:#?}\n{output}",
        private.get("/api/v1/images/?limit=20")
    );
}

#[test]
fn a_server_killed_and_started_again_rejoins_the_pool_and_takes_jobs_again() {
    let mut private = PrivateServer::start(None);
    let private_url = private.url();
    // As on the shared server: each session makes its own images (with the cache on, a session
    // that ran while the run was away could have made an image later sessions were handed).
    support::server::disable_invocation_cache(&private_url, None);
    let shared = support::server().url();
    let ws = restart_sweep(&private_url, shared);
    let cmd = pool_command(&ws, &[], &["--server-wait", "4", "job.yaml"]);
    let (mut child, lines) = spawn_timed(cmd);
    // Killed as soon as it has completed a job: the other server has most of the sweep left,
    // which outlasts the restart.
    wait_for_a_job_done_on_the_first_server(&ws, &lines);
    let done_before = completions(&ws.journal("out"))
        .values()
        .filter(|s| s.contains(&0))
        .count();
    eprintln!("killed with {done_before} jobs done on it");
    private.kill();
    let killed_at = Instant::now();
    // Started again on the same port once the run has given it up.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !all_lines(&lines).contains(&format!("the server at {private_url} leaves the pool")) {
        assert!(Instant::now() < deadline, "{}", all_lines(&lines));
        std::thread::sleep(Duration::from_millis(100));
    }
    private.restart();
    let restarted_at = Instant::now();
    support::server::disable_invocation_cache(&private_url, None);
    let code = child.wait().expect("wait").code();
    let output = all_lines(&lines);
    assert_eq!(code, Some(0), "{output}");
    let rejoined = format!("the server at {private_url} answers again and rejoins the pool");
    let rejoined_at = lines
        .lock()
        .expect("lock")
        .iter()
        .find(|(_, l)| l.contains(&rejoined))
        .map(|(at, _)| *at)
        .unwrap_or_else(|| panic!("it never rejoined: {output}"));
    eprintln!(
        "killed; given up after {:?}; back {:?} after it was started again",
        restarted_at.duration_since(killed_at),
        rejoined_at.saturating_duration_since(restarted_at)
    );
    // After it left (its items journaled as taken back), it took new jobs and completed some.
    let journal = ws.journal("out");
    let left = journal
        .iter()
        .position(|e| e["event"] == "withdrawn" && server_of(&e["item_id"]) == 0)
        .unwrap_or_else(|| panic!("nothing taken back when it left: {output}"));
    let after = &journal[left..];
    assert!(
        after
            .iter()
            // The first server's number (0) is left out of the journal.
            .any(|e| e["event"] == "enqueue_intent" && e["server"].as_u64().unwrap_or(0) == 0),
        "no job submitted to it after it came back: {output}"
    );
    assert!(
        after.iter().any(|e| e["event"] == "finished"
            && e["status"] == "completed"
            && server_of(&e["item_id"]) == 0),
        "no job completed on it after it came back: {output}"
    );
    assert_each_job_completed_once(&journal, 60);
    assert_every_output_once(&ws, 30);
    // Its leftovers are gone from its queue, and nothing of the run stays on either server:
    // the private server holds no image at all, not even one a session made before the kill.
    assert_holds_nothing(&private, &output);
    for name in crate::runner::journal_images(&journal, true) {
        let about: Vec<&Value> = journal
            .iter()
            .filter(|e| e.to_string().contains(&name))
            .collect();
        assert!(
            !crate::runner::image_exists_at(&private_url, &name),
            "{name} is still on it: {about:#?}\n{output}"
        );
    }
    assert_server_keeps_nothing_at(shared, &journal);
}

#[test]
fn a_server_away_when_a_run_resumes_joins_when_it_answers_and_what_the_killed_run_left_on_it_goes()
{
    let mut private = PrivateServer::start(None);
    let private_url = private.url();
    support::server::disable_invocation_cache(&private_url, None);
    let shared = support::server().url();
    let ws = restart_sweep(&private_url, shared);
    // The first run is killed (-9) once the private server has completed a job and holds
    // others; then the private server is killed too.
    let (mut first, first_lines) = spawn_timed(pool_command(&ws, &[], &["job.yaml"]));
    wait_for_a_job_done_on_the_first_server(&ws, &first_lines);
    first.kill().expect("kill the runner");
    first.wait().expect("wait");
    private.kill();
    // The same command again: the private server is left out at the start, and started again
    // once the run goes on without it.
    let (mut second, lines) = spawn_timed(pool_command(&ws, &[], &["job.yaml"]));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !all_lines(&lines).contains(&format!(
        "the server at {private_url} is left out of the pool"
    )) {
        assert!(Instant::now() < deadline, "{}", all_lines(&lines));
        std::thread::sleep(Duration::from_millis(100));
    }
    private.restart();
    support::server::disable_invocation_cache(&private_url, None);
    let code = second.wait().expect("wait").code();
    let output = all_lines(&lines);
    assert_eq!(code, Some(0), "{output}");
    // It joined (during the run or in the end's wait) and what the killed run had sent it
    // was taken back.
    assert!(
        output.contains(&format!(
            "the server at {private_url} answers now and joins the pool ("
        )),
        "{output}"
    );
    let journal = ws.journal("out");
    assert_each_job_completed_once(&journal, 60);
    assert_every_output_once(&ws, 30);
    // Nothing of either run stays on it: no item, no image at all.
    assert_holds_nothing(&private, &output);
    assert_server_keeps_nothing_at(shared, &journal);
    assert!(journal.iter().any(|e| e["event"] == "ended"), "{output}");
}
