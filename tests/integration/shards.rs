//! Shards: one sweep split over several runner processes writing into one output folder
//! (`--shard K/N`, docs/scale.md). Three shards of a 24-job sweep on a pool of two real servers;
//! one killed and rerun alone; the shard spec refused before anything is sent; the dry run of a
//! shard; `status` of a folder of shards.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::runner::{Workspace, files_under, is_output_png, text};
use crate::support;
use crate::support::private::PrivateServer;

// 24 jobs of two outputs each.
use crate::pool::POOL_SWEEP as SWEEP;

fn both(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// `invk-run --server A --server B --shard K/3 job.yaml` in the workspace.
fn shard_command(ws: &Workspace, servers: &[&str], shard: &str) -> std::process::Command {
    let mut cmd = support::invk_run();
    cmd.current_dir(ws.dir.path());
    for url in servers {
        cmd.arg("--server").arg(url);
    }
    cmd.args(["--json", "--shard", shard, "job.yaml"]);
    cmd
}

/// The journal lines of shard `k` of 3.
fn shard_journal(ws: &Workspace, k: u32) -> Vec<Value> {
    ws.journal_file(&format!("out/.invk-run/journal.{k}-of-3.jsonl"))
}

/// The job index of a journal's job or session key (`INDEX-HASH[#SESSION]`).
fn index_of(key: &Value) -> usize {
    key.as_str()
        .and_then(|k| k.split('-').next())
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("not a job key: {key}"))
}

/// The jobs a journal enqueued, and those it records as completed (with repeats).
fn enqueued_and_completed(journal: &[Value]) -> (BTreeSet<usize>, Vec<usize>) {
    let enqueued = journal
        .iter()
        .filter(|e| e["event"] == "enqueue_intent")
        .flat_map(|e| e["jobs"].as_array().cloned().unwrap_or_default())
        .map(|k| index_of(&k))
        .collect();
    let completed = journal
        .iter()
        .filter(|e| e["event"] == "finished" && e["status"] == "completed")
        .map(|e| index_of(&e["job"]))
        .collect();
    (enqueued, completed)
}

/// Kills (SIGKILL) `child` once shard `k`'s journal records `count` downloads.
fn kill_after_downloads(ws: &Workspace, child: &mut Child, k: u32, count: usize) {
    crate::runner::kill_after_journaled_downloads(
        child,
        || shard_journal(ws, k),
        count,
        Duration::from_secs(240),
        &format!("shard {k}"),
    );
}

/// Exactly the 48 outputs of the sweep, each once (no `-1` copies), and no temporary file.
fn assert_every_output_once(ws: &Workspace) {
    let all = files_under(&ws.path("out"));
    let outputs: BTreeSet<String> = all.iter().filter(|f| is_output_png(f)).cloned().collect();
    let expected: BTreeSet<String> = [0, 90, 180, 270]
        .iter()
        .flat_map(|hue| {
            (1..=6).flat_map(move |blur| {
                ["Blurred", "Tinted"].map(|label| format!("hue-{hue}/blur-{blur}-{label}.png"))
            })
        })
        .collect();
    assert_eq!(
        outputs,
        expected,
        "missing: {:?}\nextra: {:?}",
        expected.difference(&outputs).collect::<Vec<_>>(),
        outputs.difference(&expected).collect::<Vec<_>>()
    );
    let stray: Vec<&String> = all
        .iter()
        .filter(|f| {
            f.ends_with(".part")
                || f.rsplit('/')
                    .next()
                    .is_some_and(|n| n.starts_with(".invk-"))
        })
        .collect();
    assert!(stray.is_empty(), "temporary files left: {stray:?}");
}

/// `invk-run status out` (the servers it asks are those the journals name).
fn status_text(ws: &Workspace) -> String {
    let out = support::invk_run()
        .current_dir(ws.dir.path())
        .env_remove("INVK_SERVER")
        .args(["status", "out"])
        .output()
        .expect("status");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    text(&out.stdout)
}

#[test]
fn three_shards_on_a_pool_write_one_folder_and_a_killed_shard_reruns_alone() {
    let private = PrivateServer::start(None);
    let a = private.url();
    let b = support::server().url().to_owned();
    let servers = [a.as_str(), b.as_str()];
    let ws = Workspace::new(SWEEP);

    // Three shard processes at once, into one folder; shard 1 is killed mid-run.
    let started = Instant::now();
    let mut children: Vec<Child> = (0..3)
        .map(|k| {
            shard_command(&ws, &servers, &format!("{k}/3"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a shard")
        })
        .collect();
    kill_after_downloads(&ws, &mut children[1], 1, 2);
    for k in [0, 2] {
        let child = children.remove(if k == 0 { 0 } else { 1 });
        let out = child.wait_with_output().expect("shard");
        assert_eq!(out.status.code(), Some(0), "shard {k}/3: {}", both(&out));
    }
    let first_pass = started.elapsed();

    // Each shard enqueued only its own jobs (index = K modulo 3); the two that ended did all
    // of theirs, each job once.
    for k in 0..3u32 {
        let (enqueued, completed) = enqueued_and_completed(&shard_journal(&ws, k));
        assert!(
            enqueued.iter().all(|j| j % 3 == k as usize),
            "shard {k}/3 enqueued {enqueued:?}"
        );
        if k != 1 {
            let want: BTreeSet<usize> = (k as usize..24).step_by(3).collect();
            assert_eq!(enqueued, want, "shard {k}/3");
            let once: BTreeSet<usize> = completed.iter().copied().collect();
            assert_eq!(once, want, "shard {k}/3");
            assert_eq!(completed.len(), 8, "a job of shard {k}/3 completed twice");
        }
    }
    // `status` sees the three shards; the killed one is not done.
    let status = status_text(&ws);
    assert!(status.contains("shards: 3"), "{status}");
    for line in ["0/3", "2/3"] {
        assert!(
            status
                .lines()
                .any(|l| l.contains(line) && l.contains("(done)")),
            "{status}"
        );
    }
    assert!(
        status
            .lines()
            .any(|l| l.contains("1/3") && !l.contains("(done)")),
        "{status}"
    );

    // A folder of 3 shards refuses another count, before anything is sent or written.
    let before: BTreeMap<u32, Vec<Value>> = (0..3).map(|k| (k, shard_journal(&ws, k))).collect();
    let other = shard_command(&ws, &servers, "0/2").output().expect("run");
    assert_eq!(other.status.code(), Some(2), "{}", both(&other));
    let said = text(&other.stderr);
    assert!(
        said.contains("split into 3 shards")
            && said.contains("--shard K/3")
            && said.contains("--fresh"),
        "{said}"
    );
    assert!(!ws.path("out/.invk-run/journal.0-of-2.jsonl").exists());

    // Shard 1 rerun alone finishes its own jobs only; the others' journals are not touched.
    let again = shard_command(&ws, &servers, "1/3").output().expect("rerun");
    assert_eq!(again.status.code(), Some(0), "{}", both(&again));
    for k in [0, 2] {
        assert_eq!(
            shard_journal(&ws, k),
            before[&k],
            "shard {k}/3's journal changed"
        );
    }
    let journal = shard_journal(&ws, 1);
    let (enqueued, completed) = enqueued_and_completed(&journal);
    let own: BTreeSet<usize> = (1..24).step_by(3).collect();
    assert!(enqueued.is_subset(&own), "{enqueued:?}");
    let once: BTreeSet<usize> = completed.iter().copied().collect();
    assert_eq!(once, own);
    assert_eq!(completed.len(), 8, "a job of shard 1/3 completed twice");

    // One folder: every file once, `runs.jsonl` a line per job, one gallery of 24 jobs.
    assert_every_output_once(&ws);
    let summary = fs_err::read_to_string(ws.path("out/runs.jsonl")).expect("runs.jsonl");
    let mut lines: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for line in summary.lines() {
        let v: Value = serde_json::from_str(line).expect("a whole JSON line");
        lines
            .entry(v["job"].as_u64().expect("job"))
            .or_default()
            .push(v["status"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(lines.len(), 24, "{summary}");
    assert!(
        lines
            .values()
            .all(|s| s.last().map(String::as_str) == Some("completed")),
        "{lines:?}"
    );
    let page = fs_err::read_to_string(ws.path("out/index.html")).expect("index.html");
    assert!(
        page.contains("24 jobs · 24 completed · 0 failed") && page.contains("48 files"),
        "{}",
        page.lines()
            .find(|l| l.contains("counts"))
            .unwrap_or_default()
    );
    let status = status_text(&ws);
    assert!(status.contains("completed        24"), "{status}");
    for k in 0..3 {
        assert!(
            status
                .lines()
                .any(|l| l.contains(&format!("{k}/3")) && l.contains("(done)")),
            "{status}"
        );
    }
    eprintln!("first pass (three shards, one killed): {first_pass:?}");
}

/// A manifest of 24 jobs that need no server to check.
fn offline_workspace() -> Workspace {
    Workspace::new(SWEEP)
}

#[test]
fn a_bad_shard_is_refused_before_anything_is_sent_naming_the_variable() {
    let ws = offline_workspace();
    // Nothing listens on port 9: a run that got as far as the server would fail with exit 1.
    let run = |spec: &str, env: &[(&str, &str)]| {
        let mut cmd = ws.command("http://127.0.0.1:9", &["--shard", spec, "job.yaml"]);
        for name in [
            "INVK_SHARD",
            "JOB_COMPLETION_INDEX",
            "SLURM_ARRAY_TASK_ID",
            "SLURM_ARRAY_TASK_COUNT",
            "SLURM_ARRAY_TASK_MIN",
            "SLURM_ARRAY_TASK_MAX",
            "SLURM_ARRAY_TASK_STEP",
        ] {
            cmd.env_remove(name);
        }
        cmd.envs(env.iter().copied());
        cmd.output().expect("run")
    };
    for (spec, env, says) in [
        ("auto", vec![("INVK_SHARD", "3/3")], "INVK_SHARD"),
        (
            "auto",
            vec![("JOB_COMPLETION_INDEX", "1")],
            "--shard auto/N",
        ),
        (
            "auto/4",
            vec![("JOB_COMPLETION_INDEX", "4")],
            "JOB_COMPLETION_INDEX=4",
        ),
        (
            "auto",
            vec![("SLURM_ARRAY_TASK_ID", "2")],
            "SLURM_ARRAY_TASK_COUNT",
        ),
        ("auto", vec![], "no shard in the environment"),
        ("4/3", vec![], "numbered from 0 to 2"),
    ] {
        let out = run(spec, &env);
        assert_eq!(out.status.code(), Some(2), "{spec} {env:?}: {}", both(&out));
        let err = text(&out.stderr);
        assert!(err.contains(says), "{spec} {env:?}: {err}");
        assert!(!ws.path("out").exists(), "{spec}: something was written");
    }
}

#[test]
fn the_dry_run_of_a_shard_says_how_many_and_which_jobs_it_runs() {
    let ws = offline_workspace();
    let out = ws
        .command(
            "http://127.0.0.1:9",
            &["--dry-run", "--shard", "1/3", "job.yaml"],
        )
        .output()
        .expect("dry run");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "shard 1/3: runs 8 of the 24 jobs (those whose index is 1 modulo 3): jobs 1, 4, 7, 10, …, 19, 22"
        ),
        "{err}"
    );
    assert!(err.contains("files: 16 (2 per job"), "{err}");
    let plan: Value = serde_json::from_slice(&out.stdout).expect("the plan");
    assert_eq!(plan["shard"]["shard"], "1/3");
    assert_eq!(plan["shard"]["jobs"], 8);
    let jobs: Vec<u64> = plan["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["index"].as_u64().expect("index"))
        .collect();
    assert_eq!(jobs, [1, 4, 7, 10, 13, 16, 19, 22]);
    let sessions: usize = plan["enqueues"]
        .as_array()
        .expect("enqueues")
        .iter()
        .map(|e| e["jobs"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(sessions == 0 || sessions == 8, "{sessions}");
    assert!(!ws.path("out").exists());
}

/// Writes a journal of shard `k` of 3 of a 24-job sweep in `dir`: jobs `done` completed (a
/// file each, on disk), `failed` failed.
fn fake_shard_journal(dir: &Path, k: u32, done: &[usize], failed: &[usize]) {
    use serde_json::json;
    let mut lines = vec![json!({"event": "started", "run_id": format!("run{k}"),
        "plan_hash": "h-24", "server": "http://gpu-1:9090", "jobs": 24})];
    for (n, job) in done.iter().chain(failed).enumerate() {
        let key = format!("{job}-{:016x}", 7);
        let batch = format!("b{k}-{n}");
        let item = 100 * u64::from(k) + n as u64;
        lines.push(json!({"event": "enqueue_intent", "batch_id": batch, "jobs": [key]}));
        lines.push(json!({"event": "enqueued", "batch_id": batch, "item_ids": [item]}));
        let ok = done.contains(job);
        lines.push(json!({"event": "finished", "job": key, "item_id": item,
            "status": if ok { "completed" } else { "failed" }}));
        if ok {
            let file = format!("{job}.png");
            fs_err::write(dir.join(&file), "png").expect("file");
            lines.push(json!({"event": "downloaded", "job": key,
                "image_name": format!("i{job}.png"), "file": file}));
        }
    }
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs_err::create_dir_all(dir.join(".invk-run")).expect("mkdir");
    fs_err::write(dir.join(format!(".invk-run/journal.{k}-of-3.jsonl")), text).expect("journal");
}

#[test]
fn status_of_a_folder_of_shards_sums_them_with_a_line_per_shard() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("out");
    fs_err::create_dir_all(&dir).expect("mkdir");
    // Shard 0 did all 8 of its jobs, shard 1 did 3 and one failed, shard 2 never started.
    fake_shard_journal(&dir, 0, &[0, 3, 6, 9, 12, 15, 18, 21], &[]);
    fake_shard_journal(&dir, 1, &[1, 4, 7], &[10]);
    let out = support::invk_run()
        .current_dir(tmp.path())
        .env_remove("INVK_SERVER")
        .args(["status", "out"])
        .output()
        .expect("status");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    insta::assert_snapshot!("status_of_shards", text(&out.stdout));
    let json = support::invk_run()
        .current_dir(tmp.path())
        .env_remove("INVK_SERVER")
        .args(["--json", "status", "out"])
        .output()
        .expect("status --json");
    let v: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(v["jobs"], 24);
    assert_eq!(v["completed"], 11);
    assert_eq!(v["failed"], 1);
    assert_eq!(v["not_started"], 12);
    let shards = v["shards"].as_array().expect("shards");
    assert_eq!(shards.len(), 3);
    assert_eq!(shards[1]["shard"], "1/3");
    assert_eq!(shards[1]["not_started"], 4);
    assert_eq!(shards[2]["never_started"], true);
    assert_eq!(shards[2]["not_started"], 8);
}

/// An example file of `examples/scale/`.
fn example(name: &str) -> String {
    fs_err::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/scale")
            .join(name),
    )
    .expect("example")
}

/// The `invk-run` command lines of a shell script (continued lines joined), as words.
fn invk_run_lines(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("invk-run ") || l.starts_with("run: invk-run "))
        .map(|l| {
            let l = l.trim_start_matches("run: ").trim_end_matches('&').trim();
            l.split_whitespace()
                .map(|w| w.trim_matches('"').to_owned())
                .collect()
        })
        .collect()
}

/// Parses a command line as the binary does; panics with clap's message when it is refused.
fn accepted(words: &[String]) -> invk_run::cli::Cli {
    use clap::Parser;
    invk_run::cli::Cli::try_parse_from(words).unwrap_or_else(|e| panic!("{words:?}: {e}"))
}

/// The shard a parsed command line runs with the variables `env` set.
fn shard_of(cli: &invk_run::cli::Cli, env: &[(&str, String)]) -> invk_run::run::shard::Shard {
    let spec = cli.run.shard.expect("the command names a shard");
    invk_run::run::shard::resolve(spec, &|name| {
        env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("{env:?}: {e}"))
}

/// Shards that are N of N, each once.
fn assert_all_shards(mut shards: Vec<invk_run::run::shard::Shard>, n: u32) {
    shards.sort();
    let want: Vec<String> = (0..n).map(|k| format!("{k}/{n}")).collect();
    let got: Vec<String> = shards.iter().map(ToString::to_string).collect();
    assert_eq!(got, want);
}

#[test]
fn the_scale_examples_parse_and_their_shards_cover_the_sweep_once() {
    // Kubernetes: the container's command, with JOB_COMPLETION_INDEX of each completion.
    let k8s: Value = serde_norway::from_str(&example("kubernetes-indexed-job.yaml")).expect("YAML");
    let spec = &k8s["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let completions = spec["completions"].as_u64().expect("completions") as u32;
    let command: Vec<String> = spec["template"]["spec"]["containers"][0]["command"]
        .as_array()
        .expect("command")
        .iter()
        .map(|w| w.as_str().expect("a word").to_owned())
        .collect();
    let cli = accepted(&command);
    assert_eq!(cli.run.manifests, ["jobs/hue-grid.yaml"]);
    let shards = (0..completions)
        .map(|i| shard_of(&cli, &[("JOB_COMPLETION_INDEX", i.to_string())]))
        .collect();
    assert_all_shards(shards, completions);

    // GitHub Actions: the step's command for each value of the matrix.
    let gha: Value = serde_norway::from_str(&example("github-actions-matrix.yml")).expect("YAML");
    let job = &gha["jobs"]["shard"];
    let matrix = job["strategy"]["matrix"]["shard"]
        .as_array()
        .expect("matrix");
    let run = job["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find_map(|s| s["run"].as_str())
        .expect("a run step");
    let shards = matrix
        .iter()
        .map(|k| {
            let line = run.replace("${{ matrix.shard }}", &k.to_string());
            let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            shard_of(&accepted(&words), &[])
        })
        .collect();
    assert_all_shards(shards, matrix.len() as u32);

    // Slurm: each task of `#SBATCH --array=A-B` with the variables Slurm sets.
    let slurm = example("slurm-array.sh");
    let range = slurm
        .lines()
        .find_map(|l| l.strip_prefix("#SBATCH --array="))
        .expect("an array");
    let (min, max) = range.split_once('-').expect("a range");
    let (min, max): (u32, u32) = (min.parse().expect("min"), max.parse().expect("max"));
    let lines = invk_run_lines(&slurm);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let cli = accepted(&lines[0]);
    let shards = (min..=max)
        .map(|id| {
            shard_of(
                &cli,
                &[
                    ("SLURM_ARRAY_TASK_ID", id.to_string()),
                    ("SLURM_ARRAY_TASK_COUNT", (max - min + 1).to_string()),
                    ("SLURM_ARRAY_TASK_MIN", min.to_string()),
                    ("SLURM_ARRAY_TASK_MAX", max.to_string()),
                ],
            )
        })
        .collect();
    assert_all_shards(shards, max - min + 1);

    // One host: the loop's line for k = 0 ... N-1, and the status line after it.
    let local = example("local-shards.sh");
    let n: u32 = local
        .lines()
        .find_map(|l| l.strip_prefix("N="))
        .and_then(|n| n.parse().ok())
        .expect("N=");
    let lines = invk_run_lines(&local);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let shards = (0..n)
        .map(|k| {
            let words: Vec<String> = (lines[0].iter())
                .map(|w| {
                    w.replace("$k", &k.to_string())
                        .replace("$N", &n.to_string())
                })
                .collect();
            shard_of(&accepted(&words), &[])
        })
        .collect();
    assert_all_shards(shards, n);
    assert!(matches!(
        accepted(&lines[1]).command,
        Some(invk_run::cli::Command::Status { .. })
    ));
    // The manifest the examples run is a bundled one.
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(command.last().expect("manifest"))
            .is_file()
    );
}
