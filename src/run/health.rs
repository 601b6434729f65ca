//! Whether the run's server answers: an outage is reported once when it starts and once when it
//! ends, and the run gives up (exit 1, resumable) only after `--server-wait`.

use std::time::{Duration, Instant};

use super::context::RunContext;
use super::error::RunError;

/// The server's health as the run saw it.
#[derive(Debug)]
pub(super) struct Health {
    down_since: Option<Instant>,
    /// How many outages the run has seen: an item cancelled after an outage that began after
    /// it was submitted was cancelled by the server's restart.
    pub(super) epoch: u64,
    wait: Duration,
    /// The server's URL, for messages.
    url: String,
}

impl Health {
    /// A server that answers, and how long to wait for it when it stops.
    pub(super) fn new(wait: Duration, url: &str) -> Health {
        Health {
            down_since: None,
            epoch: 0,
            wait,
            url: url.to_owned(),
        }
    }

    /// Sets how long to wait for the server when it stops answering.
    pub(super) fn set_wait(&mut self, wait: Duration) {
        self.wait = wait;
    }

    /// Whether the server is in an outage.
    pub(super) fn is_down(&self) -> bool {
        self.down_since.is_some()
    }

    /// A request failed because the server is unreachable. The first failure of an outage is
    /// reported; past the wait the run stops with [`RunError::ServerGone`].
    pub(super) fn down(&mut self, ctx: &RunContext<'_>, error: &str) -> Result<(), RunError> {
        let since = match self.down_since {
            Some(since) => since,
            None => {
                self.epoch += 1;
                self.down_since = Some(Instant::now());
                ctx.warn(format!(
                    "the server at {} does not answer ({error}); waiting up to {} for it",
                    self.url,
                    human(self.wait)
                ));
                Instant::now()
            }
        };
        if since.elapsed() >= self.wait {
            return Err(RunError::ServerGone {
                server: self.url.clone(),
                waited: human(since.elapsed()),
            });
        }
        Ok(())
    }

    /// A request succeeded: an outage, if there was one, is over.
    pub(super) fn up(&mut self, ctx: &RunContext<'_>) {
        if let Some(since) = self.down_since.take() {
            ctx.warn(format!(
                "the server at {} answers again (after {}); going on",
                self.url,
                human(since.elapsed())
            ));
        }
    }

    /// How long to pause before the next attempt while the server is down.
    pub(super) fn backoff(&self) -> Duration {
        pause_after(self.down_since.map_or(Duration::ZERO, |s| s.elapsed()))
    }
}

/// The pause before trying again a server that has not answered for `down_for`: a quarter of
/// that, from half a second to five seconds.
pub(super) fn pause_after(down_for: Duration) -> Duration {
    (down_for / 4).clamp(Duration::from_millis(500), Duration::from_secs(5))
}

/// `90 s`, `5 min`, `1 h 30 min`.
pub(super) fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}
