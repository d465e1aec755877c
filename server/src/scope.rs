//! What part of the city a caller may see and write: the one place scope is decided.
//!
//! - a worker: the grids assigned to them (`user_grids`), read per request, so a withdrawn
//!   grid is out of scope at the very next sync;
//! - a supervisor: every grid in their area's subtree;
//! - an admin: every grid;
//! - a department: no grid as such — only hazards dispatched to it (checked per hazard).
//!
//! Invariant: every read or write of grid data asks this module; objects outside the scope
//! are answered as if they did not exist (404) by the API and `out_of_scope` by sync.

use std::collections::BTreeSet;

use diesel::prelude::*;
use sync_core::ids::GridId;
use sync_core::workflow::Role;

use crate::db::areas::{subtree_ids, AreaLevel};
use crate::db::schema::{areas, user_grids};
use crate::db::DbConnection;
use crate::error::AppResult;

/// The grids a caller may touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GridScope {
    /// Every grid (admins).
    All,
    /// These grids only (workers, supervisors).
    Grids(BTreeSet<GridId>),
    /// Hazards dispatched to this department, in whatever grid.
    Department(String),
}

impl GridScope {
    /// Whether records of `grid` may be written by the caller (a department may write only
    /// actions on hazards dispatched to it, which sync checks per hazard).
    pub fn contains(&self, grid: GridId) -> bool {
        match self {
            GridScope::All | GridScope::Department(_) => true,
            GridScope::Grids(grids) => grids.contains(&grid),
        }
    }

    /// Whether whole grids may be read (false for departments).
    pub fn sees_grid(&self, grid: GridId) -> bool {
        match self {
            GridScope::All => true,
            GridScope::Grids(grids) => grids.contains(&grid),
            GridScope::Department(_) => false,
        }
    }

    /// The grids whose records sync to the caller, sorted.
    pub fn grid_list(&self, conn: &mut DbConnection) -> AppResult<Vec<GridId>> {
        Ok(match self {
            GridScope::All => all_grids(conn)?,
            GridScope::Grids(grids) => grids.iter().copied().collect(),
            GridScope::Department(_) => Vec::new(),
        })
    }
}

fn parse_ids(ids: Vec<String>) -> BTreeSet<GridId> {
    // Ids in the database were validated on the way in; skip rather than fail on a bad one.
    ids.iter().filter_map(|s| s.parse().ok()).collect()
}

fn all_grids(conn: &mut DbConnection) -> AppResult<Vec<GridId>> {
    let ids: Vec<String> = areas::table
        .filter(areas::level.eq(AreaLevel::Grid.as_str()))
        .select(areas::id)
        .load(conn)?;
    Ok(parse_ids(ids).into_iter().collect())
}

/// The scope of a user with this role, area and department.
pub fn scope_of(
    conn: &mut DbConnection,
    user_id: &str,
    role: Role,
    area_id: Option<&str>,
    department: Option<&str>,
) -> AppResult<GridScope> {
    Ok(match role {
        Role::Admin => GridScope::All,
        Role::Worker => {
            let ids: Vec<String> = user_grids::table
                .filter(user_grids::user_id.eq(user_id))
                .select(user_grids::grid_id)
                .load(conn)?;
            GridScope::Grids(parse_ids(ids))
        }
        Role::Supervisor => match area_id {
            None => GridScope::Grids(BTreeSet::new()),
            Some(area) => {
                let subtree = subtree_ids(conn, area)?;
                let grids: Vec<String> = areas::table
                    .filter(areas::id.eq_any(&subtree))
                    .filter(areas::level.eq(AreaLevel::Grid.as_str()))
                    .select(areas::id)
                    .load(conn)?;
                GridScope::Grids(parse_ids(grids))
            }
        },
        Role::Department => GridScope::Department(department.unwrap_or_default().to_owned()),
    })
}
