//! What an event stream connects to, and how it behaves.

use std::fmt;
use std::time::Duration;

use url::Url;

use super::EventError;

/// The settings of an event stream.
#[derive(Clone)]
pub struct EventsConfig {
    /// The server's base URL, e.g. `http://127.0.0.1:9090` or `https://host/invoke` when the
    /// server runs under a sub-path. The socket path `{base}/ws/socket.io/` is derived from it.
    pub base_url: Url,
    /// The access token of a multi-user server. It is sent both in the Socket.IO CONNECT
    /// payload (`{"token": ...}`) and as `Authorization: Bearer` on the websocket handshake.
    pub token: Option<String>,
    /// The queue to subscribe to (`"default"`).
    pub queue_id: String,
    /// Also subscribe to bulk-download (zip) events.
    pub subscribe_bulk_downloads: bool,
    /// Capacity of the receiver channel (at least 1).
    pub channel_capacity: usize,
    /// How long one connection attempt (websocket plus Socket.IO CONNECT) may take.
    pub connect_timeout: Duration,
    /// The first reconnect delay; it doubles per failed attempt, with ±20 % jitter.
    pub reconnect_min_delay: Duration,
    /// The longest reconnect delay.
    pub reconnect_max_delay: Duration,
}

impl EventsConfig {
    /// Settings for the `default` queue of the server at `base_url`, without a token.
    #[must_use]
    pub fn new(base_url: Url) -> Self {
        EventsConfig {
            base_url,
            token: None,
            queue_id: "default".to_owned(),
            subscribe_bulk_downloads: false,
            channel_capacity: 256,
            connect_timeout: Duration::from_secs(10),
            reconnect_min_delay: Duration::from_millis(250),
            reconnect_max_delay: Duration::from_secs(10),
        }
    }

    /// Settings for the server at `base_url`, given as text.
    ///
    /// # Errors
    /// [`EventError::InvalidUrl`] when the text is not a URL the event stream can use.
    pub fn parse(base_url: &str) -> Result<Self, EventError> {
        let url = Url::parse(base_url).map_err(|err| EventError::InvalidUrl {
            url: base_url.to_owned(),
            reason: err.to_string(),
        })?;
        socket_url(&url)?;
        Ok(EventsConfig::new(url))
    }

    /// The same settings with an access token.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
}

impl fmt::Debug for EventsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventsConfig")
            .field("base_url", &self.base_url.as_str())
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("queue_id", &self.queue_id)
            .field("subscribe_bulk_downloads", &self.subscribe_bulk_downloads)
            .field("channel_capacity", &self.channel_capacity)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect_min_delay", &self.reconnect_min_delay)
            .field("reconnect_max_delay", &self.reconnect_max_delay)
            .finish()
    }
}

/// The Socket.IO endpoint of a server: `{base_url}/ws/socket.io/`, keeping a sub-path and
/// dropping query, fragment and credentials.
///
/// # Errors
/// [`EventError::InvalidUrl`] when the scheme is not http, https, ws or wss, or the URL has no
/// host.
pub fn socket_url(base_url: &Url) -> Result<Url, EventError> {
    let invalid = |reason: &str| EventError::InvalidUrl {
        url: base_url.to_string(),
        reason: reason.to_owned(),
    };
    if !matches!(base_url.scheme(), "http" | "https" | "ws" | "wss") {
        return Err(invalid("the scheme must be http or https"));
    }
    if base_url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host"));
    }
    let mut url = base_url.clone();
    let path = format!("{}/ws/socket.io/", base_url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    // Cannot fail for http(s)/ws(s) URLs with a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_url_keeps_sub_paths_and_drops_the_rest() {
        let table = [
            (
                "http://127.0.0.1:9090",
                "http://127.0.0.1:9090/ws/socket.io/",
            ),
            (
                "http://127.0.0.1:9090/",
                "http://127.0.0.1:9090/ws/socket.io/",
            ),
            ("https://host/invoke", "https://host/invoke/ws/socket.io/"),
            ("https://host/invoke/", "https://host/invoke/ws/socket.io/"),
            (
                "https://u:p@host/a/b/?x=1#f",
                "https://host/a/b/ws/socket.io/",
            ),
            ("ws://host:1", "ws://host:1/ws/socket.io/"),
        ];
        for (base, want) in table {
            let base = Url::parse(base).expect("test URL parses");
            let got = socket_url(&base).expect("valid base");
            assert_eq!(got.as_str(), want, "from {base}");
        }
    }

    #[test]
    fn socket_url_refuses_other_schemes() {
        let err = socket_url(&Url::parse("file:///tmp/x").expect("parses")).expect_err("file");
        assert_eq!(
            err.to_string(),
            "cannot open an event stream at `file:///tmp/x`: the scheme must be http or https"
        );
    }

    #[test]
    fn parse_checks_the_text() {
        let config = EventsConfig::parse("http://127.0.0.1:9090/invoke").expect("valid");
        assert_eq!(config.base_url.as_str(), "http://127.0.0.1:9090/invoke");
        assert_eq!(config.queue_id, "default");
        let err = EventsConfig::parse("127.0.0.1:9090").expect_err("no scheme");
        assert!(matches!(err, EventError::InvalidUrl { .. }), "{err}");
        let err = EventsConfig::parse("not a url").expect_err("not a URL");
        assert_eq!(
            err.to_string(),
            "cannot open an event stream at `not a url`: relative URL without a base"
        );
    }

    #[test]
    fn debug_output_hides_the_token() {
        let config =
            EventsConfig::new(Url::parse("http://h").expect("parses")).with_token("s3cret");
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }
}
