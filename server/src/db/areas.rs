//! The area tree (district → street → community → grid). A grid is an area with level
//! `grid`; grid ids are area ids.
//!
//! Invariant: a child's level is below its parent's (checked by [`insert_area`]); a grid has
//! a parent unless it is the only level in use.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::areas;
use super::DbConnection;
use crate::error::{AppError, AppResult};

/// An area's level, from the top of the tree down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AreaLevel {
    /// 区
    District,
    /// 街道
    Street,
    /// 社区
    Community,
    /// 网格
    Grid,
}

impl AreaLevel {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AreaLevel::District => "district",
            AreaLevel::Street => "street",
            AreaLevel::Community => "community",
            AreaLevel::Grid => "grid",
        }
    }

    /// Parse a stored or wire name.
    pub fn parse(s: &str) -> Option<AreaLevel> {
        [
            AreaLevel::District,
            AreaLevel::Street,
            AreaLevel::Community,
            AreaLevel::Grid,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }
}

/// A stored area.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize)]
#[diesel(table_name = areas)]
pub struct Area {
    /// UUID.
    pub id: String,
    /// Display name, e.g. 山西路社区第一网格.
    pub name: String,
    /// Administrative code, unique when present.
    pub code: Option<String>,
    /// `district` | `street` | `community` | `grid`.
    pub level: String,
    /// The parent area.
    pub parent_id: Option<String>,
    /// Creation time, ms since epoch.
    pub created_at: i64,
}

/// Insert an area after checking its parent exists and sits above it. Returns the stored
/// area. A taken `code` is a 409.
pub fn insert_area(
    conn: &mut DbConnection,
    name: &str,
    code: Option<&str>,
    level: AreaLevel,
    parent_id: Option<&str>,
) -> AppResult<Area> {
    if let Some(parent_id) = parent_id {
        let parent = find_area(conn, parent_id)?
            .ok_or_else(|| AppError::invalid(format!("parent area {parent_id} does not exist")))?;
        let parent_level = AreaLevel::parse(&parent.level).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("bad stored level {}", parent.level))
        })?;
        if parent_level >= level {
            return Err(AppError::invalid(format!(
                "a {} cannot be under a {}",
                level.as_str(),
                parent_level.as_str()
            )));
        }
    }
    if let Some(code) = code {
        let taken: i64 = areas::table
            .filter(areas::code.eq(code))
            .count()
            .get_result(conn)?;
        if taken > 0 {
            return Err(
                AppError::conflict(format!("area code {code} is taken")).with_code("code_taken")
            );
        }
    }
    let area = Area {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        code: code.map(str::to_owned),
        level: level.as_str().to_owned(),
        parent_id: parent_id.map(str::to_owned),
        created_at: super::now_ms(),
    };
    diesel::insert_into(areas::table)
        .values(&area)
        .execute(conn)?;
    Ok(area)
}

/// The area with this id.
pub fn find_area(conn: &mut DbConnection, id: &str) -> AppResult<Option<Area>> {
    Ok(areas::table
        .find(id)
        .select(Area::as_select())
        .first(conn)
        .optional()?)
}

/// Every area, ordered by level then name.
pub fn list_areas(conn: &mut DbConnection) -> AppResult<Vec<Area>> {
    let mut all: Vec<Area> = areas::table.select(Area::as_select()).load(conn)?;
    all.sort_by(|a, b| {
        let la = AreaLevel::parse(&a.level);
        let lb = AreaLevel::parse(&b.level);
        la.cmp(&lb).then_with(|| a.name.cmp(&b.name))
    });
    Ok(all)
}

/// Of `ids`, those that are not existing grids (empty when all are grids).
pub fn missing_grids(conn: &mut DbConnection, ids: &[String]) -> AppResult<Vec<String>> {
    let found: Vec<String> = areas::table
        .filter(areas::id.eq_any(ids))
        .filter(areas::level.eq(AreaLevel::Grid.as_str()))
        .select(areas::id)
        .load(conn)?;
    Ok(ids
        .iter()
        .filter(|id| !found.contains(id))
        .cloned()
        .collect())
}

/// The ids of `root` and every area below it (a supervisor's scope).
pub fn subtree_ids(conn: &mut DbConnection, root: &str) -> AppResult<Vec<String>> {
    // Areas are few (thousands at most); walking the tree in memory keeps this portable.
    let all: Vec<(String, Option<String>)> = areas::table
        .select((areas::id, areas::parent_id))
        .load(conn)?;
    let mut out = vec![root.to_owned()];
    let mut i = 0;
    while i < out.len() {
        let current = out[i].clone();
        out.extend(
            all.iter()
                .filter(|(_, parent)| parent.as_deref() == Some(current.as_str()))
                .map(|(id, _)| id.clone()),
        );
        i += 1;
    }
    Ok(out)
}

/// The strict placement rule of the administration API: a district has no parent; a
/// street's parent is a district, a community's a street, a grid's a community (422
/// `invalid_hierarchy` otherwise, also for a parent that does not exist). Stricter than
/// [`insert_area`], which only requires the parent to sit somewhere above.
pub fn check_placement(
    conn: &mut DbConnection,
    level: AreaLevel,
    parent_id: Option<&str>,
) -> AppResult<()> {
    let expected = match level {
        AreaLevel::District => None,
        AreaLevel::Street => Some(AreaLevel::District),
        AreaLevel::Community => Some(AreaLevel::Street),
        AreaLevel::Grid => Some(AreaLevel::Community),
    };
    let invalid = |msg: String| AppError::invalid(msg).with_code("invalid_hierarchy");
    match (expected, parent_id) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(invalid("a district has no parent".to_owned())),
        (Some(want), None) => Err(invalid(format!(
            "a {} needs a parent_id (a {})",
            level.as_str(),
            want.as_str()
        ))),
        (Some(want), Some(parent_id)) => {
            let parent = find_area(conn, parent_id)?
                .ok_or_else(|| invalid(format!("parent area {parent_id} does not exist")))?;
            if parent.level == want.as_str() {
                Ok(())
            } else {
                Err(invalid(format!(
                    "the parent of a {} must be a {}, not a {}",
                    level.as_str(),
                    want.as_str(),
                    parent.level
                )))
            }
        }
    }
}

/// Filters of [`list_page`].
#[derive(Debug, Clone, Default)]
pub struct AreaFilter {
    /// Only these ids (a supervisor's subtree).
    pub ids: Option<Vec<String>>,
    /// Only this level.
    pub level: Option<AreaLevel>,
    /// Only children of this area.
    pub parent_id: Option<String>,
}

/// A page of areas ordered by id (UUID v7: creation order), strictly after `after`.
pub fn list_page(
    conn: &mut DbConnection,
    filter: &AreaFilter,
    after: Option<&str>,
    limit: i64,
) -> AppResult<Vec<Area>> {
    let mut query = areas::table
        .select(Area::as_select())
        .order(areas::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(areas::id.gt(after.to_owned()));
    }
    if let Some(ids) = &filter.ids {
        query = query.filter(areas::id.eq_any(ids.clone()));
    }
    if let Some(level) = filter.level {
        query = query.filter(areas::level.eq(level.as_str()));
    }
    if let Some(parent) = &filter.parent_id {
        query = query.filter(areas::parent_id.eq(parent.clone()));
    }
    Ok(query.load(conn)?)
}
