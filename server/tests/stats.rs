//! `GET /api/v1/stats/grids` and `/stats/workers` on both backends, checked against values
//! computed by hand on a seeded data set (rows written straight into the tables with chosen
//! server and phone times, so every figure is known in advance).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth_support;
mod supervisor_support;

use diesel::prelude::*;
use grid_server::db::schema::{hazard_actions, hazards, households, needs, patrols, visits};
use grid_server::sync::rows::{
    HazardActionRow, HazardRow, HouseholdRow, NeedRow, PatrolRow, VisitRow,
};
use grid_server::testing::TestServer;
use serde_json::{json, Value};
use supervisor_support::*;

const H: i64 = 3_600_000;
const D: i64 = 24 * H;
/// 2026-11-01T00:00:00Z: the period is [T0, T0 + 7 days).
const T0: i64 = 1_793_491_200_000;
const PERIOD: &str = "from=2026-11-01T00:00:00Z&to=2026-11-08T00:00:00Z";

fn household(grid: &str, tags: &[&str], deleted: bool) -> HouseholdRow {
    HouseholdRow {
        id: new_id(),
        grid_id: grid.into(),
        address: "幸福路".into(),
        building: None,
        unit: None,
        room: None,
        head_name: None,
        phone: None,
        members: None,
        tags: Some(serde_json::to_string(tags).unwrap()),
        care_level: None,
        notes: None,
        deleted,
        change_seq: 1,
        versions: "{}".into(),
        created_at: T0 - 30 * D,
        updated_at: T0 - 30 * D,
        origin_device: None,
        client_time: None,
    }
}

#[allow(clippy::too_many_arguments)]
fn visit(
    grid: &str,
    hh: &str,
    worker: &str,
    at: i64,
    outcome: &str,
    created: i64,
    lag: Option<(i64, &str)>,
) -> VisitRow {
    VisitRow {
        id: new_id(),
        grid_id: grid.into(),
        household_id: Some(hh.into()),
        worker_id: Some(worker.into()),
        visited_at: Some(at),
        mode: Some("in_person".into()),
        outcome: Some(outcome.into()),
        summary: None,
        follow_up_due: None,
        lat: None,
        lon: None,
        change_seq: 1,
        versions: "{}".into(),
        created_at: created,
        updated_at: created,
        origin_device: lag.map(|(_, d)| d.to_owned()),
        client_time: lag.map(|(l, _)| created - l),
    }
}

fn patrol(grid: &str, worker: &str, started: i64) -> PatrolRow {
    PatrolRow {
        id: new_id(),
        grid_id: grid.into(),
        worker_id: Some(worker.into()),
        started_at: Some(started),
        ended_at: None,
        status: Some("ended".into()),
        summary: None,
        change_seq: 1,
        versions: "{}".into(),
        created_at: started,
        updated_at: started,
        origin_device: None,
        client_time: None,
    }
}

fn need(grid: &str, hh: &str, status: &str, created: i64, updated: i64) -> NeedRow {
    NeedRow {
        id: new_id(),
        grid_id: grid.into(),
        household_id: Some(hh.into()),
        visit_id: None,
        category: Some("medical".into()),
        description: Some("x".into()),
        urgency: None,
        status: Some(status.into()),
        due_on: None,
        resolution: None,
        change_seq: 1,
        versions: "{}".into(),
        created_at: created,
        updated_at: updated,
        origin_device: None,
        client_time: None,
    }
}

fn hazard(grid: &str, reporter: &str, status: &str, due: Option<i64>, created: i64) -> HazardRow {
    HazardRow {
        id: new_id(),
        grid_id: grid.into(),
        reporter_id: Some(reporter.into()),
        source: Some("patrol".into()),
        category: Some("gas".into()),
        severity: Some("high".into()),
        title: "隐患".into(),
        description: None,
        lat: None,
        lon: None,
        address: None,
        status: status.into(),
        assignee_department: None,
        due_at: due,
        change_seq: 1,
        versions: "{}".into(),
        created_at: created,
        updated_at: created,
        origin_device: None,
        client_time: None,
    }
}

fn act_row(h: &HazardRow, actor: &str, action: &str, effect: &str, at: i64) -> HazardActionRow {
    HazardActionRow {
        id: new_id(),
        grid_id: h.grid_id.clone(),
        hazard_id: h.id.clone(),
        actor_id: actor.into(),
        action: action.into(),
        note: None,
        department: None,
        due_at: None,
        at: None,
        effect: effect.into(),
        reason: None,
        server_order: at,
        change_seq: 1,
        versions: "{}".into(),
        created_at: at,
        updated_at: at,
        origin_device: None,
        client_time: None,
    }
}

/// The data set; returns nothing: the expectations are written out in the tests.
async fn seed(server: &TestServer, c: &City) {
    let (g, og) = (c.tree.grid.clone(), c.tree.other_grid.clone());
    let (w1, w2, sup, fire) = (
        c.worker.user_id.clone(),
        c.other_worker.user_id.clone(),
        c.sup.user_id.clone(),
        c.fire.user_id.clone(),
    );
    let (d1, dsup) = (c.worker.device.clone(), c.sup.device.clone());
    server
        .pool()
        .write(move |conn| {
            let h1 = household(&g, &["elderly_alone"], false);
            let h2 = household(&g, &["elderly_alone", "veteran"], false);
            let h3 = household(&g, &[], false);
            let h4 = household(&g, &["disabled"], false);
            let h5 = household(&g, &["elderly_alone"], true);
            let oh = household(&og, &["elderly_alone"], false);
            for h in [&h1, &h2, &h3, &h4, &h5, &oh] {
                diesel::insert_into(households::table)
                    .values(h)
                    .execute(conn)?;
            }
            let vs = [
                visit(&g, &h1.id, &w1, T0 + D, "met", T0 + D + H, Some((H, &d1))),
                visit(
                    &g,
                    &h1.id,
                    &w1,
                    T0 + 6 * D,
                    "met",
                    T0 + 6 * D + 3 * H,
                    Some((3 * H, &d1)),
                ),
                visit(
                    &g,
                    &h2.id,
                    &w1,
                    T0 + 2 * D,
                    "not_home",
                    T0 + 2 * D + 2 * H,
                    Some((2 * H, &d1)),
                ),
                visit(&g, &h4.id, &w1, T0 - D, "met", T0 - D, None),
                visit(&g, &h5.id, &w1, T0 + 3 * D, "met", T0 + 3 * D, None),
                visit(&g, &h3.id, &w1, T0 + 10 * D, "met", T0 + 10 * D, None),
                visit(&og, &oh.id, &w2, T0 + D, "refused", T0 + D, None),
            ];
            for v in &vs {
                diesel::insert_into(visits::table).values(v).execute(conn)?;
            }
            for p in [
                patrol(&g, &w1, T0 + H),
                patrol(&g, &w1, T0 + 20 * H),
                patrol(&g, &w1, T0 + 23 * H),
                patrol(&g, &w1, T0 - 2 * H),
                patrol(&og, &w2, T0 + H),
            ] {
                diesel::insert_into(patrols::table)
                    .values(&p)
                    .execute(conn)?;
            }
            for n in [
                need(&g, &h1.id, "open", T0 + D, T0 + D),
                need(&g, &h2.id, "resolved", T0 + 2 * D, T0 + 4 * D),
                need(&g, &h3.id, "resolved", T0 - 10 * D, T0 + D),
                need(&g, &h4.id, "resolved", T0 - 10 * D, T0 - 5 * D),
            ] {
                diesel::insert_into(needs::table).values(&n).execute(conn)?;
            }
            let z1 = hazard(&g, &w1, "closed", None, T0);
            let z2 = hazard(&g, &w1, "dispatched", Some(T0 + 2 * D), T0 + D);
            let z3 = hazard(&g, &w1, "closed", None, T0 + 2 * D);
            let z4 = hazard(&g, &w1, "accepted", None, T0 + 3 * D);
            let z5 = hazard(&g, &w1, "closed", None, T0 - D);
            let oz = hazard(&og, &w2, "reported", Some(T0), T0 + D);
            for z in [&z1, &z2, &z3, &z4, &z5, &oz] {
                diesel::insert_into(hazards::table)
                    .values(z)
                    .execute(conn)?;
            }
            let mut sup_lagged = act_row(&z4, &sup, "comment", "applied", T0 + 3 * D + 8 * H);
            sup_lagged.origin_device = Some(dsup.clone());
            sup_lagged.client_time = Some(sup_lagged.created_at - 10 * H);
            let actions = [
                act_row(&z1, &w1, "submit", "applied", T0),
                act_row(&z1, &sup, "accept", "applied", T0 + 2 * H),
                act_row(&z1, &sup, "dispatch", "applied", T0 + 4 * H),
                act_row(&z1, &fire, "sign_for", "applied", T0 + 5 * H),
                act_row(&z1, &fire, "report_done", "applied", T0 + 10 * H),
                act_row(&z1, &w1, "verify_pass", "applied", T0 + 60 * H),
                act_row(&z2, &w1, "submit", "applied", T0 + D),
                act_row(&z2, &sup, "accept", "applied", T0 + D + 4 * H),
                act_row(&z2, &sup, "dispatch", "applied", T0 + D + 8 * H),
                act_row(&z3, &w1, "submit", "applied", T0 + 2 * D),
                act_row(&z3, &w1, "self_handle", "applied", T0 + 2 * D + H),
                act_row(&z3, &w1, "verify_pass", "applied", T0 + 2 * D + 3 * H),
                act_row(&z4, &w1, "submit", "applied", T0 + 3 * D),
                act_row(&z4, &sup, "dispatch", "no_effect", T0 + 3 * D + H),
                act_row(&z4, &sup, "accept", "applied", T0 + 3 * D + 6 * H),
                sup_lagged,
                act_row(&z5, &w1, "submit", "applied", T0 - D),
                act_row(&z5, &sup, "report_done", "applied", T0 - H),
                act_row(&z5, &w1, "verify_pass", "applied", T0 + H),
                act_row(&oz, &w2, "submit", "applied", T0 + D),
            ];
            for a in &actions {
                diesel::insert_into(hazard_actions::table)
                    .values(a)
                    .execute(conn)?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

async fn stats(server: &TestServer, path: &str, token: &str) -> Vec<Value> {
    let r = get(server, path, token).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.json["items"].as_array().unwrap().clone()
}

grid_server::backend_tests! {
    async fn grid_stats_match_hand_computed_values(server) {
        let c = city(&server).await;
        seed(&server, &c).await;
        let items = stats(&server, &format!("/api/v1/stats/grids?{PERIOD}"), &c.sup.token).await;
        assert_eq!(items.len(), 1, "only the supervisor's grid");
        let s = &items[0];
        let expect = json!({
            "grid_id": c.tree.grid, "grid_name": "第一网格",
            "from": "2026-11-01T00:00:00.000Z", "to": "2026-11-08T00:00:00.000Z",
            "households": 4, "households_visited": 2, "coverage": 0.5,
            "tagged": {
                "elderly_alone": {"interval_days": 7, "households": 2, "visited_within_interval": 1, "coverage": 0.5},
                "key_care": {"interval_days": 7, "households": 0, "visited_within_interval": 0, "coverage": null},
                "disabled": {"interval_days": 14, "households": 1, "visited_within_interval": 1, "coverage": 1.0},
                "low_income": {"interval_days": 30, "households": 0, "visited_within_interval": 0, "coverage": null},
                "veteran": {"interval_days": 30, "households": 1, "visited_within_interval": 0, "coverage": 0.0},
                "child": {"interval_days": 30, "households": 0, "visited_within_interval": 0, "coverage": null},
            },
            "patrols": 3, "patrol_days": 2,
            "visits": 4, "visits_by_outcome": {"met": 3, "not_home": 1, "refused": 0, "moved": 0},
            "needs_opened": 2, "needs_resolved": 2,
            "hazards_reported": 4, "hazards_self_handled": 1, "hazards_closed": 3, "hazards_overdue": 1,
            "median_hours": {"accept": 4.0, "dispatch": 6.0, "sign_for": 5.0, "disposal": 5.5, "close": 31.5},
            "sync_lag_hours": {"median": 2.0, "max": 3.0, "records": 3},
        });
        assert_eq!(s, &expect);

        // Admins get every grid, one per page when asked; the other grid has its own figures.
        let p1 = get(&server, &format!("/api/v1/stats/grids?{PERIOD}&limit=1"), &c.admin.token).await;
        assert_eq!(p1.json["items"].as_array().unwrap().len(), 1);
        let cursor = p1.json["next_cursor"].as_str().unwrap().to_owned();
        let p2 = get(&server, &format!("/api/v1/stats/grids?{PERIOD}&limit=1&cursor={cursor}"), &c.admin.token).await;
        assert_eq!(p2.json["next_cursor"], Value::Null);
        let both: Vec<Value> = p1.json["items"].as_array().unwrap().iter().chain(p2.json["items"].as_array().unwrap()).cloned().collect();
        let other = both.iter().find(|g| g["grid_id"] == c.tree.other_grid.as_str()).unwrap();
        assert_eq!((other["households"].as_i64(), other["households_visited"].as_i64()), (Some(1), Some(1)));
        assert_eq!(other["coverage"], 1.0);
        assert_eq!(other["visits_by_outcome"]["refused"], 1);
        assert_eq!(other["tagged"]["elderly_alone"]["visited_within_interval"], 0, "refused is not met");
        assert_eq!(other["hazards_overdue"], 1);
        assert_eq!(other["median_hours"]["accept"], Value::Null);
        assert_eq!(other["sync_lag_hours"], json!({"median": null, "max": null, "records": 0}));
        let mine = both.iter().find(|g| g["grid_id"] == c.tree.grid.as_str()).unwrap();
        assert_eq!(mine, &expect);

        // The other supervisor and a grid filter outside the scope see nothing of this grid.
        let theirs = stats(&server, &format!("/api/v1/stats/grids?{PERIOD}"), &c.other_sup.token).await;
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0]["grid_id"], c.tree.other_grid.as_str());
        assert!(stats(&server, &format!("/api/v1/stats/grids?{PERIOD}&grid_id={}", c.tree.other_grid), &c.sup.token).await.is_empty());

        // A different period changes the figures: the week before has the early visit.
        let before = stats(&server, "/api/v1/stats/grids?from=2026-10-25T00:00:00Z&to=2026-11-01T00:00:00Z", &c.sup.token).await;
        assert_eq!(before[0]["households_visited"], 1);
        assert_eq!(before[0]["patrols"], 1);
        assert_eq!(before[0]["hazards_reported"], 1);

        // Roles and parameters.
        assert_eq!(get(&server, "/api/v1/stats/grids", &c.worker.token).await.status, 403);
        assert_eq!(get(&server, "/api/v1/stats/grids", &c.fire.token).await.status, 403);
        assert_eq!(get(&server, "/api/v1/stats/grids?from=x", &c.sup.token).await.status, 422);
        assert_eq!(get(&server, "/api/v1/stats/grids?from=2026-11-08T00:00:00Z&to=2026-11-01T00:00:00Z", &c.sup.token).await.status, 422);
        assert_eq!(get(&server, "/api/v1/stats/grids", &c.sup.token).await.status, 200, "default period");

        // CSV flattens the nested figures into columns.
        let csv = get_csv(&server, &format!("/api/v1/stats/grids?{PERIOD}"), &c.sup.token).await;
        let rows = python_csv(&csv.text);
        let col = |n: &str| rows[0].iter().position(|h| h == n).unwrap_or_else(|| panic!("{n}"));
        assert_eq!(rows[1][col("coverage")], "0.5");
        assert_eq!(rows[1][col("tagged.elderly_alone.visited_within_interval")], "1");
        assert_eq!(rows[1][col("median_hours.close")], "31.5");
        assert_eq!(rows[1][col("visits_by_outcome.met")], "3");
        assert_eq!(rows[1][col("grid_name")], "第一网格");
    }

    async fn worker_stats_match_hand_computed_values(server) {
        let c = city(&server).await;
        seed(&server, &c).await;
        let items = stats(&server, &format!("/api/v1/stats/workers?{PERIOD}"), &c.sup.token).await;
        assert_eq!(items.len(), 1, "only workers of the supervisor's grids");
        let expect = json!({
            "worker_id": c.worker.user_id, "username": "w1", "display_name": "测试用户", "active": true,
            "from": "2026-11-01T00:00:00.000Z", "to": "2026-11-08T00:00:00.000Z",
            "patrols": 3, "patrol_days": 2, "visits": 4, "households_visited": 3,
            "hazards_reported": 4, "hazards_self_handled": 1,
            "verifications": 3, "verified_on_time": 2,
            "sync_lag_hours": {"median": 2.0, "max": 3.0, "records": 3},
        });
        assert_eq!(items[0], expect);
        for bad in ["minutes_online", "distance", "rank"] {
            assert!(items[0].get(bad).is_none());
        }
        let p1 = get(&server, &format!("/api/v1/stats/workers?{PERIOD}&limit=1"), &c.admin.token).await;
        let cursor = p1.json["next_cursor"].as_str().unwrap().to_owned();
        let p2 = get(&server, &format!("/api/v1/stats/workers?{PERIOD}&limit=1&cursor={cursor}"), &c.admin.token).await;
        assert_eq!(p2.json["next_cursor"], Value::Null);
        let all: Vec<Value> = p1.json["items"].as_array().unwrap().iter().chain(p2.json["items"].as_array().unwrap()).cloned().collect();
        assert_eq!(all.len(), 2);
        assert_ne!(all[0]["worker_id"], all[1]["worker_id"]);
        let w2 = all.iter().find(|w| w["username"] == "w2").unwrap();
        assert_eq!((w2["patrols"].as_i64(), w2["visits"].as_i64(), w2["hazards_reported"].as_i64()), (Some(1), Some(1), Some(1)));
        assert_eq!(w2["sync_lag_hours"]["records"], 0);
        let theirs = stats(&server, &format!("/api/v1/stats/workers?{PERIOD}"), &c.other_sup.token).await;
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0]["username"], "w2");
        assert_eq!(get(&server, "/api/v1/stats/workers", &c.worker.token).await.status, 403);
    }
}
