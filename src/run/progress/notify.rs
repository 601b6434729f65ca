//! The notify listener: when a manifest's run ends (and, if asked, when a job fails) it POSTs a
//! JSON summary to a URL or runs a command with the summary on its stdin (`notify:` in the
//! manifest, `--notify` / `--notify-command` on the command line; docs/notify.md).
//!
//! Each notification is bounded in time, retries included; one that fails or hangs is given
//! up with a warning, and never changes how the run ends.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::event::RunEvent;
use super::listener::{FailedJob, Finishing, Listener, RunEnd};
use crate::manifest::{NotifyEntry, NotifyOn};

/// How many times a POST is tried, at most (connection errors and 5xx answers are retried).
const ATTEMPTS: u32 = 4;

/// The wait before the first retry; it doubles for each next one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// What a notification at the end of a run says (`event: run_finished`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// Always `run_finished`.
    pub event: &'static str,
    /// `done` when every job completed, else `failed`.
    pub status: &'static str,
    /// The manifest, as the run names it.
    pub manifest: String,
    /// The output folder (absolute).
    pub output_dir: String,
    /// Jobs in the manifest.
    pub jobs: usize,
    /// Jobs completed (this run and earlier ones).
    pub completed: usize,
    /// Jobs failed.
    pub failed: usize,
    /// Jobs that neither completed nor failed.
    pub not_run: usize,
    /// Whether the run was interrupted (Ctrl-C).
    pub interrupted: bool,
    /// Seconds the run took.
    pub seconds: f64,
    /// The failed jobs with their errors.
    pub failed_jobs: Vec<FailedJob>,
    /// The error the run stopped with, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a notification of one failed job says (`event: job_failed`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobFailedSummary {
    /// Always `job_failed`.
    pub event: &'static str,
    /// The manifest, as the run names it.
    pub manifest: String,
    /// The output folder (absolute).
    pub output_dir: String,
    /// The job.
    #[serde(flatten)]
    pub failure: FailedJob,
}

impl RunSummary {
    /// The summary of a run that ended as `end` says; `heard` are the failures the run
    /// reported as they happened (they name their servers), and counts when the run stopped
    /// before its end.
    #[must_use]
    pub fn of(end: &RunEnd, heard: &Heard) -> RunSummary {
        let server_of = |job: usize, item_id: i64| {
            heard
                .failures
                .iter()
                .find(|f| f.job == job && f.item_id == item_id)
                .and_then(|f| f.server.clone())
        };
        let output_dir = end.output_dir.display().to_string();
        match &end.totals {
            Some(t) => {
                let failed_jobs: Vec<FailedJob> = t
                    .failed
                    .iter()
                    .map(|f| FailedJob {
                        server: f.server.clone().or_else(|| server_of(f.job, f.item_id)),
                        ..f.clone()
                    })
                    .collect();
                let done = end.error.is_none()
                    && failed_jobs.is_empty()
                    && t.not_run == 0
                    && !t.interrupted;
                RunSummary {
                    event: "run_finished",
                    status: if done { "done" } else { "failed" },
                    manifest: end.manifest.clone(),
                    output_dir,
                    jobs: t.jobs,
                    completed: t.completed,
                    failed: failed_jobs.len(),
                    not_run: t.not_run,
                    interrupted: t.interrupted,
                    seconds: t.seconds,
                    failed_jobs,
                    error: end.error.clone(),
                }
            }
            None => {
                let failed = heard.failed_before + heard.failures.len();
                RunSummary {
                    event: "run_finished",
                    status: "failed",
                    manifest: end.manifest.clone(),
                    output_dir,
                    jobs: heard.jobs,
                    completed: heard.completed,
                    failed,
                    not_run: heard.jobs.saturating_sub(heard.completed + failed),
                    interrupted: false,
                    seconds: heard.started.elapsed().as_secs_f64(),
                    failed_jobs: heard.failures.clone(),
                    error: end
                        .error
                        .clone()
                        .or_else(|| Some("the run stopped before its end".into())),
                }
            }
        }
    }

    /// The end of a run it is for.
    #[must_use]
    pub fn end(&self) -> NotifyOn {
        if self.status == "done" {
            NotifyOn::Done
        } else {
            NotifyOn::Failed
        }
    }
}

/// What the listener heard of the run so far.
#[derive(Debug, Clone)]
pub struct Heard {
    /// Jobs in the manifest (from `planned`).
    pub jobs: usize,
    /// Jobs completed (earlier runs' and this run's).
    pub completed: usize,
    /// Jobs that failed in earlier runs.
    pub failed_before: usize,
    /// Jobs that failed in this run.
    pub failures: Vec<FailedJob>,
    /// When the listener was made.
    pub started: Instant,
}

impl Default for Heard {
    fn default() -> Heard {
        Heard {
            jobs: 0,
            completed: 0,
            failed_before: 0,
            failures: Vec::new(),
            started: Instant::now(),
        }
    }
}

/// Sends a manifest run's notifications.
#[derive(Debug)]
pub struct Notifier {
    manifest: String,
    output_dir: PathBuf,
    entries: Vec<NotifyEntry>,
    http: reqwest::Client,
    heard: Mutex<Heard>,
    /// `job_failed` notifications under way; each gives a warning when it fails.
    sending: Mutex<Vec<JoinHandle<Option<String>>>>,
}

impl Notifier {
    /// A listener that sends `entries` for the run of `manifest` (as its events name it),
    /// whose outputs go to `output_dir` (absolute).
    #[must_use]
    pub fn new(manifest: &str, output_dir: &Path, entries: Vec<NotifyEntry>) -> Notifier {
        Notifier {
            manifest: manifest.to_owned(),
            output_dir: output_dir.to_path_buf(),
            entries,
            http: reqwest::Client::builder()
                .user_agent(concat!("invk-run/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
            heard: Mutex::new(Heard::default()),
            sending: Mutex::new(Vec::new()),
        }
    }

    fn job_failed(&self, failure: FailedJob) {
        let wanted: Vec<NotifyEntry> = self
            .entries
            .iter()
            .filter(|e| e.notifies_on(NotifyOn::JobFailed))
            .cloned()
            .collect();
        if let Ok(mut heard) = self.heard.lock() {
            heard.failures.push(failure.clone());
        }
        if wanted.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let summary = JobFailedSummary {
            event: "job_failed",
            manifest: self.manifest.clone(),
            output_dir: self.output_dir.display().to_string(),
            failure,
        };
        let Ok(body) = serde_json::to_vec(&summary) else {
            return;
        };
        let mut sending = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        for entry in wanted {
            let http = self.http.clone();
            let body = body.clone();
            sending.push(runtime.spawn(async move { send(&http, &entry, &body).await }));
        }
    }
}

impl Listener for Notifier {
    fn hear(&self, event: &RunEvent) {
        match event {
            RunEvent::Planned {
                jobs, done, failed, ..
            } => {
                if let Ok(mut heard) = self.heard.lock() {
                    heard.jobs = *jobs;
                    heard.completed = *done;
                    heard.failed_before = *failed;
                }
            }
            RunEvent::JobCompleted { .. } => {
                if let Ok(mut heard) = self.heard.lock() {
                    heard.completed += 1;
                }
            }
            RunEvent::JobFailed {
                job,
                item_id,
                error,
                server,
                ..
            } => self.job_failed(FailedJob {
                job: *job,
                item_id: *item_id,
                error: error.clone(),
                server: server.clone(),
            }),
            _ => {}
        }
    }

    fn finish<'a>(&'a self, end: &'a RunEnd) -> Finishing<'a> {
        Box::pin(async move {
            let heard = self.heard.lock().map(|h| h.clone()).unwrap_or_default();
            let summary = RunSummary::of(end, &heard);
            let body = serde_json::to_vec(&summary).unwrap_or_default();
            let at_end = self
                .entries
                .iter()
                .filter(|e| e.notifies_on(summary.end()))
                .map(|entry| send(&self.http, entry, &body));
            let under_way: Vec<JoinHandle<Option<String>>> = self
                .sending
                .lock()
                .map(|mut s| std::mem::take(&mut *s))
                .unwrap_or_default();
            let (ended, earlier) = futures_util::future::join(
                futures_util::future::join_all(at_end),
                futures_util::future::join_all(under_way),
            )
            .await;
            ended
                .into_iter()
                .chain(earlier.into_iter().map(|r| r.ok().flatten()))
                .flatten()
                .collect()
        })
    }

    fn finish_within(&self) -> Duration {
        self.entries
            .iter()
            .map(NotifyEntry::time_bound)
            .max()
            .unwrap_or_default()
    }
}

/// Sends one notification within its bound; a warning if it could not be delivered.
async fn send(http: &reqwest::Client, entry: &NotifyEntry, body: &[u8]) -> Option<String> {
    let bound = entry.time_bound();
    let target = describe(entry);
    let sent = tokio::time::timeout(bound, async {
        if entry.command.is_empty() {
            post(http, entry, body, bound).await
        } else {
            run_command(&entry.command, body).await
        }
    })
    .await
    .unwrap_or_else(|_| {
        Err(if entry.command.is_empty() {
            format!("no answer within {}", seconds(bound))
        } else {
            format!("it did not end within {}", seconds(bound))
        })
    });
    sent.err().map(|why| {
        format!("could not notify {target}: {why} (the run's outcome is not changed by it)")
    })
}

/// The notification's target for messages: a URL without its query, the variable of a URL
/// kept in the environment, or the program.
fn describe(entry: &NotifyEntry) -> String {
    if let Some(url) = &entry.url {
        let mut shown = url::Url::parse(url).map_or_else(
            |_| url.clone(),
            |mut u| {
                u.set_query(None);
                u.to_string()
            },
        );
        if shown.ends_with('/') && !url.ends_with('/') {
            shown.pop();
        }
        shown
    } else if let Some(variable) = &entry.url_env {
        format!("the URL in ${variable}")
    } else {
        format!("`{}`", entry.command.join(" "))
    }
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s:.1}s")
    }
}

/// POSTs `body`, retrying connection errors and 5xx answers with a growing wait, for at most
/// `bound`.
async fn post(
    http: &reqwest::Client,
    entry: &NotifyEntry,
    body: &[u8],
    bound: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + bound;
    let url = match (&entry.url, &entry.url_env) {
        (Some(url), _) => url.clone(),
        (None, Some(variable)) => std::env::var(variable)
            .map_err(|_| format!("the environment variable {variable} is not set"))?,
        (None, None) => return Err("no URL".into()),
    };
    if !crate::server_entry::is_http_url(&url) {
        return Err("the URL is not an http(s) URL".into());
    }
    let mut headers = reqwest::header::HeaderMap::new();
    let env_headers = entry.headers_env.iter().map(|(name, variable)| {
        std::env::var(variable)
            .map(|value| (name, value))
            .map_err(|_| {
                format!("the environment variable {variable} (for the header {name}) is not set")
            })
    });
    let written = entry.headers.iter().map(|(n, v)| Ok((n, v.clone())));
    for header in written.chain(env_headers) {
        let (name, value) = header?;
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a header name"))?;
        let value = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|_| format!("the value of the header {name} is not a valid header value"))?;
        headers.insert(name, value);
    }
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let why = match http
            .post(&url)
            .headers(headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .timeout(left)
            .send()
            .await
        {
            Ok(answer) if answer.status().is_success() => return Ok(()),
            Ok(answer) if answer.status().is_server_error() => {
                format!("the receiver answered {}", answer.status())
            }
            Ok(answer) => return Err(format!("the receiver answered {}", answer.status())),
            Err(e) if e.is_timeout() => {
                return Err(format!("no answer within {}", seconds(bound)));
            }
            // What tries again cannot mend (a certificate, a malformed request) is not retried.
            Err(e) if !crate::client::retry::is_transient(&e) => {
                return Err(crate::error_chain::error_chain(&e));
            }
            Err(e) => crate::error_chain::error_chain(&e),
        };
        if attempt >= ATTEMPTS || Instant::now() + backoff >= deadline {
            return Err(format!(
                "{why} ({attempt} attempt{})",
                if attempt == 1 { "" } else { "s" }
            ));
        }
        tokio::time::sleep(backoff).await;
        backoff *= 2;
        attempt += 1;
    }
}

/// Runs `command` with `body` on its stdin; its stdout is dropped, its stderr is the run's.
async fn run_command(command: &[String], body: &[u8]) -> Result<(), String> {
    let (program, args) = command.split_first().ok_or("no command")?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start it: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its stdin is not an error.
        let _ = stdin.write_all(body).await;
    }
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("it ended with {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::RunTotals;
    use super::*;

    fn end(totals: Option<RunTotals>, error: Option<&str>) -> RunEnd {
        RunEnd {
            manifest: "jobs/a.yaml".into(),
            output_dir: PathBuf::from("/data/out"),
            totals,
            error: error.map(str::to_owned),
        }
    }

    fn failed(job: usize, item_id: i64, error: &str) -> FailedJob {
        FailedJob {
            job,
            item_id,
            error: error.into(),
            server: None,
        }
    }

    fn totals(completed: usize, failed: Vec<FailedJob>, not_run: usize) -> RunTotals {
        RunTotals {
            jobs: completed + failed.len() + not_run,
            completed,
            failed,
            not_run,
            interrupted: false,
            seconds: 1.5,
        }
    }

    #[test]
    fn a_run_that_completed_every_job_is_done() {
        let summary = RunSummary::of(&end(Some(totals(3, vec![], 0)), None), &Heard::default());
        assert_eq!(summary.status, "done");
        assert_eq!(summary.end(), NotifyOn::Done);
        let json = serde_json::to_value(&summary).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "event": "run_finished", "status": "done", "manifest": "jobs/a.yaml",
                "output_dir": "/data/out", "jobs": 3, "completed": 3, "failed": 0,
                "not_run": 0, "interrupted": false, "seconds": 1.5, "failed_jobs": []
            })
        );
    }

    #[test]
    fn failed_jobs_name_their_errors_and_the_servers_heard() {
        let heard = Heard {
            failures: vec![FailedJob {
                job: 1,
                item_id: 7,
                error: "boom".into(),
                server: Some("http://gpu-2:9090".into()),
            }],
            ..Heard::default()
        };
        let failed = vec![failed(1, 7, "boom"), failed(4, 9, "earlier")];
        let summary = RunSummary::of(&end(Some(totals(2, failed, 1)), None), &heard);
        assert_eq!(summary.status, "failed");
        assert_eq!(summary.failed, 2);
        assert_eq!(summary.not_run, 1);
        assert_eq!(
            summary.failed_jobs[0].server.as_deref(),
            Some("http://gpu-2:9090")
        );
        assert_eq!(summary.failed_jobs[1].server, None);
        assert_eq!(summary.failed_jobs[1].error, "earlier");
    }

    #[test]
    fn an_interrupted_run_is_failed() {
        let mut t = totals(1, vec![], 0);
        t.interrupted = true;
        let summary = RunSummary::of(&end(Some(t), None), &Heard::default());
        assert_eq!(summary.end(), NotifyOn::Failed);
    }

    #[test]
    fn a_run_that_stopped_counts_what_was_heard_and_names_the_error() {
        let heard = Heard {
            jobs: 5,
            completed: 2,
            failed_before: 1,
            failures: vec![FailedJob {
                job: 3,
                item_id: 11,
                error: "bad".into(),
                server: None,
            }],
            ..Heard::default()
        };
        let summary = RunSummary::of(&end(None, Some("the server went away")), &heard);
        assert_eq!(summary.status, "failed");
        assert_eq!(
            (
                summary.jobs,
                summary.completed,
                summary.failed,
                summary.not_run
            ),
            (5, 2, 2, 1)
        );
        assert_eq!(summary.error.as_deref(), Some("the server went away"));
    }

    #[test]
    fn a_failed_job_notification_is_flat() {
        let summary = JobFailedSummary {
            event: "job_failed",
            manifest: "a.yaml".into(),
            output_dir: "/out".into(),
            failure: FailedJob {
                job: 2,
                item_id: 5,
                error: "x".into(),
                server: None,
            },
        };
        assert_eq!(
            serde_json::to_value(&summary).expect("json"),
            serde_json::json!({"event": "job_failed", "manifest": "a.yaml", "output_dir": "/out",
                "job": 2, "item_id": 5, "error": "x"})
        );
    }

    #[test]
    fn messages_show_no_query_nor_the_url_of_a_variable() {
        let entry = NotifyEntry::url("https://example.com/hook?run=1");
        assert_eq!(describe(&entry), "https://example.com/hook");
        let entry = NotifyEntry {
            url_env: Some("HOOK".into()),
            ..NotifyEntry::default()
        };
        assert_eq!(describe(&entry), "the URL in $HOOK");
    }

    #[tokio::test]
    async fn a_command_that_fails_gives_a_warning() {
        let entry = NotifyEntry::command(vec!["false".into()]);
        let warning = send(&reqwest::Client::new(), &entry, b"{}").await;
        assert!(warning.is_some_and(|w| w.contains("`false`") && w.contains("ended with")),);
        let entry = NotifyEntry::command(vec!["true".into()]);
        assert_eq!(send(&reqwest::Client::new(), &entry, b"{}").await, None);
    }

    #[tokio::test]
    async fn a_command_that_hangs_is_stopped_at_its_bound() {
        let entry = NotifyEntry {
            timeout: Some(0.3),
            ..NotifyEntry::command(vec!["sleep".into(), "10".into()])
        };
        let started = Instant::now();
        let warning = send(&reqwest::Client::new(), &entry, b"{}").await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(warning.is_some_and(|w| w.contains("did not end within 0.3s")));
    }
}
