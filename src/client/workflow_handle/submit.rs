//! Submitting the workflow as a batch, and what was submitted.

use super::{HandleError, WorkflowHandle};
use crate::client::ClientError;
use crate::workflow::{ConvertOptions, WorkflowError};

/// How [`WorkflowHandle::submit`] enqueues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitOptions {
    /// The queue (InvokeAI only has `default`).
    pub queue_id: String,
    /// The board (id or exact name) the outputs go to: output nodes whose board input is `auto`
    /// or empty send their images there. `None`: no board (uncategorized).
    pub board: Option<String>,
    /// Create the board named `board` when no board has that id or name. A board the handle
    /// created is deleted by [`WorkflowHandle::cleanup`] with `outputs` once it is empty.
    pub create_board: bool,
    /// `Batch.origin` (default `invk-run`; do not use the web UI's `workflows` or `canvas`).
    pub origin: Option<String>,
    /// `Batch.destination`: a tag to count, cancel or delete the items by.
    pub destination: Option<String>,
    /// How many times to run the whole batch (at least 1).
    pub runs: u32,
    /// Put the batch ahead of pending items.
    pub prepend: bool,
    /// Embed the workflow in the batch, as the web UI does (it lands in the images' metadata).
    pub embed_workflow: bool,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        SubmitOptions {
            queue_id: "default".to_owned(),
            board: None,
            create_board: false,
            origin: Some("invk-run".to_owned()),
            destination: None,
            runs: 1,
            prepend: false,
            embed_workflow: true,
        }
    }
}

/// What one [`WorkflowHandle::submit`] enqueued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The queue.
    pub queue_id: String,
    /// The batch.
    pub batch_id: String,
    /// Its items, ascending (the order of the batch's expansion).
    pub item_ids: Vec<i64>,
    /// Sessions enqueued.
    pub enqueued: u64,
    /// Sessions asked for (more than `enqueued` when the queue was full).
    pub requested: u64,
    /// The board the outputs go to, if any.
    pub board_id: Option<String>,
}

impl WorkflowHandle {
    /// Submits the workflow with its current values: resolves model names, checks every input,
    /// finds (or creates) the board, converts the workflow into a batch as the web UI does and
    /// enqueues it.
    ///
    /// # Errors
    /// [`WorkflowError::InvalidInputs`] listing each input problem (nothing is sent then),
    /// [`HandleError::Model`], [`ClientError::NotFound`] for an unknown board,
    /// [`ClientError::QueueFull`] when the queue took fewer sessions than asked (those it took
    /// are remembered, so [`WorkflowHandle::cancel`] and clean-up cover them), or any other
    /// [`ClientError`] (a `422` names the offending nodes and fields).
    pub async fn submit(&mut self, options: &SubmitOptions) -> Result<Submission, HandleError> {
        self.resolve_models().await?;
        let errors = self.workflow.validate_inputs();
        if !errors.is_empty() {
            return Err(WorkflowError::InvalidInputs { errors }.into());
        }
        let board_id = match &options.board {
            None => None,
            Some(board) => Some(self.find_board(board, options.create_board).await?),
        };
        let convert = ConvertOptions {
            board: board_id.clone(),
            origin: options.origin.clone(),
            destination: options.destination.clone(),
            runs: options.runs.max(1),
            batch_id: None,
            embed_workflow: options.embed_workflow,
            prepend: options.prepend,
        };
        let body = self.workflow.to_enqueue(&convert)?;
        let queue = self.client.queue_with_id(&options.queue_id);
        let (result, full) = match queue.enqueue_batch(&body).await {
            Ok(result) => (result, None),
            Err(ClientError::QueueFull {
                queue_id,
                requested,
                enqueued,
                result,
            }) => {
                let again = ClientError::QueueFull {
                    queue_id,
                    requested,
                    enqueued,
                    result: result.clone(),
                };
                (*result, Some(again))
            }
            Err(err) => return Err(err.into()),
        };
        let submission = Submission {
            queue_id: options.queue_id.clone(),
            batch_id: result.batch_id().to_owned(),
            item_ids: result.item_ids.clone(),
            enqueued: result.enqueued,
            requested: result.requested,
            board_id,
        };
        self.submissions.push(submission.clone());
        match full {
            Some(err) => Err(err.into()),
            None => Ok(submission),
        }
    }

    async fn find_board(&mut self, board: &str, create: bool) -> Result<String, HandleError> {
        match self.client.boards().find(board).await {
            Ok(found) => Ok(found.board_id),
            Err(ClientError::NotFound { .. }) if create => {
                let created = self.client.boards().create(board).await?;
                self.created_boards.push(created.board_id.clone());
                Ok(created.board_id)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// What was submitted so far.
    #[must_use]
    pub fn submissions(&self) -> &[Submission] {
        &self.submissions
    }

    /// The boards this handle created.
    #[must_use]
    pub fn created_boards(&self) -> &[String] {
        &self.created_boards
    }

    /// Every submitted item id, ascending.
    #[must_use]
    pub fn item_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .submissions
            .iter()
            .flat_map(|s| s.item_ids.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    pub(super) fn queue_id(&self) -> &str {
        self.submissions
            .last()
            .map_or("default", |s| s.queue_id.as_str())
    }

    pub(super) fn submitted_ids(&self) -> Result<Vec<i64>, HandleError> {
        let ids = self.item_ids();
        if ids.is_empty() {
            return Err(HandleError::NothingSubmitted {
                workflow: self.name().to_owned(),
            });
        }
        Ok(ids)
    }
}
