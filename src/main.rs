//! The `invk-run` binary: everything happens in [`invk_run::commands`].
use std::process::ExitCode;

fn main() -> ExitCode {
    invk_run::commands::main()
}
