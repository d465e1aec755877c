//! `GET /api/v1/export` and the phone's HTTP client against the real server, on both
//! backends: after phones sync over `sync_core::http`, their canonical export equals the
//! server's for the grid; who may export what; login registers the replica's own device;
//! an expired access token is refreshed once and the rotated pair persisted; an ended session
//! says "log in again" and loses nothing unsent; responses are gzip-compressed and error
//! envelopes survive compression.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth_support;

use std::time::Duration;

use auth_support::*;
use grid_server::db::users::Role;
use grid_server::testing::TestServer;
use serde_json::{json, Value};
use sync_core::http::{login, logout, HttpError, HttpOptions, HttpTransport};
use sync_core::model::{
    HazardCategory, HazardSource, HouseholdPatch, HouseholdTag, NeedCategory, NewHazard,
    NewHousehold, NewNeed, NewPatrol, NewTrackPoint, NewVisit, Severity, VisitMode, VisitOutcome,
};
use sync_core::replica::Replica;
use sync_core::sync::{sync, SyncError, SyncOptions, SyncSummary, Transport, TransportError};
use sync_core::GridId;

/// A phone: a replica in its own directory.
struct Phone {
    _dir: tempfile::TempDir,
    replica: Replica,
}

fn options() -> HttpOptions {
    HttpOptions {
        timeout: Duration::from_secs(20),
        max_retries: 1,
        base_backoff: Duration::from_millis(50),
        ..HttpOptions::default()
    }
}

impl Phone {
    fn new() -> Phone {
        let dir = tempfile::tempdir().unwrap();
        let replica = Replica::open(dir.path().join("replica.db")).unwrap();
        Phone { _dir: dir, replica }
    }

    fn login(&self, server: &TestServer, username: &str) -> sync_core::http::LoginInfo {
        login(
            &self.replica,
            &server.base_url,
            username,
            PASSWORD,
            Some("测试手机"),
        )
        .unwrap()
    }

    /// A sync with small pages, so that paging over HTTP is exercised.
    fn sync(&self) -> Result<SyncSummary, SyncError> {
        let mut transport = HttpTransport::with_options(&self.replica, options()).unwrap();
        sync(
            &self.replica,
            &mut transport,
            &SyncOptions {
                push_page: 3,
                pull_page: 4,
                app_version: Some("grid-tests/1".into()),
            },
        )
    }

    fn grid(&self, tree: &Tree) -> GridId {
        tree.grid.parse().unwrap()
    }
}

/// An export restricted to one grid's records.
fn restrict(export: &Value, grid: &str) -> Value {
    let mut out = serde_json::Map::new();
    for (collection, records) in export.as_object().unwrap() {
        let kept: Vec<Value> = records
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["grid_id"] == grid)
            .cloned()
            .collect();
        out.insert(collection.clone(), Value::Array(kept));
    }
    Value::Object(out)
}

async fn people(server: &TestServer) -> (Tree, String, String) {
    let tree = make_tree(server).await;
    for w in ["w1", "w2"] {
        make_user(
            server,
            w,
            Role::Worker,
            std::slice::from_ref(&tree.grid),
            None,
            None,
        )
        .await;
    }
    make_user(
        server,
        "w3",
        Role::Worker,
        std::slice::from_ref(&tree.other_grid),
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
    make_user(server, "dept", Role::Department, &[], None, Some("消防")).await;
    let sup = token(server, "sup").await;
    let (_, admin) = admin(server).await;
    (tree, sup, admin)
}

async fn server_export(server: &TestServer, token: &str, grid: &str) -> Value {
    let resp = get(server, &format!("/api/v1/export?grid_id={grid}"), token).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json
}

fn hazard(grid: GridId, title: &str) -> NewHazard {
    NewHazard {
        grid_id: grid,
        source: Some(HazardSource::Patrol),
        category: HazardCategory::EbikeCharging,
        severity: Severity::High,
        title: title.into(),
        description: Some("三楼楼道 🚲".into()),
        lat: Some(32.06),
        lon: Some(118.78),
        address: None,
    }
}

grid_server::backend_tests! {
    async fn phone_exports_equal_the_servers_after_sync(server) {
        let (tree, sup, admin) = people(&server).await;
        let (a, b, c) = (Phone::new(), Phone::new(), Phone::new());
        a.login(&server, "w1");
        b.login(&server, "w2");
        c.login(&server, "w3");
        let g = a.grid(&tree);

        // Offline work of every kind on A, a household on B, another grid on C.
        let hh = a.replica.add_household(g, &NewHousehold {
            address: "幸福路1号".into(),
            head_name: Some("王奶奶".into()),
            tags: vec![HouseholdTag::ElderlyAlone, HouseholdTag::Veteran],
            members: Some(1),
            ..Default::default()
        }).unwrap();
        let hz = a.replica.report_hazard(&hazard(g, "楼道电瓶车充电")).unwrap();
        let patrol = a.replica.start_patrol(g, &NewPatrol::default()).unwrap();
        a.replica.add_track_point(patrol, &NewTrackPoint { recorded_at: None, lat: 32.06, lon: 118.78, accuracy_m: Some(4.5) }).unwrap();
        a.replica.end_patrol(patrol, Some("一切正常".into())).unwrap();
        let visit = a.replica.record_visit(&NewVisit {
            household_id: hh, visited_at: None, mode: VisitMode::InPerson, outcome: VisitOutcome::Met,
            summary: Some("身体不错".into()), follow_up_due: None, lat: None, lon: None,
        }).unwrap();
        a.replica.add_need(&NewNeed {
            household_id: hh, visit_id: Some(visit), category: NeedCategory::Medical,
            description: "需要轮椅".into(), urgency: None, due_on: None,
        }).unwrap();
        b.replica.add_household(g, &NewHousehold { address: "幸福路2号".into(), ..Default::default() }).unwrap();
        c.replica.report_hazard(&hazard(tree.other_grid.parse().unwrap(), "别的网格")).unwrap();

        let first = a.sync().unwrap();
        assert_eq!((first.pushed, first.applied, first.pending), (8, 8, 0), "{first:?}");
        assert!(first.rejected.is_empty(), "{first:?}");
        b.sync().unwrap();
        c.sync().unwrap();
        a.sync().unwrap();
        // B edits A's household on top of what it pulled; everyone syncs again.
        b.replica.edit_household(hh, &HouseholdPatch { notes: Some("每周三复查".into()), ..Default::default() }).unwrap();
        b.sync().unwrap();
        let last = a.sync().unwrap();
        assert_eq!(last.pending, 0);

        let theirs = server_export(&server, &sup, &tree.grid).await;
        assert_eq!(theirs, server_export(&server, &admin, &tree.grid).await);
        assert_eq!(restrict(&a.replica.export().unwrap(), &tree.grid), theirs);
        assert_eq!(restrict(&b.replica.export().unwrap(), &tree.grid), theirs);
        // Byte for byte, as JSON text (object keys are ordered the same way on both sides).
        assert_eq!(
            serde_json::to_string(&a.replica.export().unwrap()).unwrap(),
            serde_json::to_string(&theirs).unwrap()
        );
        // Not trivially equal: everything is there, with the server's verdicts.
        assert_eq!(theirs["households"].as_array().unwrap().len(), 2);
        let household = theirs["households"].as_array().unwrap().iter().find(|h| h["id"] == hh.to_string()).unwrap();
        assert_eq!(household["notes"], "每周三复查");
        assert_eq!(household["tags"], json!(["elderly_alone", "veteran"]));
        assert_eq!(theirs["hazards"][0]["id"], hz.to_string());
        assert_eq!(theirs["hazards"][0]["status"], "reported");
        assert_eq!(theirs["hazard_actions"][0]["effect"], "applied");
        assert_eq!(theirs["patrols"][0]["status"], "ended");
        assert_eq!(theirs["track_points"].as_array().unwrap().len(), 1);
        assert_eq!(theirs["visits"].as_array().unwrap().len(), 1);
        assert_eq!(theirs["needs"][0]["status"], "open");
        // The other grid's hazard is in its own export only.
        let other = server_export(&server, &admin, &tree.other_grid).await;
        assert_eq!(other["hazards"].as_array().unwrap().len(), 1);
        assert_eq!(restrict(&c.replica.export().unwrap(), &tree.other_grid), other);
        assert_eq!(c.replica.export().unwrap(), other);

        // The push reported the app version and the pending count for the devices view.
        let devices = get(&server, "/api/v1/devices?limit=500", &admin).await;
        let mine = devices.json["items"].as_array().unwrap().iter()
            .find(|d| d["id"] == a.replica.device_id().to_string()).cloned().unwrap();
        assert_eq!(mine["app_version"], "grid-tests/1", "{mine}");
    }

    async fn export_is_for_supervisors_in_scope_and_admins(server) {
        let (tree, sup, admin) = people(&server).await;
        let worker = token(&server, "w1").await;
        let dept = token(&server, "dept").await;
        let path = format!("/api/v1/export?grid_id={}", tree.grid);
        assert_eq!(get(&server, &path, &worker).await.status, 403);
        assert_eq!(get(&server, &path, &dept).await.status, 403);
        assert_eq!(call(&server, "GET", &path, None, None).await.status, 401);
        let empty = server_export(&server, &sup, &tree.grid).await;
        for c in sync_core::Collection::ALL {
            assert_eq!(empty[c.as_str()], json!([]), "{c}");
        }
        // Outside the supervisor's subtree: as if it did not exist.
        let outside = get(&server, &format!("/api/v1/export?grid_id={}", tree.other_grid), &sup).await;
        assert_eq!((outside.status, outside.error_code()), (404, Some("not_found")), "{}", outside.text);
        server_export(&server, &admin, &tree.other_grid).await;
        // Not a grid, no such area, bad or missing id.
        for (query, status) in [
            (format!("grid_id={}", tree.community), 404),
            (format!("grid_id={}", GridId::new()), 404),
            ("grid_id=not-a-uuid".to_owned(), 400),
            ("grid_id=".to_owned(), 400),
            (String::new(), 400),
        ] {
            let resp = get(&server, &format!("/api/v1/export?{query}"), &admin).await;
            assert_eq!(resp.status, status, "{query}: {}", resp.text);
            assert!(resp.error_code().is_some(), "{}", resp.text);
        }
    }

    async fn login_registers_the_replicas_own_device(server) {
        let (tree, _sup, admin) = people(&server).await;
        let phone = Phone::new();
        let wrong = login(&phone.replica, &server.base_url, "w1", "wrong", None).unwrap_err();
        assert!(matches!(wrong, HttpError::Transport(TransportError::Auth(_))), "{wrong:?}");
        assert_eq!(phone.replica.credentials().unwrap(), None);
        assert!(matches!(HttpTransport::from_replica(&phone.replica), Err(HttpError::NotLoggedIn)));
        assert!(matches!(
            login(&phone.replica, "grid.example:8080", "w1", PASSWORD, None),
            Err(HttpError::InvalidUrl(_))
        ));

        let info = phone.login(&server, "w1");
        assert_eq!(info.device_id, phone.replica.device_id());
        assert_eq!(info.username, "w1");
        assert_eq!(info.grid_ids, vec![phone.grid(&tree)]);
        let session = phone.replica.scope();
        assert_eq!(session.user_id, Some(info.user_id));
        assert_eq!(session.grid_ids, info.grid_ids);
        let devices = get(&server, "/api/v1/devices?limit=500", &admin).await;
        assert!(devices.json["items"].as_array().unwrap().iter()
            .any(|d| d["id"] == info.device_id.to_string() && d["name"] == "测试手机"), "{}", devices.text);
        // Logging in again (same phone, same user) keeps the device.
        assert_eq!(phone.login(&server, "w1").device_id, info.device_id);
    }

    async fn an_expired_access_token_is_refreshed_once_and_the_pair_persisted(server) {
        let (tree, _sup, admin) = people(&server).await;
        let phone = Phone::new();
        let info = phone.login(&server, "w1");
        let before = phone.replica.credentials().unwrap().unwrap();
        let expired = {
            let now = chrono::Utc::now().timestamp() - 3600;
            let claims = grid_server::auth::jwt::access_claims(info.user_id, info.device_id, info.role, now);
            grid_server::auth::jwt::sign_claims(&server.state.jwt, &claims).unwrap()
        };
        phone.replica.update_tokens(&expired, &before.refresh_token).unwrap();
        let hz = phone.replica.report_hazard(&hazard(phone.grid(&tree), "燃气味")).unwrap();

        let summary = phone.sync().unwrap();
        assert_eq!((summary.applied, summary.pending), (2, 0));
        let after = phone.replica.credentials().unwrap().unwrap();
        assert_ne!(after.access_token, expired);
        assert_ne!(after.refresh_token, before.refresh_token);
        // The old refresh token was rotated away; the stored pair is the live one.
        let stale = server.post_json("/api/v1/auth/refresh", &json!({"refresh_token": before.refresh_token})).await;
        assert_eq!(stale.status, 401);
        // (The reuse above ended the session: the phone must log in again, and does.)
        assert!(matches!(phone.sync(), Err(SyncError::Transport(TransportError::Auth(_)))));
        phone.login(&server, "w1");
        phone.sync().unwrap();
        let export = server_export(&server, &admin, &tree.grid).await;
        assert_eq!(export["hazards"][0]["id"], hz.to_string());
    }

    async fn an_ended_session_says_log_in_again_and_loses_nothing(server) {
        let (tree, _sup, admin) = people(&server).await;
        let phone = Phone::new();
        phone.login(&server, "w1");
        phone.sync().unwrap();
        let hz = phone.replica.report_hazard(&hazard(phone.grid(&tree), "消防通道堵塞")).unwrap();
        assert_eq!(phone.replica.status().unwrap().pending, 2);

        // The server ends the session (logout elsewhere); the phone still holds the tokens.
        let kept = phone.replica.credentials().unwrap().unwrap();
        logout(&phone.replica).unwrap();
        assert_eq!(phone.replica.credentials().unwrap(), None);
        assert!(matches!(HttpTransport::from_replica(&phone.replica), Err(HttpError::NotLoggedIn)));
        phone.replica.save_credentials(&kept).unwrap();
        let err = phone.sync().unwrap_err();
        assert!(matches!(&err, SyncError::Transport(TransportError::Auth(m)) if m.contains("log in again")), "{err}");
        let status = phone.replica.status().unwrap();
        assert_eq!(status.pending, 2);
        assert!(status.last_error.unwrap().contains("log in again"));

        // Garbage tokens: the refresh is refused too.
        phone.replica.update_tokens("not-a-jwt", "not-a-refresh-token").unwrap();
        let err = phone.sync().unwrap_err();
        assert!(matches!(&err, SyncError::Transport(TransportError::Auth(m)) if m.contains("log in again")), "{err}");
        assert_eq!(phone.replica.status().unwrap().pending, 2);
        assert_eq!(server_export(&server, &admin, &tree.grid).await["hazards"], json!([]));

        // A new login, and everything unsent goes.
        phone.login(&server, "w1");
        let summary = phone.sync().unwrap();
        assert_eq!((summary.applied, summary.pending), (2, 0));
        assert_eq!(server_export(&server, &admin, &tree.grid).await["hazards"][0]["id"], hz.to_string());
    }

    async fn answers_are_compressed_and_errors_keep_their_envelope(server) {
        let (tree, _sup, _admin) = people(&server).await;
        let phone = Phone::new();
        phone.login(&server, "w1");
        for i in 0..30 {
            phone.replica.add_household(phone.grid(&tree), &NewHousehold { address: format!("幸福路{i}号"), ..Default::default() }).unwrap();
        }
        phone.sync().unwrap();
        let access = phone.replica.credentials().unwrap().unwrap().access_token;
        let pull = server.send(server.client().get(server.url("/api/v1/sync/pull"))
            .bearer_auth(&access).header("Accept-Encoding", "gzip")).await;
        assert_eq!(pull.status, 200);
        assert_eq!(pull.headers.get("content-encoding").unwrap(), "gzip");
        let missing = server.send(server.client().get(server.url("/api/v1/nowhere"))
            .header("Accept-Encoding", "gzip")).await;
        assert_eq!(missing.status, 404);
        // Through the phone's client (which asks for gzip): the envelope arrives decoded.
        let mut transport = HttpTransport::with_options(&phone.replica, options()).unwrap();
        let err = transport.pull(Some("garbage"), 10).unwrap_err();
        assert!(matches!(&err, TransportError::Refused { status: 400, code, .. } if code == "invalid_cursor"), "{err:?}");
        let page = transport.pull(None, 1000).unwrap();
        assert_eq!(page.changes.len(), 30);
    }
}
