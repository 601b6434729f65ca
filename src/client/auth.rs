//! `/api/v1/auth`: multi-user servers. Tokens never appear in `Debug` output or logs.

use std::fmt;

use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

use super::{Body, Client, ClientError, Replay};

/// A bearer token (a JWT). Its `Debug` output is redacted and it has no `Display`, so it is not
/// printed by accident; [`Token::expose`] gives the text for a header or the Socket.IO handshake.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token.
    #[must_use]
    pub fn new(token: String) -> Self {
        Token(token)
    }

    /// The token's text.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Token)
    }
}

/// What `GET /api/v1/auth/status` says about the server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct AuthStatus {
    /// Whether the server is multi-user (then every call needs a token).
    pub multiuser_enabled: bool,
    /// Whether the first administrator still has to be created.
    pub setup_required: bool,
    /// Whether passwords must be strong.
    #[serde(default)]
    pub strict_password_checking: bool,
    /// The first administrator's email, if any.
    #[serde(default)]
    pub admin_email: Option<String>,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct User {
    /// Id.
    pub user_id: String,
    /// Email (the login name).
    pub email: String,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Whether the user is an administrator.
    #[serde(default)]
    pub is_admin: bool,
    /// Whether the account is active.
    #[serde(default = "yes")]
    pub is_active: bool,
    /// Creation time (server string).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Last login time (server string).
    #[serde(default)]
    pub last_login_at: Option<String>,
}

fn yes() -> bool {
    true
}

/// The answer of a login.
#[derive(Debug, Clone, Deserialize)]
pub struct LoginResponse {
    /// The token (already stored in the client).
    pub token: Token,
    /// Who logged in.
    pub user: User,
    /// Seconds until the token expires (the server refreshes it on each change it makes).
    pub expires_in: u64,
}

/// Authentication (`client.auth()`).
#[derive(Debug, Clone, Copy)]
pub struct AuthHandler<'c> {
    client: &'c Client,
}

impl<'c> AuthHandler<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        AuthHandler { client }
    }

    /// Whether the server is multi-user and whether it still needs its first administrator.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn status(&self) -> Result<AuthStatus, ClientError> {
        let url = self.client.endpoint(&["api", "v1", "auth", "status"]);
        self.client
            .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
            .await
    }

    /// Logs in and stores the token in the client, so every later call carries it.
    ///
    /// # Errors
    /// `401` for a wrong email or password, `403` when the server is not multi-user, or any
    /// other [`ClientError`].
    pub async fn login(&self, email: &str, password: &str) -> Result<LoginResponse, ClientError> {
        let url = self.client.endpoint(&["api", "v1", "auth", "login"]);
        let body = Body::json(&json!({"email": email, "password": password, "remember_me": false}));
        // Logging in twice is harmless: it only mints another token.
        let answer: LoginResponse = self
            .client
            .send_json(Method::POST, url, Replay::Idempotent, body)
            .await?;
        self.client.set_token(Some(answer.token.clone()));
        Ok(answer)
    }

    /// The user the token belongs to.
    ///
    /// # Errors
    /// `401` without a valid token, or any other [`ClientError`].
    pub async fn me(&self) -> Result<User, ClientError> {
        let url = self.client.endpoint(&["api", "v1", "auth", "me"]);
        self.client
            .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_redacted_in_debug_output() {
        let login: LoginResponse = serde_json::from_value(json!({
            "token": "eyJhbGciOiJIUzI1NiJ9.secret",
            "user": {"user_id": "u1", "email": "a@b.c", "is_admin": true},
            "expires_in": 86400
        }))
        .expect("login response");
        let shown = format!("{login:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("Token(<redacted>)"), "{shown}");
        assert_eq!(login.token.expose(), "eyJhbGciOiJIUzI1NiJ9.secret");
        assert!(login.user.is_active);
    }
}

/// How to authenticate with a multi-user server: a token, or an email and a password to log in
/// with. Nothing for a single-user server.
#[derive(Clone, Default)]
pub struct Credentials {
    /// A bearer token.
    pub token: Option<String>,
    /// The email to log in with.
    pub email: Option<String>,
    /// The password (from `INVK_PASSWORD`).
    pub password: Option<String>,
}

impl Credentials {
    /// The token to send, trimmed (`None` when absent or blank).
    #[must_use]
    pub fn bearer(&self) -> Option<&str> {
        self.token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// The email to log in with (`None` when absent or blank).
    #[must_use]
    pub fn login_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|e| !e.trim().is_empty())
    }

    /// The password to log in with (`None` when absent or empty).
    #[must_use]
    pub fn login_password(&self) -> Option<&str> {
        self.password.as_deref().filter(|p| !p.is_empty())
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl super::Client {
    /// A client for `server`, with the token, or logged in with the email and password.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] for a bad URL, [`ClientError::MissingPassword`] when an email
    /// comes without a password, or the login's error.
    pub async fn connect(
        server: &str,
        credentials: &Credentials,
    ) -> Result<super::Client, ClientError> {
        let mut builder = super::Client::builder(server);
        if let Some(token) = credentials.bearer() {
            builder = builder.token(token);
        }
        let client = builder.build()?;
        if client.token().is_none()
            && let Some(email) = credentials.login_email()
        {
            let password =
                credentials
                    .login_password()
                    .ok_or_else(|| ClientError::MissingPassword {
                        email: email.to_owned(),
                    })?;
            client.auth().login(email, password).await?;
        }
        Ok(client)
    }
}
