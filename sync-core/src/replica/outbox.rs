//! The `outbox` (changes the server has not confirmed) and `rejections` (changes it refused)
//! tables.
//!
//! An entry is one mutation exactly as it will be pushed: `seq` (primary key, never reused),
//! `mutation_id`, collection, record, grid, op, stamp, the fields it sets and their `base`
//! versions. `state` is `pending` until a push result says the server processed it:
//! `applied`/`duplicate` → `acked` (deleted when a complete pull has brought the server state
//! containing it), `rejected` → moved to `rejections` with its reason and fields. Entries are
//! never edited except by the scope purge, which blanks the fields of entries whose grid left
//! the phone's scope (their `seq` still has to reach the server, which rejects them).

use std::collections::BTreeMap;

use rusqlite::{params, Connection};

use super::error::{ReplicaError, Result};
use super::records::parse_grid;
use crate::collection::Collection;
use crate::hlc::Hlc;
use crate::ids::{GridId, MutationId, RecordId};
use crate::time::Timestamp;
use crate::wire::{Fields, Mutation, Op, Reason};

/// What the view needs of an entry.
pub(crate) struct Entry {
    pub seq: u64,
    pub hlc: Hlc,
    pub fields: Fields,
}

fn corrupt(what: &str) -> ReplicaError {
    ReplicaError::Corrupt(format!("outbox.{what} is unreadable"))
}

fn parse_hlc(s: &str) -> Result<Hlc> {
    s.parse().map_err(|_| corrupt("hlc"))
}

fn entries(
    stmt: &mut rusqlite::CachedStatement<'_>,
    args: impl rusqlite::Params,
) -> Result<Vec<Entry>> {
    let rows = stmt
        .query_map(args, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(seq, hlc, fields)| {
            Ok(Entry {
                seq: u64::try_from(seq).map_err(|_| corrupt("seq"))?,
                hlc: parse_hlc(&hlc)?,
                fields: serde_json::from_str(&fields)?,
            })
        })
        .collect()
}

/// A record's entries (pending and acked), in `seq` order: the seqs its `records` row lists
/// (`records.entries`), looked up by primary key — the outbox needs no per-record index.
pub(crate) fn entries_for(
    conn: &Connection,
    collection: Collection,
    id: RecordId,
) -> Result<Vec<Entry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.seq, o.hlc, o.fields
         FROM records r, json_each(r.entries) j JOIN outbox o ON o.seq = j.value
         WHERE r.collection = ?1 AND r.id = ?2
         ORDER BY o.seq",
    )?;
    entries(&mut stmt, params![collection.as_str(), id.to_string()])
}

/// A hazard's actions still in the outbox whose server version has not been pulled yet.
pub(crate) fn unmirrored_actions(conn: &Connection, hazard: RecordId) -> Result<Vec<Entry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.seq, o.hlc, o.fields
         FROM records r, json_each(r.entries) j JOIN outbox o ON o.seq = j.value
         WHERE r.collection = 'hazard_actions' AND r.parent_id = ?1 AND r.mirror IS NULL
         ORDER BY o.seq",
    )?;
    entries(&mut stmt, params![hazard.to_string()])
}

/// A new entry, its JSON already serialised by the caller.
pub(crate) struct NewEntry<'a> {
    pub seq: u64,
    pub mutation_id: MutationId,
    pub collection: Collection,
    pub record_id: &'a str,
    pub grid_id: &'a str,
    pub parent_id: Option<&'a str>,
    pub op: Op,
    pub hlc: &'a Hlc,
    pub fields: &'a str,
    pub base: &'a str,
    pub created_at: Timestamp,
}

pub(crate) fn insert(conn: &Connection, e: &NewEntry<'_>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO outbox (seq, mutation_id, collection, record_id, grid_id, parent_id, op, hlc, fields, base, state, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11)",
    )?
    .execute(params![
        i64::try_from(e.seq).map_err(|_| corrupt("seq"))?,
        e.mutation_id.to_string(),
        e.collection.as_str(),
        e.record_id,
        e.grid_id,
        e.parent_id,
        op_str(e.op),
        e.hlc.to_string(),
        e.fields,
        e.base,
        e.created_at.millis(),
    ])?;
    Ok(())
}

pub(crate) fn op_str(op: Op) -> &'static str {
    match op {
        Op::Upsert => "upsert",
        Op::Delete => "delete",
    }
}

fn parse_op(s: &str) -> Result<Op> {
    match s {
        "upsert" => Ok(Op::Upsert),
        "delete" => Ok(Op::Delete),
        _ => Err(corrupt("op")),
    }
}

fn count(conn: &Connection, state: &str) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM outbox WHERE state = ?1")?
        .query_row([state], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) fn pending_count(conn: &Connection) -> Result<u64> {
    count(conn, "pending")
}

pub(crate) fn acked_count(conn: &Connection) -> Result<u64> {
    count(conn, "acked")
}

/// The first `limit` pending entries as mutations, in `seq` order.
pub(crate) fn pending_page(conn: &Connection, limit: usize) -> Result<Vec<Mutation>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, mutation_id, collection, record_id, grid_id, op, hlc, fields, base
         FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT ?1",
    )?;
    type Raw = (
        i64,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
    );
    let rows = stmt
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
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
        .map(
            |(seq, id, collection, record, grid, op, hlc, fields, base)| {
                let fields: Fields = serde_json::from_str(&fields)?;
                // A field absent from the stored base was never seen: null (a new record's
                // base is stored as `{}`).
                let mut base: BTreeMap<String, Option<Hlc>> = serde_json::from_str(&base)?;
                for k in fields.keys() {
                    base.entry(k.clone()).or_insert(None);
                }
                Ok(Mutation {
                    seq: u64::try_from(seq).map_err(|_| corrupt("seq"))?,
                    id: id.parse().map_err(|_| corrupt("mutation_id"))?,
                    collection: collection.parse().map_err(|_| corrupt("collection"))?,
                    record_id: record.parse().map_err(|_| corrupt("record_id"))?,
                    grid_id: parse_grid(&grid)?,
                    op: parse_op(&op)?,
                    hlc: parse_hlc(&hlc)?,
                    fields,
                    base,
                })
            },
        )
        .collect()
}

/// The entry with this `seq` and mutation id, if it is still pending.
pub(crate) struct PendingRef {
    pub collection: Collection,
    pub record_id: RecordId,
    pub grid_id: GridId,
    pub parent_id: Option<String>,
    pub op: Op,
    pub fields: String,
}

pub(crate) fn pending_by_seq(
    conn: &Connection,
    seq: u64,
    id: MutationId,
) -> Result<Option<PendingRef>> {
    use rusqlite::OptionalExtension;
    let row: Option<(String, String, String, Option<String>, String, String)> = conn
        .prepare_cached(
            "SELECT collection, record_id, grid_id, parent_id, op, fields FROM outbox
             WHERE seq = ?1 AND mutation_id = ?2 AND state = 'pending'",
        )?
        .query_row(
            params![i64::try_from(seq).unwrap_or(-1), id.to_string()],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .optional()?;
    row.map(|(c, r, g, p, op, fields)| {
        Ok(PendingRef {
            collection: c.parse().map_err(|_| corrupt("collection"))?,
            record_id: r.parse().map_err(|_| corrupt("record_id"))?,
            grid_id: parse_grid(&g)?,
            parent_id: p,
            op: parse_op(&op)?,
            fields,
        })
    })
    .transpose()
}

pub(crate) fn mark_acked(conn: &Connection, seq: u64) -> Result<()> {
    conn.prepare_cached("UPDATE outbox SET state = 'acked' WHERE seq = ?1")?
        .execute([i64::try_from(seq).unwrap_or(-1)])?;
    Ok(())
}

pub(crate) fn remove(conn: &Connection, seq: u64) -> Result<()> {
    conn.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?
        .execute([i64::try_from(seq).unwrap_or(-1)])?;
    Ok(())
}

/// Store a rejection (the entry's fields stay readable with the reason).
pub(crate) fn save_rejection(
    conn: &Connection,
    seq: u64,
    mutation_id: MutationId,
    entry: &PendingRef,
    reason: &Reason,
    at: Timestamp,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO rejections (seq, mutation_id, collection, record_id, grid_id, op, code, message, fields, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        i64::try_from(seq).unwrap_or(-1),
        mutation_id.to_string(),
        entry.collection.as_str(),
        entry.record_id.to_string(),
        entry.grid_id.to_string(),
        op_str(entry.op),
        reason.code.as_str(),
        reason.message,
        entry.fields,
        at.millis(),
    ])?;
    Ok(())
}

/// A later change of the record reached the server: its older rejections are superseded.
pub(crate) fn clear_rejections_before(
    conn: &Connection,
    collection: Collection,
    id: RecordId,
    seq: u64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE rejections SET cleared = 1 WHERE collection = ?1 AND record_id = ?2 AND seq < ?3",
    )?
    .execute(params![
        collection.as_str(),
        id.to_string(),
        i64::try_from(seq).unwrap_or(-1)
    ])?;
    Ok(())
}

/// Records touched by acked entries (to recompute once those entries are gone).
pub(crate) fn acked_records(
    conn: &Connection,
) -> Result<Vec<(Collection, RecordId, Option<String>)>> {
    let rows = conn
        .prepare_cached(
            "SELECT DISTINCT collection, record_id, parent_id FROM outbox WHERE state = 'acked'",
        )?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(c, r, p)| {
            Ok((
                c.parse().map_err(|_| corrupt("collection"))?,
                r.parse().map_err(|_| corrupt("record_id"))?,
                p,
            ))
        })
        .collect()
}

pub(crate) fn delete_acked(conn: &Connection) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM outbox WHERE state = 'acked'")?
        .execute([])?)
}
