//! What a run leaves beside its outputs: a JSON sidecar per output file, and `runs.jsonl` at the
//! output root with one line per job.

use crate::manifest::Job;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::fs::place::PlaceError;
use crate::store::{LocalStore, Log, OutputStore};

/// The sidecar written beside an output file (`NAME.png.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Sidecar {
    /// The manifest.
    pub manifest: String,
    /// The workflow's name and file (or library id).
    pub workflow: Value,
    /// The server URL.
    pub server: String,
    /// The run's id.
    pub run_id: String,
    /// Job index.
    pub job: usize,
    /// The job's inputs, by user name.
    pub inputs: Map<String, Value>,
    /// The sweep values the job was made from and its seeds.
    #[serde(flatten)]
    pub sweep: JobValues,
    /// The output node: id, label, type.
    pub node: Value,
    /// The image's name on the server.
    pub image_name: String,
    /// Queue item id.
    pub item_id: i64,
    /// Batch id.
    pub batch_id: String,
    /// Session id.
    pub session_id: String,
    /// Queue item times as the server reports them (UTC).
    pub times: Value,
}

impl Sidecar {
    /// The sidecar's path for an output file.
    #[must_use]
    pub fn path_for(file: &Path) -> PathBuf {
        crate::fs::output_tree::sidecar_path(file)
    }

    /// Its text (pretty JSON and a newline).
    ///
    /// # Errors
    /// When it cannot be serialized.
    pub fn to_bytes(&self) -> std::io::Result<Vec<u8>> {
        let mut text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        text.push(b'\n');
        Ok(text)
    }
}

/// What a job was made from, written flat into its sidecars and its line of `runs.jsonl`:
/// `sweep`, then `seed` and `seeds` when it has them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct JobValues {
    /// The sweep values, by sweep key as written in the manifest.
    pub sweep: Map<String, Value>,
    /// The job's seed: the first seed invk-run derived for it (`{seed: random}`, `{seeds: N}`),
    /// or else the value of an input named `seed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<Value>,
    /// Every seed invk-run derived for the job, by the key as written in the manifest.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub seeds: Map<String, Value>,
}

/// One line of `runs.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct JobSummary {
    /// The run's id.
    pub run_id: String,
    /// Job index.
    pub job: usize,
    /// `completed`, `failed` or `not_run` (interrupted, or refused by a full queue).
    pub status: String,
    /// Queue item id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_id: Option<i64>,
    /// The job's inputs, by user name.
    pub inputs: Map<String, Value>,
    /// The sweep values the job was made from and its seeds.
    #[serde(flatten)]
    pub sweep: JobValues,
    /// Output files, relative to the output root.
    pub files: Vec<PathBuf>,
    /// Outputs that could not be downloaded and stay on the server (image names).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_on_server: Vec<String>,
    /// The server they stay on (with `left_on_server`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The server's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub use crate::fs::output_tree::{SUMMARY_FILE, summary_path};

/// Appends `runs.jsonl` lines one job at a time (buffered), then flushes them to disk.
#[derive(Debug)]
pub struct SummaryWriter {
    log: Box<dyn Log>,
}

impl SummaryWriter {
    /// Opens an output folder's `runs.jsonl` for appending; a link there (or a linked output
    /// folder) is refused ([`crate::fs::place`]).
    ///
    /// # Errors
    /// When the folder or the file cannot be created, or is a link.
    pub fn open(output_dir: &Path) -> std::io::Result<SummaryWriter> {
        let store = LocalStore::open(output_dir).map_err(PlaceError::into_io)?;
        SummaryWriter::open_in(&store)
    }

    /// Opens the `runs.jsonl` of `store` for appending.
    ///
    /// # Errors
    /// When the file cannot be opened or created.
    pub fn open_in(store: &dyn OutputStore) -> std::io::Result<SummaryWriter> {
        let log = store
            .open_log(Path::new(SUMMARY_FILE))
            .map_err(PlaceError::into_io)?;
        Ok(SummaryWriter { log })
    }

    /// Appends one job's line.
    ///
    /// # Errors
    /// When the write fails.
    pub fn append(&mut self, job: &JobSummary) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(job).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.log.append(&line).map_err(PlaceError::into_io)
    }

    /// Flushes everything to disk.
    ///
    /// # Errors
    /// When the write fails.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.log.sync().map_err(PlaceError::into_io)
    }
}

/// A job's sweep values, by sweep key, and its seeds: those derived for it, or else the value
/// of an input whose field is named `seed`.
pub(super) fn sweep_map(job: &Job) -> JobValues {
    let seeds: Map<String, Value> = job
        .seeds
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(*v)))
        .collect();
    let seed = seeds.values().next().cloned().or_else(|| {
        job.inputs
            .iter()
            .find(|(system, _)| system.ends_with(".seed"))
            .map(|(_, v)| v.display_json())
    });
    JobValues {
        sweep: job
            .sweep
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        seed,
        seeds,
    }
}
