//! `POST /api/v1/auth/login`, `POST /api/v1/auth/refresh`, `POST /api/v1/auth/logout`
//! (contract, "Auth"; docs/api.md, "Auth").
//!
//! Invariants:
//! - Wrong username and wrong password are indistinguishable: same status and code (401
//!   `invalid_credentials`), and the same work (an argon2 verification against a dummy
//!   hash for unknown users).
//! - Rate limiting is checked before any password work: [`USER_MAX_FAILURES`] failures per
//!   username or [`IP_MAX_FAILURES`] per client address within [`FAILURE_WINDOW_MS`] answer
//!   429 `rate_limited` with `Retry-After` until the window ends. Counters live in the
//!   database (`db::rate_limit`). A successful login clears the username's counter (not the
//!   address's: one good password must not reset a guessing campaign from that address).
//! - The client address is the TCP peer address. X-Forwarded-For is not trusted (anyone
//!   can send it); behind a reverse proxy every client shares the proxy's address, so the
//!   per-address limit then acts as a global one — raise it or rate-limit at the proxy.
//! - Passwords and tokens are never logged; argon2 runs on the blocking pool.
//! - A device id belongs to one user forever (its sync `seq` counter and outbox are that
//!   user's): logging in with another user's device id is 409 `device_in_use`; with a
//!   revoked device id 401 `device_revoked`. A new id is issued when none is given; an
//!   unknown id given by the phone (it may have made one offline) is registered as is.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use sync_core::ids::{DeviceId, UserId};
use sync_core::workflow::Role;

use crate::auth::extractor::{account_disabled, device_revoked};
use crate::auth::session::{self, parse_id, SessionTokens};
use crate::auth::{password, AuthUser};
use crate::db::users::{self, User, MAX_USERNAME_CHARS};
use crate::db::{devices, now_ms, rate_limit};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Failed logins per username within the window before 429.
pub const USER_MAX_FAILURES: i64 = 5;
/// Failed logins per client address within the window before 429.
pub const IP_MAX_FAILURES: i64 = 20;
/// The rate-limit window: 15 minutes from the first failure.
pub const FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Longest accepted device name, in characters.
pub const MAX_DEVICE_NAME_CHARS: usize = 128;

/// Register the auth routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/login").route(web::post().to(login)))
        .service(web::resource("/auth/refresh").route(web::post().to(refresh)))
        .service(web::resource("/auth/logout").route(web::post().to(logout)));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: String,
    password: String,
    #[serde(default)]
    device_id: Option<DeviceId>,
    #[serde(default)]
    device_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

fn invalid_credentials() -> AppError {
    AppError::unauthorized("wrong username or password").with_code("invalid_credentials")
}

/// The rate-limit keys of a login attempt. A username longer than any valid one gets no
/// key of its own (it cannot exist, and keys stay bounded in size).
fn limit_keys(username: &str, ip: &str) -> (Option<String>, String) {
    let user_key =
        (username.chars().count() <= MAX_USERNAME_CHARS).then(|| format!("user:{username}"));
    (user_key, format!("ip:{ip}"))
}

/// Seconds until the first exhausted window among `keys` ends, if any is exhausted.
fn retry_after(
    conn: &mut crate::db::DbConnection,
    keys: &[(&str, i64)],
    now: i64,
) -> AppResult<Option<u64>> {
    let mut wait: Option<i64> = None;
    for (key, max) in keys {
        if rate_limit::current_failures(conn, key, now, FAILURE_WINDOW_MS)? >= *max {
            if let Some(end) = rate_limit::window_end(conn, key, now, FAILURE_WINDOW_MS)? {
                let ms = end - now;
                wait = Some(wait.map_or(ms, |w| w.max(ms)));
            }
        }
    }
    // Round up: a client that waits exactly Retry-After seconds must find the window over.
    Ok(wait.map(|ms| u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1)))
}

#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "auth",
    request_body = crate::routes::openapi::schemas::LoginRequest,
    responses(
        (status = 200, description = "tokens and the user", body = crate::routes::openapi::schemas::LoginResponse),
        (status = 401, description = "wrong username or password", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 422, description = "invalid values", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 429, description = "too many failed logins", body = crate::routes::openapi::schemas::ErrorEnvelope)
    )
)]
async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginBody>,
) -> AppResult<HttpResponse> {
    let LoginBody {
        username,
        password,
        device_id,
        device_name,
    } = body.into_inner();
    let device_name = device_name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if let Some(name) = &device_name {
        if name.chars().count() > MAX_DEVICE_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(AppError::invalid(format!(
                "device_name must be at most {MAX_DEVICE_NAME_CHARS} characters without control characters"
            )));
        }
    }
    let ip = req
        .peer_addr()
        .map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
    let (user_key, ip_key) = limit_keys(&username, &ip);

    // 1. Rate limit, before any password work.
    let now = now_ms();
    {
        let (user_key, ip_key) = (user_key.clone(), ip_key.clone());
        let wait = state
            .pool
            .run(move |conn| {
                let mut keys = vec![(ip_key.as_str(), IP_MAX_FAILURES)];
                if let Some(k) = &user_key {
                    keys.push((k.as_str(), USER_MAX_FAILURES));
                }
                retry_after(conn, &keys, now)
            })
            .await?;
        if let Some(secs) = wait {
            return Err(AppError::rate_limited(secs).with_details(json!({"retry_after": secs})));
        }
    }

    // 2. Look the user up and verify the password (same cost whether or not they exist).
    let lookup = username.clone();
    let user: Option<User> = state
        .pool
        .run(move |conn| users::find_by_username(conn, &lookup))
        .await?;
    let (user, ok) = web::block(move || -> AppResult<(Option<User>, bool)> {
        match user {
            Some(u) => {
                let ok = password::verify_password(&password, &u.password_hash)?;
                Ok((Some(u), ok))
            }
            None => {
                password::verify_dummy(&password);
                Ok((None, false))
            }
        }
    })
    .await??;

    let user = match (user, ok) {
        (Some(user), true) => user,
        _ => {
            let (user_key, ip_key) = (user_key.clone(), ip_key.clone());
            state
                .pool
                .write(move |conn| {
                    if let Some(k) = &user_key {
                        rate_limit::register_failure(conn, k, now, FAILURE_WINDOW_MS)?;
                    }
                    rate_limit::register_failure(conn, &ip_key, now, FAILURE_WINDOW_MS)?;
                    Ok(())
                })
                .await?;
            tracing::info!(ip = %ip, "login failed");
            return Err(invalid_credentials());
        }
    };
    if !user.active {
        return Err(account_disabled());
    }

    // 3. Register the device and open its session.
    let keys = state.jwt.clone();
    let (tokens, grid_ids, user) = state
        .pool
        .write(move |conn| {
            let now = now_ms();
            if let Some(k) = &user_key {
                rate_limit::clear(conn, k)?;
            }
            let device = match device_id {
                Some(id) => {
                    let key = id.to_string();
                    match devices::find(conn, &key)? {
                        Some(d) if d.user_id != user.id => {
                            return Err(AppError::conflict(
                                "this device id belongs to another user; log in without a device_id to get a new one",
                            )
                            .with_code("device_in_use"));
                        }
                        Some(d) if d.revoked_at.is_some() => return Err(device_revoked()),
                        Some(_) => devices::touch(conn, &key, device_name.as_deref(), now)?,
                        None => {
                            devices::insert(conn, &key, &user.id, device_name.as_deref(), now)?;
                        }
                    }
                    id
                }
                None => {
                    let id = DeviceId::new();
                    devices::insert(conn, &id.to_string(), &user.id, device_name.as_deref(), now)?;
                    id
                }
            };
            let role = user
                .role
                .parse::<Role>()
                .map_err(|e| AppError::internal(anyhow::anyhow!("stored role: {e}")))?;
            let user_id: UserId = parse_id(&user.id)?;
            let tokens = session::start(conn, &keys, user_id, role, device, now)?;
            let grid_ids = users::grid_ids(conn, &user.id)?;
            Ok((tokens, grid_ids, user))
        })
        .await?;
    tracing::info!(user_id = %user.id, device_id = %tokens.device_id, "login");
    Ok(HttpResponse::Ok().json(token_response(&tokens, Some((&user, &grid_ids)))))
}

/// The body of a login or refresh answer.
fn token_response(tokens: &SessionTokens, user: Option<(&User, &[String])>) -> serde_json::Value {
    let mut body = json!({
        "access_token": tokens.access.token,
        "token_type": "Bearer",
        "expires_in": tokens.access.expires_in,
        "refresh_token": tokens.refresh_token,
        "device_id": tokens.device_id,
    });
    if let (Some((user, grid_ids)), Some(obj)) = (user, body.as_object_mut()) {
        obj.insert(
            "user".to_owned(),
            json!({
                "id": user.id,
                "username": user.username,
                "display_name": user.display_name,
                "role": user.role,
                "grid_ids": grid_ids,
                "area_id": user.area_id,
                "department": user.department,
            }),
        );
    }
    body
}

#[utoipa::path(
    post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = crate::routes::openapi::schemas::RefreshRequest,
    responses(
        (status = 200, description = "a new access token and a new refresh token (rotation)", body = crate::routes::openapi::schemas::LoginResponse),
        (status = 401, description = "invalid, expired or reused refresh token", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 422, description = "invalid values", body = crate::routes::openapi::schemas::ErrorEnvelope)
    )
)]
async fn refresh(
    state: web::Data<AppState>,
    body: web::Json<RefreshBody>,
) -> AppResult<HttpResponse> {
    let presented = body.into_inner().refresh_token;
    let keys = state.jwt.clone();
    let outcome = state
        .pool
        .write(move |conn| session::refresh(conn, &keys, &presented, now_ms()))
        .await?;
    let tokens = outcome?;
    Ok(HttpResponse::Ok().json(token_response(&tokens, None)))
}

#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "the device's session ended"),
        (status = 401, description = "no valid access token", body = crate::routes::openapi::schemas::ErrorEnvelope)
    ),
    security(("bearer" = []))
)]
async fn logout(state: web::Data<AppState>, user: AuthUser) -> AppResult<HttpResponse> {
    let device = user.device_id;
    state
        .pool
        .write(move |conn| session::end(conn, device, now_ms()))
        .await?;
    tracing::info!(user_id = %user.user_id, device_id = %device, "logout");
    Ok(HttpResponse::NoContent().finish())
}
