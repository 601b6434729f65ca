//! Following the submitted items: reading them, waiting for them, cancelling them.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::Stream;

use super::{HandleError, WorkflowHandle};
use crate::client::queue::{QueueItem, QueueItemStatus};
use crate::client::tracker::{TrackEvent, TrackMode, Tracker};

/// Progress of a wait, given to the callback of [`WorkflowHandle::wait_blocking`].
#[derive(Debug, Clone, Copy)]
pub struct WaitProgress<'a> {
    /// What happened.
    pub event: &'a TrackEvent,
    /// Items finished so far.
    pub finished: usize,
    /// Items waited for.
    pub total: usize,
}

impl WorkflowHandle {
    /// One queue item (session id, status, timestamps, error, results).
    ///
    /// # Errors
    /// `404` when there is none with this id, or any other [`ClientError`].
    ///
    /// [`ClientError`]: crate::client::ClientError
    pub async fn item(&self, item_id: i64) -> Result<QueueItem, HandleError> {
        Ok(self
            .client
            .queue_with_id(self.queue_id())
            .item(item_id)
            .await?)
    }

    /// Every submitted item, as the server has them now, ascending by id (items no longer in
    /// the queue are left out).
    ///
    /// # Errors
    /// [`HandleError::NothingSubmitted`], or any [`ClientError`].
    ///
    /// [`ClientError`]: crate::client::ClientError
    pub async fn items(&self) -> Result<Vec<QueueItem>, HandleError> {
        let ids = self.submitted_ids()?;
        let mut items = self
            .client
            .queue_with_id(self.queue_id())
            .items_by_ids(&ids)
            .await?;
        items.sort_by_key(|i| i.item_id);
        Ok(items)
    }

    /// Waits until every submitted item has finished, polling every `poll_interval` (no event
    /// socket), and calls `progress` for each news. Returns the finished items, ascending by id,
    /// whatever their status (check [`QueueItem::status`], or call [`WorkflowHandle::outputs`],
    /// which turns a failure into [`HandleError::ItemFailed`]).
    ///
    /// # Errors
    /// [`HandleError::Timeout`] when `timeout` passes first (the items keep running: call
    /// [`WorkflowHandle::cancel`] to stop them), [`HandleError::Vanished`] when items left the
    /// queue unseen, [`HandleError::NothingSubmitted`].
    pub async fn wait_blocking(
        &self,
        poll_interval: Duration,
        timeout: Option<Duration>,
        progress: impl FnMut(&WaitProgress<'_>),
    ) -> Result<Vec<QueueItem>, HandleError> {
        self.wait(TrackMode::PollOnly, poll_interval, timeout, progress)
            .await
    }

    /// Waits until every submitted item has finished, following them with `mode` (events with
    /// polling as the safety net, or polling only). As [`WorkflowHandle::wait_blocking`]
    /// otherwise.
    ///
    /// # Errors
    /// As [`WorkflowHandle::wait_blocking`].
    pub async fn wait(
        &self,
        mode: TrackMode,
        poll_interval: Duration,
        timeout: Option<Duration>,
        mut progress: impl FnMut(&WaitProgress<'_>),
    ) -> Result<Vec<QueueItem>, HandleError> {
        let ids = self.submitted_ids()?;
        let started = tokio::time::Instant::now();
        let deadline = timeout.map(|t| started + t);
        let mut tracker =
            Tracker::start_for_queue(&self.client, self.queue_id(), mode, poll_interval).await;
        tracker.watch(ids.iter().copied());
        let total = ids.len();
        let mut finished: Vec<QueueItem> = Vec::with_capacity(total);
        let mut vanished = Vec::new();
        loop {
            let next = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, tracker.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        let unfinished = tracker.open_items();
                        tracker.close().await;
                        return Err(HandleError::Timeout {
                            workflow: self.name().to_owned(),
                            waited: started.elapsed(),
                            unfinished,
                        });
                    }
                },
                None => tracker.next().await,
            };
            let Some(event) = next else { break };
            match &event {
                TrackEvent::Finished(item) => finished.push(item.clone()),
                TrackEvent::Vanished { item_id } => vanished.push(*item_id),
                _ => {}
            }
            progress(&WaitProgress {
                event: &event,
                finished: finished.len() + vanished.len(),
                total,
            });
        }
        tracker.close().await;
        if !vanished.is_empty() {
            vanished.sort_unstable();
            return Err(HandleError::Vanished {
                workflow: self.name().to_owned(),
                items: vanished,
            });
        }
        finished.sort_by_key(|i| i.item_id);
        Ok(finished)
    }

    /// Follows every submitted item with the event socket (polling as the safety net, every
    /// `poll_interval`): started, per-node progress and completion, and each item's finished
    /// state once. The stream ends when every item has finished.
    ///
    /// # Errors
    /// [`HandleError::NothingSubmitted`].
    pub async fn wait_events(
        &self,
        poll_interval: Duration,
    ) -> Result<impl Stream<Item = TrackEvent> + Send + 'static, HandleError> {
        let ids = self.submitted_ids()?;
        let mut tracker = Tracker::start_for_queue(
            &self.client,
            self.queue_id(),
            TrackMode::Events,
            poll_interval,
        )
        .await;
        tracker.watch(ids);
        Ok(futures_util::stream::unfold(
            Some(tracker),
            |state| async move {
                let mut tracker = state?;
                match tracker.next().await {
                    Some(event) => Some((event, Some(tracker))),
                    None => {
                        tracker.close().await;
                        None
                    }
                }
            },
        ))
    }

    /// Cancels every unfinished item of this handle's batches; returns how many were canceled.
    ///
    /// # Errors
    /// [`HandleError::NothingSubmitted`], or any [`ClientError`].
    ///
    /// [`ClientError`]: crate::client::ClientError
    pub async fn cancel(&self) -> Result<u64, HandleError> {
        self.submitted_ids()?;
        let mut by_queue: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for s in &self.submissions {
            by_queue
                .entry(s.queue_id.as_str())
                .or_default()
                .push(s.batch_id.clone());
        }
        let mut canceled = 0;
        for (queue_id, batch_ids) in by_queue {
            canceled += self
                .client
                .queue_with_id(queue_id)
                .cancel_batches(&batch_ids)
                .await?;
        }
        Ok(canceled)
    }

    /// Checks that an item completed, turning a failure into an error that carries the
    /// server's error type and message.
    ///
    /// # Errors
    /// [`HandleError::ItemFailed`], [`HandleError::ItemCanceled`] or
    /// [`HandleError::NotFinished`].
    pub fn ensure_completed(&self, item: &QueueItem) -> Result<(), HandleError> {
        let workflow = self.name().to_owned();
        match item.status {
            QueueItemStatus::Completed => Ok(()),
            QueueItemStatus::Failed => Err(HandleError::ItemFailed {
                workflow,
                item_id: item.item_id,
                error_type: item
                    .error_type
                    .clone()
                    .unwrap_or_else(|| "unknown error".to_owned()),
                error_message: item.error_message.clone().unwrap_or_default(),
            }),
            QueueItemStatus::Canceled => Err(HandleError::ItemCanceled {
                workflow,
                item_id: item.item_id,
            }),
            other => Err(HandleError::NotFinished {
                workflow,
                item_id: item.item_id,
                status: other.as_str().to_owned(),
            }),
        }
    }
}
