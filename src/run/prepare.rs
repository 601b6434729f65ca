//! Everything a run knows before it sends anything: the manifest, its workflow with typed
//! inputs, the expanded jobs, the plan, and the output folder. Building it is the validation:
//! when it fails, nothing was sent.

use super::error::RunError;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::client::Client;
use crate::manifest::{ExpandOptions, Expansion, ManifestFile, WorkflowSource};
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

/// Reads and checks a manifest. `display_path` names it in messages, its relative paths start
/// from `base_dir`, and the text is read from `read_from`; with `image`, it runs for that image
/// ([`ManifestFile::for_image`]). A `client` is needed only for a
/// workflow from the server's library; input types and rules come from `schemas`.
///
/// # Errors
/// Every problem of the manifest at once ([`crate::manifest::ManifestError`]), a workflow that
/// does not load, or a library workflow that cannot be fetched.
pub async fn prepare(
    read_from: &Path,
    display_path: &Path,
    base_dir: &Path,
    image: Option<&super::manifest_source::ForImage>,
    max_jobs: u64,
    client: Option<&Client>,
    schemas: &SchemaSet,
) -> Result<Prepared, RunError> {
    let text = crate::manifest::read_manifest(read_from, display_path)?;
    let mut file = ManifestFile::parse_with_base(&text, display_path, base_dir)?;
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
