//! A full disk loses nothing: a run whose output folder fills up stops with exit 1 and a message
//! that names the file and says what to do; what is on disk is whole, and the same command run
//! again after space is freed finishes without running any job twice.
//!
//! The output folder is a real full file system: a 1.5 MB tmpfs (mounting it needs root, as CI
//! runs), filled up but for a few pages.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::runner::{SWEEP, Workspace, assert_server_keeps_nothing_at, files_under, text};
use crate::support;

/// A tmpfs mounted on a folder, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs_err::create_dir_all(dir).expect("mkdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs as its output folder, which needs root: {}",
            text(&out.stderr)
        );
        Tmpfs {
            dir: dir.to_owned(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Every file under `root` is whole: PNGs decode, sidecars parse, and every line of the
/// journal and the summary parses but a torn last one, or the line `torn` of the journal (the
/// last line of a run that the full disk stopped, which its resumed run tolerates). Returns the
/// journal's number of lines.
fn assert_every_file_whole(root: &Path, torn: Option<usize>) -> usize {
    let mut journal_lines = 0;
    for file in files_under(root) {
        let path = root.join(&file);
        if file.ends_with(".png") {
            image::open(&path).unwrap_or_else(|e| panic!("{file} does not decode: {e}"));
        } else if file.ends_with(".png.json") {
            let bytes = fs_err::read(&path).expect("read sidecar");
            serde_json::from_slice::<Value>(&bytes)
                .unwrap_or_else(|e| panic!("sidecar {file} is not whole: {e}"));
        } else if file.ends_with(".jsonl") {
            let text = fs_err::read_to_string(&path).expect("read");
            let lines: Vec<&str> = text.lines().collect();
            let journal = file == ".invk-run/journal.jsonl";
            if journal {
                journal_lines = lines.len();
            }
            for (i, line) in lines.iter().enumerate() {
                let parsed = serde_json::from_str::<Value>(line);
                assert!(
                    parsed.is_ok() || i + 1 == lines.len() || (journal && torn == Some(i + 1)),
                    "{file}:{}: a torn line before the last: {line}",
                    i + 1
                );
            }
        }
    }
    journal_lines
}

/// The outputs under `root` (no thumbnails, no grids).
fn output_pngs(root: &Path) -> Vec<String> {
    files_under(root)
        .into_iter()
        .filter(|f| f.ends_with(".png") && !f.starts_with(".invk-run/") && !f.starts_with("grid"))
        .collect()
}

#[test]
fn a_full_disk_stops_the_run_with_what_to_do_and_the_rerun_finishes_each_job_once() {
    let server = support::server();
    let ws = Workspace::new(SWEEP);
    let out_dir = ws.path("out");
    let _tmpfs = Tmpfs::mount(&out_dir, "1500k");
    // All but 192 KiB taken: the run fills the rest after a few of its 12 jobs.
    let filler = out_dir.join("filler.bin");
    fs_err::write(&filler, vec![7u8; (1500 - 192) * 1024]).expect("fill the tmpfs");

    let full = ws.run_on(server.url(), &["job.yaml"]);
    let stderr = text(&full.stderr);
    assert_eq!(full.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        stderr.contains("out/job/"),
        "the message names the file: {stderr}"
    );
    assert!(
        stderr.contains("Free some space") && stderr.contains("run the same command again"),
        "the message says what to do: {stderr}"
    );
    let root = ws.path("out/job");
    let journal_lines = assert_every_file_whole(&root, None);
    let saved = output_pngs(&root).len();
    assert!(
        (1..24).contains(&saved),
        "{saved} of 24 outputs were saved before the disk was full: the test checks nothing"
    );

    // Space is freed; the same command resumes.
    fs_err::remove_file(&filler).expect("free space");
    let again = ws.run_on(server.url(), &["job.yaml"]);
    let stderr = text(&again.stderr);
    assert_eq!(again.status.code(), Some(0), "{stderr}");
    assert_every_file_whole(&root, Some(journal_lines));
    let pngs = output_pngs(&root);
    assert_eq!(pngs.len(), 24, "{pngs:#?}");
    assert!(pngs.iter().all(|f| !f.contains("-1.png")), "{pngs:#?}");

    // Each job was enqueued once and completed once, over both runs.
    let journal = ws.journal("out/job");
    let mut enqueued: BTreeMap<String, usize> = BTreeMap::new();
    for entry in journal.iter().filter(|e| e["event"] == "enqueue_intent") {
        for job in entry["jobs"].as_array().into_iter().flatten() {
            *enqueued.entry(job.to_string()).or_default() += 1;
        }
    }
    assert_eq!(enqueued.len(), 12, "{enqueued:#?}");
    assert!(enqueued.values().all(|&n| n == 1), "{enqueued:#?}");
    let mut completed: BTreeMap<String, usize> = BTreeMap::new();
    for entry in journal
        .iter()
        .filter(|e| e["event"] == "finished" && e["status"] == "completed")
    {
        *completed.entry(entry["job"].to_string()).or_default() += 1;
    }
    assert_eq!(completed.len(), 12, "{completed:#?}");
    assert!(completed.values().all(|&n| n == 1), "{completed:#?}");

    // The server ends clean: none of the run's images, none of its items pending.
    assert_server_keeps_nothing_at(server.url(), &journal);
    let addr = server
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    for entry in journal.iter().filter(|e| e["event"] == "enqueued") {
        for id in entry["item_ids"].as_array().into_iter().flatten() {
            let (status, body) =
                invk_run::local_server::http_get(addr, &format!("/api/v1/queue/default/i/{id}"))
                    .expect("GET");
            if status == 200 {
                let item: Value = serde_json::from_str(&body).expect("json");
                assert!(
                    !matches!(item["status"].as_str(), Some("pending" | "in_progress")),
                    "item {id} is still {}",
                    item["status"]
                );
            }
        }
    }
}
