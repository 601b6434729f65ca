//! The manifest's JSON Schema, generated from the serde model (committed as
//! `schemas/manifest.schema.json`, for editors: `# yaml-language-server: $schema=...`).

use super::model::Manifest;

/// The JSON Schema of a manifest, pretty-printed with a final newline.
#[must_use]
pub fn manifest_schema() -> String {
    let schema = schemars::schema_for!(Manifest);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_describes_every_top_level_key_and_refuses_others() {
        let schema: serde_json::Value = serde_json::from_str(&manifest_schema()).expect("json");
        assert_eq!(
            schema["additionalProperties"],
            serde_json::Value::Bool(false)
        );
        assert_eq!(
            schema["required"],
            serde_json::json!(["version", "workflow"])
        );
        assert_eq!(schema["title"], "invk-run manifest");
    }
}
