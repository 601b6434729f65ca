//! The status of a queue item, as the server's events and queue endpoints report it.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// The status of one queue item.
///
/// `completed`, `failed` and `canceled` are terminal: an item in one of them never changes again.
/// A status string this crate does not know (a newer server) is kept in [`ItemStatus::Unknown`]
/// rather than refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ItemStatus {
    /// Waiting in the queue.
    Pending,
    /// Being executed.
    InProgress,
    /// Suspended while a child item (a called workflow) runs.
    Waiting,
    /// Finished successfully (terminal).
    Completed,
    /// Finished with an error (terminal).
    Failed,
    /// Canceled (terminal).
    Canceled,
    /// A status this crate does not know, as the server spelled it.
    Unknown(String),
}

impl ItemStatus {
    /// Parses the server's status string. Never fails: unknown strings become
    /// [`ItemStatus::Unknown`].
    #[must_use]
    pub fn parse(s: &str) -> ItemStatus {
        match s {
            "pending" => ItemStatus::Pending,
            "in_progress" => ItemStatus::InProgress,
            "waiting" => ItemStatus::Waiting,
            "completed" => ItemStatus::Completed,
            "failed" => ItemStatus::Failed,
            "canceled" => ItemStatus::Canceled,
            other => ItemStatus::Unknown(other.to_owned()),
        }
    }

    /// The server's spelling of this status.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            ItemStatus::Pending => "pending",
            ItemStatus::InProgress => "in_progress",
            ItemStatus::Waiting => "waiting",
            ItemStatus::Completed => "completed",
            ItemStatus::Failed => "failed",
            ItemStatus::Canceled => "canceled",
            ItemStatus::Unknown(s) => s,
        }
    }

    /// Whether the item is finished for good (completed, failed or canceled).
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            ItemStatus::Completed | ItemStatus::Failed | ItemStatus::Canceled
        )
    }
}

impl fmt::Display for ItemStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ItemStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(ItemStatus::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_status_round_trips_and_terminal_ones_are_flagged() {
        let table = [
            ("pending", false),
            ("in_progress", false),
            ("waiting", false),
            ("completed", true),
            ("failed", true),
            ("canceled", true),
        ];
        for (s, terminal) in table {
            let status = ItemStatus::parse(s);
            assert!(!matches!(status, ItemStatus::Unknown(_)), "{s} is known");
            assert_eq!(status.as_str(), s);
            assert_eq!(status.is_terminal(), terminal, "{s}");
        }
    }

    #[test]
    fn unknown_status_is_kept_not_refused() {
        let status: ItemStatus = serde_json::from_str("\"paused\"").expect("a string parses");
        assert_eq!(status, ItemStatus::Unknown("paused".into()));
        assert!(!status.is_terminal());
        assert_eq!(status.to_string(), "paused");
    }
}
