//! The variables of one template render, produced when a template reads them.
//!
//! A [`Scope`] is a minijinja object: `job`, `run`, `sweep`, the sweep keys and the output
//! variables are made from the job's index and values only when a template asks for them, so a
//! render costs what the template reads, not what the manifest defines. [`Scope::to_json`] gives
//! the same variables as a JSON map, for messages.

use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value as MjValue};
use serde_json::{Map, Value, json};

use super::catalog::InputInfo;
use super::job::InputValue;
use super::output::OutputVars;

/// Names the template context defines itself; a sweep key with one of these names is reachable
/// only as `sweep["name"]`.
pub const RESERVED: &[&str] = &[
    "vars", "job", "run", "manifest", "sweep", "node", "image", "item", "batch", "inputs", "date",
    "time", "source",
];

/// The image a manifest runs for (`invk-run watch --each`), as its templates see it
/// (`source.name`, `source.stem`, `source.dir`, `source.path`).
#[derive(Debug, Clone)]
pub(crate) struct EachImage {
    pub(crate) vars: Value,
}

/// `name`, `stem`, `dir` and `path` of a file, as templates see a manifest (`manifest.*`) or
/// the image of a `--each` run (`source.*`).
pub(crate) fn file_vars(path: &std::path::Path, dir: &std::path::Path) -> Value {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let stem = path
        .file_stem()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    json!({"name": name, "stem": stem, "dir": dir.display().to_string(), "path": path.display().to_string()})
}

/// What every template of a manifest sees alike.
#[derive(Debug)]
pub(crate) struct Shared {
    vars_json: Value,
    manifest_json: Value,
    vars: MjValue,
    manifest: MjValue,
    /// `source`: the image an `invk-run watch --each` run was started for.
    source_json: Option<Value>,
    source: Option<MjValue>,
    runs: u32,
    job_count: usize,
    width: usize,
}

impl Shared {
    pub(crate) fn new(
        vars: Value,
        manifest: Value,
        source: Option<Value>,
        runs: u32,
        job_count: usize,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            vars: MjValue::from_serialize(&vars),
            manifest: MjValue::from_serialize(&manifest),
            source: source.as_ref().map(MjValue::from_serialize),
            source_json: source,
            vars_json: vars,
            manifest_json: manifest,
            runs,
            job_count,
            width: job_count.saturating_sub(1).max(1).to_string().len(),
        })
    }

    /// `job.number` of job `index`: zero-padded to the width of the largest index.
    pub(crate) fn number(&self, index: usize) -> String {
        format!("{index:0width$}", width = self.width)
    }
}

/// A job's input values, and what each input is.
pub(crate) type JobInputs = (
    IndexMap<String, InputValue>,
    Arc<IndexMap<String, InputInfo>>,
);

/// What the runner knows about one produced file, with the template values made once.
#[derive(Debug)]
pub(crate) struct OutputValues {
    vars: OutputVars,
    node: MjValue,
    image: MjValue,
    item: MjValue,
    batch: MjValue,
}

impl OutputValues {
    pub(crate) fn new(vars: OutputVars) -> Arc<OutputValues> {
        Arc::new(OutputValues {
            node: Fields::value(vec![
                ("id", MjValue::from(vars.node_id.as_str())),
                ("label", MjValue::from(vars.node_label.as_str())),
                ("type", MjValue::from(vars.node_type.as_str())),
            ]),
            image: Fields::value(vec![
                ("index", MjValue::from(vars.image_index)),
                ("count", MjValue::from(vars.image_count)),
                ("name", MjValue::from(vars.image_name.as_str())),
            ]),
            item: Fields::value(vec![("id", MjValue::from(vars.item_id))]),
            batch: Fields::value(vec![("id", MjValue::from(vars.batch_id.as_str()))]),
            vars,
        })
    }
}

impl std::ops::Deref for OutputValues {
    type Target = OutputVars;

    fn deref(&self) -> &OutputVars {
        &self.vars
    }
}

/// The output-side variables of a render of `output.dir` or `output.name`.
#[derive(Debug)]
pub(crate) struct OutputScope {
    pub(crate) vars: Arc<OutputValues>,
    /// The job's inputs and what they are (for `inputs["NAME"]`).
    pub(crate) inputs: Option<JobInputs>,
}

/// The variables of one render.
#[derive(Debug)]
pub(crate) struct Scope {
    shared: Arc<Shared>,
    /// Job index and run; `None` for `output.dir`, which is one folder per run.
    job: Option<(usize, u32)>,
    /// The job's sweep values; `None` while the sweep values themselves are rendered.
    sweep: Option<IndexMap<String, Value>>,
    output: Option<OutputScope>,
}

impl Scope {
    /// Variables of every template of job `index` (with its sweep values, when known).
    pub(crate) fn job(
        shared: &Arc<Shared>,
        index: usize,
        run: u32,
        sweep: Option<IndexMap<String, Value>>,
    ) -> Arc<Scope> {
        Arc::new(Scope {
            shared: shared.clone(),
            job: Some((index, run)),
            sweep,
            output: None,
        })
    }

    /// Variables of `output.name` for one file of job `index`.
    pub(crate) fn output(
        shared: &Arc<Shared>,
        index: usize,
        run: u32,
        sweep: IndexMap<String, Value>,
        output: OutputScope,
    ) -> Arc<Scope> {
        Arc::new(Scope {
            shared: shared.clone(),
            job: Some((index, run)),
            sweep: Some(sweep),
            output: Some(output),
        })
    }

    /// Variables of `output.dir`: `vars`, `manifest`, `date` and `time`.
    pub(crate) fn run_level(shared: &Arc<Shared>, vars: Arc<OutputValues>) -> Arc<Scope> {
        Arc::new(Scope {
            shared: shared.clone(),
            job: None,
            sweep: None,
            output: Some(OutputScope { vars, inputs: None }),
        })
    }

    fn run_value(&self) -> Option<MjValue> {
        let (_, run) = self.job?;
        let mut fields = vec![
            ("index", MjValue::from(run)),
            ("count", MjValue::from(self.shared.runs)),
        ];
        if let Some(o) = &self.output {
            fields.push(("id", MjValue::from(o.vars.run_id.as_str())));
        }
        Some(Fields::value(fields))
    }

    fn output_value(&self, key: &str) -> Option<MjValue> {
        let o = self.output.as_ref()?;
        let v = &o.vars;
        let per_file = self.job.is_some();
        Some(match key {
            "date" => MjValue::from(v.date.as_str()),
            "time" => MjValue::from(v.time.as_str()),
            "node" if per_file => v.node.clone(),
            "image" if per_file => v.image.clone(),
            "item" if per_file => v.item.clone(),
            "batch" if per_file => v.batch.clone(),
            "inputs" => MjValue::from_serialize(inputs_by_name(o.inputs.as_ref()?)),
            _ => return None,
        })
    }

    /// The names this scope defines, in the order messages list them.
    fn names(&self) -> Vec<String> {
        self.to_json().keys().cloned().collect()
    }

    /// The same variables as a JSON map (for messages: which name is undefined, what is close).
    pub(crate) fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("vars".into(), self.shared.vars_json.clone());
        if let Some((index, run)) = self.job {
            m.insert(
                "job".into(),
                json!({"index": index, "number": self.shared.number(index), "count": self.shared.job_count}),
            );
            m.insert(
                "run".into(),
                json!({"index": run, "count": self.shared.runs}),
            );
        }
        m.insert("manifest".into(), self.shared.manifest_json.clone());
        if let Some(source) = &self.shared.source_json {
            m.insert("source".into(), source.clone());
        }
        if let Some(sweep) = &self.sweep {
            for (k, v) in sweep {
                if !RESERVED.contains(&k.as_str()) {
                    m.insert(k.clone(), v.clone());
                }
            }
            m.insert(
                "sweep".into(),
                Value::Object(sweep.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            );
        }
        if let Some(o) = &self.output {
            let v = &o.vars;
            if self.job.is_some() {
                m.insert(
                    "node".into(),
                    json!({"id": v.node_id, "label": v.node_label, "type": v.node_type}),
                );
                m.insert(
                    "image".into(),
                    json!({"index": v.image_index, "count": v.image_count, "name": v.image_name}),
                );
                m.insert("item".into(), json!({"id": v.item_id}));
                m.insert("batch".into(), json!({"id": v.batch_id}));
                if let Some(Value::Object(run)) = m.get_mut("run") {
                    run.insert("id".into(), Value::String(v.run_id.clone()));
                }
            }
            m.insert("date".into(), Value::String(v.date.clone()));
            m.insert("time".into(), Value::String(v.time.clone()));
            if let Some(inputs) = &o.inputs {
                m.insert("inputs".into(), Value::Object(inputs_by_name(inputs)));
            }
        }
        m
    }
}

/// The job's input values by user name and by system name (local images as written).
fn inputs_by_name(
    (inputs, infos): &(
        IndexMap<String, InputValue>,
        Arc<IndexMap<String, InputInfo>>,
    ),
) -> Map<String, Value> {
    let mut by_name = Map::new();
    for (system, value) in inputs {
        let shown = value.display_json();
        if let Some(info) = infos.get(system) {
            by_name.insert(info.user_name.clone(), shown.clone());
        }
        by_name.insert(system.clone(), shown);
    }
    by_name
}

/// A JSON value as a template value (scalars without going through serde).
pub(crate) fn to_template_value(v: &Value) -> MjValue {
    match v {
        Value::Null => MjValue::from(()),
        Value::Bool(b) => MjValue::from(*b),
        Value::String(s) => MjValue::from(s.as_str()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                MjValue::from(i)
            } else if let Some(u) = n.as_u64() {
                MjValue::from(u)
            } else {
                MjValue::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        other => MjValue::from_serialize(other),
    }
}

impl Object for Scope {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &MjValue) -> Option<MjValue> {
        let key = key.as_str()?;
        match key {
            "vars" => Some(self.shared.vars.clone()),
            "manifest" => Some(self.shared.manifest.clone()),
            "source" => self.shared.source.clone(),
            "job" => {
                let (index, _) = self.job?;
                Some(MjValue::from_object(JobVar {
                    index,
                    shared: self.shared.clone(),
                }))
            }
            "run" => self.run_value(),
            "sweep" => {
                self.sweep.as_ref()?;
                Some(MjValue::from_object(SweepView(self.clone())))
            }
            "node" | "image" | "item" | "batch" | "date" | "time" | "inputs" => {
                self.output_value(key)
            }
            other if !RESERVED.contains(&other) => {
                self.sweep.as_ref()?.get(other).map(to_template_value)
            }
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.names().into_iter().map(MjValue::from).collect())
    }
}

/// `sweep`: the job's sweep values by key.
#[derive(Debug)]
struct SweepView(Arc<Scope>);

impl Object for SweepView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &MjValue) -> Option<MjValue> {
        self.0
            .sweep
            .as_ref()?
            .get(key.as_str()?)
            .map(to_template_value)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let keys: Vec<MjValue> = self
            .0
            .sweep
            .iter()
            .flat_map(|s| s.keys().map(|k| MjValue::from(k.as_str())))
            .collect();
        Enumerator::Values(keys)
    }
}

/// A small map of named values (`job`, `run`, `node`...).
#[derive(Debug)]
struct Fields(Vec<(&'static str, MjValue)>);

impl Fields {
    fn value(fields: Vec<(&'static str, MjValue)>) -> MjValue {
        MjValue::from_object(Fields(fields))
    }
}

impl Object for Fields {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &MjValue) -> Option<MjValue> {
        let key = key.as_str()?;
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.0.iter().map(|(k, _)| MjValue::from(*k)).collect())
    }
}

/// `job`: index, number and count, made when read.
#[derive(Debug)]
struct JobVar {
    index: usize,
    shared: Arc<Shared>,
}

impl Object for JobVar {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &MjValue) -> Option<MjValue> {
        match key.as_str()? {
            "index" => Some(MjValue::from(self.index)),
            "number" => Some(MjValue::from(self.shared.number(self.index))),
            "count" => Some(MjValue::from(self.shared.job_count)),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["index", "number", "count"])
    }
}
