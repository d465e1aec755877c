//! The supervisor and department hazard API over HTTP on both backends: the full closed loop
//! from a phone report to closed (with the phone seeing each status), verdicts and errors of
//! API actions, department and supervisor scope isolation, list filters, pagination and CSV.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth_support;
mod supervisor_support;

use serde_json::{json, Value};
use supervisor_support::*;

fn status_on_phone(changes: &[Value], hazard: &str) -> String {
    pulled(changes, hazard)["fields"]["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn hazard_status(server: &grid_server::testing::TestServer, who: &Phone, id: &str) -> Value {
    let resp = get(server, &format!("/api/v1/hazards/{id}"), &who.token).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json["status"].clone()
}

grid_server::backend_tests! {
    async fn closed_loop_from_phone_report_to_closed(server) {
        let c = city(&server).await;
        let g = &c.tree.grid;
        let hz = c.worker.report_hazard(&server, g, hazard_fields("楼道电瓶车充电", "ebike_charging", "high")).await;

        // The supervisor sees the report in the list.
        let list = get(&server, "/api/v1/hazards", &c.sup.token).await;
        assert_eq!(list.status, 200, "{}", list.text);
        let items = list.json["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["id"], hz.as_str());
        assert_eq!(items[0]["status"], "reported");
        assert_eq!(items[0]["overdue"], false);
        assert_eq!(items[0]["reporter_id"], c.worker.user_id.as_str());

        // 立案 and 派遣 through the API.
        let accept = act(&server, &c.sup, &hz, json!({"action": "accept", "note": "立案"})).await;
        assert_eq!(accept.status, 201, "{}", accept.text);
        assert_eq!(accept.json["effect"], "applied");
        assert_eq!(accept.json["reason"], Value::Null);
        assert_eq!(accept.json["hazard_status"], "accepted");
        assert_eq!(accept.json["actor_id"], c.sup.user_id.as_str());
        assert_eq!(accept.json["device_id"], c.sup.device.as_str());
        let due = "2099-01-01T00:00:00.000Z";
        let dispatch = act(&server, &c.sup, &hz, json!({"action": "dispatch", "department": "消防", "due_at": due})).await;
        assert_eq!(dispatch.status, 201, "{}", dispatch.text);
        assert_eq!(dispatch.json["effect"], "applied");
        assert_eq!(dispatch.json["hazard_status"], "dispatched");

        // The phone sees the supervisor's actions at its next sync.
        let changes = c.worker.pull_all(&server).await;
        assert_eq!(status_on_phone(&changes, &hz), "dispatched");
        assert_eq!(pulled(&changes, &hz)["fields"]["assignee_department"], "消防");
        assert_eq!(pulled(&changes, &hz)["fields"]["due_at"], due);
        let api_action = pulled(&changes, accept.json["id"].as_str().unwrap());
        assert_eq!(api_action["fields"]["effect"], "applied");
        assert!(api_action["versions"]["action"].as_str().unwrap().ends_with(&c.sup.device));

        // The other department sees nothing and cannot act; the right one signs for it.
        assert_eq!(get(&server, &format!("/api/v1/hazards/{hz}"), &c.gas.token).await.status, 404);
        assert_eq!(get(&server, "/api/v1/hazards", &c.gas.token).await.json["items"], json!([]));
        assert_eq!(act(&server, &c.gas, &hz, json!({"action": "sign_for"})).await.status, 404);
        let fire_list = get(&server, "/api/v1/hazards", &c.fire.token).await;
        assert_eq!(fire_list.json["items"].as_array().unwrap().len(), 1);
        let forbidden = act(&server, &c.fire, &hz, json!({"action": "accept"})).await;
        assert_eq!(forbidden.status, 403, "{}", forbidden.text);
        assert_eq!(forbidden.error_code(), Some("forbidden"));
        let sign = act(&server, &c.fire, &hz, json!({"action": "sign_for", "note": "已报到"})).await;
        assert_eq!(sign.status, 201, "{}", sign.text);
        assert_eq!(sign.json["hazard_status"], "in_progress");
        assert_eq!(status_on_phone(&c.worker.pull_all(&server).await, &hz), "in_progress");

        // The supervisor of another community sees nothing of it.
        assert_eq!(get(&server, &format!("/api/v1/hazards/{hz}"), &c.other_sup.token).await.status, 404);
        assert_eq!(get(&server, "/api/v1/hazards", &c.other_sup.token).await.json["items"], json!([]));
        assert_eq!(act(&server, &c.other_sup, &hz, json!({"action": "comment", "note": "?"})).await.status, 404);

        let done = act(&server, &c.fire, &hz, json!({"action": "report_done", "note": "已清理"})).await;
        assert_eq!(done.json["hazard_status"], "disposed", "{}", done.text);
        assert_eq!(status_on_phone(&c.worker.pull_all(&server).await, &hz), "disposed");

        // 核查 on site by the worker's phone closes the case.
        c.worker.push_ok(&server, vec![
            c.worker.m("hazard_actions", &new_id(), g, action(&hz, "verify_pass", json!({"note": "现场核查通过"})), json!({})),
        ]).await;
        assert_eq!(hazard_status(&server, &c.sup, &hz).await, "closed");
        assert_eq!(status_on_phone(&c.worker.pull_all(&server).await, &hz), "closed");

        // An action that does not fit the status is recorded with no effect and a reason.
        let late = act(&server, &c.sup, &hz, json!({"action": "accept"})).await;
        assert_eq!(late.status, 201, "{}", late.text);
        assert_eq!(late.json["effect"], "no_effect");
        assert!(late.json["reason"].as_str().unwrap().contains("closed"), "{}", late.text);
        assert_eq!(late.json["hazard_status"], "closed");

        // The department no longer... still sees it: it stays dispatched to 消防 when closed.
        let detail = get(&server, &format!("/api/v1/hazards/{hz}"), &c.sup.token).await;
        assert_eq!(detail.status, 200);
        let timeline: Vec<(String, String)> = detail.json["actions"].as_array().unwrap().iter()
            .map(|a| (a["action"].as_str().unwrap().to_owned(), a["effect"].as_str().unwrap().to_owned()))
            .collect();
        let expect: Vec<(String, String)> = [
            ("submit", "applied"), ("accept", "applied"), ("dispatch", "applied"), ("sign_for", "applied"),
            ("report_done", "applied"), ("verify_pass", "applied"), ("accept", "no_effect"),
        ].iter().map(|(a, e)| (a.to_string(), e.to_string())).collect();
        assert_eq!(timeline, expect);
        let actions = detail.json["actions"].as_array().unwrap();
        let orders: Vec<i64> = actions.iter().map(|a| a["server_order"].as_i64().unwrap()).collect();
        assert!(orders.windows(2).all(|w| w[0] < w[1]), "server order: {orders:?}");
        assert_eq!(actions[0]["actor_name"], "测试用户");
        assert_eq!(actions[0]["at"], "2026-11-21T08:30:00.000Z", "the device's time");
        assert!(actions[0]["server_time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(actions[2]["department"], "消防");
        assert_eq!(actions[3]["actor_id"], c.fire.user_id.as_str());
        assert!(actions[6]["reason"].is_string());
        assert_eq!(detail.json["attachments"], json!([]));
        assert_eq!(detail.json["status"], "closed");

        // Every API action left an audit row with its verdict.
        let n = server.pool().run({
            let hz = hz.clone();
            move |c| grid_server::db::audit::list_for_target(c, "hazard", &hz)
        }).await.unwrap();
        assert_eq!(n.len(), 5);
        assert!(n.iter().all(|e| e.action == "hazard.action"));
        assert!(n[4].details.as_deref().unwrap().contains("no_effect"));
    }

    async fn action_errors_and_role_rules(server) {
        let c = city(&server).await;
        let hz = c.worker.report_hazard(&server, &c.tree.grid, hazard_fields("燃气味", "gas", "critical")).await;
        // Workers use their phone, not this API.
        let worker = act(&server, &c.worker, &hz, json!({"action": "comment", "note": "x"})).await;
        assert_eq!(worker.status, 403);
        assert_eq!(get(&server, "/api/v1/hazards", &c.worker.token).await.status, 403);
        // A role that may never take the action: 403, even where the status would fit.
        let r = act(&server, &c.sup, &hz, json!({"action": "self_handle", "note": "x"})).await;
        assert_eq!((r.status, r.error_code()), (403, Some("forbidden")), "{}", r.text);
        // Invalid parameters: 422.
        let r = act(&server, &c.sup, &hz, json!({"action": "reject"})).await;
        assert_eq!(r.status, 422, "{}", r.text);
        let r = act(&server, &c.sup, &hz, json!({"action": "fly"})).await;
        assert_eq!(r.status, 422, "{}", r.text);
        let r = act(&server, &c.sup, &hz, json!({"action": "accept", "due_at": "tomorrow"})).await;
        assert_eq!(r.status, 422, "{}", r.text);
        let r = act(&server, &c.sup, &hz, json!({"action": "comment", "note": "字".repeat(5000)})).await;
        assert_eq!(r.status, 422, "{}", r.text);
        let r = act(&server, &c.sup, &hz, json!({"action": "accept", "status": "closed"})).await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(act(&server, &c.sup, &hz, json!({"action": "accept"})).await.status, 201);
        let r = act(&server, &c.sup, &hz, json!({"action": "dispatch", "due_at": "2099-01-01T00:00:00Z"})).await;
        assert_eq!(r.status, 422, "dispatch without a department: {}", r.text);
        // Unknown hazards and malformed ids are 404; the status never moved on refusals.
        assert_eq!(act(&server, &c.sup, &new_id(), json!({"action": "accept"})).await.status, 404);
        assert_eq!(act(&server, &c.sup, "not-a-uuid", json!({"action": "accept"})).await.status, 404);
        assert_eq!(hazard_status(&server, &c.sup, &hz).await, "accepted");
        // Departments see nothing that is not dispatched to them, even when it exists.
        assert_eq!(get(&server, &format!("/api/v1/hazards/{hz}"), &c.fire.token).await.status, 404);
        // Admins act everywhere.
        let cancel = act(&server, &c.admin, &hz, json!({"action": "cancel", "note": "重复上报"})).await;
        assert_eq!(cancel.json["hazard_status"], "cancelled", "{}", cancel.text);
        // An offline worker's late self-handle lands with no effect, and the API shows why.
        c.worker.push_ok(&server, vec![c.worker.m("hazard_actions", &new_id(), &c.tree.grid,
            action(&hz, "self_handle", json!({"note": "已劝离"})), json!({}))]).await;
        let detail = get(&server, &format!("/api/v1/hazards/{hz}"), &c.sup.token).await;
        let last = detail.json["actions"].as_array().unwrap().last().unwrap().clone();
        assert_eq!((last["action"].as_str(), last["effect"].as_str()), (Some("self_handle"), Some("no_effect")));
        assert!(last["reason"].as_str().unwrap().contains("cancelled"));
    }

    async fn hazard_list_filters_pagination_and_csv(server) {
        let c = city(&server).await;
        let g = &c.tree.grid;
        let mut ids = Vec::new();
        for i in 0..7 {
            let (cat, sev) = if i % 2 == 0 { ("gas", "high") } else { ("sanitation", "low") };
            ids.push(c.worker.report_hazard(&server, g, hazard_fields(&format!("隐患 {i}, \"引号\""), cat, sev)).await);
        }
        let other = c.other_worker.report_hazard(&server, &c.tree.other_grid, hazard_fields("别处", "gas", "high")).await;
        // Two dispatched with a past due date (overdue), one of them disposed since (not overdue).
        for hz in &ids[..2] {
            assert_eq!(act(&server, &c.sup, hz, json!({"action": "accept"})).await.status, 201);
            let d = act(&server, &c.sup, hz, json!({"action": "dispatch", "department": "消防", "due_at": "2020-01-01T00:00:00Z"})).await;
            assert_eq!(d.json["effect"], "applied", "{}", d.text);
        }
        act(&server, &c.fire, &ids[1], json!({"action": "sign_for"})).await;
        act(&server, &c.fire, &ids[1], json!({"action": "report_done"})).await;

        let all = collect_pages(&server, "/api/v1/hazards", &c.sup.token, 2).await;
        let mut got: Vec<String> = all.iter().map(|h| h["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(got.len(), 7, "no gaps, no repeats, nothing of the other community");
        let created: Vec<&str> = all.iter().map(|h| h["created_at"].as_str().unwrap()).collect();
        assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");
        got.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(got, want);
        let admin_all = collect_pages(&server, "/api/v1/hazards", &c.admin.token, 3).await;
        assert_eq!(admin_all.len(), 8);

        let count = |path: String| {
            let (server, token) = (&server, c.sup.token.clone());
            async move {
                let r = get(server, &path, &token).await;
                assert_eq!(r.status, 200, "{path}: {}", r.text);
                r.json["items"].as_array().unwrap().len()
            }
        };
        assert_eq!(count("/api/v1/hazards?category=gas".into()).await, 4);
        assert_eq!(count("/api/v1/hazards?severity=low&category=sanitation".into()).await, 3);
        assert_eq!(count("/api/v1/hazards?status=dispatched".into()).await, 1);
        assert_eq!(count("/api/v1/hazards?status=reported".into()).await, 5);
        let overdue = get(&server, "/api/v1/hazards?overdue=true", &c.sup.token).await;
        let overdue_items = overdue.json["items"].as_array().unwrap();
        assert_eq!(overdue_items.len(), 1);
        assert_eq!(overdue_items[0]["id"], ids[0].as_str());
        assert_eq!(overdue_items[0]["overdue"], true);
        assert_eq!(count("/api/v1/hazards?overdue=false".into()).await, 6);
        assert_eq!(count(format!("/api/v1/hazards?grid_id={}", c.tree.grid)).await, 7);
        assert_eq!(count(format!("/api/v1/hazards?grid_id={}", c.tree.other_grid)).await, 0, "not the supervisor's grid");
        assert_eq!(count("/api/v1/hazards?from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z".into()).await, 0);
        assert_eq!(count("/api/v1/hazards?from=2000-01-01T00:00:00Z".into()).await, 7);
        assert_eq!(count("/api/v1/hazards?to=2000-01-01T00:00:00Z".into()).await, 0);
        // The department sees the dispatched ones only.
        let fire = get(&server, "/api/v1/hazards?overdue=true", &c.fire.token).await;
        assert_eq!(fire.json["items"].as_array().unwrap().len(), 1);
        let fire_grid = get(&server, &format!("/api/v1/hazards?grid_id={g}"), &c.fire.token).await;
        assert_eq!(fire_grid.json["items"].as_array().unwrap().len(), 2);

        for bad in ["status=lost", "category=x", "severity=urgent", "from=yesterday", "limit=501", "limit=0",
                    "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"] {
            let r = get(&server, &format!("/api/v1/hazards?{bad}"), &c.sup.token).await;
            assert_eq!(r.status, 422, "{bad}: {}", r.text);
        }
        for bad in ["overdue=maybe", "grid_id=nope", "nope=1", "cursor=%21%21"] {
            let r = get(&server, &format!("/api/v1/hazards?{bad}"), &c.sup.token).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.text);
        }
        assert!(!ids.contains(&other));

        // CSV: BOM, header, RFC 4180 quoting, same values as the JSON, parsed by Python.
        let csv = get_csv(&server, "/api/v1/hazards?limit=5", &c.sup.token).await;
        assert_eq!(csv.status, 200, "{}", csv.text);
        assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
        assert!(csv.text.starts_with('\u{feff}'), "byte-order mark");
        assert!(csv.text.contains("\"隐患 6, \"\"引号\"\"\""), "quoted per RFC 4180: {}", csv.text);
        assert!(csv.text.contains("\r\n"));
        let next = csv.headers["x-next-cursor"].to_str().unwrap().to_owned();
        let json = get(&server, "/api/v1/hazards?limit=5", &c.sup.token).await;
        assert_eq!(json.json["next_cursor"], next.as_str());
        let rows = python_csv(&csv.text);
        assert_eq!(rows.len(), 6);
        let header = &rows[0];
        assert_eq!(header[0], "id");
        assert!(header.iter().any(|h| h == "overdue"));
        for (row, item) in rows[1..].iter().zip(json.json["items"].as_array().unwrap()) {
            assert_eq!(row.len(), header.len());
            for (col, cell) in header.iter().zip(row) {
                assert_eq!(cell, &csv_cell(&item[col.as_str()]), "column {col}");
            }
        }
        assert_eq!(rows[1][header.iter().position(|h| h == "title").unwrap()], "隐患 6, \"引号\"");
    }

    async fn concurrent_api_actions_serialise_on_the_grid(server) {
        let c = city(&server).await;
        for _ in 0..3 {
            let hz = c.worker.report_hazard(&server, &c.tree.grid, hazard_fields("并发", "gas", "low")).await;
            // Two supervisors accept at once: the grid lock orders them, one applies.
            let body = json!({"action": "accept"});
            let (a, b) = tokio::join!(act(&server, &c.sup, &hz, body.clone()), act(&server, &c.admin, &hz, body.clone()));
            assert_eq!((a.status, b.status), (201, 201), "{} {}", a.text, b.text);
            let mut effects = vec![a.json["effect"].as_str().unwrap().to_owned(), b.json["effect"].as_str().unwrap().to_owned()];
            effects.sort();
            assert_eq!(effects, vec!["applied", "no_effect"]);
            let detail = get(&server, &format!("/api/v1/hazards/{hz}"), &c.sup.token).await;
            assert_eq!(detail.json["status"], "accepted");
            assert_eq!(detail.json["actions"].as_array().unwrap().len(), 3);
        }
    }
}
