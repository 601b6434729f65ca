//! The hot folder (`invk-run watch`).
//!
//! The library tests drive [`invk_run::watch::watch`] with a fake runner that behaves like the
//! real one seen from outside: it reads the manifest, fails invalid ones, keeps a journal in
//! the output folder (so a second run of the same manifest resumes instead of submitting
//! again), writes an output file, and stops at a checkpoint when cancelled. The scenario
//! helpers (`drop_burst`, `watch_until`) take any [`ManifestRunner`], so the same scenarios can
//! be pointed at the real runner and server.
//!
//! The binary tests run `invk-run watch` itself: arguments, exit codes, JSON lines, Ctrl-C.
//! The `live` tests run it against a real server with the real runner.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use invk_run::run::{JobFailure, ManifestOutcome, ManifestSource};
use invk_run::watch::{ManifestRunner, WatchConfig, WatchEvent, WatchStatus, WatchSummary, watch};
use tokio_util::sync::CancellationToken;

use crate::support;

mod complete;
mod each;
mod live;
mod names;

/// The last line of every complete test manifest: a manifest read without it was read early.
const END: &str = "# end\n";

// ---------------------------------------------------------------------------------------------
// The fake runner.

/// What the fake runner saw.
#[derive(Debug, Default)]
struct Seen {
    /// Runs per manifest (a resumed manifest runs twice).
    runs: BTreeMap<String, usize>,
    /// Submissions per manifest (never more than one: the journal prevents it).
    submissions: BTreeMap<String, usize>,
    /// Manifests read without their last line.
    read_early: Vec<String>,
    /// Folders the manifests' relative paths were resolved from.
    base_dirs: BTreeSet<PathBuf>,
}

#[derive(Debug)]
struct FakeRunner {
    seen: Mutex<Seen>,
    /// How long a run takes.
    run_time: Duration,
    /// Runs in progress now, and the most at once.
    active: AtomicUsize,
    max_active: AtomicUsize,
}

impl FakeRunner {
    fn new(run_time: Duration) -> FakeRunner {
        FakeRunner {
            seen: Mutex::new(Seen::default()),
            run_time,
            active: AtomicUsize::new(0),
            max_active: AtomicUsize::new(0),
        }
    }

    fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().expect("lock"))
    }

    fn submissions(&self) -> usize {
        self.seen(|s| s.submissions.values().sum())
    }
}

/// Decrements the active count when a run ends or is dropped (a killed watcher).
struct Active<'a>(&'a AtomicUsize);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn invalid(message: String) -> invk_run::run::RunError {
    invk_run::run::RunError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        message,
    ))
}

impl ManifestRunner for FakeRunner {
    async fn run(
        &self,
        source: ManifestSource,
        cancel: CancellationToken,
    ) -> Result<ManifestOutcome, invk_run::run::RunError> {
        let started = Instant::now();
        let text = fs_err::read_to_string(&source.path)?;
        let name = source.display_name.clone();
        {
            let mut seen = self.seen.lock().expect("lock");
            *seen.runs.entry(name.clone()).or_default() += 1;
            seen.base_dirs.insert(source.base_dir.clone());
            if !text.ends_with(END) {
                seen.read_early.push(name.clone());
            }
        }
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_active.fetch_max(now, Ordering::SeqCst);
        let _active = Active(&self.active);

        if text.contains("wrkflow") {
            return Err(invalid(format!(
                "unknown field `wrkflow` in `{name}`, expected `workflow`"
            )));
        }
        let stem = Path::new(&name)
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let output_dir = source.base_dir.join("out").join(&stem);
        fs_err::create_dir_all(&output_dir)?;
        let journal = output_dir.join("journal");
        if !journal.exists() {
            fs_err::write(&journal, "submitted\n")?;
            *self
                .seen
                .lock()
                .expect("lock")
                .submissions
                .entry(name.clone())
                .or_default() += 1;
        }
        let outcome =
            |interrupted: bool, files: Vec<PathBuf>, failures: Vec<JobFailure>| ManifestOutcome {
                manifest: name.clone(),
                output_dir: output_dir.clone(),
                jobs: 2,
                completed: files.len(),
                failures,
                not_run: 0,
                files,
                seconds: started.elapsed().as_secs_f64(),
                interrupted,
            };
        tokio::select! {
            () = tokio::time::sleep(self.run_time) => {}
            () = cancel.cancelled() => return Ok(outcome(true, vec![], vec![])),
        }
        if text.contains("fail-a-job") {
            let failure = JobFailure {
                job: 1,
                item_id: 7,
                error: "out of memory".into(),
            };
            fs_err::write(output_dir.join("0.png"), "png")?;
            return Ok(outcome(false, vec![PathBuf::from("0.png")], vec![failure]));
        }
        for file in ["0.png", "1.png"] {
            fs_err::write(output_dir.join(file), "png")?;
        }
        Ok(outcome(
            false,
            vec![PathBuf::from("0.png"), PathBuf::from("1.png")],
            vec![],
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Scenario helpers (any runner).

/// A hot folder in a temporary folder, with a short settle window.
struct HotFolder {
    _tmp: tempfile::TempDir,
    config: WatchConfig,
}

impl HotFolder {
    fn new() -> HotFolder {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("hot");
        fs_err::create_dir_all(&dir).expect("mkdir");
        let mut config = WatchConfig::new(&dir).expect("config");
        config.settle = Duration::from_millis(300);
        config.rescan_interval = Duration::from_millis(500);
        HotFolder { _tmp: tmp, config }
    }

    fn dir(&self) -> &Path {
        &self.config.dir
    }

    fn write(&self, name: &str, text: &str) {
        fs_err::write(self.dir().join(name), text).expect("write manifest");
    }
}

/// A complete test manifest.
fn manifest(name: &str) -> String {
    format!("workflow: flows/{name}.json\ninputs:\n  prompt: a photo of {name}\n{END}")
}

/// Files in `dir`, sorted.
fn list(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return vec![];
    };
    let mut names: Vec<String> = entries
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Events collected from a watcher.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<WatchEvent>>>);

impl Events {
    fn status(&self) -> WatchStatus {
        let events = self.0.clone();
        WatchStatus::with_callback(move |e| events.lock().expect("lock").push(e.clone()))
    }

    fn all(&self) -> Vec<WatchEvent> {
        self.0.lock().expect("lock").clone()
    }

    fn names(&self, pick: impl Fn(&WatchEvent) -> Option<&String>) -> Vec<String> {
        let mut names: Vec<String> = self.all().iter().filter_map(|e| pick(e).cloned()).collect();
        names.sort();
        names
    }
}

/// Writes `text` into `path` in `pieces` parts with `pause` between them, like a slow writer.
async fn write_slowly(path: &Path, text: &str, pieces: usize, pause: Duration) {
    use std::io::Write;
    let mut file = fs_err::File::create(path).expect("create");
    let chunk = text.len().div_ceil(pieces);
    for part in text.as_bytes().chunks(chunk) {
        file.write_all(part).expect("write");
        file.flush().expect("flush");
        tokio::time::sleep(pause).await;
    }
}

/// Runs a watcher until `until` completes (then Ctrl-C) or `timeout` passes (a test failure).
async fn watch_until<R: ManifestRunner>(
    config: &WatchConfig,
    runner: &R,
    events: &Events,
    until: impl Future<Output = ()>,
    timeout: Duration,
) -> WatchSummary {
    let shutdown = CancellationToken::new();
    let status = events.status();
    let stop = async {
        if tokio::time::timeout(timeout, until).await.is_err() {
            let last: Vec<String> = events
                .all()
                .iter()
                .rev()
                .take(5)
                .map(WatchEvent::human_line)
                .collect();
            panic!("the watcher did not get there in {timeout:?}; last events: {last:#?}");
        }
        shutdown.cancel();
    };
    let (summary, ()) = tokio::join!(watch(config, runner, &status, shutdown.clone()), stop);
    summary.expect("watcher")
}

/// Waits until `dir` holds `n` files ending in `suffix`.
async fn files_in(dir: &Path, suffix: &str, n: usize) {
    while list(dir).iter().filter(|f| f.ends_with(suffix)).count() < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Library tests.

#[tokio::test]
async fn a_burst_of_twenty_runs_each_once_and_never_reads_a_half_written_file() {
    let hot = HotFolder::new();
    let mut config = hot.config.clone();
    config.concurrency = 3;
    // Five times the slow writer's pauses: a loaded machine may stretch them.
    config.settle = Duration::from_millis(600);
    let runner = FakeRunner::new(Duration::from_millis(50));
    let events = Events::default();
    let valid: Vec<String> = (0..18).map(|i| format!("job-{i:02}.yaml")).collect();
    // One file is there before the watcher starts.
    hot.write(&valid[0], &manifest(&valid[0]));

    let drop_burst = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for name in &valid[1..] {
            hot.write(name, &manifest(name));
        }
        hot.write("bad.yaml", &format!("wrkflow: flows/x.json\n{END}"));
        // Pauses shorter than the settle window, for longer than the window in total.
        write_slowly(
            &hot.dir().join("slow.yaml"),
            &manifest("slow.yaml"),
            10,
            Duration::from_millis(120),
        )
        .await;
    };
    let until = async {
        drop_burst.await;
        files_in(&config.done_dir, ".report.json", 19).await;
        files_in(&config.failed_dir, ".error.txt", 1).await;
    };
    let summary = watch_until(&config, &runner, &events, until, Duration::from_secs(60)).await;

    let mut expected_done: Vec<String> = valid.clone();
    expected_done.push("slow.yaml".into());
    expected_done.sort();
    assert_eq!(summary.done, 19);
    assert_eq!(summary.failed, 1);
    assert_eq!(summary.interrupted, 0);
    // Every manifest ran exactly once and was submitted once.
    runner.seen(|seen| {
        assert!(
            seen.read_early.is_empty(),
            "read before it was complete: {:?}",
            seen.read_early
        );
        assert!(seen.runs.values().all(|&n| n == 1), "runs: {:?}", seen.runs);
        assert_eq!(seen.runs.len(), 20);
        assert_eq!(seen.submissions.len(), 19);
        assert!(seen.submissions.values().all(|&n| n == 1));
        // Relative paths resolve from the hot folder, not from processing/.
        assert_eq!(seen.base_dirs, BTreeSet::from([hot.dir().to_path_buf()]));
    });
    assert!(
        runner.max_active.load(Ordering::SeqCst) <= 3,
        "more than -j 3 at once"
    );
    assert!(
        runner.max_active.load(Ordering::SeqCst) >= 2,
        "the runs did not overlap"
    );

    // done/ holds each manifest once, with its report naming its outputs.
    let done = list(&config.done_dir);
    let done_manifests: Vec<&String> = done.iter().filter(|f| f.ends_with(".yaml")).collect();
    assert_eq!(
        done_manifests,
        expected_done.iter().collect::<Vec<_>>(),
        "no duplicates, nothing missing"
    );
    for name in &expected_done {
        let report: serde_json::Value = serde_json::from_slice(
            &fs_err::read(config.done_dir.join(format!("{name}.report.json"))).expect("report"),
        )
        .expect("json");
        assert_eq!(report["manifest"], name.as_str());
        assert_eq!(report["verdict"], "done");
        assert_eq!(
            report["outcome"]["files"],
            serde_json::json!(["0.png", "1.png"]),
            "{name}"
        );
        let stem = name.trim_end_matches(".yaml");
        assert!(
            hot.dir().join("out").join(stem).join("1.png").is_file(),
            "outputs of {name}"
        );
        assert_eq!(
            fs_err::read_to_string(config.done_dir.join(name)).expect("filed manifest"),
            manifest(name),
            "the filed manifest is the one dropped"
        );
    }

    // The invalid one is in failed/ with a report naming its error.
    assert_eq!(
        list(&config.failed_dir),
        ["bad.yaml", "bad.yaml.error.txt", "bad.yaml.report.json"]
    );
    let error =
        fs_err::read_to_string(config.failed_dir.join("bad.yaml.error.txt")).expect("error report");
    assert!(error.starts_with("bad.yaml: "), "{error}");
    assert!(
        error.contains("unknown field `wrkflow` in `bad.yaml`"),
        "{error}"
    );

    // Nothing is left behind, and the status told the story.
    assert_eq!(list(hot.dir()), Vec::<String>::new());
    assert_eq!(list(&config.processing_dir), Vec::<String>::new());
    let claimed = events.names(|e| match e {
        WatchEvent::WatchClaimed { manifest, .. } => Some(manifest),
        _ => None,
    });
    let mut all = expected_done.clone();
    all.push("bad.yaml".into());
    all.sort();
    assert_eq!(claimed, all, "each claimed once");
    let failed = events.names(|e| match e {
        WatchEvent::WatchFailed { manifest, .. } => Some(manifest),
        _ => None,
    });
    assert_eq!(failed, ["bad.yaml"]);
    assert!(
        matches!(events.all().last(), Some(WatchEvent::WatchStopped { counts }) if counts.done == 19 && counts.failed == 1)
    );
}

#[tokio::test]
async fn a_restarted_watcher_resumes_what_a_killed_one_left_in_processing() {
    let hot = HotFolder::new();
    let mut config = hot.config.clone();
    config.concurrency = 2;
    let names: Vec<String> = (0..6).map(|i| format!("night-{i}.yaml")).collect();
    for name in &names {
        hot.write(name, &manifest(name));
    }

    // First watcher: killed (dropped without any clean-up) while two runs are in progress.
    let slow = FakeRunner::new(Duration::from_secs(3600));
    let first = Events::default();
    let status = first.status();
    let killed = tokio::select! {
        result = watch(&config, &slow, &status, CancellationToken::new()) => panic!("the watcher ended: {result:?}"),
        () = async {
            while slow.submissions() < 2 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        } => list(&config.processing_dir),
    };
    assert_eq!(killed.len(), 2, "two manifests were running: {killed:?}");
    assert_eq!(
        list(&config.processing_dir),
        killed,
        "the kill leaves them in processing/"
    );

    // Second watcher: resumes those two first, then runs the rest.
    let runner = FakeRunner::new(Duration::from_millis(20));
    let second = Events::default();
    let until = files_in(&config.done_dir, ".report.json", 6);
    let summary = watch_until(&config, &runner, &second, until, Duration::from_secs(60)).await;

    assert_eq!(summary.done, 6);
    let resumed = second.names(|e| match e {
        WatchEvent::WatchResumed { manifest, .. } => Some(manifest),
        _ => None,
    });
    assert_eq!(resumed, killed, "the leftovers are resumed");
    let claimed = second.names(|e| match e {
        WatchEvent::WatchClaimed { manifest, .. } => Some(manifest),
        _ => None,
    });
    let rest: Vec<String> = names
        .iter()
        .filter(|n| !killed.contains(n))
        .cloned()
        .collect();
    assert_eq!(claimed, rest, "the others are claimed from the hot folder");
    // Nothing was submitted twice across both watchers.
    let mut submissions = slow.seen(|s| s.submissions.clone());
    for (name, n) in runner.seen(|s| s.submissions.clone()) {
        *submissions.entry(name).or_default() += n;
    }
    assert_eq!(submissions.keys().cloned().collect::<Vec<_>>(), names);
    assert!(
        submissions.values().all(|&n| n == 1),
        "submitted twice: {submissions:?}"
    );
    // Each lands in done/ once, with a report saying whether it was resumed.
    let done: Vec<String> = list(&config.done_dir)
        .into_iter()
        .filter(|f| f.ends_with(".yaml"))
        .collect();
    assert_eq!(done, names);
    for name in &names {
        let report: serde_json::Value = serde_json::from_slice(
            &fs_err::read(config.done_dir.join(format!("{name}.report.json"))).expect("report"),
        )
        .expect("json");
        assert_eq!(report["resumed"], killed.contains(name), "{name}");
    }
    assert_eq!(list(&config.processing_dir), Vec::<String>::new());
}

#[tokio::test]
async fn ctrl_c_stops_claiming_and_leaves_running_manifests_for_the_next_start() {
    let hot = HotFolder::new();
    let config = hot.config.clone();
    for name in ["a.yaml", "b.yaml", "c.yaml"] {
        hot.write(name, &manifest(name));
    }
    let runner = FakeRunner::new(Duration::from_secs(3600));
    let events = Events::default();
    let until = async {
        while runner.submissions() < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let summary = watch_until(&config, &runner, &events, until, Duration::from_secs(30)).await;

    assert_eq!(summary.exit_status(), invk_run::ExitStatus::Interrupted);
    let lines: Vec<String> = events.all().iter().map(WatchEvent::human_line).collect();
    assert_eq!(
        (summary.done, summary.failed, summary.interrupted),
        (0, 0, 1),
        "{lines:#?}"
    );
    assert_eq!(
        list(&config.processing_dir),
        ["a.yaml"],
        "the running one waits for the next start"
    );
    assert_eq!(
        list(hot.dir()),
        ["b.yaml", "c.yaml"],
        "nothing new is claimed"
    );
    assert_eq!(list(&config.done_dir), Vec::<String>::new());
    let kinds: Vec<String> = events
        .all()
        .iter()
        .map(|e| {
            serde_json::to_value(e).expect("json")["event"]
                .as_str()
                .expect("tag")
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "watch_started",
            "watch_claimed",
            "watch_stopping",
            "watch_interrupted",
            "watch_stopped"
        ]
    );
}

#[tokio::test]
async fn a_run_with_failed_jobs_is_filed_into_failed_with_every_failure() {
    let hot = HotFolder::new();
    let config = hot.config.clone();
    hot.write(
        "sweep.yaml",
        &format!("workflow: flows/x.json\n# fail-a-job\n{END}"),
    );
    let runner = FakeRunner::new(Duration::from_millis(10));
    let events = Events::default();
    let until = files_in(&config.failed_dir, ".error.txt", 1);
    let summary = watch_until(&config, &runner, &events, until, Duration::from_secs(30)).await;

    assert_eq!((summary.done, summary.failed), (0, 1));
    assert_eq!(
        list(&config.failed_dir),
        [
            "sweep.yaml",
            "sweep.yaml.error.txt",
            "sweep.yaml.report.json"
        ]
    );
    let error = fs_err::read_to_string(config.failed_dir.join("sweep.yaml.error.txt"))
        .expect("error report");
    let out = hot.dir().join("out/sweep");
    assert_eq!(
        error,
        format!(
            "sweep.yaml: some jobs failed\n1 of 2 jobs completed, 1 failed; outputs in {}\njob 1 (queue item 7) failed: out of memory\n",
            out.display()
        )
    );
    let report: serde_json::Value = serde_json::from_slice(
        &fs_err::read(config.failed_dir.join("sweep.yaml.report.json")).expect("report"),
    )
    .expect("json");
    assert_eq!(report["verdict"], "jobs_failed");
    assert_eq!(report["outcome"]["files"], serde_json::json!(["0.png"]));
}

#[tokio::test]
async fn a_manifest_dropped_again_under_the_same_name_is_filed_beside_the_first() {
    let hot = HotFolder::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut config = hot.config.clone();
    // Folders outside the hot folder, and done and failed shared.
    config.done_dir = tmp.path().join("outbox");
    config.failed_dir = tmp.path().join("outbox");
    config.processing_dir = tmp.path().join("busy");
    let runner = FakeRunner::new(Duration::from_millis(10));
    let events = Events::default();
    let until = async {
        hot.write("a.yaml", &manifest("a"));
        files_in(&config.done_dir, ".report.json", 1).await;
        // The output folder's journal would make the runner resume; a new drop is a new job.
        fs_err::remove_dir_all(hot.dir().join("out")).expect("clear outputs");
        hot.write("a.yaml", &format!("# second\n{}", manifest("a")));
        files_in(&config.done_dir, ".report.json", 2).await;
    };
    let summary = watch_until(&config, &runner, &events, until, Duration::from_secs(30)).await;

    assert_eq!(summary.done, 2);
    assert_eq!(
        list(&config.done_dir),
        [
            "a-1.yaml",
            "a-1.yaml.report.json",
            "a.yaml",
            "a.yaml.report.json"
        ]
    );
    assert_eq!(
        fs_err::read_to_string(config.done_dir.join("a.yaml")).expect("first"),
        manifest("a")
    );
    assert!(
        fs_err::read_to_string(config.done_dir.join("a-1.yaml"))
            .expect("second")
            .starts_with("# second")
    );
    assert_eq!(runner.seen(|s| s.runs.get("a.yaml").copied()), Some(2));
    assert!(
        !hot.dir().join("processing").exists(),
        "no folders made in the hot folder"
    );
}

#[tokio::test]
async fn only_matching_files_are_claimed() {
    let hot = HotFolder::new();
    let mut config = hot.config.clone();
    config.patterns =
        invk_run::watch::FilePatterns::new(&["*.job".into(), "*.yaml".into()], &["draft-*".into()])
            .expect("patterns");
    for name in [
        "a.job",
        "b.yaml",
        "draft-c.job",
        "d.yml",
        "notes.txt",
        ".e.yaml",
    ] {
        hot.write(name, &manifest(name));
    }
    fs_err::create_dir_all(hot.dir().join("sub")).expect("mkdir");
    fs_err::write(hot.dir().join("sub/f.yaml"), manifest("f")).expect("write");
    let runner = FakeRunner::new(Duration::from_millis(10));
    let events = Events::default();
    let until = async {
        files_in(&config.done_dir, ".report.json", 2).await;
        // Give the others every chance to be (wrongly) claimed.
        tokio::time::sleep(Duration::from_millis(700)).await;
    };
    let summary = watch_until(&config, &runner, &events, until, Duration::from_secs(30)).await;

    assert_eq!(summary.done, 2);
    assert_eq!(
        list(&config.done_dir),
        ["a.job", "a.job.report.json", "b.yaml", "b.yaml.report.json"]
    );
    assert_eq!(
        list(hot.dir()),
        [".e.yaml", "d.yml", "draft-c.job", "notes.txt"]
    );
    assert!(
        hot.dir().join("sub/f.yaml").is_file(),
        "subfolders are not watched"
    );
}

// ---------------------------------------------------------------------------------------------
// Binary tests.

#[test]
fn the_watch_command_refuses_a_missing_folder_and_bad_options() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("missing");
    let out = support::invk_run()
        .arg("watch")
        .arg(&missing)
        .output()
        .expect("run invk-run");
    let stderr =
        String::from_utf8_lossy(&out.stderr).replace(&tmp.path().display().to_string(), "[TEMP]");
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    insta::assert_snapshot!(stderr, @"error: the hot folder `[TEMP]/missing` does not exist");

    let out = support::invk_run()
        .arg("watch")
        .arg(tmp.path())
        .args(["-j", "0"])
        .output()
        .expect("run invk-run");
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stderr), @"error: --concurrency must be at least 1");

    let out = support::invk_run()
        .arg("watch")
        .arg(tmp.path())
        .args(["--include", "*.{yaml"])
        .output()
        .expect("run invk-run");
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stderr), @r"
    error: invalid --include pattern `*.{yaml`
      Caused by: error parsing glob '*.{yaml': unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)
    ");
}

#[test]
fn the_watch_command_files_a_bad_manifest_and_exits_130_on_ctrl_c() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hot = tmp.path();
    fs_err::write(hot.join("bad.yaml"), "wrkflow: [unclosed\n").expect("write");
    let mut child = support::invk_run()
        .arg("watch")
        .arg(hot)
        .args([
            "--json",
            "--server",
            "http://127.0.0.1:9",
            "--settle-ms",
            "200",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start invk-run watch");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !hot.join("failed/bad.yaml.error.txt").exists() {
        assert!(
            Instant::now() < deadline,
            "bad.yaml was not filed into failed/"
        );
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("invk-run watch ended early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");

    assert_eq!(
        list(&hot.join("failed")),
        ["bad.yaml", "bad.yaml.error.txt", "bad.yaml.report.json"]
    );
    let error =
        fs_err::read_to_string(hot.join("failed/bad.yaml.error.txt")).expect("error report");
    assert!(
        error.starts_with("bad.yaml: ") && error.contains("error: "),
        "{error}"
    );
    // stdout is JSON lines only: the watcher's events (and the run's).
    let stdout = String::from_utf8_lossy(&out.stdout);
    let watch_events: Vec<String> = stdout
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .unwrap_or_else(|e| panic!("{e}: {line}"))
        })
        .filter_map(|v| {
            v["event"]
                .as_str()
                .filter(|e| e.starts_with("watch_"))
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        watch_events,
        [
            "watch_started",
            "watch_claimed",
            "watch_failed",
            "watch_stopping",
            "watch_stopped"
        ],
        "{stdout}"
    );
}
