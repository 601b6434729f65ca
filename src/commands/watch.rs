//! `invk-run watch DIR`: run every manifest dropped into a folder, until Ctrl-C.

use tokio_util::sync::CancellationToken;

use crate::cli::{GlobalArgs, WatchArgs};
use crate::error::ExitStatus;
use crate::run::report::Reporter;
use crate::run::settings::RunSettings;
use crate::watch::{RunManifest, WatchConfig, WatchError, WatchStatus, watch};

/// Runs the hot folder until Ctrl-C. The first Ctrl-C stops claiming, cancels the running
/// manifests at a checkpoint and waits for them; a second one quits at once. Both exit 130.
///
/// # Errors
/// Bad arguments or folders, or a folder the system refuses to watch.
pub fn run(global: &GlobalArgs, args: &WatchArgs) -> anyhow::Result<ExitStatus> {
    let config = match WatchConfig::resolve(args) {
        Ok(config) => config,
        Err(err) => return Ok(refuse(err)),
    };
    let mut settings = RunSettings::resolve(global, &args.run);
    // `--local`: a private server for as long as the folder is watched.
    let _local = if args.run.local {
        let local = super::run::start_local_server()?;
        settings.server_override = Some(local.url());
        Some(local)
    } else {
        None
    };
    // The watcher's own status lines go to stderr: no progress bars to tangle with them.
    let reporter = Reporter::without_bars(settings.mode);
    let status = WatchStatus::new(settings.mode);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_signal.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(i32::from(ExitStatus::Interrupted.code()));
                }
            }
        });
        watch(
            &config,
            &RunManifest::new(&settings, &reporter),
            &status,
            shutdown,
        )
        .await
    });
    runtime.shutdown_background();
    Ok(result.map_or_else(refuse, |summary| summary.exit_status()))
}

/// Prints a set-up error with its causes; returns its own exit status (2 for bad arguments
/// and folders).
fn refuse(err: WatchError) -> ExitStatus {
    let status = err.exit_status();
    super::report(&anyhow::Error::new(crate::Error::from(err)));
    status
}
