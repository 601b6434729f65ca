//! `invk-run watch DIR`: run every manifest dropped into a folder, until Ctrl-C; with
//! `--each MANIFEST --as INPUT`, run one manifest for every image dropped there.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cli::{GlobalArgs, WatchArgs};
use crate::exit_status::ExitStatus;
use crate::run::coalesce::Coalescer;
use crate::run::progress::Reporter;
use crate::watch::each::{EACH_CONCURRENCY, IMAGE_PATTERNS};
use crate::watch::{
    FilePatterns, RunEach, RunManifest, WatchConfig, WatchError, WatchStatus, watch,
};

/// Runs the hot folder until Ctrl-C. The first Ctrl-C stops claiming, cancels the running
/// manifests at a checkpoint and waits for them; a second one quits at once. Both exit 130.
///
/// # Errors
/// Bad arguments or folders, or a folder the system refuses to watch.
pub fn run(global: &GlobalArgs, args: &WatchArgs) -> anyhow::Result<ExitStatus> {
    let config = match watch_config(args) {
        Ok(config) => config,
        Err(err) => return Ok(refuse(err)),
    };
    let mut settings = super::run::run_settings(global, &args.run);
    // `--local`: a private server for as long as the folder is watched.
    let _local = if args.run.local {
        let local = super::run::start_local_server(global.quiet)?;
        settings.server_override = Some(local.url());
        settings.pool.clear();
        Some(local)
    } else {
        None
    };
    // The watcher's own status lines go to stderr: no progress bars to tangle with them.
    let reporter = Reporter::without_bars(settings.mode);
    // `--json | head`: the reader going away stops the watcher as Ctrl-C does, with exit 0.
    let stdout_closed = CancellationToken::new();
    let status = WatchStatus::new(settings.mode).stop_when_stdout_closes(stdout_closed.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let (Some(manifest), Some(input)) = (&args.each, &args.input) {
        // Checked once, before anything is watched: a bad manifest or `--as` exits 2.
        if let Err(err) = runtime.block_on(crate::run::check_each(manifest, input, &settings)) {
            let status = err.exit_status();
            super::report(&anyhow::Error::new(crate::Error::from(err)));
            return Ok(status);
        }
        // The images that go at once share their enqueues when they can.
        settings.coalescer = Some(Coalescer::new(crate::run::MAX_ENQUEUE));
    }
    let result = runtime.block_on(async {
        let shutdown = stdout_closed.child_token();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_signal.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(i32::from(ExitStatus::Interrupted.code()));
                }
            }
        });
        match (&args.each, &args.input) {
            (Some(manifest), Some(input)) => {
                let runner = RunEach::new(manifest, input, &settings, &reporter);
                watch(&config, &runner, &status, shutdown).await
            }
            _ => {
                let runner = RunManifest::new(&settings, &reporter);
                watch(&config, &runner, &status, shutdown).await
            }
        }
    });
    runtime.shutdown_background();
    Ok(match result {
        Ok(_) if stdout_closed.is_cancelled() => ExitStatus::Success,
        Ok(summary) => summary.exit_status(),
        Err(err) => refuse(err),
    })
}

/// The hot folder's settings from the arguments of `invk-run watch`.
///
/// # Errors
/// A bad glob, a concurrency of 0, or bad folders.
pub fn watch_config(args: &WatchArgs) -> Result<WatchConfig, WatchError> {
    let mut config = WatchConfig::new(&args.dir)?.with_folders(
        args.processing_dir.as_deref(),
        args.done_dir.as_deref(),
        args.failed_dir.as_deref(),
    )?;
    config.patterns = if args.each.is_some() && args.include.is_empty() {
        let images: Vec<String> = IMAGE_PATTERNS.iter().map(|p| (*p).to_owned()).collect();
        FilePatterns::new(&images, &args.exclude)?
    } else {
        FilePatterns::new(&args.include, &args.exclude)?
    };
    config.fresh_names = args.each.is_some();
    config.settle = Duration::from_millis(args.settle_ms);
    config.incomplete_wait = Duration::from_secs_f64(args.incomplete_wait);
    config.concurrency = match args.concurrency {
        Some(n) => n as usize,
        None if args.each.is_some() => EACH_CONCURRENCY,
        None => 1,
    };
    config.check()?;
    Ok(config)
}

/// Prints a set-up error with its causes; returns its own exit status (2 for bad arguments
/// and folders).
fn refuse(err: WatchError) -> ExitStatus {
    let status = err.exit_status();
    super::report(&anyhow::Error::new(crate::Error::from(err)));
    status
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;

    fn args(line: &[&str]) -> WatchArgs {
        let cli = crate::cli::Cli::try_parse_from(line).expect("parse");
        match cli.command {
            Some(crate::cli::Command::Watch(args)) => *args,
            other => panic!("not a watch command: {other:?}"),
        }
    }

    #[test]
    fn defaults_live_inside_the_hot_folder() {
        let config = watch_config(&args(&["invk-run", "watch", "/hot"])).expect("resolve");
        assert_eq!(config.dir, Path::new("/hot"));
        assert_eq!(config.processing_dir, Path::new("/hot/processing"));
        assert_eq!(config.done_dir, Path::new("/hot/done"));
        assert_eq!(config.failed_dir, Path::new("/hot/failed"));
        assert_eq!(config.settle, Duration::from_millis(500));
        assert_eq!(config.concurrency, 1);
        let each = watch_config(&args(&[
            "invk-run", "watch", "/hot", "--each", "m.yaml", "--as", "Photo",
        ]))
        .expect("resolve");
        assert_eq!(
            each.concurrency, EACH_CONCURRENCY,
            "--each runs a burst at once"
        );
        assert_eq!(config.poll_period(), Duration::from_millis(125));
    }

    #[test]
    fn options_are_taken_and_bad_ones_refused() {
        let config = watch_config(&args(&[
            "invk-run",
            "watch",
            "/hot",
            "--done-dir",
            "/out/ok",
            "--failed-dir",
            "/out/bad",
            "--processing-dir",
            "/srv/hot/processing",
            "--settle-ms",
            "2000",
            "-j",
            "3",
            "--include",
            "*.job",
        ]))
        .expect("resolve");
        assert_eq!(config.done_dir, Path::new("/out/ok"));
        assert_eq!(config.failed_dir, Path::new("/out/bad"));
        assert_eq!(config.processing_dir, Path::new("/srv/hot/processing"));
        assert_eq!(config.settle, Duration::from_secs(2));
        assert_eq!(config.concurrency, 3);
        assert!(config.patterns.matches(Path::new("a.job")));
        assert!(!config.patterns.matches(Path::new("a.yaml")));

        let each = watch_config(&args(&[
            "invk-run", "watch", "/hot", "--each", "m.yaml", "--as", "Photo",
        ]))
        .expect("resolve");
        for (name, want) in [
            ("a.png", true),
            ("b.JPG", true),
            ("c.webp", true),
            ("m.yaml", false),
        ] {
            assert_eq!(each.patterns.matches(Path::new(name)), want, "{name}");
        }
        let missing =
            crate::cli::Cli::try_parse_from(["invk-run", "watch", "/hot", "--each", "m.yaml"])
                .expect_err("--each without --as");
        assert!(missing.to_string().contains("--as <INPUT>"), "{missing}");

        let err = watch_config(&args(&["invk-run", "watch", "/hot", "-j", "0"])).expect_err("-j 0");
        insta::assert_snapshot!(err.to_string(), @"--concurrency must be at least 1");
        // One folder, no manifests: the help and the parser agree.
        let extra = crate::cli::Cli::try_parse_from(["invk-run", "watch", "/hot", "a.yaml"])
            .expect_err("a manifest after the folder");
        assert_eq!(extra.kind(), clap::error::ErrorKind::UnknownArgument);
    }
}
