//! `GET /api/v1/openapi.json` describes every route the server registers, with exactly the
//! methods it answers: paths are read from the `web::resource("…")` registrations in
//! `server/src/routes/`, methods are probed on the running server (a method the document
//! does not list must be 405; one it lists must reach a handler).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth_support;

use std::collections::BTreeSet;

use auth_support::*;
use serde_json::{json, Value};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every resource path registered in `server/src/routes/*.rs`, as served (ops routes at the
/// root, the others under `/api/v1`).
fn registered_paths() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let root = path.file_name().unwrap() == "ops.rs";
        // Code only: doc comments may show example registrations.
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for piece in code.split("web::resource(\"").skip(1) {
            let route = &piece[..piece.find('"').unwrap()];
            out.insert(if root {
                route.to_owned()
            } else {
                format!("/api/v1{route}")
            });
        }
    }
    out
}

grid_server::backend_tests! {
    async fn openapi_document_describes_every_route(server) {
        let resp = server.get("/api/v1/openapi.json").await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let doc = &resp.json;
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "OpenAPI 3");
        assert!(doc["info"]["title"].is_string());
        let paths = doc["paths"].as_object().unwrap();

        let registered = registered_paths();
        assert!(registered.len() >= 25, "{registered:?}");
        let documented: BTreeSet<String> = paths.keys().cloned().collect();
        assert_eq!(documented, registered, "documented paths = registered paths");

        // Methods: probe each path with each method; fill path parameters with a fresh UUID.
        let (_, token) = admin(&server).await;
        for (path, ops) in paths {
            let url = path.replace("{id}", "0193a2c4-0000-7000-8000-0000000000ff");
            for method in METHODS {
                let resp = call(&server, &method.to_uppercase(), &url, Some(&token), Some(&json!({}))).await;
                let route_missing = resp.status == 404 && resp.json["error"]["message"] == "no such route";
                if ops.get(method).is_some() {
                    assert!(resp.status != 405 && !route_missing, "{method} {path} is documented but not served: {}", resp.text);
                    let op = &ops[method];
                    assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has responses");
                    assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{method} {path} has a tag");
                } else {
                    assert_eq!(resp.status, 405, "{method} {path} is served but not documented: {}", resp.text);
                }
            }
        }

        // Authenticated operations name the bearer scheme; login does not need it.
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert_eq!(paths["/api/v1/hazards"]["get"]["security"], json!([{"bearer": []}]));
        assert!(paths["/api/v1/auth/login"]["post"].get("security").is_none());
        // Bodies and parameters are described.
        let action = &paths["/api/v1/hazards/{id}/actions"]["post"];
        assert!(action["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str().unwrap().ends_with("/ActionBody"));
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in ["ActionBody", "ResolveBody", "Hazard", "HazardDetail", "TimelineAction", "Conflict", "ErrorEnvelope",
                     "Page", "PushRequest", "Mutation", "PushResponse", "PullResponse", "LoginRequest", "LoginResponse", "Feature"] {
            assert!(schemas.contains_key(name), "schema {name}");
        }
        let params: Vec<&str> = paths["/api/v1/hazards"]["get"]["parameters"].as_array().unwrap()
            .iter().map(|p| p["name"].as_str().unwrap()).collect();
        for p in ["grid_id", "status", "category", "severity", "overdue", "from", "to", "limit", "cursor"] {
            assert!(params.contains(&p), "hazard list parameter {p}");
        }
        let list_200 = &paths["/api/v1/households"]["get"]["responses"]["200"]["content"];
        assert!(list_200.get("text/csv").is_some(), "lists document their CSV form");
        let geo: &Value = &paths["/api/v1/patrols/{id}/track.geojson"]["get"]["responses"]["200"]["content"];
        assert!(geo.get("application/geo+json").is_some());
    }
}
