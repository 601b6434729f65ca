//! The binary's commands: turn parsed arguments into settings, run them, and report errors with
//! their whole cause chain.

use std::process::ExitCode;

use clap::Parser;

pub mod boards;
pub mod connect;
pub mod graph;
pub mod inputs;
mod logging;
pub mod report;
pub mod run;
pub mod server;
pub mod servers;
pub mod status;
pub mod watch;
pub mod workflows;

use crate::cli::{Cli, Command};
use crate::exit_status::ExitStatus;
use crate::printable::{printable, printable_lines};

/// Entry point of the `invk-run` binary.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.global.verbose, cli.global.quiet);
    match run(cli) {
        Ok(status) => status.into(),
        Err(err) => {
            report(&err);
            let status = err
                .downcast_ref::<crate::Error>()
                .map_or(ExitStatus::Failed, crate::Error::exit_status);
            status.into()
        }
    }
}

/// Prints `error: ...` and one `Caused by:` line per source.
pub fn report(err: &anyhow::Error) {
    // A manifest's diagnostics are complete lines already (`file:line:col: error: ...`).
    let diagnostics = matches!(
        err.downcast_ref::<crate::Error>()
            .and_then(crate::Error::manifest_error),
        Some(crate::manifest::ManifestError::Invalid { .. })
    );
    // Messages quote file names and server strings: no control character reaches the
    // terminal (a diagnostic keeps its own line breaks).
    if diagnostics {
        eprintln!("{}", printable_lines(&err.to_string()));
    } else {
        eprintln!("error: {}", printable(&err.to_string()));
    }
    for cause in err.chain().skip(1) {
        eprintln!("  Caused by: {}", printable(&cause.to_string()));
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    refuse_several_servers(&cli)?;
    match &cli.command {
        None => run::run(&cli.global, &cli.run, false),
        Some(Command::Validate {
            manifests,
            max_jobs,
        }) => {
            let args = crate::cli::RunArgs {
                manifests: manifests.clone(),
                max_jobs: *max_jobs,
                ..cli.run.clone()
            };
            run::run(&cli.global, &args, true)
        }
        Some(Command::Server(command)) => server::run(command),
        Some(Command::Watch(args)) => watch::run(&cli.global, args),
        Some(Command::Workflows(command)) => workflows::run(&cli.global, command),
        Some(Command::Boards(command)) => boards::run(&cli.global, command),
        Some(Command::Inputs { workflow }) => inputs::run(workflow, cli.global.json),
        Some(Command::Graph { workflow, set }) => graph::run(workflow, set, cli.global.json),
        Some(Command::Status { target }) => status::status(&cli.global, target),
        Some(Command::Cancel { target }) => status::cancel_run(&cli.global, target),
        Some(Command::Servers(command)) => servers::run(&cli.global, command),
        Some(Command::Report { target }) => report::run(target, &cli.global),
        Some(Command::Completions { shell }) => Ok(report::completions(*shell)),
    }
}

/// A command that talks to a server takes one; a run and the hot folder (spread over the
/// servers, see `docs/servers.md`) and `servers check` take several.
fn refuse_several_servers(cli: &Cli) -> Result<(), crate::Error> {
    let talks_to_one = match &cli.command {
        Some(
            Command::Status { .. }
            | Command::Cancel { .. }
            | Command::Workflows(_)
            | Command::Boards(_),
        ) => true,
        None
        | Some(
            Command::Validate { .. }
            | Command::Watch(_)
            | Command::Servers(_)
            | Command::Server(_)
            | Command::Inputs { .. }
            | Command::Graph { .. }
            | Command::Report { .. }
            | Command::Completions { .. },
        ) => false,
    };
    let servers = crate::server_check::server_list(&cli.global.server);
    if talks_to_one && servers.len() > 1 {
        return Err(crate::server_check::ServersError::OneServerOnly { servers }.into());
    }
    Ok(())
}
