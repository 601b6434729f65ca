//! The status of a queue item, as the REST API and the event stream report it.

use serde::{Deserialize, Serialize};

/// The status of a queue item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum QueueItemStatus {
    /// Waiting to run.
    Pending,
    /// Running.
    InProgress,
    /// Suspended while a workflow it calls runs.
    Waiting,
    /// Finished; its results are final.
    Completed,
    /// Failed; see the item's error fields.
    Failed,
    /// Canceled.
    Canceled,
    /// A status this client does not know.
    #[serde(other)]
    Unknown,
}

impl QueueItemStatus {
    /// Whether the status can no longer change (completed, failed, canceled).
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            QueueItemStatus::Completed | QueueItemStatus::Failed | QueueItemStatus::Canceled
        )
    }

    /// The name the server uses.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            QueueItemStatus::Pending => "pending",
            QueueItemStatus::InProgress => "in_progress",
            QueueItemStatus::Waiting => "waiting",
            QueueItemStatus::Completed => "completed",
            QueueItemStatus::Failed => "failed",
            QueueItemStatus::Canceled => "canceled",
            QueueItemStatus::Unknown => "unknown",
        }
    }
}
