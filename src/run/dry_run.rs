//! `invk-run validate` and `--dry-run`: what a run would do, with nothing sent.
//!
//! Neither holds every job: validation made each job once already, and the dry run prints its
//! document as it goes, the jobs one at a time and the enqueues a chunk of jobs at a time.
//! The document names inputs as the manifest does (their user names) and lists the files each
//! job will write and the grids; a person also gets a summary on stderr: the inputs, the first
//! files, how many more, the grids and the gallery.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::finish::GALLERY_MAX_JOBS;
use super::manifest_source::ManifestSource;
use super::needs::model_ref;
use super::outcome::ManifestOutcome;
use super::prepare::Prepared;
use super::progress::{ReportMode, Reporter};
use super::settings::RunSettings;
use super::shard::Shard;
use super::submit::build_batch;
use crate::gallery::records::{FileRecord, JobRecord};
use crate::manifest::{EnqueuePlan, InputValue, Job, OutputVars, Plan, resolve_grids, value_label};
use crate::workflow::{ConvertOptions, OutputNode};

/// The dry run groups this many consecutive jobs at a time into enqueues.
pub(super) const DRY_RUN_CHUNK: usize = 1000;

/// The summary lists this many of the files a run will write (and counts the rest).
pub(super) const FILES_SHOWN: usize = 10;

/// A value in the summary is cut past this many characters.
const VALUE_CHARS: usize = 60;

/// Prints the check's result (validate) or the jobs and payloads (dry run) and returns an
/// outcome with nothing run.
pub(super) fn report(
    prepared: &Prepared,
    source: &ManifestSource,
    settings: &RunSettings,
    reporter: &Reporter,
) -> ManifestOutcome {
    let total = prepared.expansion.job_count();
    let shard = settings.shard;
    let jobs = shard.jobs_of(total);
    let mut line = format!(
        "{}: valid: {total} job{} -> {}",
        source.display_name,
        if total == 1 { "" } else { "s" },
        prepared.output_dir.display()
    );
    if !shard.is_whole() {
        line.push_str(&format!("\n  {}", shard_line(shard, total)));
    }
    if settings.validate_only {
        match reporter.mode() {
            ReportMode::Json => println!(
                "{}",
                json!({"event": "valid", "manifest": source.display_name, "jobs": jobs,
                       "output_dir": prepared.output_dir})
            ),
            ReportMode::Human => eprintln!("{line}"),
            ReportMode::Quiet => {}
        }
    } else {
        let outputs = Outputs::new(prepared);
        let grids = grid_files(prepared, &outputs);
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        // A closed pipe (`| head`) ends the listing; nothing else can fail here.
        let doc = JsonStream::new(&mut out, reporter.mode() != ReportMode::Json);
        let _ = write_plan(doc, source, shard, &outputs, &grids).and_then(|()| out.flush());
        drop(out);
        if reporter.mode() == ReportMode::Human {
            let summary = Summary::of(prepared, shard, &outputs, grids);
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}").and_then(|()| summary.write(&mut err));
        }
    }
    ManifestOutcome {
        manifest: source.display_name.clone(),
        output_dir: prepared.output_dir.clone(),
        jobs,
        completed: 0,
        failures: Vec::new(),
        not_run: 0,
        files: Vec::new(),
        seconds: 0.0,
        interrupted: false,
    }
}

/// The line that says which jobs of a sweep of `total` a shard runs: how many, and which (the
/// first and last few of a long list).
pub(super) fn shard_line(shard: Shard, total: usize) -> String {
    const FIRST: usize = 4;
    const LAST: usize = 2;
    let count = shard.jobs_of(total);
    let at = |nth: usize| (shard.index() as usize + nth * shard.count() as usize).to_string();
    let which: Vec<String> = if count <= FIRST + LAST + 1 {
        (0..count).map(at).collect()
    } else {
        (0..FIRST)
            .map(at)
            .chain(std::iter::once("…".to_owned()))
            .chain((count - LAST..count).map(at))
            .collect()
    };
    let which = if which.is_empty() {
        "none of them".to_owned()
    } else {
        format!("jobs {}", which.join(", "))
    };
    format!(
        "shard {shard}: runs {count} of the {total} jobs (those whose index is {} modulo {}): {which}",
        shard.index(),
        shard.count()
    )
}

/// Writes `{"manifest", "output_dir", "grids", "gallery", "jobs": [...], "enqueues": [...]}`,
/// each job (its inputs by user name, and the files it will write) and enqueue as soon as it is
/// made.
fn write_plan(
    mut doc: JsonStream<'_, impl Write>,
    source: &ManifestSource,
    shard: Shard,
    outputs: &Outputs<'_>,
    grids: &Grids,
) -> std::io::Result<()> {
    let prepared = outputs.prepared;
    let expansion = &prepared.expansion;
    let total = expansion.job_count();
    doc.field("manifest", &source.display_name)?;
    doc.field("output_dir", &prepared.output_dir)?;
    if !shard.is_whole() {
        // The jobs and enqueues below are the shard's.
        doc.field(
            "shard",
            &json!({"shard": shard, "jobs": shard.jobs_of(total), "of_jobs": total}),
        )?;
    }
    match grids {
        Grids::Files(files) => doc.field("grids", files)?,
        Grids::NotForSoManyJobs => doc.field(
            "grids",
            &json!({"none": format!("a run of more than {GALLERY_MAX_JOBS} jobs draws no grids; `invk-run report` draws them after it")}),
        )?,
    }
    doc.field("gallery", &gallery_file(prepared))?;
    doc.list(
        "jobs",
        shard
            .indices(total)
            .map(|i| outputs.entry(&expansion.job(i))),
    )?;
    let step = shard.count() as usize;
    let enqueues = (0..total).step_by(DRY_RUN_CHUNK * step).flat_map(|start| {
        let end = (start + DRY_RUN_CHUNK * step).min(total);
        let chunk = Plan::from_jobs(
            (start..end)
                .filter(|i| shard.contains(*i))
                .map(|i| expansion.job(i))
                .collect(),
            &expansion.inputs,
        );
        chunk
            .enqueues
            .into_iter()
            .map(|e| payload(prepared, &e))
            .collect::<Vec<_>>()
    });
    doc.list("enqueues", enqueues)?;
    doc.end()
}

/// How a dry run names a job's inputs and files.
struct Outputs<'p> {
    prepared: &'p Prepared,
    /// The output nodes, in the workflow's order: a file each per job.
    nodes: Vec<OutputNode>,
    /// By system name, the name shown: the input's user name, or its system name when another
    /// input has the same user name.
    names: HashMap<String, String>,
    /// The date and time the file names are rendered with (a run takes its own).
    stamp: (String, String),
}

impl<'p> Outputs<'p> {
    fn new(prepared: &'p Prepared) -> Outputs<'p> {
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
            stamp: super::clock::now_utc(),
        }
    }

    /// The name an input is shown by.
    fn name<'a>(&'a self, system: &'a str) -> &'a str {
        self.names.get(system).map_or(system, String::as_str)
    }

    /// The files `job` will write: one per output node (a node that makes several images
    /// writes more, numbered by `image.index`), with the folder; or why a name does not render.
    fn files(&self, job: &Job) -> Vec<Result<PathBuf, String>> {
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
    fn entry(&self, job: &Job) -> Value {
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
enum Grids {
    /// Their files (with the folder), named as the report names them.
    Files(Vec<PathBuf>),
    /// None: the run has too many jobs to draw them at its end.
    NotForSoManyJobs,
}

/// The grid files the run will write, named as the report names them (planning them holds
/// every job's sweep values, as the run's report does, and only for as many jobs).
fn grid_files(prepared: &Prepared, outputs: &Outputs<'_>) -> Grids {
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
fn gallery_file(prepared: &Prepared) -> Option<PathBuf> {
    (prepared.file.manifest().output.gallery && prepared.expansion.job_count() <= GALLERY_MAX_JOBS)
        .then(|| prepared.output_dir.join(crate::gallery::page::PAGE))
}

/// The summary shows this many of an input's values.
const VALUES_SHOWN: usize = 3;

/// The summary counts an input's distinct values up to this many (and says "more than").
const MAX_DISTINCT: usize = 1000;

/// The values the jobs give one input: the first few, and how many distinct ones (up to a
/// bound, so that a sweep of unique prompts is not held whole).
#[derive(Default)]
struct Values {
    first: Vec<String>,
    seen: HashSet<String>,
}

impl Values {
    fn add(&mut self, value: String) {
        if self.seen.len() > MAX_DISTINCT || self.seen.contains(&value) {
            return;
        }
        if self.first.len() < VALUES_SHOWN {
            self.first.push(value.clone());
        }
        self.seen.insert(value);
    }
}

/// What a person reads of a dry run: each input by its user name (its value, or how many
/// values it takes), the first files the run will write and how many more, the grids and the
/// gallery.
struct Summary {
    /// Inputs in the workflow's order: name, and the values the jobs give it.
    inputs: Vec<(String, Values)>,
    files: Vec<String>,
    file_count: usize,
    jobs: usize,
    grids: Grids,
    gallery: Option<PathBuf>,
    /// Whether the manifest asks for a gallery.
    gallery_wanted: bool,
}

impl Summary {
    fn of(prepared: &Prepared, shard: Shard, outputs: &Outputs<'_>, grids: Grids) -> Summary {
        let expansion = &prepared.expansion;
        let total = expansion.job_count();
        let mut values: Vec<(String, Values)> = Vec::new();
        let mut files = Vec::new();
        for job in shard.indices(total).map(|i| expansion.job(i)) {
            for (system, v) in &job.inputs {
                let shown = match v {
                    InputValue::LocalImage(i) => i.written.clone(),
                    InputValue::Value(v) => value_label(v.get()),
                };
                let name = outputs.name(system);
                let i = values
                    .iter()
                    .position(|(n, _)| n == name)
                    .unwrap_or_else(|| {
                        values.push((name.to_owned(), Values::default()));
                        values.len() - 1
                    });
                values[i].1.add(shown);
            }
            if files.len() < FILES_SHOWN {
                for f in outputs.files(&job) {
                    if files.len() < FILES_SHOWN {
                        files.push(match f {
                            Ok(path) => path.display().to_string(),
                            Err(e) => format!("(no name: {e})"),
                        });
                    }
                }
            }
        }
        Summary {
            inputs: values,
            files,
            file_count: shard.jobs_of(total) * outputs.nodes.len(),
            jobs: shard.jobs_of(total),
            grids,
            gallery: gallery_file(prepared),
            gallery_wanted: prepared.file.manifest().output.gallery,
        }
    }

    fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        let cut = |s: &str| {
            let s = s.replace('\n', " ");
            if s.chars().count() > VALUE_CHARS {
                format!("{}…", s.chars().take(VALUE_CHARS - 1).collect::<String>())
            } else {
                s
            }
        };
        let width = self
            .inputs
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0);
        if !self.inputs.is_empty() {
            writeln!(out, "  inputs:")?;
        }
        for (name, values) in &self.inputs {
            let text = if values.seen.len() == 1 {
                cut(&values.first[0])
            } else {
                // A value with a comma is quoted, so the list stays readable.
                let first: Vec<String> = values
                    .first
                    .iter()
                    .map(|v| {
                        if v.contains(',') {
                            format!("{:?}", cut(v))
                        } else {
                            cut(v)
                        }
                    })
                    .collect();
                let more = if values.seen.len() > first.len() {
                    ", …"
                } else {
                    ""
                };
                let count = if values.seen.len() > MAX_DISTINCT {
                    format!("more than {MAX_DISTINCT}")
                } else {
                    values.seen.len().to_string()
                };
                format!("{count} values: {}{more}", first.join(", "))
            };
            writeln!(out, "    {name:<width$}  {text}")?;
        }
        let per_job = self.file_count.checked_div(self.jobs).unwrap_or(0);
        writeln!(
            out,
            "  files: {} ({per_job} per job, one per output node){}",
            self.file_count,
            if self.file_count > self.files.len() {
                format!("; the first {}:", self.files.len())
            } else {
                ":".to_owned()
            }
        )?;
        for f in &self.files {
            writeln!(out, "    {f}")?;
        }
        if self.file_count > self.files.len() {
            writeln!(out, "    and {} more", self.file_count - self.files.len())?;
        }
        match &self.grids {
            Grids::Files(files) if files.is_empty() => {}
            Grids::Files(files) => {
                writeln!(out, "  grids:")?;
                for g in files {
                    writeln!(out, "    {}", g.display())?;
                }
            }
            Grids::NotForSoManyJobs => writeln!(
                out,
                "  grids: none (a run of more than {GALLERY_MAX_JOBS} jobs draws none; `invk-run report` draws them after it)"
            )?,
        }
        if let Some(page) = &self.gallery {
            writeln!(out, "  gallery: {}", page.display())?;
        } else if self.gallery_wanted && self.jobs > GALLERY_MAX_JOBS {
            writeln!(
                out,
                "  gallery: none (a run of more than {GALLERY_MAX_JOBS} jobs writes none; `invk-run report` writes it after it)"
            )?;
        }
        Ok(())
    }
}

/// The batch one enqueue would send, with stand-ins for what only the server knows.
fn payload(prepared: &Prepared, enqueue: &EnqueuePlan) -> Value {
    let placeholder = |i: &crate::manifest::LocalImage| format!("<upload {}>", i.written);
    let models = |_: &str, value: &Value| {
        model_ref(value).map(|name| {
            json!({"key": format!("<resolved from `{name}` at run time>"),
                   "hash": "", "name": name, "base": "any", "type": "main"})
        })
    };
    let options = ConvertOptions {
        batch_id: Some("<batch id>".into()),
        origin: Some("invk-run".into()),
        destination: Some("invk-run:<run id>".into()),
        ..ConvertOptions::default()
    };
    match build_batch(prepared, enqueue, &placeholder, &models, &options) {
        Ok(batch) => json!({"jobs": enqueue.job_indices, "batch": batch}),
        Err(e) => json!({"jobs": enqueue.job_indices, "error": e.to_string()}),
    }
}

/// A JSON object written field by field, lists element by element, laid out as
/// `serde_json::to_string_pretty` (or compact) would lay out the whole.
struct JsonStream<'w, W: Write> {
    out: &'w mut W,
    pretty: bool,
    fields: usize,
}

impl<'w, W: Write> JsonStream<'w, W> {
    fn new(out: &'w mut W, pretty: bool) -> JsonStream<'w, W> {
        JsonStream {
            out,
            pretty,
            fields: 0,
        }
    }

    fn key(&mut self, key: &str) -> std::io::Result<()> {
        let open = if self.fields == 0 { "{" } else { "," };
        let key = serde_json::to_string(key)?;
        if self.pretty {
            write!(self.out, "{open}\n  {key}: ")?;
        } else {
            write!(self.out, "{open}{key}:")?;
        }
        self.fields += 1;
        Ok(())
    }

    /// Writes `value` nested `depth` levels deep.
    fn value(&mut self, value: &impl Serialize, depth: usize) -> std::io::Result<()> {
        if self.pretty {
            let text = serde_json::to_string_pretty(value)?;
            let indent = "  ".repeat(depth);
            for (i, line) in text.lines().enumerate() {
                if i > 0 {
                    write!(self.out, "\n{indent}")?;
                }
                self.out.write_all(line.as_bytes())?;
            }
            Ok(())
        } else {
            serde_json::to_writer(&mut *self.out, value).map_err(std::io::Error::from)
        }
    }

    fn field(&mut self, key: &str, value: &impl Serialize) -> std::io::Result<()> {
        self.key(key)?;
        self.value(value, 1)
    }

    fn list<T: Serialize>(
        &mut self,
        key: &str,
        items: impl Iterator<Item = T>,
    ) -> std::io::Result<()> {
        self.key(key)?;
        self.out.write_all(b"[")?;
        let mut any = false;
        for item in items {
            let sep = if any { "," } else { "" };
            if self.pretty {
                write!(self.out, "{sep}\n    ")?;
            } else {
                self.out.write_all(sep.as_bytes())?;
            }
            self.value(&item, 2)?;
            any = true;
        }
        if any && self.pretty {
            self.out.write_all(b"\n  ")?;
        }
        self.out.write_all(b"]")
    }

    fn end(self) -> std::io::Result<()> {
        if self.fields == 0 {
            self.out.write_all(b"{")?;
        }
        if self.pretty && self.fields > 0 {
            self.out.write_all(b"\n")?;
        }
        self.out.write_all(b"}\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_lays_out_json_as_serde_json_does() {
        let jobs = vec![
            json!({"index": 0, "inputs": {"a": [1, 2]}}),
            json!({"index": 1}),
        ];
        for pretty in [true, false] {
            let mut buf = Vec::new();
            let mut doc = JsonStream::new(&mut buf, pretty);
            doc.field("manifest", &"m.yaml").expect("write");
            doc.list("jobs", jobs.iter()).expect("write");
            doc.list("enqueues", std::iter::empty::<Value>())
                .expect("write");
            doc.end().expect("write");
            let whole = json!({"manifest": "m.yaml", "jobs": jobs, "enqueues": []});
            let expected = if pretty {
                serde_json::to_string_pretty(&whole).expect("json")
            } else {
                serde_json::to_string(&whole).expect("json")
            };
            assert_eq!(String::from_utf8(buf).expect("utf-8"), expected + "\n");
        }
    }
}
