//! Shared helpers of the auth and admin tests: users and areas made directly in the
//! database, logins and authenticated requests over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use grid_server::auth::password::hash_password;
use grid_server::db::areas::{insert_area, AreaLevel};
use grid_server::db::users::{self, NewUser, Role};
use grid_server::testing::{TestResponse, TestServer};
use serde_json::{json, Value};

/// The password every helper-made user has.
pub const PASSWORD: &str = "correct horse 电池 staple";

/// A user made directly in the database; returns its id.
pub async fn make_user(
    server: &TestServer,
    username: &str,
    role: Role,
    grid_ids: &[String],
    area_id: Option<&str>,
    department: Option<&str>,
) -> String {
    let hash = hash_password(PASSWORD).unwrap();
    let (username, grid_ids) = (username.to_owned(), grid_ids.to_vec());
    let (area_id, department) = (area_id.map(str::to_owned), department.map(str::to_owned));
    server
        .pool()
        .write(move |c| {
            users::insert_user(
                c,
                &NewUser {
                    username: &username,
                    password_hash: &hash,
                    display_name: Some("测试用户"),
                    role,
                    area_id: area_id.as_deref(),
                    department: department.as_deref(),
                    grid_ids: &grid_ids,
                },
            )
        })
        .await
        .unwrap()
        .id
}

/// A small tree made directly in the database.
pub struct Tree {
    pub district: String,
    pub street: String,
    pub community: String,
    pub grid: String,
    pub other_community: String,
    pub other_grid: String,
}

pub async fn make_tree(server: &TestServer) -> Tree {
    server
        .pool()
        .write(|c| {
            let d = insert_area(c, "鼓楼区", None, AreaLevel::District, None)?;
            let s = insert_area(c, "湖南路街道", None, AreaLevel::Street, Some(&d.id))?;
            let cm = insert_area(c, "山西路社区", None, AreaLevel::Community, Some(&s.id))?;
            let g = insert_area(c, "第一网格", None, AreaLevel::Grid, Some(&cm.id))?;
            let s2 = insert_area(c, "宁海路街道", None, AreaLevel::Street, Some(&d.id))?;
            let cm2 = insert_area(c, "青岛路社区", None, AreaLevel::Community, Some(&s2.id))?;
            let g2 = insert_area(c, "第二网格", None, AreaLevel::Grid, Some(&cm2.id))?;
            Ok(Tree {
                district: d.id,
                street: s.id,
                community: cm.id,
                grid: g.id,
                other_community: cm2.id,
                other_grid: g2.id,
            })
        })
        .await
        .unwrap()
}

/// `POST /api/v1/auth/login`.
pub async fn login_raw(server: &TestServer, body: Value) -> TestResponse {
    server.post_json("/api/v1/auth/login", &body).await
}

/// Log in with [`PASSWORD`]; panics unless 200. Returns the whole body.
pub async fn login(server: &TestServer, username: &str) -> Value {
    let resp = login_raw(server, json!({"username": username, "password": PASSWORD})).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.json
}

/// The access token of a fresh login.
pub async fn token(server: &TestServer, username: &str) -> String {
    login(server, username).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// An admin made in the database and logged in; returns (user id, access token).
pub async fn admin(server: &TestServer) -> (String, String) {
    let id = make_user(server, "admin", Role::Admin, &[], None, None).await;
    (id, token(server, "admin").await)
}

/// A request with an optional bearer token and an optional JSON body.
pub async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> TestResponse {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = server.client().request(method, server.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    server.send(req).await
}

pub async fn get(server: &TestServer, path: &str, token: &str) -> TestResponse {
    call(server, "GET", path, Some(token), None).await
}

pub async fn post(server: &TestServer, path: &str, token: &str, body: &Value) -> TestResponse {
    call(server, "POST", path, Some(token), Some(body)).await
}

pub async fn patch(server: &TestServer, path: &str, token: &str, body: &Value) -> TestResponse {
    call(server, "PATCH", path, Some(token), Some(body)).await
}

/// Every item of a paginated list, following `next_cursor` with `limit`; asserts no id
/// appears twice.
pub async fn collect_pages(server: &TestServer, path: &str, token: &str, limit: u32) -> Vec<Value> {
    collect_pages_from(server, path, token, limit, None).await
}

/// [`collect_pages`] starting at `cursor`.
pub async fn collect_pages_from(
    server: &TestServer,
    path: &str,
    token: &str,
    limit: u32,
    start: Option<String>,
) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = start;
    for _ in 0..1000 {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let resp = get(server, &url, token).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let items = resp.json["items"].as_array().unwrap();
        assert!(items.len() <= limit as usize);
        out.extend(items.iter().cloned());
        match resp.json["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(items.len(), limit as usize, "only the last page is short");
                cursor = Some(c.to_owned());
            }
            None => break,
        }
    }
    let mut ids: Vec<&str> = out.iter().map(|v| v["id"].as_str().unwrap()).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "an item was served twice");
    out
}
