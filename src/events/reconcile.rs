//! Deciding which queue items have finished, from events and from polling.
//!
//! Events can be lost (while the socket is down) and can arrive stale (a poll may have seen a
//! newer status already). [`StatusTracker`] keeps the newest known status of each item and
//! discards older news using `status_sequence`. [`Reconciler`] watches a set of items and reports
//! each one exactly once when it becomes terminal, whichever source said so first: call
//! [`Reconciler::on_event`] for every event, and [`Reconciler::reconcile`] after
//! [`StreamItem::Reconnected`](super::StreamItem::Reconnected) and on a timer. It does not depend
//! on the REST client: `reconcile` takes a fetch function.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use super::ItemStatus;
use super::message::{Event, StatusChange};
use crate::client::QueueItem;

/// What a poll of the queue says about one item (from `items_by_ids` or
/// `item_summaries_by_ids`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemSnapshot {
    /// The queue item.
    pub item_id: i64,
    /// Its status.
    pub status: ItemStatus,
    /// Its `status_sequence`, when the endpoint reports it.
    pub status_sequence: Option<i64>,
    /// Its error message, when it failed and the endpoint reports it.
    pub error_message: Option<String>,
}

impl From<&QueueItem> for ItemSnapshot {
    fn from(item: &QueueItem) -> Self {
        ItemSnapshot {
            item_id: item.item_id,
            status: item.status,
            status_sequence: item.status_sequence,
            error_message: item.error_message.clone(),
        }
    }
}

/// Keeps the newest known status of each item and says whether a new report is newer.
#[derive(Debug, Clone, Default)]
pub struct StatusTracker {
    known: BTreeMap<i64, (ItemStatus, Option<i64>)>,
}

impl StatusTracker {
    /// An empty tracker.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a report and returns whether it is news, i.e. not older than what is known.
    ///
    /// A report is stale, and ignored, when its `status_sequence` is lower than or equal to the
    /// known one, or when the item is already terminal and the report is not (terminal statuses
    /// never change). Without sequences on both sides, a differing status counts as news.
    pub fn observe(&mut self, item_id: i64, status: ItemStatus, sequence: Option<i64>) -> bool {
        let Some((known_status, known_seq)) = self.known.get(&item_id) else {
            self.known.insert(item_id, (status, sequence));
            return true;
        };
        let newer = match (sequence, known_seq) {
            (Some(new), Some(old)) => new > *old,
            // Terminal statuses never change; otherwise any different status is news.
            _ => (status.is_terminal() || !known_status.is_terminal()) && status != *known_status,
        };
        if newer {
            let seq = sequence.or(*known_seq);
            self.known.insert(item_id, (status, seq));
        }
        newer
    }

    /// Records a status event; see [`StatusTracker::observe`].
    pub fn observe_change(&mut self, change: &StatusChange) -> bool {
        self.observe(change.item.item_id, change.status, change.status_sequence)
    }

    /// The newest known status of an item.
    #[must_use]
    pub fn status(&self, item_id: i64) -> Option<ItemStatus> {
        self.known.get(&item_id).map(|(status, _)| *status)
    }
}

/// How a watched item ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It reached a terminal status.
    Finished {
        /// `completed`, `failed` or `canceled`.
        status: ItemStatus,
        /// The server's error message, when it failed and the source carried one.
        error_message: Option<String>,
    },
    /// It is no longer in the queue (deleted or cleared) without us seeing it finish.
    Vanished,
}

/// A watched item that has just become terminal (reported once per item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The queue item.
    pub item_id: i64,
    /// How it ended.
    pub outcome: Outcome,
}

/// Watches a set of queue items until each has settled.
#[derive(Debug, Clone, Default)]
pub struct Reconciler {
    tracker: StatusTracker,
    open: BTreeSet<i64>,
}

impl Reconciler {
    /// Watches the given items.
    pub fn new(item_ids: impl IntoIterator<Item = i64>) -> Self {
        Reconciler {
            tracker: StatusTracker::new(),
            open: item_ids.into_iter().collect(),
        }
    }

    /// Adds items to watch (e.g. from a later enqueue). Events can arrive before the enqueue
    /// call returns the item ids: items already known to be terminal settle at once and are
    /// returned.
    pub fn watch(&mut self, item_ids: impl IntoIterator<Item = i64>) -> Vec<Settled> {
        let mut settled = Vec::new();
        for id in item_ids {
            self.open.insert(id);
            if let Some(status) = self.tracker.status(id) {
                settled.extend(self.settle(id, status, None));
            }
        }
        settled
    }

    /// The watched items that have not settled yet, ascending.
    #[must_use]
    pub fn open_items(&self) -> Vec<i64> {
        self.open.iter().copied().collect()
    }

    /// Whether every watched item has settled.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.open.is_empty()
    }

    /// The newest known status of an item.
    #[must_use]
    pub fn status(&self, item_id: i64) -> Option<ItemStatus> {
        self.tracker.status(item_id)
    }

    /// Applies one event; returns the items it settled.
    ///
    /// Status events settle items that reach a terminal status (stale ones are discarded);
    /// `queue_items_canceled` settles the listed items as canceled. `queue_cleared` settles
    /// nothing: call [`Reconciler::reconcile`] after it, which finds the items gone.
    pub fn on_event(&mut self, event: &Event) -> Vec<Settled> {
        match event {
            Event::QueueItemStatusChanged(change) => {
                let fresh = self.tracker.observe_change(change);
                if fresh {
                    self.settle(
                        change.item.item_id,
                        change.status,
                        change.error_message.clone(),
                    )
                    .into_iter()
                    .collect()
                } else {
                    Vec::new()
                }
            }
            Event::QueueItemsCanceled {
                canceled_item_ids, ..
            } => canceled_item_ids
                .iter()
                .filter_map(|&id| {
                    if self.tracker.observe(id, ItemStatus::Canceled, None) {
                        self.settle(id, ItemStatus::Canceled, None)
                    } else {
                        None
                    }
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Applies the result of a poll of `asked` items; returns the items it settled. Asked items
    /// missing from `snapshots` have left the queue and settle as [`Outcome::Vanished`].
    pub fn apply_snapshots(&mut self, asked: &[i64], snapshots: &[ItemSnapshot]) -> Vec<Settled> {
        let mut settled = Vec::new();
        for snap in snapshots {
            if self
                .tracker
                .observe(snap.item_id, snap.status, snap.status_sequence)
            {
                settled.extend(self.settle(snap.item_id, snap.status, snap.error_message.clone()));
            } else if snap.status.is_terminal() && self.open.contains(&snap.item_id) {
                // Known terminal from before we watched it (e.g. an event that came first).
                settled.extend(self.settle(snap.item_id, snap.status, snap.error_message.clone()));
            }
        }
        for id in asked {
            if self.open.contains(id) && !snapshots.iter().any(|s| s.item_id == *id) {
                self.open.remove(id);
                settled.push(Settled {
                    item_id: *id,
                    outcome: Outcome::Vanished,
                });
            }
        }
        settled
    }

    /// Polls the open items with `fetch` and applies the answer; returns the items it settled.
    ///
    /// # Errors
    /// Returns the fetch function's error unchanged; nothing is recorded then.
    pub async fn reconcile<F, Fut, E>(&mut self, fetch: F) -> Result<Vec<Settled>, E>
    where
        F: FnOnce(Vec<i64>) -> Fut,
        Fut: Future<Output = Result<Vec<ItemSnapshot>, E>>,
    {
        let asked = self.open_items();
        if asked.is_empty() {
            return Ok(Vec::new());
        }
        let snapshots = fetch(asked.clone()).await?;
        Ok(self.apply_snapshots(&asked, &snapshots))
    }

    fn settle(
        &mut self,
        item_id: i64,
        status: ItemStatus,
        error_message: Option<String>,
    ) -> Option<Settled> {
        if status.is_terminal() && self.open.remove(&item_id) {
            Some(Settled {
                item_id,
                outcome: Outcome::Finished {
                    status,
                    error_message,
                },
            })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn status_event(item_id: i64, status: &str, seq: Option<i64>) -> Event {
        Event::parse(
            "queue_item_status_changed",
            json!({"queue_id": "default", "item_id": item_id, "batch_id": "b",
                   "status": status, "status_sequence": seq, "error_message":
                   if status == "failed" { json!("boom") } else { json!(null) }}),
        )
    }

    fn parse(status: &str) -> ItemStatus {
        serde_json::from_value(json!(status)).expect("a status string")
    }

    fn snap(item_id: i64, status: &str, seq: Option<i64>) -> ItemSnapshot {
        ItemSnapshot {
            item_id,
            status: parse(status),
            status_sequence: seq,
            error_message: None,
        }
    }

    #[test]
    fn tracker_discards_stale_and_duplicate_reports() {
        let mut t = StatusTracker::new();
        // (item, status, sequence, expected news?)
        let table: [(i64, &str, Option<i64>, bool); 8] = [
            (1, "pending", Some(1), true),
            (1, "in_progress", Some(2), true),
            (1, "in_progress", Some(2), false), // duplicate
            (1, "pending", Some(1), false),     // older
            (1, "completed", Some(3), true),
            (2, "completed", None, true),
            (2, "in_progress", None, false), // terminal never goes back
            (2, "completed", None, false),   // same status again
        ];
        for (i, (id, status, seq, news)) in table.into_iter().enumerate() {
            assert_eq!(
                t.observe(id, parse(status), seq),
                news,
                "row {i}: item {id} {status} {seq:?}"
            );
        }
        assert_eq!(t.status(1), Some(ItemStatus::Completed));
    }

    #[test]
    fn each_item_settles_once_whichever_source_comes_first() {
        let mut r = Reconciler::new([10, 11, 12]);
        assert!(
            r.on_event(&status_event(10, "in_progress", Some(2)))
                .is_empty()
        );
        let settled = r.on_event(&status_event(10, "failed", Some(3)));
        assert_eq!(
            settled,
            vec![Settled {
                item_id: 10,
                outcome: Outcome::Finished {
                    status: ItemStatus::Failed,
                    error_message: Some("boom".into())
                }
            }]
        );
        // The poll confirms 10 (already settled), finishes 11, 12 still runs.
        let settled = r.apply_snapshots(
            &[10, 11, 12],
            &[
                snap(10, "failed", Some(3)),
                snap(11, "completed", Some(3)),
                snap(12, "in_progress", Some(2)),
            ],
        );
        assert_eq!(settled.iter().map(|s| s.item_id).collect::<Vec<_>>(), [11]);
        // A late event for 11 does not settle it again; a stale one for 12 is ignored.
        assert!(
            r.on_event(&status_event(11, "completed", Some(3)))
                .is_empty()
        );
        assert!(r.on_event(&status_event(12, "pending", Some(1))).is_empty());
        assert_eq!(r.open_items(), [12]);
        let settled = r.on_event(&status_event(12, "completed", Some(3)));
        assert_eq!(settled.len(), 1);
        assert!(r.is_done());
    }

    #[test]
    fn bulk_cancel_and_vanished_items_settle() {
        let mut r = Reconciler::new([1, 2, 3]);
        let canceled = Event::parse(
            "queue_items_canceled",
            json!({"queue_id": "default", "canceled_item_ids": [2, 99]}),
        );
        let settled = r.on_event(&canceled);
        assert_eq!(settled.len(), 1, "99 is not ours");
        assert_eq!(settled[0].item_id, 2);
        // After a queue clear, the poll finds item 3 gone.
        let settled = r.apply_snapshots(&[1, 3], &[snap(1, "pending", None)]);
        assert_eq!(
            settled,
            vec![Settled {
                item_id: 3,
                outcome: Outcome::Vanished
            }]
        );
        assert_eq!(r.open_items(), [1]);
    }

    #[test]
    fn snapshot_from_a_polled_queue_item() {
        let item: QueueItem = serde_json::from_value(json!({
            "item_id": 5, "status": "failed", "status_sequence": 2,
            "error_type": "Exception", "error_message": "Unknown model x",
        }))
        .expect("a queue item as the server sends it, nulls omitted");
        let snapshot = ItemSnapshot::from(&item);
        assert_eq!(
            snapshot,
            ItemSnapshot {
                item_id: 5,
                status: ItemStatus::Failed,
                status_sequence: Some(2),
                error_message: Some("Unknown model x".into()),
            }
        );
    }

    #[test]
    fn events_seen_before_the_ids_are_known_count() {
        let mut r = Reconciler::default();
        assert!(
            r.on_event(&status_event(4, "completed", Some(3)))
                .is_empty()
        );
        let settled = r.watch([4, 5]);
        assert_eq!(settled.iter().map(|s| s.item_id).collect::<Vec<_>>(), [4]);
        assert_eq!(r.open_items(), [5]);
    }

    #[tokio::test]
    async fn reconcile_asks_only_for_open_items_and_passes_errors_through() {
        let mut r = Reconciler::new([5, 6]);
        r.on_event(&status_event(5, "completed", Some(3)));
        let settled = r
            .reconcile(|ids| async move {
                assert_eq!(ids, [6], "settled items are not polled again");
                Ok::<_, String>(vec![snap(6, "canceled", None)])
            })
            .await
            .expect("fetch succeeds");
        assert_eq!(settled[0].item_id, 6);
        assert!(r.is_done());

        let mut r = Reconciler::new([7]);
        let err = r
            .reconcile(|_| async { Err::<Vec<ItemSnapshot>, _>("server down".to_string()) })
            .await
            .expect_err("fetch fails");
        assert_eq!(err, "server down");
        assert_eq!(r.open_items(), [7]);
    }
}
