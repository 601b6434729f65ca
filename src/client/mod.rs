//! The InvokeAI server's REST API: one [`Client`] and a small handler per API area.
//!
//! ```no_run
//! # async fn demo() -> Result<(), invk_run::client::ClientError> {
//! use invk_run::client::Client;
//!
//! let client = Client::new("http://127.0.0.1:9090")?;
//! println!("InvokeAI {}", client.app().version().await?);
//! for wf in client.workflows().list_all().await? {
//!     println!("{} {}", wf.workflow_id, wf.name);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Retries
//! Only transient failures are retried (see [`retry`]), with exponential back-off and jitter:
//! time-outs, connection resets and `502`/`503`/`504` for requests that are safe to repeat, and
//! connection failures (the request never left) for every request once the server has answered
//! this client before. A request that may have changed the server (an enqueue, an upload, a
//! create) is never repeated after it was sent. `500` is not retried: InvokeAI answers `500` for
//! deterministic failures (for example changing a built-in workflow), which a retry only delays.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

mod app;
mod auth;
mod boards;
mod builder;
pub mod cleanup_plan;
mod download;
mod error;
mod images;
mod model_resolver;
mod models;
mod queue;
pub mod retry;
mod schemas;
pub mod tracker;
pub mod workflow_handle;
mod workflows;

pub use app::AppHandler;
pub use auth::{AuthHandler, AuthStatus, Credentials, LoginResponse, Token, User};
pub use boards::{
    Board, BoardChanges, BoardListQuery, BoardOrderBy, BoardsHandler, DeleteBoardResult,
    ImageNamesFilter,
};
pub use builder::ClientBuilder;
pub use error::{ClientError, ValidationIssue};
pub use images::{
    DeleteImagesResult, ImageCategory, ImageDto, ImageFormat, ImagesHandler, UploadOptions,
};
pub use model_resolver::{ModelRef, ModelResolver, field_model_types};
pub use models::{ModelConfig, ModelFilter, ModelIdentifier, ModelsHandler};
pub use queue::{
    BatchStatus, EnqueueResult, NodeFieldValue, NodeOutput, ProcessorStatus, QueueHandler,
    QueueItem, QueueItemStatus, QueueStatus, QueueSummary, Session,
};
pub use retry::RetryPolicy;
pub use schemas::{
    SchemaSource, SchemasError, read_server_schemas, read_server_schemas_shared, server_schemas,
};
pub use tracker::{TrackEvent, TrackMode, Tracker};
pub use workflow_handle::{
    Cleanup, CleanupReport, HandleError, Output, Submission, SubmitOptions, WaitProgress,
    WorkflowHandle,
};
pub use workflows::{
    SortDirection, WorkflowCategory, WorkflowListQuery, WorkflowOrderBy, WorkflowPage,
    WorkflowRecord, WorkflowSummary, WorkflowsHandler,
};

/// The server `invk-run` talks to when none is given.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:9090";

/// The response header through which a multi-user server hands out a refreshed token.
pub const REFRESHED_TOKEN_HEADER: &str = "x-refreshed-token";

/// A client of one InvokeAI server. Cheap to clone: clones share the connection pool and the
/// token (a refreshed token seen by one clone is used by all).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// This clone's own bound on a request, when shorter than the builder's (see
    /// [`Client::with_timeout`]).
    patience: Option<Duration>,
    /// Whether this clone tries failed requests again (see [`Client::without_retries`]).
    retries: bool,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    token: RwLock<Option<Token>>,
    retry: RetryPolicy,
    request_timeout: Duration,
    /// Set once the server has answered: from then on a refused connection means it is
    /// restarting or overloaded, which is worth a retry.
    reached: AtomicBool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base.as_str())
            .field("token", &self.token())
            .field("retry", &self.inner.retry)
            .field("request_timeout", &self.request_timeout())
            .finish_non_exhaustive()
    }
}

/// Whether a request may be sent again after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Repeating it has the same effect as sending it once (GET, DELETE, cancel, ...).
    Idempotent,
    /// It may change the server each time (enqueue, upload, create): repeat it only when it
    /// certainly did not reach the server.
    OnlyIfNotSent,
}

/// A request body that can be rebuilt for each attempt.
pub(crate) enum Body {
    /// No body.
    Empty,
    /// A JSON body, serialized once.
    Json(Vec<u8>),
    /// A `multipart/form-data` body with one file part.
    File {
        /// Form field name.
        field: &'static str,
        /// File name sent with the part.
        file_name: String,
        /// Content type of the part.
        mime: &'static str,
        /// The bytes.
        bytes: Vec<u8>,
    },
}

impl Body {
    pub(crate) fn json<T: serde::Serialize + ?Sized>(value: &T) -> Body {
        // Serializing our own DTOs and `serde_json::Value`s cannot fail (string keys only).
        Body::Json(serde_json::to_vec(value).unwrap_or_default())
    }
}

impl Client {
    /// A client for the server at `base_url` with default settings.
    ///
    /// # Errors
    /// See [`ClientBuilder::build`].
    pub fn new(base_url: &str) -> Result<Client, ClientError> {
        ClientBuilder::new(base_url).build()
    }

    /// A clone (sharing the connections and the token) whose requests may take at most
    /// `timeout` each, answer included, and whose timed-out requests are not tried again: for
    /// short calls whose caller asks again anyway (following a queue, checking that a server
    /// answers), so that a server that accepts connections and answers nothing is noticed in
    /// seconds rather than after the read time-out. Never longer than the client's own bound.
    #[must_use]
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            patience: Some(timeout.min(self.inner.request_timeout)),
            retries: self.retries,
        }
    }

    /// A clone (sharing the connections and the token) that never tries a failed request
    /// again: for asking, over and over, whether a server that is away answers yet.
    #[must_use]
    pub fn without_retries(&self) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            patience: self.patience,
            retries: false,
        }
    }

    /// How long one request may take.
    fn request_timeout(&self) -> Duration {
        self.patience.unwrap_or(self.inner.request_timeout)
    }

    /// The base URL a client of the server at `raw` would have (see [`Client::base_url`]): the
    /// one name of a server however it was written (`host:9090`, `http://host:9090/`), without
    /// building a client.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] as [`ClientBuilder::build`] gives it.
    pub fn base_url_of(raw: &str) -> Result<Url, ClientError> {
        builder::normalize_base_url(raw)
    }

    /// A builder for a client of the server at `base_url`.
    #[must_use]
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(base_url)
    }

    /// The server's base URL (always ends with `/`; includes any sub-path).
    #[must_use]
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The current bearer token, if any (updated from `X-Refreshed-Token` answers). Use it to
    /// authenticate the Socket.IO connection.
    #[must_use]
    pub fn token(&self) -> Option<Token> {
        self.inner
            .token
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |t| t.clone())
    }

    /// Replaces the bearer token (or removes it with `None`).
    pub fn set_token(&self, token: Option<Token>) {
        match self.inner.token.write() {
            Ok(mut guard) => *guard = token,
            Err(poisoned) => *poisoned.into_inner() = token,
        }
    }

    /// Application information.
    #[must_use]
    pub fn app(&self) -> AppHandler<'_> {
        AppHandler::new(self)
    }

    /// Authentication (multi-user servers).
    #[must_use]
    pub fn auth(&self) -> AuthHandler<'_> {
        AuthHandler::new(self)
    }

    /// The workflow library.
    #[must_use]
    pub fn workflows(&self) -> WorkflowsHandler<'_> {
        WorkflowsHandler::new(self)
    }

    /// Boards.
    #[must_use]
    pub fn boards(&self) -> BoardsHandler<'_> {
        BoardsHandler::new(self)
    }

    /// Images.
    #[must_use]
    pub fn images(&self) -> ImagesHandler<'_> {
        ImagesHandler::new(self)
    }

    /// The session queue `default`.
    #[must_use]
    pub fn queue(&self) -> QueueHandler<'_> {
        QueueHandler::new(self, "default")
    }

    /// The session queue with the given id (InvokeAI only uses `default`).
    #[must_use]
    pub fn queue_with_id(&self, queue_id: &str) -> QueueHandler<'_> {
        QueueHandler::new(self, queue_id)
    }

    /// Installed models.
    #[must_use]
    pub fn models(&self) -> ModelsHandler<'_> {
        ModelsHandler::new(self)
    }

    /// The URL of an API route: `segments` are appended to the base URL, each percent-encoded
    /// (pass `""` last for a trailing slash).
    pub(crate) fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Sends a request and decodes a JSON answer.
    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        replay: Replay,
        body: Body,
    ) -> Result<T, ClientError> {
        let response = self.send(method.clone(), url.clone(), replay, body).await?;
        self.decode(method, url, response).await
    }

    /// Reads a response body whole, within the request time-out.
    pub(crate) async fn body(
        &self,
        method: Method,
        url: Url,
        response: Response,
    ) -> Result<impl std::ops::Deref<Target = [u8]>, ClientError> {
        match tokio::time::timeout(self.request_timeout(), response.bytes()).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(source)) => Err(self.transport_error(method, url, source)),
            Err(_) => Err(ClientError::Timeout {
                method,
                url: url.to_string(),
                timeout: self.request_timeout(),
                source: None,
            }),
        }
    }

    /// Reads a response body and decodes it as JSON, naming the field that failed.
    pub(crate) async fn decode<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        response: Response,
    ) -> Result<T, ClientError> {
        let bytes = self.body(method.clone(), url.clone(), response).await?;
        parse_json(method, &url, &bytes)
    }

    /// Sends a request, retrying transient failures as `replay` allows, and turns error
    /// statuses into [`ClientError`]s.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        replay: Replay,
        body: Body,
    ) -> Result<Response, ClientError> {
        self.with_retries(replay, || {
            self.send_once(method.clone(), url.clone(), &body)
        })
        .await
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries are used up.
    pub(crate) async fn with_retries<T, F, Fut>(
        &self,
        replay: Replay,
        mut attempt: F,
    ) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let mut retries = 0;
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(err)
                    if self.retries
                        && retries < self.inner.retry.max_retries
                        && self.may_retry(&err, replay) =>
                {
                    let delay = self.inner.retry.delay(retries);
                    tracing::warn!(error = %err, retry = retries + 1, ?delay, "transient failure; retrying");
                    tokio::time::sleep(delay).await;
                    retries += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    fn may_retry(&self, err: &ClientError, replay: Replay) -> bool {
        match err {
            // The request never left: safe to repeat whatever it is, but only once the server is
            // known to exist (a server that was never reached is most likely not running).
            ClientError::Connect { .. } => self.inner.reached.load(Ordering::Relaxed),
            _ if replay == Replay::OnlyIfNotSent => false,
            // An impatient clone's caller asks again itself.
            ClientError::Timeout { .. } => self.patience.is_none(),
            ClientError::Transport { source, .. } => retry::is_transient(source),
            ClientError::Http { status, .. } => retry::is_transient_status(*status),
            ClientError::Truncated { .. } => true,
            _ => false,
        }
    }

    pub(crate) async fn send_once(
        &self,
        method: Method,
        url: Url,
        body: &Body,
    ) -> Result<Response, ClientError> {
        tracing::debug!(%method, %url, "request");
        let mut request = self
            .inner
            .http
            .request(method.clone(), url.clone())
            .timeout(self.request_timeout());
        if let Some(token) = self.token() {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| ClientError::InvalidToken)?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        request = match body {
            Body::Empty => request,
            Body::Json(bytes) => request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes.clone()),
            Body::File {
                field,
                file_name,
                mime,
                bytes,
            } => {
                let part = reqwest::multipart::Part::bytes(bytes.clone())
                    .file_name(file_name.clone())
                    .mime_str(mime)
                    .map_err(|source| ClientError::Setup { source })?;
                request.multipart(reqwest::multipart::Form::new().part(*field, part))
            }
        };
        let response = request
            .send()
            .await
            .map_err(|source| self.transport_error(method.clone(), url.clone(), source))?;
        self.inner.reached.store(true, Ordering::Relaxed);
        self.take_refreshed_token(&response);
        let status = response.status();
        tracing::debug!(%method, %url, %status, "response");
        if status.is_success() {
            return Ok(response);
        }
        let text = match tokio::time::timeout(Duration::from_secs(30), response.text()).await {
            Ok(Ok(text)) => text,
            _ => String::new(),
        };
        Err(ClientError::from_status(method, &url, status, &text))
    }

    fn take_refreshed_token(&self, response: &Response) {
        let Some(value) = response.headers().get(REFRESHED_TOKEN_HEADER) else {
            return;
        };
        match value.to_str() {
            Ok(token) if !token.trim().is_empty() => {
                tracing::debug!("the server refreshed the token");
                self.set_token(Some(Token::new(token.trim().to_owned())));
            }
            _ => tracing::warn!("ignoring an unreadable `X-Refreshed-Token` header"),
        }
    }

    pub(crate) fn transport_error(
        &self,
        method: Method,
        url: Url,
        source: reqwest::Error,
    ) -> ClientError {
        let url = url.to_string();
        if source.is_connect() {
            ClientError::Connect {
                server: self.inner.base.to_string(),
                method,
                url,
                source,
            }
        } else if source.is_timeout() {
            ClientError::Timeout {
                method,
                url,
                timeout: self.request_timeout(),
                source: Some(source),
            }
        } else {
            ClientError::Transport {
                method,
                url,
                source,
            }
        }
    }
}

/// `true` when the server answered `404 Not Found`.
pub(crate) fn is_not_found(err: &ClientError) -> bool {
    err.status() == Some(StatusCode::NOT_FOUND)
}

/// An answer's body decoded as JSON, naming the field that failed.
pub(crate) fn parse_json<T: DeserializeOwned>(
    method: Method,
    url: &Url,
    bytes: &[u8],
) -> Result<T, ClientError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|source| ClientError::Decode {
        method,
        url: url.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_joined_under_the_sub_path_and_encoded() {
        let client = Client::new("http://host:9090/invoke").expect("client");
        assert_eq!(
            client.endpoint(&["api", "v1", "workflows", ""]).as_str(),
            "http://host:9090/invoke/api/v1/workflows/"
        );
        assert_eq!(
            client.endpoint(&["api", "v1", "boards", "a b/c"]).as_str(),
            "http://host:9090/invoke/api/v1/boards/a%20b%2Fc"
        );
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let client = Client::builder("http://h")
            .token("secret-jwt-value")
            .build()
            .expect("client");
        let shown = format!("{client:?}");
        assert!(!shown.contains("secret-jwt-value"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
        let builder = format!(
            "{:?}",
            Client::builder("http://h").token("secret-jwt-value")
        );
        assert!(!builder.contains("secret-jwt-value"), "{builder}");
    }
}
