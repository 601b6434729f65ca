//! Models given by name or key in a manifest, resolved against the run's server.

use super::RunError;
use crate::client::{Client, ModelIdentifier};

/// Resolves a [`super::batch::model_ref`] (`name:NAME` or `key:KEY`) against the server's
/// installed models.
pub(super) async fn resolve(
    client: &Client,
    reference: &str,
) -> Result<ModelIdentifier, crate::Error> {
    if let Some(key) = reference.strip_prefix("key:") {
        return client
            .models()
            .get(key)
            .await
            .map(|m| m.identifier())
            .map_err(|e| RunError::Model(e).into());
    }
    let name = reference.strip_prefix("name:").unwrap_or(reference);
    client
        .models()
        .resolve(name, None, None)
        .await
        .map_err(|e| RunError::Model(e).into())
}
