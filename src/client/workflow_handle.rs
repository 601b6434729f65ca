//! [`WorkflowHandle`]: a workflow bound to a server, for the four use cases of the library: list
//! and set its inputs, submit it and follow its items, fetch its outputs and clean up.
//!
//! ```no_run
//! # async fn demo() -> Result<(), invk_run::client::HandleError> {
//! use std::time::Duration;
//! use invk_run::client::{Cleanup, Client, SubmitOptions};
//! use invk_run::workflow::WorkflowDefinition;
//!
//! let client = Client::new("http://127.0.0.1:9090")?;
//! let definition = WorkflowDefinition::load("examples/workflows/blur-and-tint.json")?;
//! let mut handle = client.workflow(definition).await?;
//! for input in handle.inputs() {
//!     println!("#{} {} ({}) = {:?}", input.index, input.user_name, input.system_name, input.value);
//! }
//! handle.set_image_file("image", "photo.png").await?;
//! handle.set("Blur radius", 4)?;
//! let submission = handle.submit(&SubmitOptions::default()).await?;
//! let items = handle
//!     .wait_blocking(Duration::from_secs(1), Some(Duration::from_secs(600)), |p| {
//!         println!("{}/{} finished", p.finished, p.total);
//!     })
//!     .await?;
//! for item in &items {
//!     for output in handle.outputs(item)? {
//!         println!("{}: {:?}", output.label, output.images);
//!     }
//! }
//! let files = handle.download_outputs("out").await?;
//! handle.cleanup(Cleanup { uploads: true, outputs: true, queue_items: true }).await?;
//! # Ok(()) }
//! ```
//!
//! # Schemas
//! Input types and constraints come from the server's own `/openapi.json` when it can be read;
//! the invocation schemas taken from it are cached per InvokeAI version in the cache folder
//! (`schemas/invokeai-VERSION.json`), so later handles of the same server version do not fetch
//! it again. (A server with custom nodes installed after the cache was written keeps the cached
//! schemas: their fields are then kept as raw JSON, which still works.) When the server cannot
//! be reached, the snapshot shipped with this crate is used. [`WorkflowHandle::schema_source`]
//! says which.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::Stream;
use serde_json::{Value, json};

use super::cleanup_plan::{Kept, Ours, deletable};
use super::images::UploadOptions;
use super::model_resolver::{ModelRef, ModelResolver};
use super::queue::{QueueItem, QueueItemStatus};
use super::schemas::{SchemaSource, server_schemas};
use super::tracker::{TrackEvent, TrackMode, Tracker};
use super::{Client, ClientError, is_not_found};
use crate::store::{LocalStore, Name, OutputStore};
use crate::workflow::{
    ConvertOptions, InkType, InkValue, InputError, InputRef, InputSummary, OutputNode, SchemaSet,
    Workflow, WorkflowDefinition, WorkflowError, WorkflowInput,
};

/// An error of a [`WorkflowHandle`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// Talking to the server failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The workflow, an input or a value is wrong.
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// A model input given by name could not be resolved against the server's models.
    #[error("workflow `{workflow}`: input `{input}`: cannot use the model `{model}`: {source}")]
    Model {
        /// The workflow's name.
        workflow: String,
        /// The input's system name.
        input: String,
        /// The model name given.
        model: String,
        /// Why (not installed, ambiguous, server error).
        #[source]
        source: Box<ClientError>,
    },
    /// An image file was given for an input that does not take an image.
    #[error(
        "workflow `{workflow}`: input `{input}` takes {ty}, not an image; nothing was uploaded"
    )]
    NotAnImageInput {
        /// The workflow's name.
        workflow: String,
        /// The input's system name.
        input: String,
        /// The input's type.
        ty: String,
    },
    /// The handle has submitted nothing yet.
    #[error("workflow `{workflow}` has not been submitted yet: call `submit` first")]
    NothingSubmitted {
        /// The workflow's name.
        workflow: String,
    },
    /// The wait ended before every item finished.
    #[error(
        "workflow `{workflow}`: {} item(s) still unfinished after {}s: {}; call `cancel()` to \
         stop them, or wait longer",
        unfinished.len(), waited.as_secs_f64(), id_list(unfinished)
    )]
    Timeout {
        /// The workflow's name.
        workflow: String,
        /// How long the wait lasted.
        waited: Duration,
        /// The items that had not finished.
        unfinished: Vec<i64>,
    },
    /// An item failed on the server.
    #[error(
        "workflow `{workflow}`: queue item {item_id} failed on the server: {error_type}: {error_message}"
    )]
    ItemFailed {
        /// The workflow's name.
        workflow: String,
        /// The item.
        item_id: i64,
        /// The server's error type (`ValueError`, `UnknownModelException`, ...).
        error_type: String,
        /// The server's error message.
        error_message: String,
    },
    /// An item was canceled.
    #[error("workflow `{workflow}`: queue item {item_id} was canceled")]
    ItemCanceled {
        /// The workflow's name.
        workflow: String,
        /// The item.
        item_id: i64,
    },
    /// An item has not finished yet.
    #[error(
        "workflow `{workflow}`: queue item {item_id} is still `{status}`; wait for it to finish first"
    )]
    NotFinished {
        /// The workflow's name.
        workflow: String,
        /// The item.
        item_id: i64,
        /// Its status.
        status: String,
    },
    /// Items left the queue (deleted or cleared by someone) before they were seen finishing.
    #[error(
        "workflow `{workflow}`: queue item(s) {} left the queue before finishing (deleted or \
         cleared on the server)",
        id_list(items)
    )]
    Vanished {
        /// The workflow's name.
        workflow: String,
        /// The items.
        items: Vec<i64>,
    },
    /// Clean-up was asked while items still run (they may still need the uploaded images).
    #[error(
        "workflow `{workflow}`: not cleaning up while queue item(s) {} are unfinished; wait for \
         them or `cancel()` them first",
        id_list(items)
    )]
    StillRunning {
        /// The workflow's name.
        workflow: String,
        /// The unfinished items.
        items: Vec<i64>,
    },
    /// A file could not be placed in the download folder (a link there, no free name, ...).
    #[error(transparent)]
    Place(#[from] crate::fs::place::PlaceError),
    /// A local file or folder could not be written.
    #[error("could not {action} `{}`", path.display())]
    File {
        /// The file or folder.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn id_list(ids: &[i64]) -> String {
    const SHOWN: usize = 10;
    let mut text = ids
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if ids.len() > SHOWN {
        text.push_str(&format!(" and {} more", ids.len() - SHOWN));
    }
    text
}

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

/// The files one output node of the workflow produced in one queue item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The queue item.
    pub item_id: i64,
    /// The node's id in the workflow.
    pub node_id: String,
    /// The node's type (`save_image`, `canvas_output`, ...).
    pub node_type: String,
    /// The node's label (else its type's title).
    pub label: String,
    /// Image names, in result order.
    pub images: Vec<String>,
    /// Video names, in result order.
    pub videos: Vec<String>,
    /// The board the files went to (`None`: uncategorized).
    pub board: Option<String>,
}

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

/// A workflow bound to a server: typed inputs, submission, tracking, outputs and clean-up.
#[derive(Debug)]
pub struct WorkflowHandle {
    client: Client,
    workflow: Workflow,
    schema_source: SchemaSource,
    uploads: Vec<String>,
    created_boards: Vec<String>,
    submissions: Vec<Submission>,
}

impl Client {
    /// A handle for this workflow on this server; see [`WorkflowHandle::new`].
    ///
    /// # Errors
    /// As [`WorkflowHandle::new`].
    pub async fn workflow(
        &self,
        definition: WorkflowDefinition,
    ) -> Result<WorkflowHandle, HandleError> {
        WorkflowHandle::new(self, definition).await
    }
}

impl WorkflowHandle {
    /// A handle for `definition` on the client's server, typed by the server's own schemas
    /// (cached per version) or, when the server cannot be reached, by the shipped snapshot.
    ///
    /// # Errors
    /// [`HandleError::Workflow`] when the workflow is inconsistent (a form field of a missing
    /// node).
    pub async fn new(
        client: &Client,
        definition: WorkflowDefinition,
    ) -> Result<WorkflowHandle, HandleError> {
        let (schemas, source) = server_schemas(client).await;
        match &schemas {
            Some(set) => WorkflowHandle::with_schemas(client, definition, set, source),
            None => WorkflowHandle::with_schemas(client, definition, SchemaSet::snapshot(), source),
        }
    }

    /// A handle typed by the given schemas (no request is made).
    ///
    /// # Errors
    /// As [`WorkflowHandle::new`].
    pub fn with_schemas(
        client: &Client,
        definition: WorkflowDefinition,
        schemas: &SchemaSet,
        source: SchemaSource,
    ) -> Result<WorkflowHandle, HandleError> {
        Ok(WorkflowHandle {
            client: client.clone(),
            workflow: Workflow::new(definition, schemas)?,
            schema_source: source,
            uploads: Vec::new(),
            created_boards: Vec::new(),
            submissions: Vec::new(),
        })
    }

    /// Where the input types came from.
    #[must_use]
    pub fn schema_source(&self) -> &SchemaSource {
        &self.schema_source
    }

    /// The client.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The workflow with its values.
    #[must_use]
    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    /// The workflow, to change it directly.
    pub fn workflow_mut(&mut self) -> &mut Workflow {
        &mut self.workflow
    }

    /// The definition (name, description, version, author, ...), with the values set so far.
    #[must_use]
    pub fn definition(&self) -> &WorkflowDefinition {
        self.workflow.definition()
    }

    /// The workflow's name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.workflow.name()
    }

    /// The inputs (the form's fields), in form order: index, user name, system name, type,
    /// whether required, current value.
    #[must_use]
    pub fn inputs(&self) -> &[WorkflowInput] {
        self.workflow.inputs()
    }

    /// The inputs as table rows (type and value as text or wire JSON).
    #[must_use]
    pub fn input_summaries(&self) -> Vec<InputSummary> {
        self.workflow
            .inputs()
            .iter()
            .map(InputSummary::from)
            .collect()
    }

    /// The inputs by system name (`node_id.field_name`).
    #[must_use]
    pub fn by_system_name(&self) -> BTreeMap<&str, &WorkflowInput> {
        self.workflow.by_system_name()
    }

    /// The inputs by user name.
    ///
    /// # Errors
    /// [`WorkflowError::UserNameCollision`] naming the colliding nodes when user names repeat.
    pub fn by_user_name(&self) -> Result<BTreeMap<&str, &WorkflowInput>, HandleError> {
        Ok(self.workflow.by_user_name()?)
    }

    /// The input a reference (`#index`, `node.field`, user name) names.
    ///
    /// # Errors
    /// [`WorkflowError::UnknownInput`], [`WorkflowError::AmbiguousInput`] or
    /// [`WorkflowError::InputIndexOutOfRange`].
    pub fn input(&self, input: impl Into<InputRef>) -> Result<&WorkflowInput, HandleError> {
        Ok(self.workflow.input(&input.into())?)
    }

    /// Sets an input by user name, system name or index (`"#2"` or `2`). The value is checked
    /// and converted (`"30"` into an integer field is 30); a model field also takes a model
    /// name, resolved against the server's models by [`WorkflowHandle::resolve_models`] (which
    /// [`WorkflowHandle::submit`] calls).
    ///
    /// # Errors
    /// As [`WorkflowHandle::input`], or [`WorkflowError::InvalidValue`] naming the input, the
    /// value and the rule; nothing is changed then.
    pub fn set(
        &mut self,
        input: impl Into<InputRef>,
        value: impl Into<Value>,
    ) -> Result<(), HandleError> {
        Ok(self.workflow.set(&input.into(), value.into())?)
    }

    /// Uploads a local image through the images API and sets the image input to it. The image
    /// is remembered, and deleted by [`WorkflowHandle::cleanup`] with `uploads`. Returns the
    /// server's image name.
    ///
    /// # Errors
    /// As [`WorkflowHandle::input`]; [`HandleError::NotAnImageInput`] when the input takes no
    /// image (nothing is uploaded then); [`ClientError::NotAnImage`] or
    /// [`ClientError::File`] for the file; or any other [`ClientError`].
    pub async fn set_image_file(
        &mut self,
        input: impl Into<InputRef>,
        path: impl AsRef<Path>,
    ) -> Result<String, HandleError> {
        let r = input.into();
        let target = self.workflow.input(&r)?;
        if !matches!(target.ty(), InkType::Image | InkType::Any) {
            return Err(HandleError::NotAnImageInput {
                workflow: self.name().to_owned(),
                input: target.system_name.clone(),
                ty: target.ty().to_string(),
            });
        }
        let dto = self
            .client
            .images()
            .upload(path.as_ref(), &UploadOptions::default())
            .await?;
        self.uploads.push(dto.image_name.clone());
        self.workflow
            .set(&r, json!({ "image_name": dto.image_name }))?;
        Ok(dto.image_name)
    }

    /// The images this handle uploaded (and has not deleted yet).
    #[must_use]
    pub fn uploads(&self) -> &[String] {
        &self.uploads
    }

    /// Every input problem at once: values that do not fit, required inputs without a value.
    #[must_use]
    pub fn validate_inputs(&self) -> Vec<InputError> {
        self.workflow.validate_inputs()
    }

    /// System names of required inputs that still lack a value.
    #[must_use]
    pub fn missing_required_inputs(&self) -> Vec<String> {
        self.workflow.missing_required_inputs()
    }

    /// The workflow's output nodes (non-intermediate nodes that produce images or videos).
    #[must_use]
    pub fn output_nodes(&self) -> Vec<OutputNode> {
        self.workflow.outputs()
    }

    /// Resolves the model inputs given by name against the server's installed models (exact
    /// name first, then case-insensitive, narrowed by the model types the field accepts) and
    /// sets their full identifiers. The runner resolves with the same [`ModelResolver`].
    ///
    /// # Errors
    /// [`HandleError::Model`] naming the input and the model, with the closest installed models
    /// or the candidates when several match.
    pub async fn resolve_models(&mut self) -> Result<(), HandleError> {
        let unresolved = self.workflow.unresolved_models();
        if unresolved.is_empty() {
            return Ok(());
        }
        let mut resolver = ModelResolver::new();
        let mut resolved: HashMap<(String, String), Value> = HashMap::new();
        for u in &unresolved {
            let reference = ModelRef::Name(u.model_name.clone());
            let identifier = resolver
                .resolve(&self.client, &reference, &u.model_types)
                .await
                .map_err(|source| HandleError::Model {
                    workflow: self.name().to_owned(),
                    input: u.system_name.clone(),
                    model: u.model_name.clone(),
                    source: Box::new(source),
                })?;
            let value = serde_json::to_value(&identifier).unwrap_or(Value::Null);
            resolved.insert((u.system_name.clone(), u.model_name.clone()), value);
        }
        let systems: BTreeSet<&str> = unresolved.iter().map(|u| u.system_name.as_str()).collect();
        for system in systems {
            let r = InputRef::parse(system);
            let Some(value) = &self.workflow.input(&r)?.value else {
                continue;
            };
            let replaced = replace_model_names(value, &|name| {
                resolved.get(&(system.to_owned(), name.to_owned())).cloned()
            });
            self.workflow.set(&r, replaced)?;
        }
        Ok(())
    }

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

    fn queue_id(&self) -> &str {
        self.submissions
            .last()
            .map_or("default", |s| s.queue_id.as_str())
    }

    fn submitted_ids(&self) -> Result<Vec<i64>, HandleError> {
        let ids = self.item_ids();
        if ids.is_empty() {
            return Err(HandleError::NothingSubmitted {
                workflow: self.name().to_owned(),
            });
        }
        Ok(ids)
    }

    /// One queue item (session id, status, timestamps, error, results).
    ///
    /// # Errors
    /// `404` when there is none with this id, or any other [`ClientError`].
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

    /// The files each of the workflow's output nodes produced in a completed item, in node
    /// order (nodes that produced nothing are listed with no files).
    ///
    /// # Errors
    /// As [`WorkflowHandle::ensure_completed`].
    pub fn outputs(&self, item: &QueueItem) -> Result<Vec<Output>, HandleError> {
        self.ensure_completed(item)?;
        let produced = item.outputs();
        let run_board = self
            .submissions
            .iter()
            .find(|s| s.batch_id == item.batch_id)
            .and_then(|s| s.board_id.as_deref());
        Ok(self
            .workflow
            .outputs()
            .into_iter()
            .map(|node| {
                let files = produced.get(&node.node_id);
                Output {
                    item_id: item.item_id,
                    board: node.board.resolve(run_board).map(str::to_owned),
                    images: files.map(|f| f.images.clone()).unwrap_or_default(),
                    videos: files.map(|f| f.videos.clone()).unwrap_or_default(),
                    node_id: node.node_id,
                    node_type: node.node_type,
                    label: node.label,
                }
            })
            .collect())
    }

    /// Downloads the output images of every completed item into `dir` (created if needed) as
    /// `ITEM-LABEL.EXT` (`ITEM-LABEL-2.EXT`, ... for further images of a node), under the same
    /// rules as the runner's outputs ([`crate::fs::place`]): each file is written to a temporary
    /// file first and then linked into place under a free name, so nothing is ever overwritten
    /// (an existing name gets a `-N` suffix), and nothing is written through a symbolic link in
    /// `dir` (nor when `dir` itself is one). An image several items share
    /// (cached nodes) is downloaded once. Failed and canceled items have no outputs and are
    /// skipped (with a warning). Returns the files written, in item and node order.
    ///
    /// # Errors
    /// [`HandleError::NotFinished`] when an item has not finished (nothing is downloaded then),
    /// [`HandleError::Place`] for a link in `dir`, or any [`ClientError`].
    pub async fn download_outputs(
        &self,
        dir: impl AsRef<Path>,
    ) -> Result<Vec<PathBuf>, HandleError> {
        let dir = dir.as_ref();
        let items = self.items().await?;
        if let Some(running) = items.iter().find(|i| !i.status.is_terminal()) {
            return Err(HandleError::NotFinished {
                workflow: self.name().to_owned(),
                item_id: running.item_id,
                status: running.status.as_str().to_owned(),
            });
        }
        let root = LocalStore::open(dir)?;
        let mut written = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for item in &items {
            let outputs = match self.outputs(item) {
                Ok(outputs) => outputs,
                Err(err) => {
                    tracing::warn!("{err}; it has no outputs to download");
                    continue;
                }
            };
            for output in outputs {
                for (n, image) in output.images.iter().enumerate() {
                    if !seen.insert(image.clone()) {
                        continue;
                    }
                    let stem = if n == 0 {
                        format!("{}-{}", item.item_id, label_file_stem(&output.label))
                    } else {
                        format!(
                            "{}-{}-{}",
                            item.item_id,
                            label_file_stem(&output.label),
                            n + 1
                        )
                    };
                    let ext = Path::new(image)
                        .extension()
                        .and_then(|e| e.to_str())
                        .filter(|e| e.chars().all(|c| c.is_ascii_alphanumeric()))
                        .unwrap_or("png");
                    written.push(self.download_one(image, &root, &stem, ext).await?);
                }
            }
        }
        Ok(written)
    }

    /// Downloads one image into a file staged in `root`, then commits it under the first free
    /// name `stem.ext`, `stem-1.ext`, ...
    async fn download_one(
        &self,
        image_name: &str,
        root: &LocalStore,
        stem: &str,
        ext: &str,
    ) -> Result<PathBuf, HandleError> {
        let name = Name::new(stem, ext);
        let staged = root.stage(&name.candidate(0))?;
        self.client
            .images()
            .download(image_name, staged.path())
            .await?;
        let rel = root.commit(staged, &name, &[], 0, &HashSet::new())?;
        Ok(root.full_path(&rel))
    }

    /// Deletes from the server what this handle uploaded and, as asked, what its items produced
    /// and the items themselves. Images are only deleted when they belong to one of this
    /// handle's sessions (a cached node can hand back an image another run made: that one is
    /// kept). A board the handle created is deleted once it is empty. Refuses while items are
    /// unfinished, since they may still need the uploads.
    ///
    /// # Errors
    /// [`HandleError::StillRunning`], or any [`ClientError`].
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

/// A value with every model name replaced by what `lookup` gives for it.
fn replace_model_names(value: &InkValue, lookup: &dyn Fn(&str) -> Option<Value>) -> Value {
    match value {
        InkValue::ModelName(name) => lookup(name).unwrap_or_else(|| value.to_json()),
        InkValue::Collection(items) => Value::Array(
            items
                .iter()
                .map(|item| replace_model_names(item, lookup))
                .collect(),
        ),
        other => other.to_json(),
    }
}

/// The file-name stem of a downloaded output from its node's label: lowercase letters (any
/// script), digits, `-` and `_`; runs of anything else become one `-`; at most 80 characters,
/// `output` when nothing is left. Not the templates' `slug` filter (ASCII only, `_` becomes `-`,
/// as `docs/manifest.md` documents): this one keeps a label readable in its own language.
fn label_file_stem(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    for c in label.chars() {
        if c.is_alphanumeric() || c == '_' {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed: String = out.trim_matches('-').chars().take(80).collect();
    if trimmed.is_empty() {
        "output".to_owned()
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_become_safe_file_names() {
        let cases = [
            ("Blurred copy", "blurred-copy"),
            ("../../etc/passwd", "etc-passwd"),
            ("  ", "output"),
            ("Größe: 2×", "größe-2"),
            ("save_image", "save_image"),
        ];
        for (label, want) in cases {
            assert_eq!(label_file_stem(label), want, "{label:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn downloads_are_placed_without_overwriting_as_the_runner_places_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let existing = dir.path().join("7-out.png");
        fs_err::write(&existing, b"keep me").expect("write");
        let root = LocalStore::open(dir.path()).expect("root");
        let name = Name::new("7-out", "png");
        let staged = root.stage(&name.candidate(0)).expect("staged");
        fs_err::write(staged.path(), b"new").expect("write");
        let first = root
            .commit(staged, &name, &[], 0, &HashSet::new())
            .map(|rel| root.full_path(&rel))
            .expect("placed");
        assert_eq!(first, dir.path().join("7-out-1.png"));
        assert_eq!(fs_err::read(&existing).expect("read"), b"keep me");
        assert_eq!(fs_err::read(&first).expect("read"), b"new");
    }

    #[test]
    fn model_names_are_replaced_inside_lists_and_alone() {
        let lookup = |name: &str| (name == "A").then(|| json!({"key": "k-a"}));
        assert_eq!(
            replace_model_names(&InkValue::ModelName("A".into()), &lookup),
            json!({"key": "k-a"})
        );
        assert_eq!(
            replace_model_names(
                &InkValue::Collection(vec![InkValue::ModelName("A".into()), InkValue::Integer(3)]),
                &lookup
            ),
            json!([{"key": "k-a"}, 3])
        );
    }

    #[test]
    fn errors_name_the_workflow_the_items_and_what_to_do() {
        let shown = [
            HandleError::Timeout {
                workflow: "Blur".into(),
                waited: Duration::from_millis(1500),
                unfinished: (1..=12).collect(),
            },
            HandleError::ItemFailed {
                workflow: "Text to Image".into(),
                item_id: 4,
                error_type: "UnknownModelException".into(),
                error_message: "model not found: made-up-key".into(),
            },
            HandleError::StillRunning {
                workflow: "Blur".into(),
                items: vec![5],
            },
        ]
        .map(|e| e.to_string());
        insta::assert_snapshot!(shown.join("\n"), @r"
        workflow `Blur`: 12 item(s) still unfinished after 1.5s: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more; call `cancel()` to stop them, or wait longer
        workflow `Text to Image`: queue item 4 failed on the server: UnknownModelException: model not found: made-up-key
        workflow `Blur`: not cleaning up while queue item(s) 5 are unfinished; wait for them or `cancel()` them first
        ");
    }
}
