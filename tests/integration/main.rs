//! Integration tests: one binary. Tests that need InvokeAI start it through `support::server()`
//! (installed into the cache folder on first use).

mod support;

mod client;
mod conformance;
mod examples;
mod fake_server;
mod handle;
mod server;
