//! What a workflow or a manifest needs of a server, worked out offline: the node types its
//! workflow uses, and the models it names (by name, by name and base, or by key). A server can
//! run it when every node type is in the server's invocation schema and every model is found on
//! that server (keys differ between installs, so a full identifier is looked up by name and base).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::prepare::Prepared;
use crate::client::{ModelRef, field_model_types};
use crate::manifest::InputKind;
use crate::workflow::{InputRef, Workflow, WorkflowDefinition};

/// How deep a node's value is searched for model identifiers (a LoRA list holds
/// `[{lora: {key, ...}, weight}]`): a bound on what a workflow file can make the search do.
const MODEL_SEARCH_DEPTH: usize = 4;

/// What a workflow or manifest needs of a server.
#[derive(Debug, Clone, PartialEq)]
pub struct Needs {
    /// The file it was read from, as given.
    pub source: String,
    /// The node types its workflow uses, sorted.
    pub node_types: BTreeSet<String>,
    /// The models it names, each once.
    pub models: Vec<ModelNeed>,
    /// The servers a manifest names (`server:`), if any.
    pub servers: Vec<crate::server_entry::ServerEntry>,
}

/// A model a workflow or manifest names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelNeed {
    /// How it is named: by name (then matched by name, and by `base` when given), or by key
    /// (a key holds for one install only).
    pub reference: ModelRef,
    /// Its base (`sd-1`, `sdxl`, `flux`, ...), when the value gives one.
    pub base: Option<String>,
    /// The model types the field takes (`main`, `vae`, ...); empty: any.
    pub types: Vec<String>,
    /// The inputs that name it (`node_id.field`).
    pub inputs: Vec<String>,
}

impl ModelNeed {
    /// `` `FLUX` (flux, main or vae) `` or `` key `k1` (main) ``, for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        let named = match &self.reference {
            ModelRef::Name(name) => format!("`{name}`"),
            ModelRef::Key(key) => format!("key `{key}`"),
        };
        let mut what: Vec<String> = self.base.iter().cloned().collect();
        if !self.types.is_empty() {
            what.push(self.types.join(" or "));
        }
        if what.is_empty() {
            named
        } else {
            format!("{named} ({})", what.join(", "))
        }
    }
}

/// Collects model needs, each (reference, base, types) once with every input that names it.
#[derive(Default)]
struct ModelNeeds(BTreeMap<(ModelRef, Option<String>, Vec<String>), BTreeSet<String>>);

impl ModelNeeds {
    fn add(&mut self, reference: ModelRef, base: Option<String>, types: Vec<String>, input: &str) {
        self.0
            .entry((reference, base, types))
            .or_default()
            .insert(input.to_owned());
    }

    fn into_vec(self) -> Vec<ModelNeed> {
        self.0
            .into_iter()
            .map(|((reference, base, types), inputs)| ModelNeed {
                reference,
                base,
                types,
                inputs: inputs.into_iter().collect(),
            })
            .collect()
    }
}

impl Needs {
    /// What a workflow needs: its node types, and the models its nodes' values name (full
    /// identifiers, looked up by name and base).
    #[must_use]
    pub fn of_workflow(source: &str, definition: &WorkflowDefinition) -> Needs {
        let mut models = ModelNeeds::default();
        add_workflow_models(definition, &BTreeSet::new(), &mut models);
        Needs {
            source: source.to_owned(),
            node_types: node_types(definition),
            models: models.into_vec(),
            servers: Vec::new(),
        }
    }

    /// What a checked manifest needs: its workflow's node types, the models its jobs set on
    /// model inputs (by name, key or identifier, with the types each field takes), and the
    /// models its workflow names in the fields the manifest leaves alone.
    #[must_use]
    pub fn of_manifest(source: &str, prepared: &Prepared) -> Needs {
        let workflow = &prepared.workflow;
        let expansion = &prepared.expansion;
        let model_inputs: Vec<(&String, Vec<String>)> = expansion
            .inputs
            .iter()
            .filter(|(_, info)| info.kind == InputKind::Model)
            .map(|(system, _)| (system, model_types_of(workflow, system)))
            .collect();
        let mut models = ModelNeeds::default();
        if !model_inputs.is_empty() {
            for job in expansion.jobs() {
                for (system, types) in &model_inputs {
                    if let Some(value) = job.inputs.get(*system).and_then(|v| v.as_value()) {
                        add_value(value, types, system, &mut models);
                    }
                }
            }
        }
        let set: BTreeSet<String> = expansion.inputs.keys().cloned().collect();
        add_workflow_models(workflow.definition(), &set, &mut models);
        Needs {
            source: source.to_owned(),
            node_types: node_types(workflow.definition()),
            models: models.into_vec(),
            servers: prepared.file.server_entries(),
        }
    }
}

/// The invocation types of the workflow's nodes.
pub(crate) fn node_types(definition: &WorkflowDefinition) -> BTreeSet<String> {
    definition
        .nodes()
        .iter()
        .filter_map(|n| n.invocation_type())
        .map(str::to_owned)
        .collect()
}

/// A model value a manifest sets: a name, `{name}` (with `base`), `{key}`, or a full identifier.
fn add_value(value: &Value, field_types: &[String], input: &str, out: &mut ModelNeeds) {
    match value {
        Value::Array(items) => {
            for item in items {
                add_value(item, field_types, input, out);
            }
        }
        Value::Object(map) if map.contains_key("hash") => {
            if let Some((name, base, types)) = identifier(value) {
                let types = if types.is_empty() {
                    field_types.to_vec()
                } else {
                    types
                };
                out.add(ModelRef::Name(name), base, types, input);
            }
        }
        _ => {
            if let Some(reference) = ModelRef::of(value) {
                let base = match &reference {
                    ModelRef::Name(_) => {
                        value.get("base").and_then(Value::as_str).map(str::to_owned)
                    }
                    ModelRef::Key(_) => None,
                };
                out.add(reference, base, field_types.to_vec(), input);
            }
        }
    }
}

/// The model identifiers in the values of the workflow's node fields that `skip` does not name.
fn add_workflow_models(
    definition: &WorkflowDefinition,
    skip: &BTreeSet<String>,
    out: &mut ModelNeeds,
) {
    for node in definition.nodes() {
        let Some(inputs) = node
            .data
            .as_ref()
            .filter(|_| node.is_invocation())
            .and_then(|d| d.inputs.as_ref())
        else {
            continue;
        };
        for (field, entry) in inputs {
            let system = format!("{}.{field}", node.id);
            if skip.contains(&system) {
                continue;
            }
            if let Some(value) = entry.get("value") {
                find_identifiers(value, &system, MODEL_SEARCH_DEPTH, out);
            }
        }
    }
}

fn find_identifiers(value: &Value, input: &str, depth: usize, out: &mut ModelNeeds) {
    if let Some((name, base, types)) = identifier(value) {
        out.add(ModelRef::Name(name), base, types, input);
        return;
    }
    if depth == 0 {
        return;
    }
    match value {
        Value::Array(items) => {
            for item in items {
                find_identifiers(item, input, depth - 1, out);
            }
        }
        Value::Object(map) => {
            for item in map.values() {
                find_identifiers(item, input, depth - 1, out);
            }
        }
        _ => {}
    }
}

/// The name, base and type of a model identifier (`{key, name, base, type, ...}`).
fn identifier(value: &Value) -> Option<(String, Option<String>, Vec<String>)> {
    let map = value.as_object()?;
    let text = |k: &str| map.get(k).and_then(Value::as_str);
    text("key")?;
    let name = text("name")?.to_owned();
    let base = Some(text("base")?.to_owned());
    let types = text("type").map(|t| vec![t.to_owned()]).unwrap_or_default();
    Some((name, base, types))
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

    use super::*;
    use serde_json::json;

    #[test]
    fn model_values_become_needs_once_each_with_their_inputs() {
        let mut out = ModelNeeds::default();
        let main = vec!["main".to_owned()];
        add_value(&json!("FLUX"), &main, "a.model", &mut out);
        add_value(&json!("FLUX"), &main, "b.model", &mut out);
        add_value(
            &json!({"name": "SDXL", "base": "sdxl"}),
            &main,
            "c.model",
            &mut out,
        );
        add_value(&json!({"key": "k1"}), &main, "d.model", &mut out);
        let full = json!({"key": "k9", "hash": "h", "name": "ae", "base": "flux", "type": "vae"});
        add_value(&full, &main, "e.vae", &mut out);
        let described: Vec<(String, Vec<String>)> = out
            .into_vec()
            .iter()
            .map(|n| (n.describe(), n.inputs.clone()))
            .collect();
        assert_eq!(
            described,
            [
                (
                    "`FLUX` (main)".to_owned(),
                    vec!["a.model".to_owned(), "b.model".to_owned()]
                ),
                ("`SDXL` (sdxl, main)".to_owned(), vec!["c.model".to_owned()]),
                ("`ae` (flux, vae)".to_owned(), vec!["e.vae".to_owned()]),
                ("key `k1` (main)".to_owned(), vec!["d.model".to_owned()]),
            ]
        );
    }

    #[test]
    fn a_workflow_needs_its_node_types_and_the_models_in_its_values() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/workflows/flux-image-to-image.json");
        let definition = WorkflowDefinition::load(&path).expect("workflow");
        let needs = Needs::of_workflow("flux.json", &definition);
        assert!(needs.node_types.contains("flux_model_loader"), "{needs:?}");
        let models: Vec<String> = needs.models.iter().map(ModelNeed::describe).collect();
        assert_eq!(
            models,
            [
                "`FLUX.1-schnell_ae` (flux, vae)",
                "`clip-vit-large-patch14` (any, clip_embed)",
                "`flux1-schnell` (flux, main)",
                "`t5_bnb_int8_quantized_encoder` (any, t5_encoder)",
            ]
        );
    }
}
