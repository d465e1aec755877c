//! Review of sync outcomes (docs/api.md, "Conflicts and rejections"):
//!
//! | route | who |
//! |---|---|
//! | `GET /conflicts?status=open\|resolved&grid_id&collection&record_id&limit&cursor` | supervisor (subtree), admin |
//! | `POST /conflicts/{id}/resolve` `{"keep": "current"\|"incoming"}` | supervisor (subtree), admin |
//! | `GET /rejections?grid_id&user_id&device_id&code&from&to&limit&cursor` | supervisor (subtree), admin |
//!
//! Other roles get 403. Thin handlers over [`crate::queries::conflicts`]; lists answer CSV
//! on `Accept: text/csv`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sync_core::ids::{ConflictId, DeviceId, GridId, UserId};
use sync_core::Timestamp;

use super::hazards::{clock_copy, fold_clock};
use super::pagination::PageRequest;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{require_role, AuthUser};
use crate::csv::list_response;
use crate::error::AppResult;
use crate::queries::conflicts::{self as q, ConflictFilter, Keep, RejectionFilter};
use crate::queries::{check_enum, parse_range, ApiScope, TimeKey, SUPERVISING};
use crate::routes::openapi::schemas::{Conflict, ErrorEnvelope, Page};
use crate::state::AppState;

/// Register the review routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/conflicts").route(web::get().to(list_conflicts)))
        .service(web::resource("/conflicts/{id}/resolve").route(web::post().to(resolve)))
        .service(web::resource("/rejections").route(web::get().to(list_rejections)));
}

/// Query parameters of `GET /conflicts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConflictQuery {
    /// `open` or `resolved`.
    status: Option<String>,
    #[param(value_type = Option<String>)]
    grid_id: Option<GridId>,
    collection: Option<String>,
    record_id: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/conflicts", tag = "review",
    params(ConflictQuery),
    responses(
        (status = 200, description = "a page of conflicts (`Conflict` items); CSV with `Accept: text/csv`", content((Page = "application/json"), (String = "text/csv"))),
        (status = 401, description = "no valid access token", body = ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = ErrorEnvelope),
        (status = 400, description = "malformed query or cursor", body = ErrorEnvelope),
        (status = 422, description = "invalid filter value", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list_conflicts(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<ConflictQuery>,
) -> AppResult<HttpResponse> {
    require_role(&user, SUPERVISING)?;
    let query = query.into_inner();
    check_enum("status", query.status.as_deref(), q::STATUSES)?;
    check_enum(
        "collection",
        query.collection.as_deref(),
        sync_core::collection::COLLECTION_NAMES,
    )?;
    let page = PageRequest::new(query.limit, query.cursor)?;
    let after: Option<TimeKey> = page.after()?;
    let fetch = page.fetch_limit();
    let rows = state
        .pool
        .run(move |conn| {
            let scope = ApiScope::of(conn, &user)?;
            let f = ConflictFilter {
                grids: scope.grids_with(query.grid_id),
                status: query.status,
                collection: query.collection,
                record_id: query.record_id,
            };
            q::list(conn, &f, after, fetch)
        })
        .await?;
    let page = page.finish(rows, |r| (r.created_at, r.id.clone()));
    let items = page.items.iter().map(q::conflict_json).collect();
    list_response(&req, "conflicts", q::COLUMNS, items, page.next_cursor)
}

/// Body of `POST /conflicts/{id}/resolve`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// `current` or `incoming`.
    keep: Keep,
}

#[utoipa::path(
    post, path = "/api/v1/conflicts/{id}/resolve", tag = "review",
    params(("id" = String, Path, description = "conflict id (UUID)")),
    request_body = ResolveBody,
    responses(
        (status = 200, description = "the resolved conflict; the kept value syncs to the phones as a new edit", body = Conflict),
        (status = 401, description = "no valid access token", body = ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = ErrorEnvelope),
        (status = 404, description = "no such conflict in the caller's scope", body = ErrorEnvelope),
        (status = 409, description = "already resolved", body = ErrorEnvelope),
        (status = 422, description = "invalid `keep`", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn resolve(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<ConflictId>,
    body: web::Json<ResolveBody>,
) -> AppResult<HttpResponse> {
    require_role(&user, SUPERVISING)?;
    let keep = body.into_inner().keep;
    let id = id.into_inner().to_string();
    let mut clock = clock_copy(&state)?;
    let now = Timestamp::now();
    let (out, clock) = state
        .pool
        .write(move |conn| {
            let out = q::resolve(conn, &user, &id, keep, now, &mut clock)?;
            Ok((out, clock))
        })
        .await?;
    fold_clock(&state, &clock, now);
    Ok(HttpResponse::Ok().json(out))
}

/// Query parameters of `GET /rejections`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RejectionQuery {
    #[param(value_type = Option<String>)]
    grid_id: Option<GridId>,
    #[param(value_type = Option<String>)]
    user_id: Option<UserId>,
    #[param(value_type = Option<String>)]
    device_id: Option<DeviceId>,
    code: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/rejections", tag = "review",
    params(RejectionQuery),
    responses(
        (status = 200, description = "a page of rejected phone mutations; CSV with `Accept: text/csv`", content((Page = "application/json"), (String = "text/csv"))),
        (status = 401, description = "no valid access token", body = ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = ErrorEnvelope),
        (status = 400, description = "malformed query or cursor", body = ErrorEnvelope),
        (status = 422, description = "invalid filter value", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list_rejections(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<RejectionQuery>,
) -> AppResult<HttpResponse> {
    require_role(&user, SUPERVISING)?;
    let query = query.into_inner();
    let (from, to) = parse_range(query.from.as_deref(), query.to.as_deref())?;
    let page = PageRequest::new(query.limit, query.cursor)?;
    let after: Option<TimeKey> = page.after()?;
    let fetch = page.fetch_limit();
    let rows = state
        .pool
        .run(move |conn| {
            let scope = ApiScope::of(conn, &user)?;
            let f = RejectionFilter {
                grids: scope.grid_filter(),
                grid: query.grid_id.map(|g| g.to_string()),
                user_id: query.user_id.map(|u| u.to_string()),
                device_id: query.device_id.map(|d| d.to_string()),
                code: query.code,
                from,
                to,
            };
            q::list_rejections(conn, &f, after, fetch)
        })
        .await?;
    let page = page.finish(rows, |r| (r.created_at, r.id.clone()));
    let items = page.items.iter().map(q::rejection_json).collect();
    list_response(
        &req,
        "rejections",
        q::REJECTION_COLUMNS,
        items,
        page.next_cursor,
    )
}
