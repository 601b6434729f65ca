//! Benchmark of the gallery: an output folder of N synthetic outputs (default 2,000), reported
//! with `invk_run::gallery::refresh` (first with every thumbnail to make, then with all up to
//! date), and `index.html` loaded from disk by headless Chromium (`/usr/bin/chromium`, or
//! `INVK_CHROMIUM`) in its two views. Prints each figure; run it with `scripts/bench-gallery [N]`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use image::{Rgb, RgbImage};
use invk_run::gallery::{ReportConfig, refresh};
use serde_json::json;

/// Writes `n` 64×64 outputs with sidecars and a `runs.jsonl`, over a 50-column sweep.
fn make_folder(dir: &Path, n: usize) {
    let mut lines = String::new();
    fs_err::create_dir_all(dir.join("img")).expect("mkdir");
    for job in 0..n {
        let file = format!("img/{job:05}.png");
        let img = RgbImage::from_fn(64, 64, |x, y| {
            Rgb([(job % 256) as u8, (x * 4) as u8, (y * 4) as u8])
        });
        img.save(dir.join(&file)).expect("png");
        let sweep = json!({"seed": job % 50, "cfg": job / 50});
        let sidecar = json!({"job": job, "image_name": format!("{job}.png"),
            "node": {"id": "n", "label": "Out"}, "sweep": sweep, "inputs": sweep});
        fs_err::write(dir.join(format!("{file}.json")), sidecar.to_string()).expect("sidecar");
        let line = json!({"run_id": "bench", "job": job, "status": "completed",
            "inputs": sweep, "sweep": sweep, "files": [file]});
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    fs_err::write(dir.join("runs.jsonl"), lines).expect("runs.jsonl");
}

/// Loads `page#fragment` in headless Chromium; returns the wall time and the page's own
/// figures (`data-load-ms`: script start to drawn; `data-shown`).
fn load(chromium: &Path, page: &Path, fragment: &str) -> (Duration, String, String) {
    let profile = tempfile::tempdir().expect("profile");
    let started = Instant::now();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ])
        .args(["--no-first-run", "--virtual-time-budget=20000"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}#{fragment}", page.display()))
        .output()
        .expect("run chromium");
    let wall = started.elapsed();
    let dom = String::from_utf8_lossy(&out.stdout);
    let attr = |name: &str| {
        dom.find(&format!("{name}=\""))
            .and_then(|i| {
                let rest = &dom[i + name.len() + 2..];
                rest.find('"').map(|end| rest[..end].to_owned())
            })
            .unwrap_or_else(|| "?".to_owned())
    };
    (wall, attr("data-load-ms"), attr("data-shown"))
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path();
    make_folder(out, n);
    let config = ReportConfig {
        title: "bench".to_owned(),
        grids: Vec::new(),
        gallery: true,
    };
    let started = Instant::now();
    let first = refresh(out, &config).expect("report");
    let cold = started.elapsed();
    let started = Instant::now();
    refresh(out, &config).expect("report");
    let warm = started.elapsed();
    let page = out.join("index.html");
    let size = fs_err::metadata(&page).map_or(0, |m| m.len());
    println!("gallery of {n} outputs ({} KB index.html)", size / 1024);
    println!(
        "  report, making {} thumbnails: {:.2} s",
        first.thumbnails_made,
        cold.as_secs_f64()
    );
    println!(
        "  report, thumbnails up to date: {:.2} s",
        warm.as_secs_f64()
    );
    let chromium = std::env::var_os("INVK_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.is_file() {
        println!(
            "  no {} (scripts/install-chromium): page load not measured",
            chromium.display()
        );
        return;
    }
    for (view, fragment) in [("all images", ""), ("X/Y 50 x 40", "view=xy&x=seed&y=cfg")] {
        let mut runs: Vec<(Duration, String, String)> =
            (0..3).map(|_| load(&chromium, &page, fragment)).collect();
        runs.sort_by_key(|r| r.0);
        let (wall, script, shown) = &runs[1];
        println!(
            "  page, {view}: {shown} images drawn; page script {script} ms; chromium start to DOM {:.2} s (median of 3)",
            wall.as_secs_f64()
        );
    }
}
