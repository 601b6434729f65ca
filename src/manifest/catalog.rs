//! What a manifest needs to know about its workflow's inputs: the [`InputCatalog`] trait.
//!
//! The manifest code stays independent of how workflows are loaded: the workflow core implements
//! this trait, and tests use small tables.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

/// The check of one input's values ([`InputCatalog::check`]) as a function that owns what it
/// needs, so that jobs can be made after the catalog is gone.
pub type Checker = Arc<dyn Fn(&Value) -> Result<Value, CatalogError> + Send + Sync>;

/// The kind of an input, as far as manifests care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum InputKind {
    /// An image field: a string value is a local file to upload; `{image_name}` is a server image.
    Image,
    /// A model field: an installed model's name, or `{key: KEY}`.
    Model,
    /// A board field.
    Board,
    /// Anything else (strings, numbers, booleans, enums, colors, collections...).
    Other,
}

/// One input of the workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputInfo {
    /// Position in the workflow's form (0-based); jobs list their inputs in this order.
    pub index: usize,
    /// `node_id.field_name`, unique.
    pub system_name: String,
    /// The field's label in the workflow, else its name; may collide with another input's.
    pub user_name: String,
    /// What kind of value it takes.
    pub kind: InputKind,
    /// Whether the server can vary it inside one enqueue (batch data takes strings, numbers and
    /// images; models, boards and booleans need one enqueue per value).
    pub batchable: bool,
}

/// Why a name or a value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError {
    /// What is wrong, e.g. ``unknown input `Hu` `` or ``-5 is not greater than the exclusive minimum 0``.
    pub message: String,
    /// What to do, e.g. ``did you mean `Hue`?``.
    pub hint: Option<String>,
}

impl CatalogError {
    /// An error without a hint.
    #[must_use]
    pub fn new(message: impl Into<String>) -> CatalogError {
        CatalogError {
            message: message.into(),
            hint: None,
        }
    }

    /// This error with a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> CatalogError {
        self.hint = Some(hint.into());
        self
    }
}

/// The inputs of a workflow, as a manifest addresses and fills them.
pub trait InputCatalog {
    /// Resolves a manifest key (user name, system name `node_id.field`, or `#INDEX`) to an input.
    ///
    /// # Errors
    /// The key names no input, or a user name that several inputs share; the hint names the
    /// closest match or the system names to use instead.
    fn resolve(&self, key: &str) -> Result<InputInfo, CatalogError>;

    /// Checks a value for an input and converts it to the value the workflow takes (`"30"` into
    /// an integer field gives `30`). Image inputs are only asked about non-path values (a string
    /// for an image input is a local file, handled by the manifest).
    ///
    /// # Errors
    /// The value's type or a constraint is wrong; the message names the rule.
    fn check(&self, input: &InputInfo, value: &Value) -> Result<Value, CatalogError>;

    /// [`InputCatalog::check`] for `input`, as a function of the value alone.
    fn checker(&self, input: &InputInfo) -> Checker;

    /// System names of the required inputs that the workflow itself leaves without a value: the
    /// manifest must set them.
    fn missing_required(&self) -> Vec<String>;

    /// The user name of an input, given its system name (for messages).
    fn user_name(&self, system_name: &str) -> Option<String> {
        self.resolve(system_name).ok().map(|i| i.user_name)
    }
}

/// The workflow core's [`Workflow`](crate::workflow::Workflow) is the catalog of a manifest's
/// inputs: names resolve as `invk-run inputs` lists them, values are converted and checked
/// against the server's invocation schema, required inputs are those the workflow leaves empty.
impl InputCatalog for crate::workflow::Workflow {
    fn resolve(&self, key: &str) -> Result<InputInfo, CatalogError> {
        use crate::workflow::{InkType, InputRef, WorkflowError};
        match self.input(&InputRef::parse(key)) {
            Ok(input) => {
                let ty = input.ty();
                let kind = match ty {
                    InkType::Image => InputKind::Image,
                    InkType::Model(_) => InputKind::Model,
                    InkType::Board => InputKind::Board,
                    _ => InputKind::Other,
                };
                Ok(InputInfo {
                    index: input.index,
                    system_name: input.system_name.clone(),
                    user_name: input.user_name.clone(),
                    kind,
                    // A batch or generator node is not in the graph: its values shape the batch
                    // data itself, so each value needs its own enqueue.
                    batchable: ty.is_batchable()
                        && !crate::workflow::graph::is_batch_or_generator(&input.node_type),
                })
            }
            Err(WorkflowError::UnknownInput {
                name, suggestion, ..
            }) => {
                let hint = suggestion.map_or_else(
                    || "list the workflow's inputs with `invk-run inputs WORKFLOW`".to_owned(),
                    |s| format!("did you mean `{s}`?"),
                );
                Err(CatalogError::new(format!("unknown input `{name}`")).with_hint(hint))
            }
            Err(WorkflowError::AmbiguousInput {
                name, candidates, ..
            }) => Err(
                CatalogError::new(format!("several inputs are named `{name}`")).with_hint(format!(
                    "use a system name instead: {}",
                    candidates
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ),
            Err(WorkflowError::InputIndexOutOfRange { index, count, .. }) => Err(
                CatalogError::new(format!("no input #{index}")).with_hint(format!(
                    "the workflow has {count} inputs, #0 to #{}",
                    count.saturating_sub(1)
                )),
            ),
            Err(other) => Err(CatalogError::new(other.to_string())),
        }
    }

    fn check(&self, input: &InputInfo, value: &Value) -> Result<Value, CatalogError> {
        self.checker(input)(value)
    }

    fn checker(&self, input: &InputInfo) -> Checker {
        use crate::workflow::{InputRef, ink};
        let schema = match self.input(&InputRef::parse(&input.system_name)) {
            Ok(i) => i.schema.clone(),
            Err(e) => {
                let message = e.to_string();
                return Arc::new(move |_| Err(CatalogError::new(message.clone())));
            }
        };
        let model = input.kind == InputKind::Model;
        Arc::new(move |value| {
            // The manifest contract allows `{key: KEY}` for a model; the workflow core wants the
            // whole identifier, which only the server knows: the runner completes it by key, as
            // it resolves model names.
            if model && is_model_key(value) {
                return Ok(value.clone());
            }
            match &schema {
                Some(s) => ink::coerce(&s.ty, &s.constraints, value)
                    .map(|v| v.to_json())
                    .map_err(|e| CatalogError::new(e.to_string())),
                None => Ok(value.clone()),
            }
        })
    }

    fn missing_required(&self) -> Vec<String> {
        self.missing_required_inputs()
    }
}

/// `{key: KEY}` alone, with a non-empty key.
fn is_model_key(value: &Value) -> bool {
    matches!(value, Value::Object(m) if m.len() == 1
        && m.get("key").is_some_and(|k| k.as_str().is_some_and(|k| !k.is_empty())))
}
