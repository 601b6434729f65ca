//! `invk-run server install|start|stop|status|logs`.

use std::io::Write;

use crate::cli::{ServerArgs, ServerCommand};
use crate::exit_status::ExitStatus;
use crate::local_server::{Installation, ManagedServer, ManagedStatus, wanted_version};

/// Runs a `server` subcommand.
///
/// # Errors
/// Install, start and stop failures.
pub fn run(command: &ServerCommand) -> anyhow::Result<ExitStatus> {
    let (ServerCommand::Install(args)
    | ServerCommand::Start(args)
    | ServerCommand::Stop(args)
    | ServerCommand::Status(args)
    | ServerCommand::Logs(args)) = command;
    let version = args.version.clone().unwrap_or_else(wanted_version);
    let managed = ManagedServer::new(root(args)?);
    match command {
        ServerCommand::Install(_) => {
            let inst = Installation::ensure(&version).map_err(crate::Error::from)?;
            println!(
                "InvokeAI {version} is installed in {}",
                inst.venv().display()
            );
        }
        ServerCommand::Start(_) => {
            let inst = Installation::ensure(&version).map_err(crate::Error::from)?;
            let url = managed
                .start(&inst, args.port)
                .map_err(crate::Error::from)?;
            println!("{url}");
        }
        ServerCommand::Stop(_) => {
            managed.stop().map_err(crate::Error::from)?;
            println!("stopped");
        }
        ServerCommand::Status(_) => {
            let inst = Installation::locate(&version).map_err(crate::Error::from)?;
            let installed = if inst.is_installed() {
                "installed"
            } else {
                "not installed"
            };
            println!(
                "InvokeAI {version}: {installed} ({})",
                inst.venv().display()
            );
            match managed.status() {
                ManagedStatus::Running { pid, port } => {
                    println!(
                        "running: http://127.0.0.1:{port} (pid {pid}, root {})",
                        managed.root().display()
                    );
                }
                ManagedStatus::Stopped => println!("stopped (root {})", managed.root().display()),
            }
        }
        ServerCommand::Logs(_) => {
            let text = crate::fs::read(managed.log_path()).map_err(crate::Error::from)?;
            std::io::stdout().write_all(&text)?;
        }
    }
    Ok(ExitStatus::Success)
}

fn root(args: &ServerArgs) -> anyhow::Result<std::path::PathBuf> {
    match &args.root {
        Some(root) => Ok(std::path::absolute(root)?),
        None => Ok(ManagedServer::default_root().map_err(crate::Error::from)?),
    }
}
