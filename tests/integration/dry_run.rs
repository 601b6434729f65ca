//! `--dry-run` answers "what will I get": the inputs by the names the manifest uses, the files
//! each job will write (the first ones, and how many more), the grids and the gallery; on
//! stderr for a person, in the JSON document on stdout for a program. Nothing is sent (the
//! server address leads nowhere).

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support;

fn repo(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `invk-run --dry-run MANIFEST` in `dir`, with `extra` arguments.
fn dry_run(dir: &Path, manifest: &str, extra: &[&str]) -> Output {
    let out = support::invk_run()
        .current_dir(dir)
        .args(["--dry-run", "--server", "http://127.0.0.1:1"])
        .args(extra)
        .arg(manifest)
        .env_remove("NO_COLOR")
        .output()
        .expect("dry run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The document's fields besides the jobs and payloads, and its first job.
fn document_head(stdout: &[u8]) -> Value {
    let doc: Value = serde_json::from_slice(stdout).expect("one JSON document");
    serde_json::json!({
        "output_dir": doc["output_dir"],
        "grids": doc["grids"],
        "gallery": doc["gallery"],
        "jobs": doc["jobs"].as_array().map(Vec::len),
        "first_job": doc["jobs"][0],
    })
}

#[test]
fn the_dry_run_of_a_bundled_example_names_its_inputs_files_and_grid() {
    let out = dry_run(&repo("jobs"), "hue-grid.yaml", &[]);
    insta::assert_snapshot!(
        "bundled_example_summary",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_json_snapshot!("bundled_example_document", document_head(&out.stdout));
}

/// A sweep with a prompt list and a key on no grid axis (a page per width).
const SWEEP: &str = r#"
version: 1
workflow: seeded-tint.json
inputs:
  Source image: sunset.png
  Height: 32
sweep:
  matrix:
    Prompt: ["a fox, in snow", "a tree"]
    Width: [24, 40]
    Hue shift: [0, 120, 240]
output:
  dir: out
  name: "{{ sweep.Prompt }}/w{{ sweep.Width }}-hue{{ sweep['Hue shift'] }}-{{ node.label }}"
  grid: {x: Hue shift, y: Prompt, node: Tinted}
"#;

#[test]
fn the_dry_run_of_a_sweep_lists_the_first_files_counts_the_rest_and_names_each_page_grid() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs_err::copy(
        repo("examples/workflows/seeded-tint.json"),
        dir.path().join("seeded-tint.json"),
    )
    .expect("copy workflow");
    fs_err::copy(
        repo("examples/images/sunset.png"),
        dir.path().join("sunset.png"),
    )
    .expect("copy photo");
    fs_err::write(dir.path().join("m.yaml"), SWEEP).expect("manifest");

    let out = dry_run(dir.path(), "m.yaml", &[]);
    let summary = String::from_utf8_lossy(&out.stderr).into_owned();
    insta::assert_snapshot!("sweep_summary", summary);
    // 12 jobs, two outputs each: ten listed, the rest counted.
    assert!(summary.contains("files: 24 "), "{summary}");
    assert!(summary.contains("and 14 more"), "{summary}");
    // The JSON document says the same to a program, with every job's files.
    let json = dry_run(dir.path(), "m.yaml", &["--json"]);
    assert!(
        json.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let doc: Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    let files: usize = doc["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["files"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(files, 24);
    insta::assert_json_snapshot!("sweep_document", document_head(&json.stdout));
}
