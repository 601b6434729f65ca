//! One no-clobber file placement for everything written under an output folder: the runner's
//! outputs and sidecars, its journal and `runs.jsonl`, a [`crate::client::WorkflowHandle`]'s
//! downloads, and reports (grids, galleries).
//!
//! The rules:
//! - **No links.** Nothing is written through a symbolic link inside the output folder: not the
//!   folder itself, not a sub-folder, not a link (dangling or not) at the path to write. Such a
//!   link is refused with [`PlaceError::Link`], naming it. (Links above the output folder are
//!   the user's business and are followed.)
//! - **Nothing replaced.** A file and its companions (a sidecar `x.png.json` of `x.png`) get
//!   their names together: `x.png` is free only when `x.png.json` is free too; otherwise both
//!   take the next suffix (`x-1.png`, `x-1.png.json`). Files are written complete into a
//!   temporary file first and then linked into place without replacing: a file that appears
//!   meanwhile is left alone and the next suffix is tried.
//!
//! The checks are made just before each write; they guard against mistakes and surprises in the
//! output folder, not against another program racing to swap folders for links.

mod candidates;
mod checks;
mod error;
mod name;
mod write;

use std::path::PathBuf;

pub use error::PlaceError;
pub(crate) use error::{full_disk_hint, io_error};
pub use name::{Name, companion};
pub(crate) use write::link_noclobber;

/// How many `-N` suffixes are tried before giving up.
const MAX_SUFFIX: u32 = 100_000;

/// The largest companion file read to recognise a file written earlier (or listed with its
/// output by [`crate::store::LocalStore`]).
pub const MAX_COMPANION_READ: u64 = 1 << 20;

/// An output folder: the root of a tree written under the rules of this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRoot {
    root: PathBuf,
}

#[cfg(all(test, unix))]
mod tests;
