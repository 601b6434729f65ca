//! What the commands print on stdout goes through here: a stdout its reader closed
//! (`invk-run completions bash | head`) becomes [`StdoutError::Closed`], which ends the process
//! quietly with exit status 0, as `rg` does, instead of a panic.
//!
//! `SIGPIPE` stays ignored, as Rust sets it up: a write to a closed pipe fails with
//! `BrokenPipe` rather than killing the process, so a command ends through its own code
//! (buffers flushed, temporary folders removed). The programs invk-run starts (notification
//! commands, the local server) get the default `SIGPIPE` back from the standard library.

use std::io::{self, Write};

/// Printing on stdout failed.
#[derive(Debug, thiserror::Error)]
pub enum StdoutError {
    /// The reader closed stdout: not an error for the user, the command ends with exit status 0.
    #[error("stdout was closed by its reader")]
    Closed,
    /// Any other write error (a full disk behind a redirection, ...).
    #[error("cannot write to stdout")]
    Write(#[source] io::Error),
}

impl From<io::Error> for StdoutError {
    fn from(err: io::Error) -> StdoutError {
        if err.kind() == io::ErrorKind::BrokenPipe {
            StdoutError::Closed
        } else {
            StdoutError::Write(err)
        }
    }
}

/// Whether `err` is (or was caused by) a stdout its reader closed.
#[must_use]
pub fn is_closed(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| matches!(cause.downcast_ref(), Some(StdoutError::Closed)))
}

/// Prints `text` as it is on stdout, and flushes it.
///
/// # Errors
/// [`StdoutError::Closed`] when the reader is gone, [`StdoutError::Write`] for other errors.
pub fn print(text: &str) -> Result<(), StdoutError> {
    write_with(|out| out.write_all(text.as_bytes()))
}

/// Prints `text` and a line feed on stdout, and flushes them.
///
/// # Errors
/// As [`print()`].
pub fn println(text: &str) -> Result<(), StdoutError> {
    write_with(|out| {
        out.write_all(text.as_bytes())?;
        out.write_all(b"\n")
    })
}

/// Hands a buffered, locked stdout to `write`, then flushes it.
///
/// # Errors
/// As [`print()`].
pub fn write_with(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), StdoutError> {
    let mut out = io::BufWriter::new(io::stdout().lock());
    write(&mut out)?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_pipe_is_a_closed_stdout_and_other_errors_are_kept() {
        let closed = StdoutError::from(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(matches!(closed, StdoutError::Closed));
        let full = StdoutError::from(io::Error::from(io::ErrorKind::StorageFull));
        assert!(matches!(full, StdoutError::Write(_)));

        let wrapped = anyhow::Error::new(StdoutError::Closed).context("printing the inputs");
        assert!(is_closed(&wrapped));
        assert!(!is_closed(&anyhow::Error::new(full)));
        let other_pipe = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(
            !is_closed(&other_pipe),
            "a broken pipe elsewhere (a notification command) is an error"
        );
    }
}
