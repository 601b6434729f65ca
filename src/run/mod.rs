//! A run of manifests: plan, submit, track, download, clean up, resume.

pub mod batch;
mod cleanup;
pub mod clock;
pub mod coalesce;
mod collect;
mod dry_run;
mod engine;
mod execution;
mod health;
pub mod journal;
pub mod key;
mod ledger;
mod merge;
mod models;
pub mod needs;
mod pool;
pub mod prepare;
pub mod progress;
mod resume;
pub mod server_fault;
pub mod settings;
mod source;
mod status;
mod submit;
pub mod summary;
mod upload;

pub use engine::{DEFAULT_SERVER_WAIT, DEFAULT_WINDOW, MAX_ENQUEUE};
pub use status::{Cancelled, RunStatus, cancel, server_number_of, servers_of};

use crate::exit_status::ExitStatus;

/// An error of a run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// No manifest was named.
    #[error("no manifest given: name one or more YAML files, e.g. `invk-run jobs/*.yaml`")]
    NoManifest,
    /// A glob on the command line matches no file.
    #[error("`{pattern}` matches no file")]
    NoMatch {
        /// The pattern.
        pattern: String,
    },
    /// A glob on the command line is malformed.
    #[error("invalid glob `{pattern}`")]
    BadGlob {
        /// The pattern.
        pattern: String,
        /// Why.
        #[source]
        source: globset::Error,
    },
    /// A model input names a model the server does not have (or several).
    #[error("cannot resolve a model input given by name")]
    Model(#[source] crate::client::ClientError),
    /// A model a manifest names on a model input cannot be found on a server of a pool (that
    /// server is left out; the run stops when every server lacks it).
    #[error("the server at {server} lacks the model {model} that the manifest sets in {inputs}")]
    PoolModel {
        /// The server.
        server: String,
        /// The model, described.
        model: String,
        /// The inputs that name it.
        inputs: String,
        /// Why.
        #[source]
        source: Box<crate::client::ClientError>,
    },
    /// A server entry (its URL or options) cannot be used.
    #[error(transparent)]
    Entry(#[from] crate::server_entry::EntryError),
    /// The server stopped answering for longer than the run waits (`--server-wait`).
    #[error(
        "the server at {server} has not answered for {waited}; stopping here. What finished is \
         on disk and journaled: run the same command again when the server is back and the run \
         resumes where it stopped"
    )]
    ServerGone {
        /// The server.
        server: String,
        /// How long the run waited.
        waited: String,
    },
    /// The workflow could not be loaded or converted.
    #[error(transparent)]
    Workflow(#[from] crate::workflow::WorkflowError),
    /// The server refused a request or could not be reached.
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    /// A manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// A local file could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A file of a hot folder watched with `--each` is not an image that can be decoded.
    #[error("`{}` is not an image: {reason}", path.display())]
    NotAnImage {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The `--each` manifest's sweep sets the input `--as` names, which each image sets.
    #[error(
        "`--as {input}`: the sweep of `{}` sets `{input}` too, which would replace the image; take it out of the sweep",
        manifest.display()
    )]
    EachInputSwept {
        /// The manifest.
        manifest: PathBuf,
        /// The input named by `--as`.
        input: String,
    },
    /// `--as` names an input of the `--each` manifest's workflow that takes no image.
    #[error(
        "`--as {input}`: the workflow of `{}` has no image input `{input}`; `invk-run inputs WORKFLOW` lists its inputs",
        manifest.display()
    )]
    NotAnImageInput {
        /// The manifest.
        manifest: PathBuf,
        /// The input named by `--as`.
        input: String,
    },
}

impl RunError {
    /// The exit status this error ends the process with.
    #[must_use]
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            RunError::NoManifest
            | RunError::NoMatch { .. }
            | RunError::BadGlob { .. }
            | RunError::Model(_)
            | RunError::PoolModel { .. }
            | RunError::Entry(_) => ExitStatus::Invalid,
            RunError::Workflow(_)
            | RunError::Manifest(_)
            | RunError::NotAnImage { .. }
            | RunError::NotAnImageInput { .. }
            | RunError::EachInputSwept { .. } => ExitStatus::Invalid,
            RunError::Io(e) => crate::fs::place::PlaceError::exit_status_of(e),
            RunError::ServerGone { .. } | RunError::Client(_) => ExitStatus::Failed,
        }
    }
}

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::run::progress::Reporter;
use crate::run::settings::RunSettings;

/// Where a manifest's relative paths (workflow, images, output folder) are resolved from.
#[derive(Debug, Clone)]
pub struct ManifestSource {
    /// The manifest file to read.
    pub path: PathBuf,
    /// The folder its relative paths are relative to (its own folder, unless the hot folder
    /// moved it while it runs).
    pub base_dir: PathBuf,
    /// The name to report it under.
    pub display_name: String,
    /// The image it runs for (`invk-run watch --each`), if any.
    pub image: Option<ForImage>,
}

/// A manifest run for one image (`invk-run watch DIR --each MANIFEST --as INPUT`): `input` is
/// set to `image`, and templates see the image as `source`.
#[derive(Debug, Clone)]
pub struct ForImage {
    /// The workflow input the image is for (a name as `inputs:` takes it).
    pub input: String,
    /// The image file.
    pub image: PathBuf,
}

impl ManifestSource {
    /// A manifest read where it is.
    #[must_use]
    pub fn new(path: &Path) -> ManifestSource {
        ManifestSource {
            path: path.to_path_buf(),
            base_dir: crate::fs::parent_dir(path),
            display_name: path.display().to_string(),
            image: None,
        }
    }

    /// The name its run reports under: the manifest's, and for `--each` the image's after it
    /// (`each.yaml for cat.png`).
    #[must_use]
    pub fn run_name(&self) -> String {
        match self.image.as_ref().and_then(|i| i.image.file_name()) {
            Some(image) => format!("{} for {}", self.display_name, image.to_string_lossy()),
            None => self.display_name.clone(),
        }
    }
}

/// A job that failed, with the server's error.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobFailure {
    /// Job index.
    pub job: usize,
    /// Queue item id.
    pub item_id: i64,
    /// The server's error.
    pub error: String,
}

/// How a manifest's run ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ManifestOutcome {
    /// The manifest.
    pub manifest: String,
    /// The output folder.
    pub output_dir: PathBuf,
    /// Jobs in the manifest.
    pub jobs: usize,
    /// Jobs completed with their outputs on disk.
    pub completed: usize,
    /// Jobs that failed.
    pub failures: Vec<JobFailure>,
    /// Jobs that neither completed nor failed (a full queue refused them; a later run
    /// submits them).
    pub not_run: usize,
    /// Output files, relative to the output folder.
    pub files: Vec<PathBuf>,
    /// Wall time of the run, in seconds.
    pub seconds: f64,
    /// Whether the run was interrupted (Ctrl-C) before it finished.
    pub interrupted: bool,
}

impl ManifestOutcome {
    /// The exit status this outcome stands for.
    #[must_use]
    pub fn exit_status(&self) -> ExitStatus {
        if self.interrupted {
            ExitStatus::Interrupted
        } else if self.failures.is_empty() && self.not_run == 0 {
            ExitStatus::Success
        } else {
            ExitStatus::Failed
        }
    }
}

/// Runs one manifest to the end: validate, plan, upload, submit, track, download, clean up.
/// Cancelling `cancel` stops submitting, checkpoints the journal and returns an interrupted
/// outcome; running the manifest again resumes it.
///
/// # Errors
/// An invalid manifest (nothing is sent), or a server that cannot be reached.
pub async fn run_manifest(
    source: &ManifestSource,
    settings: &RunSettings,
    reporter: &Reporter,
    cancel: CancellationToken,
) -> Result<ManifestOutcome, RunError> {
    let display_path = PathBuf::from(&source.display_name);
    // `validate` and `--dry-run` work offline with the shipped schema snapshot (a library
    // workflow needs the server all the same); a run reads its server's own schemas (cached per
    // server version), so custom nodes and newer servers are typed too.
    let peek = Peek::read(&source.path);
    let offline = settings.validate_only || settings.dry_run;
    let entries = settings.servers_for(&peek.servers)?;
    if entries.len() > 1 && !offline {
        let (prepared, lanes) = pool::preflight(source, settings, reporter, &entries).await?;
        return execute(source, settings, reporter, cancel, &prepared, lanes).await;
    }
    let client = if peek.library || !offline {
        Some(connect(settings, &entries[0]).await?)
    } else {
        None
    };
    let live = match (&client, offline) {
        (Some(client), false) => crate::client::server_schemas(client).await.0,
        _ => None,
    };
    let schemas = live
        .as_ref()
        .unwrap_or_else(|| crate::workflow::SchemaSet::snapshot());
    let prepared = prepare::prepare(
        &source.path,
        &display_path,
        &source.base_dir,
        source.image.as_ref(),
        settings.max_jobs,
        client.as_ref(),
        schemas,
    )
    .await?;
    if settings.validate_only || settings.dry_run {
        return Ok(dry_run::report(&prepared, source, settings, reporter));
    }
    // The manifest as checked may name servers its lenient first reading missed.
    let mut entries = settings.servers_for(&prepared.file.server_entries())?;
    if entries.len() > 1 {
        let (prepared, lanes) = pool::preflight(source, settings, reporter, &entries).await?;
        return execute(source, settings, reporter, cancel, &prepared, lanes).await;
    }
    let entry = entries.swap_remove(0);
    let client = match client {
        Some(c) => c,
        None => connect(settings, &entry).await?,
    };
    let lanes = vec![pool::PoolServer {
        entry,
        client,
        models: crate::client::ModelResolver::new(),
    }];
    execute(source, settings, reporter, cancel, &prepared, lanes).await
}

/// Carries a prepared manifest out on `servers` (their URLs and clients, in order).
async fn execute(
    source: &ManifestSource,
    settings: &RunSettings,
    reporter: &Reporter,
    cancel: CancellationToken,
    prepared: &prepare::Prepared,
    servers: Vec<pool::PoolServer>,
) -> Result<ManifestOutcome, RunError> {
    let mut ledger = ledger::Ledger::open(&prepared.output_dir, settings.fresh)?;
    let mut lanes = Vec::with_capacity(servers.len());
    for server in servers {
        let number = ledger.server_number(&server.entry.url)?;
        lanes.push(execution::Lane {
            window: server.entry.window_of(settings.window).max(1),
            url: server.entry.url,
            client: server.client,
            number,
            models: server.models,
        });
    }
    let pool = lanes.len() > 1;
    // The manifest's own listeners (its notifications) hear this run only.
    let reporter = &match notify_listener(source, settings, prepared) {
        Some(notify) => reporter.with(notify),
        None => reporter.clone(),
    };
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let execution = execution::Execution {
        prepared,
        lanes,
        reporter,
        name: source.run_name(),
        run_id,
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
        // Runs share enqueues on one server only.
        coalescer: if pool {
            None
        } else {
            settings.coalescer.clone()
        },
    };
    let result = execution.run(ledger, cancel).await;
    reporter.finish(&run_end(source, prepared, &result)).await;
    result
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
        manifest,
        manifest,
        &crate::fs::parent_dir(manifest),
        None,
        u64::MAX,
        None,
        crate::workflow::SchemaSet::snapshot(),
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
    prepare::prepare(
        manifest,
        manifest,
        &crate::fs::parent_dir(manifest),
        Some(&image),
        settings.max_jobs,
        client.as_ref(),
        crate::workflow::SchemaSet::snapshot(),
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
