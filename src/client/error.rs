//! [`ClientError`]: everything that can go wrong talking to the server, with the request (method
//! and URL, never the token) and the server's own message.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::queue::EnqueueResult;

/// An error talking to the InvokeAI server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server URL is unusable.
    #[error("invalid server URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP stack could not be set up.
    #[error("could not set up the HTTP client")]
    Setup {
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The token cannot be sent in an HTTP header.
    #[error(
        "the token contains characters that cannot be sent in an HTTP header; check `--token` or `INVK_TOKEN`"
    )]
    InvalidToken,
    /// The server could not be reached at all.
    #[error(
        "could not reach the InvokeAI server at `{server}` ({method} {url}); is it running? \
         Point invk-run at it with `--server URL` or `INVK_SERVER`"
    )]
    Connect {
        /// The server's base URL.
        server: String,
        /// Request method.
        method: Method,
        /// Request URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The request or its answer took too long.
    #[error("{method} {url} timed out (limit {}s)", timeout.as_secs_f64())]
    Timeout {
        /// Request method.
        method: Method,
        /// Request URL.
        url: String,
        /// The limit that was hit.
        timeout: Duration,
        /// The cause, when the HTTP stack reported one.
        #[source]
        source: Option<reqwest::Error>,
    },
    /// The connection failed while the request or the answer was under way.
    #[error("{method} {url} failed")]
    Transport {
        /// Request method.
        method: Method,
        /// Request URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{method} {url} failed with {status}: {detail}{}", status_hint(*status))]
    Http {
        /// Request method.
        method: Method,
        /// Request URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// The server's message (its `detail`, or the body).
        detail: String,
    },
    /// The server refused the request's content (`422`), with one issue per offending value.
    #[error(
        "{method} {url} was refused by the server (422):{}",
        issue_lines(issues)
    )]
    Validation {
        /// Request method.
        method: Method,
        /// Request URL.
        url: String,
        /// What the server objected to.
        issues: Vec<ValidationIssue>,
    },
    /// The server's answer did not have the expected shape.
    #[error("{method} {url}: unexpected answer at `{}`", source.path())]
    Decode {
        /// Request method.
        method: Method,
        /// Request URL.
        url: String,
        /// The cause, with the path of the field that failed.
        #[source]
        source: serde_path_to_error::Error<serde_json::Error>,
    },
    /// A download ended before all announced bytes arrived.
    #[error("download of {url} stopped after {received} of {expected} bytes")]
    Truncated {
        /// Request URL.
        url: String,
        /// The announced size (`Content-Length`).
        expected: u64,
        /// What arrived.
        received: u64,
    },
    /// A local file could not be read or written (on a full disk, the message says what to do).
    #[error("could not {action} `{}`{}", path.display(), crate::fs::place::full_disk_hint(source))]
    File {
        /// The file.
        path: PathBuf,
        /// What was being done (`read`, `write`, ...).
        action: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file to upload is not an image the server accepts.
    #[error("`{}` is not an image (PNG, JPEG, WebP, GIF, BMP or TIFF): {reason}", path.display())]
    NotAnImage {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// A workflow file or value is not a workflow.
    #[error("`{source_name}` is not an InvokeAI workflow: {reason}")]
    InvalidWorkflow {
        /// The file or description of the value.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// Nothing on the server has this id or name.
    #[error(
        "no {kind} has the id or name `{query}`{within}{}",
        candidate_list("known", candidates)
    )]
    NotFound {
        /// What was looked for (`workflow`, `board`, `model`).
        kind: &'static str,
        /// The id or name given.
        query: String,
        /// How the search was narrowed (for example " among the `sdxl` `main` models"), or empty.
        within: String,
        /// What exists instead (the closest names first), possibly empty.
        candidates: Vec<String>,
    },
    /// Several things on the server have this name.
    #[error("{} {kind}s are named `{query}`; use an id instead{}", candidates.len(), candidate_list("candidates", candidates))]
    Ambiguous {
        /// What was looked for (`workflow`, `board`, `model`).
        kind: &'static str,
        /// The name given.
        query: String,
        /// The matching entries, each with its id.
        candidates: Vec<String>,
    },
    /// The entry cannot be changed (a built-in workflow).
    #[error("{kind} `{id}` is read-only: {reason}")]
    ReadOnly {
        /// What it is.
        kind: &'static str,
        /// Its id.
        id: String,
        /// Why.
        reason: String,
    },
    /// The queue accepted fewer sessions than the batch asked for: it is full.
    #[error(
        "the queue `{queue_id}` is full: it took {enqueued} of {requested} sessions (the server's \
         `max_queue_size` counts pending items); wait for it to drain or raise the limit"
    )]
    QueueFull {
        /// The queue.
        queue_id: String,
        /// Sessions asked for.
        requested: u64,
        /// Sessions enqueued (their ids are in `result`).
        enqueued: u64,
        /// What the server did enqueue.
        result: Box<EnqueueResult>,
    },
    /// Logging in needs a password.
    #[error("logging in as `{email}` needs a password: set `INVK_PASSWORD`")]
    MissingPassword {
        /// The email given.
        email: String,
    },
}

fn status_hint(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => {
            " (the server wants a valid login: pass `--token`, or `--email` with `INVK_PASSWORD`)"
        }
        StatusCode::FORBIDDEN => " (the account is not allowed to do this)",
        _ => "",
    }
}

fn issue_lines(issues: &[ValidationIssue]) -> String {
    issues
        .iter()
        .map(|issue| format!("\n  - {issue}"))
        .collect()
}

fn candidate_list(label: &str, candidates: &[String]) -> String {
    const SHOWN: usize = 10;
    if candidates.is_empty() {
        return match label {
            "known" => "; there are none".to_owned(),
            _ => String::new(),
        };
    }
    let mut out = format!("; {label}: ");
    out.push_str(
        &candidates
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    );
    if candidates.len() > SHOWN {
        out.push_str(&format!(" and {} more", candidates.len() - SHOWN));
    }
    out
}

impl ClientError {
    /// Makes an I/O error on the local file `path` a [`ClientError::File`] saying what was being
    /// done (`read`, `write`, ...): for `map_err`.
    pub fn file(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ClientError {
        let path = path.to_path_buf();
        move |source| ClientError::File {
            path,
            action,
            source,
        }
    }

    /// The HTTP status the server answered with, if the error is an answer (`404`, `401`, `403`,
    /// `409`, `415`, `422`, ...).
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Http { status, .. } => Some(*status),
            ClientError::Validation { .. } => Some(StatusCode::UNPROCESSABLE_ENTITY),
            _ => None,
        }
    }

    /// The server's message, if it sent one.
    #[must_use]
    pub fn detail(&self) -> Option<&str> {
        match self {
            ClientError::Http { detail, .. } => Some(detail),
            _ => None,
        }
    }

    /// The issues of a `422` answer (empty for other errors).
    #[must_use]
    pub fn validation_issues(&self) -> &[ValidationIssue] {
        match self {
            ClientError::Validation { issues, .. } => issues,
            _ => &[],
        }
    }

    /// Whether the server could not be reached or answered as a server that is down or
    /// restarting does (connection refused or reset, a timeout, `502`/`503`/`504`): worth
    /// trying again after a while, unlike an answer that refuses the request.
    #[must_use]
    pub fn is_unreachable(&self) -> bool {
        match self {
            ClientError::Connect { .. }
            | ClientError::Timeout { .. }
            | ClientError::Transport { .. }
            | ClientError::Truncated { .. } => true,
            ClientError::Http { status, .. } => matches!(
                *status,
                StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            ),
            _ => false,
        }
    }

    /// The partial result of an enqueue into a full queue.
    #[must_use]
    pub fn partial_enqueue(&self) -> Option<&EnqueueResult> {
        match self {
            ClientError::QueueFull { result, .. } => Some(result),
            _ => None,
        }
    }

    /// Builds the error for an error status from the answer's body.
    pub(crate) fn from_status(
        method: Method,
        url: &Url,
        status: StatusCode,
        body: &str,
    ) -> ClientError {
        let url = url.to_string();
        let parsed: Option<Value> = serde_json::from_str(body).ok();
        let detail = parsed.as_ref().and_then(|v| v.get("detail"));
        if status == StatusCode::UNPROCESSABLE_ENTITY
            && let Some(Value::Array(items)) = detail
        {
            let issues = items.iter().map(ValidationIssue::from_detail).collect();
            return ClientError::Validation {
                method,
                url,
                issues,
            };
        }
        let detail = match detail {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None if body.trim().is_empty() => {
                status.canonical_reason().unwrap_or("no message").to_owned()
            }
            None => truncate(body.trim(), 500),
        };
        ClientError::Http {
            method,
            url,
            status,
            detail,
        }
    }
}

/// One item of a `422` answer, mapped back to the graph node and field it names.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationIssue {
    /// Where, as the server gave it (`["body","batch","graph","nodes","<id>","<type>","<field>"]`).
    pub loc: Vec<Value>,
    /// The graph node the issue is about, when `loc` names one.
    pub node_id: Option<String>,
    /// The field of that node (dotted for nested values), when `loc` names one.
    pub field: Option<String>,
    /// The server's error type (`int_parsing`, `missing`, `value_error`, ...).
    pub kind: String,
    /// A readable message.
    pub message: String,
    /// The offending value, when the server echoed it (not for whole nodes or graphs).
    pub input: Option<Value>,
}

impl ValidationIssue {
    fn from_detail(item: &Value) -> ValidationIssue {
        let loc: Vec<Value> = item
            .get("loc")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let raw_message = item
            .get("msg")
            .and_then(Value::as_str)
            .unwrap_or("invalid value");
        let (node_id, field) = node_and_field(&loc);
        let message = if kind == "union_tag_invalid" {
            match item.pointer("/ctx/tag").and_then(Value::as_str) {
                Some(tag) => format!("unknown node type `{tag}`"),
                None => truncate(raw_message, 200),
            }
        } else {
            truncate(
                raw_message
                    .strip_prefix("Value error, ")
                    .unwrap_or(raw_message),
                300,
            )
        };
        // Echo the input only for scalar values: whole nodes or graphs are noise in a message.
        let input = item
            .get("input")
            .filter(|v| !v.is_object() && !v.is_array())
            .cloned();
        ValidationIssue {
            loc,
            node_id,
            field,
            kind,
            message,
            input,
        }
    }
}

/// Finds `nodes/<id>/<type tag>/<field...>` in a `loc`. Node fields are validated through a union
/// tagged by the node type, so the element after the node id is the type when more follow.
fn node_and_field(loc: &[Value]) -> (Option<String>, Option<String>) {
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    let Some(pos) = loc.iter().position(|v| v.as_str() == Some("nodes")) else {
        return (None, None);
    };
    let Some(node) = loc.get(pos + 1) else {
        return (None, None);
    };
    let rest = &loc[(pos + 2).min(loc.len())..];
    let field = if rest.len() >= 2 {
        Some(rest[1..].iter().map(text).collect::<Vec<_>>().join("."))
    } else {
        None
    };
    (Some(text(node)), field)
}

impl fmt::Display for ValidationIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.node_id, &self.field) {
            (Some(node), Some(field)) => write!(f, "node `{node}` field `{field}`: ")?,
            (Some(node), None) => write!(f, "node `{node}`: ")?,
            _ => {
                let path: Vec<String> = self
                    .loc
                    .iter()
                    .filter(|v| v.as_str() != Some("body"))
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect();
                if !path.is_empty() {
                    write!(f, "`{}`: ", path.join("."))?;
                }
            }
        }
        write!(f, "{}", self.message)?;
        if let Some(input) = &self.input {
            write!(f, " (got `{}`)", truncate(&input.to_string(), 80))?;
        }
        Ok(())
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn url() -> Url {
        Url::parse("http://127.0.0.1:9090/api/v1/queue/default/enqueue_batch").expect("url")
    }

    #[test]
    fn a_422_names_the_node_and_field() {
        let body = json!({"detail": [
            {"type": "int_parsing", "loc": ["body","batch","graph","nodes","b","blank_image","width"],
             "msg": "Input should be a valid integer, unable to parse string as an integer", "input": "abc"},
            {"type": "union_tag_invalid", "loc": ["body","batch","graph","nodes","x"],
             "msg": "Input tag 'blank_imagex' found using 'type' does not match any of the expected tags: 'a', 'b', ...",
             "input": {"id": "x", "type": "blank_imagex"}, "ctx": {"tag": "blank_imagex"}},
            {"type": "value_error", "loc": ["body","batch","graph"],
             "msg": "Value error, Edge source node x does not exist in the graph", "input": {"nodes": {}}}
        ]});
        let err = ClientError::from_status(
            Method::POST,
            &url(),
            StatusCode::UNPROCESSABLE_ENTITY,
            &body.to_string(),
        );
        assert_eq!(err.status(), Some(StatusCode::UNPROCESSABLE_ENTITY));
        let issues = err.validation_issues();
        assert_eq!(issues[0].node_id.as_deref(), Some("b"));
        assert_eq!(issues[0].field.as_deref(), Some("width"));
        assert_eq!(issues[1].node_id.as_deref(), Some("x"));
        assert_eq!(issues[1].field, None);
        insta::assert_snapshot!(err.to_string(), @r#"
        POST http://127.0.0.1:9090/api/v1/queue/default/enqueue_batch was refused by the server (422):
          - node `b` field `width`: Input should be a valid integer, unable to parse string as an integer (got `"abc"`)
          - node `x`: unknown node type `blank_imagex`
          - `batch.graph`: Edge source node x does not exist in the graph
        "#);
    }

    #[test]
    fn other_statuses_carry_the_detail_and_are_distinguishable() {
        let cases = [
            (StatusCode::NOT_FOUND, r#"{"detail":"Workflow not found"}"#),
            (
                StatusCode::UNAUTHORIZED,
                r#"{"detail":"Not authenticated"}"#,
            ),
            (StatusCode::FORBIDDEN, r#"{"detail":"Not authorized"}"#),
            (
                StatusCode::CONFLICT,
                r#"{"detail":"Image storage maintenance"}"#,
            ),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                r#"{"detail":"Not an image"}"#,
            ),
            (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>"),
            (StatusCode::SERVICE_UNAVAILABLE, ""),
        ];
        let shown: Vec<String> = cases
            .iter()
            .map(|(status, body)| {
                let err = ClientError::from_status(Method::GET, &url(), *status, body);
                assert_eq!(err.status(), Some(*status));
                err.to_string()
            })
            .collect();
        insta::assert_snapshot!(shown.join("\n"), @r"
        GET http://127.0.0.1:9090/api/v1/queue/default/enqueue_batch failed with 404 Not Found: Workflow not found
        GET http://127.0.0.1:9090/api/v1/queue/default/enqueue_batch failed with 401 Unauthorized: Not authenticated (the server wants a valid login: pass `--token`, or `--email` with `INVK_PASSWORD`)
        GET http://127.0.0.1:9090/api/v1/queue/default/enqueue_batch failed with 403 Forbidden: Not authorized (the account is not allowed to do this)
        GET http://127.0.0.1:9090/api/v1/queue/default/enqueue_batch failed with 409 Conflict: Image storage maintenance
        GET http://127.0.0.1:9090/api/v1/queue/default/enqueue_batch failed with 415 Unsupported Media Type: Not an image
        GET http://127.0.0.1:9090/api/v1/queue/default/enqueue_batch failed with 502 Bad Gateway: <html>bad gateway</html>
        GET http://127.0.0.1:9090/api/v1/queue/default/enqueue_batch failed with 503 Service Unavailable: Service Unavailable
        ");
    }

    #[test]
    fn lookups_list_their_candidates() {
        let none = ClientError::NotFound {
            kind: "model",
            query: "sdxl".into(),
            within: String::new(),
            candidates: vec![],
        };
        assert_eq!(
            none.to_string(),
            "no model has the id or name `sdxl`; there are none"
        );
        let many = ClientError::Ambiguous {
            kind: "board",
            query: "b".into(),
            candidates: vec!["`b` (id `1`)".into(), "`b` (id `2`)".into()],
        };
        assert_eq!(
            many.to_string(),
            "2 boards are named `b`; use an id instead; candidates: `b` (id `1`), `b` (id `2`)"
        );
    }
}
