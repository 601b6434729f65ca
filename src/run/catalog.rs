//! The workflow's inputs as a manifest sees them: [`InputCatalog`] over a [`Workflow`].

use serde_json::Value;

use crate::manifest::{CatalogError, InputCatalog, InputInfo, InputKind};
use crate::workflow::{InkType, InputRef, Workflow, WorkflowError, WorkflowInput};

/// A [`Workflow`] as an [`InputCatalog`].
#[derive(Debug, Clone, Copy)]
pub struct WorkflowCatalog<'w> {
    workflow: &'w Workflow,
}

impl<'w> WorkflowCatalog<'w> {
    /// The catalog of a workflow's inputs.
    #[must_use]
    pub fn new(workflow: &'w Workflow) -> WorkflowCatalog<'w> {
        WorkflowCatalog { workflow }
    }
}

/// What a manifest needs to know of an input.
#[must_use]
pub fn input_info(input: &WorkflowInput) -> InputInfo {
    let ty = input.ty();
    let kind = match ty {
        InkType::Image => InputKind::Image,
        InkType::Model(_) => InputKind::Model,
        InkType::Board => InputKind::Board,
        _ => InputKind::Other,
    };
    InputInfo {
        index: input.index,
        system_name: input.system_name.clone(),
        user_name: input.user_name.clone(),
        kind,
        batchable: ty.is_batchable(),
    }
}

fn catalog_error(err: &WorkflowError) -> CatalogError {
    match err {
        WorkflowError::UnknownInput { name, suggestion, .. } => {
            let e = CatalogError::new(format!("unknown input `{name}`"));
            match suggestion {
                Some(s) => e.with_hint(format!("did you mean `{s}`? (`invk-run inputs WORKFLOW` lists them)")),
                None => e.with_hint("`invk-run inputs WORKFLOW` lists the inputs"),
            }
        }
        WorkflowError::AmbiguousInput { name, candidates, .. } => {
            CatalogError::new(format!("several inputs are named `{name}`")).with_hint(format!(
                "name one by its system name: {}",
                candidates.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
            ))
        }
        WorkflowError::InvalidValue(e) => CatalogError::new(e.problem.clone()),
        other => CatalogError::new(other.to_string()),
    }
}

impl InputCatalog for WorkflowCatalog<'_> {
    fn resolve(&self, key: &str) -> Result<InputInfo, CatalogError> {
        self.workflow
            .input(&InputRef::parse(key))
            .map(input_info)
            .map_err(|e| catalog_error(&e))
    }

    fn check(&self, input: &InputInfo, value: &Value) -> Result<Value, CatalogError> {
        self.workflow
            .check(&InputRef::parse(&input.system_name), value)
            .map(|ink| ink.to_json())
            .map_err(|e| catalog_error(&e))
    }

    fn missing_required(&self) -> Vec<String> {
        self.workflow.missing_required_inputs()
    }

    fn user_name(&self, system_name: &str) -> Option<String> {
        self.workflow
            .by_system_name()
            .get(system_name)
            .map(|i| i.user_name.clone())
    }
}
