//! The keys a run's journal and ledger know jobs and sessions by.
//!
//! A job's key is its index and a fingerprint of what it runs (the workflow, the index, the repeat
//! and the values), so that the job of a changed manifest is not taken for the one an earlier run
//! did. A workflow with batch nodes of its own runs a job as several sessions: session `n` of a
//! job is its own key. On disk both are strings, `INDEX-HASH` and `INDEX-HASH#N`, as journals
//! have always written them.

use std::fmt;
use std::str::FromStr;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::manifest::Job;

/// A job of a manifest, as the journal knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobKey {
    /// The job's index in the manifest.
    pub index: usize,
    /// A fingerprint of the workflow and the job's values.
    pub hash: u64,
}

impl JobKey {
    /// The key of `job` of a workflow whose fingerprint is `workflow_hash`.
    #[must_use]
    pub fn of(job: &Job, workflow_hash: &str) -> JobKey {
        let canonical = json!({
            "workflow": workflow_hash,
            "index": job.index,
            "run": job.run,
            "inputs": job.inputs.iter().map(|(k, v)| (k.clone(), v.display_json())).collect::<serde_json::Map<_, _>>(),
        });
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        JobKey {
            index: job.index,
            hash: u64::from_be_bytes(first),
        }
    }

    /// Session `n` of the job, which runs as `per_job` sessions.
    #[must_use]
    pub fn session(self, per_job: usize, n: usize) -> SessionKey {
        SessionKey {
            job: self,
            session: (per_job > 1).then(|| u32::try_from(n).unwrap_or(u32::MAX)),
        }
    }
}

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:016x}", self.index, self.hash)
    }
}

/// A string that is not a job or session key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a job key (INDEX-HASH or INDEX-HASH#SESSION)")]
pub struct BadKey(String);

impl FromStr for JobKey {
    type Err = BadKey;

    fn from_str(s: &str) -> Result<JobKey, BadKey> {
        let bad = || BadKey(s.to_owned());
        let (index, hash) = s.split_once('-').ok_or_else(bad)?;
        if hash.len() != 16 {
            return Err(bad());
        }
        Ok(JobKey {
            index: index.parse().map_err(|_| bad())?,
            hash: u64::from_str_radix(hash, 16).map_err(|_| bad())?,
        })
    }
}

/// One session of a job: the job itself when it runs as one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    /// The job.
    pub job: JobKey,
    /// Which of its sessions, when it has several.
    pub session: Option<u32>,
}

impl From<JobKey> for SessionKey {
    fn from(job: JobKey) -> SessionKey {
        SessionKey { job, session: None }
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.session {
            None => write!(f, "{}", self.job),
            Some(n) => write!(f, "{}#{n}", self.job),
        }
    }
}

impl FromStr for SessionKey {
    type Err = BadKey;

    fn from_str(s: &str) -> Result<SessionKey, BadKey> {
        match s.split_once('#') {
            None => Ok(SessionKey {
                job: s.parse()?,
                session: None,
            }),
            Some((job, n)) => Ok(SessionKey {
                job: job.parse()?,
                session: Some(n.parse().map_err(|_| BadKey(s.to_owned()))?),
            }),
        }
    }
}

/// How many low bits of a run's item reference hold the server's own queue item id; the bits
/// above hold the server's number in the run's journal (see [`ItemRef`]).
const ID_BITS: u32 = 40;

/// A queue item as a run knows it: the number its server has in the run's journal (0 for the
/// first server a journal saw, so a one-server run's references are the server's own ids) and
/// the item's id on that server, in one `i64`. Two servers of a pool number their items alike;
/// the reference keeps them apart.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ItemRef(i64);

impl ItemRef {
    /// Item `id` of server `server`.
    #[must_use]
    pub fn new(server: u16, id: i64) -> ItemRef {
        ItemRef((i64::from(server) << ID_BITS) | (id & ((1 << ID_BITS) - 1)))
    }

    /// The server's number.
    #[must_use]
    pub fn server(self) -> u16 {
        u16::try_from(self.0 >> ID_BITS).unwrap_or(u16::MAX)
    }

    /// The item's id on its server.
    #[must_use]
    pub fn id(self) -> i64 {
        self.0 & ((1 << ID_BITS) - 1)
    }
}

macro_rules! serde_as_string {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_string!(JobKey);
serde_as_string!(SessionKey);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_refs_keep_the_server_and_the_id_apart() {
        let first = ItemRef::new(0, 1234);
        assert_eq!(
            first.0, 1234,
            "the first server's references are its own ids"
        );
        let other = ItemRef::new(3, 1234);
        assert_ne!(first, other);
        assert_eq!((other.server(), other.id()), (3, 1234));
        assert_eq!(ItemRef(other.0), other);
    }

    #[test]
    fn keys_read_back_what_they_write() {
        let job = JobKey {
            index: 12,
            hash: 0x00ab_cdef_0123_4567,
        };
        assert_eq!(job.to_string(), "12-00abcdef01234567");
        assert_eq!("12-00abcdef01234567".parse::<JobKey>(), Ok(job));
        let one = job.session(1, 0);
        assert_eq!(one.to_string(), "12-00abcdef01234567");
        let third = job.session(4, 2);
        assert_eq!(third.to_string(), "12-00abcdef01234567#2");
        assert_eq!(third.to_string().parse::<SessionKey>(), Ok(third));
        for bad in [
            "",
            "12",
            "12-abc",
            "x-00abcdef01234567",
            "12-00abcdef01234567#x",
        ] {
            assert!(bad.parse::<SessionKey>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&third).expect("serialize");
        assert_eq!(json, "\"12-00abcdef01234567#2\"");
        assert_eq!(
            serde_json::from_str::<SessionKey>(&json).expect("parse"),
            third
        );
    }
}
