//! A blocking client of the server's admin and supervisor API, as an operator's script would
//! use it: log in, make areas and users, change a user's grids, read a grid's canonical
//! export. Every call checks the status it expects and fails with the server's error
//! envelope otherwise.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};

/// The largest body read (a busy grid's export is a few MB).
const MAX_BODY: u64 = 512 * 1024 * 1024;

/// An answer: status and body (JSON when it parses, else `Null`; the text is kept).
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub json: Value,
    pub text: String,
}

/// A logged-in API user (an admin, usually).
#[derive(Clone)]
pub struct Admin {
    agent: ureq::Agent,
    base_url: String,
    token: String,
    /// The user's id.
    pub user_id: String,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("base_url", &self.base_url)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .max_redirects(0)
        .build()
        .into()
}

fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<ApiResponse> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let result = match (method, body) {
        ("GET", _) => {
            let mut r = agent.get(url).header("Accept", "application/json");
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()
        }
        (m, b) => {
            let bytes = serde_json::to_vec(b.unwrap_or(&json!({})))?;
            let mut r = match m {
                "POST" => agent.post(url),
                "PATCH" => agent.patch(url),
                other => bail!("unsupported method {other}"),
            }
            .header("Accept", "application/json")
            .header("Content-Type", "application/json");
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.send(&bytes[..])
        }
    };
    let response = result.with_context(|| format!("{method} {url}"))?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .with_context(|| format!("{method} {url}: body"))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(ApiResponse { status, json, text })
}

fn expect(resp: ApiResponse, status: u16, what: &str) -> anyhow::Result<Value> {
    if resp.status != status {
        bail!(
            "{what}: expected HTTP {status}, got {}: {}",
            resp.status,
            resp.text.chars().take(500).collect::<String>()
        );
    }
    Ok(resp.json)
}

fn id_of(v: &Value, what: &str) -> anyhow::Result<String> {
    v["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("{what}: no id in {v}"))
}

impl Admin {
    /// `POST /api/v1/auth/login`.
    pub fn login(base_url: &str, username: &str, password: &str) -> anyhow::Result<Admin> {
        let agent = agent();
        let resp = send(
            &agent,
            "POST",
            &format!("{base_url}/api/v1/auth/login"),
            None,
            Some(
                &json!({"username": username, "password": password, "device_name": "admin console"}),
            ),
        )?;
        let body = expect(resp, 200, "admin login")?;
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| anyhow!("login: no access_token"))?
            .to_owned();
        let user_id = body["user"]["id"]
            .as_str()
            .ok_or_else(|| anyhow!("login: no user id"))?
            .to_owned();
        Ok(Admin {
            agent,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token,
            user_id,
        })
    }

    /// Any call, with this user's token; the raw answer.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<ApiResponse> {
        send(
            &self.agent,
            method,
            &format!("{}{path}", self.base_url),
            Some(&self.token),
            body,
        )
    }

    /// `GET path`, expecting 200.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        expect(self.call("GET", path, None)?, 200, path)
    }

    /// `POST /api/v1/areas`; the new area's id.
    pub fn create_area(
        &self,
        name: &str,
        level: &str,
        parent: Option<&str>,
    ) -> anyhow::Result<String> {
        let mut body = json!({"name": name, "level": level});
        if let Some(p) = parent {
            body["parent_id"] = json!(p);
        }
        let v = expect(
            self.call("POST", "/api/v1/areas", Some(&body))?,
            201,
            "create area",
        )?;
        id_of(&v, "create area")
    }

    /// `POST /api/v1/users`; the new user's id.
    pub fn create_user(&self, user: &NewUserSpec<'_>) -> anyhow::Result<String> {
        let mut body = json!({
            "username": user.username,
            "password": user.password,
            "display_name": user.display_name,
            "role": user.role,
        });
        if !user.grid_ids.is_empty() {
            body["grid_ids"] = json!(user.grid_ids);
        }
        if let Some(a) = user.area_id {
            body["area_id"] = json!(a);
        }
        if let Some(d) = user.department {
            body["department"] = json!(d);
        }
        let resp = self.call("POST", "/api/v1/users", Some(&body))?;
        let v = expect(resp, 201, "create user")?;
        id_of(&v, "create user")
    }

    /// `PATCH /api/v1/users/{id}` with `{"grid_ids": grids}`.
    pub fn set_grids(&self, user_id: &str, grids: &[String]) -> anyhow::Result<Value> {
        let resp = self.call(
            "PATCH",
            &format!("/api/v1/users/{user_id}"),
            Some(&json!({"grid_ids": grids})),
        )?;
        expect(resp, 200, "patch user grids")
    }

    /// `GET /api/v1/export?grid_id=ID`: the grid's canonical export.
    pub fn export(&self, grid_id: &str) -> anyhow::Result<Value> {
        self.get(&format!("/api/v1/export?grid_id={grid_id}"))
    }
}

/// A user to create.
#[derive(Clone, Debug)]
pub struct NewUserSpec<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub display_name: &'a str,
    /// `worker`, `supervisor`, `department` or `admin`.
    pub role: &'a str,
    pub grid_ids: &'a [String],
    pub area_id: Option<&'a str>,
    pub department: Option<&'a str>,
}
