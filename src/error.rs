//! The crate's top-level error, and the exit status the binary derives from it.

use std::process::ExitCode;

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
    /// The managed server could not be installed, started or stopped.
    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
    /// The grids or the gallery could not be made.
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    /// A local file could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The exit status this error should end the process with.
    #[must_use]
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Workflow(_) | Error::Manifest(_) => ExitStatus::Invalid,
            Error::Run(e) => e.exit_status(),
            Error::Watch(e) => e.exit_status(),
            Error::Report(e) => e.exit_status(),
            _ => ExitStatus::Failed,
        }
    }
}

/// How the process ends. The codes are documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: everything asked for was done.
    Success,
    /// 1: some jobs failed, or the server failed.
    Failed,
    /// 2: invalid input (arguments, manifest, workflow); nothing was sent.
    Invalid,
    /// 130: interrupted by Ctrl-C.
    Interrupted,
}

impl ExitStatus {
    /// The numeric process exit code.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failed => 1,
            ExitStatus::Invalid => 2,
            ExitStatus::Interrupted => 130,
        }
    }

    /// The worse of two statuses (interrupted > invalid > failed > success).
    #[must_use]
    pub fn max(self, other: ExitStatus) -> ExitStatus {
        let rank = |s: ExitStatus| match s {
            ExitStatus::Success => 0,
            ExitStatus::Failed => 1,
            ExitStatus::Invalid => 2,
            ExitStatus::Interrupted => 3,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        ExitCode::from(s.code())
    }
}

/// The message of `err` followed by those of its sources, joined by `: `; a source whose text
/// the message already contains is not repeated.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{message}")]
    struct Outer {
        message: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn error_chain_adds_each_source_once() {
        let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let plain = Outer {
            message: "could not connect",
            source: refused(),
        };
        assert_eq!(error_chain(&plain), "could not connect: refused");
        let repeating = Outer {
            message: "could not connect (refused)",
            source: refused(),
        };
        assert_eq!(
            error_chain(&repeating),
            "could not connect (refused)",
            "the source text is already in the message"
        );
    }
}
