//! Errors of the workflow subsystem: loading a workflow file, addressing and setting its inputs,
//! reading invocation schemas, converting to a graph.

use std::fmt;
use std::path::PathBuf;

/// An error loading a workflow, addressing or setting its inputs, or converting it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    /// The workflow file could not be read.
    #[error("cannot read workflow `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The workflow file is larger than any workflow the web UI exports.
    #[error(
        "workflow `{}` is larger than {limit_mib} MiB, the limit; a workflow exported from the InvokeAI web UI is a few kilobytes: check that this is the right file",
        path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in MiB.
        limit_mib: u64,
    },
    /// The text is not JSON, or not shaped like a workflow exported from the InvokeAI web UI.
    #[error("`{source_name}` is not a valid workflow: at `{json_path}`: {message}")]
    Parse {
        /// The file (or other source) the text came from.
        source_name: String,
        /// JSON path of the offending value (`.` for the whole document).
        json_path: String,
        /// What is wrong there.
        message: String,
    },
    /// The workflow is well-formed JSON but inconsistent (an edge or a form element points to
    /// a missing node or field, a node id repeats, ...).
    #[error("`{source_name}` is not a valid workflow: at `{json_path}`: {message}")]
    Invalid {
        /// The file (or other source) the workflow came from.
        source_name: String,
        /// JSON path of the offending value.
        json_path: String,
        /// What is wrong there.
        message: String,
    },
    /// No input has this name.
    #[error("workflow `{workflow}` has no input `{name}`{}", hint(suggestion.as_deref()))]
    UnknownInput {
        /// The workflow's name.
        workflow: String,
        /// The name that was asked for.
        name: String,
        /// The closest existing input name, if any is close.
        suggestion: Option<String>,
    },
    /// An input index is out of range.
    #[error("workflow `{workflow}` has no input #{index}: it has {count} inputs (#0 to #{})", count.saturating_sub(1))]
    InputIndexOutOfRange {
        /// The workflow's name.
        workflow: String,
        /// The index asked for.
        index: usize,
        /// How many inputs there are.
        count: usize,
    },
    /// A user name (label) is shared by several inputs.
    #[error(
        "workflow `{workflow}`: the input name `{name}` is ambiguous: it names {}; use a system name (node.field) or #INDEX",
        candidates.join(", ")
    )]
    AmbiguousInput {
        /// The workflow's name.
        workflow: String,
        /// The colliding user name.
        name: String,
        /// The system names (`node.field`) of the inputs that share it.
        candidates: Vec<String>,
    },
    /// Several inputs share user names, so no map by user name exists.
    #[error(
        "workflow `{workflow}`: input names repeat: {}",
        describe_collisions(collisions)
    )]
    UserNameCollision {
        /// The workflow's name.
        workflow: String,
        /// Each repeated user name with the system names (`node.field`) that share it.
        collisions: Vec<(String, Vec<String>)>,
    },
    /// An assignment is not `NAME=VALUE`.
    #[error(
        "expected NAME=VALUE (NAME is a user name, a system name node.field or #INDEX), got `{text}`"
    )]
    BadAssignment {
        /// What was given.
        text: String,
    },
    /// A value was refused for an input.
    #[error(transparent)]
    InvalidValue(#[from] InputError),
    /// Several inputs hold invalid values or lack a required value.
    #[error("{} invalid input(s): {}", errors.len(), errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidInputs {
        /// One error per input.
        errors: Vec<InputError>,
    },
    /// Model inputs were given by name and must be resolved against a server first.
    #[error("model inputs given by name must be resolved against the server first: {}", inputs.join(", "))]
    UnresolvedModels {
        /// `system name = model name` of each.
        inputs: Vec<String>,
    },
    /// A batch node (`*_batch`) or a generator feeding it cannot be turned into batch data.
    #[error("batch node `{node_id}`: {message}")]
    Batch {
        /// The node.
        node_id: String,
        /// What is wrong.
        message: String,
    },
    /// An `openapi.json` (or the shipped snapshot) lacks what we need to read invocation schemas.
    #[error("cannot read invocation schemas from {source_name}: {message}")]
    Schema {
        /// Where the schema came from (URL, file, `snapshot 6.14.2`).
        source_name: String,
        /// What is missing or malformed.
        message: String,
    },
}

fn hint(suggestion: Option<&str>) -> String {
    suggestion
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

fn describe_collisions(collisions: &[(String, Vec<String>)]) -> String {
    collisions
        .iter()
        .map(|(name, systems)| format!("`{name}` names {}", systems.join(" and ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A problem with one input's value: which input, which value, which rule.
///
/// Displays as ``input `Steps` (denoise.steps): -5 is not greater than the exclusive minimum 0``.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct InputError {
    /// The input's user name (label or field name).
    pub user_name: String,
    /// The input's system name (`node_id.field_name`).
    pub system_name: String,
    /// What is wrong, naming the value and the rule.
    pub problem: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "input `{}` ({}): {}",
            self.user_name, self.system_name, self.problem
        )
    }
}
