//! `/api/v2/models`: installed models, and resolving a model name to the identifier nodes take.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::workflows::closest;
use super::{Body, Client, ClientError, Replay};

/// An installed model (the fields every kind of model has).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ModelConfig {
    /// Key: the only thing the server uses to find the model (differs between installs).
    pub key: String,
    /// Hash (`blake3:...`).
    #[serde(default)]
    pub hash: String,
    /// Name (not unique).
    pub name: String,
    /// Base architecture (`sd-1`, `sdxl`, `flux`, ...).
    pub base: String,
    /// Kind (`main`, `vae`, `lora`, `t5_encoder`, ...).
    #[serde(rename = "type")]
    pub model_type: String,
    /// File format (`checkpoint`, `diffusers`, ...).
    #[serde(default)]
    pub format: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
}

impl ModelConfig {
    /// The identifier a model input of a node takes.
    #[must_use]
    pub fn identifier(&self) -> ModelIdentifier {
        ModelIdentifier {
            key: self.key.clone(),
            hash: self.hash.clone(),
            name: self.name.clone(),
            base: self.base.clone(),
            model_type: self.model_type.clone(),
            submodel_type: None,
        }
    }
}

pub use crate::workflow::ModelIdentifier;

/// Filters of [`ModelsHandler::list`]; the default lists every model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelFilter {
    /// Only these bases (any of them).
    pub bases: Vec<String>,
    /// Only this kind.
    pub model_type: Option<String>,
    /// Only this exact name.
    pub name: Option<String>,
}

#[derive(Deserialize)]
struct ModelList {
    models: Vec<ModelConfig>,
}

/// Installed models (`client.models()`).
#[derive(Debug, Clone, Copy)]
pub struct ModelsHandler<'c> {
    client: &'c Client,
}

impl<'c> ModelsHandler<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        ModelsHandler { client }
    }

    /// Installed models, by name.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn list(&self, filter: &ModelFilter) -> Result<Vec<ModelConfig>, ClientError> {
        let mut url = self.client.endpoint(&["api", "v2", "models", ""]);
        {
            let mut q = url.query_pairs_mut();
            for base in &filter.bases {
                q.append_pair("base_models", base);
            }
            if let Some(model_type) = &filter.model_type {
                q.append_pair("model_type", model_type);
            }
            if let Some(name) = &filter.name {
                q.append_pair("model_name", name);
            }
        }
        let list: ModelList = self
            .client
            .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
            .await?;
        Ok(list.models)
    }

    /// One installed model, by key.
    ///
    /// # Errors
    /// `404` when no installed model has this key, or any other [`ClientError`].
    pub async fn get(&self, key: &str) -> Result<ModelConfig, ClientError> {
        let url = self.client.endpoint(&["api", "v2", "models", "i", key]);
        self.client
            .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
            .await
    }

    /// Resolves a model name (optionally narrowed by base and kind) to its identifier. Names are
    /// not unique: an exact name wins over a case-insensitive one, and `base`/`model_type` narrow
    /// the matches down.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] listing the closest installed models (or none) when nothing
    /// matches, [`ClientError::Ambiguous`] listing the matches when several remain, or any
    /// other [`ClientError`].
    pub async fn resolve(
        &self,
        name: &str,
        base: Option<&str>,
        model_type: Option<&str>,
    ) -> Result<ModelIdentifier, ClientError> {
        let all = self.list(&ModelFilter::default()).await?;
        pick_model(&all, name, base, model_type.as_slice()).map(ModelConfig::identifier)
    }
}

pub(crate) fn describe(model: &ModelConfig) -> String {
    format!(
        "`{}` ({}, {}, key `{}`)",
        model.name, model.base, model.model_type, model.key
    )
}

/// The one model of `all` that `name`, `base` and `model_types` (any of them; empty: any type)
/// designate.
pub(crate) fn pick_model<'m>(
    all: &'m [ModelConfig],
    name: &str,
    base: Option<&str>,
    model_types: &[&str],
) -> Result<&'m ModelConfig, ClientError> {
    let fits = |m: &&ModelConfig| {
        base.is_none_or(|b| m.base == b)
            && (model_types.is_empty() || model_types.contains(&m.model_type.as_str()))
    };
    let exact: Vec<&ModelConfig> = all.iter().filter(|m| m.name == name).filter(fits).collect();
    let matches = if exact.is_empty() {
        all.iter()
            .filter(|m| m.name.eq_ignore_ascii_case(name))
            .filter(fits)
            .collect()
    } else {
        exact
    };
    let within = within(base, model_types);
    match matches.as_slice() {
        [one] => Ok(one),
        [] => {
            let candidates: Vec<&ModelConfig> = all.iter().filter(fits).collect();
            let pool = if candidates.is_empty() {
                all.iter().collect()
            } else {
                candidates
            };
            let names = closest(name, pool.iter().map(|m| m.name.as_str()));
            let described = names
                .iter()
                .filter_map(|quoted| pool.iter().find(|m| format!("`{}`", m.name) == *quoted))
                .map(|m| describe(m))
                .collect();
            Err(ClientError::NotFound {
                kind: "model",
                query: name.to_owned(),
                within,
                candidates: described,
            })
        }
        many => Err(ClientError::Ambiguous {
            kind: "model",
            query: name.to_owned(),
            candidates: many.iter().map(|m| describe(m)).collect(),
        }),
    }
}

/// ` among the `BASE` `TYPE` models` (or less), for messages.
pub(crate) fn within(base: Option<&str>, model_types: &[&str]) -> String {
    let types = model_types
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(" or ");
    match (base, types.is_empty()) {
        (None, true) => String::new(),
        (Some(b), true) => format!(" among the `{b}` models"),
        (None, false) => format!(" among the {types} models"),
        (Some(b), false) => format!(" among the `{b}` {types} models"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(key: &str, name: &str, base: &str, model_type: &str) -> ModelConfig {
        ModelConfig {
            key: key.into(),
            hash: format!("blake3:{key}"),
            name: name.into(),
            base: base.into(),
            model_type: model_type.into(),
            format: None,
            description: None,
        }
    }

    #[test]
    fn names_resolve_exactly_then_by_base_and_type() {
        let all = [
            model("k1", "Juggernaut XL", "sdxl", "main"),
            model("k2", "FLUX Dev", "flux", "main"),
            model("k3", "FLUX Dev", "flux", "lora"),
            model("k4", "flux dev", "flux", "vae"),
        ];
        assert_eq!(
            pick_model(&all, "Juggernaut XL", None, &[])
                .expect("unique")
                .key,
            "k1"
        );
        assert_eq!(
            pick_model(&all, "juggernaut xl", None, &[])
                .expect("case-insensitive")
                .key,
            "k1"
        );
        assert_eq!(
            pick_model(&all, "FLUX Dev", None, &["main"])
                .expect("by type")
                .key,
            "k2"
        );
        assert_eq!(
            pick_model(&all, "flux dev", Some("flux"), &[])
                .expect("exact wins")
                .key,
            "k4"
        );
        let ambiguous = pick_model(&all, "FLUX Dev", None, &[]).expect_err("two");
        assert_eq!(
            ambiguous.to_string(),
            "2 models are named `FLUX Dev`; use an id instead; candidates: `FLUX Dev` (flux, main, key `k2`), \
             `FLUX Dev` (flux, lora, key `k3`)"
        );
        let missing = pick_model(&all, "Juggernaut", Some("sdxl"), &["main"]).expect_err("none");
        assert_eq!(
            missing.to_string(),
            "no model has the id or name `Juggernaut` among the `sdxl` `main` models; known: `Juggernaut XL` (sdxl, main, key `k1`)"
        );
        let nothing = pick_model(&[], "anything", None, &[]).expect_err("empty");
        assert_eq!(
            nothing.to_string(),
            "no model has the id or name `anything`; there are none"
        );
    }
}
