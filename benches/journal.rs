//! Benchmark of the run journal: a journal of N finished jobs (default 100,000), as a run of
//! that many jobs leaves it (enqueues of 16 sessions; per job its session, one intermediate,
//! two downloaded outputs and its end), loaded the way a resumed run loads it: first as written
//! (the load compacts it into one checkpoint line), then from the checkpoint. Also `read`, which
//! `invk-run status` uses. Prints each figure; `cargo bench --bench journal -- [N]`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use invk_run::run::journal::Journal;

/// Sessions per enqueue, as the engine's default window sends them.
const PER_ENQUEUE: usize = 16;

/// Writes the journal of a run of `jobs` jobs into `dir`; returns its size in bytes.
fn write_journal(dir: &Path, jobs: usize) -> usize {
    let mut text = String::new();
    let _ = writeln!(
        text,
        r#"{{"event":"started","run_id":"bench","plan_hash":"0","server":"http://127.0.0.1:9090","jobs":{jobs}}}"#
    );
    let key = |job: usize| {
        format!(
            "{job}-{:016x}",
            (job as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        )
    };
    for first in (0..jobs).step_by(PER_ENQUEUE) {
        let batch: Vec<usize> = (first..jobs.min(first + PER_ENQUEUE)).collect();
        let keys: Vec<String> = batch.iter().map(|&j| format!("\"{}\"", key(j))).collect();
        let ids: Vec<String> = batch.iter().map(|&j| (j + 1).to_string()).collect();
        let _ = writeln!(
            text,
            r#"{{"event":"enqueue_intent","batch_id":"batch-{first}","jobs":[{}]}}"#,
            keys.join(",")
        );
        let _ = writeln!(
            text,
            r#"{{"event":"enqueued","batch_id":"batch-{first}","item_ids":[{}]}}"#,
            ids.join(",")
        );
        for &job in &batch {
            let (k, id) = (key(job), job + 1);
            let _ = writeln!(
                text,
                r#"{{"event":"produced","item_id":{id},"session_id":"session-{job:08}","images":["mid-{job:08}.png"]}}"#
            );
            for node in ["Blurred", "Tinted"] {
                let _ = writeln!(
                    text,
                    r#"{{"event":"downloaded","job":"{k}","image_name":"{node}-{job:08}.png","file":"hue-{}/blur-{}-{node}.png"}}"#,
                    job % 360,
                    job / 360
                );
            }
            let _ = writeln!(
                text,
                r#"{{"event":"finished","job":"{k}","item_id":{id},"status":"completed"}}"#
            );
        }
    }
    let path = Journal::path_in(dir);
    fs_err::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs_err::write(&path, &text).expect("write journal");
    text.len()
}

fn main() {
    let jobs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = write_journal(dir.path(), jobs);
    let lines = fs_err::read_to_string(Journal::path_in(dir.path()))
        .expect("read")
        .lines()
        .count();
    println!(
        "journal of {jobs} finished jobs: {lines} lines, {:.1} MB",
        bytes as f64 / 1e6
    );

    let started = Instant::now();
    let state = Journal::read(dir.path()).expect("read").expect("a journal");
    println!(
        "read as written (invk-run status):    {:>8.3} s",
        started.elapsed().as_secs_f64()
    );
    let finished = state.finished.len();

    let started = Instant::now();
    let (journal, _state) = Journal::open(dir.path(), false).expect("open");
    drop(journal);
    println!(
        "open as written, compacting:          {:>8.3} s",
        started.elapsed().as_secs_f64()
    );
    let compacted = fs_err::read_to_string(Journal::path_in(dir.path())).expect("read");
    println!(
        "after compaction: {} line(s), {:.1} MB",
        compacted.lines().count(),
        compacted.len() as f64 / 1e6
    );

    let started = Instant::now();
    let (journal, again) = Journal::open(dir.path(), false).expect("open");
    drop(journal);
    println!(
        "open from the checkpoint (resume):    {:>8.3} s   (target: well under 1 s)",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        again.finished.len(),
        finished,
        "the checkpoint keeps every job"
    );
    println!("jobs known after the checkpoint: {}", again.finished.len());
}
