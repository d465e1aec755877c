//! Reads from the server's database that the HTTP API does not offer (or not yet): the
//! stored conflicts and rejections, rows per collection, a device's `last_applied_seq`.
//! Everything goes through the server's own schema and connection type, on either backend.

use anyhow::anyhow;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use grid_server::db::schema::{conflicts, devices, refresh_tokens, rejections};
use grid_server::db::{DbConnection, DbPool};
use serde_json::Value;
use sync_core::Collection;

/// A stored conflict.
#[derive(Clone, Debug, PartialEq)]
pub struct ConflictRow {
    pub collection: String,
    pub record_id: String,
    pub grid_id: String,
    pub field: String,
    pub current_value: Value,
    pub current_version: Option<String>,
    pub incoming_value: Value,
    pub incoming_version: String,
    pub incoming_device: Option<String>,
    pub incoming_seq: Option<i64>,
    pub winner: String,
}

/// A stored rejection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectionRow {
    pub device_id: String,
    pub seq: i64,
    pub collection: Option<String>,
    pub record_id: Option<String>,
    pub grid_id: Option<String>,
    pub code: String,
}

fn conn(pool: &DbPool) -> anyhow::Result<grid_server::db::PooledConn> {
    pool.get().map_err(|e| anyhow!("database connection: {e}"))
}

fn json_of(text: Option<String>) -> Value {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// The conflicts stored for records of `grids`.
pub fn conflicts_in(pool: &DbPool, grids: &[String]) -> anyhow::Result<Vec<ConflictRow>> {
    let mut c = conn(pool)?;
    type Raw = (
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        Option<String>,
        Option<i64>,
        String,
    );
    let rows: Vec<Raw> = conflicts::table
        .filter(conflicts::grid_id.eq_any(grids))
        .select((
            conflicts::collection,
            conflicts::record_id,
            conflicts::grid_id,
            conflicts::field,
            conflicts::current_value,
            conflicts::current_version,
            conflicts::incoming_value,
            conflicts::incoming_version,
            conflicts::incoming_device,
            conflicts::incoming_seq,
            conflicts::winner,
        ))
        .load(&mut *c)?;
    Ok(rows
        .into_iter()
        .map(|r| ConflictRow {
            collection: r.0,
            record_id: r.1,
            grid_id: r.2,
            field: r.3,
            current_value: json_of(r.4),
            current_version: r.5,
            incoming_value: json_of(r.6),
            incoming_version: r.7,
            incoming_device: r.8,
            incoming_seq: r.9,
            winner: r.10,
        })
        .collect())
}

/// The rejections stored for `devices`.
pub fn rejections_of(pool: &DbPool, device_ids: &[String]) -> anyhow::Result<Vec<RejectionRow>> {
    let mut c = conn(pool)?;
    type Raw = (
        String,
        i64,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
    );
    let rows: Vec<Raw> = rejections::table
        .filter(rejections::device_id.eq_any(device_ids))
        .select((
            rejections::device_id,
            rejections::seq,
            rejections::collection,
            rejections::record_id,
            rejections::grid_id,
            rejections::code,
        ))
        .order((rejections::device_id, rejections::seq))
        .load(&mut *c)?;
    Ok(rows
        .into_iter()
        .map(|r| RejectionRow {
            device_id: r.0,
            seq: r.1,
            collection: r.2,
            record_id: r.3,
            grid_id: r.4,
            code: r.5,
        })
        .collect())
}

/// A device's `last_applied_seq` (`None`: no such device).
pub fn last_applied_seq(pool: &DbPool, device_id: &str) -> anyhow::Result<Option<i64>> {
    let mut c = conn(pool)?;
    Ok(devices::table
        .find(device_id)
        .select(devices::last_applied_seq)
        .first(&mut *c)
        .optional()?)
}

/// Make every refresh token of `device_id` expired as of now (what 30 days offline does).
pub fn expire_refresh_tokens(pool: &DbPool, device_id: &str) -> anyhow::Result<usize> {
    let mut c = conn(pool)?;
    let past = chrono::Utc::now().timestamp_millis() - 1;
    Ok(
        diesel::update(refresh_tokens::table.filter(refresh_tokens::device_id.eq(device_id)))
            .set(refresh_tokens::expires_at.eq(past))
            .execute(&mut *c)?,
    )
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Rows of `collection`'s table in `grids` (ids are checked to be UUIDs before they are
/// written into the statement).
pub fn count_rows(pool: &DbPool, collection: Collection, grids: &[String]) -> anyhow::Result<i64> {
    if grids.is_empty() {
        return Ok(0);
    }
    let mut list = Vec::with_capacity(grids.len());
    for g in grids {
        let id: uuid::Uuid = g.parse().map_err(|_| anyhow!("not a grid id: {g}"))?;
        list.push(format!("'{id}'"));
    }
    let sql = format!(
        "SELECT COUNT(*) AS n FROM {} WHERE grid_id IN ({})",
        collection.as_str(),
        list.join(", ")
    );
    let mut c = conn(pool)?;
    let rows: Vec<Count> = match &mut *c {
        DbConnection::Postgresql(pg) => diesel::sql_query(sql).load(pg)?,
        DbConnection::Sqlite(lite) => diesel::sql_query(sql).load(lite)?,
    };
    Ok(rows.first().map_or(0, |r| r.n))
}
