//! The bridge from notify's callback (on notify's own thread) to the watcher's task: the
//! callback never blocks, it only `try_send`s into a bounded channel. When the channel is full
//! the event is dropped and a flag asks the watcher to list the folder again, so nothing is lost
//! for good.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::watch::WatchError;

/// How many file events may wait for the watcher's task.
pub const CAPACITY: usize = 1024;

/// What the callback passes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsSignal {
    /// Something happened to this path.
    Changed(PathBuf),
    /// Data was written into this file (reported only where closes are reported too).
    Written(PathBuf),
    /// This file's writer closed it, or it was moved into the folder whole.
    Closed(PathBuf),
    /// The watcher's backend lost track; list the folder again.
    Rescan,
    /// The backend reported an error.
    Error(String),
}

/// The sending half, shared with notify's callback.
#[derive(Debug, Clone)]
pub struct Forwarder {
    tx: mpsc::Sender<FsSignal>,
    lost: Arc<AtomicBool>,
}

impl Forwarder {
    /// A forwarder into `tx`; `lost` is set when an event had to be dropped.
    #[must_use]
    pub fn new(tx: mpsc::Sender<FsSignal>, lost: Arc<AtomicBool>) -> Forwarder {
        Forwarder { tx, lost }
    }

    /// Passes one notify result on, without blocking.
    pub fn forward(&self, result: notify::Result<notify::Event>) {
        let event = match result {
            Ok(event) => event,
            Err(err) => {
                self.send(FsSignal::Error(err.to_string()));
                return;
            }
        };
        if event.need_rescan() {
            self.send(FsSignal::Rescan);
        }
        if !changes_content(&event.kind) {
            return;
        }
        let last = event.paths.len().saturating_sub(1);
        for (i, path) in event.paths.into_iter().enumerate() {
            let signal = match event.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write))
                | EventKind::Modify(ModifyKind::Name(RenameMode::To)) => FsSignal::Closed(path),
                // A rename inside the folder: from the first path to the last.
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)) if i == last => {
                    FsSignal::Closed(path)
                }
                EventKind::Modify(ModifyKind::Data(_)) if REPORTS_CLOSES => FsSignal::Written(path),
                _ => FsSignal::Changed(path),
            };
            self.send(signal);
        }
    }

    fn send(&self, signal: FsSignal) {
        if self.tx.try_send(signal).is_err() {
            tracing::debug!(
                "file event dropped (channel full or closed); the folder will be listed again"
            );
            self.lost.store(true, Ordering::SeqCst);
        }
    }
}

/// Whether the platform's file events report a writer closing a file (inotify's close-write):
/// only then does a reported write keep a file from being claimed until it is closed.
pub const REPORTS_CLOSES: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// Whether an event kind may mean new or changed content: reads and opens do not.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Starts watching `dir` (not its subfolders), forwarding events into `forwarder`. Events flow
/// until the returned watcher is dropped.
///
/// # Errors
/// [`WatchError::Notify`] when the system refuses (for instance too many watches).
pub fn start(dir: &Path, forwarder: Forwarder) -> Result<RecommendedWatcher, WatchError> {
    let notify_error = |source| WatchError::Notify {
        path: dir.to_path_buf(),
        source,
    };
    let mut watcher = notify::recommended_watcher(move |result| forwarder.forward(result))
        .map_err(notify_error)?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(notify_error)?;
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, RemoveKind};

    fn event(kind: EventKind, path: &str) -> notify::Result<notify::Event> {
        Ok(notify::Event::new(kind).add_path(PathBuf::from(path)))
    }

    #[test]
    fn content_events_pass_reads_do_not() {
        let (tx, mut rx) = mpsc::channel(8);
        let lost = Arc::new(AtomicBool::new(false));
        let f = Forwarder::new(tx, lost.clone());
        f.forward(event(EventKind::Create(CreateKind::File), "/hot/a.yaml"));
        f.forward(event(EventKind::Access(AccessKind::Read), "/hot/a.yaml"));
        f.forward(event(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            "/hot/a.yaml",
        ));
        f.forward(event(EventKind::Modify(ModifyKind::Any), "/hot/b.yaml"));
        f.forward(event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            "/hot/b.yaml",
        ));
        f.forward(event(EventKind::Remove(RemoveKind::File), "/hot/c.yaml"));
        f.forward(Err(notify::Error::generic("boom")));
        let mut got = Vec::new();
        while let Ok(signal) = rx.try_recv() {
            got.push(signal);
        }
        assert_eq!(
            got,
            [
                FsSignal::Changed("/hot/a.yaml".into()),
                FsSignal::Changed("/hot/b.yaml".into()),
                FsSignal::Closed("/hot/b.yaml".into()),
                FsSignal::Changed("/hot/c.yaml".into()),
                FsSignal::Error("boom".into()),
            ]
        );
        assert!(!lost.load(Ordering::SeqCst));
    }

    #[test]
    fn writes_closes_and_moves_in_are_told_apart() {
        let (tx, mut rx) = mpsc::channel(8);
        let f = Forwarder::new(tx, Arc::new(AtomicBool::new(false)));
        f.forward(event(
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            "/hot/a.png",
        ));
        f.forward(event(
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            "/hot/b.png",
        ));
        f.forward(Ok(notify::Event::new(EventKind::Modify(ModifyKind::Name(
            RenameMode::Both,
        )))
        .add_path("/hot/.c.png".into())
        .add_path("/hot/c.png".into())));
        let mut got = Vec::new();
        while let Ok(signal) = rx.try_recv() {
            got.push(signal);
        }
        let written = if REPORTS_CLOSES {
            FsSignal::Written("/hot/a.png".into())
        } else {
            FsSignal::Changed("/hot/a.png".into())
        };
        assert_eq!(
            got,
            [
                written,
                FsSignal::Closed("/hot/b.png".into()),
                FsSignal::Changed("/hot/.c.png".into()),
                FsSignal::Closed("/hot/c.png".into()),
            ]
        );
    }

    #[test]
    fn a_full_channel_drops_the_event_and_asks_for_a_rescan() {
        let (tx, mut rx) = mpsc::channel(1);
        let lost = Arc::new(AtomicBool::new(false));
        let f = Forwarder::new(tx, lost.clone());
        f.forward(event(EventKind::Create(CreateKind::File), "/hot/a.yaml"));
        f.forward(event(EventKind::Create(CreateKind::File), "/hot/b.yaml"));
        assert!(lost.load(Ordering::SeqCst), "the dropped event is noticed");
        assert_eq!(
            rx.try_recv().ok(),
            Some(FsSignal::Changed("/hot/a.yaml".into()))
        );
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_backend_overflow_asks_for_a_rescan() {
        let (tx, mut rx) = mpsc::channel(4);
        let f = Forwarder::new(tx, Arc::new(AtomicBool::new(false)));
        let overflow = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        f.forward(Ok(overflow));
        assert_eq!(rx.try_recv().ok(), Some(FsSignal::Rescan));
    }
}
