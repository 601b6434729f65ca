//! The console listener: what a run tells people on stderr, a progress bar per manifest on a
//! terminal and plain lines elsewhere.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::event::RunEvent;
use super::listener::Listener;

/// Writes run events for people on stderr, with a progress bar per manifest when stderr is a
/// terminal and bars are wanted.
#[derive(Debug)]
pub struct Console {
    multi: MultiProgress,
    bars: Mutex<Vec<(String, ProgressBar)>>,
    failed: Mutex<HashMap<String, usize>>,
    /// Of a pool's runs: each server's tally, per manifest, for the progress bar.
    shares: Mutex<HashMap<String, BTreeMap<String, Tally>>>,
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

impl Console {
    /// A console listener; with `bars`, progress bars are drawn when stderr is a terminal.
    #[must_use]
    pub fn new(bars: bool) -> Console {
        let target = if bars && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Console {
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(Vec::new()),
            failed: Mutex::default(),
            shares: Mutex::default(),
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

    fn show(&self, event: &RunEvent) {
        match event {
            RunEvent::Planned { .. } => self.show_planned(event),
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
            RunEvent::ServerStatus { .. } => self.show_server_status(event),
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
            RunEvent::Interrupted { .. } => self.show_interrupted(event),
            RunEvent::Repairing {
                manifest, message, ..
            } => self.println(&format!("{manifest}: {message}")),
            RunEvent::NothingToDo {
                manifest,
                jobs,
                files,
                output_dir,
            } => self.println(&format!(
                "{manifest}: nothing to do: its {jobs} jobs are done and their {files} files on disk -> {output_dir}"
            )),
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

    fn show_planned(&self, event: &RunEvent) {
        let RunEvent::Planned {
            manifest,
            jobs,
            done,
            failed,
            window,
            servers,
            windows,
            output_dir,
        } = event
        else {
            return;
        };
        let resumed = match (*done, *failed) {
            (0, 0) => String::new(),
            (d, 0) => format!(" ({d} already done)"),
            (0, f) => format!(" ({f} failed before)"),
            (d, f) => format!(" ({d} already done, {f} failed before)"),
        };
        let each_alike = windows.iter().all(|w| w == window);
        let how = match servers.len() {
            0 | 1 => format!("up to {window} at a time"),
            n if each_alike => format!(
                "up to {window} at a time on each of {n} servers ({})",
                servers.join(", ")
            ),
            n => {
                let each: Vec<String> = servers
                    .iter()
                    .zip(windows)
                    .map(|(url, w)| format!("{w} on {url}"))
                    .collect();
                format!("on {n} servers, up to {} at a time", each.join(", "))
            }
        };
        self.println(&format!(
            "{manifest}: {jobs} jobs{resumed}, {how} -> {output_dir}"
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

    fn show_server_status(&self, event: &RunEvent) {
        let RunEvent::ServerStatus {
            manifest,
            server,
            done,
            running,
            failed,
            down,
            left,
            reason,
            on_server,
            end,
            ..
        } = event
        else {
            return;
        };
        if *end {
            let mut text = format!("{manifest}: {server}: {done} completed, {failed} failed");
            if *on_server > 0 {
                text.push_str(&format!(", {on_server} left there"));
            }
            if let Some(why) = reason {
                text.push_str(&format!("; left the pool ({why})"));
            }
            self.println(&text);
        } else {
            self.tally(
                manifest,
                server,
                Tally {
                    done: *done,
                    running: *running,
                    failed: *failed,
                    down: *down,
                    left: *left,
                },
            );
        }
    }

    fn show_interrupted(&self, event: &RunEvent) {
        let RunEvent::Interrupted {
            manifest,
            withdrawn,
            running,
            error,
            output_dir,
        } = event
        else {
            return;
        };
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
}

impl Listener for Console {
    fn hear(&self, event: &RunEvent) {
        self.show(event);
    }
}
