//! `grid-worker` as a user runs it: the binary against the real server (in-process on port
//! 0), on SQLite and, with `TEST_DATABASE_URL`, PostgreSQL. Login, offline work then sync,
//! status and export against the server's export, one-line errors with non-zero status, a
//! dead server that loses nothing, and a session that must be renewed by a new login.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use grid_server::auth::password::hash_password;
use grid_server::db::areas::{insert_area, AreaLevel};
use grid_server::db::users::{insert_user, NewUser, Role};
use grid_server::testing::TestServer;
use serde_json::{json, Value};
use sync_core::replica::Replica;

const PASSWORD: &str = "网格 correct horse";

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "{self:?}");
        assert!(self.stderr.is_empty(), "{self:?}");
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// A created record's id: the whole of standard output.
    fn id(&self) -> String {
        let line = self.stdout.strip_suffix('\n').unwrap();
        assert!(!line.contains('\n'), "{self:?}");
        line.parse::<uuid_text::Id>().unwrap();
        line.to_owned()
    }

    /// A failure: the given status, nothing on stdout, one line on stderr.
    fn failed(self, code: i32) -> String {
        assert_eq!(self.code, code, "{self:?}");
        assert!(self.stdout.is_empty(), "{self:?}");
        assert_eq!(self.stderr.lines().count(), 1, "{self:?}");
        assert!(self.stderr.ends_with('\n'));
        self.stderr
    }
}

/// UUID text check without another dependency: sync-core's ids parse UUIDs.
mod uuid_text {
    pub type Id = sync_core::ids::RecordId;
}

/// A phone: a replica path, and the binary run on it.
struct Phone {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Phone {
    fn new() -> Phone {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("phone.db");
        Phone { _dir: dir, path }
    }

    fn run_with(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_grid-worker"));
        cmd.arg("--replica")
            .arg(&self.path)
            .args(args)
            .env_remove("GRID_WORKER_APP_VERSION")
            .env("GRID_WORKER_MAX_RETRIES", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, "", &[])
    }

    fn login(&self, server: &str, username: &str) -> Run {
        self.run_with(
            &[
                "login",
                "--server",
                server,
                "--username",
                username,
                "--password-stdin",
            ],
            &format!("{PASSWORD}\n"),
            &[],
        )
    }

    fn status(&self) -> Value {
        self.run(&["status"]).ok().json()
    }

    /// Open the replica directly (between runs), e.g. to change its stored tokens.
    fn with_replica<T>(&self, f: impl FnOnce(&Replica) -> T) -> T {
        f(&Replica::open(&self.path).unwrap())
    }
}

struct World {
    grid: String,
    other_grid: String,
    admin_token: String,
}

async fn world(server: &TestServer) -> World {
    let hash = hash_password(PASSWORD).unwrap();
    let (grid, other_grid) = server
        .pool()
        .write(move |c| {
            let d = insert_area(c, "鼓楼区", None, AreaLevel::District, None)?;
            let s = insert_area(c, "湖南路街道", None, AreaLevel::Street, Some(&d.id))?;
            let cm = insert_area(c, "山西路社区", None, AreaLevel::Community, Some(&s.id))?;
            let g = insert_area(c, "第一网格", None, AreaLevel::Grid, Some(&cm.id))?;
            let g2 = insert_area(c, "第二网格", None, AreaLevel::Grid, Some(&cm.id))?;
            for (name, role, grids) in [
                ("w1", Role::Worker, vec![g.id.clone()]),
                ("admin", Role::Admin, vec![]),
            ] {
                insert_user(
                    c,
                    &NewUser {
                        username: name,
                        password_hash: &hash,
                        display_name: Some("测试"),
                        role,
                        area_id: None,
                        department: None,
                        grid_ids: &grids,
                    },
                )?;
            }
            Ok((g.id, g2.id))
        })
        .await
        .unwrap();
    let resp = server
        .post_json(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": PASSWORD}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    World {
        grid,
        other_grid,
        admin_token: resp.json["access_token"].as_str().unwrap().to_owned(),
    }
}

async fn server_export(server: &TestServer, token: &str, grid: &str) -> Value {
    let resp = server
        .send(
            server
                .client()
                .get(server.url(&format!("/api/v1/export?grid_id={grid}")))
                .bearer_auth(token),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json
}

/// A port nobody listens on.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn report(phone: &Phone, grid: &str, title: &str) -> String {
    phone
        .run(&[
            "hazard",
            "report",
            "--grid",
            grid,
            "--category",
            "ebike_charging",
            "--severity",
            "high",
            "--title",
            title,
            "--lat",
            "32.06",
            "--lon",
            "118.78",
        ])
        .ok()
        .id()
}

fn set_tokens(path: &Path, access: &str, refresh: &str) {
    Replica::open(path)
        .unwrap()
        .update_tokens(access, refresh)
        .unwrap();
}

grid_server::backend_tests! {
    async fn offline_work_syncs_and_exports_match_the_server(server) {
        let w = world(&server).await;
        let phone = Phone::new();
        let login = phone.login(&server.base_url, "w1").ok().json();
        let device = phone.with_replica(|r| r.device_id().to_string());
        assert_eq!(login["device_id"], device);
        assert_eq!(login["grid_ids"], json!([w.grid]));
        assert_eq!(login["role"], "worker");

        // Offline: every kind of record.
        let hz = report(&phone, &w.grid, "楼道电瓶车充电");
        let hh = phone.run(&["household", "add", "--grid", &w.grid, "--address", "幸福路1号",
            "--head-name", "王奶奶", "--phone", "13800000000", "--tag", "elderly_alone", "--tag", "veteran"]).ok().id();
        phone.run(&["household", "edit", &hh, "--notes", "每周三复查"]).ok();
        let patrol = phone.run(&["patrol", "start", "--grid", &w.grid]).ok().id();
        phone.run(&["patrol", "point", &patrol, "--lat", "-33.9", "--lon", "151.2", "--accuracy", "5"]).ok().id();
        phone.run(&["patrol", "end", &patrol, "--summary", "一切正常"]).ok();
        phone.run(&["visit", "record", "--household", &hh, "--mode", "in_person", "--outcome", "met", "--summary", "身体不错"]).ok().id();
        let need = phone.run(&["need", "add", "--household", &hh, "--category", "medical", "--description", "需要轮椅", "--urgency", "high"]).ok().id();
        phone.run(&["need", "edit", &need, "--status", "accepted"]).ok();
        phone.run(&["hazard", "edit", &hz, "--severity", "critical", "--description", "三楼"]).ok();
        phone.run(&["hazard", "act", &hz, "--action", "comment", "--note", "已通知物业"]).ok().id();

        let before = phone.status();
        assert_eq!(before["device_id"], device);
        assert_eq!(before["pending"], 12, "{before}");
        assert_eq!(before["last_sync_at"], Value::Null);
        assert_eq!(before["logged_in"], true);

        let summary = phone.run_with(&["sync"], "", &[("GRID_WORKER_APP_VERSION", "grid-worker-test/9")]).ok().json();
        assert_eq!(summary["pushed"], 12, "{summary}");
        assert_eq!(summary["applied"], 12, "{summary}");
        assert_eq!(summary["duplicates"], 0);
        assert_eq!(summary["rejected"], json!([]));
        assert_eq!(summary["pending"], 0);
        assert!(summary["pulled"].as_u64().unwrap() >= 8, "{summary}");
        for key in ["conflicts", "purged"] {
            assert!(summary.get(key).is_some(), "{summary}");
        }
        let after = phone.status();
        assert_eq!(after["pending"], 0);
        assert!(after["last_sync_at"].as_str().unwrap().ends_with('Z'));
        assert_eq!(after["last_error"], Value::Null);

        let mine = phone.run(&["export"]).ok().json();
        let theirs = server_export(&server, &w.admin_token, &w.grid).await;
        assert_eq!(mine, theirs);
        assert_eq!(theirs["hazards"][0]["id"], hz);
        assert_eq!(theirs["hazards"][0]["severity"], "critical");
        assert_eq!(theirs["hazards"][0]["status"], "reported");
        assert_eq!(theirs["hazard_actions"].as_array().unwrap().len(), 2);
        assert_eq!(theirs["needs"][0]["status"], "accepted");
        assert_eq!(theirs["households"][0]["tags"], json!(["elderly_alone", "veteran"]));
        assert_eq!(theirs["track_points"][0]["lat"], -33.9);

        // The devices view has the reported app version.
        let devices = server.send(server.client().get(server.url("/api/v1/devices?limit=500")).bearer_auth(&w.admin_token)).await;
        let d = devices.json["items"].as_array().unwrap().iter().find(|d| d["id"] == device).cloned().unwrap();
        assert_eq!(d["app_version"], "grid-worker-test/9", "{d}");

        // A second sync has nothing to do.
        let again = phone.run(&["sync"]).ok().json();
        assert_eq!((again["pushed"].as_u64(), again["pending"].as_u64()), (Some(0), Some(0)));
    }

    async fn bad_input_exits_non_zero_with_one_line(server) {
        let w = world(&server).await;
        let phone = Phone::new();
        // Before login: nothing to sync with.
        assert!(phone.run(&["sync"]).failed(4).contains("log"));
        let wrong = phone.run_with(&["login", "--server", &server.base_url, "--username", "w1", "--password-stdin"], "nope\n", &[]);
        assert!(wrong.failed(4).contains("invalid_credentials"));
        assert!(phone.run_with(&["login", "--server", &server.base_url, "--username", "w1", "--password-stdin"], "", &[]).failed(2).contains("password"));
        assert!(phone.login("localhost:1", "w1").failed(2).contains("URL"));
        phone.login(&server.base_url, "w1").ok();

        let long = "长".repeat(201);
        let cases: Vec<(Vec<&str>, i32, &str)> = vec![
            (vec!["hazard", "report", "--grid", &w.grid, "--category", "gas", "--severity", "extreme", "--title", "t"], 2, "severity"),
            (vec!["hazard", "report", "--grid", &w.grid, "--category", "gas", "--severity", "low", "--title", "t", "--lat", "91", "--lon", "0"], 2, "lat"),
            (vec!["hazard", "report", "--grid", &w.grid, "--category", "gas", "--severity", "low", "--title", "t", "--lat", "30"], 2, "lon"),
            (vec!["hazard", "report", "--grid", &w.grid, "--category", "gas", "--severity", "low", "--title", &long], 2, "title"),
            (vec!["hazard", "report", "--grid", "not-a-grid", "--category", "gas", "--severity", "low", "--title", "t"], 2, "grid"),
            (vec!["household", "add", "--grid", &w.grid, "--address", "a", "--tag", "rich"], 2, "tag"),
            (vec!["household", "edit", &w.grid], 2, "nothing to change"),
            (vec!["household", "edit", &w.grid, "--notes", "x"], 1, "no households record"),
            (vec!["hazard", "act", &w.grid, "--action", "comment", "--due", "tomorrow"], 2, "RFC 3339"),
            (vec!["patrol", "point", &w.grid, "--lat", "1"], 2, "lon"),
            (vec!["household"], 2, "subcommand"),
            (vec!["fly"], 2, "fly"),
        ];
        for (args, code, needle) in cases {
            let err = phone.run(&args).failed(code);
            assert!(err.contains(needle), "{args:?}: {err}");
        }
        // Out of the worker's grids: refused on the phone with the reason.
        let err = phone.run(&["household", "add", "--grid", &w.other_grid, "--address", "a"]).failed(2);
        assert!(err.contains("out_of_scope"), "{err}");
        // None of it was stored.
        assert_eq!(phone.status()["pending"], 0);
        // A worker may not dispatch: refused at once, with the reason.
        let hz = report(&phone, &w.grid, "t");
        let err = phone.run(&["hazard", "act", &hz, "--action", "dispatch", "--department", "消防", "--due", "2030-01-01T00:00:00Z"]).failed(2);
        assert!(err.contains("forbidden"), "{err}");
        assert_eq!(phone.status()["pending"], 2);
        // --help is not an error.
        let help = phone.run(&["--help"]);
        assert_eq!(help.code, 0);
        assert!(help.stdout.contains("hazard"));
    }

    async fn a_dead_server_fails_the_sync_and_loses_nothing(server) {
        let w = world(&server).await;
        let phone = Phone::new();
        phone.login(&server.base_url, "w1").ok();
        let hz = report(&phone, &w.grid, "消防通道堵塞");
        let real = phone.with_replica(|r| r.credentials().unwrap().unwrap());
        phone.with_replica(|r| {
            let mut dead = real.clone();
            dead.server_url = dead_url();
            r.save_credentials(&dead).unwrap();
        });
        let started = std::time::Instant::now();
        let err = phone.run(&["sync"]).failed(3);
        assert!(err.contains("network"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        let status = phone.status();
        assert_eq!(status["pending"], 2);
        assert!(status["last_error"].as_str().unwrap().contains("network"), "{status}");
        // Offline work goes on, and reconnecting sends everything.
        report(&phone, &w.grid, "第二个");
        phone.with_replica(|r| r.save_credentials(&real).unwrap());
        let summary = phone.run(&["sync"]).ok().json();
        assert_eq!((summary["applied"].as_u64(), summary["pending"].as_u64()), (Some(4), Some(0)));
        let theirs = server_export(&server, &w.admin_token, &w.grid).await;
        assert!(theirs["hazards"].as_array().unwrap().iter().any(|h| h["id"] == hz));
        assert_eq!(phone.run(&["export"]).ok().json(), theirs);
        assert_eq!(phone.status()["last_error"], Value::Null);
    }

    async fn an_ended_session_says_log_in_again_and_a_new_login_sends_everything(server) {
        let w = world(&server).await;
        let phone = Phone::new();
        let login = phone.login(&server.base_url, "w1").ok().json();
        report(&phone, &w.grid, "燃气味");

        // An expired access token with a good refresh token: renewed without a word.
        let expired = {
            let user = login["user_id"].as_str().unwrap().parse().unwrap();
            let device = login["device_id"].as_str().unwrap().parse().unwrap();
            let claims = grid_server::auth::jwt::access_claims(user, device, sync_core::workflow::Role::Worker, chrono::Utc::now().timestamp() - 3600);
            grid_server::auth::jwt::sign_claims(&server.state.jwt, &claims).unwrap()
        };
        let refresh = phone.with_replica(|r| r.credentials().unwrap().unwrap().refresh_token);
        set_tokens(&phone.path, &expired, &refresh);
        assert_eq!(phone.run(&["sync"]).ok().json()["applied"], 2);
        let renewed = phone.with_replica(|r| r.credentials().unwrap().unwrap());
        assert_ne!(renewed.refresh_token, refresh);

        // Both tokens dead (expired access, revoked refresh): log in again, nothing lost.
        let hz = report(&phone, &w.grid, "消防栓损坏");
        set_tokens(&phone.path, &expired, &refresh);
        let err = phone.run(&["sync"]).failed(4);
        assert!(err.contains("log in again"), "{err}");
        assert_eq!(phone.status()["pending"], 2);
        assert!(phone.status()["last_error"].as_str().unwrap().contains("log in again"));
        let theirs = server_export(&server, &w.admin_token, &w.grid).await;
        assert!(!theirs["hazards"].as_array().unwrap().iter().any(|h| h["id"] == hz));

        phone.login(&server.base_url, "w1").ok();
        let summary = phone.run(&["sync"]).ok().json();
        assert_eq!((summary["applied"].as_u64(), summary["pending"].as_u64()), (Some(2), Some(0)));
        let theirs = server_export(&server, &w.admin_token, &w.grid).await;
        assert!(theirs["hazards"].as_array().unwrap().iter().any(|h| h["id"] == hz));
        assert_eq!(phone.run(&["export"]).ok().json(), theirs);
    }
}
