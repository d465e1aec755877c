//! [`sync_core::ingest::Store`] over the server's tables: the push rules of sync-core run
//! against PostgreSQL or SQLite through this, inside the push's one write transaction.
//!
//! Invariants:
//! - every record write bumps its grid's change counter in the same transaction
//!   ([`crate::db::record_change`]), which is what keeps pull gap-free;
//! - the device's `last_applied_seq` is read under a row lock (PostgreSQL `FOR UPDATE`;
//!   SQLite holds the write lock already), so two concurrent pushes of one device cannot
//!   both apply the same `seq`;
//! - rows loaded during the push keep their bookkeeping (creation time, origin) in a cache, so
//!   an update rewrites the data columns without losing it, and a record read twice in one
//!   push is read from the database once; [`DieselStore::prefetch`] loads every record a push
//!   names with one query per collection up front;
//! - the change counters of the grids a push writes are locked and read once
//!   ([`DieselStore::reserve_counters`]), handed out in memory, and written back by
//!   [`DieselStore::flush_counters`] before commit: the same row lock is held to commit as with
//!   a per-write bump, so pull stays gap-free, at one statement per grid instead of per write.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use sync_core::ids::{DeviceId, GridId, RecordId};
use sync_core::ingest::{Caller, ConflictRecord, RecordWrite, Store, StoredRecord};
use sync_core::merge::{RecordState, Winner};
use sync_core::wire::{Mutation, Reason, RejectCode};
use sync_core::{Collection, Timestamp};

use super::rows::RowMeta;
use crate::db::schema::{conflicts, devices, grid_clock, hazard_actions, rejections};
use crate::db::{record_change, touch_record_index, DbConnection};
use crate::error::{AppError, AppResult};
use crate::for_collection;
use crate::scope::GridScope;

pub struct DieselStore<'a> {
    conn: &'a mut DbConnection,
    scope: &'a GridScope,
    now: i64,
    /// Loaded rows; `None` = known not to exist.
    cache: HashMap<(Collection, RecordId), Option<(RowMeta, RecordState)>>,
    /// Locked grid counters: (value at lock time, last number handed out).
    counters: HashMap<String, (i64, i64)>,
}

impl<'a> DieselStore<'a> {
    pub fn new(conn: &'a mut DbConnection, scope: &'a GridScope, now: i64) -> Self {
        Self {
            conn,
            scope,
            now,
            cache: HashMap::new(),
            counters: HashMap::new(),
        }
    }

    /// Lock the change counters of `grids` (sorted, so concurrent pushes cannot deadlock) and
    /// read them; writes to these grids then take numbers without a statement each.
    pub fn reserve_counters(&mut self, grids: &[String]) -> AppResult<()> {
        let mut sorted: Vec<&String> = grids.iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        for grid in sorted {
            let counter = lock_counter(self.conn, grid)?;
            self.counters.insert(grid.clone(), (counter, counter));
        }
        Ok(())
    }

    /// Write back the counters handed out since [`Self::reserve_counters`].
    pub fn flush_counters(&mut self) -> AppResult<()> {
        for (grid, (start, last)) in &self.counters {
            if last != start {
                diesel::update(grid_clock::table.find(grid))
                    .set(grid_clock::counter.eq(*last))
                    .execute(self.conn)?;
            }
        }
        Ok(())
    }

    /// Load every record named in `keys` (one query per collection) into the cache.
    pub fn prefetch(&mut self, keys: &[(Collection, RecordId)]) -> AppResult<()> {
        let mut by_collection: HashMap<Collection, Vec<String>> = HashMap::new();
        for (c, id) in keys {
            if !self.cache.contains_key(&(*c, *id)) {
                by_collection.entry(*c).or_default().push(id.to_string());
            }
        }
        for (collection, ids) in by_collection {
            let rows = for_collection!(collection, |table, Row| {
                let rows: Vec<Row> = table::table
                    .filter(table::id.eq_any(&ids))
                    .select(Row::as_select())
                    .load(self.conn)?;
                rows.iter()
                    .map(|row| Ok((row.meta(), row_to_state(collection, row)?)))
                    .collect::<AppResult<Vec<_>>>()?
            });
            for id in &ids {
                if let Ok(id) = id.parse::<RecordId>() {
                    self.cache.insert((collection, id), None);
                }
            }
            for (meta, state) in rows {
                if let Ok(id) = meta.id.parse::<RecordId>() {
                    self.cache.insert((collection, id), Some((meta, state)));
                }
            }
        }
        Ok(())
    }

    /// The next change number of `grid`: from the reserved counter, or a locked bump.
    fn next_change(&mut self, collection: Collection, id: &str, grid: &str) -> AppResult<i64> {
        match self.counters.get_mut(grid) {
            Some((_, last)) => {
                *last += 1;
                let seq = *last;
                touch_record_index(self.conn, collection.as_str(), id, grid, seq)?;
                Ok(seq)
            }
            None => record_change(self.conn, collection.as_str(), id, grid),
        }
    }
}

#[derive(QueryableByName)]
struct Counter {
    #[diesel(sql_type = BigInt)]
    counter: i64,
}

/// Create the grid's counter row if missing and read it under a row lock held to commit
/// (SQLite: the transaction already holds the database's write lock).
fn lock_counter(conn: &mut DbConnection, grid: &str) -> AppResult<i64> {
    let rows: Vec<Counter> = match conn {
        DbConnection::Postgresql(c) => {
            diesel::sql_query(
                "INSERT INTO grid_clock (grid_id, counter) VALUES ($1, 0) ON CONFLICT (grid_id) DO NOTHING",
            )
            .bind::<Text, _>(grid)
            .execute(c)?;
            diesel::sql_query("SELECT counter FROM grid_clock WHERE grid_id = $1 FOR UPDATE")
                .bind::<Text, _>(grid)
                .load(c)?
        }
        DbConnection::Sqlite(c) => {
            diesel::sql_query(
                "INSERT INTO grid_clock (grid_id, counter) VALUES (?, 0) ON CONFLICT (grid_id) DO NOTHING",
            )
            .bind::<Text, _>(grid)
            .execute(c)?;
            diesel::sql_query("SELECT counter FROM grid_clock WHERE grid_id = ?")
                .bind::<Text, _>(grid)
                .load(c)?
        }
    };
    Ok(rows.first().map_or(0, |r| r.counter))
}

#[derive(QueryableByName)]
struct Seq {
    #[diesel(sql_type = BigInt)]
    last_applied_seq: i64,
}

/// Read a device's last processed seq, locking its row until the transaction ends.
pub fn lock_device_seq(conn: &mut DbConnection, device: &str) -> AppResult<Option<i64>> {
    let rows: Vec<Seq> = match conn {
        DbConnection::Postgresql(c) => {
            diesel::sql_query("SELECT last_applied_seq FROM devices WHERE id = $1 FOR UPDATE")
                .bind::<Text, _>(device)
                .load(c)?
        }
        DbConnection::Sqlite(c) => {
            diesel::sql_query("SELECT last_applied_seq FROM devices WHERE id = ?")
                .bind::<Text, _>(device)
                .load(c)?
        }
    };
    Ok(rows.first().map(|r| r.last_applied_seq))
}

/// Note a sync on the device's row: when, and what the phone said about itself.
pub fn record_device_sync(
    conn: &mut DbConnection,
    device: &str,
    now: i64,
    pending_count: Option<u64>,
    app_version: Option<&str>,
) -> AppResult<()> {
    let row = devices::table.find(device);
    diesel::update(row)
        .set((devices::last_sync_at.eq(now), devices::last_seen_at.eq(now)))
        .execute(conn)?;
    if let Some(pending) = pending_count {
        diesel::update(row)
            .set(devices::pending_count.eq(i64::try_from(pending).unwrap_or(i64::MAX)))
            .execute(conn)?;
    }
    if let Some(version) = app_version {
        let version: String = version.chars().take(64).collect();
        diesel::update(row)
            .set(devices::app_version.eq(version))
            .execute(conn)?;
    }
    Ok(())
}

fn seq_i64(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn reject_code(code: &str) -> RejectCode {
    serde_json::from_value(serde_json::Value::String(code.to_owned())).unwrap_or(RejectCode::Other)
}

impl Store for DieselStore<'_> {
    type Error = AppError;

    fn last_seq(&mut self, device: DeviceId) -> AppResult<u64> {
        let seq = lock_device_seq(self.conn, &device.to_string())?.ok_or_else(|| {
            AppError::unauthorized("this device is not registered; log in again")
                .with_code("unknown_device")
        })?;
        Ok(u64::try_from(seq).unwrap_or(0))
    }

    fn set_last_seq(&mut self, device: DeviceId, seq: u64) -> AppResult<()> {
        diesel::update(devices::table.find(device.to_string()))
            .set(devices::last_applied_seq.eq(seq_i64(seq)))
            .execute(self.conn)?;
        Ok(())
    }

    fn conflicted_fields(&mut self, device: DeviceId, seq: u64) -> AppResult<Vec<String>> {
        Ok(conflicts::table
            .filter(conflicts::incoming_device.eq(device.to_string()))
            .filter(conflicts::incoming_seq.eq(seq_i64(seq)))
            .select(conflicts::field)
            .load(self.conn)?)
    }

    fn rejection(&mut self, device: DeviceId, seq: u64) -> AppResult<Option<Reason>> {
        let row: Option<(String, String)> = rejections::table
            .filter(rejections::device_id.eq(device.to_string()))
            .filter(rejections::seq.eq(seq_i64(seq)))
            .select((rejections::code, rejections::message))
            .first(self.conn)
            .optional()?;
        Ok(row.map(|(code, message)| Reason {
            code: reject_code(&code),
            message,
        }))
    }

    fn save_rejection(
        &mut self,
        caller: &Caller,
        m: &Mutation,
        reason: &Reason,
        at: Timestamp,
    ) -> AppResult<()> {
        let mutation = serde_json::to_string(m).map_err(AppError::internal)?;
        diesel::insert_into(rejections::table)
            .values((
                rejections::id.eq(uuid::Uuid::now_v7().to_string()),
                rejections::device_id.eq(caller.device.to_string()),
                rejections::user_id.eq(caller.user.to_string()),
                rejections::seq.eq(seq_i64(m.seq)),
                rejections::mutation_id.eq(m.id.to_string()),
                rejections::collection.eq(m.collection.as_str()),
                rejections::record_id.eq(m.record_id.to_string()),
                rejections::grid_id.eq(m.grid_id.to_string()),
                rejections::code.eq(reason.code.as_str()),
                rejections::message.eq(&reason.message),
                rejections::mutation.eq(mutation),
                rejections::created_at.eq(at.millis()),
            ))
            .execute(self.conn)?;
        Ok(())
    }

    fn grid_in_scope(&mut self, _caller: &Caller, grid: GridId) -> AppResult<bool> {
        Ok(self.scope.contains(grid))
    }

    fn load(&mut self, collection: Collection, id: RecordId) -> AppResult<Option<StoredRecord>> {
        match self.cache.get(&(collection, id)) {
            Some(Some((meta, state))) => return Ok(stored(meta, state.clone())),
            Some(None) => return Ok(None),
            None => {}
        }
        let key = id.to_string();
        let loaded = for_collection!(collection, |table, Row| {
            table::table
                .find(&key)
                .select(Row::as_select())
                .first::<Row>(self.conn)
                .optional()?
                .map(|row| {
                    let state = row_to_state(collection, &row)?;
                    AppResult::Ok((row.meta(), state))
                })
        });
        let Some(loaded) = loaded else {
            self.cache.insert((collection, id), None);
            return Ok(None);
        };
        let (meta, state) = loaded?;
        let out = stored(&meta, state.clone());
        self.cache.insert((collection, id), Some((meta, state)));
        Ok(out)
    }

    fn save(&mut self, write: RecordWrite<'_>) -> AppResult<()> {
        let id = write.id.to_string();
        let grid = write.grid_id.to_string();
        let change_seq = self.next_change(write.collection, &id, &grid)?;
        let meta = match (write.created, self.cache.get(&(write.collection, write.id))) {
            (false, Some(Some((old, _)))) => RowMeta {
                change_seq,
                updated_at: self.now,
                ..old.clone()
            },
            _ => RowMeta {
                id: id.clone(),
                grid_id: grid,
                change_seq,
                created_at: self.now,
                updated_at: self.now,
                origin_device: write.device.map(|d| d.to_string()),
                client_time: write.client_time.map(|t| t.millis()),
            },
        };
        for_collection!(write.collection, |table, Row| {
            let row: Row = state_to_row(write.collection, write.state, &meta)?;
            if write.created {
                diesel::insert_into(table::table)
                    .values(&row)
                    .execute(self.conn)?;
            } else {
                diesel::update(table::table.find(&id))
                    .set(&row)
                    .execute(self.conn)?;
            }
        });
        self.cache.insert(
            (write.collection, write.id),
            Some((meta, write.state.clone())),
        );
        Ok(())
    }

    fn save_conflict(&mut self, c: ConflictRecord) -> AppResult<()> {
        let json = |v: &serde_json::Value| v.to_string();
        diesel::insert_into(conflicts::table)
            .values((
                conflicts::id.eq(c.id.to_string()),
                conflicts::collection.eq(c.collection.as_str()),
                conflicts::record_id.eq(c.record_id.to_string()),
                conflicts::grid_id.eq(c.grid_id.to_string()),
                conflicts::field.eq(&c.field),
                conflicts::current_value.eq(json(&c.current.value)),
                conflicts::current_version.eq(c.current.version.to_string()),
                conflicts::current_device.eq(&c.current_device),
                conflicts::incoming_value.eq(json(&c.incoming.value)),
                conflicts::incoming_version.eq(c.incoming.version.to_string()),
                conflicts::incoming_device.eq(c.incoming_device.to_string()),
                conflicts::winner.eq(match c.winner {
                    Winner::Current => "current",
                    Winner::Incoming => "incoming",
                }),
                conflicts::status.eq("open"),
                conflicts::created_at.eq(c.at.millis()),
                conflicts::incoming_seq.eq(c.incoming_seq.map(seq_i64)),
            ))
            .execute(self.conn)?;
        Ok(())
    }

    fn hazard_submitted(&mut self, hazard: RecordId) -> AppResult<bool> {
        let n: i64 = hazard_actions::table
            .filter(hazard_actions::hazard_id.eq(hazard.to_string()))
            .filter(hazard_actions::action.eq("submit"))
            .filter(hazard_actions::effect.eq("applied"))
            .count()
            .get_result(self.conn)?;
        Ok(n > 0)
    }
}

fn stored(meta: &RowMeta, state: RecordState) -> Option<StoredRecord> {
    meta.grid_id
        .parse()
        .ok()
        .map(|grid_id| StoredRecord { grid_id, state })
}
