//! The errors of a run, and the exit status each ends the process with.

use std::path::PathBuf;

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
    /// `--shard auto` found no shard, or variables that disagree.
    #[error(transparent)]
    Shard(#[from] ShardError),
    /// The output folder holds the journals of a sweep split into another number of shards.
    #[error("{}", shard_count_text(dir, *found, journals, *wanted))]
    ShardCount {
        /// The output folder.
        dir: PathBuf,
        /// The shard count its journals were written with (1: not sharded).
        found: u32,
        /// The journals found.
        journals: String,
        /// The count this run was given.
        wanted: u32,
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
    /// The run's server (or every server of its pool) does not answer at all: found before
    /// anything is planned, sent or written.
    #[error(
        "{} {servers} {}; nothing was sent. Start it, name a server that runs with \
         `--server URL` (or `INVK_SERVER`), or add `--local` to run on a private server that \
         invk-run starts itself",
        if *several { "none of the servers" } else { "the InvokeAI server at" },
        if *several { "answers" } else { "does not answer" }
    )]
    Unreachable {
        /// The server's URL (the pool's, comma-separated).
        servers: String,
        /// Whether it is a pool.
        several: bool,
        /// Why (the connection's error).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
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
            | RunError::Entry(_)
            | RunError::Shard(_)
            | RunError::ShardCount { .. } => ExitStatus::Invalid,
            RunError::Workflow(_)
            | RunError::Manifest(_)
            | RunError::NotAnImage { .. }
            | RunError::NotAnImageInput { .. }
            | RunError::EachInputSwept { .. } => ExitStatus::Invalid,
            RunError::Io(e) => crate::fs::place::PlaceError::exit_status_of(e),
            RunError::ServerGone { .. } | RunError::Client(_) | RunError::Unreachable { .. } => {
                ExitStatus::Failed
            }
        }
    }
}

/// The message of [`RunError::ShardCount`].
fn shard_count_text(dir: &std::path::Path, found: u32, journals: &str, wanted: u32) -> String {
    let was = if found == 1 {
        "a run that is not sharded".to_owned()
    } else {
        format!("a run split into {found} shards")
    };
    let now = if wanted == 1 {
        "this run is not sharded".to_owned()
    } else {
        format!("this run is one of {wanted} shards")
    };
    let how = if found == 1 {
        "run it without `--shard`".to_owned()
    } else {
        format!("run its shards with `--shard K/{found}`")
    };
    format!(
        "`{}` holds {was} ({journals}) but {now}: {how}, or start the folder over with `--fresh` \
         (the earlier journals are set aside)",
        dir.display()
    )
}

/// A shard that cannot be worked out from `--shard auto`'s variables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--shard {given}: {problem}")]
pub struct ShardError {
    /// What `--shard` said.
    pub given: String,
    /// What is wrong, naming the variable.
    pub problem: String,
}
