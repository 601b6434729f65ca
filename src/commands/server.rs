//! `invk-run server install|start|stop|status|logs`.

use super::stdout::println;
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
            println(&format!(
                "InvokeAI {version} is installed in {}",
                inst.venv().display()
            ))?;
        }
        ServerCommand::Start(_) => {
            let inst = Installation::ensure(&version).map_err(crate::Error::from)?;
            let url = managed
                .start(&inst, args.port)
                .map_err(crate::Error::from)?;
            println(&url)?;
        }
        ServerCommand::Stop(_) => {
            managed.stop().map_err(crate::Error::from)?;
            println("stopped")?;
        }
        ServerCommand::Status(_) => {
            let inst = Installation::locate(&version).map_err(crate::Error::from)?;
            let installed = if inst.is_installed() {
                "installed"
            } else {
                "not installed"
            };
            let state = match managed.status() {
                ManagedStatus::Running { pid, port } => format!(
                    "running: http://127.0.0.1:{port} (pid {pid}, root {})",
                    managed.root().display()
                ),
                ManagedStatus::Stopped => format!("stopped (root {})", managed.root().display()),
            };
            println(&format!(
                "InvokeAI {version}: {installed} ({})\n{state}",
                inst.venv().display()
            ))?;
        }
        ServerCommand::Logs(_) => {
            let text = crate::fs::read(managed.log_path()).map_err(crate::Error::from)?;
            super::stdout::write_with(|out| out.write_all(&text))?;
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
