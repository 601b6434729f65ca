//! YAML job manifests: the model, its JSON Schema, templates, sweep expansion and validation.

/// An invalid manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {}
