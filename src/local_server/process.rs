//! A running `invokeai-web`: its root folder and config, the process, the readiness check and
//! the stop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Installation, ServerError};

/// The log file inside a server's root.
pub const LOG_FILE: &str = "invokeai-web.log";
/// The pid file inside the root of a server started in the background.
pub const PID_FILE: &str = "invk-run-server.pid";

/// How a server is started.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The server's data folder (`--root`): config, database, images.
    pub root: PathBuf,
    /// The loopback port; 0 picks a free one.
    pub port: u16,
    /// Start in multi-user mode (every call then needs a token).
    pub multiuser: bool,
    /// How long to wait until `GET /api/v1/app/version` answers.
    pub ready_timeout: Duration,
    /// Kill the server when the thread that started it ends (Linux; for tests).
    pub die_with_parent: bool,
    /// The most pending items its queue takes (`max_queue_size`; the server's default when
    /// `None`).
    pub max_queue_size: Option<u32>,
    /// Node types the server leaves out of its invocation schema (`deny_nodes`; none when
    /// empty): a server that cannot run some workflows, as one without a custom node.
    pub deny_nodes: Vec<String>,
}

impl ServerConfig {
    /// A single-user server in `root` on `port`.
    #[must_use]
    pub fn new(root: PathBuf, port: u16) -> ServerConfig {
        ServerConfig {
            root,
            port,
            multiuser: false,
            ready_timeout: Duration::from_secs(240),
            die_with_parent: false,
            max_queue_size: None,
            deny_nodes: Vec::new(),
        }
    }
}

/// A started InvokeAI server. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningServer {
    child: Option<Child>,
    port: u16,
    root: PathBuf,
}

impl RunningServer {
    /// Writes `root/invokeai.yaml`, starts `invokeai-web` with its output in `root/invokeai-web.log`,
    /// and waits until it answers.
    ///
    /// # Errors
    /// When the process cannot start, exits early, or does not answer in time (the error quotes
    /// the end of its log).
    pub fn start(inst: &Installation, config: &ServerConfig) -> Result<RunningServer, ServerError> {
        let port = if config.port == 0 {
            free_port()?
        } else {
            config.port
        };
        crate::fs::create_dir_all(&config.root).map_err(ServerError::Io)?;
        write_config(&config.root, port, config)?;
        let log_path = config.root.join(LOG_FILE);
        let log = crate::fs::File::create(&log_path).map_err(ServerError::Io)?;
        let log_err = log.try_clone().map_err(ServerError::Io)?;
        let mut cmd = Command::new(inst.invokeai_web());
        cmd.arg("--root")
            .arg(&config.root)
            .stdin(Stdio::null())
            .stdout(log.into_parts().0)
            .stderr(log_err.into_parts().0)
            .env_remove("INVOKEAI_HOST")
            .env_remove("INVOKEAI_PORT")
            .env_remove("INVOKEAI_ROOT");
        if config.die_with_parent {
            die_with_parent(&mut cmd);
        }
        let child = cmd.spawn().map_err(|source| ServerError::Spawn {
            what: "invokeai-web",
            source,
        })?;
        let mut server = RunningServer {
            child: Some(child),
            port,
            root: config.root.clone(),
        };
        server.wait_ready(config.ready_timeout)?;
        Ok(server)
    }

    /// The server's base URL (`http://127.0.0.1:PORT`).
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its root folder.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The process id.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Leaves the server running after this value is dropped (for `invk-run server start`).
    pub fn detach(mut self) {
        self.child = None;
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), ServerError> {
        let deadline = Instant::now() + timeout;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(ServerError::Exited {
                        status: status.to_string(),
                        log: log_tail(&self.root.join(LOG_FILE)),
                    });
                }
            }
            if let Ok((200, _)) = http_get(addr, "/api/v1/app/version") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(ServerError::NotReady {
                    url: self.url(),
                    seconds: timeout.as_secs(),
                    log: log_tail(&self.root.join(LOG_FILE)),
                });
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server: SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(child.id());
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes the server's `invokeai.yaml`: loopback host, the port, no models needed.
fn write_config(root: &Path, port: u16, config: &ServerConfig) -> Result<(), ServerError> {
    let mut yaml = format!("schema_version: 4.0.2\nhost: 127.0.0.1\nport: {port}\n");
    if config.multiuser {
        yaml.push_str("multiuser: true\n");
    }
    if let Some(n) = config.max_queue_size {
        yaml.push_str(&format!("max_queue_size: {n}\n"));
    }
    if !config.deny_nodes.is_empty() {
        // JSON strings are YAML flow scalars.
        let names: Vec<String> = config
            .deny_nodes
            .iter()
            .map(|n| serde_json::Value::from(n.as_str()).to_string())
            .collect();
        yaml.push_str(&format!("deny_nodes: [{}]\n", names.join(", ")));
    }
    crate::fs::write(root.join("invokeai.yaml"), yaml).map_err(ServerError::Io)
}

/// A free loopback port (bound and released; the server binds it right after).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> Result<u16, ServerError> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(ServerError::Io)?;
    Ok(listener.local_addr().map_err(ServerError::Io)?.port())
}

/// A minimal HTTP/1.0 GET on loopback: (status, body). Enough for readiness checks without an
/// async runtime.
///
/// # Errors
/// When the connection fails or the answer is not HTTP.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP answer")
        })?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// The last lines of a log file, for error messages.
#[must_use]
pub fn log_tail(path: &Path) -> String {
    let text = crate::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Sends SIGTERM to a process.
pub fn terminate(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a plain pid and signal has no memory-safety requirements.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// Whether a process with this pid is alive.
#[must_use]
pub fn is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 only checks for existence.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0
}

#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of the parent.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}
