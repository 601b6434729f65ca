//! [`Tracker`]: the one place that waits for queue items, for the workflow handle and the runner.
//!
//! A tracker follows any number of queue items ([`Tracker::watch`], at any time, repeatedly) and
//! yields [`TrackEvent`]s from [`Tracker::next`]: [`TrackEvent::Finished`] exactly once per
//! watched item, with the **full** queue item fetched over REST after its terminal status was
//! seen (the server saves the session's results before it changes the status, so that item holds
//! the final results), and progress news in between.
//!
//! # Sources
//! - **Events** ([`TrackMode::Events`], the default): the server's Socket.IO stream. Status
//!   changes of watched items settle them; stale ones are discarded by `status_sequence`; items
//!   canceled in bulk (which get no status event of their own when pending) settle from
//!   `queue_items_canceled`. If the socket cannot be opened at start, the tracker polls instead
//!   (with a warning): a run never fails for want of events.
//! - **Polling** (always, as the safety net): one `item_summaries_by_ids` call for all open items
//!   (1000 ids per call), right after every [`Tracker::watch`] (an item may have finished before it
//!   was watched), after every reconnect or queue clear, and every `poll_interval`. Polling never
//!   infers "done" from "not pending": only a terminal status settles an item; an item that is no
//!   longer in the queue at all settles as [`TrackEvent::Vanished`].
//!
//! Both sources feed one state machine (`state.rs`) that holds everything known of each item;
//! this module only does its I/O. Items the caller no longer cares about (canceled by it, say)
//! are dropped with [`Tracker::forget`].
//!
//! # Outages
//! A failed poll or fetch (after the client's own retries) is reported as
//! [`TrackEvent::PollFailed`]; the first of an outage also as [`TrackEvent::ServerDown`], and the
//! first sign of life after it as [`TrackEvent::ServerBack`]. The tracker itself never gives up:
//! how long to wait for the server is the caller's choice.
//!
//! The server pauses about a second before each item and its HTTP answers stall meanwhile, so
//! the tracker never polls in a tight loop: keep `poll_interval` at a second or more.
//!
//! ```no_run
//! # async fn demo(client: invk_run::client::Client, item_ids: Vec<i64>) {
//! use std::time::Duration;
//! use invk_run::client::{TrackEvent, TrackMode, Tracker};
//!
//! let mut tracker = Tracker::start(&client, TrackMode::Events, Duration::from_secs(5)).await;
//! tracker.watch(item_ids);
//! while let Some(event) = tracker.next().await {
//!     if let TrackEvent::Finished(item) = event {
//!         println!("item {} ended {}", item.item_id, item.status.as_str());
//!     }
//! }
//! tracker.close().await;
//! # }
//! ```

mod event;
mod state;

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Body, Client, ClientError, Replay};
use crate::error_chain::error_chain;
use crate::events::{EventStream, EventsConfig, EventsHandle, StreamItem};
pub use event::{TrackEvent, TrackMode};
use state::{Need, Polled, TrackState};

/// The most ids the server takes in one `item_summaries_by_ids` or `items_by_ids` call.
const IDS_PER_CALL: usize = 1000;

/// The shortest pause between two polls, whatever `poll_interval` says.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How long a failed item's report waits for its node's `invocation_error` event, which the
/// server sends just after the item's `failed` status.
const ERROR_EVENT_GRACE: Duration = Duration::from_secs(1);

/// Follows queue items until each has finished; see the [module docs](self).
#[derive(Debug)]
pub struct Tracker {
    client: Client,
    queue_id: String,
    events: Option<(EventsHandle, mpsc::Receiver<StreamItem>)>,
    poll_interval: Duration,
    next_poll: Instant,
    state: TrackState,
    /// The request under way, if any: it runs on its own, so that a call to
    /// [`Tracker::next`] cut short does not cut it short too (its time-out then counts from
    /// when it was sent, however often the caller looks away).
    inflight: Option<Inflight>,
}

/// A poll or fetch under way.
#[derive(Debug)]
struct Inflight {
    fetch: bool,
    ids: Vec<i64>,
    sent: Instant,
    answer: tokio::task::JoinHandle<Result<Answer, ClientError>>,
}

/// What a poll or a fetch brought.
#[derive(Debug)]
enum Answer {
    Polled(Vec<Polled>),
    Fetched(Vec<super::QueueItem>),
}

impl Tracker {
    /// A tracker of the `default` queue; see [`Tracker::start_for_queue`].
    pub async fn start(client: &Client, mode: TrackMode, poll_interval: Duration) -> Tracker {
        Tracker::start_for_queue(client, "default", mode, poll_interval).await
    }

    /// A tracker of the queue `queue_id`. With [`TrackMode::Events`] it opens the event socket
    /// first; when that fails it logs a warning and polls instead. It never fails.
    ///
    /// `poll_interval` is the pause between two polls (at least 200 ms): a few seconds with
    /// events (polling is only the safety net), about a second when polling alone.
    pub async fn start_for_queue(
        client: &Client,
        queue_id: &str,
        mode: TrackMode,
        poll_interval: Duration,
    ) -> Tracker {
        let events = match mode {
            TrackMode::PollOnly => None,
            TrackMode::Events => {
                let mut config = EventsConfig::new(client.base_url().clone());
                config.queue_id = queue_id.to_owned();
                config.token = client.token().map(|t| t.expose().to_owned());
                match EventStream::connect(config).await {
                    Ok(stream) => Some(stream),
                    Err(err) => {
                        tracing::warn!(
                            "no event stream ({err}); following the queue by polling every {poll_interval:?}"
                        );
                        None
                    }
                }
            }
        };
        let poll_interval = poll_interval.max(MIN_POLL_INTERVAL);
        let error_grace = events.is_some().then_some(ERROR_EVENT_GRACE);
        Tracker {
            client: client.clone(),
            queue_id: queue_id.to_owned(),
            events,
            poll_interval,
            next_poll: Instant::now() + poll_interval,
            state: TrackState::new(error_grace),
            inflight: None,
        }
    }

    /// Whether the event socket is in use (false when polling only).
    #[must_use]
    pub fn uses_events(&self) -> bool {
        self.events.is_some()
    }

    /// Follows these items too (ids already watched or reported are ignored). The next call to
    /// [`Tracker::next`] polls them once at once, so items that finished before they were
    /// watched are found.
    pub fn watch(&mut self, item_ids: impl IntoIterator<Item = i64>) {
        self.state.watch(item_ids, Instant::now());
    }

    /// Stops following these items (canceled by the caller, say, or no longer of interest):
    /// nothing more is reported about them, not even news already received and not yet
    /// returned by [`Tracker::next`]. Ids the tracker does not know are ignored; watching an
    /// id again later follows it afresh. Forgetting reported items also frees what the tracker
    /// kept of them.
    pub fn forget(&mut self, item_ids: impl IntoIterator<Item = i64>) {
        self.state.forget(item_ids);
    }

    /// The watched items that have not finished yet, ascending.
    #[must_use]
    pub fn open_items(&self) -> Vec<i64> {
        self.state.unfinished_items()
    }

    /// The next event; `None` when every watched item has been reported finished (or vanished)
    /// and nothing else is pending. Call [`Tracker::watch`] again to go on.
    ///
    /// Cancel-safe: when the future is dropped (in a `select!`), no news is lost; a fetch cut
    /// short is made again at the next call, a poll at the next interval.
    pub async fn next(&mut self) -> Option<TrackEvent> {
        loop {
            if self.inflight.is_some() {
                self.settle_request().await;
                continue;
            }
            match self.state.need(Instant::now()) {
                Need::Emit(event) => return Some(event),
                Need::Idle => return None,
                Need::Fetch(ids) => self.send(true, ids),
                Need::Poll(ids) => {
                    self.next_poll = Instant::now() + self.poll_interval;
                    self.send(false, ids);
                }
                Need::Wait => self.wait().await,
            }
        }
    }

    /// Sends a poll (or, with `fetch`, a fetch) of `ids`, to run on its own.
    fn send(&mut self, fetch: bool, ids: Vec<i64>) {
        let client = self.client.clone();
        let queue_id = self.queue_id.clone();
        let asked = ids.clone();
        let answer = tokio::spawn(async move {
            if fetch {
                let items = client.queue_with_id(&queue_id).items_by_ids(&asked).await?;
                Ok(Answer::Fetched(items))
            } else {
                Ok(Answer::Polled(summaries(&client, &queue_id, &asked).await?))
            }
        });
        self.inflight = Some(Inflight {
            fetch,
            ids,
            sent: Instant::now(),
            answer,
        });
    }

    /// Waits for the request under way to end, and applies its answer. Cancel-safe: the
    /// request goes on, and the next call waits for it again.
    async fn settle_request(&mut self) {
        let Some(inflight) = &mut self.inflight else {
            return;
        };
        let answer = (&mut inflight.answer).await;
        let Some(Inflight {
            fetch, ids, sent, ..
        }) = self.inflight.take()
        else {
            return;
        };
        let answer = match answer {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(err)) => Err(self.log_failure(&err)),
            Err(e) => Err(format!("the request ended abnormally: {e}")),
        };
        match (answer, fetch) {
            (Ok(Answer::Polled(polled)), _) => self.state.on_poll(&ids, &polled, Instant::now()),
            (Ok(Answer::Fetched(items)), _) => self.state.on_fetched(&ids, items),
            (Err(error), false) => self.state.on_poll_failed(error, sent),
            (Err(error), true) => {
                let retry_at = Instant::now() + self.poll_interval;
                self.state.on_fetch_failed(&ids, error, sent, retry_at);
            }
        }
    }

    /// Waits for an event or a timer, and applies what came.
    async fn wait(&mut self) {
        let deadline = self
            .state
            .wake_at()
            .map_or(self.next_poll, |at| at.min(self.next_poll));
        let Some((_, receiver)) = &mut self.events else {
            tokio::time::sleep_until(deadline).await;
            if Instant::now() >= self.next_poll {
                self.state.request_poll();
            }
            return;
        };
        tokio::select! {
            item = receiver.recv() => match item {
                Some(item) => {
                    self.state.on_stream_item(item, Instant::now());
                    // Take whatever else is already there, so that one fetch serves them all.
                    while let Ok(more) = receiver.try_recv() {
                        self.state.on_stream_item(more, Instant::now());
                    }
                }
                None => {
                    tracing::warn!("the event stream ended; following the queue by polling");
                    self.events = None;
                    self.state.without_events();
                }
            },
            () = tokio::time::sleep_until(deadline) => {
                if Instant::now() >= self.next_poll {
                    self.state.request_poll();
                }
            }
        }
    }

    fn log_failure(&self, err: &ClientError) -> String {
        let error = error_chain(err);
        tracing::warn!(
            "asking the queue about its items failed: {error}; trying again in {:?}",
            self.poll_interval
        );
        error
    }

    /// Closes the event socket (if any) and waits for its task to end.
    pub async fn close(self) {
        if let Some(inflight) = &self.inflight {
            inflight.answer.abort();
        }
        if let Some((handle, _receiver)) = self.events
            && let Err(err) = handle.close().await
        {
            tracing::debug!("closing the event stream: {err}");
        }
    }
}

/// The statuses of `ids` on queue `queue_id`.
async fn summaries(
    client: &Client,
    queue_id: &str,
    ids: &[i64],
) -> Result<Vec<Polled>, ClientError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_CALL) {
        let url = client.endpoint(&["api", "v1", "queue", queue_id, "item_summaries_by_ids"]);
        let rows: Vec<Polled> = client
            .send_json(
                Method::POST,
                url,
                Replay::Idempotent,
                Body::json(&json!({ "item_ids": chunk })),
            )
            .await?;
        out.extend(rows);
    }
    Ok(out)
}
