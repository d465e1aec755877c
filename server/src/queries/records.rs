//! The grid records supervisors browse: patrols (and a patrol's route as GeoJSON), visits,
//! households and needs — filtered lists over the typed tables sync writes.
//!
//! Every list is restricted to the caller's grids first (see [`super::ApiScope`]), then to
//! the client's filters, and paginated newest first on `(created_at, id)` (the time the
//! record reached the server, then its id: unique, so pages never overlap or skip).
//! Date ranges filter on the record's own domain time: a patrol's `started_at`, a visit's
//! `visited_at` (`from` inclusive, `to` exclusive).
//!
//! A patrol's route ([`track_geojson`]) is an RFC 7946 Feature: positions `[lon, lat]` in
//! `recorded_at` order (ties by point id). RFC 7946 requires two or more positions for a
//! `LineString`, so a route of one point is a `Point` geometry and a route of none has a
//! `null` geometry (both valid Features); `properties.point_count` says which.

use diesel::prelude::*;
use serde_json::{json, Value};
use sync_core::Collection;

use super::{opt_rfc3339, record_json, ApiScope, TimeKey};
use crate::db::schema::{households, needs, patrols, track_points, users, visits};
use crate::db::DbConnection;
use crate::error::{AppError, AppResult};
use crate::sync::rows::{HouseholdRow, NeedRow, PatrolRow, TrackPointRow, VisitRow};

/// Continue a newest-first listing strictly after `(created_at, id)`.
macro_rules! after_key {
    ($q:ident, $table:ident, $after:expr) => {
        if let Some((at, id)) = $after {
            $q = $q.filter(
                $table::created_at
                    .lt(at)
                    .or($table::created_at.eq(at).and($table::id.lt(id))),
            );
        }
    };
}

/// The filters of `GET /patrols`.
#[derive(Clone, Debug, Default)]
pub struct PatrolFilter {
    pub grids: Option<Vec<String>>,
    pub worker_id: Option<String>,
    pub status: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// One page of patrols.
pub fn patrols(
    conn: &mut DbConnection,
    f: &PatrolFilter,
    after: Option<TimeKey>,
    limit: i64,
) -> AppResult<Vec<PatrolRow>> {
    let mut q = patrols::table
        .select(PatrolRow::as_select())
        .order((patrols::created_at.desc(), patrols::id.desc()))
        .limit(limit)
        .into_boxed();
    after_key!(q, patrols, after);
    if let Some(g) = &f.grids {
        q = q.filter(patrols::grid_id.eq_any(g.clone()));
    }
    if let Some(w) = &f.worker_id {
        q = q.filter(patrols::worker_id.eq(w.clone()));
    }
    if let Some(s) = &f.status {
        q = q.filter(patrols::status.eq(s.clone()));
    }
    if let Some(from) = f.from {
        q = q.filter(patrols::started_at.ge(from));
    }
    if let Some(to) = f.to {
        q = q.filter(patrols::started_at.lt(to));
    }
    Ok(q.load(conn)?)
}

/// The filters of `GET /visits`.
#[derive(Clone, Debug, Default)]
pub struct VisitFilter {
    pub grids: Option<Vec<String>>,
    pub household_id: Option<String>,
    pub worker_id: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// One page of visits.
pub fn visits(
    conn: &mut DbConnection,
    f: &VisitFilter,
    after: Option<TimeKey>,
    limit: i64,
) -> AppResult<Vec<VisitRow>> {
    let mut q = visits::table
        .select(VisitRow::as_select())
        .order((visits::created_at.desc(), visits::id.desc()))
        .limit(limit)
        .into_boxed();
    after_key!(q, visits, after);
    if let Some(g) = &f.grids {
        q = q.filter(visits::grid_id.eq_any(g.clone()));
    }
    if let Some(h) = &f.household_id {
        q = q.filter(visits::household_id.eq(h.clone()));
    }
    if let Some(w) = &f.worker_id {
        q = q.filter(visits::worker_id.eq(w.clone()));
    }
    if let Some(o) = &f.outcome {
        q = q.filter(visits::outcome.eq(o.clone()));
    }
    if let Some(from) = f.from {
        q = q.filter(visits::visited_at.ge(from));
    }
    if let Some(to) = f.to {
        q = q.filter(visits::visited_at.lt(to));
    }
    Ok(q.load(conn)?)
}

/// The filters of `GET /households`.
#[derive(Clone, Debug, Default)]
pub struct HouseholdFilter {
    pub grids: Option<Vec<String>>,
    /// A tag from the fixed tag list (checked by the caller).
    pub tag: Option<String>,
    pub care_level: Option<String>,
    /// Also list households marked deleted.
    pub include_deleted: bool,
}

/// One page of households.
pub fn households(
    conn: &mut DbConnection,
    f: &HouseholdFilter,
    after: Option<TimeKey>,
    limit: i64,
) -> AppResult<Vec<HouseholdRow>> {
    let mut q = households::table
        .select(HouseholdRow::as_select())
        .order((households::created_at.desc(), households::id.desc()))
        .limit(limit)
        .into_boxed();
    after_key!(q, households, after);
    if let Some(g) = &f.grids {
        q = q.filter(households::grid_id.eq_any(g.clone()));
    }
    if let Some(tag) = &f.tag {
        // Tags are stored as a JSON array of known names; a quoted name matches exactly one.
        q = q.filter(households::tags.like(format!("%\"{tag}\"%")));
    }
    if let Some(c) = &f.care_level {
        q = q.filter(households::care_level.eq(c.clone()));
    }
    if !f.include_deleted {
        q = q.filter(households::deleted.eq(false));
    }
    Ok(q.load(conn)?)
}

/// The filters of `GET /needs`.
#[derive(Clone, Debug, Default)]
pub struct NeedFilter {
    pub grids: Option<Vec<String>>,
    pub status: Option<String>,
    pub household_id: Option<String>,
    pub category: Option<String>,
    pub urgency: Option<String>,
}

/// One page of needs.
pub fn needs(
    conn: &mut DbConnection,
    f: &NeedFilter,
    after: Option<TimeKey>,
    limit: i64,
) -> AppResult<Vec<NeedRow>> {
    let mut q = needs::table
        .select(NeedRow::as_select())
        .order((needs::created_at.desc(), needs::id.desc()))
        .limit(limit)
        .into_boxed();
    after_key!(q, needs, after);
    if let Some(g) = &f.grids {
        q = q.filter(needs::grid_id.eq_any(g.clone()));
    }
    if let Some(s) = &f.status {
        q = q.filter(needs::status.eq(s.clone()));
    }
    if let Some(h) = &f.household_id {
        q = q.filter(needs::household_id.eq(h.clone()));
    }
    if let Some(c) = &f.category {
        q = q.filter(needs::category.eq(c.clone()));
    }
    if let Some(u) = &f.urgency {
        q = q.filter(needs::urgency.eq(u.clone()));
    }
    Ok(q.load(conn)?)
}

/// Rows as API items (see [`record_json`]).
pub fn items<R: crate::sync::rows::RecordRow>(
    collection: Collection,
    rows: &[R],
) -> AppResult<Vec<Value>> {
    rows.iter()
        .map(|r| record_json(collection, r).map(Value::Object))
        .collect()
}

/// A patrol's route as an RFC 7946 GeoJSON Feature (see the module notes); 404 when the
/// patrol does not exist or lies outside the scope.
pub fn track_geojson(conn: &mut DbConnection, scope: &ApiScope, id: &str) -> AppResult<Value> {
    let not_found = || AppError::not_found("no such patrol");
    let patrol: PatrolRow = patrols::table
        .find(id)
        .select(PatrolRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(not_found)?;
    if !scope.sees_grid(&patrol.grid_id) {
        return Err(not_found());
    }
    let points: Vec<TrackPointRow> = track_points::table
        .filter(track_points::patrol_id.eq(id))
        .order((track_points::recorded_at.asc(), track_points::id.asc()))
        .select(TrackPointRow::as_select())
        .load(conn)?;
    let worker_name: Option<String> = match &patrol.worker_id {
        Some(w) => users::table
            .find(w)
            .select((users::username, users::display_name))
            .first::<(String, Option<String>)>(conn)
            .optional()?
            .map(|(u, d)| d.unwrap_or(u)),
        None => None,
    };
    let positions: Vec<Value> = points.iter().map(|p| json!([p.lon, p.lat])).collect();
    let geometry = match positions.len() {
        0 => Value::Null,
        1 => json!({"type": "Point", "coordinates": positions[0]}),
        _ => json!({"type": "LineString", "coordinates": positions}),
    };
    Ok(json!({
        "type": "Feature",
        "id": patrol.id,
        "geometry": geometry,
        "properties": {
            "patrol_id": patrol.id,
            "grid_id": patrol.grid_id,
            "worker_id": patrol.worker_id,
            "worker_name": worker_name,
            "status": patrol.status,
            "started_at": opt_rfc3339(patrol.started_at),
            "ended_at": opt_rfc3339(patrol.ended_at),
            "point_count": points.len(),
            "first_recorded_at": opt_rfc3339(points.first().map(|p| p.recorded_at)),
            "last_recorded_at": opt_rfc3339(points.last().map(|p| p.recorded_at)),
            "recorded_at": points.iter().map(|p| super::rfc3339(p.recorded_at)).collect::<Vec<_>>(),
        },
    }))
}
