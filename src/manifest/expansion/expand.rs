//! [`ManifestFile::expand`]: checking a manifest against its workflow while making every job once.

use std::collections::{HashMap, HashSet};

use super::super::catalog::InputCatalog;
use super::super::diagnostic::{Diagnostics, ManifestError};
use super::super::file::ManifestFile;
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
        let limits = Limits {
            runs: m.runs,
            base_dir: &self.dir,
            max_jobs: options.max_jobs,
            manifest_seed: m.seed.unwrap_or(0),
        };
        let expanded = expand(&m.sweep, limits, &mut diags);
        let sweep_keys = SweepKeys::resolve(&expanded, catalog, &mut diags);
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
