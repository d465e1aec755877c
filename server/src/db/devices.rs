//! Devices: one row per phone (or other client install) that logged in, owned by one user.
//!
//! Owns: registration at login, the per-request authentication lookup
//! ([`auth_state`]), revocation and the device list of the administration API.
//!
//! Invariants:
//! - A device belongs to exactly one user for its whole life (`user_id` never changes): its
//!   sync sequence numbers and outbox are that user's. Another user logging in with the id
//!   is refused by the login handler.
//! - `revoked_at` is set once and never cleared. A revoked device's access tokens are
//!   refused at the next request ([`auth_state`] is read on every authenticated request)
//!   and its refresh tokens are revoked in the same transaction as the device.
//! - `last_seen_at` moves at login and at each token refresh (every ~15 minutes while the
//!   app is in use), never on ordinary requests: authenticated reads stay read-only.
//!   `last_sync_at`, `last_applied_seq`, `pending_count` and `app_version` belong to the
//!   sync endpoint.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::{devices, refresh_tokens, users};
use super::DbConnection;
use crate::error::AppResult;

/// A stored device.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = devices)]
pub struct Device {
    /// UUID (also the node of the phone's hybrid logical clock).
    pub id: String,
    /// Its owner.
    pub user_id: String,
    /// Name given by the phone at login (e.g. "Redmi Note 12").
    pub name: Option<String>,
    /// First login, ms since epoch.
    pub created_at: i64,
    /// Last login or token refresh, ms since epoch.
    pub last_seen_at: Option<i64>,
    /// Last sync, ms since epoch (set by the sync endpoint).
    pub last_sync_at: Option<i64>,
    /// Highest processed push `seq` (set by the sync endpoint).
    pub last_applied_seq: i64,
    /// Outbox size the phone reported at its last sync.
    pub pending_count: Option<i64>,
    /// App version the phone reported.
    pub app_version: Option<String>,
    /// When it was revoked, ms since epoch.
    pub revoked_at: Option<i64>,
}

/// What the bearer extractor needs to know about a device and its owner, read in one query.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceAuth {
    /// The device's owner.
    pub user_id: String,
    /// When the device was revoked.
    pub revoked_at: Option<i64>,
    /// Whether the device has a live session: a refresh token neither rotated nor revoked.
    /// Logout and refresh-token reuse end it; access tokens die with it.
    pub session_live: bool,
    /// The owner's username.
    pub username: String,
    /// The owner's stored role (current, not the one in the token).
    pub role: String,
    /// The owner's area.
    pub area_id: Option<String>,
    /// The owner's department.
    pub department: Option<String>,
    /// Whether the owner may log in.
    pub active: bool,
}

type AuthRow = (
    String,
    Option<i64>,
    bool,
    String,
    String,
    Option<String>,
    Option<String>,
    bool,
);

/// The authentication state of `device_id` (device, session and owner), or `None` when no
/// such device exists. One indexed query: devices ⋈ users by primary keys, plus an
/// `EXISTS` on the device's refresh tokens (indexed by device).
pub fn auth_state(conn: &mut DbConnection, device_id: &str) -> AppResult<Option<DeviceAuth>> {
    let live = refresh_tokens::table
        .filter(refresh_tokens::device_id.eq(device_id))
        .filter(refresh_tokens::revoked_at.is_null())
        .filter(refresh_tokens::rotated_at.is_null());
    let row: Option<AuthRow> = devices::table
        .inner_join(users::table)
        .filter(devices::id.eq(device_id))
        .select((
            devices::user_id,
            devices::revoked_at,
            diesel::dsl::exists(live),
            users::username,
            users::role,
            users::area_id,
            users::department,
            users::active,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(
        |(user_id, revoked_at, session_live, username, role, area_id, department, active)| {
            DeviceAuth {
                user_id,
                revoked_at,
                session_live,
                username,
                role,
                area_id,
                department,
                active,
            }
        },
    ))
}

/// The device with this id.
pub fn find(conn: &mut DbConnection, id: &str) -> AppResult<Option<Device>> {
    Ok(devices::table
        .find(id)
        .select(Device::as_select())
        .first(conn)
        .optional()?)
}

/// Register a new device for `user_id` (at its first login).
pub fn insert(
    conn: &mut DbConnection,
    id: &str,
    user_id: &str,
    name: Option<&str>,
    now_ms: i64,
) -> AppResult<Device> {
    let device = Device {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        name: name.map(str::to_owned),
        created_at: now_ms,
        last_seen_at: Some(now_ms),
        last_sync_at: None,
        last_applied_seq: 0,
        pending_count: None,
        app_version: None,
        revoked_at: None,
    };
    diesel::insert_into(devices::table)
        .values(&device)
        .execute(conn)?;
    Ok(device)
}

/// Note a login or refresh: `last_seen_at = now`, and the name when the phone sent one.
pub fn touch(conn: &mut DbConnection, id: &str, name: Option<&str>, now_ms: i64) -> AppResult<()> {
    match name {
        Some(name) => diesel::update(devices::table.find(id))
            .set((
                devices::last_seen_at.eq(Some(now_ms)),
                devices::name.eq(Some(name)),
            ))
            .execute(conn)?,
        None => diesel::update(devices::table.find(id))
            .set(devices::last_seen_at.eq(Some(now_ms)))
            .execute(conn)?,
    };
    Ok(())
}

/// Mark the device revoked at `now_ms` unless it already is; returns whether this call
/// revoked it. The caller also revokes its refresh tokens (`super::tokens::revoke_device`)
/// in the same transaction.
pub fn mark_revoked(conn: &mut DbConnection, id: &str, now_ms: i64) -> AppResult<bool> {
    let n = diesel::update(
        devices::table
            .find(id)
            .filter(devices::revoked_at.is_null()),
    )
    .set(devices::revoked_at.eq(Some(now_ms)))
    .execute(conn)?;
    Ok(n > 0)
}

/// A device as listed by the administration API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceView {
    /// Device id.
    pub id: String,
    /// Owner id.
    pub user_id: String,
    /// Owner's username.
    pub username: String,
    /// Name the phone gave.
    pub name: Option<String>,
    /// Last sync (RFC 3339) or null.
    pub last_sync_at: Option<String>,
    /// Outbox size reported at the last sync.
    pub pending_count: Option<i64>,
    /// App version reported.
    pub app_version: Option<String>,
    /// Whether it is revoked.
    pub revoked: bool,
    /// When it was revoked (RFC 3339) or null.
    pub revoked_at: Option<String>,
    /// First login (RFC 3339).
    pub created_at: String,
    /// Last login or token refresh (RFC 3339) or null.
    pub last_seen_at: Option<String>,
}

impl DeviceView {
    fn from_parts(device: Device, username: String) -> DeviceView {
        DeviceView {
            revoked: device.revoked_at.is_some(),
            revoked_at: device.revoked_at.map(rfc3339),
            last_sync_at: device.last_sync_at.map(rfc3339),
            created_at: rfc3339(device.created_at),
            last_seen_at: device.last_seen_at.map(rfc3339),
            id: device.id,
            user_id: device.user_id,
            username,
            name: device.name,
            pending_count: device.pending_count,
            app_version: device.app_version,
        }
    }
}

/// One device for the administration API.
pub fn view(conn: &mut DbConnection, id: &str) -> AppResult<Option<DeviceView>> {
    let row: Option<(Device, String)> = devices::table
        .inner_join(users::table)
        .filter(devices::id.eq(id))
        .select((Device::as_select(), users::username))
        .first(conn)
        .optional()?;
    Ok(row.map(|(d, u)| DeviceView::from_parts(d, u)))
}

/// A page of devices ordered by id, after the id `after`, at most `limit`. With
/// `owners = Some(ids)` only devices of those users (a supervisor's scope).
pub fn list(
    conn: &mut DbConnection,
    owners: Option<&[String]>,
    after: Option<&str>,
    limit: i64,
) -> AppResult<Vec<DeviceView>> {
    let mut query = devices::table
        .inner_join(users::table)
        .select((Device::as_select(), users::username))
        .order(devices::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(devices::id.gt(after.to_owned()));
    }
    if let Some(owners) = owners {
        query = query.filter(devices::user_id.eq_any(owners.to_vec()));
    }
    let rows: Vec<(Device, String)> = query.load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(d, u)| DeviceView::from_parts(d, u))
        .collect())
}

/// ms since epoch as the contract's RFC 3339 UTC form with milliseconds.
fn rfc3339(ms: i64) -> String {
    sync_core::Timestamp(ms).to_rfc3339()
}
