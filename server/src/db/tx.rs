//! Write transactions that behave the same on both backends.
//!
//! Invariant: every transaction that writes starts with [`write_transaction`]. On SQLite it
//! begins with `BEGIN IMMEDIATE`, taking the database's write lock up front: a plain
//! `BEGIN` starts as a reader and upgrading to a writer later fails at once with
//! `SQLITE_BUSY` (no busy-timeout retry is possible for an upgrade, since waiting could
//! deadlock). Taking the lock first makes concurrent writers queue on `busy_timeout`
//! instead. On PostgreSQL it is a plain `BEGIN` (READ COMMITTED); rows that must serialise
//! writers (the grid clocks) are locked explicitly.

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::result::Error as DieselError;
use diesel::Connection;

use super::DbConnection;
use crate::error::AppResult;

/// Run `f` in a write transaction: commit when it returns `Ok`, roll back when it returns
/// `Err` (the error is returned). When already inside a transaction, `f` runs in a
/// savepoint of it instead (diesel's nested transaction).
pub fn write_transaction<T, F>(conn: &mut DbConnection, f: F) -> AppResult<T>
where
    F: FnOnce(&mut DbConnection) -> AppResult<T>,
{
    let in_transaction = match conn {
        DbConnection::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()?
            .is_some(),
        DbConnection::Postgresql(c) => AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()?
            .is_some(),
    };
    if in_transaction {
        return conn.transaction(f);
    }
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        DbConnection::Postgresql(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    // From here on the connection's transaction state says depth 1, so the
    // MultiConnection's own manager commits or rolls back the inner connection.
    type Manager = <DbConnection as Connection>::TransactionManager;
    match f(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(err) => match Manager::rollback_transaction(conn) {
            Ok(()) | Err(DieselError::BrokenTransactionManager) => Err(err),
            Err(rollback_err) => Err(rollback_err.into()),
        },
    }
}
