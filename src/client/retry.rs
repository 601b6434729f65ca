//! Which failures are worth another attempt, and how long to wait before it.

use std::collections::hash_map::RandomState;
use std::error::Error;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::time::Duration;

use reqwest::StatusCode;

use crate::env_vars;

/// How often and how patiently to retry transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = never retry).
    pub max_retries: u32,
    /// Delay before the first retry; it doubles each time, with jitter.
    pub base_delay: Duration,
    /// Upper bound of one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    #[must_use]
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// The default policy, with zero delays when `INVK_TEST_NO_RETRY_DELAY` is set (tests).
    #[must_use]
    pub fn from_env() -> Self {
        let policy = RetryPolicy::default();
        if std::env::var_os(env_vars::INVK_TEST_NO_RETRY_DELAY)
            .is_some_and(|v| !v.is_empty() && v != "0")
        {
            RetryPolicy {
                base_delay: Duration::ZERO,
                max_delay: Duration::ZERO,
                ..policy
            }
        } else {
            policy
        }
    }

    /// The delay before retry number `retry` (0-based): `base × 2^retry`, capped at `max_delay`,
    /// then a random amount between half of it and all of it ("equal jitter"), so that clients
    /// that failed together do not come back together.
    #[must_use]
    pub fn delay(&self, retry: u32) -> Duration {
        let full = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_delay);
        let half = full / 2;
        let span = u64::try_from((full - half).as_nanos()).unwrap_or(u64::MAX);
        if span == 0 {
            return full;
        }
        let random = RandomState::new().build_hasher().finish();
        half + Duration::from_nanos(random % (span + 1))
    }
}

/// Whether an error, or any error in its `source()` chain, is a transient network failure: a
/// time-out, a refused, reset or aborted connection, a connection closed before the answer was
/// complete. Certificate and protocol errors are not transient.
#[must_use]
pub fn is_transient(err: &(dyn Error + 'static)) -> bool {
    let mut current: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(err) = current {
        if let Some(e) = err.downcast_ref::<reqwest::Error>() {
            if e.is_timeout() || e.is_connect() {
                return true;
            }
            if let Some(status) = e.status()
                && is_transient_status(status)
            {
                return true;
            }
        }
        if let Some(e) = err.downcast_ref::<hyper::Error>()
            && (e.is_incomplete_message() || e.is_closed() || e.is_canceled() || e.is_timeout())
        {
            return true;
        }
        if let Some(e) = err.downcast_ref::<io::Error>()
            && is_transient_io(e.kind())
        {
            return true;
        }
        if err.is::<tokio::time::error::Elapsed>() {
            return true;
        }
        current = err.source();
    }
    false
}

fn is_transient_io(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::TimedOut
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::Interrupted
    )
}

/// Whether an answer's status says "try again later": `502`, `503` and `504` (a proxy or the
/// server is briefly unavailable). `500` is not: InvokeAI uses it for deterministic failures.
#[must_use]
pub fn is_transient_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(Box<dyn Error + Send + Sync + 'static>);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapper")
        }
    }
    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(self.0.as_ref())
        }
    }

    #[test]
    fn io_errors_are_classified_through_the_source_chain() {
        let cases = [
            (io::ErrorKind::ConnectionReset, true),
            (io::ErrorKind::ConnectionRefused, true),
            (io::ErrorKind::BrokenPipe, true),
            (io::ErrorKind::UnexpectedEof, true),
            (io::ErrorKind::TimedOut, true),
            (io::ErrorKind::PermissionDenied, false),
            (io::ErrorKind::InvalidData, false),
            (io::ErrorKind::NotFound, false),
        ];
        for (kind, transient) in cases {
            let direct = io::Error::new(kind, "x");
            assert_eq!(is_transient(&direct), transient, "{kind:?}");
            let wrapped = Wrapper(Box::new(Wrapper(Box::new(io::Error::new(kind, "x")))));
            assert_eq!(is_transient(&wrapped), transient, "wrapped {kind:?}");
        }
    }

    #[test]
    fn only_gateway_and_unavailable_statuses_are_transient() {
        for (code, transient) in [
            (500, false),
            (502, true),
            (503, true),
            (504, true),
            (404, false),
            (429, false),
        ] {
            let status = StatusCode::from_u16(code).expect("status");
            assert_eq!(is_transient_status(status), transient, "{code}");
        }
    }

    #[test]
    fn delays_grow_exponentially_within_jitter_and_are_capped() {
        let policy = RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for (retry, full_ms) in [
            (0, 100),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1000),
            (20, 1000),
        ] {
            let full = Duration::from_millis(full_ms);
            for _ in 0..20 {
                let d = policy.delay(retry);
                assert!(
                    d >= full / 2 && d <= full,
                    "retry {retry}: {d:?} not in [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
        let zero = RetryPolicy {
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            ..policy
        };
        assert_eq!(zero.delay(3), Duration::ZERO);
    }
}
