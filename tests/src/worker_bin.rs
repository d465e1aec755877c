//! Where the `grid-worker` binary (the reference phone client) is.
//!
//! `env!("CARGO_BIN_EXE_grid-worker")` exists only inside the crate that defines the binary,
//! and `grid-worker` has no library target, so a dev-dependency on it would be ignored by
//! cargo ("missing a lib target") and build nothing. Instead the binary is looked up where
//! cargo puts it: a test binary runs from `<target>/<profile>/deps/`, the worker is
//! `<target>/<profile>/grid-worker`. `cargo test --workspace` builds it there (the `worker`
//! package has integration tests, so cargo builds its binary with the rest, before any test
//! runs); `cargo test -p grid-tests` alone does not — run `cargo build -p grid-worker` first,
//! or the tests that need it print a notice and skip those scenarios. The variable
//! `GRID_WORKER_BIN` overrides the search.

use std::path::PathBuf;

/// The binary's file name on this platform.
pub fn file_name() -> String {
    format!("grid-worker{}", std::env::consts::EXE_SUFFIX)
}

/// The `grid-worker` binary, if it can be found.
pub fn locate() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GRID_WORKER_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?.to_path_buf();
    // From `deps/` (tests) or the profile dir itself (binaries).
    for _ in 0..2 {
        let candidate = dir.join(file_name());
        if candidate.is_file() {
            return Some(candidate);
        }
        dir = dir.parent()?.to_path_buf();
    }
    None
}
