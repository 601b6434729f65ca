//! A table of the inputs of `tests/fixtures/manifests/workflows/flux-image-to-image.json` (a real
//! export of the web UI, with the image input emptied), for checking manifests without the
//! workflow core.

use invk_run::manifest::{CatalogError, InputCatalog, InputInfo, InputKind, did_you_mean};
use serde_json::{Value, json};

#[derive(Clone, Copy)]
enum Rule {
    Text,
    Integer,
    Float { min: f64, max: f64 },
    Model,
    Board,
    Image,
}

const INPUTS: &[(&str, &str, Rule)] = &[
    (
        "f8d9d7c8-9ed7-4bd7-9e42-ab0e89bfac90.model",
        "Model (dev variant recommended for Image-to-Image)",
        Rule::Model,
    ),
    (
        "7b056f05-a4fe-40d3-b913-1a4b3897230f.image",
        "image",
        Rule::Image,
    ),
    (
        "f8d9d7c8-9ed7-4bd7-9e42-ab0e89bfac90.t5_encoder_model",
        "t5_encoder_model",
        Rule::Model,
    ),
    (
        "f8d9d7c8-9ed7-4bd7-9e42-ab0e89bfac90.clip_embed_model",
        "clip_embed_model",
        Rule::Model,
    ),
    (
        "f8d9d7c8-9ed7-4bd7-9e42-ab0e89bfac90.vae_model",
        "vae_model",
        Rule::Model,
    ),
    (
        "01f674f8-b3d1-4df1-acac-6cb8e0bfb63c.prompt",
        "Positive Prompt",
        Rule::Text,
    ),
    (
        "e87ba3b6-c98f-4644-903a-e13c421f2add.prompt",
        "Negative Prompt",
        Rule::Text,
    ),
    (
        "9c773392-5647-4f2b-958e-9da1707b6e6a.num_steps",
        "num_steps",
        Rule::Integer,
    ),
    (
        "9c773392-5647-4f2b-958e-9da1707b6e6a.denoising_start",
        "denoising_start",
        Rule::Float { min: 0.0, max: 1.0 },
    ),
    (
        "7e5172eb-48c1-44db-a770-8fd83e1435d1.board",
        "board",
        Rule::Board,
    ),
];

/// The flux image-to-image workflow's inputs.
pub struct FluxCatalog;

fn info(index: usize) -> InputInfo {
    let (system, user, rule) = INPUTS[index];
    let kind = match rule {
        Rule::Model => InputKind::Model,
        Rule::Board => InputKind::Board,
        Rule::Image => InputKind::Image,
        _ => InputKind::Other,
    };
    InputInfo {
        index,
        system_name: system.into(),
        user_name: user.into(),
        kind,
        batchable: !matches!(rule, Rule::Model | Rule::Board),
    }
}

fn found(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string {s:?}"),
        other => other.to_string(),
    }
}

impl InputCatalog for FluxCatalog {
    fn resolve(&self, key: &str) -> Result<InputInfo, CatalogError> {
        if let Some(n) = key.strip_prefix('#') {
            return match n.parse::<usize>() {
                Ok(i) if i < INPUTS.len() => Ok(info(i)),
                _ => Err(
                    CatalogError::new(format!("no input `{key}`")).with_hint(format!(
                        "the workflow has inputs #0 to #{}",
                        INPUTS.len() - 1
                    )),
                ),
            };
        }
        if let Some(i) = INPUTS.iter().position(|(s, u, _)| *s == key || *u == key) {
            return Ok(info(i));
        }
        let names = INPUTS.iter().flat_map(|(s, u, _)| [*u, *s]);
        let hint = did_you_mean(key, names)
            .unwrap_or_else(|| "list the inputs with `invk-run inputs WORKFLOW`".into());
        Err(CatalogError::new(format!("unknown input `{key}`")).with_hint(hint))
    }

    fn check(&self, input: &InputInfo, value: &Value) -> Result<Value, CatalogError> {
        let rule = INPUTS[input.index].2;
        let number = |v: &Value| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match rule {
            Rule::Text => match value {
                Value::String(_) => Ok(value.clone()),
                other => Err(CatalogError::new(format!(
                    "expected a string, found {}",
                    found(other)
                ))),
            },
            Rule::Integer => match number(value) {
                Some(x) if x.fract() == 0.0 => Ok(json!(x as i64)),
                _ => Err(CatalogError::new(format!(
                    "expected an integer, found {}",
                    found(value)
                ))),
            },
            Rule::Float { min, max } => match number(value) {
                Some(x) if x < min => Err(CatalogError::new(format!(
                    "{x} is less than the minimum {min}"
                ))),
                Some(x) if x > max => Err(CatalogError::new(format!(
                    "{x} is more than the maximum {max}"
                ))),
                Some(x) => Ok(json!(x)),
                None => Err(CatalogError::new(format!(
                    "expected a number, found {}",
                    found(value)
                ))),
            },
            Rule::Model => match value {
                Value::String(_) => Ok(value.clone()),
                Value::Object(m) if m.get("key").is_some_and(Value::is_string) => Ok(value.clone()),
                other => Err(CatalogError::new(format!(
                    "expected a model name or `{{key: KEY}}`, found {}",
                    found(other)
                ))),
            },
            Rule::Board => match value {
                Value::String(s) => Ok(json!({ "board_id": s })),
                Value::Object(m) if m.get("board_id").is_some_and(Value::is_string) => {
                    Ok(value.clone())
                }
                other => Err(CatalogError::new(format!(
                    "expected a board id, found {}",
                    found(other)
                ))),
            },
            Rule::Image => match value {
                Value::Object(m) if m.get("image_name").is_some_and(Value::is_string) => {
                    Ok(value.clone())
                }
                other => Err(CatalogError::new(format!(
                    "expected a local path or `{{image_name: NAME}}`, found {}",
                    found(other)
                ))),
            },
        }
    }

    fn missing_required(&self) -> Vec<String> {
        vec![INPUTS[1].0.to_owned()]
    }
}
