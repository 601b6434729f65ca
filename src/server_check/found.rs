//! What a check found on one server ([`ServerReport`]), and whether it makes the server usable.

use serde::Serialize;

/// What [`super::check`] found on one server. Each part is `None` when the check did not get
/// that far (the server did not answer, or the time was up); `problems` says why the server is
/// not usable, one sentence each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerReport {
    /// The server's base URL.
    pub server: String,
    /// Whether it can take jobs (for the workflow or manifest, when one was given).
    pub usable: bool,
    /// Whether it answered.
    pub reachable: bool,
    /// Its InvokeAI version.
    pub version: Option<String>,
    /// Whether a run can use it as the credentials given stand.
    pub auth: Option<AuthState>,
    /// What its queue holds.
    pub queue: Option<QueueState>,
    /// Whether it can run the workflow or manifest given.
    pub workflow: Option<WorkflowFit>,
    /// Why it is not usable (empty when it is).
    pub problems: Vec<String>,
}

impl ServerReport {
    /// The report on `server` before anything is known: not reachable, not usable, no problem.
    #[must_use]
    pub fn unchecked(server: String) -> ServerReport {
        ServerReport {
            server,
            usable: false,
            reachable: false,
            version: None,
            auth: None,
            queue: None,
            workflow: None,
            problems: Vec::new(),
        }
    }
}

/// Whether a run can use a server as the credentials given stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AuthState {
    /// A single-user server: no login.
    Open,
    /// A multi-user server that these credentials do not open.
    NeedsLogin {
        /// Why: no credentials were given, or they were refused.
        reason: String,
    },
    /// A multi-user server, logged in.
    LoggedIn {
        /// The user's email.
        user: String,
    },
}

/// What a server's queue holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QueueState {
    /// Items waiting to run.
    pub pending: u64,
    /// Items running.
    pub in_progress: u64,
}

/// Whether a server can run a workflow or manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowFit {
    /// The workflow or manifest, as given.
    pub source: String,
    /// How many node types it uses.
    pub node_types: usize,
    /// The node types the server's invocation schema lacks (sorted).
    pub missing_node_types: Vec<String>,
    /// Why the server's invocation schema could not be read (then no node type was checked).
    pub schema_error: Option<String>,
    /// Each model it names, found on this server or not.
    pub models: Vec<ModelFit>,
}

impl WorkflowFit {
    /// Whether every node type and every model was found.
    #[must_use]
    pub fn is_runnable(&self) -> bool {
        self.schema_error.is_none()
            && self.missing_node_types.is_empty()
            && self.models.iter().all(|m| m.found.is_some())
    }
}

/// A model a workflow or manifest names, looked up on one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelFit {
    /// How it is named, for messages (`` `FLUX` (flux, main) ``).
    pub model: String,
    /// The inputs that name it (`node_id.field`).
    pub inputs: Vec<String>,
    /// What it is on this server, when found.
    pub found: Option<FoundModel>,
    /// Why it was not found.
    pub error: Option<String>,
}

/// A model as one server has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundModel {
    /// Its key on this server (keys differ between installs).
    pub key: String,
    /// Its name.
    pub name: String,
    /// Its base.
    pub base: String,
    /// Its type.
    #[serde(rename = "type")]
    pub model_type: String,
}
