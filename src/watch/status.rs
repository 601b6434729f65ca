//! What the watcher tells its user: one line per event on stderr, or with `--json` one JSON
//! object per line on stdout (beside the run's own events), or nothing but failures with `-q`.

use std::io::Write;

use serde::Serialize;

use crate::run::progress::ReportMode;

/// How many manifests are where, at the time of an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Manifests running now.
    pub running: usize,
    /// Manifests in the hot folder waiting to settle or for a free slot.
    pub queued: usize,
    /// Manifests filed into `done/` since the watcher started.
    pub done: usize,
    /// Manifests filed into `failed/` since the watcher started.
    pub failed: usize,
}

/// Something the watcher did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WatchEvent {
    /// The watcher started.
    WatchStarted {
        /// The hot folder.
        dir: String,
        /// The include patterns.
        include: Vec<String>,
        /// How many manifests run at once.
        concurrency: usize,
        /// The processing folder.
        processing_dir: String,
        /// The done folder.
        done_dir: String,
        /// The failed folder.
        failed_dir: String,
    },
    /// A manifest left in the processing folder by an earlier watcher is run again (the run's
    /// journal resumes it).
    WatchResumed {
        /// The manifest's name.
        manifest: String,
        /// Where it is.
        path: String,
        /// Counts after the event.
        #[serde(flatten)]
        counts: Counts,
    },
    /// A settled manifest was claimed and starts running.
    WatchClaimed {
        /// The manifest's name (in the hot folder).
        manifest: String,
        /// Where it was moved to.
        path: String,
        /// Counts after the event.
        #[serde(flatten)]
        counts: Counts,
    },
    /// A manifest ran to the end without failures and was filed into `done/`.
    WatchDone {
        /// The manifest's name.
        manifest: String,
        /// Jobs completed.
        completed: usize,
        /// Files written.
        files: usize,
        /// Seconds it ran.
        seconds: f64,
        /// Its report.
        report: String,
        /// Counts after the event.
        #[serde(flatten)]
        counts: Counts,
    },
    /// A manifest was invalid or its run failed; it was filed into `failed/`.
    WatchFailed {
        /// The manifest's name.
        manifest: String,
        /// Whether the manifest was invalid (nothing was sent) rather than its run failing.
        invalid: bool,
        /// With `--each`: the file is not an image (nothing was sent; `invalid` is true).
        not_an_image: bool,
        /// The error, in one line.
        error: String,
        /// The error report.
        report: String,
        /// Counts after the event.
        #[serde(flatten)]
        counts: Counts,
    },
    /// A run was interrupted (Ctrl-C); the manifest stays in the processing folder and is
    /// resumed when the watcher starts again.
    WatchInterrupted {
        /// The manifest's name.
        manifest: String,
        /// Where it stays.
        path: String,
        /// Counts after the event.
        #[serde(flatten)]
        counts: Counts,
    },
    /// Something went wrong with one file; the watcher goes on.
    WatchWarning {
        /// The file, when the problem is about one.
        #[serde(skip_serializing_if = "Option::is_none")]
        manifest: Option<String>,
        /// What happened.
        message: String,
    },
    /// Ctrl-C: no new manifest is claimed; the running ones are stopped at a checkpoint.
    WatchStopping {
        /// Counts at the time.
        #[serde(flatten)]
        counts: Counts,
    },
    /// The watcher stopped.
    WatchStopped {
        /// Counts at the end.
        #[serde(flatten)]
        counts: Counts,
    },
}

impl WatchEvent {
    /// The event as one line of text for people (control characters escaped).
    #[must_use]
    pub fn human_line(&self) -> String {
        let tally = |c: &Counts| {
            format!(
                "[running {}, queued {}, done {}, failed {}]",
                c.running, c.queued, c.done, c.failed
            )
        };
        let line = match self {
            WatchEvent::WatchStarted {
                dir,
                include,
                concurrency,
                processing_dir,
                done_dir,
                failed_dir,
            } => format!(
                "watching {dir} for {} ({concurrency} at a time; processing: {processing_dir}, done: {done_dir}, failed: {failed_dir})",
                include.join(", ")
            ),
            WatchEvent::WatchResumed {
                manifest, counts, ..
            } => {
                format!(
                    "resumed {manifest} (left in processing by an earlier watcher) {}",
                    tally(counts)
                )
            }
            WatchEvent::WatchClaimed {
                manifest, counts, ..
            } => format!("claimed {manifest} {}", tally(counts)),
            WatchEvent::WatchDone {
                manifest,
                completed,
                files,
                seconds,
                report,
                counts,
            } => format!(
                "done {manifest}: {completed} job{} completed, {files} file{} in {seconds:.1}s; report {report} {}",
                plural(*completed),
                plural(*files),
                tally(counts)
            ),
            WatchEvent::WatchFailed {
                manifest,
                invalid,
                not_an_image,
                error,
                report,
                counts,
            } => format!(
                "failed {manifest}: {}{error}; report {report} {}",
                if *invalid && !*not_an_image {
                    "invalid manifest: "
                } else {
                    ""
                },
                tally(counts)
            ),
            WatchEvent::WatchInterrupted {
                manifest,
                path,
                counts,
            } => {
                format!(
                    "interrupted {manifest}: stays in {path}, resumed at the next start {}",
                    tally(counts)
                )
            }
            WatchEvent::WatchWarning { manifest, message } => match manifest {
                Some(m) => format!("warning: {m}: {message}"),
                None => format!("warning: {message}"),
            },
            WatchEvent::WatchStopping { counts } => format!(
                "stopping: no new manifests are claimed; waiting for {} running (Ctrl-C again to quit at once) {}",
                counts.running,
                tally(counts)
            ),
            WatchEvent::WatchStopped { counts } => format!("stopped {}", tally(counts)),
        };
        // File names are the user's: a newline in one must not fake a line.
        crate::printable::printable(&line).into_owned()
    }

    /// Whether `-q` still shows the event.
    #[must_use]
    pub fn is_problem(&self) -> bool {
        matches!(
            self,
            WatchEvent::WatchFailed { .. } | WatchEvent::WatchWarning { .. }
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

type Callback = Box<dyn Fn(&WatchEvent) + Send + Sync>;

/// Where watch events go.
pub struct WatchStatus {
    sink: Sink,
    /// Cancelled when the reader of the JSON lines on stdout goes away.
    stdout_closed: Option<tokio_util::sync::CancellationToken>,
}

enum Sink {
    Print(ReportMode),
    Callback(Callback),
}

impl std::fmt::Debug for WatchStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.sink {
            Sink::Print(mode) => f.debug_tuple("WatchStatus::Print").field(mode).finish(),
            Sink::Callback(_) => f.write_str("WatchStatus::Callback"),
        }
    }
}

impl WatchStatus {
    /// Prints events in `mode`: lines on stderr ([`ReportMode::Human`]), JSON lines on stdout
    /// ([`ReportMode::Json`]), only failures and warnings on stderr ([`ReportMode::Quiet`]).
    #[must_use]
    pub fn new(mode: ReportMode) -> WatchStatus {
        WatchStatus {
            sink: Sink::Print(mode),
            stdout_closed: None,
        }
    }

    /// Hands every event to `callback` (for programs and tests that embed the watcher).
    #[must_use]
    pub fn with_callback(callback: impl Fn(&WatchEvent) + Send + Sync + 'static) -> WatchStatus {
        WatchStatus {
            sink: Sink::Callback(Box::new(callback)),
            stdout_closed: None,
        }
    }

    /// Cancels `token` when the JSON lines cannot be written because their reader is gone
    /// (`invk-run watch --json DIR | head`): the watcher can stop as `tail -f` would.
    #[must_use]
    pub fn stop_when_stdout_closes(
        mut self,
        token: tokio_util::sync::CancellationToken,
    ) -> WatchStatus {
        self.stdout_closed = Some(token);
        self
    }

    /// Reports an event.
    pub fn event(&self, event: &WatchEvent) {
        match &self.sink {
            Sink::Callback(callback) => callback(event),
            Sink::Print(ReportMode::Json) => {
                if let Ok(line) = serde_json::to_string(event) {
                    let mut out = std::io::stdout().lock();
                    let written = writeln!(out, "{line}").and_then(|()| out.flush());
                    if let (Err(err), Some(token)) = (written, &self.stdout_closed) {
                        if err.kind() == std::io::ErrorKind::BrokenPipe {
                            token.cancel();
                        }
                    }
                }
            }
            Sink::Print(ReportMode::Quiet) if !event.is_problem() => {}
            Sink::Print(_) => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{}", event.human_line());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts() -> Counts {
        Counts {
            running: 1,
            queued: 2,
            done: 3,
            failed: 1,
        }
    }

    #[test]
    fn human_lines_say_what_happened_and_where_things_stand() {
        let events = [
            WatchEvent::WatchStarted {
                dir: "hot".into(),
                include: vec!["*.yaml".into(), "*.yml".into()],
                concurrency: 2,
                processing_dir: "hot/processing".into(),
                done_dir: "hot/done".into(),
                failed_dir: "hot/failed".into(),
            },
            WatchEvent::WatchResumed {
                manifest: "old.yaml".into(),
                path: "hot/processing/old.yaml".into(),
                counts: counts(),
            },
            WatchEvent::WatchClaimed {
                manifest: "a.yaml".into(),
                path: "hot/processing/a.yaml".into(),
                counts: counts(),
            },
            WatchEvent::WatchDone {
                manifest: "a.yaml".into(),
                completed: 1,
                files: 4,
                seconds: 12.345,
                report: "hot/done/a.yaml.report.json".into(),
                counts: counts(),
            },
            WatchEvent::WatchFailed {
                manifest: "bad.yaml".into(),
                invalid: true,
                not_an_image: false,
                error: "unknown field `wrkflow`".into(),
                report: "hot/failed/bad.yaml.error.txt".into(),
                counts: counts(),
            },
            WatchEvent::WatchInterrupted {
                manifest: "b.yaml".into(),
                path: "hot/processing/b.yaml".into(),
                counts: counts(),
            },
            WatchEvent::WatchWarning {
                manifest: Some("c.yaml".into()),
                message: "cannot claim it: permission denied".into(),
            },
            WatchEvent::WatchStopping { counts: counts() },
            WatchEvent::WatchStopped { counts: counts() },
        ];
        let text: Vec<String> = events.iter().map(WatchEvent::human_line).collect();
        insta::assert_snapshot!(text.join("\n"), @r"
        watching hot for *.yaml, *.yml (2 at a time; processing: hot/processing, done: hot/done, failed: hot/failed)
        resumed old.yaml (left in processing by an earlier watcher) [running 1, queued 2, done 3, failed 1]
        claimed a.yaml [running 1, queued 2, done 3, failed 1]
        done a.yaml: 1 job completed, 4 files in 12.3s; report hot/done/a.yaml.report.json [running 1, queued 2, done 3, failed 1]
        failed bad.yaml: invalid manifest: unknown field `wrkflow`; report hot/failed/bad.yaml.error.txt [running 1, queued 2, done 3, failed 1]
        interrupted b.yaml: stays in hot/processing/b.yaml, resumed at the next start [running 1, queued 2, done 3, failed 1]
        warning: c.yaml: cannot claim it: permission denied
        stopping: no new manifests are claimed; waiting for 1 running (Ctrl-C again to quit at once) [running 1, queued 2, done 3, failed 1]
        stopped [running 1, queued 2, done 3, failed 1]
        ");
    }

    #[test]
    fn json_lines_are_flat_objects_tagged_by_event() {
        let event = WatchEvent::WatchClaimed {
            manifest: "a.yaml".into(),
            path: "hot/processing/a.yaml".into(),
            counts: counts(),
        };
        insta::assert_snapshot!(
            serde_json::to_string(&event).expect("json"),
            @r#"{"event":"watch_claimed","manifest":"a.yaml","path":"hot/processing/a.yaml","running":1,"queued":2,"done":3,"failed":1}"#
        );
    }

    #[test]
    fn quiet_mode_keeps_only_problems() {
        assert!(
            WatchEvent::WatchWarning {
                manifest: None,
                message: "x".into()
            }
            .is_problem()
        );
        assert!(!WatchEvent::WatchStopped { counts: counts() }.is_problem());
    }
}
