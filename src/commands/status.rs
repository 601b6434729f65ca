//! `invk-run status` and `invk-run cancel`: a run's progress, and taking its items back.

use std::path::Path;

use crate::cli::GlobalArgs;
use crate::commands::connect::{client_from_args, runtime};
use crate::exit_status::ExitStatus;
use crate::run::journal::Journal;
use crate::run::shard::Shard;
use crate::run::{Repair, RunStatus, cancel, output_dir_of};

/// Prints a run's progress from its journal, and from its server when it answers; of a folder
/// holding no run itself, that of each run in the folders below it (the runs of
/// `invk-run watch DIR --each MANIFEST`).
///
/// # Errors
/// No run in the folder or below it, an invalid manifest, an unreadable journal.
pub fn status(global: &GlobalArgs, target: &Path) -> anyhow::Result<ExitStatus> {
    runtime()?.block_on(async {
        let output_dir = output_dir_of(target).await?;
        let below = if Journal::any_in(&output_dir) {
            Vec::new()
        } else {
            crate::run::runs_below(&output_dir)
        };
        if below.is_empty() {
            let (status, note) = read_and_ask(global, &output_dir).await?;
            if global.json {
                super::stdout::println(&serde_json::to_string_pretty(&status)?)?;
            } else {
                super::stdout::print(&human(&status, note.as_deref()))?;
            }
            return Ok::<_, anyhow::Error>(ExitStatus::Success);
        }
        let mut runs = Vec::with_capacity(below.len());
        for dir in &below {
            runs.push(read_and_ask(global, dir).await?);
        }
        if global.json {
            let all = serde_json::json!({
                "output_dir": output_dir,
                "runs": runs.iter().map(|(status, _)| status).collect::<Vec<_>>(),
            });
            super::stdout::println(&serde_json::to_string_pretty(&all)?)?;
        } else {
            super::stdout::print(&human_below(&output_dir, &runs))?;
        }
        Ok::<_, anyhow::Error>(ExitStatus::Success)
    })
}

/// A run's status from its journal, completed by its servers when there is something to ask
/// them (items still there, images of missing files); what they could not say, as a note.
async fn read_and_ask(
    global: &GlobalArgs,
    output_dir: &Path,
) -> anyhow::Result<(RunStatus, Option<String>)> {
    let mut status = RunStatus::read(output_dir).map_err(crate::Error::from)?;
    let mut notes = Vec::new();
    if status.shards.is_empty() {
        ask(global, &mut status, &mut notes).await?;
    } else {
        // Each shard asks the servers its own journal names.
        for shard in &mut status.shards {
            ask(global, shard, &mut notes).await?;
        }
        status.fold_shards();
    }
    notes.dedup();
    Ok((status, (!notes.is_empty()).then(|| notes.join("; "))))
}

/// Completes a run's (or a shard's) status from its servers when there is something to ask
/// them; what they could not say goes to `notes`.
async fn ask(
    global: &GlobalArgs,
    status: &mut RunStatus,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    if !status.asks_server() {
        return Ok(());
    }
    let shard = status.shard.unwrap_or_default();
    for (number, args) in run_servers(global, &status.output_dir.clone(), shard)? {
        let asked = match client_from_args(&args).await {
            Ok(client) => status
                .ask_server(number, &client)
                .await
                .map_err(|e| crate::error_chain::error_chain(&e)),
            Err(e) => Err(crate::error_chain::error_chain(&e)),
        };
        notes.extend(asked.err());
    }
    Ok(())
}

/// The status of the runs below a folder: a line naming them, each run's lines, and the
/// totals.
#[must_use]
pub fn human_below(dir: &Path, runs: &[(RunStatus, Option<String>)]) -> String {
    let mut out = format!(
        "{}: no run of its own; {} run{} in the folders below it\n",
        dir.display(),
        runs.len(),
        if runs.len() == 1 { "" } else { "s" }
    );
    for (status, note) in runs {
        out.push_str(&human(status, note.as_deref()));
    }
    let sum = |f: fn(&RunStatus) -> usize| runs.iter().map(|(s, _)| f(s)).sum::<usize>();
    let jobs = runs.iter().map(|(s, _)| s.jobs).sum::<Option<usize>>();
    out.push_str(&format!(
        "in all: {} runs, {}{} completed, {} failed, {} on server",
        runs.len(),
        jobs.map_or_else(String::new, |n| format!("{n} jobs, ")),
        sum(|s| s.completed),
        sum(|s| s.failed),
        sum(|s| s.on_server),
    ));
    let missing = sum(|s| s.missing.len());
    if missing > 0 {
        let s = if missing == 1 { "" } else { "s" };
        out.push_str(&format!(", {missing} file{s} missing"));
    }
    out.push('\n');
    out
}

/// The servers of a run to ask, each with its number in the run's journal and the global
/// options naming it: the one `--server` (or `INVK_SERVER`) names, else every server the
/// journal names (those of a pool's run).
fn run_servers(
    global: &GlobalArgs,
    output_dir: &Path,
    shard: Shard,
) -> anyhow::Result<Vec<(u16, GlobalArgs)>> {
    let named = |url: String| {
        let mut args = global.clone();
        args.server = vec![url];
        args
    };
    if let Some(url) = crate::commands::connect::one_server(global) {
        let number =
            crate::run::server_number_of(output_dir, shard, &url).map_err(crate::Error::from)?;
        return Ok(vec![(number, named(url))]);
    }
    let servers = crate::run::servers_of_shard(output_dir, shard).map_err(crate::Error::from)?;
    if servers.is_empty() {
        // A journal that names no server: the default one.
        return Ok(vec![(0, global.clone())]);
    }
    Ok(servers
        .into_iter()
        .map(|(number, url)| (number, named(url)))
        .collect())
}

/// The status as a few aligned lines.
#[must_use]
pub fn human(status: &RunStatus, server_note: Option<&str>) -> String {
    let mut out = format!("{}:", status.output_dir.display());
    match status.jobs {
        Some(n) => out.push_str(&format!(" {n} jobs")),
        None => out.push_str(" jobs of unknown number"),
    }
    if let Some(server) = &status.server {
        out.push_str(&format!(", last run on {server}"));
    }
    out.push('\n');
    let files = if status.files == status.files_on_disk {
        format!("{} files on disk", status.files)
    } else {
        format!(
            "{} of {} files still on disk",
            status.files_on_disk, status.files
        )
    };
    out.push_str(&format!(
        "  completed    {:>6}  ({files})\n",
        status.completed
    ));
    out.push_str(&format!("  failed       {:>6}\n", status.failed));
    let on_server = match (&status.items, server_note) {
        (Some(items), _) if !items.is_empty() => format!(
            "  ({})",
            items
                .iter()
                .map(|(s, n)| format!("{n} {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (_, Some(note)) => format!("  (the server does not answer: {note})"),
        _ => String::new(),
    };
    out.push_str(&format!(
        "  on server    {:>6}{on_server}\n",
        status.on_server
    ));
    if let Some(n) = status.not_started {
        out.push_str(&format!("  not started  {n:>6}\n"));
    }
    out.push_str(&missing(status));
    out.push_str(&shard_lines(status));
    out
}

/// A line per shard of a sweep run in shards.
fn shard_lines(status: &RunStatus) -> String {
    let Some(count) = status
        .shards
        .first()
        .and_then(|s| s.shard)
        .map(Shard::count)
    else {
        return String::new();
    };
    let mut out = format!("  shards: {count} (`--shard K/{count}`)\n");
    for s in &status.shards {
        let name = s.shard.map(|sh| sh.to_string()).unwrap_or_default();
        let jobs = s.jobs.map_or_else(|| "?".to_owned(), |n| n.to_string());
        if s.never_started {
            out.push_str(&format!(
                "    {name:<7} {jobs:>6} jobs  not started yet (no journal)\n"
            ));
            continue;
        }
        let mut line = format!(
            "    {name:<7} {jobs:>6} jobs  {} completed, {} failed, {} on server, {} not started",
            s.completed,
            s.failed,
            s.on_server,
            s.not_started
                .map_or_else(|| "?".to_owned(), |n| n.to_string())
        );
        if !s.missing.is_empty() {
            line.push_str(&format!(", {} files missing", s.missing.len()));
        }
        let done = s.jobs.is_some_and(|n| n > 0 && s.completed == n);
        line.push_str(if done { "  (done)" } else { "" });
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The files of completed jobs no longer on disk, and what a rerun does of each (the first
/// [`MISSING_SHOWN`]).
fn missing(status: &RunStatus) -> String {
    if status.missing.is_empty() {
        return String::new();
    }
    let count = status.missing.len();
    let mut out = format!(
        "  missing      {count:>6}  file{} of completed jobs; a rerun brings {} back:\n",
        if count == 1 { "" } else { "s" },
        if count == 1 { "it" } else { "them" }
    );
    for file in status.missing.iter().take(MISSING_SHOWN) {
        let how = match file.repair {
            Repair::Download => "a rerun downloads it again".to_owned(),
            Repair::DownloadIfOnServer => format!(
                "a rerun downloads it again if the server still has it, else runs job {} again",
                file.job
            ),
            Repair::RunAgain => format!(
                "a rerun runs job {} again (its image is gone from the server)",
                file.job
            ),
        };
        out.push_str(&format!("    {}: {how}\n", file.file.display()));
    }
    if count > MISSING_SHOWN {
        out.push_str(&format!(
            "    and {} more (`--json` lists them all)\n",
            count - MISSING_SHOWN
        ));
    }
    out
}

/// How many missing files the status names.
const MISSING_SHOWN: usize = 10;

/// Cancels a run's items on its server.
///
/// # Errors
/// No run in the folder, an invalid manifest, a server that does not answer.
pub fn cancel_run(global: &GlobalArgs, target: &Path) -> anyhow::Result<ExitStatus> {
    runtime()?.block_on(async {
        let output_dir = output_dir_of(target).await?;
        let mut done = crate::run::Cancelled::default();
        let mut shards = Shard::journals_in(&output_dir);
        if shards.is_empty() {
            // No journal: the error says so.
            shards.push(Shard::WHOLE);
        }
        for shard in shards {
            for (number, args) in run_servers(global, &output_dir, shard)? {
                let client = client_from_args(&args).await.map_err(crate::Error::from)?;
                let on_this = cancel(&output_dir, shard, number, &client).await?;
                done.cancelled += on_this.cancelled;
                done.finished += on_this.finished;
                done.gone += on_this.gone;
            }
        }
        if global.json {
            super::stdout::println(&serde_json::to_string_pretty(&done)?)?;
        } else if !global.quiet {
            eprintln!(
                "{}: cancelled {} item(s) on the server; {} had finished (the next run collects them); the next run submits the cancelled jobs again",
                output_dir.display(),
                done.cancelled,
                done.finished
            );
        }
        Ok::<_, anyhow::Error>(ExitStatus::Success)
    })
}
