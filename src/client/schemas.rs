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

/// The server's invocation schemas, read from its `/openapi.json` now, and shared within the
/// process between servers whose documents are byte for byte the same: a pool of many servers
/// of one install parses it once (their custom nodes and `deny_nodes` differ only when their
/// documents do).
///
/// # Errors
/// As [`read_server_schemas`].
pub async fn read_server_schemas_shared(
    client: &Client,
) -> Result<std::sync::Arc<SchemaSet>, SchemasError> {
    use sha2::Digest as _;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type Parsed = Mutex<HashMap<[u8; 32], Arc<SchemaSet>>>;
    static PARSED: OnceLock<Parsed> = OnceLock::new();
    let url = client.endpoint(&["openapi.json"]);
    let response = client
        .send(Method::GET, url.clone(), Replay::Idempotent, Body::Empty)
        .await?;
    let bytes = client.body(Method::GET, url.clone(), response).await?;
    let digest: [u8; 32] = sha2::Sha256::digest(&*bytes).into();
    let parsed = PARSED.get_or_init(Parsed::default);
    if let Some(set) = parsed.lock().ok().and_then(|p| p.get(&digest).cloned()) {
        return Ok(set);
    }
    let doc: Value = super::parse_json(Method::GET, &url, &bytes)?;
    let set = Arc::new(SchemaSet::from_openapi(&doc).map_err(SchemasError::Unreadable)?);
    if let Ok(mut p) = parsed.lock() {
        p.insert(digest, Arc::clone(&set));
    }
    Ok(set)
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

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    /// An OpenAPI document with the one invocation `node`.
    fn doc(node: &str) -> Value {
        serde_json::json!({
            "components": {"schemas": {
                "InvocationOutputMap": {"properties": {}},
                "Node": {
                    "class": "invocation",
                    "title": node,
                    "properties": {"type": {"const": node}, "value": {"type": "integer"}},
                },
            }},
        })
    }

    async fn serving(document: Value) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/openapi.json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(document))
            .mount(&server)
            .await;
        server
    }

    #[tokio::test]
    async fn servers_with_the_same_document_share_one_parse_and_others_get_their_own() {
        // A node type no other test uses: the process-wide table starts without it.
        let a = serving(doc("shared_test_node_a")).await;
        let b = serving(doc("shared_test_node_a")).await;
        let c = serving(doc("shared_test_node_c")).await;
        let read = |server: &MockServer| {
            let client = Client::new(&server.uri()).expect("client");
            async move { read_server_schemas_shared(&client).await.expect("schemas") }
        };
        let (from_a, from_b, from_c) = (read(&a).await, read(&b).await, read(&c).await);
        assert!(std::sync::Arc::ptr_eq(&from_a, &from_b));
        assert!(!std::sync::Arc::ptr_eq(&from_a, &from_c));
        assert!(from_a.invocation("shared_test_node_a").is_some());
        assert!(from_c.invocation("shared_test_node_a").is_none());
        assert!(from_c.invocation("shared_test_node_c").is_some());
    }
}
