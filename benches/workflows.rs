//! Benchmarks: loading and converting workflows (see the README).
fn main() {}
