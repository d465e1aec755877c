//! The audit log: who changed what in the administration of the system.
//!
//! Owns: appending to `audit_log` ([`record`]) and reading it back ([`list_for_target`]).
//!
//! Invariants:
//! - Every administrative write (area create, user create/update, device revoke, …) calls
//!   [`record`] inside the same transaction as the change, so the log holds exactly the
//!   changes that committed.
//! - `details` is JSON chosen by the caller and never holds a password, password hash or
//!   token: callers pass field names or new values of non-secret fields only (a password
//!   change is recorded as `"password_changed": true`). [`record`] also drops any key named
//!   like a secret, as a second line of defence.
//! - Rows are never updated or deleted by the application.

use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use super::schema::audit_log;
use super::DbConnection;
use crate::error::AppResult;

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    /// UUID v7 (time-ordered).
    pub id: String,
    /// When, ms since epoch.
    pub at: i64,
    /// The acting user (`None` for the system, e.g. the CLI or the demo seed).
    pub actor_id: Option<String>,
    /// What happened, e.g. `area.create`, `user.update`, `device.revoke`.
    pub action: String,
    /// The kind of object, e.g. `area`, `user`, `device`.
    pub target_type: Option<String>,
    /// The object's id.
    pub target_id: Option<String>,
    /// JSON text with the non-secret particulars.
    pub details: Option<String>,
}

/// Keys never written into `details`, at any depth.
const SECRET_KEYS: &[&str] = &[
    "password",
    "password_hash",
    "access_token",
    "refresh_token",
    "token",
];

fn scrub(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !SECRET_KEYS.contains(&k.as_str()));
            map.values_mut().for_each(scrub);
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// Append an audit entry. Call it inside the transaction of the change it describes.
pub fn record(
    conn: &mut DbConnection,
    actor_id: Option<&str>,
    action: &str,
    target_type: &str,
    target_id: &str,
    details: Option<Value>,
) -> AppResult<AuditEntry> {
    let details = details.map(|mut d| {
        scrub(&mut d);
        d.to_string()
    });
    let entry = AuditEntry {
        id: uuid::Uuid::now_v7().to_string(),
        at: super::now_ms(),
        actor_id: actor_id.map(str::to_owned),
        action: action.to_owned(),
        target_type: Some(target_type.to_owned()),
        target_id: Some(target_id.to_owned()),
        details,
    };
    diesel::insert_into(audit_log::table)
        .values(&entry)
        .execute(conn)?;
    Ok(entry)
}

/// The entries about one object, oldest first.
pub fn list_for_target(
    conn: &mut DbConnection,
    target_type: &str,
    target_id: &str,
) -> AppResult<Vec<AuditEntry>> {
    Ok(audit_log::table
        .filter(audit_log::target_type.eq(target_type))
        .filter(audit_log::target_id.eq(target_id))
        .order((audit_log::at.asc(), audit_log::id.asc()))
        .select(AuditEntry::as_select())
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scrubs_secrets_at_any_depth() {
        let mut v = json!({"username": "a", "password": "x",
            "nested": [{"refresh_token": "t", "ok": 1}]});
        scrub(&mut v);
        assert_eq!(v, json!({"username": "a", "nested": [{"ok": 1}]}));
    }
}
