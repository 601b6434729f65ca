//! One manifest of the hot folder, from its claim to its filing: it runs (or, an image that
//! stayed incomplete, is only filed as failed), then it is moved into the done or failed folder
//! with its report beside it ([`super::filing`]), or it stays in the processing folder when it
//! was interrupted.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::exit_status::ExitStatus;
use crate::run::clock::rfc3339;
use crate::run::{ManifestOutcome, ManifestSource};
use crate::watch::claim;
use crate::watch::config::WatchConfig;
use crate::watch::filing::{ErrorReport, Verdict, WatchReport};
use crate::watch::runner::ManifestRunner;
use crate::watch::status::{Counts, WatchEvent};

/// A manifest about to run.
#[derive(Debug)]
pub(super) struct ManifestRun {
    pub(super) source: ManifestSource,
    resumed: bool,
    started_at: SystemTime,
    started: Instant,
    /// Claimed only to be filed as failed: an image that stayed incomplete, and why.
    pub(super) incomplete: Option<String>,
}

impl ManifestRun {
    /// The manifest at `path` (in the processing folder) of the hot folder `base_dir`, starting
    /// now.
    pub(super) fn starting(
        path: PathBuf,
        base_dir: &Path,
        display_name: String,
        resumed: bool,
    ) -> ManifestRun {
        ManifestRun {
            source: ManifestSource {
                path,
                base_dir: base_dir.to_path_buf(),
                display_name,
                image: None,
            },
            resumed,
            started_at: SystemTime::now(),
            started: Instant::now(),
            incomplete: None,
        }
    }

    pub(super) fn start_event(&self, counts: Counts) -> WatchEvent {
        let manifest = self.source.display_name.clone();
        let path = self.source.path.display().to_string();
        if self.resumed {
            WatchEvent::WatchResumed {
                manifest,
                path,
                counts,
            }
        } else {
            WatchEvent::WatchClaimed {
                manifest,
                path,
                counts,
            }
        }
    }
}

/// How a run was filed.
#[derive(Debug)]
pub(super) enum Filed {
    Done {
        manifest: String,
        completed: usize,
        files: usize,
        seconds: f64,
        report: PathBuf,
    },
    Failed {
        manifest: String,
        invalid: bool,
        not_an_image: bool,
        error: String,
        report: PathBuf,
    },
    Interrupted {
        manifest: String,
        path: PathBuf,
    },
}

/// Runs a manifest and files it away.
pub(super) async fn run_one<R: ManifestRunner>(
    runner: &R,
    config: &WatchConfig,
    job: ManifestRun,
    cancel: CancellationToken,
) -> (Filed, Vec<String>) {
    let result = match &job.incomplete {
        Some(reason) => Err(crate::run::RunError::NotAnImage {
            path: job.source.path.clone(),
            reason: reason.clone(),
        }),
        None => runner.run(job.source.clone(), cancel.clone()).await,
    };
    file_away(config, &job, result, cancel.is_cancelled())
}

/// Moves a run manifest into the done or failed folder and writes its report beside it; an
/// interrupted one stays in the processing folder.
fn file_away(
    config: &WatchConfig,
    job: &ManifestRun,
    result: Result<ManifestOutcome, crate::run::RunError>,
    cancelled: bool,
) -> (Filed, Vec<String>) {
    let manifest = job.source.display_name.clone();
    let mut warnings = Vec::new();
    // A file of `--each` that is not an image: said so, naming where it is filed (below).
    let not_an_image = match &result {
        Err(crate::run::RunError::NotAnImage { reason, .. }) => Some(reason.clone()),
        _ => None,
    };
    let (verdict, outcome, mut error) = match result {
        Ok(outcome) if outcome.interrupted => {
            let path = job.source.path.clone();
            return (Filed::Interrupted { manifest, path }, warnings);
        }
        Ok(outcome) if outcome.failures.is_empty() => (Verdict::Done, Some(outcome), None),
        Ok(outcome) => (Verdict::JobsFailed, Some(outcome), None),
        Err(err) if err.exit_status() == ExitStatus::Invalid => {
            (Verdict::Invalid, None, Some(ErrorReport::of(&err)))
        }
        Err(err) if cancelled || err.exit_status() == ExitStatus::Interrupted => {
            // Stopped while shutting down: keep it for the next start, whose journal decides.
            warnings.push(format!(
                "stopped with an error, resumed at the next start: {err}"
            ));
            let path = job.source.path.clone();
            return (Filed::Interrupted { manifest, path }, warnings);
        }
        Err(err) => (Verdict::RunFailed, None, Some(ErrorReport::of(&err))),
    };
    let folder = if verdict == Verdict::Done {
        &config.done_dir
    } else {
        &config.failed_dir
    };
    let name = OsString::from(&manifest);
    let filed = match claim::move_into(&job.source.path, folder, &name) {
        Ok(Some(path)) => path,
        Ok(None) => {
            warnings.push(format!(
                "`{}` disappeared while it ran; its report is filed without it",
                job.source.path.display()
            ));
            folder.join(claim::free_name(folder, &name))
        }
        Err(err) => {
            warnings.push(format!(
                "cannot file it away, so it stays where it is: {err}"
            ));
            job.source.path.clone()
        }
    };
    if let Some(reason) = &not_an_image {
        let what = if job.incomplete.is_some() {
            "is not a whole image, nothing was sent"
        } else {
            "is not an image"
        };
        error = Some(ErrorReport {
            message: format!("`{}` {what}: {reason}", filed.display()),
            causes: Vec::new(),
        });
    }
    let report = WatchReport {
        manifest: manifest.clone(),
        file: filed.clone(),
        not_an_image: not_an_image.is_some(),
        verdict,
        started_at: rfc3339(job.started_at),
        finished_at: rfc3339(SystemTime::now()),
        seconds: job.started.elapsed().as_secs_f64(),
        resumed: job.resumed,
        outcome,
        error,
    };
    let shown = match report.write_beside(&filed) {
        Ok(path) => path,
        Err(err) => {
            warnings.push(format!("cannot write its report: {err}"));
            filed.clone()
        }
    };
    let filed = match verdict {
        Verdict::Done => {
            let outcome = report.outcome.as_ref();
            Filed::Done {
                manifest,
                completed: outcome.map_or(0, |o| o.completed),
                files: outcome.map_or(0, |o| o.files.len()),
                seconds: report.seconds,
                report: shown,
            }
        }
        Verdict::Invalid | Verdict::RunFailed | Verdict::JobsFailed => {
            let error = match (&report.error, &report.outcome) {
                (Some(e), _) => one_line(e),
                (None, Some(o)) => format!("{} of {} jobs failed", o.failures.len(), o.jobs),
                (None, None) => "failed".to_owned(),
            };
            Filed::Failed {
                manifest,
                invalid: verdict == Verdict::Invalid,
                not_an_image: not_an_image.is_some(),
                error,
                report: shown,
            }
        }
    };
    (filed, warnings)
}

fn one_line(error: &ErrorReport) -> String {
    let mut line = error.message.clone();
    for cause in &error.causes {
        line.push_str(": ");
        line.push_str(cause);
    }
    line.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
