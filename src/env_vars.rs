//! Every environment variable `invk-run` reads, in one place.

/// Base URL of the InvokeAI server (`--server` overrides it); `servers check` takes a
/// comma-separated list.
pub const INVK_SERVER: &str = "INVK_SERVER";
/// Log filter for `tracing` (for example `invk_run=debug`).
pub const INVK_LOG: &str = "INVK_LOG";
/// Bearer token for a multi-user server.
pub const INVK_TOKEN: &str = "INVK_TOKEN";
/// Email for logging into a multi-user server (with [`INVK_PASSWORD`]).
pub const INVK_EMAIL: &str = "INVK_EMAIL";
/// Password for logging into a multi-user server (with [`INVK_EMAIL`]).
pub const INVK_PASSWORD: &str = "INVK_PASSWORD";
/// InvokeAI version the managed server installs (default [`crate::local_server::DEFAULT_VERSION`]).
pub const INVK_INVOKEAI_VERSION: &str = "INVK_INVOKEAI_VERSION";
/// Folder that holds the managed server's virtual environments (default: the user cache folder).
pub const INVK_CACHE_DIR: &str = "INVK_CACHE_DIR";
/// Tests only: makes retry back-off zero.
pub const INVK_TEST_NO_RETRY_DELAY: &str = "INVK_TEST_NO_RETRY_DELAY";
