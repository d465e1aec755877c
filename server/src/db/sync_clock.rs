//! Per-grid change counters and the record index: what makes pull gap-free.
//!
//! Why: a pull cursor must never skip a change. A timestamp cursor misses transactions that
//! commit late; a global sequence misses a transaction that took a smaller number but
//! committed after a reader passed it. Instead every write to a synced record, inside its
//! own transaction, bumps its grid's counter in `grid_clock` with an upsert that locks the
//! grid's row until commit (PostgreSQL), or while holding the database write lock taken by
//! `BEGIN IMMEDIATE` (SQLite). A second writer of the same grid waits for the first to
//! commit before it gets its number, so per grid, commit order equals counter order, and a
//! reader that sees `change_seq = N` committed has already seen every change below N.
//! The record's `change_seq` column and its `record_index` row carry that number; pull
//! reads `record_index WHERE grid_id = ? AND change_seq > cursor ORDER BY change_seq`.
//!
//! Invariants:
//! - Call these only inside [`super::write_transaction`]; outside one, the lock is released
//!   at once and the guarantee is gone.
//! - A transaction that writes to several grids must lock their clocks in one global order
//!   first ([`lock_grid_clocks`] sorts), or two such transactions can deadlock on PostgreSQL.
//! - A grid's counter only grows; record_index has one row per record holding its latest
//!   change.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::DbConnection;
use crate::error::AppResult;

#[derive(QueryableByName)]
struct Counter {
    #[diesel(sql_type = BigInt)]
    counter: i64,
}

/// Increment `grid_id`'s change counter (creating it at 1) and return the new value,
/// holding the grid's clock locked until the surrounding transaction ends.
pub fn bump_grid_counter(conn: &mut DbConnection, grid_id: &str) -> AppResult<i64> {
    let row: Counter = match conn {
        DbConnection::Postgresql(c) => diesel::sql_query(
            "INSERT INTO grid_clock (grid_id, counter) VALUES ($1, 1) \
             ON CONFLICT (grid_id) DO UPDATE SET counter = grid_clock.counter + 1 \
             RETURNING counter",
        )
        .bind::<Text, _>(grid_id)
        .get_result(c)?,
        DbConnection::Sqlite(c) => diesel::sql_query(
            "INSERT INTO grid_clock (grid_id, counter) VALUES (?, 1) \
             ON CONFLICT (grid_id) DO UPDATE SET counter = grid_clock.counter + 1 \
             RETURNING counter",
        )
        .bind::<Text, _>(grid_id)
        .get_result(c)?,
    };
    Ok(row.counter)
}

/// Lock the clocks of several grids in sorted order (creating missing rows at 0) so that a
/// transaction touching several grids cannot deadlock with another doing the same. Call it
/// first thing in such a transaction; afterwards [`bump_grid_counter`] in any order.
/// On SQLite this is a no-op beyond creating the rows: the write lock is already held.
pub fn lock_grid_clocks(conn: &mut DbConnection, grid_ids: &[&str]) -> AppResult<()> {
    let mut sorted: Vec<&str> = grid_ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    for grid_id in sorted {
        match conn {
            DbConnection::Postgresql(c) => {
                diesel::sql_query(
                    "INSERT INTO grid_clock (grid_id, counter) VALUES ($1, 0) \
                     ON CONFLICT (grid_id) DO NOTHING",
                )
                .bind::<Text, _>(grid_id)
                .execute(c)?;
                diesel::sql_query("SELECT counter FROM grid_clock WHERE grid_id = $1 FOR UPDATE")
                    .bind::<Text, _>(grid_id)
                    .load::<Counter>(c)?;
            }
            DbConnection::Sqlite(c) => {
                diesel::sql_query(
                    "INSERT INTO grid_clock (grid_id, counter) VALUES (?, 0) \
                     ON CONFLICT (grid_id) DO NOTHING",
                )
                .bind::<Text, _>(grid_id)
                .execute(c)?;
            }
        }
    }
    Ok(())
}

/// Record that `record_id` of `collection` in `grid_id` last changed at `change_seq`
/// (insert or update its `record_index` row).
pub fn touch_record_index(
    conn: &mut DbConnection,
    collection: &str,
    record_id: &str,
    grid_id: &str,
    change_seq: i64,
) -> AppResult<()> {
    const UPSERT_PG: &str =
        "INSERT INTO record_index (collection, record_id, grid_id, change_seq) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (collection, record_id) \
         DO UPDATE SET grid_id = excluded.grid_id, change_seq = excluded.change_seq";
    const UPSERT_SQLITE: &str =
        "INSERT INTO record_index (collection, record_id, grid_id, change_seq) \
         VALUES (?, ?, ?, ?) \
         ON CONFLICT (collection, record_id) \
         DO UPDATE SET grid_id = excluded.grid_id, change_seq = excluded.change_seq";
    match conn {
        DbConnection::Postgresql(c) => diesel::sql_query(UPSERT_PG)
            .bind::<Text, _>(collection)
            .bind::<Text, _>(record_id)
            .bind::<Text, _>(grid_id)
            .bind::<BigInt, _>(change_seq)
            .execute(c)?,
        DbConnection::Sqlite(c) => diesel::sql_query(UPSERT_SQLITE)
            .bind::<Text, _>(collection)
            .bind::<Text, _>(record_id)
            .bind::<Text, _>(grid_id)
            .bind::<BigInt, _>(change_seq)
            .execute(c)?,
    };
    Ok(())
}

/// Bump the grid's counter and point the record's index row at it; returns the
/// `change_seq` to store in the record's own row. The usual call for every write.
pub fn record_change(
    conn: &mut DbConnection,
    collection: &str,
    record_id: &str,
    grid_id: &str,
) -> AppResult<i64> {
    let seq = bump_grid_counter(conn, grid_id)?;
    touch_record_index(conn, collection, record_id, grid_id, seq)?;
    Ok(seq)
}
