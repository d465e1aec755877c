//! Shared helpers of the supervisor API tests: a community with workers, supervisors and
//! departments; a phone that pushes and pulls like the real one; CSV parsing with Python.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use grid_server::db::users::Role;
use grid_server::testing::{TestResponse, TestServer};
use serde_json::{json, Value};
use sync_core::ids::RecordId;

pub use crate::auth_support::*;

/// A phone as the tests drive it: its token, device and seq counter.
pub struct Phone {
    pub token: String,
    pub device: String,
    pub user_id: String,
    pub seq: AtomicU64,
}

impl Phone {
    pub async fn login(server: &TestServer, username: &str) -> Phone {
        let body = login(server, username).await;
        Phone {
            token: body["access_token"].as_str().unwrap().to_owned(),
            device: body["device_id"].as_str().unwrap().to_owned(),
            user_id: body["user"]["id"].as_str().unwrap().to_owned(),
            seq: AtomicU64::new(0),
        }
    }

    pub fn stamp(&self, wall_ms: i64) -> String {
        format!("{:015}-{:05}-{}", wall_ms, 0, self.device)
    }

    /// A mutation with the next seq, stamped now.
    pub fn m(&self, collection: &str, id: &str, grid: &str, fields: Value, base: Value) -> Value {
        self.m_at(collection, id, grid, fields, base, now_ms())
    }

    pub fn m_at(
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

    /// Push; asserts 200 and that every mutation was applied.
    pub async fn push_ok(&self, server: &TestServer, mutations: Vec<Value>) -> TestResponse {
        let resp = self.push(server, mutations).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        for r in resp.json["results"].as_array().unwrap() {
            assert_eq!(r["status"], "applied", "{}", resp.text);
        }
        resp
    }

    pub async fn push(&self, server: &TestServer, mutations: Vec<Value>) -> TestResponse {
        post(
            server,
            "/api/v1/sync/push",
            &self.token,
            &json!({"device_id": self.device, "mutations": mutations}),
        )
        .await
    }

    /// Pull everything from the beginning; the latest change per record id.
    pub async fn pull_all(&self, server: &TestServer) -> Vec<Value> {
        let mut all: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => format!("/api/v1/sync/pull?limit=500&cursor={c}"),
                None => "/api/v1/sync/pull?limit=500".to_owned(),
            };
            let page = get(server, &q, &self.token).await;
            assert_eq!(page.status, 200, "{}", page.text);
            all.extend(page.json["changes"].as_array().unwrap().iter().cloned());
            cursor = Some(page.json["cursor"].as_str().unwrap().to_owned());
            if !page.json["has_more"].as_bool().unwrap() {
                return all;
            }
        }
    }

    /// Report a hazard (record + submit action); returns its id.
    pub async fn report_hazard(&self, server: &TestServer, grid: &str, fields: Value) -> String {
        let hz = new_id();
        self.push_ok(
            server,
            vec![
                self.m("hazards", &hz, grid, fields, json!({})),
                self.m(
                    "hazard_actions",
                    &new_id(),
                    grid,
                    action(&hz, "submit", json!({})),
                    json!({}),
                ),
            ],
        )
        .await;
        hz
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn new_id() -> String {
    RecordId::new().to_string()
}

pub fn hazard_fields(title: &str, category: &str, severity: &str) -> Value {
    json!({"title": title, "category": category, "severity": severity, "source": "patrol"})
}

/// The fields of a hazard action pushed by a phone.
pub fn action(hazard: &str, action: &str, extra: Value) -> Value {
    let mut f = json!({"hazard_id": hazard, "action": action, "at": "2026-11-21T08:30:00.000Z"});
    f.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    f
}

/// The last pulled change of record `id`.
pub fn pulled<'a>(changes: &'a [Value], id: &str) -> &'a Value {
    changes
        .iter()
        .rev()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{id} not pulled"))
}

/// The people of the test city.
pub struct City {
    pub tree: Tree,
    /// Worker of `tree.grid`.
    pub worker: Phone,
    /// Worker of `tree.other_grid`.
    pub other_worker: Phone,
    /// Supervisor of `tree.community`.
    pub sup: Phone,
    /// Supervisor of `tree.other_community`.
    pub other_sup: Phone,
    /// Department 消防.
    pub fire: Phone,
    /// Department 燃气.
    pub gas: Phone,
    pub admin: Phone,
}

pub async fn city(server: &TestServer) -> City {
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
    make_user(
        server,
        "sup2",
        Role::Supervisor,
        &[],
        Some(&tree.other_community),
        None,
    )
    .await;
    make_user(server, "fire", Role::Department, &[], None, Some("消防")).await;
    make_user(server, "gas", Role::Department, &[], None, Some("燃气")).await;
    make_user(server, "root", Role::Admin, &[], None, None).await;
    City {
        worker: Phone::login(server, "w1").await,
        other_worker: Phone::login(server, "w2").await,
        sup: Phone::login(server, "sup").await,
        other_sup: Phone::login(server, "sup2").await,
        fire: Phone::login(server, "fire").await,
        gas: Phone::login(server, "gas").await,
        admin: Phone::login(server, "root").await,
        tree,
    }
}

/// `POST /api/v1/hazards/{id}/actions` as `who`.
pub async fn act(server: &TestServer, who: &Phone, hazard: &str, body: Value) -> TestResponse {
    post(
        server,
        &format!("/api/v1/hazards/{hazard}/actions"),
        &who.token,
        &body,
    )
    .await
}

/// GET with `Accept: text/csv`.
pub async fn get_csv(server: &TestServer, path: &str, token: &str) -> TestResponse {
    server
        .send(
            server
                .client()
                .get(server.url(path))
                .bearer_auth(token)
                .header("accept", "text/csv"),
        )
        .await
}

/// Parse CSV text with Python's csv module (BOM removed by `utf-8-sig`); rows as lists.
pub fn python_csv(text: &str) -> Vec<Vec<String>> {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import csv, io, json, sys\n\
             data = sys.stdin.buffer.read().decode('utf-8-sig')\n\
             print(json.dumps(list(csv.reader(io.StringIO(data, newline='')))))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python csv failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What a CSV cell holds for a JSON value (the rules of `grid_server::csv`).
pub fn csv_cell(v: &Value) -> String {
    grid_server::csv::cell(v)
}
