//! The server `invk-run server start` leaves running in the background: its root folder holds
//! the config, the log and a pid file (`pid port`), so later commands can find and stop it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{
    Installation, LOG_FILE, PID_FILE, RunningServer, ServerConfig, ServerError, is_alive, terminate,
};

/// A managed server's folder and what it records.
#[derive(Debug, Clone)]
pub struct ManagedServer {
    root: PathBuf,
}

/// What `invk-run server status` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagedStatus {
    /// Running with this pid on this port.
    Running {
        /// Process id.
        pid: u32,
        /// Port.
        port: u16,
    },
    /// Not running.
    Stopped,
}

impl ManagedServer {
    /// The managed server whose data lives in `root`.
    #[must_use]
    pub fn new(root: PathBuf) -> ManagedServer {
        ManagedServer { root }
    }

    /// The default root: `<cache folder>/root`.
    ///
    /// # Errors
    /// When the cache folder cannot be found.
    pub fn default_root() -> Result<PathBuf, ServerError> {
        Ok(super::cache_dir()?.join("root"))
    }

    /// Its root folder.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Its log file.
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.root.join(LOG_FILE)
    }

    /// Starts the server in the background, waits until it answers, and records its pid.
    /// Returns its URL. A server already running there is left alone and its URL returned.
    ///
    /// # Errors
    /// When it cannot start or does not answer.
    pub fn start(&self, inst: &Installation, port: u16) -> Result<String, ServerError> {
        if let ManagedStatus::Running { port, .. } = self.status() {
            return Ok(format!("http://127.0.0.1:{port}"));
        }
        let config = ServerConfig::new(self.root.clone(), port);
        let server = RunningServer::start(inst, &config)?;
        let url = server.url();
        let pid = server.pid().unwrap_or_default();
        crate::fs::write(
            self.root.join(PID_FILE),
            format!("{pid} {}\n", server.port()),
        )
        .map_err(ServerError::Io)?;
        server.detach();
        Ok(url)
    }

    /// Whether it runs, from the pid file.
    #[must_use]
    pub fn status(&self) -> ManagedStatus {
        let Ok(text) = crate::fs::read_to_string(self.root.join(PID_FILE)) else {
            return ManagedStatus::Stopped;
        };
        let mut parts = text.split_whitespace();
        let pid = parts.next().and_then(|p| p.parse::<u32>().ok());
        let port = parts.next().and_then(|p| p.parse::<u16>().ok());
        match (pid, port) {
            (Some(pid), Some(port)) if is_alive(pid) => ManagedStatus::Running { pid, port },
            _ => ManagedStatus::Stopped,
        }
    }

    /// Stops it (SIGTERM, waiting up to 15 s) and removes the pid file.
    ///
    /// # Errors
    /// When none runs.
    pub fn stop(&self) -> Result<(), ServerError> {
        let ManagedStatus::Running { pid, .. } = self.status() else {
            return Err(ServerError::NotRunning {
                root: self.root.clone(),
            });
        };
        terminate(pid);
        let deadline = Instant::now() + Duration::from_secs(15);
        while is_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = crate::fs::remove_file(self.root.join(PID_FILE));
        Ok(())
    }
}
