//! The watcher's loop: find manifests, let them settle, claim them, run them (at most N at a
//! time), file them away with a report, and stop cleanly.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::exit_status::ExitStatus;
use crate::watch::WatchError;
use crate::watch::claim;
use crate::watch::complete::{self, Completeness};
use crate::watch::config::WatchConfig;
use crate::watch::fs_events::{self, Forwarder, FsSignal};
use crate::watch::manifest_run::{Filed, ManifestRun, run_one};
use crate::watch::runner::ManifestRunner;
use crate::watch::settle::{FileStamp, Settler};
use crate::watch::status::{Counts, WatchEvent, WatchStatus};

/// How a watcher ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchSummary {
    /// Manifests filed into `done/`.
    pub done: usize,
    /// Manifests filed into `failed/`.
    pub failed: usize,
    /// Manifests left in the processing folder, to be resumed at the next start.
    pub interrupted: usize,
}

impl WatchSummary {
    /// The watcher only ends when it is told to stop (Ctrl-C): 130.
    #[must_use]
    pub fn exit_status(&self) -> ExitStatus {
        ExitStatus::Interrupted
    }
}

/// Watches the hot folder until `shutdown` is cancelled.
///
/// At the start, manifests left in the processing folder (by a watcher that crashed or was
/// interrupted) are run again first; the run's journal resumes them. Then every manifest in the
/// hot folder, present at the start or arriving later, is claimed once it has settled, run
/// with `runner`, and filed into the done or failed folder with a report. A bad manifest or a
/// failed run never stops the watcher.
///
/// When `shutdown` is cancelled, no new manifest is claimed, the running ones are cancelled
/// (they stop at a checkpoint and stay in the processing folder), and the watcher returns once
/// they have.
///
/// # Errors
/// Only set-up errors: the hot folder is missing, a folder cannot be created, or the system
/// refuses to watch.
pub async fn watch<R: ManifestRunner>(
    config: &WatchConfig,
    runner: &R,
    status: &WatchStatus,
    shutdown: CancellationToken,
) -> Result<WatchSummary, WatchError> {
    config.prepare()?;
    let (tx, mut rx) = mpsc::channel(fs_events::CAPACITY);
    let lost = Arc::new(AtomicBool::new(false));
    // Watch before the first listing, so that nothing arriving in between is missed.
    let _watcher = fs_events::start(&config.dir, Forwarder::new(tx, lost.clone()))?;
    let mut folder = HotFolder::new(config, status);
    status.event(&WatchEvent::WatchStarted {
        dir: config.dir.display().to_string(),
        include: config.patterns.include_text().to_vec(),
        concurrency: config.concurrency,
        processing_dir: config.processing_dir.display().to_string(),
        done_dir: config.done_dir.display().to_string(),
        failed_dir: config.failed_dir.display().to_string(),
    });
    folder.leftovers = leftovers(&config.processing_dir).map_err(|source| WatchError::Folder {
        path: config.processing_dir.clone(),
        source,
    })?;
    folder.scan();

    let mut running = FuturesUnordered::new();
    let mut poll = tokio::time::interval(config.poll_period());
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut rescan = tokio::time::interval(config.rescan_interval);
    rescan.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stopping = false;
    loop {
        // Checked here, not only in the select below: a run that ends in the same instant as
        // Ctrl-C must not let the next manifest be claimed.
        if !stopping && shutdown.is_cancelled() {
            stopping = true;
            status.event(&WatchEvent::WatchStopping {
                counts: folder.counts(running.len()),
            });
        }
        if !stopping {
            while running.len() < config.concurrency {
                let Some(job) = folder.next_job() else { break };
                let event = job.start_event(folder.counts(running.len() + 1));
                running.push(run_one(runner, config, job, shutdown.child_token()));
                status.event(&event);
            }
        }
        if stopping && running.is_empty() {
            break;
        }
        tokio::select! {
            // Ctrl-C first, so that it is seen before the runs it interrupts end.
            biased;
            () = shutdown.cancelled(), if !stopping => {}
            Some(filed) = running.next(), if !running.is_empty() => {
                folder.filed(filed, running.len());
            }
            Some(signal) = rx.recv() => {
                folder.signal(signal);
                while let Ok(signal) = rx.try_recv() {
                    folder.signal(signal);
                }
            }
            _ = poll.tick() => {
                if lost.swap(false, Ordering::SeqCst) {
                    folder.settler.forget_writes();
                    folder.scan();
                }
                folder.look_again();
            }
            _ = rescan.tick() => folder.scan(),
        }
    }
    let counts = folder.counts(0);
    status.event(&WatchEvent::WatchStopped { counts });
    Ok(WatchSummary {
        done: counts.done,
        failed: counts.failed,
        interrupted: folder.interrupted,
    })
}

/// The watcher's state between events.
struct HotFolder<'a> {
    config: &'a WatchConfig,
    status: &'a WatchStatus,
    settler: Settler,
    /// Files that could not be claimed, with the stamp they had: tried again when they change.
    blocked: HashMap<OsString, FileStamp>,
    /// Images found incomplete, with the stamp they had and since when they have had it.
    incomplete: HashMap<OsString, (FileStamp, Instant)>,
    /// Files found in the processing folder at the start, still to run.
    leftovers: VecDeque<PathBuf>,
    done: usize,
    failed: usize,
    interrupted: usize,
    /// The last error listing the hot folder, so that it is reported once, not every time.
    scan_error: Option<String>,
}

impl<'a> HotFolder<'a> {
    fn new(config: &'a WatchConfig, status: &'a WatchStatus) -> HotFolder<'a> {
        HotFolder {
            config,
            status,
            settler: Settler::new(config.settle).with_open_wait(config.incomplete_wait),
            blocked: HashMap::new(),
            incomplete: HashMap::new(),
            leftovers: VecDeque::new(),
            done: 0,
            failed: 0,
            interrupted: 0,
            scan_error: None,
        }
    }

    fn counts(&self, running: usize) -> Counts {
        Counts {
            running,
            queued: self.settler.len() + self.leftovers.len(),
            done: self.done,
            failed: self.failed,
        }
    }

    fn warn(&self, manifest: Option<String>, message: String) {
        self.status
            .event(&WatchEvent::WatchWarning { manifest, message });
    }

    /// Lists the hot folder and looks at every manifest in it.
    fn scan(&mut self) {
        let entries = match fs_err::read_dir(&self.config.dir) {
            Ok(entries) => entries,
            Err(err) => {
                let message = format!("cannot list the hot folder: {err}");
                if self.scan_error.as_ref() != Some(&message) {
                    self.warn(None, message.clone());
                    self.scan_error = Some(message);
                }
                return;
            }
        };
        self.scan_error = None;
        let now = Instant::now();
        // In name order, so that files found together are claimed in name order.
        let mut names: Vec<OsString> = entries.flatten().map(|entry| entry.file_name()).collect();
        names.sort();
        for name in names {
            if self.config.patterns.matches(Path::new(&name)) {
                let stamp = stamp(&self.config.dir.join(&name));
                self.observe(name, stamp, now);
            }
        }
    }

    /// Looks again at every waiting file.
    fn look_again(&mut self) {
        let now = Instant::now();
        let names: Vec<OsString> = self.settler.names().cloned().collect();
        for name in names {
            let stamp = stamp(&self.config.dir.join(&name));
            self.observe(name, stamp, now);
        }
    }

    fn observe(&mut self, name: OsString, stamp: Option<FileStamp>, now: Instant) {
        if stamp.is_none() {
            self.incomplete.remove(&name);
        }
        if let Some(blocked) = self.blocked.get(&name) {
            if stamp == Some(*blocked) {
                return;
            }
            self.blocked.remove(&name);
        }
        self.settler.observe(name, stamp, now);
    }

    fn signal(&mut self, signal: FsSignal) {
        match signal {
            // The folder is watched without its subfolders, so the event is about one of its
            // files (its path may be spelled differently, for instance canonicalized: only the
            // name counts; the file is looked at in the hot folder).
            FsSignal::Changed(path) => self.touched(&path, false),
            FsSignal::Written(path) => self.touched(&path, true),
            FsSignal::Closed(path) => {
                // Closed by its writer or moved in whole: looked at now, so that it can be
                // claimed at once instead of after the settle window.
                let Some(name) = path.file_name() else { return };
                if !self.config.patterns.matches(Path::new(name)) {
                    return;
                }
                let now = Instant::now();
                let stamp = stamp(&self.config.dir.join(name));
                if let Some(blocked) = self.blocked.get(name) {
                    if stamp == Some(*blocked) {
                        return;
                    }
                    self.blocked.remove(name);
                }
                self.settler.closed(name.to_owned(), now);
                self.observe(name.to_owned(), stamp, now);
            }
            FsSignal::Rescan => {
                self.settler.forget_writes();
                self.scan();
            }
            FsSignal::Error(message) => self.warn(None, format!("file watcher: {message}")),
        }
    }

    /// An event other than a close named `path`; `written` when it reported a write.
    fn touched(&mut self, path: &Path, written: bool) {
        let Some(name) = path.file_name() else { return };
        if self.config.patterns.matches(Path::new(name)) && !self.blocked.contains_key(name) {
            if written {
                self.settler.written(name.to_owned(), Instant::now());
            } else {
                self.settler.touch(name.to_owned(), Instant::now());
            }
        }
    }

    /// The next manifest to run: a leftover from the processing folder, else a settled file
    /// claimed from the hot folder.
    fn next_job(&mut self) -> Option<ManifestRun> {
        if let Some(path) = self.leftovers.pop_front() {
            let display_name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            return Some(ManifestRun::starting(
                path,
                &self.config.dir,
                display_name,
                true,
            ));
        }
        while let Some((name, settled)) = self.settler.take_ready() {
            let src = self.config.dir.join(&name);
            // One last look: the file may have changed since it was last seen.
            match stamp(&src) {
                Some(now) if now == settled => {}
                Some(changed) => {
                    self.settler.observe(name, Some(changed), Instant::now());
                    continue;
                }
                None => continue,
            }
            // An image that stops before its end waits (for its writer to go on), up to the
            // bound; then it is claimed only to be filed as failed.
            let mut incomplete = None;
            if let Completeness::Incomplete(reason) = complete::of_file(&src) {
                let now = Instant::now();
                let since = match self.incomplete.get(&name) {
                    Some((stamp, since)) if *stamp == settled => *since,
                    _ => now,
                };
                if now.duration_since(since) < self.config.incomplete_wait {
                    self.incomplete.insert(name.clone(), (settled, since));
                    self.settler.observe(name, Some(settled), now);
                    continue;
                }
                incomplete = Some(format!(
                    "it stayed incomplete, unchanged for {} s: {reason}",
                    self.config.incomplete_wait.as_secs_f64()
                ));
            }
            self.incomplete.remove(&name);
            let claimed_name = if self.config.fresh_names {
                claim::free_name_among(
                    &[
                        &self.config.processing_dir,
                        &self.config.done_dir,
                        &self.config.failed_dir,
                    ],
                    &name,
                )
            } else {
                name.clone()
            };
            match claim::move_into(&src, &self.config.processing_dir, &claimed_name) {
                Ok(Some(path)) => {
                    let display_name = if self.config.fresh_names {
                        path.file_name()
                            .unwrap_or(&claimed_name)
                            .to_string_lossy()
                            .into_owned()
                    } else {
                        name.to_string_lossy().into_owned()
                    };
                    let mut job =
                        ManifestRun::starting(path, &self.config.dir, display_name, false);
                    job.incomplete = incomplete;
                    return Some(job);
                }
                Ok(None) => {}
                Err(err) => {
                    self.warn(
                        Some(name.to_string_lossy().into_owned()),
                        format!("cannot claim it (tried again when it changes): {err}"),
                    );
                    self.blocked.insert(name, settled);
                }
            }
        }
        None
    }

    fn filed(&mut self, filed: (Filed, Vec<String>), running: usize) {
        let (filed, warnings) = filed;
        for warning in warnings {
            let manifest = match &filed {
                Filed::Done { manifest, .. }
                | Filed::Failed { manifest, .. }
                | Filed::Interrupted { manifest, .. } => manifest.clone(),
            };
            self.warn(Some(manifest), warning);
        }
        let event = match filed {
            Filed::Done {
                manifest,
                completed,
                files,
                seconds,
                report,
            } => {
                self.done += 1;
                WatchEvent::WatchDone {
                    manifest,
                    completed,
                    files,
                    seconds,
                    report: report.display().to_string(),
                    counts: self.counts(running),
                }
            }
            Filed::Failed {
                manifest,
                invalid,
                not_an_image,
                error,
                report,
            } => {
                self.failed += 1;
                WatchEvent::WatchFailed {
                    manifest,
                    invalid,
                    not_an_image,
                    error,
                    report: report.display().to_string(),
                    counts: self.counts(running),
                }
            }
            Filed::Interrupted { manifest, path } => {
                self.interrupted += 1;
                WatchEvent::WatchInterrupted {
                    manifest,
                    path: path.display().to_string(),
                    counts: self.counts(running),
                }
            }
        };
        self.status.event(&event);
    }
}

/// The stamp of a regular file (following symbolic links), or `None`.
fn stamp(path: &Path) -> Option<FileStamp> {
    crate::fs::metadata(path)
        .ok()
        .as_ref()
        .and_then(FileStamp::of)
}

/// The manifests left in the processing folder, in name order (hidden files, such as the
/// temporary files of a copy across file systems, are not manifests).
fn leftovers(processing: &Path) -> std::io::Result<VecDeque<PathBuf>> {
    let mut found = Vec::new();
    for entry in fs_err::read_dir(processing)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if stamp(&path).is_some() {
            found.push(path);
        }
    }
    found.sort();
    Ok(found.into())
}
