//! A run with nothing to do, found from its journal alone: every job of the manifest done and
//! every file it recorded still on disk, and its end's work (cleanup, grids, gallery) done. Nothing is sent and no server is started or asked
//! (`--local` starts its private server only for a run that needs one).

use std::time::Instant;

use super::error::RunError;
use super::journal::{Journal, Resume};
use super::key::JobKey;
use super::manifest_source::ManifestSource;
use super::outcome::ManifestOutcome;
use super::prepare::Prepared;
use super::progress::{Reporter, RunEnd, RunEvent, RunTotals};
use super::settings::RunSettings;
use super::shard::Shard;
use crate::store::{LocalStore, OutputStore};

/// When every job of the manifest `source` names is done per its journal and every file the
/// journal records for them is on disk, tells the listeners so (and that the run ended) and
/// returns the outcome; `None` when the run has something to do (or cannot tell without a
/// server: a workflow of the server's library, node types the shipped schemas do not know).
/// Reads the manifest, its workflow file and its journal; writes nothing.
pub async fn up_to_date(
    source: &ManifestSource,
    settings: &RunSettings,
    reporter: &Reporter,
) -> Option<ManifestOutcome> {
    if settings.fresh || settings.validate_only || settings.dry_run {
        return None;
    }
    let prepared = check_offline(source, settings).await.ok()?;
    tell_if_done(&prepared, source, settings.shard, reporter).await
}

/// The manifest checked as the run would check it, against the shipped schemas instead of the
/// server's: when they type a value differently, the job keys differ from the journal's and
/// [`tell_if_done`] finds the run not done.
///
/// # Errors
/// An invalid manifest; a workflow of the server's library.
pub(super) async fn check_offline(
    source: &ManifestSource,
    settings: &RunSettings,
) -> Result<Prepared, RunError> {
    super::prepare::prepare(
        &source.path,
        &std::path::PathBuf::from(&source.display_name),
        &source.base_dir,
        source.image.as_ref(),
        settings.max_jobs,
        None,
        crate::workflow::SchemaSet::snapshot(),
    )
    .await
}

/// [`up_to_date`] for a manifest checked already.
pub(super) async fn tell_if_done(
    prepared: &Prepared,
    source: &ManifestSource,
    shard: Shard,
    reporter: &Reporter,
) -> Option<ManifestOutcome> {
    let started = Instant::now();
    let state = Journal::read_shard(&prepared.output_dir, shard).ok()??;
    // A run stopped after its last download and before its end's work (the server's cleanup,
    // the grids and gallery) still has that to do.
    if !state.ended {
        return None;
    }
    let total = prepared.expansion.job_count();
    let count = shard.jobs_of(total);
    if state.known_jobs().count() < count {
        return None;
    }
    let store = LocalStore::at(&prepared.output_dir);
    let mut files = Vec::new();
    for index in shard.indices(total) {
        let job = prepared.expansion.job(index);
        let key = JobKey::of(&job, &prepared.workflow_hash);
        let Resume::Done { files: done } = state.resume(key) else {
            return None;
        };
        if done.iter().any(|f| !store.exists(f).unwrap_or(false)) {
            return None;
        }
        files.extend(done);
    }
    reporter.event(&RunEvent::NothingToDo {
        manifest: source.run_name(),
        jobs: count,
        files: files.len(),
        output_dir: prepared.output_dir.display().to_string(),
    });
    let outcome = ManifestOutcome {
        manifest: source.run_name(),
        output_dir: prepared.output_dir.clone(),
        jobs: count,
        completed: count,
        failures: Vec::new(),
        not_run: 0,
        files,
        seconds: started.elapsed().as_secs_f64(),
        interrupted: false,
    };
    reporter
        .finish(&RunEnd {
            manifest: source.run_name(),
            output_dir: std::path::absolute(&outcome.output_dir).unwrap_or_default(),
            totals: Some(RunTotals {
                jobs: count,
                completed: count,
                failed: Vec::new(),
                not_run: 0,
                interrupted: false,
                seconds: outcome.seconds,
            }),
            error: None,
        })
        .await;
    Some(outcome)
}
