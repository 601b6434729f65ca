//! What happens in a run, as its listeners hear it (and `--json` prints it, one per line).

use serde::Serialize;

/// Something that happened in a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// A manifest was expanded.
    Planned {
        /// The manifest file.
        manifest: String,
        /// How many jobs it holds.
        jobs: usize,
        /// How many of them are already done (resumed runs).
        done: usize,
        /// How many of them failed in an earlier run (not run again without `--retry-failed`).
        failed: usize,
        /// The most sessions of the run pending on the server at once (on each server of a
        /// pool, unless its entry says otherwise).
        window: usize,
        /// The servers of a pool (left out for one server).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        servers: Vec<String>,
        /// Each server's window, in the order of `servers` (left out for one server).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        windows: Vec<usize>,
        /// The output folder.
        output_dir: String,
    },
    /// A local image was uploaded.
    Uploaded {
        /// The manifest file.
        manifest: String,
        /// The local file.
        path: String,
        /// Its name on the server.
        image_name: String,
    },
    /// A batch was enqueued.
    Enqueued {
        /// The manifest file.
        manifest: String,
        /// Batch id.
        batch_id: String,
        /// Queue items made.
        items: usize,
    },
    /// A job completed and its outputs are on disk.
    JobCompleted {
        /// The manifest file.
        manifest: String,
        /// Job index.
        job: usize,
        /// Queue item id (on its server).
        item_id: i64,
        /// Files written, relative to the output folder.
        files: Vec<String>,
        /// The server that ran it, when the run has several.
        #[serde(skip_serializing_if = "Option::is_none")]
        server: Option<String>,
    },
    /// A job failed on the server.
    JobFailed {
        /// The manifest file.
        manifest: String,
        /// Job index.
        job: usize,
        /// Queue item id (on its server).
        item_id: i64,
        /// The server's error.
        error: String,
        /// The server that ran it, when the run has several.
        #[serde(skip_serializing_if = "Option::is_none")]
        server: Option<String>,
    },
    /// Server images were deleted.
    CleanedUp {
        /// The manifest file.
        manifest: String,
        /// How many images.
        images: usize,
    },
    /// Where a server of a pool stands: sent whenever that changes, and once more at the end
    /// of the run (before `finished`) with `end: true`. Replaces the `server_progress` and
    /// `server_share` events of earlier versions (see `docs/servers.md`).
    ServerStatus {
        /// The manifest file.
        manifest: String,
        /// The server's URL.
        server: String,
        /// Jobs it completed.
        done: usize,
        /// Its items of the run running now.
        running: usize,
        /// Its items of the run waiting in its queue.
        pending: usize,
        /// Jobs that failed on it.
        failed: usize,
        /// Whether it does not answer now.
        down: bool,
        /// Whether it left the pool.
        left: bool,
        /// Why it left the pool, if it did.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Items of the run it may still hold (open ones, and those it had when it left).
        on_server: usize,
        /// Whether this is its last status of the run.
        end: bool,
    },
    /// A server of a pool left it: nothing more is sent to it, its unfinished jobs go to the
    /// other servers.
    ServerLeft {
        /// The manifest file.
        manifest: String,
        /// The server's URL.
        server: String,
        /// Why it left.
        reason: String,
        /// Its sessions of the run that were still open, handed to the other servers.
        handed_over: usize,
    },
    /// Ctrl-C: what the run left where.
    Interrupted {
        /// The manifest file.
        manifest: String,
        /// Items taken back before they started (the next run submits them again).
        withdrawn: usize,
        /// Items still running on the server (the next run collects them).
        running: usize,
        /// Why items could not be taken back, when the server did not answer.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The output folder.
        output_dir: String,
    },
    /// Files of jobs an earlier run finished are missing from disk: those the server still has
    /// were downloaded again, the jobs of the others run again (told before `planned`).
    Repairing {
        /// The manifest file.
        manifest: String,
        /// The missing files, relative to the output folder.
        missing: Vec<String>,
        /// Those downloaded again.
        downloaded: Vec<String>,
        /// The jobs that run again.
        run_again: Vec<usize>,
        /// What happened, in words.
        message: String,
    },
    /// Every job of the manifest is done and its files are on disk: nothing was sent, and no
    /// server was started or asked (the run's only event).
    NothingToDo {
        /// The manifest file.
        manifest: String,
        /// Its jobs.
        jobs: usize,
        /// Their files.
        files: usize,
        /// The output folder.
        output_dir: String,
    },
    /// A warning (the run goes on).
    Warning {
        /// The manifest file.
        manifest: String,
        /// What happened.
        message: String,
    },
    /// A manifest's run ended.
    Finished {
        /// The manifest file.
        manifest: String,
        /// Jobs completed (this run and earlier ones).
        completed: usize,
        /// Jobs failed.
        failed: usize,
        /// Seconds the run took.
        seconds: f64,
        /// The output folder.
        output_dir: String,
    },
}
