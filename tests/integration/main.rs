//! Integration tests: one binary.

mod events;
mod fake_socketio;
