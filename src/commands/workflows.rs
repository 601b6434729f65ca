//! `invk-run workflows list|upload|download|delete`: the server's workflow library.

use crate::cli::{GlobalArgs, WorkflowsCommand};
use crate::client::{ClientError, WorkflowCategory};
use crate::commands::connect::{client_from_args, print_list, run_requests, sanitize};
use crate::exit_status::ExitStatus;

/// Runs a `workflows` subcommand. Data (the list, a new id) goes to stdout, messages to stderr.
///
/// # Errors
/// The server's or the file system's errors.
pub fn run(global: &GlobalArgs, command: &WorkflowsCommand) -> anyhow::Result<ExitStatus> {
    run_requests(run_async(global, command))
}

async fn run_async(global: &GlobalArgs, command: &WorkflowsCommand) -> anyhow::Result<()> {
    let client = client_from_args(global).await?;
    let workflows = client.workflows();
    match command {
        WorkflowsCommand::List => {
            let list = workflows.list_all().await?;
            print_list(
                global.json,
                &list,
                &["ID", "CATEGORY", "UPDATED", "NAME"],
                || {
                    list.iter()
                        .map(|w| {
                            vec![
                                sanitize(&w.workflow_id),
                                w.category.as_str().to_owned(),
                                sanitize(&w.updated_at),
                                sanitize(&w.name),
                            ]
                        })
                        .collect()
                },
            )?;
        }
        WorkflowsCommand::Upload { file } => {
            let id = workflows.upload_file(file).await?;
            super::stdout::println(&id)?;
        }
        WorkflowsCommand::Download { id_or_name, file } => {
            let record = workflows.find(id_or_name).await?;
            record.write_to_file(file)?;
            if !global.quiet {
                eprintln!(
                    "wrote workflow `{}` (`{}`) to `{}`",
                    sanitize(&record.name),
                    sanitize(&record.workflow_id),
                    file.display()
                );
            }
        }
        WorkflowsCommand::Delete { id_or_name } => {
            let record = workflows.find(id_or_name).await?;
            if record.category() == WorkflowCategory::Default {
                return Err(ClientError::ReadOnly {
                    kind: "workflow",
                    id: record.workflow_id,
                    reason: "it is built into the server".to_owned(),
                }
                .into());
            }
            workflows.delete(&record.workflow_id).await?;
            if !global.quiet {
                eprintln!(
                    "deleted workflow `{}` (`{}`)",
                    sanitize(&record.name),
                    sanitize(&record.workflow_id)
                );
            }
        }
    }
    Ok(())
}
