//! What the phone can show about itself: the canonical export of everything it holds, and its
//! sync status (pending and acked counts, last sync, last error, rejections with their
//! reasons, records in conflict). Also the worker's "seen it" dismissals.

use rusqlite::params;
use serde::Serialize;
use serde_json::Value;

use super::error::Result;
use super::meta;
use super::outbox;
use super::records::{parse_grid, parse_id};
use super::Replica;
use crate::collection::Collection;
use crate::export::ExportBuilder;
use crate::ids::{DeviceId, GridId, MutationId, RecordId, UserId};
use crate::time::Timestamp;
use crate::wire::{Fields, RejectCode};

/// A mutation the server refused, kept with its reason until dismissed or superseded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredRejection {
    pub seq: u64,
    pub mutation_id: MutationId,
    pub collection: Collection,
    pub record_id: RecordId,
    pub grid_id: GridId,
    pub code: RejectCode,
    pub message: String,
    /// What the refused change carried (removed if its grid left the phone's scope).
    pub fields: Option<Fields>,
    pub at: Timestamp,
}

/// A record whose fields met a concurrent edit on the server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConflictMark {
    pub collection: Collection,
    pub record_id: RecordId,
    pub fields: Vec<String>,
}

/// The phone's sync status.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Status {
    pub device_id: DeviceId,
    pub user_id: Option<UserId>,
    /// Changes not yet confirmed by the server.
    pub pending: u64,
    /// Changes the server confirmed whose result has not been pulled yet.
    pub acked: u64,
    pub last_sync_at: Option<Timestamp>,
    /// The last sync's failure, cleared by the next successful sync.
    pub last_error: Option<String>,
    pub rejections: Vec<StoredRejection>,
    pub conflicts: Vec<ConflictMark>,
}

fn corrupt(what: &str) -> super::ReplicaError {
    super::ReplicaError::Corrupt(format!("{what} is unreadable"))
}

impl Replica {
    /// The canonical export (contract: "Canonical export") of every record held here, as the
    /// local view shows it.
    pub fn export(&self) -> Result<Value> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare_cached("SELECT collection, id, grid_id, fields FROM records")?;
        let mut rows = stmt.query([])?;
        let mut builder = ExportBuilder::new();
        while let Some(row) = rows.next()? {
            let collection: Collection = row
                .get::<_, String>(0)?
                .parse()
                .map_err(|_| corrupt("records.collection"))?;
            let id = parse_id(&row.get::<_, String>(1)?)?;
            let grid = parse_grid(&row.get::<_, String>(2)?)?;
            let fields: Fields = serde_json::from_str(&row.get::<_, String>(3)?)?;
            builder.add(collection, id, grid, &fields);
        }
        Ok(builder.finish())
    }

    pub fn status(&self) -> Result<Status> {
        let inner = self.lock();
        let conn = &inner.conn;
        let rejections = {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, mutation_id, collection, record_id, grid_id, code, message, fields, at
                 FROM rejections WHERE cleared = 0 ORDER BY seq",
            )?;
            type Raw = (
                i64,
                String,
                String,
                String,
                String,
                String,
                String,
                Option<String>,
                i64,
            );
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ))
                })?
                .collect::<Result<Vec<Raw>, _>>()?;
            rows.into_iter()
                .map(|(seq, mid, c, rid, grid, code, message, fields, at)| {
                    Ok(StoredRejection {
                        seq: u64::try_from(seq).map_err(|_| corrupt("rejections.seq"))?,
                        mutation_id: mid.parse().map_err(|_| corrupt("rejections.mutation_id"))?,
                        collection: c.parse().map_err(|_| corrupt("rejections.collection"))?,
                        record_id: parse_id(&rid)?,
                        grid_id: parse_grid(&grid)?,
                        code: serde_json::from_value(Value::String(code))
                            .unwrap_or(RejectCode::Other),
                        message,
                        fields: fields.map(|f| serde_json::from_str(&f)).transpose()?,
                        at: Timestamp::from_millis(at).unwrap_or(Timestamp(0)),
                    })
                })
                .collect::<Result<Vec<_>>>()?
        };
        let conflicts = {
            let mut stmt = conn.prepare_cached(
                "SELECT collection, id, conflict_fields FROM records
                 WHERE conflict_fields IS NOT NULL ORDER BY collection, id",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(c, id, fields)| {
                    Ok(ConflictMark {
                        collection: c.parse().map_err(|_| corrupt("records.collection"))?,
                        record_id: parse_id(&id)?,
                        fields: serde_json::from_str(&fields)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?
        };
        Ok(Status {
            device_id: self.device,
            user_id: inner.session.user_id,
            pending: outbox::pending_count(conn)?,
            acked: outbox::acked_count(conn)?,
            last_sync_at: meta::time(conn, "last_sync_at")?,
            last_error: meta::get(conn, "last_error")?,
            rejections,
            conflicts,
        })
    }

    /// The worker has seen a rejection: stop listing it.
    pub fn dismiss_rejection(&self, seq: u64) -> Result<()> {
        let inner = self.lock();
        inner
            .conn
            .prepare_cached("UPDATE rejections SET cleared = 1 WHERE seq = ?1")?
            .execute([i64::try_from(seq).unwrap_or(-1)])?;
        Ok(())
    }

    /// The worker has seen a conflict: stop marking the record (the supervisor still reviews
    /// the conflict record on the server).
    pub fn dismiss_conflict(&self, collection: Collection, id: RecordId) -> Result<()> {
        let inner = self.lock();
        inner
            .conn
            .prepare_cached(
                "UPDATE records SET conflict_fields = NULL WHERE collection = ?1 AND id = ?2",
            )?
            .execute(params![collection.as_str(), id.to_string()])?;
        Ok(())
    }
}
