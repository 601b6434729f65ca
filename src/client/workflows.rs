//! `/api/v1/workflows`: the server's workflow library.

use std::path::Path;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Body, Client, ClientError, Replay, is_not_found};

/// Where a library workflow comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum WorkflowCategory {
    /// Saved by a user; can be changed and deleted.
    User,
    /// Built into the server; read-only.
    Default,
    /// A category this client does not know.
    #[serde(other)]
    Other,
}

impl WorkflowCategory {
    /// The name the server uses.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowCategory::User => "user",
            WorkflowCategory::Default => "default",
            WorkflowCategory::Other => "other",
        }
    }
}

/// What to sort the workflow list by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowOrderBy {
    /// Name (the server's default).
    Name,
    /// Creation time.
    CreatedAt,
    /// Last change.
    UpdatedAt,
    /// Last opened in the web UI.
    OpenedAt,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortDirection {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

impl SortDirection {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SortDirection::Asc => "ASC",
            SortDirection::Desc => "DESC",
        }
    }
}

/// Filters and paging of [`WorkflowsHandler::list`]. The default lists everything, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkflowListQuery {
    /// Only these categories (any of them).
    pub categories: Vec<WorkflowCategory>,
    /// Only workflows whose tags contain any of these.
    pub tags: Vec<String>,
    /// Only workflows whose name, description or tags contain this.
    pub query: Option<String>,
    /// Sort key.
    pub order_by: Option<WorkflowOrderBy>,
    /// Sort direction.
    pub direction: Option<SortDirection>,
    /// Page number (from 0), with `per_page`.
    pub page: Option<u32>,
    /// Page size; `None` returns everything on one page.
    pub per_page: Option<u32>,
}

/// One entry of the workflow list (without the workflow body: [`WorkflowsHandler::get`] has it).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct WorkflowSummary {
    /// Id (`default_...` for built-in ones).
    pub workflow_id: String,
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Category.
    pub category: WorkflowCategory,
    /// Comma-separated tags.
    #[serde(default)]
    pub tags: String,
    /// Owner (`system` on a single-user server).
    #[serde(default)]
    pub user_id: String,
    /// Whether other users see it.
    #[serde(default)]
    pub is_public: bool,
    /// Creation time (server string, UTC).
    pub created_at: String,
    /// Last change (server string, UTC).
    pub updated_at: String,
    /// Last opened in the web UI.
    #[serde(default)]
    pub opened_at: Option<String>,
}

/// A page of the workflow list.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct WorkflowPage {
    /// Page number.
    pub page: u32,
    /// Number of pages.
    pub pages: u32,
    /// Page size.
    pub per_page: u32,
    /// Number of workflows matching the filters.
    pub total: u32,
    /// The workflows on this page.
    pub items: Vec<WorkflowSummary>,
}

/// A workflow stored in the library, with its body.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct WorkflowRecord {
    /// Id.
    pub workflow_id: String,
    /// Name.
    pub name: String,
    /// Owner.
    #[serde(default)]
    pub user_id: String,
    /// Whether other users see it.
    #[serde(default)]
    pub is_public: bool,
    /// Creation time (server string, UTC).
    pub created_at: String,
    /// Last change (server string, UTC).
    pub updated_at: String,
    /// Last opened in the web UI.
    #[serde(default)]
    pub opened_at: Option<String>,
    /// The workflow as the web UI exports it (with its `id`).
    pub workflow: Value,
}

impl WorkflowRecord {
    /// The workflow's category (from `workflow.meta.category`).
    #[must_use]
    pub fn category(&self) -> WorkflowCategory {
        match self
            .workflow
            .pointer("/meta/category")
            .and_then(Value::as_str)
        {
            Some("user") => WorkflowCategory::User,
            Some("default") => WorkflowCategory::Default,
            _ => WorkflowCategory::Other,
        }
    }
}

impl WorkflowRecord {
    /// Writes the workflow (as the web UI exports it) into `path` as pretty JSON, atomically:
    /// a reader never sees a half-written file.
    ///
    /// # Errors
    /// [`ClientError::File`] when the file cannot be written.
    pub fn write_to_file(&self, path: &Path) -> Result<(), ClientError> {
        let mut text = serde_json::to_string_pretty(&self.workflow).unwrap_or_default();
        text.push('\n');
        crate::fs::write_atomic(path, text.as_bytes()).map_err(ClientError::file("write", path))
    }
}

/// The workflow library (`client.workflows()`).
#[derive(Debug, Clone, Copy)]
pub struct WorkflowsHandler<'c> {
    client: &'c Client,
}

impl<'c> WorkflowsHandler<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        WorkflowsHandler { client }
    }

    /// One page of the library (or all of it when `per_page` is `None`).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn list(&self, query: &WorkflowListQuery) -> Result<WorkflowPage, ClientError> {
        let mut url = self.client.endpoint(&["api", "v1", "workflows", ""]);
        {
            let mut q = url.query_pairs_mut();
            if let Some(page) = query.page {
                q.append_pair("page", &page.to_string());
            }
            if let Some(per_page) = query.per_page {
                q.append_pair("per_page", &per_page.to_string());
            }
            if let Some(order_by) = query.order_by {
                let key = match order_by {
                    WorkflowOrderBy::Name => "name",
                    WorkflowOrderBy::CreatedAt => "created_at",
                    WorkflowOrderBy::UpdatedAt => "updated_at",
                    WorkflowOrderBy::OpenedAt => "opened_at",
                };
                q.append_pair("order_by", key);
            }
            if let Some(direction) = query.direction {
                q.append_pair("direction", direction.as_str());
            }
            for category in &query.categories {
                q.append_pair("categories", category.as_str());
            }
            for tag in &query.tags {
                q.append_pair("tags", tag);
            }
            if let Some(text) = &query.query {
                q.append_pair("query", text);
            }
        }
        self.client
            .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
            .await
    }

    /// Every workflow in the library, by name.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn list_all(&self) -> Result<Vec<WorkflowSummary>, ClientError> {
        Ok(self.list(&WorkflowListQuery::default()).await?.items)
    }

    /// One workflow with its body.
    ///
    /// # Errors
    /// `404` when there is none with this id, or any other [`ClientError`].
    pub async fn get(&self, id: &str) -> Result<WorkflowRecord, ClientError> {
        let url = self.client.endpoint(&["api", "v1", "workflows", "i", id]);
        self.client
            .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
            .await
    }

    /// Stores a workflow (the JSON the web UI exports) as a new `user` workflow. Its `id` is
    /// ignored, missing text fields are filled with `""`, and its category is set to `user`
    /// (an exported built-in workflow says `default`, which the server refuses).
    ///
    /// # Errors
    /// [`ClientError::InvalidWorkflow`] when `workflow` is not a JSON object, `422` when the
    /// server refuses it, or any other [`ClientError`].
    pub async fn create(&self, workflow: &Value) -> Result<WorkflowRecord, ClientError> {
        let mut body = prepare_for_library(workflow, "the workflow")?;
        body.remove("id");
        let url = self.client.endpoint(&["api", "v1", "workflows", ""]);
        let body = Body::json(&json!({ "workflow": body }));
        self.client
            .send_json(Method::POST, url, Replay::OnlyIfNotSent, body)
            .await
    }

    /// Replaces the stored workflow `id` with `workflow`.
    ///
    /// # Errors
    /// `404` when there is none with this id, [`ClientError::InvalidWorkflow`] when `workflow`
    /// is not a JSON object, or any other [`ClientError`].
    pub async fn update(&self, id: &str, workflow: &Value) -> Result<WorkflowRecord, ClientError> {
        let mut body = prepare_for_library(workflow, "the workflow")?;
        // The server updates the workflow named by the id in the body, not the one in the path.
        body.insert("id".to_owned(), Value::String(id.to_owned()));
        let url = self.client.endpoint(&["api", "v1", "workflows", "i", id]);
        let body = Body::json(&json!({ "workflow": body }));
        self.client
            .send_json(Method::PATCH, url, Replay::Idempotent, body)
            .await
    }

    /// Deletes a workflow from the library.
    ///
    /// # Errors
    /// `404` when there is none with this id, or any other [`ClientError`]. (The server answers
    /// `500` for a built-in workflow: check [`WorkflowRecord::category`] first.)
    pub async fn delete(&self, id: &str) -> Result<(), ClientError> {
        let url = self.client.endpoint(&["api", "v1", "workflows", "i", id]);
        self.client
            .send(Method::DELETE, url, Replay::Idempotent, Body::Empty)
            .await?;
        Ok(())
    }

    /// Uploads a workflow file (exported from the web UI) into the library; returns the new id.
    ///
    /// # Errors
    /// [`ClientError::File`] or [`ClientError::InvalidWorkflow`] for the file, or what
    /// [`WorkflowsHandler::create`] returns.
    pub async fn upload_file(&self, path: &Path) -> Result<String, ClientError> {
        let text = fs_err::tokio::read_to_string(path)
            .await
            .map_err(ClientError::file("read", path))?;
        let value: Value =
            serde_json::from_str(&text).map_err(|e| ClientError::InvalidWorkflow {
                source_name: path.display().to_string(),
                reason: format!("not valid JSON: {e}"),
            })?;
        prepare_for_library(&value, &path.display().to_string())?;
        Ok(self.create(&value).await?.workflow_id)
    }

    /// Writes the stored workflow `id` into `path` (pretty JSON, written atomically).
    ///
    /// # Errors
    /// `404` when there is none with this id, [`ClientError::File`] when the file cannot be
    /// written, or any other [`ClientError`].
    pub async fn download_to_file(
        &self,
        id: &str,
        path: &Path,
    ) -> Result<WorkflowRecord, ClientError> {
        let record = self.get(id).await?;
        record.write_to_file(path)?;
        Ok(record)
    }

    /// Finds a workflow by exact id, else by exact name.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] (with the closest names) when nothing matches,
    /// [`ClientError::Ambiguous`] (with the candidates' ids) when several workflows have this
    /// name, or any other [`ClientError`].
    pub async fn find(&self, id_or_name: &str) -> Result<WorkflowRecord, ClientError> {
        match self.get(id_or_name).await {
            Ok(record) => return Ok(record),
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(err),
        }
        let all = self.list_all().await?;
        let matches: Vec<&WorkflowSummary> = all.iter().filter(|w| w.name == id_or_name).collect();
        match matches.as_slice() {
            [one] => self.get(&one.workflow_id).await,
            [] => Err(ClientError::NotFound {
                kind: "workflow",
                query: id_or_name.to_owned(),
                within: String::new(),
                candidates: closest(id_or_name, all.iter().map(|w| w.name.as_str())),
            }),
            many => Err(ClientError::Ambiguous {
                kind: "workflow",
                query: id_or_name.to_owned(),
                candidates: many
                    .iter()
                    .map(|w| {
                        format!(
                            "`{}` ({}, updated {})",
                            w.workflow_id,
                            w.category.as_str(),
                            w.updated_at
                        )
                    })
                    .collect(),
            }),
        }
    }
}

/// Checks that `workflow` is an object and fills what the library requires: the text fields
/// (`""`), `exposedFields`/`nodes`/`edges` (`[]`) and `meta.category = "user"`.
fn prepare_for_library(
    workflow: &Value,
    source_name: &str,
) -> Result<Map<String, Value>, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidWorkflow {
        source_name: source_name.to_owned(),
        reason: reason.to_owned(),
    };
    let Value::Object(map) = workflow else {
        return Err(invalid("it is not a JSON object"));
    };
    if !map.contains_key("nodes") || !map.contains_key("edges") {
        return Err(invalid(
            "it has no `nodes` and `edges` (export it from the workflow editor)",
        ));
    }
    let mut map = map.clone();
    for key in crate::workflow::definition::TEXT_FIELDS {
        let entry = map
            .entry(key)
            .or_insert_with(|| Value::String(String::new()));
        if entry.is_null() {
            *entry = Value::String(String::new());
        }
    }
    map.entry("exposedFields")
        .or_insert_with(|| Value::Array(Vec::new()));
    let meta = map
        .entry("meta")
        .or_insert_with(|| json!({"version": "3.0.0"}));
    if let Value::Object(meta) = meta {
        meta.insert("category".to_owned(), Value::String("user".to_owned()));
        meta.entry("version")
            .or_insert_with(|| Value::String("3.0.0".to_owned()));
    } else {
        return Err(invalid("its `meta` is not an object"));
    }
    Ok(map)
}

/// Up to five of `names`, the closest to `query` first (for "did you mean" lists).
pub(crate) fn closest<'a>(query: &str, names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let query = query.to_lowercase();
    let mut scored: Vec<(f64, &str)> = names
        .map(|name| {
            (
                strsim::normalized_levenshtein(&query, &name.to_lowercase()),
                name,
            )
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(5)
        .map(|(_, name)| format!("`{name}`"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_bodies_get_the_required_fields_and_the_user_category() {
        let exported = json!({"name": "x", "nodes": [], "edges": [], "meta": {"category": "default", "version": "3.0.0"},
                               "notes": null, "form": {"elements": {}}});
        let body = prepare_for_library(&exported, "x.json").expect("valid");
        assert_eq!(body["meta"]["category"], "user");
        for key in [
            "author",
            "description",
            "version",
            "contact",
            "tags",
            "notes",
        ] {
            assert_eq!(body[key], "", "{key}");
        }
        assert_eq!(body["exposedFields"], json!([]));
        assert_eq!(
            body["form"],
            json!({"elements": {}}),
            "unknown keys are kept"
        );
    }

    #[test]
    fn non_workflows_are_refused_with_the_reason() {
        let err = prepare_for_library(&json!([1]), "a.json").expect_err("array");
        assert_eq!(
            err.to_string(),
            "`a.json` is not an InvokeAI workflow: it is not a JSON object"
        );
        let err = prepare_for_library(&json!({"name": "x"}), "b.json").expect_err("no nodes");
        assert!(err.to_string().contains("no `nodes` and `edges`"), "{err}");
    }

    #[test]
    fn closest_names_come_first() {
        let names = [
            "Text to Image",
            "Image to Image",
            "Upscale",
            "text to image - SDXL",
        ];
        assert_eq!(
            closest("text to imag", names.into_iter())[..2],
            ["`Text to Image`", "`text to image - SDXL`"]
        );
    }
}
