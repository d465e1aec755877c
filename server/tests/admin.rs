//! Administration over HTTP on both backends: role guards, the area hierarchy, users
//! (create, list, patch, deactivation), devices (list, scope, revoke), pagination, the
//! audit log and hostile text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth_support;

use auth_support::*;
use grid_server::db::audit;
use grid_server::db::users::Role;
use grid_server::testing::TestServer;
use serde_json::{json, Value};

async fn audit_rows(
    server: &TestServer,
    target_type: &str,
    target_id: &str,
) -> Vec<audit::AuditEntry> {
    let (t, i) = (target_type.to_owned(), target_id.to_owned());
    server
        .pool()
        .run(move |c| audit::list_for_target(c, &t, &i))
        .await
        .unwrap()
}

async fn create_area(server: &TestServer, token: &str, body: Value) -> Value {
    let resp = post(server, "/api/v1/areas", token, &body).await;
    assert_eq!(resp.status, 201, "{body}: {}", resp.text);
    resp.json
}

grid_server::backend_tests! {
    async fn every_admin_endpoint_guards_its_roles(server) {
        let tree = make_tree(&server).await;
        let (admin_id, _) = admin(&server).await;
        make_user(&server, "worker", Role::Worker, std::slice::from_ref(&tree.grid), None, None).await;
        make_user(&server, "sup", Role::Supervisor, &[], Some(&tree.community), None).await;
        make_user(&server, "dep", Role::Department, &[], None, Some("消防")).await;
        let admin_device = login(&server, "admin").await["device_id"].as_str().unwrap().to_owned();
        let user_path = format!("/api/v1/users/{admin_id}");
        let revoke_path = format!("/api/v1/devices/{admin_device}/revoke");
        let area = json!({"name": "x", "level": "district"});
        let user = json!({"username": "new", "password": "pw", "role": "worker"});
        let endpoints: Vec<(&str, &str, Option<Value>, &[&str])> = vec![
            // (method, path, body, roles other than admin that are allowed)
            ("POST", "/api/v1/areas", Some(area), &[]),
            ("GET", "/api/v1/areas", None, &["sup"]),
            ("POST", "/api/v1/users", Some(user), &[]),
            ("GET", "/api/v1/users", None, &[]),
            ("GET", &user_path, None, &[]),
            ("PATCH", &user_path, Some(json!({"display_name": "x"})), &[]),
            ("GET", "/api/v1/devices", None, &["sup"]),
            ("POST", &revoke_path, Some(json!({})), &["sup"]),
        ];
        for who in ["worker", "sup", "dep"] {
            let t = token(&server, who).await;
            for (method, path, body, allowed) in &endpoints {
                let resp = call(&server, method, path, Some(&t), body.as_ref()).await;
                if allowed.contains(&who) {
                    assert_ne!(resp.status, 403, "{who} {method} {path}: {}", resp.text);
                    assert_ne!(resp.status, 401, "{who} {method} {path}: {}", resp.text);
                } else {
                    assert_eq!((resp.status, resp.error_code()), (403, Some("forbidden")),
                        "{who} {method} {path}: {}", resp.text);
                }
            }
        }
        for (method, path, body, _) in &endpoints {
            let resp = call(&server, method, path, None, body.as_ref()).await;
            assert_eq!(resp.status, 401, "{method} {path} without a token");
            let resp = call(&server, method, path, Some("not-a-token"), body.as_ref()).await;
            assert_eq!(resp.status, 401, "{method} {path} with a bad token");
        }
        // The supervisor could not revoke the admin's device (outside their scope: 404).
        let sup = token(&server, "sup").await;
        let resp = post(&server, &revoke_path, &sup, &json!({})).await;
        assert_eq!(resp.status, 404, "{}", resp.text);
    }

    async fn areas_follow_the_hierarchy(server) {
        let (admin_id, t) = admin(&server).await;
        let d = create_area(&server, &t, json!({"name": "鼓楼区", "code": "320106", "level": "district"})).await;
        let keys: std::collections::BTreeSet<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["code", "created_at", "id", "level", "name", "parent_id"].into_iter().collect());
        assert_eq!((d["name"].as_str(), d["code"].as_str(), d["parent_id"].is_null()), (Some("鼓楼区"), Some("320106"), true));
        let did = d["id"].as_str().unwrap();
        let s = create_area(&server, &t, json!({"name": "湖南路街道", "level": "street", "parent_id": did})).await;
        let sid = s["id"].as_str().unwrap();
        let c = create_area(&server, &t, json!({"name": "山西路社区", "level": "community", "parent_id": sid})).await;
        let cid = c["id"].as_str().unwrap();
        let g = create_area(&server, &t, json!({"name": "第一网格", "level": "grid", "parent_id": cid})).await;
        assert_eq!(g["parent_id"], cid);
        let gid = g["id"].as_str().unwrap();

        let missing = "0193a2c4-0000-7000-8000-000000000001";
        for (body, why) in [
            (json!({"name": "x", "level": "district", "parent_id": did}), "district with a parent"),
            (json!({"name": "x", "level": "street"}), "street without a parent"),
            (json!({"name": "x", "level": "street", "parent_id": sid}), "street under a street"),
            (json!({"name": "x", "level": "community", "parent_id": did}), "community under a district"),
            (json!({"name": "x", "level": "grid", "parent_id": sid}), "grid under a street"),
            (json!({"name": "x", "level": "grid", "parent_id": gid}), "grid under a grid"),
            (json!({"name": "x", "level": "grid"}), "grid without a parent"),
            (json!({"name": "x", "level": "grid", "parent_id": missing}), "missing parent"),
        ] {
            let resp = post(&server, "/api/v1/areas", &t, &body).await;
            assert_eq!((resp.status, resp.error_code()), (422, Some("invalid_hierarchy")), "{why}: {}", resp.text);
        }
        for (body, why) in [
            (json!({"name": "x", "level": "city"}), "unknown level"),
            (json!({"name": "", "level": "district"}), "empty name"),
            (json!({"name": "x\u{0}y", "level": "district"}), "NUL in name"),
            (json!({"name": "x", "level": "district", "extra": true}), "unknown field"),
            (json!({"name": "x", "level": "grid", "parent_id": "not-a-uuid"}), "malformed parent"),
            (json!({"level": "district"}), "missing name"),
        ] {
            let resp = post(&server, "/api/v1/areas", &t, &body).await;
            assert_eq!(resp.status, 422, "{why}: {}", resp.text);
        }
        let resp = post(&server, "/api/v1/areas", &t, &json!({"name": "dup", "code": "320106", "level": "district"})).await;
        assert_eq!((resp.status, resp.error_code()), (409, Some("code_taken")));

        // Listing: everything for the admin, filters by level and parent.
        let all = collect_pages(&server, "/api/v1/areas", &t, 2).await;
        assert_eq!(all.len(), 4);
        let grids = collect_pages(&server, "/api/v1/areas?level=grid", &t, 10).await;
        assert_eq!(grids.len(), 1);
        assert_eq!(grids[0]["id"], gid);
        let kids = collect_pages(&server, &format!("/api/v1/areas?parent_id={did}"), &t, 10).await;
        assert_eq!(kids.len(), 1);

        // A supervisor of the community sees the community and its grid only.
        make_user(&server, "sup", Role::Supervisor, &[], Some(cid), None).await;
        let sup = token(&server, "sup").await;
        let mine = collect_pages(&server, "/api/v1/areas", &sup, 50).await;
        let mut ids: Vec<&str> = mine.iter().map(|a| a["id"].as_str().unwrap()).collect();
        ids.sort_unstable();
        let mut want = vec![cid, gid];
        want.sort_unstable();
        assert_eq!(ids, want);

        // Audit: one row per created area, by the admin.
        let rows = audit_rows(&server, "area", did).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].action, "area.create");
        assert_eq!(rows[0].actor_id.as_deref(), Some(admin_id.as_str()));
    }

    async fn users_are_created_validated_and_listed(server) {
        let tree = make_tree(&server).await;
        let (admin_id, t) = admin(&server).await;
        let resp = post(&server, "/api/v1/users", &t, &json!({
            "username": "worker1", "password": "s3cret-密码", "display_name": "刘洋",
            "role": "worker", "grid_ids": [tree.grid, tree.grid],
        })).await;
        assert_eq!(resp.status, 201, "{}", resp.text);
        let u = resp.json.clone();
        assert!(u.get("password").is_none() && u.get("password_hash").is_none());
        assert!(!resp.text.contains("argon2") && !resp.text.contains("s3cret"));
        assert_eq!(u["grid_ids"], json!([tree.grid]));
        assert_eq!((u["role"].as_str(), u["active"].as_bool()), (Some("worker"), Some(true)));
        let uid = u["id"].as_str().unwrap().to_owned();
        // The new user can log in with that password.
        let resp = login_raw(&server, json!({"username": "worker1", "password": "s3cret-密码"})).await;
        assert_eq!(resp.status, 200);
        assert_eq!(resp.json["user"]["grid_ids"], json!([tree.grid]));

        let resp = post(&server, "/api/v1/users", &t, &json!({"username": "worker1", "password": "p", "role": "worker"})).await;
        assert_eq!((resp.status, resp.error_code()), (409, Some("username_taken")));
        let missing = "0193a2c4-0000-7000-8000-000000000001";
        for (body, why) in [
            (json!({"username": "a", "password": "p", "role": "worker", "grid_ids": [missing]}), "unknown grid"),
            (json!({"username": "a", "password": "p", "role": "worker", "grid_ids": [tree.community]}), "not a grid"),
            (json!({"username": "a", "password": "p", "role": "worker", "grid_ids": ["nope"]}), "malformed grid id"),
            (json!({"username": "a", "password": "p", "role": "department"}), "department without department"),
            (json!({"username": "a", "password": "p", "role": "supervisor"}), "supervisor without area"),
            (json!({"username": "a", "password": "p", "role": "supervisor", "area_id": missing}), "supervisor with a missing area"),
            (json!({"username": "a", "password": "p", "role": "supervisor", "area_id": tree.street, "grid_ids": [tree.grid]}), "grids for a supervisor"),
            (json!({"username": "a", "password": "p", "role": "root"}), "unknown role"),
            (json!({"username": "a b", "password": "p", "role": "worker"}), "space in username"),
            (json!({"username": "a", "password": "", "role": "worker"}), "empty password"),
            (json!({"username": "a", "password": "p", "role": "worker", "password_hash": "x"}), "unknown field"),
            (json!({"username": "a", "password": "p", "role": "worker", "display_name": "x".repeat(101)}), "long name"),
        ] {
            let resp = post(&server, "/api/v1/users", &t, &body).await;
            assert_eq!(resp.status, 422, "{why}: {}", resp.text);
        }
        // A worker without grids is allowed (syncs nothing until grids are assigned).
        let resp = post(&server, "/api/v1/users", &t, &json!({"username": "nogrid", "password": "p", "role": "worker"})).await;
        assert_eq!(resp.status, 201);
        assert_eq!(resp.json["grid_ids"], json!([]));
        let resp = post(&server, "/api/v1/users", &t, &json!({"username": "dep1", "password": "p", "role": "department", "department": "燃气"})).await;
        assert_eq!((resp.status, resp.json["department"].as_str()), (201, Some("燃气")));
        let resp = post(&server, "/api/v1/users", &t, &json!({"username": "sup1", "password": "p", "role": "supervisor", "area_id": tree.street})).await;
        assert_eq!((resp.status, resp.json["area_id"].as_str()), (201, Some(tree.street.as_str())));

        // Hostile text is stored and served verbatim.
        let hostile = [
            "Robert'); DROP TABLE users;--",
            "<script>alert('x')</script>&amp;",
            "张伟 (网格长)",
            "👩‍🚒🔥 消防 ✅",
            "\"quoted\" \\ back\\slash",
        ];
        for (i, name) in hostile.iter().enumerate() {
            let resp = post(&server, "/api/v1/users", &t, &json!({
                "username": format!("h{i}"), "password": "p", "role": "worker", "display_name": name,
            })).await;
            assert_eq!(resp.status, 201, "{name}: {}", resp.text);
            let id = resp.json["id"].as_str().unwrap().to_owned();
            let got = get(&server, &format!("/api/v1/users/{id}"), &t).await;
            assert_eq!(got.json["display_name"], *name);
            let l = login_raw(&server, json!({"username": format!("h{i}"), "password": "p"})).await;
            assert_eq!(l.json["user"]["display_name"], *name);
        }

        // Listing without gaps or repeats, and by role.
        let all = collect_pages(&server, "/api/v1/users", &t, 3).await;
        assert_eq!(all.len(), 1 + 1 + 1 + 1 + 1 + hostile.len());
        assert!(all.iter().all(|u| u.get("password_hash").is_none()));
        let workers = collect_pages(&server, "/api/v1/users?role=worker", &t, 50).await;
        assert_eq!(workers.len(), 2 + hostile.len());
        for bad in ["limit=0", "limit=501", "limit=-1", "limit=x", "cursor=%%%", "cursor=bm9wZQ", "role=root", "bogus=1"] {
            let resp = get(&server, &format!("/api/v1/users?{bad}"), &t).await;
            assert!(resp.status == 400 || resp.status == 422, "{bad}: {}", resp.text);
        }
        let resp = get(&server, "/api/v1/users?limit=500", &t).await;
        assert_eq!(resp.status, 200);
        assert!(resp.json["next_cursor"].is_null());
        let resp = get(&server, &format!("/api/v1/users/{missing}"), &t).await;
        assert_eq!(resp.status, 404);

        // Audit: the creation, by the admin, without the password.
        let rows = audit_rows(&server, "user", &uid).await;
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].action.as_str(), rows[0].actor_id.as_deref()), ("user.create", Some(admin_id.as_str())));
        let details = rows[0].details.clone().unwrap();
        assert!(!details.contains("s3cret") && !details.contains("argon2"), "{details}");
        assert!(details.contains("worker1"));
    }

    async fn pagination_has_no_gaps_or_repeats_under_inserts(server) {
        let (_, t) = admin(&server).await;
        let mut created = Vec::new();
        for i in 0..23 {
            let d = create_area(&server, &t, json!({"name": format!("区{i}"), "level": "district"})).await;
            created.push(d["id"].as_str().unwrap().to_owned());
        }
        for limit in [1, 5, 23, 24, 500] {
            let got = collect_pages(&server, "/api/v1/areas", &t, limit).await;
            let ids: Vec<String> = got.iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect();
            assert_eq!(ids, created, "limit {limit}: every area once, in creation order");
        }
        // Rows inserted while paging appear after the cursor, never shift earlier pages.
        let first = get(&server, "/api/v1/areas?limit=10", &t).await;
        let cursor = first.json["next_cursor"].as_str().unwrap().to_owned();
        let late = create_area(&server, &t, json!({"name": "late", "level": "district"})).await;
        let rest = collect_pages_from(&server, "/api/v1/areas", &t, 7, Some(cursor)).await;
        let mut ids: Vec<String> = first.json["items"].as_array().unwrap().iter()
            .chain(rest.iter()).map(|a| a["id"].as_str().unwrap().to_owned()).collect();
        let mut want = created.clone();
        want.push(late["id"].as_str().unwrap().to_owned());
        assert_eq!(ids.len(), want.len());
        ids.sort();
        want.sort();
        assert_eq!(ids, want);
        // Default page size is 50; an empty list is {items: [], next_cursor: null}.
        let resp = get(&server, "/api/v1/devices?user_id=0193a2c4-0000-7000-8000-000000000001", &t).await;
        assert_eq!(resp.json, json!({"items": [], "next_cursor": null}));
    }

    async fn patching_users_takes_effect_at_the_next_request(server) {
        let tree = make_tree(&server).await;
        let (admin_id, t) = admin(&server).await;
        let wid = make_user(&server, "w", Role::Worker, std::slice::from_ref(&tree.grid), None, None).await;
        let session = login(&server, "w").await;
        let w_access = session["access_token"].as_str().unwrap().to_owned();
        let path = format!("/api/v1/users/{wid}");

        // Grids and names.
        let resp = patch(&server, &path, &t, &json!({"grid_ids": [tree.grid, tree.other_grid], "display_name": "新名字 🚀"})).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let mut both = vec![tree.grid.clone(), tree.other_grid.clone()];
        both.sort();
        assert_eq!(resp.json["grid_ids"], json!(both));
        assert_eq!(resp.json["display_name"], "新名字 🚀");
        assert_eq!(login(&server, "w").await["user"]["grid_ids"], json!(both));
        let resp = patch(&server, &path, &t, &json!({"grid_ids": [tree.community]})).await;
        assert_eq!(resp.status, 422);
        let resp = patch(&server, &path, &t, &json!({"display_name": null})).await;
        assert_eq!((resp.status, resp.json["display_name"].is_null()), (200, true));

        // Role rules apply to the result: a supervisor needs an area; grids go with the role.
        let resp = patch(&server, &path, &t, &json!({"role": "supervisor"})).await;
        assert_eq!(resp.status, 422, "{}", resp.text);
        let resp = patch(&server, &path, &t, &json!({"role": "supervisor", "area_id": tree.community})).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(resp.json["grid_ids"], json!([]));
        assert_eq!(resp.json["role"], "supervisor");
        // The open session now acts as a supervisor (role read per request).
        let resp = get(&server, "/api/v1/areas", &w_access).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let resp = patch(&server, &path, &t, &json!({"role": "worker", "grid_ids": [tree.grid], "area_id": null})).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let resp = get(&server, "/api/v1/areas", &w_access).await;
        assert_eq!(resp.status, 403);

        // Deactivation: the open session is refused at once; login and refresh too.
        let resp = patch(&server, &path, &t, &json!({"active": false})).await;
        assert_eq!((resp.status, resp.json["active"].as_bool()), (200, Some(false)));
        let resp = get(&server, "/api/v1/areas", &w_access).await;
        assert_eq!(resp.status, 401);
        let resp = login_raw(&server, json!({"username": "w", "password": PASSWORD})).await;
        assert_eq!((resp.status, resp.error_code()), (401, Some("account_disabled")));
        let resp = server.post_json("/api/v1/auth/refresh", &json!({"refresh_token": session["refresh_token"]})).await;
        assert_eq!(resp.status, 401);
        let resp = patch(&server, &path, &t, &json!({"active": true})).await;
        assert_eq!(resp.status, 200);
        login(&server, "w").await;

        // Password change: the old one stops working; sessions end.
        let s2 = login(&server, "w").await;
        let resp = patch(&server, &path, &t, &json!({"password": "新密码-2"})).await;
        assert_eq!(resp.status, 200);
        assert!(!resp.text.contains("新密码"));
        let resp = login_raw(&server, json!({"username": "w", "password": PASSWORD})).await;
        assert_eq!(resp.status, 401);
        let resp = login_raw(&server, json!({"username": "w", "password": "新密码-2"})).await;
        assert_eq!(resp.status, 200);
        let resp = server.post_json("/api/v1/auth/refresh", &json!({"refresh_token": s2["refresh_token"]})).await;
        assert_eq!(resp.status, 401);

        // Bad patches.
        for body in [json!({"role": "root"}), json!({"active": "no"}), json!({"username": "x"}), json!({"password": ""})] {
            let resp = patch(&server, &path, &t, &body).await;
            assert_eq!(resp.status, 422, "{body}: {}", resp.text);
        }
        let resp = patch(&server, "/api/v1/users/0193a2c4-0000-7000-8000-000000000001", &t, &json!({"active": false})).await;
        assert_eq!(resp.status, 404);
        let resp = patch(&server, "/api/v1/users/not-a-uuid", &t, &json!({"active": false})).await;
        assert_eq!(resp.status, 404);

        // The last admin stays an admin.
        let admin_path = format!("/api/v1/users/{admin_id}");
        let resp = patch(&server, &admin_path, &t, &json!({"active": false})).await;
        assert_eq!((resp.status, resp.error_code()), (409, Some("cannot_change_self")));
        let other = make_user(&server, "admin2", Role::Admin, &[], None, None).await;
        let t2 = token(&server, "admin2").await;
        let resp = patch(&server, &admin_path, &t2, &json!({"role": "worker"})).await;
        assert_eq!(resp.status, 200, "two admins: one may be demoted: {}", resp.text);
        let resp = patch(&server, &format!("/api/v1/users/{other}"), &t2, &json!({"active": false})).await;
        assert_eq!(resp.status, 409);

        // Audit: every patch, with what changed, never the password.
        let rows = audit_rows(&server, "user", &wid).await;
        assert!(rows.iter().all(|r| r.action == "user.update"));
        assert!(rows.len() >= 7, "{}", rows.len());
        let text: String = rows.iter().filter_map(|r| r.details.clone()).collect();
        assert!(text.contains("password_changed") && !text.contains("新密码"), "{text}");
        assert!(text.contains("新名字 🚀"));
        let before = rows.len();
        let resp = patch(&server, &path, &t2, &json!({"active": true})).await;
        assert_eq!(resp.status, 200);
        assert_eq!(audit_rows(&server, "user", &wid).await.len(), before, "a no-op patch is not audited");
    }

    async fn devices_are_listed_in_scope_and_revoked(server) {
        let tree = make_tree(&server).await;
        let (admin_id, t) = admin(&server).await;
        make_user(&server, "near", Role::Worker, std::slice::from_ref(&tree.grid), None, None).await;
        make_user(&server, "far", Role::Worker, std::slice::from_ref(&tree.other_grid), None, None).await;
        make_user(&server, "sup", Role::Supervisor, &[], Some(&tree.community), None).await;
        let near = login_raw(&server, json!({"username": "near", "password": PASSWORD, "device_name": "华为 Mate 60"})).await.json;
        let far = login(&server, "far").await;
        let sup = token(&server, "sup").await;

        let all = collect_pages(&server, "/api/v1/devices", &t, 2).await;
        assert_eq!(all.len(), 4, "admin, near, far, sup");
        let d = all.iter().find(|d| d["id"] == near["device_id"]).unwrap();
        let keys: std::collections::BTreeSet<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["app_version", "created_at", "id", "last_seen_at", "last_sync_at", "name",
            "pending_count", "revoked", "revoked_at", "user_id", "username"].into_iter().collect());
        assert_eq!((d["username"].as_str(), d["name"].as_str(), d["revoked"].as_bool()), (Some("near"), Some("华为 Mate 60"), Some(false)));
        assert!(d["last_sync_at"].is_null() && d["revoked_at"].is_null());
        assert!(d["created_at"].as_str().unwrap().ends_with('Z'));

        // The supervisor sees the devices of people in their subtree (near, themselves).
        let mine = collect_pages(&server, "/api/v1/devices", &sup, 50).await;
        let mut names: Vec<&str> = mine.iter().map(|d| d["username"].as_str().unwrap()).collect();
        names.sort_unstable();
        assert_eq!(names, ["near", "sup"]);
        let resp = get(&server, &format!("/api/v1/devices?user_id={admin_id}"), &sup).await;
        assert_eq!(resp.json["items"], json!([]));

        // Out of scope: 404; in scope: revoked.
        let far_path = format!("/api/v1/devices/{}/revoke", far["device_id"].as_str().unwrap());
        let resp = post(&server, &far_path, &sup, &json!({})).await;
        assert_eq!(resp.status, 404);
        let near_device = near["device_id"].as_str().unwrap();
        let resp = post(&server, &format!("/api/v1/devices/{near_device}/revoke"), &sup, &json!({})).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(resp.json["revoked"], true);
        assert!(resp.json["revoked_at"].as_str().is_some());
        let resp = get(&server, "/api/v1/areas", near["access_token"].as_str().unwrap()).await;
        assert_eq!((resp.status, resp.error_code()), (401, Some("device_revoked")));
        // Revoking again changes nothing and writes no second audit row.
        let resp = post(&server, &format!("/api/v1/devices/{near_device}/revoke"), &t, &json!({})).await;
        assert_eq!(resp.status, 200);
        let rows = audit_rows(&server, "device", near_device).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].action, "device.revoke");
        let resp = post(&server, "/api/v1/devices/0193a2c4-0000-7000-8000-000000000001/revoke", &t, &json!({})).await;
        assert_eq!(resp.status, 404);
        // Admin revokes out of anyone's scope.
        let resp = post(&server, &far_path, &t, &json!({})).await;
        assert_eq!(resp.status, 200);
    }
}
