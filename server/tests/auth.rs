//! Login, refresh-token rotation, logout, rate limiting, device revocation and forged
//! access tokens, over HTTP on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth_support;

use std::collections::BTreeSet;

use auth_support::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use grid_server::auth::jwt::{access_claims, sign_claims};
use grid_server::auth::JwtKeys;
use grid_server::db::users::Role;
use grid_server::testing::TestServer;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sync_core::ids::{DeviceId, UserId};

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Whether `token` is accepted: GET /areas answers 403 to an authenticated worker and 401
/// to anything else.
async fn status_with(server: &TestServer, token: &str) -> (u16, String) {
    let resp = get(server, "/api/v1/areas", token).await;
    (resp.status, resp.error_code().unwrap_or("").to_owned())
}

grid_server::backend_tests! {
    async fn login_answers_the_contract_shape(server) {
        let tree = make_tree(&server).await;
        let uid = make_user(&server, "worker1", Role::Worker, std::slice::from_ref(&tree.grid), None, None).await;
        let resp = login_raw(&server, json!({
            "username": "worker1", "password": PASSWORD, "device_name": "Redmi Note 12"
        })).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let body = &resp.json;
        assert_eq!(keys(body), set(&["access_token", "token_type", "expires_in", "refresh_token", "device_id", "user"]));
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert_eq!(keys(&body["user"]), set(&["id", "username", "display_name", "role", "grid_ids", "area_id", "department"]));
        assert_eq!(body["user"], json!({
            "id": uid, "username": "worker1", "display_name": "测试用户", "role": "worker",
            "grid_ids": [tree.grid], "area_id": null, "department": null,
        }));
        let device: DeviceId = body["device_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(device.to_string(), body["device_id"].as_str().unwrap(), "lowercase hyphenated");
        assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3, "a JWT");
        assert!(!body["refresh_token"].as_str().unwrap().contains('.'), "opaque");
        // The access token works (403: authenticated, but a worker may not list areas).
        assert_eq!(status_with(&server, body["access_token"].as_str().unwrap()).await.0, 403);

        // The same device logs in again with its id: same device, new session.
        let again = login_raw(&server, json!({
            "username": "worker1", "password": PASSWORD, "device_id": device.to_string()
        })).await;
        assert_eq!(again.status, 200, "{}", again.text);
        assert_eq!(again.json["device_id"], device.to_string());
        // The previous session of that device ended with the new login.
        let old_refresh = server.post_json("/api/v1/auth/refresh",
            &json!({"refresh_token": body["refresh_token"]})).await;
        assert_eq!(old_refresh.status, 401);

        // A phone-made device id is registered as is (uppercase input is normalised).
        let own = DeviceId::new();
        let resp = login_raw(&server, json!({
            "username": "worker1", "password": PASSWORD,
            "device_id": own.to_string().to_uppercase()
        })).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(resp.json["device_id"], own.to_string());

        // Another user may not take over a device id.
        make_user(&server, "worker2", Role::Worker, &[], None, None).await;
        let resp = login_raw(&server, json!({
            "username": "worker2", "password": PASSWORD, "device_id": own.to_string()
        })).await;
        assert_eq!((resp.status, resp.error_code()), (409, Some("device_in_use")));

        // Malformed input.
        let resp = login_raw(&server, json!({"username": "worker1", "password": PASSWORD, "device_id": "nope"})).await;
        assert_eq!(resp.status, 422, "{}", resp.text);
        let resp = login_raw(&server, json!({"username": "worker1", "password": PASSWORD, "extra": 1})).await;
        assert_eq!(resp.status, 422, "{}", resp.text);
        let resp = login_raw(&server, json!({"username": "worker1"})).await;
        assert_eq!(resp.status, 422, "{}", resp.text);
        let resp = server.send(server.client().post(server.url("/api/v1/auth/login"))
            .header("content-type", "application/json").body("{\"username\":")).await;
        assert_eq!(resp.status, 400, "{}", resp.text);
        let resp = login_raw(&server, json!({"username": "worker1", "password": PASSWORD,
            "device_name": "x".repeat(129)})).await;
        assert_eq!(resp.status, 422, "{}", resp.text);
    }

    async fn wrong_password_unknown_user_and_inactive_are_401(server) {
        make_user(&server, "w", Role::Worker, &[], None, None).await;
        let wrong = login_raw(&server, json!({"username": "w", "password": "nope"})).await;
        let unknown = login_raw(&server, json!({"username": "nobody", "password": "nope"})).await;
        assert_eq!((wrong.status, wrong.error_code()), (401, Some("invalid_credentials")));
        assert_eq!(wrong.json, unknown.json, "indistinguishable");
        assert_eq!(unknown.status, 401);
        assert_eq!(wrong.headers.get("www-authenticate").unwrap(), "Bearer");
        let huge = login_raw(&server, json!({"username": "u".repeat(5000), "password": "p"})).await;
        assert_eq!((huge.status, huge.error_code()), (401, Some("invalid_credentials")));
        // Passwords never echo back.
        assert!(!wrong.text.contains("nope"));
        // Same work for both: an unknown username also pays for an argon2 verification
        // (coarse bound, robust to a loaded machine: without the dummy verification an
        // unknown username answers in about a millisecond).
        let mut unknown_ms = u128::MAX;
        let mut wrong_ms = u128::MAX;
        for i in 0..3 {
            let t = std::time::Instant::now();
            login_raw(&server, json!({"username": format!("nobody{i}"), "password": "nope"})).await;
            unknown_ms = unknown_ms.min(t.elapsed().as_millis());
            let t = std::time::Instant::now();
            login_raw(&server, json!({"username": "w", "password": "nope"})).await;
            wrong_ms = wrong_ms.min(t.elapsed().as_millis());
        }
        assert!(unknown_ms * 3 >= wrong_ms, "unknown {unknown_ms} ms vs wrong password {wrong_ms} ms");

        let id = make_user(&server, "gone", Role::Worker, &[], None, None).await;
        server.pool().write(move |c| {
            use diesel::prelude::*;
            use grid_server::db::schema::users;
            diesel::update(users::table.find(id)).set(users::active.eq(false)).execute(c)?;
            Ok(())
        }).await.unwrap();
        let resp = login_raw(&server, json!({"username": "gone", "password": PASSWORD})).await;
        assert_eq!((resp.status, resp.error_code()), (401, Some("account_disabled")));
        let resp = login_raw(&server, json!({"username": "gone", "password": "wrong"})).await;
        assert_eq!((resp.status, resp.error_code()), (401, Some("invalid_credentials")));
    }

    async fn repeated_failures_are_rate_limited(server) {
        make_user(&server, "target", Role::Worker, &[], None, None).await;
        make_user(&server, "bystander", Role::Worker, &[], None, None).await;
        // A success clears the username's counter.
        for _ in 0..4 {
            let r = login_raw(&server, json!({"username": "target", "password": "guess"})).await;
            assert_eq!(r.status, 401);
        }
        login(&server, "target").await;
        for _ in 0..5 {
            let r = login_raw(&server, json!({"username": "target", "password": "guess"})).await;
            assert_eq!(r.status, 401, "{}", r.text);
        }
        // The 6th attempt is refused before the password is looked at, even a right one.
        let r = login_raw(&server, json!({"username": "target", "password": PASSWORD})).await;
        assert_eq!((r.status, r.error_code()), (429, Some("rate_limited")));
        let retry: u64 = r.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
        assert!((1..=900).contains(&retry), "{retry}");
        // Another username from the same address is still fine (9 failures < 20).
        login(&server, "bystander").await;

        // Per address: 20 failures across usernames lock out everyone from it.
        for i in 0..11 {
            let r = login_raw(&server, json!({"username": format!("ghost{}", i % 3), "password": "x"})).await;
            assert_eq!(r.status, 401, "attempt {i}: {}", r.text);
        }
        let r = login_raw(&server, json!({"username": "bystander", "password": PASSWORD})).await;
        assert_eq!((r.status, r.error_code()), (429, Some("rate_limited")));
        assert!(r.headers.get("retry-after").is_some());
    }

    async fn refresh_rotates_and_reuse_ends_the_session(server) {
        make_user(&server, "w", Role::Worker, &[], None, None).await;
        let first = login(&server, "w").await;
        let r1 = first["refresh_token"].as_str().unwrap().to_owned();
        let resp = server.post_json("/api/v1/auth/refresh", &json!({"refresh_token": r1})).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(keys(&resp.json), set(&["access_token", "token_type", "expires_in", "refresh_token", "device_id"]));
        assert_eq!(resp.json["device_id"], first["device_id"]);
        let r2 = resp.json["refresh_token"].as_str().unwrap().to_owned();
        let a2 = resp.json["access_token"].as_str().unwrap().to_owned();
        assert_ne!(r1, r2);
        assert_eq!(status_with(&server, &a2).await.0, 403, "new access token works");

        // Rotation again works.
        let resp = server.post_json("/api/v1/auth/refresh", &json!({"refresh_token": r2})).await;
        assert_eq!(resp.status, 200);
        let r3 = resp.json["refresh_token"].as_str().unwrap().to_owned();
        let a3 = resp.json["access_token"].as_str().unwrap().to_owned();

        // Presenting a rotated token: 401 and the device's whole session is revoked.
        let resp = server.post_json("/api/v1/auth/refresh", &json!({"refresh_token": r1})).await;
        assert_eq!((resp.status, resp.error_code()), (401, Some("refresh_token_reused")));
        let resp = server.post_json("/api/v1/auth/refresh", &json!({"refresh_token": r3})).await;
        assert_eq!(resp.status, 401, "the newest refresh token died too: {}", resp.text);
        assert_eq!(status_with(&server, &a3).await, (401, "session_ended".to_owned()));

        // Logging in again starts a new session.
        let again = login(&server, "w").await;
        assert_eq!(status_with(&server, again["access_token"].as_str().unwrap()).await.0, 403);

        // Bad refresh requests.
        let resp = server.post_json("/api/v1/auth/refresh", &json!({"refresh_token": "made-up"})).await;
        assert_eq!((resp.status, resp.error_code()), (401, Some("invalid_refresh_token")));
        let resp = server.post_json("/api/v1/auth/refresh", &json!({"refresh_token": "x".repeat(10_000)})).await;
        assert_eq!(resp.status, 401);
        let resp = server.post_json("/api/v1/auth/refresh", &json!({"refresh_token": again["access_token"]})).await;
        assert_eq!(resp.status, 401, "an access token is no refresh token");
        let resp = server.post_json("/api/v1/auth/refresh", &json!({})).await;
        assert_eq!(resp.status, 422);
        let resp = server.post_json("/api/v1/auth/refresh", &json!({"refresh_token": r2, "x": 1})).await;
        assert_eq!(resp.status, 422);
    }

    async fn concurrent_refreshes_with_one_token_have_one_winner(server) {
        make_user(&server, "w", Role::Worker, &[], None, None).await;
        let body = login(&server, "w").await;
        let token = body["refresh_token"].as_str().unwrap().to_owned();
        let mut handles = Vec::new();
        for _ in 0..4 {
            let client = server.client().clone();
            let url = server.url("/api/v1/auth/refresh");
            let token = token.clone();
            handles.push(actix_web::rt::spawn(async move {
                let resp = client.post(url).json(&json!({"refresh_token": token})).send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<Value>().await.unwrap())
            }));
        }
        let mut results = Vec::new();
        for h in handles {
            results.push(h.await.unwrap());
        }
        let winners: Vec<&Value> = results.iter().filter(|(s, _)| *s == 200).map(|(_, v)| v).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        for (status, v) in results.iter().filter(|(s, _)| *s != 200) {
            assert_eq!((*status, v["error"]["code"].as_str()), (401, Some("refresh_token_reused")));
        }
        // The reuse ended the session: the winner's new tokens are dead too.
        let resp = server.post_json("/api/v1/auth/refresh", &json!({"refresh_token": winners[0]["refresh_token"]})).await;
        assert_eq!(resp.status, 401);
        assert_eq!(status_with(&server, winners[0]["access_token"].as_str().unwrap()).await.0, 401);
    }

    async fn expired_refresh_token_means_log_in_again(server) {
        make_user(&server, "w", Role::Worker, &[], None, None).await;
        let body = login(&server, "w").await;
        server.pool().write(|c| {
            use diesel::prelude::*;
            use grid_server::db::schema::refresh_tokens as t;
            diesel::update(t::table).set(t::expires_at.eq(1_i64)).execute(c)?;
            Ok(())
        }).await.unwrap();
        let resp = server.post_json("/api/v1/auth/refresh", &json!({"refresh_token": body["refresh_token"]})).await;
        assert_eq!((resp.status, resp.error_code()), (401, Some("refresh_token_expired")));
        login(&server, "w").await;
    }

    async fn logout_ends_the_session(server) {
        make_user(&server, "w", Role::Worker, &[], None, None).await;
        let body = login(&server, "w").await;
        let access = body["access_token"].as_str().unwrap();
        let resp = call(&server, "POST", "/api/v1/auth/logout", None, None).await;
        assert_eq!((resp.status, resp.error_code()), (401, Some("missing_token")));
        let resp = call(&server, "POST", "/api/v1/auth/logout", Some(access), None).await;
        assert_eq!(resp.status, 204, "{}", resp.text);
        let resp = server.post_json("/api/v1/auth/refresh", &json!({"refresh_token": body["refresh_token"]})).await;
        assert_eq!((resp.status, resp.error_code()), (401, Some("session_ended")));
        assert_eq!(status_with(&server, access).await, (401, "session_ended".to_owned()));
        // The device may log in again.
        let again = login_raw(&server, json!({"username": "w", "password": PASSWORD, "device_id": body["device_id"]})).await;
        assert_eq!(again.status, 200);
    }

    async fn revoked_device_is_refused_at_its_next_request(server) {
        let (_, admin_token) = admin(&server).await;
        make_user(&server, "w", Role::Worker, &[], None, None).await;
        let body = login(&server, "w").await;
        let access = body["access_token"].as_str().unwrap();
        let device = body["device_id"].as_str().unwrap();
        assert_eq!(status_with(&server, access).await.0, 403);

        let resp = post(&server, &format!("/api/v1/devices/{device}/revoke"), &admin_token, &json!({})).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(resp.json["revoked"], true);

        assert_eq!(status_with(&server, access).await, (401, "device_revoked".to_owned()));
        let resp = server.post_json("/api/v1/auth/refresh", &json!({"refresh_token": body["refresh_token"]})).await;
        assert_eq!((resp.status, resp.error_code()), (401, Some("device_revoked")));
        let resp = login_raw(&server, json!({"username": "w", "password": PASSWORD, "device_id": device})).await;
        assert_eq!((resp.status, resp.error_code()), (401, Some("device_revoked")));
        // The person is not locked out: a new install gets a new device.
        let fresh = login(&server, "w").await;
        assert_ne!(fresh["device_id"], body["device_id"]);
    }

    async fn forged_access_tokens_are_401(server) {
        let (admin_id, admin_token) = admin(&server).await;
        let resp = get(&server, "/api/v1/users", &admin_token).await;
        assert_eq!(resp.status, 200, "the genuine token works");
        let keys: &JwtKeys = &server.state.jwt;
        let login_body = login(&server, "admin").await;
        let device: DeviceId = login_body["device_id"].as_str().unwrap().parse().unwrap();
        let user: UserId = admin_id.parse().unwrap();
        let now = chrono::Utc::now().timestamp();
        let good = serde_json::to_value(access_claims(user, device, Role::Admin, now)).unwrap();
        let genuine = sign_claims(keys, &good).unwrap();
        assert_eq!(get(&server, "/api/v1/users", &genuine).await.status, 200);

        let with = |k: &str, v: Value| {
            let mut c = good.clone();
            if v.is_null() { c.as_object_mut().unwrap().remove(k); } else { c[k] = v; }
            sign_claims(keys, &c).unwrap()
        };
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        let alg_none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&good));
        let alg_none_sig = format!("{}.{}.{}", b64(&json!({"alg": "none"})), b64(&good),
            genuine.rsplit('.').next().unwrap());
        let wrong_key = encode(&Header::new(Algorithm::HS256), &good,
            &EncodingKey::from_secret(b"not-the-server-secret-at-all!!!")).unwrap();
        // The right key with another HMAC algorithm: refused, the algorithm is pinned.
        let hs512 = encode(&Header::new(Algorithm::HS512), &good,
            &EncodingKey::from_secret(b"test-secret-test-secret-test-secret!")).unwrap();
        assert!(get(&server, "/api/v1/users", &sign_claims(
            &JwtKeys::from_secret(b"test-secret-test-secret-test-secret!"), &good).unwrap()).await.status == 200,
            "the harness secret is what this test assumes");
        let refresh_token = login_body["refresh_token"].as_str().unwrap().to_owned();
        let cases: Vec<(&str, String)> = vec![
            ("alg none", alg_none),
            ("alg none with a signature", alg_none_sig),
            ("wrong key", wrong_key),
            ("HS512", hs512),
            ("expired", with("exp", json!(now - 3600))),
            ("missing exp", with("exp", Value::Null)),
            ("exp as a string", with("exp", json!((now + 600).to_string()))),
            ("future nbf", with("nbf", json!(now + 3600))),
            ("missing nbf", with("nbf", Value::Null)),
            ("wrong aud", with("aud", json!("someone-else"))),
            ("wrong iss", with("iss", json!("evil"))),
            ("missing sub", with("sub", Value::Null)),
            ("typ refresh", with("typ", json!("refresh"))),
            ("missing typ", with("typ", Value::Null)),
            ("another user's device", with("sub", json!(UserId::new()))),
            ("unknown device", with("dev", json!(DeviceId::new()))),
            ("refresh token as access token", refresh_token),
            ("tampered payload", {
                let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
                let mut claims = good.clone();
                claims["role"] = json!("admin");
                claims["sub"] = json!(UserId::new());
                parts[1] = b64(&claims);
                parts.join(".")
            }),
            ("garbage", "a.b.c".to_owned()),
        ];
        for (name, token) in cases {
            let resp = get(&server, "/api/v1/users", &token).await;
            assert_eq!(resp.status, 401, "{name}: {}", resp.text);
            assert!(matches!(resp.error_code(), Some("invalid_token" | "token_expired")), "{name}: {}", resp.text);
            assert_eq!(resp.headers.get("www-authenticate").unwrap(), "Bearer", "{name}");
        }
        // Other schemes and malformed headers.
        for header in ["Basic YWRtaW46eA==", "Bearer", "Bearer ", genuine.as_str(), "Token x"] {
            let resp = server.send(server.client().get(server.url("/api/v1/users"))
                .header("authorization", header)).await;
            assert_eq!(resp.status, 401, "{header}");
        }
        let resp = server.send(server.client().get(server.url("/api/v1/users"))
            .header("authorization", format!("bearer {genuine}"))).await;
        assert_eq!(resp.status, 200, "the scheme is case-insensitive");
    }
}
