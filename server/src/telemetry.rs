//! Structured logging with tracing.
//!
//! The filter comes from `GRID_LOG`, else `RUST_LOG`, else the given default (e.g. `info`).
//! Logs go to standard error; standard output is kept for what commands print for people
//! and scripts (created ids, demo passwords).
//!
//! Invariant: nothing logs request bodies, passwords, password hashes, tokens, the JWT secret
//! or database passwords; request logs carry method, path (no query string), status, latency.

use tracing_subscriber::EnvFilter;

/// Install the global subscriber (a second call is a no-op, which tests rely on).
pub fn init(default_filter: &str) {
    let filter = EnvFilter::try_from_env("GRID_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
