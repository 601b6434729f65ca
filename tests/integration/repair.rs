//! A rerun repairs: files of finished jobs deleted from disk come back (downloaded again while
//! the server has their images, else their jobs run again, only those), `status` says which;
//! a run with nothing to do says so before any server is started or asked; a server that does
//! not answer is found before anything is planned or written; `status` on the parent of
//! `watch --each` runs summarises them.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::runner::{SWEEP, Workspace, files_under, is_output_png, text};
use crate::support;

/// The runner's sweep cut to four jobs (two hues, two blurs): eight files.
fn sweep_4(extra: &str) -> String {
    SWEEP
        .replace("[0, 90, 180, 270]", "[0, 90]")
        .replace("[1, 3, 6]", "[1, 3]")
        + extra
}

/// `invk-run ARGS...` in the workspace, without `--server`.
fn invk(ws: &Workspace, args: &[&str]) -> std::process::Output {
    support::invk_run()
        .current_dir(ws.dir.path())
        .args(args)
        .output()
        .expect("run invk-run")
}

/// The journal entries of an event.
fn events<'a>(journal: &'a [Value], event: &str) -> Vec<&'a Value> {
    journal.iter().filter(|e| e["event"] == event).collect()
}

/// The job a file's sidecar names.
fn job_of(ws: &Workspace, file: &str) -> u64 {
    let sidecar: Value = serde_json::from_str(
        &fs_err::read_to_string(ws.path(&format!("out/job/{file}.json"))).expect("sidecar"),
    )
    .expect("json");
    sidecar["job"].as_u64().expect("job")
}

/// The lines of `status` from its `missing` line on.
fn missing_lines(stdout: &[u8]) -> String {
    let out = text(stdout);
    let from = out.find("  missing").unwrap_or(out.len());
    out[from..].to_owned()
}

#[test]
fn deleted_outputs_come_back_byte_identical_from_the_server_and_nothing_is_sent() {
    let ws = Workspace::new(&sweep_4("cleanup:\n  outputs: never\n"));
    let url = support::server().url();
    let first = ws.run_on(url, &["job.yaml"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));

    // Two outputs go; of the second, its sidecar too.
    let gone = ["hue-0/blur-1-Tinted.png", "hue-90/blur-3-Blurred.png"];
    let before: Vec<Vec<u8>> = gone
        .iter()
        .map(|f| fs_err::read(ws.path(&format!("out/job/{f}"))).expect("output"))
        .collect();
    let sidecar_before =
        fs_err::read_to_string(ws.path(&format!("out/job/{}.json", gone[1]))).expect("sidecar");
    for f in gone {
        fs_err::remove_file(ws.path(&format!("out/job/{f}"))).expect("delete");
    }
    fs_err::remove_file(ws.path(&format!("out/job/{}.json", gone[1]))).expect("delete sidecar");
    let journal_before = ws.journal("out/job");

    // `status` says how a rerun treats them: the server still has both images.
    let status = invk(&ws, &["status", "--server", url, "out/job"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    assert!(
        text(&status.stdout).contains("6 of 8 files still on disk"),
        "{}",
        text(&status.stdout)
    );
    insta::assert_snapshot!(missing_lines(&status.stdout), @r"
      missing           2  files of completed jobs; a rerun brings them back:
        hue-0/blur-1-Tinted.png: a rerun downloads it again
        hue-90/blur-3-Blurred.png: a rerun downloads it again
    ");

    let again = ws.run_on(url, &["job.yaml"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let stderr = text(&again.stderr);
    assert!(
        stderr.contains(
            "2 of the files of finished jobs are missing from disk (hue-0/blur-1-Tinted.png, \
             hue-90/blur-3-Blurred.png); downloaded 2 again from the server"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("4 jobs (4 already done)"), "{stderr}");
    for (f, bytes) in gone.iter().zip(&before) {
        let now = fs_err::read(ws.path(&format!("out/job/{f}"))).expect("restored");
        assert!(now == *bytes, "{f} is not the file it was");
    }
    // The sidecar is written again from the server's queue item: the same output.
    let sidecar: Value = serde_json::from_str(
        &fs_err::read_to_string(ws.path(&format!("out/job/{}.json", gone[1]))).expect("sidecar"),
    )
    .expect("json");
    let earlier: Value = serde_json::from_str(&sidecar_before).expect("json");
    for field in [
        "image_name",
        "item_id",
        "job",
        "session_id",
        "node",
        "inputs",
    ] {
        assert_eq!(sidecar[field], earlier[field], "{field}");
    }
    // Nothing else was sent: no upload, no enqueue; nothing else was written.
    let journal = ws.journal("out/job");
    for event in [
        "uploaded",
        "enqueue_intent",
        "enqueued",
        "finished",
        "downloaded",
    ] {
        assert_eq!(
            events(&journal, event).len(),
            events(&journal_before, event).len(),
            "the rerun journaled a new `{event}`"
        );
    }
    let pngs: Vec<String> = files_under(&ws.path("out/job"))
        .into_iter()
        .filter(|f| is_output_png(f))
        .collect();
    assert_eq!(pngs.len(), 8, "{pngs:#?}");

    // With `--json`, the repair is one event before the plan.
    fs_err::remove_file(ws.path(&format!("out/job/{}", gone[0]))).expect("delete");
    let json = ws.run_on(url, &["--json", "job.yaml"]);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json.stderr));
    let lines: Vec<Value> = text(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    insta::assert_json_snapshot!(lines[..2], { "[].output_dir" => "[output dir]" }, @r#"
    [
      {
        "event": "repairing",
        "manifest": "job.yaml",
        "missing": [
          "hue-0/blur-1-Tinted.png"
        ],
        "downloaded": [
          "hue-0/blur-1-Tinted.png"
        ],
        "run_again": [],
        "message": "1 of the files of finished jobs is missing from disk (hue-0/blur-1-Tinted.png); downloaded 1 again from the server"
      },
      {
        "event": "planned",
        "manifest": "job.yaml",
        "jobs": 4,
        "done": 4,
        "failed": 0,
        "window": 16,
        "output_dir": "[output dir]"
      }
    ]
    "#);
    let now = fs_err::read(ws.path(&format!("out/job/{}", gone[0]))).expect("restored");
    assert!(now == before[0], "{} is not the file it was", gone[0]);

    // Everything is there now: `status` has nothing missing.
    let status = invk(&ws, &["status", "--server", url, "out/job"]);
    assert!(
        text(&status.stdout).contains("8 files on disk")
            && !text(&status.stdout).contains("missing"),
        "{}",
        text(&status.stdout)
    );
}

#[test]
fn a_missing_output_whose_image_the_cleanup_deleted_runs_its_job_again_and_only_it() {
    let ws = Workspace::new(&sweep_4(""));
    let url = support::server().url();
    let first = ws.run_on(url, &["job.yaml"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let gone = "hue-90/blur-1-Tinted.png";
    let job = job_of(&ws, gone);
    fs_err::remove_file(ws.path(&format!("out/job/{gone}"))).expect("delete");
    let intents_before = events(&ws.journal("out/job"), "enqueue_intent").len();

    let status = invk(&ws, &["status", "--server", url, "out/job"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    assert_eq!(
        missing_lines(&status.stdout),
        format!(
            "  missing           1  file of completed jobs; a rerun brings it back:\n    \
             {gone}: a rerun runs job {job} again (its image is gone from the server)\n"
        )
    );

    let again = ws.run_on(url, &["job.yaml"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let stderr = text(&again.stderr);
    assert!(
        stderr.contains(&format!(
            "1 of the files of finished jobs is missing from disk ({gone}); job {job} runs \
             again: the run's cleanup deleted the image of `{gone}` from the server"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("4 jobs (3 already done)"), "{stderr}");
    // One new enqueue, of that job alone.
    let journal = ws.journal("out/job");
    let intents = events(&journal, "enqueue_intent");
    assert_eq!(intents.len(), intents_before + 1, "{intents:#?}");
    let sent = intents[intents.len() - 1]["jobs"]
        .as_array()
        .expect("jobs")
        .clone();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(
        sent[0]
            .as_str()
            .is_some_and(|k| k.starts_with(&format!("{job}-"))),
        "{sent:#?}"
    );
    // The job's outputs are back in their places: no copy beside them.
    let pngs: Vec<String> = files_under(&ws.path("out/job"))
        .into_iter()
        .filter(|f| is_output_png(f))
        .collect();
    assert_eq!(pngs.len(), 8, "{pngs:#?}");
    assert!(pngs.iter().all(|f| !f.contains("-1.png")), "{pngs:#?}");
    let png = fs_err::read(ws.path(&format!("out/job/{gone}"))).expect("back");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn a_finished_run_with_its_files_has_nothing_to_do_and_local_starts_no_server() {
    let ws = Workspace::new(&sweep_4("").replace("[0, 90]", "[0]"));
    let first = ws.run_on(support::server().url(), &["job.yaml"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let journal_before = ws.journal("out/job");

    // A private server's root would be a folder of the temporary folder: none appears.
    let tmp = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let again = support::invk_run()
        .current_dir(ws.dir.path())
        .env("TMPDIR", tmp.path())
        .args(["--local", "job.yaml"])
        .output()
        .expect("run invk-run");
    let took = started.elapsed();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let stderr = text(&again.stderr);
    assert!(
        stderr.contains("job.yaml: nothing to do: its 2 jobs are done and their 4 files on disk"),
        "{stderr}"
    );
    assert!(!stderr.contains("starting a private InvokeAI"), "{stderr}");
    assert!(!stderr.contains("up to"), "a plan was printed: {stderr}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let made: Vec<String> = fs_err::read_dir(tmp.path())
        .expect("tmp")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(made.is_empty(), "{made:?}");
    assert_eq!(ws.journal("out/job"), journal_before, "the journal grew");

    // `--json`: one event says it.
    let json = invk(
        &ws,
        &["--json", "--server", "http://127.0.0.1:9", "job.yaml"],
    );
    assert_eq!(json.status.code(), Some(0), "{}", text(&json.stderr));
    let lines: Vec<Value> = text(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    insta::assert_json_snapshot!(lines, { "[].output_dir" => "[output dir]" }, @r#"
    [
      {
        "event": "nothing_to_do",
        "manifest": "job.yaml",
        "jobs": 2,
        "files": 4,
        "output_dir": "[output dir]"
      }
    ]
    "#);
}

/// A run stopped (`kill -9`) after its last download and before its end's work: its journal
/// has no `ended` line and the grids and gallery are not written yet. The rerun is not "nothing
/// to do": it sends nothing, does the end (grids, gallery, cleanup) and says it ended; the run
/// after that has nothing to do.
#[test]
fn a_run_stopped_before_its_end_does_the_end_on_the_rerun_and_sends_nothing() {
    let ws = Workspace::new(&sweep_4(""));
    let url = support::server().url();
    let first = ws.run_on(url, &["job.yaml"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let journal = ws.path("out/job/.invk-run/journal.jsonl");
    let lines = fs_err::read_to_string(&journal).expect("journal");
    assert!(lines.ends_with("{\"event\":\"ended\"}\n"), "{lines}");
    let enqueued = events(&ws.journal("out/job"), "enqueued").len();

    // As the kill leaves it: the journal up to the last download, no grids, no gallery.
    fs_err::write(&journal, lines.trim_end_matches("{\"event\":\"ended\"}\n")).expect("cut");
    let end_files = ["grid-Blurred.png", "grid-Tinted.png", "index.html"];
    for f in end_files {
        fs_err::remove_file(ws.path(&format!("out/job/{f}"))).expect("an end file");
    }

    let again = ws.run_on(url, &["job.yaml"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    let stderr = text(&again.stderr);
    assert!(!stderr.contains("nothing to do"), "{stderr}");
    for f in end_files {
        assert!(
            ws.path(&format!("out/job/{f}")).is_file(),
            "{f} written again"
        );
    }
    let journal_now = ws.journal("out/job");
    assert_eq!(
        events(&journal_now, "enqueued").len(),
        enqueued,
        "nothing was sent again"
    );
    assert_eq!(journal_now.last().expect("a line")["event"], "ended");

    let third = ws.run_on(url, &["job.yaml"]);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third.stderr));
    assert!(
        text(&third.stderr).contains("nothing to do"),
        "{}",
        text(&third.stderr)
    );
}

/// A loopback URL nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn a_server_that_does_not_answer_is_found_before_the_plan_with_the_way_out() {
    let ws = Workspace::new(&sweep_4(""));
    for servers in [
        closed_port(),
        format!("{},{}", closed_port(), closed_port()),
    ] {
        let out = ws.run_on(&servers, &["job.yaml"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        for way_out in ["--server URL", "INVK_SERVER", "--local"] {
            assert!(stderr.contains(way_out), "no `{way_out}` in: {stderr}");
        }
        assert!(stderr.contains("nothing was sent"), "{stderr}");
        assert!(!stderr.contains("up to 16 at a time"), "{stderr}");
        assert!(!ws.path("out").exists(), "the run wrote its output folder");
    }
    let one = ws.run_on(&closed_port(), &["job.yaml"]);
    let first = text(&one.stderr);
    let first = first.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: the InvokeAI server at http://127.0.0.1:")
            && first.contains("does not answer; nothing was sent. Start it, name a server"),
        "{first}"
    );
}

/// Writes a run's journal and files into `dir`: `jobs` done with one file each (those in
/// `missing` journaled but not on disk, their images deleted by the cleanup), and `failed`
/// jobs failed.
fn fake_run(dir: &Path, jobs: &[usize], failed: &[usize], missing: &[usize]) {
    let key = |job: usize| format!("{job}-{:016x}", job + 1);
    let mut lines = vec![serde_json::json!({
        "event": "started", "run_id": "r", "plan_hash": "h",
        "server": "http://127.0.0.1:9090", "jobs": jobs.len() + failed.len(),
    })];
    let all: Vec<usize> = jobs.iter().chain(failed).copied().collect();
    lines.push(serde_json::json!({
        "event": "enqueue_intent", "batch_id": "b",
        "jobs": all.iter().map(|j| key(*j)).collect::<Vec<_>>(),
    }));
    lines.push(serde_json::json!({
        "event": "enqueued", "batch_id": "b",
        "item_ids": all.iter().map(|j| j + 1).collect::<Vec<_>>(),
    }));
    for &job in jobs {
        let file = format!("{job}.png");
        lines.push(serde_json::json!({
            "event": "downloaded", "job": key(job), "image_name": format!("i{job}.png"),
            "file": file,
        }));
        lines.push(serde_json::json!({
            "event": "finished", "job": key(job), "item_id": job + 1, "status": "completed",
        }));
        if missing.contains(&job) {
            lines.push(
                serde_json::json!({"event": "deleted", "image_names": [format!("i{job}.png")]}),
            );
        } else {
            fs_err::write(dir.join(&file), support::png::png(2, 2, [9, 9, 9])).expect("png");
        }
    }
    for &job in failed {
        lines.push(serde_json::json!({
            "event": "finished", "job": key(job), "item_id": job + 1, "status": "failed",
            "error": "boom",
        }));
    }
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    fs_err::create_dir_all(dir.join(".invk-run")).expect("mkdir");
    fs_err::write(dir.join(".invk-run/journal.jsonl"), text).expect("journal");
}

#[test]
fn status_of_the_parent_of_each_runs_lists_the_runs_below_it() {
    let ws = Workspace::new(&sweep_4(""));
    let parent = ws.path("out/each");
    for (name, jobs, failed, missing) in [
        ("cat", &[0, 1][..], &[][..], &[][..]),
        ("dog", &[0][..], &[1][..], &[][..]),
        ("nested/fox", &[0, 1, 2][..], &[][..], &[2][..]),
    ] {
        let dir = parent.join(name);
        fs_err::create_dir_all(&dir).expect("mkdir");
        fake_run(&dir, jobs, failed, missing);
    }
    // A folder without a run is passed over.
    fs_err::create_dir_all(parent.join("empty")).expect("mkdir");

    let out = invk(&ws, &["status", "out/each"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    insta::assert_snapshot!(text(&out.stdout), @r"
    out/each: no run of its own; 3 runs in the folders below it
    out/each/cat: 2 jobs, last run on http://127.0.0.1:9090
      completed         2  (2 files on disk)
      failed            0
      on server         0
      not started       0
    out/each/dog: 2 jobs, last run on http://127.0.0.1:9090
      completed         1  (1 files on disk)
      failed            1
      on server         0
      not started       0
    out/each/nested/fox: 3 jobs, last run on http://127.0.0.1:9090
      completed         3  (2 of 3 files still on disk)
      failed            0
      on server         0
      not started       0
      missing           1  file of completed jobs; a rerun brings it back:
        2.png: a rerun runs job 2 again (its image is gone from the server)
    in all: 3 runs, 7 jobs, 6 completed, 1 failed, 0 on server, 1 file missing
    ");

    let json = invk(&ws, &["status", "--json", "out/each"]);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json.stderr));
    let v: Value = serde_json::from_slice(&json.stdout).expect("json");
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[2]["missing"][0]["repair"], "run_again");
    assert_eq!(runs[2]["missing"][0]["file"], "2.png");

    // A folder with no run anywhere below it still says so.
    let none = invk(&ws, &["status", "photos"]);
    assert_ne!(none.status.code(), Some(0));
    assert!(
        text(&none.stderr).contains("holds no run"),
        "{}",
        text(&none.stderr)
    );
}
