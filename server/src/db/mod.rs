//! The database layer: one connection type over SQLite or PostgreSQL, its pool, the
//! transaction helpers, the schema, the migrations, and the few operations whose SQL differs
//! between the two dialects.
//!
//! Invariants:
//! - Everything above this module speaks to [`DbConnection`] through diesel's portable DSL
//!   and [`schema`]. Dialect-specific SQL (upserts, `RETURNING`, `FOR UPDATE`, `BEGIN
//!   IMMEDIATE`) lives only in this module, matching on the connection variant
//!   (`diesel::MultiConnection` has no `on_conflict`).
//! - Diesel is blocking: async code reaches the database only through [`DbPool::run`] and
//!   [`DbPool::write`], which run the closure on the blocking thread pool.
//! - Every write to a synced record goes through [`write_transaction`] and, inside it,
//!   [`record_change`] (or [`bump_grid_counter`] + [`touch_record_index`]).

pub mod areas;
pub mod audit;
pub mod devices;
pub mod hlc;
pub mod households;
pub mod migrations;
mod pool;
pub mod rate_limit;
pub mod schema;
mod sync_clock;
pub mod tokens;
mod tx;
pub mod users;

pub use pool::{redact_url, Backend, DbManager, DbPool, DbTarget, PoolOptions, PooledConn};
pub use sync_clock::{bump_grid_counter, lock_grid_clocks, record_change, touch_record_index};
/// The synced collections (names = table names, field specs): sync-core's definition.
pub use sync_core::Collection;
pub use tx::write_transaction;

/// One database connection, SQLite or PostgreSQL (vaultwarden style). Implements
/// `diesel::Connection`, so the portable DSL works on it directly.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// A PostgreSQL connection.
    Postgresql(diesel::PgConnection),
    /// A SQLite connection (customised on acquire: WAL, busy timeout, foreign keys).
    Sqlite(diesel::SqliteConnection),
}

impl DbConnection {
    /// Which backend this connection talks to.
    pub fn backend(&self) -> Backend {
        match self {
            DbConnection::Postgresql(_) => Backend::Postgres,
            DbConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

impl std::fmt::Debug for DbConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DbConnection({:?})", self.backend())
    }
}

/// The current time as milliseconds since the Unix epoch (UTC): the unit of every time
/// column.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
