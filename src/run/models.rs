//! Models given by name or key in a manifest, resolved against the run's server with the
//! library's one resolver ([`ModelResolver`]): narrowed by the model types each field accepts,
//! and cached for the run.

use serde_json::Value;

use super::batch::{model_inputs, model_types_of};
use super::context::RunContext;
use super::error::RunError;
use crate::client::{Client, ModelRef, ModelResolver};
use crate::manifest::EnqueuePlan;

/// Resolves the enqueue's models given by name (or key alone) on the server of `client`, each
/// with its field's model types, once per reference and types in the run.
pub(super) async fn resolve_models(
    ctx: &RunContext<'_>,
    client: &Client,
    enqueue: &EnqueuePlan,
    models: &mut ModelResolver,
) -> Result<(), RunError> {
    let p = ctx.prepared;
    for (_, reference, types) in model_inputs(&p.workflow, &p.expansion.inputs, enqueue) {
        models
            .resolve(client, &reference, &types)
            .await
            .map_err(RunError::Model)?;
    }
    Ok(())
}

/// The identifier a model value of input `system` was resolved to by `models` (for
/// [`super::batch::build_batch`]).
pub(super) fn resolved(
    models: &ModelResolver,
    workflow: &crate::workflow::Workflow,
    system: &str,
    value: &Value,
) -> Option<Value> {
    let reference = ModelRef::of(value)?;
    let id = models.get(&reference, &model_types_of(workflow, system))?;
    serde_json::to_value(id).ok()
}
