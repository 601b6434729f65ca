//! Listing and setting a handle's inputs, uploading images for them, and resolving model
//! names against the server.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde_json::{Value, json};

use super::{HandleError, WorkflowHandle};
use crate::client::images::UploadOptions;
use crate::client::model_resolver::{ModelRef, ModelResolver};
use crate::workflow::{InkType, InkValue, InputError, InputRef, InputSummary, WorkflowInput};

impl WorkflowHandle {
    /// The inputs (the form's fields), in form order: index, user name, system name, type,
    /// whether required, current value.
    #[must_use]
    pub fn inputs(&self) -> &[WorkflowInput] {
        self.workflow.inputs()
    }

    /// The inputs as table rows (type and value as text or wire JSON).
    #[must_use]
    pub fn input_summaries(&self) -> Vec<InputSummary> {
        self.workflow
            .inputs()
            .iter()
            .map(InputSummary::from)
            .collect()
    }

    /// The inputs by system name (`node_id.field_name`).
    #[must_use]
    pub fn by_system_name(&self) -> BTreeMap<&str, &WorkflowInput> {
        self.workflow.by_system_name()
    }

    /// The inputs by user name.
    ///
    /// # Errors
    /// [`WorkflowError::UserNameCollision`] naming the colliding nodes when user names repeat.
    ///
    /// [`WorkflowError::UserNameCollision`]: crate::workflow::WorkflowError::UserNameCollision
    pub fn by_user_name(&self) -> Result<BTreeMap<&str, &WorkflowInput>, HandleError> {
        Ok(self.workflow.by_user_name()?)
    }

    /// The input a reference (`#index`, `node.field`, user name) names.
    ///
    /// # Errors
    /// [`WorkflowError::UnknownInput`], [`WorkflowError::AmbiguousInput`] or
    /// [`WorkflowError::InputIndexOutOfRange`].
    ///
    /// [`WorkflowError::UnknownInput`]: crate::workflow::WorkflowError::UnknownInput
    /// [`WorkflowError::AmbiguousInput`]: crate::workflow::WorkflowError::AmbiguousInput
    /// [`WorkflowError::InputIndexOutOfRange`]: crate::workflow::WorkflowError::InputIndexOutOfRange
    pub fn input(&self, input: impl Into<InputRef>) -> Result<&WorkflowInput, HandleError> {
        Ok(self.workflow.input(&input.into())?)
    }

    /// Sets an input by user name, system name or index (`"#2"` or `2`). The value is checked
    /// and converted (`"30"` into an integer field is 30); a model field also takes a model
    /// name, resolved against the server's models by [`WorkflowHandle::resolve_models`] (which
    /// [`WorkflowHandle::submit`] calls).
    ///
    /// # Errors
    /// As [`WorkflowHandle::input`], or [`WorkflowError::InvalidValue`] naming the input, the
    /// value and the rule; nothing is changed then.
    ///
    /// [`WorkflowError::InvalidValue`]: crate::workflow::WorkflowError::InvalidValue
    pub fn set(
        &mut self,
        input: impl Into<InputRef>,
        value: impl Into<Value>,
    ) -> Result<(), HandleError> {
        Ok(self.workflow.set(&input.into(), value.into())?)
    }

    /// Uploads a local image through the images API and sets the image input to it. The image
    /// is remembered, and deleted by [`WorkflowHandle::cleanup`] with `uploads`. Returns the
    /// server's image name.
    ///
    /// # Errors
    /// As [`WorkflowHandle::input`]; [`HandleError::NotAnImageInput`] when the input takes no
    /// image (nothing is uploaded then); [`ClientError::NotAnImage`] or
    /// [`ClientError::File`] for the file; or any other [`ClientError`].
    ///
    /// [`ClientError::NotAnImage`]: crate::client::ClientError::NotAnImage
    /// [`ClientError::File`]: crate::client::ClientError::File
    /// [`ClientError`]: crate::client::ClientError
    pub async fn set_image_file(
        &mut self,
        input: impl Into<InputRef>,
        path: impl AsRef<Path>,
    ) -> Result<String, HandleError> {
        let r = input.into();
        let target = self.workflow.input(&r)?;
        if !matches!(target.ty(), InkType::Image | InkType::Any) {
            return Err(HandleError::NotAnImageInput {
                workflow: self.name().to_owned(),
                input: target.system_name.clone(),
                ty: target.ty().to_string(),
            });
        }
        let dto = self
            .client
            .images()
            .upload(path.as_ref(), &UploadOptions::default())
            .await?;
        self.uploads.push(dto.image_name.clone());
        self.workflow
            .set(&r, json!({ "image_name": dto.image_name }))?;
        Ok(dto.image_name)
    }

    /// The images this handle uploaded (and has not deleted yet).
    #[must_use]
    pub fn uploads(&self) -> &[String] {
        &self.uploads
    }

    /// Every input problem at once: values that do not fit, required inputs without a value.
    #[must_use]
    pub fn validate_inputs(&self) -> Vec<InputError> {
        self.workflow.validate_inputs()
    }

    /// System names of required inputs that still lack a value.
    #[must_use]
    pub fn missing_required_inputs(&self) -> Vec<String> {
        self.workflow.missing_required_inputs()
    }

    /// Resolves the model inputs given by name against the server's installed models (exact
    /// name first, then case-insensitive, narrowed by the model types the field accepts) and
    /// sets their full identifiers. The runner resolves with the same [`ModelResolver`].
    ///
    /// # Errors
    /// [`HandleError::Model`] naming the input and the model, with the closest installed models
    /// or the candidates when several match.
    pub async fn resolve_models(&mut self) -> Result<(), HandleError> {
        let unresolved = self.workflow.unresolved_models();
        if unresolved.is_empty() {
            return Ok(());
        }
        let mut resolver = ModelResolver::new();
        let mut resolved: HashMap<(String, String), Value> = HashMap::new();
        for u in &unresolved {
            let reference = ModelRef::Name(u.model_name.clone());
            let identifier = resolver
                .resolve(&self.client, &reference, &u.model_types)
                .await
                .map_err(|source| HandleError::Model {
                    workflow: self.name().to_owned(),
                    input: u.system_name.clone(),
                    model: u.model_name.clone(),
                    source: Box::new(source),
                })?;
            let value = serde_json::to_value(&identifier).unwrap_or(Value::Null);
            resolved.insert((u.system_name.clone(), u.model_name.clone()), value);
        }
        let systems: BTreeSet<&str> = unresolved.iter().map(|u| u.system_name.as_str()).collect();
        for system in systems {
            let r = InputRef::parse(system);
            let Some(value) = &self.workflow.input(&r)?.value else {
                continue;
            };
            let replaced = replace_model_names(value, &|name| {
                resolved.get(&(system.to_owned(), name.to_owned())).cloned()
            });
            self.workflow.set(&r, replaced)?;
        }
        Ok(())
    }
}

/// A value with every model name replaced by what `lookup` gives for it.
fn replace_model_names(value: &InkValue, lookup: &dyn Fn(&str) -> Option<Value>) -> Value {
    match value {
        InkValue::ModelName(name) => lookup(name).unwrap_or_else(|| value.to_json()),
        InkValue::Collection(items) => Value::Array(
            items
                .iter()
                .map(|item| replace_model_names(item, lookup))
                .collect(),
        ),
        other => other.to_json(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_are_replaced_inside_lists_and_alone() {
        let lookup = |name: &str| (name == "A").then(|| json!({"key": "k-a"}));
        assert_eq!(
            replace_model_names(&InkValue::ModelName("A".into()), &lookup),
            json!({"key": "k-a"})
        );
        assert_eq!(
            replace_model_names(
                &InkValue::Collection(vec![InkValue::ModelName("A".into()), InkValue::Integer(3)]),
                &lookup
            ),
            json!([{"key": "k-a"}, 3])
        );
    }
}
