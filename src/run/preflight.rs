//! Before a pool's run sends anything: each server is asked for its version and invocation
//! schema, and for the models the manifest names; a server that cannot run the manifest is left
//! out with a warning naming why.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::error::RunError;
use crate::server_entry::ServerEntry;

/// How long a server of a pool may take to say its version before it is left out (or, once it
/// left, before it is taken as still away).
pub(super) const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Before a pool's run sends anything: each server is asked for its version and invocation
/// schema. A server that does not answer, or lacks a node type the workflow uses, is left out
/// with a warning naming why; the manifest is checked against the schema of the first server
/// that can run it. Returns the checked manifest and the servers that take part, in order.
///
/// # Errors
/// An invalid manifest (nothing is sent), or no server that answers and can run it.
pub(super) async fn preflight(
    source: &super::manifest_source::ManifestSource,
    settings: &super::settings::RunSettings,
    reporter: &super::progress::Reporter,
    entries: &[ServerEntry],
) -> Result<(super::prepare::Prepared, Vec<PoolServer>, Vec<Absent>), RunError> {
    let warn = |message: String| {
        reporter.event(&super::progress::RunEvent::Warning {
            manifest: source.run_name(),
            message,
        });
    };
    // Each server's own credentials are read first: a variable an entry names that is not set
    // stops the run before anything is sent.
    let credentials = entries
        .iter()
        .map(|e| super::settings::entry_credentials(e, &settings.credentials))
        .collect::<Result<Vec<_>, _>>()?;
    // The servers are asked at once: the preflight takes as long as the slowest.
    let reached = futures_util::future::join_all(entries.iter().zip(&credentials).map(
        |(entry, credentials)| async move {
            let client = crate::client::Client::connect(&entry.url, credentials).await?;
            // A server that accepts connections and answers nothing is left out in seconds.
            let version = client.with_timeout(ANSWER_WITHIN).app().version().await?;
            let schemas = schemas_of(&client, &entry.url, &version).await;
            Ok::<_, crate::client::ClientError>((client, schemas))
        },
    ))
    .await;
    let mut answering = Vec::new();
    let mut last_error = None;
    let mut absent = Vec::new();
    for ((entry, reached), credentials) in entries.iter().zip(reached).zip(credentials) {
        match reached {
            Ok((client, schemas)) => answering.push((entry.clone(), client, schemas)),
            Err(e) => {
                // One that does not answer is asked again while the run goes.
                if e.is_unreachable() {
                    absent.push(Absent {
                        entry: entry.clone(),
                        credentials,
                    });
                }
                warn(format!(
                    "the server at {} is left out of the pool: {}",
                    entry.url,
                    crate::error_chain::error_chain(&e)
                ));
                last_error = Some(e);
            }
        }
    }
    let Some(first_error) = (answering.is_empty()).then_some(last_error).flatten() else {
        let (prepared, servers) = check_pool(source, settings, answering, warn).await?;
        return Ok((prepared, servers, absent));
    };
    Err(first_error.into())
}

/// The invocation schemas of the server at `url`, which runs `version`: read from the server
/// once per process (not from the cache kept per server version: servers of one version differ
/// in their custom nodes and `deny_nodes`), then kept while the server runs that version.
async fn schemas_of(
    client: &crate::client::Client,
    url: &str,
    version: &str,
) -> Option<Arc<crate::workflow::SchemaSet>> {
    type Seen = Mutex<HashMap<(String, String), Arc<crate::workflow::SchemaSet>>>;
    static SEEN: OnceLock<Seen> = OnceLock::new();
    let seen = SEEN.get_or_init(Seen::default);
    let key = (url.to_owned(), version.to_owned());
    if let Some(set) = seen.lock().ok().and_then(|s| s.get(&key).cloned()) {
        return Some(set);
    }
    match crate::client::read_server_schemas_shared(client).await {
        Ok(set) => {
            if let Ok(mut s) = seen.lock() {
                s.insert(key, Arc::clone(&set));
            }
            Some(set)
        }
        Err(_) => crate::client::server_schemas(client).await.0.map(Arc::new),
    }
}

/// The manifest checked against the first answering server's schema that accepts it, and the
/// servers that have every node type its workflow uses.
async fn check_pool(
    source: &super::manifest_source::ManifestSource,
    settings: &super::settings::RunSettings,
    answering: Vec<(
        ServerEntry,
        crate::client::Client,
        Option<Arc<crate::workflow::SchemaSet>>,
    )>,
    warn: impl Fn(String),
) -> Result<(super::prepare::Prepared, Vec<PoolServer>), RunError> {
    // A server whose own schemas could not be read is checked against the shipped snapshot:
    // read once here for all of them (it is freed with its last holder).
    let mut snapshot = None;
    let answering: Vec<_> = (answering.into_iter())
        .map(|(entry, client, schemas)| {
            let schemas = schemas.unwrap_or_else(|| {
                Arc::clone(snapshot.get_or_insert_with(crate::workflow::SchemaSet::snapshot))
            });
            (entry, client, schemas)
        })
        .collect();
    let mut prepared = None;
    let mut first_error = None;
    for (_, client, schemas) in &answering {
        match super::prepare::prepare(source, settings.max_jobs, Some(client), schemas).await {
            Ok(p) => {
                prepared = Some(p);
                break;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let Some(prepared) = prepared else {
        return Err(first_error.unwrap_or(RunError::NoManifest));
    };
    let node_types = super::needs::node_types(prepared.workflow.definition());
    let models = pool_models(&source.display_name, &prepared);
    let mut model_error = None;
    let mut lanes = Vec::with_capacity(answering.len());
    for (entry, client, schemas) in answering {
        let url = &entry.url;
        if let Some(lacks) = lacks_node_types(&node_types, &schemas) {
            warn(format!(
                "the server at {url} is left out of the pool: {lacks}"
            ));
            continue;
        }
        match resolve_named_models(url, &client, &models).await {
            Ok(models) => lanes.push(PoolServer {
                entry,
                client,
                models,
            }),
            Err(e) => {
                warn(format!(
                    "{}; it is left out of the pool",
                    crate::error_chain::error_chain(&e)
                ));
                model_error.get_or_insert(e);
            }
        }
    }
    match model_error {
        Some(e) if lanes.is_empty() => Err(e),
        _ => Ok((prepared, lanes)),
    }
}

/// The models of the inputs a manifest sets, which each server of a pool must have (those the
/// workflow itself names keep their keys: they are sent as they are, as to one server).
fn pool_models(
    display_name: &str,
    prepared: &super::prepare::Prepared,
) -> Vec<super::needs::ModelNeed> {
    let set = &prepared.expansion.inputs;
    super::needs::Needs::of_manifest(display_name, prepared)
        .models
        .into_iter()
        .filter(|need| need.inputs.iter().any(|input| set.contains_key(input)))
        .collect()
}

/// Why a server whose schemas are `schemas` cannot run a workflow of `node_types`, if it
/// cannot.
fn lacks_node_types(
    node_types: &std::collections::BTreeSet<String>,
    schemas: &crate::workflow::SchemaSet,
) -> Option<String> {
    let missing: Vec<String> = node_types
        .iter()
        .filter(|t| schemas.invocation(t).is_none())
        .map(|t| format!("`{t}`"))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "it lacks the node type{} {} that the workflow uses",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )
    })
}

/// The same checks as the preflight's, for a server that answers again during the run (or
/// answers for the first time): its version answered within [`ANSWER_WITHIN`], it has every
/// node type of the workflow and the models the manifest names. Returns it ready to take part,
/// or why it cannot.
pub(super) async fn check_again(
    entry: ServerEntry,
    client: crate::client::Client,
    name: &str,
    prepared: &super::prepare::Prepared,
) -> Result<PoolServer, String> {
    let chain = |e: &dyn std::error::Error| crate::error_chain::error_chain(e);
    let version = client
        .with_timeout(ANSWER_WITHIN)
        .app()
        .version()
        .await
        .map_err(|e| chain(&e))?;
    let schemas = schemas_of(&client, &entry.url, &version).await;
    let schemas = schemas.unwrap_or_else(crate::workflow::SchemaSet::snapshot);
    let node_types = super::needs::node_types(prepared.workflow.definition());
    if let Some(lacks) = lacks_node_types(&node_types, &schemas) {
        return Err(lacks);
    }
    let models = resolve_named_models(&entry.url, &client, &pool_models(name, prepared))
        .await
        .map_err(|e| chain(&e))?;
    Ok(PoolServer {
        entry,
        client,
        models,
    })
}

/// A server of the pool left out at the start because it did not answer: asked again while the
/// run goes.
pub(super) struct Absent {
    pub entry: ServerEntry,
    pub credentials: crate::client::Credentials,
}

/// A server that takes part in a run: as named, its client, and the manifest's models as
/// resolved on it (by a pool's preflight).
pub(super) struct PoolServer {
    pub entry: ServerEntry,
    pub client: crate::client::Client,
    pub models: crate::client::ModelResolver,
}

/// The models a manifest names by name (or key) on model inputs it sets, each looked up among
/// the server's own models (keys differ between installs) as the run will look them up.
async fn resolve_named_models(
    url: &str,
    client: &crate::client::Client,
    models: &[super::needs::ModelNeed],
) -> Result<crate::client::ModelResolver, RunError> {
    let mut resolver = crate::client::ModelResolver::new();
    for need in models {
        if let Err(e) = resolver.resolve(client, &need.reference, &need.types).await {
            return Err(RunError::PoolModel {
                server: url.to_owned(),
                model: need.describe(),
                inputs: need.inputs.join(", "),
                source: Box::new(e),
            });
        }
    }
    Ok(resolver)
}
