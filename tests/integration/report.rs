//! Grids and the gallery: real runs on the real server, grids decoded and compared with the jobs'
//! own outputs pixel by pixel, and `index.html` opened from disk in headless Chromium (Debian's
//! package, installed by `scripts/install-chromium`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use image::RgbImage;
use serde_json::{Value, json};

use crate::support;

pub(crate) fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A folder with the model-free example workflow, a photo and a manifest.
pub(crate) struct Workspace {
    dir: tempfile::TempDir,
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
        fs_err::copy(
            repo("examples/images/sunset.png"),
            dir.path().join("photos/sunset.png"),
        )
        .expect("copy photo");
        fs_err::write(dir.path().join("job.yaml"), manifest).expect("write manifest");
        Workspace { dir }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn command(&self) -> std::process::Command {
        let mut cmd = support::invk_run();
        cmd.current_dir(self.dir.path())
            .arg("--server")
            .arg(support::server().url());
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run invk-run")
    }
}

/// The 3 × 4 sweep: four hue shifts (columns) by three blur radii (rows), two outputs per job.
const SWEEP: &str = r#"
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
  dir: out
  name: "hue-{{ sweep['Hue shift'] }}/blur-{{ sweep['Blur radius'] }}-{{ node.label }}"
  grid:
    x: Hue shift
    y: Blur radius
"#;

const HUES: [i64; 4] = [0, 90, 180, 270];
const BLURS: [i64; 3] = [1, 3, 6];

/// The sweep, run once for the tests that only read its output folder.
fn sweep_run() -> &'static Workspace {
    static RUN: OnceLock<Workspace> = OnceLock::new();
    RUN.get_or_init(|| {
        let ws = Workspace::new(SWEEP);
        let out = ws.run(&["job.yaml"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        ws
    })
}

/// Output files by (node label, sweep values), from their sidecars.
pub(crate) fn outputs_by_sweep(out_dir: &Path) -> BTreeMap<(String, String), PathBuf> {
    fn walk(dir: &Path, found: &mut BTreeMap<(String, String), PathBuf>) {
        for entry in fs_err::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() && !name.starts_with('.') {
                walk(&path, found);
            } else if let Some(image) = name.strip_suffix(".json") {
                let Ok(sidecar) =
                    serde_json::from_slice::<Value>(&fs_err::read(&path).expect("read"))
                else {
                    continue;
                };
                if sidecar.get("image_name").is_none() {
                    continue;
                }
                let label = sidecar["node"]["label"].as_str().expect("label").to_owned();
                let sweep: BTreeMap<String, Value> =
                    serde_json::from_value(sidecar["sweep"].clone()).expect("sweep");
                let sweep = serde_json::to_string(&sweep).expect("json");
                found.insert((label, sweep), path.with_file_name(image));
            }
        }
    }
    let mut found = BTreeMap::new();
    walk(out_dir, &mut found);
    found
}

/// Sweep values as a canonical text (keys sorted), to look outputs up by.
fn sweep_key(x_key: &str, x: &Value, y_key: &str, y: &Value) -> String {
    let m: BTreeMap<&str, &Value> = [(x_key, x), (y_key, y)].into_iter().collect();
    serde_json::to_string(&m).expect("json")
}

pub(crate) fn decode(path: &Path) -> RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("decoding {}: {e}", path.display()))
        .to_rgb8()
}

pub(crate) fn layout(grid: &Path) -> Value {
    let mut name = grid.as_os_str().to_owned();
    name.push(".json");
    serde_json::from_slice(&fs_err::read(PathBuf::from(name)).expect("grid layout")).expect("json")
}

/// Whether `image` holds `expected` exactly with its top-left corner at (`x`, `y`).
pub(crate) fn holds(image: &RgbImage, expected: &RgbImage, x: u32, y: u32) -> bool {
    expected
        .enumerate_pixels()
        .all(|(ex, ey, p)| image.get_pixel(x + ex, y + ey) == p)
}

/// How many pixels in the rectangle are dark (text).
pub(crate) fn dark_pixels(image: &RgbImage, x0: u32, y0: u32, x1: u32, y1: u32) -> usize {
    (y0..y1.min(image.height()))
        .flat_map(|y| (x0..x1.min(image.width())).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let p = image.get_pixel(x, y).0;
            u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2]) < 300
        })
        .count()
}

/// Checks a grid of `x_key` (columns `xs`) by `y_key` (rows `ys`) showing `node`: its size and
/// label strips, and that each cell holds exactly the pixels of the job with those sweep values.
/// Returns how many cells hold an image; cells without an output must be marked empty.
fn check_grid(
    out_dir: &Path,
    grid_file: &str,
    node: &str,
    (x_key, xs): (&str, &[Value]),
    (y_key, ys): (&str, &[Value]),
) -> usize {
    let grid_path = out_dir.join(grid_file);
    let grid = decode(&grid_path);
    let layout = layout(&grid_path);
    assert_eq!(
        (grid.width(), grid.height()),
        (
            layout["width"].as_u64().expect("w") as u32,
            layout["height"].as_u64().expect("h") as u32
        )
    );
    assert_eq!(layout["columns"].as_array().expect("columns"), xs);
    assert_eq!(layout["rows"].as_array().expect("rows"), ys);
    let cell = layout["cell"].as_u64().expect("cell") as u32;
    let top = layout["top"].as_u64().expect("top") as u32;
    let left = layout["left"].as_u64().expect("left") as u32;
    let lefts: Vec<u32> = layout["column_lefts"]
        .as_array()
        .expect("lefts")
        .iter()
        .map(|v| v.as_u64().expect("left") as u32)
        .collect();
    let tops: Vec<u32> = layout["row_tops"]
        .as_array()
        .expect("tops")
        .iter()
        .map(|v| v.as_u64().expect("top") as u32)
        .collect();
    assert_eq!(lefts.len(), xs.len());
    assert_eq!(tops.len(), ys.len());
    // Columns and rows are evenly spaced, left to right and top to bottom, inside the image.
    assert_eq!(lefts[0], left);
    assert_eq!(tops[0], top);
    for pair in lefts.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            cell + layout["gap"].as_u64().expect("gap") as u32
        );
    }
    assert!(lefts[xs.len() - 1] + cell < grid.width());
    assert!(tops[ys.len() - 1] + cell < grid.height());
    // Label strips: text above every column and beside every row.
    for (i, &x0) in lefts.iter().enumerate() {
        assert!(
            dark_pixels(&grid, x0, 0, x0 + cell, top) > 10,
            "no label above column {i} of {grid_file}"
        );
    }
    for (j, &y0) in tops.iter().enumerate() {
        assert!(
            dark_pixels(&grid, 0, y0, left, y0 + cell) > 10,
            "no label beside row {j} of {grid_file}"
        );
    }
    let outputs = outputs_by_sweep(out_dir);
    let mut images = 0;
    for (j, y) in ys.iter().enumerate() {
        for (i, x) in xs.iter().enumerate() {
            let key = (node.to_owned(), sweep_key(x_key, x, y_key, y));
            let cell_info = &layout["cells"][j * xs.len() + i];
            match outputs.get(&key) {
                Some(file) => {
                    let expected = decode(file);
                    let dx = (cell - expected.width()) / 2;
                    let dy = (cell - expected.height()) / 2;
                    assert!(
                        holds(&grid, &expected, lefts[i] + dx, tops[j] + dy),
                        "cell ({i}, {j}) of {grid_file} does not hold {}",
                        file.display()
                    );
                    images += 1;
                }
                None => assert_eq!(cell_info["kind"], "empty", "cell ({i}, {j}): {cell_info}"),
            }
        }
    }
    images
}

fn values(v: &[i64]) -> Vec<Value> {
    v.iter().map(|n| json!(n)).collect()
}

#[test]
fn a_3x4_sweep_makes_a_grid_per_output_with_labels_and_each_jobs_image_in_its_cell() {
    let ws = sweep_run();
    let out = ws.path("out");
    for node in ["Blurred", "Tinted"] {
        let placed = check_grid(
            &out,
            &format!("grid-{node}.png"),
            node,
            ("Hue shift", &values(&HUES)),
            ("Blur radius", &values(&BLURS)),
        );
        assert_eq!(placed, 12, "{node}");
    }
    // The two grids differ: each shows its own node's images.
    assert_ne!(
        fs_err::read(out.join("grid-Blurred.png")).expect("read"),
        fs_err::read(out.join("grid-Tinted.png")).expect("read")
    );
}

#[test]
fn report_rebuilds_the_gallery_and_grids_from_disk_after_files_moved() {
    let ws = sweep_run();
    // A copy of the folder as a run before this feature would have left it: no gallery, no
    // grids, no saved report settings; and one job's folder moved elsewhere.
    let copy = tempfile::tempdir().expect("tempdir");
    let status = std::process::Command::new("cp")
        .args(["-r"])
        .arg(ws.path("out"))
        .arg(copy.path().join("out"))
        .status()
        .expect("cp");
    assert!(status.success());
    let out = copy.path().join("out");
    for gone in [
        "index.html",
        "grid-Tinted.png",
        "grid-Tinted.png.json",
        "grid-Blurred.png",
        "grid-Blurred.png.json",
        ".invk-run/report.json",
    ] {
        fs_err::remove_file(out.join(gone)).expect(gone);
    }
    fs_err::rename(out.join("hue-90"), out.join("moved-hue-90")).expect("move");

    let report = support::invk_run()
        .args(["report"])
        .arg(&out)
        .output()
        .expect("report");
    assert_eq!(report.status.code(), Some(0), "{}", text(&report.stderr));
    let stderr = text(&report.stderr);
    assert!(stderr.contains("12 jobs; index.html, 2 grids"), "{stderr}");
    assert!(out.join("index.html").is_file());
    // Without saved settings, the default grid of a two-key sweep: the last key (fastest) as
    // columns, the first as rows. The moved files are still in their cells.
    let placed = check_grid(
        &out,
        "grid-Tinted.png",
        "Tinted",
        ("Blur radius", &values(&BLURS)),
        ("Hue shift", &values(&HUES)),
    );
    assert_eq!(placed, 12);
}

#[test]
fn a_failed_jobs_cell_is_marked_with_the_servers_error() {
    let ws = Workspace::new(
        r#"
version: 1
workflow: blur-and-tint.json
inputs:
  Width: 48
sweep:
  matrix:
    Hue shift: [0, 180]
    Source image: [photos/sunset.png, {image_name: no-such-image.png}]
output:
  dir: out
  grid: {x: Hue shift, y: Source image, node: Tinted, name: "failures"}
"#,
    );
    let out = ws.run(&["job.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let grid_path = ws.path("out/failures.png");
    let grid = decode(&grid_path);
    let layout = layout(&grid_path);
    let cells = layout["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 4);
    let summary = fs_err::read_to_string(ws.path("out/runs.jsonl")).expect("runs.jsonl");
    let server_error = summary
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["status"] == "failed")
        .and_then(|l| l["error"].as_str().map(str::to_owned))
        .expect("a failed job");
    let cell = layout["cell"].as_u64().expect("cell") as u32;
    let lefts = layout["column_lefts"].as_array().expect("lefts");
    let tops = layout["row_tops"].as_array().expect("tops");
    for (i, x0) in lefts.iter().enumerate() {
        // Row 0 (the photo): images; row 1 (the missing image): failed, with the server's error.
        assert_eq!(cells[i]["kind"], "image", "{}", cells[i]);
        let failed = &cells[2 + i];
        assert_eq!(failed["kind"], "empty");
        assert_eq!(failed["failed"], true);
        assert_eq!(
            failed["reason"].as_str(),
            Some(format!("failed: {server_error}").as_str())
        );
        // Drawn as a red-edged box with the reason written in it.
        let (x0, y0) = (
            x0.as_u64().expect("x") as u32,
            tops[1].as_u64().expect("y") as u32,
        );
        let edge = grid.get_pixel(x0, y0).0;
        assert!(edge[0] > 150 && edge[1] < 100, "edge {edge:?}");
        let reddish_text = (y0..y0 + cell)
            .flat_map(|y| (x0..x0 + cell).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let p = grid.get_pixel(x, y).0;
                p[0] > 120 && p[1] < 40 && p[2] < 60
            })
            .count();
        assert!(
            reddish_text > 30,
            "no reason written in the failed cell {i}"
        );
    }
    // The gallery lists the failures with the error.
    let html = fs_err::read_to_string(ws.path("out/index.html")).expect("index.html");
    assert!(html.contains("2 failed"), "counts");
    assert!(html.contains(&server_error.replace('<', "\\u003c")));
}

#[test]
fn a_resumed_run_completes_its_grid() {
    let ws = Workspace::new(&SWEEP.replace(
        "    y: Blur radius\n",
        "    y: Blur radius\n    node: Tinted\n",
    ));
    let mut child = ws
        .command()
        .arg("-q")
        .arg("job.yaml")
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(180);
    let downloaded = || {
        fs_err::read_to_string(ws.path("out/.invk-run/journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"downloaded\""))
            .count()
    };
    while downloaded() < 4 {
        assert!(Instant::now() < deadline, "no output appeared");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().expect("kill");
    child.wait().expect("reap");

    // The killed run's grid, rebuilt from the manifest: what is on disk, the rest marked.
    let partial = support::invk_run()
        .current_dir(ws.dir.path())
        .args(["report", "job.yaml"])
        .output()
        .expect("report");
    assert_eq!(partial.status.code(), Some(0), "{}", text(&partial.stderr));
    let grid_path = ws.path("out/grid-Tinted.png");
    let cells = layout(&grid_path)["cells"].clone();
    let images = cells
        .as_array()
        .expect("cells")
        .iter()
        .filter(|c| c["kind"] == "image")
        .count();
    assert!((1..12).contains(&images), "{images} cells filled");
    assert!(
        cells
            .as_array()
            .expect("cells")
            .iter()
            .filter(|c| c["kind"] == "empty")
            .all(|c| c["reason"] == "not done yet"),
        "{cells}"
    );

    let resumed = ws.run(&["-q", "job.yaml"]);
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed.stderr));
    let placed = check_grid(
        &ws.path("out"),
        "grid-Tinted.png",
        "Tinted",
        ("Hue shift", &values(&HUES)),
        ("Blur radius", &values(&BLURS)),
    );
    assert_eq!(placed, 12);
    assert!(!ws.path("out/grid-Blurred.png").exists());
}

#[test]
fn a_grid_axis_that_is_no_sweep_key_is_refused_with_its_place_before_anything_is_sent() {
    let ws = Workspace::new(&SWEEP.replace("    y: Blur radius\n", "    y: Blur radious\n"));
    let out = support::invk_run()
        .current_dir(ws.dir.path())
        .args(["--server", "http://127.0.0.1:1", "job.yaml"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // (Without a server, a warning about the schemas comes first.)
    let stderr = text(&out.stderr);
    let diagnostics = &stderr[stderr.find("job.yaml:").expect("a diagnostic")..];
    insta::assert_snapshot!(diagnostics, @r"
    job.yaml:16:8: error: grid axis `Blur radious` is not a sweep key
      hint: did you mean `Blur radius`?
    ");
    assert!(!ws.path("out").exists());
}

/// Four pages (blur radii, the slowest key) of three hues, run one session at a time: the first
/// page is complete long before the run ends.
const PAGED: &str = r#"
version: 1
workflow: blur-and-tint.json
inputs:
  Source image: photos/sunset.png
  Width: 96
sweep:
  matrix:
    Blur radius: [1, 3, 6, 9]
    Hue shift: [0, 120, 240]
output:
  dir: out
  grid: {x: Hue shift, pages: [Blur radius], node: Tinted, name: "pages/{{ page }}"}
"#;

/// The jobs listed in a gallery page (its embedded JSON), and its title.
fn gallery_jobs(page: &str) -> (Vec<Value>, String) {
    let start =
        page.find("id=\"gallery-data\">").expect("gallery data") + "id=\"gallery-data\">".len();
    let end = start + page[start..].find("</script>").expect("end of data");
    let data: Value = serde_json::from_str(&page[start..end]).expect("gallery JSON");
    (
        data["jobs"].as_array().expect("jobs").clone(),
        data["title"].as_str().expect("title").to_owned(),
    )
}

#[test]
fn a_running_sweep_writes_each_grid_once_its_page_is_complete_and_keeps_the_gallery_current() {
    let ws = Workspace::new(PAGED);
    let mut child = ws
        .command()
        .args(["-q", "--window", "1", "job.yaml"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let first = ws.path("out/pages/Blur-radius-1.png");
    let last = ws.path("out/pages/Blur-radius-9.png");
    let page = ws.path("out/index.html");
    let deadline = Instant::now() + Duration::from_secs(240);
    let started = Instant::now();
    let mut gallery_seen = None;
    // Poll while the run goes: the first page's grid must appear before it ends (its layout is
    // written after the image).
    let first_layout = ws.path("out/pages/Blur-radius-1.png.json");
    while !first_layout.is_file() {
        assert!(Instant::now() < deadline, "no grid appeared");
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("the run ended ({status}) before the first page's grid was written");
        }
        if gallery_seen.is_none() {
            gallery_seen = fs_err::read_to_string(&page).ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let grid_after = started.elapsed();
    let grid_layout = layout(&first);
    let running = child.try_wait().expect("wait").is_none();
    let last_existed = last.exists();
    if gallery_seen.is_none() {
        gallery_seen = fs_err::read_to_string(&page).ok();
    }
    let out = child.wait_with_output().expect("wait");
    eprintln!(
        "figure: the first of 4 pages' grid appeared {:.2} s into a {:.2} s run",
        grid_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(running, "the run was still going when the grid appeared");
    assert!(
        !last_existed,
        "the last page's grid is not written before its jobs finished"
    );
    // The early grid is complete: every cell holds its job's image.
    let cells = grid_layout["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 3);
    assert!(cells.iter().all(|c| c["kind"] == "image"), "{cells:?}");
    assert_eq!(grid_layout["page"], json!({"Blur radius": 1}));

    // The gallery of the running run listed finished jobs only, each with its files on disk.
    let (jobs, title) = gallery_jobs(&gallery_seen.expect("index.html while the run went"));
    assert!(
        title.contains("running:") && title.contains("of 12 jobs finished"),
        "{title}"
    );
    assert!((1..12).contains(&jobs.len()), "{} jobs listed", jobs.len());
    for job in &jobs {
        assert_eq!(job["status"], "completed", "{job}");
        for file in job["files"].as_array().expect("files") {
            let name = file["name"].as_str().expect("name");
            assert!(ws.path("out").join(name).is_file(), "{name}");
        }
    }
    // At the end: every page, and the page of the finished run.
    let (jobs, title) =
        gallery_jobs(&fs_err::read_to_string(&page).expect("index.html at the end"));
    assert_eq!(jobs.len(), 12);
    assert!(!title.contains("running"), "{title}");
    for blur in [1, 3, 6, 9] {
        let grid = ws.path(&format!("out/pages/Blur-radius-{blur}.png"));
        let cells = layout(&grid)["cells"].clone();
        assert!(
            cells
                .as_array()
                .expect("cells")
                .iter()
                .all(|c| c["kind"] == "image"),
            "{cells}"
        );
    }
}

#[cfg(unix)]
#[test]
fn links_in_the_way_of_grids_and_thumbnails_are_refused_and_nothing_is_written_outside() {
    let ws = Workspace::new(
        r#"
version: 1
workflow: blur-and-tint.json
inputs:
  Source image: photos/sunset.png
  Width: 48
sweep:
  matrix:
    Hue shift: [0, 180]
output:
  dir: out
  grid: {x: Hue shift, node: Tinted, name: "grids/hue"}
"#,
    );
    let outside_grids = tempfile::tempdir().expect("outside");
    let outside_thumbs = tempfile::tempdir().expect("outside");
    fs_err::create_dir_all(ws.path("out/.invk-run")).expect("mkdir");
    std::os::unix::fs::symlink(outside_grids.path(), ws.path("out/grids")).expect("link");
    std::os::unix::fs::symlink(outside_thumbs.path(), ws.path("out/.invk-run/thumbs"))
        .expect("link");
    let out = ws.run(&["job.yaml"]);
    let stderr = text(&out.stderr);
    // The outputs are the run's; the report is not: a warning, not a failure.
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The run names the output folder as the manifest does (relative).
    let refused = |link: &Path| {
        format!(
            "`{}` is a symbolic link (to `{}`); invk-run never writes through links",
            Path::new("out").join(link).display(),
            fs_err::read_link(ws.path("out").join(link))
                .expect("link")
                .display()
        )
    };
    assert!(stderr.contains(&refused(Path::new("grids"))), "{stderr}");
    assert!(
        stderr.contains(&refused(Path::new(".invk-run/thumbs"))),
        "{stderr}"
    );
    assert!(stderr.contains("warning: cannot"), "{stderr}");
    assert!(!ws.path("out/index.html").exists());
    // `invk-run report` refuses them too, with exit 1. Without the thumbnails' link, the
    // gallery is written; the refused grid is not linked from it.
    let report = || {
        support::invk_run()
            .current_dir(ws.dir.path())
            .args(["report", "out"])
            .output()
            .expect("report")
    };
    let first = report();
    let first_err = text(&first.stderr);
    assert_eq!(first.status.code(), Some(1), "{first_err}");
    assert!(
        first_err.contains(&refused(Path::new(".invk-run/thumbs"))),
        "{first_err}"
    );
    assert!(
        first_err.contains(&refused(Path::new("grids"))),
        "{first_err}"
    );
    fs_err::remove_file(ws.path("out/.invk-run/thumbs")).expect("unlink");
    let second = report();
    assert_eq!(second.status.code(), Some(1), "{}", text(&second.stderr));
    assert!(
        text(&second.stderr).contains(&refused(Path::new("grids"))),
        "{}",
        text(&second.stderr)
    );
    let page = fs_err::read_to_string(ws.path("out/index.html")).expect("the gallery");
    let (jobs, _) = gallery_jobs(&page);
    assert_eq!(jobs.len(), 2);
    assert!(
        !page.contains("grids/hue.png"),
        "a grid that was not written is not linked"
    );
    assert_eq!(
        fs_err::read_dir(ws.path("out/.invk-run/thumbs"))
            .expect("a real thumbnail folder")
            .count(),
        4
    );
    for outside in [&outside_grids, &outside_thumbs] {
        assert_eq!(
            fs_err::read_dir(outside.path()).expect("list").count(),
            0,
            "written outside the output folder"
        );
    }
    // The outputs themselves were written.
    assert_eq!(outputs_by_sweep(&ws.path("out")).len(), 4);
}

// ---- In a real browser ----

fn chromium() -> PathBuf {
    let path = std::env::var_os("INVK_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.is_file(),
        "{} is missing: install it with scripts/install-chromium (scripts/test does)",
        path.display()
    );
    path
}

/// The DOM of `page#fragment` after its scripts ran, as headless Chromium renders it.
fn dump_dom(page: &Path, fragment: &str) -> String {
    let profile = tempfile::tempdir().expect("profile");
    let url = format!("file://{}#{fragment}", page.display());
    let out = std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=20000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("run chromium");
    let dom = text(&out.stdout);
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page's script did not finish: {}\n{}",
        text(&out.stderr),
        &dom[..dom.len().min(2000)]
    );
    dom
}

/// The value of attribute `name` in the start tag `tag` (HTML-escaped as Chromium writes it).
fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + tag[start..].find('"')?;
    Some(
        tag[start..end]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// The start tags of every `<img class="thumb" ...>`.
fn thumbs(dom: &str) -> Vec<&str> {
    dom.match_indices("<img class=\"thumb\"")
        .map(|(i, _)| &dom[i..i + dom[i..].find('>').unwrap_or(0)])
        .collect()
}

#[test]
fn the_gallery_in_a_real_browser_shows_every_output_filters_them_and_places_xy_cells() {
    let ws = sweep_run();
    let page = ws.path("out/index.html");

    // Every output (12 jobs × 2 nodes), each with a small generated thumbnail.
    let dom = dump_dom(&page, "");
    let all = thumbs(&dom);
    assert_eq!(all.len(), 24, "{}", &dom[..dom.len().min(3000)]);
    for tag in &all {
        let src = attr(tag, "src").expect("src");
        assert!(src.starts_with(".invk-run/thumbs/"), "{src}");
        let thumb = decode(&ws.path("out").join(&src));
        assert!(thumb.width() <= 192 && thumb.height() <= 192);
        assert_eq!(attr(tag, "loading").as_deref(), Some("lazy"));
    }

    // A filter narrows them: one hue, and one hue and one output node.
    let hue_90 = dump_dom(&page, "f.Hue%20shift=90");
    let shown = thumbs(&hue_90);
    assert_eq!(shown.len(), 6);
    assert!(
        shown
            .iter()
            .all(|t| attr(t, "data-file").is_some_and(|f| f.starts_with("hue-90/")))
    );
    let one_node = dump_dom(&page, "f.Hue%20shift=90&node=Tinted");
    assert_eq!(thumbs(&one_node).len(), 3);

    // The X/Y view, axes picked in the address: each cell holds the image of its job.
    let xy = dump_dom(&page, "view=xy&x=Hue%20shift&y=Blur%20radius&node=Tinted");
    let outputs = outputs_by_sweep(&ws.path("out"));
    let cells: Vec<&str> = xy
        .match_indices("<td ")
        .map(|(i, _)| &xy[i..i + xy[i..].find("</td>").expect("td end")])
        .collect();
    assert_eq!(cells.len(), 12);
    for cell in cells {
        let x: i64 = attr(cell, "data-x").expect("x").parse().expect("x");
        let y: i64 = attr(cell, "data-y").expect("y").parse().expect("y");
        let file = attr(cell, "data-file").expect("an image in the cell");
        let expected = &outputs[&(
            "Tinted".to_owned(),
            sweep_key("Hue shift", &json!(x), "Blur radius", &json!(y)),
        )];
        assert_eq!(ws.path("out").join(&file), *expected, "cell {x}, {y}");
    }
}

/// An output folder of a Hue × Blur sweep (2 × 2) with three output nodes, met in this order:
/// `Resized` (the same image in every job), `Blurred` (one per blur) and `Tinted` (one per job);
/// `grid` is the report's saved grid.
fn three_node_folder(grid: Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path();
    let mut lines = String::new();
    let mut job = 0_u32;
    for blur in [1_u32, 3] {
        for hue in [0_u32, 90] {
            let sweep = json!({"Hue": hue, "Blur": blur});
            let mut files = Vec::new();
            // Each node's image has a size of its own, so which file a cell shows is plain.
            for (node, side) in [
                ("Resized", 16),
                ("Blurred", 20 + blur),
                ("Tinted", 30 + job),
            ] {
                let file = format!("{job}-{node}.png");
                fs_err::write(out.join(&file), support::png::png(side, side, [90, 60, 30]))
                    .expect("png");
                fs_err::write(
                    out.join(format!("{file}.json")),
                    json!({"job": job, "image_name": format!("{job}-{node}"), "sweep": sweep,
                           "node": {"id": node.to_lowercase(), "label": node}})
                    .to_string(),
                )
                .expect("sidecar");
                files.push(file);
            }
            lines.push_str(
                &json!({"job": job, "status": "completed", "sweep": sweep, "inputs": sweep, "files": files})
                    .to_string(),
            );
            lines.push('\n');
            job += 1;
        }
    }
    fs_err::write(out.join("runs.jsonl"), lines).expect("runs.jsonl");
    fs_err::create_dir_all(out.join(".invk-run")).expect("mkdir");
    fs_err::write(
        out.join(".invk-run/report.json"),
        json!({"title": "three nodes", "grids": [grid], "gallery": true}).to_string(),
    )
    .expect("report settings");
    let report = support::invk_run()
        .arg("report")
        .arg(out)
        .output()
        .expect("report");
    assert_eq!(report.status.code(), Some(0), "{}", text(&report.stderr));
    dir
}

/// The X/Y view opened without axes or node in the address: its caption, and the file in each
/// cell by (x, y).
fn default_xy(out: &Path) -> (String, BTreeMap<(String, String), String>) {
    let dom = dump_dom(&out.join("index.html"), "view=xy");
    let caption = dom
        .find("<caption id=\"xy-node\"")
        .map(|i| {
            let body = &dom[i..];
            let start = body.find('>').expect("caption tag") + 1;
            body[start..body.find("</caption>").expect("caption end")].to_owned()
        })
        .unwrap_or_default();
    let cells = dom
        .match_indices("<td ")
        .map(|(i, _)| &dom[i..i + dom[i..].find("</td>").expect("td end")])
        .map(|cell| {
            (
                (
                    attr(cell, "data-x").expect("x"),
                    attr(cell, "data-y").unwrap_or_default(),
                ),
                attr(cell, "data-file").unwrap_or_default(),
            )
        })
        .collect();
    (caption, cells)
}

#[test]
fn the_xy_view_shows_the_grids_output_node_by_default_and_says_which() {
    let job_of = |hue: &str, blur: &str| usize::from(blur == "3") * 2 + usize::from(hue == "90");
    // The grid names its node: the view shows it, on the grid's axes.
    let named = three_node_folder(json!({"x": "Hue", "y": "Blur", "node": "Blurred"}));
    let (caption, cells) = default_xy(named.path());
    assert_eq!(caption, "Output node: Blurred (the grid's output)");
    assert_eq!(cells.len(), 4, "{cells:?}");
    for ((hue, blur), file) in &cells {
        assert_eq!(
            *file,
            format!("{}-Blurred.png", job_of(hue, blur)),
            "cell {hue}, {blur}"
        );
    }
    // The grid names none: the node whose images differ from job to job, not the first met.
    let unnamed = three_node_folder(json!({"x": "Hue", "y": "Blur"}));
    let (caption, cells) = default_xy(unnamed.path());
    assert_eq!(
        caption,
        "Output node: Tinted (its images differ most between jobs)"
    );
    for ((hue, blur), file) in &cells {
        assert_eq!(
            *file,
            format!("{}-Tinted.png", job_of(hue, blur)),
            "cell {hue}, {blur}"
        );
    }
    // Another node picked in the address is shown, and said to be chosen.
    let dom = dump_dom(&unnamed.path().join("index.html"), "view=xy&node=Resized");
    assert!(
        dom.contains(">Output node: Resized (chosen)</caption>"),
        "{}",
        &dom[..dom.len().min(3000)]
    );
}

#[test]
fn a_gallery_of_2000_entries_loads_in_a_real_browser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path();
    let mut lines = String::new();
    for job in 0..2000_usize {
        let file = format!("img/{job:04}.png");
        let rgb = [(job % 256) as u8, (job / 8 % 256) as u8, 128];
        fs_err::create_dir_all(out.join("img")).expect("mkdir");
        fs_err::write(out.join(&file), support::png::png(32, 32, rgb)).expect("png");
        let sweep = json!({"seed": job % 50, "cfg": job / 50});
        fs_err::write(
            out.join(format!("{file}.json")),
            json!({"job": job, "image_name": format!("{job}.png"), "node": {"id": "n", "label": "Out"}, "sweep": sweep, "inputs": sweep}).to_string(),
        )
        .expect("sidecar");
        lines.push_str(&json!({"run_id": "bench", "job": job, "status": "completed", "inputs": sweep, "sweep": sweep, "files": [file]}).to_string());
        lines.push('\n');
    }
    fs_err::write(out.join("runs.jsonl"), lines).expect("runs.jsonl");
    let started = Instant::now();
    let report = support::invk_run()
        .args(["report"])
        .arg(out)
        .output()
        .expect("report");
    let report_time = started.elapsed();
    assert_eq!(report.status.code(), Some(0), "{}", text(&report.stderr));

    let started = Instant::now();
    let dom = dump_dom(&out.join("index.html"), "");
    let browser_time = started.elapsed();
    assert_eq!(thumbs(&dom).len(), 2000);
    let body = &dom[dom.find("<body").expect("body")..];
    let load_ms = attr(body, "data-load-ms").expect("load time");
    let xy = dump_dom(&out.join("index.html"), "view=xy&x=seed&y=cfg");
    assert_eq!(xy.matches("<td ").count(), 2000);
    eprintln!(
        "benchmark: 2,000-entry gallery: report {:.2} s; page script {load_ms} ms; chromium start to DOM {:.2} s",
        report_time.as_secs_f64(),
        browser_time.as_secs_f64()
    );
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = support::invk_run()
            .args(["completions", shell])
            .output()
            .expect("completions");
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains("invk-run"), "{shell}");
        assert!(
            script.contains("report") && script.contains("completions"),
            "{shell}"
        );
    }
    let bad = support::invk_run()
        .args(["completions", "tcsh"])
        .output()
        .expect("completions");
    assert_eq!(bad.status.code(), Some(2));
}
