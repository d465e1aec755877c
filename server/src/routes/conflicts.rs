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
use crate::auth::{require_role, AuthUser};
use crate::csv::list_response;
use crate::error::AppResult;
use crate::queries::conflicts::{self as q, ConflictFilter, Keep, RejectionFilter};
use crate::queries::{check_enum, parse_range, ApiScope, TimeKey, SUPERVISING};
use crate::state::AppState;

/// Register the review routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/conflicts").route(web::get().to(list_conflicts)))
        .service(web::resource("/conflicts/{id}/resolve").route(web::post().to(resolve)))
        .service(web::resource("/rejections").route(web::get().to(list_rejections)));
}

/// Query parameters of `GET /conflicts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConflictQuery {
    status: Option<String>,
    grid_id: Option<GridId>,
    collection: Option<String>,
    record_id: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list_conflicts(
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    keep: Keep,
}

async fn resolve(
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectionQuery {
    grid_id: Option<GridId>,
    user_id: Option<UserId>,
    device_id: Option<DeviceId>,
    code: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list_rejections(
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
