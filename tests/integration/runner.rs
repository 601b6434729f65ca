//! The runner, `invk-run MANIFEST...`, end to end on a real server.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A folder holding the example workflow, a photo and a manifest.
pub(crate) struct Workspace {
    pub(crate) dir: tempfile::TempDir,
}

impl Workspace {
    pub(crate) fn new(manifest: &str) -> Workspace {
        let dir = tempfile::tempdir().expect("tempdir");
        fs_err::create_dir_all(dir.path().join("photos")).expect("mkdir");
        fs_err::copy(
            repo("examples/workflows/blur-and-tint.json"),
            dir.path().join("blur-and-tint.json"),
        )
        .expect("copy workflow");
        for photo in ["sunset", "sea"] {
            fs_err::copy(
                repo(&format!("examples/images/{photo}.png")),
                dir.path().join(format!("photos/{photo}.png")),
            )
            .expect("copy photo");
        }
        fs_err::write(dir.path().join("job.yaml"), manifest).expect("write manifest");
        Workspace { dir }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_on(support::server().url(), args)
    }

    /// Runs `invk-run --server URL ARGS...` in the folder.
    pub(crate) fn run_on(&self, url: &str, args: &[&str]) -> Output {
        self.command(url, args).output().expect("run invk-run")
    }

    /// `invk-run --server URL ARGS...` in the folder, to spawn.
    pub(crate) fn command(&self, url: &str, args: &[&str]) -> std::process::Command {
        let mut cmd = support::invk_run();
        cmd.current_dir(self.dir.path())
            .arg("--server")
            .arg(url)
            .args(args);
        cmd
    }

    pub(crate) fn journal(&self, out: &str) -> Vec<Value> {
        self.journal_file(&format!("{out}/.invk-run/journal.jsonl"))
    }

    /// The entries of the journal file `rel` (none when it does not exist yet).
    pub(crate) fn journal_file(&self, rel: &str) -> Vec<Value> {
        let text = fs_err::read_to_string(self.path(rel)).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

pub(crate) fn files_under(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for entry in fs_err::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(
                    path.strip_prefix(root)
                        .expect("prefix")
                        .display()
                        .to_string(),
                );
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// The files without the gallery's thumbnails (one per output, named by a hash).
fn report_less(files: BTreeSet<String>) -> BTreeSet<String> {
    files
        .into_iter()
        .filter(|f| !f.starts_with(".invk-run/thumbs/"))
        .collect()
}

/// Whether a file is an output (not a grid of them).
pub(crate) fn is_output_png(file: &str) -> bool {
    file.ends_with(".png") && !file.starts_with("grid-")
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether the shared server still has an image.
fn image_exists(name: &str) -> bool {
    image_exists_at(support::server().url(), name)
}

/// Whether the server at `url` still has an image.
pub(crate) fn image_exists_at(url: &str, name: &str) -> bool {
    let addr = url.trim_start_matches("http://").parse().expect("addr");
    let (status, _) = invk_run::local_server::http_get(addr, &format!("/api/v1/images/i/{name}"))
        .expect("GET image");
    status == 200
}

pub(crate) const SWEEP: &str = r#"
version: 1
workflow: blur-and-tint.json
inputs:
  Source image: photos/sunset.png
  Width: 48
sweep:
  matrix:
    Hue shift: [0, 90, 180, 270]
    Blur radius: [1, 3, 6]
output:
  dir: "out/{{ manifest.stem }}"
  name: "hue-{{ sweep['Hue shift'] }}/blur-{{ sweep['Blur radius'] }}-{{ node.label }}"
"#;

#[test]
fn a_sweep_lands_every_output_with_sidecars_and_summary_and_leaves_the_server_clean() {
    let ws = Workspace::new(SWEEP);
    let out = ws.run(&["job.yaml"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("12 jobs, up to 16 at a time"), "{stderr}");
    assert!(stderr.contains("12 completed"), "{stderr}");

    let root = ws.path("out/job");
    let files = report_less(files_under(&root));
    let mut expected = BTreeSet::new();
    for hue in [0, 90, 180, 270] {
        for blur in [1, 3, 6] {
            for label in ["Blurred", "Tinted"] {
                expected.insert(format!("hue-{hue}/blur-{blur}-{label}.png"));
                expected.insert(format!("hue-{hue}/blur-{blur}-{label}.png.json"));
            }
        }
    }
    expected.insert("runs.jsonl".to_owned());
    expected.insert(".invk-run/journal.jsonl".to_owned());
    // The report: the gallery, and the default grid (a two-key matrix) of each output node.
    for report in [
        "index.html",
        ".invk-run/report.json",
        "grid-Blurred.png",
        "grid-Blurred.png.json",
        "grid-Tinted.png",
        "grid-Tinted.png.json",
    ] {
        expected.insert(report.to_owned());
    }
    assert_eq!(files, expected);

    // Every output is a real PNG of the size asked for; its sidecar says what made it.
    let png = fs_err::read(root.join("hue-90/blur-3-Tinted.png")).expect("png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().expect("width"));
    assert_eq!(width, 48);
    let sidecar: Value = serde_json::from_str(
        &fs_err::read_to_string(root.join("hue-90/blur-3-Tinted.png.json")).expect("sidecar"),
    )
    .expect("json");
    assert_eq!(sidecar["inputs"]["Hue shift"], 90);
    assert_eq!(sidecar["inputs"]["Blur radius"], 3.0);
    assert_eq!(sidecar["node"]["label"], "Tinted");
    assert_eq!(sidecar["server"], support::server().url());
    assert!(sidecar["item_id"].as_i64().is_some());

    let summary: Vec<Value> = fs_err::read_to_string(root.join("runs.jsonl"))
        .expect("summary")
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    assert_eq!(summary.len(), 12);
    assert!(
        summary
            .iter()
            .all(|j| j["status"] == "completed" && j["files"].as_array().map(Vec::len) == Some(2))
    );

    // The server keeps nothing of the run: not the upload, not the outputs, not the
    // intermediates (every image any of its sessions made).
    let journal = ws.journal("out/job");
    let upload = journal
        .iter()
        .find(|e| e["event"] == "uploaded")
        .and_then(|e| e["image_name"].as_str())
        .expect("an upload")
        .to_owned();
    assert!(
        !image_exists(&upload),
        "the uploaded image is still on the server"
    );
    let outputs: Vec<String> = journal
        .iter()
        .filter(|e| e["event"] == "downloaded")
        .filter_map(|e| e["image_name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(outputs.len(), 24);
    for name in &outputs {
        assert!(!image_exists(name), "output {name} is still on the server");
    }
    assert_server_keeps_nothing_of(&journal);

    // A second run finds everything done and sends nothing; `--json` reports it in lines.
    let again = ws.run(&["--json", "job.yaml"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let lines: Vec<Value> = text(&again.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    insta::assert_json_snapshot!(lines, {
        "[].output_dir" => "[output dir]",
    }, @r#"
    [
      {
        "event": "nothing_to_do",
        "manifest": "job.yaml",
        "jobs": 12,
        "files": 24,
        "output_dir": "[output dir]"
      }
    ]
    "#);
    assert_eq!(report_less(files_under(&root)).len(), expected.len());
}

#[test]
fn a_run_killed_in_the_middle_finishes_on_restart_without_duplicates() {
    let ws = Workspace::new(SWEEP);
    let mut child = support::invk_run()
        .current_dir(ws.dir.path())
        .arg("--server")
        .arg(support::server().url())
        .arg("-q")
        .arg("job.yaml")
        .spawn()
        .expect("spawn");
    // Kill it once some, but not all, outputs are on disk.
    kill_after_downloads(&ws, &mut child, "out/job", 4);
    let before = ws.journal("out/job");
    let done_before = before.iter().filter(|e| e["event"] == "finished").count();
    assert!(done_before < 12, "the run finished before it was killed");

    let out = ws.run(&["job.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Exactly the expected files: nothing missing, nothing written twice (`-1` copies).
    let files: Vec<String> = files_under(&ws.path("out/job"))
        .into_iter()
        .filter(|f| is_output_png(f))
        .collect();
    assert_eq!(files.len(), 24, "{files:#?}");
    assert!(files.iter().all(|f| !f.contains("-1.png")), "{files:#?}");

    // No job was submitted twice: one enqueue, twelve items, all completed once.
    let journal = ws.journal("out/job");
    let intents: Vec<&Value> = journal
        .iter()
        .filter(|e| e["event"] == "enqueue_intent")
        .collect();
    assert_eq!(intents.len(), 1, "a job was submitted again");
    let finished: Vec<&str> = journal
        .iter()
        .filter(|e| e["event"] == "finished")
        .filter_map(|e| e["job"].as_str())
        .collect();
    let unique: BTreeSet<&str> = finished.iter().copied().collect();
    assert_eq!(unique.len(), 12);
    assert_eq!(finished.len(), 12, "a job finished twice");
    // The intermediates of the killed run are cleaned up by the resumed one.
    assert_server_keeps_nothing_of(&journal);
}

/// Kills (SIGKILL) the run `child` of `ws` once its journal in `out` records `count` downloads;
/// fails when the run ends first or nothing is downloaded within three minutes.
pub(crate) fn kill_after_downloads(
    ws: &Workspace,
    child: &mut std::process::Child,
    out: &str,
    count: usize,
) {
    kill_after_journaled_downloads(
        child,
        || ws.journal(out),
        count,
        Duration::from_secs(180),
        "the run",
    );
}

/// Kills (SIGKILL) `child` once the journal `journal` reads records `count` downloads; fails
/// when `who` (the child) ends first or nothing is downloaded `within`.
pub(crate) fn kill_after_journaled_downloads(
    child: &mut std::process::Child,
    journal: impl Fn() -> Vec<Value>,
    count: usize,
    within: Duration,
    who: &str,
) {
    let deadline = Instant::now() + within;
    loop {
        let downloaded = journal()
            .iter()
            .filter(|e| e["event"] == "downloaded")
            .count();
        if downloaded >= count {
            break;
        }
        assert!(Instant::now() < deadline, "no output of {who} appeared");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "{who} ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill");
    child.wait().expect("reap");
}

/// Every image the journal says the run made or uploaded is gone from the shared server.
fn assert_server_keeps_nothing_of(journal: &[Value]) {
    assert_server_keeps_nothing_at(support::server().url(), journal);
}

/// The server images the journal names: saved outputs, intermediates, and with `uploads`
/// the uploaded files too.
pub(crate) fn journal_images(journal: &[Value], uploads: bool) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for entry in journal {
        match entry["event"].as_str() {
            Some("uploaded") if uploads => {
                names.extend(entry["image_name"].as_str().map(str::to_owned));
            }
            Some("downloaded") => names.extend(entry["image_name"].as_str().map(str::to_owned)),
            Some("produced") => names.extend(
                entry["images"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n.as_str().map(str::to_owned)),
            ),
            _ => {}
        }
    }
    names
}

/// Every image the journal says the run made or uploaded is gone from the server at `url`.
pub(crate) fn assert_server_keeps_nothing_at(url: &str, journal: &[Value]) {
    let names = journal_images(journal, true);
    assert!(
        journal
            .iter()
            .any(|e| e["event"] == "produced"
                && e["images"].as_array().is_some_and(|i| !i.is_empty())),
        "the workflow made no intermediates: the test proves nothing"
    );
    for name in names {
        assert!(
            !image_exists_at(url, &name),
            "{name} is still on the server"
        );
    }
}

#[test]
fn every_invalid_manifest_is_refused_with_its_location_and_exit_2_before_anything_is_sent() {
    let dir = repo("tests/fixtures/manifests/invalid");
    let mut count = 0;
    for entry in fs_err::read_dir(&dir).expect("corpus") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        count += 1;
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        for args in [&["validate"][..], &[][..]] {
            // Port 1 has no server: a run that tried to send something would fail with exit 1.
            let out = support::invk_run()
                .current_dir(&dir)
                .args(args)
                .args(["--server", "http://127.0.0.1:1", &name])
                .output()
                .expect("run");
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {stderr}");
            assert!(
                stderr.contains(&format!("{name}:")) || stderr.contains(&name),
                "{name}: the error does not name the file: {stderr}"
            );
        }
    }
    assert!(count >= 20, "only {count} invalid manifests");
}

#[test]
fn a_model_workflow_is_accepted_and_its_server_failure_is_reported_with_exit_1() {
    let inst = support::installation();
    let sd15 = inst
        .default_workflows_dir()
        .expect("default workflows")
        .join("Text to Image - SD1.5.json");
    let ws = Workspace::new("");
    fs_err::copy(&sd15, ws.path("sd15.json")).expect("copy");
    let inputs = String::from_utf8(
        support::invk_run()
            .args(["inputs", "--json"])
            .arg(ws.path("sd15.json"))
            .output()
            .expect("inputs")
            .stdout,
    )
    .expect("utf8");
    let inputs: Value = serde_json::from_str(&inputs).expect("inputs json");
    let model = inputs["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .find(|i| i["type"].as_str().is_some_and(|t| t.starts_with("model")))
        .and_then(|i| i["system_name"].as_str())
        .expect("a model input")
        .to_owned();
    fs_err::write(
        ws.path("job.yaml"),
        format!(
            "version: 1\nworkflow: sd15.json\ninputs:\n  {model}: {{key: not-installed-0000, hash: 'blake3:00', name: Nonexistent SD1.5, base: sd-1, type: main}}\noutput:\n  dir: out\n"
        ),
    )
    .expect("manifest");
    let out = ws.run(&["job.yaml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("failed"), "{stderr}");
    let summary = fs_err::read_to_string(ws.path("out/runs.jsonl")).expect("summary");
    let line: Value = serde_json::from_str(summary.lines().next().expect("a line")).expect("json");
    assert_eq!(line["status"], "failed");
    let error = line["error"].as_str().expect("error");
    assert!(
        error.contains("not-installed-0000") || error.to_lowercase().contains("model"),
        "{error}"
    );
    let intents = |ws: &Workspace| {
        ws.journal("out")
            .iter()
            .filter(|e| e["event"] == "enqueue_intent")
            .count()
    };
    assert_eq!(intents(&ws), 1);

    // Run again: the failure is listed from the journal, nothing is resubmitted.
    let again = ws.run(&["job.yaml"]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again.stderr));
    assert_eq!(intents(&ws), 1, "a plain rerun resubmitted a failed job");
    let summary = fs_err::read_to_string(ws.path("out/runs.jsonl")).expect("summary");
    let last: Value = serde_json::from_str(summary.lines().last().expect("line")).expect("json");
    assert_eq!(last["status"], "failed");

    // `--retry-failed` submits it again (and it fails again).
    let retry = ws.run(&["--retry-failed", "job.yaml"]);
    assert_eq!(retry.status.code(), Some(1), "{}", text(&retry.stderr));
    assert_eq!(
        intents(&ws),
        2,
        "--retry-failed did not resubmit the failed job"
    );
}

#[test]
fn ctrl_c_stops_with_130_and_a_fresh_run_of_the_same_jobs_is_not_broken_by_deleted_intermediates() {
    let ws = Workspace::new(&SWEEP.replace("[0, 90, 180, 270]", "[0, 90]"));
    let mut child = support::invk_run()
        .current_dir(ws.dir.path())
        .arg("--server")
        .arg(support::server().url())
        .arg("job.yaml")
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(180);
    while ws
        .journal("out/job")
        .iter()
        .all(|e| e["event"] != "downloaded")
    {
        assert!(Instant::now() < deadline, "no output appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));

    // Resume finishes it; then a fresh run submits the same jobs again, after the first run
    // deleted its intermediates: the server's cache must not hand the deleted images back.
    let resumed = ws.run(&["-q", "job.yaml"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    let fresh = ws.run(&["--fresh", "-q", "job.yaml"]);
    assert_eq!(fresh.status.code(), Some(0), "{}", text(&fresh.stderr));
    let pngs = files_under(&ws.path("out/job"))
        .into_iter()
        .filter(|f| is_output_png(f))
        .count();
    // The fresh run never overwrites: its 12 files sit beside the first run's 12.
    assert!(ws.path("out/job/hue-0/blur-1-Tinted-1.png").is_file());
    assert_eq!(pngs, 24);
}

#[test]
fn every_bundled_manifest_validates_and_the_small_ones_run() {
    let jobs = repo("jobs");
    let mut names: Vec<String> = fs_err::read_dir(&jobs)
        .expect("jobs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    for name in &names {
        let out = support::invk_run()
            .current_dir(&jobs)
            .args(["validate", name])
            .output()
            .expect("validate");
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
    }

    // Run copies whose output goes to a temporary folder (the repository stays clean).
    let out_root = tempfile::tempdir().expect("tempdir");
    for (name, pngs) in [("framed-photos.yaml", 6), ("size-sweep.yaml", 8)] {
        let text_in = fs_err::read_to_string(jobs.join(name)).expect("read");
        let out_dir = out_root.path().join(name.trim_end_matches(".yaml"));
        let copy = jobs.join(format!(".test-{name}"));
        fs_err::write(
            &copy,
            text_in.replace(
                "dir: \"../out/{{ manifest.stem }}\"",
                &format!("dir: \"{}\"", out_dir.display()),
            ),
        )
        .expect("write copy");
        let out = support::invk_run()
            .current_dir(&jobs)
            .args(["--server", support::server().url(), "-q"])
            .arg(&copy)
            .output()
            .expect("run");
        let _ = fs_err::remove_file(&copy);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        let written = files_under(&out_dir)
            .into_iter()
            .filter(|f| is_output_png(f))
            .count();
        assert_eq!(written, pngs, "{name}");
    }
}

#[test]
fn a_multi_user_server_needs_a_login_and_then_runs_like_any_other() {
    let server = support::multiuser_server();
    let ws = Workspace::new(
        &SWEEP
            .replace("[0, 90, 180, 270]", "[0]")
            .replace("[1, 3, 6]", "[2]"),
    );
    let run = |login: bool| {
        let mut cmd = support::invk_run();
        cmd.current_dir(ws.dir.path())
            .args(["--server", server.url()]);
        if login {
            cmd.args(["--email", &server.admin_email])
                .env("INVK_PASSWORD", &server.admin_password);
        }
        cmd.arg("job.yaml").output().expect("run")
    };
    let refused = run(false);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains(&server.admin_password));

    let out = run(true);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains(&server.admin_password),
        "the password was printed"
    );
    let pngs = files_under(&ws.path("out/job"))
        .into_iter()
        .filter(|f| is_output_png(f))
        .count();
    assert_eq!(pngs, 2);
}

/// A run killed after it wrote a job's files but before it journaled the job's end, resumed on
/// another server (so the job runs again): the new outputs replace the files of the earlier
/// try, journaled or not, instead of landing beside them as `-1` copies.
#[test]
fn files_of_a_lost_item_are_replaced_when_its_job_runs_again_elsewhere() {
    let ws = Workspace::new(
        &SWEEP
            .replace("[0, 90, 180, 270]", "[0]")
            .replace("[1, 3, 6]", "[1, 3]"),
    );
    let first = ws.run(&["-q", "job.yaml"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let before: BTreeSet<String> = files_under(&ws.path("out/job"))
        .into_iter()
        .filter(|f| is_output_png(f))
        .collect();
    assert_eq!(before.len(), 4, "{before:#?}");

    // As if killed right after the files were written: no item's end is journaled, and one
    // file was placed but not journaled.
    let journal_path = ws.path("out/job/.invk-run/journal.jsonl");
    let mut dropped_one = false;
    let kept: Vec<String> = fs_err::read_to_string(&journal_path)
        .expect("journal")
        .lines()
        .filter(|line| {
            let entry: Value = serde_json::from_str(line).expect("json");
            match entry["event"].as_str() {
                Some("finished" | "deleted") => false,
                Some("downloaded") if !dropped_one => {
                    dropped_one = true;
                    false
                }
                _ => true,
            }
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(dropped_one);
    fs_err::write(&journal_path, kept.concat()).expect("rewrite journal");

    let other = support::multiuser_server();
    let out = ws
        .command(
            other.url(),
            &["--email", &other.admin_email, "-q", "job.yaml"],
        )
        .env("INVK_PASSWORD", &other.admin_password)
        .output()
        .expect("resume elsewhere");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after: BTreeSet<String> = files_under(&ws.path("out/job"))
        .into_iter()
        .filter(|f| is_output_png(f))
        .collect();
    assert_eq!(
        after, before,
        "the second try's outputs landed beside the first's"
    );
    // Every file and its sidecar now hold the second try's output.
    let journal = ws.journal("out/job");
    for file in &after {
        let sidecar: Value = serde_json::from_slice(
            &fs_err::read(ws.path(&format!("out/job/{file}.json"))).expect("sidecar"),
        )
        .expect("sidecar json");
        let latest = journal
            .iter()
            .rev()
            .find(|e| e["event"] == "downloaded" && e["file"] == file.as_str())
            .expect("journaled");
        assert_eq!(sidecar["image_name"], latest["image_name"], "{file}");
        assert_eq!(sidecar["server"], other.url(), "{file}");
    }
    let summary = fs_err::read_to_string(ws.path("out/job/runs.jsonl")).expect("summary");
    let last_run: Vec<Value> = summary
        .lines()
        .rev()
        .take(2)
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    for job in &last_run {
        assert_eq!(job["status"], "completed", "{summary}");
        assert_eq!(job["files"].as_array().map(Vec::len), Some(2), "{summary}");
    }
}

#[test]
fn a_run_killed_on_one_server_is_finished_on_another_with_fresh_uploads() {
    let ws = Workspace::new(&SWEEP.replace("[0, 90, 180, 270]", "[0, 90]"));
    let mut child = support::invk_run()
        .current_dir(ws.dir.path())
        .args(["--server", support::server().url(), "-q", "job.yaml"])
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(180);
    while ws
        .journal("out/job")
        .iter()
        .all(|e| e["event"] != "downloaded")
    {
        assert!(Instant::now() < deadline, "no output appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().expect("kill");
    child.wait().expect("reap");

    // The same manifest on the multi-user server: its items and uploads are not there, so the
    // unfinished jobs are submitted again there, with the photo uploaded again.
    let other = support::multiuser_server();
    let out = support::invk_run()
        .current_dir(ws.dir.path())
        .args([
            "--server",
            other.url(),
            "--email",
            &other.admin_email,
            "-q",
            "job.yaml",
        ])
        .env("INVK_PASSWORD", &other.admin_password)
        .output()
        .expect("resume elsewhere");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let journal = ws.journal("out/job");
    let uploads = journal.iter().filter(|e| e["event"] == "uploaded").count();
    assert_eq!(
        uploads, 2,
        "the photo was not uploaded again on the second server"
    );
    let pngs: Vec<String> = files_under(&ws.path("out/job"))
        .into_iter()
        .filter(|f| is_output_png(f))
        .collect();
    assert_eq!(pngs.len(), 12, "{pngs:#?}");
    let summary = fs_err::read_to_string(ws.path("out/job/runs.jsonl")).expect("summary");
    let last_run: Vec<Value> = summary
        .lines()
        .rev()
        .take(6)
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert!(
        last_run.iter().all(|j| j["status"] == "completed"),
        "{summary}"
    );
}
