//! `invk-run validate` and `--dry-run`: what a run would do, with nothing sent.
//!
//! Neither holds every job: validation made each job once already, and the dry run prints its
//! document as it goes, the jobs one at a time and the enqueues a chunk of jobs at a time.

use std::io::Write;

use serde::Serialize;
use serde_json::{Value, json};

use super::batch::{build_batch, model_ref};
use super::manifest_source::ManifestSource;
use super::outcome::ManifestOutcome;
use super::prepare::Prepared;
use super::progress::{ReportMode, Reporter};
use super::settings::RunSettings;
use crate::manifest::{EnqueuePlan, Plan};
use crate::workflow::ConvertOptions;

/// The dry run groups this many consecutive jobs at a time into enqueues.
pub(super) const DRY_RUN_CHUNK: usize = 1000;

/// Prints the check's result (validate) or the jobs and payloads (dry run) and returns an
/// outcome with nothing run.
pub(super) fn report(
    prepared: &Prepared,
    source: &ManifestSource,
    settings: &RunSettings,
    reporter: &Reporter,
) -> ManifestOutcome {
    let jobs = prepared.expansion.job_count();
    let line = format!(
        "{}: valid: {jobs} job{} -> {}",
        source.display_name,
        if jobs == 1 { "" } else { "s" },
        prepared.output_dir.display()
    );
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
        if reporter.mode() != ReportMode::Quiet {
            eprintln!("{line}");
        }
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        // A closed pipe (`| head`) ends the listing; nothing else can fail here.
        let _ = write_plan(
            &mut out,
            prepared,
            source,
            reporter.mode() != ReportMode::Json,
        )
        .and_then(|()| out.flush());
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

/// Writes `{"manifest", "output_dir", "jobs": [...], "enqueues": [...]}`, each job and enqueue
/// as soon as it is made.
fn write_plan(
    out: &mut impl Write,
    prepared: &Prepared,
    source: &ManifestSource,
    pretty: bool,
) -> std::io::Result<()> {
    let expansion = &prepared.expansion;
    let mut doc = JsonStream::new(out, pretty);
    doc.field("manifest", &source.display_name)?;
    doc.field("output_dir", &prepared.output_dir)?;
    doc.list("jobs", expansion.jobs())?;
    let enqueues = (0..expansion.job_count())
        .step_by(DRY_RUN_CHUNK)
        .flat_map(|start| {
            let end = (start + DRY_RUN_CHUNK).min(expansion.job_count());
            let chunk = Plan::from_jobs(
                (start..end).map(|i| expansion.job(i)).collect(),
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
    match build_batch(
        &prepared.workflow,
        &prepared.expansion.inputs,
        enqueue,
        &placeholder,
        &models,
        &options,
    ) {
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
