//! The bearer extractor on both backends, through the real app with a probe route: a
//! session opened directly in the database (`auth::session::start`), then every way a
//! request can be refused (missing/forged token, revoked device, ended session, disabled
//! user) and `require_role`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use actix_web::test::{call_service, init_service, read_body, TestRequest};
use actix_web::{web, HttpResponse};
use grid_server::auth::{require_role, session, AuthUser, JwtKeys};
use grid_server::config::Config;
use grid_server::db::users::{self, NewUser, Role};
use grid_server::db::{devices, now_ms, tokens, write_transaction};
use grid_server::testing::{available_backends, block_on, TestDb};
use grid_server::{build_app_with, AppResult, AppState};
use serde_json::{json, Value};
use sync_core::ids::DeviceId;

async fn whoami(user: AuthUser) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "user_id": user.user_id,
        "device_id": user.device_id,
        "role": user.role,
        "username": user.username,
        "department": user.department,
    }))
}

async fn admin_only(user: AuthUser) -> AppResult<HttpResponse> {
    require_role(&user, &[Role::Admin])?;
    Ok(HttpResponse::Ok().json(json!({})))
}

fn probe_api(cfg: &mut web::ServiceConfig) {
    grid_server::routes::api_v1(cfg);
    cfg.service(web::resource("/probe/whoami").route(web::get().to(whoami)))
        .service(web::resource("/probe/admin").route(web::get().to(admin_only)));
}

fn state(db: &TestDb) -> AppState {
    let config = Config::new(db.url.clone(), std::env::temp_dir());
    AppState::new(
        db.migrated_pool(),
        config,
        JwtKeys::from_secret(b"extractor-test-secret-extractor!"),
    )
    .unwrap()
}

/// A user of `role` with a device and an open session; returns (access token, device id).
fn login(state: &AppState, username: &str, role: Role) -> (String, DeviceId, String) {
    let mut conn = state.pool.get().unwrap();
    let keys = state.jwt.clone();
    write_transaction(&mut conn, |c| {
        let user = users::insert_user(
            c,
            &NewUser {
                username,
                password_hash: "$argon2id$unused",
                display_name: None,
                role,
                area_id: None,
                department: Some("消防"),
                grid_ids: &[],
            },
        )?;
        let device = DeviceId::new();
        devices::insert(c, &device.to_string(), &user.id, Some("phone"), now_ms())?;
        let tokens = session::start(c, &keys, user.id.parse().unwrap(), role, device, now_ms())?;
        Ok((tokens.access.token, device, tokens.refresh_token))
    })
    .unwrap()
}

async fn get(state: &AppState, path: &str, token: Option<&str>) -> (u16, Value, Option<String>) {
    let app = init_service(build_app_with(state.clone(), probe_api)).await;
    let mut req = TestRequest::get().uri(path);
    if let Some(t) = token {
        req = req.insert_header(("Authorization", format!("Bearer {t}")));
    }
    let resp = call_service(&app, req.to_request()).await;
    let status = resp.status().as_u16();
    let www = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = read_body(resp).await;
    (
        status,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        www,
    )
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[test]
fn extractor_accepts_a_live_session_and_refuses_everything_else() {
    for backend in available_backends() {
        let db = TestDb::create(backend).unwrap();
        let state = state(&db);
        block_on(async {
            let (token, device, _) = login(&state, "w1", Role::Worker);
            let (status, body, _) = get(&state, "/api/v1/probe/whoami", Some(&token)).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["username"], "w1");
            assert_eq!(body["role"], "worker");
            assert_eq!(body["device_id"], device.to_string());
            assert_eq!(body["department"], "消防");

            // No token, wrong scheme, garbage: 401 with WWW-Authenticate.
            let (status, body, www) = get(&state, "/api/v1/probe/whoami", None).await;
            assert_eq!((status, code(&body)), (401, "missing_token"));
            assert_eq!(www.as_deref(), Some("Bearer"));
            let (status, body, _) = get(&state, "/api/v1/probe/whoami", Some("garbage")).await;
            assert_eq!((status, code(&body)), (401, "invalid_token"));

            // require_role: 403 for a worker.
            let (status, body, _) = get(&state, "/api/v1/probe/admin", Some(&token)).await;
            assert_eq!((status, code(&body)), (403, "forbidden"));
            let (admin, _, _) = login(&state, "root", Role::Admin);
            let (status, _, _) = get(&state, "/api/v1/probe/admin", Some(&admin)).await;
            assert_eq!(status, 200);

            // A disabled user is refused at the next request.
            let (t2, _, _) = login(&state, "w2", Role::Worker);
            {
                use diesel::prelude::*;
                use grid_server::db::schema::users as u;
                let mut conn = state.pool.get().unwrap();
                diesel::update(u::table.filter(u::username.eq("w2")))
                    .set(u::active.eq(false))
                    .execute(&mut *conn)
                    .unwrap();
            }
            let (status, body, _) = get(&state, "/api/v1/probe/whoami", Some(&t2)).await;
            assert_eq!((status, code(&body)), (401, "account_disabled"));

            // Logout (session ended): the access token dies with it.
            let (t3, d3, _) = login(&state, "w3", Role::Worker);
            {
                let mut conn = state.pool.get().unwrap();
                session::end(&mut conn, d3, now_ms()).unwrap();
            }
            let (status, body, _) = get(&state, "/api/v1/probe/whoami", Some(&t3)).await;
            assert_eq!((status, code(&body)), (401, "session_ended"));

            // A revoked device: refused at the next request.
            {
                let mut conn = state.pool.get().unwrap();
                assert!(devices::mark_revoked(&mut conn, &device.to_string(), now_ms()).unwrap());
                tokens::revoke_device(&mut conn, &device.to_string(), now_ms()).unwrap();
            }
            let (status, body, www) = get(&state, "/api/v1/probe/whoami", Some(&token)).await;
            assert_eq!((status, code(&body)), (401, "device_revoked"));
            assert_eq!(www.as_deref(), Some("Bearer"));
        });
    }
}
