//! The `invk-run` binary: everything happens in [`invk_run::commands`].
use std::process::ExitCode;

/// Keeps the memory budget of templates (see `invk_run::budget`).
#[global_allocator]
static ALLOCATOR: invk_run::budget::BudgetAllocator = invk_run::budget::BudgetAllocator;

fn main() -> ExitCode {
    invk_run::budget::BudgetAllocator::share_arenas();
    invk_run::commands::main()
}
