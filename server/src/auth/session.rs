//! Device sessions: the refresh-token protocol on top of `db::tokens`.
//!
//! A session is what a login opens for one device: a chain of refresh tokens, each
//! exchanged exactly once for an access token and its successor.
//!
//! Invariants:
//! - Refresh tokens are 32 random bytes (OS RNG), base64url without padding; only their
//!   SHA-256 is stored. They are opaque to clients and never JWTs, so one can never pass as
//!   an access token.
//! - They live [`REFRESH_TOKEN_TTL_MS`] (30 days) from issue. A worker offline for longer
//!   logs in again; nothing unsent is lost because the outbox lives on the phone, not in the
//!   session.
//! - Every refresh rotates: the presented token is marked rotated and its successor stored,
//!   in one transaction. Presenting a rotated token again means it was copied (or a
//!   response was lost and the phone retried): the device's whole session is revoked,
//!   `refresh_token_reused`. That revocation must be committed, so [`refresh`] returns
//!   refusals as the inner `Err` of an `Ok` (the transaction commits) rather than as an
//!   error that would roll it back.
//! - A login opens a new session and revokes the device's previous one; logout and device
//!   revocation revoke it. Access tokens die with their session (checked per request by
//!   the extractor), not only at `exp`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sync_core::ids::{DeviceId, UserId};
use sync_core::workflow::Role;

use super::extractor::{account_disabled, device_revoked};
use super::jwt::{self, IssuedAccessToken};
use super::JwtKeys;
use crate::db::tokens::{self, RefreshTokenRow};
use crate::db::{devices, users, DbConnection};
use crate::error::{AppError, AppResult};

/// Lifetime of a refresh token: 30 days.
pub const REFRESH_TOKEN_TTL_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// Longest string accepted as a refresh token (a real one is 43 characters); anything
/// longer is refused before hashing.
pub const MAX_REFRESH_TOKEN_CHARS: usize = 256;

/// The tokens handed to a device at login or refresh.
#[derive(Clone)]
pub struct SessionTokens {
    /// The access token.
    pub access: IssuedAccessToken,
    /// The refresh token in clear (only ever sent to the client, never stored).
    pub refresh_token: String,
    /// When the refresh token expires, ms since epoch.
    pub refresh_expires_at: i64,
    /// The device.
    pub device_id: DeviceId,
    /// The user.
    pub user_id: UserId,
}

impl std::fmt::Debug for SessionTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTokens")
            .field("device_id", &self.device_id)
            .field("user_id", &self.user_id)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish_non_exhaustive()
    }
}

/// A new random refresh token and its hash.
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

/// The stored form of a refresh token: hex SHA-256. (A fast hash is right here: the token
/// has 256 bits of entropy, so there is nothing to brute-force.)
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Start a new session for `user` on `device` (which exists and belongs to them): revoke
/// the device's previous session, drop its long-expired rows, store a new refresh token of
/// a new family and sign an access token. Run inside the login's write transaction.
pub fn start(
    conn: &mut DbConnection,
    keys: &JwtKeys,
    user: UserId,
    role: Role,
    device: DeviceId,
    now_ms: i64,
) -> AppResult<SessionTokens> {
    let device_key = device.to_string();
    tokens::revoke_device(conn, &device_key, now_ms)?;
    tokens::purge_expired(conn, &device_key, now_ms - REFRESH_TOKEN_TTL_MS)?;
    issue(
        conn,
        keys,
        user,
        role,
        device,
        uuid::Uuid::now_v7().to_string(),
        now_ms,
    )
}

fn issue(
    conn: &mut DbConnection,
    keys: &JwtKeys,
    user: UserId,
    role: Role,
    device: DeviceId,
    family_id: String,
    now_ms: i64,
) -> AppResult<SessionTokens> {
    let (refresh_token, token_hash) = new_refresh_token();
    let expires_at = now_ms + REFRESH_TOKEN_TTL_MS;
    tokens::insert(
        conn,
        &RefreshTokenRow {
            id: uuid::Uuid::now_v7().to_string(),
            device_id: device.to_string(),
            user_id: user.to_string(),
            token_hash,
            family_id,
            created_at: now_ms,
            expires_at,
            rotated_at: None,
            revoked_at: None,
        },
    )?;
    let access = jwt::issue_access_token(keys, user, device, role)?;
    Ok(SessionTokens {
        access,
        refresh_token,
        refresh_expires_at: expires_at,
        device_id: device,
        user_id: user,
    })
}

/// Exchange `presented` for a new access token and refresh token (rotation). Run inside a
/// write transaction. The outer `Err` is a failure (rolled back); the inner `Err` is a
/// refusal to answer with, whose effects (a revoked session on reuse) must be committed:
///
/// - unknown token: 401 `invalid_refresh_token`;
/// - already rotated (reuse, or a concurrent refresh that lost the race): the device's
///   whole session is revoked, 401 `refresh_token_reused`;
/// - revoked (logout, reuse, new login, device revoked): 401 `session_ended`, or
///   `device_revoked` when the device is;
/// - expired: 401 `refresh_token_expired`;
/// - deactivated user: 401 `account_disabled`.
pub fn refresh(
    conn: &mut DbConnection,
    keys: &JwtKeys,
    presented: &str,
    now_ms: i64,
) -> AppResult<Result<SessionTokens, AppError>> {
    let invalid = || {
        AppError::unauthorized("the refresh token is not valid").with_code("invalid_refresh_token")
    };
    if presented.is_empty() || presented.chars().count() > MAX_REFRESH_TOKEN_CHARS {
        return Ok(Err(invalid()));
    }
    let Some(row) = tokens::find_by_hash(conn, &hash_refresh_token(presented))? else {
        return Ok(Err(invalid()));
    };
    let reused = || {
        AppError::unauthorized(
            "this refresh token was already used; the device's session has been ended",
        )
        .with_code("refresh_token_reused")
    };
    if row.rotated_at.is_some() {
        let n = tokens::revoke_device(conn, &row.device_id, now_ms)?;
        tracing::warn!(device_id = %row.device_id, revoked = n, "refresh token reused; session revoked");
        return Ok(Err(reused()));
    }
    let Some(device) = devices::find(conn, &row.device_id)? else {
        return Ok(Err(invalid()));
    };
    if device.revoked_at.is_some() {
        return Ok(Err(device_revoked()));
    }
    if row.revoked_at.is_some() {
        return Ok(Err(AppError::unauthorized(
            "the session has ended; log in again",
        )
        .with_code("session_ended")));
    }
    if row.expires_at <= now_ms {
        return Ok(Err(AppError::unauthorized(
            "the refresh token has expired; log in again (unsent changes stay on the phone)",
        )
        .with_code("refresh_token_expired")));
    }
    let Some(user) = users::find_by_id(conn, &row.user_id)? else {
        return Ok(Err(invalid()));
    };
    if !user.active {
        return Ok(Err(account_disabled()));
    }
    // Touch the device first: on PostgreSQL the update locks its row until commit, so a
    // refresh and a login (which also updates the device row first) of one device never
    // interleave, and the device keeps at most one live refresh token.
    devices::touch(conn, &device.id, None, now_ms)?;
    if !tokens::mark_rotated(conn, &row.id, now_ms)? {
        // Someone changed the row since we read it (PostgreSQL re-checks the row after
        // waiting for its lock). Read it again to tell why: rotated means the same token
        // was used twice (reuse); revoked means a concurrent login or logout ended the
        // session, which is no reason to suspect theft.
        let now_row = tokens::find_by_hash(conn, &row.token_hash)?;
        if now_row.is_some_and(|r| r.rotated_at.is_some()) {
            tokens::revoke_device(conn, &row.device_id, now_ms)?;
            return Ok(Err(reused()));
        }
        return Ok(Err(AppError::unauthorized(
            "the session has ended; log in again",
        )
        .with_code("session_ended")));
    }
    let role = user
        .role
        .parse::<Role>()
        .map_err(|e| AppError::internal(anyhow::anyhow!("stored role: {e}")))?;
    let user_id = parse_id::<UserId>(&user.id)?;
    let device_id = parse_id::<DeviceId>(&device.id)?;
    Ok(Ok(issue(
        conn,
        keys,
        user_id,
        role,
        device_id,
        row.family_id,
        now_ms,
    )?))
}

/// End the device's session (logout): revoke its refresh tokens. Its access tokens are
/// refused from the next request on.
pub fn end(conn: &mut DbConnection, device: DeviceId, now_ms: i64) -> AppResult<usize> {
    tokens::revoke_device(conn, &device.to_string(), now_ms)
}

/// Parse a stored id (a malformed one is a server bug, not the client's fault).
pub fn parse_id<T: std::str::FromStr>(s: &str) -> AppResult<T>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>()
        .map_err(|e| AppError::internal(anyhow::anyhow!("stored id {s:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let (a, ha) = new_refresh_token();
        let (b, hb) = new_refresh_token();
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert_eq!(a.len(), 43);
        assert!(!a.contains('.'), "not a JWT");
        assert_eq!(ha, hash_refresh_token(&a));
        assert_eq!(ha.len(), 64);
    }
}
