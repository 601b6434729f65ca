//! One planned enqueue as the batch the server takes: the workflow with the enqueue's fixed
//! values set, converted, with the varying values as batch data.

use std::collections::HashMap;

use serde_json::Value;

use crate::manifest::{EnqueuePlan, InputInfo, InputKind, LocalImage};
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
        if inputs
            .get(system)
            .is_some_and(|i| i.kind == InputKind::Model)
        {
            if let Some(id) = model_ref(&json).and_then(|r| models.get(&r)) {
                json = id.clone();
            }
        }
        workflow.set(&InputRef::parse(system), json)?;
    }
    let mut batch = workflow.to_batch(&ConvertOptions {
        runs: enqueue.runs(),
        ..options.clone()
    })?;
    if let Some(mut data) = enqueue.batch_data(image_name) {
        // Our zip group goes first: the server's product makes it the slowest-varying, so
        // each job's sessions are consecutive.
        data.extend(batch.data.take().unwrap_or_default());
        batch.data = Some(data);
    }
    Ok(batch)
}

/// A model value that still needs the server: `name:NAME` for a model given by name (a
/// string, or `{name}` alone), `key:KEY` for one given by key only (`{key}` without the rest).
/// Complete identifiers need nothing.
#[must_use]
pub fn model_ref(value: &Value) -> Option<String> {
    match value {
        Value::String(name) => Some(format!("name:{name}")),
        Value::Object(map) if !map.contains_key("hash") => {
            if let Some(key) = map.get("key").and_then(Value::as_str) {
                Some(format!("key:{key}"))
            } else {
                map.get("name")
                    .and_then(Value::as_str)
                    .map(|n| format!("name:{n}"))
            }
        }
        _ => None,
    }
}

/// The model references ([`model_ref`]) an enqueue's fixed values hold (to resolve on the
/// server).
#[must_use]
pub fn model_refs(
    inputs: &indexmap::IndexMap<String, InputInfo>,
    enqueue: &EnqueuePlan,
) -> Vec<String> {
    enqueue
        .fixed
        .iter()
        .filter(|(system, _)| {
            inputs
                .get(*system)
                .is_some_and(|i| i.kind == InputKind::Model)
        })
        .filter_map(|(_, v)| v.as_value().and_then(model_ref))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn model_refs_name_what_needs_the_server() {
        assert_eq!(model_ref(&json!("FLUX Dev")), Some("name:FLUX Dev".into()));
        assert_eq!(
            model_ref(&json!({"name": "FLUX Dev"})),
            Some("name:FLUX Dev".into())
        );
        assert_eq!(model_ref(&json!({"key": "k1"})), Some("key:k1".into()));
        let full = json!({"key": "k1", "hash": "h", "name": "n", "base": "sd-1", "type": "main"});
        assert_eq!(model_ref(&full), None);
        assert_eq!(model_ref(&json!(3)), None);
    }
}
