//! Taking a run's items back from a server: the one way the run cancels what it sent, for
//! Ctrl-C (what has not started), `invk-run cancel` (what has not finished), and the end of a
//! run whose server left the pool (what it left there). Each item taken back is handed to the
//! caller at once (to journal it) before the next one is cancelled, and the whole is bounded
//! in time: a server that does not answer costs at most the bound.

use std::time::Duration;

use super::key::ItemRef;
use crate::client::{Client, ClientError, QueueItemStatus};

/// Which of the run's items to take back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    /// Those that have not started (Ctrl-C: running ones are left to finish, the next run
    /// collects them).
    NotStarted,
    /// Those that have not finished, running ones included.
    Unfinished,
}

impl Which {
    fn takes(self, status: QueueItemStatus) -> bool {
        match self {
            Which::NotStarted => status == QueueItemStatus::Pending,
            Which::Unfinished => matches!(
                status,
                QueueItemStatus::Pending | QueueItemStatus::InProgress
            ),
        }
    }
}

/// What a take-back did.
#[derive(Debug, Default)]
pub(super) struct TakenBack {
    /// Items cancelled on the server (and handed to the caller).
    pub(super) taken: usize,
    /// Items left running ([`Which::NotStarted`]).
    pub(super) running: usize,
    /// Items that had ended already (the next run collects them).
    pub(super) finished: usize,
    /// Items the server no longer has.
    pub(super) gone: usize,
    /// Why it stopped short: the server did not answer, or the bound ran out.
    pub(super) unreachable: Option<Stopped>,
}

/// Why a take-back stopped short.
#[derive(Debug, thiserror::Error)]
pub(super) enum Stopped {
    /// The server refused or did not answer a request.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The bound ran out.
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
}

/// Takes back `which` of `items` (all of server `number`, whose client is `client`), calling
/// `taken` with each item as soon as the server cancelled it; at most `bound` in all.
///
/// # Errors
/// What `taken` returns (journaling failed): the take-back stops there.
pub(super) async fn take_back<E>(
    client: &Client,
    number: u16,
    items: &[ItemRef],
    which: Which,
    bound: Duration,
    mut taken: impl FnMut(ItemRef) -> Result<(), E>,
) -> Result<TakenBack, E> {
    let mut out = TakenBack::default();
    if items.is_empty() {
        return Ok(out);
    }
    let ids: Vec<i64> = items
        .iter()
        .filter(|item| item.server() == number)
        .map(|item| item.id())
        .collect();
    let mut failed: Option<Result<(), E>> = None;
    let work = async {
        let found = client.queue().items_by_ids(&ids).await?;
        out.gone = ids.len().saturating_sub(found.len());
        for item in found {
            if which.takes(item.status) {
                // The item may have ended between the look and the cancel: the server then
                // answers it unchanged, and it is the run's to collect, not taken back.
                let after = client.queue().cancel_item(item.item_id).await?;
                if after.status != QueueItemStatus::Canceled {
                    out.finished += 1;
                    continue;
                }
                out.taken += 1;
                if let Err(e) = taken(ItemRef::new(number, item.item_id)) {
                    failed = Some(Err(e));
                    break;
                }
            } else if item.status == QueueItemStatus::InProgress {
                out.running += 1;
            } else {
                out.finished += 1;
            }
        }
        Ok::<(), ClientError>(())
    };
    match tokio::time::timeout(bound, work).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => out.unreachable = Some(Stopped::Client(e)),
        Err(_) => out.unreachable = Some(Stopped::Timeout(bound)),
    }
    if let Some(Err(e)) = failed {
        return Err(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn item(id: i64, status: &str) -> serde_json::Value {
        json!({ "item_id": id, "status": status })
    }

    /// A server on which items 1 and 2 look pending; by the time the cancel arrives, item 2 has
    /// completed (the server answers it unchanged) while item 1 is canceled.
    async fn racing_server() -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/api/v1/queue/default/items_by_ids"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!([item(1, "pending"), item(2, "pending")])),
            )
            .mount(&server)
            .await;
        for (id, after) in [(1, "canceled"), (2, "completed")] {
            Mock::given(method("PUT"))
                .and(path(format!("/api/v1/queue/default/i/{id}/cancel")))
                .respond_with(ResponseTemplate::new(200).set_body_json(item(id, after)))
                .expect(1)
                .mount(&server)
                .await;
        }
        server
    }

    #[tokio::test]
    async fn an_item_that_ends_between_the_look_and_the_cancel_is_not_taken_back() {
        let server = racing_server().await;
        let client = Client::new(&server.uri()).expect("client");
        let items = [ItemRef::new(3, 1), ItemRef::new(3, 2)];
        let mut journaled = Vec::new();
        let out = take_back(
            &client,
            3,
            &items,
            Which::NotStarted,
            Duration::from_secs(5),
            |item| {
                journaled.push(item);
                Ok::<(), ()>(())
            },
        )
        .await
        .expect("take back");
        // Only the canceled one is handed over (to be journaled and sent again); the one that
        // completed is the run's to collect.
        assert_eq!(journaled, [ItemRef::new(3, 1)]);
        assert_eq!((out.taken, out.finished, out.running), (1, 1, 0));
        assert!(out.unreachable.is_none());
    }
}
