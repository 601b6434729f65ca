//! The output section's templates: `output.dir` is one folder per run, and `output.name` a path
//! inside it.

use super::super::diagnostic::{At, Diagnostics};
use super::super::model::Output;
use super::super::output::{OutputVars, check_name};
use super::super::scope::{OutputValues, RESERVED, Scope};
use super::super::source::YamlPath;
use super::super::template::{Context, Templates, is_builtin};
use super::jobs::Jobs;
use super::problem::Problem;

/// The variables of `output.dir`: it is one folder per run.
const OUTPUT_DIR_NAMES: &[&str] = &["vars", "manifest", "source", "date", "time"];

/// The variables of `output.name` that are the same for every job (with stand-in values).
pub(super) const OUTPUT_NAME_JOB_FREE: &[&str] = &[
    "vars", "manifest", "source", "date", "time", "node", "image", "item", "batch",
];

/// `output.dir` is one folder per run: it may read only `vars`, `manifest`, `date` and `time`.
/// Checks that, and renders it once; whether it is usable.
pub(super) fn check_output_dir(
    jobs: &Jobs,
    templates: &Templates,
    output: &Output,
    diags: &mut Diagnostics<'_>,
) -> bool {
    let path = YamlPath::keys(&["output", "dir"]);
    let varying: Vec<String> = templates
        .top_level_names(&path)
        .into_iter()
        .filter(|n| {
            !is_builtin(n)
                && !OUTPUT_DIR_NAMES.contains(&n.as_str())
                && (RESERVED.contains(&n.as_str()) || jobs.expanded.keys.contains_key(n))
        })
        .collect();
    if !varying.is_empty() {
        diags.push(
            &path,
            At::Value,
            "`output.dir` changes from job to job or file to file; it must be one folder (it holds the run's journal and summary)",
            Some("use only `vars`, `manifest`, `date` and `time` in `output.dir`, and put per-job folders in `output.name`, e.g. `name: \"{{ animal }}/{{ job.number }}\"`".into()),
        );
        return false;
    }
    if templates.failed(&path) {
        return false;
    }
    let scope = Scope::run_level(&jobs.shared, OutputValues::new(OutputVars::example()));
    match templates.render(&path, &output.dir, &Context::scope(scope)) {
        Ok(rendered) if rendered.trim().is_empty() => {
            diags.push(
                &path,
                At::Value,
                "`output.dir` renders to an empty path",
                Some("`output.name` is a path inside `output.dir`; put folders that lie elsewhere into `output.dir`".into()),
            );
            false
        }
        Ok(_) => true,
        Err(p) => {
            diags.push(&path, At::Value, p.message, p.hint);
            false
        }
    }
}

/// Renders `output.name` with stand-in output values and checks that it stays inside
/// `output.dir`.
pub(super) fn output_name_problems(
    templates: &Templates,
    source: &str,
    ctx: &Context,
) -> Vec<Problem> {
    let path = YamlPath::keys(&["output", "name"]);
    match templates.render(&path, source, ctx) {
        Ok(rendered) => match check_name(&rendered) {
            Ok(()) => Vec::new(),
            Err(message) => vec![Problem {
                path,
                at: At::Value,
                kind: "path".into(),
                message: message.to_string(),
                hint: Some("`output.name` is a path inside `output.dir`; put folders that lie elsewhere into `output.dir`".into()),
                over_budget: false,
            }],
        },
        Err(p) => vec![Problem::template(&path, p)],
    }
}
