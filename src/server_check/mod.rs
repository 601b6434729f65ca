//! Several InvokeAI servers: naming them, and checking each one before anything is sent to it
//! (the preflight a pool of servers runs per server).
//!
//! ```no_run
//! # async fn demo() -> Result<(), invk_run::server_check::ServersError> {
//! use invk_run::client::Credentials;
//! use invk_run::server_check::{DEFAULT_CHECK_TIMEOUT, Needs, ServerEntry, check_all};
//!
//! let needs = Needs::load("examples/workflows/blur-and-tint.json".as_ref()).await?;
//! let servers = [ServerEntry::url("http://gpu-1:9090"), ServerEntry::url("http://gpu-2:9090")];
//! for report in check_all(&servers, &Credentials::default(), Some(&needs), DEFAULT_CHECK_TIMEOUT).await? {
//!     println!("{} usable: {} {:?}", report.server, report.usable, report.problems);
//! }
//! # Ok(())
//! # }
//! ```

use std::path::Path;

mod check;
mod found;

pub use crate::run::needs::{ModelNeed, Needs};
pub use crate::server_entry::{EntryError, MAX_ENTRY_WINDOW, MAX_WEIGHT, ServerEntry};
pub use check::{DEFAULT_CHECK_TIMEOUT, check, check_all};
pub use found::{AuthState, FoundModel, ModelFit, QueueState, ServerReport, WorkflowFit};

use crate::exit_status::ExitStatus;

/// An error before any server was asked: bad input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServersError {
    /// A server URL is invalid, or an email comes without a password.
    #[error(transparent)]
    Setup(crate::client::ClientError),
    /// The workflow file does not load.
    #[error(transparent)]
    Workflow(#[from] crate::workflow::WorkflowError),
    /// The manifest is invalid (or its workflow is in a server's library, which differs per
    /// server).
    #[error(transparent)]
    Manifest(#[from] crate::run::RunError),
    /// A server entry (its URL or options) cannot be used.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// A command that talks to one server was given several.
    #[error(
        "`--server` or `INVK_SERVER` names {} servers ({}), but this command talks to one: name one; only a run (`invk-run MANIFEST...`), `invk-run watch` and `invk-run servers check` take several",
        servers.len(),
        servers.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
    )]
    OneServerOnly {
        /// The servers named.
        servers: Vec<String>,
    },
}

impl ServersError {
    /// The exit status: always [`ExitStatus::Invalid`] (nothing was sent).
    #[must_use]
    pub fn exit_status(&self) -> ExitStatus {
        ExitStatus::Invalid
    }

    /// The manifest error this is, if any (its diagnostics are complete lines).
    #[must_use]
    pub fn manifest_error(&self) -> Option<&crate::manifest::ManifestError> {
        match self {
            ServersError::Manifest(crate::run::RunError::Manifest(e)) => Some(e),
            _ => None,
        }
    }
}

/// The servers named by the `--server` options (or `INVK_SERVER`), each entry possibly a
/// comma-separated list: trimmed, empty entries dropped, duplicates (after the URL is
/// normalised) kept once, in order.
#[must_use]
pub fn server_list(entries: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for entry in entries.iter().flat_map(|e| e.split(',')) {
        let url = entry.trim();
        if url.is_empty() {
            continue;
        }
        // A server's options (`URL#window=8`) are not part of its name.
        let bare = url.split_once('#').map_or(url, |(u, _)| u);
        let key = crate::client::Client::base_url_of(bare)
            .map_or_else(|_| bare.to_owned(), |u| u.to_string());
        if seen.insert(key) {
            out.push(url.to_owned());
        }
    }
    out
}

impl Needs {
    /// What the workflow (`.json`) or manifest (any other file) at `path` needs, checked offline
    /// as `validate` checks it (the shipped invocation schema; at most
    /// [`crate::manifest::ExpandOptions`]' default number of jobs).
    ///
    /// # Errors
    /// A workflow that does not load, or an invalid manifest (every problem at once).
    pub async fn load(path: &Path) -> Result<Needs, ServersError> {
        let source = path.display().to_string();
        let is_workflow = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_workflow {
            let definition = crate::workflow::WorkflowDefinition::load(path)?;
            return Ok(Needs::of_workflow(&source, &definition));
        }
        let prepared = crate::run::prepare::prepare(
            &crate::run::ManifestSource::new(path),
            crate::manifest::ExpandOptions::default().max_jobs,
            None,
            &crate::workflow::SchemaSet::snapshot(),
        )
        .await?;
        Ok(Needs::of_manifest(&source, &prepared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists_split_on_commas_and_keep_each_server_once() {
        let entries = [
            "http://a:9090, http://b:9090".to_owned(),
            String::new(),
            "a:9090".to_owned(),
            "http://c:9090/,".to_owned(),
        ];
        assert_eq!(
            server_list(&entries),
            ["http://a:9090", "http://b:9090", "http://c:9090/"]
        );
    }
}
