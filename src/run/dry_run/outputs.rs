//! How a dry run names what a run will write: each job's inputs by their user names, the files
//! each job will write, the grids and the gallery page.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

use crate::gallery::records::{FileRecord, JobRecord};
use crate::manifest::{Job, OutputVars, resolve_grids};
use crate::run::finish::GALLERY_MAX_JOBS;
use crate::run::prepare::Prepared;
use crate::workflow::OutputNode;

/// How a dry run names a job's inputs and files.
pub(super) struct Outputs<'p> {
    pub(super) prepared: &'p Prepared,
    /// The output nodes, in the workflow's order: a file each per job.
    pub(super) nodes: Vec<OutputNode>,
    /// By system name, the name shown: the input's user name, or its system name when another
    /// input has the same user name.
    names: HashMap<String, String>,
    /// The date and time the file names are rendered with (a run takes its own).
    stamp: (String, String),
}

impl<'p> Outputs<'p> {
    pub(super) fn new(prepared: &'p Prepared) -> Outputs<'p> {
        let inputs = &prepared.expansion.inputs;
        let mut count: HashMap<&str, usize> = HashMap::new();
        for info in inputs.values() {
            *count.entry(info.user_name.as_str()).or_default() += 1;
        }
        let names = inputs
            .iter()
            .map(|(system, info)| {
                let name = if count[info.user_name.as_str()] == 1 {
                    info.user_name.clone()
                } else {
                    system.clone()
                };
                (system.clone(), name)
            })
            .collect();
        Outputs {
            prepared,
            nodes: prepared.workflow.outputs(),
            names,
            stamp: crate::run::clock::now_utc(),
        }
    }

    /// The name an input is shown by.
    pub(super) fn name<'a>(&'a self, system: &'a str) -> &'a str {
        self.names.get(system).map_or(system, String::as_str)
    }

    /// The files `job` will write: one per output node (a node that makes several images
    /// writes more, numbered by `image.index`), with the folder; or why a name does not render.
    pub(super) fn files(&self, job: &Job) -> Vec<Result<PathBuf, String>> {
        self.nodes
            .iter()
            .map(|node| {
                let ext = if node.image_fields.is_empty() && !node.video_fields.is_empty() {
                    "mp4"
                } else {
                    "png"
                };
                let vars = OutputVars {
                    node_id: node.node_id.clone(),
                    node_label: node.label.clone(),
                    node_type: node.node_type.clone(),
                    image_index: 0,
                    image_count: 1,
                    image_name: format!("image-name.{ext}"),
                    item_id: 0,
                    batch_id: "batch-id".into(),
                    run_id: "run-id".into(),
                    date: self.stamp.0.clone(),
                    time: self.stamp.1.clone(),
                };
                let target = self
                    .prepared
                    .expansion
                    .output_path(job, &vars)
                    .map_err(|e| e.to_string())?;
                // As the run names it (a name already taken then gets `-2`, `-3`...).
                let rel = crate::fs::output_tree::sanitize_relative(&target.name.to_string_lossy())
                    .unwrap_or_else(|| PathBuf::from(format!("{}-0", job.index)));
                let mut name = rel.into_os_string();
                name.push(".");
                name.push(ext);
                Ok(self.prepared.output_dir.join(name))
            })
            .collect()
    }

    /// A job as the document lists it.
    pub(super) fn entry(&self, job: &Job) -> Value {
        let inputs: Map<String, Value> = job
            .inputs
            .iter()
            .map(|(system, v)| {
                let v = serde_json::to_value(v).unwrap_or(Value::Null);
                (self.name(system).to_owned(), v)
            })
            .collect();
        let files: Vec<Value> = self
            .files(job)
            .into_iter()
            .map(|f| match f {
                Ok(path) => json!(path),
                Err(e) => json!({"error": e}),
            })
            .collect();
        let mut entry = json!({
            "index": job.index,
            "run": job.run,
            "inputs": inputs,
            "sweep": job.sweep,
            "files": files,
        });
        if !job.seeds.is_empty() {
            entry["seeds"] = json!(job.seeds);
        }
        entry
    }
}

/// The grids a run will write.
pub(super) enum Grids {
    /// Their files (with the folder), named as the report names them.
    Files(Vec<PathBuf>),
    /// None: the run has too many jobs to draw them at its end.
    NotForSoManyJobs,
}

/// The grid files the run will write, named as the report names them (planning them holds
/// every job's sweep values, as the run's report does, and only for as many jobs).
pub(super) fn grid_files(prepared: &Prepared, outputs: &Outputs<'_>) -> Grids {
    let manifest = prepared.file.manifest();
    let specs = resolve_grids(&manifest.output, &manifest.sweep);
    if specs.is_empty() {
        return Grids::Files(Vec::new());
    }
    if prepared.expansion.job_count() > GALLERY_MAX_JOBS {
        return Grids::NotForSoManyJobs;
    }
    let files: Vec<FileRecord> = outputs
        .nodes
        .iter()
        .map(|node| FileRecord {
            path: PathBuf::new(),
            node_label: Some(node.label.clone()),
            node_id: Some(node.node_id.clone()),
            sidecar: None,
            exists: false,
        })
        .collect();
    let records: Vec<JobRecord> = prepared
        .expansion
        .jobs()
        .map(|job| JobRecord {
            job: job.index,
            status: "not_run".to_owned(),
            error: None,
            sweep: job.sweep.into_iter().collect(),
            inputs: Map::new(),
            files: files.clone(),
            summarized: true,
        })
        .collect();
    let mut grids = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        // Validation checked the bounds and the names: a plan that fails here lists nothing.
        if let Ok(plans) = crate::gallery::grid::plan(spec, i + 1, specs.len(), &records) {
            grids.extend(plans.into_iter().map(|p| prepared.output_dir.join(p.file)));
        }
    }
    Grids::Files(grids)
}

/// The gallery page the run will write, if the manifest asks for it (and the run is not too
/// large to write one).
pub(super) fn gallery_file(prepared: &Prepared) -> Option<PathBuf> {
    (prepared.file.manifest().output.gallery && prepared.expansion.job_count() <= GALLERY_MAX_JOBS)
        .then(|| prepared.output_dir.join(crate::gallery::page::PAGE))
}
