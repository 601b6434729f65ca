//! The gallery and grids kept current while a run goes, as a listener of the run: a job's page
//! entry and grid cells are drawn when the run tells that it completed or failed. The drawing
//! happens on the report's own worker thread ([`LiveReport`]); hearing an event only hands the
//! job's state over.

use std::path::PathBuf;
use std::sync::Mutex;

use super::event::RunEvent;
use super::listener::Listener;
use crate::gallery::live::{JobState, LiveReport};

/// The running report of one manifest's run, as a listener.
#[derive(Debug)]
pub struct LiveGallery {
    /// The manifest whose events it hears.
    manifest: String,
    /// The report; `None` once closed.
    report: Mutex<Option<LiveReport>>,
}

impl LiveGallery {
    /// The running `report` of the run of `manifest`.
    #[must_use]
    pub fn new(manifest: &str, report: LiveReport) -> LiveGallery {
        LiveGallery {
            manifest: manifest.to_owned(),
            report: Mutex::new(Some(report)),
        }
    }

    /// What the report warns about since the last call (it cannot write a file, say).
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        self.report
            .lock()
            .ok()
            .and_then(|r| r.as_ref().map(LiveReport::warnings))
            .unwrap_or_default()
    }

    /// Stops the report once what it is writing is written (before the end of the run writes
    /// the whole report again); returns its last warnings.
    pub async fn close(&self) -> Vec<String> {
        let report = self.report.lock().ok().and_then(|mut r| r.take());
        match report {
            Some(report) => report.finish().await,
            None => Vec::new(),
        }
    }

    fn tell(&self, job: usize, state: JobState) {
        if let Ok(report) = self.report.lock()
            && let Some(report) = report.as_ref()
        {
            report.job(job, state);
        }
    }
}

impl Listener for LiveGallery {
    fn hear(&self, event: &RunEvent) {
        match event {
            RunEvent::JobCompleted {
                manifest,
                job,
                files,
                ..
            } if *manifest == self.manifest => self.tell(
                *job,
                JobState::Completed {
                    files: files.iter().map(PathBuf::from).collect(),
                },
            ),
            RunEvent::JobFailed {
                manifest,
                job,
                error,
                ..
            } if *manifest == self.manifest => self.tell(
                *job,
                JobState::Failed {
                    error: error.clone(),
                    files: Vec::new(),
                },
            ),
            _ => {}
        }
    }
}
