//! Log output: `tracing` to stderr, filtered by `INVK_LOG` or `-v`/`-vv`; coloured only on a
//! terminal, and never with `NO_COLOR` set (<https://no-color.org>).
//!
//! Secrets stay out of the log at every level, in two ways:
//! - The dependencies that log the wire ([`WIRE_TARGETS`]: at trace, tungstenite prints the
//!   websocket handshake whole, `authorization: Bearer …` included) are held at `info` unless
//!   `INVK_LOG` names them: `INVK_LOG=trace` is trace for invk-run and `info` for them, while
//!   `INVK_LOG=trace,tungstenite=trace` gets tungstenite's trace, with a warning line.
//! - Every line is redacted before it is written: the token (`--token`, `INVK_TOKEN`), the
//!   password (`INVK_PASSWORD`), whatever follows `Bearer `, and anything shaped like a JWT
//!   (the tokens a multi-user server mints at login) become `<redacted>`.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use tracing_subscriber::Layer;
use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The dependencies whose debug and trace output shows what goes over the wire (requests,
/// headers, frames). They are held at [`WIRE_CAP`] unless `INVK_LOG` names them.
const WIRE_TARGETS: &[&str] = &[
    "tungstenite",
    "tokio_tungstenite",
    "rust_socketio",
    "rust_engineio",
    "reqwest",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
];

/// The most a wire-level target logs unless `INVK_LOG` names it.
const WIRE_CAP: LevelFilter = LevelFilter::INFO;

/// What replaces a secret in the log.
const REDACTED: &str = "<redacted>";

/// Installs the log subscriber. `INVK_LOG` (an `EnvFilter` string) wins over `-v`. `token` is
/// the token of the command line or `INVK_TOKEN`, redacted from every line.
pub(super) fn init(verbose: u8, quiet: bool, token: Option<&str>) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "invk_run=info",
        (false, _) => "invk_run=debug",
    };
    let (text, filter) = match std::env::var(crate::env_vars::INVK_LOG)
        .ok()
        .and_then(|f| EnvFilter::try_new(&f).ok().map(|filter| (f, filter)))
    {
        Some(given) => given,
        None => (default.to_owned(), EnvFilter::new(default)),
    };
    let caps = wire_caps(&text);
    for (target, level) in &caps.named {
        let _ = writeln!(
            std::io::stderr(),
            "warning: INVK_LOG names `{target}` at {level}: wire-level logs show requests and \
             headers; tokens and passwords are redacted, but keep such a log private"
        );
    }
    let password = std::env::var(crate::env_vars::INVK_PASSWORD).ok();
    let writer = Redacting {
        secrets: Arc::new(secrets([token, password.as_deref()])),
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_target(false)
        .with_filter(filter.and(caps.targets));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// The caps of the wire-level targets for a filter, and the wire-level targets it names.
struct WireCaps {
    /// Every target at trace but the wire-level ones the filter does not name.
    targets: Targets,
    /// The wire-level targets the filter names, at a level that can show the wire.
    named: Vec<(String, LevelFilter)>,
}

/// Reads the directives of an `EnvFilter` string (`target[span{field}]=level`, comma-separated)
/// and caps each wire-level target it does not name. A directive names a wire-level target when
/// its target is one, or a module of one (`tungstenite::handshake`).
fn wire_caps(filter: &str) -> WireCaps {
    let mut targets = Targets::new().with_default(LevelFilter::TRACE);
    for wire in WIRE_TARGETS {
        targets = targets.with_target(*wire, WIRE_CAP);
    }
    let mut named = Vec::new();
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let Some((target, level)) = target_and_level(directive) else {
            continue;
        };
        let wire = WIRE_TARGETS.iter().any(|wire| {
            target == *wire
                || target
                    .strip_prefix(wire)
                    .is_some_and(|rest| rest.starts_with("::"))
        });
        if wire {
            targets = targets.with_target(target, LevelFilter::TRACE);
            if level > WIRE_CAP {
                named.push((target.to_owned(), level));
            }
        }
    }
    WireCaps { targets, named }
}

/// The target and level of one directive (`None` for one without a target, such as `trace`).
/// A target without a level means every level, as in `EnvFilter`.
fn target_and_level(directive: &str) -> Option<(&str, LevelFilter)> {
    let end = directive.find(['[', '=']).unwrap_or(directive.len());
    let target = directive[..end].trim();
    if target.is_empty() || (end == directive.len() && target.parse::<LevelFilter>().is_ok()) {
        return None;
    }
    let level = match directive.rsplit_once('=') {
        Some((before, level)) if !before.contains('{') || before.contains('}') => level
            .trim()
            .parse::<LevelFilter>()
            .unwrap_or(LevelFilter::TRACE),
        _ => LevelFilter::TRACE,
    };
    Some((target, level))
}

/// The secrets to redact: the given values that are long enough to be told from ordinary text.
fn secrets<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> Vec<String> {
    values
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| s.len() >= 4)
        .map(str::to_owned)
        .collect()
}

/// Characters of a bearer token or a JWT (base64url, base64 and the JWT's dots).
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '=')
}

/// `line` with every secret, every bearer token and every JWT-shaped word redacted.
fn redact(line: &str, secrets: &[String]) -> String {
    let mut out = line.to_owned();
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), REDACTED);
        }
    }
    let lower = out.to_ascii_lowercase();
    let mut result = String::with_capacity(out.len());
    let mut at = 0;
    while at < out.len() {
        let bearer = lower[at..]
            .find("bearer ")
            .map(|i| (at + i, at + i + "bearer ".len()));
        let jwt = lower[at..].find("eyj").map(|i| (at + i, at + i));
        let next = match (bearer, jwt) {
            (Some(b), Some(j)) => Some(if b.0 <= j.0 { b } else { j }),
            (b, j) => b.or(j),
        };
        let Some((start, token_start)) = next else {
            break;
        };
        let token_len = out[token_start..]
            .find(|c: char| !token_char(c))
            .unwrap_or(out.len() - token_start);
        let token = &out[token_start..token_start + token_len];
        let is_bearer = token_start > start;
        // A JWT is three base64url parts: `eyJ…` alone may be an ordinary word.
        let secret = if is_bearer {
            !token.is_empty()
        } else {
            token.matches('.').count() >= 2
                && token.len() >= 20
                && (start == 0 || !out[..start].ends_with(token_char))
        };
        if secret {
            result.push_str(&out[at..token_start]);
            result.push_str(REDACTED);
            at = token_start + token_len;
        } else {
            // The patterns are ASCII: the byte after their start is a character boundary.
            result.push_str(&out[at..=start]);
            at = start + 1;
        }
    }
    result.push_str(&out[at.min(out.len())..]);
    result
}

/// Writes log lines to stderr, redacted ([`redact`]).
#[derive(Clone)]
struct Redacting {
    secrets: Arc<Vec<String>>,
}

impl<'a> MakeWriter<'a> for Redacting {
    type Writer = RedactingLine;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingLine {
            secrets: self.secrets.clone(),
            buffer: Vec::new(),
        }
    }
}

/// One log event: collected, then redacted and written to stderr whole when dropped.
struct RedactingLine {
    secrets: Arc<Vec<String>>,
    buffer: Vec<u8>,
}

impl Write for RedactingLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingLine {
    fn drop(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let line = redact(&String::from_utf8_lossy(&self.buffer), &self.secrets);
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// Whether a stream may be coloured: it is a terminal and `NO_COLOR` is unset or empty.
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_needs_a_terminal_and_no_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())), "an empty NO_COLOR is unset");
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
    }

    fn named(filter: &str) -> Vec<String> {
        wire_caps(filter)
            .named
            .into_iter()
            .map(|(target, level)| format!("{target}={level}"))
            .collect()
    }

    #[test]
    fn a_bare_level_names_no_wire_target() {
        assert!(named("trace").is_empty());
        assert!(named("invk_run=trace,debug").is_empty());
        assert!(
            named("tokio=trace").is_empty(),
            "tokio is not tokio_tungstenite"
        );
        assert!(
            named("hyper=info,reqwest=warn").is_empty(),
            "not below the cap"
        );
    }

    #[test]
    fn a_wire_target_or_its_module_is_named_with_its_level() {
        assert_eq!(named("trace,tungstenite=trace"), ["tungstenite=trace"]);
        assert_eq!(
            named("tungstenite::handshake::client=debug"),
            ["tungstenite::handshake::client=debug"]
        );
        assert_eq!(
            named("hyper"),
            ["hyper=trace"],
            "a target alone is every level"
        );
        assert_eq!(named("h2[conn]=trace"), ["h2=trace"]);
    }

    #[test]
    fn secrets_bearer_tokens_and_jwts_are_redacted() {
        let secrets = secrets([Some("tok-1234"), Some("hunter22"), Some("ab")]);
        assert_eq!(secrets, ["tok-1234", "hunter22"], "too short to tell apart");
        let line = r#"Request: "GET / HTTP/1.1\r\nauthorization: Bearer abc.DEF-123\r\nx: tok-1234 hunter22""#;
        assert_eq!(
            redact(line, &secrets),
            r#"Request: "GET / HTTP/1.1\r\nauthorization: Bearer <redacted>\r\nx: <redacted> <redacted>""#
        );
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        assert_eq!(
            redact(&format!(r#"40{{"token":"{jwt}"}} ü"#), &[]),
            r#"40{"token":"<redacted>"} ü"#
        );
        let plain = "the keyjar eyJust x.y BEARER";
        assert_eq!(redact(plain, &[]), plain);
    }
}
