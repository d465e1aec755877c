//! Review of what sync could not settle silently: field conflicts (list and resolve) and
//! rejected phone mutations (list).
//!
//! A conflict holds both values of one field of one record: `current` (what the server held
//! when the conflicting edit arrived) and `incoming` (what that edit carried), the winner
//! chosen by clock order, the devices and versions. Resolving it keeps one of the two values
//! as a **new edit**: [`sync_core::merge::resolution_edit`] stamps it with the server's clock
//! above whatever the field holds now, and it is saved through [`DieselStore`] — the write
//! path of pushes — so the grid counter moves and every phone pulls the kept value with a
//! newer version. The conflict is marked resolved (by whom, when, which side) and an audit
//! row is written, all in one write transaction taken after locking the grid's clock, so two
//! supervisors resolving at once cannot both win (the second gets 409 `already_resolved`).
//!
//! Invariants: supervisors see conflicts of their subtree's grids only, and rejections of
//! those grids or of the workers assigned to them; anything else is 404 / absent.

use diesel::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};
use sync_core::ids::RecordId;
use sync_core::ingest::{RecordWrite, Store};
use sync_core::merge::resolution_edit;
use sync_core::{Collection, Hlc, HlcClock, Timestamp};

use super::{opt_rfc3339, rfc3339, ApiScope, TimeKey};
use crate::auth::AuthUser;
use crate::db::schema::{conflicts, rejections};
use crate::db::{audit, lock_grid_clocks, users, DbConnection};
use crate::error::{AppError, AppResult};
use crate::scope::GridScope;
use crate::sync::store::DieselStore;

/// The conflict statuses.
pub const STATUSES: &[&str] = &["open", "resolved"];

/// One stored conflict.
#[derive(Debug, Clone, Queryable)]
pub struct ConflictRow {
    pub id: String,
    pub collection: String,
    pub record_id: String,
    pub grid_id: String,
    pub field: String,
    pub current_value: Option<String>,
    pub current_version: Option<String>,
    pub current_device: Option<String>,
    pub incoming_value: Option<String>,
    pub incoming_version: String,
    pub incoming_device: Option<String>,
    pub winner: String,
    pub status: String,
    pub created_at: i64,
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
}

type ConflictColumns = (
    conflicts::id,
    conflicts::collection,
    conflicts::record_id,
    conflicts::grid_id,
    conflicts::field,
    conflicts::current_value,
    conflicts::current_version,
    conflicts::current_device,
    conflicts::incoming_value,
    conflicts::incoming_version,
    conflicts::incoming_device,
    conflicts::winner,
    conflicts::status,
    conflicts::created_at,
    conflicts::resolved_at,
    conflicts::resolved_by,
    conflicts::resolution,
);

const CONFLICT_COLUMNS: ConflictColumns = (
    conflicts::id,
    conflicts::collection,
    conflicts::record_id,
    conflicts::grid_id,
    conflicts::field,
    conflicts::current_value,
    conflicts::current_version,
    conflicts::current_device,
    conflicts::incoming_value,
    conflicts::incoming_version,
    conflicts::incoming_device,
    conflicts::winner,
    conflicts::status,
    conflicts::created_at,
    conflicts::resolved_at,
    conflicts::resolved_by,
    conflicts::resolution,
);

fn parse_value(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// The wall time of a version stamp, as RFC 3339 (`null` when there is no stamp).
fn stamp_time(version: Option<&str>) -> Value {
    version
        .and_then(|v| v.parse::<Hlc>().ok())
        .and_then(|h| i64::try_from(h.wall).ok())
        .map_or(Value::Null, |ms| Value::String(rfc3339(ms)))
}

/// A conflict as the API shows it.
pub fn conflict_json(c: &ConflictRow) -> Value {
    json!({
        "id": c.id,
        "collection": c.collection,
        "record_id": c.record_id,
        "grid_id": c.grid_id,
        "field": c.field,
        "current": {
            "value": parse_value(c.current_value.as_deref()),
            "version": c.current_version,
            "device_id": c.current_device,
            "time": stamp_time(c.current_version.as_deref()),
        },
        "incoming": {
            "value": parse_value(c.incoming_value.as_deref()),
            "version": c.incoming_version,
            "device_id": c.incoming_device,
            "time": stamp_time(Some(&c.incoming_version)),
        },
        "winner": c.winner,
        "status": c.status,
        "created_at": rfc3339(c.created_at),
        "resolved_at": opt_rfc3339(c.resolved_at),
        "resolved_by": c.resolved_by,
        "resolution": c.resolution,
    })
}

/// The CSV columns of a conflict.
pub const COLUMNS: &[&str] = &[
    "id",
    "collection",
    "record_id",
    "grid_id",
    "field",
    "current.value",
    "current.version",
    "current.device_id",
    "current.time",
    "incoming.value",
    "incoming.version",
    "incoming.device_id",
    "incoming.time",
    "winner",
    "status",
    "created_at",
    "resolved_at",
    "resolved_by",
    "resolution",
];

/// The filters of `GET /conflicts`.
#[derive(Clone, Debug, Default)]
pub struct ConflictFilter {
    pub grids: Option<Vec<String>>,
    pub status: Option<String>,
    pub collection: Option<String>,
    pub record_id: Option<String>,
}

/// One page of conflicts, newest first.
pub fn list(
    conn: &mut DbConnection,
    f: &ConflictFilter,
    after: Option<TimeKey>,
    limit: i64,
) -> AppResult<Vec<ConflictRow>> {
    let mut q = conflicts::table
        .select(CONFLICT_COLUMNS)
        .order((conflicts::created_at.desc(), conflicts::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some((at, id)) = after {
        q = q.filter(
            conflicts::created_at
                .lt(at)
                .or(conflicts::created_at.eq(at).and(conflicts::id.lt(id))),
        );
    }
    if let Some(g) = &f.grids {
        q = q.filter(conflicts::grid_id.eq_any(g.clone()));
    }
    if let Some(s) = &f.status {
        q = q.filter(conflicts::status.eq(s.clone()));
    }
    if let Some(c) = &f.collection {
        q = q.filter(conflicts::collection.eq(c.clone()));
    }
    if let Some(r) = &f.record_id {
        q = q.filter(conflicts::record_id.eq(r.clone()));
    }
    Ok(q.load(conn)?)
}

fn find(conn: &mut DbConnection, id: &str) -> AppResult<Option<ConflictRow>> {
    Ok(conflicts::table
        .find(id)
        .select(CONFLICT_COLUMNS)
        .first(conn)
        .optional()?)
}

/// Which side of a conflict to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    Current,
    Incoming,
}

impl Keep {
    pub fn as_str(self) -> &'static str {
        match self {
            Keep::Current => "current",
            Keep::Incoming => "incoming",
        }
    }
}

/// Resolve conflict `id` by keeping one side, inside the caller's write transaction.
/// `clock` is a copy of the server's clock; the caller folds it back afterwards.
pub fn resolve(
    conn: &mut DbConnection,
    user: &AuthUser,
    id: &str,
    keep: Keep,
    now: Timestamp,
    clock: &mut HlcClock,
) -> AppResult<Value> {
    let not_found = || AppError::not_found("no such conflict");
    let scope = ApiScope::of(conn, user)?;
    let grid = find(conn, id)?.ok_or_else(not_found)?.grid_id;
    if !scope.sees_grid(&grid) {
        return Err(not_found());
    }
    // Serialise with every other write of the grid, then read the conflict again.
    lock_grid_clocks(conn, &[grid.as_str()])?;
    let c = find(conn, id)?.ok_or_else(not_found)?;
    if c.status != "open" {
        return Err(
            AppError::conflict("this conflict has already been resolved")
                .with_code("already_resolved")
                .with_details(json!({"resolution": c.resolution, "resolved_by": c.resolved_by})),
        );
    }
    let collection: Collection = c
        .collection
        .parse()
        .map_err(|e| AppError::internal(anyhow::anyhow!("stored collection: {e}")))?;
    let record_id: RecordId = c
        .record_id
        .parse()
        .map_err(|e| AppError::internal(anyhow::anyhow!("stored record id: {e}")))?;
    let value = match keep {
        Keep::Current => parse_value(c.current_value.as_deref()),
        Keep::Incoming => parse_value(c.incoming_value.as_deref()),
    };
    let now_ms = u64::try_from(now.millis()).unwrap_or(0);
    let stamp = clock.tick(now_ms);
    {
        let all = GridScope::All;
        let mut store = DieselStore::new(conn, &all, now.millis());
        let stored = store.load(collection, record_id)?.ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("the record of conflict {id} is gone"))
        })?;
        let state = resolution_edit(&stored.state, &c.field, value.clone(), &stamp);
        store.save(RecordWrite {
            collection,
            id: record_id,
            grid_id: stored.grid_id,
            state: &state,
            created: false,
            changed: std::slice::from_ref(&c.field),
            device: None,
            client_time: None,
        })?;
    }
    let actor = user.user_id.to_string();
    diesel::update(conflicts::table.find(id))
        .set((
            conflicts::status.eq("resolved"),
            conflicts::resolved_at.eq(now.millis()),
            conflicts::resolved_by.eq(&actor),
            conflicts::resolution.eq(keep.as_str()),
        ))
        .execute(conn)?;
    audit::record(
        conn,
        Some(&actor),
        "conflict.resolve",
        "conflict",
        id,
        Some(json!({
            "keep": keep.as_str(), "grid_id": c.grid_id, "collection": c.collection,
            "record_id": c.record_id, "field": c.field,
        })),
    )?;
    let c = find(conn, id)?.ok_or_else(not_found)?;
    Ok(conflict_json(&c))
}

// ---------------------------------------------------------------------------------------
// Rejections

/// One stored rejection of a phone mutation.
#[derive(Debug, Clone, Queryable)]
pub struct RejectionRow {
    pub id: String,
    pub device_id: String,
    pub user_id: String,
    pub seq: i64,
    pub mutation_id: String,
    pub collection: Option<String>,
    pub record_id: Option<String>,
    pub grid_id: Option<String>,
    pub code: String,
    pub message: String,
    pub mutation: String,
    pub created_at: i64,
}

/// The filters of `GET /rejections`.
#[derive(Clone, Debug, Default)]
pub struct RejectionFilter {
    /// Grids in scope (`None`: all); a rejection is visible when its grid is one of them or
    /// its author is a worker of one of them.
    pub grids: Option<Vec<String>>,
    pub grid: Option<String>,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub code: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// One page of rejections, newest first.
pub fn list_rejections(
    conn: &mut DbConnection,
    f: &RejectionFilter,
    after: Option<TimeKey>,
    limit: i64,
) -> AppResult<Vec<RejectionRow>> {
    let authors = match &f.grids {
        Some(g) => Some(users::ids_in_areas(conn, g)?),
        None => None,
    };
    let mut q = rejections::table
        .select((
            rejections::id,
            rejections::device_id,
            rejections::user_id,
            rejections::seq,
            rejections::mutation_id,
            rejections::collection,
            rejections::record_id,
            rejections::grid_id,
            rejections::code,
            rejections::message,
            rejections::mutation,
            rejections::created_at,
        ))
        .order((rejections::created_at.desc(), rejections::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some((at, id)) = after {
        q = q.filter(
            rejections::created_at
                .lt(at)
                .or(rejections::created_at.eq(at).and(rejections::id.lt(id))),
        );
    }
    if let (Some(g), Some(authors)) = (&f.grids, authors) {
        q = q.filter(
            rejections::grid_id
                .eq_any(g.clone())
                .or(rejections::user_id.eq_any(authors)),
        );
    }
    if let Some(g) = &f.grid {
        q = q.filter(rejections::grid_id.eq(g.clone()));
    }
    if let Some(u) = &f.user_id {
        q = q.filter(rejections::user_id.eq(u.clone()));
    }
    if let Some(d) = &f.device_id {
        q = q.filter(rejections::device_id.eq(d.clone()));
    }
    if let Some(c) = &f.code {
        q = q.filter(rejections::code.eq(c.clone()));
    }
    if let Some(from) = f.from {
        q = q.filter(rejections::created_at.ge(from));
    }
    if let Some(to) = f.to {
        q = q.filter(rejections::created_at.lt(to));
    }
    Ok(q.load(conn)?)
}

/// A rejection as the API shows it (with the refused mutation as the phone sent it).
pub fn rejection_json(r: &RejectionRow) -> Value {
    json!({
        "id": r.id,
        "device_id": r.device_id,
        "user_id": r.user_id,
        "seq": r.seq,
        "mutation_id": r.mutation_id,
        "collection": r.collection,
        "record_id": r.record_id,
        "grid_id": r.grid_id,
        "code": r.code,
        "message": r.message,
        "mutation": parse_value(Some(&r.mutation)),
        "created_at": rfc3339(r.created_at),
    })
}

/// The CSV columns of a rejection.
pub const REJECTION_COLUMNS: &[&str] = &[
    "id",
    "device_id",
    "user_id",
    "seq",
    "mutation_id",
    "collection",
    "record_id",
    "grid_id",
    "code",
    "message",
    "mutation",
    "created_at",
];
