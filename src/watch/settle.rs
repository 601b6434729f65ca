//! When a file in the hot folder is ready: its size and modification time have stayed unchanged
//! for the settle window, confirmed by looking at the file again once the window has passed.
//!
//! This is a pure state machine: the caller feeds it file-system events ([`Settler::touch`]) and
//! the results of looking at files ([`Settler::observe`]), with the current time, and asks which
//! files are ready ([`Settler::take_ready`]). It never reads the disk itself, so it is tested
//! without files or real time.
//!
//! Where the platform reports it (inotify on Linux), a file is ready as soon as its writer has
//! closed it ([`Settler::closed`]: close-write, or moved into the folder whole) and a look at it
//! right after finds it as it was closed; a file that is being written ([`Settler::written`]) is
//! not ready, however long its writer pauses, until it is closed (or stays unchanged for the
//! open-file bound, [`Settler::with_open_wait`], in case its close was never seen).
//!
//! Without such events (other platforms, file systems that report nothing, files already there
//! at the start), the settle window is the rule: a writer that pauses for longer than the window
//! is taken for finished, so the window must exceed the longest pause of the slowest writer.
//! Empty files never settle (a writer that created the file may not have written yet).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::time::{Duration, Instant, SystemTime};

/// How long a file that is still open for writing (a write seen, its close not) must stay
/// unchanged before it is taken all the same, unless told otherwise.
pub const DEFAULT_OPEN_WAIT: Duration = Duration::from_secs(60);

/// What a look at a file tells about its content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Size in bytes.
    pub len: u64,
    /// Last modification time, when the platform has one.
    pub modified: Option<SystemTime>,
    /// Inode (Unix), so that a file replaced by another of the same size and time is noticed.
    pub inode: u64,
}

impl FileStamp {
    /// The stamp of a regular file, or `None` for anything else (folders, sockets, ...).
    #[must_use]
    pub fn of(meta: &Metadata) -> Option<FileStamp> {
        if !meta.is_file() {
            return None;
        }
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some(FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        })
    }
}

#[derive(Debug, Clone)]
struct Candidate {
    /// The last stamp seen, `None` until the file was looked at.
    stamp: Option<FileStamp>,
    /// Since when the stamp has been unchanged (reset by every change and every event).
    since: Instant,
    /// When the file was last looked at.
    observed: Option<Instant>,
    /// Arrival order, so that files are claimed first come, first served.
    order: u64,
    /// A write was reported and its writer has not closed the file since.
    writing: bool,
    /// Its writer closed it; the next look records the stamp it was closed with.
    close_pending: bool,
    /// The stamp the file had when its writer closed it (cleared when it changes).
    closed_stamp: Option<FileStamp>,
}

impl Candidate {
    fn new(now: Instant, order: u64) -> Candidate {
        Candidate {
            stamp: None,
            since: now,
            observed: None,
            order,
            writing: false,
            close_pending: false,
            closed_stamp: None,
        }
    }
}

/// The files of the hot folder that are waiting to settle.
#[derive(Debug, Clone)]
pub struct Settler {
    window: Duration,
    open_wait: Duration,
    files: BTreeMap<OsString, Candidate>,
    next_order: u64,
}

impl Settler {
    /// A settler that wants files unchanged for `window`.
    #[must_use]
    pub fn new(window: Duration) -> Settler {
        Settler {
            window,
            open_wait: DEFAULT_OPEN_WAIT.max(window),
            files: BTreeMap::new(),
            next_order: 0,
        }
    }

    /// How long a file whose writer has not closed it must stay unchanged before it is taken
    /// all the same (its close may have been missed); never shorter than the window.
    #[must_use]
    pub fn with_open_wait(mut self, open_wait: Duration) -> Settler {
        self.open_wait = open_wait.max(self.window);
        self
    }

    /// The settle window.
    #[must_use]
    pub fn window(&self) -> Duration {
        self.window
    }

    /// A file-system event named this file: it may have changed, so its window starts again.
    /// An unknown file becomes a candidate (to be looked at).
    pub fn touch(&mut self, name: OsString, now: Instant) {
        self.entry(name, now).since = now;
    }

    /// A write into this file was reported: it is not ready until its writer closes it.
    pub fn written(&mut self, name: OsString, now: Instant) {
        let candidate = self.entry(name, now);
        candidate.since = now;
        candidate.writing = true;
        candidate.close_pending = false;
        candidate.closed_stamp = None;
    }

    /// Its writer closed this file (or it was moved into the folder whole): it is ready as soon
    /// as a look at it ([`Settler::observe`]) finds it not empty, and unchanged from then on.
    pub fn closed(&mut self, name: OsString, now: Instant) {
        let candidate = self.entry(name, now);
        candidate.since = now;
        candidate.writing = false;
        candidate.close_pending = true;
    }

    /// Forgets every write that was not seen closed: events were lost, so the settle window
    /// decides for those files.
    pub fn forget_writes(&mut self) {
        for candidate in self.files.values_mut() {
            candidate.writing = false;
        }
    }

    fn entry(&mut self, name: OsString, now: Instant) -> &mut Candidate {
        let order = self.next_order;
        let candidate = self
            .files
            .entry(name)
            .or_insert_with(|| Candidate::new(now, order));
        if candidate.order == order {
            self.next_order += 1;
        }
        candidate
    }

    /// The result of looking at a file: its stamp, or `None` when it is gone or not a regular
    /// file (it is then forgotten). A changed stamp starts the window again.
    pub fn observe(&mut self, name: OsString, stamp: Option<FileStamp>, now: Instant) {
        let Some(stamp) = stamp else {
            self.files.remove(&name);
            return;
        };
        let candidate = self.entry(name, now);
        if candidate.stamp != Some(stamp) {
            candidate.stamp = Some(stamp);
            candidate.since = now;
            candidate.closed_stamp = None;
        }
        if candidate.close_pending {
            candidate.close_pending = false;
            candidate.closed_stamp = Some(stamp);
        }
        candidate.observed = Some(now);
    }

    /// Forgets a file (claimed, or given up on).
    pub fn forget(&mut self, name: &OsString) {
        self.files.remove(name);
    }

    /// Whether a file is waiting.
    #[must_use]
    pub fn contains(&self, name: &OsString) -> bool {
        self.files.contains_key(name)
    }

    /// The files waiting (to be looked at again), in name order.
    pub fn names(&self) -> impl Iterator<Item = &OsString> {
        self.files.keys()
    }

    /// How many files are waiting.
    #[must_use]
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no file is waiting.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The earliest-arrived file that has settled, removed from the waiting files, with the
    /// stamp it settled with (the caller checks it once more just before claiming).
    ///
    /// Settled means: not empty, and either closed by its writer and unchanged since, or (no
    /// write seen unclosed) a look at it taken at least one window after its last change found
    /// it unchanged, or (a write seen unclosed) the same after the open-file bound.
    pub fn take_ready(&mut self) -> Option<(OsString, FileStamp)> {
        let (window, open_wait) = (self.window, self.open_wait);
        let name = self
            .files
            .iter()
            .filter(|(_, c)| is_settled(c, window, open_wait))
            .min_by_key(|(_, c)| c.order)
            .map(|(name, _)| name.clone())?;
        let candidate = self.files.remove(&name)?;
        candidate.stamp.map(|stamp| (name, stamp))
    }
}

fn is_settled(c: &Candidate, window: Duration, open_wait: Duration) -> bool {
    match (c.stamp, c.observed) {
        (Some(stamp), Some(observed)) => {
            let wait = if c.writing { open_wait } else { window };
            stamp.len > 0
                && (c.closed_stamp == Some(stamp)
                    || observed
                        .checked_duration_since(c.since)
                        .is_some_and(|d| d >= wait))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(500);

    fn stamp(len: u64, secs: u64) -> Option<FileStamp> {
        Some(FileStamp {
            len,
            modified: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs)),
            inode: 7,
        })
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn name(s: &str) -> OsString {
        OsString::from(s)
    }

    fn ready_names(s: &mut Settler) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((n, _)) = s.take_ready() {
            out.push(n.to_string_lossy().into_owned());
        }
        out
    }

    /// Each step: (time in ms, file, stamp or gone, expected ready files after the step).
    type Step = (
        u64,
        &'static str,
        Option<FileStamp>,
        &'static [&'static str],
    );

    fn play(steps: &[Step]) {
        let t0 = Instant::now();
        let mut s = Settler::new(WINDOW);
        for (i, (t, file, st, want)) in steps.iter().enumerate() {
            s.observe(name(file), *st, ms(t0, *t));
            let got = {
                let mut copy = s.clone();
                ready_names(&mut copy)
            };
            assert_eq!(got, *want, "step {i} at {t} ms");
        }
    }

    #[test]
    fn a_file_is_ready_once_unchanged_for_the_window() {
        play(&[
            (0, "a.yaml", stamp(10, 1), &[]),
            (250, "a.yaml", stamp(10, 1), &[]),
            (499, "a.yaml", stamp(10, 1), &[]),
            (500, "a.yaml", stamp(10, 1), &["a.yaml"]),
        ]);
    }

    #[test]
    fn a_growing_file_starts_its_window_again() {
        play(&[
            (0, "slow.yaml", stamp(10, 1), &[]),
            (400, "slow.yaml", stamp(20, 1), &[]),
            (800, "slow.yaml", stamp(30, 2), &[]),
            (1200, "slow.yaml", stamp(30, 2), &[]),
            (1299, "slow.yaml", stamp(30, 2), &[]),
            (1300, "slow.yaml", stamp(30, 2), &["slow.yaml"]),
        ]);
    }

    #[test]
    fn a_rewrite_of_the_same_size_starts_the_window_again() {
        play(&[
            (0, "a.yaml", stamp(10, 1), &[]),
            (400, "a.yaml", stamp(10, 2), &[]),
            (600, "a.yaml", stamp(10, 2), &[]),
            (900, "a.yaml", stamp(10, 2), &["a.yaml"]),
        ]);
    }

    #[test]
    fn an_empty_file_never_settles_and_a_gone_file_is_forgotten() {
        play(&[
            (0, "empty.yaml", stamp(0, 1), &[]),
            (5000, "empty.yaml", stamp(0, 1), &[]),
            (5100, "gone.yaml", stamp(3, 1), &[]),
            (5700, "gone.yaml", None, &[]),
            (5800, "empty.yaml", stamp(4, 2), &[]),
            (6300, "empty.yaml", stamp(4, 2), &["empty.yaml"]),
        ]);
    }

    #[test]
    fn readiness_needs_a_look_after_the_window() {
        // Time passing alone proves nothing: the file may have changed without an event.
        let t0 = Instant::now();
        let mut s = Settler::new(WINDOW);
        s.observe(name("a.yaml"), stamp(10, 1), t0);
        assert!(s.clone().take_ready().is_none());
        s.observe(name("a.yaml"), stamp(10, 1), ms(t0, 10_000));
        assert_eq!(s.take_ready().map(|(n, _)| n), Some(name("a.yaml")));
        assert!(s.is_empty(), "a taken file is no longer waiting");
    }

    #[test]
    fn an_event_starts_the_window_again_even_if_the_stamp_looks_the_same() {
        // Coarse modification times may hide a rewrite; the event does not.
        let t0 = Instant::now();
        let mut s = Settler::new(WINDOW);
        s.observe(name("a.yaml"), stamp(10, 1), t0);
        s.touch(name("a.yaml"), ms(t0, 400));
        s.observe(name("a.yaml"), stamp(10, 1), ms(t0, 600));
        assert!(s.clone().take_ready().is_none());
        s.observe(name("a.yaml"), stamp(10, 1), ms(t0, 900));
        assert!(s.take_ready().is_some());
    }

    #[test]
    fn a_touched_file_is_not_ready_before_it_was_looked_at() {
        let t0 = Instant::now();
        let mut s = Settler::new(WINDOW);
        s.touch(name("a.yaml"), t0);
        s.touch(name("a.yaml"), ms(t0, 10));
        assert_eq!(s.len(), 1, "duplicate events make one candidate");
        assert!(s.clone().take_ready().is_none());
        s.observe(name("a.yaml"), stamp(5, 1), ms(t0, 20));
        s.observe(name("a.yaml"), stamp(5, 1), ms(t0, 520));
        assert!(s.take_ready().is_some());
    }

    #[test]
    fn files_are_taken_in_arrival_order_each_once() {
        let t0 = Instant::now();
        let mut s = Settler::new(WINDOW);
        for (i, n) in ["c.yaml", "a.yaml", "b.yaml"].iter().enumerate() {
            s.touch(name(n), ms(t0, i as u64));
        }
        // Bursts of duplicate events change nothing in the order.
        s.touch(name("c.yaml"), ms(t0, 5));
        for n in ["a.yaml", "b.yaml", "c.yaml"] {
            s.observe(name(n), stamp(1, 1), ms(t0, 10));
            s.observe(name(n), stamp(1, 1), ms(t0, 600));
        }
        assert_eq!(ready_names(&mut s), ["c.yaml", "a.yaml", "b.yaml"]);
        assert!(s.take_ready().is_none(), "nothing is handed out twice");
    }

    #[test]
    fn a_closed_file_is_ready_at_once_and_a_file_being_written_is_not() {
        let t0 = Instant::now();
        let mut s = Settler::new(WINDOW).with_open_wait(Duration::from_secs(5));
        // Written, then a pause far longer than the window: still open, so not ready.
        s.written(name("a.png"), t0);
        s.observe(name("a.png"), stamp(10, 1), ms(t0, 1));
        s.observe(name("a.png"), stamp(10, 1), ms(t0, 3000));
        assert!(s.clone().take_ready().is_none(), "open for writing");
        // Closed: ready on the first look, without waiting for the window.
        s.written(name("a.png"), ms(t0, 3001));
        s.closed(name("a.png"), ms(t0, 3002));
        assert!(s.clone().take_ready().is_none(), "not looked at yet");
        s.observe(name("a.png"), stamp(20, 2), ms(t0, 3003));
        assert_eq!(s.take_ready().map(|(n, _)| n), Some(name("a.png")));
    }

    #[test]
    fn a_change_after_the_close_falls_back_to_the_window() {
        let t0 = Instant::now();
        let mut s = Settler::new(WINDOW);
        s.closed(name("a.yaml"), t0);
        s.observe(name("a.yaml"), stamp(10, 1), t0);
        // Changed without an event (an event was lost): the close no longer vouches for it.
        s.observe(name("a.yaml"), stamp(12, 2), ms(t0, 10));
        assert!(s.clone().take_ready().is_none());
        s.observe(name("a.yaml"), stamp(12, 2), ms(t0, 510));
        assert!(s.take_ready().is_some());
        // An empty closed file is not ready.
        s.closed(name("e.yaml"), t0);
        s.observe(name("e.yaml"), stamp(0, 1), t0);
        assert!(s.take_ready().is_none());
    }

    #[test]
    fn an_unclosed_write_is_taken_after_the_open_bound_or_when_events_were_lost() {
        let t0 = Instant::now();
        let mut s = Settler::new(WINDOW).with_open_wait(Duration::from_secs(5));
        s.written(name("a.yaml"), t0);
        s.observe(name("a.yaml"), stamp(10, 1), t0);
        s.observe(name("a.yaml"), stamp(10, 1), ms(t0, 4999));
        assert!(s.clone().take_ready().is_none());
        s.observe(name("a.yaml"), stamp(10, 1), ms(t0, 5000));
        assert!(s.take_ready().is_some(), "the bound");
        s.written(name("b.yaml"), t0);
        s.observe(name("b.yaml"), stamp(10, 1), t0);
        s.observe(name("b.yaml"), stamp(10, 1), ms(t0, 600));
        assert!(s.clone().take_ready().is_none());
        s.forget_writes();
        assert!(s.take_ready().is_some(), "lost events: the window decides");
    }
}
