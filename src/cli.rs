//! Command-line arguments (clap). No I/O and no logic here: [`crate::commands`] turns these into
//! settings and runs them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::env_vars;

/// Run InvokeAI workflows unattended from YAML manifests.
///
/// `invk-run jobs/*.yaml` expands each manifest into InvokeAI batches, uploads its images,
/// submits, tracks the jobs, downloads every output into a folder tree and cleans the server up.
#[derive(Debug, Parser)]
#[command(
    name = "invk-run",
    version,
    override_usage = "invk-run [OPTIONS] [MANIFEST]...\n       invk-run [OPTIONS] <COMMAND>"
)]
#[command(
    after_help = "Exit codes: 0 all done, 1 some jobs failed, 2 invalid input, 130 interrupted."
)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,

    /// The command; without one, the manifests given are run.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Options of a run (when no command is given).
    #[command(flatten)]
    pub run: RunArgs,
}

/// Options shared by every command.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Base URL of the InvokeAI server [default: http://127.0.0.1:9090]. A run and `watch` take
    /// several (repeat it, or separate them with commas, also in INVK_SERVER) and share the jobs
    /// among them; `servers check` checks each; `status`, `cancel`, `workflows` and `boards`
    /// talk to one.
    #[arg(long, global = true, env = env_vars::INVK_SERVER, value_name = "URL", action = clap::ArgAction::Append)]
    pub server: Vec<String>,

    /// Bearer token for a multi-user server.
    #[arg(long, global = true, env = env_vars::INVK_TOKEN, hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Email to log into a multi-user server with (the password comes from INVK_PASSWORD).
    #[arg(long, global = true, env = env_vars::INVK_EMAIL, value_name = "EMAIL")]
    pub email: Option<String>,

    /// Print one JSON object per line (or one JSON document) instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// More log output (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// A run of manifests: the manifests and the options of the run.
#[derive(Debug, Args, Clone, Default)]
pub struct RunArgs {
    /// Manifests to run (globs are expanded).
    #[arg(value_name = "MANIFEST")]
    pub manifests: Vec<String>,

    /// Options of the run.
    #[command(flatten)]
    pub options: RunOptions,

    /// Run only shard K of N of the sweep: the jobs whose 0-based index is K modulo N. N runners
    /// (one per shard) can write into one output folder at once (docs/scale.md). `auto` (or
    /// `auto/N`) reads the shard from INVK_SHARD=K/N, a Kubernetes Indexed Job
    /// (JOB_COMPLETION_INDEX, with the count as `auto/N`) or a Slurm job array
    /// (SLURM_ARRAY_TASK_ID, _COUNT, _MIN).
    #[arg(long, value_name = "K/N|auto[/N]", value_parser = shard_spec)]
    pub shard: Option<crate::run::shard::ShardSpec>,
}

/// Options of a run of manifests (also those of each run of `watch`).
#[derive(Debug, Args, Clone, Default)]
pub struct RunOptions {
    /// Print the expanded jobs and enqueue payloads, send nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Refuse a manifest that expands to more jobs than this.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_jobs: u64,

    /// Ignore the journal of an earlier run and start over.
    #[arg(long)]
    pub fresh: bool,

    /// Run only the jobs that failed in the earlier run.
    #[arg(long, conflicts_with = "fresh")]
    pub retry_failed: bool,

    /// Track by polling only (no Socket.IO).
    #[arg(long)]
    pub poll_only: bool,

    /// Keep at most N of the run's sessions pending on the server at once (default 16); the
    /// rest are submitted as these finish.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub window: Option<u32>,

    /// How long to wait for a server that stops answering before the run stops (it resumes
    /// when started again).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub server_wait: u64,

    /// Run on a private local InvokeAI server, installed into the cache folder when needed,
    /// started for this run and stopped after it.
    #[arg(long, conflicts_with = "server")]
    pub local: bool,

    /// Notifications of each manifest's run.
    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// `--shard`: `K/N`, `auto` or `auto/N`.
fn shard_spec(text: &str) -> Result<crate::run::shard::ShardSpec, String> {
    crate::run::shard::ShardSpec::parse(text)
}

/// The command line's notifications (docs/notify.md).
#[derive(Debug, Clone, Default, Args)]
pub struct NotifyArgs {
    /// When each manifest's run ends, POST its JSON summary to URL (repeatable; besides the
    /// manifest's `notify:`; docs/notify.md). No secrets in it: a manifest's `url_env` and
    /// `headers_env` take them from the environment.
    #[arg(long, value_name = "URL", value_parser = crate::manifest::check_cli_url)]
    pub notify: Vec<String>,

    /// When each manifest's run ends, run CMD with `sh -c` and the JSON summary on its stdin
    /// (repeatable).
    #[arg(long, value_name = "CMD")]
    pub notify_command: Vec<String>,

    /// Which ends `--notify` and `--notify-command` are sent on, comma-separated: `done` (every
    /// job completed), `failed` (any other end), `job_failed` (each failed job) [default:
    /// done,failed].
    #[arg(long, value_name = "ENDS", value_delimiter = ',', value_parser = ["done", "failed", "job_failed"])]
    pub notify_on: Vec<String>,

    /// Seconds each notification of the command line may take, retries included [default: 30].
    #[arg(long, value_name = "SECONDS", value_parser = notify_timeout)]
    pub notify_timeout: Option<f64>,
}

/// A notification's time bound: seconds, more than 0 and at most 600.
fn notify_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(t) if t > 0.0 && t <= crate::manifest::MAX_NOTIFY_TIMEOUT_SECS => Ok(t),
        _ => Err(format!(
            "`{text}`: give seconds, more than 0 and at most {}",
            crate::manifest::MAX_NOTIFY_TIMEOUT_SECS
        )),
    }
}

/// `--incomplete-wait`: seconds, 0 to a day.
fn wait_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(t) if (0.0..=86_400.0).contains(&t) => Ok(t),
        _ => Err(format!("`{text}`: give seconds, from 0 to 86400")),
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests without sending anything.
    Validate {
        /// Manifests to check (globs are expanded).
        #[arg(required = true, value_name = "MANIFEST")]
        manifests: Vec<String>,

        /// Refuse a manifest that expands to more jobs than this (as a run does).
        #[arg(long, value_name = "N", default_value_t = 10_000)]
        max_jobs: u64,
    },
    /// Run every manifest dropped into a folder (or, with `--each`, one manifest for every image).
    Watch(Box<WatchArgs>),
    /// A run's progress: done, failed, on the server, not started (from its journal, and its
    /// server when it answers).
    Status {
        /// The run's output folder, or its manifest.
        #[arg(value_name = "OUTPUT_DIR|MANIFEST")]
        target: PathBuf,
    },
    /// Cancel a run's items still pending or running on its server (the next run submits
    /// them again).
    Cancel {
        /// The run's output folder, or its manifest.
        #[arg(value_name = "OUTPUT_DIR|MANIFEST")]
        target: PathBuf,
    },
    /// List a workflow's inputs.
    Inputs {
        /// Workflow JSON file exported from the InvokeAI web UI.
        workflow: PathBuf,
    },
    /// Print the enqueue payload a workflow converts to (offline).
    Graph {
        /// Workflow JSON file exported from the InvokeAI web UI.
        workflow: PathBuf,
        /// Set an input: NAME is a user name, a system name (node.field) or #INDEX.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
    },
    /// The server's workflow library.
    #[command(subcommand)]
    Workflows(WorkflowsCommand),
    /// The server's boards.
    #[command(subcommand)]
    Boards(BoardsCommand),
    /// A managed local InvokeAI server.
    #[command(subcommand)]
    Server(ServerCommand),
    /// Several servers: check each one before anything is sent.
    #[command(subcommand)]
    Servers(ServersCommand),
    /// Rebuild the gallery (`index.html`) and the grids of an output folder from what is on disk.
    Report {
        /// An output folder, or the manifest that wrote it.
        #[arg(value_name = "OUTPUT_DIR|MANIFEST")]
        target: PathBuf,
    },
    /// Print shell completions to stdout (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Options of `invk-run watch`.
#[derive(Debug, Args, Clone)]
pub struct WatchArgs {
    /// The hot folder.
    pub dir: PathBuf,
    /// Run this manifest once for every image that lands in the folder (with `--as`), instead
    /// of running the manifests dropped there.
    #[arg(long, value_name = "MANIFEST", requires = "input")]
    pub each: Option<PathBuf>,
    /// With `--each`: the image input of the manifest's workflow that each image is set to.
    /// Templates see the image as `source.name`, `source.stem`, `source.dir` and `source.path`.
    #[arg(long = "as", id = "input", value_name = "INPUT", requires = "each")]
    pub input: Option<String>,
    /// Which files are taken (glob, repeatable) [default: *.yaml, *.yml; with --each: *.png,
    /// *.jpg, *.jpeg, *.webp]
    #[arg(long = "include", value_name = "GLOB")]
    pub include: Vec<String>,
    /// Files to ignore (glob, repeatable).
    #[arg(long = "exclude", value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Where claimed manifests go while they run [default: DIR/processing]
    #[arg(long, value_name = "DIR")]
    pub processing_dir: Option<PathBuf>,
    /// Where finished manifests go [default: DIR/done]
    #[arg(long, value_name = "DIR")]
    pub done_dir: Option<PathBuf>,
    /// Where invalid or failed manifests go [default: DIR/failed]
    #[arg(long, value_name = "DIR")]
    pub failed_dir: Option<PathBuf>,
    /// How long a file's size and time must stay unchanged before it is claimed.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub settle_ms: u64,
    /// How long an image that stops before its end (or a file still open for writing) may stay
    /// unchanged before it is given up on: the image is filed as failed, never sent.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = wait_seconds)]
    pub incomplete_wait: f64,
    /// How many manifests run at once [default: 1; with --each: 16, the images of a burst
    /// that go at once share their enqueues].
    #[arg(long, short = 'j', value_name = "N")]
    pub concurrency: Option<u32>,
    /// Options for each run.
    #[command(flatten)]
    pub run: RunOptions,
}

/// `invk-run workflows ...`
#[derive(Debug, Subcommand)]
pub enum WorkflowsCommand {
    /// List the workflows in the server's library.
    List,
    /// Upload a workflow file into the library; prints the new id.
    Upload {
        /// Workflow JSON file.
        file: PathBuf,
    },
    /// Download a workflow from the library into a file.
    Download {
        /// Workflow id or name.
        id_or_name: String,
        /// Where to write it.
        file: PathBuf,
    },
    /// Delete a workflow from the library.
    Delete {
        /// Workflow id or name.
        id_or_name: String,
    },
}

/// `invk-run boards ...`
#[derive(Debug, Subcommand)]
pub enum BoardsCommand {
    /// List the boards.
    List,
    /// Delete a board.
    Delete {
        /// Board id or name.
        id_or_name: String,
        /// Delete the board's images too (otherwise they become uncategorized).
        #[arg(long)]
        with_images: bool,
    },
}

/// `invk-run servers ...`
#[derive(Debug, Subcommand)]
pub enum ServersCommand {
    /// Check each server (`--server URL`, repeatable, or a comma-separated `INVK_SERVER`):
    /// reachable, version, auth, queue, and whether it can run a workflow or manifest. Exit
    /// status 0 when every server is usable, 1 when some is not, 2 for bad input.
    Check {
        /// A workflow (`.json`) or manifest: check that each server has its node types and
        /// models.
        #[arg(value_name = "WORKFLOW_OR_MANIFEST")]
        target: Option<PathBuf>,
        /// How long one server's check may take.
        #[arg(long, value_name = "SECONDS", default_value_t = crate::server_check::DEFAULT_CHECK_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
    },
}

/// `invk-run server ...`
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Install InvokeAI into a virtual environment in the cache folder.
    Install(ServerArgs),
    /// Start the managed server in the background and wait until it answers.
    Start(ServerArgs),
    /// Stop the managed server.
    Stop(ServerArgs),
    /// Tell whether the managed server is installed and running.
    Status(ServerArgs),
    /// Print the managed server's log.
    Logs(ServerArgs),
}

/// Options of the managed server.
#[derive(Debug, Args, Clone)]
pub struct ServerArgs {
    /// InvokeAI version to install and run.
    #[arg(long, env = env_vars::INVK_INVOKEAI_VERSION, value_name = "VERSION")]
    pub version: Option<String>,
    /// The server's data folder (root) [default: the cache folder's `root`]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Port to listen on (loopback only).
    #[arg(long, default_value_t = 9090)]
    pub port: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn manifests_without_a_command_are_a_run() {
        let cli =
            Cli::try_parse_from(["invk-run", "a.yaml", "b.yaml", "--dry-run"]).expect("parse");
        assert!(cli.command.is_none());
        assert_eq!(cli.run.manifests, ["a.yaml", "b.yaml"]);
        assert!(cli.run.options.dry_run);
    }

    #[test]
    fn servers_check_takes_the_server_option_repeated() {
        let cli = Cli::try_parse_from([
            "invk-run",
            "servers",
            "check",
            "--server",
            "http://a:9090",
            "--server",
            "http://b:9090,http://c:9090",
            "wf.json",
        ])
        .expect("parse");
        assert_eq!(
            cli.global.server,
            ["http://a:9090", "http://b:9090,http://c:9090"]
        );
        assert!(matches!(
            cli.command,
            Some(Command::Servers(ServersCommand::Check {
                target: Some(_),
                timeout: 60
            }))
        ));
    }
}
