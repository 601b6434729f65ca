//! Shared test support: real servers, and helpers to run the binary.

pub mod logs;
pub mod png;
pub mod private;
pub mod server;

#[allow(unused_imports)]
pub use server::{TestServer, installation, multiuser_server, server};

/// A `Command` for the `invk-run` binary with a clean environment (no server, token or log
/// settings inherited from the developer's shell).
#[allow(dead_code)]
pub fn invk_run() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_invk-run"));
    for var in [
        "INVK_SERVER",
        "INVK_TOKEN",
        "INVK_EMAIL",
        "INVK_PASSWORD",
        "INVK_LOG",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("INVK_TEST_NO_RETRY_DELAY", "1");
    cmd
}
