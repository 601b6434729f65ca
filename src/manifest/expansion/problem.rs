//! A problem found while making one job, and where the problems of each job go: nowhere when
//! the run makes the jobs of a valid manifest, into diagnostics when validation does.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::super::diagnostic::{At, Diagnostics};
use super::super::job::InputValue;
use super::super::source::YamlPath;

/// A problem found while making one job.
#[derive(Debug, Clone)]
pub(super) struct Problem {
    pub(super) path: YamlPath,
    pub(super) at: At,
    /// Problems of the same kind at the same place are one diagnostic.
    pub(super) kind: String,
    pub(super) message: String,
    pub(super) hint: Option<String>,
    /// A template that ran out of its budget: not rendered again.
    pub(super) over_budget: bool,
}

impl Problem {
    pub(super) fn template(path: &YamlPath, p: super::super::template::TemplateProblem) -> Problem {
        Problem {
            path: path.clone(),
            at: At::Value,
            kind: "template".into(),
            message: p.message,
            hint: p.hint,
            over_budget: p.over_budget,
        }
    }
}

/// Where the problems of each job go.
pub(super) trait Sink {
    fn report(&mut self, job: usize, problem: &Problem);
    /// Whether a local image exists (checked once per path).
    fn image_exists(&mut self, path: &Path) -> bool;
    /// Whether the template at `path` is not to be rendered again (it ran out of its budget).
    fn spent(&self, path: &YamlPath) -> bool;
}

/// Making jobs of a valid manifest: nothing to report.
pub(super) struct Quiet;

impl Sink for Quiet {
    fn report(&mut self, _: usize, _: &Problem) {}
    fn image_exists(&mut self, _: &Path) -> bool {
        true
    }
    fn spent(&self, _: &YamlPath) -> bool {
        false
    }
}

/// Validation: problems become diagnostics.
pub(super) struct Checking<'d, 'a> {
    pub(super) diags: &'d mut Diagnostics<'a>,
    pub(super) images: HashMap<PathBuf, bool>,
    pub(super) spent: HashSet<YamlPath>,
}

impl Sink for Checking<'_, '_> {
    fn report(&mut self, job: usize, p: &Problem) {
        if p.over_budget {
            // Reported once, without a job count: the template is not rendered again.
            if self.spent.insert(p.path.clone()) {
                self.diags
                    .push(&p.path, p.at, p.message.clone(), p.hint.clone());
            }
            return;
        }
        self.diags.push_job(job, &p.path, p.at, &p.kind, || {
            (p.message.clone(), p.hint.clone())
        });
    }

    fn image_exists(&mut self, path: &Path) -> bool {
        *self
            .images
            .entry(path.to_path_buf())
            .or_insert_with(|| path.is_file())
    }

    fn spent(&self, path: &YamlPath) -> bool {
        self.spent.contains(path)
    }
}
/// Reports the problems of `result` for job `job`; the value, when there is one.
pub(super) fn report(
    result: &Result<InputValue, Vec<Problem>>,
    job: usize,
    sink: &mut dyn Sink,
) -> Option<InputValue> {
    match result {
        Ok(v) => Some(v.clone()),
        Err(problems) => {
            for p in problems {
                sink.report(job, p);
            }
            None
        }
    }
}
