//! The crate's top-level error, and the exit status the binary derives from it.

use crate::exit_status::ExitStatus;

/// Any error of the library, by subsystem. Each subsystem's own error carries the context
/// (file, field, URL, job) that its message needs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A workflow file could not be loaded, or an input could not be set.
    #[error(transparent)]
    Workflow(#[from] crate::workflow::WorkflowError),
    /// The InvokeAI server refused a request or could not be reached.
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    /// The Socket.IO event stream failed.
    #[error(transparent)]
    Events(#[from] crate::events::EventError),
    /// A manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// A run failed.
    #[error(transparent)]
    Run(#[from] crate::run::RunError),
    /// The hot folder failed.
    #[error(transparent)]
    Watch(#[from] crate::watch::WatchError),
    /// A check of servers could not start (bad URL, workflow or manifest).
    #[error(transparent)]
    Servers(#[from] crate::server_check::ServersError),
    /// The managed server could not be installed, started or stopped.
    #[error(transparent)]
    Server(#[from] crate::local_server::ServerError),
    /// The grids or the gallery could not be made.
    #[error(transparent)]
    Report(#[from] crate::gallery::ReportError),
    /// A local file could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The manifest error this is, directly or as the reason a run stopped.
    #[must_use]
    pub fn manifest_error(&self) -> Option<&crate::manifest::ManifestError> {
        match self {
            Error::Manifest(e) | Error::Run(crate::run::RunError::Manifest(e)) => Some(e),
            Error::Servers(e) => e.manifest_error(),
            _ => None,
        }
    }

    /// The exit status this error should end the process with.
    #[must_use]
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Workflow(_) | Error::Manifest(_) => ExitStatus::Invalid,
            Error::Run(e) => e.exit_status(),
            Error::Watch(e) => e.exit_status(),
            Error::Report(e) => e.exit_status(),
            Error::Servers(e) => e.exit_status(),
            Error::Io(e) => crate::fs::place::PlaceError::exit_status_of(e),
            _ => ExitStatus::Failed,
        }
    }
}
