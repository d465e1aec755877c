//! `POST /api/v1/sync/push` and `GET /api/v1/sync/pull`: thin HTTP handlers over
//! [`crate::sync`]. Push runs in one write transaction; pull reads without one (each page is
//! consistent per grid by construction, see `sync::pull`).

use std::time::Instant;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use sync_core::ingest::Caller;
use sync_core::wire::{PushRequest, ResultStatus};
use sync_core::{HlcClock, Timestamp};

use crate::auth::AuthUser;
use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::extractors::json_config;
use crate::scope::{scope_of, GridScope};
use crate::state::AppState;
use crate::sync::pull::{parse_cursor, pull_page, DEFAULT_LIMIT};
use crate::sync::push::{apply_push, check_request};
use crate::sync::store::record_device_sync;

/// A push of 1000 mutations with long texts stays well below this.
const PUSH_BODY_LIMIT: usize = 8 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/sync/push")
            .app_data(json_config(PUSH_BODY_LIMIT))
            .route(web::post().to(push)),
    );
    cfg.service(web::resource("/sync/pull").route(web::get().to(pull)));
}

fn caller(user: &AuthUser) -> Caller {
    Caller {
        user: user.user_id,
        role: user.role,
        device: user.device_id,
        department: user.department.clone(),
    }
}

fn user_scope(conn: &mut crate::db::DbConnection, user: &AuthUser) -> AppResult<GridScope> {
    let area = user.area_id.map(|a| a.to_string());
    scope_of(
        conn,
        &user.user_id.to_string(),
        user.role,
        area.as_deref(),
        user.department.as_deref(),
    )
}

fn clock_copy(state: &AppState) -> AppResult<HlcClock> {
    state
        .hlc
        .lock()
        .map(|c| c.clone())
        .map_err(|_| AppError::internal(anyhow::anyhow!("the server clock lock is poisoned")))
}

fn fold_clock(state: &AppState, used: &HlcClock, now: Timestamp) {
    if let Ok(mut clock) = state.hlc.lock() {
        clock.observe(&used.last(), u64::try_from(now.millis()).unwrap_or(0));
    }
}

#[utoipa::path(
    post, path = "/api/v1/sync/push", tag = "sync",
    request_body = crate::routes::openapi::schemas::PushRequest,
    responses(
        (status = 200, description = "a verdict per mutation", body = crate::routes::openapi::schemas::PushResponse),
        (status = 401, description = "no valid access token", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 409, description = "seq gap: the batch is refused whole", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 422, description = "invalid values", body = crate::routes::openapi::schemas::ErrorEnvelope)
    ),
    security(("bearer" = []))
)]
async fn push(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<PushRequest>,
) -> AppResult<HttpResponse> {
    let started = Instant::now();
    let caller = caller(&user);
    let request = body.into_inner();
    check_request(&caller, &request)?;
    let mut clock = clock_copy(&state)?;
    let now = Timestamp::now();
    let (response, clock) = state
        .pool
        .write(move |conn| {
            let scope = user_scope(conn, &user)?;
            let response = apply_push(conn, &caller, &scope, &request, now, &mut clock)?;
            Ok((response, clock))
        })
        .await?;
    fold_clock(&state, &clock, now);

    let m = &state.metrics;
    for r in &response.results {
        let label = match r.status {
            ResultStatus::Applied => "applied",
            ResultStatus::Duplicate => "duplicate",
            ResultStatus::Rejected => "rejected",
        };
        m.sync_mutations.with_label_values(&[label]).inc();
        m.sync_conflicts.inc_by(r.conflicts.len() as u64);
    }
    m.sync_push_duration
        .observe(started.elapsed().as_secs_f64());
    Ok(HttpResponse::Ok().json(response))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PullQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

#[utoipa::path(
    get, path = "/api/v1/sync/pull", tag = "sync",
    params(("cursor" = Option<String>, Query, description = "the previous pull's cursor; absent: from the beginning"), ("limit" = Option<u32>, Query, description = "changes per page")),
    responses(
        (status = 200, description = "changes in the caller's scope after the cursor", body = crate::routes::openapi::schemas::PullResponse),
        (status = 401, description = "no valid access token", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 400, description = "invalid cursor", body = crate::routes::openapi::schemas::ErrorEnvelope)
    ),
    security(("bearer" = []))
)]
async fn pull(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<PullQuery>,
) -> AppResult<HttpResponse> {
    let started = Instant::now();
    let PullQuery { cursor, limit } = query.into_inner();
    let cursor = parse_cursor(cursor.as_deref())?;
    let now = Timestamp::now();
    let server_hlc = {
        let mut clock = state.hlc.lock().map_err(|_| {
            AppError::internal(anyhow::anyhow!("the server clock lock is poisoned"))
        })?;
        clock.tick(u64::try_from(now.millis()).unwrap_or(0))
    };
    let device = user.device_id.to_string();
    let page = state
        .pool
        .run(move |conn| {
            let scope = user_scope(conn, &user)?;
            let grids = scope.grid_list(conn)?;
            let page = pull_page(
                conn,
                &grids,
                cursor,
                limit.unwrap_or(DEFAULT_LIMIT),
                now,
                server_hlc,
            )?;
            record_device_sync(conn, &device, now_ms(), None, None)?;
            Ok(page)
        })
        .await?;
    state
        .metrics
        .sync_pull_changes
        .inc_by(page.changes.len() as u64);
    state
        .metrics
        .sync_pull_duration
        .observe(started.elapsed().as_secs_f64());
    Ok(HttpResponse::Ok().json(page))
}
