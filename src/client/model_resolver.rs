//! The one model resolver of the runner and the [`super::WorkflowHandle`]: a model given by
//! name (or by key alone) becomes the full identifier a node takes, narrowed by the model types
//! the field accepts (a `main` field and a `vae` field can name models of the same name), with a
//! cache that lives as long as the resolver (a run, or one `resolve_models` of a handle): the
//! installed models are listed once, and each reference is resolved once per field type.

use std::collections::HashMap;

use serde_json::Value;

use super::models::{ModelConfig, ModelFilter, ModelIdentifier, describe, pick_model, within};
use super::{Client, ClientError};
use crate::workflow::InkType;

/// A model given by name or by key alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModelRef {
    /// By name (exact first, then case-insensitive).
    Name(String),
    /// By key.
    Key(String),
}

impl ModelRef {
    /// The reference a model value holds, when it still needs the server: a name (a string, or
    /// `{name}` alone) or a key (`{key}` without a hash). A complete identifier needs nothing.
    #[must_use]
    pub fn of(value: &Value) -> Option<ModelRef> {
        match value {
            Value::String(name) => Some(ModelRef::Name(name.clone())),
            Value::Object(map) if !map.contains_key("hash") => {
                if let Some(key) = map.get("key").and_then(Value::as_str) {
                    Some(ModelRef::Key(key.to_owned()))
                } else {
                    map.get("name")
                        .and_then(Value::as_str)
                        .map(|n| ModelRef::Name(n.to_owned()))
                }
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelRef::Name(name) => write!(f, "{name}"),
            ModelRef::Key(key) => write!(f, "key {key}"),
        }
    }
}

/// The model types a field of this type accepts (`main`, `vae`, ...; empty: any, or not a model
/// field), for a single model or a collection of them.
#[must_use]
pub fn field_model_types(ty: &InkType) -> &[String] {
    match ty {
        InkType::Model(types) => types,
        InkType::Collection(item) | InkType::OneOrMany(item) => match &**item {
            InkType::Model(types) => types,
            _ => &[],
        },
        _ => &[],
    }
}

/// Resolves model references against one server, caching what it learnt.
#[derive(Debug, Default, Clone)]
pub struct ModelResolver {
    installed: Option<Vec<ModelConfig>>,
    by_key: HashMap<String, ModelConfig>,
    resolved: HashMap<(ModelRef, Vec<String>), ModelIdentifier>,
}

impl ModelResolver {
    /// An empty resolver.
    #[must_use]
    pub fn new() -> ModelResolver {
        ModelResolver::default()
    }

    /// The identifier `reference` stands for in a field that accepts `model_types` (any type
    /// when empty).
    ///
    /// # Errors
    /// [`ClientError::NotFound`] naming the closest installed models of those types (or a key
    /// whose model is of another type), [`ClientError::Ambiguous`] listing the candidates when
    /// several models of those types have the name, or any other [`ClientError`].
    pub async fn resolve(
        &mut self,
        client: &Client,
        reference: &ModelRef,
        model_types: &[String],
    ) -> Result<ModelIdentifier, ClientError> {
        let cache_key = (reference.clone(), model_types.to_vec());
        if let Some(id) = self.resolved.get(&cache_key) {
            return Ok(id.clone());
        }
        let types: Vec<&str> = model_types.iter().map(String::as_str).collect();
        let config = match reference {
            ModelRef::Name(name) => self.by_name(client, name, None, &types).await?,
            ModelRef::Key(key) => {
                let config = match self.by_key.get(key) {
                    Some(config) => config.clone(),
                    None => {
                        let config = client.models().get(key).await?;
                        self.by_key.insert(key.clone(), config.clone());
                        config
                    }
                };
                if !types.is_empty() && !types.contains(&config.model_type.as_str()) {
                    return Err(ClientError::NotFound {
                        kind: "model",
                        query: key.clone(),
                        within: within(None, &types),
                        candidates: vec![describe(&config)],
                    });
                }
                config
            }
        };
        let id = config.identifier();
        self.resolved.insert(cache_key, id.clone());
        Ok(id)
    }

    /// The identifier of the one installed model named `name` (exact first, then
    /// case-insensitive) of base `base` (any when `None`) and of one of `model_types` (any when
    /// empty): how a model is found on a server whose keys differ from the install a workflow
    /// was made on. Shares the resolver's list of installed models.
    ///
    /// # Errors
    /// As [`ModelResolver::resolve`].
    pub async fn resolve_in_base(
        &mut self,
        client: &Client,
        name: &str,
        base: Option<&str>,
        model_types: &[String],
    ) -> Result<ModelIdentifier, ClientError> {
        let types: Vec<&str> = model_types.iter().map(String::as_str).collect();
        Ok(self.by_name(client, name, base, &types).await?.identifier())
    }

    async fn by_name(
        &mut self,
        client: &Client,
        name: &str,
        base: Option<&str>,
        types: &[&str],
    ) -> Result<ModelConfig, ClientError> {
        if self.installed.is_none() {
            self.installed = Some(client.models().list(&ModelFilter::default()).await?);
        }
        let all = self.installed.as_deref().unwrap_or_default();
        Ok(pick_model(all, name, base, types)?.clone())
    }

    /// What [`ModelResolver::resolve`] gave for `reference` in a field of `model_types`, if it
    /// was asked already.
    #[must_use]
    pub fn get(&self, reference: &ModelRef, model_types: &[String]) -> Option<&ModelIdentifier> {
        self.resolved
            .get(&(reference.clone(), model_types.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_read_from_what_a_manifest_or_a_user_gives() {
        assert_eq!(
            ModelRef::of(&json!("FLUX Dev")),
            Some(ModelRef::Name("FLUX Dev".into()))
        );
        assert_eq!(
            ModelRef::of(&json!({"name": "FLUX Dev"})),
            Some(ModelRef::Name("FLUX Dev".into()))
        );
        assert_eq!(
            ModelRef::of(&json!({"key": "k1"})),
            Some(ModelRef::Key("k1".into()))
        );
        let full = json!({"key": "k1", "hash": "h", "name": "n", "base": "sd-1", "type": "main"});
        assert_eq!(ModelRef::of(&full), None);
        assert_eq!(ModelRef::of(&json!(3)), None);
        let vae = InkType::Model(vec!["vae".into()]);
        assert_eq!(field_model_types(&vae), ["vae"]);
        assert_eq!(
            field_model_types(&InkType::Collection(Box::new(vae))),
            ["vae"]
        );
        assert!(field_model_types(&InkType::Integer).is_empty());
    }
}
