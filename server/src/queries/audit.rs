//! The audit trail for administrators and supervisors: every administrative and supervisory
//! write (areas, users, devices, hazard actions through the API, conflict resolutions), who,
//! when, what.
//!
//! Scope: an admin reads every entry; a supervisor reads the entries about objects in their
//! area subtree — areas of the subtree, users placed in it (area or grids) and their
//! devices, hazards and conflicts of its grids. Entries are never changed by the application
//! (see `db::audit`).

use diesel::prelude::*;
use serde_json::{json, Value};

use sync_core::workflow::Role;

use super::{rfc3339, ApiScope, TimeKey};
use crate::auth::AuthUser;
use crate::db::audit::AuditEntry;
use crate::db::schema::{audit_log, conflicts, devices, hazards, users};
use crate::db::DbConnection;
use crate::error::AppResult;

/// What a supervisor may read (`None` in [`AuditFilter::scope`]: everything).
#[derive(Clone, Debug, Default)]
pub struct AuditScope {
    /// Area ids of the subtree (all levels).
    pub areas: Vec<String>,
    /// Grid ids of the subtree.
    pub grids: Vec<String>,
    /// Users placed in the subtree.
    pub users: Vec<String>,
}

impl AuditScope {
    /// What `user` may read: `None` for an admin (everything), their subtree otherwise.
    pub fn of(conn: &mut DbConnection, user: &AuthUser) -> AppResult<Option<AuditScope>> {
        if user.role == Role::Admin {
            return Ok(None);
        }
        let areas = match user.area_id {
            Some(a) => crate::db::areas::subtree_ids(conn, &a.to_string())?,
            None => Vec::new(),
        };
        let grids = match ApiScope::of(conn, user)? {
            ApiScope::Grids(g) => g,
            _ => Vec::new(),
        };
        Ok(Some(AuditScope {
            users: crate::db::users::ids_in_areas(conn, &areas)?,
            areas,
            grids,
        }))
    }
}

/// The filters of `GET /audit`.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub scope: Option<AuditScope>,
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// One page of audit entries, newest first (`at`, then `id`, descending).
pub fn list(
    conn: &mut DbConnection,
    f: &AuditFilter,
    after: Option<TimeKey>,
    limit: i64,
) -> AppResult<Vec<AuditEntry>> {
    let mut q = audit_log::table
        .select(AuditEntry::as_select())
        .order((audit_log::at.desc(), audit_log::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some((at, id)) = after {
        q = q.filter(
            audit_log::at
                .lt(at)
                .or(audit_log::at.eq(at).and(audit_log::id.lt(id))),
        );
    }
    if let Some(s) = &f.scope {
        let about = |kind: &'static str| audit_log::target_type.eq(kind);
        q = q.filter(
            about("area")
                .and(audit_log::target_id.eq_any(s.areas.clone()))
                .or(about("user").and(audit_log::target_id.eq_any(s.users.clone())))
                .or(about("device").and(
                    audit_log::target_id.eq_any(
                        devices::table
                            .filter(devices::user_id.eq_any(s.users.clone()))
                            .select(devices::id.nullable()),
                    ),
                ))
                .or(about("hazard").and(
                    audit_log::target_id.eq_any(
                        hazards::table
                            .filter(hazards::grid_id.eq_any(s.grids.clone()))
                            .select(hazards::id.nullable()),
                    ),
                ))
                .or(about("conflict").and(
                    audit_log::target_id.eq_any(
                        conflicts::table
                            .filter(conflicts::grid_id.eq_any(s.grids.clone()))
                            .select(conflicts::id.nullable()),
                    ),
                )),
        );
    }
    if let Some(a) = &f.action {
        q = q.filter(audit_log::action.eq(a.clone()));
    }
    if let Some(a) = &f.actor_id {
        q = q.filter(audit_log::actor_id.eq(a.clone()));
    }
    if let Some(t) = &f.target_type {
        q = q.filter(audit_log::target_type.eq(t.clone()));
    }
    if let Some(t) = &f.target_id {
        q = q.filter(audit_log::target_id.eq(t.clone()));
    }
    if let Some(from) = f.from {
        q = q.filter(audit_log::at.ge(from));
    }
    if let Some(to) = f.to {
        q = q.filter(audit_log::at.lt(to));
    }
    Ok(q.load(conn)?)
}

/// Entries as API items, with the actor's name and the details as JSON.
pub fn items(conn: &mut DbConnection, entries: &[AuditEntry]) -> AppResult<Vec<Value>> {
    let ids: Vec<String> = entries.iter().filter_map(|e| e.actor_id.clone()).collect();
    let names: std::collections::BTreeMap<String, String> = users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::username))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect();
    Ok(entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "at": rfc3339(e.at),
                "actor_id": e.actor_id,
                "actor_username": e.actor_id.as_ref().and_then(|a| names.get(a)),
                "action": e.action,
                "target_type": e.target_type,
                "target_id": e.target_id,
                "details": e.details.as_deref()
                    .and_then(|d| serde_json::from_str::<Value>(d).ok())
                    .unwrap_or(Value::Null),
            })
        })
        .collect())
}

/// The CSV columns of an audit entry.
pub const COLUMNS: &[&str] = &[
    "id",
    "at",
    "actor_id",
    "actor_username",
    "action",
    "target_type",
    "target_id",
    "details",
];
