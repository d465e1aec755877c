//! Statistics for supervisors (考核 and coverage), per grid and per worker for a period
//! `[from, to)`, computed in SQL on both backends: aggregates with `GROUP BY`, never by
//! loading rows into memory.
//!
//! **Medians** use window functions available in SQLite ≥ 3.25 and PostgreSQL alike:
//! per group, `ROW_NUMBER() OVER (PARTITION BY k ORDER BY ms)` and `COUNT(*) OVER
//! (PARTITION BY k)` number the values, and the median is the average of the rows numbered
//! `(n + 1) / 2` and `(n + 2) / 2` (integer division: one row for odd `n`, the two middle
//! ones for even `n`). Only one row per group leaves the database.
//!
//! Both endpoints are paginated over their keys (grid id, worker id) with `limit`/`cursor`;
//! the aggregates run for the grids or workers of the page only.
//!
//! Definitions (docs/api.md, "Statistics", repeats them for users):
//! - *households*: households of the grid not marked deleted, now.
//! - *households visited*: distinct such households with a visit whose `visited_at` lies in
//!   the period (any outcome: the worker went); *coverage* = visited ÷ households (`null`
//!   without households).
//! - *tagged households visited within their interval*: for each tag of [`TAG_INTERVALS`],
//!   the grid's households with that tag, and how many of them had a visit with outcome
//!   `met` (the person was actually reached) within the tag's interval before the period's
//!   end (`min(to, now)`).
//! - *patrols*: patrols started in the period; *patrol days*: distinct calendar days, in
//!   China Standard Time (UTC+8, no daylight saving), on which a patrol started.
//! - *visits by outcome*: visits in the period per outcome.
//! - *needs opened*: needs that reached the server in the period; *needs resolved*: needs
//!   whose status is `resolved` and whose last change reached the server in the period
//!   (the record keeps no separate resolution time).
//! - *hazards reported*: hazards that reached the server in the period; *self-handled* and
//!   *closed*: hazards with an applied `self_handle` / `verify_pass` action received in the
//!   period; *overdue*: hazards of the grid overdue now (a current state, whatever the
//!   period).
//! - *median hours from report to accept, dispatch, sign-for, disposal and close*: over the
//!   hazards reported in the period, the time from the hazard reaching the server to the
//!   first applied action of that step reaching it (disposal: `report_done` or
//!   `self_handle`; close: `verify_pass`); hazards that have not reached a step do not count
//!   for it. Server times are used throughout: phone clocks drift, and the offline delay is
//!   reported separately as sync lag.
//! - *sync lag*: for records a worker's phone wrote (households, patrols, visits, needs,
//!   hazards, hazard actions) that reached the server in the period, `created_at` (server
//!   receipt) − `client_time` (the phone's clock when recorded): median and maximum hours,
//!   and how many records. Writes by supervisors and departments through the API are left
//!   out (they have no offline delay).
//! - per worker: *patrols*, *patrol days*, *visits*, *households visited*, *hazards
//!   reported* (as reporter), *self-handled* (applied `self_handle` actions), *verifications*
//!   (applied `verify_pass`/`verify_fail`) and *verified on time* (those made within
//!   [`VERIFY_WITHIN_HOURS`] of the hazard's disposal), *sync lag*. Activity counts only in
//!   the caller's grids. Nothing measures minutes online or distance walked, and workers are
//!   listed by username, not ranked.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Text};
use serde_json::{json, Map, Value};

use super::{rfc3339, sql_id_list};
use crate::db::schema::{areas, user_grids, users};
use crate::db::DbConnection;
use crate::error::AppResult;

/// How often a household with each tag should be visited (days). A household with several
/// tags counts under each. Households tagged `other` have no interval.
pub const TAG_INTERVALS: &[(&str, i64)] = &[
    ("elderly_alone", 7),
    ("key_care", 7),
    ("disabled", 14),
    ("low_income", 30),
    ("veteran", 30),
    ("child", 30),
];

/// A verification (核查) is on time when made within this many hours after the hazard was
/// disposed of.
pub const VERIFY_WITHIN_HOURS: i64 = 48;

/// The workflow steps whose durations are reported, with the actions that reach them.
pub const STEPS: &[(&str, &[&str])] = &[
    ("accept", &["accept"]),
    ("dispatch", &["dispatch"]),
    ("sign_for", &["sign_for"]),
    ("disposal", &["report_done", "self_handle"]),
    ("close", &["verify_pass"]),
];

/// The visit outcomes, in the order they are reported.
const OUTCOMES: &[&str] = &["met", "not_home", "refused", "moved"];

/// China Standard Time offset, for calendar days.
const CST_OFFSET_MS: i64 = 8 * 3600 * 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;
const HOUR_MS: f64 = 3_600_000.0;

/// The tables whose rows are written by phones and count for sync lag.
const LAG_TABLES: &[&str] = &[
    "households",
    "patrols",
    "visits",
    "needs",
    "hazards",
    "hazard_actions",
];

/// The period of a statistics request (ms, `[from, to)`) and the request time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: i64,
    pub to: i64,
    pub now: i64,
}

impl Period {
    /// The end of the look-back window for visit intervals: the period's end, but not later
    /// than now.
    fn end(&self) -> i64 {
        self.to.min(self.now)
    }
}

#[derive(QueryableByName, Debug)]
struct KeyCount {
    #[diesel(sql_type = Text)]
    k: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName, Debug)]
struct KeyCount2 {
    #[diesel(sql_type = Text)]
    k: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    m: i64,
}

#[derive(QueryableByName, Debug)]
struct KeyLabelCount {
    #[diesel(sql_type = Text)]
    k: String,
    #[diesel(sql_type = Text)]
    t: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName, Debug)]
struct KeyMedian {
    #[diesel(sql_type = Text)]
    k: String,
    #[diesel(sql_type = Double)]
    v: f64,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    mx: i64,
}

/// Run a complete SQL text (no bind parameters: see the module notes of `queries`).
fn load<T>(conn: &mut DbConnection, sql: &str) -> AppResult<Vec<T>>
where
    T: QueryableByName<diesel::pg::Pg> + QueryableByName<diesel::sqlite::Sqlite> + 'static,
{
    Ok(match conn {
        DbConnection::Postgresql(c) => diesel::sql_query(sql).load(c)?,
        DbConnection::Sqlite(c) => diesel::sql_query(sql).load(c)?,
    })
}

fn counts(conn: &mut DbConnection, sql: &str) -> AppResult<BTreeMap<String, i64>> {
    Ok(load::<KeyCount>(conn, sql)?
        .into_iter()
        .map(|r| (r.k, r.n))
        .collect())
}

fn counts2(conn: &mut DbConnection, sql: &str) -> AppResult<BTreeMap<String, (i64, i64)>> {
    Ok(load::<KeyCount2>(conn, sql)?
        .into_iter()
        .map(|r| (r.k, (r.n, r.m)))
        .collect())
}

fn labelled(conn: &mut DbConnection, sql: &str) -> AppResult<BTreeMap<(String, String), i64>> {
    Ok(load::<KeyLabelCount>(conn, sql)?
        .into_iter()
        .map(|r| ((r.k, r.t), r.n))
        .collect())
}

/// `(median, count, max)` per key of a subquery yielding columns `k` and `ms`.
fn medians(conn: &mut DbConnection, values: &str) -> AppResult<BTreeMap<String, (f64, i64, i64)>> {
    let sql = format!(
        "WITH d AS ({values}), \
         r AS (SELECT k, ms, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ms) AS rn, \
                      COUNT(*) OVER (PARTITION BY k) AS c, MAX(ms) OVER (PARTITION BY k) AS mx \
               FROM d) \
         SELECT k, CAST(AVG(CAST(ms AS DOUBLE PRECISION)) AS DOUBLE PRECISION) AS v, \
                MAX(c) AS n, MAX(mx) AS mx \
         FROM r WHERE rn IN ((c + 1) / 2, (c + 2) / 2) GROUP BY k"
    );
    Ok(load::<KeyMedian>(conn, &sql)?
        .into_iter()
        .map(|r| (r.k, (r.v, r.n, r.mx)))
        .collect())
}

fn hours(ms: f64) -> f64 {
    (ms / HOUR_MS * 100.0).round() / 100.0
}

fn in_list(values: &[&str]) -> String {
    // Constants of this module only (action names, outcomes): never client text.
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    format!("({})", quoted.join(", "))
}

fn lag_json(lag: Option<&(f64, i64, i64)>) -> Value {
    match lag {
        Some((median, n, max)) => {
            json!({"median": hours(*median), "max": hours(*max as f64), "records": n})
        }
        None => json!({"median": null, "max": null, "records": 0}),
    }
}

/// The sync-lag values of phone-written records: columns `k` (from `key`, an expression
/// over the union's `grid_id` and `user_id`) and `ms`.
fn lag_values(key: &str, grids: &str, p: &Period) -> String {
    let union: Vec<String> = LAG_TABLES
        .iter()
        .map(|t| {
            format!(
                "SELECT grid_id, origin_device, created_at, client_time FROM {t} \
                 WHERE grid_id IN {grids} AND created_at >= {from} AND created_at < {to} \
                 AND client_time IS NOT NULL AND origin_device IS NOT NULL",
                from = p.from,
                to = p.to
            )
        })
        .collect();
    format!(
        "SELECT {key} AS k, x.created_at - x.client_time AS ms \
         FROM ({}) x JOIN devices dv ON dv.id = x.origin_device \
         JOIN users u ON u.id = dv.user_id WHERE u.role = 'worker'",
        union.join(" UNION ALL ")
    )
}

// ---------------------------------------------------------------------------------------
// Per grid

/// The grids of a page: `(id, name)` sorted by id, after `after`, at most `limit`.
pub fn grid_page(
    conn: &mut DbConnection,
    grids: Option<&[String]>,
    after: Option<&str>,
    limit: i64,
) -> AppResult<Vec<(String, String)>> {
    let mut q = areas::table
        .filter(areas::level.eq("grid"))
        .select((areas::id, areas::name))
        .order(areas::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(g) = grids {
        q = q.filter(areas::id.eq_any(g.to_vec()));
    }
    if let Some(a) = after {
        q = q.filter(areas::id.gt(a.to_owned()));
    }
    Ok(q.load(conn)?)
}

/// The statistics of each grid of `page` (`(id, name)`) for the period.
pub fn grid_stats(
    conn: &mut DbConnection,
    page: &[(String, String)],
    p: &Period,
) -> AppResult<Vec<Value>> {
    let ids: Vec<String> = page.iter().map(|(id, _)| id.clone()).collect();
    let g = sql_id_list(&ids);
    let (from, to) = (p.from, p.to);
    let visits_in = format!("visited_at >= {from} AND visited_at < {to}");

    let households = counts(
        conn,
        &format!(
            "SELECT grid_id AS k, COUNT(*) AS n FROM households \
             WHERE deleted = FALSE AND grid_id IN {g} GROUP BY grid_id"
        ),
    )?;
    let visited = counts(
        conn,
        &format!(
            "SELECT h.grid_id AS k, COUNT(DISTINCT h.id) AS n FROM households h \
             JOIN visits v ON v.household_id = h.id \
             WHERE h.deleted = FALSE AND h.grid_id IN {g} AND v.{visits_in} \
             GROUP BY h.grid_id"
        ),
    )?;
    let by_outcome = labelled(
        conn,
        &format!(
            "SELECT grid_id AS k, outcome AS t, COUNT(*) AS n FROM visits \
             WHERE grid_id IN {g} AND outcome IS NOT NULL AND {visits_in} \
             GROUP BY grid_id, outcome"
        ),
    )?;
    let tag_union = |visited_only: bool| -> String {
        TAG_INTERVALS
            .iter()
            .map(|(tag, days)| {
                let like = format!("h.tags LIKE '%\"{tag}\"%'");
                if visited_only {
                    let since = p.end() - days * DAY_MS;
                    format!(
                        "SELECT h.grid_id AS k, '{tag}' AS t, COUNT(DISTINCT h.id) AS n \
                         FROM households h JOIN visits v ON v.household_id = h.id \
                         WHERE h.deleted = FALSE AND {like} AND h.grid_id IN {g} \
                         AND v.outcome = 'met' AND v.visited_at >= {since} \
                         AND v.visited_at < {end} GROUP BY h.grid_id",
                        end = p.end()
                    )
                } else {
                    format!(
                        "SELECT h.grid_id AS k, '{tag}' AS t, COUNT(*) AS n FROM households h \
                         WHERE h.deleted = FALSE AND {like} AND h.grid_id IN {g} \
                         GROUP BY h.grid_id"
                    )
                }
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    };
    let tagged = labelled(conn, &tag_union(false))?;
    let tagged_visited = labelled(conn, &tag_union(true))?;
    let patrols = counts2(
        conn,
        &format!(
            "SELECT grid_id AS k, COUNT(*) AS n, \
                    COUNT(DISTINCT (started_at + {CST_OFFSET_MS}) / {DAY_MS}) AS m \
             FROM patrols WHERE grid_id IN {g} AND started_at >= {from} AND started_at < {to} \
             GROUP BY grid_id"
        ),
    )?;
    let needs_opened = counts(
        conn,
        &format!(
            "SELECT grid_id AS k, COUNT(*) AS n FROM needs WHERE grid_id IN {g} \
             AND created_at >= {from} AND created_at < {to} GROUP BY grid_id"
        ),
    )?;
    let needs_resolved = counts(
        conn,
        &format!(
            "SELECT grid_id AS k, COUNT(*) AS n FROM needs WHERE grid_id IN {g} \
             AND status = 'resolved' AND updated_at >= {from} AND updated_at < {to} \
             GROUP BY grid_id"
        ),
    )?;
    let reported = counts(
        conn,
        &format!(
            "SELECT grid_id AS k, COUNT(*) AS n FROM hazards WHERE grid_id IN {g} \
             AND created_at >= {from} AND created_at < {to} GROUP BY grid_id"
        ),
    )?;
    let acted = |action: &str| {
        format!(
            "SELECT grid_id AS k, COUNT(DISTINCT hazard_id) AS n FROM hazard_actions \
             WHERE grid_id IN {g} AND action = '{action}' AND effect = 'applied' \
             AND created_at >= {from} AND created_at < {to} GROUP BY grid_id"
        )
    };
    let self_handled = counts(conn, &acted("self_handle"))?;
    let closed = counts(conn, &acted("verify_pass"))?;
    let overdue = counts(
        conn,
        &format!(
            "SELECT grid_id AS k, COUNT(*) AS n FROM hazards WHERE grid_id IN {g} \
             AND due_at < {now} AND status NOT IN {settled} GROUP BY grid_id",
            now = p.now,
            settled = in_list(super::hazards::SETTLED)
        ),
    )?;
    let mut steps = Vec::new();
    for (step, actions) in STEPS {
        let values = format!(
            "SELECT h.grid_id AS k, MIN(a.created_at) - h.created_at AS ms \
             FROM hazards h JOIN hazard_actions a ON a.hazard_id = h.id \
             WHERE a.effect = 'applied' AND a.action IN {actions} AND h.grid_id IN {g} \
             AND h.created_at >= {from} AND h.created_at < {to} \
             GROUP BY h.id, h.grid_id, h.created_at",
            actions = in_list(actions)
        );
        steps.push((*step, medians(conn, &values)?));
    }
    let lag = medians(conn, &lag_values("x.grid_id", &g, p))?;

    let get = |m: &BTreeMap<String, i64>, k: &str| m.get(k).copied().unwrap_or(0);
    let mut out = Vec::with_capacity(page.len());
    for (id, name) in page {
        let n_households = get(&households, id);
        let n_visited = get(&visited, id);
        let mut outcomes = Map::new();
        let mut n_visits = 0;
        for o in OUTCOMES {
            let n = by_outcome
                .get(&(id.clone(), (*o).to_owned()))
                .copied()
                .unwrap_or(0);
            n_visits += n;
            outcomes.insert((*o).to_owned(), json!(n));
        }
        let mut tags = Map::new();
        for (tag, days) in TAG_INTERVALS {
            let key = (id.clone(), (*tag).to_owned());
            let total = tagged.get(&key).copied().unwrap_or(0);
            let ok = tagged_visited.get(&key).copied().unwrap_or(0);
            tags.insert(
                (*tag).to_owned(),
                json!({"interval_days": days, "households": total,
                       "visited_within_interval": ok, "coverage": ratio(ok, total)}),
            );
        }
        let mut median_hours = Map::new();
        for (step, m) in &steps {
            median_hours.insert(
                (*step).to_owned(),
                m.get(id).map_or(Value::Null, |(v, _, _)| json!(hours(*v))),
            );
        }
        let (n_patrols, patrol_days) = patrols.get(id).copied().unwrap_or((0, 0));
        out.push(json!({
            "grid_id": id,
            "grid_name": name,
            "from": rfc3339(p.from),
            "to": rfc3339(p.to),
            "households": n_households,
            "households_visited": n_visited,
            "coverage": ratio(n_visited, n_households),
            "tagged": tags,
            "patrols": n_patrols,
            "patrol_days": patrol_days,
            "visits": n_visits,
            "visits_by_outcome": outcomes,
            "needs_opened": get(&needs_opened, id),
            "needs_resolved": get(&needs_resolved, id),
            "hazards_reported": get(&reported, id),
            "hazards_self_handled": get(&self_handled, id),
            "hazards_closed": get(&closed, id),
            "hazards_overdue": get(&overdue, id),
            "median_hours": median_hours,
            "sync_lag_hours": lag_json(lag.get(id)),
        }));
    }
    Ok(out)
}

fn ratio(part: i64, whole: i64) -> Value {
    if whole == 0 {
        Value::Null
    } else {
        json!(((part as f64 / whole as f64) * 10_000.0).round() / 10_000.0)
    }
}

/// The CSV columns of a grid's statistics.
pub fn grid_columns() -> Vec<String> {
    let mut cols: Vec<String> = [
        "grid_id",
        "grid_name",
        "from",
        "to",
        "households",
        "households_visited",
        "coverage",
        "patrols",
        "patrol_days",
        "visits",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    cols.extend(OUTCOMES.iter().map(|o| format!("visits_by_outcome.{o}")));
    for (tag, _) in TAG_INTERVALS {
        for f in ["households", "visited_within_interval", "coverage"] {
            cols.push(format!("tagged.{tag}.{f}"));
        }
    }
    cols.extend(
        [
            "needs_opened",
            "needs_resolved",
            "hazards_reported",
            "hazards_self_handled",
            "hazards_closed",
            "hazards_overdue",
        ]
        .iter()
        .map(|s| (*s).to_owned()),
    );
    cols.extend(STEPS.iter().map(|(s, _)| format!("median_hours.{s}")));
    cols.extend(lag_columns());
    cols
}

fn lag_columns() -> Vec<String> {
    ["median", "max", "records"]
        .iter()
        .map(|f| format!("sync_lag_hours.{f}"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Per worker

/// A worker of a statistics page: `(id, username, display name, active)`.
pub type WorkerKey = (String, String, Option<String>, bool);

/// The workers of a page, sorted by id. With
/// `grids`, only workers assigned to one of them.
pub fn worker_page(
    conn: &mut DbConnection,
    grids: Option<&[String]>,
    after: Option<&str>,
    limit: i64,
) -> AppResult<Vec<WorkerKey>> {
    let mut q = users::table
        .filter(users::role.eq("worker"))
        .select((
            users::id,
            users::username,
            users::display_name,
            users::active,
        ))
        .order(users::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(g) = grids {
        q = q.filter(
            users::id.eq_any(
                user_grids::table
                    .filter(user_grids::grid_id.eq_any(g.to_vec()))
                    .select(user_grids::user_id),
            ),
        );
    }
    if let Some(a) = after {
        q = q.filter(users::id.gt(a.to_owned()));
    }
    Ok(q.load(conn)?)
}

/// The statistics of each worker of `page` for the period, counting activity in `grids`
/// (`None`: everywhere).
pub fn worker_stats(
    conn: &mut DbConnection,
    page: &[WorkerKey],
    grids: Option<&[String]>,
    p: &Period,
) -> AppResult<Vec<Value>> {
    let ids: Vec<String> = page.iter().map(|w| w.0.clone()).collect();
    let w = sql_id_list(&ids);
    let grid_cond = |col: &str| match grids {
        Some(g) => format!("AND {col} IN {}", sql_id_list(g)),
        None => String::new(),
    };
    let (from, to) = (p.from, p.to);

    let patrols = counts2(
        conn,
        &format!(
            "SELECT worker_id AS k, COUNT(*) AS n, \
                    COUNT(DISTINCT (started_at + {CST_OFFSET_MS}) / {DAY_MS}) AS m \
             FROM patrols WHERE worker_id IN {w} {gc} \
             AND started_at >= {from} AND started_at < {to} GROUP BY worker_id",
            gc = grid_cond("grid_id")
        ),
    )?;
    let visits = counts2(
        conn,
        &format!(
            "SELECT worker_id AS k, COUNT(*) AS n, COUNT(DISTINCT household_id) AS m \
             FROM visits WHERE worker_id IN {w} {gc} \
             AND visited_at >= {from} AND visited_at < {to} GROUP BY worker_id",
            gc = grid_cond("grid_id")
        ),
    )?;
    let reported = counts(
        conn,
        &format!(
            "SELECT reporter_id AS k, COUNT(*) AS n FROM hazards WHERE reporter_id IN {w} {gc} \
             AND created_at >= {from} AND created_at < {to} GROUP BY reporter_id",
            gc = grid_cond("grid_id")
        ),
    )?;
    let self_handled = counts(
        conn,
        &format!(
            "SELECT actor_id AS k, COUNT(*) AS n FROM hazard_actions WHERE actor_id IN {w} {gc} \
             AND action = 'self_handle' AND effect = 'applied' \
             AND created_at >= {from} AND created_at < {to} GROUP BY actor_id",
            gc = grid_cond("grid_id")
        ),
    )?;
    let verified = counts2(
        conn,
        &format!(
            "SELECT v.actor_id AS k, COUNT(*) AS n, \
                    SUM(CASE WHEN v.created_at - (SELECT MAX(d.created_at) FROM hazard_actions d \
                        WHERE d.hazard_id = v.hazard_id AND d.effect = 'applied' \
                        AND d.action IN ('report_done', 'self_handle') \
                        AND d.server_order < v.server_order) <= {within} THEN 1 ELSE 0 END) AS m \
             FROM hazard_actions v WHERE v.actor_id IN {w} {gc} \
             AND v.action IN ('verify_pass', 'verify_fail') AND v.effect = 'applied' \
             AND v.created_at >= {from} AND v.created_at < {to} GROUP BY v.actor_id",
            within = VERIFY_WITHIN_HOURS * 3600 * 1000,
            gc = grid_cond("v.grid_id")
        ),
    )?;
    let lag_grids = match grids {
        Some(g) => sql_id_list(g),
        None => "(SELECT id FROM areas)".to_owned(),
    };
    let lag = medians(
        conn,
        &format!(
            "SELECT * FROM ({}) l WHERE l.k IN {w}",
            lag_values("u.id", &lag_grids, p)
        ),
    )?;

    let get = |m: &BTreeMap<String, i64>, k: &str| m.get(k).copied().unwrap_or(0);
    Ok(page
        .iter()
        .map(|(id, username, display_name, active)| {
            let (n_patrols, patrol_days) = patrols.get(id).copied().unwrap_or((0, 0));
            let (n_visits, households) = visits.get(id).copied().unwrap_or((0, 0));
            let (verifications, on_time) = verified.get(id).copied().unwrap_or((0, 0));
            json!({
                "worker_id": id,
                "username": username,
                "display_name": display_name,
                "active": active,
                "from": rfc3339(p.from),
                "to": rfc3339(p.to),
                "patrols": n_patrols,
                "patrol_days": patrol_days,
                "visits": n_visits,
                "households_visited": households,
                "hazards_reported": get(&reported, id),
                "hazards_self_handled": get(&self_handled, id),
                "verifications": verifications,
                "verified_on_time": on_time,
                "sync_lag_hours": lag_json(lag.get(id)),
            })
        })
        .collect())
}

/// The CSV columns of a worker's statistics.
pub fn worker_columns() -> Vec<String> {
    let mut cols: Vec<String> = [
        "worker_id",
        "username",
        "display_name",
        "active",
        "from",
        "to",
        "patrols",
        "patrol_days",
        "visits",
        "households_visited",
        "hazards_reported",
        "hazards_self_handled",
        "verifications",
        "verified_on_time",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    cols.extend(lag_columns());
    cols
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_intervals_name_known_tags() {
        for (tag, days) in TAG_INTERVALS {
            assert!(sync_core::collection::HOUSEHOLD_TAGS.contains(tag), "{tag}");
            assert!(*days > 0);
        }
    }

    #[test]
    fn ratios_and_hours_round() {
        assert_eq!(ratio(1, 3), json!(0.3333));
        assert_eq!(ratio(1, 0), Value::Null);
        assert!((hours(5_400_000.0) - 1.5).abs() < f64::EPSILON);
    }
}
