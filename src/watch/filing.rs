//! The reports filed beside a manifest: `done/NAME.report.json` for a finished run,
//! `failed/NAME.report.json` plus `failed/NAME.error.txt` for an invalid manifest or a failed
//! run. Reports are written atomically and after the manifest is moved, so a script can wait for
//! the report and then find both.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::printable::{printable, printable_lines, printable_path};
use crate::run::{JobFailure, ManifestOutcome};

/// How a manifest's run ended, as filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every job completed: filed into `done/`.
    Done,
    /// Some jobs failed: filed into `failed/`.
    JobsFailed,
    /// The manifest is invalid; nothing was sent: filed into `failed/`.
    Invalid,
    /// The run failed (server unreachable, a file could not be written, ...): filed into
    /// `failed/`.
    RunFailed,
}

/// An error, with its cause chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorReport {
    /// The error's message.
    pub message: String,
    /// The messages of its causes, outermost first.
    pub causes: Vec<String>,
}

impl ErrorReport {
    /// Collects an error and its sources; a source whose text the message or an earlier
    /// source already quotes is left out.
    #[must_use]
    pub fn of(err: &(dyn std::error::Error + 'static)) -> ErrorReport {
        let message = err.to_string();
        let mut causes: Vec<String> = Vec::new();
        let mut source = err.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) && !causes.iter().any(|c| c.contains(&text)) {
                causes.push(text);
            }
            source = cause.source();
        }
        ErrorReport { message, causes }
    }
}

/// What `NAME.report.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct WatchReport {
    /// The manifest's name as it was dropped.
    pub manifest: String,
    /// Where the manifest is now.
    pub file: PathBuf,
    /// How it ended.
    pub verdict: Verdict,
    /// With `--each`: the file is not an image (the verdict is [`Verdict::Invalid`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub not_an_image: bool,
    /// When it was claimed (RFC 3339, UTC).
    pub started_at: String,
    /// When it was filed (RFC 3339, UTC).
    pub finished_at: String,
    /// Seconds from claim to filing.
    pub seconds: f64,
    /// Whether it was resumed from the processing folder after a restart.
    pub resumed: bool,
    /// The run's outcome (outputs, timings, failures), when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<ManifestOutcome>,
    /// The error, when it was invalid or its run failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorReport>,
}

impl WatchReport {
    /// The text of `NAME.error.txt`: what went wrong, with the whole cause chain or every
    /// failed job.
    #[must_use]
    pub fn error_text(&self) -> String {
        let mut text = String::new();
        let heading = match self.verdict {
            Verdict::Invalid if self.not_an_image => "not an image, nothing was sent",
            Verdict::Invalid => "invalid manifest, nothing was sent",
            Verdict::RunFailed => "the run failed",
            Verdict::JobsFailed => "some jobs failed",
            Verdict::Done => "done",
        };
        // Names and messages quote file names: escaped, so each stays on its line.
        text.push_str(&format!("{}: {heading}\n", printable(&self.manifest)));
        if let Some(error) = &self.error {
            text.push_str(&format!("error: {}\n", printable_lines(&error.message)));
            for cause in &error.causes {
                text.push_str(&format!("  Caused by: {}\n", printable(cause)));
            }
        }
        if let Some(outcome) = &self.outcome {
            text.push_str(&format!(
                "{} of {} jobs completed, {} failed; outputs in {}\n",
                outcome.completed,
                outcome.jobs,
                outcome.failures.len(),
                printable_path(&outcome.output_dir)
            ));
            for JobFailure {
                job,
                item_id,
                error,
            } in &outcome.failures
            {
                text.push_str(&format!(
                    "job {job} (queue item {item_id}) failed: {}\n",
                    printable(error)
                ));
            }
        }
        text
    }

    /// Writes `NAME.report.json` (and `NAME.error.txt` unless done) beside the filed manifest,
    /// and returns the path of the report to show: the error text for failures.
    ///
    /// # Errors
    /// Any I/O error, naming the path.
    pub fn write_beside(&self, filed: &Path) -> std::io::Result<PathBuf> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let report = sidecar(filed, ".report.json");
        crate::fs::write_atomic(&report, &json)?;
        if self.verdict == Verdict::Done {
            return Ok(report);
        }
        let error = sidecar(filed, ".error.txt");
        crate::fs::write_atomic(&error, self.error_text().as_bytes())?;
        Ok(error)
    }
}

/// `path` with `suffix` appended to its file name.
#[must_use]
pub fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::clock::rfc3339;
    use std::time::SystemTime;

    #[test]
    fn a_cause_quoted_by_the_message_is_not_repeated() {
        let missing = crate::manifest::ManifestError::Read {
            path: "gone.yaml".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not there"),
        };
        let report = ErrorReport::of(&missing);
        assert_eq!(
            report.message,
            "cannot read manifest `gone.yaml`: not there"
        );
        assert!(report.causes.is_empty(), "{report:?}");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot load `night.yaml`")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_text_names_the_error_and_its_causes() {
        let err = Outer(std::io::Error::other(
            "unknown field `wrkflow` at line 3 column 1",
        ));
        let report = WatchReport {
            manifest: "night.yaml".into(),
            file: PathBuf::from("failed/night.yaml"),
            not_an_image: false,
            verdict: Verdict::Invalid,
            started_at: rfc3339(SystemTime::UNIX_EPOCH),
            finished_at: rfc3339(SystemTime::UNIX_EPOCH),
            seconds: 0.0,
            resumed: false,
            outcome: None,
            error: Some(ErrorReport::of(&err)),
        };
        insta::assert_snapshot!(report.error_text(), @r"
        night.yaml: invalid manifest, nothing was sent
        error: cannot load `night.yaml`
          Caused by: unknown field `wrkflow` at line 3 column 1
        ");
    }

    #[test]
    fn error_text_lists_every_failed_job() {
        let report = WatchReport {
            manifest: "sweep.yaml".into(),
            file: PathBuf::from("failed/sweep.yaml"),
            not_an_image: false,
            verdict: Verdict::JobsFailed,
            started_at: rfc3339(SystemTime::UNIX_EPOCH),
            finished_at: rfc3339(SystemTime::UNIX_EPOCH),
            seconds: 3.0,
            resumed: false,
            outcome: Some(ManifestOutcome {
                manifest: "sweep.yaml".into(),
                output_dir: PathBuf::from("out/sweep"),
                jobs: 3,
                completed: 1,
                not_run: 0,
                failures: vec![
                    JobFailure {
                        job: 1,
                        item_id: 41,
                        error: "out of memory".into(),
                    },
                    JobFailure {
                        job: 2,
                        item_id: 42,
                        error: "canceled".into(),
                    },
                ],
                files: vec![PathBuf::from("0.png")],
                seconds: 2.5,
                interrupted: false,
            }),
            error: None,
        };
        insta::assert_snapshot!(report.error_text(), @r"
        sweep.yaml: some jobs failed
        1 of 3 jobs completed, 2 failed; outputs in out/sweep
        job 1 (queue item 41) failed: out of memory
        job 2 (queue item 42) failed: canceled
        ");
    }

    #[test]
    fn reports_land_beside_the_manifest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let filed = dir.path().join("a.yaml");
        let mut report = WatchReport {
            manifest: "a.yaml".into(),
            file: filed.clone(),
            not_an_image: false,
            verdict: Verdict::Done,
            started_at: rfc3339(SystemTime::UNIX_EPOCH),
            finished_at: rfc3339(SystemTime::UNIX_EPOCH),
            seconds: 1.0,
            resumed: true,
            outcome: None,
            error: None,
        };
        let shown = report.write_beside(&filed).expect("write");
        assert_eq!(shown, dir.path().join("a.yaml.report.json"));
        let json: serde_json::Value =
            serde_json::from_slice(&fs_err::read(&shown).expect("read")).expect("json");
        assert_eq!(json["verdict"], "done");
        assert_eq!(json["resumed"], true);
        assert!(!dir.path().join("a.yaml.error.txt").exists());

        report.verdict = Verdict::RunFailed;
        report.error = Some(ErrorReport {
            message: "server unreachable".into(),
            causes: vec![],
        });
        let shown = report.write_beside(&filed).expect("write");
        assert_eq!(shown, dir.path().join("a.yaml.error.txt"));
        assert!(
            fs_err::read_to_string(&shown)
                .expect("read")
                .contains("error: server unreachable")
        );
    }
}
