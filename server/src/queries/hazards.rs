//! Hazards for supervisors and departments: the filtered list, the detail with its action
//! timeline, and actions recorded through the API.
//!
//! An API action is a `hazard_actions` mutation run through
//! [`sync_core::ingest::apply_mutation`] over [`DieselStore`], inside the caller's one write
//! transaction, after locking the hazard's grid clock: the very rules, verdicts and write
//! path of phone actions, so the grid counter moves and phones pull the action and the new
//! status at their next sync. Its stamp is the server clock's wall and counter with the
//! caller's device id as node (sync-core requires the node to be the acting device).
//!
//! Invariants:
//! - A hazard is visible to a supervisor when its grid is in their subtree, to a department
//!   when it is currently dispatched to that department (`assignee_department`), to an admin
//!   always; otherwise 404.
//! - **Overdue** = `due_at` in the past and status not `disposed`, `closed`, `rejected` or
//!   `cancelled` (domain.md); evaluated at the request's time.
//! - Every API action writes an `audit_log` row in the same transaction.
//! - The timeline is in server order (`server_order`, the grid counter at which the server
//!   received each action), which is the order the workflow folded them in.

use std::collections::BTreeMap;

use diesel::prelude::*;
use serde_json::{json, Map, Value};
use sync_core::ids::{MutationId, RecordId};
use sync_core::ingest::{apply_mutation, Caller};
use sync_core::wire::{Fields, Mutation, Op, RejectCode};
use sync_core::workflow::{may_take, HazardAction};
use sync_core::{Collection, Hlc, HlcClock, Timestamp};

use super::{grid_scope, opt_rfc3339, record_json, rfc3339, ApiScope, TimeKey};
use crate::auth::AuthUser;
use crate::db::schema::{attachments, hazard_actions, hazards, users};
use crate::db::{audit, lock_grid_clocks, DbConnection};
use crate::error::{AppError, AppResult};
use crate::sync::rows::{AttachmentRow, HazardActionRow, HazardRow};
use crate::sync::store::DieselStore;

/// Statuses in which a due date no longer matters (not overdue).
pub const SETTLED: &[&str] = &["disposed", "closed", "rejected", "cancelled"];

/// The filters of `GET /hazards`.
#[derive(Clone, Debug, Default)]
pub struct HazardFilter {
    /// Grids to read (`None`: all).
    pub grids: Option<Vec<String>>,
    /// Only hazards dispatched to this department.
    pub department: Option<String>,
    pub status: Option<String>,
    pub category: Option<String>,
    pub severity: Option<String>,
    /// `Some(true)`: only overdue; `Some(false)`: only not overdue.
    pub overdue: Option<bool>,
    /// Reported (reached the server) at or after.
    pub from: Option<i64>,
    /// Reported before.
    pub to: Option<i64>,
    /// The time "overdue" is judged at.
    pub now: i64,
}

impl HazardFilter {
    /// The filter a scope imposes, before the client's own filters.
    pub fn for_scope(scope: &ApiScope, now: i64) -> HazardFilter {
        let mut f = HazardFilter {
            now,
            ..HazardFilter::default()
        };
        match scope {
            ApiScope::All => {}
            ApiScope::Grids(g) => f.grids = Some(g.clone()),
            ApiScope::Department(d) => f.department = Some(d.clone()),
        }
        f
    }
}

/// Whether a hazard row is overdue at `now`.
pub fn is_overdue(row: &HazardRow, now: i64) -> bool {
    matches!(row.due_at, Some(due) if due < now) && !SETTLED.contains(&row.status.as_str())
}

/// One page of hazards, newest first (`created_at`, then `id`, descending).
pub fn list(
    conn: &mut DbConnection,
    f: &HazardFilter,
    after: Option<TimeKey>,
    limit: i64,
) -> AppResult<Vec<HazardRow>> {
    let mut q = hazards::table
        .select(HazardRow::as_select())
        .order((hazards::created_at.desc(), hazards::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some((at, id)) = after {
        q = q.filter(
            hazards::created_at
                .lt(at)
                .or(hazards::created_at.eq(at).and(hazards::id.lt(id))),
        );
    }
    if let Some(grids) = &f.grids {
        q = q.filter(hazards::grid_id.eq_any(grids.clone()));
    }
    if let Some(d) = &f.department {
        q = q.filter(hazards::assignee_department.eq(d.clone()));
    }
    if let Some(s) = &f.status {
        q = q.filter(hazards::status.eq(s.clone()));
    }
    if let Some(c) = &f.category {
        q = q.filter(hazards::category.eq(c.clone()));
    }
    if let Some(s) = &f.severity {
        q = q.filter(hazards::severity.eq(s.clone()));
    }
    match f.overdue {
        Some(true) => {
            q = q
                .filter(hazards::due_at.lt(f.now))
                .filter(hazards::status.ne_all(SETTLED));
        }
        Some(false) => {
            q = q.filter(
                hazards::due_at
                    .is_null()
                    .or(hazards::due_at.ge(f.now))
                    .or(hazards::status.eq_any(SETTLED)),
            );
        }
        None => {}
    }
    if let Some(from) = f.from {
        q = q.filter(hazards::created_at.ge(from));
    }
    if let Some(to) = f.to {
        q = q.filter(hazards::created_at.lt(to));
    }
    Ok(q.load(conn)?)
}

/// The columns of a hazard item.
pub fn columns() -> Vec<&'static str> {
    super::record_columns(Collection::Hazards, &["overdue"])
}

/// A hazard as the API shows it: its record plus `overdue`.
pub fn hazard_json(row: &HazardRow, now: i64) -> AppResult<Value> {
    let mut obj = record_json(Collection::Hazards, row)?;
    obj.insert("overdue".into(), Value::Bool(is_overdue(row, now)));
    Ok(Value::Object(obj))
}

/// The hazard if the scope may see it (404 otherwise, also when it does not exist).
pub fn find_visible(conn: &mut DbConnection, scope: &ApiScope, id: &str) -> AppResult<HazardRow> {
    let not_found = || AppError::not_found("no such hazard");
    let row: HazardRow = hazards::table
        .find(id)
        .select(HazardRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(not_found)?;
    let visible = match scope {
        ApiScope::All => true,
        ApiScope::Grids(g) => g.contains(&row.grid_id),
        ApiScope::Department(d) => row.assignee_department.as_deref() == Some(d.as_str()),
    };
    if visible {
        Ok(row)
    } else {
        Err(not_found())
    }
}

/// Display names of users, by id (username when there is no display name).
fn user_names(conn: &mut DbConnection, ids: Vec<String>) -> AppResult<BTreeMap<String, String>> {
    let rows: Vec<(String, String, Option<String>)> = users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::username, users::display_name))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, username, display)| (id, display.unwrap_or(username)))
        .collect())
}

/// An action of the timeline: what, by whom (id and name), the device's time (`at`), the
/// server's time (`server_time`) and order, and the verdict.
pub fn action_json(row: &HazardActionRow, actor_name: Option<&str>) -> Value {
    json!({
        "id": row.id,
        "hazard_id": row.hazard_id,
        "grid_id": row.grid_id,
        "action": row.action,
        "actor_id": row.actor_id,
        "actor_name": actor_name,
        "note": row.note,
        "department": row.department,
        "due_at": opt_rfc3339(row.due_at),
        "at": opt_rfc3339(row.at),
        "server_time": rfc3339(row.created_at),
        "server_order": row.server_order,
        "device_id": row.origin_device,
        "effect": row.effect,
        "reason": row.reason,
    })
}

/// The columns of a timeline action.
pub const ACTION_COLUMNS: &[&str] = &[
    "id",
    "hazard_id",
    "grid_id",
    "action",
    "actor_id",
    "actor_name",
    "note",
    "department",
    "due_at",
    "at",
    "server_time",
    "server_order",
    "device_id",
    "effect",
    "reason",
];

/// The hazard with its whole action timeline (server order) and its attachments.
pub fn detail(conn: &mut DbConnection, scope: &ApiScope, id: &str, now: i64) -> AppResult<Value> {
    let row = find_visible(conn, scope, id)?;
    let actions: Vec<HazardActionRow> = hazard_actions::table
        .filter(hazard_actions::hazard_id.eq(id))
        .order((hazard_actions::server_order.asc(), hazard_actions::id.asc()))
        .select(HazardActionRow::as_select())
        .load(conn)?;
    let files: Vec<AttachmentRow> = attachments::table
        .filter(attachments::owner_collection.eq(Collection::Hazards.as_str()))
        .filter(attachments::owner_id.eq(id))
        .order(attachments::id.asc())
        .select(AttachmentRow::as_select())
        .load(conn)?;
    let names = user_names(conn, actions.iter().map(|a| a.actor_id.clone()).collect())?;
    let mut out = match hazard_json(&row, now)? {
        Value::Object(o) => o,
        _ => Map::new(),
    };
    out.insert(
        "actions".into(),
        Value::Array(
            actions
                .iter()
                .map(|a| action_json(a, names.get(&a.actor_id).map(String::as_str)))
                .collect(),
        ),
    );
    let files = files
        .iter()
        .map(|f| record_json(Collection::Attachments, f).map(Value::Object))
        .collect::<AppResult<Vec<_>>>()?;
    out.insert("attachments".into(), Value::Array(files));
    Ok(Value::Object(out))
}

/// An action requested through the API.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionRequest {
    pub action: HazardAction,
    pub note: Option<String>,
    pub department: Option<String>,
    pub due_at: Option<Timestamp>,
}

/// The HTTP error for a verdict that refused the action.
fn refusal(reason: sync_core::wire::Reason) -> AppError {
    let code = reason.code.as_str();
    match reason.code {
        RejectCode::Forbidden => AppError::forbidden(reason.message),
        RejectCode::OutOfScope | RejectCode::NotFound => AppError::not_found(reason.message),
        RejectCode::Malformed | RejectCode::Other => {
            AppError::internal(anyhow::anyhow!("API action refused: {reason}"))
        }
        _ => AppError::invalid(reason.message).with_code(code),
    }
}

/// Record `req` on hazard `hazard_id` for `user`, inside the caller's write transaction.
/// `clock` is a copy of the server's clock; the caller folds it back afterwards.
pub fn record_action(
    conn: &mut DbConnection,
    user: &AuthUser,
    hazard_id: RecordId,
    req: &ActionRequest,
    now: Timestamp,
    clock: &mut HlcClock,
) -> AppResult<Value> {
    if !may_take(user.role, req.action) {
        return Err(AppError::forbidden(format!(
            "a {} may never {} a hazard",
            user.role, req.action
        )));
    }
    let id = hazard_id.to_string();
    // The grid never changes, so lock its clock first, then read the hazard under the lock.
    let grid: String = hazards::table
        .find(&id)
        .select(hazards::grid_id)
        .first(conn)
        .optional()?
        .ok_or_else(|| AppError::not_found("no such hazard"))?;
    lock_grid_clocks(conn, &[grid.as_str()])?;
    let sync_scope = grid_scope(conn, user)?;
    let hazard = find_visible(conn, &ApiScope::from(&sync_scope), &id)?;
    let grid_id = hazard
        .grid_id
        .parse()
        .map_err(|e| AppError::internal(anyhow::anyhow!("stored grid id: {e}")))?;

    let now_ms = u64::try_from(now.millis()).unwrap_or(0);
    let server = clock.tick(now_ms);
    let stamp = Hlc::new(server.wall, server.counter, user.device_id.to_string());
    let record_id = RecordId::new();
    let mut fields = Fields::new();
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    fields.insert("hazard_id".into(), Value::String(id.clone()));
    fields.insert("actor_id".into(), Value::String(user.user_id.to_string()));
    fields.insert("action".into(), Value::String(req.action.as_str().into()));
    fields.insert("note".into(), text(&req.note));
    fields.insert("department".into(), text(&req.department));
    fields.insert(
        "due_at".into(),
        req.due_at
            .map_or(Value::Null, |t| Value::String(t.to_rfc3339())),
    );
    fields.insert("at".into(), Value::String(now.to_rfc3339()));
    let mutation = Mutation {
        seq: 0,
        id: MutationId::new(),
        collection: Collection::HazardActions,
        record_id,
        grid_id,
        op: Op::Upsert,
        hlc: stamp,
        fields,
        base: BTreeMap::new(),
    };
    let caller = Caller {
        user: user.user_id,
        role: user.role,
        device: user.device_id,
        department: user.department.clone(),
    };
    let verdict = {
        let mut store = DieselStore::new(conn, &sync_scope, now.millis());
        apply_mutation(&mut store, &caller, &mutation, now, clock)?
    };
    verdict.map_err(refusal)?;

    let row: HazardActionRow = hazard_actions::table
        .find(record_id.to_string())
        .select(HazardActionRow::as_select())
        .first(conn)?;
    let status: String = hazards::table
        .find(&id)
        .select(hazards::status)
        .first(conn)?;
    audit::record(
        conn,
        Some(&user.user_id.to_string()),
        "hazard.action",
        "hazard",
        &id,
        Some(json!({
            "action_id": row.id, "action": row.action, "grid_id": row.grid_id,
            "effect": row.effect, "reason": row.reason,
            "department": row.department, "due_at": opt_rfc3339(row.due_at),
            "status": status,
        })),
    )?;
    let names = user_names(conn, vec![row.actor_id.clone()])?;
    let mut out = action_json(&row, names.get(&row.actor_id).map(String::as_str));
    if let Value::Object(o) = &mut out {
        o.insert("hazard_status".into(), Value::String(status));
    }
    Ok(out)
}
