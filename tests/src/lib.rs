//! `grid-tests`: the end-to-end harness. The phone's sync-core replica talks to the real
//! `grid-server` over HTTP on a loopback port, the way the app does.
//!
//! - [`server`]: [`server::LiveServer`], the real server in process on `127.0.0.1:<port>`
//!   (SQLite or PostgreSQL), which can be stopped and restarted on the same port and
//!   database; the first admin;
//! - [`admin`]: a blocking client of the admin API (areas, users, grid changes, export);
//! - [`phone`]: a phone — a replica in a temp dir with an injected clock and seeded ids, its
//!   login, and a sync through any transport wrapper;
//! - [`faults`]: a fault-injecting [`sync_core::sync::Transport`] wrapper (dropped requests,
//!   responses dropped after the server committed, duplicated, delayed and replayed stale
//!   requests, a server restart between two requests);
//! - [`oracle`]: a transport wrapper that reads the server's database before each push and
//!   predicts which fields of each mutation are concurrent edits (conflicts);
//! - [`meter`]: a transport wrapper that counts bytes on the wire and push latencies;
//! - [`db`]: counts and conflict rows read from the server's database;
//! - [`worker_bin`]: where the `grid-worker` binary is, for tests that kill it mid-sync;
//! - [`world`]: provisioning through the admin API (a server with its admin; per scenario a
//!   community with two grids, workers and a supervisor).
//!
//! The test files live in `tests/tests/`, the load generator in `src/bin/grid-loadgen.rs`.

pub mod admin;
pub mod db;
pub mod faults;
pub mod meter;
pub mod oracle;
pub mod phone;
pub mod server;
pub mod worker_bin;
pub mod world;

/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// An environment variable as a number, if set and valid.
pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// A scratch directory, on the RAM disk when there is one: SQLite with `synchronous=FULL`
/// syncs at every commit, and hundreds of small replicas would otherwise wait on the disk.
pub fn scratch_dir(prefix: &str) -> std::io::Result<tempfile::TempDir> {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::Builder::new().prefix(prefix).tempdir_in(shm) {
            return Ok(d);
        }
    }
    tempfile::Builder::new().prefix(prefix).tempdir()
}
