//! Every error leaves in the envelope `{"error": {"code", "message"}}` with the right status,
//! and bad input is never a 5xx: unknown routes, wrong methods, malformed or deeply nested
//! JSON, wrong shapes and values, wrong content types, oversized bodies, unparsable path
//! parameters and query strings. Probe routes with real extractors are mounted next to the
//! real ones through `build_app_with`, so the real configuration is what is tested.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use actix_web::http::header;
use actix_web::test::{call_service, init_service, read_body, TestRequest};
use actix_web::{web, HttpResponse};
use grid_server::auth::JwtKeys;
use grid_server::config::Config;
use grid_server::db::Backend;
use grid_server::testing::TestDb;
use grid_server::{build_app_with, AppError, AppState};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ProbeRole {
    Worker,
    Supervisor,
}

#[derive(Deserialize)]
struct Probe {
    name: String,
    role: ProbeRole,
}

#[derive(Deserialize)]
struct ListQuery {
    limit: u32,
}

async fn probe_json(body: web::Json<Probe>) -> HttpResponse {
    let role = match body.role {
        ProbeRole::Worker => "worker",
        ProbeRole::Supervisor => "supervisor",
    };
    HttpResponse::Ok().json(json!({"name": body.name, "role": role}))
}

async fn probe_value(body: web::Json<Value>) -> HttpResponse {
    HttpResponse::Ok().json(body.into_inner())
}

async fn probe_item(id: web::Path<uuid::Uuid>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"id": id.into_inner()}))
}

async fn probe_list(q: web::Query<ListQuery>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"limit": q.limit}))
}

async fn probe_raw(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().json(json!({"len": body.len()}))
}

async fn probe_fail() -> Result<HttpResponse, AppError> {
    Err(AppError::internal(anyhow::anyhow!(
        "SELECT secret_column FROM users: connection to 10.0.0.7 failed"
    )))
}

fn probe_api(cfg: &mut web::ServiceConfig) {
    grid_server::routes::api_v1(cfg);
    cfg.service(web::resource("/probe/json").route(web::post().to(probe_json)))
        .service(web::resource("/probe/value").route(web::post().to(probe_value)))
        .service(web::resource("/probe/item/{id}").route(web::get().to(probe_item)))
        .service(web::resource("/probe/list").route(web::get().to(probe_list)))
        .service(web::resource("/probe/raw").route(web::post().to(probe_raw)))
        .service(web::resource("/probe/fail").route(web::get().to(probe_fail)));
}

const JSON_LIMIT: usize = 64 * 1024;

fn state(db: &TestDb) -> AppState {
    let mut config = Config::new(db.url.clone(), std::env::temp_dir());
    config.json_limit = JSON_LIMIT;
    AppState::new(db.migrated_pool(), config, JwtKeys::from_secret(b"k")).unwrap()
}

/// Send `req` through the real app; return (status, JSON body), asserting that any error
/// is in the envelope.
async fn call(db: &TestDb, req: TestRequest) -> (u16, Value, header::HeaderMap) {
    let app = init_service(build_app_with(state(db), probe_api)).await;
    let resp = call_service(&app, req.to_request()).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = read_body(resp).await;
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status >= 400 {
        assert!(
            headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("application/json")),
            "{status}: not JSON: {:?}",
            String::from_utf8_lossy(&body)
        );
        let obj = value["error"].as_object().expect("error envelope");
        assert!(obj["code"].is_string(), "{value}");
        assert!(obj["message"].is_string(), "{value}");
        assert!(
            obj.keys()
                .all(|k| ["code", "message", "details"].contains(&k.as_str())),
            "{value}"
        );
    }
    (status, value, headers)
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn db() -> TestDb {
    TestDb::create(Backend::Sqlite).unwrap()
}

#[actix_web::test]
async fn unknown_routes_are_404_not_found() {
    let db = db();
    for path in ["/nope", "/api/v1/nope", "/api/v2/probe/json", "/"] {
        let (status, body, _) = call(&db, TestRequest::get().uri(path)).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(code(&body), "not_found");
    }
}

#[actix_web::test]
async fn wrong_method_is_405_with_allow() {
    let db = db();
    let (status, body, headers) = call(&db, TestRequest::post().uri("/healthz")).await;
    assert_eq!(status, 405);
    assert_eq!(code(&body), "method_not_allowed");
    let allow = headers.get(header::ALLOW).unwrap().to_str().unwrap();
    assert!(allow.contains("GET"), "{allow}");

    let (status, body, _) = call(&db, TestRequest::delete().uri("/api/v1/probe/json")).await;
    assert_eq!(status, 405);
    assert_eq!(code(&body), "method_not_allowed");
}

#[actix_web::test]
async fn malformed_json_is_400() {
    let db = db();
    for bad in ["{\"name\":", "not json", "{\"name\": \"a\",}", ""] {
        let req = TestRequest::post()
            .uri("/api/v1/probe/json")
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(bad);
        let (status, body, _) = call(&db, req).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert_eq!(code(&body), "malformed_json", "{bad:?}");
    }
}

#[actix_web::test]
async fn deeply_nested_json_is_400_not_5xx() {
    let db = db();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for uri in ["/api/v1/probe/value", "/api/v1/probe/json"] {
        let req = TestRequest::post()
            .uri(uri)
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .set_payload(deep.clone());
        let (status, body, _) = call(&db, req).await;
        assert!((400..500).contains(&status), "{uri}: {status} {body}");
    }
    let deep_object = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    let req = TestRequest::post()
        .uri("/api/v1/probe/value")
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(deep_object);
    let (status, body, _) = call(&db, req).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(code(&body), "malformed_json");
}

#[actix_web::test]
async fn wrong_shape_or_value_is_422() {
    let db = db();
    for bad in [
        json!({"name": 5, "role": "worker"}),
        json!({"name": "a", "role": "king"}),
        json!({"name": "a"}),
        json!(["a"]),
        json!("just a string"),
    ] {
        let req = TestRequest::post().uri("/api/v1/probe/json").set_json(&bad);
        let (status, body, _) = call(&db, req).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(code(&body), "invalid_value");
    }
    let ok = TestRequest::post()
        .uri("/api/v1/probe/json")
        .set_json(json!({"name": "网格员", "role": "worker"}));
    let (status, body, _) = call(&db, ok).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"name": "网格员", "role": "worker"}));
}

#[actix_web::test]
async fn content_type_must_be_json() {
    let db = db();
    let req = TestRequest::post()
        .uri("/api/v1/probe/json")
        .insert_header((header::CONTENT_TYPE, "text/plain"))
        .set_payload(r#"{"name":"a","role":"worker"}"#);
    let (status, body, _) = call(&db, req).await;
    assert_eq!(status, 415);
    assert_eq!(code(&body), "unsupported_media_type");

    // So is a missing one (what `curl -d` without -H would send is form data anyway).
    let req = TestRequest::post()
        .uri("/api/v1/probe/json")
        .set_payload(r#"{"name":"a","role":"worker"}"#);
    let (status, body, _) = call(&db, req).await;
    assert_eq!(status, 415);
    assert_eq!(code(&body), "unsupported_media_type");

    // `+json` media types and parameters are fine.
    for ct in [
        "application/json; charset=utf-8",
        "application/merge-patch+json",
    ] {
        let req = TestRequest::post()
            .uri("/api/v1/probe/json")
            .insert_header((header::CONTENT_TYPE, ct))
            .set_payload(r#"{"name":"a","role":"worker"}"#);
        let (status, _, _) = call(&db, req).await;
        assert_eq!(status, 200, "{ct}");
    }
}

#[actix_web::test]
async fn oversized_bodies_are_413() {
    let db = db();
    let big = format!("[\"{}\"]", "x".repeat(JSON_LIMIT + 10));
    let req = TestRequest::post()
        .uri("/api/v1/probe/value")
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(big.clone());
    let (status, body, _) = call(&db, req).await;
    assert_eq!(status, 413);
    assert_eq!(code(&body), "payload_too_large");

    let req = TestRequest::post()
        .uri("/api/v1/probe/raw")
        .set_payload(big);
    let (status, body, _) = call(&db, req).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(code(&body), "payload_too_large");
}

#[actix_web::test]
async fn unparsable_path_is_404_and_query_is_400() {
    let db = db();
    let (status, body, _) =
        call(&db, TestRequest::get().uri("/api/v1/probe/item/not-a-uuid")).await;
    assert_eq!(status, 404);
    assert_eq!(code(&body), "not_found");
    let id = uuid::Uuid::now_v7();
    let (status, body, _) = call(
        &db,
        TestRequest::get().uri(&format!("/api/v1/probe/item/{id}")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], id.to_string());

    for q in ["?limit=abc", "?limit=-1", ""] {
        let (status, body, _) = call(
            &db,
            TestRequest::get().uri(&format!("/api/v1/probe/list{q}")),
        )
        .await;
        assert_eq!(status, 400, "{q}");
        assert_eq!(code(&body), "bad_request");
    }
}

#[actix_web::test]
async fn internal_errors_do_not_leak_their_cause() {
    let db = db();
    let (status, body, _) = call(&db, TestRequest::get().uri("/api/v1/probe/fail")).await;
    assert_eq!(status, 500);
    assert_eq!(code(&body), "internal");
    let text = body.to_string();
    assert!(
        !text.contains("secret_column") && !text.contains("10.0.0.7"),
        "{text}"
    );
}

#[actix_web::test]
async fn healthz_and_metrics() {
    let db = db();
    let app = init_service(build_app_with(state(&db), probe_api)).await;
    let resp = call_service(&app, TestRequest::get().uri("/healthz").to_request()).await;
    assert_eq!(resp.status(), 200);
    let body: Value = serde_json::from_slice(&read_body(resp).await).unwrap();
    assert_eq!(body, json!({"status": "ok"}));

    let id = uuid::Uuid::now_v7();
    let req = TestRequest::get()
        .uri(&format!("/api/v1/probe/item/{id}"))
        .to_request();
    assert_eq!(call_service(&app, req).await.status(), 200);
    let req = TestRequest::get().uri("/no/such/thing").to_request();
    assert_eq!(call_service(&app, req).await.status(), 404);

    let resp = call_service(&app, TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(resp.status(), 200);
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(ct.starts_with("text/plain"), "{ct}");
    let text = String::from_utf8(read_body(resp).await.to_vec()).unwrap();
    assert!(
        text.contains(r#"grid_http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "{text}"
    );
    // Route patterns, not raw paths: ids never become label values.
    assert!(
        text.contains(r#"route="/api/v1/probe/item/{id}""#),
        "{text}"
    );
    assert!(!text.contains(&id.to_string()));
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
    assert!(text.contains("grid_http_request_duration_seconds_bucket"));
    assert!(text.contains("grid_sync_push_duration_seconds"));
}
