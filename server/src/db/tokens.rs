//! Refresh-token rows (`refresh_tokens`).
//!
//! Owns: storing, finding, rotating and revoking refresh tokens. The tokens themselves
//! (random bytes, hashing, lifetimes, the rotation protocol) are `crate::auth::session`'s.
//!
//! Invariants:
//! - Only the SHA-256 hash of a token is stored (`token_hash`, hex, unique): a database
//!   leak does not yield usable tokens.
//! - A device's session is its chain of tokens: each refresh marks the presented row
//!   `rotated_at` and inserts its successor with the same `family_id`. At most one row of a
//!   device is live (neither rotated nor revoked) at a time: logins and refreshes update
//!   the device row before touching its tokens, which serialises them per device.
//! - [`mark_rotated`] is a compare-and-set on `rotated_at IS NULL AND revoked_at IS NULL`:
//!   of two concurrent refreshes with one token, exactly one wins; the other is reuse.

use diesel::prelude::*;

use super::schema::refresh_tokens;
use super::DbConnection;
use crate::error::AppResult;

/// A stored refresh token (its hash).
#[derive(Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    /// UUID of the row.
    pub id: String,
    /// The device whose session this is.
    pub device_id: String,
    /// The device's owner.
    pub user_id: String,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// The login this chain of rotations started from.
    pub family_id: String,
    /// Issued at, ms since epoch.
    pub created_at: i64,
    /// Expires at, ms since epoch.
    pub expires_at: i64,
    /// When it was exchanged for its successor.
    pub rotated_at: Option<i64>,
    /// When it was revoked (logout, reuse, device revocation, new login).
    pub revoked_at: Option<i64>,
}

impl std::fmt::Debug for RefreshTokenRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshTokenRow")
            .field("id", &self.id)
            .field("device_id", &self.device_id)
            .field("family_id", &self.family_id)
            .field("expires_at", &self.expires_at)
            .field("rotated_at", &self.rotated_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// Store a new token row.
pub fn insert(conn: &mut DbConnection, row: &RefreshTokenRow) -> AppResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The row whose hash is `token_hash`.
pub fn find_by_hash(
    conn: &mut DbConnection,
    token_hash: &str,
) -> AppResult<Option<RefreshTokenRow>> {
    Ok(refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(RefreshTokenRow::as_select())
        .first(conn)
        .optional()?)
}

/// Mark the row rotated at `now_ms` if it is still live; returns whether this call did it
/// (false: someone rotated or revoked it first).
pub fn mark_rotated(conn: &mut DbConnection, id: &str, now_ms: i64) -> AppResult<bool> {
    let n = diesel::update(
        refresh_tokens::table
            .find(id)
            .filter(refresh_tokens::rotated_at.is_null())
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::rotated_at.eq(Some(now_ms)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Revoke every not yet revoked token of the device (its whole session); returns how many.
pub fn revoke_device(conn: &mut DbConnection, device_id: &str, now_ms: i64) -> AppResult<usize> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::device_id.eq(device_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(now_ms)))
    .execute(conn)?)
}

/// Delete the device's rows that expired before `before_ms` (housekeeping at login, so a
/// phone that logs in daily for years does not grow the table without bound; recent
/// rotated rows are kept because they are what detects reuse).
pub fn purge_expired(conn: &mut DbConnection, device_id: &str, before_ms: i64) -> AppResult<usize> {
    Ok(diesel::delete(
        refresh_tokens::table
            .filter(refresh_tokens::device_id.eq(device_id))
            .filter(refresh_tokens::expires_at.lt(before_ms)),
    )
    .execute(conn)?)
}

/// Revoke every not yet revoked token of every device of `user_id` (deactivation,
/// password reset); returns how many.
pub fn revoke_user(conn: &mut DbConnection, user_id: &str, now_ms: i64) -> AppResult<usize> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(now_ms)))
    .execute(conn)?)
}
