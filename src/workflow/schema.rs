//! Invocation schemas: for each node type, its input fields (type, constraints, whether
//! required) and what its output carries (images, videos). Read from a server's
//! `/openapi.json`, or from the snapshot shipped in `schemas/` for offline use.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::WorkflowError;
use super::ink::{Constraints, InkType};

/// The InvokeAI version of the shipped snapshot.
pub const SNAPSHOT_VERSION: &str = "6.14.2";

/// The shipped snapshot as read ([`SchemaSet`]'s own JSON, written from the trimmed OpenAPI
/// document `schemas/invocations-VERSION.json` by a test, which also checks that the two agree):
/// reading it makes the set and nothing else, where the OpenAPI document would first be a tree of
/// JSON values several times its size.
const SNAPSHOT_SET: &str = include_str!("../../schemas/schema-set-6.14.2.json");

/// How a field gets its value (`input` in the schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// Only typed in (no connection).
    Direct,
    /// Only from a connection.
    Connection,
    /// Either.
    Any,
}

/// One input field of an invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldSchema {
    /// Field name.
    pub name: String,
    /// Its type.
    pub ty: InkType,
    /// Whether `null` is a valid value.
    #[serde(default)]
    pub nullable: bool,
    /// Numeric and length constraints.
    #[serde(default)]
    pub constraints: Constraints,
    /// `input` or `internal` (board, metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_kind: Option<String>,
    /// How the field gets its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<InputKind>,
    /// Whether the node needs a value (or connection) here to run.
    #[serde(default)]
    pub orig_required: bool,
    /// The UI's type hint (`SchedulerField`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui_type: Option<String>,
    /// The default value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
}

/// What an invocation's output carries, from its output schema.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputSchema {
    /// The output class (`ImageOutput`, ...).
    pub name: String,
    /// Output fields holding an image or a list of images.
    #[serde(default)]
    pub image_fields: Vec<String>,
    /// Output fields holding a video or a list of videos.
    #[serde(default)]
    pub video_fields: Vec<String>,
    /// Every output field with its type (to check the edges that leave it).
    #[serde(default)]
    pub fields: Vec<OutputField>,
}

/// One output field of an invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputField {
    /// Field name.
    pub name: String,
    /// Its type.
    pub ty: InkType,
    /// Whether it may be `null`.
    #[serde(default)]
    pub nullable: bool,
}

/// The schema of one node type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationSchema {
    /// The invocation type (`save_image`).
    pub type_name: String,
    /// Its title (`Save Image`).
    #[serde(default)]
    pub title: String,
    /// Input fields, in schema order (without `id`, `type`, `is_intermediate`, `use_cache`).
    pub fields: Vec<FieldSchema>,
    /// Its output.
    pub output: OutputSchema,
}

impl InvocationSchema {
    /// The input field with this name.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The output field with this name.
    #[must_use]
    pub fn output_field(&self, name: &str) -> Option<&OutputField> {
        self.output.fields.iter().find(|f| f.name == name)
    }

    /// Whether the output carries an image or a video.
    #[must_use]
    pub fn produces_files(&self) -> bool {
        !self.output.image_fields.is_empty() || !self.output.video_fields.is_empty()
    }
}

/// The invocation schemas of one server version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaSet {
    /// The InvokeAI version, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    invocations: BTreeMap<String, InvocationSchema>,
}

impl SchemaSet {
    /// The schemas shipped with this crate (InvokeAI [`SNAPSHOT_VERSION`]), for offline use.
    ///
    /// Parsed when asked for and shared while anyone holds it; the last holder to let go frees
    /// it (about 1 MB). A run checks its manifest with it before it asks a server, and what it
    /// checked keeps what it needs of the schemas, so the run does not carry the whole set to
    /// its end. Asked for again later, it is parsed again (a few milliseconds).
    ///
    /// # Panics
    /// Never in a released build: a test reads the snapshot.
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn snapshot() -> Arc<SchemaSet> {
        static HELD: Mutex<Weak<SchemaSet>> = Mutex::new(Weak::new());
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(set) = held.upgrade() {
            return set;
        }
        let set: SchemaSet = serde_json::from_str(SNAPSHOT_SET)
            .expect("invariant: the shipped snapshot is a schema set");
        let set = Arc::new(set);
        *held = Arc::downgrade(&set);
        set
    }

    /// Reads the invocation schemas of an OpenAPI document (a server's `/openapi.json`, or a
    /// trimmed snapshot of one).
    ///
    /// # Errors
    /// [`WorkflowError::Schema`] when `components.schemas` or `InvocationOutputMap` is missing.
    pub fn from_openapi(openapi: &Value) -> Result<SchemaSet, WorkflowError> {
        let err = |message: &str| WorkflowError::Schema {
            source_name: "the OpenAPI document".to_string(),
            message: message.into(),
        };
        let components = openapi
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .ok_or_else(|| err("it has no `components.schemas`"))?;
        let output_map = components
            .get("InvocationOutputMap")
            .and_then(|m| m.get("properties"))
            .and_then(Value::as_object)
            .ok_or_else(|| err("it has no `components.schemas.InvocationOutputMap`"))?;
        let reader = Reader { components };
        let mut invocations = BTreeMap::new();
        for schema in components.values() {
            if schema.get("class").and_then(Value::as_str) != Some("invocation") {
                continue;
            }
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                continue;
            };
            let Some(type_name) = props
                .get("type")
                .and_then(|t| t.get("const").or_else(|| t.get("default")))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let fields = props
                .iter()
                .filter(|(name, p)| {
                    !matches!(
                        name.as_str(),
                        "id" | "type" | "is_intermediate" | "use_cache"
                    ) && p.get("field_kind").and_then(Value::as_str) != Some("node_attribute")
                })
                .map(|(name, p)| reader.field(name, p))
                .collect();
            let output_ref = output_map
                .get(type_name)
                .or_else(|| schema.get("output"))
                .and_then(|o| o.get("$ref"))
                .and_then(Value::as_str);
            let output = output_ref.map(|r| reader.output(r)).unwrap_or_default();
            invocations.insert(
                type_name.to_string(),
                InvocationSchema {
                    type_name: type_name.to_string(),
                    title: schema
                        .get("title")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    fields,
                    output,
                },
            );
        }
        if invocations.is_empty() {
            return Err(err(
                "it has no invocation schemas (`\"class\": \"invocation\"`)",
            ));
        }
        let version = openapi
            .get("x-invokeai-version")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok(SchemaSet {
            version,
            invocations,
        })
    }

    /// The schemas of the given node types only (those known).
    #[must_use]
    pub fn subset(&self, types: &std::collections::HashSet<&str>) -> SchemaSet {
        SchemaSet {
            version: self.version.clone(),
            invocations: self
                .invocations
                .iter()
                .filter(|(t, _)| types.contains(t.as_str()))
                .map(|(t, s)| (t.clone(), s.clone()))
                .collect(),
        }
    }

    /// The schema of a node type.
    #[must_use]
    pub fn invocation(&self, type_name: &str) -> Option<&InvocationSchema> {
        self.invocations.get(type_name)
    }

    /// Every node type, sorted.
    pub fn invocation_types(&self) -> impl Iterator<Item = &str> {
        self.invocations.keys().map(String::as_str)
    }

    /// How many node types there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.invocations.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.invocations.is_empty()
    }
}

struct Reader<'a> {
    components: &'a Map<String, Value>,
}

fn ref_name(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

impl Reader<'_> {
    fn field(&self, name: &str, p: &Value) -> FieldSchema {
        let (mut ty, nullable) = self.ty(p, 0);
        if let InkType::Model(types) = &mut ty
            && let Some(t) = p.get("ui_model_type").and_then(Value::as_array)
        {
            *types = t
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
        }
        let num = |k: &str| p.get(k).and_then(Value::as_number).cloned();
        let uint = |k: &str| {
            p.get(k)
                .and_then(Value::as_u64)
                .or_else(|| self.items_key(p, k))
        };
        FieldSchema {
            name: name.to_string(),
            ty,
            nullable,
            constraints: Constraints {
                minimum: num("minimum"),
                exclusive_minimum: num("exclusiveMinimum"),
                maximum: num("maximum"),
                exclusive_maximum: num("exclusiveMaximum"),
                multiple_of: num("multipleOf"),
                min_length: uint("minLength"),
                max_length: uint("maxLength"),
                min_items: uint("minItems"),
                max_items: uint("maxItems"),
            },
            field_kind: p
                .get("field_kind")
                .and_then(Value::as_str)
                .map(str::to_string),
            input: p
                .get("input")
                .and_then(|v| serde_json::from_value(v.clone()).ok()),
            orig_required: p
                .get("orig_required")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            ui_type: p.get("ui_type").and_then(Value::as_str).map(str::to_string),
            default: p.get("default").filter(|v| !v.is_null()).cloned(),
        }
    }

    /// `minItems` and friends often sit on the array variant of an `anyOf`.
    fn items_key(&self, p: &Value, key: &str) -> Option<u64> {
        p.get("anyOf")?
            .as_array()?
            .iter()
            .find_map(|v| v.get(key).and_then(Value::as_u64))
    }

    /// The type of a schema fragment and whether it admits null.
    fn ty(&self, p: &Value, depth: usize) -> (InkType, bool) {
        if depth > 8 {
            return (InkType::Any, true);
        }
        if let Some(variants) = p
            .get("anyOf")
            .or_else(|| p.get("oneOf"))
            .and_then(Value::as_array)
        {
            let mut nullable = false;
            let mut types = Vec::new();
            for v in variants {
                if v.get("type").and_then(Value::as_str) == Some("null") {
                    nullable = true;
                    continue;
                }
                let (t, n) = self.ty(v, depth + 1);
                nullable |= n;
                match t {
                    // Flatten nested unions: `(list[T] | T) | None`.
                    InkType::OneOrMany(item) => {
                        types.push(InkType::Collection(item.clone()));
                        types.push(*item);
                    }
                    t => types.push(t),
                }
            }
            types.dedup();
            let ty = match types.as_slice() {
                [] => InkType::Any,
                [one] => one.clone(),
                [a, InkType::Collection(b)] | [InkType::Collection(b), a] if **b == *a => {
                    InkType::OneOrMany(b.clone())
                }
                _ => InkType::Any,
            };
            return (ty, nullable);
        }
        if let Some(all) = p.get("allOf").and_then(Value::as_array)
            && let [one] = all.as_slice()
        {
            return self.ty(one, depth + 1);
        }
        if let Some(r) = p.get("$ref").and_then(Value::as_str) {
            return (self.named(ref_name(r), depth), false);
        }
        if let Some(members) = p.get("enum").and_then(Value::as_array) {
            return (InkType::Enum(members.clone()), false);
        }
        if let Some(c) = p.get("const") {
            return (InkType::Enum(vec![c.clone()]), false);
        }
        let ty = match p.get("type").and_then(Value::as_str) {
            Some("string") => InkType::String,
            Some("integer") => InkType::Integer,
            Some("number") => InkType::Float,
            Some("boolean") => InkType::Boolean,
            Some("array") => {
                let item = p
                    .get("items")
                    .map_or(InkType::Any, |i| self.ty(i, depth + 1).0);
                InkType::Collection(Box::new(item))
            }
            Some("null") => return (InkType::Any, true),
            _ => InkType::Any,
        };
        (ty, false)
    }

    fn named(&self, name: &str, depth: usize) -> InkType {
        match name {
            "ImageField" => InkType::Image,
            "VideoField" => InkType::Video,
            "BoardField" => InkType::Board,
            "ColorField" => InkType::Color,
            "ModelIdentifierField" => InkType::Model(Vec::new()),
            _ => match self.components.get(name) {
                Some(s) if s.get("enum").is_some() => self.ty(s, depth + 1).0,
                _ => InkType::Object(name.to_string()),
            },
        }
    }

    fn output(&self, r: &str) -> OutputSchema {
        let name = ref_name(r);
        let mut out = OutputSchema {
            name: name.to_string(),
            ..OutputSchema::default()
        };
        let props = self
            .components
            .get(name)
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object);
        for (field, p) in props.into_iter().flatten() {
            if field == "type" {
                continue;
            }
            let (ty, nullable) = self.ty(p, 0);
            out.fields.push(OutputField {
                name: field.clone(),
                ty: ty.clone(),
                nullable,
            });
            match ty {
                InkType::Image => out.image_fields.push(field.clone()),
                InkType::Collection(item) | InkType::OneOrMany(item) if *item == InkType::Image => {
                    out.image_fields.push(field.clone());
                }
                InkType::Video => out.video_fields.push(field.clone()),
                InkType::Collection(item) | InkType::OneOrMany(item) if *item == InkType::Video => {
                    out.video_fields.push(field.clone());
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_has_the_core_nodes_with_types_and_constraints() {
        let set = SchemaSet::snapshot();
        assert_eq!(set.version.as_deref(), Some("6.14.2"));
        assert!(set.len() > 250, "{}", set.len());
        let denoise = set.invocation("denoise_latents").expect("denoise_latents");
        let steps = denoise.field("steps").expect("steps");
        assert_eq!(steps.ty, InkType::Integer);
        assert_eq!(steps.constraints.exclusive_minimum, Some(0.into()));
        assert_eq!(steps.input, Some(InputKind::Any));
        let sched = denoise.field("scheduler").expect("scheduler");
        assert!(matches!(&sched.ty, InkType::Enum(m) if m.iter().any(|v| v == "euler")));
        assert_eq!(sched.ui_type.as_deref(), Some("SchedulerField"));
        let cfg = denoise.field("cfg_scale").expect("cfg");
        assert_eq!(cfg.ty, InkType::OneOrMany(Box::new(InkType::Float)));
        assert_eq!(denoise.output.name, "LatentsOutput");
        assert!(!denoise.produces_files());

        let save = set.invocation("save_image").expect("save_image");
        assert_eq!(save.field("image").expect("image").ty, InkType::Image);
        assert!(save.field("image").expect("image").orig_required);
        assert_eq!(save.field("board").expect("board").ty, InkType::Board);
        assert_eq!(save.output.image_fields, ["image"]);
        let model = set
            .invocation("main_model_loader")
            .expect("loader")
            .field("model")
            .expect("model");
        assert_eq!(model.ty, InkType::Model(vec!["main".into()]));
        let generator = set
            .invocation("integer_generator")
            .expect("generator nodes are not named *Invocation");
        assert!(generator.field("generator").is_some());
        assert!(
            set.invocation("wan_l2v")
                .expect("wan_l2v")
                .output
                .video_fields
                .contains(&"video".to_string())
        );
    }

    #[test]
    fn schema_set_round_trips_through_serde() {
        let set = SchemaSet::snapshot();
        let text = serde_json::to_string(&*set).expect("serialise");
        let back: SchemaSet = serde_json::from_str(&text).expect("deserialise");
        assert!(back == *set, "the schema set changed through serde");
    }

    /// The shipped set is what reading the shipped OpenAPI snapshot gives. After
    /// `scripts/snapshot-schema` wrote a new snapshot, `INVK_WRITE_SCHEMA_SET=1 cargo test --lib
    /// shipped_set` writes the set again.
    #[test]
    fn the_shipped_set_is_the_openapi_snapshot_read() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let openapi = dir.join(format!("invocations-{SNAPSHOT_VERSION}.json"));
        let text = fs_err::read_to_string(&openapi).expect("the OpenAPI snapshot");
        let doc: Value = serde_json::from_str(&text).expect("JSON");
        let mut read = SchemaSet::from_openapi(&doc).expect("schemas");
        read.version = Some(SNAPSHOT_VERSION.to_string());
        let written = serde_json::to_string(&read).expect("serialise") + "\n";
        let set = dir.join(format!("schema-set-{SNAPSHOT_VERSION}.json"));
        if std::env::var_os("INVK_WRITE_SCHEMA_SET").is_some() {
            fs_err::write(&set, &written).expect("write the set");
        }
        assert!(
            written == SNAPSHOT_SET,
            "{} is not {} as read: run `INVK_WRITE_SCHEMA_SET=1 cargo test --lib shipped_set`",
            set.display(),
            openapi.display()
        );
        assert!(*SchemaSet::snapshot() == read);
    }

    #[test]
    fn the_snapshot_is_parsed_once_while_it_is_held() {
        let first = SchemaSet::snapshot();
        let again = SchemaSet::snapshot();
        assert!(Arc::ptr_eq(&first, &again), "parsed twice while held");
    }

    #[test]
    fn a_document_without_invocations_is_refused() {
        let e =
            SchemaSet::from_openapi(&serde_json::json!({"components": {}})).expect_err("refused");
        assert_eq!(
            e.to_string(),
            "cannot read invocation schemas from the OpenAPI document: it has no `components.schemas`"
        );
    }
}
