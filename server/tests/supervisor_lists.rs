//! Patrols, visits, households and needs for supervisors over HTTP on both backends:
//! filters, pagination without gaps or repeats, scope isolation, CSV parsed back by Python,
//! and patrol routes as RFC 7946 GeoJSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth_support;
mod supervisor_support;

use grid_server::testing::TestServer;
use serde_json::{json, Value};
use supervisor_support::*;

struct Seeded {
    households: Vec<String>,
    deleted: String,
    visits: Vec<String>,
    patrol: String,
    one_point: String,
    no_points: String,
    needs: Vec<String>,
}

async fn seed(server: &TestServer, c: &City) -> Seeded {
    let g = &c.tree.grid;
    let w = &c.worker;
    let h: Vec<String> = (0..4).map(|_| new_id()).collect();
    let deleted = new_id();
    w.push_ok(server, vec![
        w.m("households", &h[0], g, json!({"address": "幸福路1号", "tags": ["elderly_alone"], "head_name": "王奶奶"}), json!({})),
        w.m("households", &h[1], g, json!({"address": "幸福路2号, 3单元", "tags": ["veteran", "elderly_alone"], "care_level": "key"}), json!({})),
        w.m("households", &h[2], g, json!({"address": "=1+2", "notes": "行一\n行二"}), json!({})),
        w.m("households", &h[3], g, json!({"address": "幸福路4号", "tags": ["disabled"]}), json!({})),
        w.m("households", &deleted, g, json!({"address": "已拆迁", "tags": ["elderly_alone"], "deleted": true}), json!({})),
    ]).await;
    let v: Vec<String> = (0..3).map(|_| new_id()).collect();
    w.push_ok(server, vec![
        w.m("visits", &v[0], g, json!({"household_id": h[0], "visited_at": "2026-11-02T09:00:00.000Z", "mode": "in_person", "outcome": "met", "summary": "身体良好"}), json!({})),
        w.m("visits", &v[1], g, json!({"household_id": h[0], "visited_at": "2026-11-09T09:00:00.000Z", "mode": "phone", "outcome": "met"}), json!({})),
        w.m("visits", &v[2], g, json!({"household_id": h[1], "visited_at": "2026-11-03T09:00:00.000Z", "mode": "in_person", "outcome": "not_home"}), json!({})),
    ]).await;
    let n: Vec<String> = (0..2).map(|_| new_id()).collect();
    w.push_ok(server, vec![
        w.m("needs", &n[0], g, json!({"household_id": h[0], "visit_id": v[0], "category": "medical", "description": "需要上门体检", "status": "open", "urgency": "high"}), json!({})),
        w.m("needs", &n[1], g, json!({"household_id": h[1], "category": "daily_living", "description": "助餐", "status": "resolved"}), json!({})),
    ]).await;
    let (patrol, one_point, no_points) = (new_id(), new_id(), new_id());
    let pt = |patrol: &str, at: &str, lat: f64, lon: f64| {
        w.m("track_points", &new_id(), g, json!({"patrol_id": patrol, "recorded_at": at, "lat": lat, "lon": lon, "accuracy_m": 5.0}), json!({}))
    };
    w.push_ok(server, vec![
        w.m("patrols", &patrol, g, json!({"started_at": "2026-11-02T01:00:00.000Z", "status": "ended", "ended_at": "2026-11-02T02:00:00.000Z"}), json!({})),
        w.m("patrols", &one_point, g, json!({"started_at": "2026-11-05T01:00:00.000Z", "status": "active"}), json!({})),
        w.m("patrols", &no_points, g, json!({"started_at": "2026-11-06T01:00:00.000Z", "status": "active"}), json!({})),
        // Pushed out of order: the route is in recorded_at order.
        pt(&patrol, "2026-11-02T01:20:00.000Z", 32.06, 118.79),
        pt(&patrol, "2026-11-02T01:00:00.000Z", 32.04, 118.77),
        pt(&patrol, "2026-11-02T01:10:00.000Z", 32.05, 118.78),
        pt(&one_point, "2026-11-05T01:00:00.000Z", 31.5, 120.25),
    ]).await;
    // Another community's records.
    let o = &c.other_worker;
    let og = &c.tree.other_grid;
    let oh = new_id();
    o.push_ok(server, vec![
        o.m("households", &oh, og, json!({"address": "别处1号", "tags": ["elderly_alone"]}), json!({})),
        o.m("visits", &new_id(), og, json!({"household_id": oh, "visited_at": "2026-11-02T09:00:00.000Z", "mode": "in_person", "outcome": "met"}), json!({})),
        o.m("needs", &new_id(), og, json!({"household_id": oh, "category": "legal", "description": "x", "status": "open"}), json!({})),
        o.m("patrols", &new_id(), og, json!({"started_at": "2026-11-02T01:00:00.000Z", "status": "active"}), json!({})),
    ]).await;
    Seeded {
        households: h,
        deleted,
        visits: v,
        patrol,
        one_point,
        no_points,
        needs: n,
    }
}

fn ids(items: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn items(server: &TestServer, path: &str, token: &str) -> Vec<Value> {
    let r = get(server, path, token).await;
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    r.json["items"].as_array().unwrap().clone()
}

grid_server::backend_tests! {
    async fn lists_filter_paginate_and_isolate(server) {
        let c = city(&server).await;
        let s = seed(&server, &c).await;
        let t = &c.sup.token;

        // Households: not deleted by default; by tag; pages of one without gaps or repeats.
        let all = collect_pages(&server, "/api/v1/households", t, 1).await;
        assert_eq!(ids(&all), sorted(s.households.clone()));
        let elderly = items(&server, "/api/v1/households?tag=elderly_alone", t).await;
        assert_eq!(ids(&elderly), sorted(vec![s.households[0].clone(), s.households[1].clone()]));
        let with_deleted = items(&server, "/api/v1/households?tag=elderly_alone&include_deleted=true", t).await;
        assert!(ids(&with_deleted).contains(&s.deleted));
        assert_eq!(items(&server, "/api/v1/households?care_level=key", t).await.len(), 1);
        let first = elderly.iter().find(|h| h["id"] == s.households[1].as_str()).unwrap();
        assert_eq!(first["tags"], json!(["elderly_alone", "veteran"]));
        assert_eq!(first["grid_id"], c.tree.grid.as_str());
        assert_eq!(first["phone"], Value::Null, "every field present");
        assert!(first["created_at"].as_str().unwrap().ends_with('Z'));
        assert!(first.get("versions").is_none() && first.get("change_seq").is_none());
        assert_eq!(items(&server, &format!("/api/v1/households?grid_id={}", c.tree.grid), t).await.len(), 4);

        // Visits: by household, by date range (visited_at), by outcome.
        assert_eq!(ids(&items(&server, &format!("/api/v1/visits?household_id={}", s.households[0]), t).await),
                   sorted(vec![s.visits[0].clone(), s.visits[1].clone()]));
        assert_eq!(ids(&items(&server, "/api/v1/visits?from=2026-11-02T00:00:00Z&to=2026-11-09T00:00:00Z", t).await),
                   sorted(vec![s.visits[0].clone(), s.visits[2].clone()]));
        assert_eq!(items(&server, "/api/v1/visits?outcome=not_home", t).await.len(), 1);
        assert_eq!(collect_pages(&server, "/api/v1/visits", t, 2).await.len(), 3);
        assert_eq!(items(&server, &format!("/api/v1/visits?worker_id={}", c.worker.user_id), t).await.len(), 3);

        // Needs by status.
        let open = items(&server, "/api/v1/needs?status=open", t).await;
        assert_eq!(ids(&open), vec![s.needs[0].clone()]);
        assert_eq!(open[0]["visit_id"], s.visits[0].as_str());
        assert_eq!(items(&server, "/api/v1/needs", t).await.len(), 2);
        assert_eq!(items(&server, "/api/v1/needs?category=daily_living", t).await.len(), 1);

        // Patrols by worker and by start time.
        assert_eq!(items(&server, &format!("/api/v1/patrols?worker_id={}", c.worker.user_id), t).await.len(), 3);
        assert_eq!(ids(&items(&server, "/api/v1/patrols?from=2026-11-05T00:00:00Z", t).await),
                   sorted(vec![s.one_point.clone(), s.no_points.clone()]));
        assert_eq!(items(&server, "/api/v1/patrols?status=ended", t).await.len(), 1);
        assert_eq!(items(&server, &format!("/api/v1/patrols?worker_id={}", c.other_worker.user_id), t).await.len(), 0);

        // Scope: the other community sees only its own; admins everything; others 403.
        let o = &c.other_sup.token;
        assert_eq!(items(&server, "/api/v1/households", o).await.len(), 1);
        assert_eq!(items(&server, "/api/v1/visits", o).await.len(), 1);
        assert_eq!(items(&server, "/api/v1/needs", o).await.len(), 1);
        assert_eq!(items(&server, "/api/v1/patrols", o).await.len(), 1);
        assert_eq!(items(&server, &format!("/api/v1/households?grid_id={}", c.tree.grid), o).await.len(), 0);
        assert_eq!(items(&server, "/api/v1/households", &c.admin.token).await.len(), 5);
        for path in ["/api/v1/households", "/api/v1/visits", "/api/v1/needs", "/api/v1/patrols"] {
            assert_eq!(get(&server, path, &c.worker.token).await.status, 403, "{path}");
            assert_eq!(get(&server, path, &c.fire.token).await.status, 403, "{path}");
        }
        for bad in ["/api/v1/households?tag=rich", "/api/v1/needs?status=done", "/api/v1/visits?outcome=x",
                    "/api/v1/patrols?status=x", "/api/v1/visits?from=nope", "/api/v1/households?limit=9999"] {
            assert_eq!(get(&server, bad, t).await.status, 422, "{bad}");
        }
    }

    async fn lists_as_csv(server) {
        let c = city(&server).await;
        let s = seed(&server, &c).await;
        let csv = get_csv(&server, "/api/v1/households?include_deleted=true", &c.sup.token).await;
        assert_eq!(csv.status, 200, "{}", csv.text);
        assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
        assert!(csv.headers["content-disposition"].to_str().unwrap().contains("households.csv"));
        assert!(csv.text.starts_with('\u{feff}'), "UTF-8 byte-order mark");
        assert!(csv.text.contains("\"幸福路2号, 3单元\""), "comma quoted");
        assert!(csv.text.contains("\"行一\n行二\""), "line break quoted");
        assert!(csv.text.contains("'=1+2"), "formula neutralised");
        let json = get(&server, "/api/v1/households?include_deleted=true", &c.sup.token).await;
        let rows = python_csv(&csv.text);
        let header = rows[0].clone();
        assert_eq!(&header[..3], &["id", "grid_id", "address"]);
        assert_eq!(rows.len(), 1 + 5);
        for (row, item) in rows[1..].iter().zip(json.json["items"].as_array().unwrap()) {
            assert_eq!(row.len(), header.len());
            for (col, cell) in header.iter().zip(row) {
                assert_eq!(cell, &csv_cell(&item[col.as_str()]), "{col}");
            }
        }
        let tags = header.iter().position(|h| h == "tags").unwrap();
        let row = rows.iter().find(|r| r[0] == s.households[1]).unwrap();
        assert_eq!(row[tags], r#"["elderly_alone","veteran"]"#);
        let addr = rows.iter().find(|r| r[0] == s.households[2]).unwrap();
        assert_eq!(addr[2], "'=1+2");
        // Every list answers CSV, with pagination in a header.
        for path in ["/api/v1/visits?limit=2", "/api/v1/needs", "/api/v1/patrols", "/api/v1/hazards",
                     "/api/v1/conflicts", "/api/v1/rejections", "/api/v1/audit", "/api/v1/stats/grids", "/api/v1/stats/workers"] {
            let r = get_csv(&server, path, &c.sup.token).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            assert!(r.text.starts_with('\u{feff}'), "{path}");
            assert!(!python_csv(&r.text).is_empty(), "{path}");
        }
        let visits = get_csv(&server, "/api/v1/visits?limit=2", &c.sup.token).await;
        let next = visits.headers["x-next-cursor"].to_str().unwrap();
        let rest = get_csv(&server, &format!("/api/v1/visits?limit=2&cursor={next}"), &c.sup.token).await;
        assert_eq!(python_csv(&rest.text).len(), 2, "header + the third visit");
        assert!(rest.headers.get("x-next-cursor").is_none());
    }

    async fn patrol_routes_are_geojson(server) {
        let c = city(&server).await;
        let s = seed(&server, &c).await;
        let resp = get(&server, &format!("/api/v1/patrols/{}/track.geojson", s.patrol), &c.sup.token).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(resp.headers["content-type"], "application/geo+json");
        let f = &resp.json;
        // RFC 7946: a Feature with a geometry and properties members.
        assert_eq!(f["type"], "Feature");
        assert!(f.get("properties").is_some() && f.get("geometry").is_some());
        assert_eq!(f["geometry"]["type"], "LineString");
        let coords = f["geometry"]["coordinates"].as_array().unwrap();
        assert!(coords.len() >= 2, "a LineString has two or more positions");
        for p in coords {
            let p = p.as_array().unwrap();
            assert_eq!(p.len(), 2);
            let (lon, lat) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
            assert!((-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat));
        }
        assert_eq!(f["geometry"]["coordinates"], json!([[118.77, 32.04], [118.78, 32.05], [118.79, 32.06]]),
                   "[lon, lat] in recorded_at order");
        let props = &f["properties"];
        assert_eq!(props["patrol_id"], s.patrol.as_str());
        assert_eq!(props["worker_id"], c.worker.user_id.as_str());
        assert_eq!(props["started_at"], "2026-11-02T01:00:00.000Z");
        assert_eq!(props["ended_at"], "2026-11-02T02:00:00.000Z");
        assert_eq!(props["point_count"], 3);
        assert_eq!(props["recorded_at"], json!(["2026-11-02T01:00:00.000Z", "2026-11-02T01:10:00.000Z", "2026-11-02T01:20:00.000Z"]));

        // One point: a Point geometry; none: a null geometry (LineString needs two).
        let one = get(&server, &format!("/api/v1/patrols/{}/track.geojson", s.one_point), &c.sup.token).await;
        assert_eq!(one.json["geometry"], json!({"type": "Point", "coordinates": [120.25, 31.5]}));
        let none = get(&server, &format!("/api/v1/patrols/{}/track.geojson", s.no_points), &c.sup.token).await;
        assert_eq!(none.json["type"], "Feature");
        assert_eq!(none.json["geometry"], Value::Null);
        assert_eq!(none.json["properties"]["point_count"], 0);

        // Scope: 404 outside it, 403 for other roles.
        assert_eq!(get(&server, &format!("/api/v1/patrols/{}/track.geojson", s.patrol), &c.other_sup.token).await.status, 404);
        assert_eq!(get(&server, &format!("/api/v1/patrols/{}/track.geojson", new_id()), &c.sup.token).await.status, 404);
        assert_eq!(get(&server, &format!("/api/v1/patrols/{}/track.geojson", s.patrol), &c.worker.token).await.status, 403);
        assert_eq!(get(&server, &format!("/api/v1/patrols/{}/track.geojson", s.patrol), &c.admin.token).await.status, 200);
    }
}
