//! A run of manifests: plan, submit, track, download, clean up, resume.

mod balance;
mod cleanup;
pub mod clock;
pub mod coalesce;
mod collect;
mod download;
mod dry_run;
mod engine;
mod error;
mod failover;
mod finish;
pub mod journal;
pub mod key;
mod lane;
mod ledger;
mod manifest_source;
mod merge;
pub mod needs;
mod outcome;
mod preflight;
pub mod prepare;
pub mod progress;
mod rejoin;
mod repair;
mod resume;
mod running;
pub mod server_fault;
pub mod settings;
pub mod shard;
mod source;
mod status;
mod submit;
pub mod summary;
mod take_back;

pub use engine::{DEFAULT_SERVER_WAIT, DEFAULT_WINDOW, MAX_ENQUEUE};
pub use error::RunError;
pub use manifest_source::{ForImage, ManifestSource};
pub use outcome::{JobFailure, ManifestOutcome};
pub use prepare::up_to_date;
pub use repair::{MissingFile, Repair};
pub use status::{
    Cancelled, RunStatus, cancel, runs_below, server_number_of, servers_of, servers_of_shard,
};

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::run::progress::Reporter;
use crate::run::settings::RunSettings;

/// Runs one manifest to the end: validate, plan, upload, submit, track, download, clean up.
/// Cancelling `cancel` stops submitting, checkpoints the journal and returns an interrupted
/// outcome; running the manifest again resumes it. A run whose journal says every job is done,
/// with every file on disk, ends there ([`up_to_date`]): no server is asked.
///
/// # Errors
/// An invalid manifest (nothing is sent), or a server that cannot be reached
/// ([`RunError::Unreachable`] when it does not answer at all: nothing is sent or written).
pub async fn run_manifest(
    source: &ManifestSource,
    settings: &RunSettings,
    reporter: &Reporter,
    cancel: CancellationToken,
) -> Result<ManifestOutcome, RunError> {
    let asked = Asked {
        source,
        settings,
        reporter,
    };
    // `validate` and `--dry-run` work offline with the shipped schema snapshot (a library
    // workflow needs the server all the same); a run reads its server's own schemas (cached per
    // server version), so custom nodes and newer servers are typed too.
    let peek = Peek::read(&source.path);
    let offline = settings.checks_only();
    // The journal is read before any server is asked: a run with nothing to do ends here.
    let mut checked = if offline || peek.library {
        None
    } else {
        Some(prepare::check_offline(source, settings).await)
    };
    if let Some(Ok(prepared)) = &checked
        && !settings.fresh
    {
        // A folder of another shard count is refused before any server is asked.
        shard::check_folder(&prepared.output_dir, settings.shard, false)?;
        if let Some(outcome) =
            prepare::tell_if_done(prepared, source, settings.shard, reporter).await
        {
            return Ok(outcome);
        }
    }
    let entries = settings.servers_for(&peek.servers)?;
    let ready = if entries.len() > 1 && !offline {
        asked.pool(&entries, &mut checked).await?
    } else {
        match asked.one(peek.library, entries, checked).await? {
            Start::Run(ready) => *ready,
            Start::Done(outcome) => return Ok(outcome),
        }
    };
    asked.execute(ready, cancel).await
}

/// A run as it was asked for: the manifest, the settings, and who hears of it.
#[derive(Clone, Copy)]
struct Asked<'a> {
    source: &'a ManifestSource,
    settings: &'a RunSettings,
    reporter: &'a Reporter,
}

/// What a run goes on: its manifest as checked against its servers, the servers that answered
/// (in the order they were named), and those of a pool that did not (they join when they
/// answer).
struct Ready {
    prepared: prepare::Prepared,
    servers: Vec<preflight::PoolServer>,
    absent: Vec<preflight::Absent>,
}

/// Where a manifest on one server stands once checked: ready to run, or done already (it was
/// only to be validated or dry-run).
enum Start {
    Run(Box<Ready>),
    Done(ManifestOutcome),
}

impl Asked<'_> {
    /// Checks a pool of servers (`entries`) and the manifest against them; what answered is
    /// ready. The manifest's own errors, as `checked` offline, come before "no server answers".
    async fn pool(
        self,
        entries: &[crate::server_entry::ServerEntry],
        checked: &mut Option<Result<prepare::Prepared, RunError>>,
    ) -> Result<Ready, RunError> {
        let (prepared, servers, absent) =
            preflight::preflight(self.source, self.settings, self.reporter, entries)
                .await
                .map_err(|e| no_answer(e, entries, checked))?;
        Ok(Ready {
            prepared,
            servers,
            absent,
        })
    }

    /// Checks the manifest against the one server of `entries` (offline for `validate` and
    /// `--dry-run`, unless its workflow is in the server's `library`), and reports it when
    /// that is all that was asked. A manifest that names a pool once checked goes to it.
    async fn one(
        self,
        library: bool,
        entries: Vec<crate::server_entry::ServerEntry>,
        mut checked: Option<Result<prepare::Prepared, RunError>>,
    ) -> Result<Start, RunError> {
        let Asked {
            source, settings, ..
        } = self;
        let offline = settings.checks_only();
        let client = if library || !offline {
            let client = connect(settings, &entries[0]).await?;
            if !offline {
                // A server that does not answer is found before anything is planned or
                // written (one that answers with an error is told by the requests that meet
                // it).
                match client.app().version().await {
                    Err(e) if e.is_unreachable() => {
                        return Err(no_answer(e.into(), &entries, &mut checked));
                    }
                    _ => {}
                }
            }
            Some(client)
        } else {
            None
        };
        let live = match (&client, offline) {
            (Some(client), false) => crate::client::server_schemas(client).await.0,
            _ => None,
        };
        let schemas = live.map_or_else(crate::workflow::SchemaSet::snapshot, std::sync::Arc::new);
        let prepared =
            prepare::prepare(source, settings.max_jobs, client.as_ref(), &schemas).await?;
        // The checked manifest holds what it needs of the schemas: the whole set (the server's
        // or the shipped one) is not kept for the run.
        drop(schemas);
        if offline {
            let outcome = dry_run::report(&prepared, source, settings, self.reporter);
            return Ok(Start::Done(outcome));
        }
        // The manifest as checked may name servers its lenient first reading missed.
        let mut entries = settings.servers_for(&prepared.file.server_entries())?;
        if entries.len() > 1 {
            return Ok(Start::Run(Box::new(self.pool(&entries, &mut None).await?)));
        }
        let entry = entries.swap_remove(0);
        let client = match client {
            Some(c) => c,
            None => connect(settings, &entry).await?,
        };
        Ok(Start::Run(Box::new(Ready {
            prepared,
            servers: vec![preflight::PoolServer {
                entry,
                client,
                models: crate::client::ModelResolver::new(),
            }],
            absent: Vec::new(),
        })))
    }

    /// Carries a manifest that is `ready` out on its servers, and on those absent from its
    /// pool's preflight that answer later; `cancel` is Ctrl-C.
    async fn execute(
        self,
        ready: Ready,
        cancel: CancellationToken,
    ) -> Result<ManifestOutcome, RunError> {
        let Asked {
            source,
            settings,
            reporter,
        } = self;
        let Ready {
            prepared,
            servers,
            absent,
        } = ready;
        let prepared = &prepared;
        let store = crate::store::LocalStore::open(&prepared.output_dir)
            .map_err(crate::fs::place::PlaceError::into_io)?;
        let store: std::sync::Arc<dyn crate::store::OutputStore> = std::sync::Arc::new(store);
        shard::check_folder(&prepared.output_dir, settings.shard, settings.fresh)?;
        let ledger = ledger::Ledger::open(&*store, settings.fresh, settings.shard)?;
        resume::remove_stale_temporaries(&prepared.output_dir, ledger.state());
        let several = servers.len() + absent.len() > 1;
        // The manifest's own listeners (its notifications) hear this run only.
        let reporter = &match notify_listener(source, settings, prepared) {
            Some(notify) => reporter.with(notify),
            None => reporter.clone(),
        };
        let ctx = running::RunContext {
            prepared,
            reporter: reporter.clone(),
            name: source.run_name(),
            run_id: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            retry_failed: settings.retry_failed,
            poll_interval: if settings.poll_only {
                std::time::Duration::from_millis(500)
            } else {
                std::time::Duration::from_secs(5)
            },
            track_mode: if settings.poll_only {
                crate::client::tracker::TrackMode::PollOnly
            } else {
                crate::client::tracker::TrackMode::Events
            },
            window: settings.window,
            server_wait: settings.server_wait,
            // Runs share the enqueues they send to one server: those of a pool's run go to
            // several.
            coalescer: settings.coalescer.clone().filter(|_| !several),
            store,
            names_servers: several,
            shard: settings.shard,
            cancel,
        };
        let result = async {
            running::Run::open(ctx, ledger, servers, absent)
                .await?
                .go()
                .await
        }
        .await;
        reporter.finish(&run_end(source, prepared, &result)).await;
        result
    }
}

/// The output folder of a run: `target` itself when it is a folder, else the output folder of
/// the manifest `target` names (checked offline; `output.dir` rendered for today).
///
/// # Errors
/// An invalid manifest, or one whose workflow is in a server's library.
pub async fn output_dir_of(target: &Path) -> Result<PathBuf, RunError> {
    if target.is_dir() {
        return Ok(target.to_path_buf());
    }
    Ok(prepare_offline(target).await?.output_dir)
}

/// Reads and checks a manifest without a server (the shipped schema snapshot, no job limit), to
/// learn its output folder and settings.
///
/// # Errors
/// An invalid manifest, or one whose workflow is in a server's library.
pub async fn prepare_offline(manifest: &Path) -> Result<prepare::Prepared, RunError> {
    prepare::prepare(
        &ManifestSource::new(manifest),
        u64::MAX,
        None,
        &crate::workflow::SchemaSet::snapshot(),
    )
    .await
}

/// Checks a manifest meant for `invk-run watch --each MANIFEST --as INPUT` before anything is
/// watched: the manifest is valid when `input` is set to an image, and `input` is an image
/// input of its workflow. A workflow in the server's library is read from the server.
///
/// # Errors
/// [`RunError::NotAnImageInput`], an invalid manifest, or a server that cannot be reached.
pub async fn check_each(
    manifest: &Path,
    input: &str,
    settings: &RunSettings,
) -> Result<(), RunError> {
    // A stand-in image, so that the manifest is checked as each image's run will be.
    let stand_in = tempfile::Builder::new()
        .prefix("invk-run-each-")
        .suffix(".png")
        .tempfile()?;
    image::RgbImage::new(1, 1)
        .write_to(
            &mut std::io::BufWriter::new(stand_in.as_file()),
            image::ImageFormat::Png,
        )
        .map_err(std::io::Error::other)?;
    let image = ForImage {
        input: input.to_owned(),
        image: stand_in.path().to_path_buf(),
    };
    let peek = Peek::read(manifest);
    let client = if peek.library {
        Some(connect(settings, &settings.servers_for(&peek.servers)?[0]).await?)
    } else {
        None
    };
    let source = ManifestSource {
        image: Some(image),
        ..ManifestSource::new(manifest)
    };
    prepare::prepare(
        &source,
        settings.max_jobs,
        client.as_ref(),
        &crate::workflow::SchemaSet::snapshot(),
    )
    .await?;
    Ok(())
}

/// What a run needs to know of a manifest before it is checked: whether its workflow is in the
/// server's library, and its `server:` (read leniently; the full checks come later).
struct Peek {
    library: bool,
    servers: Vec<crate::server_entry::ServerEntry>,
}

impl Peek {
    fn read(path: &Path) -> Peek {
        let value = crate::manifest::read_manifest(path, path)
            .ok()
            .and_then(|t| serde_norway::from_str::<serde_json::Value>(&t).ok())
            .unwrap_or_default();
        Peek {
            library: value["workflow"].get("library").is_some(),
            servers: crate::manifest::server_entries_of(&value["server"]),
        }
    }
}

/// A client error that says the servers `entries` do not answer at all, as
/// [`RunError::Unreachable`] (with the way out), unless the manifest, as `checked` offline, is
/// invalid: its own errors come first. Any other error as it is.
fn no_answer(
    error: RunError,
    entries: &[crate::server_entry::ServerEntry],
    checked: &mut Option<Result<prepare::Prepared, RunError>>,
) -> RunError {
    match error {
        RunError::Client(e) if e.is_unreachable() => {
            if let Some(Err(invalid)) = checked.take() {
                return invalid;
            }
            RunError::Unreachable {
                servers: (entries.iter())
                    .map(|e| e.url.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                several: entries.len() > 1,
                // The connection's own error: the client's message would name the way out
                // again.
                source: match e {
                    crate::client::ClientError::Connect { source, .. } => Box::new(source),
                    other => Box::new(other),
                },
            }
        }
        other => other,
    }
}

/// A client for the run's server, logged in when the settings say so.
async fn connect(
    settings: &RunSettings,
    entry: &crate::server_entry::ServerEntry,
) -> Result<crate::client::Client, RunError> {
    let credentials = settings::entry_credentials(entry, &settings.credentials)?;
    Ok(crate::client::Client::connect(&entry.url, &credentials).await?)
}

/// The notify listener of a manifest's run: the command line's notifications and the
/// manifest's `notify:`; none when neither names any.
fn notify_listener(
    source: &ManifestSource,
    settings: &RunSettings,
    prepared: &prepare::Prepared,
) -> Option<std::sync::Arc<progress::notify::Notifier>> {
    let manifest = prepared.file.manifest().notify.as_ref();
    let entries: Vec<_> = (settings.notify.iter())
        .chain(manifest.map_or(&[][..], |n| n.entries()))
        .cloned()
        .collect();
    let output_dir = std::path::absolute(&prepared.output_dir).unwrap_or_default();
    (!entries.is_empty()).then(|| {
        std::sync::Arc::new(progress::notify::Notifier::new(
            &source.run_name(),
            &output_dir,
            entries,
        ))
    })
}

/// How a manifest's run ended, for its listeners.
fn run_end(
    source: &ManifestSource,
    prepared: &prepare::Prepared,
    result: &Result<ManifestOutcome, RunError>,
) -> progress::RunEnd {
    let output_dir = std::path::absolute(&prepared.output_dir).unwrap_or_default();
    let (totals, error) = match result {
        Ok(o) => (
            Some(progress::RunTotals {
                jobs: o.jobs,
                completed: o.completed,
                failed: (o.failures.iter())
                    .map(|f| progress::FailedJob {
                        job: f.job,
                        item_id: f.item_id,
                        error: f.error.clone(),
                        server: None,
                    })
                    .collect(),
                not_run: o.not_run,
                interrupted: o.interrupted,
                seconds: o.seconds,
            }),
            None,
        ),
        Err(e) => (None, Some(crate::error_chain::error_chain(e))),
    };
    progress::RunEnd {
        manifest: source.run_name(),
        output_dir,
        totals,
        error,
    }
}
