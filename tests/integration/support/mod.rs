//! Shared test support: real servers, and helpers to run the binary.

pub(crate) mod logs;
pub(crate) mod png;
pub(crate) mod private;
pub(crate) mod server;

#[allow(unused_imports)]
pub(crate) use server::{TestServer, installation, multiuser_server, server};

/// A `Command` for the `invk-run` binary with a clean environment (no server, token or log
/// settings inherited from the developer's shell).
#[allow(dead_code)]
pub(crate) fn invk_run() -> std::process::Command {
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

/// The shipped schema snapshot, parsed once for the whole test binary (the library frees it
/// when its last holder lets go; the tests keep one so that each does not parse it again).
#[allow(dead_code)]
pub(crate) fn schemas() -> &'static invk_run::workflow::SchemaSet {
    static HELD: std::sync::OnceLock<std::sync::Arc<invk_run::workflow::SchemaSet>> =
        std::sync::OnceLock::new();
    HELD.get_or_init(invk_run::workflow::SchemaSet::snapshot)
}
