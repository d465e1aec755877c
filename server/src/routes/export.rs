//! `GET /api/v1/export?grid_id=ID`: the canonical export of one grid (contract: "Canonical
//! export"), the shape `grid-worker export` prints, so that a phone that has synced can be
//! compared with the server field by field.
//!
//! Access: supervisors (grids of their area subtree) and admins; other roles 403. A grid
//! outside the caller's scope, or no grid at all, is 404; a missing or malformed `grid_id`
//! is 400. The records are read in one read-only snapshot.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use sync_core::ids::GridId;
use sync_core::workflow::Role;

use crate::auth::{require_role, AuthUser};
use crate::db::areas::{find_area, AreaLevel};
use crate::error::{AppError, AppResult};
use crate::scope::scope_of;
use crate::state::AppState;
use crate::sync::export::grid_export_snapshot;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/export").route(web::get().to(export)));
}

#[derive(Debug, Deserialize)]
struct ExportQuery {
    grid_id: Option<String>,
}

#[utoipa::path(
    get, path = "/api/v1/export", tag = "sync",
    params(("grid_id" = String, Query, description = "UUID")),
    responses(
        (status = 200, description = "the canonical export of the grid", body = crate::routes::openapi::schemas::Export),
        (status = 401, description = "no valid access token", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 404, description = "no such grid in the caller's scope", body = crate::routes::openapi::schemas::ErrorEnvelope)
    ),
    security(("bearer" = []))
)]
async fn export(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<ExportQuery>,
) -> AppResult<HttpResponse> {
    require_role(&user, &[Role::Supervisor, Role::Admin])?;
    let grid: GridId = match query.into_inner().grid_id.as_deref().map(str::trim) {
        None | Some("") => {
            return Err(AppError::bad_request("grid_id is required").with_code("missing_grid_id"))
        }
        Some(text) => text.parse().map_err(|_| {
            AppError::bad_request("grid_id is not a UUID").with_code("invalid_grid_id")
        })?,
    };
    let body = state
        .pool
        .run(move |conn| {
            let no_grid = || AppError::not_found("no such grid");
            let area = find_area(conn, &grid.to_string())?.ok_or_else(no_grid)?;
            if AreaLevel::parse(&area.level) != Some(AreaLevel::Grid) {
                return Err(no_grid());
            }
            let area_id = user.area_id.map(|a| a.to_string());
            let scope = scope_of(
                conn,
                &user.user_id.to_string(),
                user.role,
                area_id.as_deref(),
                user.department.as_deref(),
            )?;
            if !scope.sees_grid(grid) {
                return Err(no_grid());
            }
            grid_export_snapshot(conn, grid)
        })
        .await?;
    Ok(HttpResponse::Ok().json(body))
}
