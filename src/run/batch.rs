//! One planned enqueue as the batch the server takes: the workflow with the enqueue's fixed
//! values set, converted, with the varying values as batch data.

use super::error::RunError;
use serde_json::Value;

use crate::client::{ModelRef, field_model_types};
use crate::manifest::{EnqueuePlan, InputInfo, InputKind, LocalImage};
use crate::workflow::{Batch, ConvertOptions, InputRef, Workflow};

/// Builds the batch of one enqueue. `image_name` names uploaded local images; `model` gives the
/// identifier of a model value given by name or key (the input's system name, its value).
///
/// # Errors
/// A value the workflow refuses, or a model `model` does not know.
pub fn build_batch(
    workflow: &Workflow,
    inputs: &indexmap::IndexMap<String, InputInfo>,
    enqueue: &EnqueuePlan,
    image_name: &impl Fn(&LocalImage) -> String,
    model: &dyn Fn(&str, &Value) -> Option<Value>,
    options: &ConvertOptions,
) -> Result<Batch, RunError> {
    let mut workflow = workflow.clone();
    for (system, value) in &enqueue.fixed {
        let mut json = value.to_json(image_name);
        if inputs
            .get(system)
            .is_some_and(|i| i.kind == InputKind::Model)
        {
            if let Some(id) = model(system, &json) {
                json = id;
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
    ModelRef::of(value).map(|reference| match reference {
        ModelRef::Name(name) => format!("name:{name}"),
        ModelRef::Key(key) => format!("key:{key}"),
    })
}

/// The model inputs of an enqueue whose values need the server: system name, reference, and
/// the model types the field accepts.
#[must_use]
pub fn model_inputs(
    workflow: &Workflow,
    inputs: &indexmap::IndexMap<String, InputInfo>,
    enqueue: &EnqueuePlan,
) -> Vec<(String, ModelRef, Vec<String>)> {
    enqueue
        .fixed
        .iter()
        .filter(|(system, _)| {
            inputs
                .get(*system)
                .is_some_and(|i| i.kind == InputKind::Model)
        })
        .filter_map(|(system, v)| {
            let reference = v.as_value().and_then(ModelRef::of)?;
            Some((system.clone(), reference, model_types_of(workflow, system)))
        })
        .collect()
}

/// The model types the input `system` accepts (empty: any).
#[must_use]
pub fn model_types_of(workflow: &Workflow, system: &str) -> Vec<String> {
    workflow
        .input(&InputRef::parse(system))
        .map(|input| field_model_types(input.ty()).to_vec())
        .unwrap_or_default()
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
