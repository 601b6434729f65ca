//! The hot folder: settle, claim by rename, run, file away.

/// An error of the hot folder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {}
