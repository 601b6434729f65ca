//! Typed server events, parsed from the raw Socket.IO payloads.
//!
//! Parsing never fails: an event this crate does not know, or a known event whose payload does
//! not have the fields we need, becomes [`Event::Other`] with its name and raw payload. Extra
//! fields are ignored, so newer servers keep working.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ItemStatus;

/// The fields every queue-item event carries (`QueueItemEventBase` on the server).
///
/// In multi-user mode, events about other users' items arrive "sanitized": `batch_id`,
/// `session_id` and `user_id` read `"redacted"`, and `origin`/`destination` are null.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ItemContext {
    /// The queue, always `"default"` today.
    #[serde(default)]
    pub queue_id: String,
    /// The queue item.
    pub item_id: i64,
    /// The batch the item belongs to.
    #[serde(default)]
    pub batch_id: String,
    /// The item's session (graph execution state) id. Absent from `batch_enqueued`.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The free-form origin tag given at enqueue.
    #[serde(default)]
    pub origin: Option<String>,
    /// The free-form destination tag given at enqueue.
    #[serde(default)]
    pub destination: Option<String>,
    /// The owner of the item (`"system"` in single-user mode).
    #[serde(default)]
    pub user_id: Option<String>,
    /// When the server emitted the event, in Unix seconds.
    #[serde(default)]
    pub timestamp: Option<i64>,
}

/// The fields every invocation (node) event carries (`InvocationEventBase` on the server).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InvocationContext {
    /// The queue item the node runs in.
    #[serde(flatten)]
    pub item: ItemContext,
    /// The node id in the graph we sent (the "source" id).
    pub invocation_source_id: String,
    /// The prepared node, as executed: its `id` is the prepared id, `type` its invocation type.
    #[serde(default)]
    pub invocation: Value,
}

impl InvocationContext {
    /// The prepared (execution) node id, which keys `session.results`.
    #[must_use]
    pub fn prepared_id(&self) -> Option<&str> {
        self.invocation.get("id").and_then(Value::as_str)
    }

    /// The node's invocation type, e.g. `save_image`.
    #[must_use]
    pub fn invocation_type(&self) -> Option<&str> {
        self.invocation.get("type").and_then(Value::as_str)
    }
}

/// The error a node or queue item failed with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorDetails {
    /// The exception class, e.g. `ValueError`.
    #[serde(default)]
    pub error_type: String,
    /// The exception message.
    #[serde(default)]
    pub error_message: String,
    /// The Python traceback.
    #[serde(default)]
    pub error_traceback: String,
}

/// A batch's item counts by status (`BatchStatus`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BatchCounts {
    /// Items waiting in the queue.
    pub pending: u64,
    /// Items being executed.
    pub in_progress: u64,
    /// Items suspended on a called workflow.
    pub waiting: u64,
    /// Items finished successfully.
    pub completed: u64,
    /// Items that failed.
    pub failed: u64,
    /// Items canceled.
    pub canceled: u64,
    /// All items of the batch.
    pub total: u64,
}

/// `queue_item_status_changed`: an item moved to a new status.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StatusChange {
    /// Which item.
    #[serde(flatten)]
    pub item: ItemContext,
    /// Its new status.
    pub status: ItemStatus,
    /// Increases with every status change of the item; use it to discard stale events.
    #[serde(default)]
    pub status_sequence: Option<i64>,
    /// The exception class, when the item failed.
    #[serde(default)]
    pub error_type: Option<String>,
    /// The exception message, when the item failed.
    #[serde(default)]
    pub error_message: Option<String>,
    /// The traceback, when the item failed.
    #[serde(default)]
    pub error_traceback: Option<String>,
    /// The counts of the item's batch after the change.
    #[serde(default)]
    pub batch_status: Option<BatchCounts>,
}

/// `batch_enqueued`: a batch was added to the queue.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BatchEnqueued {
    /// The queue.
    #[serde(default)]
    pub queue_id: String,
    /// The batch.
    pub batch_id: String,
    /// How many items were added (less than `requested` when the queue was full).
    #[serde(default)]
    pub enqueued: u64,
    /// How many items the batch expands to.
    #[serde(default)]
    pub requested: u64,
    /// The items' priority.
    #[serde(default)]
    pub priority: i64,
    /// The origin tag.
    #[serde(default)]
    pub origin: Option<String>,
}

/// `bulk_download_started`, `_complete` and `_error`: a zip of images being built.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BulkDownload {
    /// The bulk-download room, always `"default"`.
    #[serde(default)]
    pub bulk_download_id: String,
    /// The download's id.
    #[serde(default)]
    pub bulk_download_item_id: String,
    /// The zip's name, to fetch from `/api/v1/images/download/{name}`.
    pub bulk_download_item_name: String,
    /// Why it failed (`bulk_download_error` only).
    #[serde(default)]
    pub error: Option<String>,
}

/// One event from the server.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// `invocation_started`: a node began executing.
    InvocationStarted(InvocationContext),
    /// `invocation_progress`: a node reported progress (denoising steps, model loading).
    InvocationProgress {
        /// Which node.
        invocation: InvocationContext,
        /// What it is doing.
        message: String,
        /// How far along, from 0 to 1, when known.
        percentage: Option<f64>,
    },
    /// `invocation_complete`: a node finished; `result` is its output object (with `type`).
    InvocationComplete {
        /// Which node.
        invocation: InvocationContext,
        /// The node's output, e.g. `{"type":"image_output","image":{"image_name":..},..}`.
        result: Value,
    },
    /// `invocation_error`: a node failed. The server sends the item's `failed` status first.
    InvocationError {
        /// Which node.
        invocation: InvocationContext,
        /// The error.
        error: ErrorDetails,
    },
    /// `queue_item_status_changed`.
    QueueItemStatusChanged(StatusChange),
    /// `batch_enqueued`.
    BatchEnqueued(BatchEnqueued),
    /// `queue_items_canceled`: items canceled in bulk. Pending items canceled this way get no
    /// individual status event.
    QueueItemsCanceled {
        /// The queue.
        queue_id: String,
        /// The canceled items.
        canceled_item_ids: Vec<i64>,
    },
    /// `queue_items_retried`: failed or canceled items were re-enqueued under new ids.
    QueueItemsRetried {
        /// The queue.
        queue_id: String,
        /// The **original** ids of the retried items.
        retried_item_ids: Vec<i64>,
    },
    /// `queue_cleared`: the queue was cleared; its items are gone.
    QueueCleared {
        /// The queue.
        queue_id: String,
        /// Whose items were cleared; `None` means everyone's.
        user_id: Option<String>,
    },
    /// `bulk_download_started`.
    BulkDownloadStarted(BulkDownload),
    /// `bulk_download_complete`.
    BulkDownloadComplete(BulkDownload),
    /// `bulk_download_error`.
    BulkDownloadError(BulkDownload),
    /// Any other event, or a known one whose payload lacked a field we need.
    Other {
        /// The event name.
        name: String,
        /// Its payload, as sent.
        payload: Value,
    },
}

#[derive(Deserialize)]
struct ProgressPayload {
    #[serde(flatten)]
    invocation: InvocationContext,
    #[serde(default)]
    message: String,
    #[serde(default)]
    percentage: Option<f64>,
}

#[derive(Deserialize)]
struct CompletePayload {
    #[serde(flatten)]
    invocation: InvocationContext,
    #[serde(default)]
    result: Value,
}

#[derive(Deserialize)]
struct ErrorPayload {
    #[serde(flatten)]
    invocation: InvocationContext,
    #[serde(flatten)]
    error: ErrorDetails,
}

#[derive(Deserialize)]
struct CanceledPayload {
    #[serde(default)]
    queue_id: String,
    canceled_item_ids: Vec<i64>,
}

#[derive(Deserialize)]
struct RetriedPayload {
    #[serde(default)]
    queue_id: String,
    retried_item_ids: Vec<i64>,
}

#[derive(Deserialize)]
struct ClearedPayload {
    #[serde(default)]
    queue_id: String,
    #[serde(default)]
    user_id: Option<String>,
}

impl Event {
    /// Parses one server event from its name and payload (the first Socket.IO argument).
    #[must_use]
    pub fn parse(name: &str, payload: Value) -> Event {
        fn typed<T: DeserializeOwned>(payload: &Value) -> Option<T> {
            match T::deserialize(payload) {
                Ok(value) => Some(value),
                Err(err) => {
                    tracing::warn!("event payload does not have the expected shape: {err}");
                    None
                }
            }
        }
        let parsed = match name {
            "invocation_started" => typed(&payload).map(Event::InvocationStarted),
            "invocation_progress" => {
                typed::<ProgressPayload>(&payload).map(|p| Event::InvocationProgress {
                    invocation: p.invocation,
                    message: p.message,
                    percentage: p.percentage,
                })
            }
            "invocation_complete" => {
                typed::<CompletePayload>(&payload).map(|p| Event::InvocationComplete {
                    invocation: p.invocation,
                    result: p.result,
                })
            }
            "invocation_error" => typed::<ErrorPayload>(&payload).map(|p| Event::InvocationError {
                invocation: p.invocation,
                error: p.error,
            }),
            "queue_item_status_changed" => typed(&payload).map(Event::QueueItemStatusChanged),
            "batch_enqueued" => typed(&payload).map(Event::BatchEnqueued),
            "queue_items_canceled" => {
                typed::<CanceledPayload>(&payload).map(|p| Event::QueueItemsCanceled {
                    queue_id: p.queue_id,
                    canceled_item_ids: p.canceled_item_ids,
                })
            }
            "queue_items_retried" => {
                typed::<RetriedPayload>(&payload).map(|p| Event::QueueItemsRetried {
                    queue_id: p.queue_id,
                    retried_item_ids: p.retried_item_ids,
                })
            }
            "queue_cleared" => typed::<ClearedPayload>(&payload).map(|p| Event::QueueCleared {
                queue_id: p.queue_id,
                user_id: p.user_id,
            }),
            "bulk_download_started" => typed(&payload).map(Event::BulkDownloadStarted),
            "bulk_download_complete" => typed(&payload).map(Event::BulkDownloadComplete),
            "bulk_download_error" => typed(&payload).map(Event::BulkDownloadError),
            _ => None,
        };
        parsed.unwrap_or_else(|| Event::Other {
            name: name.to_owned(),
            payload,
        })
    }

    /// The server's name for this event, e.g. `queue_item_status_changed`.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Event::InvocationStarted(_) => "invocation_started",
            Event::InvocationProgress { .. } => "invocation_progress",
            Event::InvocationComplete { .. } => "invocation_complete",
            Event::InvocationError { .. } => "invocation_error",
            Event::QueueItemStatusChanged(_) => "queue_item_status_changed",
            Event::BatchEnqueued(_) => "batch_enqueued",
            Event::QueueItemsCanceled { .. } => "queue_items_canceled",
            Event::QueueItemsRetried { .. } => "queue_items_retried",
            Event::QueueCleared { .. } => "queue_cleared",
            Event::BulkDownloadStarted(_) => "bulk_download_started",
            Event::BulkDownloadComplete(_) => "bulk_download_complete",
            Event::BulkDownloadError(_) => "bulk_download_error",
            Event::Other { name, .. } => name,
        }
    }

    /// The queue item fields, for events about one queue item.
    #[must_use]
    pub fn item(&self) -> Option<&ItemContext> {
        match self {
            Event::InvocationStarted(inv)
            | Event::InvocationProgress {
                invocation: inv, ..
            }
            | Event::InvocationComplete {
                invocation: inv, ..
            }
            | Event::InvocationError {
                invocation: inv, ..
            } => Some(&inv.item),
            Event::QueueItemStatusChanged(change) => Some(&change.item),
            _ => None,
        }
    }

    /// The node fields, for invocation events.
    #[must_use]
    pub fn invocation(&self) -> Option<&InvocationContext> {
        match self {
            Event::InvocationStarted(inv)
            | Event::InvocationProgress {
                invocation: inv, ..
            }
            | Event::InvocationComplete {
                invocation: inv, ..
            }
            | Event::InvocationError {
                invocation: inv, ..
            } => Some(inv),
            _ => None,
        }
    }

    /// The queue the event is about, when it names one.
    #[must_use]
    pub fn queue_id(&self) -> Option<&str> {
        match self {
            Event::BatchEnqueued(b) => Some(&b.queue_id),
            Event::QueueItemsCanceled { queue_id, .. }
            | Event::QueueItemsRetried { queue_id, .. }
            | Event::QueueCleared { queue_id, .. } => Some(queue_id),
            _ => self.item().map(|i| i.queue_id.as_str()),
        }
    }

    /// The queue item id, for events about one item.
    #[must_use]
    pub fn item_id(&self) -> Option<i64> {
        self.item().map(|i| i.item_id)
    }

    /// The batch id, for events about one item or one batch.
    #[must_use]
    pub fn batch_id(&self) -> Option<&str> {
        match self {
            Event::BatchEnqueued(b) => Some(&b.batch_id),
            _ => self.item().map(|i| i.batch_id.as_str()),
        }
    }

    /// The session id, for events about one item.
    #[must_use]
    pub fn session_id(&self) -> Option<&str> {
        self.item().and_then(|i| i.session_id.as_deref())
    }

    /// The source node id, for invocation events.
    #[must_use]
    pub fn invocation_source_id(&self) -> Option<&str> {
        self.invocation().map(|i| i.invocation_source_id.as_str())
    }

    /// The destination tag, for events about one item.
    #[must_use]
    pub fn destination(&self) -> Option<&str> {
        self.item().and_then(|i| i.destination.as_deref())
    }

    /// The origin tag, for events about one item or one batch.
    #[must_use]
    pub fn origin(&self) -> Option<&str> {
        match self {
            Event::BatchEnqueued(b) => b.origin.as_deref(),
            _ => self.item().and_then(|i| i.origin.as_deref()),
        }
    }

    /// Whether the event only reports progress, so that losing it loses no state. These are the
    /// events dropped first when the consumer falls behind.
    #[must_use]
    pub fn is_progress(&self) -> bool {
        match self {
            Event::InvocationProgress { .. } => true,
            Event::Other { name, .. } => name.ends_with("_progress"),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn item_fields() -> Value {
        json!({
            "timestamp": 1_760_000_000,
            "queue_id": "default",
            "item_id": 42,
            "batch_id": "b-1",
            "origin": "invk-run",
            "destination": "dest-1",
            "user_id": "system",
            "session_id": "s-1",
        })
    }

    fn with(mut base: Value, extra: Value) -> Value {
        let (Some(base_map), Value::Object(extra)) = (base.as_object_mut(), extra) else {
            panic!("objects expected");
        };
        base_map.extend(extra);
        base
    }

    fn invocation_fields() -> Value {
        with(
            item_fields(),
            json!({
                "invocation_source_id": "save",
                "invocation": {"id": "prep-9", "type": "save_image", "use_cache": false},
            }),
        )
    }

    #[test]
    fn invocation_events_keep_the_source_and_prepared_ids() {
        let event = Event::parse("invocation_started", invocation_fields());
        let Event::InvocationStarted(inv) = &event else {
            panic!("parsed as {event:?}");
        };
        assert_eq!(inv.invocation_source_id, "save");
        assert_eq!(inv.prepared_id(), Some("prep-9"));
        assert_eq!(inv.invocation_type(), Some("save_image"));
        assert_eq!(event.item_id(), Some(42));
        assert_eq!(event.batch_id(), Some("b-1"));
        assert_eq!(event.session_id(), Some("s-1"));
        assert_eq!(event.queue_id(), Some("default"));
        assert_eq!(event.destination(), Some("dest-1"));
        assert_eq!(event.origin(), Some("invk-run"));
        assert_eq!(event.invocation_source_id(), Some("save"));
        assert_eq!(event.name(), "invocation_started");
    }

    #[test]
    fn progress_complete_and_error_carry_their_fields() {
        let progress = Event::parse(
            "invocation_progress",
            with(
                invocation_fields(),
                json!({"message": "Denoising", "percentage": 0.5, "image": null, "device": "cpu"}),
            ),
        );
        assert!(matches!(
            &progress,
            Event::InvocationProgress { message, percentage: Some(p), .. }
                if message == "Denoising" && (*p - 0.5).abs() < f64::EPSILON
        ));
        assert!(progress.is_progress());

        let result = json!({"type": "image_output", "image": {"image_name": "a.png"}, "width": 8, "height": 8});
        let complete = Event::parse(
            "invocation_complete",
            with(invocation_fields(), json!({ "result": result.clone() })),
        );
        assert!(matches!(&complete, Event::InvocationComplete { result: r, .. } if *r == result));
        assert!(!complete.is_progress());

        let error = Event::parse(
            "invocation_error",
            with(
                invocation_fields(),
                json!({"error_type": "ValueError", "error_message": "bad", "error_traceback": "tb"}),
            ),
        );
        let Event::InvocationError { error, invocation } = error else {
            panic!("not an invocation error");
        };
        assert_eq!(error.error_type, "ValueError");
        assert_eq!(error.error_message, "bad");
        assert_eq!(error.error_traceback, "tb");
        assert_eq!(invocation.invocation_source_id, "save");
    }

    #[test]
    fn status_change_with_batch_counts_and_extra_fields() {
        let payload = with(
            item_fields(),
            json!({
                "status": "failed",
                "status_sequence": 3,
                "error_type": "ValueError",
                "error_message": "boom",
                "error_traceback": null,
                "created_at": "2026-01-01 00:00:00.000",
                "updated_at": "2026-01-01 00:00:01.000",
                "started_at": null,
                "completed_at": null,
                "batch_status": {"queue_id": "default", "batch_id": "b-1", "origin": null,
                    "destination": null, "pending": 1, "in_progress": 0, "waiting": 0,
                    "completed": 2, "failed": 1, "canceled": 0, "total": 4},
                "queue_status": {"queue_id": "default"},
                "a_field_from_the_future": [1, 2, 3],
            }),
        );
        let Event::QueueItemStatusChanged(change) =
            Event::parse("queue_item_status_changed", payload)
        else {
            panic!("not a status change");
        };
        assert_eq!(change.status, ItemStatus::Failed);
        assert_eq!(change.status_sequence, Some(3));
        assert_eq!(change.error_message.as_deref(), Some("boom"));
        assert_eq!(change.error_traceback, None);
        let counts = change.batch_status.expect("batch counts");
        assert_eq!((counts.completed, counts.failed, counts.total), (2, 1, 4));
    }

    #[test]
    fn redacted_companion_status_event_still_parses() {
        let payload = json!({
            "timestamp": 1, "queue_id": "default", "item_id": 7, "batch_id": "redacted",
            "origin": null, "destination": null, "user_id": "redacted", "session_id": "redacted",
            "status": "completed", "status_sequence": null, "error_type": null,
            "error_message": null, "error_traceback": null,
        });
        let event = Event::parse("queue_item_status_changed", payload);
        assert_eq!(event.item_id(), Some(7));
        assert_eq!(event.destination(), None);
    }

    #[test]
    fn queue_level_events() {
        let canceled = Event::parse(
            "queue_items_canceled",
            json!({"timestamp": 1, "queue_id": "default", "canceled_item_ids": [3, 4],
                   "user_ids": ["system"], "canceled_item_ids_by_user": {"system": [3, 4]}}),
        );
        assert_eq!(
            canceled,
            Event::QueueItemsCanceled {
                queue_id: "default".into(),
                canceled_item_ids: vec![3, 4]
            }
        );
        let cleared = Event::parse(
            "queue_cleared",
            json!({"timestamp": 1, "queue_id": "default", "user_id": null}),
        );
        assert_eq!(
            cleared,
            Event::QueueCleared {
                queue_id: "default".into(),
                user_id: None
            }
        );
        let enqueued = Event::parse(
            "batch_enqueued",
            json!({"timestamp": 1, "queue_id": "default", "batch_id": "b", "enqueued": 3,
                   "requested": 4, "priority": 0, "origin": "o", "user_id": "system"}),
        );
        assert_eq!(enqueued.batch_id(), Some("b"));
        assert_eq!(enqueued.origin(), Some("o"));
        assert!(matches!(
            enqueued,
            Event::BatchEnqueued(BatchEnqueued {
                enqueued: 3,
                requested: 4,
                ..
            })
        ));
        let bulk = Event::parse(
            "bulk_download_error",
            json!({"timestamp": 1, "bulk_download_id": "default", "bulk_download_item_id": "x",
                   "bulk_download_item_name": "x.zip", "user_id": "system", "error": "disk full"}),
        );
        assert!(
            matches!(bulk, Event::BulkDownloadError(BulkDownload { error: Some(e), .. }) if e == "disk full")
        );
    }

    #[test]
    fn unknown_and_malformed_events_become_other() {
        let unknown = Event::parse("model_load_started", json!({"config": {}}));
        assert_eq!(unknown.name(), "model_load_started");
        assert!(matches!(&unknown, Event::Other { payload, .. } if payload["config"] == json!({})));
        assert_eq!(unknown.item_id(), None);

        // A known name whose payload lacks the item id: kept, not lost.
        let malformed = Event::parse("queue_item_status_changed", json!({"status": "completed"}));
        assert!(
            matches!(&malformed, Event::Other { name, .. } if name == "queue_item_status_changed")
        );

        let download = Event::parse("model_install_download_progress", json!({}));
        assert!(download.is_progress());
    }
}
