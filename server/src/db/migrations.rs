//! The embedded migrations (`migrations/sqlite`, `migrations/postgres`) and running them.
//!
//! Invariant: the two folders hold the same migrations (same versions, same resulting
//! tables, columns, types and indexes); `tests/migrations.rs` checks it on both backends.
//! `serve` runs pending migrations before it listens; `migrate` runs them and exits.

use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::DbConnection;
use crate::error::{AppError, AppResult};

/// SQLite migrations.
pub const SQLITE: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
/// PostgreSQL migrations.
pub const POSTGRES: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

fn migration_error(
    action: &'static str,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> AppError {
    move |e| AppError::internal(anyhow::anyhow!("{action}: {e}"))
}

/// Apply every pending migration; returns the versions applied (empty when up to date).
pub fn run_pending(conn: &mut DbConnection) -> AppResult<Vec<String>> {
    let applied = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE),
        DbConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES),
    }
    .map_err(migration_error("running migrations failed"))?;
    Ok(applied.into_iter().map(|v| v.to_string()).collect())
}

/// Revert every applied migration (tests and disaster recovery only: drops all data).
pub fn revert_all(conn: &mut DbConnection) -> AppResult<Vec<String>> {
    let reverted = match conn {
        DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE),
        DbConnection::Postgresql(c) => c.revert_all_migrations(POSTGRES),
    }
    .map_err(migration_error("reverting migrations failed"))?;
    Ok(reverted.into_iter().map(|v| v.to_string()).collect())
}

/// The versions of migrations not yet applied.
pub fn pending(conn: &mut DbConnection) -> AppResult<Vec<String>> {
    let pending = match conn {
        DbConnection::Sqlite(c) => c
            .pending_migrations(SQLITE)
            .map(|m| m.iter().map(|m| m.name().version().to_string()).collect()),
        DbConnection::Postgresql(c) => c
            .pending_migrations(POSTGRES)
            .map(|m| m.iter().map(|m| m.name().version().to_string()).collect()),
    }
    .map_err(migration_error("listing migrations failed"))?;
    Ok(pending)
}
