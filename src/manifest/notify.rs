//! A manifest's `notify:`: who is told when a run ends (and, if asked, when a job fails): a URL
//! that is POSTed a JSON summary, or a command that reads it on its stdin. One entry or a list.
//!
//! Secrets come only from environment variables (`headers_env`, `url_env`): an entry with a
//! secret written in it (an auth-like header, a URL with a password or a token) is refused, so
//! that a manifest can be shared and committed. Read by hand, so that each problem is placed at
//! its item and key.

use std::time::Duration;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::diagnostic::{At, Diagnostics, describe, did_you_mean};
use super::source::YamlPath;

/// How long a notification may take by default, retries included.
pub const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest `timeout:` a notification may be given, in seconds.
pub const MAX_NOTIFY_TIMEOUT_SECS: f64 = 600.0;

/// The most entries a `notify:` list holds.
pub const MAX_NOTIFY_ENTRIES: usize = 16;

/// The keys of a `notify:` entry.
const KEYS: &[&str] = &[
    "url",
    "url_env",
    "command",
    "on",
    "headers",
    "headers_env",
    "timeout",
];

const SECRET_HINT: &str = "secrets come only from environment variables: write `headers_env: {Authorization: VAR}` (or `url_env: VAR` for a URL that is a secret itself) and set VAR where the run starts";

/// A manifest's `notify:`: one entry or a list of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Notify {
    /// One notification.
    One(Box<NotifyEntry>),
    /// Several notifications.
    List(Vec<NotifyEntry>),
}

impl Notify {
    /// The entries.
    #[must_use]
    pub fn entries(&self) -> &[NotifyEntry] {
        match self {
            Notify::One(entry) => std::slice::from_ref(entry.as_ref()),
            Notify::List(entries) => entries,
        }
    }
}

/// One notification: where it goes (exactly one of `url`, `url_env`, `command`), on which
/// ends of a run, and how long it may take.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyEntry {
    /// An http(s) URL the JSON summary is POSTed to. It may not carry a password or a token:
    /// use `url_env` or `headers_env` for those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The environment variable that holds the URL (for webhooks whose URL is their secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// A program and its arguments, run with the JSON summary on its stdin (no shell).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Which ends notify: `done` (every job completed), `failed` (any other end: a job failed
    /// or did not run, the run was interrupted or stopped with an error), `job_failed` (one
    /// notification per failed job, as it fails). Default `[done, failed]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<NotifyOn>,
    /// Headers sent with the POST, written out (no secrets: `Authorization`, tokens and keys
    /// are refused).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    /// Headers sent with the POST whose values are read from environment variables:
    /// `{HEADER: VARIABLE}`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers_env: IndexMap<String, String>,
    /// Seconds the notification may take in all, retries included (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.001, max = 600.0))]
    pub timeout: Option<f64>,
}

/// An end of a run that notifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyOn {
    /// Every job completed.
    Done,
    /// The run ended any other way.
    Failed,
    /// A job failed (one notification per failed job).
    JobFailed,
}

impl NotifyOn {
    /// Its name in a manifest.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            NotifyOn::Done => "done",
            NotifyOn::Failed => "failed",
            NotifyOn::JobFailed => "job_failed",
        }
    }

    fn parse(word: &str) -> Option<NotifyOn> {
        [NotifyOn::Done, NotifyOn::Failed, NotifyOn::JobFailed]
            .into_iter()
            .find(|on| on.name() == word)
    }
}

impl NotifyEntry {
    /// An entry that POSTs to `url` when a run ends, however it ends.
    #[must_use]
    pub fn url(url: &str) -> NotifyEntry {
        NotifyEntry {
            url: Some(url.to_owned()),
            ..NotifyEntry::default()
        }
    }

    /// An entry that runs `command` when a run ends, however it ends.
    #[must_use]
    pub fn command(command: Vec<String>) -> NotifyEntry {
        NotifyEntry {
            command,
            ..NotifyEntry::default()
        }
    }

    /// Whether it notifies on `end` (`on:` left out: `done` and `failed`).
    #[must_use]
    pub fn notifies_on(&self, end: NotifyOn) -> bool {
        if self.on.is_empty() {
            end != NotifyOn::JobFailed
        } else {
            self.on.contains(&end)
        }
    }

    /// How long it may take in all, retries included.
    #[must_use]
    pub fn time_bound(&self) -> Duration {
        self.timeout
            .filter(|t| t.is_finite() && *t > 0.0)
            .map_or(DEFAULT_NOTIFY_TIMEOUT, |t| {
                Duration::from_secs_f64(t.min(MAX_NOTIFY_TIMEOUT_SECS))
            })
    }
}

/// What is secret in a notification URL, if anything: a password, a token-like query
/// parameter, or a webhook whose path is its secret.
#[must_use]
pub fn url_secret(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if parsed.password().is_some() {
        return Some("the URL carries a password".into());
    }
    if let Some((name, _)) = parsed
        .query_pairs()
        .find(|(name, value)| !value.is_empty() && secret_name(name))
    {
        return Some(format!(
            "the URL carries a secret in its query parameter `{name}`"
        ));
    }
    let host = parsed.host_str().unwrap_or_default();
    let path = parsed.path();
    let webhook = (host == "hooks.slack.com" && path.starts_with("/services/"))
        || (matches!(host, "discord.com" | "discordapp.com") && path.starts_with("/api/webhooks/"));
    webhook.then(|| format!("a {host} webhook URL is a secret itself"))
}

/// What is secret in a header written out, if anything: its name says it carries credentials,
/// or its value looks like a credential.
#[must_use]
pub fn header_secret(name: &str, value: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "authorization" | "proxy-authorization" | "cookie"
    ) || secret_name(&lower)
    {
        return Some(format!("the header `{name}` carries credentials"));
    }
    let value = value.trim_start().to_ascii_lowercase();
    ["bearer ", "basic ", "token ", "digest "]
        .iter()
        .any(|scheme| value.starts_with(scheme))
        .then(|| format!("the header `{name}` holds a credential"))
}

/// Whether a header or query parameter name says it carries a secret.
fn secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let joined = words.concat();
    [
        "token",
        "secret",
        "password",
        "passwd",
        "apikey",
        "auth",
        "signature",
        "sig",
        "key",
        "credential",
        "credentials",
    ]
    .iter()
    .any(|w| words.contains(w))
        || [
            "apikey",
            "accesstoken",
            "authtoken",
            "secret",
            "password",
            "token",
        ]
        .iter()
        .any(|w| joined.contains(w))
}

/// Whether `name` can name an environment variable.
fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// Whether `name` can be a header name.
fn is_header_name(name: &str) -> bool {
    reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
}

/// Checks a notification URL given on the command line (`--notify URL`): an http(s) URL with
/// no secret written in it.
///
/// # Errors
/// What is wrong with it, and what to do.
pub fn check_cli_url(url: &str) -> Result<String, String> {
    if !crate::server_entry::is_http_url(url) {
        return Err(format!(
            "`{url}` is not an http(s) URL (e.g. `https://example.com/hook`)"
        ));
    }
    if let Some(secret) = url_secret(url) {
        return Err(format!(
            "{secret}: a secret may not be written on the command line; put the notification in the manifest with `url_env` or `headers_env`, or use `--notify-command` with a variable (`curl -d @- \"$HOOK_URL\"`)"
        ));
    }
    Ok(url.to_owned())
}

/// Reads `notify:`; problems go to `diags`.
pub(super) fn read(value: Value, diags: &mut Diagnostics<'_>) -> Option<Notify> {
    let here = YamlPath::keys(&["notify"]);
    match value {
        Value::Null => None,
        Value::Array(items) => {
            if items.is_empty() || items.len() > MAX_NOTIFY_ENTRIES {
                diags.push(
                    &here,
                    At::Value,
                    format!(
                        "a `notify:` list of {} entries: it takes 1 to {MAX_NOTIFY_ENTRIES}",
                        items.len()
                    ),
                    None,
                );
            }
            let entries: Vec<NotifyEntry> = items
                .into_iter()
                .take(MAX_NOTIFY_ENTRIES)
                .enumerate()
                .filter_map(|(i, item)| read_entry(item, &here.index(i), diags))
                .collect();
            Some(Notify::List(entries))
        }
        item => read_entry(item, &here, diags).map(|entry| Notify::One(Box::new(entry))),
    }
}

fn read_entry(item: Value, here: &YamlPath, diags: &mut Diagnostics<'_>) -> Option<NotifyEntry> {
    let Value::Object(map) = item else {
        diags.push(
            here,
            At::Value,
            format!(
                "a notification is a map with `url`, `url_env` or `command`, found {}",
                describe(&item)
            ),
            Some("e.g. `{url: https://example.com/hook, on: [done, failed]}`".into()),
        );
        return None;
    };
    let mut entry = NotifyEntry::default();
    let mut problems = Problems { diags, count: 0 };
    for (key, value) in map {
        let at_key = here.key(&key);
        match key.as_str() {
            "url" => match value {
                Value::String(url) if crate::server_entry::is_http_url(&url) => {
                    if let Some(secret) = url_secret(&url) {
                        problems.push(&at_key, At::Value, secret, Some(SECRET_HINT.into()));
                    }
                    entry.url = Some(url);
                }
                other => problems.push(
                    &at_key,
                    At::Value,
                    format!("`url` takes an http(s) URL, found {}", describe(&other)),
                    Some("e.g. `https://example.com/hook`".into()),
                ),
            },
            "url_env" => match value {
                Value::String(name) if is_env_name(&name) => entry.url_env = Some(name),
                other => problems.push(
                    &at_key,
                    At::Value,
                    format!(
                        "`url_env` takes the name of an environment variable, found {}",
                        describe(&other)
                    ),
                    Some("e.g. `url_env: SLACK_WEBHOOK_URL`".into()),
                ),
            },
            "command" => match words(&value) {
                Some(command) if !command.is_empty() && !command[0].is_empty() => {
                    entry.command = command;
                }
                _ => problems.push(
                    &at_key,
                    At::Value,
                    format!(
                        "`command` takes a program and its arguments as a list, found {}",
                        describe(&value)
                    ),
                    Some("e.g. `command: [notify-send, invk-run]` (it reads the summary on its stdin; no shell)".into()),
                ),
            },
            "on" => {
                let list = match value {
                    Value::String(word) => vec![Value::String(word)],
                    Value::Array(list) => list,
                    other => {
                        problems.push(
                            &at_key,
                            At::Value,
                            format!("`on` takes a list of ends, found {}", describe(&other)),
                            Some("e.g. `on: [done, failed, job_failed]`".into()),
                        );
                        Vec::new()
                    }
                };
                for (i, word) in list.into_iter().enumerate() {
                    match word.as_str().and_then(NotifyOn::parse) {
                        Some(on) if !entry.on.contains(&on) => entry.on.push(on),
                        Some(_) => {}
                        None => {
                            let hint = word
                                .as_str()
                                .and_then(|w| {
                                    did_you_mean(w, ["done", "failed", "job_failed"])
                                })
                                .unwrap_or_else(|| "the ends are `done`, `failed` and `job_failed`".into());
                            problems.push(
                                &at_key.index(i),
                                At::Value,
                                format!("`on` does not know {}", describe(&word)),
                                Some(hint),
                            );
                        }
                    }
                }
            }
            "headers" => {
                let Some(headers) = string_map(&value) else {
                    problems.push(
                        &at_key,
                        At::Value,
                        format!("`headers` takes a map of header names to values, found {}", describe(&value)),
                        None,
                    );
                    continue;
                };
                for (name, text) in headers {
                    if !is_header_name(&name) {
                        problems.push(&at_key.key(&name), At::Key, format!("`{name}` is not a header name"), None);
                    } else if let Some(secret) = header_secret(&name, &text) {
                        problems.push(&at_key.key(&name), At::Value, secret, Some(SECRET_HINT.into()));
                    }
                    entry.headers.insert(name, text);
                }
            }
            "headers_env" => {
                let Some(headers) = string_map(&value) else {
                    problems.push(
                        &at_key,
                        At::Value,
                        format!("`headers_env` takes a map of header names to environment variables, found {}", describe(&value)),
                        Some("e.g. `headers_env: {Authorization: HOOK_AUTH}`".into()),
                    );
                    continue;
                };
                for (name, variable) in headers {
                    if !is_header_name(&name) {
                        problems.push(&at_key.key(&name), At::Key, format!("`{name}` is not a header name"), None);
                    } else if !is_env_name(&variable) {
                        problems.push(
                            &at_key.key(&name),
                            At::Value,
                            format!("`{variable}` is not the name of an environment variable"),
                            Some("write the variable's name, not its value: `Authorization: HOOK_AUTH`, with `HOOK_AUTH='Bearer ...'` set where the run starts".into()),
                        );
                    }
                    entry.headers_env.insert(name, variable);
                }
            }
            "timeout" => match value.as_f64() {
                Some(t) if t > 0.0 && t <= MAX_NOTIFY_TIMEOUT_SECS => entry.timeout = Some(t),
                _ => problems.push(
                    &at_key,
                    At::Value,
                    format!(
                        "`timeout` takes seconds, more than 0 and at most {MAX_NOTIFY_TIMEOUT_SECS}, found {}",
                        describe(&value)
                    ),
                    Some("leave it out for 30 seconds, retries included".into()),
                ),
            },
            other => {
                let hint = did_you_mean(other, KEYS.iter().copied())
                    .unwrap_or_else(|| format!("known keys: {}", KEYS.join(", ")));
                problems.push(&at_key, At::Key, format!("unknown key `{other}` in a notification"), Some(hint));
            }
        }
    }
    let targets = usize::from(entry.url.is_some())
        + usize::from(entry.url_env.is_some())
        + usize::from(!entry.command.is_empty());
    if targets != 1 && problems.count == 0 {
        problems.push(
            here,
            At::Value,
            if targets == 0 {
                "this notification has no `url`, `url_env` or `command`".to_owned()
            } else {
                "a notification has one of `url`, `url_env` and `command`".to_owned()
            },
            Some("write one per entry; make `notify:` a list for several".into()),
        );
    }
    let http = entry.url.is_some() || entry.url_env.is_some();
    if !http && problems.count == 0 && (!entry.headers.is_empty() || !entry.headers_env.is_empty())
    {
        problems.push(
            here,
            At::Value,
            "headers are for a URL, and this notification runs a command".to_owned(),
            Some(
                "the command reads the summary on its stdin and sees the run's environment".into(),
            ),
        );
    }
    (problems.count == 0).then_some(entry)
}

/// The problems of one entry, counted.
struct Problems<'d, 'a> {
    diags: &'d mut Diagnostics<'a>,
    count: usize,
}

impl Problems<'_, '_> {
    fn push(&mut self, path: &YamlPath, at: At, message: String, hint: Option<String>) {
        self.count += 1;
        self.diags.push(path, at, message, hint);
    }
}

/// A list of strings.
fn words(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect()
}

/// A map of strings to strings.
fn string_map(value: &Value) -> Option<Vec<(String, String)>> {
    value
        .as_object()?
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => Some((k.clone(), s.clone())),
            Value::Number(n) => Some((k.clone(), n.to_string())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_or_a_token_in_a_url_is_a_secret() {
        assert!(url_secret("https://u:p@example.com/hook").is_some());
        assert!(
            url_secret("https://example.com/hook?token=abc").is_some_and(|s| s.contains("`token`"))
        );
        assert!(url_secret("https://example.com/hook?api_key=abc").is_some());
        assert!(url_secret("https://example.com/hook?access_token=abc").is_some());
        assert!(url_secret("https://example.com/hook?sig=abc").is_some());
        assert!(url_secret("https://hooks.slack.com/services/T0/B0/XYZ").is_some());
        assert!(url_secret("https://discord.com/api/webhooks/1/abc").is_some());
    }

    #[test]
    fn a_plain_url_is_no_secret() {
        assert_eq!(url_secret("https://example.com/hook"), None);
        assert_eq!(
            url_secret("https://user@example.com/hook?run=7&monkey=1"),
            None
        );
        assert_eq!(url_secret("http://127.0.0.1:8080/done?token="), None);
    }

    #[test]
    fn auth_headers_and_credential_values_are_secrets() {
        assert!(header_secret("Authorization", "x").is_some());
        assert!(header_secret("X-Api-Key", "abc").is_some());
        assert!(header_secret("X-Auth-Token", "abc").is_some());
        assert!(header_secret("X-Gitlab-Token", "abc").is_some());
        assert!(header_secret("X-Whatever", "Bearer abc").is_some());
        assert_eq!(header_secret("X-Source", "invk-run"), None);
        assert_eq!(header_secret("Content-Type", "application/json"), None);
        assert_eq!(header_secret("X-Monkey", "keyboard"), None);
    }

    #[test]
    fn on_defaults_to_the_ends_of_a_run() {
        let entry = NotifyEntry::url("https://example.com/hook");
        assert!(entry.notifies_on(NotifyOn::Done));
        assert!(entry.notifies_on(NotifyOn::Failed));
        assert!(!entry.notifies_on(NotifyOn::JobFailed));
        let entry = NotifyEntry {
            on: vec![NotifyOn::JobFailed],
            ..entry
        };
        assert!(!entry.notifies_on(NotifyOn::Done));
        assert!(entry.notifies_on(NotifyOn::JobFailed));
    }

    #[test]
    fn the_time_bound_is_thirty_seconds_unless_set() {
        let entry = NotifyEntry::url("https://example.com/hook");
        assert_eq!(entry.time_bound(), Duration::from_secs(30));
        let quick = NotifyEntry {
            timeout: Some(0.5),
            ..entry
        };
        assert_eq!(quick.time_bound(), Duration::from_millis(500));
    }

    #[test]
    fn the_command_line_refuses_a_url_with_a_secret() {
        assert!(check_cli_url("https://example.com/hook").is_ok());
        assert!(check_cli_url("https://u:p@example.com/hook").is_err());
        assert!(check_cli_url("example.com").is_err());
    }
}
