//! A job: one execution of the workflow with one set of input values.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;

/// One execution of the workflow: the values of the inputs the manifest sets, after templates and
/// conversion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// Position in the expansion, from 0 (runs are the outer loop).
    pub index: usize,
    /// Which repeat of `runs` this job belongs to, from 0.
    pub run: u32,
    /// Input values by system name (`node_id.field`), in the workflow's input order.
    pub inputs: IndexMap<String, InputValue>,
    /// The sweep values this job was made from, by sweep key as written in the manifest (after
    /// templates), for sidecars and naming.
    pub sweep: IndexMap<String, Value>,
    /// The seeds derived for this job (`{seed: random}` inputs, `{seeds: N}` sweep keys), by the
    /// key as written in the manifest.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub seeds: IndexMap<String, u64>,
}

/// The value of one input in one job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum InputValue {
    /// A value as the workflow takes it (number, string, `{image_name}`, model identifier...).
    Value(#[serde(serialize_with = "serialize_value")] ValueKey),
    /// A local image file: the runner uploads it and uses `{"image_name": NAME}` instead.
    LocalImage(LocalImage),
}

/// A JSON value that can be compared and hashed (for grouping jobs into enqueues): two values
/// are equal when their JSON texts are.
#[derive(Debug, Clone)]
pub struct ValueKey {
    value: Value,
    canonical: std::sync::Arc<str>,
}

impl PartialEq for ValueKey {
    fn eq(&self, other: &ValueKey) -> bool {
        self.canonical == other.canonical
    }
}

impl Eq for ValueKey {}

impl std::hash::Hash for ValueKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.canonical.hash(state);
    }
}

impl ValueKey {
    /// Wraps a value.
    #[must_use]
    pub fn new(value: Value) -> ValueKey {
        let canonical = value.to_string().into();
        ValueKey { value, canonical }
    }

    /// The value.
    #[must_use]
    pub fn get(&self) -> &Value {
        &self.value
    }
}

fn serialize_value<S: serde::Serializer>(v: &ValueKey, s: S) -> Result<S::Ok, S::Error> {
    v.value.serialize(s)
}

impl InputValue {
    /// A plain value.
    #[must_use]
    pub fn value(v: Value) -> InputValue {
        InputValue::Value(ValueKey::new(v))
    }

    /// The plain value, unless this is a local image.
    #[must_use]
    pub fn as_value(&self) -> Option<&Value> {
        match self {
            InputValue::Value(v) => Some(v.get()),
            InputValue::LocalImage(_) => None,
        }
    }

    /// The local image, if this is one.
    #[must_use]
    pub fn as_local_image(&self) -> Option<&LocalImage> {
        match self {
            InputValue::LocalImage(i) => Some(i),
            InputValue::Value(_) => None,
        }
    }

    /// The value to send, with local images replaced by `{"image_name": image_name(image)}`.
    #[must_use]
    pub fn to_json(&self, image_name: &impl Fn(&LocalImage) -> String) -> Value {
        match self {
            InputValue::Value(v) => v.get().clone(),
            InputValue::LocalImage(i) => serde_json::json!({ "image_name": image_name(i) }),
        }
    }

    /// The value as shown to users and in sidecars: local images as the path written in the
    /// manifest.
    #[must_use]
    pub fn display_json(&self) -> Value {
        match self {
            InputValue::Value(v) => v.get().clone(),
            InputValue::LocalImage(i) => Value::String(i.written.clone()),
        }
    }
}

/// A local image file named in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct LocalImage {
    /// The path as written (or as a glob produced it), relative to the manifest's folder.
    #[serde(rename = "local_image")]
    pub written: String,
    /// The file: the manifest's folder joined with `written`.
    #[serde(skip)]
    pub path: PathBuf,
}
