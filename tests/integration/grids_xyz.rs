//! X/Y/Z grids, cell captions and the values a grid holds fixed, on real runs on the real
//! server: each sub-grid's cells compared pixel for pixel with the jobs' own outputs; and the
//! images × prompts recipe (a `zip` of a glob and a list of lines), one image per prompt.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::report::{Workspace, dark_pixels, decode, holds, layout, outputs_by_sweep, repo, text};

/// A Hue shift × Blur radius grid per seed (two derived seeds), on the model-free seeded-tint
/// workflow: 12 jobs. One grid with its sub-grids side by side and a caption under each cell,
/// one stacked without captions.
const XYZ: &str = r#"
version: 1
workflow: seeded-tint.json
seed: 11
inputs:
  Source image: photos/sunset.png
  Width: 40
  Prompt: a lighthouse
sweep:
  matrix:
    Hue shift: [0, 120, 240]
    Blur radius: [1, 4]
    Seed: {seeds: 2}
output:
  dir: out
  name: "{{ job.number }}-{{ node.label }}"
  grid:
    - x: Hue shift
      y: Blur radius
      z: Seed
      node: Tinted
      name: xyz-across
      caption: "seed {{ seed }}, hue {{ sweep['Hue shift'] }}"
    - x: Hue shift
      y: Blur radius
      z: Seed
      z_layout: down
      node: Tinted
      name: xyz-down
"#;

/// The workspace of a manifest on the seeded-tint workflow.
fn seeded(manifest: &str) -> Workspace {
    let ws = Workspace::new(manifest);
    fs_err::copy(
        repo("examples/workflows/seeded-tint.json"),
        ws.path("seeded-tint.json"),
    )
    .expect("copy workflow");
    ws
}

/// Sweep values as the canonical text `outputs_by_sweep` keys outputs by.
fn sweep_of(values: &[(&str, &Value)]) -> String {
    let m: BTreeMap<&str, &Value> = values.iter().copied().collect();
    serde_json::to_string(&m).expect("json")
}

/// Checks that `grid` (under `out`) has the columns `x` (an X key and its values), the Blur
/// radius rows 1 and 4 and two seeds, and that every cell of every sub-grid holds exactly the
/// `Tinted` output of the job with its X value, Blur radius and Seed; returns the grid's image
/// and layout.
fn check_xyz(out: &std::path::Path, grid: &str, x: (&str, &[Value])) -> (image::RgbImage, Value) {
    let path = out.join(grid);
    let image = decode(&path);
    let layout = layout(&path);
    assert_eq!(
        (image.width(), image.height()),
        (
            layout["width"].as_u64().expect("w") as u32,
            layout["height"].as_u64().expect("h") as u32
        )
    );
    let outputs = outputs_by_sweep(out);
    let columns = layout["columns"].as_array().expect("columns").clone();
    let rows = layout["rows"].as_array().expect("rows").clone();
    let layers = layout["layers"].as_array().expect("layers").clone();
    assert_eq!(columns, x.1);
    assert_eq!(rows, [json!(1), json!(4)]);
    assert_eq!(layers.len(), 2, "two seeds: {layers:?}");
    assert_ne!(layers[0], layers[1]);
    let subs = layout["sub_grids"].as_array().expect("sub-grids");
    assert_eq!(subs.len(), 2);
    let cell = layout["cell"].as_u64().expect("cell") as u32;
    let mut placed = 0;
    for (b, sub) in subs.iter().enumerate() {
        assert_eq!(sub["z"], layers[b]);
        for (j, top) in sub["row_tops"].as_array().expect("tops").iter().enumerate() {
            for (i, left) in sub["column_lefts"]
                .as_array()
                .expect("lefts")
                .iter()
                .enumerate()
            {
                let key = sweep_of(&[
                    (x.0, &columns[i]),
                    ("Blur radius", &rows[j]),
                    ("Seed", &layers[b]),
                ]);
                let file = outputs
                    .get(&("Tinted".to_owned(), key.clone()))
                    .unwrap_or_else(|| panic!("no output for {key}"));
                let expected = decode(file);
                let (x, y) = (
                    left.as_u64().expect("left") as u32 + (cell - expected.width()) / 2,
                    top.as_u64().expect("top") as u32 + (cell - expected.height()) / 2,
                );
                assert!(
                    holds(&image, &expected, x, y),
                    "cell ({i}, {j}) of sub-grid {b} of {grid} does not hold {}",
                    file.display()
                );
                placed += 1;
            }
        }
    }
    assert_eq!(placed, 12);
    (image, layout)
}

#[test]
fn an_xyz_grid_holds_each_jobs_output_in_its_sub_grid_with_captions_and_the_fixed_values() {
    let ws = seeded(XYZ);
    let run = ws.run(&["job.yaml"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let out = ws.path("out");
    let hues = [json!(0), json!(120), json!(240)];
    let (across, a) = check_xyz(&out, "xyz-across.png", ("Hue shift", &hues));
    let (down, d) = check_xyz(&out, "xyz-down.png", ("Hue shift", &hues));
    let x0 = |l: &Value, b: usize| l["sub_grids"][b]["column_lefts"][0].as_u64().expect("x");
    let y0 = |l: &Value, b: usize| l["sub_grids"][b]["row_tops"][0].as_u64().expect("y");
    // Side by side: the second sub-grid right of the first, on the same rows; stacked: below
    // it, in the same columns.
    assert!(x0(&a, 1) > x0(&a, 0) && y0(&a, 1) == y0(&a, 0));
    assert!(y0(&d, 1) > y0(&d, 0) && x0(&d, 1) == x0(&d, 0));
    // Z labels above each sub-grid.
    let cell = a["cell"].as_u64().expect("cell") as u32;
    for (image, l) in [(&across, &a), (&down, &d)] {
        for b in 0..2 {
            let (x, y) = (x0(l, b) as u32, y0(l, b) as u32);
            assert!(dark_pixels(image, x, y.saturating_sub(60), x + cell, y) > 10);
        }
    }

    // Captions: the seed each job's sidecar records, under every cell of `xyz-across`; none
    // in `xyz-down`, whose cells have background below them.
    let caption_height = a["caption_height"].as_u64().expect("caption height") as u32;
    assert!(caption_height > 0);
    assert_eq!(d["caption_height"], 0);
    assert!(d.get("captions").is_none());
    let sidecars = sidecar_seeds(&out);
    let cells = a["cells"].as_array().expect("cells");
    let captions = a["captions"].as_array().expect("captions");
    assert_eq!(captions.len(), 12);
    for (k, (c, caption)) in cells.iter().zip(captions).enumerate() {
        let job = c["job"].as_u64().expect("job");
        let hue = &a["columns"][k % 3];
        assert_eq!(
            caption.as_str(),
            Some(format!("seed {}, hue {hue}", sidecars[&job]).as_str()),
            "cell {k}"
        );
    }
    for b in 0..2 {
        let sub = &a["sub_grids"][b];
        for top in sub["row_tops"].as_array().expect("tops") {
            for left in sub["column_lefts"].as_array().expect("lefts") {
                let (x, y) = (
                    left.as_u64().expect("x") as u32,
                    top.as_u64().expect("y") as u32,
                );
                let below = y + cell;
                assert!(
                    dark_pixels(&across, x, below, x + cell, below + caption_height) > 10,
                    "no caption under the cell at ({x}, {y})"
                );
            }
        }
    }
    let (x, y) = (x0(&d, 0) as u32, y0(&d, 0) as u32 + cell);
    assert_eq!(
        dark_pixels(&down, x, y, x + cell, y + 4),
        0,
        "no caption in xyz-down"
    );

    // The header lists the inputs every job holds fixed (not those an axis sets), and draws them.
    let fixed = a["fixed"].as_object().expect("fixed");
    assert_eq!(fixed["Prompt"], "a lighthouse");
    assert_eq!(fixed["Width"], 40);
    assert_eq!(fixed["Source image"], "photos/sunset.png");
    for axis in ["Hue shift", "Blur radius", "Seed"] {
        assert!(!fixed.contains_key(axis), "{axis} is on an axis: {fixed:?}");
    }
    let (top, height) = (
        a["fixed_top"].as_u64().expect("top") as u32,
        a["fixed_height"].as_u64().expect("height") as u32,
    );
    assert!(height > 0);
    assert!(dark_pixels(&across, 0, top, across.width(), top + height) > 50);
}

/// A dynamic prompt (three prompts, in the `dynamicprompts` library's order) × Blur radius grid
/// per seed: 12 jobs, each cell captioned with its job's prompt and seed.
const XYZ_PROMPTS: &str = r#"
version: 1
workflow: seeded-tint.json
seed: 5
inputs:
  Source image: photos/sunset.png
  Width: 40
  Hue shift: 90
sweep:
  matrix:
    Prompt: {dynamic: "a {red|blue|green} lighthouse"}
    Blur radius: [1, 4]
    Seed: {seeds: 2}
output:
  dir: out
  name: "{{ job.number }}-{{ node.label }}"
  grid:
    x: Prompt
    y: Blur radius
    z: Seed
    node: Tinted
    name: prompts
    caption: "{{ sweep['Prompt'] }}, seed {{ seed }}"
"#;

#[test]
fn a_dynamic_prompt_by_seed_xyz_grid_holds_each_jobs_output_captioned_with_its_prompt() {
    let ws = seeded(XYZ_PROMPTS);
    let run = ws.run(&["job.yaml"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let out = ws.path("out");
    // The columns: the prompts in the library's order.
    let in_order = [
        json!("a red lighthouse"),
        json!("a blue lighthouse"),
        json!("a green lighthouse"),
    ];
    let (_, layout) = check_xyz(&out, "prompts.png", ("Prompt", &in_order));
    // Each caption is its job's prompt and seed, as the job's sidecar records them.
    let sidecars = tinted_sidecars(&out);
    let cells = layout["cells"].as_array().expect("cells");
    let captions = layout["captions"].as_array().expect("captions");
    assert_eq!(captions.len(), 12);
    for (c, caption) in cells.iter().zip(captions) {
        let job = c["job"].as_u64().expect("job");
        assert_eq!(
            caption.as_str(),
            Some(
                format!(
                    "{}, seed {}",
                    sidecars[&job]["sweep"]["Prompt"].as_str().expect("prompt"),
                    sidecars[&job]["seed"]
                )
                .as_str()
            )
        );
    }
}

/// Each job's `Tinted` sidecar, by job.
fn tinted_sidecars(out: &std::path::Path) -> BTreeMap<u64, Value> {
    let mut sidecars = BTreeMap::new();
    for entry in fs_err::read_dir(out).expect("list") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().ends_with("-Tinted.png.json") {
            let sidecar: Value =
                serde_json::from_slice(&fs_err::read(&path).expect("read")).expect("json");
            sidecars.insert(sidecar["job"].as_u64().expect("job"), sidecar);
        }
    }
    assert_eq!(sidecars.len(), 12);
    sidecars
}

/// The seed each job's `Tinted` sidecar records, by job.
fn sidecar_seeds(out: &std::path::Path) -> BTreeMap<u64, Value> {
    tinted_sidecars(out)
        .into_iter()
        .map(|(job, sidecar)| (job, sidecar["seed"].clone()))
        .collect()
}

/// The images × prompts recipe of docs/manifest.md: a `zip` of the images a glob finds and
/// the prompts of a file, one job per pair.
const IMAGES_BY_PROMPTS: &str = r#"
version: 1
workflow: seeded-tint.json
inputs:
  Width: 32
sweep:
  zip:
    Source image: {glob: "photos/*.png"}
    Prompt: {lines: prompts.txt}
output:
  dir: out
  name: "{{ job.number }}-{{ node.label }}"
"#;

#[test]
fn images_zipped_with_prompts_make_one_job_per_pair_in_order() {
    let ws = seeded(IMAGES_BY_PROMPTS);
    // Three photos (sorted by path: moss, sea, sunset) and three prompts.
    for photo in ["moss.png", "sea.png"] {
        fs_err::copy(
            repo(&format!("examples/images/{photo}")),
            ws.path(&format!("photos/{photo}")),
        )
        .expect("copy photo");
    }
    fs_err::write(
        ws.path("prompts.txt"),
        "# one per image\na mossy rock\n\na calm sea\na red sunset\n",
    )
    .expect("prompts");
    let run = ws.run(&["job.yaml"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let mut pairs = BTreeMap::new();
    for entry in fs_err::read_dir(ws.path("out")).expect("list") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().ends_with("-Tinted.png.json") {
            let sidecar: Value =
                serde_json::from_slice(&fs_err::read(&path).expect("read")).expect("json");
            let inputs = &sidecar["inputs"];
            pairs.insert(
                sidecar["job"].as_u64().expect("job"),
                (
                    inputs["Source image"].as_str().expect("image").to_owned(),
                    inputs["Prompt"].as_str().expect("prompt").to_owned(),
                ),
            );
        }
    }
    let want: BTreeMap<u64, (String, String)> = [
        (0, ("photos/moss.png", "a mossy rock")),
        (1, ("photos/sea.png", "a calm sea")),
        (2, ("photos/sunset.png", "a red sunset")),
    ]
    .into_iter()
    .map(|(j, (i, p))| (j, (i.to_owned(), p.to_owned())))
    .collect();
    assert_eq!(pairs, want);

    // One prompt short: refused before anything is sent, naming both lengths.
    fs_err::write(ws.path("prompts.txt"), "a mossy rock\na calm sea\n").expect("prompts");
    fs_err::remove_dir_all(ws.path("out")).expect("clean");
    let run = ws.run(&["job.yaml"]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("job.yaml:"), "{stderr}");
    assert!(
        stderr.contains("Source image") && stderr.contains("Prompt"),
        "{stderr}"
    );
    assert!(!ws.path("out").exists(), "nothing written: {stderr}");
}
