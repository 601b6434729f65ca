//! [`ManifestFile::expand`]: checking a manifest against its workflow while making every job once.

use std::collections::{HashMap, HashSet};

use super::super::catalog::InputCatalog;
use super::super::diagnostic::At;
use super::super::diagnostic::{Diagnostics, ManifestError};
use super::super::dynamic::WildcardDir;
use super::super::file::ManifestFile;
use super::super::model::{Axis, DynamicAxis, ReplaceAxis};
use super::super::source::{Segment, YamlPath};
use super::compile::compile_templates;
use super::inputs::{InputKeys, SweepKeys};
use super::job_checks::JobChecks;
use super::jobs::Jobs;
use super::output_check::check_output_dir;
use super::problem::Checking;
use super::sweep::{Limits, expand};
use super::{ExpandOptions, Expansion};

impl ManifestFile {
    /// Checks the manifest against the workflow's inputs and makes every job once.
    ///
    /// # Errors
    /// Every problem found here and while loading, each with its line and column.
    pub fn expand(
        &self,
        catalog: &dyn InputCatalog,
        options: &ExpandOptions,
    ) -> Result<Expansion, ManifestError> {
        let m = &self.manifest;
        let mut diags = Diagnostics::new(&self.path, &self.source);
        for (location, message, hint) in &self.pending {
            diags.push_at(*location, message.clone(), hint.clone());
        }

        let input_keys = InputKeys::resolve(&m.inputs, catalog, &mut diags);
        let wildcards = self.open_wildcards(&mut diags);
        let input_prompts = input_prompts(&m.inputs, &mut diags);
        let limits = Limits {
            runs: m.runs,
            base_dir: &self.dir,
            max_jobs: options.max_jobs,
            manifest_seed: m.seed.unwrap_or(0),
            wildcards: wildcards.as_ref(),
            input_prompts: &input_prompts,
        };
        let expanded = expand(&m.sweep, limits, &mut diags);
        let sweep_keys = SweepKeys::resolve(&expanded, catalog, &mut diags);
        check_replace_targets(
            &expanded,
            &m.sweep,
            &input_keys,
            &sweep_keys,
            catalog,
            &mut diags,
        );
        let (templates, used) = compile_templates(&input_keys, &expanded, &m.output, &mut diags);
        let refused = sweep_keys.report_unused(&expanded, &templates, &used, &mut diags);
        if !self.broken.contains(&"output") && !self.broken.contains(&"sweep") {
            let sweep = super::super::grid_check::SweepKeys {
                expanded: &expanded,
                refused: &refused,
                catalog,
            };
            super::super::grid_check::check(&m.output, &sweep, &mut diags);
        }

        let mut jobs = Jobs::new(self, catalog, expanded, &input_keys, &sweep_keys.inputs);
        let mut sink = Checking {
            diags: &mut diags,
            images: HashMap::new(),
            spent: HashSet::new(),
        };
        if jobs.count > 0 {
            jobs.keep_what_every_job_shares(&templates, &mut sink);
        }
        if jobs.templates_usable {
            check_output_dir(&jobs, &templates, &m.output, &mut *sink.diags);
        }
        let checks = JobChecks::new(self, catalog, &input_keys, &jobs, &templates, &sink);
        for index in 0..jobs.count {
            let job = jobs.build(&templates, index, &mut sink);
            checks.check(&jobs, &templates, job, &mut sink);
        }

        diags.into_result(jobs.count)?;
        Ok(Expansion {
            inputs: (*jobs.infos).clone(),
            jobs,
            templates,
            output: m.output.clone(),
            file: self.path.clone(),
            source: self.source.clone(),
        })
    }
}

/// The inputs written as `{dynamic: ...}`; a malformed one goes to `diags`.
fn input_prompts(
    inputs: &serde_json::Map<String, serde_json::Value>,
    diags: &mut Diagnostics<'_>,
) -> Vec<(String, DynamicAxis)> {
    let mut out = Vec::new();
    for (key, value) in inputs {
        match DynamicAxis::of(value) {
            Some(Ok(axis)) => out.push((key.clone(), axis)),
            Some(Err(message)) => {
                diags.push(&YamlPath::keys(&["inputs", key]), At::Value, message, None)
            }
            None => {}
        }
    }
    out
}

impl ManifestFile {
    /// The `wildcards` folder, listed; a problem goes to `diags`.
    fn open_wildcards(&self, diags: &mut Diagnostics<'_>) -> Option<WildcardDir> {
        let written = self.manifest.wildcards.as_ref()?;
        match WildcardDir::open(&self.dir.join(written)) {
            Ok(dir) => Some(dir),
            Err(e) => {
                diags.push(
                    &YamlPath::keys(&["wildcards"]),
                    At::Value,
                    e.message,
                    Some(format!(
                        "the folder is relative to the manifest's folder `{}`",
                        self.dir.display()
                    )),
                );
                None
            }
        }
    }
}

/// Each `{replace: [...], in: INPUT}` axis names an input the manifest sets (under `inputs` or as
/// a sweep key): its text is what is edited.
fn check_replace_targets(
    expanded: &super::sweep::Expanded,
    sweep: &crate::manifest::Sweep,
    input_keys: &InputKeys<'_>,
    sweep_keys: &SweepKeys,
    catalog: &dyn InputCatalog,
    diags: &mut Diagnostics<'_>,
) {
    for (_, _, path) in expanded.replace_columns() {
        let Some(axis) = replace_axis(sweep, path) else {
            continue;
        };
        let at = path.key("in");
        match catalog.resolve(&axis.input) {
            Err(e) => diags.push(&at, At::Value, e.message, e.hint),
            Ok(info) => {
                let set = input_keys.known.contains_key(&info.system_name)
                    || sweep_keys
                        .inputs
                        .values()
                        .any(|i| i.system_name == info.system_name);
                if !set {
                    diags.push(
                        &at,
                        At::Value,
                        format!(
                            "input `{}` is not set by the manifest, so there is no text to replace words in",
                            axis.input
                        ),
                        Some(format!(
                            "set it under `inputs` (e.g. `{}: a photo of a {}`)",
                            axis.input, axis.replace[0]
                        )),
                    );
                }
            }
        }
    }
}

/// The replace axis written at `path` (`sweep.matrix.KEY` or `sweep.zip[...].KEY`).
pub(super) fn replace_axis<'s>(
    sweep: &'s crate::manifest::Sweep,
    path: &YamlPath,
) -> Option<&'s ReplaceAxis> {
    let key = path.last_step();
    let in_zip = path.segments().get(1) == Some(&Segment::Key("zip".into()));
    let axis = if in_zip {
        sweep.zip.groups().into_iter().find_map(|(i, g)| {
            let group = match i {
                Some(i) => YamlPath::keys(&["sweep", "zip"]).index(i),
                None => YamlPath::keys(&["sweep", "zip"]),
            };
            (group == path.parent()).then(|| g.get(&key)).flatten()
        })
    } else {
        sweep.matrix.get(&key)
    };
    match axis {
        Some(Axis::Replace(r)) => Some(r),
        _ => None,
    }
}
