//! Workflow files exported from the InvokeAI web UI: their definition, form inputs with typed
//! `Ink*` values, and their conversion into the graph the server runs.
//!
//! ```no_run
//! use invk_run::workflow::{ConvertOptions, InputRef, SchemaSet, Workflow, WorkflowDefinition};
//!
//! # fn main() -> Result<(), invk_run::workflow::WorkflowError> {
//! let def = WorkflowDefinition::load("examples/workflows/blur-and-tint.json")?;
//! let mut wf = Workflow::new(def, &SchemaSet::snapshot())?;
//! for input in wf.inputs() {
//!     println!("#{} {} ({}): {}", input.index, input.user_name, input.system_name, input.ty());
//! }
//! wf.set(&InputRef::parse("Blur radius"), "4".into())?;
//! let batch = wf.to_batch(&ConvertOptions::default())?;
//! # Ok(()) }
//! ```

pub mod check;
pub mod definition;
pub mod error;
pub mod form;
pub mod generators;
pub mod graph;
pub mod ink;
pub mod inputs;
pub mod outputs;
pub mod payload;
pub mod schema;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};

pub use definition::{FieldIdentifier, NodeData, WorkflowDefinition, WorkflowEdge, WorkflowNode};
pub use error::{InputError, WorkflowError};
pub use graph::ConvertOptions;
pub use ink::{
    BoardChoice, Color, Constraints, InkType, InkValue, ModelIdentifier, NumberRule, ValueError,
};
pub use inputs::{InputRef, InputSummary, WorkflowInput};
pub use outputs::{OutputBoard, OutputNode};
pub use payload::{Batch, BatchDatum, Edge, EdgeEnd, EnqueueBatch, Graph};
pub use schema::{FieldSchema, InvocationSchema, SchemaSet};

/// A model input given by name, still to be resolved against the server's installed models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnresolvedModel {
    /// The input's system name (`node.field`).
    pub system_name: String,
    /// The input's user name.
    pub user_name: String,
    /// The model name given.
    pub model_name: String,
    /// The model types the field accepts (`main`, `vae`, ...); empty when any.
    pub model_types: Vec<String>,
}

/// A workflow with typed inputs: its definition, the schemas of its node types and the values
/// of its inputs. Values are checked and converted when set.
#[derive(Debug, Clone)]
pub struct Workflow {
    definition: WorkflowDefinition,
    schemas: SchemaSet,
    inputs: Vec<WorkflowInput>,
    by_system: HashMap<String, usize>,
}

impl Workflow {
    /// Makes a workflow handle: finds its inputs (form order) and types them from `schemas`.
    /// Node types the schemas do not know (custom nodes) load too; their fields are raw JSON.
    ///
    /// # Errors
    /// [`WorkflowError::Invalid`] when a legacy `exposedFields` entry names a missing field, or
    /// when the server would refuse its graph: an edge from a missing output or to a missing
    /// input, edges forming a cycle, an edge between types that cannot connect.
    pub fn new(
        definition: WorkflowDefinition,
        schemas: &SchemaSet,
    ) -> Result<Workflow, WorkflowError> {
        let fields = form::input_fields(&definition)?;
        check::check_graph(&definition, &graph::build_graph(&definition, None), schemas)?;
        let connected: HashSet<(&str, &str)> = definition
            .edges()
            .iter()
            .filter(|e| e.is_default())
            .filter_map(|e| Some((e.target.as_str(), e.target_handle.as_deref()?)))
            .collect();
        let mut inputs = Vec::with_capacity(fields.len());
        for (index, f) in fields.iter().enumerate() {
            let node = definition.node(&f.node_id);
            let node_type = node
                .and_then(WorkflowNode::invocation_type)
                .unwrap_or_default()
                .to_string();
            let schema = schemas
                .invocation(&node_type)
                .and_then(|s| s.field(&f.field_name))
                .cloned();
            let entry = node.and_then(|n| n.input(&f.field_name));
            let user_name = entry
                .and_then(|e| e.get("label"))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .unwrap_or(&f.field_name)
                .to_string();
            let system_name = format!("{}.{}", f.node_id, f.field_name);
            let value = entry.and_then(|e| e.get("value")).map(|v| match &schema {
                Some(s) => ink::coerce(&s.ty, &s.constraints, v).unwrap_or_else(|problem| {
                    tracing::warn!(
                        "workflow `{}`: input `{user_name}` ({system_name}): {problem}",
                        definition.name()
                    );
                    InkValue::Raw(v.clone())
                }),
                None => InkValue::Raw(v.clone()),
            });
            inputs.push(WorkflowInput {
                index,
                required: schema.as_ref().is_some_and(|s| s.orig_required),
                connected: connected.contains(&(f.node_id.as_str(), f.field_name.as_str())),
                system_name,
                user_name,
                node_id: f.node_id.clone(),
                field_name: f.field_name.clone(),
                node_type,
                schema,
                value,
            });
        }
        let types: HashSet<&str> = definition
            .nodes()
            .iter()
            .filter_map(WorkflowNode::invocation_type)
            .collect();
        let schemas = schemas.subset(&types);
        let by_system = inputs
            .iter()
            .map(|i| (i.system_name.clone(), i.index))
            .collect();
        Ok(Workflow {
            definition,
            schemas,
            inputs,
            by_system,
        })
    }

    /// The definition, with the values set so far.
    #[must_use]
    pub fn definition(&self) -> &WorkflowDefinition {
        &self.definition
    }

    /// The workflow's name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.definition.name()
    }

    /// The inputs, in form order.
    #[must_use]
    pub fn inputs(&self) -> &[WorkflowInput] {
        &self.inputs
    }

    /// The inputs by system name (`node.field`).
    #[must_use]
    pub fn by_system_name(&self) -> BTreeMap<&str, &WorkflowInput> {
        self.inputs
            .iter()
            .map(|i| (i.system_name.as_str(), i))
            .collect()
    }

    /// The inputs by user name.
    ///
    /// # Errors
    /// [`WorkflowError::UserNameCollision`] naming every repeated user name and the nodes and
    /// fields that share it.
    pub fn by_user_name(&self) -> Result<BTreeMap<&str, &WorkflowInput>, WorkflowError> {
        let mut map: BTreeMap<&str, &WorkflowInput> = BTreeMap::new();
        let mut collisions: Vec<(String, Vec<String>)> = Vec::new();
        for i in &self.inputs {
            if let Some(first) = map.get(i.user_name.as_str()) {
                match collisions.iter_mut().find(|(n, _)| *n == i.user_name) {
                    Some((_, names)) => names.push(i.system_name.clone()),
                    None => collisions.push((
                        i.user_name.clone(),
                        vec![first.system_name.clone(), i.system_name.clone()],
                    )),
                }
            } else {
                map.insert(&i.user_name, i);
            }
        }
        if collisions.is_empty() {
            Ok(map)
        } else {
            Err(WorkflowError::UserNameCollision {
                workflow: self.name().to_string(),
                collisions,
            })
        }
    }

    /// The input a reference names.
    ///
    /// # Errors
    /// [`WorkflowError::UnknownInput`] (with the closest name), [`WorkflowError::AmbiguousInput`]
    /// or [`WorkflowError::InputIndexOutOfRange`].
    pub fn input(&self, r: &InputRef) -> Result<&WorkflowInput, WorkflowError> {
        Ok(&self.inputs[self.index_of(r)?])
    }

    fn index_of(&self, r: &InputRef) -> Result<usize, WorkflowError> {
        match r {
            InputRef::Index(i) if *i < self.inputs.len() => Ok(*i),
            InputRef::Index(i) => Err(WorkflowError::InputIndexOutOfRange {
                workflow: self.name().to_string(),
                index: *i,
                count: self.inputs.len(),
            }),
            InputRef::SystemName {
                node_id,
                field_name,
            } => {
                let name = format!("{node_id}.{field_name}");
                match self.by_system.get(&name) {
                    Some(i) => Ok(*i),
                    None => self.by_user(&name),
                }
            }
            InputRef::UserName(name) => self.by_user(name),
        }
    }

    fn by_user(&self, name: &str) -> Result<usize, WorkflowError> {
        let matches: Vec<&WorkflowInput> =
            self.inputs.iter().filter(|i| i.user_name == name).collect();
        match matches.as_slice() {
            [one] => Ok(one.index),
            [] => {
                let suggestion = self
                    .inputs
                    .iter()
                    .flat_map(|i| [&i.user_name, &i.system_name])
                    .map(|c| {
                        (
                            strsim::jaro_winkler(&c.to_lowercase(), &name.to_lowercase()),
                            c,
                        )
                    })
                    .filter(|(score, _)| *score > 0.7)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, c)| c.clone());
                Err(WorkflowError::UnknownInput {
                    workflow: self.name().to_string(),
                    name: name.to_string(),
                    suggestion,
                })
            }
            many => Err(WorkflowError::AmbiguousInput {
                workflow: self.name().to_string(),
                name: name.to_string(),
                candidates: many.iter().map(|i| i.system_name.clone()).collect(),
            }),
        }
    }

    fn convert(&self, input: &WorkflowInput, value: &Value) -> Result<InkValue, InputError> {
        let problem = match &input.schema {
            Some(s) => ink::coerce(&s.ty, &s.constraints, value),
            None => Ok(InkValue::Raw(value.clone())),
        };
        problem.map_err(|problem| InputError {
            user_name: input.user_name.clone(),
            system_name: input.system_name.clone(),
            problem: problem.to_string(),
        })
    }

    /// Converts and checks a value for an input without setting it.
    ///
    /// # Errors
    /// As [`Workflow::input`], or [`WorkflowError::InvalidValue`] naming the input, the value
    /// and the rule.
    pub fn check(&self, r: &InputRef, value: &Value) -> Result<InkValue, WorkflowError> {
        let input = self.input(r)?;
        Ok(self.convert(input, value)?)
    }

    /// Sets an input: converts the value to the field's type (`"30"` into an integer field is
    /// 30) and checks the schema's constraints.
    ///
    /// # Errors
    /// As [`Workflow::check`]; nothing is changed then.
    pub fn set(&mut self, r: &InputRef, value: Value) -> Result<(), WorkflowError> {
        let index = self.index_of(r)?;
        let converted = self.convert(&self.inputs[index], &value)?;
        let input = &mut self.inputs[index];
        if converted.unresolved_model_names().is_empty() {
            self.definition
                .set_input_value(&input.node_id, &input.field_name, converted.to_json());
        }
        input.value = Some(converted);
        Ok(())
    }

    /// Every input problem at once: values that do not fit their field, and required inputs
    /// without a value.
    #[must_use]
    pub fn validate_inputs(&self) -> Vec<InputError> {
        let mut errors = Vec::new();
        for input in &self.inputs {
            let err = |problem: String| InputError {
                user_name: input.user_name.clone(),
                system_name: input.system_name.clone(),
                problem,
            };
            if input.is_missing() {
                errors.push(err("a value is required".to_string()));
                continue;
            }
            let (Some(schema), Some(InkValue::Raw(raw))) = (&input.schema, &input.value) else {
                continue;
            };
            if let Err(problem) = ink::coerce(&schema.ty, &schema.constraints, raw) {
                errors.push(err(problem.to_string()));
            }
        }
        errors
    }

    /// System names of required inputs that still lack a value.
    #[must_use]
    pub fn missing_required_inputs(&self) -> Vec<String> {
        self.inputs
            .iter()
            .filter(|i| i.is_missing())
            .map(|i| i.system_name.clone())
            .collect()
    }

    /// Model inputs given by name, to resolve against the server (then [`Workflow::set`] the
    /// full identifier).
    #[must_use]
    pub fn unresolved_models(&self) -> Vec<UnresolvedModel> {
        let mut out = Vec::new();
        for input in &self.inputs {
            let Some(value) = &input.value else { continue };
            for name in value.unresolved_model_names() {
                out.push(UnresolvedModel {
                    system_name: input.system_name.clone(),
                    user_name: input.user_name.clone(),
                    model_name: name.to_string(),
                    model_types: match input.ty() {
                        InkType::Model(t) => t.clone(),
                        InkType::Collection(item) | InkType::OneOrMany(item) => match &**item {
                            InkType::Model(t) => t.clone(),
                            _ => Vec::new(),
                        },
                        _ => Vec::new(),
                    },
                });
            }
        }
        out
    }

    /// The nodes whose images or videos are the workflow's outputs.
    #[must_use]
    pub fn outputs(&self) -> Vec<OutputNode> {
        outputs::output_nodes(&self.definition, &self.schemas)
    }

    /// The graph the server runs, with the values set so far.
    #[must_use]
    pub fn to_graph(&self, options: &ConvertOptions) -> Graph {
        graph::build_graph(&self.definition, options.board.as_deref())
    }

    /// The batch the web UI would enqueue: the graph, the batch data of batch nodes, and the
    /// workflow itself (embedded in the outputs' metadata).
    ///
    /// # Errors
    /// [`WorkflowError::UnresolvedModels`] when model inputs were given by name,
    /// [`WorkflowError::Batch`] when a batch node cannot be expanded.
    pub fn to_batch(&self, options: &ConvertOptions) -> Result<Batch, WorkflowError> {
        let unresolved = self.unresolved_models();
        if !unresolved.is_empty() {
            return Err(WorkflowError::UnresolvedModels {
                inputs: unresolved
                    .iter()
                    .map(|u| format!("{} = `{}`", u.system_name, u.model_name))
                    .collect(),
            });
        }
        Ok(Batch {
            batch_id: options.batch_id.clone(),
            origin: options.origin.clone(),
            destination: options.destination.clone(),
            data: graph::batch_data(&self.definition)?,
            graph: self.to_graph(options),
            workflow: options.embed_workflow.then(|| self.embedded_workflow()),
            runs: options.runs.max(1),
        })
    }

    /// The body of `enqueue_batch`.
    ///
    /// # Errors
    /// As [`Workflow::to_batch`].
    pub fn to_enqueue(&self, options: &ConvertOptions) -> Result<EnqueueBatch, WorkflowError> {
        Ok(EnqueueBatch {
            batch: self.to_batch(options)?,
            prepend: options.prepend,
        })
    }

    /// The workflow as the web UI embeds it in a batch: without its library `id`, and with the
    /// fields the server requires (`WorkflowWithoutID`) present.
    #[must_use]
    pub fn embedded_workflow(&self) -> Value {
        let mut json = self.definition.to_json();
        if let Value::Object(map) = &mut json {
            map.remove("id");
            for key in definition::TEXT_FIELDS {
                if !map.get(key).is_some_and(Value::is_string) {
                    map.insert(key.into(), Value::String(String::new()));
                }
            }
            map.entry("exposedFields")
                .or_insert_with(|| Value::Array(Vec::new()));
            map.entry("meta").or_insert_with(|| {
                let mut meta = Map::new();
                meta.insert("version".into(), "3.0.0".into());
                meta.insert("category".into(), "user".into());
                Value::Object(meta)
            });
        }
        json
    }
}
