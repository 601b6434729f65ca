//! How the process ends: [`ExitStatus`] and its exit codes. A leaf: the subsystems that decide
//! a status and the top-level error that maps to one both take it from here.

use std::process::ExitCode;

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
