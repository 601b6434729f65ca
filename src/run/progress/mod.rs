//! Who hears of a run: the events of a run ([`RunEvent`]) go through a [`Reporter`] to a list of
//! [`Listener`]s. The console (a progress bar per manifest on a terminal, plain lines
//! elsewhere) or JSON lines on stdout (`--json`) are chosen by the [`ReportMode`] (nothing but
//! errors with `-q`); a manifest's run adds its notifications (`notify:`).
//!
//! Data (the JSON lines) goes to stdout; everything else to stderr. A new listener is a file
//! here implementing [`Listener`], added where the reporter is built ([`Reporter::with`]).

mod console;
mod event;
mod gallery;
mod json;
mod listener;
pub mod notify;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use console::Console;
pub use event::RunEvent;
pub use gallery::LiveGallery;
pub use json::JsonLines;
pub use listener::{FailedJob, Finishing, Listener, RunEnd, RunTotals};

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
    use std::path::PathBuf;
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
