//! Hazards for supervisors and departments (docs/api.md, "Hazards"):
//!
//! | route | who |
//! |---|---|
//! | `GET /hazards?grid_id&status&category&severity&overdue&from&to&limit&cursor` | supervisor (subtree), admin, department (dispatched to it) |
//! | `GET /hazards/{id}` | same; 404 outside the caller's scope |
//! | `POST /hazards/{id}/actions` | supervisor, admin, department |
//!
//! Workers get 403 (their phone syncs their grids). Thin handlers over
//! [`crate::queries::hazards`]; the list answers CSV on `Accept: text/csv`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sync_core::collection::{HAZARD_CATEGORIES, HAZARD_SEVERITIES, HAZARD_STATUSES};
use sync_core::ids::{GridId, RecordId};
use sync_core::workflow::HazardAction;
use sync_core::{HlcClock, Timestamp};

use super::pagination::PageRequest;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{require_role, AuthUser};
use crate::csv::list_response;
use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::queries::hazards::{self as q, ActionRequest, HazardFilter};
use crate::queries::{check_enum, parse_range, ApiScope, TimeKey, HAZARD_ROLES};
use crate::routes::openapi::schemas::{ErrorEnvelope, HazardDetail, Page, TimelineAction};
use crate::state::AppState;

/// Register the hazard routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/hazards").route(web::get().to(list_hazards)))
        .service(web::resource("/hazards/{id}").route(web::get().to(get_hazard)))
        .service(web::resource("/hazards/{id}/actions").route(web::post().to(post_action)));
}

/// A copy of the server's clock to stamp with inside a transaction.
pub(crate) fn clock_copy(state: &AppState) -> AppResult<HlcClock> {
    state
        .hlc
        .lock()
        .map(|c| c.clone())
        .map_err(|_| AppError::internal(anyhow::anyhow!("the server clock lock is poisoned")))
}

/// Fold a used copy back into the server's clock (after the transaction committed).
pub(crate) fn fold_clock(state: &AppState, used: &HlcClock, now: Timestamp) {
    if let Ok(mut clock) = state.hlc.lock() {
        clock.observe(&used.last(), u64::try_from(now.millis()).unwrap_or(0));
    }
}

/// Query parameters of `GET /hazards`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HazardQuery {
    #[param(value_type = Option<String>)]
    grid_id: Option<GridId>,
    /// A hazard status.
    status: Option<String>,
    category: Option<String>,
    severity: Option<String>,
    /// `true`: only overdue hazards; `false`: only the others.
    overdue: Option<bool>,
    /// Reached the server at or after (RFC 3339).
    from: Option<String>,
    /// Reached the server before (RFC 3339).
    to: Option<String>,
    /// 1..=500, default 50.
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/hazards", tag = "hazards",
    params(HazardQuery),
    responses(
        (status = 200, description = "a page of hazards (`Hazard` items); CSV with `Accept: text/csv`", content((Page = "application/json"), (String = "text/csv"))),
        (status = 401, description = "no valid access token", body = ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = ErrorEnvelope),
        (status = 400, description = "malformed query or cursor", body = ErrorEnvelope),
        (status = 422, description = "invalid filter value", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list_hazards(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<HazardQuery>,
) -> AppResult<HttpResponse> {
    require_role(&user, HAZARD_ROLES)?;
    let query = query.into_inner();
    check_enum("status", query.status.as_deref(), HAZARD_STATUSES)?;
    check_enum("category", query.category.as_deref(), HAZARD_CATEGORIES)?;
    check_enum("severity", query.severity.as_deref(), HAZARD_SEVERITIES)?;
    let (from, to) = parse_range(query.from.as_deref(), query.to.as_deref())?;
    let page = PageRequest::new(query.limit, query.cursor)?;
    let after: Option<TimeKey> = page.after()?;
    let fetch = page.fetch_limit();
    let now = now_ms();
    let rows = state
        .pool
        .run(move |conn| {
            let scope = ApiScope::of(conn, &user)?;
            let mut f = HazardFilter::for_scope(&scope, now);
            if let Some(g) = query.grid_id {
                f.grids = match &scope {
                    ApiScope::Department(_) => Some(vec![g.to_string()]),
                    _ => scope.grids_with(Some(g)),
                };
            }
            f.status = query.status;
            f.category = query.category;
            f.severity = query.severity;
            f.overdue = query.overdue;
            f.from = from;
            f.to = to;
            q::list(conn, &f, after, fetch)
        })
        .await?;
    let page = page.finish(rows, |r| (r.created_at, r.id.clone()));
    let items = page
        .items
        .iter()
        .map(|r| q::hazard_json(r, now))
        .collect::<AppResult<Vec<_>>>()?;
    list_response(&req, "hazards", &q::columns(), items, page.next_cursor)
}

#[utoipa::path(
    get, path = "/api/v1/hazards/{id}", tag = "hazards",
    params(("id" = String, Path, description = "hazard id (UUID)")),
    responses(
        (status = 200, description = "the hazard with its timeline and attachments", body = HazardDetail),
        (status = 401, description = "no valid access token", body = ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = ErrorEnvelope),
        (status = 404, description = "no such hazard in the caller's scope", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn get_hazard(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<RecordId>,
) -> AppResult<HttpResponse> {
    require_role(&user, HAZARD_ROLES)?;
    let id = id.into_inner().to_string();
    let now = now_ms();
    let detail = state
        .pool
        .run(move |conn| {
            let scope = ApiScope::of(conn, &user)?;
            q::detail(conn, &scope, &id, now)
        })
        .await?;
    Ok(HttpResponse::Ok().json(detail))
}

/// Body of `POST /hazards/{id}/actions`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// A workflow action: `accept`, `reject`, `dispatch`, `sign_for`, `return`,
    /// `report_done`, `verify_pass`, `verify_fail`, `reopen`, `cancel`, `comment`, …
    #[schema(value_type = String, example = "dispatch")]
    action: HazardAction,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    department: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    due_at: Option<Timestamp>,
}

#[utoipa::path(
    post, path = "/api/v1/hazards/{id}/actions", tag = "hazards",
    params(("id" = String, Path, description = "hazard id (UUID)")),
    request_body = ActionBody,
    responses(
        (status = 201, description = "the recorded action with its `effect` (`applied`, or `no_effect` with a `reason`) and `hazard_status`", body = TimelineAction),
        (status = 401, description = "no valid access token", body = ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = ErrorEnvelope),
        (status = 404, description = "no such hazard in the caller's scope", body = ErrorEnvelope),
        (status = 422, description = "unknown action or invalid parameters", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn post_action(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<RecordId>,
    body: web::Json<ActionBody>,
) -> AppResult<HttpResponse> {
    require_role(&user, HAZARD_ROLES)?;
    let body = body.into_inner();
    let request = ActionRequest {
        action: body.action,
        note: body.note,
        department: body.department,
        due_at: body.due_at,
    };
    let hazard = id.into_inner();
    let mut clock = clock_copy(&state)?;
    let now = Timestamp::now();
    let (action, clock) = state
        .pool
        .write(move |conn| {
            let out = q::record_action(conn, &user, hazard, &request, now, &mut clock)?;
            Ok((out, clock))
        })
        .await?;
    fold_clock(&state, &clock, now);
    Ok(HttpResponse::Created().json(action))
}
