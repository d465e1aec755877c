//! Users, their roles and their grids.
//!
//! Invariants: usernames are unique (409 `username_taken`); a user's grids are existing
//! areas of level `grid`; `password_hash` is an argon2id PHC string and never leaves the
//! server (not serialised, not in `Debug`).

use diesel::prelude::*;

use super::areas::missing_grids;
use super::schema::{user_grids, users};
use super::DbConnection;
use crate::error::{AppError, AppResult};

/// What a user may do (domain.md, "Roles"): sync-core's definition, so the server, the
/// phones and the workflow rules share one enum (`as_str`, `FromStr`, serde snake_case).
pub use sync_core::workflow::Role;

/// A stored user.
#[derive(Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    /// UUID.
    pub id: String,
    /// Unique login name.
    pub username: String,
    /// argon2id PHC string (see `crate::auth::password`).
    pub password_hash: String,
    /// Shown name.
    pub display_name: Option<String>,
    /// `worker` | `supervisor` | `department` | `admin`.
    pub role: String,
    /// For supervisors: the root of their scope.
    pub area_id: Option<String>,
    /// For department users: the department's name (e.g. 消防).
    pub department: Option<String>,
    /// Inactive users cannot log in.
    pub active: bool,
    /// ms since epoch.
    pub created_at: i64,
    /// ms since epoch.
    pub updated_at: i64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("area_id", &self.area_id)
            .field("department", &self.department)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// What it takes to create a user.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// Unique login name.
    pub username: &'a str,
    /// Already hashed (see `crate::auth::password::hash_password`).
    pub password_hash: &'a str,
    /// Shown name.
    pub display_name: Option<&'a str>,
    /// Role.
    pub role: Role,
    /// Area (must exist).
    pub area_id: Option<&'a str>,
    /// Department name.
    pub department: Option<&'a str>,
    /// Grids (must be existing grids).
    pub grid_ids: &'a [String],
}

/// Longest accepted username, in characters.
pub const MAX_USERNAME_CHARS: usize = 64;

/// Check a username: 1–64 characters, no whitespace or control characters.
pub fn validate_username(username: &str) -> AppResult<()> {
    let n = username.chars().count();
    if n == 0 || n > MAX_USERNAME_CHARS {
        return Err(AppError::invalid(format!(
            "username must be 1 to {MAX_USERNAME_CHARS} characters"
        )));
    }
    if username
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(AppError::invalid(
            "username must not contain spaces or control characters",
        ));
    }
    Ok(())
}

/// Create a user with their grids. Validates the username, that it is free (409
/// `username_taken`), that the area exists and that every grid is an existing grid (422).
/// Run it inside a write transaction so the user and grids land together.
pub fn insert_user(conn: &mut DbConnection, new: &NewUser<'_>) -> AppResult<User> {
    validate_username(new.username)?;
    if find_by_username(conn, new.username)?.is_some() {
        return Err(
            AppError::conflict(format!("username {} is taken", new.username))
                .with_code("username_taken"),
        );
    }
    if let Some(area_id) = new.area_id {
        if super::areas::find_area(conn, area_id)?.is_none() {
            return Err(AppError::invalid(format!("area {area_id} does not exist")));
        }
    }
    let missing = missing_grids(conn, new.grid_ids)?;
    if !missing.is_empty() {
        return Err(AppError::invalid(format!(
            "not an existing grid: {}",
            missing.join(", ")
        )));
    }
    let now = super::now_ms();
    let user = User {
        id: uuid::Uuid::now_v7().to_string(),
        username: new.username.to_owned(),
        password_hash: new.password_hash.to_owned(),
        display_name: new.display_name.map(str::to_owned),
        role: new.role.as_str().to_owned(),
        area_id: new.area_id.map(str::to_owned),
        department: new.department.map(str::to_owned),
        active: true,
        created_at: now,
        updated_at: now,
    };
    diesel::insert_into(users::table)
        .values(&user)
        .execute(conn)?;
    set_grids(conn, &user.id, new.grid_ids)?;
    Ok(user)
}

/// Replace a user's grids (the caller has checked they are grids).
pub fn set_grids(conn: &mut DbConnection, user_id: &str, grid_ids: &[String]) -> AppResult<()> {
    diesel::delete(user_grids::table.filter(user_grids::user_id.eq(user_id))).execute(conn)?;
    let mut unique: Vec<&String> = grid_ids.iter().collect();
    unique.sort();
    unique.dedup();
    // One statement per row: MultiConnection has no batch insert on SQLite.
    for grid_id in unique {
        diesel::insert_into(user_grids::table)
            .values((
                user_grids::user_id.eq(user_id),
                user_grids::grid_id.eq(grid_id),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The user with this username.
pub fn find_by_username(conn: &mut DbConnection, username: &str) -> AppResult<Option<User>> {
    Ok(users::table
        .filter(users::username.eq(username))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// The user with this id.
pub fn find_by_id(conn: &mut DbConnection, id: &str) -> AppResult<Option<User>> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// The user's grid ids, sorted.
pub fn grid_ids(conn: &mut DbConnection, user_id: &str) -> AppResult<Vec<String>> {
    Ok(user_grids::table
        .filter(user_grids::user_id.eq(user_id))
        .select(user_grids::grid_id)
        .order(user_grids::grid_id.asc())
        .load(conn)?)
}

/// How many users exist.
pub fn count(conn: &mut DbConnection) -> AppResult<i64> {
    Ok(users::table.count().get_result(conn)?)
}

/// A user as the administration API shows it (never the password hash).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UserView {
    /// UUID.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Shown name.
    pub display_name: Option<String>,
    /// Role.
    pub role: String,
    /// Assigned grids (workers), sorted.
    pub grid_ids: Vec<String>,
    /// Area (supervisors: the root of their scope).
    pub area_id: Option<String>,
    /// Department (department users).
    pub department: Option<String>,
    /// Whether the user may log in.
    pub active: bool,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

impl UserView {
    /// The view of `user` with its grids.
    pub fn new(user: User, grid_ids: Vec<String>) -> UserView {
        UserView {
            created_at: sync_core::Timestamp(user.created_at).to_rfc3339(),
            updated_at: sync_core::Timestamp(user.updated_at).to_rfc3339(),
            id: user.id,
            username: user.username,
            display_name: user.display_name,
            role: user.role,
            grid_ids,
            area_id: user.area_id,
            department: user.department,
            active: user.active,
        }
    }
}

/// The view of the user with this id.
pub fn view(conn: &mut DbConnection, id: &str) -> AppResult<Option<UserView>> {
    let Some(user) = find_by_id(conn, id)? else {
        return Ok(None);
    };
    let grids = grid_ids(conn, &user.id)?;
    Ok(Some(UserView::new(user, grids)))
}

/// A page of users ordered by id (UUID v7: creation order) strictly after `after`,
/// optionally of one role, with their grids (one query for the page's grids).
pub fn list_page(
    conn: &mut DbConnection,
    role: Option<Role>,
    after: Option<&str>,
    limit: i64,
) -> AppResult<Vec<UserView>> {
    let mut query = users::table
        .select(User::as_select())
        .order(users::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(users::id.gt(after.to_owned()));
    }
    if let Some(role) = role {
        query = query.filter(users::role.eq(role.as_str()));
    }
    let page: Vec<User> = query.load(conn)?;
    let ids: Vec<&str> = page.iter().map(|u| u.id.as_str()).collect();
    let pairs: Vec<(String, String)> = user_grids::table
        .filter(user_grids::user_id.eq_any(ids))
        .select((user_grids::user_id, user_grids::grid_id))
        .order((user_grids::user_id.asc(), user_grids::grid_id.asc()))
        .load(conn)?;
    Ok(page
        .into_iter()
        .map(|u| {
            let grids = pairs
                .iter()
                .filter(|(uid, _)| *uid == u.id)
                .map(|(_, g)| g.clone())
                .collect();
            UserView::new(u, grids)
        })
        .collect())
}

/// Ids of the users attached to any of `area_ids`: by their `area_id` or by one of their
/// grids (a supervisor's people).
pub fn ids_in_areas(conn: &mut DbConnection, area_ids: &[String]) -> AppResult<Vec<String>> {
    let mut ids: Vec<String> = users::table
        .filter(users::area_id.eq_any(area_ids))
        .select(users::id)
        .load(conn)?;
    ids.extend(
        user_grids::table
            .filter(user_grids::grid_id.eq_any(area_ids))
            .select(user_grids::user_id)
            .load::<String>(conn)?,
    );
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// How many active admins exist other than `except`.
pub fn count_other_active_admins(conn: &mut DbConnection, except: &str) -> AppResult<i64> {
    Ok(users::table
        .filter(users::role.eq(Role::Admin.as_str()))
        .filter(users::active.eq(true))
        .filter(users::id.ne(except))
        .count()
        .get_result(conn)?)
}

/// The stored columns of a user that an update may change (the caller validated them).
#[derive(Debug, Clone, PartialEq, AsChangeset)]
#[diesel(table_name = users, treat_none_as_null = true)]
pub struct UserChanges {
    /// Shown name.
    pub display_name: Option<String>,
    /// Role.
    pub role: String,
    /// Area.
    pub area_id: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Whether the user may log in.
    pub active: bool,
    /// ms since epoch.
    pub updated_at: i64,
}

/// Write `changes` (and, when given, a new password hash) to user `id`.
pub fn update_user(
    conn: &mut DbConnection,
    id: &str,
    changes: &UserChanges,
    password_hash: Option<&str>,
) -> AppResult<()> {
    diesel::update(users::table.find(id))
        .set(changes)
        .execute(conn)?;
    if let Some(hash) = password_hash {
        diesel::update(users::table.find(id))
            .set(users::password_hash.eq(hash))
            .execute(conn)?;
    }
    Ok(())
}
