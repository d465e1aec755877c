//! The sync endpoints over HTTP on both backends: push/pull round trips, exactly-once
//! replays, seq gaps, scope, conflicts, clocks, the hazard workflow, hostile and malformed
//! input, and gap-free pull under concurrent writers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use auth_support::*;
use grid_server::db::users::Role;
use grid_server::testing::{TestResponse, TestServer};
use serde_json::{json, Value};
use sync_core::ids::RecordId;

/// A phone as the tests drive it: its token, device and seq counter.
struct Phone {
    token: String,
    device: String,
    seq: AtomicU64,
}

impl Phone {
    async fn login(server: &TestServer, username: &str) -> Phone {
        let body = login(server, username).await;
        Phone {
            token: body["access_token"].as_str().unwrap().to_owned(),
            device: body["device_id"].as_str().unwrap().to_owned(),
            seq: AtomicU64::new(0),
        }
    }

    fn stamp(&self, wall_ms: i64) -> String {
        format!("{:015}-{:05}-{}", wall_ms, 0, self.device)
    }

    /// A mutation with the next seq.
    fn m(&self, collection: &str, id: &str, grid: &str, fields: Value, base: Value) -> Value {
        self.m_at(collection, id, grid, fields, base, now_ms())
    }

    fn m_at(
        &self,
        collection: &str,
        id: &str,
        grid: &str,
        fields: Value,
        base: Value,
        wall: i64,
    ) -> Value {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        json!({"seq": seq, "id": RecordId::new().to_string(), "collection": collection, "record_id": id,
               "grid_id": grid, "op": "upsert", "hlc": self.stamp(wall), "fields": fields, "base": base})
    }

    async fn push(&self, server: &TestServer, mutations: Vec<Value>) -> TestResponse {
        post(
            server,
            "/api/v1/sync/push",
            &self.token,
            &json!({"device_id": self.device, "mutations": mutations}),
        )
        .await
    }

    /// Pull everything from `cursor` to the end; returns the changes and the final cursor.
    async fn pull_all(
        &self,
        server: &TestServer,
        mut cursor: Option<String>,
        limit: u32,
    ) -> (Vec<Value>, String) {
        let mut all = Vec::new();
        loop {
            let q = match &cursor {
                Some(c) => format!("/api/v1/sync/pull?limit={limit}&cursor={c}"),
                None => format!("/api/v1/sync/pull?limit={limit}"),
            };
            let page = get(server, &q, &self.token).await;
            assert_eq!(page.status, 200, "{}", page.text);
            all.extend(page.json["changes"].as_array().unwrap().iter().cloned());
            cursor = Some(page.json["cursor"].as_str().unwrap().to_owned());
            if !page.json["has_more"].as_bool().unwrap() {
                return (all, cursor.unwrap_or_default());
            }
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn new_id() -> String {
    RecordId::new().to_string()
}

fn statuses(resp: &TestResponse) -> Vec<String> {
    resp.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect()
}

fn find<'a>(changes: &'a [Value], id: &str) -> &'a Value {
    changes
        .iter()
        .rev()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{id} not pulled"))
}

struct World {
    tree: Tree,
    worker: Phone,
    worker2: Phone,
    supervisor: Phone,
}

async fn world(server: &TestServer) -> World {
    let tree = make_tree(server).await;
    make_user(
        server,
        "w1",
        Role::Worker,
        std::slice::from_ref(&tree.grid),
        None,
        None,
    )
    .await;
    make_user(
        server,
        "w2",
        Role::Worker,
        std::slice::from_ref(&tree.grid),
        None,
        None,
    )
    .await;
    make_user(
        server,
        "sup",
        Role::Supervisor,
        &[],
        Some(&tree.community),
        None,
    )
    .await;
    World {
        worker: Phone::login(server, "w1").await,
        worker2: Phone::login(server, "w2").await,
        supervisor: Phone::login(server, "sup").await,
        tree,
    }
}

fn hazard_fields() -> Value {
    json!({"title": "楼道电瓶车充电", "category": "ebike_charging", "severity": "high", "source": "patrol"})
}

fn action(hazard: &str, action: &str, extra: Value) -> Value {
    let mut f = json!({"hazard_id": hazard, "action": action, "at": "2026-11-21T08:30:00.000Z"});
    f.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    f
}

grid_server::backend_tests! {
    async fn push_then_pull_round_trip(server) {
        let w = world(&server).await;
        let (hh, hz) = (new_id(), new_id());
        let g = &w.tree.grid;
        let resp = w.worker.push(&server, vec![
            w.worker.m("households", &hh, g, json!({"address": "幸福路1号", "tags": ["veteran", "elderly_alone"]}), json!({"address": null})),
            w.worker.m("hazards", &hz, g, hazard_fields(), json!({})),
            w.worker.m("hazard_actions", &new_id(), g, action(&hz, "submit", json!({})), json!({})),
        ]).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(statuses(&resp), vec!["applied"; 3]);
        assert_eq!(resp.json["last_applied_seq"], 3);
        assert!(resp.json["server_hlc"].as_str().unwrap().ends_with("-server"));
        assert!(resp.json["server_time"].as_str().unwrap().ends_with('Z'));

        let (changes, cursor) = w.worker2.pull_all(&server, None, 2).await;
        assert_eq!(changes.len(), 3);
        let household = find(&changes, &hh);
        assert_eq!(household["fields"]["tags"], json!(["elderly_alone", "veteran"]));
        assert_eq!(household["fields"]["head_name"], Value::Null, "every field present");
        assert_eq!(household["deleted"], false);
        assert!(household["versions"]["address"].as_str().unwrap().contains(&w.worker.device));
        let hazard = find(&changes, &hz);
        assert_eq!(hazard["fields"]["status"], "reported");
        assert_eq!(hazard["fields"]["reporter_id"], household_author(&server, "w1").await);
        assert_eq!(hazard["grid_id"], w.tree.grid.as_str());

        // Pulling again from the end gives nothing; repeating a pull is safe.
        let (again, _) = w.worker2.pull_all(&server, Some(cursor.clone()), 10).await;
        assert!(again.is_empty());
        let repeat = get(&server, &format!("/api/v1/sync/pull?cursor={cursor}"), &w.worker2.token).await;
        assert_eq!(repeat.json["scope"]["grid_ids"], json!([w.tree.grid]));
    }

    async fn replays_are_duplicates_and_gaps_refuse_the_batch(server) {
        let w = world(&server).await;
        let g = &w.tree.grid;
        let m1 = w.worker.m("households", &new_id(), g, json!({"address": "a"}), json!({}));
        let first = w.worker.push(&server, vec![m1.clone()]).await;
        assert_eq!(statuses(&first), vec!["applied"]);
        let replay = w.worker.push(&server, vec![m1]).await;
        assert_eq!(statuses(&replay), vec!["duplicate"]);
        assert_eq!(replay.json["last_applied_seq"], 1);

        w.worker.seq.fetch_add(1, Ordering::SeqCst); // skip seq 2
        let gap = w.worker.push(&server, vec![w.worker.m("households", &new_id(), g, json!({"address": "b"}), json!({}))]).await;
        assert_eq!(gap.status, 409, "{}", gap.text);
        assert_eq!(gap.error_code(), Some("seq_gap"));
        assert_eq!(gap.json["error"]["details"]["expected_seq"], 2);
        let (changes, _) = w.worker2.pull_all(&server, None, 100).await;
        assert_eq!(changes.len(), 1, "the refused batch wrote nothing");
    }

    async fn out_of_scope_and_bad_mutations_do_not_stop_the_batch(server) {
        let w = world(&server).await;
        let (outside, inside) = (new_id(), new_id());
        let resp = w.worker.push(&server, vec![
            w.worker.m("households", &outside, &w.tree.other_grid, json!({"address": "别人的网格"}), json!({})),
            w.worker.m("hazards", &new_id(), &w.tree.grid, json!({"title": "x", "category": "gas", "severity": "low", "status": "closed"}), json!({})),
            w.worker.m("hazards", &new_id(), &w.tree.grid, json!({"title": "x", "category": "gas", "severity": "low", "reporter_id": new_id()}), json!({})),
            w.worker.m("hazard_actions", &new_id(), &w.tree.grid, action(&new_id(), "dispatch", json!({"department": "消防"})), json!({})),
            w.worker.m("households", &inside, &w.tree.grid, json!({"address": "ok"}), json!({})),
        ]).await;
        assert_eq!(statuses(&resp), vec!["rejected", "rejected", "rejected", "rejected", "applied"]);
        let codes: Vec<&str> = resp.json["results"].as_array().unwrap().iter().filter_map(|r| r["reason"]["code"].as_str()).collect();
        assert_eq!(codes, vec!["out_of_scope", "server_owned", "author_mismatch", "forbidden"]);
        // Nothing of the out-of-scope mutation was written, even for the supervisor of that grid.
        let n = count(&server, "households", &outside).await;
        assert_eq!(n, 0);
        assert_eq!(count(&server, "households", &inside).await, 1);
        // The rejection is stored, so a phone that lost the response learns it on replay.
        let again = w.worker.push(&server, vec![json!({"seq": 1, "id": new_id(), "collection": "households", "record_id": outside,
            "grid_id": w.tree.other_grid, "op": "upsert", "hlc": w.worker.stamp(now_ms()), "fields": {}, "base": {}})]).await;
        assert_eq!(again.json["results"][0]["status"], "duplicate");
        assert_eq!(again.json["results"][0]["reason"]["code"], "out_of_scope");
    }

    async fn concurrent_edits_record_conflicts_and_clocks_are_handled(server) {
        let w = world(&server).await;
        let g = &w.tree.grid;
        let hh = new_id();
        w.worker.push(&server, vec![w.worker.m("households", &hh, g, json!({"address": "a", "notes": "原始", "phone": "1"}), json!({}))]).await;
        let (changes, _) = w.worker2.pull_all(&server, None, 100).await;
        let v = find(&changes, &hh)["versions"].clone();

        // Both edit notes on top of the same version: the second is a conflict.
        let a = w.worker.push(&server, vec![w.worker.m("households", &hh, g, json!({"notes": "A改"}), json!({"notes": v["notes"]}))]).await;
        assert_eq!(a.json["results"][0]["conflicts"], json!([]));
        let mb = w.worker2.m("households", &hh, g, json!({"notes": "B改"}), json!({"notes": v["notes"]}));
        let b = w.worker2.push(&server, vec![mb.clone()]).await;
        assert_eq!(b.json["results"][0]["conflicts"], json!(["notes"]));
        let replay = w.worker2.push(&server, vec![mb]).await;
        assert_eq!(replay.json["results"][0]["status"], "duplicate");
        assert_eq!(replay.json["results"][0]["conflicts"], json!(["notes"]), "a lost response's conflicts are repeated");
        let stored = conflict_values(&server, &hh).await;
        assert_eq!(stored, vec![("\"A改\"".to_owned(), "\"B改\"".to_owned())]);

        // A phone 48 h behind editing on top of the current version wins.
        let behind = now_ms() - 48 * 3600 * 1000;
        let c = w.worker2.push(&server, vec![w.worker2.m_at("households", &hh, g, json!({"phone": "2"}), json!({"phone": v["phone"]}), behind)]).await;
        assert_eq!(c.json["results"][0]["conflicts"], json!([]));
        // A stamp from 2099 is clamped to the server's clock plus the allowed drift.
        let y2099 = 4_070_908_800_000;
        w.worker.push(&server, vec![w.worker.m_at("households", &hh, g, json!({"room": "101"}), json!({}), y2099)]).await;
        let (changes, _) = w.worker2.pull_all(&server, None, 100).await;
        let now = find(&changes, &hh);
        assert_eq!(now["fields"]["phone"], "2");
        let room_wall: i64 = now["versions"]["room"].as_str().unwrap()[..15].parse().unwrap();
        assert!(room_wall < now_ms() + 10 * 60 * 1000, "clamped: {room_wall}");
    }

    async fn hazard_workflow_over_push(server) {
        let w = world(&server).await;
        let g = &w.tree.grid;
        let hz = new_id();
        w.worker.push(&server, vec![
            w.worker.m("hazards", &hz, g, hazard_fields(), json!({})),
            w.worker.m("hazard_actions", &new_id(), g, action(&hz, "submit", json!({})), json!({})),
        ]).await;
        let stale = new_id();
        let sup = w.supervisor.push(&server, vec![
            w.supervisor.m("hazard_actions", &new_id(), g, action(&hz, "accept", json!({})), json!({})),
            w.supervisor.m("hazard_actions", &new_id(), g, action(&hz, "dispatch", json!({"department": "消防", "due_at": "2026-11-23T08:30:00Z"})), json!({})),
        ]).await;
        assert_eq!(statuses(&sup), vec!["applied", "applied"]);
        let late = w.worker.push(&server, vec![
            w.worker.m("hazard_actions", &stale, g, action(&hz, "self_handle", json!({"note": "已劝离"})), json!({})),
        ]).await;
        assert_eq!(statuses(&late), vec!["applied"]);
        let (changes, _) = w.worker.pull_all(&server, None, 100).await;
        let recorded = find(&changes, &stale);
        assert_eq!(recorded["fields"]["effect"], "no_effect");
        assert!(recorded["fields"]["reason"].as_str().unwrap().contains("dispatched"));
        let hazard = find(&changes, &hz);
        assert_eq!(hazard["fields"]["status"], "dispatched");
        assert_eq!(hazard["fields"]["assignee_department"], "消防");
        assert_eq!(hazard["fields"]["due_at"], "2026-11-23T08:30:00.000Z");
    }

    async fn hostile_text_is_stored_verbatim(server) {
        let w = world(&server).await;
        let hh = new_id();
        let text = "Robert'); DROP TABLE households;-- <script>alert(1)</script> 独居老人 👵🏻 \"quoted\" \\ back";
        let resp = w.worker.push(&server, vec![w.worker.m("households", &hh, &w.tree.grid, json!({"address": text, "notes": text}), json!({}))]).await;
        assert_eq!(statuses(&resp), vec!["applied"]);
        let (changes, _) = w.worker2.pull_all(&server, None, 100).await;
        assert_eq!(find(&changes, &hh)["fields"]["notes"], text);
        assert_eq!(find(&changes, &hh)["fields"]["address"], text);
    }

    async fn malformed_and_unauthorised_requests(server) {
        let w = world(&server).await;
        let no_token = server.post_json("/api/v1/sync/push", &json!({"device_id": w.worker.device, "mutations": []})).await;
        assert_eq!(no_token.status, 401);
        assert_eq!(no_token.error_code(), Some("missing_token"));
        let other_device = post(&server, "/api/v1/sync/push", &w.worker.token, &json!({"device_id": new_id(), "mutations": []})).await;
        assert_eq!((other_device.status, other_device.error_code()), (403, Some("device_mismatch")));
        let bad_hlc = post(&server, "/api/v1/sync/push", &w.worker.token, &json!({"device_id": w.worker.device, "mutations": [
            {"seq": 1, "id": new_id(), "collection": "households", "record_id": new_id(), "grid_id": w.tree.grid,
             "op": "upsert", "hlc": "yesterday", "fields": {"address": "a"}, "base": {}}]})).await;
        assert_eq!(bad_hlc.status, 422, "well-formed JSON, invalid value: {}", bad_hlc.text);
        let unknown_collection = post(&server, "/api/v1/sync/push", &w.worker.token, &json!({"device_id": w.worker.device, "mutations": [
            {"seq": 1, "id": new_id(), "collection": "secrets", "record_id": new_id(), "grid_id": w.tree.grid,
             "op": "upsert", "hlc": w.worker.stamp(1), "fields": {}, "base": {}}]})).await;
        assert_eq!(unknown_collection.status, 422, "{}", unknown_collection.text);
        let nested = format!(
            "{{\"device_id\": \"{}\", \"mutations\": [{{\"seq\": 1, \"id\": \"{}\", \"collection\": \"households\", \"record_id\": \"{}\", \"grid_id\": \"{}\", \"op\": \"upsert\", \"hlc\": \"{}\", \"fields\": {{\"notes\": {}{}}}}}]}}",
            w.worker.device, new_id(), new_id(), w.tree.grid, w.worker.stamp(1), "[".repeat(5000), "]".repeat(5000));
        let deep = server.send(server.client().post(server.url("/api/v1/sync/push")).bearer_auth(&w.worker.token)
            .header("content-type", "application/json").body(nested)).await;
        assert_eq!(deep.status, 400, "{}", deep.text);
        let huge = "x".repeat(9 * 1024 * 1024);
        let big = server.send(server.client().post(server.url("/api/v1/sync/push")).bearer_auth(&w.worker.token)
            .header("content-type", "application/json").body(format!("{{\"device_id\": \"{huge}\"}}"))).await;
        assert_eq!(big.status, 413);
        let bad_cursor = get(&server, "/api/v1/sync/pull?cursor=nonsense", &w.worker.token).await;
        assert_eq!((bad_cursor.status, bad_cursor.error_code()), (400, Some("invalid_cursor")));
        let bad_limit = get(&server, "/api/v1/sync/pull?limit=lots", &w.worker.token).await;
        assert_eq!(bad_limit.status, 400);
        for r in [&no_token, &other_device, &bad_hlc, &unknown_collection, &deep, &big, &bad_cursor, &bad_limit] {
            assert!(r.json["error"]["message"].is_string(), "{}", r.text);
        }
        let (changes, _) = w.worker.pull_all(&server, None, 100).await;
        assert!(changes.is_empty(), "no request wrote anything");
    }

    async fn withdrawn_grid_leaves_the_scope(server) {
        let w = world(&server).await;
        w.worker.push(&server, vec![w.worker.m("households", &new_id(), &w.tree.grid, json!({"address": "a"}), json!({}))]).await;
        let (_, admin_token) = admin(&server).await;
        let me = login(&server, "w1").await["user"]["id"].as_str().unwrap().to_owned();
        let resp = patch(&server, &format!("/api/v1/users/{me}"), &admin_token, &json!({"grid_ids": []})).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let page = get(&server, "/api/v1/sync/pull", &w.worker.token).await;
        assert_eq!(page.json["scope"]["grid_ids"], json!([]));
        assert_eq!(page.json["changes"], json!([]));
        let push = w.worker.push(&server, vec![w.worker.m("households", &new_id(), &w.tree.grid, json!({"address": "b"}), json!({}))]).await;
        assert_eq!(push.json["results"][0]["reason"]["code"], "out_of_scope");
    }

    async fn concurrent_writers_and_an_incremental_reader_miss_nothing(server) {
        let w = world(&server).await;
        let server = Arc::new(server);
        let mut writers = Vec::new();
        let phones: Vec<Arc<Phone>> = vec![Arc::new(w.worker), Arc::new(w.worker2), Arc::new(w.supervisor)];
        const PUSHES: usize = 15;
        const PER_PUSH: usize = 4;
        for phone in &phones {
            let (server, phone, grid) = (server.clone(), phone.clone(), w.tree.grid.clone());
            writers.push(tokio::spawn(async move {
                for _ in 0..PUSHES {
                    let ms: Vec<Value> = (0..PER_PUSH).map(|i| phone.m("households", &new_id(), &grid, json!({"address": format!("{i}号")}), json!({}))).collect();
                    let resp = phone.push(&server, ms).await;
                    assert_eq!(resp.status, 200, "{}", resp.text);
                }
            }));
        }
        let reader = Phone::login(&server, "sup").await;
        let mut seen = std::collections::HashSet::new();
        let mut cursor = None;
        let expected = phones.len() * PUSHES * PER_PUSH;
        for _ in 0..2000 {
            let (changes, next) = reader.pull_all(&server, cursor.clone(), 7).await;
            for c in changes {
                seen.insert(c["id"].as_str().unwrap().to_owned());
            }
            cursor = Some(next);
            if writers.iter().all(|h| h.is_finished()) && seen.len() >= expected {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        for h in writers {
            h.await.unwrap();
        }
        let (rest, _) = reader.pull_all(&server, cursor, 7).await;
        for c in rest {
            seen.insert(c["id"].as_str().unwrap().to_owned());
        }
        assert_eq!(seen.len(), expected, "the incremental reader saw every record");
    }
}

/// The id of a user by username (what the server filled in as author).
async fn household_author(server: &TestServer, username: &str) -> Value {
    json!(login(server, username).await["user"]["id"])
}

async fn count(server: &TestServer, table: &str, id: &str) -> i64 {
    use diesel::prelude::*;
    let (table, id) = (table.to_owned(), id.to_owned());
    server
        .pool()
        .run(move |c| {
            #[derive(diesel::QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let q = format!("SELECT COUNT(*) AS n FROM {table} WHERE id = '{id}'");
            Ok(diesel::sql_query(q).get_result::<N>(c)?.n)
        })
        .await
        .unwrap()
}

async fn conflict_values(server: &TestServer, record: &str) -> Vec<(String, String)> {
    use diesel::prelude::*;
    use grid_server::db::schema::conflicts;
    let record = record.to_owned();
    server
        .pool()
        .run(move |c| {
            Ok(conflicts::table
                .filter(conflicts::record_id.eq(record))
                .select((conflicts::current_value, conflicts::incoming_value))
                .load::<(Option<String>, Option<String>)>(c)?
                .into_iter()
                .map(|(a, b)| (a.unwrap_or_default(), b.unwrap_or_default()))
                .collect())
        })
        .await
        .unwrap()
}
