//! The conformance suite, run for [`LocalStore`].

use super::LocalStore;
use super::conformance;

#[test]
fn the_local_store_keeps_every_rule() {
    for (name, rule) in conformance::RULES {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::open(dir.path().join("out")).expect("store");
        eprintln!("rule: {name}");
        rule(&store);
    }
}

#[cfg(unix)]
#[test]
fn the_local_store_keeps_its_own_rules() {
    for (name, rule) in conformance::LOCAL_RULES {
        let dir = tempfile::tempdir().expect("tempdir");
        eprintln!("rule: {name}");
        rule(dir.path());
    }
}
