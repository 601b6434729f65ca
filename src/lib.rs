//! `invk-run`: run InvokeAI workflows unattended, from YAML manifests, and the typed client
//! library underneath.
//!
//! The library is organised after the data flow of a run:
//!
//! - [`workflow`]: the workflow files the InvokeAI web UI exports, their form inputs with typed
//!   `Ink*` values, and their conversion into the graph the server executes.
//! - [`client`]: the InvokeAI server's REST API (workflows, boards, images, queue, models, auth).
//! - [`events`]: the server's Socket.IO event stream.
//! - [`manifest`]: the YAML job manifests, their schema, templates and sweep expansion.
//! - [`run`]: plan, submit, track, download, clean up, resume.
//! - [`gallery`]: X/Y grids of a sweep and the HTML gallery of an output folder.
//! - [`watch`]: the hot folder.
//! - [`local_server`]: a managed local InvokeAI server (install, start, stop), shared with the tests.
//! - [`server_check`]: several servers: naming them and checking each before anything is sent.
//!
//! This crate's library API is not yet stable: it follows the needs of the `invk-run` binary.

pub mod budget;
pub mod cli;
pub mod client;
pub mod commands;
pub mod env_vars;
pub mod error;
mod error_chain;
pub mod events;
pub mod exit_status;
pub mod fs;
pub mod gallery;
pub mod local_server;
pub mod manifest;
pub mod printable;
mod random;
pub mod run;
pub mod server_check;
pub mod server_entry;
pub mod store;
pub mod watch;
pub mod workflow;

pub use error::Error;
pub use exit_status::ExitStatus;

/// The unit tests count allocations as the binary does (see [`budget`]).
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: budget::BudgetAllocator = budget::BudgetAllocator;
