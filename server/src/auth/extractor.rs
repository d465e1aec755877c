//! The bearer-token extractor [`AuthUser`] and the role guard [`require_role`].
//!
//! A handler that takes an `AuthUser` argument is authenticated: the extractor reads
//! `Authorization: Bearer <access token>`, verifies the JWT (`super::jwt`), then reads the
//! device, its session and its owner in one query (`db::devices::auth_state`). Every refusal
//! is a 401 in the error envelope with `WWW-Authenticate: Bearer` (added for every 401 by
//! `crate::error`), with these codes:
//!
//! | code | why |
//! |---|---|
//! | `missing_token` | no `Authorization` header, or not `Bearer` |
//! | `invalid_token` | bad signature, algorithm, claims, kind (`typ`), unknown device, or the device belongs to someone else |
//! | `token_expired` | the token's `exp` has passed (refresh it) |
//! | `device_revoked` | an administrator revoked the device |
//! | `session_ended` | the device logged out, or its refresh token was reused |
//! | `account_disabled` | the user was deactivated |
//!
//! Invariants:
//! - Role, area, department and active flag come from the database at each request, not
//!   from the token: a role change, a deactivation or a revocation takes effect at the next
//!   request, not when the token expires.
//! - The extractor only reads: no write on the request path (see `db::devices`).
//! - Grids are not loaded here (most endpoints do not need them); scope code reads
//!   `user_grids` itself, per request.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpRequest};
use sync_core::ids::{AreaId, DeviceId, UserId};
use sync_core::workflow::Role;

use super::jwt;
use crate::db::devices;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    /// The user.
    pub user_id: UserId,
    /// Their current role.
    pub role: Role,
    /// The device the token was issued to.
    pub device_id: DeviceId,
    /// Their area (supervisors: the root of their scope).
    pub area_id: Option<AreaId>,
    /// Their department (department users).
    pub department: Option<String>,
    /// Their login name.
    pub username: String,
}

impl AuthUser {
    /// Whether the caller has one of `roles`.
    pub fn has_role(&self, roles: &[Role]) -> bool {
        roles.contains(&self.role)
    }
}

/// 403 `forbidden` unless `user` has one of `roles`.
pub fn require_role(user: &AuthUser, roles: &[Role]) -> AppResult<()> {
    if user.has_role(roles) {
        Ok(())
    } else {
        Err(AppError::forbidden(format!(
            "the {} role may not do this",
            user.role.as_str()
        )))
    }
}

impl FromRequest for AuthUser {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<AuthUser, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("AppState missing from the app data"))
            })?;
            Ok(authenticate(&state, &token?).await?)
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer_token(req: &HttpRequest) -> AppResult<String> {
    let missing = || {
        AppError::unauthorized("an access token is required (Authorization: Bearer <token>)")
            .with_code("missing_token")
    };
    let value = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(missing());
    }
    Ok(token.to_owned())
}

/// Verify `token` and load the caller (see the module docs for the checks and codes).
pub async fn authenticate(state: &AppState, token: &str) -> AppResult<AuthUser> {
    let claims = jwt::verify_access_token(&state.jwt, token)?;
    let device_id = claims.dev.to_string();
    let auth = state
        .pool
        .run(move |conn| devices::auth_state(conn, &device_id))
        .await?
        .ok_or_else(jwt::invalid_token)?;
    if auth.user_id != claims.sub.to_string() {
        // Signed by us, yet naming a device of another user: never issued that way.
        return Err(jwt::invalid_token());
    }
    if auth.revoked_at.is_some() {
        return Err(device_revoked());
    }
    if !auth.session_live {
        return Err(
            AppError::unauthorized("the session has ended; log in again")
                .with_code("session_ended"),
        );
    }
    if !auth.active {
        return Err(account_disabled());
    }
    let role = auth
        .role
        .parse::<Role>()
        .map_err(|e| AppError::internal(anyhow::anyhow!("stored role: {e}")))?;
    let area_id = auth
        .area_id
        .as_deref()
        .map(str::parse::<AreaId>)
        .transpose()
        .map_err(|e| AppError::internal(anyhow::anyhow!("stored area id: {e}")))?;
    Ok(AuthUser {
        user_id: claims.sub,
        role,
        device_id: claims.dev,
        area_id,
        department: auth.department,
        username: auth.username,
    })
}

/// 401 `device_revoked`.
pub fn device_revoked() -> AppError {
    AppError::unauthorized("this device has been revoked").with_code("device_revoked")
}

/// 401 `account_disabled`.
pub fn account_disabled() -> AppError {
    AppError::unauthorized("this account is disabled").with_code("account_disabled")
}
