//! [`ClientBuilder`]: a client's base URL, token, time-outs and retries; the one name of a
//! server however its URL was written; and the TLS connector the clients of a process share.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use url::Url;

use super::{Client, ClientError, Inner, RetryPolicy, Token};

/// Builds a [`Client`]: base URL, token, time-outs and retries.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    token: Option<Token>,
    connect_timeout: Duration,
    request_timeout: Duration,
    read_timeout: Duration,
    retry: RetryPolicy,
}

impl ClientBuilder {
    /// A builder for the server at `base_url` (for example `http://127.0.0.1:9090`, or
    /// `http://host:9090/invoke` for a server mounted under a sub-path). A URL without a scheme
    /// gets `http://`.
    #[must_use]
    pub fn new(base_url: impl Into<String>) -> Self {
        ClientBuilder {
            base_url: base_url.into(),
            token: None,
            connect_timeout: Duration::from_secs(10),
            // The server pauses about a second per queue item and HTTP answers stall meanwhile.
            request_timeout: Duration::from_secs(300),
            read_timeout: Duration::from_secs(120),
            retry: RetryPolicy::from_env(),
        }
    }

    /// The bearer token of a multi-user server.
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Token::new(token.into()));
        self
    }

    /// How long to wait for a TCP connection (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one request may take from start to the last byte of the answer (default 300 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long the server may stay silent while answering (default 120 s).
    #[must_use]
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The retry policy (default: [`RetryPolicy::from_env`]).
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] when the base URL is not an `http(s)` URL, or
    /// [`ClientError::Setup`] when the HTTP stack cannot start.
    pub fn build(self) -> Result<Client, ClientError> {
        let base = normalize_base_url(&self.base_url)?;
        let mut http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.read_timeout)
            .user_agent(concat!("invk-run/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = shared_tls() {
            http = http.use_preconfigured_tls(tls);
        }
        let http = http
            .build()
            .map_err(|source| ClientError::Setup { source })?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                token: RwLock::new(self.token),
                retry: self.retry,
                request_timeout: self.request_timeout,
                reached: AtomicBool::new(false),
            }),
            patience: None,
            retries: true,
        })
    }
}

/// The TLS connector every client of the process uses, built at the first call. Building one
/// loads and parses the system's certificate store, tens of milliseconds of CPU each time, which
/// a run on 32 servers paid several times per server; each client still has its own HTTP stack
/// and connections. `None` when it cannot be built: the client then builds its own, and reports
/// why it cannot.
fn shared_tls() -> Option<native_tls::TlsConnector> {
    static TLS: OnceLock<Option<native_tls::TlsConnector>> = OnceLock::new();
    TLS.get_or_init(|| native_tls::TlsConnector::new().ok())
        .clone()
}

/// Parses a server URL into a base that ends with `/`, so that joining `api/v1/...` keeps any
/// sub-path the server is mounted under.
pub(super) fn normalize_base_url(raw: &str) -> Result<Url, ClientError> {
    let trimmed = raw.trim();
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    };
    let parsed = Url::parse(&with_scheme);
    // Never repeat a password in a message.
    let shown = match &parsed {
        Ok(url) if url.password().is_some() => {
            let mut redacted = url.clone();
            let _ = redacted.set_password(Some("****"));
            redacted.to_string()
        }
        _ => trimmed.to_owned(),
    };
    let invalid = |reason: String| ClientError::InvalidUrl {
        url: shown.clone(),
        reason,
    };
    let mut url = parsed.map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "the scheme must be `http` or `https`, not `{}`",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it names no host".to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials in the URL are not supported; use `--token` or `--email`".to_owned(),
        ));
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_keep_their_sub_path_and_end_with_a_slash() {
        let cases = [
            ("http://127.0.0.1:9090", "http://127.0.0.1:9090/"),
            ("http://127.0.0.1:9090/", "http://127.0.0.1:9090/"),
            ("http://host:9090/invoke", "http://host:9090/invoke/"),
            ("http://host:9090/invoke/", "http://host:9090/invoke/"),
            ("localhost:9090", "http://localhost:9090/"),
            ("https://example.org/a/b?x=1#f", "https://example.org/a/b/"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_base_url(raw).expect(raw).as_str(), want, "{raw}");
        }
    }

    #[test]
    fn a_servers_name_is_the_base_url_its_client_has() {
        for raw in [
            "localhost:9090",
            "http://host:9090/invoke",
            "https://example.org/a?x=1",
        ] {
            let client = Client::new(raw).expect(raw);
            assert_eq!(&Client::base_url_of(raw).expect(raw), client.base_url());
        }
        assert!(Client::base_url_of("ftp://host").is_err());
    }

    #[test]
    fn bad_base_urls_are_refused_with_the_reason() {
        let err = normalize_base_url("ftp://host").expect_err("ftp");
        assert_eq!(
            err.to_string(),
            "invalid server URL `ftp://host`: the scheme must be `http` or `https`, not `ftp`"
        );
        let err = normalize_base_url("http://user:pw@host").expect_err("credentials");
        assert!(err.to_string().contains("credentials in the URL"), "{err}");
        assert!(!err.to_string().contains("pw@"), "{err}");
    }
}
