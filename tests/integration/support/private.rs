//! A private InvokeAI server for one test: its own root and port, so the test may fill its queue,
//! sample it, kill it and start it again on the same root. One private server runs at a time
//! (with the shared ones, that is as many as the machine takes).

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use invk_run::local_server::{RunningServer, ServerConfig, http_get};
use serde_json::Value;

use super::installation;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A server the test owns; stopped when dropped.
pub(crate) struct PrivateServer {
    server: Option<RunningServer>,
    config: ServerConfig,
    _root: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl PrivateServer {
    /// Starts one; `max_queue_size` limits its queue.
    pub(crate) fn start(max_queue_size: Option<u32>) -> PrivateServer {
        PrivateServer::start_with(|config| config.max_queue_size = max_queue_size)
    }

    /// Starts one whose invocation schema lacks the node types `nodes` (`deny_nodes`).
    pub(crate) fn start_denying(nodes: &[&str]) -> PrivateServer {
        PrivateServer::start_with(|config| {
            config.deny_nodes = nodes.iter().map(|n| (*n).to_owned()).collect();
        })
    }

    fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> PrivateServer {
        let turn = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let root = tempfile::Builder::new()
            .prefix("invk-run-private-")
            .tempdir()
            .expect("tempdir");
        let mut config = ServerConfig::new(root.path().to_path_buf(), 0);
        config.die_with_parent = true;
        tweak(&mut config);
        super::logs::register("private", root.path());
        let server = RunningServer::start(installation(), &config)
            .unwrap_or_else(|e| panic!("starting a private InvokeAI: {e}"));
        config.port = server.port();
        PrivateServer {
            server: Some(server),
            config,
            _root: root,
            _turn: turn,
        }
    }

    /// Base URL.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.config.port)
    }

    /// Kills it (SIGKILL), as a crash would.
    pub(crate) fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.kill();
        }
    }

    /// Starts it again on the same root and port.
    pub(crate) fn restart(&mut self) {
        self.kill();
        let server = RunningServer::start(installation(), &self.config)
            .unwrap_or_else(|e| panic!("restarting the private InvokeAI: {e}"));
        self.server = Some(server);
    }

    /// `GET path` on it, as JSON (`None` when it does not answer).
    pub(crate) fn get(&self, path: &str) -> Option<Value> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.config.port));
        let (status, body) = http_get(addr, path).ok()?;
        (status == 200).then(|| serde_json::from_str(&body).ok())?
    }

    /// Running items of its queue.
    pub(crate) fn in_progress(&self) -> Option<u64> {
        let status = self.get("/api/v1/queue/default/status")?;
        status["queue"]["in_progress"].as_u64()
    }

    /// How many images it holds, intermediates included.
    pub(crate) fn image_count(&self) -> Option<u64> {
        self.get("/api/v1/images/?limit=1")?["total"].as_u64()
    }

    /// Pending and running items of its queue.
    pub(crate) fn busy(&self) -> Option<u64> {
        let status = self.get("/api/v1/queue/default/status")?;
        let queue = &status["queue"];
        Some(queue["pending"].as_u64()? + queue["in_progress"].as_u64()?)
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        // The panic hook has shown its log by now; its root goes with the TempDir.
        super::logs::unregister(self._root.path());
    }
}
