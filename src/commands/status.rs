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
        let server_note = if status.on_server > 0 {
            let mut args = global.clone();
            if args.server.is_empty() {
                args.server.extend(status.server.clone());
            }
            match client_from_args(&args).await {
                Ok(client) => match status.ask_server(&client).await {
                    Ok(()) => None,
                    Err(e) => Some(crate::error_chain::error_chain(&e)),
                },
                Err(e) => Some(crate::error_chain::error_chain(&e)),
            }
        } else {
            None
        };
        if global.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&status).unwrap_or_default()
            );
        } else {
            print!("{}", human(&status, server_note.as_deref()));
        }
        Ok::<_, anyhow::Error>(ExitStatus::Success)
    })
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
        let status = RunStatus::read(&output_dir).map_err(crate::Error::from)?;
        let mut args = global.clone();
        if args.server.is_empty() {
            args.server.extend(status.server.clone());
        }
        let client = client_from_args(&args).await.map_err(crate::Error::from)?;
        let done = cancel(&output_dir, &client).await?;
        if global.json {
            println!("{}", serde_json::to_string_pretty(&done).unwrap_or_default());
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
