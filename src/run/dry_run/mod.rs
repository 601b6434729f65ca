//! `invk-run validate` and `--dry-run`: what a run would do, with nothing sent.
//!
//! Neither holds every job: validation made each job once already, and the dry run prints its
//! document as it goes, the jobs one at a time and the enqueues a chunk of jobs at a time.
//! The document names inputs as the manifest does (their user names) and lists the files each
//! job will write and the grids; a person also gets a summary on stderr: the inputs, the first
//! files, how many more, the grids and the gallery.

mod json_stream;
mod outputs;
mod summary;

use std::io::Write;

use serde_json::{Value, json};

use super::finish::GALLERY_MAX_JOBS;
use super::manifest_source::ManifestSource;
use super::needs::model_ref;
use super::outcome::ManifestOutcome;
use super::prepare::Prepared;
use super::progress::{ReportMode, Reporter};
use super::settings::RunSettings;
use super::shard::Shard;
use super::submit::build_batch;
use crate::manifest::{EnqueuePlan, Plan};
use crate::workflow::ConvertOptions;
use json_stream::JsonStream;
use outputs::{Grids, Outputs, gallery_file, grid_files};
use summary::Summary;

/// The dry run groups this many consecutive jobs at a time into enqueues.
const DRY_RUN_CHUNK: usize = 1000;

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
