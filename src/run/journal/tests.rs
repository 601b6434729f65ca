use super::*;
use crate::run::key::JobKey;
use std::io::Write;

fn r(id: i64) -> ItemRef {
    ItemRef::new(0, id)
}

fn refs(ids: &[i64]) -> Vec<ItemRef> {
    ids.iter().map(|id| r(*id)).collect()
}

fn key(i: usize) -> JobKey {
    JobKey {
        index: i,
        hash: 0xfeed,
    }
}

fn k(i: usize) -> SessionKey {
    key(i).into()
}

fn ks(i: usize, n: usize) -> SessionKey {
    key(i).session(2, n)
}

#[test]
fn state_folds_entries_and_skips_a_torn_last_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut journal, state) = Journal::open(dir.path(), false).expect("open");
        assert_eq!(state, State::default());
        for entry in [
            Entry::Started {
                run_id: "r".into(),
                plan_hash: "h".into(),
                server: "s".into(),
                jobs: None,
            },
            Entry::EnqueueIntent {
                batch_id: "b1".into(),
                jobs: vec![k(0), k(1)],
                first: 0,
                server: 0,
            },
            Entry::Enqueued {
                batch_id: "b1".into(),
                item_ids: refs(&[7, 8]),
            },
            Entry::Finished {
                job: k(1),
                item_id: r(8),
                status: ItemEnd::Completed,
                error: None,
            },
            Entry::Downloaded {
                job: k(1),
                image_name: "x.png".into(),
                file: "a/x.png".into(),
            },
            Entry::EnqueueIntent {
                batch_id: "b2".into(),
                jobs: vec![k(2)],
                first: 0,
                server: 0,
            },
        ] {
            journal.append(&entry).expect("append");
        }
    }
    // A crash in the middle of a write leaves a torn line.
    let mut f = crate::fs::OpenOptions::new()
        .append(true)
        .open(Journal::path_in(dir.path()))
        .expect("reopen");
    f.write_all(b"{\"event\":\"enqueued\",\"batch_id\":\"b2\",\"item_")
        .expect("torn");
    drop(f);

    let (_, state) = Journal::open(dir.path(), false).expect("open again");
    assert_eq!(state.plan_hash.as_deref(), Some("h"));
    assert_eq!(
        state.resume(key(1)),
        Resume::Done {
            files: vec!["a/x.png".into()]
        }
    );
    assert_eq!(
        state.resume(key(0)),
        Resume::Attach {
            batch_id: "b1".into(),
            open: vec![(k(0), r(7))],
            done: 0,
            failed: None,
        }
    );
    assert_eq!(
        state.resume(key(2)),
        Resume::Recover {
            batch_id: "b2".into()
        }
    );
    assert_eq!(state.resume(key(9)), Resume::Submit);
}

#[test]
fn a_part_of_a_shared_batch_says_where_it_starts_and_a_batch_of_its_own_does_not() {
    let shared = Entry::EnqueueIntent {
        batch_id: "shared".into(),
        jobs: vec![k(0), k(1)],
        first: 4,
        server: 0,
    };
    let own = Entry::EnqueueIntent {
        batch_id: "own".into(),
        jobs: vec![k(2)],
        first: 0,
        server: 0,
    };
    let line = serde_json::to_string(&shared).expect("json");
    assert!(line.contains(r#""first":4"#), "{line}");
    let line = serde_json::to_string(&own).expect("json");
    assert!(
        !line.contains("first"),
        "unchanged for a batch of its own: {line}"
    );
    let state = State::from_entries(parse(&format!(
        "{}\n{line}\n",
        serde_json::to_string(&shared).expect("json")
    )));
    assert_eq!(state.batches["shared"].first, 4);
    assert_eq!(state.batches["own"].first, 0);
}

#[test]
fn a_pools_journal_numbers_its_servers_and_keeps_their_items_apart() {
    use crate::run::key::ItemRef;
    let on_second = ItemRef::new(1, 7);
    let entries = [
        Entry::Server {
            number: 0,
            url: "http://a:1".into(),
        },
        Entry::Server {
            number: 1,
            url: "http://b:1".into(),
        },
        Entry::EnqueueIntent {
            batch_id: "on-a".into(),
            jobs: vec![k(0)],
            first: 0,
            server: 0,
        },
        Entry::Enqueued {
            batch_id: "on-a".into(),
            item_ids: refs(&[7]),
        },
        Entry::EnqueueIntent {
            batch_id: "on-b".into(),
            jobs: vec![k(1)],
            first: 0,
            server: 1,
        },
        Entry::Enqueued {
            batch_id: "on-b".into(),
            item_ids: vec![on_second],
        },
    ];
    let lines: Vec<String> = entries
        .iter()
        .map(|e| serde_json::to_string(e).expect("json"))
        .collect();
    assert!(
        !lines[2].contains("server"),
        "server 0 is left out: {}",
        lines[2]
    );
    assert!(lines[4].contains(r#""server":1"#), "{}", lines[4]);
    let state = State::from_entries(parse(&lines.join("\n")));
    assert_eq!(state.servers.len(), 2);
    assert_eq!(state.batches["on-b"].server, 1);
    // Item 7 of each server is its own item.
    assert_eq!(state.item(r(7)).map(|(key, _)| *key), Some(k(0)));
    assert_eq!(state.item(on_second).map(|(key, _)| *key), Some(k(1)));
    // A checkpoint keeps the servers.
    let again: State =
        serde_json::from_str(&serde_json::to_string(&state).expect("json")).expect("parse");
    assert_eq!(again.servers, state.servers);
}

#[test]
fn a_job_the_full_queue_did_not_take_is_submitted_again() {
    let state = State::from_entries(vec![
        Entry::EnqueueIntent {
            batch_id: "b".into(),
            jobs: vec![k(10), k(11)],
            first: 0,
            server: 0,
        },
        Entry::Enqueued {
            batch_id: "b".into(),
            item_ids: refs(&[1]),
        },
    ]);
    assert!(matches!(state.resume(key(10)), Resume::Attach { .. }));
    assert_eq!(state.resume(key(11)), Resume::Submit);
}

#[test]
fn a_file_replaced_by_a_later_try_is_listed_once() {
    let downloaded = |image: &str, file: &str| Entry::Downloaded {
        job: k(3),
        image_name: image.into(),
        file: file.into(),
    };
    let state = State::from_entries(vec![
        downloaded("old-a.png", "a.png"),
        downloaded("old-b.png", "b.png"),
        downloaded("new-a.png", "a.png"),
    ]);
    let files: Vec<(&str, &str)> = state.downloads[&k(3)]
        .iter()
        .map(|(image, file)| (image.as_str(), file.to_str().expect("utf-8")))
        .collect();
    assert_eq!(files, [("new-a.png", "a.png"), ("old-b.png", "b.png")]);
}

#[test]
fn a_job_of_several_sessions_is_done_only_when_all_are() {
    let entries = vec![
        Entry::EnqueueIntent {
            batch_id: "b".into(),
            jobs: vec![ks(10, 0), ks(10, 1), ks(11, 0), ks(11, 1)],
            first: 0,
            server: 0,
        },
        Entry::Enqueued {
            batch_id: "b".into(),
            item_ids: refs(&[1, 2, 3, 4]),
        },
        Entry::Finished {
            job: ks(10, 0),
            item_id: r(1),
            status: ItemEnd::Completed,
            error: None,
        },
        Entry::Finished {
            job: ks(10, 1),
            item_id: r(2),
            status: ItemEnd::Completed,
            error: None,
        },
        Entry::Finished {
            job: ks(11, 0),
            item_id: r(3),
            status: ItemEnd::Failed,
            error: Some("boom".into()),
        },
    ];
    let state = State::from_entries(entries.clone());
    assert_eq!(state.resume(key(10)), Resume::Done { files: vec![] });
    assert_eq!(
        state.resume(key(11)),
        Resume::Attach {
            batch_id: "b".into(),
            open: vec![(ks(11, 1), r(4))],
            done: 1,
            failed: Some((r(3), "boom".into())),
        }
    );
    let mut more = entries;
    more.push(Entry::Finished {
        job: ks(11, 1),
        item_id: r(4),
        status: ItemEnd::Completed,
        error: None,
    });
    let state = State::from_entries(more.clone());
    assert_eq!(
        state.resume(key(11)),
        Resume::Failed {
            item_id: r(3),
            error: "boom".into()
        }
    );
    // A retry is a newer batch: it decides.
    more.push(Entry::EnqueueIntent {
        batch_id: "a-retry".into(),
        jobs: vec![ks(11, 0), ks(11, 1)],
        first: 0,
        server: 0,
    });
    let state = State::from_entries(more);
    assert_eq!(
        state.resume(key(11)),
        Resume::Recover {
            batch_id: "a-retry".into()
        }
    );
}

#[test]
fn a_withdrawn_item_is_submitted_again() {
    let mut entries = vec![
        Entry::EnqueueIntent {
            batch_id: "b".into(),
            jobs: vec![k(0), k(1)],
            first: 0,
            server: 0,
        },
        Entry::Enqueued {
            batch_id: "b".into(),
            item_ids: refs(&[1, 2]),
        },
        Entry::Withdrawn {
            job: k(1),
            item_id: r(2),
        },
    ];
    let state = State::from_entries(entries.clone());
    assert!(matches!(state.resume(key(0)), Resume::Attach { .. }));
    assert_eq!(state.resume(key(1)), Resume::Submit);
    assert_eq!(state.item(r(2)), Some(&(k(1), "b".to_owned())));
    // Submitted again in a later batch, which then decides.
    entries.push(Entry::EnqueueIntent {
        batch_id: "c".into(),
        jobs: vec![k(1)],
        first: 0,
        server: 0,
    });
    assert!(matches!(
        State::from_entries(entries).resume(key(1)),
        Resume::Recover { .. }
    ));
}

#[test]
fn a_long_journal_is_compacted_into_one_checkpoint_with_the_same_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jobs = COMPACT_AT_LINES / 2;
    {
        let (mut journal, _) = Journal::open(dir.path(), false).expect("open");
        for i in 0..jobs {
            let batch_id = format!("b{i}");
            for entry in [
                Entry::EnqueueIntent {
                    batch_id: batch_id.clone(),
                    jobs: vec![k(i)],
                    first: 0,
                    server: 0,
                },
                Entry::Enqueued {
                    batch_id,
                    item_ids: refs(&[i64::try_from(i).expect("small")]),
                },
                Entry::Finished {
                    job: k(i),
                    item_id: r(i64::try_from(i).expect("small")),
                    status: ItemEnd::Completed,
                    error: None,
                },
            ] {
                journal.append(&entry).expect("append");
            }
        }
    }
    let path = Journal::path_in(dir.path());
    let before = State::from_entries(parse(&crate::fs::read_to_string(&path).expect("read")));
    let (mut journal, state) = Journal::open(dir.path(), false).expect("reopen");
    assert_eq!(state, before);
    let text = crate::fs::read_to_string(&path).expect("read");
    assert_eq!(text.lines().count(), 1, "one checkpoint line");
    assert_eq!(state.resume(key(7)), Resume::Done { files: vec![] });
    // Appending goes on after the checkpoint, and both are read back.
    journal
        .append(&Entry::Withdrawn {
            job: k(jobs + 1),
            item_id: r(99),
        })
        .expect("append");
    let (_, again) = Journal::open(dir.path(), false).expect("third open");
    assert_eq!(again.resume(key(3)), Resume::Done { files: vec![] });
    assert_eq!(again.finished.len(), jobs + 1);
    assert_eq!(again.item(r(5)), Some(&(k(5), "b5".to_owned())));
}

#[test]
fn fresh_sets_the_old_journal_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut journal, _) = Journal::open(dir.path(), false).expect("open");
    journal
        .append(&Entry::Deleted {
            image_names: vec!["x.png".into()],
        })
        .expect("append");
    drop(journal);
    let (_, state) = Journal::open(dir.path(), true).expect("fresh");
    assert!(state.deleted.is_empty());
    let kept = crate::fs::read_dir(dir.path().join(".invk-run"))
        .expect("list")
        .count();
    assert_eq!(kept, 2, "the old journal is kept beside the new one");
}

#[test]
fn a_file_uploaded_to_each_server_of_a_pool_keeps_every_name() {
    let uploaded = |name: &str| Entry::Uploaded {
        sha256: "abc".into(),
        path: "photo.png".into(),
        image_name: name.into(),
    };
    let mut state = State::from_entries(vec![uploaded("on-a.png"), uploaded("on-b.png")]);
    let mut of: Vec<&String> = state.uploads_of("abc").collect();
    of.sort();
    of.dedup();
    assert_eq!(of, ["on-a.png", "on-b.png"]);
    let names: std::collections::BTreeSet<&String> = state.upload_names().collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(state.uploads_of("other").count(), 0);
    // A checkpoint carries them.
    state = State::from_entries(vec![Entry::Checkpoint {
        state: Box::new(state.clone()),
    }]);
    assert_eq!(state.upload_names().count(), 3);
}

#[test]
fn a_cancel_is_the_runs_own_only_when_that_item_is_journaled_as_taken_back() {
    use crate::run::ledger::withdrawn_in;
    let state = State::from_entries(vec![
        Entry::Withdrawn {
            job: k(0),
            item_id: r(7),
        },
        Entry::Finished {
            job: k(1),
            item_id: r(8),
            status: ItemEnd::Canceled,
            error: None,
        },
    ]);
    assert!(withdrawn_in(&state, r(7), k(0)));
    // Another item of the same session (the job sent again), another session, or a cancel
    // the run only saw: not taken back by the run.
    assert!(!withdrawn_in(&state, r(9), k(0)));
    assert!(!withdrawn_in(&state, r(8), k(1)));
    assert!(!withdrawn_in(&state, ItemRef::new(1, 7), k(0)));
}

#[test]
fn a_run_has_ended_only_when_its_end_is_the_last_word() {
    let deleted = || Entry::Deleted {
        image_names: vec!["a.png".into()],
    };
    assert!(!State::from_entries(vec![deleted()]).ended);
    let ended = State::from_entries(vec![deleted(), Entry::Ended]);
    assert!(ended.ended);
    // Another run's entry after it: that run's end is still to come.
    assert!(!State::from_entries(vec![deleted(), Entry::Ended, deleted()]).ended);
    // A checkpoint carries it.
    let kept = State::from_entries(vec![Entry::Checkpoint {
        state: Box::new(ended),
    }]);
    assert!(kept.ended);
}
