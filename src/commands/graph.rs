//! `invk-run graph WORKFLOW [--set NAME=VALUE]...`: print the enqueue payload a workflow
//! converts to (offline, with the shipped schemas).

use std::path::Path;

use serde_json::Value;

use crate::exit_status::ExitStatus;
use crate::workflow::{ConvertOptions, InputRef, WorkflowError};

/// Splits `NAME=VALUE`. The value is JSON when it reads as a JSON list or object, else text
/// (converted to the input's type when set: `30` into an integer field is 30).
///
/// # Errors
/// [`WorkflowError::BadAssignment`] without `=`.
pub fn parse_assignment(text: &str) -> Result<(InputRef, Value), WorkflowError> {
    let Some((name, value)) = text.split_once('=') else {
        return Err(WorkflowError::BadAssignment {
            text: text.to_string(),
        });
    };
    if name.trim().is_empty() {
        return Err(WorkflowError::BadAssignment {
            text: text.to_string(),
        });
    }
    let trimmed = value.trim_start();
    let value = if trimmed.starts_with('[') || trimmed.starts_with('{') {
        serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()))
    } else {
        Value::String(value.to_string())
    };
    Ok((InputRef::parse(name), value))
}

/// Runs the command: the `enqueue_batch` body as pretty JSON (one line with `--json`).
///
/// # Errors
/// When the workflow cannot be loaded, an assignment is malformed or a value is refused
/// (exit status 2).
pub fn run(workflow: &Path, sets: &[String], json: bool) -> anyhow::Result<ExitStatus> {
    let mut wf = super::inputs::load(workflow).map_err(crate::Error::from)?;
    for text in sets {
        let (input, value) = parse_assignment(text).map_err(crate::Error::from)?;
        wf.set(&input, value).map_err(crate::Error::from)?;
    }
    let payload = wf
        .to_enqueue(&ConvertOptions::default())
        .map_err(crate::Error::from)?;
    let text = if json {
        serde_json::to_string(&payload)?
    } else {
        serde_json::to_string_pretty(&payload)?
    };
    super::stdout::println(&text)?;
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_split_at_the_first_equals_sign() {
        let (r, v) = parse_assignment("Prompt=a=b").expect("ok");
        assert_eq!(r, InputRef::UserName("Prompt".into()));
        assert_eq!(v, Value::String("a=b".into()));
        let (r, v) = parse_assignment("#2=[1, 2]").expect("ok");
        assert_eq!(r, InputRef::Index(2));
        assert_eq!(v, serde_json::json!([1, 2]));
        assert_eq!(
            parse_assignment("steps").expect_err("no =").to_string(),
            "expected NAME=VALUE (NAME is a user name, a system name node.field or #INDEX), got `steps`"
        );
    }
}
