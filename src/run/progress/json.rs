//! The JSON lines listener (`--json`): one JSON object per event on stdout.

use std::io::Write;

use super::event::RunEvent;
use super::listener::Listener;

/// Writes each run event as one line of JSON on stdout.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl Listener for JsonLines {
    fn hear(&self, event: &RunEvent) {
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}
