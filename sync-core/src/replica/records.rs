//! The `records` table: per record its local view (`fields`), its `mirror` (the last server
//! state, a [`RecordState`]) and its `conflict_fields`; and the derived per-record sync state.
//!
//! The view's per-field versions (the `base` of the next edit) are not stored: they follow from
//! the mirror and the record's outbox entries ([`versions_of`]). Creating a record — the common
//! write — then writes its fields once per table, and only an edit pays for the derivation.
//!
//! Invariants:
//! - `fields` always equals [`recompute`]'s result for the current mirror and outbox: every
//!   change of either goes through it (or, on the write path, through an equivalent
//!   incremental update of one entry on top of the stored view);
//! - a row exists only while the record has a mirror or an outbox entry, and only for a grid
//!   of the session's scope (once the phone knows one);
//! - `entries` lists the `seq`s of the record's outbox entries (JSON array, NULL when none):
//!   the write path appends, [`recompute`] rewrites it from the entries that still exist.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

use super::error::{ReplicaError, Result};
use super::outbox;
use crate::collection::Collection;
use crate::hlc::Hlc;
use crate::ids::{GridId, RecordId};
use crate::ingest::{action_input, workflow_state};
use crate::merge::RecordState;
use crate::wire::{Fields, RejectCode};
use crate::workflow::{decide, Role, Verdict, WorkflowState};

/// Where a record stands with the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SyncState {
    /// The server state is shown; nothing is waiting.
    Synced,
    /// A change is waiting to be pushed (or its result to arrive).
    Pending,
    /// The server refused the latest change; the record shows the server's state again.
    Rejected { code: RejectCode, message: String },
    /// The server found these fields edited concurrently by someone else; one value won
    /// deterministically and the other is kept for a supervisor's review.
    Conflict { fields: Vec<String> },
}

/// A record's local view as the generic API returns it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordView {
    pub collection: Collection,
    pub id: RecordId,
    pub grid_id: GridId,
    /// The fields that are set (unset fields are absent).
    pub fields: Fields,
    pub sync: SyncState,
}

/// A typed record and its sync state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tracked<T> {
    pub record: T,
    pub sync: SyncState,
}

/// The field naming the record a record hangs off (its timeline/route/owner).
pub(crate) fn parent_field(collection: Collection) -> Option<&'static str> {
    match collection {
        Collection::TrackPoints => Some("patrol_id"),
        Collection::Visits | Collection::Needs => Some("household_id"),
        Collection::HazardActions => Some("hazard_id"),
        Collection::Attachments => Some("owner_id"),
        _ => None,
    }
}

pub(crate) fn parent_of(collection: Collection, fields: &Fields) -> Option<String> {
    parent_field(collection)
        .and_then(|f| fields.get(f))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn corrupt(what: &str) -> ReplicaError {
    ReplicaError::Corrupt(format!("records.{what} is unreadable"))
}

pub(crate) fn parse_grid(s: &str) -> Result<GridId> {
    s.parse().map_err(|_| corrupt("grid_id"))
}

pub(crate) fn parse_id(s: &str) -> Result<RecordId> {
    s.parse().map_err(|_| corrupt("id"))
}

/// The local view of one record.
pub(crate) struct View {
    pub grid_id: GridId,
    pub fields: Fields,
}

pub(crate) fn load_view(
    conn: &Connection,
    collection: Collection,
    id: RecordId,
) -> Result<Option<View>> {
    let row: Option<(String, String)> = conn
        .prepare_cached("SELECT grid_id, fields FROM records WHERE collection = ?1 AND id = ?2")?
        .query_row(params![collection.as_str(), id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    row.map(|(grid, fields)| {
        Ok(View {
            grid_id: parse_grid(&grid)?,
            fields: serde_json::from_str(&fields)?,
        })
    })
    .transpose()
}

/// The version of each field the local view shows: the last outbox entry that set it, else
/// the mirror's. (A hazard's derived fields are never edited and keep the mirror's.)
pub(crate) fn versions_of(
    conn: &Connection,
    collection: Collection,
    id: RecordId,
) -> Result<BTreeMap<String, Hlc>> {
    let mut versions = load_mirror(conn, collection, id)?
        .and_then(|(_, m)| m)
        .map(|m| m.versions())
        .unwrap_or_default();
    for e in outbox::entries_for(conn, collection, id)? {
        for field in e.fields.keys() {
            versions.insert(field.clone(), e.hlc.clone());
        }
    }
    Ok(versions)
}

/// The grid of a record held locally.
pub(crate) fn grid_of(
    conn: &Connection,
    collection: Collection,
    id: RecordId,
) -> Result<Option<GridId>> {
    let grid: Option<String> = conn
        .prepare_cached("SELECT grid_id FROM records WHERE collection = ?1 AND id = ?2")?
        .query_row(params![collection.as_str(), id.to_string()], |r| r.get(0))
        .optional()?;
    grid.map(|g| parse_grid(&g)).transpose()
}

/// Insert the view of a record created here (it has no row yet) with its first entry.
pub(crate) fn insert_view(
    conn: &Connection,
    collection: Collection,
    id: &str,
    grid: &str,
    parent: Option<&str>,
    fields: &str,
    seq: u64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO records (collection, id, grid_id, parent_id, fields, entries)
         VALUES (?1, ?2, ?3, ?4, ?5, json_array(?6))",
    )?
    .execute(params![
        collection.as_str(),
        id,
        grid,
        parent,
        fields,
        i64::try_from(seq).unwrap_or(i64::MAX)
    ])?;
    Ok(())
}

/// Update the view of an edited record and list the edit's entry.
pub(crate) fn append_view(
    conn: &Connection,
    collection: Collection,
    id: &str,
    fields: &str,
    seq: u64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE records SET fields = ?3, entries = json_insert(coalesce(entries, '[]'), '$[#]', ?4)
         WHERE collection = ?1 AND id = ?2",
    )?
    .execute(params![
        collection.as_str(),
        id,
        fields,
        i64::try_from(seq).unwrap_or(i64::MAX)
    ])?;
    Ok(())
}

/// Write a record's recomputed view and entry list, keeping its mirror and conflict marks.
fn put_view(
    conn: &Connection,
    collection: Collection,
    id: &str,
    parent: Option<&str>,
    fields: &str,
    entries: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE records SET parent_id = ?3, fields = ?4, entries = ?5
         WHERE collection = ?1 AND id = ?2",
    )?
    .execute(params![collection.as_str(), id, parent, fields, entries])?;
    Ok(())
}

pub(crate) fn load_mirror(
    conn: &Connection,
    collection: Collection,
    id: RecordId,
) -> Result<Option<(GridId, Option<RecordState>)>> {
    let row: Option<(String, Option<String>)> = conn
        .prepare_cached("SELECT grid_id, mirror FROM records WHERE collection = ?1 AND id = ?2")?
        .query_row(params![collection.as_str(), id.to_string()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    row.map(|(grid, mirror)| {
        Ok((
            parse_grid(&grid)?,
            mirror.map(|m| serde_json::from_str(&m)).transpose()?,
        ))
    })
    .transpose()
}

/// Store a record's mirror (creating its row, with an empty view to be recomputed).
pub(crate) fn put_mirror(
    conn: &Connection,
    collection: Collection,
    id: RecordId,
    grid: GridId,
    mirror: &RecordState,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO records (collection, id, grid_id, fields, mirror)
         VALUES (?1, ?2, ?3, '{}', ?4)
         ON CONFLICT (collection, id) DO UPDATE SET grid_id = excluded.grid_id, mirror = excluded.mirror",
    )?
    .execute(params![
        collection.as_str(),
        id.to_string(),
        grid.to_string(),
        serde_json::to_string(mirror)?
    ])?;
    Ok(())
}

pub(crate) fn delete(conn: &Connection, collection: Collection, id: RecordId) -> Result<()> {
    conn.prepare_cached("DELETE FROM records WHERE collection = ?1 AND id = ?2")?
        .execute(params![collection.as_str(), id.to_string()])?;
    Ok(())
}

pub(crate) fn conflict_fields(
    conn: &Connection,
    collection: Collection,
    id: RecordId,
) -> Result<Vec<String>> {
    let text: Option<Option<String>> = conn
        .prepare_cached("SELECT conflict_fields FROM records WHERE collection = ?1 AND id = ?2")?
        .query_row(params![collection.as_str(), id.to_string()], |r| r.get(0))
        .optional()?;
    Ok(match text.flatten() {
        Some(t) => serde_json::from_str(&t)?,
        None => Vec::new(),
    })
}

pub(crate) fn set_conflict_fields(
    conn: &Connection,
    collection: Collection,
    id: RecordId,
    fields: &[String],
) -> Result<()> {
    let text = if fields.is_empty() {
        None
    } else {
        Some(serde_json::to_string(fields)?)
    };
    conn.prepare_cached(
        "UPDATE records SET conflict_fields = ?3 WHERE collection = ?1 AND id = ?2",
    )?
    .execute(params![collection.as_str(), id.to_string(), text])?;
    Ok(())
}

/// Rebuild a record's local view from its mirror and outbox entries (see the module notes of
/// [`crate::replica`]). `scope` is the grids the phone may hold (`None`: not known yet, before
/// the first login). Returns whether the record still exists locally.
pub(crate) fn recompute(
    conn: &Connection,
    collection: Collection,
    id: RecordId,
    role: Role,
    scope: Option<&[GridId]>,
) -> Result<bool> {
    // A record's entries are listed on its row: no row, no record.
    let Some((grid, mirror)) = load_mirror(conn, collection, id)? else {
        return Ok(false);
    };
    let entries = outbox::entries_for(conn, collection, id)?;
    if (mirror.is_none() && entries.is_empty()) || scope.is_some_and(|s| !s.contains(&grid)) {
        delete(conn, collection, id)?;
        return Ok(false);
    }
    let mut view = mirror.clone().unwrap_or_default();
    for e in &entries {
        for (field, value) in &e.fields {
            view.set(field.clone(), value.clone(), e.hlc.clone());
        }
    }
    if collection == Collection::Hazards {
        overlay_workflow(conn, id, role, mirror.as_ref(), &mut view)?;
    }
    let parent = parent_of(collection, &view.fields());
    let fields = serde_json::to_string(&view.fields())?;
    let listed = (!entries.is_empty())
        .then(|| serde_json::to_string(&entries.iter().map(|e| e.seq).collect::<Vec<_>>()))
        .transpose()?;
    put_view(
        conn,
        collection,
        &id.to_string(),
        parent.as_deref(),
        &fields,
        listed.as_deref(),
    )?;
    Ok(true)
}

/// Show a hazard's workflow fields as the server will most likely decide them: the mirror's
/// state (or a new hazard's) folded with the hazard's actions not yet pulled, in `seq` order,
/// decided for the session's role.
fn overlay_workflow(
    conn: &Connection,
    hazard: RecordId,
    role: Role,
    mirror: Option<&RecordState>,
    view: &mut RecordState,
) -> Result<()> {
    let mut state = match mirror {
        Some(m) => workflow_state(m, true),
        None => WorkflowState::created(),
    };
    let mut stamp = None;
    for e in outbox::unmirrored_actions(conn, hazard)? {
        let input = action_input(&e.fields);
        if let Some(action) = input.action {
            if let Verdict::Applied(next) = decide(&state, action, role, &input) {
                state = next;
                stamp = Some(e.hlc);
            }
        }
    }
    let Some(stamp) = stamp else {
        if mirror.is_none() {
            set_workflow(view, &state, None);
        }
        return Ok(());
    };
    set_workflow(view, &state, Some(&stamp));
    Ok(())
}

/// Write the workflow fields into a view (the version is the deciding action's stamp).
pub(crate) fn set_workflow(view: &mut RecordState, state: &WorkflowState, stamp: Option<&Hlc>) {
    let text = |s: Option<String>| s.map_or(Value::Null, Value::String);
    let derived = [
        ("status", text(state.status.map(|s| s.as_str().to_owned()))),
        (
            "assignee_department",
            text(state.assignee_department.clone()),
        ),
        ("due_at", text(state.due_at.map(|t| t.to_rfc3339()))),
    ];
    for (field, value) in derived {
        if view.value(field) != &value {
            let version = stamp
                .cloned()
                .or_else(|| view.max_version().cloned())
                .unwrap_or_else(|| Hlc::new(0, 0, "local"));
            if value.is_null() {
                view.0.remove(field);
            } else {
                view.set(field, value, version);
            }
        }
    }
}

/// The columns every view query returns (see [`view_from_row`]).
const VIEW_COLUMNS: &str = "r.id, r.grid_id, r.fields, r.conflict_fields,
    EXISTS (SELECT 1 FROM json_each(r.entries) j JOIN outbox o ON o.seq = j.value WHERE o.state = 'pending'),
    (SELECT json_array(x.code, x.message) FROM rejections x
      WHERE x.collection = r.collection AND x.record_id = r.id AND x.cleared = 0
      ORDER BY x.seq DESC LIMIT 1)";

type RawView = (String, String, String, Option<String>, bool, Option<String>);

fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawView> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

pub(crate) fn sync_state(
    pending: bool,
    rejection: Option<&str>,
    conflicts: Option<&str>,
) -> Result<SyncState> {
    if pending {
        return Ok(SyncState::Pending);
    }
    if let Some(text) = rejection {
        let (code, message): (String, String) = serde_json::from_str(text)?;
        return Ok(SyncState::Rejected {
            code: serde_json::from_value(Value::String(code)).unwrap_or(RejectCode::Other),
            message,
        });
    }
    if let Some(text) = conflicts {
        let fields: Vec<String> = serde_json::from_str(text)?;
        if !fields.is_empty() {
            return Ok(SyncState::Conflict { fields });
        }
    }
    Ok(SyncState::Synced)
}

fn view_from_raw(collection: Collection, raw: RawView) -> Result<RecordView> {
    let (id, grid, fields, conflicts, pending, rejection) = raw;
    Ok(RecordView {
        collection,
        id: parse_id(&id)?,
        grid_id: parse_grid(&grid)?,
        fields: serde_json::from_str(&fields)?,
        sync: sync_state(pending, rejection.as_deref(), conflicts.as_deref())?,
    })
}

/// One record's view with its sync state.
pub(crate) fn read(
    conn: &Connection,
    collection: Collection,
    id: RecordId,
) -> Result<Option<RecordView>> {
    let sql = format!("SELECT {VIEW_COLUMNS} FROM records r WHERE r.collection = ?1 AND r.id = ?2");
    let row = conn
        .prepare_cached(&sql)?
        .query_row(params![collection.as_str(), id.to_string()], raw)
        .optional()?;
    row.map(|r| view_from_raw(collection, r)).transpose()
}

/// Which records a list returns.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Filter {
    All,
    Grid(GridId),
    Parent(RecordId),
}

/// Records of a collection, sorted by id.
pub(crate) fn list(
    conn: &Connection,
    collection: Collection,
    filter: Filter,
) -> Result<Vec<RecordView>> {
    let (clause, arg) = match filter {
        Filter::All => ("", None),
        Filter::Grid(g) => (" AND r.grid_id = ?2", Some(g.to_string())),
        Filter::Parent(p) => (" AND r.parent_id = ?2", Some(p.to_string())),
    };
    let sql = format!(
        "SELECT {VIEW_COLUMNS} FROM records r WHERE r.collection = ?1{clause} ORDER BY r.id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = match &arg {
        Some(a) => stmt
            .query_map(params![collection.as_str(), a], raw)?
            .collect::<Result<Vec<_>, _>>()?,
        None => stmt
            .query_map(params![collection.as_str()], raw)?
            .collect::<Result<Vec<_>, _>>()?,
    };
    rows.into_iter()
        .map(|r| view_from_raw(collection, r))
        .collect()
}

/// The sync state of a record, also when it no longer exists locally (a rejected creation).
pub(crate) fn state_of(
    conn: &Connection,
    collection: Collection,
    id: RecordId,
) -> Result<Option<SyncState>> {
    if let Some(v) = read(conn, collection, id)? {
        return Ok(Some(v.sync));
    }
    let rejection: Option<String> = conn
        .prepare_cached(
            "SELECT json_array(code, message) FROM rejections
             WHERE collection = ?1 AND record_id = ?2 AND cleared = 0 ORDER BY seq DESC LIMIT 1",
        )?
        .query_row(params![collection.as_str(), id.to_string()], |r| r.get(0))
        .optional()?;
    rejection
        .map(|r| sync_state(false, Some(&r), None))
        .transpose()
}
