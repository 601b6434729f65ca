//! The logs of the test servers, shown when a test fails: every server this process starts
//! is registered here, and a panic hook (installed with the first server) prints the tail of
//! each one's log (`ROOT/invokeai-web.log`) under the failing test's output. A private server
//! is registered for as long as it runs.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

/// How many lines of each log are shown.
const TAIL_LINES: usize = 40;
/// At most this many bytes are read from the end of a log.
const TAIL_BYTES: u64 = 64 * 1024;

static ROOTS: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
static HOOK: Once = Once::new();

/// Registers a server's root under a name (`shared single`, `private 41234`, ...).
pub(crate) fn register(name: &str, root: &Path) {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            eprintln!("{}", tails());
        }));
    });
    roots().push((name.to_owned(), root.to_path_buf()));
}

/// Forgets a server (its root is about to go).
pub(crate) fn unregister(root: &Path) {
    roots().retain(|(_, r)| r != root);
}

fn roots() -> std::sync::MutexGuard<'static, Vec<(String, PathBuf)>> {
    ROOTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The last lines of each registered server's log.
pub(crate) fn tails() -> String {
    let mut out = String::new();
    for (name, root) in roots().iter() {
        let log = root.join(invk_run::local_server::LOG_FILE);
        out.push_str(&format!(
            "---- last {TAIL_LINES} lines of the {name} server's log ({}) ----\n",
            log.display()
        ));
        match tail(&log) {
            Ok(text) => out.push_str(&text),
            Err(e) => out.push_str(&format!("(cannot read it: {e})\n")),
        }
    }
    out
}

fn tail(path: &Path) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = fs_err::File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    out.push('\n');
    Ok(out)
}

#[test]
fn the_tail_of_each_registered_log_is_shown_and_a_forgotten_one_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text: String = (1..=100).map(|i| format!("log line {i}\n")).collect();
    fs_err::write(dir.path().join(invk_run::local_server::LOG_FILE), text).expect("write");
    register("test", dir.path());
    let shown = tails();
    unregister(dir.path());
    assert!(shown.contains("of the test server's log"), "{shown}");
    assert!(shown.contains("log line 100\n") && shown.contains("log line 61\n"));
    assert!(!shown.contains("log line 60\n"), "{shown}");
    assert!(!tails().contains(&dir.path().display().to_string()));
}
