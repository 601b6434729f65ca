//! Who hears of a run: the events of a run ([`RunEvent`]) go through a [`Reporter`] to a list of
//! [`Listener`]s. The console (a progress bar per manifest on a terminal, plain lines
//! elsewhere) or JSON lines on stdout (`--json`) are chosen by the [`ReportMode`] (nothing but
//! errors with `-q`); a manifest's run adds its notifications (`notify:`).
//!
//! Data (the JSON lines) goes to stdout; everything else to stderr. A new listener is a file
//! here implementing [`Listener`], added where the reporter is built ([`Reporter::with`]).

mod console;
mod gallery;
mod json;
pub mod notify;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use console::Console;
pub use gallery::LiveGallery;
pub use json::JsonLines;

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
    /// Where a server of a pool stands: sent whenever that changes, and once more at the end
    /// of the run (before `finished`) with `end: true`. Replaces the `server_progress` and
    /// `server_share` events of earlier versions (see `docs/servers.md`).
    ServerStatus {
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
        /// Why it left the pool, if it did.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Items of the run it may still hold (open ones, and those it had when it left).
        on_server: usize,
        /// Whether this is its last status of the run.
        end: bool,
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

/// One who hears the events of a run.
pub trait Listener: Send + Sync {
    /// Hears an event. It must not block: work that takes time is started here and finished
    /// in [`Listener::finish`].
    fn hear(&self, event: &RunEvent);

    /// Finishes what is still under way when a manifest's run ends, told how it ended; returns
    /// warnings for the user (the run's outcome never depends on a listener). The default has
    /// nothing to finish.
    fn finish<'a>(&'a self, end: &'a RunEnd) -> Finishing<'a> {
        let _ = end;
        Box::pin(std::future::ready(Vec::new()))
    }

    /// The longest [`Listener::finish`] may take; the reporter stops waiting for it then.
    fn finish_within(&self) -> Duration {
        Duration::ZERO
    }
}

/// What [`Listener::finish`] returns: its warnings, once done.
pub type Finishing<'a> = Pin<Box<dyn Future<Output = Vec<String>> + Send + 'a>>;

/// How a manifest's run ended, for its listeners.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    /// The manifest, as the run's events name it.
    pub manifest: String,
    /// The output folder (absolute).
    pub output_dir: PathBuf,
    /// What the run did; `None` when it stopped with an error before its end.
    pub totals: Option<RunTotals>,
    /// The error the run stopped with, with its causes.
    pub error: Option<String>,
}

/// The counts of a run that went to its end.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTotals {
    /// Jobs in the manifest.
    pub jobs: usize,
    /// Jobs completed (this run and earlier ones).
    pub completed: usize,
    /// Jobs that failed.
    pub failed: Vec<FailedJob>,
    /// Jobs neither completed nor failed.
    pub not_run: usize,
    /// Whether the run was interrupted (Ctrl-C).
    pub interrupted: bool,
    /// Seconds the run took.
    pub seconds: f64,
}

/// A failed job, as listeners are told of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedJob {
    /// Job index.
    pub job: usize,
    /// Queue item id (on its server).
    pub item_id: i64,
    /// The server's error.
    pub error: String,
    /// The server that ran it, when the run has several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// Sends run events to its listeners. Cheap to share between tasks.
#[derive(Clone)]
pub struct Reporter {
    mode: ReportMode,
    listeners: Vec<Arc<dyn Listener>>,
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reporter")
            .field("mode", &self.mode)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

/// How much longer than its own bound the reporter waits for a listener to finish.
const FINISH_GRACE: Duration = Duration::from_secs(1);

impl Reporter {
    /// A reporter for `mode`; progress bars are drawn only when stderr is a terminal.
    #[must_use]
    pub fn new(mode: ReportMode) -> Reporter {
        Reporter::of_mode(mode, true)
    }

    /// A reporter that never draws progress bars (for callers that print lines of their own
    /// on stderr, like the hot folder's status).
    #[must_use]
    pub fn without_bars(mode: ReportMode) -> Reporter {
        Reporter::of_mode(mode, false)
    }

    fn of_mode(mode: ReportMode, bars: bool) -> Reporter {
        let listeners: Vec<Arc<dyn Listener>> = match mode {
            ReportMode::Human => vec![Arc::new(Console::new(bars))],
            ReportMode::Json => vec![Arc::new(JsonLines)],
            ReportMode::Quiet => Vec::new(),
        };
        Reporter { mode, listeners }
    }

    /// This reporter with one more listener (the others are shared, not copied).
    #[must_use]
    pub fn with(&self, listener: Arc<dyn Listener>) -> Reporter {
        let mut listeners = self.listeners.clone();
        listeners.push(listener);
        Reporter {
            mode: self.mode,
            listeners,
        }
    }

    /// The mode.
    #[must_use]
    pub fn mode(&self) -> ReportMode {
        self.mode
    }

    /// Reports an event to every listener.
    pub fn event(&self, event: &RunEvent) {
        for listener in &self.listeners {
            listener.hear(event);
        }
    }

    /// Tells every listener how a manifest's run ended and waits, at most each one's bound,
    /// for them to finish; their warnings (and a listener that overran) are reported as
    /// [`RunEvent::Warning`]s.
    pub async fn finish(&self, end: &RunEnd) {
        let waits = self.listeners.iter().map(|listener| {
            let within = listener.finish_within() + FINISH_GRACE;
            async move {
                tokio::time::timeout(within, listener.finish(end))
                    .await
                    .unwrap_or_else(|_| {
                        vec![format!(
                            "a listener of the run did not finish within {:.1}s; left behind",
                            within.as_secs_f64()
                        )]
                    })
            }
        });
        let warnings = futures_util::future::join_all(waits).await;
        for message in warnings.into_iter().flatten() {
            self.event(&RunEvent::Warning {
                manifest: end.manifest.clone(),
                message,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records what it hears; its finish takes `takes` and warns once.
    #[derive(Default)]
    struct Recorder {
        heard: Mutex<Vec<String>>,
        takes: Duration,
    }

    impl Listener for Recorder {
        fn hear(&self, event: &RunEvent) {
            let line = serde_json::to_string(event).unwrap_or_default();
            self.heard.lock().expect("lock").push(line);
        }

        fn finish<'a>(&'a self, _: &'a RunEnd) -> Finishing<'a> {
            Box::pin(async move {
                tokio::time::sleep(self.takes).await;
                vec!["finished late".to_owned()]
            })
        }

        fn finish_within(&self) -> Duration {
            Duration::from_millis(100)
        }
    }

    fn end() -> RunEnd {
        RunEnd {
            manifest: "a.yaml".into(),
            output_dir: PathBuf::from("/out"),
            totals: None,
            error: None,
        }
    }

    #[test]
    fn every_listener_hears_every_event() {
        let (a, b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
        let reporter = Reporter::new(ReportMode::Quiet)
            .with(a.clone())
            .with(b.clone());
        reporter.event(&RunEvent::CleanedUp {
            manifest: "a.yaml".into(),
            images: 2,
        });
        for r in [&a, &b] {
            assert_eq!(
                *r.heard.lock().expect("lock"),
                vec![r#"{"event":"cleaned_up","manifest":"a.yaml","images":2}"#.to_owned()]
            );
        }
    }

    #[tokio::test]
    async fn a_listeners_warnings_are_heard_and_one_that_overruns_is_left_behind() {
        let quick = Arc::new(Recorder::default());
        let slow = Arc::new(Recorder {
            takes: Duration::from_secs(30),
            ..Recorder::default()
        });
        let reporter = Reporter::new(ReportMode::Quiet)
            .with(quick.clone())
            .with(slow);
        let started = std::time::Instant::now();
        reporter.finish(&end()).await;
        assert!(started.elapsed() < Duration::from_secs(3));
        let heard = quick.heard.lock().expect("lock").clone();
        assert_eq!(heard.len(), 2, "{heard:?}");
        assert!(heard[0].contains("finished late"), "{heard:?}");
        assert!(heard[1].contains("did not finish within"), "{heard:?}");
    }
}
