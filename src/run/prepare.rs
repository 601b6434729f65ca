//! Everything a run knows before it sends anything: the manifest, its workflow with typed
//! inputs, the expanded jobs, the plan, and the output folder. Building it is the validation:
//! when it fails, nothing was sent.
//!
//! And a run with nothing to do, found from its journal alone before any server is asked
//! ([`up_to_date`]): every job of the manifest done, every file it recorded still on disk, and
//! its end's work (cleanup, grids, gallery) done. Nothing is sent and no server is started or
//! asked (`--local` starts its private server only for a run that needs one).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::error::RunError;
use super::journal::{Journal, Resume};
use super::key::JobKey;
use super::manifest_source::ManifestSource;
use super::outcome::ManifestOutcome;
use super::progress::{Reporter, RunEnd, RunEvent, RunTotals};
use super::settings::RunSettings;
use super::shard::Shard;
use crate::client::Client;
use crate::manifest::{ExpandOptions, Expansion, ManifestFile, WorkflowSource};
use crate::store::{LocalStore, OutputStore};
use crate::workflow::{SchemaSet, Workflow, WorkflowDefinition};

/// A manifest ready to run.
#[derive(Debug)]
pub struct Prepared {
    /// The manifest.
    pub file: ManifestFile,
    /// The workflow, with its own values (the jobs' values are set per enqueue).
    pub workflow: Workflow,
    /// How the workflow was named (`{"name", "file"}` or `{"name", "library"}`), for sidecars.
    pub workflow_ref: Value,
    /// The jobs and how to name their outputs.
    pub expansion: Expansion,
    /// The output folder (its `.invk-run/journal.jsonl` and `runs.jsonl`).
    pub output_dir: PathBuf,
    /// A fingerprint of the workflow: part of each job's key, so that jobs of a changed
    /// workflow are not taken for the ones an earlier run did.
    pub workflow_hash: String,
}

/// Reads and checks the manifest `source` names (with its image, it runs for that image:
/// [`ManifestFile::for_image`]), expanding at most `max_jobs` jobs. A `client` is needed only for a
/// workflow from the server's library; input types and rules come from `schemas`.
///
/// # Errors
/// Every problem of the manifest at once ([`crate::manifest::ManifestError`]), a workflow that
/// does not load, or a library workflow that cannot be fetched.
pub async fn prepare(
    source: &ManifestSource,
    max_jobs: u64,
    client: Option<&Client>,
    schemas: &SchemaSet,
) -> Result<Prepared, RunError> {
    let display_path = &PathBuf::from(&source.display_name);
    let image = source.image.as_ref();
    let text = crate::manifest::read_manifest(&source.path, display_path)?;
    let mut file = ManifestFile::parse_with_base(&text, display_path, &source.base_dir)?;
    if let Some(each) = image {
        file = file.for_image(&each.input, &each.image);
    }
    let (definition, workflow_ref) = match file.workflow() {
        WorkflowSource::File(path) => {
            let def = WorkflowDefinition::load(path)?;
            let r = json!({"name": def.name(), "file": normalize(path)});
            (def, r)
        }
        WorkflowSource::Library(name) => {
            let client = client.ok_or_else(|| {
                RunError::Io(std::io::Error::other(format!(
                    "the workflow `{name}` is in the server's library: a server is needed to read it"
                )))
            })?;
            let record = client.workflows().find(name).await?;
            let def = WorkflowDefinition::from_json_value(
                record.workflow.clone(),
                &format!("library workflow `{name}`"),
            )?;
            let r = json!({"name": def.name(), "library": record.workflow_id});
            (def, r)
        }
    };
    let workflow = Workflow::new(definition, schemas)?;
    let each_input = match image {
        Some(each) => Some((each, image_input(&workflow, each, display_path)?)),
        None => None,
    };
    let expansion = file.expand(&workflow, &ExpandOptions { max_jobs })?;
    if let Some((each, system_name)) = each_input {
        // A sweep that sets the input too would replace the image in its jobs.
        let is_the_image = |job: &crate::manifest::Job| {
            matches!(job.inputs.get(&system_name),
                Some(crate::manifest::InputValue::LocalImage(l)) if l.path == each.image)
        };
        if !expansion.jobs().all(|job| is_the_image(&job)) {
            return Err(RunError::EachInputSwept {
                manifest: display_path.to_path_buf(),
                input: each.input.clone(),
            });
        }
    }
    let labels: Vec<String> = workflow.outputs().into_iter().map(|n| n.label).collect();
    crate::manifest::check_grid_nodes(&file, &labels)?;
    let output_dir = output_dir(&file, &expansion)?;
    let workflow_hash = {
        let digest = Sha256::digest(workflow.definition().to_json().to_string().as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    };
    Ok(Prepared {
        file,
        workflow,
        workflow_ref,
        expansion,
        output_dir,
        workflow_hash,
    })
}

/// The system name of the image input `--as` names.
fn image_input(
    workflow: &Workflow,
    each: &super::manifest_source::ForImage,
    display_path: &Path,
) -> Result<String, RunError> {
    use crate::manifest::{InputCatalog, InputKind};
    match workflow.resolve(&each.input) {
        Ok(info) if info.kind == InputKind::Image => Ok(info.system_name),
        _ => Err(RunError::NotAnImageInput {
            manifest: display_path.to_path_buf(),
            input: each.input.clone(),
        }),
    }
}

/// The run's output folder: `output.dir` rendered for today's date. It holds the journal and
/// the summary, so it may not vary from job to job or file to file (validation refused a
/// template that reads anything but `vars`, `manifest`, `date` and `time`): one render.
fn output_dir(file: &ManifestFile, expansion: &Expansion) -> Result<PathBuf, RunError> {
    if expansion.job_count() == 0 {
        return Ok(file.dir().to_path_buf());
    }
    let (date, time) = super::clock::now_utc();
    Ok(normalize(&expansion.output_dir(&date, &time)?))
}

/// `a/b/../c` as `a/c`, without touching the file system (`..` at the start is kept).
#[must_use]
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

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
    if settings.fresh || settings.checks_only() {
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
    prepare(
        source,
        settings.max_jobs,
        None,
        &crate::workflow::SchemaSet::snapshot(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_folds_parent_components() {
        for (input, want) in [
            ("jobs/../out/x", "out/x"),
            ("./a/./b", "a/b"),
            ("../a", "../a"),
            ("a/..", "."),
            ("/r/a/../b", "/r/b"),
        ] {
            assert_eq!(normalize(Path::new(input)), PathBuf::from(want), "{input}");
        }
    }
}
