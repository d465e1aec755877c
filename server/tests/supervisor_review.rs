//! Conflict review, rejections and the audit log over HTTP on both backends: a conflict
//! between two phones is listed with both values, resolved by a supervisor, and the kept
//! value reaches the phones with a newer version; rejected phone mutations are listed for
//! supervisors; every supervisory write is in the audit log, scoped per supervisor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth_support;
mod supervisor_support;

use grid_server::db::users::Role;
use serde_json::{json, Value};
use supervisor_support::*;

grid_server::backend_tests! {
    async fn conflict_resolution_reaches_the_phones(server) {
        let c = city(&server).await;
        let g = &c.tree.grid;
        make_user(&server, "w3", Role::Worker, std::slice::from_ref(g), None, None).await;
        let w3 = Phone::login(&server, "w3").await;
        let hh = new_id();
        c.worker.push_ok(&server, vec![c.worker.m("households", &hh, g,
            json!({"address": "幸福路1号", "notes": "原始"}), json!({}))]).await;
        let seen = pulled(&w3.pull_all(&server).await, &hh)["versions"]["notes"].clone();
        c.worker.push_ok(&server, vec![c.worker.m("households", &hh, g, json!({"notes": "A改"}), json!({"notes": seen}))]).await;
        let b = w3.push_ok(&server, vec![w3.m("households", &hh, g, json!({"notes": "B改, \"引号\""}), json!({"notes": seen}))]).await;
        assert_eq!(b.json["results"][0]["conflicts"], json!(["notes"]));

        // Listed with both values, the winner, devices and times; scoped.
        let open = get(&server, "/api/v1/conflicts?status=open", &c.sup.token).await;
        assert_eq!(open.status, 200, "{}", open.text);
        let items = open.json["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        let conflict = &items[0];
        assert_eq!(conflict["collection"], "households");
        assert_eq!(conflict["record_id"], hh.as_str());
        assert_eq!(conflict["grid_id"], g.as_str());
        assert_eq!(conflict["field"], "notes");
        assert_eq!(conflict["current"]["value"], "A改");
        assert_eq!(conflict["incoming"]["value"], "B改, \"引号\"");
        assert_eq!(conflict["current"]["device_id"], c.worker.device.as_str());
        assert_eq!(conflict["incoming"]["device_id"], w3.device.as_str());
        assert_eq!(conflict["winner"], "incoming");
        assert_eq!(conflict["status"], "open");
        assert!(conflict["current"]["time"].as_str().unwrap().ends_with('Z'));
        assert!(conflict["incoming"]["version"].as_str().unwrap().ends_with(&w3.device));
        assert_eq!(conflict["resolved_at"], Value::Null);
        let id = conflict["id"].as_str().unwrap().to_owned();
        assert_eq!(get(&server, "/api/v1/conflicts", &c.other_sup.token).await.json["items"], json!([]));
        assert_eq!(get(&server, "/api/v1/conflicts", &c.worker.token).await.status, 403);
        assert_eq!(get(&server, "/api/v1/conflicts", &c.fire.token).await.status, 403);
        assert_eq!(get(&server, "/api/v1/conflicts?status=closed", &c.sup.token).await.status, 422);
        assert_eq!(get(&server, &format!("/api/v1/conflicts?grid_id={}", c.tree.other_grid), &c.sup.token).await.json["items"], json!([]));
        assert_eq!(get(&server, &format!("/api/v1/conflicts?record_id={hh}"), &c.admin.token).await.json["items"].as_array().unwrap().len(), 1);

        // CSV: both values in their own columns, parsed back by Python.
        let csv = get_csv(&server, "/api/v1/conflicts", &c.sup.token).await;
        assert!(csv.text.starts_with('\u{feff}'));
        let rows = python_csv(&csv.text);
        let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
        assert_eq!(rows[1][col("current.value")], "A改");
        assert_eq!(rows[1][col("incoming.value")], "B改, \"引号\"");
        assert_eq!(rows[1][col("winner")], "incoming");

        // Resolution: scope, body and state checks.
        let path = format!("/api/v1/conflicts/{id}/resolve");
        assert_eq!(post(&server, &path, &c.other_sup.token, &json!({"keep": "current"})).await.status, 404);
        assert_eq!(post(&server, &path, &c.worker.token, &json!({"keep": "current"})).await.status, 403);
        assert_eq!(post(&server, &path, &c.sup.token, &json!({"keep": "both"})).await.status, 422);
        assert_eq!(post(&server, &format!("/api/v1/conflicts/{}/resolve", new_id()), &c.sup.token, &json!({"keep": "current"})).await.status, 404);
        let before = pulled(&w3.pull_all(&server).await, &hh).clone();
        assert_eq!(before["fields"]["notes"], "B改, \"引号\"");
        let resolved = post(&server, &path, &c.sup.token, &json!({"keep": "current"})).await;
        assert_eq!(resolved.status, 200, "{}", resolved.text);
        assert_eq!(resolved.json["status"], "resolved");
        assert_eq!(resolved.json["resolution"], "current");
        assert_eq!(resolved.json["resolved_by"], c.sup.user_id.as_str());
        assert!(resolved.json["resolved_at"].as_str().unwrap().ends_with('Z'));
        let again = post(&server, &path, &c.sup.token, &json!({"keep": "incoming"})).await;
        assert_eq!((again.status, again.error_code()), (409, Some("already_resolved")));

        // Both phones pull the kept value with a newer version.
        for phone in [&w3, &c.worker] {
            let after = pulled(&phone.pull_all(&server).await, &hh).clone();
            assert_eq!(after["fields"]["notes"], "A改");
            let (old, new) = (before["versions"]["notes"].as_str().unwrap(), after["versions"]["notes"].as_str().unwrap());
            assert!(new > old, "{new} > {old}");
            assert!(new.ends_with("-server"), "a server stamp: {new}");
            assert_eq!(after["fields"]["address"], "幸福路1号", "other fields untouched");
        }
        assert_eq!(get(&server, "/api/v1/conflicts?status=open", &c.sup.token).await.json["items"], json!([]));
        assert_eq!(get(&server, "/api/v1/conflicts?status=resolved", &c.sup.token).await.json["items"].as_array().unwrap().len(), 1);

        // The resolution is in the audit log, for this supervisor and not the other.
        let audit = get(&server, "/api/v1/audit?action=conflict.resolve", &c.sup.token).await;
        assert_eq!(audit.status, 200, "{}", audit.text);
        let entries = audit.json["items"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["target_id"], id.as_str());
        assert_eq!(entries[0]["actor_id"], c.sup.user_id.as_str());
        assert_eq!(entries[0]["actor_username"], "sup");
        assert_eq!(entries[0]["details"]["keep"], "current");
        assert_eq!(get(&server, "/api/v1/audit", &c.other_sup.token).await.json["items"], json!([]));
    }

    async fn rejections_are_listed_for_supervisors(server) {
        let c = city(&server).await;
        let resp = c.worker.push(&server, vec![
            c.worker.m("households", &new_id(), &c.tree.other_grid, json!({"address": "别人的网格"}), json!({})),
            c.worker.m("hazard_actions", &new_id(), &c.tree.grid, action(&new_id(), "dispatch", json!({"department": "消防"})), json!({})),
            c.worker.m("households", &new_id(), &c.tree.grid, json!({"address": "ok"}), json!({})),
        ]).await;
        assert_eq!(resp.status, 200);
        let list = get(&server, "/api/v1/rejections", &c.sup.token).await;
        assert_eq!(list.status, 200, "{}", list.text);
        let items = list.json["items"].as_array().unwrap();
        let mut codes: Vec<&str> = items.iter().map(|r| r["code"].as_str().unwrap()).collect();
        codes.sort_unstable();
        assert_eq!(codes, vec!["forbidden", "out_of_scope"]);
        for r in items {
            assert_eq!(r["user_id"], c.worker.user_id.as_str());
            assert_eq!(r["device_id"], c.worker.device.as_str());
            assert!(r["message"].as_str().unwrap().len() > 3);
            assert_eq!(r["mutation"]["seq"], r["seq"]);
            assert!(r["created_at"].as_str().unwrap().ends_with('Z'));
        }
        let forbidden = get(&server, "/api/v1/rejections?code=forbidden", &c.sup.token).await;
        assert_eq!(forbidden.json["items"].as_array().unwrap().len(), 1);
        assert_eq!(forbidden.json["items"][0]["collection"], "hazard_actions");
        let by_device = get(&server, &format!("/api/v1/rejections?device_id={}", c.other_worker.device), &c.sup.token).await;
        assert_eq!(by_device.json["items"], json!([]));
        // The other community's supervisor sees only the attempt on their own grid.
        let other = get(&server, "/api/v1/rejections", &c.other_sup.token).await;
        let other_items = other.json["items"].as_array().unwrap();
        assert_eq!(other_items.len(), 1);
        assert_eq!(other_items[0]["code"], "out_of_scope");
        assert_eq!(other_items[0]["grid_id"], c.tree.other_grid.as_str());
        assert_eq!(get(&server, "/api/v1/rejections", &c.worker.token).await.status, 403);
        assert_eq!(get(&server, "/api/v1/rejections", &c.admin.token).await.json["items"].as_array().unwrap().len(), 2);
        let pages = collect_pages(&server, "/api/v1/rejections", &c.sup.token, 1).await;
        assert_eq!(pages.len(), 2);
        assert_eq!(get(&server, "/api/v1/rejections?from=2999-01-01T00:00:00Z", &c.sup.token).await.json["items"], json!([]));
        let csv = get_csv(&server, "/api/v1/rejections", &c.sup.token).await;
        let rows = python_csv(&csv.text);
        assert_eq!(rows.len(), 3);
        let col = rows[0].iter().position(|h| h == "mutation").unwrap();
        let parsed: Value = serde_json::from_str(&rows[1][col]).unwrap();
        assert!(parsed["collection"].is_string(), "the mutation as JSON text");
    }

    async fn audit_log_lists_supervisory_and_admin_writes_by_scope(server) {
        let c = city(&server).await;
        // Admin writes in both communities, through the API.
        let mine = post(&server, "/api/v1/areas", &c.admin.token,
            &json!({"name": "第三网格", "level": "grid", "parent_id": c.tree.community})).await;
        assert_eq!(mine.status, 201, "{}", mine.text);
        let theirs = post(&server, "/api/v1/areas", &c.admin.token,
            &json!({"name": "第四网格", "level": "grid", "parent_id": c.tree.other_community})).await;
        assert_eq!(theirs.status, 201);
        let w1_patch = call(&server, "PATCH", &format!("/api/v1/users/{}", c.worker.user_id), Some(&c.admin.token),
            Some(&json!({"display_name": "张三"}))).await;
        assert_eq!(w1_patch.status, 200, "{}", w1_patch.text);
        // Supervisory writes.
        let hz = c.worker.report_hazard(&server, &c.tree.grid, hazard_fields("占道", "traffic_parking", "low")).await;
        assert_eq!(act(&server, &c.sup, &hz, json!({"action": "accept"})).await.status, 201);
        let hz2 = c.other_worker.report_hazard(&server, &c.tree.other_grid, hazard_fields("噪音", "dispute", "low")).await;
        assert_eq!(act(&server, &c.other_sup, &hz2, json!({"action": "reject", "note": "不属实"})).await.status, 201);

        let all = collect_pages(&server, "/api/v1/audit", &c.admin.token, 2).await;
        let actions: Vec<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
        for want in ["area.create", "user.update", "hazard.action"] {
            assert!(actions.contains(&want), "{want} in {actions:?}");
        }
        let ats: Vec<&str> = all.iter().map(|e| e["at"].as_str().unwrap()).collect();
        assert!(ats.windows(2).all(|w| w[0] >= w[1]), "newest first");

        let sup = collect_pages(&server, "/api/v1/audit", &c.sup.token, 2).await;
        let targets: Vec<&str> = sup.iter().map(|e| e["target_id"].as_str().unwrap()).collect();
        assert!(targets.contains(&mine.json["id"].as_str().unwrap()));
        assert!(targets.contains(&c.worker.user_id.as_str()), "a worker of the subtree");
        assert!(targets.contains(&hz.as_str()));
        assert!(!targets.contains(&theirs.json["id"].as_str().unwrap()));
        assert!(!targets.contains(&hz2.as_str()));
        let accept = sup.iter().find(|e| e["target_id"] == hz.as_str()).unwrap();
        assert_eq!(accept["details"]["action"], "accept");
        assert_eq!(accept["details"]["effect"], "applied");
        assert_eq!(accept["actor_username"], "sup");

        let other = collect_pages(&server, "/api/v1/audit", &c.other_sup.token, 10).await;
        let other_targets: Vec<&str> = other.iter().map(|e| e["target_id"].as_str().unwrap()).collect();
        assert!(other_targets.contains(&hz2.as_str()));
        assert!(other_targets.contains(&theirs.json["id"].as_str().unwrap()));
        assert!(!other_targets.contains(&hz.as_str()));

        let filtered = get(&server, &format!("/api/v1/audit?action=hazard.action&actor_id={}", c.sup.user_id), &c.admin.token).await;
        assert_eq!(filtered.json["items"].as_array().unwrap().len(), 1);
        assert_eq!(get(&server, "/api/v1/audit", &c.worker.token).await.status, 403);
        assert_eq!(get(&server, "/api/v1/audit", &c.fire.token).await.status, 403);
        let csv = get_csv(&server, "/api/v1/audit?target_type=hazard", &c.admin.token).await;
        let rows = python_csv(&csv.text);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0][0], "id");
    }

    async fn concurrent_resolutions_have_one_winner(server) {
        let c = city(&server).await;
        let g = &c.tree.grid;
        make_user(&server, "w3", Role::Worker, std::slice::from_ref(g), None, None).await;
        let w3 = Phone::login(&server, "w3").await;
        let hh = new_id();
        c.worker.push_ok(&server, vec![c.worker.m("households", &hh, g, json!({"address": "a", "phone": "1"}), json!({}))]).await;
        let seen = pulled(&w3.pull_all(&server).await, &hh)["versions"]["phone"].clone();
        c.worker.push_ok(&server, vec![c.worker.m("households", &hh, g, json!({"phone": "2"}), json!({"phone": seen}))]).await;
        w3.push_ok(&server, vec![w3.m("households", &hh, g, json!({"phone": "3"}), json!({"phone": seen}))]).await;
        let open = get(&server, "/api/v1/conflicts?status=open", &c.sup.token).await;
        let id = open.json["items"][0]["id"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/conflicts/{id}/resolve");
        let (keep_current, keep_incoming) = (json!({"keep": "current"}), json!({"keep": "incoming"}));
        let (a, b) = tokio::join!(
            post(&server, &path, &c.sup.token, &keep_current),
            post(&server, &path, &c.admin.token, &keep_incoming),
        );
        let mut statuses = vec![a.status, b.status];
        statuses.sort_unstable();
        assert_eq!(statuses, vec![200, 409], "{} {}", a.text, b.text);
        let winner = if a.status == 200 { &a } else { &b };
        let kept = if winner.json["resolution"] == "current" { "2" } else { "3" };
        assert_eq!(pulled(&c.worker.pull_all(&server).await, &hh)["fields"]["phone"], kept);
        let audit = get(&server, "/api/v1/audit?action=conflict.resolve", &c.admin.token).await;
        assert_eq!(audit.json["items"].as_array().unwrap().len(), 1, "only the winner wrote");
    }
}
