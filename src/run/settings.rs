//! The settings of a run. The binary's command layer builds them from the command line and the
//! environment before anything is sent; the run never sees command-line types.

use super::progress::ReportMode;
use crate::client::{Credentials, DEFAULT_SERVER};
use crate::server_entry::{EntryError, ServerEntry};

/// How to run manifests.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Server URL given on the command line or in `INVK_SERVER` (it beats the manifest's).
    pub server_override: Option<String>,
    /// All the servers given on the command line or in `INVK_SERVER`, when there are several:
    /// a pool the run spreads its jobs over (it beats `server_override` and the manifest's).
    pub pool: Vec<String>,
    /// How to authenticate with a multi-user server.
    pub credentials: crate::client::Credentials,
    /// How to report.
    pub mode: ReportMode,
    /// Print the plan and payloads, send nothing.
    pub dry_run: bool,
    /// Refuse manifests that expand to more jobs.
    pub max_jobs: u64,
    /// Ignore an earlier run's journal.
    pub fresh: bool,
    /// Run only the jobs that failed before.
    pub retry_failed: bool,
    /// Track by polling only.
    pub poll_only: bool,
    /// Check the manifest and stop before anything is sent (`invk-run validate`).
    pub validate_only: bool,
    /// The most sessions of a run pending on the server at once.
    pub window: usize,
    /// How long to wait for a server that stopped answering.
    pub server_wait: std::time::Duration,
    /// Shares the enqueues of runs that go at once, when they can share a batch (`invk-run
    /// watch --each`); `None`: each run sends its own.
    pub coalescer: Option<super::coalesce::Coalescer>,
    /// Notifications of every manifest's run, from the command line (`--notify`,
    /// `--notify-command`), sent besides the manifest's own `notify:`.
    pub notify: Vec<crate::manifest::NotifyEntry>,
    /// The shard of the sweep this run does (`--shard K/N`); the whole sweep when not sharded.
    pub shard: super::shard::Shard,
}

impl RunSettings {
    /// Whether the manifest is only checked (`validate`) or its plan printed (`--dry-run`):
    /// nothing is sent, and the shipped schemas type it unless its workflow is in a server's
    /// library.
    #[must_use]
    pub fn checks_only(&self) -> bool {
        self.validate_only || self.dry_run
    }

    /// The servers for a manifest that names `manifest_servers`: the command line's or the
    /// environment's (one, or a pool), else the manifest's, else the default; never empty.
    ///
    /// # Errors
    /// A server entry of the command line or the environment that cannot be used.
    pub fn servers_for(
        &self,
        manifest_servers: &[ServerEntry],
    ) -> Result<Vec<ServerEntry>, EntryError> {
        if self.pool.len() > 1 {
            return self.pool.iter().map(|s| ServerEntry::parse(s)).collect();
        }
        if let Some(url) = &self.server_override {
            return Ok(vec![ServerEntry::parse(url)?]);
        }
        if manifest_servers.is_empty() {
            return Ok(vec![ServerEntry::url(DEFAULT_SERVER)]);
        }
        // A server named twice takes part once, with the options it was first given.
        let mut seen = std::collections::HashSet::new();
        Ok(manifest_servers
            .iter()
            .filter(|e| {
                seen.insert(
                    crate::client::Client::base_url_of(&e.url)
                        .map_or_else(|_| e.url.clone(), |u| u.to_string()),
                )
            })
            .cloned()
            .collect())
    }
}

/// The credentials of the server `entry` names: its own where it names them (read from the
/// environment now), else `run`'s.
///
/// # Errors
/// A variable it names that is not set, or not Unicode.
pub fn entry_credentials(
    entry: &ServerEntry,
    run: &Credentials,
) -> Result<Credentials, EntryError> {
    let read = |name: &str| {
        std::env::var(name).map_err(|_| EntryError {
            entry: entry.url.clone(),
            problem: format!(
                "the environment variable `{name}` it names is not set: set it, or leave it out"
            ),
        })
    };
    if let Some(name) = &entry.token_env {
        return Ok(Credentials {
            token: Some(read(name)?),
            email: None,
            password: None,
        });
    }
    if let Some(email) = &entry.email {
        let password = match &entry.password_env {
            Some(name) => Some(read(name)?),
            None => run.password.clone(),
        };
        return Ok(Credentials {
            token: None,
            email: Some(email.clone()),
            password,
        });
    }
    Ok(run.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_its_own_credentials_from_the_variables_it_names() {
        let run = Credentials {
            token: Some("run-token".to_owned()),
            email: None,
            password: None,
        };
        let plain = ServerEntry::url("http://a:1");
        assert_eq!(
            entry_credentials(&plain, &run).expect("run's").token,
            run.token
        );
        let missing = ServerEntry {
            token_env: Some("INVK_TEST_SURELY_UNSET_TOKEN".to_owned()),
            ..ServerEntry::url("http://a:1")
        };
        let err = entry_credentials(&missing, &run)
            .expect_err("unset")
            .to_string();
        assert!(err.contains("INVK_TEST_SURELY_UNSET_TOKEN"), "{err}");
        // PATH is set everywhere: it stands in for a variable holding a token.
        let own = ServerEntry {
            token_env: Some("PATH".to_owned()),
            ..ServerEntry::url("http://a:1")
        };
        assert_eq!(
            entry_credentials(&own, &run).expect("own").token,
            std::env::var("PATH").ok()
        );
    }
}
