//! Checking a manifest against its workflow's inputs while making its jobs: input names, values,
//! image files, templates and required inputs, all problems at once.
//!
//! Jobs are never all in memory: [`Expansion::job`] makes job *i* from *i* (its sweep
//! combination, then its values). What does not depend on the job is worked out once: a value
//! that is no template, or a template that reads only `vars` and `manifest`, is rendered and
//! checked once per place in the manifest, and every job reuses the result. Validation makes
//! every job once, with the same code, and reports each problem once with the jobs it affects.
//!
//! The parts, in the order [`ManifestFile::expand`](super::ManifestFile::expand) uses them:
//!
//! ```text
//! sweep/         `sweep` and `runs` -> the combinations, one at a time (values, tables, globs,
//!                ranges, seeds; include/exclude)
//! inputs.rs      keys under `inputs` and sweep keys, looked up in the workflow's inputs
//! compile.rs     every templated string compiled once, and the names templates read
//! jobs.rs        how job i is made from combination i, and what every job shares, kept once
//! output_check.rs  `output.dir` (one folder per run) and `output.name` (inside it)
//! job_checks.rs  what validation checks in each job besides its values
//! problem.rs     a problem found while making a job, and where it goes (quiet, or diagnostics)
//! expand.rs      `ManifestFile::expand`: the steps above, in order
//! ```

mod compile;
mod expand;
mod inputs;
mod job_checks;
mod jobs;
mod output_check;
mod problem;
pub(crate) mod sweep;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_prompts;

use std::path::PathBuf;

use indexmap::IndexMap;

use super::catalog::InputInfo;
use super::job::Job;
use super::model::Output;
use super::source::SourceMap;
use super::template::Templates;
pub(crate) use inputs::RefusedKey;
use jobs::Jobs;
use problem::Quiet;

/// Limits of an expansion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpandOptions {
    /// Refuse a manifest that makes more jobs than this (`--max-jobs`).
    pub max_jobs: u64,
}

impl Default for ExpandOptions {
    fn default() -> ExpandOptions {
        ExpandOptions { max_jobs: 10_000 }
    }
}

/// The jobs of a valid manifest, made one at a time, with what the runner needs to name their
/// outputs.
#[derive(Debug)]
pub struct Expansion {
    /// Every input some job sets, by system name, in the workflow's input order.
    pub inputs: IndexMap<String, InputInfo>,
    pub(crate) jobs: Jobs,
    pub(crate) templates: Templates,
    pub(crate) output: Output,
    pub(crate) file: PathBuf,
    pub(crate) source: SourceMap,
}

impl Expansion {
    /// How many jobs.
    #[must_use]
    pub fn job_count(&self) -> usize {
        self.jobs.count
    }

    /// Job `index` (0-based, `index < job_count()`), as the run submits it. Validation made every
    /// job already, so this cannot fail.
    ///
    /// # Panics
    /// When `index` is out of range.
    #[must_use]
    pub fn job(&self, index: usize) -> Job {
        assert!(
            index < self.jobs.count,
            "job {index} of a manifest with {} jobs",
            self.jobs.count
        );
        self.jobs.build(&self.templates, index, &mut Quiet)
    }

    /// Every job, in order, each made when the iterator reaches it.
    pub fn jobs(&self) -> impl ExactSizeIterator<Item = Job> + '_ {
        (0..self.job_count()).map(|i| self.job(i))
    }

    /// The `output` section.
    #[must_use]
    pub fn output(&self) -> &Output {
        &self.output
    }
}
