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

mod cleanup;
mod error;
mod inputs;
mod outputs;
mod submit;
mod track;

pub use cleanup::{Cleanup, CleanupReport};
pub use error::HandleError;
pub use outputs::Output;
pub use submit::{Submission, SubmitOptions};
pub use track::WaitProgress;

use crate::client::Client;
use crate::client::schemas::{SchemaSource, server_schemas};
use crate::workflow::{SchemaSet, Workflow, WorkflowDefinition};

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
            None => {
                WorkflowHandle::with_schemas(client, definition, &SchemaSet::snapshot(), source)
            }
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
}
