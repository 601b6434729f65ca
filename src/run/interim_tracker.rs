//! Polling-only item tracking, used until the shared tracker lands.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use crate::client::{Client, ClientError, QueueItem};

/// What tracking reports.
#[derive(Debug)]
pub enum TrackEvent {
    /// An item reached a terminal status.
    Finished(QueueItem),
}

/// Follows queue items until they end.
#[derive(Debug)]
pub struct Tracker {
    client: Client,
    watched: BTreeSet<i64>,
    ready: VecDeque<QueueItem>,
    interval: Duration,
}

impl Tracker {
    /// Starts tracking.
    ///
    /// # Errors
    /// Never today.
    pub async fn start(client: &Client, interval: Duration) -> Result<Tracker, ClientError> {
        Ok(Tracker {
            client: client.clone(),
            watched: BTreeSet::new(),
            ready: VecDeque::new(),
            interval,
        })
    }

    /// Follows these items.
    pub fn watch(&mut self, ids: impl IntoIterator<Item = i64>) {
        self.watched.extend(ids);
    }

    /// The next event; `None` when nothing is watched.
    pub async fn next(&mut self) -> Option<TrackEvent> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(TrackEvent::Finished(item));
            }
            if self.watched.is_empty() {
                return None;
            }
            let ids: Vec<i64> = self.watched.iter().copied().collect();
            for chunk in ids.chunks(500) {
                if let Ok(items) = self.client.queue().items_by_ids(chunk).await {
                    for item in items {
                        if item.status.is_terminal() {
                            self.watched.remove(&item.item_id);
                            self.ready.push_back(item);
                        }
                    }
                }
            }
            if self.ready.is_empty() {
                tokio::time::sleep(self.interval).await;
            }
        }
    }
}
