//! `GET /api/v1/sync/pull`, behind HTTP: the changes of the caller's grids after a cursor.
//!
//! For each grid in scope (sorted), `record_index` rows with `change_seq` above the cursor's
//! counter for that grid are read in counter order, then the records themselves, one query
//! per collection. Because each grid's counter is bumped under a lock held to commit, a
//! counter visible to this read has every smaller counter of its grid committed before it:
//! moving the cursor to the last counter read never skips a change. A record changed again
//! after its index row was read is returned with its newer state (phones join states, so
//! that is harmless) and again later at its new counter.
//!
//! A page holds at most `limit` changes; `has_more` is set whenever the page filled up.

use std::collections::BTreeMap;

use diesel::prelude::*;
use sync_core::cursor::PullCursor;
use sync_core::ids::{GridId, RecordId};
use sync_core::ingest::to_change;
use sync_core::wire::{Change, PullResponse, Scope};
use sync_core::{Collection, Hlc, Timestamp};

use crate::db::schema::record_index;
use crate::db::DbConnection;
use crate::error::{AppError, AppResult};
use crate::for_collection;

pub const DEFAULT_LIMIT: usize = 500;
pub const MAX_LIMIT: usize = 1000;

/// Parse the client's cursor (absent: from the beginning).
pub fn parse_cursor(cursor: Option<&str>) -> AppResult<PullCursor> {
    match cursor {
        None | Some("") => Ok(PullCursor::default()),
        Some(c) => c.parse().map_err(|_| {
            AppError::bad_request("the cursor is not one this server issued")
                .with_code("invalid_cursor")
        }),
    }
}

/// Load the records behind index rows, keeping the index order.
fn load_changes(
    conn: &mut DbConnection,
    grid: GridId,
    index: &[(String, String)],
) -> AppResult<Vec<Change>> {
    let mut by_collection: BTreeMap<Collection, Vec<String>> = BTreeMap::new();
    for (collection, id) in index {
        if let Ok(c) = collection.parse::<Collection>() {
            by_collection.entry(c).or_default().push(id.clone());
        }
    }
    let mut found: BTreeMap<(Collection, String), Change> = BTreeMap::new();
    for (collection, ids) in by_collection {
        for_collection!(collection, |table, Row| {
            let rows: Vec<Row> = table::table
                .filter(table::id.eq_any(&ids))
                .select(Row::as_select())
                .load(conn)?;
            for row in rows {
                let state = row_to_state(collection, &row)?;
                let meta = row.meta();
                let id: RecordId = meta.id.parse().map_err(AppError::internal)?;
                found.insert(
                    (collection, meta.id),
                    to_change(collection, id, grid, &state),
                );
            }
        });
    }
    Ok(index
        .iter()
        .filter_map(|(c, id)| {
            c.parse::<Collection>()
                .ok()
                .and_then(|c| found.remove(&(c, id.clone())))
        })
        .collect())
}

/// One page of changes for `grids` after `cursor`.
pub fn pull_page(
    conn: &mut DbConnection,
    grids: &[GridId],
    mut cursor: PullCursor,
    limit: usize,
    now: Timestamp,
    server_hlc: Hlc,
) -> AppResult<PullResponse> {
    let limit = limit.clamp(1, MAX_LIMIT);
    cursor.retain_grids(grids);
    let mut changes = Vec::new();
    let mut has_more = false;
    for &grid in grids {
        let room = limit - changes.len();
        if room == 0 {
            has_more = true;
            break;
        }
        let after = i64::try_from(cursor.get(grid)).unwrap_or(i64::MAX);
        let index: Vec<(String, String, i64)> = record_index::table
            .filter(record_index::grid_id.eq(grid.to_string()))
            .filter(record_index::change_seq.gt(after))
            .order(record_index::change_seq.asc())
            .limit(i64::try_from(room + 1).unwrap_or(i64::MAX))
            .select((
                record_index::collection,
                record_index::record_id,
                record_index::change_seq,
            ))
            .load(conn)?;
        let take = index.len().min(room);
        if index.len() > room {
            has_more = true;
        }
        let Some(last) = index[..take].last().map(|r| r.2) else {
            continue;
        };
        let keys: Vec<(String, String)> = index[..take]
            .iter()
            .map(|(c, id, _)| (c.clone(), id.clone()))
            .collect();
        changes.extend(load_changes(conn, grid, &keys)?);
        cursor.set(grid, u64::try_from(last).unwrap_or(0));
    }
    Ok(PullResponse {
        changes,
        cursor: cursor.to_string(),
        has_more,
        server_time: now,
        server_hlc: Some(server_hlc),
        scope: Some(Scope {
            grid_ids: grids.to_vec(),
        }),
    })
}
