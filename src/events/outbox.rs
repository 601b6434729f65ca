//! Delivery to the consumer's bounded channel without ever waiting on it.
//!
//! Policy: an item goes straight into the channel when nothing is waiting ahead of it and there
//! is room. Otherwise progress events are dropped (counted), and every other item is kept, in
//! order, in an unbounded backlog that the session task drains as the consumer reads.

use std::collections::VecDeque;

use tokio::sync::mpsc::{self, error::TrySendError};

use super::StreamItem;

/// The consumer has dropped its receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConsumerGone;

/// Items waiting for room in the consumer's channel.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    backlog: VecDeque<StreamItem>,
    dropped: u64,
}

impl Outbox {
    /// Delivers or queues `item`, or drops it if it is progress and the consumer is behind.
    pub(crate) fn push(
        &mut self,
        item: StreamItem,
        tx: &mpsc::Sender<StreamItem>,
    ) -> Result<(), ConsumerGone> {
        let droppable = matches!(&item, StreamItem::Event(event) if event.is_progress());
        if !self.backlog.is_empty() {
            if droppable {
                self.note_drop();
            } else {
                self.backlog.push_back(item);
            }
            return Ok(());
        }
        match tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(item)) => {
                if droppable {
                    self.note_drop();
                } else {
                    self.backlog.push_back(item);
                }
                Ok(())
            }
            Err(TrySendError::Closed(_)) => Err(ConsumerGone),
        }
    }

    /// Whether items are waiting for room.
    pub(crate) fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Moves the oldest waiting item into the channel through a reserved slot.
    pub(crate) fn send_one(&mut self, permit: mpsc::Permit<'_, StreamItem>) {
        if let Some(item) = self.backlog.pop_front() {
            permit.send(item);
        }
    }

    /// How many progress events were dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    fn note_drop(&mut self) {
        self.dropped += 1;
        if self.dropped.is_power_of_two() {
            tracing::debug!(
                dropped = self.dropped,
                "event consumer is behind; dropping progress events"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::events::Event;

    fn progress(n: i64) -> StreamItem {
        StreamItem::Event(Event::parse(
            "invocation_progress",
            json!({"item_id": n, "invocation_source_id": "x", "message": "step"}),
        ))
    }

    fn status(n: i64) -> StreamItem {
        StreamItem::Event(Event::parse(
            "queue_item_status_changed",
            json!({"item_id": n, "status": "completed"}),
        ))
    }

    #[tokio::test]
    async fn full_channel_drops_progress_and_keeps_the_rest_in_order() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut outbox = Outbox::default();
        let sent = [
            progress(1), // delivered
            status(1),   // delivered; channel now full
            progress(2), // dropped
            status(2),   // backlog
            StreamItem::Reconnected,
            progress(3), // dropped: backlog not empty
            status(3),   // backlog
        ];
        for item in sent {
            outbox.push(item, &tx).expect("receiver alive");
        }
        assert_eq!(outbox.dropped(), 2);
        // The consumer reads; the session drains the backlog as room appears.
        let mut got = Vec::new();
        while got.len() < 5 {
            got.push(rx.recv().await.expect("item"));
            if outbox.has_backlog() {
                let permit = tx.reserve().await.expect("receiver alive");
                outbox.send_one(permit);
            }
        }
        assert_eq!(
            got,
            [
                progress(1),
                status(1),
                status(2),
                StreamItem::Reconnected,
                status(3)
            ]
        );
        assert!(!outbox.has_backlog());
        // With room again, progress flows.
        outbox.push(progress(4), &tx).expect("receiver alive");
        assert_eq!(rx.recv().await, Some(progress(4)));
    }

    #[test]
    fn a_dropped_receiver_is_reported() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let mut outbox = Outbox::default();
        assert_eq!(outbox.push(status(1), &tx), Err(ConsumerGone));
    }
}
