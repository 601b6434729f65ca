//! The InvokeAI server's REST API: one [`Client`] and a small handler per API area.

/// An error talking to the InvokeAI server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {}
