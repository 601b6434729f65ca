//! Real InvokeAI servers for the tests: installed once into the cache folder (reused when
//! present), each started on a free loopback port with a fresh temporary root, shared by all the
//! tests of this binary, and stopped when the test process ends (the kernel sends it SIGTERM when
//! the thread that started it ends, and that thread lives as long as the process). Their logs
//! stay in their roots until the next test process; a failing test shows their tails
//! (`support::logs`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::mpsc;

use invk_run::local_server::{Installation, RunningServer, ServerConfig, is_alive, wanted_version};

/// A test server: its URL and, for a multi-user one, the admin's credentials.
#[derive(Debug)]
pub(crate) struct TestServer {
    url: String,
    root: PathBuf,
    /// Admin email (multi-user servers).
    pub admin_email: String,
    /// Admin password (multi-user servers).
    pub admin_password: String,
}

impl TestServer {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The server's root folder.
    #[allow(dead_code)]
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }
}

/// The InvokeAI installation the tests use (installed on first use).
pub(crate) fn installation() -> &'static Installation {
    static INST: OnceLock<Installation> = OnceLock::new();
    INST.get_or_init(|| {
        Installation::ensure(&wanted_version())
            .unwrap_or_else(|e| panic!("installing InvokeAI: {e}"))
    })
}

/// The shared single-user server. Its invocation cache is off: with it on, a test's session
/// could take an intermediate image from the cache that another test, running side by side,
/// has just deleted in its cleanup, and the item would fail for a reason outside the test.
pub(crate) fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = start(false);
        disable_invocation_cache(&server.url, None);
        server
    })
}

/// The shared multi-user server, with an admin account set up.
#[allow(dead_code)]
pub(crate) fn multiuser_server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let mut server = start(true);
        server.admin_email = "admin@invk-run.test".to_owned();
        server.admin_password = "Invk-Run-Test-Passw0rd!".to_owned();
        let token = setup_admin(&server);
        disable_invocation_cache(&server.url, Some(&token));
        server
    })
}

/// Turns the server's invocation cache off (an admin request), on a thread of its own: the
/// first test to ask for the server may be running on a runtime already.
pub(crate) fn disable_invocation_cache(url: &str, token: Option<&str>) {
    let (url, token) = (url.to_owned(), token.map(str::to_owned));
    std::thread::spawn(move || disable_invocation_cache_now(&url, token.as_deref()))
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
}

fn disable_invocation_cache_now(url: &str, token: Option<&str>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut request =
            reqwest::Client::new().put(format!("{url}/api/v1/app/invocation_cache/disable"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let resp = request.send().await.expect("invocation cache request");
        assert!(
            resp.status().is_success(),
            "disabling the invocation cache: {}",
            resp.status()
        );
    });
}

fn start(multiuser: bool) -> TestServer {
    let inst = installation().clone();
    remove_stale_roots();
    let root = std::env::temp_dir().join(format!(
        "invk-run-test-{}-{}",
        std::process::id(),
        if multiuser { "multiuser" } else { "single" }
    ));
    let _ = fs_err::remove_dir_all(&root);
    let (tx, rx) = mpsc::channel();
    let thread_root = root.clone();
    std::thread::Builder::new()
        .name(format!(
            "invokeai-server-{}",
            if multiuser { "multiuser" } else { "single" }
        ))
        .spawn(move || {
            let mut config = ServerConfig::new(thread_root, 0);
            config.multiuser = multiuser;
            config.die_with_parent = true;
            match RunningServer::start(&inst, &config) {
                Ok(server) => {
                    let _ = tx.send(Ok(server.url()));
                    // Keep the server (and this thread, whose end would stop it) for the life
                    // of the test process.
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                }
            }
        })
        .expect("spawning the server thread");
    super::logs::register(
        if multiuser {
            "shared multi-user"
        } else {
            "shared single-user"
        },
        &root,
    );
    let url = rx
        .recv()
        .expect("server thread ended")
        .unwrap_or_else(|e| panic!("starting InvokeAI: {e}"));
    TestServer {
        url,
        root,
        admin_email: String::new(),
        admin_password: String::new(),
    }
}

/// Removes the roots that earlier test processes left behind (their process is gone).
fn remove_stale_roots() {
    let Ok(entries) = fs_err::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("invk-run-test-") else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| pid != std::process::id() && !is_alive(pid)) {
            let _ = fs_err::remove_dir_all(entry.path());
        }
    }
}

/// Sets the admin account up and returns an admin token.
fn setup_admin(server: &TestServer) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/v1/auth/setup", server.url))
            .json(&serde_json::json!({
                "email": server.admin_email,
                "display_name": "Admin",
                "password": server.admin_password,
            }))
            .send()
            .await
            .expect("auth setup request");
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "auth setup failed: {status} {body}");
        let resp = reqwest::Client::new()
            .post(format!("{}/api/v1/auth/login", server.url))
            .json(&serde_json::json!({
                "email": server.admin_email,
                "password": server.admin_password,
            }))
            .send()
            .await
            .expect("login request");
        let body: serde_json::Value = resp.json().await.expect("login answer");
        body["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in the login answer: {body}"))
            .to_owned()
    })
}
