//! `invk-run status` and `invk-run cancel`: a run's progress, and taking its items back.

use std::path::Path;

use crate::cli::GlobalArgs;
use crate::commands::connect::{client_from_args, runtime};
use crate::exit_status::ExitStatus;
use crate::run::{RunStatus, cancel, output_dir_of};

/// Prints a run's progress from its journal, and from its server when it answers.
///
/// # Errors
/// No run in the folder, an invalid manifest, an unreadable journal.
pub fn status(global: &GlobalArgs, target: &Path) -> anyhow::Result<ExitStatus> {
    runtime()?.block_on(async {
        let output_dir = output_dir_of(target).await?;
        let mut status = RunStatus::read(&output_dir).map_err(crate::Error::from)?;
        let mut notes = Vec::new();
        if status.on_server > 0 {
            for (number, args) in run_servers(global, &output_dir)? {
                let asked = match client_from_args(&args).await {
                    Ok(client) => status
                        .ask_server(number, &client)
                        .await
                        .map_err(|e| crate::error_chain::error_chain(&e)),
                    Err(e) => Err(crate::error_chain::error_chain(&e)),
                };
                notes.extend(asked.err());
            }
        }
        let server_note = (!notes.is_empty()).then(|| notes.join("; "));
        if global.json {
            super::stdout::println(&serde_json::to_string_pretty(&status)?)?;
        } else {
            super::stdout::print(&human(&status, server_note.as_deref()))?;
        }
        Ok::<_, anyhow::Error>(ExitStatus::Success)
    })
}

/// The servers of a run to ask, each with its number in the run's journal and the global
/// options naming it: the one `--server` (or `INVK_SERVER`) names, else every server the
/// journal names (those of a pool's run).
fn run_servers(global: &GlobalArgs, output_dir: &Path) -> anyhow::Result<Vec<(u16, GlobalArgs)>> {
    let named = |url: String| {
        let mut args = global.clone();
        args.server = vec![url];
        args
    };
    if let Some(url) = crate::commands::connect::one_server(global) {
        let number = crate::run::server_number_of(output_dir, &url).map_err(crate::Error::from)?;
        return Ok(vec![(number, named(url))]);
    }
    let servers = crate::run::servers_of(output_dir).map_err(crate::Error::from)?;
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
    out
}

/// Cancels a run's items on its server.
///
/// # Errors
/// No run in the folder, an invalid manifest, a server that does not answer.
pub fn cancel_run(global: &GlobalArgs, target: &Path) -> anyhow::Result<ExitStatus> {
    runtime()?.block_on(async {
        let output_dir = output_dir_of(target).await?;
        let mut done = crate::run::Cancelled::default();
        for (number, args) in run_servers(global, &output_dir)? {
            let client = client_from_args(&args).await.map_err(crate::Error::from)?;
            let on_this = cancel(&output_dir, number, &client).await?;
            done.cancelled += on_this.cancelled;
            done.finished += on_this.finished;
            done.gone += on_this.gone;
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
