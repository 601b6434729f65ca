//! A managed local InvokeAI server: install into a cached virtual environment, start on a
//! loopback port with its own root, wait until it answers, stop. The tests use the same code.

mod install;
mod managed;
mod process;

use std::path::PathBuf;

pub use install::{DEFAULT_VERSION, Installation, cache_dir, wanted_version};
pub use managed::{ManagedServer, ManagedStatus};
pub use process::{
    LOG_FILE, PID_FILE, RunningServer, ServerConfig, free_port, http_get, is_alive, log_tail,
    terminate,
};

/// An error installing, starting or stopping the managed server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// No cache folder could be found.
    #[error("cannot find a cache folder: set `INVK_CACHE_DIR` or `HOME`")]
    NoCacheDir,
    /// No suitable Python for the virtual environment.
    #[error(
        "InvokeAI needs Python 3.11 or newer, and none was found as `python3.12`, `python3.11` or `python3`"
    )]
    NoPython,
    /// InvokeAI is not installed there.
    #[error("InvokeAI {version} is not installed in `{}`: run `invk-run server install`", venv.display())]
    NotInstalled {
        /// The virtual environment.
        venv: PathBuf,
        /// The version.
        version: String,
    },
    /// A program could not be started.
    #[error("cannot start `{what}`")]
    Spawn {
        /// Which program.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An install step failed.
    #[error("`{what}` failed ({status}); its output is above")]
    InstallFailed {
        /// Which step.
        what: &'static str,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// The server exited while starting.
    #[error("invokeai-web exited while starting ({status}); the end of its log:\n{log}")]
    Exited {
        /// Its exit status.
        status: String,
        /// The end of its log.
        log: String,
    },
    /// The server did not answer in time.
    #[error("InvokeAI at {url} did not answer within {seconds} s; the end of its log:\n{log}")]
    NotReady {
        /// Its URL.
        url: String,
        /// The wait.
        seconds: u64,
        /// The end of its log.
        log: String,
    },
    /// No managed server is running.
    #[error("no managed server is running in `{}`: start one with `invk-run server start`", root.display())]
    NotRunning {
        /// Its root.
        root: PathBuf,
    },
    /// A file could not be read or written.
    #[error(transparent)]
    Io(std::io::Error),
}
