//! The output-folder rules on a real server: links refused, sidecars follow their file, long
//! names cut with a hash, and an output that cannot be saved left on the server (listed in
//! `runs.jsonl`) while the job's intermediates are cleaned up.

#![cfg(unix)]

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;

use serde_json::Value;

use crate::runner::{
    Workspace, assert_server_keeps_nothing_at, files_under, image_exists_at, is_output_png,
    journal_images, text,
};
use crate::support;

const TWO_JOBS: &str = r#"
version: 1
workflow: blur-and-tint.json
inputs:
  Source image: photos/sunset.png
  Width: 32
  Blur radius: 2
sweep:
  matrix:
    Hue shift: [0, 90]
output:
  dir: out/job
  name: "{{ node.label }}/hue-{{ sweep['Hue shift'] }}"
"#;

fn summary_lines(ws: &Workspace) -> Vec<Value> {
    fs_err::read_to_string(ws.path("out/job/runs.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

#[test]
fn a_linked_output_folder_or_journal_is_refused_before_anything_is_sent() {
    let outside = tempfile::tempdir().expect("outside");
    for linked in ["out/job", "out/job/.invk-run"] {
        let ws = Workspace::new(TWO_JOBS);
        fs_err::create_dir_all(ws.path("out/job")).expect("mkdir");
        if linked == "out/job" {
            fs_err::remove_dir(ws.path("out/job")).expect("rmdir");
        }
        symlink(outside.path(), ws.path(linked)).expect("link");
        let out = ws.run_on(support::server().url(), &["job.yaml"]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{linked}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "`{linked}` is a symbolic link (to `{}`)",
                outside.path().display()
            )),
            "{linked}: {stderr}"
        );
        assert!(
            !stderr.contains("uploaded") && !stderr.contains("enqueued"),
            "{stderr}"
        );
        assert_eq!(
            files_under(outside.path()),
            BTreeSet::new(),
            "{linked}: nothing is written through the link"
        );
    }
}

#[test]
fn a_linked_sub_folder_fails_its_jobs_and_leaves_only_their_outputs_on_the_server() {
    let url = support::server().url();
    let outside = tempfile::tempdir().expect("outside");
    let ws = Workspace::new(TWO_JOBS);
    fs_err::create_dir_all(ws.path("out/job")).expect("mkdir");
    symlink(outside.path(), ws.path("out/job/Tinted")).expect("link");
    let out = ws.run_on(url, &["job.yaml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let link = ws.path("out/job/Tinted");
    assert!(
        stderr.contains("`out/job/Tinted` is a symbolic link"),
        "{stderr}"
    );
    assert_eq!(files_under(outside.path()), BTreeSet::new());
    // The other output of each job is saved with its sidecar.
    let saved = files_under(&ws.path("out/job/Blurred"));
    assert_eq!(
        saved,
        [
            "hue-0.png",
            "hue-0.png.json",
            "hue-90.png",
            "hue-90.png.json"
        ]
        .map(str::to_owned)
        .into()
    );
    let lines = summary_lines(&ws);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let journal = ws.journal("out/job");
    for line in &lines {
        assert_eq!(line["status"], "failed", "{line}");
        assert!(
            line["error"]
                .as_str()
                .is_some_and(|e| e.contains("symbolic link") && e.contains("left on the server")),
            "{line}"
        );
        let left = line["left_on_server"].as_array().expect("left_on_server");
        assert_eq!(left.len(), 1, "{line}");
        let name = left[0].as_str().expect("name");
        assert!(
            image_exists_at(url, name),
            "{name} was not saved and must stay"
        );
    }
    // Everything else of the run is gone: saved outputs, intermediates, uploads stay only on a
    // failure (`uploads: on-success`), so check the saved outputs and the intermediates.
    let gone = journal_images(&journal, false);
    assert!(gone.len() >= 4, "{journal:?}");
    let uploads: BTreeSet<String> = journal
        .iter()
        .filter(|e| e["event"] == "uploaded")
        .filter_map(|e| e["image_name"].as_str().map(str::to_owned))
        .collect();
    for name in gone.iter().filter(|n| !uploads.contains(*n)) {
        assert!(!image_exists_at(url, name), "{name} is still on the server");
    }

    // With the link gone, running the manifest again saves what was left (the items are still
    // on the server), keeps the files saved before (no `-1` copies) and cleans up everything.
    let left: Vec<String> = lines
        .iter()
        .flat_map(|l| l["left_on_server"].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect();
    fs_err::remove_file(&link).expect("unlink");
    let again = ws.run_on(url, &["job.yaml"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(files_under(&ws.path("out/job/Blurred")), saved);
    assert_eq!(
        files_under(&ws.path("out/job/Tinted")),
        saved,
        "the same names under Tinted"
    );
    for name in &left {
        assert!(!image_exists_at(url, name), "{name} is still on the server");
    }
    assert_server_keeps_nothing_at(url, &ws.journal("out/job"));
}

#[test]
fn an_existing_sidecar_is_never_replaced_and_long_names_stay_distinct() {
    let url = support::server().url();
    let ws = Workspace::new(TWO_JOBS);
    fs_err::create_dir_all(ws.path("out/job/Blurred")).expect("mkdir");
    let theirs = ws.path("out/job/Blurred/hue-0.png.json");
    fs_err::write(&theirs, "user data").expect("write");
    let out = ws.run_on(url, &["job.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(fs_err::read_to_string(&theirs).expect("read"), "user data");
    let blurred = files_under(&ws.path("out/job/Blurred"));
    assert_eq!(
        blurred,
        [
            "hue-0-1.png",
            "hue-0-1.png.json",
            "hue-0.png.json",
            "hue-90.png",
            "hue-90.png.json"
        ]
        .map(str::to_owned)
        .into()
    );
    let sidecar: Value = serde_json::from_str(
        &fs_err::read_to_string(ws.path("out/job/Blurred/hue-0-1.png.json")).expect("read"),
    )
    .expect("sidecar");
    assert_eq!(sidecar["sweep"]["Hue shift"], 0);

    // Eight outputs whose names differ only after 5,000 characters: eight distinct files.
    let long = "n".repeat(5000);
    let manifest = format!(
        r#"
version: 1
workflow: blur-and-tint.json
inputs:
  Source image: photos/sunset.png
  Width: 32
  Blur radius: 2
sweep:
  matrix:
    Hue shift: [0, 90, 180, 270]
output:
  dir: out/long
  name: "{long}-{{{{ sweep['Hue shift'] }}}}-{{{{ node.label }}}}"
"#
    );
    let ws = Workspace::new(&manifest);
    let out = ws.run_on(url, &["job.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let pngs: Vec<String> = files_under(&ws.path("out/long"))
        .into_iter()
        .filter(|f| is_output_png(f))
        .collect();
    assert_eq!(pngs.len(), 8, "{pngs:?}");
    for name in &pngs {
        assert!(name.len() <= 210, "{} bytes", name.len());
        assert!(name.starts_with(&"n".repeat(180)), "{name}");
        assert!(!name.contains("-1.png"), "no suffix was needed: {name}");
        assert!(
            ws.path(&format!("out/long/{name}.json")).is_file(),
            "{name} has its sidecar"
        );
    }
}
