//! Statistics (docs/api.md, "Statistics"): `GET /stats/grids?from&to&grid_id&limit&cursor`
//! and `GET /stats/workers?from&to&grid_id&limit&cursor`, for supervisors (their subtree)
//! and admins. The period defaults to the 30 days before now. Both are lists (one item per
//! grid / worker, sorted by id, paginated) and answer CSV on `Accept: text/csv`. The
//! definitions of every figure are in [`crate::queries::stats`].

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sync_core::ids::GridId;

use super::pagination::PageRequest;
use utoipa::IntoParams;

use crate::auth::{require_role, AuthUser};
use crate::csv::list_response;
use crate::db::now_ms;
use crate::error::AppResult;
use crate::queries::stats::{self as q, Period};
use crate::queries::{parse_range, ApiScope, SUPERVISING};
use crate::routes::openapi::schemas::{ErrorEnvelope, Page};
use crate::state::AppState;

/// The period when the request names none: the last 30 days.
pub const DEFAULT_DAYS: i64 = 30;

/// Register the statistics routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/stats/grids").route(web::get().to(grid_stats)))
        .service(web::resource("/stats/workers").route(web::get().to(worker_stats)));
}

/// Query parameters of both statistics endpoints.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// Period start (RFC 3339, inclusive); default `to` minus 30 days.
    from: Option<String>,
    /// Period end (RFC 3339, exclusive); default now.
    to: Option<String>,
    #[param(value_type = Option<String>)]
    grid_id: Option<GridId>,
    limit: Option<u32>,
    cursor: Option<String>,
}

fn period(query: &StatsQuery) -> AppResult<Period> {
    let now = now_ms();
    let (from, to) = parse_range(query.from.as_deref(), query.to.as_deref())?;
    let to = to.unwrap_or(now);
    let from = from.unwrap_or(to - DEFAULT_DAYS * 24 * 3600 * 1000);
    if from >= to {
        return Err(crate::error::AppError::invalid("from must be before to")
            .with_details(serde_json::json!({"field": "from"})));
    }
    Ok(Period { from, to, now })
}

#[utoipa::path(
    get, path = "/api/v1/stats/grids", tag = "stats",
    params(StatsQuery),
    responses(
        (status = 200, description = "a page of per-grid statistics (definitions: docs/api.md, Statistics); CSV with `Accept: text/csv`", content((Page = "application/json"), (String = "text/csv"))),
        (status = 401, description = "no valid access token", body = ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = ErrorEnvelope),
        (status = 400, description = "malformed query or cursor", body = ErrorEnvelope),
        (status = 422, description = "invalid filter value", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn grid_stats(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<StatsQuery>,
) -> AppResult<HttpResponse> {
    require_role(&user, SUPERVISING)?;
    let query = query.into_inner();
    let p = period(&query)?;
    let page = PageRequest::new(query.limit, query.cursor.clone())?;
    let after: Option<String> = page.after()?;
    let fetch = page.fetch_limit();
    let grid = query.grid_id;
    let (items, next) = state
        .pool
        .run(move |conn| {
            let scope = ApiScope::of(conn, &user)?;
            let grids = scope.grids_with(grid);
            let rows = q::grid_page(conn, grids.as_deref(), after.as_deref(), fetch)?;
            let page = page.finish(rows, |(id, _)| id.clone());
            let items = q::grid_stats(conn, &page.items, &p)?;
            Ok((items, page.next_cursor))
        })
        .await?;
    let columns = q::grid_columns();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    list_response(&req, "grid-stats", &columns, items, next)
}

#[utoipa::path(
    get, path = "/api/v1/stats/workers", tag = "stats",
    params(StatsQuery),
    responses(
        (status = 200, description = "a page of per-worker statistics (definitions: docs/api.md, Statistics); CSV with `Accept: text/csv`", content((Page = "application/json"), (String = "text/csv"))),
        (status = 401, description = "no valid access token", body = ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = ErrorEnvelope),
        (status = 400, description = "malformed query or cursor", body = ErrorEnvelope),
        (status = 422, description = "invalid filter value", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn worker_stats(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<StatsQuery>,
) -> AppResult<HttpResponse> {
    require_role(&user, SUPERVISING)?;
    let query = query.into_inner();
    let p = period(&query)?;
    let page = PageRequest::new(query.limit, query.cursor.clone())?;
    let after: Option<String> = page.after()?;
    let fetch = page.fetch_limit();
    let grid = query.grid_id;
    let (items, next) = state
        .pool
        .run(move |conn| {
            let scope = ApiScope::of(conn, &user)?;
            let grids = scope.grids_with(grid);
            let rows = q::worker_page(conn, grids.as_deref(), after.as_deref(), fetch)?;
            let page = page.finish(rows, |w| w.0.clone());
            let items = q::worker_stats(conn, &page.items, grids.as_deref(), &p)?;
            Ok((items, page.next_cursor))
        })
        .await?;
    let columns = q::worker_columns();
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    list_response(&req, "worker-stats", &columns, items, next)
}
