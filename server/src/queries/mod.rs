//! The SQL behind the supervisor and department API: lists, details, statistics, conflict
//! review, the audit trail, and the one write path of API-recorded hazard actions.
//!
//! Owns: what a caller of the read API may see ([`ApiScope`]), the shared parameter parsing
//! (times, enum filters), the JSON form of a stored record ([`record_json`]) and keyset
//! pagination keys. Handlers in `routes/` parse the request, call one function here, answer.
//!
//! Invariants:
//! - Every query is restricted to the caller's [`ApiScope`] before any filter the client
//!   gives: a supervisor sees the grids of their area subtree, an admin everything, a
//!   department only hazards currently dispatched to it (`assignee_department`). Objects
//!   outside the scope are 404, exactly like objects that do not exist.
//! - Lists are keyset-paginated on a unique key (see `routes::pagination`), so pages never
//!   overlap or skip rows.
//! - Only diesel's portable DSL or SQL valid on both SQLite (≥ 3.25) and PostgreSQL is used;
//!   raw SQL text built here interpolates only typed values that cannot carry SQL (UUIDs
//!   re-printed from their parsed form, integers, and constants from fixed tables), never
//!   client text.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};
use sync_core::workflow::Role;
use sync_core::{Collection, GridId, Timestamp};

use crate::auth::AuthUser;
use crate::db::DbConnection;
use crate::error::{AppError, AppResult};
use crate::scope::{scope_of, GridScope};
use crate::sync::rows::RecordRow;

pub mod audit;
pub mod conflicts;
pub mod hazards;
pub mod records;
pub mod stats;

/// What a caller of the read API may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiScope {
    /// Everything (admins).
    All,
    /// These grids (supervisors: their area subtree; may be empty).
    Grids(Vec<String>),
    /// Hazards currently dispatched to this department, in any grid.
    Department(String),
}

impl ApiScope {
    /// The scope of `user` (a worker's would be their grids, but the read API's handlers
    /// refuse workers: their phones sync their grids).
    pub fn of(conn: &mut DbConnection, user: &AuthUser) -> AppResult<ApiScope> {
        Ok(ApiScope::from(&grid_scope(conn, user)?))
    }

    /// The grids this scope may read whole (`None`: all). Departments read no grid whole.
    pub fn grid_filter(&self) -> Option<Vec<String>> {
        match self {
            ApiScope::All => None,
            ApiScope::Grids(g) => Some(g.clone()),
            ApiScope::Department(_) => Some(Vec::new()),
        }
    }

    /// The grids to read, narrowed by the client's optional `grid_id` filter.
    pub fn grids_with(&self, grid: Option<GridId>) -> Option<Vec<String>> {
        let grid = grid.map(|g| g.to_string());
        match (self.grid_filter(), grid) {
            (None, None) => None,
            (None, Some(g)) => Some(vec![g]),
            (Some(list), None) => Some(list),
            (Some(list), Some(g)) => Some(list.into_iter().filter(|x| *x == g).collect()),
        }
    }

    /// Whether a record of `grid` is readable as part of a whole grid.
    pub fn sees_grid(&self, grid: &str) -> bool {
        match self {
            ApiScope::All => true,
            ApiScope::Grids(g) => g.iter().any(|x| x == grid),
            ApiScope::Department(_) => false,
        }
    }
}

impl From<&GridScope> for ApiScope {
    fn from(scope: &GridScope) -> ApiScope {
        match scope {
            GridScope::All => ApiScope::All,
            GridScope::Grids(grids) => {
                ApiScope::Grids(grids.iter().map(ToString::to_string).collect())
            }
            GridScope::Department(d) => ApiScope::Department(d.clone()),
        }
    }
}

/// The sync scope of the caller (the rules of `crate::scope`).
pub fn grid_scope(conn: &mut DbConnection, user: &AuthUser) -> AppResult<GridScope> {
    let area = user.area_id.map(|a| a.to_string());
    scope_of(
        conn,
        &user.user_id.to_string(),
        user.role,
        area.as_deref(),
        user.department.as_deref(),
    )
}

/// The roles that read grid records through the API.
pub const SUPERVISING: &[Role] = &[Role::Supervisor, Role::Admin];
/// The roles that read and act on hazards through the API.
pub const HAZARD_ROLES: &[Role] = &[Role::Supervisor, Role::Admin, Role::Department];

/// Milliseconds → the contract's RFC 3339 text.
pub fn rfc3339(ms: i64) -> String {
    Timestamp(ms).to_rfc3339()
}

/// Optional milliseconds → RFC 3339 text or `null`.
pub fn opt_rfc3339(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |m| Value::String(rfc3339(m)))
}

/// Parse an RFC 3339 query parameter; 422 naming the parameter otherwise.
pub fn parse_time(name: &str, value: Option<&str>) -> AppResult<Option<i64>> {
    match value {
        None | Some("") => Ok(None),
        Some(text) => Timestamp::parse(text)
            .map(|t| Some(t.millis()))
            .ok_or_else(|| {
                AppError::invalid(format!(
                    "{name} must be an RFC 3339 time, e.g. 2026-11-21T08:30:00Z"
                ))
                .with_details(json!({"field": name}))
            }),
    }
}

/// A half-open time range `[from, to)` from query parameters; 422 when `from` is not before
/// `to`.
pub fn parse_range(from: Option<&str>, to: Option<&str>) -> AppResult<(Option<i64>, Option<i64>)> {
    let from = parse_time("from", from)?;
    let to = parse_time("to", to)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(
                AppError::invalid("from must be before to").with_details(json!({"field": "from"}))
            );
        }
    }
    Ok((from, to))
}

/// Check an enum-valued filter against its allowed values; 422 otherwise.
pub fn check_enum(name: &str, value: Option<&str>, allowed: &[&str]) -> AppResult<()> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(AppError::invalid(format!(
            "{name} must be one of: {}",
            allowed.join(", ")
        ))
        .with_details(json!({"field": name, "allowed": allowed}))),
        _ => Ok(()),
    }
}

/// The keyset of lists ordered newest first: `(created_at, id)`, both descending.
pub type TimeKey = (i64, String);

/// A stored record as the API shows it: `id`, `grid_id`, every field of the collection in
/// its wire form (`null` when unset), and the server's bookkeeping `created_at` (when the
/// record reached the server), `updated_at` and `client_time` (when the phone recorded it),
/// as RFC 3339. Versions and counters stay internal.
pub fn record_json<R: RecordRow>(collection: Collection, row: &R) -> AppResult<Map<String, Value>> {
    let Value::Object(all) = serde_json::to_value(row).map_err(AppError::internal)? else {
        return Err(AppError::internal(anyhow::anyhow!(
            "a row did not serialise to an object"
        )));
    };
    let meta = row.meta();
    let mut out = Map::new();
    out.insert("id".into(), Value::String(meta.id));
    out.insert("grid_id".into(), Value::String(meta.grid_id));
    for spec in collection.fields() {
        out.insert(
            spec.name.into(),
            all.get(spec.name).cloned().unwrap_or(Value::Null),
        );
    }
    out.insert("created_at".into(), Value::String(rfc3339(meta.created_at)));
    out.insert("updated_at".into(), Value::String(rfc3339(meta.updated_at)));
    out.insert("client_time".into(), opt_rfc3339(meta.client_time));
    Ok(out)
}

/// The CSV/JSON columns of [`record_json`] for a collection, in order.
pub fn record_columns(collection: Collection, extra: &[&'static str]) -> Vec<&'static str> {
    let mut cols = vec!["id", "grid_id"];
    cols.extend(collection.fields().iter().map(|s| s.name));
    cols.extend(["created_at", "updated_at", "client_time"]);
    cols.extend(extra);
    cols
}

/// Format validated grid ids as a SQL list of literals, e.g. `('a', 'b')`. Ids are parsed as
/// UUIDs and printed back, so nothing but hex digits and hyphens reaches the SQL text; an
/// empty list gives `(NULL)`, which matches nothing.
pub fn sql_id_list(ids: &[String]) -> String {
    let parsed: BTreeSet<String> = ids
        .iter()
        .filter_map(|s| s.parse::<uuid::Uuid>().ok())
        .map(|u| format!("'{u}'"))
        .collect();
    if parsed.is_empty() {
        "(NULL)".to_owned()
    } else {
        format!("({})", parsed.into_iter().collect::<Vec<_>>().join(", "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn id_lists_carry_only_uuids() {
        let a = "0193a2c4-0000-7000-8000-000000000001".to_owned();
        assert_eq!(
            sql_id_list(&[a.clone(), "x'); DROP TABLE users;--".into()]),
            format!("('{a}')")
        );
        assert_eq!(sql_id_list(&[]), "(NULL)");
    }

    #[test]
    fn ranges_and_enums() {
        assert_eq!(parse_range(None, None).unwrap(), (None, None));
        assert!(parse_range(Some("2026-01-02T00:00:00Z"), Some("2026-01-01T00:00:00Z")).is_err());
        assert!(parse_time("from", Some("yesterday")).is_err());
        assert!(check_enum("status", Some("open"), &["open"]).is_ok());
        assert!(check_enum("status", Some("x"), &["open"]).is_err());
    }

    #[test]
    fn scope_narrowing() {
        let g = GridId::new();
        let s = ApiScope::Grids(vec![g.to_string()]);
        assert_eq!(s.grids_with(Some(GridId::new())), Some(vec![]));
        assert_eq!(s.grids_with(Some(g)), Some(vec![g.to_string()]));
        assert_eq!(ApiScope::All.grids_with(None), None);
        assert_eq!(
            ApiScope::Department("消防".into()).grid_filter(),
            Some(vec![])
        );
    }
}
