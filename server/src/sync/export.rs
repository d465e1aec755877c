//! The server's canonical export of one grid (contract: "Canonical export"): every record of
//! every synced collection in the grid, as a phone that has pulled to the end holds it.
//!
//! Invariant: built from the same record states and through the same two functions as the
//! pull (`ingest::to_change` for a record's fields, `export::canonical_export` for the
//! shape), so a phone's export of that grid after a full sync equals this one exactly.

use diesel::prelude::*;
use serde_json::Value;
use sync_core::export::canonical_export;
use sync_core::ids::{GridId, RecordId};
use sync_core::ingest::to_change;
use sync_core::wire::Fields;
use sync_core::Collection;

use crate::db::{Backend, DbConnection};
use crate::error::{AppError, AppResult};
use crate::for_collection;

/// [`grid_export`] in one read-only transaction: a snapshot on both backends (SQLite's WAL
/// read transaction; PostgreSQL's REPEATABLE READ), so no half-applied push shows.
pub fn grid_export_snapshot(conn: &mut DbConnection, grid: GridId) -> AppResult<Value> {
    conn.transaction::<_, AppError, _>(|conn| {
        if conn.backend() == Backend::Postgres {
            diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(conn)?;
        }
        grid_export(conn, grid)
    })
}

/// The canonical export of `grid` (which the caller has checked exists and is in scope).
pub fn grid_export(conn: &mut DbConnection, grid: GridId) -> AppResult<Value> {
    let grid_key = grid.to_string();
    let mut records: Vec<(Collection, RecordId, Fields)> = Vec::new();
    for collection in Collection::ALL {
        for_collection!(collection, |table, Row| {
            let rows: Vec<Row> = table::table
                .filter(table::grid_id.eq(&grid_key))
                .select(Row::as_select())
                .load(conn)?;
            for row in rows {
                let state = row_to_state(collection, &row)?;
                let id: RecordId = row.meta().id.parse().map_err(AppError::internal)?;
                records.push((
                    collection,
                    id,
                    to_change(collection, id, grid, &state).fields,
                ));
            }
        });
    }
    Ok(canonical_export(
        records.iter().map(|(c, id, f)| (*c, *id, grid, f)),
    ))
}
