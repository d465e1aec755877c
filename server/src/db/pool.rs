//! The connection pool: parses the database URL, opens the right backend, customises SQLite
//! connections when the pool creates them.
//!
//! Invariants:
//! - URL scheme decides the backend: `sqlite://PATH` (also `sqlite:PATH`) or
//!   `postgres://…` / `postgresql://…`. Anything else is a configuration error.
//! - The URL may hold a password: it is never logged or put into an error; use
//!   [`redact_url`] to show it.
//! - Every SQLite connection runs with `journal_mode=WAL` (readers never block the
//!   writer), `busy_timeout=5000` (a writer waits for the lock instead of failing at once),
//!   `foreign_keys=ON` and `synchronous=NORMAL` (durable in WAL mode except for the last
//!   transactions on power loss, which a server tolerates better than the latency of FULL).

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, CustomizeConnection, ManageConnection, R2D2Connection};
use diesel::Connection;

use super::DbConnection;
use crate::error::{AppError, AppResult};

/// Which database engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite (bundled, single file).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Backend {
    /// `"sqlite"` or `"postgres"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A parsed database URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DbTarget {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (may contain a password).
    Postgres(String),
}

impl std::fmt::Debug for DbTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbTarget::Sqlite(p) => write!(f, "Sqlite({})", p.display()),
            DbTarget::Postgres(url) => write!(f, "Postgres({})", redact_url(url)),
        }
    }
}

impl DbTarget {
    /// Parse `sqlite://PATH`, `sqlite:PATH`, `postgres://…` or `postgresql://…`.
    pub fn parse(url: &str) -> AppResult<DbTarget> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbTarget::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| {
                AppError::bad_request(format!(
                    "unsupported database URL {}: expected sqlite://PATH or postgres://…",
                    redact_url(url)
                ))
            })?;
        if path.is_empty() || path == ":memory:" {
            // A pool of in-memory databases would be a pool of different databases.
            return Err(AppError::bad_request(
                "sqlite database URL needs a file path (in-memory databases are not supported)",
            ));
        }
        Ok(DbTarget::Sqlite(PathBuf::from(path)))
    }

    /// The backend of this target.
    pub fn backend(&self) -> Backend {
        match self {
            DbTarget::Sqlite(_) => Backend::Sqlite,
            DbTarget::Postgres(_) => Backend::Postgres,
        }
    }

    /// Open one connection outside the pool, set up like pooled ones (SQLite pragmas).
    pub fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        if let DbTarget::Sqlite(path) = self {
            ensure_parent_dir(path).map_err(|e| {
                r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(
                    e.message().to_owned(),
                ))
            })?;
        }
        let mut conn = self.open_raw()?;
        ConnectionSetup.on_acquire(&mut conn)?;
        Ok(conn)
    }

    fn open_raw(&self) -> Result<DbConnection, r2d2::Error> {
        Ok(match self {
            DbTarget::Sqlite(path) => {
                let path = path.to_str().ok_or_else(|| {
                    r2d2::Error::ConnectionError(diesel::ConnectionError::InvalidConnectionUrl(
                        "sqlite path is not valid UTF-8".to_owned(),
                    ))
                })?;
                DbConnection::Sqlite(
                    diesel::SqliteConnection::establish(path)
                        .map_err(r2d2::Error::ConnectionError)?,
                )
            }
            DbTarget::Postgres(url) => DbConnection::Postgresql(
                diesel::PgConnection::establish(url).map_err(r2d2::Error::ConnectionError)?,
            ),
        })
    }
}

/// Shows a database URL with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split(':').next().unwrap_or("");
            let redacted = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{}{}@{}", &url[..scheme_end + 3], redacted, &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

/// Pool sizing.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Most connections open at once.
    pub max_size: u32,
    /// Connections kept open when idle.
    pub min_idle: u32,
    /// How long `get` waits for a free connection before the request fails with 503.
    pub connection_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_size: 10,
            min_idle: 1,
            connection_timeout: Duration::from_secs(10),
        }
    }
}

/// The r2d2 connection manager: opens connections by target (diesel's `ConnectionManager` would hand the raw
/// URL to every backend in turn, and SQLite would happily create a file named
/// `postgres://…`).
#[derive(Debug)]
pub struct DbManager {
    target: DbTarget,
}

impl ManageConnection for DbManager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        // ConnectionSetup (the pool's customizer) runs right after this.
        self.target.open_raw()
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// Per-connection settings, applied by the pool to every connection it opens (and by
/// [`DbTarget::connect`]).
#[derive(Debug, Clone, Copy)]
struct ConnectionSetup;

impl CustomizeConnection<DbConnection, r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        match conn {
            DbConnection::Sqlite(c) => c
                .batch_execute(
                    "PRAGMA busy_timeout = 5000; \
                     PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON;",
                )
                .map_err(r2d2::Error::QueryError),
            DbConnection::Postgresql(c) => c
                // Times are stored as integers; UTC only matters for ad-hoc SQL and logs.
                .batch_execute("SET TIME ZONE 'UTC'")
                .map_err(r2d2::Error::QueryError),
        }
    }
}

/// Routes r2d2's background errors (it reconnects on its own threads) to tracing.
#[derive(Debug, Clone, Copy)]
struct LogErrors;

impl r2d2::HandleError<r2d2::Error> for LogErrors {
    fn handle_error(&self, error: r2d2::Error) {
        tracing::warn!(error = %error, "database connection error");
    }
}

/// A pooled connection; derefs to [`DbConnection`].
pub type PooledConn = r2d2::PooledConnection<DbManager>;

/// The connection pool. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct DbPool {
    pool: r2d2::Pool<DbManager>,
    backend: Backend,
}

impl std::fmt::Debug for DbPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbPool")
            .field("backend", &self.backend)
            .field("state", &self.pool.state())
            .finish()
    }
}

impl DbPool {
    /// Open a pool for `url` with default sizing; fails if no connection can be made.
    /// Blocking: call it before the server starts, or from a blocking thread.
    pub fn connect(url: &str) -> AppResult<DbPool> {
        DbPool::connect_with(url, PoolOptions::default())
    }

    /// Open a pool for `url` with the given sizing. For a SQLite file, its parent directory
    /// is created if missing.
    pub fn connect_with(url: &str, options: PoolOptions) -> AppResult<DbPool> {
        let target = DbTarget::parse(url)?;
        if let DbTarget::Sqlite(path) = &target {
            ensure_parent_dir(path)?;
        }
        let backend = target.backend();
        let pool = r2d2::Pool::builder()
            .max_size(options.max_size.max(1))
            .min_idle(Some(options.min_idle.min(options.max_size)))
            .connection_timeout(options.connection_timeout)
            .connection_customizer(Box::new(ConnectionSetup))
            .error_handler(Box::new(LogErrors))
            .build(DbManager { target })
            .map_err(|e| AppError::unavailable("cannot connect to the database").with_cause(e))?;
        Ok(DbPool { pool, backend })
    }

    /// The backend of this pool.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Take a connection (blocking; waits up to the connection timeout, then 503).
    pub fn get(&self) -> AppResult<PooledConn> {
        Ok(self.pool.get()?)
    }

    /// Take a connection, waiting at most `timeout` (blocking).
    pub fn get_timeout(&self, timeout: Duration) -> AppResult<PooledConn> {
        Ok(self.pool.get_timeout(timeout)?)
    }

    /// Run `f` with a connection on the blocking thread pool, without a transaction.
    pub async fn run<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut DbConnection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.clone();
        actix_web::web::block(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await?
    }

    /// Run `f` inside a write transaction ([`super::write_transaction`]) on the blocking
    /// thread pool: committed when `f` returns `Ok`, rolled back otherwise.
    pub async fn write<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut DbConnection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn| super::write_transaction(conn, f))
            .await
    }
}

fn ensure_parent_dir(path: &Path) -> AppResult<()> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() && !parent.exists() {
            std::fs::create_dir_all(parent).map_err(|e| {
                // Startup-only path (never reached from a request): the detail helps.
                AppError::new(
                    crate::error::ErrorKind::Internal,
                    format!("cannot create database directory {}: {e}", parent.display()),
                )
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            DbTarget::parse("sqlite:///tmp/x.db").unwrap(),
            DbTarget::Sqlite(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(
            DbTarget::parse("sqlite://data/grid.db").unwrap(),
            DbTarget::Sqlite(PathBuf::from("data/grid.db"))
        );
        assert_eq!(
            DbTarget::parse("sqlite:grid.db").unwrap(),
            DbTarget::Sqlite(PathBuf::from("grid.db"))
        );
        assert_eq!(
            DbTarget::parse("postgresql://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert!(DbTarget::parse("mysql://x").is_err());
        assert!(DbTarget::parse("sqlite://:memory:").is_err());
        assert!(DbTarget::parse("/tmp/x.db").is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://grid:s3cret@db:5432/grid?sslmode=disable"),
            "postgres://grid:***@db:5432/grid?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(redact_url("sqlite://data/grid.db"), "sqlite://data/grid.db");
        let err = DbTarget::parse("mysql://u:pw@h/db").unwrap_err();
        assert!(!err.message().contains("pw@"), "{}", err.message());
    }
}
