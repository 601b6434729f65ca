//! Workflow files exported from the InvokeAI web UI: their definition, form inputs with typed
//! `Ink*` values, and their conversion into the graph the server runs.

pub mod payload;

/// An error loading a workflow or setting its inputs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {}
