//! What validation checks in each job besides the values of its inputs: the templates under
//! `inputs` for no input of the workflow, required inputs left empty, and `output.name`.

use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

use super::super::catalog::InputCatalog;
use super::super::diagnostic::At;
use super::super::file::ManifestFile;
use super::super::job::Job;
use super::super::output::OutputVars;
use super::super::scope::{OutputScope, OutputValues, Scope};
use super::super::source::YamlPath;
use super::super::template::{Context, Templates};
use super::compile::reads_only;
use super::inputs::InputKeys;
use super::jobs::{JOB_FREE, Jobs, LazyContext};
use super::output_check::{OUTPUT_NAME_JOB_FREE, output_name_problems};
use super::problem::{Checking, Problem, Sink};

/// The checks of each job, with what is the same in every job worked out once.
pub(super) struct JobChecks<'m> {
    /// Values under `inputs` for no input of the workflow, with their template problems when
    /// those are the same in every job.
    unknown: Vec<(&'m YamlPath, &'m Value, Option<Vec<Problem>>)>,
    /// Required inputs the workflow leaves empty: (system name, user name).
    required: Vec<(String, String)>,
    /// Where a missing required input is reported: on `inputs:`, or on the whole manifest.
    required_at: At,
    /// `output.name` (when the templates can be trusted), with its problems when those are the
    /// same in every job.
    output_name: Option<(&'m str, Option<Vec<Problem>>)>,
    /// Stand-in output values for rendering `output.name`.
    example: Arc<OutputValues>,
}

impl<'m> JobChecks<'m> {
    pub(super) fn new(
        file: &'m ManifestFile,
        catalog: &dyn InputCatalog,
        input_keys: &'m InputKeys<'m>,
        jobs: &Jobs,
        templates: &Templates,
        sink: &Checking<'_, '_>,
    ) -> JobChecks<'m> {
        let name_path = YamlPath::keys(&["output", "name"]);
        let output_name = jobs.templates_usable.then(|| {
            let name = file.manifest.output.name.as_str();
            let fixed = templates
                .reads_only(&name_path, OUTPUT_NAME_JOB_FREE)
                .then(|| {
                    let scope = Scope::output(
                        &jobs.shared,
                        0,
                        0,
                        IndexMap::new(),
                        OutputScope {
                            vars: OutputValues::new(OutputVars::example()),
                            inputs: None,
                        },
                    );
                    output_name_problems(templates, name, &Context::scope(scope))
                });
            (name, fixed)
        });
        let required: Vec<(String, String)> = catalog
            .missing_required()
            .into_iter()
            .map(|system| {
                let user = catalog.user_name(&system).unwrap_or_else(|| system.clone());
                (system, user)
            })
            .collect();
        let required_at = if file.source.contains(&YamlPath::keys(&["inputs"])) {
            At::Key
        } else {
            At::Value
        };
        let unknown = input_keys
            .unknown
            .iter()
            .map(|(path, value)| {
                let fixed = reads_only(templates, value, path, JOB_FREE).then(|| {
                    let mut ctx = LazyContext::new(|| {
                        Context::scope(Scope::job(&jobs.shared, 0, 0, Some(IndexMap::new())))
                    });
                    jobs.render_value(templates, value, path, &mut ctx, sink)
                        .err()
                        .unwrap_or_default()
                });
                (path, *value, fixed)
            })
            .collect();
        JobChecks {
            unknown,
            required,
            required_at,
            output_name,
            example: OutputValues::new(OutputVars::example()),
        }
    }

    /// Checks `job` (just made by `jobs`); problems go to `sink`.
    pub(super) fn check(
        &self,
        jobs: &Jobs,
        templates: &Templates,
        job: Job,
        sink: &mut Checking<'_, '_>,
    ) {
        let index = job.index;
        for (path, value, fixed) in &self.unknown {
            let problems = match fixed {
                Some(p) => p.clone(),
                None => {
                    let mut ctx = LazyContext::new(|| {
                        Context::scope(Scope::job(
                            &jobs.shared,
                            index,
                            job.run,
                            Some(job.sweep.clone()),
                        ))
                    });
                    jobs.render_value(templates, value, path, &mut ctx, sink)
                        .err()
                        .unwrap_or_default()
                }
            };
            for p in &problems {
                sink.report(index, p);
            }
        }
        for (system, user) in &self.required {
            if !job.inputs.contains_key(system) {
                let path = YamlPath::keys(&["inputs", system]);
                sink.diags.push_job(index, &path, self.required_at, "required", || {
                    (
                        format!("required input `{user}` ({system}) has no value"),
                        Some(format!("the workflow leaves it empty; set it under `inputs:` as `{user}: VALUE`")),
                    )
                });
            }
        }
        if let Some((name, fixed)) = &self.output_name {
            let name_path = YamlPath::keys(&["output", "name"]);
            let problems = match fixed {
                Some(p) => p.clone(),
                None if sink.spent(&name_path) => Vec::new(),
                None => {
                    let Job {
                        index,
                        run,
                        inputs,
                        sweep,
                        ..
                    } = job;
                    let scope = Scope::output(
                        &jobs.shared,
                        index,
                        run,
                        sweep,
                        OutputScope {
                            vars: self.example.clone(),
                            inputs: Some((inputs, jobs.infos.clone())),
                        },
                    );
                    output_name_problems(templates, name, &Context::scope(scope))
                }
            };
            for p in &problems {
                sink.report(index, p);
            }
        }
    }
}
