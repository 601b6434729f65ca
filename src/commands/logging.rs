//! Log output: `tracing` to stderr, filtered by `INVK_LOG` or `-v`/`-vv`.

use tracing_subscriber::EnvFilter;

/// Installs the log subscriber. `INVK_LOG` (an `EnvFilter` string) wins over `-v`.
pub(super) fn init(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "invk_run=info",
        (false, _) => "invk_run=debug",
    };
    let filter = std::env::var(crate::env_vars::INVK_LOG)
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
