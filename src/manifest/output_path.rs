//! Output paths: `output.dir` and `output.name` rendered for one produced file, and the run's
//! output folder (`output.dir` alone, rendered once).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::diagnostic::{At, Diagnostics, ManifestError};
use super::expansion::Expansion;
use super::job::Job;
use super::output::{OutputPath, OutputVars, check_name};
use super::scope::{OutputScope, OutputValues, Scope};
use super::source::YamlPath;
use super::template::Context;

impl Expansion {
    /// The output path of one file a job produced.
    ///
    /// # Errors
    /// A template fails for these values (for example a variable that only some jobs have), or
    /// the name would leave `output.dir` (a node label with `..`); the error points at the template.
    pub fn output_path(&self, job: &Job, vars: &OutputVars) -> Result<OutputPath, ManifestError> {
        let vars = OutputValues::new(vars.clone());
        let scope = Scope::output(
            &self.jobs.shared,
            job.index,
            job.run,
            job.sweep.clone(),
            OutputScope {
                vars: vars.clone(),
                inputs: Some((job.inputs.clone(), self.jobs.infos.clone())),
            },
        );
        let ctx = Context::scope(scope);
        let mut diags = Diagnostics::new(&self.file, &self.source);
        let dir = self.render_dir(&vars, &mut diags);
        let path = YamlPath::keys(&["output", "name"]);
        let name = match self.templates.render(&path, &self.output.name, &ctx) {
            Ok(s) => Some(s),
            Err(p) => {
                diags.push(&path, At::Value, p.message, p.hint);
                None
            }
        };
        if let Some(name) = &name {
            if let Err(message) = check_name(name) {
                diags.push(&path, At::Value, message.to_string(), None);
            }
        }
        match (dir, name) {
            (Some(dir), Some(name)) if diags.is_empty() => Ok(OutputPath {
                dir,
                name: PathBuf::from(name),
            }),
            _ => {
                diags.into_result(0)?;
                Err(ManifestError::Invalid {
                    diagnostics: Vec::new(),
                })
            }
        }
    }

    /// The run's output folder: `output.dir` rendered for the run's `date` and `time` (relative
    /// folders joined to the manifest's folder). It is the same for every job and file.
    ///
    /// # Errors
    /// The template fails (validation rendered it already, so only for a `date`/`time` that
    /// breaks it).
    pub fn output_dir(&self, date: &str, time: &str) -> Result<PathBuf, ManifestError> {
        let vars = OutputValues::new(OutputVars {
            date: date.to_owned(),
            time: time.to_owned(),
            ..OutputVars::example()
        });
        let mut diags = Diagnostics::new(&self.file, &self.source);
        match self.render_dir(&vars, &mut diags) {
            Some(dir) if diags.is_empty() => Ok(dir),
            _ => {
                diags.into_result(0)?;
                Err(ManifestError::Invalid {
                    diagnostics: Vec::new(),
                })
            }
        }
    }

    fn render_dir(&self, vars: &Arc<OutputValues>, diags: &mut Diagnostics<'_>) -> Option<PathBuf> {
        let path = YamlPath::keys(&["output", "dir"]);
        let ctx = Context::scope(Scope::run_level(&self.jobs.shared, vars.clone()));
        match self.templates.render(&path, &self.output.dir, &ctx) {
            Ok(dir) => {
                let dir = Path::new(&dir);
                Some(if dir.is_absolute() {
                    dir.to_path_buf()
                } else {
                    self.jobs.dir.join(dir)
                })
            }
            Err(p) => {
                diags.push(&path, At::Value, p.message, p.hint);
                None
            }
        }
    }
}
