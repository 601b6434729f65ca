//! `invk-run validate --json`: one JSON object per manifest on stdout, valid or not, with its
//! errors (the shape is documented in `docs/json.md`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::manifest::{Diagnostic, ManifestError};
use crate::run::{ManifestOutcome, RunError};

/// What `validate --json` says about one manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Validation {
    /// The manifest, as named on the command line.
    pub file: String,
    /// Whether it can run.
    pub valid: bool,
    /// How many jobs it expands to (`null` when invalid).
    pub jobs: Option<usize>,
    /// The folder it writes to (`null` when invalid).
    pub output_dir: Option<PathBuf>,
    /// Its problems, in file order (empty when valid).
    pub errors: Vec<ValidationError>,
}

/// One problem of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationError {
    /// The file the problem is in (the manifest, or a file it names).
    pub file: String,
    /// Line, from 1 (`null` for a problem with no place in the file, such as a missing file).
    pub line: Option<usize>,
    /// Column, from 1 (`null` as `line`).
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// What to do about it, when there is something to say.
    pub hint: Option<String>,
}

impl Validation {
    /// A manifest that checked out.
    #[must_use]
    pub fn valid(outcome: &ManifestOutcome) -> Validation {
        Validation {
            file: outcome.manifest.clone(),
            valid: true,
            jobs: Some(outcome.jobs),
            output_dir: Some(outcome.output_dir.clone()),
            errors: Vec::new(),
        }
    }

    /// A manifest that did not: its diagnostics, or the one error that stopped the check.
    #[must_use]
    pub fn invalid(file: &Path, err: &RunError) -> Validation {
        let errors = match err {
            RunError::Manifest(ManifestError::Invalid { diagnostics }) => {
                diagnostics.iter().map(ValidationError::from).collect()
            }
            other => vec![ValidationError {
                file: file.display().to_string(),
                line: None,
                column: None,
                message: crate::error_chain::error_chain(other),
                hint: None,
            }],
        };
        Validation {
            file: file.display().to_string(),
            valid: false,
            jobs: None,
            output_dir: None,
            errors,
        }
    }
}

impl From<&Diagnostic> for ValidationError {
    fn from(d: &Diagnostic) -> ValidationError {
        ValidationError {
            file: d.file.display().to_string(),
            line: Some(d.line),
            column: Some(d.col),
            message: d.message.clone(),
            hint: d.hint.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_keep_their_place_and_other_errors_have_none() {
        let diagnostic = Diagnostic {
            file: "m.yaml".into(),
            line: 3,
            col: 5,
            message: "unknown key `wrkflow`".into(),
            hint: Some("did you mean `workflow`?".into()),
        };
        let invalid = RunError::Manifest(ManifestError::Invalid {
            diagnostics: vec![diagnostic],
        });
        let got = Validation::invalid(Path::new("m.yaml"), &invalid);
        assert_eq!(
            serde_json::to_value(&got).expect("json"),
            serde_json::json!({"file": "m.yaml", "valid": false, "jobs": null, "output_dir": null,
                "errors": [{"file": "m.yaml", "line": 3, "column": 5,
                    "message": "unknown key `wrkflow`", "hint": "did you mean `workflow`?"}]})
        );
        let missing = RunError::Manifest(ManifestError::Read {
            path: "gone.yaml".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not there"),
        });
        let got = Validation::invalid(Path::new("gone.yaml"), &missing);
        assert_eq!(got.errors.len(), 1);
        assert_eq!(
            (got.errors[0].line, got.errors[0].column),
            (None, None),
            "{got:?}"
        );
        assert_eq!(
            got.errors[0].message,
            "cannot read manifest `gone.yaml`: not there"
        );
    }
}
