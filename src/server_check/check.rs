//! The preflight of one server: reachable, version, auth, queue, and whether it can run what a
//! workflow or manifest needs. Each server gets a bounded time; several are checked at once.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::found::{AuthState, FoundModel, ModelFit, QueueState, ServerReport, WorkflowFit};
use super::{ServerEntry, ServersError};
use crate::client::{Client, ClientError, Credentials, ModelRef, ModelResolver, is_not_found};
use crate::run::needs::{ModelNeed, Needs};

/// How long one server's check may take, unless told otherwise. Generous: a server builds its
/// `/openapi.json` on the first request after it starts, which takes a while on a busy machine.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Checks one server: whether it answers and with which version, whether `credentials` open it
/// (the client's token, or a login with the email and password when the client has none),
/// what its queue holds, and, with `needs`, whether it has every node type and every model they
/// name. The whole check takes at most `limit`; what it did not reach is left `None` and named
/// among the problems. Never fails: every failure is a finding of the report.
pub async fn check(
    client: &Client,
    credentials: &Credentials,
    needs: Option<&Needs>,
    limit: Duration,
) -> ServerReport {
    let mut report = ServerReport::unchecked(client.base_url().to_string());
    let deadline = Instant::now() + limit;
    // The step that ran out of time ends the check; the problem says which it was.
    if let Err(step) = run_steps(client, credentials, needs, deadline, &mut report).await {
        report.problems.push(format!(
            "the check took longer than {} s (while {step})",
            limit.as_secs_f64()
        ));
    }
    report.usable = report.problems.is_empty();
    report
}

/// Checks every server at once, each with its own time limit. `servers` are URLs; the token of
/// `credentials` goes with every request, its email and password log into multi-user servers.
///
/// # Errors
/// [`ServersError::Setup`] for a bad URL, or an email without a password; [`ServersError::Entry`]
/// for a variable an entry names that is not set: nothing was sent.
pub async fn check_all(
    servers: &[ServerEntry],
    credentials: &Credentials,
    needs: Option<&Needs>,
    limit: Duration,
) -> Result<Vec<ServerReport>, ServersError> {
    let mut clients = Vec::with_capacity(servers.len());
    for entry in servers {
        // A server's own credentials (the variables its entry names), else the run's.
        let credentials = crate::run::settings::entry_credentials(entry, credentials)?;
        if let Some(email) = credentials.login_email()
            && credentials.bearer().is_none()
            && credentials.login_password().is_none()
        {
            return Err(ServersError::Setup(ClientError::MissingPassword {
                email: email.to_owned(),
            }));
        }
        let client = client_for(&entry.url, &credentials, limit).map_err(ServersError::Setup)?;
        clients.push((client, credentials));
    }
    let checks = clients
        .iter()
        .map(|(client, credentials)| check(client, credentials, needs, limit));
    Ok(futures_util::future::join_all(checks).await)
}

/// A client for a check: no wait longer than the check's limit.
fn client_for(
    url: &str,
    credentials: &Credentials,
    limit: Duration,
) -> Result<Client, ClientError> {
    let mut builder = Client::builder(url)
        .connect_timeout(limit.min(Duration::from_secs(10)))
        .request_timeout(limit)
        .read_timeout(limit);
    if let Some(token) = credentials.bearer() {
        builder = builder.token(token);
    }
    builder.build()
}

/// The steps of a check in order; `Err(step)` when the deadline passed during `step`.
async fn run_steps(
    client: &Client,
    credentials: &Credentials,
    needs: Option<&Needs>,
    deadline: Instant,
    report: &mut ServerReport,
) -> Result<(), &'static str> {
    let version = within(deadline, "asking its version", client.app().version()).await?;
    match version {
        Ok(version) => {
            report.reachable = true;
            report.version = Some(version);
        }
        Err(err) => {
            report.reachable = !err.is_unreachable();
            report.problems.push(if report.reachable {
                format!("it does not answer as an InvokeAI server: {}", reason(&err))
            } else {
                format!("unreachable: {}", reason(&err))
            });
            return Ok(());
        }
    }
    let auth = within(
        deadline,
        "asking whether it needs a login",
        auth_state(client, credentials),
    )
    .await?;
    match &auth {
        Ok(AuthState::NeedsLogin { reason }) => {
            report.problems.push(format!("needs a login: {reason}"));
        }
        Ok(_) => {}
        Err(err) => report.problems.push(format!(
            "cannot tell whether it needs a login: {}",
            reason(err)
        )),
    }
    let opened = matches!(auth, Ok(AuthState::Open | AuthState::LoggedIn { .. }));
    report.auth = auth.ok();
    if !opened {
        // Everything else asks for a login the server did not grant.
        return Ok(());
    }
    match within(deadline, "reading its queue", client.queue().status()).await? {
        Ok(status) => {
            report.queue = Some(QueueState {
                pending: status.queue.pending,
                in_progress: status.queue.in_progress,
            });
        }
        Err(err) => report
            .problems
            .push(format!("cannot read its queue: {}", reason(&err))),
    }
    if let Some(needs) = needs {
        let mut fit = WorkflowFit {
            source: needs.source.clone(),
            node_types: needs.node_types.len(),
            missing_node_types: Vec::new(),
            schema_error: None,
            models: Vec::new(),
        };
        let result = fit_workflow(client, needs, deadline, &mut fit).await;
        if let Some(error) = &fit.schema_error {
            report
                .problems
                .push(format!("cannot read its invocation schema: {error}"));
        }
        if !fit.missing_node_types.is_empty() {
            report.problems.push(format!(
                "it lacks the node type{} {} that `{}` uses",
                if fit.missing_node_types.len() == 1 {
                    ""
                } else {
                    "s"
                },
                quoted(&fit.missing_node_types),
                needs.source
            ));
        }
        for model in fit.models.iter().filter(|m| m.found.is_none()) {
            report.problems.push(format!(
                "it lacks the model {} that `{}` names: {}",
                model.model,
                needs.source,
                model.error.as_deref().unwrap_or("not found")
            ));
        }
        report.workflow = Some(fit);
        result?;
    }
    Ok(())
}

/// The node types and models of `needs` on this server, into `fit`.
async fn fit_workflow(
    client: &Client,
    needs: &Needs,
    deadline: Instant,
    fit: &mut WorkflowFit,
) -> Result<(), &'static str> {
    let schemas = within(
        deadline,
        "reading its invocation schema",
        crate::client::read_server_schemas(client),
    )
    .await?;
    match schemas {
        Ok(set) => {
            fit.missing_node_types = needs
                .node_types
                .iter()
                .filter(|t| set.invocation(t).is_none())
                .cloned()
                .collect();
        }
        Err(err) => fit.schema_error = Some(crate::error_chain::error_chain(&err)),
    }
    // One resolver per server: its list of installed models is read once.
    let mut resolver = ModelResolver::new();
    for need in &needs.models {
        let found = within(
            deadline,
            "looking its models up",
            find_model(client, &mut resolver, need),
        )
        .await?;
        fit.models.push(ModelFit {
            model: need.describe(),
            inputs: need.inputs.clone(),
            error: found.as_ref().err().map(reason),
            found: found.ok().map(|id| FoundModel {
                key: id.key,
                name: id.name,
                base: id.base,
                model_type: id.model_type,
            }),
        });
    }
    Ok(())
}

/// A model on this server: by key, or by name narrowed by base and type.
async fn find_model(
    client: &Client,
    resolver: &mut ModelResolver,
    need: &ModelNeed,
) -> Result<crate::client::ModelIdentifier, ClientError> {
    match &need.reference {
        ModelRef::Key(_) => resolver.resolve(client, &need.reference, &need.types).await,
        ModelRef::Name(name) => {
            resolver
                .resolve_in_base(client, name, need.base.as_deref(), &need.types)
                .await
        }
    }
}

/// Whether the server needs a login, and whether `credentials` give one.
async fn auth_state(client: &Client, credentials: &Credentials) -> Result<AuthState, ClientError> {
    let status = match client.auth().status().await {
        Ok(status) => status,
        // A server older than multi-user support has no such route: it is open.
        Err(err) if is_not_found(&err) => return Ok(AuthState::Open),
        Err(err) => return Err(err),
    };
    if !status.multiuser_enabled {
        return Ok(AuthState::Open);
    }
    if status.setup_required {
        return Ok(AuthState::NeedsLogin {
            reason: "it has no administrator yet: set one up in its web UI".to_owned(),
        });
    }
    if client.token().is_some() {
        return Ok(match client.auth().me().await {
            Ok(user) => AuthState::LoggedIn { user: user.email },
            Err(err) => AuthState::NeedsLogin {
                reason: format!("it refused the token: {}", reason(&err)),
            },
        });
    }
    Ok(
        match (credentials.login_email(), credentials.login_password()) {
            (Some(email), Some(password)) => match client.auth().login(email, password).await {
                Ok(answer) => AuthState::LoggedIn {
                    user: answer.user.email,
                },
                Err(err) => AuthState::NeedsLogin {
                    reason: format!("logging in as `{email}` failed: {}", reason(&err)),
                },
            },
            _ => AuthState::NeedsLogin {
                reason: "it is multi-user: give `--token`, or `--email` with `INVK_PASSWORD`"
                    .to_owned(),
            },
        },
    )
}

/// Runs `step` until `deadline`; `Err(what)` when the time is up first.
async fn within<T>(
    deadline: Instant,
    what: &'static str,
    step: impl Future<Output = T>,
) -> Result<T, &'static str> {
    tokio::time::timeout_at(deadline, step)
        .await
        .map_err(|_| what)
}

/// An error as one line: a connection failure by its root cause (`Connection refused`), the
/// rest with their causes.
fn reason(err: &ClientError) -> String {
    if let ClientError::Connect { .. } = err {
        let mut root: &dyn std::error::Error = err;
        while let Some(next) = root.source() {
            root = next;
        }
        return format!("no connection ({root})");
    }
    crate::error_chain::error_chain(err)
}

fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
