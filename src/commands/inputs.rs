//! `invk-run inputs WORKFLOW`: list a workflow's inputs (offline, with the shipped schemas).

use std::path::Path;

use serde_json::json;

use crate::exit_status::ExitStatus;
use crate::workflow::{
    InkValue, InputSummary, SchemaSet, Workflow, WorkflowDefinition, WorkflowError,
};

/// Loads a workflow file and types it with the shipped schema snapshot.
///
/// # Errors
/// When the file cannot be read or is not a workflow.
pub fn load(path: &Path) -> Result<Workflow, WorkflowError> {
    Workflow::new(WorkflowDefinition::load(path)?, &SchemaSet::snapshot())
}

/// Runs the command: a table (index, user name, system name, type, required, value), or JSON.
///
/// # Errors
/// When the workflow cannot be loaded (exit status 2).
pub fn run(workflow: &Path, json: bool) -> anyhow::Result<ExitStatus> {
    let wf = load(workflow).map_err(crate::Error::from)?;
    if json {
        let inputs: Vec<InputSummary> = wf.inputs().iter().map(InputSummary::from).collect();
        let doc = json!({
            "name": wf.name(),
            "inputs": inputs,
            "missing_required": wf.missing_required_inputs(),
            "outputs": wf.outputs(),
        });
        super::stdout::println(&serde_json::to_string_pretty(&doc)?)?;
    } else {
        super::stdout::print(&table(&wf))?;
    }
    Ok(ExitStatus::Success)
}

/// The inputs as a text table.
#[must_use]
pub fn table(wf: &Workflow) -> String {
    let mut rows = vec![
        ["#", "NAME", "SYSTEM NAME", "TYPE", "REQUIRED", "VALUE"]
            .map(str::to_string)
            .to_vec(),
    ];
    for i in wf.inputs() {
        let value = match &i.value {
            None => String::new(),
            Some(v) => shorten(&v.display(), 40),
        };
        let required = match (i.required, i.connected, i.is_missing()) {
            (_, _, true) => "missing",
            (true, true, _) => "connected",
            (true, false, _) => "yes",
            (false, _, _) => "no",
        };
        rows.push(vec![
            format!("#{}", i.index),
            i.user_name.clone(),
            i.system_name.clone(),
            i.ty().to_string(),
            required.to_string(),
            if matches!(i.value, Some(InkValue::Null)) {
                String::new()
            } else {
                value
            },
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn shorten(s: &str, max: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() > max {
        format!("{}...", one_line.chars().take(max - 3).collect::<String>())
    } else {
        one_line
    }
}
