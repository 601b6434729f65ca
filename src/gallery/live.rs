//! The report while a run goes: `index.html` kept up to date, and each grid written as soon as
//! every job of its page has finished (completed or failed), not only at the end.
//!
//! The engine only sends what it learns of a job ([`LiveReport::job`], which never waits); one
//! worker on a blocking thread of its own keeps the jobs and does all the file and image work,
//! one refresh at a time: what arrives while it works is folded into the next one. Grids are
//! looked at no more often than every [`GRID_PAUSE`], the gallery is rewritten no more often
//! than every [`GALLERY_PAUSE`], and neither takes more than a fifth of the worker's time
//! (a page that took 2 s to write waits 8 s). The end of the run stops the worker (after the
//! refresh under way, if any) and rebuilds everything from disk as before ([`super::refresh`]).
//! What cannot be written is a warning, once per distinct error, never a failure of the run.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::grid;
use super::page::{self, GridLink};
use super::records::{JobRecord, PENDING, file_record};
use super::{ReportConfig, ReportError, save_config, write_grid};
use crate::store::LocalStore;

/// The least time between two looks at which grids are complete.
pub const GRID_PAUSE: Duration = Duration::from_millis(500);

/// The least time between two rewrites of `index.html` while a run goes.
pub const GALLERY_PAUSE: Duration = Duration::from_secs(3);

/// The gallery, or a look at the grids, waits at least this many times as long as it took last.
const WORK_SHARE: u32 = 4;

/// At most this many updates are folded in before the worker looks at what is due.
const FOLD_AT_ONCE: usize = 10_000;

/// What the run knows of one of its jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Not finished (not submitted, queued, running, or its outputs downloading).
    Pending,
    /// Every output on disk.
    Completed {
        /// Its files, relative to the output folder.
        files: Vec<PathBuf>,
    },
    /// Failed.
    Failed {
        /// The server's error.
        error: String,
        /// The files it saved anyway, relative to the output folder.
        files: Vec<PathBuf>,
    },
}

/// A job of the run before it finishes: what its page and grid cells show.
#[derive(Debug, Clone, Default)]
pub struct LiveJob {
    /// Sweep values by key.
    pub sweep: Map<String, Value>,
    /// Inputs by user name.
    pub inputs: Map<String, Value>,
}

/// The running report of one run; [`LiveReport::off`] for a run that gets none.
#[derive(Debug)]
pub struct LiveReport {
    updates: Option<mpsc::Sender<(usize, JobState)>>,
    warnings: Option<mpsc::Receiver<String>>,
    worker: Option<tokio::task::JoinHandle<()>>,
}

/// The jobs the output folder shows ended (from `runs.jsonl` and the sidecars), as the running
/// report takes them, leaving out those `skip` names: for a shard, the jobs of the other shards
/// (it keeps its own current; the shard that ends last writes them all).
pub fn ended_on_disk(
    store: &dyn crate::store::OutputStore,
    skip: impl Fn(usize) -> bool,
) -> Vec<(usize, JobState)> {
    let Ok(records) = super::records::load_from(store) else {
        return Vec::new();
    };
    records
        .into_iter()
        .filter(|r| !skip(r.job))
        .filter_map(|r| {
            let files = r.files.into_iter().map(|f| f.path).collect();
            match r.status.as_str() {
                "completed" => Some((r.job, JobState::Completed { files })),
                "failed" => Some((
                    r.job,
                    JobState::Failed {
                        error: r.error.unwrap_or_default(),
                        files,
                    },
                )),
                _ => None,
            }
        })
        .collect()
}

impl LiveReport {
    /// No report while the run goes (the end of the run still writes one).
    #[must_use]
    pub fn off() -> LiveReport {
        LiveReport {
            updates: None,
            warnings: None,
            worker: None,
        }
    }

    /// Starts the worker for the run writing to `output_dir` with `jobs` (by index); `earlier`
    /// are the jobs finished before it started (a resumed run): their grids are not written
    /// again until the end. Must be called inside a tokio runtime.
    #[must_use]
    pub fn start(
        output_dir: &Path,
        config: ReportConfig,
        jobs: Vec<LiveJob>,
        earlier: Vec<(usize, JobState)>,
    ) -> LiveReport {
        let (updates, inbox) = mpsc::channel();
        let (tell, warnings) = mpsc::channel();
        let worker = tokio::task::spawn_blocking({
            let root = LocalStore::at(output_dir);
            move || {
                let mut worker = Worker::new(root, config, jobs, tell);
                for (job, state) in earlier {
                    worker.apply(job, state);
                }
                worker.seed_complete_grids();
                worker.run(&inbox);
            }
        });
        LiveReport {
            updates: Some(updates),
            warnings: Some(warnings),
            worker: Some(worker),
        }
    }

    /// What the run learnt of `job` (sent as is; the worker ignores what did not change).
    pub fn job(&self, job: usize, state: JobState) {
        if let Some(updates) = &self.updates {
            // A worker that ended (it never does before `finish`) has nothing left to update.
            let _ = updates.send((job, state));
        }
    }

    /// The warnings the worker raised since the last call.
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        self.warnings
            .as_ref()
            .map(|w| w.try_iter().collect())
            .unwrap_or_default()
    }

    /// Stops the worker once its refresh under way (if any) is written; returns its last
    /// warnings.
    pub async fn finish(mut self) -> Vec<String> {
        self.updates = None;
        if let Some(worker) = self.worker.take() {
            if let Err(e) = worker.await {
                tracing::error!("the report's worker ended abnormally: {e}");
            }
        }
        self.warnings()
    }
}

/// The worker's state.
struct Worker {
    root: LocalStore,
    config: ReportConfig,
    /// Every job of the run, by index.
    records: Vec<JobRecord>,
    /// Grid files written complete in this run (or complete before it started).
    written: HashSet<PathBuf>,
    /// Grids to link from the page, in the order they were written.
    links: Vec<GridLink>,
    grids_changed: bool,
    next_grids: Option<Instant>,
    gallery_changed: bool,
    next_gallery: Option<Instant>,
    config_saved: bool,
    last_error: Option<String>,
    warnings: mpsc::Sender<String>,
}

impl Worker {
    fn new(
        root: LocalStore,
        config: ReportConfig,
        jobs: Vec<LiveJob>,
        warnings: mpsc::Sender<String>,
    ) -> Worker {
        let records = jobs
            .into_iter()
            .enumerate()
            .map(|(job, j)| JobRecord {
                job,
                status: PENDING.to_owned(),
                error: None,
                sweep: j.sweep,
                inputs: j.inputs,
                files: Vec::new(),
                // The run knows all its jobs: a place no job fills is not in the sweep.
                summarized: true,
            })
            .collect();
        Worker {
            root,
            config,
            records,
            written: HashSet::new(),
            links: Vec::new(),
            grids_changed: false,
            next_grids: None,
            gallery_changed: false,
            next_gallery: None,
            config_saved: false,
            last_error: None,
            warnings,
        }
    }

    fn run(&mut self, inbox: &mpsc::Receiver<(usize, JobState)>) {
        loop {
            let received = match self.next_wake() {
                Some(at) => inbox.recv_timeout(at.saturating_duration_since(Instant::now())),
                None => inbox
                    .recv()
                    .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            };
            match received {
                Ok((job, state)) => {
                    self.apply(job, state);
                    for (job, state) in inbox.try_iter().take(FOLD_AT_ONCE) {
                        self.apply(job, state);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            self.work(Instant::now());
        }
    }

    /// When something is due next (`None`: nothing changed, wait for an update).
    fn next_wake(&self) -> Option<Instant> {
        let grids = self
            .grids_changed
            .then(|| self.next_grids.unwrap_or_else(Instant::now));
        let gallery = self
            .gallery_changed
            .then(|| self.next_gallery.unwrap_or_else(Instant::now));
        grids.into_iter().chain(gallery).min()
    }

    /// Folds in what the run learnt of a job; marks what must be written again.
    fn apply(&mut self, job: usize, state: JobState) {
        let Some(record) = self.records.get_mut(job) else {
            return;
        };
        let (status, error, files) = match state {
            JobState::Pending => (PENDING, None, Vec::new()),
            JobState::Completed { files } => ("completed", None, files),
            JobState::Failed { error, files } => ("failed", Some(error), files),
        };
        let same_files = record.files.len() == files.len()
            && record.files.iter().zip(&files).all(|(a, b)| &a.path == b);
        if record.status == status && record.error == error && same_files {
            return;
        }
        record.status = status.to_owned();
        record.error = error;
        if !same_files {
            record.files = files
                .into_iter()
                .map(|f| file_record(&self.root, f))
                .collect();
        }
        self.grids_changed = !self.config.grids.is_empty();
        self.gallery_changed = self.config.gallery;
    }

    /// Writes what is due at `now`.
    fn work(&mut self, now: Instant) {
        if !self.config_saved && (self.grids_changed || self.gallery_changed) {
            let saved = save_config(&self.root, &self.config);
            self.config_saved = saved.is_ok();
            self.outcome(saved);
        }
        if self.grids_changed && self.next_grids.is_none_or(|t| now >= t) {
            self.grids_changed = false;
            let started = Instant::now();
            let wrote = self.write_complete_grids();
            self.next_grids = Some(pause_after(started, GRID_PAUSE));
            if wrote.as_ref().is_ok_and(|n| *n > 0) {
                self.gallery_changed = self.config.gallery;
            }
            self.outcome(wrote.map(|_| ()));
        }
        if self.gallery_changed && self.next_gallery.is_none_or(|t| now >= t) {
            self.gallery_changed = false;
            let started = Instant::now();
            let written = self.write_gallery();
            self.next_gallery = Some(pause_after(started, GALLERY_PAUSE));
            self.outcome(written);
        }
    }

    /// Tells the run about an error, once per distinct error.
    fn outcome(&mut self, result: Result<(), ReportError>) {
        if let Err(e) = result {
            let message = crate::error_chain::error_chain(&e);
            if self.last_error.as_ref() != Some(&message) {
                let _ = self.warnings.send(format!(
                    "cannot update the report while the run goes: {message}"
                ));
                self.last_error = Some(message);
            }
        }
    }

    /// Every grid of the run as it stands ([`grid::GridPlan::waiting`] says whether it is
    /// complete); a spec that shows every node is left out until a job has a file (until then
    /// its nodes are not known).
    fn plans(&self) -> Result<Vec<grid::GridPlan>, ReportError> {
        let any_file = self.records.iter().any(|r| !r.files.is_empty());
        let count = self.config.grids.len();
        let mut plans = Vec::new();
        for (i, spec) in self.config.grids.iter().enumerate() {
            if spec.node.is_none() && !any_file {
                continue;
            }
            plans.extend(grid::plan(spec, i + 1, count, &self.records)?);
        }
        Ok(plans)
    }

    /// Grids already complete when the run starts are left for the end.
    fn seed_complete_grids(&mut self) {
        match self.plans() {
            Ok(plans) => {
                for plan in plans.into_iter().filter(|p| p.waiting == 0) {
                    if self.root.path().join(&plan.file).is_file() {
                        self.links.push(GridLink {
                            file: plan.file.clone(),
                            node: plan.node.clone(),
                        });
                    }
                    self.written.insert(plan.file);
                }
            }
            Err(e) => self.outcome(Err(e)),
        }
    }

    /// Writes the grids that became complete; returns how many. One that cannot be written
    /// does not hold up the others: the errors are returned after them.
    fn write_complete_grids(&mut self) -> Result<usize, ReportError> {
        let mut wrote = 0;
        let mut failed = Vec::new();
        for plan in self.plans()? {
            if let Some(file) = newly_complete(&plan, &mut self.written) {
                if let Err(e) = write_grid(&self.root, &plan) {
                    failed.push(e);
                    continue;
                }
                self.written.insert(file.clone());
                if !self.links.iter().any(|l| l.file == file) {
                    self.links.push(GridLink {
                        file,
                        node: plan.node.clone(),
                    });
                }
                wrote += 1;
            }
        }
        ReportError::all(failed)?;
        Ok(wrote)
    }

    fn write_gallery(&self) -> Result<(), ReportError> {
        let finished = self.records.iter().filter(|r| r.status != PENDING).count();
        let title = format!(
            "{} (running: {finished} of {} jobs finished)",
            self.config.title,
            self.records.len()
        );
        page::write(
            &self.root,
            &title,
            &self.records,
            &self.links,
            &self.config.grids,
        )?;
        Ok(())
    }
}

/// When work started at `started` may be done again: after `least`, and after [`WORK_SHARE`]
/// times as long as it took (so it never takes more than a fifth of the worker's time).
fn pause_after(started: Instant, least: Duration) -> Instant {
    let took = started.elapsed();
    Instant::now() + least.max(took * WORK_SHARE)
}

/// Whether `plan` is to be written now: complete, and not written yet in this run. A grid that
/// is incomplete again (a job submitted again after a server restart) is forgotten, so it is
/// written again once complete.
fn newly_complete(plan: &grid::GridPlan, written: &mut HashSet<PathBuf>) -> Option<PathBuf> {
    if plan.waiting > 0 {
        written.remove(&plan.file);
        return None;
    }
    (!written.contains(&plan.file)).then(|| plan.file.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::GridSpec;
    use serde_json::json;

    fn job(hue: i64, blur: i64) -> LiveJob {
        LiveJob {
            sweep: json!({"Hue": hue, "Blur": blur})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            inputs: Map::new(),
        }
    }

    fn config(spec: GridSpec) -> ReportConfig {
        ReportConfig {
            title: "t".into(),
            grids: vec![spec],
            gallery: true,
        }
    }

    /// Two pages (Blur 1, Blur 3) of a Hue grid, jobs 0-1 on the first, 2-3 on the second.
    fn worker(dir: &Path) -> (Worker, mpsc::Receiver<String>) {
        let (tell, warnings) = mpsc::channel();
        let jobs = vec![job(0, 1), job(90, 1), job(0, 3), job(90, 3)];
        let spec = GridSpec {
            node: Some("Tinted".into()),
            ..GridSpec::new("Hue", None)
        };
        (
            Worker::new(LocalStore::at(dir), config(spec), jobs, tell),
            warnings,
        )
    }

    fn complete_files(w: &Worker) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = w
            .plans()
            .expect("plan")
            .into_iter()
            .filter(|p| p.waiting == 0)
            .map(|p| p.file)
            .collect();
        files.sort();
        files
    }

    #[test]
    fn a_page_is_complete_once_each_of_its_jobs_completed_or_failed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut w, _) = worker(dir.path());
        assert!(complete_files(&w).is_empty());
        w.apply(0, JobState::Completed { files: vec![] });
        assert!(complete_files(&w).is_empty(), "one job of the page left");
        // A job of the other page does not complete the first.
        w.apply(2, JobState::Completed { files: vec![] });
        assert!(complete_files(&w).is_empty());
        w.apply(
            1,
            JobState::Failed {
                error: "boom".into(),
                files: vec![],
            },
        );
        assert_eq!(
            complete_files(&w),
            [PathBuf::from("grid-Tinted-Blur-1.png")]
        );
        // Submitted again after a server restart: incomplete again.
        w.apply(1, JobState::Pending);
        assert!(complete_files(&w).is_empty());
    }

    #[test]
    fn a_complete_grid_is_written_once_and_again_after_it_was_incomplete() {
        let mut plan = grid::plan(
            &GridSpec::new("Hue", None),
            1,
            1,
            &[JobRecord {
                job: 0,
                status: "completed".into(),
                error: None,
                sweep: Map::new(),
                inputs: Map::new(),
                files: vec![],
                summarized: true,
            }],
        )
        .expect("plan")
        .remove(0);
        let mut written = HashSet::new();
        assert_eq!(newly_complete(&plan, &mut written), Some(plan.file.clone()));
        written.insert(plan.file.clone());
        assert_eq!(newly_complete(&plan, &mut written), None);
        plan.waiting = 1;
        assert_eq!(newly_complete(&plan, &mut written), None);
        plan.waiting = 0;
        assert_eq!(newly_complete(&plan, &mut written), Some(plan.file.clone()));
    }

    #[test]
    fn the_page_during_a_run_lists_finished_jobs_and_says_it_is_running() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut w, warnings) = worker(dir.path());
        w.apply(
            3,
            JobState::Failed {
                error: "out of <memory>".into(),
                files: vec![],
            },
        );
        w.work(Instant::now());
        let page = crate::fs::read_to_string(dir.path().join(page::PAGE)).expect("page");
        assert!(
            page.contains("t (running: 1 of 4 jobs finished)"),
            "the title says the run goes"
        );
        assert!(page.contains("out of \\u003cmemory\\u003e"), "{page}");
        assert!(page.contains("1 jobs · 0 completed · 1 failed"), "{page}");
        assert!(dir.path().join(super::super::CONFIG_FILE).is_file());
        assert!(warnings.try_recv().is_err(), "no warning");
        // Nothing new: nothing is due. Another job finishes: its grid check is due soon,
        // the page not before the pause.
        assert_eq!(w.next_wake(), None);
        w.apply(0, JobState::Completed { files: vec![] });
        let wake = w.next_wake().expect("due");
        assert!(wake <= Instant::now() + GRID_PAUSE);
        w.work(Instant::now());
        let again = crate::fs::read_to_string(dir.path().join(page::PAGE)).expect("page");
        assert!(
            again.contains("(running: 1 of 4 jobs finished)"),
            "not rewritten yet"
        );
        assert!(w.gallery_changed);
        assert!(w.next_gallery.expect("set") >= Instant::now() + GALLERY_PAUSE / 2);
        w.work(Instant::now() + GALLERY_PAUSE);
        let later = crate::fs::read_to_string(dir.path().join(page::PAGE)).expect("page");
        assert!(
            later.contains("(running: 2 of 4 jobs finished)"),
            "rewritten"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_link_in_the_way_is_a_warning_once_and_nothing_is_written_through_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("outside");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("index.html")).expect("link");
        let (mut w, warnings) = worker(dir.path());
        w.apply(0, JobState::Completed { files: vec![] });
        w.work(Instant::now());
        w.apply(1, JobState::Completed { files: vec![] });
        w.next_gallery = None;
        w.work(Instant::now());
        let told: Vec<String> = warnings.try_iter().collect();
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(told[0].contains("is a symbolic link"), "{}", told[0]);
        assert_eq!(
            crate::fs::read_dir(outside.path()).expect("list").count(),
            0
        );
    }
}
