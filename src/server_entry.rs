//! A server as a user names it (one of a pool): its URL, and optionally its own window (or a weight
//! that scales the run's), and its own credentials, read from environment variables it names
//! (never a secret in a file or on the command line).
//!
//! On the command line and in `INVK_SERVER` the options follow the URL as a fragment:
//! `http://gpu-1:9090#window=8&token_env=GPU1_TOKEN`. In a manifest a `server:` list item is a
//! URL or a map: `{url: http://gpu-1:9090, weight: 2, email: me@example.org, password_env:
//! GPU1_PASSWORD}`.

/// The largest window a server entry takes.
pub const MAX_ENTRY_WINDOW: u32 = 10_000;

/// The largest weight a server entry takes (and `1 / MAX_WEIGHT` the smallest).
pub const MAX_WEIGHT: f64 = 100.0;

/// A server of a pool, as named.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServerEntry {
    /// Its base URL.
    pub url: String,
    /// The most sessions of a run pending on it at once (else the run's `--window`).
    pub window: Option<u32>,
    /// Its share against the others: its window is the run's times this.
    pub weight: Option<f64>,
    /// The environment variable that holds its token.
    pub token_env: Option<String>,
    /// The email to log into it with.
    pub email: Option<String>,
    /// The environment variable that holds the password for `email` (else `INVK_PASSWORD`).
    pub password_env: Option<String>,
}

/// A server entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server entry `{entry}`: {problem}")]
pub struct EntryError {
    /// The entry, as given.
    pub entry: String,
    /// What is wrong, and what to do.
    pub problem: String,
}

/// What is wrong with a server entry or one of its options.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    /// `window=` is not a whole number from 1 to [`MAX_ENTRY_WINDOW`] (the value as given).
    #[error("`window={0}`: give a whole number from 1 to {max}", max = MAX_ENTRY_WINDOW)]
    Window(String),
    /// `weight=` is not a number from `1 / MAX_WEIGHT` to [`MAX_WEIGHT`] (the value as given).
    #[error("`weight={0}`: give a number from {min} to {max}", min = 1.0 / MAX_WEIGHT, max = MAX_WEIGHT)]
    Weight(String),
    /// `token_env=` or `password_env=` is not the name of an environment variable.
    #[error("`{key}={value}`: give the name of an environment variable (letters, digits and `_`)")]
    EnvName {
        /// The option.
        key: String,
        /// Its value, as given.
        value: String,
    },
    /// `token=` or `password=`: a secret written where the name of its variable belongs.
    #[error(
        "`{0}` would put a secret in a file or on the command line: name the environment variable that holds it with `{0}_env`"
    )]
    Secret(String),
    /// An option a server entry does not take.
    #[error(
        "unknown option `{0}`: a server entry takes `window`, `weight`, `token_env`, `email` and `password_env`"
    )]
    UnknownOption(String),
    /// The URL is not an http(s) URL with a host.
    #[error(
        "`{0}` is not an http(s) URL: write the server's base URL, e.g. `http://127.0.0.1:9090`"
    )]
    NotHttpUrl(String),
    /// Both `window` and `weight`.
    #[error("give `window` or `weight`, not both")]
    WindowAndWeight,
    /// `password_env` without `email`.
    #[error("`password_env` goes with `email`")]
    PasswordWithoutEmail,
}

impl EntryProblem {
    /// Whether the option's name is what is wrong (an unknown option, or a secret), not its value.
    #[must_use]
    pub fn is_in_the_key(&self) -> bool {
        matches!(
            self,
            EntryProblem::UnknownOption(_) | EntryProblem::Secret(_)
        )
    }
}

impl ServerEntry {
    /// A plain URL.
    #[must_use]
    pub fn url(url: &str) -> ServerEntry {
        ServerEntry {
            url: url.to_owned(),
            ..ServerEntry::default()
        }
    }

    /// Reads `URL` or `URL#key=value&key=value` (keys: `window`, `weight`, `token_env`, `email`,
    /// `password_env`).
    ///
    /// # Errors
    /// An unknown key, a bad value, or a secret given in place of the name of a variable.
    pub fn parse(text: &str) -> Result<ServerEntry, EntryError> {
        let (url, options) = text.split_once('#').unwrap_or((text, ""));
        let mut entry = ServerEntry::url(url.trim());
        let fail = |problem: EntryProblem| EntryError {
            entry: text.to_owned(),
            problem: problem.to_string(),
        };
        for pair in options.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            entry.set(key, value.trim()).map_err(fail)?;
        }
        entry.check().map_err(fail)?;
        Ok(entry)
    }

    /// Sets option `key` from its text.
    ///
    /// # Errors
    /// An unknown key, a secret, or a bad value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), EntryProblem> {
        match key {
            "window" => {
                self.window = Some(
                    value
                        .parse::<u32>()
                        .ok()
                        .filter(|w| (1..=MAX_ENTRY_WINDOW).contains(w))
                        .ok_or_else(|| EntryProblem::Window(value.to_owned()))?,
                );
            }
            "weight" => {
                self.weight = Some(
                    value
                        .parse::<f64>()
                        .ok()
                        .filter(|w| w.is_finite() && (1.0 / MAX_WEIGHT..=MAX_WEIGHT).contains(w))
                        .ok_or_else(|| EntryProblem::Weight(value.to_owned()))?,
                );
            }
            "token_env" => self.token_env = Some(env_name(key, value)?),
            "password_env" => self.password_env = Some(env_name(key, value)?),
            "email" if !value.is_empty() => self.email = Some(value.to_owned()),
            "token" | "password" => return Err(EntryProblem::Secret(key.to_owned())),
            _ => return Err(EntryProblem::UnknownOption(key.to_owned())),
        }
        Ok(())
    }

    /// Checks the URL and that the options go together.
    ///
    /// # Errors
    /// A URL that is not http(s), or options that do not go together.
    pub fn check(&self) -> Result<(), EntryProblem> {
        if !is_http_url(&self.url) {
            return Err(EntryProblem::NotHttpUrl(self.url.clone()));
        }
        if self.window.is_some() && self.weight.is_some() {
            return Err(EntryProblem::WindowAndWeight);
        }
        if self.password_env.is_some() && self.email.is_none() {
            return Err(EntryProblem::PasswordWithoutEmail);
        }
        Ok(())
    }

    /// Its window, given the run's.
    #[must_use]
    pub fn window_of(&self, run_window: usize) -> usize {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        match (self.window, self.weight) {
            (Some(w), _) => w as usize,
            (None, Some(weight)) => ((run_window as f64 * weight).round() as usize).max(1),
            (None, None) => run_window,
        }
    }
}

/// Whether `url` is an http(s) URL with a host: a server's base URL.
#[must_use]
pub fn is_http_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// The name of an environment variable, as `key=value` gives it.
fn env_name(key: &str, value: &str) -> Result<String, EntryProblem> {
    if !value.is_empty()
        && value.len() <= 128
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !value.starts_with(|c: char| c.is_ascii_digit())
    {
        Ok(value.to_owned())
    } else {
        Err(EntryProblem::EnvName {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_their_options_and_refuse_secrets_and_bad_values() {
        assert_eq!(
            ServerEntry::parse("http://gpu-1:9090").expect("plain"),
            ServerEntry::url("http://gpu-1:9090")
        );
        let entry =
            ServerEntry::parse("http://gpu-1:9090#window=8&token_env=GPU1_TOKEN").expect("options");
        assert_eq!(entry.url, "http://gpu-1:9090");
        assert_eq!(entry.window, Some(8));
        assert_eq!(entry.token_env.as_deref(), Some("GPU1_TOKEN"));
        assert_eq!(entry.window_of(16), 8);
        let weighted = ServerEntry::parse("http://b:1#weight=0.5").expect("weight");
        assert_eq!(weighted.window_of(16), 8);
        assert_eq!(
            ServerEntry::parse("http://b:1#weight=0.01")
                .expect("smallest weight")
                .window_of(16),
            1,
            "a window is never 0"
        );
        for (bad, says) in [
            ("http://b:1#token=abc", "secret"),
            ("http://b:1#password=abc", "password_env"),
            ("http://b:1#window=0", "from 1"),
            ("http://b:1#window=8&weight=2", "not both"),
            ("http://b:1#weight=nan", "number"),
            ("http://b:1#colour=red", "unknown option `colour`"),
            ("http://b:1#token_env=$(rm)", "environment variable"),
            ("http://b:1#password_env=P", "goes with `email`"),
            ("ftp://b#window=2", "http(s) URL"),
        ] {
            let err = ServerEntry::parse(bad).expect_err(bad).to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
