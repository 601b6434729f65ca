//! `invk-run watch DIR --each MANIFEST --as INPUT` against a real server: thirty images (some
//! written slowly, one not an image) each run the manifest's sweep once, with a `kill -9` and a
//! restart in the middle; a burst of fifty images shares its enqueues, each image still getting
//! its own outputs once; and a bad manifest or `--as` exits 2 before anything is watched.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

use super::list;
use super::live::{Watcher, count, journaled_enqueues, per_manifest, reports};
use crate::support;
use crate::support::private::PrivateServer;

/// The manifest each image runs: a sweep of two blur radii (two jobs, one enqueue), the
/// outputs named from the image.
const EACH: &str = "version: 1
workflow: flows/blur-and-tint.json
inputs:
  Hue shift: 90
sweep:
  matrix:
    Blur radius: [1, 3]
output:
  name: \"{{ source.stem }}-blur-{{ sweep['Blur radius'] }}-{{ node.label }}\"
  gallery: false
";

/// A job folder holding the workflow and the manifest, and an empty hot folder beside it.
pub(super) fn folders() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (job, hot) = (tmp.path().join("job"), tmp.path().join("hot"));
    fs_err::create_dir_all(job.join("flows")).expect("mkdir");
    fs_err::create_dir_all(&hot).expect("mkdir");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    fs_err::copy(
        repo.join("examples/workflows/blur-and-tint.json"),
        job.join("flows/blur-and-tint.json"),
    )
    .expect("copy workflow");
    fs_err::write(job.join("each.yaml"), EACH).expect("write manifest");
    (tmp, job, hot)
}

/// A 32 px PNG, different for each `i`.
pub(super) fn png(i: u8) -> Vec<u8> {
    let image = image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([
            i.wrapping_mul(8),
            u8::try_from(x * 8).unwrap_or(0),
            u8::try_from(y * 8).unwrap_or(0),
        ])
    });
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .expect("encode");
    bytes
}

/// Writes `bytes` in `pieces` parts with pauses shorter than the settle window between them.
fn write_slowly(path: &Path, bytes: &[u8], pieces: usize) {
    let mut file = fs_err::File::create(path).expect("create");
    for piece in bytes.chunks(bytes.len().div_ceil(pieces)) {
        file.write_all(piece).expect("write");
        file.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn each_args(job: &Path) -> Vec<String> {
    let manifest = job.join("each.yaml").display().to_string();
    [
        "--each",
        &manifest,
        "--as",
        "Source image",
        "--settle-ms",
        "1500",
        "-j",
        "2",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

#[test]
fn live_thirty_images_each_run_the_sweep_once_through_a_kill_and_a_restart() {
    let (_tmp, job, hot) = folders();
    let args = each_args(&job);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let names: Vec<String> = (0..30).map(|i| format!("photo-{i:02}.png")).collect();

    // The first watcher: twenty images and a text file named like an image.
    let mut first = Watcher::start(&hot, &args);
    first.wait_until("the watcher started", |e| count(e, "watch_started") == 1);
    for (i, name) in names[..20].iter().enumerate() {
        fs_err::write(hot.join(name), png(u8::try_from(i).expect("small"))).expect("write");
    }
    fs_err::write(hot.join("notes.png"), "call the printer on Monday\n").expect("write");
    // Killed (kill -9) once a few images are done and more are on the server.
    first.wait_until("three images done and more enqueued", |e| {
        count(e, "watch_done") >= 3 && count(e, "enqueued") >= 5
    });
    let first_events = first.kill();
    let left = list(&hot.join("processing"));
    assert!(!left.is_empty(), "the kill left images in processing/");

    // Started again: what was left in processing/ is resumed; ten more arrive, four of them
    // written slowly, in pieces.
    let mut second = Watcher::start(&hot, &args);
    second.wait_until("the watcher started", |e| count(e, "watch_started") == 1);
    for (i, name) in names.iter().enumerate().skip(20) {
        let bytes = png(u8::try_from(i).expect("small"));
        if i < 24 {
            write_slowly(&hot.join(name), &bytes, 5);
        } else {
            fs_err::write(hot.join(name), bytes).expect("write");
        }
    }
    let (done, failed) = (hot.join("done"), hot.join("failed"));
    second.wait_until("30 done and 1 failed", |_| {
        reports(&done, ".report.json") == 30 && reports(&failed, ".error.txt") == 1
    });
    let (code, second_events) = second.interrupt();
    assert_eq!(code, Some(130));

    let resumed: Vec<String> = per_manifest(&second_events, "watch_resumed")
        .into_keys()
        .collect();
    assert_eq!(
        resumed, left,
        "what the kill left in processing/ is resumed"
    );

    // done/ holds each image once, and nothing is left behind.
    let filed: Vec<String> = list(&done)
        .into_iter()
        .filter(|f| f.ends_with(".png"))
        .collect();
    assert_eq!(filed, names, "done/ holds each image once");
    assert_eq!(list(&hot), Vec::<String>::new());
    assert_eq!(list(&hot.join("processing")), Vec::<String>::new());
    for name in &names[20..24] {
        assert_eq!(
            fs_err::read(done.join(name)).expect("filed image"),
            png(name[6..8].parse().expect("index")),
            "{name} was filed whole"
        );
    }

    // Each image: one enqueue over both watchers, its own folder and journal, and exactly its
    // sweep's outputs, named from the image (with the sweep's default grids, one per output
    // node).
    let manifest = job.join("each.yaml").display().to_string();
    let mut enqueued = per_manifest(&first_events, "enqueued");
    for (name, n) in per_manifest(&second_events, "enqueued") {
        *enqueued.entry(name).or_default() += n;
    }
    let once: BTreeMap<String, usize> = names
        .iter()
        .map(|n| (format!("{manifest} for {n}"), 1))
        .collect();
    assert_eq!(enqueued, once, "enqueues per image over both watchers");
    for name in &names {
        let stem = name.trim_end_matches(".png");
        let output_dir = job.join("out/each").join(stem);
        assert_eq!(journaled_enqueues(&output_dir), 1, "{name}");
        let pngs: Vec<String> = list(&output_dir)
            .into_iter()
            .filter(|f| f.ends_with(".png"))
            .collect();
        assert_eq!(
            pngs,
            [
                "grid-Blurred.png".to_owned(),
                "grid-Tinted.png".to_owned(),
                format!("{stem}-blur-1-Blurred.png"),
                format!("{stem}-blur-1-Tinted.png"),
                format!("{stem}-blur-3-Blurred.png"),
                format!("{stem}-blur-3-Tinted.png"),
            ],
            "{name}"
        );
        let report: Value = serde_json::from_slice(
            &fs_err::read(done.join(format!("{name}.report.json"))).expect("report"),
        )
        .expect("json");
        assert_eq!(report["verdict"], "done", "{name}");
        let files = report["outcome"]["files"].as_array().expect("files");
        assert_eq!(files.len(), 4, "{name}: {files:?}");
        assert_eq!(report["resumed"], left.contains(name), "{name}");
    }
    assert_eq!(
        list(&job.join("out/each")),
        Vec::<String>::new(),
        "only per-image folders"
    );

    // The text file is in failed/ with a report saying why; nothing was sent for it.
    assert_eq!(
        list(&failed),
        ["notes.png", "notes.png.error.txt", "notes.png.report.json"]
    );
    let error = fs_err::read_to_string(failed.join("notes.png.error.txt")).expect("error report");
    assert!(
        error.contains("notes.png` is not an image: its content is not PNG, JPEG or WebP"),
        "{error}"
    );
    let report: Value = serde_json::from_slice(
        &fs_err::read(failed.join("notes.png.report.json")).expect("report"),
    )
    .expect("json");
    assert_eq!(report["verdict"], "invalid");
    assert!(!job.join("out/each/notes").exists());
}

/// A 32 px PNG whose red channel is `i * 5` all over (told apart after a blur).
fn red_png(i: u8) -> Vec<u8> {
    let image = image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([
            i * 5,
            u8::try_from(x * 8).unwrap_or(0),
            u8::try_from(y * 8).unwrap_or(0),
        ])
    });
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .expect("encode");
    bytes
}

/// A journal's entries of one kind.
fn journal_entries(output_dir: &Path, event: &str) -> Vec<Value> {
    fs_err::read_to_string(output_dir.join(".invk-run/journal.jsonl"))
        .expect("journal")
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|e| e["event"] == event)
        .collect()
}

#[test]
fn live_a_burst_of_fifty_images_shares_enqueues_and_each_gets_its_own_outputs_once() {
    let (_tmp, job, hot) = folders();
    let manifest = job.join("each.yaml").display().to_string();
    // The defaults: as many images at once as `-j` defaults to with `--each`.
    let args = ["--each", &manifest, "--as", "Source image"];
    let names: Vec<String> = (0..50).map(|i| format!("burst-{i:02}.png")).collect();

    let mut watcher = Watcher::start(&hot, &args);
    watcher.wait_until("the watcher started", |e| count(e, "watch_started") == 1);
    // Dropped at once: written under hidden names, then renamed into place one after another.
    for (i, name) in names.iter().enumerate() {
        let bytes = red_png(u8::try_from(i).expect("small"));
        fs_err::write(hot.join(format!(".{name}")), bytes).expect("write");
    }
    for name in &names {
        fs_err::rename(hot.join(format!(".{name}")), hot.join(name)).expect("rename");
    }
    let done = hot.join("done");
    watcher.wait_until("50 done", |_| reports(&done, ".report.json") == 50);
    let (code, events) = watcher.interrupt();
    assert_eq!(code, Some(130));
    assert_eq!(count(&events, "watch_failed"), 0, "{events:#?}");

    // Fewer enqueues than images: the runs' enqueues share batches.
    let batches: BTreeSet<String> = events
        .iter()
        .filter(|e| e["event"] == "enqueued")
        .map(|e| e["batch_id"].as_str().expect("batch id").to_owned())
        .collect();
    assert!(
        batches.len() <= names.len() / 4,
        "{} enqueues for {} images",
        batches.len(),
        names.len()
    );

    // Each image: its own folder and journal, one enqueue of its two sessions, its own items
    // (no item of two images), and the sweep's outputs once, made from its own image.
    let mut items: BTreeSet<i64> = BTreeSet::new();
    let mut journaled: BTreeSet<String> = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        let stem = name.trim_end_matches(".png");
        let output_dir = job.join("out/each").join(stem);
        let intents = journal_entries(&output_dir, "enqueue_intent");
        assert_eq!(intents.len(), 1, "{name}: {intents:?}");
        assert_eq!(
            intents[0]["jobs"].as_array().map(Vec::len),
            Some(2),
            "{name}"
        );
        journaled.insert(intents[0]["batch_id"].as_str().expect("id").to_owned());
        let enqueued = journal_entries(&output_dir, "enqueued");
        assert_eq!(enqueued.len(), 1, "{name}");
        assert_eq!(enqueued[0]["batch_id"], intents[0]["batch_id"], "{name}");
        let ids = enqueued[0]["item_ids"].as_array().expect("ids");
        assert_eq!(ids.len(), 2, "{name}");
        for id in ids {
            assert!(
                items.insert(id.as_i64().expect("id")),
                "{name}: item {id} twice"
            );
        }
        let pngs: Vec<String> = list(&output_dir)
            .into_iter()
            .filter(|f| f.ends_with(".png"))
            .collect();
        assert_eq!(
            pngs,
            [
                format!("{stem}-blur-1-Blurred.png"),
                format!("{stem}-blur-1-Tinted.png"),
                format!("{stem}-blur-3-Blurred.png"),
                format!("{stem}-blur-3-Tinted.png"),
                "grid-Blurred.png".to_owned(),
                "grid-Tinted.png".to_owned(),
            ],
            "{name}"
        );
        // A blur keeps the red channel, which is the same all over each image: its middle
        // tells which image the output was made from.
        for radius in [1, 3] {
            let file = output_dir.join(format!("{stem}-blur-{radius}-Blurred.png"));
            let red = image::open(&file)
                .expect("output")
                .to_rgb8()
                .get_pixel(16, 16)[0];
            let want = u8::try_from(i * 5).expect("small");
            assert!(
                red.abs_diff(want) <= 2,
                "{}: red {red}, the image's is {want}",
                file.display()
            );
        }
    }
    assert_eq!(journaled, batches, "the journals name the batches sent");
    assert_eq!(items.len(), 100, "two items per image, none shared");
    let filed: Vec<String> = list(&done)
        .into_iter()
        .filter(|f| f.ends_with(".png"))
        .collect();
    assert_eq!(filed, names, "done/ holds each image once");
    assert_eq!(list(&hot), Vec::<String>::new());
    assert_eq!(list(&hot.join("processing")), Vec::<String>::new());
}

#[test]
fn live_a_full_queue_takes_part_of_a_shared_batch_and_each_image_gets_the_rest_later() {
    // A queue of five: a burst of eight images (sixteen sessions) does not fit.
    let server = PrivateServer::start(Some(5));
    let (_tmp, job, hot) = folders();
    let manifest = job.join("each.yaml").display().to_string();
    let args = ["--each", &manifest, "--as", "Source image"];
    let names: Vec<String> = (0..8).map(|i| format!("full-{i}.png")).collect();

    let mut watcher = Watcher::start_on(&server.url(), &hot, &args);
    watcher.wait_until("the watcher started", |e| count(e, "watch_started") == 1);
    for (i, name) in names.iter().enumerate() {
        let bytes = red_png(u8::try_from(i).expect("small"));
        fs_err::write(hot.join(format!(".{name}")), bytes).expect("write");
    }
    for name in &names {
        fs_err::rename(hot.join(format!(".{name}")), hot.join(name)).expect("rename");
    }
    let done = hot.join("done");
    watcher.wait_until("8 done", |_| reports(&done, ".report.json") == 8);
    let (code, events) = watcher.interrupt();
    assert_eq!(code, Some(130));
    assert_eq!(count(&events, "watch_failed"), 0, "{events:#?}");

    // Some image's part of a shared batch was taken short (or not at all) by the full queue,
    // and every image still ran each session once, with its own items.
    let mut short = Vec::new();
    let mut shared = false;
    let mut items: BTreeSet<i64> = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        let stem = name.trim_end_matches(".png");
        let output_dir = job.join("out/each").join(stem);
        let intents = journal_entries(&output_dir, "enqueue_intent");
        shared |= intents.iter().any(|e| e["first"].as_u64().unwrap_or(0) > 0);
        for enqueued in journal_entries(&output_dir, "enqueued") {
            let intent = intents
                .iter()
                .find(|e| e["batch_id"] == enqueued["batch_id"])
                .expect("an intent before each answer");
            let ids = enqueued["item_ids"].as_array().expect("ids");
            if ids.len() < intent["jobs"].as_array().map_or(0, Vec::len) {
                short.push(name.clone());
            }
            for id in ids {
                assert!(
                    items.insert(id.as_i64().expect("id")),
                    "{name}: item {id} twice"
                );
            }
        }
        let completed = journal_entries(&output_dir, "finished")
            .into_iter()
            .filter(|e| e["status"] == "completed")
            .count();
        assert_eq!(completed, 2, "{name}: each session completed once");
        for radius in [1, 3] {
            let file = output_dir.join(format!("{stem}-blur-{radius}-Blurred.png"));
            let red = image::open(&file)
                .expect("output")
                .to_rgb8()
                .get_pixel(16, 16)[0];
            let want = u8::try_from(i * 5).expect("small");
            assert!(red.abs_diff(want) <= 2, "{}: red {red}", file.display());
        }
    }
    assert!(shared, "no image's run had a part of a shared batch");
    assert!(
        !short.is_empty(),
        "the full queue took every shared batch whole"
    );
    let filed: Vec<String> = list(&done)
        .into_iter()
        .filter(|f| f.ends_with(".png"))
        .collect();
    assert_eq!(filed, names, "done/ holds each image once");
}

#[tokio::test(flavor = "multi_thread")]
async fn live_a_shared_enqueue_whose_answer_is_lost_is_found_again_by_each_image() {
    // The first enqueue reaches the server, its answer is lost, and the server cannot be
    // reached for five seconds.
    let upstream: std::net::SocketAddr = support::server()
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("server address");
    let (url, seen) = crate::outage::outage_proxy(
        upstream,
        "/enqueue_batch HTTP/1.1",
        Duration::from_secs(5),
        true,
    )
    .await;
    let (_tmp, job, hot) = folders();
    let names: Vec<String> = (0..4).map(|i| format!("lost-{i}.png")).collect();
    let (events, job) = tokio::task::spawn_blocking({
        let names = names.clone();
        move || {
            let manifest = job.join("each.yaml").display().to_string();
            let args = ["--each", &manifest, "--as", "Source image"];
            let mut watcher = Watcher::start_on(&url, &hot, &args);
            watcher.wait_until("the watcher started", |e| count(e, "watch_started") == 1);
            for (i, name) in names.iter().enumerate() {
                let bytes = red_png(u8::try_from(i).expect("small"));
                fs_err::write(hot.join(format!(".{name}")), bytes).expect("write");
            }
            for name in &names {
                fs_err::rename(hot.join(format!(".{name}")), hot.join(name)).expect("rename");
            }
            let done = hot.join("done");
            watcher.wait_until("4 done", |_| reports(&done, ".report.json") == 4);
            let (code, events) = watcher.interrupt();
            assert_eq!(code, Some(130));
            (events, job)
        }
    })
    .await
    .expect("join");
    assert!(seen.outage.load(Ordering::SeqCst), "no enqueue passed by");
    assert_eq!(count(&events, "watch_failed"), 0, "{events:#?}");

    // Each image found its own items of the shared batch again: one enqueue each, never sent
    // twice, each session completed once, the outputs made from its own image.
    let mut shared = false;
    let mut items: BTreeSet<i64> = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        let stem = name.trim_end_matches(".png");
        let output_dir = job.join("out/each").join(stem);
        let intents = journal_entries(&output_dir, "enqueue_intent");
        assert_eq!(intents.len(), 1, "{name}: sent once: {intents:?}");
        shared |= intents[0]["first"].as_u64().unwrap_or(0) > 0;
        let enqueued = journal_entries(&output_dir, "enqueued");
        assert_eq!(enqueued.len(), 1, "{name}");
        for id in enqueued[0]["item_ids"].as_array().expect("ids") {
            assert!(
                items.insert(id.as_i64().expect("id")),
                "{name}: item {id} twice"
            );
        }
        let completed = journal_entries(&output_dir, "finished")
            .into_iter()
            .filter(|e| e["status"] == "completed")
            .count();
        assert_eq!(completed, 2, "{name}");
        for radius in [1, 3] {
            let file = output_dir.join(format!("{stem}-blur-{radius}-Blurred.png"));
            let red = image::open(&file)
                .expect("output")
                .to_rgb8()
                .get_pixel(16, 16)[0];
            let want = u8::try_from(i * 5).expect("small");
            assert!(red.abs_diff(want) <= 2, "{}: red {red}", file.display());
        }
    }
    assert!(shared, "the first enqueue was not shared");
    assert_eq!(items.len(), 8);
}

#[test]
fn a_bad_manifest_or_a_non_image_input_exits_2_before_watching() {
    let (_tmp, job, hot) = folders();
    fs_err::write(
        job.join("typo.yaml"),
        EACH.replace("Hue shift", "Hue shfit"),
    )
    .expect("write");
    // The sweep sets the input each image is for.
    let swept = EACH.replace(
        "    Blur radius",
        "    Source image: [a.png, b.png]\n    Blur radius",
    );
    fs_err::write(job.join("swept.yaml"), swept).expect("write");
    fs_err::write(job.join("a.png"), png(1)).expect("write");
    fs_err::write(job.join("b.png"), png(2)).expect("write");
    let cases = [
        ("each.yaml", "Hue shift", "has no image input `Hue shift`"),
        ("typo.yaml", "Source image", "Hue shfit"),
        ("missing.yaml", "Source image", "missing.yaml"),
        ("swept.yaml", "Source image", "the sweep of `"),
    ];
    for (manifest, input, want) in cases {
        let out = support::invk_run()
            .arg("watch")
            .arg(&hot)
            .arg("--each")
            .arg(job.join(manifest))
            .args(["--as", input, "--server", "http://127.0.0.1:9"])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{manifest}: {stderr}");
        assert!(stderr.contains(want), "{manifest}: {stderr}");
        assert!(
            !hot.join("processing").exists(),
            "{manifest}: nothing is created before the manifest is checked"
        );
    }
}

#[tokio::test]
async fn a_second_image_of_the_same_name_gets_a_name_and_a_run_of_its_own() {
    let hot = super::HotFolder::new();
    let mut config = hot.config.clone();
    config.patterns = invk_run::watch::FilePatterns::new(&["*.png".to_owned()], &[]).expect("glob");
    config.fresh_names = true;
    let runner = super::FakeRunner::new(Duration::from_millis(20));
    let events = super::Events::default();
    let until = async {
        hot.write("cat.png", &super::manifest("first"));
        super::files_in(&config.done_dir, ".report.json", 1).await;
        hot.write("cat.png", &super::manifest("second"));
        super::files_in(&config.done_dir, ".report.json", 2).await;
    };
    let summary =
        super::watch_until(&config, &runner, &events, until, Duration::from_secs(30)).await;
    assert_eq!(summary.done, 2);
    assert_eq!(
        list(&config.done_dir),
        [
            "cat-1.png",
            "cat-1.png.report.json",
            "cat.png",
            "cat.png.report.json"
        ]
    );
    // Each ran, and submitted, under its own name: the second did not resume the first.
    runner.seen(|seen| {
        assert_eq!(
            seen.submissions,
            BTreeMap::from([("cat-1.png".to_owned(), 1), ("cat.png".to_owned(), 1)])
        );
    });
    assert_eq!(
        fs_err::read_to_string(config.done_dir.join("cat-1.png")).expect("second"),
        super::manifest("second")
    );
}
