use super::*;
use std::collections::HashMap;

/// `resolve` with exactly the variables given.
fn with(spec: &str, vars: &[(&str, &str)]) -> Result<Shard, String> {
    let env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let spec = ShardSpec::parse(spec)?;
    resolve(spec, &|name| env.get(name).cloned()).map_err(|e| e.to_string())
}

fn shard(k: u32, n: u32) -> Shard {
    Shard::new(k, n).expect("a shard")
}

#[test]
fn a_shard_is_k_of_n_and_owns_the_jobs_whose_index_is_k_modulo_n() {
    assert_eq!(Shard::parse("1/3"), Ok(shard(1, 3)));
    assert_eq!(Shard::parse(" 0 / 1 "), Ok(Shard::WHOLE));
    let s = shard(1, 3);
    assert_eq!(s.indices(10).collect::<Vec<_>>(), [1, 4, 7]);
    assert_eq!(s.jobs_of(10), 3);
    assert_eq!(shard(0, 3).jobs_of(10), 4);
    assert_eq!(shard(2, 3).jobs_of(10), 3);
    assert_eq!(shard(5, 8).jobs_of(3), 0);
    assert!(s.contains(4) && !s.contains(5));
    // The shards of any sweep cover each job exactly once.
    for total in [0, 1, 7, 24, 25] {
        let mut all: Vec<usize> = (0..4).flat_map(|k| shard(k, 4).indices(total)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..total).collect::<Vec<_>>(), "{total}");
        let counted: usize = (0..4).map(|k| shard(k, 4).jobs_of(total)).sum();
        assert_eq!(counted, total);
    }
    assert_eq!(s.to_string(), "1/3");
}

#[test]
fn a_bad_shard_is_refused_with_what_to_give() {
    for (text, says) in [
        ("3/3", "shards are numbered from 0 to 2"),
        ("0/0", "from 1 to 10000"),
        ("0/10001", "from 1 to 10000"),
        ("1", "give K/N"),
        ("a/3", "whole numbers"),
        ("-1/3", "whole numbers"),
    ] {
        let err = Shard::parse(text).expect_err(text);
        assert!(err.contains(says), "{text}: {err}");
    }
    assert!(ShardSpec::parse("auto/x").is_err());
    assert!(ShardSpec::parse("auto/0").is_err());
    let err = ShardSpec::parse("sometimes").expect_err("not a shard");
    assert!(err.contains("auto"), "{err}");
}

#[test]
fn journals_of_shards_have_names_of_their_own_and_are_read_back() {
    assert_eq!(
        Shard::WHOLE.journal(),
        PathBuf::from(".invk-run/journal.jsonl")
    );
    assert_eq!(
        shard(2, 3).journal(),
        PathBuf::from(".invk-run/journal.2-of-3.jsonl")
    );
    for s in [Shard::WHOLE, shard(0, 2), shard(9, 12)] {
        let name = s.journal();
        let name = name.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(Shard::of_journal_name(name), Some(s));
    }
    for other in [
        "journal.jsonl.1700000000",
        "journal.3-of-3.jsonl",
        "journal.01-of-3.jsonl",
        "report.json",
    ] {
        assert_eq!(Shard::of_journal_name(other), None, "{other}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(Shard::journals_in(dir.path()).is_empty());
    crate::fs::create_dir_all(dir.path().join(".invk-run")).expect("mkdir");
    for name in [
        "journal.1-of-3.jsonl",
        "journal.0-of-3.jsonl",
        "report.json",
    ] {
        crate::fs::write(dir.path().join(".invk-run").join(name), "").expect("write");
    }
    assert_eq!(Shard::journals_in(dir.path()), [shard(0, 3), shard(1, 3)]);
}

#[test]
fn auto_reads_invk_shard() {
    assert_eq!(with("auto", &[(INVK_SHARD, "2/5")]), Ok(shard(2, 5)));
    assert_eq!(with("auto/5", &[(INVK_SHARD, "2/5")]), Ok(shard(2, 5)));
    let err = with("auto", &[(INVK_SHARD, "5/5")]).expect_err("out of range");
    assert!(
        err.contains("INVK_SHARD") && err.contains("0 to 4"),
        "{err}"
    );
    let err = with("auto/4", &[(INVK_SHARD, "2/5")]).expect_err("counts differ");
    assert!(
        err.contains("INVK_SHARD=2/5") && err.contains("auto/4"),
        "{err}"
    );
    // A fixed shard ignores the environment.
    assert_eq!(with("1/2", &[(INVK_SHARD, "bad")]), Ok(shard(1, 2)));
}

#[test]
fn auto_reads_a_kubernetes_indexed_job_with_the_count_given() {
    assert_eq!(
        with("auto/4", &[(JOB_COMPLETION_INDEX, "3")]),
        Ok(shard(3, 4))
    );
    let err = with("auto", &[(JOB_COMPLETION_INDEX, "3")]).expect_err("no count");
    assert!(
        err.contains("JOB_COMPLETION_INDEX=3") && err.contains("--shard auto/N"),
        "{err}"
    );
    let err = with("auto/4", &[(JOB_COMPLETION_INDEX, "4")]).expect_err("index too big");
    assert!(err.contains("JOB_COMPLETION_INDEX=4"), "{err}");
    let err = with("auto/4", &[(JOB_COMPLETION_INDEX, "x")]).expect_err("not a number");
    assert!(
        err.contains("JOB_COMPLETION_INDEX=x is not a whole number"),
        "{err}"
    );
}

#[test]
fn auto_reads_a_slurm_array_from_its_first_task_id() {
    let array = |id: &str, count: &str, min: &str| {
        vec![
            (SLURM_ARRAY_TASK_ID, id.to_owned()),
            (SLURM_ARRAY_TASK_COUNT, count.to_owned()),
            (SLURM_ARRAY_TASK_MIN, min.to_owned()),
        ]
    };
    let run = |spec: &str, vars: &[(&str, String)]| {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        with(spec, &vars)
    };
    assert_eq!(run("auto", &array("0", "3", "0")), Ok(shard(0, 3)));
    // `--array=1-3`: task 3 is the third.
    assert_eq!(run("auto", &array("3", "3", "1")), Ok(shard(2, 3)));
    assert_eq!(run("auto/3", &array("2", "3", "1")), Ok(shard(1, 3)));
    // `--array=0-6:2`: ids 0, 2, 4, 6.
    let mut stepped = array("4", "4", "0");
    stepped.push((SLURM_ARRAY_TASK_STEP, "2".into()));
    stepped.push((SLURM_ARRAY_TASK_MAX, "6".into()));
    assert_eq!(run("auto", &stepped), Ok(shard(2, 4)));
    // `--array=1,3,7`: ids with gaps are refused.
    let mut gaps = array("7", "3", "1");
    gaps.push((SLURM_ARRAY_TASK_MAX, "7".into()));
    let err = run("auto", &gaps).expect_err("gaps");
    assert!(
        err.contains("SLURM_ARRAY_TASK_COUNT=3") && err.contains("gaps"),
        "{err}"
    );
    let err = run("auto/4", &array("0", "3", "0")).expect_err("count differs");
    assert!(err.contains("auto/4"), "{err}");
    let err = run("auto", &array("0", "3", "1")).expect_err("below the first id");
    assert!(err.contains("SLURM_ARRAY_TASK_MIN=1"), "{err}");
    let err = with("auto", &[(SLURM_ARRAY_TASK_ID, "0")]).expect_err("no count");
    assert!(err.contains("SLURM_ARRAY_TASK_COUNT"), "{err}");
}

#[test]
fn auto_refuses_no_shard_and_disagreeing_variables() {
    let err = with("auto", &[]).expect_err("none");
    for name in [INVK_SHARD, JOB_COMPLETION_INDEX, SLURM_ARRAY_TASK_ID] {
        assert!(err.contains(name), "{err}");
    }
    let err = with("auto", &[(INVK_SHARD, " ")]).expect_err("blank is unset");
    assert!(err.contains("no shard in the environment"), "{err}");
    let err = with(
        "auto/4",
        &[(INVK_SHARD, "1/4"), (JOB_COMPLETION_INDEX, "2")],
    )
    .expect_err("disagree");
    assert!(
        err.contains("INVK_SHARD=1/4") && err.contains("JOB_COMPLETION_INDEX=2"),
        "{err}"
    );
    assert_eq!(
        with(
            "auto/4",
            &[(INVK_SHARD, "2/4"), (JOB_COMPLETION_INDEX, "2")]
        ),
        Ok(shard(2, 4))
    );
}
