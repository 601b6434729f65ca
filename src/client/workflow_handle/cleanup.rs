//! Deleting from the server what the handle uploaded and its items produced.

use std::collections::BTreeSet;

use super::{HandleError, WorkflowHandle};
use crate::client::cleanup_plan::{Kept, Ours, deletable};
use crate::client::is_not_found;
use crate::client::queue::QueueItem;

/// What [`WorkflowHandle::cleanup`] deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cleanup {
    /// The images this handle uploaded.
    pub uploads: bool,
    /// The images this handle's items produced (outputs and intermediates), and the boards the
    /// handle created once they are empty.
    pub outputs: bool,
    /// The queue items themselves.
    pub queue_items: bool,
}

/// What [`WorkflowHandle::cleanup`] deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Images deleted.
    pub deleted_images: Vec<String>,
    /// Boards deleted.
    pub deleted_boards: Vec<String>,
    /// Queue items deleted.
    pub deleted_items: Vec<i64>,
    /// What was kept, and why (an image another session made, a board that is not empty).
    pub kept: Vec<String>,
}

impl WorkflowHandle {
    /// Deletes from the server what this handle uploaded and, as asked, what its items produced
    /// and the items themselves. Images are only deleted when they belong to one of this
    /// handle's sessions (a cached node can hand back an image another run made: that one is
    /// kept). A board the handle created is deleted once it is empty. Refuses while items are
    /// unfinished, since they may still need the uploads.
    ///
    /// # Errors
    /// [`HandleError::StillRunning`], or any [`ClientError`].
    ///
    /// [`ClientError`]: crate::client::ClientError
    pub async fn cleanup(&mut self, what: Cleanup) -> Result<CleanupReport, HandleError> {
        let mut report = CleanupReport::default();
        let items = if self.submissions.is_empty() {
            Vec::new()
        } else {
            self.items().await?
        };
        let running: Vec<i64> = items
            .iter()
            .filter(|i| !i.status.is_terminal())
            .map(|i| i.item_id)
            .collect();
        if !running.is_empty() {
            return Err(HandleError::StillRunning {
                workflow: self.name().to_owned(),
                items: running,
            });
        }
        self.delete_images(&items, what, &mut report).await?;
        if what.uploads {
            self.uploads.clear();
        }
        if what.outputs {
            self.delete_created_boards(&mut report).await?;
        }
        if what.queue_items {
            let queue = self.client.queue_with_id(self.queue_id());
            for item in &items {
                match queue.delete_item(item.item_id).await {
                    Ok(()) => report.deleted_items.push(item.item_id),
                    Err(err) if is_not_found(&err) => {}
                    Err(err) => return Err(err.into()),
                }
            }
        }
        Ok(report)
    }

    /// Deletes the images `what` names that [`crate::client::cleanup_plan`] says may go: the
    /// uploads, and the images the items' sessions made.
    async fn delete_images(
        &self,
        items: &[QueueItem],
        what: Cleanup,
        report: &mut CleanupReport,
    ) -> Result<(), HandleError> {
        let sessions: BTreeSet<String> = items.iter().map(|i| i.session_id.clone()).collect();
        let uploads: BTreeSet<String> = self.uploads.iter().cloned().collect();
        let mut candidates: Vec<String> = Vec::new();
        if what.outputs {
            for item in items {
                for output in item.outputs().into_values() {
                    candidates.extend(output.images);
                }
            }
        }
        if what.uploads {
            candidates.extend(self.uploads.iter().cloned());
        }
        let decided = deletable(
            &self.client,
            &candidates,
            &Ours {
                sessions: &sessions,
                uploads: &uploads,
                delete_uploads: what.uploads,
                keep: &BTreeSet::new(),
            },
        )
        .await?;
        for (name, why) in &decided.kept {
            if *why == Kept::OtherSession {
                report.kept.push(format!(
                    "image `{name}`: made by another session (a cached node)"
                ));
            }
        }
        let result = self.client.images().delete_many(&decided.delete).await?;
        for name in &result.failed_images {
            report
                .kept
                .push(format!("image `{name}`: the server could not delete it"));
        }
        report.deleted_images.extend(result.deleted_images);
        Ok(())
    }

    /// Deletes the boards this handle created once they are empty.
    async fn delete_created_boards(
        &mut self,
        report: &mut CleanupReport,
    ) -> Result<(), HandleError> {
        let mut still_created = Vec::new();
        for board_id in std::mem::take(&mut self.created_boards) {
            let left = self
                .client
                .boards()
                .image_names(&board_id, &Default::default())
                .await;
            match left {
                Ok(left) if left.is_empty() => {
                    self.client.boards().delete(&board_id, false).await?;
                    report.deleted_boards.push(board_id);
                }
                Ok(left) => {
                    report.kept.push(format!(
                        "board `{board_id}`: it still holds {} image(s) this handle did not make",
                        left.len()
                    ));
                    still_created.push(board_id);
                }
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err.into()),
            }
        }
        self.created_boards = still_created;
        Ok(())
    }
}
