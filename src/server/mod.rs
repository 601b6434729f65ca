//! A managed local InvokeAI server: install into a cached virtual environment, start on a
//! loopback port with its own root, wait until it answers, stop. The tests use the same code.

/// An error installing, starting or stopping the managed server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {}
