//! Sweeps from data files (`sweep.table`, `{lines: FILE}`) and reproducible seeds, end to end on
//! a real server: the values in the sidecars, the errors placed in the data files, and the
//! seeds a killed and resumed run records.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};

use crate::runner::{Workspace, files_under, is_output_png, kill_after_downloads, text};
use crate::support;

/// A workspace with the example workflow that has `Seed` (integer) and `Prompt` (string)
/// inputs, as `seeded-tint.json`, and data files beside the manifest.
fn workspace(manifest: &str, files: &[(&str, &str)]) -> Workspace {
    let ws = Workspace::new(manifest);
    fs_err::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workflows/seeded-tint.json"),
        ws.path("seeded-tint.json"),
    )
    .expect("copy workflow");
    for (name, body) in files {
        fs_err::write(ws.path(name), body).expect("write data file");
    }
    ws
}

/// Every output's sidecar under `out`, by output file.
fn sidecars(out: &Path) -> BTreeMap<String, Value> {
    files_under(out)
        .into_iter()
        .filter(|f| is_output_png(f))
        .map(|f| {
            let side = fs_err::read(out.join(format!("{f}.json"))).expect("sidecar");
            let side: Value = serde_json::from_slice(&side).expect("sidecar json");
            (f, side)
        })
        .collect()
}

/// The width of a PNG file (from its IHDR chunk).
fn png_width(path: &Path) -> u32 {
    let bytes = fs_err::read(path).expect("png");
    u32::from_be_bytes(bytes[16..20].try_into().expect("ihdr"))
}

const TABLE_RUN: &str = r#"
version: 1
workflow: seeded-tint.json
inputs:
  Source image: photos/sunset.png
sweep:
  table: styles.csv
  matrix:
    Width: [24, 40]
output:
  dir: "out/{{ manifest.stem }}"
  name: "{{ job.number }}-{{ node.label }}"
"#;

const STYLES: &str = "Prompt,Hue shift\n\
\"a lighthouse, at dusk\",0\n\
\"a \"\"quoted\"\" fox\",60\n\
\"two\nlines\",120\n\
a harbour,180\n\
a tree,240\n\
a moon,300\n";

#[test]
fn a_table_of_six_rows_times_a_two_value_matrix_runs_twelve_jobs_with_its_values() {
    let ws = workspace(TABLE_RUN, &[("styles.csv", STYLES)]);
    let out = ws.run_on(support::server().url(), &["-q", "job.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let rows = [
        ("a lighthouse, at dusk", 0),
        ("a \"quoted\" fox", 60),
        ("two\nlines", 120),
        ("a harbour", 180),
        ("a tree", 240),
        ("a moon", 300),
    ];
    let mut expected = BTreeMap::new();
    for (i, (prompt, hue)) in rows.iter().enumerate() {
        for (j, width) in [24, 40].iter().enumerate() {
            expected.insert(
                i * 2 + j,
                json!({"Prompt": prompt, "Hue shift": hue, "Width": width}),
            );
        }
    }
    let root = ws.path("out/job");
    let sides = sidecars(&root);
    assert_eq!(sides.len(), 24, "two outputs per job: {:#?}", sides.keys());
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for (file, side) in &sides {
        let job = usize::try_from(side["job"].as_u64().expect("job")).expect("index");
        *seen.entry(job).or_default() += 1;
        let want = &expected[&job];
        for key in ["Prompt", "Hue shift", "Width"] {
            assert_eq!(side["inputs"][key], want[key], "{file}: input {key}");
        }
        // Sweep values are as written: a CSV cell is text, the matrix's values are numbers.
        assert_eq!(side["sweep"]["Prompt"], want["Prompt"], "{file}");
        assert_eq!(
            side["sweep"]["Hue shift"],
            json!(want["Hue shift"].to_string()),
            "{file}"
        );
        assert_eq!(side["sweep"]["Width"], want["Width"], "{file}");
        // The server made what the row asked for: the thumbnail is as wide as the job's Width.
        assert_eq!(
            u64::from(png_width(&root.join(file))),
            want["Width"].as_u64().expect("width"),
            "{file}"
        );
    }
    assert_eq!(seen.len(), 12, "{seen:?}");
    assert!(seen.values().all(|&n| n == 2), "{seen:?}");
}

#[test]
fn a_prompt_list_of_five_lines_runs_five_jobs() {
    let manifest = r#"
version: 1
workflow: seeded-tint.json
inputs:
  Source image: photos/sea.png
  Width: 24
sweep:
  matrix:
    Prompt: {lines: prompts.txt}
output:
  dir: "out/{{ manifest.stem }}"
  name: "{{ job.number }}-{{ node.label }}"
"#;
    let prompts = "# five prompts\na lighthouse\n\na red fox, in snow\n  # indented comment\n\"quoted\"\na harbour  \nthe moon\n";
    let ws = workspace(manifest, &[("prompts.txt", prompts)]);
    let out = ws.run_on(support::server().url(), &["-q", "job.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let sides = sidecars(&ws.path("out/job"));
    let by_job: BTreeMap<u64, String> = sides
        .values()
        .map(|s| {
            (
                s["job"].as_u64().expect("job"),
                s["inputs"]["Prompt"].as_str().expect("prompt").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        by_job.into_values().collect::<Vec<_>>(),
        [
            "a lighthouse",
            "a red fox, in snow",
            "\"quoted\"",
            "a harbour",
            "the moon"
        ]
    );
    assert_eq!(sides.len(), 10, "two outputs per job");
}

#[test]
fn a_bad_table_is_refused_with_exit_2_at_its_line_before_anything_is_sent() {
    let manifest = TABLE_RUN.replace("    Width: [24, 40]\n", "    Width: [24]\n");
    let cases = [
        (
            "a ragged row",
            "Prompt,Hue shift\na fox,0\na tree\na moon,300\n",
            "styles.csv:3:1: error: this row has 1 field, the header has 2",
        ),
        (
            "an unknown column",
            "Prompt,Hue shfit\na fox,0\n",
            "styles.csv:1:8: error: column `Hue shfit` is not an input of the workflow, and no template uses it",
        ),
        (
            "a non-number in a number column",
            "Prompt,Hue shift\na fox,0\na tree,ninety\n",
            "styles.csv:3:8: error: invalid value for input `Hue shift`: `ninety` is not an integer",
        ),
    ];
    for (what, csv, expected) in cases {
        let ws = workspace(&manifest, &[("styles.csv", csv)]);
        for url in [support::server().url(), "http://127.0.0.1:1"] {
            // Port 1 has no server: a run that tried to send something would fail with exit 1.
            let out = ws.run_on(url, &["job.yaml"]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
            assert!(stderr.contains(expected), "{what}: {stderr}");
            assert!(!ws.path("out").exists(), "{what}: the run wrote something");
        }
        let out = support::invk_run()
            .current_dir(ws.dir.path())
            .args(["validate", "job.yaml"])
            .output()
            .expect("validate");
        assert_eq!(out.status.code(), Some(2), "{what}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(expected), "{what}: {stderr}");
        insta::assert_snapshot!(format!("bad_table_{}", what.replace(' ', "_")), stderr);
    }
}

const SEEDED: &str = r#"
version: 1
workflow: seeded-tint.json
seed: 41
inputs:
  Source image: photos/sunset.png
  Width: 512
  Seed: {seed: random}
sweep:
  matrix:
    Hue shift: [0, 30, 60, 90, 120, 150]
runs: 2
output:
  dir: "out/{{ manifest.stem }}"
  name: "{{ job.number }}-{{ node.label }}"
"#;

/// The seed of each job, as the dry run lists them (no server).
fn dry_run_seeds(ws: &Workspace) -> BTreeMap<u64, u64> {
    let out = ws.run_on("http://127.0.0.1:1", &["--dry-run", "job.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listing: Value = serde_json::from_slice(&out.stdout).expect("dry run json");
    listing["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            (
                j["index"].as_u64().expect("index"),
                j["seeds"]["Seed"].as_u64().expect("seed"),
            )
        })
        .collect()
}

#[test]
fn a_run_killed_and_resumed_records_the_same_seeds_in_every_sidecar() {
    let ws = workspace(SEEDED, &[]);
    let planned = dry_run_seeds(&ws);
    assert_eq!(planned.len(), 12);
    assert_eq!(
        planned.values().collect::<BTreeSet<_>>().len(),
        12,
        "every job has its own seed: {planned:?}"
    );
    // The documented derivation: the manifest seed, the input's key, the repeat and the sweep.
    let hue0_run1 = invk_run::manifest::derive_seed(
        41,
        &json!({"input": "Seed", "run": 1, "sweep": [["Hue shift", 0]]}),
    );
    assert_eq!(planned[&6], hue0_run1);

    let mut child = ws
        .command(support::server().url(), &["-q", "job.yaml"])
        .spawn()
        .expect("spawn");
    kill_after_downloads(&ws, &mut child, "out/job", 2);
    let before = sidecars(&ws.path("out/job"));
    assert!(!before.is_empty() && before.len() < 24, "{}", before.len());

    let out = ws.run_on(support::server().url(), &["-q", "job.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let after = sidecars(&ws.path("out/job"));
    assert_eq!(after.len(), 24, "{:#?}", after.keys());
    for (file, side) in &after {
        let job = side["job"].as_u64().expect("job");
        let seed = planned[&job];
        assert_eq!(side["seed"], seed, "{file}");
        assert_eq!(side["seeds"], json!({"Seed": seed}), "{file}");
        assert_eq!(side["inputs"]["Seed"], seed, "{file}: the seed sent");
        if let Some(earlier) = before.get(file) {
            assert_eq!(earlier["seed"], side["seed"], "{file}");
        }
    }
    // `runs.jsonl` records them too (the resumed run's summary covers every job).
    let summary = fs_err::read_to_string(ws.path("out/job/runs.jsonl")).expect("runs.jsonl");
    let mut lines: BTreeMap<u64, u64> = BTreeMap::new();
    for line in summary.lines() {
        let v: Value = serde_json::from_str(line).expect("json line");
        lines.insert(
            v["job"].as_u64().expect("job"),
            v["seed"].as_u64().expect("seed"),
        );
        assert_eq!(v["seeds"]["Seed"], v["seed"]);
    }
    assert_eq!(lines, planned);
}

/// A table's other columns (fixed by the row, so by the `Prompt` axis) and a second sweep.
const TABLE_GRID: &str = r#"
version: 1
workflow: seeded-tint.json
inputs:
  Source image: photos/sunset.png
sweep:
  table: styles.csv
  matrix:
    Width: [24, 40]
output:
  dir: "out/{{ manifest.stem }}"
  name: "{{ job.number }}-{{ node.label }}"
  grid: {x: Width, y: Prompt, node: Tinted}
"#;

/// The same table with a dimension of its own besides the grid's axes: `Width`.
const TABLE_GRID_PAGED: &str = r#"
version: 1
workflow: seeded-tint.json
inputs:
  Source image: photos/sunset.png
sweep:
  table: styles.csv
  matrix:
    Width: [24, 40]
    Seed: [1, 2]
output:
  dir: "out/{{ manifest.stem }}"
  name: "{{ job.number }}-{{ node.label }}"
  grid: {x: Seed, y: Prompt, node: Tinted}
"#;

const STYLES_3: &str = "Prompt,Hue shift,Blur radius\n\
\"a lighthouse at dusk, oil painting\",0,1\n\
a quiet harbour,120,2\n\
a red fox,240,3\n";

/// The grid files (image and layout) of an output folder, by name as a user lists them.
fn grid_files(out: &Path) -> BTreeMap<String, Value> {
    files_under(out)
        .into_iter()
        .filter(|f| f.starts_with("grid") && f.ends_with(".png"))
        .map(|f| {
            let layout = fs_err::read(out.join(format!("{f}.json"))).expect("grid layout");
            (f, serde_json::from_slice(&layout).expect("layout json"))
        })
        .collect()
}

#[test]
fn a_table_grid_makes_pages_only_of_real_dimensions_and_its_files_have_plain_names() {
    let ws = workspace(TABLE_GRID, &[("styles.csv", STYLES_3)]);
    fs_err::write(ws.path("paged.yaml"), TABLE_GRID_PAGED).expect("write manifest");
    let out = ws.run_on(support::server().url(), &["-q", "job.yaml", "paged.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Width × Prompt: the row's Hue shift and Blur radius come with its Prompt: one grid, full.
    let one = grid_files(&ws.path("out/job"));
    assert_eq!(
        one.keys().collect::<Vec<_>>(),
        ["grid-Tinted.png"],
        "{one:#?}"
    );
    let layout = &one["grid-Tinted.png"];
    assert_eq!(layout["page"], json!({}));
    assert_eq!(layout["rows"].as_array().map(Vec::len), Some(3));
    let cells = layout["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 6);
    assert!(cells.iter().all(|c| c["kind"] == "image"), "{cells:#?}");

    // Seed × Prompt: Width varies within a row, so it makes pages, named plainly; the layout
    // beside each keeps the key and value as written.
    let paged = grid_files(&ws.path("out/paged"));
    assert_eq!(
        paged.keys().collect::<Vec<_>>(),
        ["grid-Tinted-Width-24.png", "grid-Tinted-Width-40.png"],
        "{paged:#?}"
    );
    for (name, layout) in &paged {
        assert!(!name.contains([' ', '=', ',']), "{name}");
        let width: u64 = name
            .trim_start_matches("grid-Tinted-Width-")
            .trim_end_matches(".png")
            .parse()
            .expect("width");
        assert_eq!(layout["page"], json!({"Width": width}), "{name}");
        let cells = layout["cells"].as_array().expect("cells");
        assert_eq!(cells.len(), 6);
        assert!(
            cells.iter().all(|c| c["kind"] == "image"),
            "{name}: {cells:#?}"
        );
    }
}

/// A table of 300 rows on the Y axis: each row's other column (its hue) comes with it, so
/// validation counts no pages for it (it would be 300, past the bound of 256).
#[test]
fn a_table_on_a_grid_axis_is_not_refused_for_pages_its_other_columns_would_make() {
    let mut rows = String::from("Prompt,Hue shift\n");
    for i in 0..300 {
        rows.push_str(&format!("prompt {i},{}\n", i % 360));
    }
    let manifest = TABLE_GRID.replace("node: Tinted}", "node: Tinted, cell: 64}");
    let ws = workspace(&manifest, &[("styles.csv", &rows)]);
    let out = support::invk_run()
        .current_dir(ws.path(""))
        .args(["validate", "--server", "http://127.0.0.1:1", "job.yaml"])
        .output()
        .expect("validate");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("valid: 600 jobs"),
        "{}",
        text(&out.stderr)
    );
}
