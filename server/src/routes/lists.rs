//! Grid records for supervisors (docs/api.md, "Patrols, visits, households, needs"):
//!
//! | route | filters |
//! |---|---|
//! | `GET /patrols` | `grid_id`, `worker_id`, `status`, `from`/`to` (on `started_at`) |
//! | `GET /patrols/{id}/track.geojson` | — (RFC 7946 Feature, `application/geo+json`) |
//! | `GET /visits` | `grid_id`, `household_id`, `worker_id`, `outcome`, `from`/`to` (on `visited_at`) |
//! | `GET /households` | `grid_id`, `tag`, `care_level`, `include_deleted` |
//! | `GET /needs` | `grid_id`, `status`, `household_id`, `category`, `urgency` |
//!
//! Supervisors (their subtree) and admins; other roles 403. Lists take `limit`/`cursor` and
//! answer CSV on `Accept: text/csv`. Thin handlers over [`crate::queries::records`].

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sync_core::collection::{
    CARE_LEVELS, HOUSEHOLD_TAGS, NEED_CATEGORIES, NEED_STATUSES, NEED_URGENCIES, PATROL_STATUSES,
    VISIT_OUTCOMES,
};
use sync_core::ids::{GridId, RecordId, UserId};
use sync_core::Collection;

use super::pagination::PageRequest;
use utoipa::IntoParams;

use crate::auth::{require_role, AuthUser};
use crate::csv::list_response;
use crate::error::AppResult;
use crate::queries::records::{self as q, HouseholdFilter, NeedFilter, PatrolFilter, VisitFilter};
use crate::queries::{check_enum, parse_range, record_columns, ApiScope, TimeKey, SUPERVISING};
use crate::routes::openapi::schemas::{ErrorEnvelope, Feature, Page};
use crate::state::AppState;

/// The content type of GeoJSON (RFC 7946).
pub const GEOJSON: &str = "application/geo+json";

/// Register the record list routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/patrols").route(web::get().to(list_patrols)))
        .service(web::resource("/patrols/{id}/track.geojson").route(web::get().to(track)))
        .service(web::resource("/visits").route(web::get().to(list_visits)))
        .service(web::resource("/households").route(web::get().to(list_households)))
        .service(web::resource("/needs").route(web::get().to(list_needs)));
}

/// Query parameters of `GET /patrols`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PatrolQuery {
    #[param(value_type = Option<String>)]
    grid_id: Option<GridId>,
    #[param(value_type = Option<String>)]
    worker_id: Option<UserId>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/patrols", tag = "records",
    params(PatrolQuery),
    responses(
        (status = 200, description = "a page of patrols (records with every field); CSV with `Accept: text/csv`", content((Page = "application/json"), (String = "text/csv"))),
        (status = 401, description = "no valid access token", body = ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = ErrorEnvelope),
        (status = 400, description = "malformed query or cursor", body = ErrorEnvelope),
        (status = 422, description = "invalid filter value", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list_patrols(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<PatrolQuery>,
) -> AppResult<HttpResponse> {
    require_role(&user, SUPERVISING)?;
    let query = query.into_inner();
    check_enum("status", query.status.as_deref(), PATROL_STATUSES)?;
    let (from, to) = parse_range(query.from.as_deref(), query.to.as_deref())?;
    let page = PageRequest::new(query.limit, query.cursor)?;
    let after: Option<TimeKey> = page.after()?;
    let fetch = page.fetch_limit();
    let rows = state
        .pool
        .run(move |conn| {
            let scope = ApiScope::of(conn, &user)?;
            let f = PatrolFilter {
                grids: scope.grids_with(query.grid_id),
                worker_id: query.worker_id.map(|w| w.to_string()),
                status: query.status,
                from,
                to,
            };
            q::patrols(conn, &f, after, fetch)
        })
        .await?;
    let page = page.finish(rows, |r| (r.created_at, r.id.clone()));
    let items = q::items(Collection::Patrols, &page.items)?;
    let columns = record_columns(Collection::Patrols, &[]);
    list_response(&req, "patrols", &columns, items, page.next_cursor)
}

#[utoipa::path(
    get, path = "/api/v1/patrols/{id}/track.geojson", tag = "records",
    params(("id" = String, Path, description = "patrol id (UUID)")),
    responses(
        (status = 200, description = "the route as an RFC 7946 Feature", content((Feature = "application/geo+json"))),
        (status = 401, description = "no valid access token", body = ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = ErrorEnvelope),
        (status = 404, description = "no such patrol in the caller's scope", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn track(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<RecordId>,
) -> AppResult<HttpResponse> {
    require_role(&user, SUPERVISING)?;
    let id = id.into_inner().to_string();
    let feature = state
        .pool
        .run(move |conn| {
            let scope = ApiScope::of(conn, &user)?;
            q::track_geojson(conn, &scope, &id)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, GEOJSON))
        .body(feature.to_string()))
}

/// Query parameters of `GET /visits`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VisitQuery {
    #[param(value_type = Option<String>)]
    grid_id: Option<GridId>,
    #[param(value_type = Option<String>)]
    household_id: Option<RecordId>,
    #[param(value_type = Option<String>)]
    worker_id: Option<UserId>,
    outcome: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/visits", tag = "records",
    params(VisitQuery),
    responses(
        (status = 200, description = "a page of visits (records with every field); CSV with `Accept: text/csv`", content((Page = "application/json"), (String = "text/csv"))),
        (status = 401, description = "no valid access token", body = ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = ErrorEnvelope),
        (status = 400, description = "malformed query or cursor", body = ErrorEnvelope),
        (status = 422, description = "invalid filter value", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list_visits(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<VisitQuery>,
) -> AppResult<HttpResponse> {
    require_role(&user, SUPERVISING)?;
    let query = query.into_inner();
    check_enum("outcome", query.outcome.as_deref(), VISIT_OUTCOMES)?;
    let (from, to) = parse_range(query.from.as_deref(), query.to.as_deref())?;
    let page = PageRequest::new(query.limit, query.cursor)?;
    let after: Option<TimeKey> = page.after()?;
    let fetch = page.fetch_limit();
    let rows = state
        .pool
        .run(move |conn| {
            let scope = ApiScope::of(conn, &user)?;
            let f = VisitFilter {
                grids: scope.grids_with(query.grid_id),
                household_id: query.household_id.map(|h| h.to_string()),
                worker_id: query.worker_id.map(|w| w.to_string()),
                outcome: query.outcome,
                from,
                to,
            };
            q::visits(conn, &f, after, fetch)
        })
        .await?;
    let page = page.finish(rows, |r| (r.created_at, r.id.clone()));
    let items = q::items(Collection::Visits, &page.items)?;
    let columns = record_columns(Collection::Visits, &[]);
    list_response(&req, "visits", &columns, items, page.next_cursor)
}

/// Query parameters of `GET /households`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HouseholdQuery {
    #[param(value_type = Option<String>)]
    grid_id: Option<GridId>,
    tag: Option<String>,
    care_level: Option<String>,
    include_deleted: Option<bool>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/households", tag = "records",
    params(HouseholdQuery),
    responses(
        (status = 200, description = "a page of households (records with every field); CSV with `Accept: text/csv`", content((Page = "application/json"), (String = "text/csv"))),
        (status = 401, description = "no valid access token", body = ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = ErrorEnvelope),
        (status = 400, description = "malformed query or cursor", body = ErrorEnvelope),
        (status = 422, description = "invalid filter value", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list_households(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<HouseholdQuery>,
) -> AppResult<HttpResponse> {
    require_role(&user, SUPERVISING)?;
    let query = query.into_inner();
    check_enum("tag", query.tag.as_deref(), HOUSEHOLD_TAGS)?;
    check_enum("care_level", query.care_level.as_deref(), CARE_LEVELS)?;
    let page = PageRequest::new(query.limit, query.cursor)?;
    let after: Option<TimeKey> = page.after()?;
    let fetch = page.fetch_limit();
    let rows = state
        .pool
        .run(move |conn| {
            let scope = ApiScope::of(conn, &user)?;
            let f = HouseholdFilter {
                grids: scope.grids_with(query.grid_id),
                tag: query.tag,
                care_level: query.care_level,
                include_deleted: query.include_deleted.unwrap_or(false),
            };
            q::households(conn, &f, after, fetch)
        })
        .await?;
    let page = page.finish(rows, |r| (r.created_at, r.id.clone()));
    let items = q::items(Collection::Households, &page.items)?;
    let columns = record_columns(Collection::Households, &[]);
    list_response(&req, "households", &columns, items, page.next_cursor)
}

/// Query parameters of `GET /needs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NeedQuery {
    #[param(value_type = Option<String>)]
    grid_id: Option<GridId>,
    status: Option<String>,
    #[param(value_type = Option<String>)]
    household_id: Option<RecordId>,
    category: Option<String>,
    urgency: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/needs", tag = "records",
    params(NeedQuery),
    responses(
        (status = 200, description = "a page of needs (records with every field); CSV with `Accept: text/csv`", content((Page = "application/json"), (String = "text/csv"))),
        (status = 401, description = "no valid access token", body = ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = ErrorEnvelope),
        (status = 400, description = "malformed query or cursor", body = ErrorEnvelope),
        (status = 422, description = "invalid filter value", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn list_needs(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<NeedQuery>,
) -> AppResult<HttpResponse> {
    require_role(&user, SUPERVISING)?;
    let query = query.into_inner();
    check_enum("status", query.status.as_deref(), NEED_STATUSES)?;
    check_enum("category", query.category.as_deref(), NEED_CATEGORIES)?;
    check_enum("urgency", query.urgency.as_deref(), NEED_URGENCIES)?;
    let page = PageRequest::new(query.limit, query.cursor)?;
    let after: Option<TimeKey> = page.after()?;
    let fetch = page.fetch_limit();
    let rows = state
        .pool
        .run(move |conn| {
            let scope = ApiScope::of(conn, &user)?;
            let f = NeedFilter {
                grids: scope.grids_with(query.grid_id),
                status: query.status,
                household_id: query.household_id.map(|h| h.to_string()),
                category: query.category,
                urgency: query.urgency,
            };
            q::needs(conn, &f, after, fetch)
        })
        .await?;
    let page = page.finish(rows, |r| (r.created_at, r.id.clone()));
    let items = q::items(Collection::Needs, &page.items)?;
    let columns = record_columns(Collection::Needs, &[]);
    list_response(&req, "needs", &columns, items, page.next_cursor)
}
