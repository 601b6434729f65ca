//! The binary's commands: turn parsed arguments into settings, run them, and report errors with
//! their whole cause chain.
//!
//! What they print on stdout goes through [`stdout`], which ends a command quietly when its
//! reader is gone: `print!` and `println!` would panic there, so they are refused here.
#![deny(clippy::print_stdout)]

use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches};

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
pub mod stdout;
pub mod validate;
pub mod watch;
pub mod workflows;

use crate::cli::{Cli, Command, RunArgs};
use crate::exit_status::ExitStatus;
use crate::printable::{printable, printable_lines};

/// Entry point of the `invk-run` binary.
#[must_use]
pub fn main() -> ExitCode {
    let cli = parse_args();
    logging::init(
        cli.global.verbose,
        cli.global.quiet,
        cli.global.token.as_deref(),
    );
    match run(cli) {
        Ok(status) => status.into(),
        // `| head` read what it wanted: not an error (as `rg`).
        Err(err) if stdout::is_closed(&err) => ExitStatus::Success.into(),
        Err(err) => {
            report(&err);
            let status = err
                .downcast_ref::<crate::Error>()
                .map_or(ExitStatus::Failed, crate::Error::exit_status);
            status.into()
        }
    }
}

/// Parses the command line, exiting with clap's usage error (exit status 2) for a bad one, and
/// also for options of a run given with a command (`invk-run --dry-run validate`), which would
/// otherwise be ignored.
fn parse_args() -> Cli {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    if let Some((name, _)) = matches.subcommand() {
        if let Some(option) = run_options_given(&matches).first() {
            Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!("`{option}` is for a run of manifests, not for `invk-run {name}`"),
                )
                .exit();
        }
    }
    cli
}

/// The options (and manifests) of a run given on the command line, as they are spelled there.
fn run_options_given(matches: &clap::ArgMatches) -> Vec<String> {
    let run = RunArgs::augment_args(clap::Command::new("run"));
    run.get_arguments()
        .filter(|arg| {
            matches.value_source(arg.get_id().as_str())
                == Some(clap::parser::ValueSource::CommandLine)
        })
        .map(|arg| match arg.get_long() {
            Some(long) => format!("--{long}"),
            None => format!("`{}`", arg.get_id()),
        })
        .collect()
}

/// Prints `error: ...` and one `Caused by:` line per source; a source whose text is already
/// printed above (a message that quotes its cause) is left out.
pub fn report(err: &anyhow::Error) {
    eprint!("{}", report_text(err));
}

/// The text [`report()`] prints.
#[must_use]
pub fn report_text(err: &anyhow::Error) -> String {
    // A manifest's diagnostics are complete lines already (`file:line:col: error: ...`).
    let diagnostics = matches!(
        err.downcast_ref::<crate::Error>()
            .and_then(crate::Error::manifest_error),
        Some(crate::manifest::ManifestError::Invalid { .. })
    );
    // Messages quote file names and server strings: no control character reaches the
    // terminal (a diagnostic keeps its own line breaks).
    let message = err.to_string();
    let mut text = if diagnostics {
        format!("{}\n", printable_lines(&message))
    } else {
        format!("error: {}\n", printable(&message))
    };
    let mut above = vec![message];
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if above.iter().any(|shown| shown.contains(&cause)) {
            continue;
        }
        text.push_str(&format!("  Caused by: {}\n", printable(&cause)));
        above.push(cause);
    }
    text
}

fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    refuse_several_servers(&cli)?;
    match &cli.command {
        None => run::run(
            &cli.global,
            &cli.run.manifests,
            &cli.run.options,
            cli.run.shard,
            false,
        ),
        Some(Command::Validate {
            manifests,
            max_jobs,
        }) => {
            let options = crate::cli::RunOptions {
                max_jobs: *max_jobs,
                ..cli.run.options.clone()
            };
            run::run(&cli.global, manifests, &options, None, true)
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
        Some(Command::Completions { shell }) => report::completions(*shell),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{message}")]
    struct Quoting {
        message: String,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_shown_is_not_repeated_and_a_new_one_is() {
        let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let quoting = anyhow::Error::new(Quoting {
            message: "cannot read `m.yaml`: refused".into(),
            source: refused(),
        });
        assert_eq!(
            report_text(&quoting),
            "error: cannot read `m.yaml`: refused\n"
        );
        let plain = anyhow::Error::new(Quoting {
            message: "cannot read `m.yaml`".into(),
            source: refused(),
        });
        assert_eq!(
            report_text(&plain),
            "error: cannot read `m.yaml`\n  Caused by: refused\n"
        );
    }
}
