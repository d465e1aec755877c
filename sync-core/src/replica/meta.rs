//! The `meta` key/value table: the device id (generated once, at first open), the session, the
//! clock state, the `seq` counter, the pull cursor and the last sync's time and error.
//!
//! The clock state and the `seq` counter are read inside each write transaction and advance
//! with the outbox entry it inserts (a rolled-back write consumes neither); see [`counters`].

use rusqlite::{params, Connection, OptionalExtension};

use super::error::{ReplicaError, Result};
use super::Session;
use crate::hlc::{Hlc, HlcClock};
use crate::ids::{DeviceId, GridId, UserId};
use crate::time::Timestamp;
use crate::workflow::Role;

pub(crate) fn get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

pub(crate) fn set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

pub(crate) fn delete(conn: &Connection, key: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM meta WHERE key = ?1")?
        .execute([key])?;
    Ok(())
}

fn corrupt(what: &str) -> ReplicaError {
    ReplicaError::Corrupt(format!("meta {what} is unreadable"))
}

/// The device id, generated and stored at the first open.
pub(crate) fn device_id(
    conn: &mut Connection,
    fresh: impl FnOnce() -> DeviceId,
) -> Result<DeviceId> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let id = match get(&tx, "device_id")? {
        Some(s) => s.parse().map_err(|_| corrupt("device_id"))?,
        None => {
            let id = fresh();
            set(&tx, "device_id", &id.to_string())?;
            id
        }
    };
    tx.commit()?;
    Ok(id)
}

pub(crate) fn load_session(conn: &Connection) -> Result<Session> {
    let user_id = get(conn, "user_id")?
        .map(|s| s.parse::<UserId>().map_err(|_| corrupt("user_id")))
        .transpose()?;
    let role = get(conn, "role")?
        .map(|s| s.parse::<Role>().map_err(|_| corrupt("role")))
        .transpose()?
        .unwrap_or(Role::Worker);
    let grid_ids = get(conn, "grid_ids")?
        .map(|s| serde_json::from_str::<Vec<GridId>>(&s))
        .transpose()?
        .unwrap_or_default();
    Ok(Session {
        user_id,
        role,
        grid_ids,
    })
}

pub(crate) fn save_session(conn: &Connection, session: &Session) -> Result<()> {
    match session.user_id {
        Some(u) => set(conn, "user_id", &u.to_string())?,
        None => delete(conn, "user_id")?,
    }
    set(conn, "role", session.role.as_str())?;
    save_grids(conn, &session.grid_ids)
}

pub(crate) fn save_grids(conn: &Connection, grids: &[GridId]) -> Result<()> {
    set(conn, "grid_ids", &serde_json::to_string(grids)?)
}

/// The counters a write advances: the last `seq` given out and the clock state.
pub(crate) struct Counters {
    pub last_seq: u64,
    pub clock: HlcClock,
}

/// The counters, derived without a write: `meta.counters` (`"LAST_SEQ WALL COUNTER"`) holds a
/// floor saved by the sync path (before it deletes outbox entries, and when the clock observes
/// the server); the outbox's last entry carries the last `seq` and stamp a local write gave
/// out. So a local write never rewrites `meta` — one B-tree fewer per write — and the
/// counters still advance in the write's own transaction.
pub(crate) fn counters(conn: &Connection, device: DeviceId) -> Result<Counters> {
    let node = device.to_string();
    let (mut last_seq, mut wall, mut counter) = match get(conn, "counters")? {
        None => (0, 0, 0),
        Some(text) => {
            let mut parts = text.split(' ').map(str::parse::<u64>);
            match (parts.next(), parts.next(), parts.next()) {
                (Some(Ok(seq)), Some(Ok(wall)), Some(Ok(counter))) => {
                    (seq, wall, u32::try_from(counter).unwrap_or(u32::MAX))
                }
                _ => return Err(corrupt("counters")),
            }
        }
    };
    let last: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hlc FROM outbox ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((seq, hlc)) = last {
        last_seq = last_seq.max(u64::try_from(seq).map_err(|_| corrupt("outbox seq"))?);
        let stamp: Hlc = hlc.parse().map_err(|_| corrupt("outbox hlc"))?;
        if (stamp.wall, stamp.counter) > (wall, counter) {
            (wall, counter) = (stamp.wall, stamp.counter);
        }
    }
    Ok(Counters {
        last_seq,
        clock: HlcClock::restore(node, wall, counter),
    })
}

/// Persist the counters as the floor (the sync path, before deleting outbox entries).
pub(crate) fn save_counters(conn: &Connection, c: &Counters) -> Result<()> {
    let (wall, counter) = c.clock.state();
    set(
        conn,
        "counters",
        &format!("{} {wall} {counter}", c.last_seq),
    )
}

pub(crate) fn time(conn: &Connection, key: &str) -> Result<Option<Timestamp>> {
    Ok(get(conn, key)?.and_then(|s| Timestamp::parse(&s)))
}
