//! Server configuration: resolved once from flags and environment by `crate::cli`, then
//! read-only in `AppState`.
//!
//! Owns the data directory conventions:
//! - `<data-dir>` (default `./data`) is created if missing.
//! - The default database is `sqlite://<data-dir>/grid.db`.
//! - Without `GRID_JWT_SECRET`, the token-signing secret is 32 random bytes generated once
//!   and kept, hex-encoded, in `<data-dir>/jwt-secret` with mode 0600; later starts reuse it
//!   (so tokens survive restarts). The file is created atomically (written aside, then
//!   hard-linked into place), so two processes starting at once agree on one secret.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rand::RngCore;

use crate::db::PoolOptions;
use crate::extractors::DEFAULT_JSON_LIMIT;

/// Default listen address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Name of the generated secret file in the data directory.
pub const JWT_SECRET_FILE: &str = "jwt-secret";

/// Resolved server configuration. Its `Debug` output hides the database password.
#[derive(Clone)]
pub struct Config {
    /// `ADDR:PORT` to listen on (informational once the listener is bound).
    pub bind: String,
    /// The database URL (may hold a password: show with `db::redact_url`).
    pub database_url: String,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Limit for JSON request bodies, in bytes.
    pub json_limit: usize,
    /// HTTP worker threads (None: one per core).
    pub workers: Option<usize>,
    /// Database pool sizing.
    pub pool: PoolOptions,
}

impl Config {
    /// A configuration with defaults for everything but the database and data dir.
    pub fn new(database_url: impl Into<String>, data_dir: impl Into<PathBuf>) -> Config {
        Config {
            bind: DEFAULT_BIND.to_owned(),
            database_url: database_url.into(),
            data_dir: data_dir.into(),
            json_limit: DEFAULT_JSON_LIMIT,
            workers: None,
            pool: PoolOptions::default(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("database_url", &crate::db::redact_url(&self.database_url))
            .field("data_dir", &self.data_dir)
            .field("json_limit", &self.json_limit)
            .field("workers", &self.workers)
            .field("pool", &self.pool)
            .finish()
    }
}

/// Create the data directory if missing.
pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create data dir {}", dir.display()))
}

/// The database URL: the given one, else `sqlite://<data-dir>/grid.db`.
pub fn database_url_or_default(given: Option<String>, data_dir: &Path) -> String {
    match given.filter(|u| !u.trim().is_empty()) {
        Some(url) => url,
        None => format!("sqlite://{}", data_dir.join("grid.db").display()),
    }
}

/// The JWT secret: `GRID_JWT_SECRET`'s bytes when given, else the one kept in the data dir
/// (generated on first use).
pub fn jwt_secret(from_env: Option<String>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = from_env.filter(|s| !s.is_empty()) {
        if secret.len() < 32 {
            tracing::warn!("GRID_JWT_SECRET is shorter than 32 bytes; use a longer random secret");
        }
        return Ok(secret.into_bytes());
    }
    load_or_create_secret_file(&data_dir.join(JWT_SECRET_FILE))
}

fn load_or_create_secret_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = read_secret_file(path)? {
        return Ok(secret);
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let encoded = hex::encode(bytes);

    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    write_private(&tmp, encoded.as_bytes())?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated a new JWT secret");
            Ok(encoded.into_bytes())
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_secret_file(path)?.ok_or_else(|| anyhow::anyhow!("{} is empty", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

fn read_secret_file(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match fs::read_to_string(path) {
        Ok(content) => {
            warn_if_readable_by_others(path);
            let secret = content.trim();
            if secret.is_empty() {
                anyhow::bail!(
                    "{} is empty; delete it to generate a new secret",
                    path.display()
                );
            }
            Ok(Some(secret.as_bytes().to_vec()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(content)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(content)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "JWT secret file is readable by others; chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn debug_hides_the_database_password() {
        let c = Config::new("postgres://grid:hunter2@db/grid", "data");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("grid:***@db"),
            "{shown}"
        );
    }

    #[test]
    fn default_database_url_is_in_data_dir() {
        assert_eq!(
            database_url_or_default(None, Path::new("./data")),
            "sqlite://./data/grid.db"
        );
        assert_eq!(
            database_url_or_default(Some("postgres://h/db".into()), Path::new("x")),
            "postgres://h/db"
        );
    }

    #[test]
    fn secret_is_generated_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let first = jwt_secret(None, dir.path()).unwrap();
        assert_eq!(first.len(), 64, "32 bytes hex-encoded");
        let second = jwt_secret(None, dir.path()).unwrap();
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(JWT_SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let from_env = jwt_secret(Some("env-secret".into()), dir.path()).unwrap();
        assert_eq!(from_env, b"env-secret");
        // No temp files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
