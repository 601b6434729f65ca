//! Reproducible seeds: `{seed: random}` under `inputs` (one seed per job) and `{seeds: N}` as a
//! sweep key (`N` seeds, the same for every combination).
//!
//! A seed is derived, never drawn: the first four bytes (big-endian) of SHA-256 over
//! `invk-run seed 1`, the manifest's `seed` (0 when absent) and an identity, each on its own
//! line, the identity as compact JSON. So it is a number from 0 to 4294967295 (the range of
//! InvokeAI's seed fields), the same on every machine, in every run of the same manifest, after a
//! resume and with `--retry-failed`. The identities:
//!
//! - `{seed: random}` for the input written as `KEY` under `inputs`:
//!   `{"input": KEY, "run": RUN, "sweep": [[SWEEP_KEY, VALUE], ...]}` with the job's sweep values
//!   sorted by key: the combination and the repeat, not the job's index, so adding a row to a
//!   table or a value to a list leaves the seeds of the other jobs as they were;
//! - position `I` (from 0) of the sweep key `KEY` written as `{seeds: N}`:
//!   `{"key": KEY, "index": I}`.

use indexmap::IndexMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The word of `{seed: random}`, the value under `inputs` that asks for a derived seed.
pub const RANDOM_SEED: &str = "random";

/// Whether `value` is `{seed: random}`.
pub(crate) fn is_random_seed(value: &Value) -> bool {
    matches!(value, Value::Object(m) if m.len() == 1
        && m.get("seed").and_then(Value::as_str) == Some(RANDOM_SEED))
}

/// The seed derived from the manifest seed and an identity (see the module documentation).
#[must_use]
pub fn derive_seed(manifest_seed: u64, identity: &Value) -> u64 {
    let text = format!("invk-run seed 1\n{manifest_seed}\n{identity}");
    let digest = Sha256::digest(text.as_bytes());
    let mut first = [0u8; 4];
    first.copy_from_slice(&digest[..4]);
    u64::from(u32::from_be_bytes(first))
}

/// The identity of the seed of the input written as `key`, in the job of repeat `run` with the
/// sweep values `sweep`.
pub(crate) fn job_identity(key: &str, run: u32, sweep: &IndexMap<String, Value>) -> Value {
    let mut values: Vec<(&String, &Value)> = sweep.iter().collect();
    values.sort_by(|a, b| a.0.cmp(b.0));
    let values: Vec<Value> = values.into_iter().map(|(k, v)| json!([k, v])).collect();
    json!({"input": key, "run": run, "sweep": values})
}

/// The identity of position `index` of the sweep key `key` written as `{seeds: N}`.
pub(crate) fn axis_identity(key: &str, index: usize) -> Value {
    json!({"key": key, "index": index})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_fixed_numbers_of_their_identity() {
        // Pinned (Python: `int.from_bytes(sha256(b'invk-run seed 1\n0\n{"key":"Seed","index":0}')
        // .digest()[:4], 'big')`): a change here changes every seed users recorded.
        assert_eq!(derive_seed(0, &axis_identity("Seed", 0)), 4_046_534_348);
        let a = derive_seed(0, &axis_identity("Seed", 1));
        let b = derive_seed(7, &axis_identity("Seed", 1));
        assert_ne!(a, b, "the manifest seed changes the draw");
        assert!(a <= u64::from(u32::MAX) && b <= u64::from(u32::MAX));
    }

    #[test]
    fn a_job_seed_follows_its_values_not_their_order_or_its_index() {
        let one: IndexMap<String, Value> = [
            ("Prompt".to_owned(), json!("cat")),
            ("Hue".to_owned(), json!(90)),
        ]
        .into();
        let swapped: IndexMap<String, Value> = [
            ("Hue".to_owned(), json!(90)),
            ("Prompt".to_owned(), json!("cat")),
        ]
        .into();
        let seed = |run, sweep: &IndexMap<String, Value>| {
            derive_seed(3, &job_identity("Seed", run, sweep))
        };
        assert_eq!(seed(0, &one), seed(0, &swapped));
        assert_ne!(seed(0, &one), seed(1, &one), "each repeat has its own seed");
        let other: IndexMap<String, Value> = [
            ("Prompt".to_owned(), json!("dog")),
            ("Hue".to_owned(), json!(90)),
        ]
        .into();
        assert_ne!(seed(0, &one), seed(0, &other));
        assert!(is_random_seed(&json!({"seed": "random"})));
        assert!(!is_random_seed(&json!({"seed": "random", "x": 1})));
        assert!(!is_random_seed(&json!("random")));
    }
}
