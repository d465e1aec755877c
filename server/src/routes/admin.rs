//! Administration (contract, "Administration"; docs/api.md, "Administration"): areas,
//! users, devices.
//!
//! | route | who |
//! |---|---|
//! | `POST /areas` | admin |
//! | `GET /areas` | admin (all), supervisor (their subtree) |
//! | `POST /users`, `GET /users`, `GET /users/{id}`, `PATCH /users/{id}` | admin |
//! | `GET /devices` | admin (all), supervisor (devices of users in their subtree) |
//! | `POST /devices/{id}/revoke` | admin, supervisor (non-admin users in their subtree) |
//!
//! Other roles get 403 `forbidden`; no token 401. Objects outside a supervisor's scope are
//! 404, like objects that do not exist.
//!
//! Invariants:
//! - Every write runs in one write transaction together with its `audit_log` row
//!   (`db::audit::record`); audit details never hold passwords or hashes.
//! - Passwords are hashed on the blocking pool before the transaction starts (argon2 is
//!   slow; the database's write lock is not held meanwhile).
//! - Text fields keep any Unicode verbatim; lengths are bounded and control characters
//!   (including NUL, which PostgreSQL cannot store) are refused with 422.
//! - Deactivating a user or changing their password ends all their device sessions;
//!   role, area and grid changes take effect at their next request or sync (the extractor
//!   and the scope code read the user's row per request).
//! - The last active admin cannot be deactivated or demoted (409 `last_admin`), so the
//!   system always keeps someone who can administer it.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};
use sync_core::ids::{AreaId, DeviceId, GridId, UserId};
use sync_core::workflow::Role;

use super::pagination::PageRequest;
use crate::auth::{password, require_role, AuthUser};
use crate::db::areas::{self, AreaFilter, AreaLevel};
use crate::db::users::{self, NewUser, UserChanges, UserView};
use crate::db::{audit, devices, now_ms, tokens, DbConnection};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Longest area name, user display name or department name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest area code, in characters.
pub const MAX_CODE_CHARS: usize = 64;

/// Register the administration routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/areas")
            .route(web::get().to(list_areas))
            .route(web::post().to(create_area)),
    )
    .service(
        web::resource("/users")
            .route(web::get().to(list_users))
            .route(web::post().to(create_user)),
    )
    .service(
        web::resource("/users/{id}")
            .route(web::get().to(get_user))
            .route(web::patch().to(patch_user)),
    )
    .service(web::resource("/devices").route(web::get().to(list_devices)))
    .service(web::resource("/devices/{id}/revoke").route(web::post().to(revoke_device)));
}

/// A text field: trimmed length 1..=`max` characters, no control characters. `field` names
/// it in the error.
fn check_text(field: &str, value: &str, max: usize) -> AppResult<()> {
    let n = value.chars().count();
    if value.trim().is_empty() || n > max {
        return Err(
            AppError::invalid(format!("{field} must be 1 to {max} characters"))
                .with_details(json!({"field": field})),
        );
    }
    if value.chars().any(char::is_control) {
        return Err(
            AppError::invalid(format!("{field} must not contain control characters"))
                .with_details(json!({"field": field})),
        );
    }
    Ok(())
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// The ids of the caller's scope when they are a supervisor (`None` for admins).
async fn supervisor_subtree(state: &AppState, user: &AuthUser) -> AppResult<Option<Vec<String>>> {
    if user.role == Role::Admin {
        return Ok(None);
    }
    let Some(root) = user.area_id else {
        // A supervisor without an area (possible only through direct database edits) has
        // an empty scope.
        return Ok(Some(Vec::new()));
    };
    let root = root.to_string();
    Ok(Some(
        state
            .pool
            .run(move |conn| areas::subtree_ids(conn, &root))
            .await?,
    ))
}

// ---------------------------------------------------------------------------------------
// Areas

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAreaBody {
    name: String,
    #[serde(default)]
    code: Option<String>,
    level: AreaLevel,
    #[serde(default)]
    parent_id: Option<AreaId>,
}

#[utoipa::path(
    post, path = "/api/v1/areas", tag = "admin",
    request_body = crate::routes::openapi::schemas::NewArea,
    responses(
        (status = 201, description = "the area", body = crate::routes::openapi::schemas::Area),
        (status = 401, description = "no valid access token", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 422, description = "invalid values", body = crate::routes::openapi::schemas::ErrorEnvelope)
    ),
    security(("bearer" = []))
)]
async fn create_area(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<NewAreaBody>,
) -> AppResult<HttpResponse> {
    require_role(&user, &[Role::Admin])?;
    let body = body.into_inner();
    check_text("name", &body.name, MAX_NAME_CHARS)?;
    if let Some(code) = &body.code {
        check_text("code", code, MAX_CODE_CHARS)?;
    }
    let actor = user.user_id.to_string();
    let area = state
        .pool
        .write(move |conn| {
            let parent = body.parent_id.map(|p| p.to_string());
            areas::check_placement(conn, body.level, parent.as_deref())?;
            let area = areas::insert_area(
                conn,
                &body.name,
                body.code.as_deref(),
                body.level,
                parent.as_deref(),
            )?;
            audit::record(
                conn,
                Some(&actor),
                "area.create",
                "area",
                &area.id,
                Some(json!({
                    "name": area.name, "code": area.code,
                    "level": area.level, "parent_id": area.parent_id,
                })),
            )?;
            Ok(area)
        })
        .await?;
    Ok(HttpResponse::Created().json(area_json(&area)))
}

fn area_json(area: &areas::Area) -> Value {
    json!({
        "id": area.id,
        "name": area.name,
        "code": area.code,
        "level": area.level,
        "parent_id": area.parent_id,
        "created_at": sync_core::Timestamp(area.created_at).to_rfc3339(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AreaQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    level: Option<AreaLevel>,
    parent_id: Option<AreaId>,
}

#[utoipa::path(
    get, path = "/api/v1/areas", tag = "admin",
    params(("level" = Option<String>, Query, description = "district, street, community or grid"), ("parent_id" = Option<String>, Query, description = "UUID"), ("limit" = Option<u32>, Query, description = "1..=500, default 50"), ("cursor" = Option<String>, Query, description = "the previous page's next_cursor")),
    responses(
        (status = 200, description = "a page of areas (`Area` items)", body = crate::routes::openapi::schemas::Page),
        (status = 401, description = "no valid access token", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 422, description = "invalid values", body = crate::routes::openapi::schemas::ErrorEnvelope)
    ),
    security(("bearer" = []))
)]
async fn list_areas(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<AreaQuery>,
) -> AppResult<HttpResponse> {
    require_role(&user, &[Role::Admin, Role::Supervisor])?;
    let query = query.into_inner();
    let page = PageRequest::new(query.limit, query.cursor)?;
    let after: Option<String> = page.after()?;
    let filter = AreaFilter {
        ids: supervisor_subtree(&state, &user).await?,
        level: query.level,
        parent_id: query.parent_id.map(|p| p.to_string()),
    };
    let fetch = page.fetch_limit();
    let rows = state
        .pool
        .run(move |conn| areas::list_page(conn, &filter, after.as_deref(), fetch))
        .await?;
    let page = page.finish(rows, |a| a.id.clone());
    Ok(HttpResponse::Ok().json(json!({
        "items": page.items.iter().map(area_json).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

// ---------------------------------------------------------------------------------------
// Users

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUserBody {
    username: String,
    password: String,
    #[serde(default)]
    display_name: Option<String>,
    role: Role,
    #[serde(default)]
    grid_ids: Option<Vec<GridId>>,
    #[serde(default)]
    area_id: Option<AreaId>,
    #[serde(default)]
    department: Option<String>,
}

/// The role rules every stored user satisfies (checked on create and on the result of an
/// update): a supervisor has an area; a department user has a department and only they
/// do; only workers have grids (a worker may have none yet: they can log in, and sync
/// nothing until grids are assigned).
fn check_role_fields(
    role: Role,
    grid_ids: &[String],
    area_id: Option<&str>,
    department: Option<&str>,
) -> AppResult<()> {
    if role == Role::Supervisor && area_id.is_none() {
        return Err(
            AppError::invalid("a supervisor needs an area_id (the root of their scope)")
                .with_details(json!({"field": "area_id"})),
        );
    }
    if role == Role::Department && department.is_none() {
        return Err(AppError::invalid("a department user needs a department")
            .with_details(json!({"field": "department"})));
    }
    if role != Role::Department && department.is_some() {
        return Err(AppError::invalid("only department users have a department")
            .with_details(json!({"field": "department"})));
    }
    if role != Role::Worker && !grid_ids.is_empty() {
        return Err(AppError::invalid(
            "only workers have grid_ids (supervisors are scoped by area_id)",
        )
        .with_details(json!({"field": "grid_ids"})));
    }
    Ok(())
}

/// 422 unless every id is an existing grid-level area.
fn check_grids(conn: &mut DbConnection, grid_ids: &[String]) -> AppResult<()> {
    let missing = areas::missing_grids(conn, grid_ids)?;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(
            AppError::invalid(format!("not an existing grid: {}", missing.join(", ")))
                .with_code("unknown_grid")
                .with_details(json!({"field": "grid_ids", "grid_ids": missing})),
        )
    }
}

#[utoipa::path(
    post, path = "/api/v1/users", tag = "admin",
    request_body = crate::routes::openapi::schemas::NewUser,
    responses(
        (status = 201, description = "the user", body = crate::routes::openapi::schemas::UserView),
        (status = 401, description = "no valid access token", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 409, description = "username taken", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 422, description = "invalid values", body = crate::routes::openapi::schemas::ErrorEnvelope)
    ),
    security(("bearer" = []))
)]
async fn create_user(
    state: web::Data<AppState>,
    user: AuthUser,
    body: web::Json<NewUserBody>,
) -> AppResult<HttpResponse> {
    require_role(&user, &[Role::Admin])?;
    let body = body.into_inner();
    users::validate_username(&body.username)?;
    password::validate_password(&body.password)?;
    if let Some(name) = &body.display_name {
        check_text("display_name", name, MAX_NAME_CHARS)?;
    }
    if let Some(dep) = &body.department {
        check_text("department", dep, MAX_NAME_CHARS)?;
    }
    let mut grid_ids: Vec<String> = body
        .grid_ids
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect();
    grid_ids.sort();
    grid_ids.dedup();
    let area_id = body.area_id.map(|a| a.to_string());
    check_role_fields(
        body.role,
        &grid_ids,
        area_id.as_deref(),
        body.department.as_deref(),
    )?;
    let password = body.password;
    let hash = web::block(move || password::hash_password(&password)).await??;
    let actor = user.user_id.to_string();
    let view = state
        .pool
        .write(move |conn| {
            check_grids(conn, &grid_ids)?;
            let created = users::insert_user(
                conn,
                &NewUser {
                    username: &body.username,
                    password_hash: &hash,
                    display_name: body.display_name.as_deref(),
                    role: body.role,
                    area_id: area_id.as_deref(),
                    department: body.department.as_deref(),
                    grid_ids: &grid_ids,
                },
            )?;
            let view = UserView::new(created, grid_ids);
            audit::record(
                conn,
                Some(&actor),
                "user.create",
                "user",
                &view.id,
                Some(json!({
                    "username": view.username, "display_name": view.display_name,
                    "role": view.role, "grid_ids": view.grid_ids,
                    "area_id": view.area_id, "department": view.department,
                })),
            )?;
            Ok(view)
        })
        .await
        .map_err(|e| {
            // The unique index catches a concurrent creation of the same username.
            if e.kind() == crate::error::ErrorKind::Conflict && e.code() == "conflict" {
                AppError::conflict("this username is taken").with_code("username_taken")
            } else {
                e
            }
        })?;
    Ok(HttpResponse::Created().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    role: Option<Role>,
}

#[utoipa::path(
    get, path = "/api/v1/users", tag = "admin",
    params(("role" = Option<String>, Query), ("limit" = Option<u32>, Query, description = "1..=500, default 50"), ("cursor" = Option<String>, Query, description = "the previous page's next_cursor")),
    responses(
        (status = 200, description = "a page of users (`UserView` items)", body = crate::routes::openapi::schemas::Page),
        (status = 401, description = "no valid access token", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 422, description = "invalid values", body = crate::routes::openapi::schemas::ErrorEnvelope)
    ),
    security(("bearer" = []))
)]
async fn list_users(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<UserQuery>,
) -> AppResult<HttpResponse> {
    require_role(&user, &[Role::Admin])?;
    let query = query.into_inner();
    let page = PageRequest::new(query.limit, query.cursor)?;
    let after: Option<String> = page.after()?;
    let fetch = page.fetch_limit();
    let role = query.role;
    let rows = state
        .pool
        .run(move |conn| users::list_page(conn, role, after.as_deref(), fetch))
        .await?;
    Ok(HttpResponse::Ok().json(page.finish(rows, |u| u.id.clone())))
}

#[utoipa::path(
    get, path = "/api/v1/users/{id}", tag = "admin",
    params(("id" = String, Path, description = "user id (UUID)")),
    responses(
        (status = 200, description = "the user", body = crate::routes::openapi::schemas::UserView),
        (status = 401, description = "no valid access token", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 404, description = "no such user", body = crate::routes::openapi::schemas::ErrorEnvelope)
    ),
    security(("bearer" = []))
)]
async fn get_user(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<UserId>,
) -> AppResult<HttpResponse> {
    require_role(&user, &[Role::Admin])?;
    let id = id.into_inner().to_string();
    let view = state
        .pool
        .run(move |conn| users::view(conn, &id))
        .await?
        .ok_or_else(|| AppError::not_found("no such user"))?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchUserBody {
    #[serde(default, deserialize_with = "double_option")]
    display_name: Option<Option<String>>,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    grid_ids: Option<Vec<GridId>>,
    #[serde(default, deserialize_with = "double_option")]
    area_id: Option<Option<AreaId>>,
    #[serde(default, deserialize_with = "double_option")]
    department: Option<Option<String>>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    password: Option<String>,
}

#[utoipa::path(
    patch, path = "/api/v1/users/{id}", tag = "admin",
    params(("id" = String, Path, description = "user id (UUID)")),
    request_body = crate::routes::openapi::schemas::UserPatch,
    responses(
        (status = 200, description = "the user", body = crate::routes::openapi::schemas::UserView),
        (status = 401, description = "no valid access token", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 404, description = "no such user", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 409, description = "last admin, or changing oneself", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 422, description = "invalid values", body = crate::routes::openapi::schemas::ErrorEnvelope)
    ),
    security(("bearer" = []))
)]
async fn patch_user(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<UserId>,
    body: web::Json<PatchUserBody>,
) -> AppResult<HttpResponse> {
    require_role(&caller, &[Role::Admin])?;
    let target = id.into_inner();
    let body = body.into_inner();
    if let Some(Some(name)) = &body.display_name {
        check_text("display_name", name, MAX_NAME_CHARS)?;
    }
    if let Some(Some(dep)) = &body.department {
        check_text("department", dep, MAX_NAME_CHARS)?;
    }
    let hash = match body.password.clone() {
        Some(p) => {
            password::validate_password(&p)?;
            Some(web::block(move || password::hash_password(&p)).await??)
        }
        None => None,
    };
    let actor = caller.user_id.to_string();
    let target_key = target.to_string();
    let view = state
        .pool
        .write(move |conn| {
            let current = users::find_by_id(conn, &target_key)?
                .ok_or_else(|| AppError::not_found("no such user"))?;
            let current_role = current
                .role
                .parse::<Role>()
                .map_err(|e| AppError::internal(anyhow::anyhow!("stored role: {e}")))?;
            let role = body.role.unwrap_or(current_role);
            let active = body.active.unwrap_or(current.active);
            let display_name = match &body.display_name {
                Some(v) => v.clone(),
                None => current.display_name.clone(),
            };
            let area_id = match body.area_id {
                Some(v) => v.map(|a| a.to_string()),
                None => current.area_id.clone(),
            };
            // Leaving a role drops what only that role has, unless the body sets it.
            let department = match &body.department {
                Some(v) => v.clone(),
                None if role == Role::Department => current.department.clone(),
                None => None,
            };
            let old_grids = users::grid_ids(conn, &target_key)?;
            let grid_ids: Vec<String> = match &body.grid_ids {
                Some(g) => {
                    let mut g: Vec<String> = g.iter().map(ToString::to_string).collect();
                    g.sort();
                    g.dedup();
                    g
                }
                None if role == Role::Worker => old_grids.clone(),
                None => Vec::new(),
            };
            check_role_fields(role, &grid_ids, area_id.as_deref(), department.as_deref())?;
            check_grids(conn, &grid_ids)?;
            if let Some(area) = &area_id {
                if area_id != current.area_id && areas::find_area(conn, area)?.is_none() {
                    return Err(AppError::invalid(format!("area {area} does not exist"))
                        .with_details(json!({"field": "area_id"})));
                }
            }
            let stays_admin = role == Role::Admin && active;
            if current_role == Role::Admin && current.active && !stays_admin {
                if current.id == actor {
                    return Err(AppError::conflict(
                        "administrators cannot deactivate or demote themselves",
                    )
                    .with_code("cannot_change_self"));
                }
                if users::count_other_active_admins(conn, &current.id)? == 0 {
                    return Err(AppError::conflict("this is the last active administrator")
                        .with_code("last_admin"));
                }
            }

            let changes = UserChanges {
                display_name,
                role: role.as_str().to_owned(),
                area_id,
                department,
                active,
                updated_at: now_ms(),
            };
            users::update_user(conn, &target_key, &changes, hash.as_deref())?;
            if grid_ids != old_grids {
                users::set_grids(conn, &target_key, &grid_ids)?;
            }
            let deactivated = current.active && !active;
            let sessions_ended = if deactivated || hash.is_some() {
                tokens::revoke_user(conn, &target_key, now_ms())?
            } else {
                0
            };

            let mut details = Map::new();
            let mut changed = |k: &str, old: Value, new: Value| {
                if old != new {
                    details.insert(k.to_owned(), json!({"from": old, "to": new}));
                }
            };
            changed(
                "display_name",
                json!(current.display_name),
                json!(changes.display_name),
            );
            changed("role", json!(current.role), json!(changes.role));
            changed("area_id", json!(current.area_id), json!(changes.area_id));
            changed(
                "department",
                json!(current.department),
                json!(changes.department),
            );
            changed("active", json!(current.active), json!(changes.active));
            changed("grid_ids", json!(old_grids), json!(grid_ids));
            if hash.is_some() {
                details.insert("password_changed".to_owned(), json!(true));
            }
            if sessions_ended > 0 {
                details.insert("sessions_ended".to_owned(), json!(sessions_ended));
            }
            // A patch that changes nothing is not an administrative write: no audit row.
            if !details.is_empty() {
                audit::record(
                    conn,
                    Some(&actor),
                    "user.update",
                    "user",
                    &target_key,
                    Some(Value::Object(details)),
                )?;
            }
            users::view(conn, &target_key)?
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("user vanished in its update")))
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

// ---------------------------------------------------------------------------------------
// Devices

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceQuery {
    limit: Option<u32>,
    cursor: Option<String>,
    user_id: Option<UserId>,
}

/// The users whose devices the caller may see: `None` = everyone (admin).
async fn device_owners(state: &AppState, user: &AuthUser) -> AppResult<Option<Vec<String>>> {
    let Some(subtree) = supervisor_subtree(state, user).await? else {
        return Ok(None);
    };
    Ok(Some(
        state
            .pool
            .run(move |conn| users::ids_in_areas(conn, &subtree))
            .await?,
    ))
}

#[utoipa::path(
    get, path = "/api/v1/devices", tag = "admin",
    params(("user_id" = Option<String>, Query, description = "UUID"), ("limit" = Option<u32>, Query, description = "1..=500, default 50"), ("cursor" = Option<String>, Query, description = "the previous page's next_cursor")),
    responses(
        (status = 200, description = "a page of devices (`Device` items)", body = crate::routes::openapi::schemas::Page),
        (status = 401, description = "no valid access token", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 422, description = "invalid values", body = crate::routes::openapi::schemas::ErrorEnvelope)
    ),
    security(("bearer" = []))
)]
async fn list_devices(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<DeviceQuery>,
) -> AppResult<HttpResponse> {
    require_role(&user, &[Role::Admin, Role::Supervisor])?;
    let query = query.into_inner();
    let page = PageRequest::new(query.limit, query.cursor)?;
    let after: Option<String> = page.after()?;
    let mut owners = device_owners(&state, &user).await?;
    if let Some(only) = query.user_id.map(|u| u.to_string()) {
        owners = Some(match owners {
            Some(list) => list.into_iter().filter(|u| *u == only).collect(),
            None => vec![only],
        });
    }
    let fetch = page.fetch_limit();
    let rows = state
        .pool
        .run(move |conn| devices::list(conn, owners.as_deref(), after.as_deref(), fetch))
        .await?;
    Ok(HttpResponse::Ok().json(page.finish(rows, |d| d.id.clone())))
}

#[utoipa::path(
    post, path = "/api/v1/devices/{id}/revoke", tag = "admin",
    params(("id" = String, Path, description = "device id (UUID)")),
    responses(
        (status = 200, description = "the revoked device", body = crate::routes::openapi::schemas::Device),
        (status = 401, description = "no valid access token", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 403, description = "the caller's role may not call this", body = crate::routes::openapi::schemas::ErrorEnvelope),
        (status = 404, description = "no such device in the caller's scope", body = crate::routes::openapi::schemas::ErrorEnvelope)
    ),
    security(("bearer" = []))
)]
async fn revoke_device(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<DeviceId>,
) -> AppResult<HttpResponse> {
    require_role(&user, &[Role::Admin, Role::Supervisor])?;
    let device_id = id.into_inner().to_string();
    let owners = device_owners(&state, &user).await?;
    let actor = user.user_id.to_string();
    let view = state
        .pool
        .write(move |conn| {
            let not_found = || AppError::not_found("no such device");
            let device = devices::find(conn, &device_id)?.ok_or_else(not_found)?;
            if let Some(owners) = &owners {
                // Supervisors: devices of non-admin users in their subtree only.
                let owner = users::find_by_id(conn, &device.user_id)?.ok_or_else(not_found)?;
                if !owners.contains(&device.user_id) || owner.role == Role::Admin.as_str() {
                    return Err(not_found());
                }
            }
            let now = now_ms();
            if devices::mark_revoked(conn, &device_id, now)? {
                let ended = tokens::revoke_device(conn, &device_id, now)?;
                audit::record(
                    conn,
                    Some(&actor),
                    "device.revoke",
                    "device",
                    &device_id,
                    Some(json!({"user_id": device.user_id, "sessions_ended": ended})),
                )?;
            }
            devices::view(conn, &device_id)?.ok_or_else(not_found)
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn role_field_rules() {
        let g = vec!["g".to_owned()];
        assert!(check_role_fields(Role::Worker, &g, None, None).is_ok());
        assert!(check_role_fields(Role::Worker, &[], None, None).is_ok());
        assert!(check_role_fields(Role::Supervisor, &[], None, None).is_err());
        assert!(check_role_fields(Role::Supervisor, &[], Some("a"), None).is_ok());
        assert!(check_role_fields(Role::Supervisor, &g, Some("a"), None).is_err());
        assert!(check_role_fields(Role::Department, &[], None, None).is_err());
        assert!(check_role_fields(Role::Department, &[], None, Some("消防")).is_ok());
        assert!(check_role_fields(Role::Admin, &[], None, Some("消防")).is_err());
    }

    #[test]
    fn text_rules() {
        assert!(check_text("n", "山西路社区 <b>'; DROP TABLE users;--</b> 🏠", 100).is_ok());
        assert!(check_text("n", "", 100).is_err());
        assert!(check_text("n", "   ", 100).is_err());
        assert!(check_text("n", "a\0b", 100).is_err());
        assert!(check_text("n", &"字".repeat(101), 100).is_err());
        assert!(check_text("n", &"字".repeat(100), 100).is_ok());
    }

    #[test]
    fn patch_body_tells_null_from_absent() {
        let b: PatchUserBody = serde_json::from_str(r#"{"area_id": null}"#).unwrap();
        assert_eq!(b.area_id, Some(None));
        assert_eq!(b.display_name, None);
        assert!(serde_json::from_str::<PatchUserBody>(r#"{"nope": 1}"#).is_err());
    }

    #[test]
    fn page_params_are_shared() {
        let p: crate::routes::pagination::PageParams =
            serde_json::from_str(r#"{"limit": 5}"#).unwrap();
        assert_eq!(PageRequest::from_params(&p).unwrap().limit(), 5);
    }
}
