//! `invk-run validate` and `--dry-run`: what a run would do, with nothing sent.

use serde_json::{Value, json};

use super::batch::{build_batch, model_ref};
use super::prepare::Prepared;
use super::report::{ReportMode, Reporter};
use super::settings::RunSettings;
use super::{ManifestOutcome, ManifestSource};
use crate::workflow::ConvertOptions;

/// Prints the check's result (validate) or the jobs and payloads (dry run) and returns an
/// outcome with nothing run.
pub fn report(
    prepared: &Prepared,
    source: &ManifestSource,
    settings: &RunSettings,
    reporter: &Reporter,
) -> ManifestOutcome {
    let plan = &prepared.plan;
    let line = format!(
        "{}: valid: {} job{} in {} enqueue{} -> {}",
        source.display_name,
        plan.job_count(),
        if plan.job_count() == 1 { "" } else { "s" },
        plan.enqueue_count(),
        if plan.enqueue_count() == 1 { "" } else { "s" },
        prepared.output_dir.display()
    );
    if settings.validate_only {
        match reporter.mode() {
            ReportMode::Json => println!(
                "{}",
                json!({"event": "valid", "manifest": source.display_name, "jobs": plan.job_count(),
                       "enqueues": plan.enqueue_count(), "output_dir": prepared.output_dir})
            ),
            ReportMode::Human => eprintln!("{line}"),
            ReportMode::Quiet => {}
        }
    } else {
        let placeholder = |i: &crate::manifest::LocalImage| format!("<upload {}>", i.written);
        let payloads: Vec<Value> = plan
            .enqueues
            .iter()
            .map(|enqueue| {
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
            })
            .collect();
        let doc = json!({
            "manifest": source.display_name,
            "output_dir": prepared.output_dir,
            "jobs": plan.jobs,
            "enqueues": payloads,
        });
        if reporter.mode() != ReportMode::Quiet {
            eprintln!("{line}");
        }
        let text = if reporter.mode() == ReportMode::Json {
            serde_json::to_string(&doc)
        } else {
            serde_json::to_string_pretty(&doc)
        };
        println!("{}", text.unwrap_or_default());
    }
    ManifestOutcome {
        manifest: source.display_name.clone(),
        output_dir: prepared.output_dir.clone(),
        jobs: plan.job_count(),
        completed: 0,
        failures: Vec::new(),
        not_run: 0,
        files: Vec::new(),
        seconds: 0.0,
        interrupted: false,
    }
}
