//! Integration tests: one binary. Tests that need InvokeAI start it through `support::server()`
//! (installed into the cache folder on first use).

/// Templates rendered in these tests keep their memory budget as in the binary.
#[global_allocator]
static ALLOCATOR: invk_run::budget::BudgetAllocator = invk_run::budget::BudgetAllocator;

mod support;

mod balance;
mod cli_messages;
mod client;
mod conformance;
mod disk_full;
mod docs;
mod dry_run;
mod engine;
mod events;
mod examples;
mod fake_server;
mod fake_socketio;
mod faults;
mod fuzz;
mod graph_checks;
mod grids_xyz;
mod handle;
mod hostile;
mod manifest;
mod notify;
mod outage;
mod pipes;
mod placement;
mod pool;
mod prompts;
mod repair;
mod report;
mod runner;
mod secrets;
mod server;
mod servers;
mod shards;
mod tables;
mod watch;
mod workflow;
