//! `/api/v1/app`: what the server is.

use reqwest::Method;
use serde::Deserialize;

use super::{Body, Client, ClientError, Replay};

/// Application information (`client.app()`).
#[derive(Debug, Clone, Copy)]
pub struct AppHandler<'c> {
    client: &'c Client,
}

#[derive(Deserialize)]
struct AppVersion {
    version: String,
}

impl<'c> AppHandler<'c> {
    pub(crate) fn new(client: &'c Client) -> Self {
        AppHandler { client }
    }

    /// The server's InvokeAI version (for example `6.14.2`). Needs no login: use it to check that
    /// the server is up.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn version(&self) -> Result<String, ClientError> {
        let url = self.client.endpoint(&["api", "v1", "app", "version"]);
        let answer: AppVersion = self
            .client
            .send_json(Method::GET, url, Replay::Idempotent, Body::Empty)
            .await?;
        Ok(answer.version)
    }
}
