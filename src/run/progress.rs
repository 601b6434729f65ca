//! What a run tells its user: a progress bar per manifest on a terminal, plain lines elsewhere,
//! one JSON object per line with `--json`, nothing but errors with `-q`.
//!
//! Data (the JSON lines) goes to stdout; everything else to stderr.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// How a run reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportMode {
    /// Text for people: progress bars on a terminal, lines otherwise.
    Human,
    /// One JSON object per line on stdout.
    Json,
    /// Errors only.
    Quiet,
}

/// Something that happened in a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// A manifest was expanded.
    Planned {
        /// The manifest file.
        manifest: String,
        /// How many jobs it holds.
        jobs: usize,
        /// How many of them are already done (resumed runs).
        done: usize,
        /// How many of them failed in an earlier run (not run again without `--retry-failed`).
        failed: usize,
        /// The most sessions of the run pending on the server at once (on each server of a
        /// pool, unless its entry says otherwise).
        window: usize,
        /// The servers of a pool (left out for one server).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        servers: Vec<String>,
        /// The output folder.
        output_dir: String,
    },
    /// A local image was uploaded.
    Uploaded {
        /// The manifest file.
        manifest: String,
        /// The local file.
        path: String,
        /// Its name on the server.
        image_name: String,
    },
    /// A batch was enqueued.
    Enqueued {
        /// The manifest file.
        manifest: String,
        /// Batch id.
        batch_id: String,
        /// Queue items made.
        items: usize,
    },
    /// A job completed and its outputs are on disk.
    JobCompleted {
        /// The manifest file.
        manifest: String,
        /// Job index.
        job: usize,
        /// Queue item id (on its server).
        item_id: i64,
        /// Files written, relative to the output folder.
        files: Vec<String>,
        /// The server that ran it, when the run has several.
        #[serde(skip_serializing_if = "Option::is_none")]
        server: Option<String>,
    },
    /// A job failed on the server.
    JobFailed {
        /// The manifest file.
        manifest: String,
        /// Job index.
        job: usize,
        /// Queue item id (on its server).
        item_id: i64,
        /// The server's error.
        error: String,
        /// The server that ran it, when the run has several.
        #[serde(skip_serializing_if = "Option::is_none")]
        server: Option<String>,
    },
    /// Server images were deleted.
    CleanedUp {
        /// The manifest file.
        manifest: String,
        /// How many images.
        images: usize,
    },
    /// What one server of a pool did in the run (at its end, before `finished`).
    ServerShare {
        /// The manifest file.
        manifest: String,
        /// The server's URL.
        server: String,
        /// Jobs it completed.
        completed: usize,
        /// Jobs that failed on it.
        failed: usize,
        /// Items of the run it still has (it left the pool, or the run was interrupted).
        left: usize,
        /// Why it left the pool, if it did.
        #[serde(skip_serializing_if = "Option::is_none")]
        out: Option<String>,
    },
    /// Where a server of a pool stands (sent whenever that changes).
    ServerProgress {
        /// The manifest file.
        manifest: String,
        /// The server's URL.
        server: String,
        /// Jobs it completed.
        done: usize,
        /// Its items of the run running now.
        running: usize,
        /// Its items of the run waiting in its queue.
        pending: usize,
        /// Jobs that failed on it.
        failed: usize,
        /// Whether it does not answer now.
        down: bool,
        /// Whether it left the pool.
        left: bool,
    },
    /// A server of a pool left it: nothing more is sent to it, its unfinished jobs go to the
    /// other servers.
    ServerLeft {
        /// The manifest file.
        manifest: String,
        /// The server's URL.
        server: String,
        /// Why it left.
        reason: String,
        /// Its sessions of the run that were still open, handed to the other servers.
        handed_over: usize,
    },
    /// Ctrl-C: what the run left where.
    Interrupted {
        /// The manifest file.
        manifest: String,
        /// Items taken back before they started (the next run submits them again).
        withdrawn: usize,
        /// Items still running on the server (the next run collects them).
        running: usize,
        /// Why items could not be taken back, when the server did not answer.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The output folder.
        output_dir: String,
    },
    /// A warning (the run goes on).
    Warning {
        /// The manifest file.
        manifest: String,
        /// What happened.
        message: String,
    },
    /// A manifest's run ended.
    Finished {
        /// The manifest file.
        manifest: String,
        /// Jobs completed (this run and earlier ones).
        completed: usize,
        /// Jobs failed.
        failed: usize,
        /// Seconds the run took.
        seconds: f64,
        /// The output folder.
        output_dir: String,
    },
}

/// Writes run events in the chosen mode. Cheap to share between tasks.
#[derive(Debug)]
pub struct Reporter {
    mode: ReportMode,
    multi: MultiProgress,
    bars: Mutex<Vec<(String, ProgressBar)>>,
    failed: Mutex<std::collections::HashMap<String, usize>>,
    /// Of a pool's runs: each server's tally, per manifest, for the progress bar.
    shares: Mutex<std::collections::HashMap<String, std::collections::BTreeMap<String, Tally>>>,
}

/// Where a server of a pool stands in a run, for the progress bar.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    done: usize,
    running: usize,
    failed: usize,
    down: bool,
    left: bool,
}

impl Reporter {
    /// A reporter; progress bars are drawn only when stderr is a terminal.
    #[must_use]
    pub fn new(mode: ReportMode) -> Reporter {
        let target = if mode == ReportMode::Human && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Reporter {
            mode,
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(Vec::new()),
            failed: Mutex::default(),
            shares: Mutex::default(),
        }
    }

    /// A reporter that never draws progress bars (for callers that print lines of their own
    /// on stderr, like the hot folder's status).
    #[must_use]
    pub fn without_bars(mode: ReportMode) -> Reporter {
        Reporter {
            mode,
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            bars: Mutex::new(Vec::new()),
            failed: Mutex::default(),
            shares: Mutex::default(),
        }
    }

    /// The mode.
    #[must_use]
    pub fn mode(&self) -> ReportMode {
        self.mode
    }

    /// Reports an event.
    pub fn event(&self, event: &RunEvent) {
        match self.mode {
            ReportMode::Quiet => {}
            ReportMode::Json => {
                if let Ok(line) = serde_json::to_string(event) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            }
            ReportMode::Human => self.human(event),
        }
    }

    fn bar(&self, manifest: &str) -> Option<ProgressBar> {
        let bars = self.bars.lock().ok()?;
        bars.iter()
            .find(|(m, _)| m == manifest)
            .map(|(_, b)| b.clone())
    }

    /// Takes a pool server's standing and shows every server's in the manifest's bar.
    fn tally(&self, manifest: &str, server: &str, now: Tally) {
        let Ok(mut shares) = self.shares.lock() else {
            return;
        };
        let servers = shares.entry(manifest.to_owned()).or_default();
        servers.insert(server.to_owned(), now);
        if let Some(bar) = self.bar(manifest) {
            let parts: Vec<String> = servers
                .iter()
                .map(|(server, t)| {
                    let host = server
                        .trim_start_matches("http://")
                        .trim_start_matches("https://")
                        .trim_end_matches('/');
                    let mut part = format!("{host} {} done", t.done);
                    if t.running > 0 {
                        part.push_str(&format!(", {} running", t.running));
                    }
                    if t.failed > 0 {
                        part.push_str(&format!(", {} failed", t.failed));
                    }
                    if t.left {
                        part.push_str(", left");
                    } else if t.down {
                        part.push_str(", down");
                    }
                    part
                })
                .collect();
            bar.set_message(parts.join(" · "));
        }
    }

    fn println(&self, line: &str) {
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
    }

    fn human(&self, event: &RunEvent) {
        match event {
            RunEvent::Planned {
                manifest,
                jobs,
                done,
                failed,
                window,
                servers,
                output_dir,
            } => {
                let resumed = match (*done, *failed) {
                    (0, 0) => String::new(),
                    (d, 0) => format!(" ({d} already done)"),
                    (0, f) => format!(" ({f} failed before)"),
                    (d, f) => format!(" ({d} already done, {f} failed before)"),
                };
                let pool = if servers.len() > 1 {
                    format!(
                        " on each of {} servers ({})",
                        servers.len(),
                        servers.join(", ")
                    )
                } else {
                    String::new()
                };
                self.println(&format!(
                    "{manifest}: {jobs} jobs{resumed}, up to {window} at a time{pool} -> {output_dir}"
                ));
                let bar = self.multi.add(ProgressBar::new(*jobs as u64));
                bar.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_prefix(manifest.clone());
                bar.set_position((*done + *failed) as u64);
                bar.enable_steady_tick(Duration::from_millis(500));
                if let Ok(mut bars) = self.bars.lock() {
                    bars.push((manifest.clone(), bar));
                }
            }
            RunEvent::Uploaded { .. } | RunEvent::Enqueued { .. } => {}
            RunEvent::JobCompleted { manifest, .. } => {
                if let Some(bar) = self.bar(manifest) {
                    bar.inc(1);
                }
            }
            RunEvent::JobFailed {
                manifest,
                job,
                item_id,
                error,
                server,
            } => {
                if let Some(bar) = self.bar(manifest) {
                    bar.inc(1);
                    let failed = self.failed.lock().map_or(0, |mut counts| {
                        let n = counts.entry(manifest.clone()).or_insert(0);
                        *n += 1;
                        *n
                    });
                    bar.set_message(format!("{failed} failed"));
                }
                match server {
                    Some(server) => {
                        self.println(&format!(
                            "{manifest}: job {job} (item {item_id} on {server}) failed: {error}"
                        ));
                    }
                    None => self.println(&format!(
                        "{manifest}: job {job} (item {item_id}) failed: {error}"
                    )),
                }
            }
            RunEvent::ServerProgress {
                manifest,
                server,
                done,
                running,
                failed,
                down,
                left,
                ..
            } => self.tally(
                manifest,
                server,
                Tally {
                    done: *done,
                    running: *running,
                    failed: *failed,
                    down: *down,
                    left: *left,
                },
            ),
            RunEvent::ServerLeft {
                manifest,
                server,
                reason,
                handed_over,
            } => {
                self.println(&format!(
                    "{manifest}: warning: the server at {server} leaves the pool: {reason}; its \
                     {handed_over} unfinished sessions go to the other servers (what it still \
                     runs is not collected, and is cancelled if it answers again before the run \
                     ends)"
                ));
            }
            RunEvent::CleanedUp { .. } => {}
            RunEvent::Interrupted {
                manifest,
                withdrawn,
                running,
                error,
                output_dir,
            } => {
                let mut text = format!(
                    "{manifest}: interrupted: took back {withdrawn} queued item{} from the server",
                    if *withdrawn == 1 { "" } else { "s" }
                );
                if *running > 0 {
                    text.push_str(&format!(
                        "; {running} still running there (the next run collects {})",
                        if *running == 1 { "it" } else { "them" }
                    ));
                }
                if let Some(error) = error {
                    text.push_str(&format!(
                        "; the server did not answer ({error}): `invk-run cancel` takes the rest back"
                    ));
                }
                text.push_str(&format!(
                    "; files so far are in {output_dir}; run the same command again to finish"
                ));
                self.println(&text);
            }
            RunEvent::ServerShare {
                manifest,
                server,
                completed,
                failed,
                left,
                out,
            } => {
                let mut text =
                    format!("{manifest}: {server}: {completed} completed, {failed} failed");
                if *left > 0 {
                    text.push_str(&format!(", {left} left there"));
                }
                if let Some(why) = out {
                    text.push_str(&format!("; left the pool ({why})"));
                }
                self.println(&text);
            }
            RunEvent::Warning { manifest, message } => {
                self.println(&format!("{manifest}: warning: {message}"));
            }
            RunEvent::Finished {
                manifest,
                completed,
                failed,
                seconds,
                output_dir,
            } => {
                if let Some(bar) = self.bar(manifest) {
                    bar.finish_and_clear();
                }
                let failed = if *failed > 0 {
                    format!(", {failed} failed")
                } else {
                    String::new()
                };
                self.println(&format!(
                    "{manifest}: {completed} completed{failed} in {seconds:.1}s -> {output_dir}"
                ));
            }
        }
    }
}
