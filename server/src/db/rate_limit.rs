//! Fixed-window failure counters in `login_failures`, for login rate limiting.
//!
//! Kept in the database rather than in memory so a limit survives a restart and holds
//! across several server processes behind one load balancer. Keys are chosen by the caller,
//! e.g. `user:<username>` and `ip:<address>`; a window starts at the first failure and lasts
//! `window_ms`; the caller compares the returned count with its threshold.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::schema::login_failures;
use super::DbConnection;
use crate::error::AppResult;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Count one failure for `key` at `now_ms` and return the failures in the current window
/// (a window older than `window_ms` restarts at 1).
pub fn register_failure(
    conn: &mut DbConnection,
    key: &str,
    now_ms: i64,
    window_ms: i64,
) -> AppResult<i64> {
    // One statement, so concurrent failures of one key never lose a count.
    const SQL_PG: &str = "INSERT INTO login_failures (key, window_start, count) VALUES ($1, $2, 1) \
         ON CONFLICT (key) DO UPDATE SET \
           count = CASE WHEN login_failures.window_start <= $3 THEN 1 ELSE login_failures.count + 1 END, \
           window_start = CASE WHEN login_failures.window_start <= $3 THEN $2 ELSE login_failures.window_start END \
         RETURNING count";
    const SQL_SQLITE: &str = "INSERT INTO login_failures (key, window_start, count) VALUES (?1, ?2, 1) \
         ON CONFLICT (key) DO UPDATE SET \
           count = CASE WHEN login_failures.window_start <= ?3 THEN 1 ELSE login_failures.count + 1 END, \
           window_start = CASE WHEN login_failures.window_start <= ?3 THEN ?2 ELSE login_failures.window_start END \
         RETURNING count";
    let expired_before = now_ms - window_ms;
    let row: Count = match conn {
        DbConnection::Postgresql(c) => diesel::sql_query(SQL_PG)
            .bind::<Text, _>(key)
            .bind::<BigInt, _>(now_ms)
            .bind::<BigInt, _>(expired_before)
            .get_result(c)?,
        DbConnection::Sqlite(c) => diesel::sql_query(SQL_SQLITE)
            .bind::<Text, _>(key)
            .bind::<BigInt, _>(now_ms)
            .bind::<BigInt, _>(expired_before)
            .get_result(c)?,
    };
    Ok(row.count)
}

/// The failures counted for `key` in the window still open at `now_ms` (0 if none).
pub fn current_failures(
    conn: &mut DbConnection,
    key: &str,
    now_ms: i64,
    window_ms: i64,
) -> AppResult<i64> {
    let row: Option<(i64, i64)> = login_failures::table
        .find(key)
        .select((login_failures::window_start, login_failures::count))
        .first(conn)
        .optional()?;
    Ok(match row {
        Some((start, count)) if start > now_ms - window_ms => count,
        _ => 0,
    })
}

/// When the window for `key` ends (ms since epoch), if it is open at `now_ms`.
pub fn window_end(
    conn: &mut DbConnection,
    key: &str,
    now_ms: i64,
    window_ms: i64,
) -> AppResult<Option<i64>> {
    let start: Option<i64> = login_failures::table
        .find(key)
        .select(login_failures::window_start)
        .first(conn)
        .optional()?;
    Ok(start.map(|s| s + window_ms).filter(|end| *end > now_ms))
}

/// Forget the failures of `key` (after a successful login).
pub fn clear(conn: &mut DbConnection, key: &str) -> AppResult<()> {
    diesel::delete(login_failures::table.find(key)).execute(conn)?;
    Ok(())
}
