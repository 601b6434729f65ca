//! A manifest's `server:`: one URL, or a pool of them, each a URL or a map with options of its
//! own (see [`crate::server_entry::ServerEntry`]). Read by hand, so that each problem is placed at
//! its item and key.

use serde_json::Value;

use super::diagnostic::{At, Diagnostics};
use super::model::{ServerOptions, ServerSpec, Servers};
use super::source::YamlPath;
use crate::server_entry::ServerEntry;

/// The most servers a manifest's `server:` list names.
pub const MAX_POOL: usize = 32;

const URL_HINT: &str = "write the server's base URL, e.g. `http://127.0.0.1:9090`";

/// Reads `server:`; problems go to `diags`.
pub(super) fn read(value: Value, diags: &mut Diagnostics<'_>) -> Option<Servers> {
    let here = YamlPath::keys(&["server"]);
    match value {
        Value::Null => None,
        Value::String(url) => {
            check_url(&url, &here, diags);
            Some(Servers::One(url))
        }
        Value::Array(items) => {
            if items.is_empty() || items.len() > MAX_POOL {
                diags.push(
                    &here,
                    At::Value,
                    format!(
                        "a pool of {} servers: a list takes 1 to {MAX_POOL}",
                        items.len()
                    ),
                    Some(
                        "name each server once, e.g. `[http://gpu-1:9090, http://gpu-2:9090]`"
                            .into(),
                    ),
                );
            }
            let specs = items
                .into_iter()
                .take(MAX_POOL)
                .enumerate()
                .filter_map(|(i, item)| read_item(item, &here.index(i), diags))
                .collect();
            Some(Servers::Pool(specs))
        }
        _ => {
            diags.push(
                &here,
                At::Value,
                "`server:` takes a URL or a list of them",
                Some(URL_HINT.into()),
            );
            None
        }
    }
}

fn read_item(item: Value, here: &YamlPath, diags: &mut Diagnostics<'_>) -> Option<ServerSpec> {
    let map = match item {
        Value::String(url) => {
            return check_url(&url, here, diags).then_some(ServerSpec::Url(url));
        }
        Value::Object(map) => map,
        _ => {
            diags.push(
                here,
                At::Value,
                "a server of the list is a URL or a map with `url` and options",
                Some("e.g. `{url: http://gpu-1:9090, window: 8}`".into()),
            );
            return None;
        }
    };
    let mut entry = ServerEntry::default();
    let mut ok = true;
    for (key, value) in map {
        let text = match &value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let set = if key == "url" {
            entry.url = text;
            Ok(())
        } else {
            entry.set(&key, &text)
        };
        if let Err(problem) = set {
            ok = false;
            let at = if problem.is_in_the_key() {
                At::Key
            } else {
                At::Value
            };
            diags.push(&here.key(&key), at, problem.to_string(), None);
        }
    }
    if entry.url.is_empty() {
        diags.push(
            here,
            At::Value,
            "this server has no `url`",
            Some(URL_HINT.into()),
        );
        return None;
    }
    if !check_url(&entry.url, &here.key("url"), diags) {
        return None;
    }
    if let Err(problem) = entry.check() {
        diags.push(here, At::Value, problem.to_string(), None);
        return None;
    }
    ok.then_some(ServerSpec::Entry(ServerOptions {
        url: entry.url,
        window: entry.window,
        weight: entry.weight,
        token_env: entry.token_env,
        email: entry.email,
        password_env: entry.password_env,
    }))
}

/// Whether `url` is an http(s) URL; a problem goes to `diags`.
fn check_url(url: &str, here: &YamlPath, diags: &mut Diagnostics<'_>) -> bool {
    let ok = crate::server_entry::is_http_url(url);
    if !ok {
        diags.push(
            here,
            At::Value,
            format!("`{url}` is not an http(s) URL"),
            Some(URL_HINT.into()),
        );
    }
    ok
}

/// The entries of a checked `server:`.
pub(super) fn entries(servers: &Servers) -> Vec<ServerEntry> {
    match servers {
        Servers::One(url) => vec![ServerEntry::url(url)],
        Servers::Pool(specs) => specs
            .iter()
            .map(|spec| match spec {
                ServerSpec::Url(url) => ServerEntry::url(url),
                ServerSpec::Entry(o) => ServerEntry {
                    url: o.url.clone(),
                    window: o.window,
                    weight: o.weight,
                    token_env: o.token_env.clone(),
                    email: o.email.clone(),
                    password_env: o.password_env.clone(),
                },
            })
            .collect(),
    }
}

/// The servers a manifest's `server:` value names, read leniently before the manifest is
/// checked (options that cannot be read are left out; the check reports them).
#[must_use]
pub fn lenient(value: &Value) -> Vec<ServerEntry> {
    let item = |v: &Value| -> Option<ServerEntry> {
        match v {
            Value::String(url) => Some(ServerEntry::url(url)),
            Value::Object(map) => {
                let mut entry = ServerEntry::url(map.get("url")?.as_str()?);
                for (key, value) in map.iter().filter(|(k, _)| *k != "url") {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let _ = entry.set(key, &text);
                }
                Some(entry)
            }
            _ => None,
        }
    };
    match value {
        Value::Array(items) => items.iter().take(MAX_POOL).filter_map(item).collect(),
        other => item(other).into_iter().collect(),
    }
}
