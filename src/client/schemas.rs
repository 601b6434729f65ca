//! The invocation schemas of a server: read from its `/openapi.json` and cached per InvokeAI
//! version in the cache folder (`schemas/invokeai-VERSION-2.json`), so later reads for a server of
//! the same version do not fetch it again; the snapshot shipped with this crate when the server
//! cannot be read.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::Value;

use super::{Body, Client, ClientError, Replay};
use crate::workflow::SchemaSet;

/// Where a handle's invocation schemas came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaSource {
    /// The server's `/openapi.json`, read now (and cached).
    Live {
        /// The server's InvokeAI version.
        version: String,
    },
    /// The cache of an earlier read of a server of the same version.
    Cached {
        /// The server's InvokeAI version.
        version: String,
        /// The cache file.
        path: PathBuf,
    },
    /// The snapshot shipped with this crate.
    Snapshot {
        /// Why the server's schemas were not used.
        reason: String,
    },
}

/// The invocation schemas of the client's server: from the cache for its version, else from
/// its `/openapi.json` (then cached); `None` (use the snapshot) when the server cannot be read.
pub async fn server_schemas(client: &Client) -> (Option<SchemaSet>, SchemaSource) {
    let version = match client.app().version().await {
        Ok(version) => version,
        Err(err) => {
            tracing::warn!("using the shipped schema snapshot: {err}");
            return (
                None,
                SchemaSource::Snapshot {
                    reason: err.to_string(),
                },
            );
        }
    };
    let cache = schema_cache_path(&version);
    if let Some(path) = &cache
        && let Ok(text) = fs_err::tokio::read_to_string(path).await
    {
        match serde_json::from_str::<SchemaSet>(&text) {
            Ok(set) => {
                return (
                    Some(set),
                    SchemaSource::Cached {
                        version,
                        path: path.clone(),
                    },
                );
            }
            Err(err) => tracing::debug!("ignoring the unreadable schema cache: {err}"),
        }
    }
    match read_server_schemas(client).await.map_err(|e| e.to_string()) {
        Ok(mut set) => {
            set.version.get_or_insert_with(|| version.clone());
            if let Some(path) = &cache {
                let write = serde_json::to_vec(&set)
                    .map_err(std::io::Error::other)
                    .and_then(|bytes| crate::fs::write_atomic(path, &bytes));
                if let Err(err) = write {
                    tracing::debug!("not caching the server's schemas: {err}");
                }
            }
            (Some(set), SchemaSource::Live { version })
        }
        Err(reason) => {
            tracing::warn!("using the shipped schema snapshot: {reason}");
            (None, SchemaSource::Snapshot { reason })
        }
    }
}

/// The invocation schemas in the server's own `/openapi.json`, read now (no cache: servers of
/// the same version can have different custom nodes, which a check of one server must see).
///
/// # Errors
/// The request's [`ClientError`], or [`SchemasError::Unreadable`] when the document holds no
/// invocation schemas this crate can read.
pub async fn read_server_schemas(client: &Client) -> Result<SchemaSet, SchemasError> {
    let url = client.endpoint(&["openapi.json"]);
    let doc: Value = client
        .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
        .await?;
    SchemaSet::from_openapi(&doc).map_err(SchemasError::Unreadable)
}

/// Why [`read_server_schemas`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemasError {
    /// The request failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server's OpenAPI document holds no readable invocation schemas.
    #[error(transparent)]
    Unreadable(crate::workflow::WorkflowError),
}

/// `CACHE/schemas/invokeai-VERSION-2.json`, or `None` without a cache folder.
fn schema_cache_path(version: &str) -> Option<PathBuf> {
    let safe: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = crate::local_server::cache_dir().ok()?;
    // `-2`: the format since output fields carry their types (older caches lack them).
    Some(dir.join("schemas").join(format!("invokeai-{safe}-2.json")))
}
