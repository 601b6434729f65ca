//! Sharing enqueues between runs that go at once (`invk-run watch DIR --each`): a burst of
//! images is a burst of runs, each with its own folder and journal, whose enqueues differ only
//! in the image. The [`Coalescer`] gathers them for a moment and sends those that can share a
//! batch (see `run/merge.rs`) as one enqueue.
//!
//! It gathers enqueues as a window: while the runs' sessions pending on the server are at
//! least an eighth of the most seen (the server has work enough), up to [`MAX_HOLD`], and while
//! runs that have started are still on their way to their first enqueue (preparing,
//! uploading), up to [`MAX_WAIT`]; at once when the gathered enqueues fill a batch (the cap of
//! sessions). A run alone on an idle server sends at once. Each run journals its part of a
//! shared batch (its sessions, where they start, then its own item ids) before and after the
//! one request, as it would its own batch: what happens after a crash or an outage stays the
//! run's own business.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use super::merge;
use crate::client::{Client, ClientError};
use crate::workflow::{Batch, EnqueueBatch};

/// The longest an enqueue waits for the runs still starting.
pub const MAX_WAIT: Duration = Duration::from_secs(2);

/// The longest an enqueue is held while the server has work enough.
pub const MAX_HOLD: Duration = Duration::from_secs(10);

/// The longest the shared enqueue waits for every run of it to journal its part.
const JOURNAL_WAIT: Duration = Duration::from_secs(30);

/// Gathers the enqueues of concurrent runs and sends those that can share a batch as one.
/// Clones share the gathering.
#[derive(Clone)]
pub struct Coalescer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("cap", &self.inner.cap)
            .finish_non_exhaustive()
    }
}

struct Inner {
    state: Mutex<Gathering>,
    changed: Notify,
    /// The most sessions of a shared batch.
    cap: usize,
}

#[derive(Default)]
struct Gathering {
    /// Runs started and not yet at their first enqueue.
    starting: HashSet<String>,
    /// Each run's sessions pending on its server, as it last said.
    pending: HashMap<String, usize>,
    /// The most sessions of the runs pending at once so far.
    peak: usize,
    /// Enqueues waiting to be sent.
    waiting: Vec<Request>,
    /// Whether a dispatcher is gathering `waiting`.
    gathering: bool,
}

impl Gathering {
    /// Whether the runs' sessions pending on the server are at least an eighth of the most
    /// seen: the server has work enough, and enqueues can wait to be sent together. (The queue
    /// runs items in order, so an enqueue held while the runs' earlier items are pending would
    /// not have run sooner; an eighth keeps the server busy while the next one is sent.)
    fn busy(&self) -> bool {
        let pending: usize = self.pending.values().sum();
        self.peak > 0 && pending * 8 >= self.peak
    }

    /// Whether the gathered enqueues go now, `waited` after the first one came.
    fn ready(&self, cap: usize, waited: Duration) -> bool {
        let sessions: u64 = self.waiting.iter().map(|r| r.batch.session_count()).sum();
        let starting_done = self.starting.is_empty() || waited >= MAX_WAIT;
        sessions >= cap as u64 || waited >= MAX_HOLD || (starting_done && !self.busy())
    }
}

struct Request {
    run: String,
    server: String,
    client: Client,
    batch: Batch,
    reply: oneshot::Sender<Ticket>,
}

/// What became of an enqueue handed to the coalescer.
#[derive(Debug)]
pub(super) enum Ticket {
    /// It shares no batch: the run sends its own.
    Alone,
    /// It is part of a shared batch.
    Shared(Share),
}

/// A run's part of a shared batch. The run journals it, says so on `journaled`, and waits for
/// the `answer`. A run that drops `journaled` keeps the batch from being sent.
#[derive(Debug)]
pub(super) struct Share {
    /// The shared batch's id.
    pub batch_id: String,
    /// Where the run's sessions start in it.
    pub first: usize,
    /// Send once the run's part is journaled.
    pub journaled: oneshot::Sender<()>,
    /// What the server said; closed when the batch was not sent (a run of it could not journal
    /// its part): the run submits its jobs again.
    pub answer: oneshot::Receiver<Answer>,
}

/// What the server said to a shared batch, for one run of it.
#[derive(Debug)]
pub(super) enum Answer {
    /// The run's own item ids, ascending (fewer than its sessions, or none, when the queue
    /// was full).
    Items(Vec<i64>),
    /// The request failed on its way or its answer was lost or unreadable: it may or may not
    /// have reached the server. The run waits for the server and looks its items up.
    Lost(String),
    /// The server refused the shared batch (a 4xx; nothing was enqueued): the run sends its
    /// own, to learn why.
    Refused,
}

/// A run's enqueue taken back before it was sent (Ctrl-C).
#[derive(Debug)]
pub(super) struct Withdrawn;

/// A run that has started and will enqueue: the coalescer waits for it (up to [`MAX_WAIT`])
/// before it sends what the others gave it, until the run enqueues or waits for its server.
/// Drop it when the run ends.
#[derive(Debug)]
pub struct Starting {
    coalescer: Coalescer,
    run: String,
}

impl Drop for Starting {
    fn drop(&mut self) {
        let mut state = self.coalescer.lock();
        state.starting.remove(&self.run);
        state.pending.remove(&self.run);
        drop(state);
        self.coalescer.inner.changed.notify_waiters();
    }
}

impl Coalescer {
    /// A coalescer that puts at most `cap` sessions into a shared batch.
    #[must_use]
    pub fn new(cap: usize) -> Coalescer {
        Coalescer {
            inner: Arc::new(Inner {
                state: Mutex::new(Gathering::default()),
                changed: Notify::new(),
                cap: cap.max(1),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Gathering> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Says that the run named `run` has started and will enqueue soon.
    #[must_use]
    pub fn starting(&self, run: &str) -> Starting {
        self.lock().starting.insert(run.to_owned());
        Starting {
            coalescer: self.clone(),
            run: run.to_owned(),
        }
    }

    /// Says that the run named `run` is waiting for its server with `pending` sessions there,
    /// not about to enqueue.
    pub fn waiting(&self, run: &str, pending: usize) {
        let mut state = self.lock();
        let was_starting = state.starting.remove(run);
        let before = state.pending.insert(run.to_owned(), pending);
        let total: usize = state.pending.values().sum();
        state.peak = state.peak.max(total);
        drop(state);
        if was_starting || before != Some(pending) {
            self.inner.changed.notify_waiters();
        }
    }

    /// Hands an enqueue of the run `run` over; the ticket says whether it shares a batch.
    /// Cancelling `cancel` takes it back if it has not gone yet.
    pub(super) async fn join(
        &self,
        run: &str,
        server: &str,
        client: &Client,
        batch: &Batch,
        cancel: &CancellationToken,
    ) -> Result<Ticket, Withdrawn> {
        let (reply, mut ticket) = oneshot::channel();
        let dispatch = {
            let mut state = self.lock();
            state.starting.remove(run);
            state.waiting.push(Request {
                run: run.to_owned(),
                server: server.to_owned(),
                client: client.clone(),
                batch: batch.clone(),
                reply,
            });
            !std::mem::replace(&mut state.gathering, true)
        };
        if dispatch {
            tokio::spawn(self.clone().dispatch());
        }
        self.inner.changed.notify_waiters();
        tokio::select! {
            // A dispatcher always answers; if it could not, the run sends its own batch.
            answer = &mut ticket => return Ok(answer.unwrap_or(Ticket::Alone)),
            () = cancel.cancelled() => {}
        }
        let taken_back = {
            let mut state = self.lock();
            let before = state.waiting.len();
            state.waiting.retain(|r| r.run != run);
            state.waiting.len() < before
        };
        if taken_back {
            return Err(Withdrawn);
        }
        // Already on its way: its answer comes soon.
        Ok(ticket.await.unwrap_or(Ticket::Alone))
    }

    /// Gathers enqueues until they are [`ready`](Gathering::ready), then sends them.
    async fn dispatch(self) {
        let started = tokio::time::Instant::now();
        let requests = loop {
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.lock();
                if state.waiting.is_empty() || state.ready(self.inner.cap, started.elapsed()) {
                    state.gathering = false;
                    break std::mem::take(&mut state.waiting);
                }
            }
            // Woken by any change; the time limits are checked at least this often.
            tokio::select! {
                () = &mut changed => {}
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        };
        let enqueues: Vec<(&str, &Batch)> = requests
            .iter()
            .map(|r| (r.server.as_str(), &r.batch))
            .collect();
        let groups = merge::groups(&enqueues, self.inner.cap);
        let mut requests: Vec<Option<Request>> = requests.into_iter().map(Some).collect();
        for group in groups {
            let members: Vec<Request> = group.iter().filter_map(|&i| requests[i].take()).collect();
            send(members).await;
        }
    }
}

/// Sends one group's enqueues: alone for a group of one, else as one shared batch.
async fn send(members: Vec<Request>) {
    if members.len() < 2 {
        for member in members {
            let _ = member.reply.send(Ticket::Alone);
        }
        return;
    }
    let batch_id = uuid::Uuid::new_v4().to_string();
    let batches: Vec<&Batch> = members.iter().map(|m| &m.batch).collect();
    let merged = merge::merge(&batches, &batch_id);
    let client = members[0].client.clone();
    let mut answers = Vec::with_capacity(members.len());
    let mut journaled = Vec::with_capacity(members.len());
    for (member, &first) in members.into_iter().zip(&merged.firsts) {
        let sessions = usize::try_from(member.batch.session_count()).unwrap_or(usize::MAX);
        let (journaled_tx, journaled_rx) = oneshot::channel();
        let (answer_tx, answer_rx) = oneshot::channel();
        let share = Share {
            batch_id: batch_id.clone(),
            first,
            journaled: journaled_tx,
            answer: answer_rx,
        };
        if member.reply.send(Ticket::Shared(share)).is_err() {
            // The run is gone: nothing is sent, the others submit again.
            return;
        }
        journaled.push(journaled_rx);
        answers.push((answer_tx, first, sessions));
    }
    let all_journaled = async {
        for rx in journaled {
            if rx.await.is_err() {
                return false;
            }
        }
        true
    };
    if !matches!(
        tokio::time::timeout(JOURNAL_WAIT, all_journaled).await,
        Ok(true)
    ) {
        // Dropping the answers tells every run that nothing was sent.
        return;
    }
    let request = EnqueueBatch {
        batch: merged.batch,
        prepend: false,
    };
    let result = match client.queue().enqueue_batch(&request).await {
        Ok(result) => Ok(result.item_ids),
        Err(ClientError::QueueFull { result, .. }) => Ok(result.item_ids),
        // Refused outright (a 4xx): nothing was enqueued.
        Err(e) if e.status().is_some_and(|s| s.is_client_error()) => Err(None),
        // Anything else may have reached the server (an answer cut short or unreadable, a
        // 5xx): looked up before anything is sent again.
        Err(e) => Err(Some(crate::error_chain::error_chain(&e))),
    };
    for (tx, first, sessions) in answers {
        let answer = match &result {
            Ok(ids) => Answer::Items(merge::slice(ids, first, sessions)),
            Err(Some(error)) => Answer::Lost(error.clone()),
            Err(None) => Answer::Refused,
        };
        let _ = tx.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enqueues_go_at_once_to_an_idle_server_and_wait_while_it_has_work_or_runs_are_starting() {
        let mut state = Gathering::default();
        let cap = 64;
        assert!(
            state.ready(cap, Duration::ZERO),
            "an idle server, nobody starting"
        );

        state.starting.insert("b.png".into());
        assert!(!state.ready(cap, Duration::ZERO), "b is on its way");
        assert!(
            state.ready(cap, MAX_WAIT),
            "b is waited for at most MAX_WAIT"
        );

        state.starting.clear();
        for (run, pending) in [("c", 2), ("d", 1)] {
            state.pending.insert(run.into(), pending);
        }
        state.peak = 24;
        assert!(state.busy());
        assert!(!state.ready(cap, MAX_WAIT), "the server has work enough");
        assert!(state.ready(cap, MAX_HOLD), "held at most MAX_HOLD");
        state.pending.insert("d".into(), 0);
        assert!(!state.busy(), "seven eighths of the most seen are done");
        assert!(state.ready(cap, Duration::ZERO));
    }
}
