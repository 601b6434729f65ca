//! Output paths: `output.dir` and `output.name` rendered for one produced file.

use std::path::{Path, PathBuf};

use super::diagnostic::{At, Diagnostics, ManifestError};
use super::job::Job;
use super::output::{OutputPath, OutputVars, check_name};
use super::source::YamlPath;
use super::template::Context;
use super::validate::Expansion;

impl Expansion {
    /// The output path of one file a job produced.
    ///
    /// # Errors
    /// A template fails for these values (for example a variable that only some jobs have), or
    /// the name would leave `output.dir` (a node label with `..`); the error points at the template.
    pub fn output_path(&self, job: &Job, vars: &OutputVars) -> Result<OutputPath, ManifestError> {
        let ctx = Context::new(self.contexts.output(job, &self.inputs, vars));
        let mut diags = Diagnostics::new(&self.file, &self.source);
        let mut render = |key: &str, source: &str| {
            let path = YamlPath::keys(&["output", key]);
            match self.templates.render(&path, source, &ctx) {
                Ok(s) => Some(s),
                Err(p) => {
                    diags.push(&path, At::Value, p.message, p.hint);
                    None
                }
            }
        };
        let dir = render("dir", &self.output.dir);
        let name = render("name", &self.output.name);
        if let Some(name) = &name {
            if let Err(message) = check_name(name) {
                diags.push(
                    &YamlPath::keys(&["output", "name"]),
                    At::Value,
                    message,
                    None,
                );
            }
        }
        match (dir, name) {
            (Some(dir), Some(name)) if diags.is_empty() => {
                let dir = Path::new(&dir);
                let dir = if dir.is_absolute() {
                    dir.to_path_buf()
                } else {
                    self.contexts.dir.join(dir)
                };
                Ok(OutputPath {
                    dir,
                    name: PathBuf::from(name),
                })
            }
            _ => {
                diags.into_result(0)?;
                Err(ManifestError::Invalid {
                    diagnostics: Vec::new(),
                })
            }
        }
    }
}
