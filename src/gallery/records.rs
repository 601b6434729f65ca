//! What a report is made from, read back from the output store: `runs.jsonl` (the latest line
//! per job), the sidecars beside the outputs, and the journal (to find files that were moved).

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::ReportError;
use crate::fs::output_tree::SUMMARY_FILE;
use crate::store::{LocalStore, OutputStore, companion};

/// Lines of `runs.jsonl` longer than this are skipped (a job line is a few KB).
const MAX_LINE: usize = 1 << 20;
/// Sidecars larger than this are not read.
const MAX_SIDECAR: u64 = crate::fs::place::MAX_COMPANION_READ;
/// The sidecar of an output: its name and this.
const SIDECAR: &str = ".json";
/// The journal, relative to the output folder.
const JOURNAL: &str = ".invk-run/journal.jsonl";

/// The status of a job a run has not finished yet (only while it runs: [`super::live`]).
pub const PENDING: &str = "pending";

/// One job as the report shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// Job index.
    pub job: usize,
    /// `completed`, `failed`, `not_run`, or [`PENDING`] while its run goes.
    pub status: String,
    /// The server's error, for a failed job.
    pub error: Option<String>,
    /// Sweep values by key.
    pub sweep: Map<String, Value>,
    /// Inputs by user name.
    pub inputs: Map<String, Value>,
    /// The job's output files.
    pub files: Vec<FileRecord>,
    /// Whether a `runs.jsonl` line (written when a run ends) names the job; jobs known only
    /// from their sidecars belong to a run still going, or killed.
    pub summarized: bool,
}

/// One output file of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRecord {
    /// Path relative to the output folder.
    pub path: PathBuf,
    /// The output node's label (from the sidecar).
    pub node_label: Option<String>,
    /// The output node's id (from the sidecar).
    pub node_id: Option<String>,
    /// The sidecar, when there is one.
    pub sidecar: Option<Value>,
    /// Whether the file is on disk.
    pub exists: bool,
}

/// A `runs.jsonl` line, read leniently (older runs lack some fields).
#[derive(Debug, Deserialize)]
struct SummaryLine {
    job: usize,
    #[serde(default)]
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    sweep: Option<Map<String, Value>>,
    #[serde(default)]
    inputs: Map<String, Value>,
    #[serde(default)]
    files: Vec<PathBuf>,
}

/// Reads every job of `output_dir`, by index.
///
/// # Errors
/// `runs.jsonl` exists but cannot be read.
pub fn load(output_dir: &Path) -> Result<Vec<JobRecord>, ReportError> {
    load_from(&LocalStore::at(output_dir))
}

/// Reads every job of the outputs in `store`, by index.
///
/// # Errors
/// `runs.jsonl` exists but cannot be read.
pub fn load_from(store: &dyn OutputStore) -> Result<Vec<JobRecord>, ReportError> {
    let mut lines: BTreeMap<usize, SummaryLine> = BTreeMap::new();
    let summary = Path::new(SUMMARY_FILE);
    if let Some(file) = store.open(summary)? {
        let reader = std::io::BufReader::new(file);
        for line in reader.split(b'\n') {
            let line = line.map_err(|e| {
                let shown = store
                    .local_folder()
                    .map_or_else(|| summary.to_path_buf(), |dir| dir.join(summary));
                ReportError::io(&shown, e)
            })?;
            if line.len() > MAX_LINE {
                continue;
            }
            if let Ok(parsed) = serde_json::from_slice::<SummaryLine>(&line) {
                lines.insert(parsed.job, parsed);
            }
        }
    }
    let sidecars = list_sidecars(store);
    let by_image: HashMap<&str, &(PathBuf, Value)> = sidecars
        .iter()
        .filter_map(|s| s.1["image_name"].as_str().map(|n| (n, s)))
        .collect();
    let journal_names = journal_image_names(store);

    let mut records: BTreeMap<usize, JobRecord> = BTreeMap::new();
    for (job, line) in lines {
        let mut files = Vec::new();
        for listed in line.files {
            let mut path = listed.clone();
            if !store.exists(&path).unwrap_or(false) {
                // Moved: the journal names the image, a sidecar found it elsewhere.
                if let Some((moved, _)) = journal_names
                    .get(&listed)
                    .and_then(|name| by_image.get(name.as_str()))
                {
                    path = moved.clone();
                }
            }
            files.push(file_record(store, path));
        }
        let sweep = line.sweep.unwrap_or_else(|| {
            files
                .iter()
                .find_map(|f| f.sidecar.as_ref()?.get("sweep")?.as_object().cloned())
                .unwrap_or_default()
        });
        records.insert(
            job,
            JobRecord {
                job,
                status: if line.status.is_empty() {
                    "completed".to_owned()
                } else {
                    line.status
                },
                error: line.error,
                sweep,
                inputs: line.inputs,
                files,
                summarized: true,
            },
        );
    }
    // Outputs of jobs no `runs.jsonl` line names yet (a run still going, or killed).
    let from_lines: std::collections::HashSet<usize> = records.keys().copied().collect();
    for (path, sidecar) in &sidecars {
        let Some(job) = sidecar["job"]
            .as_u64()
            .and_then(|j| usize::try_from(j).ok())
        else {
            continue;
        };
        if from_lines.contains(&job) {
            continue;
        }
        let record = records.entry(job).or_insert_with(|| JobRecord {
            job,
            status: "completed".to_owned(),
            error: None,
            sweep: sidecar["sweep"].as_object().cloned().unwrap_or_default(),
            inputs: sidecar["inputs"].as_object().cloned().unwrap_or_default(),
            files: Vec::new(),
            summarized: false,
        });
        if !record.files.iter().any(|f| &f.path == path) {
            record.files.push(file_record(store, path.clone()));
        }
    }
    let mut records: Vec<JobRecord> = records.into_values().collect();
    infer_sweep(&mut records);
    Ok(records)
}

/// Runs from before the sweep values were recorded: the inputs that differ between jobs stand
/// for them.
fn infer_sweep(records: &mut [JobRecord]) {
    if records.len() < 2 || records.iter().any(|r| !r.sweep.is_empty()) {
        return;
    }
    let mut varying: Vec<String> = Vec::new();
    for r in records.iter() {
        for (k, v) in &r.inputs {
            if !varying.contains(k) && records.iter().any(|o| o.inputs.get(k) != Some(v)) {
                varying.push(k.clone());
            }
        }
    }
    for r in records.iter_mut() {
        r.sweep = varying
            .iter()
            .map(|k| (k.clone(), r.inputs.get(k).cloned().unwrap_or(Value::Null)))
            .collect();
    }
}

/// The record of the output `path` (relative to the store's root), with its sidecar.
pub(crate) fn file_record(store: &dyn OutputStore, path: PathBuf) -> FileRecord {
    let sidecar = store
        .read(&companion(&path, SIDECAR), MAX_SIDECAR)
        .ok()
        .flatten()
        .and_then(|bytes| parse_sidecar(&bytes));
    let node = sidecar.as_ref().map(|s| &s["node"]);
    FileRecord {
        node_label: node.and_then(|n| n["label"].as_str()).map(str::to_owned),
        node_id: node.and_then(|n| n["id"].as_str()).map(str::to_owned),
        exists: store.exists(&path).unwrap_or(false),
        sidecar,
        path,
    }
}

/// A sidecar's JSON, when it is an output's sidecar (it names its server image).
fn parse_sidecar(bytes: &[u8]) -> Option<Value> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    value.get("image_name")?;
    Some(value)
}

/// Every output sidecar in `store` (not the run's own files under `.invk-run`), with its
/// output's relative path, in the store's order; a store that cannot be listed has none.
fn list_sidecars(store: &dyn OutputStore) -> Vec<(PathBuf, Value)> {
    let mut found = Vec::new();
    // Unreadable parts of the folder are passed over, as is a folder that cannot be listed.
    let _ = store.list_outputs(SIDECAR, &mut |path, bytes| {
        if let Some(sidecar) = parse_sidecar(bytes) {
            found.push((path.to_path_buf(), sidecar));
        }
    });
    found
}

/// File (relative) → the server image it was downloaded from, from the journal (of a sweep run
/// in shards, every shard's).
fn journal_image_names(store: &dyn OutputStore) -> HashMap<PathBuf, String> {
    let mut names = HashMap::new();
    let journals: Vec<PathBuf> = match store.local_folder() {
        Some(dir) => (crate::run::shard::Shard::journals_in(dir).into_iter())
            .map(crate::run::shard::Shard::journal)
            .collect(),
        None => vec![PathBuf::from(JOURNAL)],
    };
    for journal in journals {
        read_image_names(store, &journal, &mut names);
    }
    names
}

/// Adds what one journal says to [`journal_image_names`].
fn read_image_names(store: &dyn OutputStore, journal: &Path, names: &mut HashMap<PathBuf, String>) {
    let Ok(Some(file)) = store.open(journal) else {
        return;
    };
    for line in std::io::BufReader::new(file)
        .split(b'\n')
        .map_while(Result::ok)
    {
        if line.len() > MAX_LINE {
            continue;
        }
        let Ok(entry) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        if entry["event"] == "downloaded" {
            if let (Some(file), Some(name)) = (entry["file"].as_str(), entry["image_name"].as_str())
            {
                names.insert(PathBuf::from(file), name.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(path: &Path, text: &str) {
        crate::fs::create_dir_all(crate::fs::parent_dir(path)).expect("mkdir");
        crate::fs::write(path, text).expect("write");
    }

    #[test]
    fn the_latest_line_wins_and_moved_files_are_found_by_their_sidecar() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let line = |status: &str, files: &[&str]| {
            json!({"run_id": "r", "job": 0, "status": status, "inputs": {"Hue": 90},
                   "sweep": {"Hue": 90}, "files": files})
            .to_string()
        };
        write(
            &root.join("runs.jsonl"),
            &format!(
                "{}\n{}\nnot json\n",
                line("failed", &[]),
                line("completed", &["a/x.png"])
            ),
        );
        // The file was moved from a/ to b/ after the run.
        write(&root.join("b/x.png"), "png");
        write(
            &root.join("b/x.png.json"),
            &json!({"job": 0, "image_name": "img-1.png", "node": {"id": "n", "label": "Tinted"}, "sweep": {"Hue": 90}}).to_string(),
        );
        write(
            &root.join(".invk-run/journal.jsonl"),
            &json!({"event": "downloaded", "job": "k", "image_name": "img-1.png", "file": "a/x.png"}).to_string(),
        );
        let records = load(root).expect("load");
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.status, "completed");
        assert_eq!(r.files.len(), 1, "{:?}", r.files);
        assert_eq!(r.files[0].path, PathBuf::from("b/x.png"));
        assert!(r.files[0].exists);
        assert_eq!(r.files[0].node_label.as_deref(), Some("Tinted"));
    }

    #[test]
    fn without_recorded_sweep_values_the_inputs_that_vary_stand_for_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lines: Vec<String> = [(0, 0), (1, 90)]
            .iter()
            .map(|(job, hue)| {
                json!({"job": job, "status": "completed", "inputs": {"Hue": hue, "Width": 48}, "files": []})
                    .to_string()
            })
            .collect();
        write(&dir.path().join("runs.jsonl"), &lines.join("\n"));
        let records = load(dir.path()).expect("load");
        assert_eq!(
            records[1].sweep,
            *json!({"Hue": 90}).as_object().expect("map")
        );
    }

    #[test]
    fn outputs_without_a_summary_line_are_jobs_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        write(&root.join("3-Tinted.png"), "png");
        write(
            &root.join("3-Tinted.png.json"),
            &json!({"job": 3, "image_name": "i.png", "node": {"label": "Tinted"}, "sweep": {"Hue": 0}, "inputs": {}}).to_string(),
        );
        let records = load(root).expect("load");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].job, 3);
        assert_eq!(records[0].sweep["Hue"], 0);
    }
}
