//! The replica's SQLite schema and its upgrade ladder.
//!
//! The version lives in `PRAGMA user_version`. [`migrate`] applies every step above the file's
//! version, each in its own transaction together with the new `user_version`, so a crash
//! mid-upgrade leaves the file at a whole version and the next open resumes. A file from a
//! newer app is refused, never modified. Steps are append-only: a shipped step is never edited
//! (old phones run it); `tests/fixtures/replica_v1.sql` is a v1 file as the first app wrote it
//! and the upgrade test opens it.
//!
//! - v1 (first app): `meta`, `records` (local view + mirror), `outbox` whose rejected entries
//!   stayed in the outbox with `state = 'rejected'` and the reason as JSON in `error`.
//! - v2: rejections move to their own table (so the outbox only holds what still has to
//!   reach the server or be confirmed by a pull), records get `conflict_fields` (sync state)
//!   and `parent_id` (the record a track point / visit / need / action / attachment hangs off,
//!   indexed for timelines and routes), the outbox gets `parent_id` too. `meta` and `records`
//!   become `WITHOUT ROWID` tables; records drop their stored `versions` (derived from mirror
//!   and outbox instead) and their grid index (a phone holds a few grids: a list scans the
//!   collection) and list their outbox entries' seqs (`entries`), so the outbox needs no
//!   index besides its `seq`. Fewer and smaller B-tree pages per write: the write path's cost
//!   is mostly the pages its commit writes.

use rusqlite::{Connection, TransactionBehavior};

use super::error::{ReplicaError, Result};

/// The schema version this build writes.
pub const CURRENT_VERSION: i64 = 2;

/// Connection settings every replica connection gets before anything else.
pub fn configure(conn: &Connection) -> Result<()> {
    // WAL: readers never block the writer; FULL: a commit survives power loss (what the app
    // showed as saved is on disk); MEMORY: Android has no writable /tmp.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
        return Err(ReplicaError::Storage(format!(
            "journal mode {mode} instead of wal"
        )));
    }
    // secure_delete: deleted rows are overwritten with zeros, so a purged grid's personal
    // data is not left readable in the file of a lost phone (the WAL is truncated after a
    // purge, see `syncing`).
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;",
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

const V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE records (
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    grid_id    TEXT NOT NULL,
    fields     TEXT NOT NULL,
    versions   TEXT NOT NULL,
    mirror     TEXT,
    PRIMARY KEY (collection, id)
);
CREATE INDEX records_grid ON records (collection, grid_id);
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY,
    mutation_id TEXT NOT NULL UNIQUE,
    collection  TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    grid_id     TEXT NOT NULL,
    op          TEXT NOT NULL,
    hlc         TEXT NOT NULL,
    fields      TEXT NOT NULL,
    base        TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    error       TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX outbox_record ON outbox (collection, record_id);
";

const V2: &str = "
CREATE TABLE meta_v2 (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO meta_v2 (key, value) SELECT key, value FROM meta;
DROP TABLE meta;
ALTER TABLE meta_v2 RENAME TO meta;

CREATE TABLE records_v2 (
    collection      TEXT NOT NULL,
    id              TEXT NOT NULL,
    grid_id         TEXT NOT NULL,
    parent_id       TEXT,
    fields          TEXT NOT NULL,
    mirror          TEXT,
    conflict_fields TEXT,
    entries         TEXT,
    PRIMARY KEY (collection, id)
) WITHOUT ROWID;
INSERT INTO records_v2 (collection, id, grid_id, parent_id, fields, mirror, entries)
    SELECT collection, id, grid_id,
           CASE collection
               WHEN 'track_points'   THEN json_extract(fields, '$.patrol_id')
               WHEN 'visits'         THEN json_extract(fields, '$.household_id')
               WHEN 'needs'          THEN json_extract(fields, '$.household_id')
               WHEN 'hazard_actions' THEN json_extract(fields, '$.hazard_id')
               WHEN 'attachments'    THEN json_extract(fields, '$.owner_id')
           END,
           fields, mirror,
           (SELECT nullif(json_group_array(o.seq), '[]') FROM outbox o
             WHERE o.collection = records.collection AND o.record_id = records.id
               AND o.state <> 'rejected')
    FROM records;
DROP TABLE records;
ALTER TABLE records_v2 RENAME TO records;
CREATE INDEX records_parent ON records (collection, parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE rejections (
    seq         INTEGER PRIMARY KEY,
    mutation_id TEXT NOT NULL,
    collection  TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    grid_id     TEXT NOT NULL,
    op          TEXT NOT NULL,
    code        TEXT NOT NULL,
    message     TEXT NOT NULL,
    fields      TEXT,
    at          INTEGER NOT NULL,
    cleared     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX rejections_record ON rejections (collection, record_id);
INSERT INTO rejections (seq, mutation_id, collection, record_id, grid_id, op, code, message, fields, at)
    SELECT seq, mutation_id, collection, record_id, grid_id, op,
           coalesce(json_extract(error, '$.code'), 'other'),
           coalesce(json_extract(error, '$.message'), 'rejected by the server'),
           fields, created_at
    FROM outbox WHERE state = 'rejected';

CREATE TABLE outbox_v2 (
    seq         INTEGER PRIMARY KEY,
    mutation_id TEXT NOT NULL,
    collection  TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    grid_id     TEXT NOT NULL,
    parent_id   TEXT,
    op          TEXT NOT NULL,
    hlc         TEXT NOT NULL,
    fields      TEXT NOT NULL,
    base        TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    created_at  INTEGER NOT NULL
);
INSERT INTO outbox_v2 (seq, mutation_id, collection, record_id, grid_id, parent_id, op, hlc, fields, base, state, created_at)
    SELECT seq, mutation_id, collection, record_id, grid_id,
           CASE collection
               WHEN 'track_points'   THEN json_extract(fields, '$.patrol_id')
               WHEN 'visits'         THEN json_extract(fields, '$.household_id')
               WHEN 'needs'          THEN json_extract(fields, '$.household_id')
               WHEN 'hazard_actions' THEN json_extract(fields, '$.hazard_id')
               WHEN 'attachments'    THEN json_extract(fields, '$.owner_id')
           END,
           op, hlc, fields, base, state, created_at
    FROM outbox WHERE state <> 'rejected';
DROP TABLE outbox;
ALTER TABLE outbox_v2 RENAME TO outbox;
";

/// The ladder: `STEPS[i]` takes a file from version `i` to `i + 1`.
const STEPS: &[&str] = &[V1, V2];

/// The file's current version.
pub fn version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Refuse a file written by a newer app.
pub fn check_not_newer(conn: &Connection) -> Result<i64> {
    let found = version(conn)?;
    if found > CURRENT_VERSION {
        return Err(ReplicaError::SchemaTooNew {
            found,
            supported: CURRENT_VERSION,
        });
    }
    Ok(found)
}

/// Bring the file up to [`CURRENT_VERSION`]; returns the version it had.
pub fn migrate(conn: &mut Connection) -> Result<i64> {
    debug_assert_eq!(STEPS.len() as i64, CURRENT_VERSION);
    let found = check_not_newer(conn)?;
    for (from, step) in STEPS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-check under the write lock: another connection may have upgraded meanwhile.
        if version(&tx)? > from as i64 {
            continue;
        }
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", from as i64 + 1)?;
        tx.commit()?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fresh_file_reaches_the_current_version_and_a_newer_one_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        configure(&conn).unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), 0);
        assert_eq!(version(&conn).unwrap(), CURRENT_VERSION);
        assert_eq!(migrate(&mut conn).unwrap(), CURRENT_VERSION);
        conn.pragma_update(None, "user_version", CURRENT_VERSION + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(ReplicaError::SchemaTooNew { .. })
        ));
    }

    #[test]
    fn v1_rejections_move_to_their_table() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO outbox (seq, mutation_id, collection, record_id, grid_id, op, hlc, fields, base, state, error, created_at)
             VALUES (1, 'm1', 'visits', 'r1', 'g', 'upsert', 'h', '{\"household_id\":\"p1\"}', '{}', 'rejected',
                     '{\"code\":\"out_of_scope\",\"message\":\"no\"}', 5),
                    (2, 'm2', 'visits', 'r2', 'g', 'upsert', 'h', '{\"household_id\":\"p2\"}', '{}', 'pending', NULL, 6);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let (code, message): (String, String) = conn
            .query_row(
                "SELECT code, message FROM rejections WHERE seq = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((code.as_str(), message.as_str()), ("out_of_scope", "no"));
        let parent: String = conn
            .query_row("SELECT parent_id FROM outbox", [], |r| r.get(0))
            .unwrap();
        assert_eq!(parent, "p2");
    }
}
