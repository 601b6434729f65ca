//! Hostile names in the hot folder: a manifest that is a relative link, and file names that
//! hold control characters.

use std::time::Duration;

use invk_run::watch::WatchEvent;

use super::{Events, FakeRunner, HotFolder, files_in, list, manifest, watch_until};

/// A relative link is followed when claimed: the run reads what it points to (moving the link
/// into `processing/` would break it), the link leaves the hot folder, and the file it points
/// to stays where it is.
#[cfg(unix)]
#[tokio::test]
async fn a_manifest_that_is_a_relative_link_runs_what_it_points_to() {
    let hot = HotFolder::new();
    let config = hot.config.clone();
    let library = hot.dir().join("library");
    fs_err::create_dir_all(&library).expect("mkdir");
    fs_err::write(library.join("real.yaml"), manifest("linked")).expect("write");
    std::os::unix::fs::symlink("library/real.yaml", hot.dir().join("link.yaml")).expect("link");
    let runner = FakeRunner::new(Duration::from_millis(10));
    let events = Events::default();
    let until = files_in(&config.done_dir, ".report.json", 1);
    let summary = watch_until(&config, &runner, &events, until, Duration::from_secs(30)).await;

    assert_eq!(
        (summary.done, summary.failed),
        (1, 0),
        "{:#?}",
        events.all()
    );
    assert_eq!(
        list(&config.done_dir),
        ["link.yaml", "link.yaml.report.json"]
    );
    let filed = config.done_dir.join("link.yaml");
    assert!(
        !filed
            .symlink_metadata()
            .expect("filed")
            .file_type()
            .is_symlink(),
        "the filed manifest is the content, not the link"
    );
    assert_eq!(
        fs_err::read_to_string(&filed).expect("read"),
        manifest("linked")
    );
    assert!(hot.dir().join("link.yaml").symlink_metadata().is_err());
    assert_eq!(
        fs_err::read_to_string(library.join("real.yaml")).expect("target stays"),
        manifest("linked")
    );
    assert_eq!(runner.submissions(), 1);
}

/// A file name with a newline (and an escape sequence) cannot fake a status line: every line
/// printed names it with its control characters escaped.
#[tokio::test]
async fn control_characters_in_file_names_are_escaped_in_every_status_line() {
    let hot = HotFolder::new();
    let config = hot.config.clone();
    let evil = "a\nclaimed fake.yaml [running 0, queued 0, done 9, failed 0]\u{1b}[2K.yaml";
    hot.write(evil, &manifest("evil"));
    let runner = FakeRunner::new(Duration::from_millis(10));
    let events = Events::default();
    let until = files_in(&config.done_dir, ".report.json", 1);
    let summary = watch_until(&config, &runner, &events, until, Duration::from_secs(30)).await;
    assert_eq!(summary.done, 1);

    let lines: Vec<String> = events.all().iter().map(WatchEvent::human_line).collect();
    let naming: Vec<&String> = lines.iter().filter(|l| l.contains("fake.yaml")).collect();
    assert!(naming.len() >= 2, "claimed and done name it: {lines:#?}");
    for line in &lines {
        assert!(
            !line.chars().any(char::is_control),
            "a raw control character: {line:?}"
        );
    }
    assert!(
        naming
            .iter()
            .all(|l| l.contains("a\\nclaimed fake.yaml") && l.contains("\\u{1b}[2K")),
        "{naming:#?}"
    );
}
