//! `invk-run [OPTIONS] MANIFEST...` and `invk-run validate MANIFEST...`.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::validate::Validation;
use crate::cli::{GlobalArgs, RunOptions};
use crate::exit_status::ExitStatus;
use crate::local_server::{Installation, RunningServer, ServerConfig, wanted_version};
use crate::run::progress::{ReportMode, Reporter};
use crate::run::settings::RunSettings;
use crate::run::{ManifestSource, RunError, run_manifest};

/// Runs the manifests named on the command line, one after the other (only checks them with
/// `validate_only`).
///
/// # Errors
/// Bad arguments; an invalid manifest ends the run with exit status 2 after all manifests were
/// checked.
pub fn run(
    global: &GlobalArgs,
    manifests: &[String],
    args: &RunOptions,
    shard: Option<crate::run::shard::ShardSpec>,
    validate_only: bool,
) -> anyhow::Result<ExitStatus> {
    let paths = expand_globs(manifests).map_err(crate::Error::from)?;
    if paths.is_empty() {
        return Err(crate::Error::from(RunError::NoManifest).into());
    }
    let mut settings = run_settings(global, args);
    settings.validate_only = validate_only;
    // Read before anything is sent or written: a bad shard is refused with exit status 2.
    if let Some(spec) = shard {
        settings.shard = crate::run::shard::resolve(spec, &|name| std::env::var(name).ok())
            .map_err(|e| crate::Error::from(RunError::from(e)))?;
    }
    let local = args.local && !validate_only && !args.dry_run;
    // `validate --json` prints one object per manifest itself, errors included.
    let validations = validate_only && global.json;
    if validations {
        settings.mode = ReportMode::Quiet;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let status = runtime.block_on(run_all(
        &paths,
        settings,
        Then {
            local,
            quiet: global.quiet,
            validations,
        },
    ));
    runtime.shutdown_background();
    status
}

/// The settings of a run from the global options and the run's own.
#[must_use]
pub fn run_settings(global: &GlobalArgs, run: &RunOptions) -> RunSettings {
    let mode = if global.json {
        ReportMode::Json
    } else if global.quiet {
        ReportMode::Quiet
    } else {
        ReportMode::Human
    };
    RunSettings {
        server_override: super::connect::one_server(global),
        pool: crate::server_check::server_list(&global.server),
        credentials: super::connect::credentials(global),
        mode,
        dry_run: run.dry_run,
        max_jobs: run.max_jobs,
        fresh: run.fresh,
        retry_failed: run.retry_failed,
        poll_only: run.poll_only,
        validate_only: false,
        window: run
            .window
            .map_or(crate::run::DEFAULT_WINDOW, |w| w as usize),
        server_wait: std::time::Duration::from_secs(run.server_wait),
        coalescer: None,
        notify: cli_notify(&run.notify),
        shard: crate::run::shard::Shard::WHOLE,
    }
}

/// The notifications `--notify`, `--notify-command`, `--notify-on` and `--notify-timeout` ask
/// for.
fn cli_notify(run: &crate::cli::NotifyArgs) -> Vec<crate::manifest::NotifyEntry> {
    use crate::manifest::{NotifyEntry, NotifyOn};
    let on = (run.notify_on.iter())
        .filter_map(|word| match word.as_str() {
            "done" => Some(NotifyOn::Done),
            "failed" => Some(NotifyOn::Failed),
            "job_failed" => Some(NotifyOn::JobFailed),
            _ => None,
        })
        .collect::<Vec<_>>();
    let urls = run.notify.iter().map(|url| NotifyEntry::url(url));
    let commands = (run.notify_command.iter())
        .map(|cmd| NotifyEntry::command(vec!["sh".into(), "-c".into(), cmd.clone()]));
    urls.chain(commands)
        .map(|entry| NotifyEntry {
            on: on.clone(),
            timeout: run.notify_timeout,
            ..entry
        })
        .collect()
}

/// What [`run_all`] does besides running each manifest.
#[derive(Clone, Copy)]
struct Then {
    /// Start a private server for the first manifest that has something to do (one whose
    /// journal says it is done starts none).
    local: bool,
    /// Start it without saying so.
    quiet: bool,
    /// Print each manifest's [`Validation`] on stdout instead of reporting its errors on
    /// stderr (`validate --json`).
    validations: bool,
}

/// Runs (or checks) the manifests one after the other, as `then` says.
async fn run_all(
    paths: &[PathBuf],
    mut settings: RunSettings,
    then: Then,
) -> anyhow::Result<ExitStatus> {
    let reporter = Reporter::new(settings.mode);
    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "interrupted: stopping; taking back the run's items that have not started, finishing the downloads under way (Ctrl-C again to quit now)"
            );
            on_ctrl_c.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(i32::from(ExitStatus::Interrupted.code()));
            }
        }
    });
    // The private server lives as long as the run (dropping it stops it).
    let mut private: Option<LocalServer> = None;
    let mut status = ExitStatus::Success;
    for path in paths {
        if cancel.is_cancelled() {
            status = status.max(ExitStatus::Interrupted);
            break;
        }
        let source = ManifestSource::new(path);
        if then.local && private.is_none() {
            if let Some(outcome) = crate::run::up_to_date(&source, &settings, &reporter).await {
                status = status.max(outcome.exit_status());
                continue;
            }
            let quiet = then.quiet;
            let server = tokio::task::spawn_blocking(move || start_local_server(quiet)).await??;
            settings.server_override = Some(server.url());
            settings.pool.clear();
            private = Some(server);
        }
        let result = run_manifest(&source, &settings, &reporter, cancel.clone()).await;
        if then.validations {
            let validation = match &result {
                Ok(outcome) => Validation::valid(outcome),
                Err(err) => Validation::invalid(path, err),
            };
            super::stdout::println(&serde_json::to_string(&validation)?)?;
        }
        match result {
            Ok(outcome) => status = status.max(outcome.exit_status()),
            Err(err) => {
                status = status.max(err.exit_status());
                if !then.validations {
                    super::report(&anyhow::Error::new(crate::Error::from(err)));
                }
            }
        }
    }
    Ok(status)
}

/// Expands the glob patterns among the arguments; plain paths are kept as given (a missing
/// one is reported by the run, naming it).
fn expand_globs(args: &[String]) -> Result<Vec<PathBuf>, RunError> {
    let mut out = Vec::new();
    for arg in args {
        if !arg.contains(['*', '?', '[']) {
            out.push(PathBuf::from(arg));
            continue;
        }
        let glob = globset::GlobBuilder::new(arg)
            .literal_separator(true)
            .build()
            .map_err(|source| RunError::BadGlob {
                pattern: arg.clone(),
                source,
            })?
            .compile_matcher();
        // Walk from the longest literal prefix folder.
        let literal: PathBuf = PathBuf::from(arg)
            .components()
            .take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '[']))
            .collect();
        let root = if literal.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            literal
        };
        let mut found = Vec::new();
        walk(&root, &mut |p| {
            let rel = p.strip_prefix("./").unwrap_or(p);
            if glob.is_match(rel) {
                found.push(rel.to_path_buf());
            }
        });
        if found.is_empty() {
            return Err(RunError::NoMatch {
                pattern: arg.clone(),
            });
        }
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn walk(dir: &std::path::Path, f: &mut dyn FnMut(&std::path::Path)) {
    let Ok(entries) = crate::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, f);
        } else {
            f(&path);
        }
    }
}

/// A private server for one run, and its temporary root. Fields drop in order: the server
/// stops before its root is removed.
pub(crate) struct LocalServer {
    server: RunningServer,
    _root: tempfile::TempDir,
}

impl LocalServer {
    /// Its URL.
    pub(crate) fn url(&self) -> String {
        self.server.url()
    }
}

/// Starts a private server (installing InvokeAI into the cache folder when needed); says so on
/// stderr unless `quiet`.
pub(crate) fn start_local_server(quiet: bool) -> anyhow::Result<LocalServer> {
    let inst = Installation::ensure_with(&wanted_version(), quiet).map_err(crate::Error::from)?;
    let root = tempfile::Builder::new()
        .prefix("invk-run-local-")
        .tempdir()?;
    if !quiet {
        eprintln!(
            "starting a private InvokeAI {} server (root {})",
            inst.version(),
            root.path().display()
        );
    }
    let mut config = ServerConfig::new(root.path().to_path_buf(), 0);
    config.die_with_parent = true;
    let server = RunningServer::start(&inst, &config).map_err(crate::Error::from)?;
    Ok(LocalServer {
        server,
        _root: root,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn settings_take_the_report_mode_and_a_non_blank_server() {
        let parse = |line: &[&str]| {
            let cli = crate::cli::Cli::try_parse_from(line).expect("parse");
            run_settings(&cli.global, &cli.run.options)
        };
        let plain = parse(&["invk-run", "a.yaml", "--max-jobs", "7", "--poll-only"]);
        assert_eq!(plain.mode, ReportMode::Human);
        assert_eq!(plain.max_jobs, 7);
        assert!(plain.poll_only && !plain.dry_run && !plain.validate_only);
        assert_eq!(
            parse(&["invk-run", "--json", "a.yaml"]).mode,
            ReportMode::Json
        );
        assert_eq!(parse(&["invk-run", "-q", "a.yaml"]).mode, ReportMode::Quiet);
        let blank = parse(&["invk-run", "--server", " ", "a.yaml"]);
        assert_eq!(
            blank.server_override, None,
            "a blank --server is no override"
        );
        let manifest = [crate::server_entry::ServerEntry::url("http://m:1")];
        let urls = |settings: &RunSettings| -> Vec<String> {
            settings
                .servers_for(&manifest)
                .expect("servers")
                .into_iter()
                .map(|e| e.url)
                .collect()
        };
        assert_eq!(urls(&blank), ["http://m:1"]);
        let given = parse(&["invk-run", "--server", "http://h:2", "a.yaml"]);
        assert_eq!(urls(&given), ["http://h:2"]);
        let pool = parse(&[
            "invk-run",
            "--server",
            "http://h:2,http://h:3#window=4",
            "a.yaml",
        ]);
        assert_eq!(urls(&pool), ["http://h:2", "http://h:3"]);
        assert_eq!(
            pool.servers_for(&manifest).expect("pool")[1].window,
            Some(4)
        );
        let bad = parse(&[
            "invk-run",
            "--server",
            "http://h:2,http://h:3#speed=9",
            "a.yaml",
        ]);
        assert!(bad.servers_for(&manifest).is_err());
    }

    #[test]
    fn globs_expand_sorted_and_plain_paths_stay() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["b.yaml", "a.yaml", "c.txt"] {
            crate::fs::write(dir.path().join(name), "").expect("write");
        }
        let pattern = format!("{}/*.yaml", dir.path().display());
        let got = expand_globs(&[pattern, "plain.yaml".into()]).expect("expand");
        assert_eq!(
            got,
            vec![
                dir.path().join("a.yaml"),
                dir.path().join("b.yaml"),
                PathBuf::from("plain.yaml")
            ]
        );
        let none = format!("{}/*.yml", dir.path().display());
        assert!(expand_globs(&[none]).is_err());
    }
}
