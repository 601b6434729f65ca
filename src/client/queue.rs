//! `/api/v1/queue/{queue_id}`: submit batches, follow and manage their items.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Body, Client, ClientError, Replay};
pub use crate::events::ItemStatus as QueueItemStatus;
use crate::workflow::payload::{Batch, EnqueueBatch};

/// The most ids the server takes in one `items_by_ids` call.
const IDS_PER_CALL: usize = 1000;

/// Node types that only pass an existing image or video through: their "outputs" are inputs.
const PASS_THROUGH_TYPES: [&str; 3] = ["image", "load_image", "video"];

/// What an enqueue did.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EnqueueResult {
    /// The queue.
    pub queue_id: String,
    /// Sessions enqueued.
    pub enqueued: u64,
    /// Sessions the batch asked for.
    pub requested: u64,
    /// The batch as the server stored it (with its `batch_id`).
    pub batch: Batch,
    /// The batch's priority.
    #[serde(default)]
    pub priority: i64,
    /// The new items' ids, ascending (the order of the batch's expansion).
    pub item_ids: Vec<i64>,
}

impl EnqueueResult {
    /// The batch id.
    #[must_use]
    pub fn batch_id(&self) -> &str {
        self.batch.batch_id.as_deref().unwrap_or_default()
    }
}

/// One value a batch substituted into an item's graph.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct NodeFieldValue {
    /// Node id.
    pub node_path: String,
    /// Field.
    pub field_name: String,
    /// The value.
    pub value: Value,
}

/// The execution state of an item.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Session {
    /// Session id.
    #[serde(default)]
    pub id: String,
    /// The graph as submitted (after batch substitution), nodes keyed by source id.
    #[serde(default)]
    pub graph: Value,
    /// Each executed node's output, keyed by *prepared* node id.
    #[serde(default)]
    pub results: Map<String, Value>,
    /// Errors, keyed by prepared node id.
    #[serde(default)]
    pub errors: Map<String, Value>,
    /// Source node id to the prepared ids it ran as (several inside an `iterate`).
    #[serde(default)]
    pub source_prepared_mapping: BTreeMap<String, Vec<String>>,
    /// Prepared node id to its source node id.
    #[serde(default)]
    pub prepared_source_mapping: BTreeMap<String, String>,
}

/// A queue item: one session of a batch.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct QueueItem {
    /// Id.
    pub item_id: i64,
    /// Status.
    pub status: QueueItemStatus,
    /// Increases with each status change (to discard stale events).
    #[serde(default)]
    pub status_sequence: Option<i64>,
    /// Priority.
    #[serde(default)]
    pub priority: i64,
    /// Its batch.
    #[serde(default)]
    pub batch_id: String,
    /// Free-form tag of the batch.
    #[serde(default)]
    pub origin: Option<String>,
    /// Free-form tag of the batch.
    #[serde(default)]
    pub destination: Option<String>,
    /// Session id.
    #[serde(default)]
    pub session_id: String,
    /// Queue.
    #[serde(default)]
    pub queue_id: String,
    /// Error type when failed.
    #[serde(default)]
    pub error_type: Option<String>,
    /// Error message when failed.
    #[serde(default)]
    pub error_message: Option<String>,
    /// Error traceback when failed.
    #[serde(default)]
    pub error_traceback: Option<String>,
    /// Creation time (server string, UTC).
    #[serde(default)]
    pub created_at: String,
    /// Last change (server string, UTC).
    #[serde(default)]
    pub updated_at: String,
    /// Start time.
    #[serde(default)]
    pub started_at: Option<String>,
    /// End time.
    #[serde(default)]
    pub completed_at: Option<String>,
    /// Owner.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The values the batch substituted into this item's graph.
    #[serde(default)]
    pub field_values: Option<Vec<NodeFieldValue>>,
    /// The item this one retries.
    #[serde(default)]
    pub retried_from_item_id: Option<i64>,
    /// The device that ran it.
    #[serde(default)]
    pub device: Option<String>,
    /// The session.
    #[serde(default)]
    pub session: Session,
    /// The workflow embedded with the batch.
    #[serde(default)]
    pub workflow: Option<Value>,
}

/// The files one source node produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeOutput {
    /// The node's id in the submitted graph (its source id).
    pub source_id: String,
    /// The node's type (`save_image`, `l2i`, ...), when the graph says.
    pub node_type: Option<String>,
    /// Whether the node saves intermediates (hidden images, not outputs to keep).
    pub is_intermediate: bool,
    /// Image names, in result order, each once.
    pub images: Vec<String>,
    /// Video names, in result order, each once.
    pub videos: Vec<String>,
}

impl QueueItem {
    /// The images and videos each node produced, by source node id, found as the web UI finds
    /// them: every value of each result that is `{image_name}` / `{video_name}` or a list of
    /// them, over all the node's prepared ids. Nodes that only pass an input through (`image`,
    /// `load_image`, `video`) and nodes that produced no file are left out.
    #[must_use]
    pub fn outputs(&self) -> BTreeMap<String, NodeOutput> {
        let nodes = self.session.graph.get("nodes");
        let mut out = BTreeMap::new();
        for (source_id, prepared_ids) in &self.session.source_prepared_mapping {
            let node = nodes.and_then(|n| n.get(source_id));
            let node_type = node
                .and_then(|n| n.get("type"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            if node_type
                .as_deref()
                .is_some_and(|t| PASS_THROUGH_TYPES.contains(&t))
            {
                continue;
            }
            let mut output = NodeOutput {
                source_id: source_id.clone(),
                node_type,
                is_intermediate: node
                    .and_then(|n| n.get("is_intermediate"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                images: Vec::new(),
                videos: Vec::new(),
            };
            for prepared in prepared_ids {
                let Some(Value::Object(result)) = self.session.results.get(prepared) else {
                    continue;
                };
                for value in result.values() {
                    collect_files(value, &mut output);
                }
            }
            if !output.images.is_empty() || !output.videos.is_empty() {
                out.insert(source_id.clone(), output);
            }
        }
        out
    }
}

fn collect_files(value: &Value, output: &mut NodeOutput) {
    let mut take = |v: &Value| {
        if let Some(name) = v.get("image_name").and_then(Value::as_str) {
            if !output.images.iter().any(|n| n == name) {
                output.images.push(name.to_owned());
            }
        } else if let Some(name) = v.get("video_name").and_then(Value::as_str)
            && !output.videos.iter().any(|n| n == name)
        {
            output.videos.push(name.to_owned());
        }
    };
    match value {
        Value::Object(_) => take(value),
        Value::Array(items) => items.iter().filter(|v| v.is_object()).for_each(take),
        _ => {}
    }
}

/// Item counts of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct BatchStatus {
    /// Queue.
    pub queue_id: String,
    /// Batch.
    pub batch_id: String,
    /// Free-form tag.
    #[serde(default)]
    pub origin: Option<String>,
    /// Free-form tag.
    #[serde(default)]
    pub destination: Option<String>,
    /// Pending items.
    pub pending: u64,
    /// Running items.
    pub in_progress: u64,
    /// Waiting items.
    #[serde(default)]
    pub waiting: u64,
    /// Completed items.
    pub completed: u64,
    /// Failed items.
    pub failed: u64,
    /// Canceled items.
    pub canceled: u64,
    /// All items.
    pub total: u64,
}

impl BatchStatus {
    /// Whether every item of the batch reached a terminal status.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.completed + self.failed + self.canceled >= self.total
    }
}

/// Item counts of the whole queue.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct QueueSummary {
    /// Queue.
    pub queue_id: String,
    /// The (one) running item.
    #[serde(default)]
    pub item_id: Option<i64>,
    /// Its batch.
    #[serde(default)]
    pub batch_id: Option<String>,
    /// Its session.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Pending items.
    pub pending: u64,
    /// Running items.
    pub in_progress: u64,
    /// Waiting items.
    #[serde(default)]
    pub waiting: u64,
    /// Completed items.
    pub completed: u64,
    /// Failed items.
    pub failed: u64,
    /// Canceled items.
    pub canceled: u64,
    /// All items.
    pub total: u64,
}

/// Whether the server's queue processor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct ProcessorStatus {
    /// Started (not paused).
    pub is_started: bool,
    /// Running an item right now.
    pub is_processing: bool,
}

/// The queue's counts and its processor's state.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct QueueStatus {
    /// Counts.
    pub queue: QueueSummary,
    /// Processor.
    pub processor: ProcessorStatus,
}

/// A session queue (`client.queue()`).
#[derive(Debug, Clone)]
pub struct QueueHandler<'c> {
    client: &'c Client,
    queue_id: String,
}

#[derive(Deserialize)]
struct Canceled {
    canceled: u64,
}

#[derive(Deserialize)]
struct Retried {
    retried_item_ids: Vec<i64>,
}

impl<'c> QueueHandler<'c> {
    pub(crate) fn new(client: &'c Client, queue_id: &str) -> Self {
        QueueHandler {
            client,
            queue_id: queue_id.to_owned(),
        }
    }

    fn url(&self, rest: &[&str]) -> url::Url {
        let mut segments = vec!["api", "v1", "queue", self.queue_id.as_str()];
        segments.extend_from_slice(rest);
        self.client.endpoint(&segments)
    }

    /// Submits a batch. It is sent once: after a failure that may have reached the server it is
    /// not repeated (that could run the batch twice). The item ids come back ascending.
    ///
    /// # Errors
    /// [`ClientError::QueueFull`] (carrying what was enqueued) when the server took fewer
    /// sessions than asked for, `422` with the offending nodes and fields, or any other
    /// [`ClientError`].
    pub async fn enqueue_batch(&self, batch: &EnqueueBatch) -> Result<EnqueueResult, ClientError> {
        let url = self.url(&["enqueue_batch"]);
        let mut result: EnqueueResult = self
            .client
            .send_json(Method::POST, url, Replay::OnlyIfNotSent, Body::json(batch))
            .await?;
        result.item_ids.sort_unstable();
        if result.enqueued < result.requested {
            return Err(ClientError::QueueFull {
                queue_id: result.queue_id.clone(),
                requested: result.requested,
                enqueued: result.enqueued,
                result: Box::new(result),
            });
        }
        Ok(result)
    }

    /// Items by id, in the order given; ids the server does not know are skipped.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn items_by_ids(&self, item_ids: &[i64]) -> Result<Vec<QueueItem>, ClientError> {
        let mut items = Vec::with_capacity(item_ids.len());
        for chunk in item_ids.chunks(IDS_PER_CALL) {
            let url = self.url(&["items_by_ids"]);
            let body = Body::json(&json!({ "item_ids": chunk }));
            let part: Vec<QueueItem> = self
                .client
                .send_json(Method::POST, url, Replay::Idempotent, body)
                .await?;
            items.extend(part);
        }
        Ok(items)
    }

    /// The ids of a batch's items, ascending. The server has no list-by-batch call: this reads
    /// every item id of the queue and their summaries, so keep it for recovery (an enqueue whose
    /// answer was lost), not for tracking.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn item_ids_of_batch(&self, batch_id: &str) -> Result<Vec<i64>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Ids {
            item_ids: Vec<i64>,
        }
        #[derive(serde::Deserialize)]
        struct Summary {
            item_id: i64,
            #[serde(default)]
            batch_id: String,
        }
        let url = self.url(&["item_ids"]);
        let all: Ids = self
            .client
            .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
            .await?;
        let mut found = Vec::new();
        for chunk in all.item_ids.chunks(IDS_PER_CALL) {
            let url = self.url(&["item_summaries_by_ids"]);
            let body = Body::json(&json!({ "item_ids": chunk }));
            let part: Vec<Summary> = self
                .client
                .send_json(Method::POST, url, Replay::Idempotent, body)
                .await?;
            found.extend(
                part.into_iter()
                    .filter(|s| s.batch_id == batch_id)
                    .map(|s| s.item_id),
            );
        }
        found.sort_unstable();
        Ok(found)
    }

    /// One item.
    ///
    /// # Errors
    /// `404` when there is none with this id, or any other [`ClientError`].
    pub async fn item(&self, item_id: i64) -> Result<QueueItem, ClientError> {
        let url = self.url(&["i", &item_id.to_string()]);
        self.client
            .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
            .await
    }

    /// The item counts of a batch.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn batch_status(&self, batch_id: &str) -> Result<BatchStatus, ClientError> {
        let url = self.url(&["b", batch_id, "status"]);
        self.client
            .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
            .await
    }

    /// The queue's counts and processor state.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn status(&self) -> Result<QueueStatus, ClientError> {
        let url = self.url(&["status"]);
        self.client
            .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
            .await
    }

    /// Cancels one item (a finished item comes back unchanged).
    ///
    /// # Errors
    /// `404` when there is none with this id, or any other [`ClientError`].
    pub async fn cancel_item(&self, item_id: i64) -> Result<QueueItem, ClientError> {
        let url = self.url(&["i", &item_id.to_string(), "cancel"]);
        self.client
            .send_json(Method::PUT, url, Replay::Idempotent, Body::Empty)
            .await
    }

    /// Cancels every unfinished item of these batches; returns how many were canceled.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn cancel_batches(&self, batch_ids: &[String]) -> Result<u64, ClientError> {
        let url = self.url(&["cancel_by_batch_ids"]);
        let body = Body::json(&json!({ "batch_ids": batch_ids }));
        let answer: Canceled = self
            .client
            .send_json(Method::PUT, url, Replay::Idempotent, body)
            .await?;
        Ok(answer.canceled)
    }

    /// Runs failed or canceled items again, as new items of the same batch (with
    /// `retried_from_item_id` set). Returns the ids of the items retried (the old ids).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn retry_items(&self, item_ids: &[i64]) -> Result<Vec<i64>, ClientError> {
        let url = self.url(&["retry_items_by_id"]);
        let answer: Retried = self
            .client
            .send_json(
                Method::PUT,
                url,
                Replay::OnlyIfNotSent,
                Body::json(item_ids),
            )
            .await?;
        Ok(answer.retried_item_ids)
    }

    /// Deletes an item (canceling it first if it has not finished).
    ///
    /// # Errors
    /// `404` when there is none with this id, or any other [`ClientError`].
    pub async fn delete_item(&self, item_id: i64) -> Result<(), ClientError> {
        let url = self.url(&["i", &item_id.to_string()]);
        self.client
            .send(Method::DELETE, url, Replay::Idempotent, Body::Empty)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_follow_source_prepared_mapping_and_skip_pass_through_nodes() {
        let item: QueueItem = serde_json::from_value(json!({
            "item_id": 7, "status": "completed", "batch_id": "b", "session_id": "s", "queue_id": "default",
            "created_at": "2026-01-01 00:00:00.000", "updated_at": "2026-01-01 00:00:01.000",
            "session": {
                "id": "s",
                "graph": {"nodes": {
                    "load": {"id": "load", "type": "image", "is_intermediate": true},
                    "blur": {"id": "blur", "type": "img_blur", "is_intermediate": true},
                    "save": {"id": "save", "type": "save_image", "is_intermediate": false},
                    "grid": {"id": "grid", "type": "some_collection_node"},
                    "num": {"id": "num", "type": "integer"}
                }},
                "source_prepared_mapping": {
                    "load": ["p-load"], "blur": ["p-blur"], "save": ["p-save1", "p-save2"],
                    "grid": ["p-grid"], "num": ["p-num"]
                },
                "results": {
                    "p-load": {"type": "image_output", "image": {"image_name": "input.png"}, "width": 8, "height": 8},
                    "p-blur": {"type": "image_output", "image": {"image_name": "blur.png"}, "width": 8, "height": 8},
                    "p-save1": {"type": "image_output", "image": {"image_name": "a.png"}, "width": 8, "height": 8},
                    "p-save2": {"type": "image_output", "image": {"image_name": "b.png"}, "width": 8, "height": 8},
                    "p-grid": {"type": "x", "collection": [{"image_name": "c1.png"}, {"image_name": "c2.png"}],
                                "clip": {"video_name": "v.mp4"}},
                    "p-num": {"type": "integer_output", "value": 3}
                }
            }
        }))
        .expect("queue item");
        assert!(item.status.is_terminal());
        let outputs = item.outputs();
        assert_eq!(outputs.keys().collect::<Vec<_>>(), ["blur", "grid", "save"]);
        assert_eq!(outputs["save"].images, ["a.png", "b.png"]);
        assert!(!outputs["save"].is_intermediate);
        assert!(outputs["blur"].is_intermediate);
        assert_eq!(outputs["grid"].images, ["c1.png", "c2.png"]);
        assert_eq!(outputs["grid"].videos, ["v.mp4"]);
        assert_eq!(outputs["save"].node_type.as_deref(), Some("save_image"));
    }

    #[test]
    fn statuses_parse_and_know_when_they_are_final() {
        let parse = |s: &str| serde_json::from_value::<QueueItemStatus>(json!(s)).expect(s);
        assert!(!parse("pending").is_terminal());
        assert!(!parse("in_progress").is_terminal());
        assert!(!parse("waiting").is_terminal());
        assert!(parse("canceled").is_terminal());
        assert!(parse("failed").is_terminal());
        assert_eq!(parse("frozen"), QueueItemStatus::Unknown);
    }
}
