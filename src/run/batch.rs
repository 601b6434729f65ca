//! One planned enqueue as the batch the server takes: the workflow with the enqueue's fixed
//! values set, converted, with the varying values as batch data.

use std::collections::HashMap;

use serde_json::Value;

use crate::manifest::{EnqueuePlan, InputKind, InputInfo, LocalImage};
use crate::workflow::{Batch, ConvertOptions, InputRef, Workflow};

/// Builds the batch of one enqueue. `image_name` names uploaded local images; `models` maps
/// model names given in the manifest to their identifiers.
///
/// # Errors
/// A value the workflow refuses, or a model name missing from `models`.
pub fn build_batch(
    workflow: &Workflow,
    inputs: &indexmap::IndexMap<String, InputInfo>,
    enqueue: &EnqueuePlan,
    image_name: &impl Fn(&LocalImage) -> String,
    models: &HashMap<String, Value>,
    options: &ConvertOptions,
) -> Result<Batch, crate::Error> {
    let mut workflow = workflow.clone();
    for (system, value) in &enqueue.fixed {
        let mut json = value.to_json(image_name);
        if inputs.get(system).is_some_and(|i| i.kind == InputKind::Model) {
            if let Value::String(name) = &json {
                if let Some(id) = models.get(name) {
                    json = id.clone();
                }
            }
        }
        workflow.set(&InputRef::parse(system), json)?;
    }
    let mut batch = workflow.to_batch(&ConvertOptions { runs: enqueue.runs(), ..options.clone() })?;
    if let Some(mut data) = enqueue.batch_data(image_name) {
        // Our zip group goes first: the server's product makes it the slowest-varying, so
        // each job's sessions are consecutive.
        data.extend(batch.data.take().unwrap_or_default());
        batch.data = Some(data);
    }
    Ok(batch)
}

/// The model names an enqueue's fixed values give (to resolve on the server).
#[must_use]
pub fn model_names(inputs: &indexmap::IndexMap<String, InputInfo>, enqueue: &EnqueuePlan) -> Vec<String> {
    enqueue
        .fixed
        .iter()
        .filter(|(system, _)| inputs.get(*system).is_some_and(|i| i.kind == InputKind::Model))
        .filter_map(|(_, v)| v.as_value().and_then(Value::as_str).map(str::to_owned))
        .collect()
}
