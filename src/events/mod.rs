//! The server's Socket.IO event stream, as a task behind a handle.

/// An error of the event stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {}
