//! The real server over HTTP, on both backends, through the test harness.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use grid_server::testing::{for_each_backend, TestDb, TestServer};

grid_server::backend_tests! {
    async fn healthz_is_ok_and_metrics_count_it(server) {
        let resp = server.get("/healthz").await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert_eq!(resp.json, serde_json::json!({"status": "ok"}));

        let resp = server.get("/api/v1/does-not-exist").await;
        assert_eq!(resp.status, 404);
        assert_eq!(resp.error_code(), Some("not_found"));

        let resp = server.get("/metrics").await;
        assert_eq!(resp.status, 200);
        assert!(
            resp.text.contains(r#"grid_http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
            "{}",
            resp.text
        );
    }

    async fn demo_seed_through_the_harness(server) {
        let seed = server.seed_demo().await;
        assert_eq!(seed.grids.len(), 4);
        let resp = server.get("/healthz").await;
        assert_eq!(resp.status, 200);
    }
}

#[test]
fn harness_runs_each_backend_on_its_own_database() {
    grid_server::testing::block_on(async {
        let mut seen = Vec::new();
        for_each_backend(|server| {
            seen.push((server.backend(), server.base_url.clone()));
            async move {
                assert_eq!(server.get("/healthz").await.status, 200);
            }
        })
        .await;
        assert!(!seen.is_empty());
        let urls: std::collections::BTreeSet<_> = seen.iter().map(|(_, u)| u.clone()).collect();
        assert_eq!(urls.len(), seen.len());
    });
}

/// With the server's only connection held, the health check cannot reach the database:
/// 503 in the envelope, then 200 once the connection is back.
#[test]
fn healthz_is_503_when_the_database_does_not_answer() {
    for backend in grid_server::testing::BACKENDS {
        let Some(db) = TestDb::create(backend) else {
            continue;
        };
        let server = TestServer::start_on(db, |config| {
            config.pool.max_size = 1;
            config.pool.connection_timeout = Duration::from_secs(1);
        });
        grid_server::testing::block_on(async {
            let held = server.pool().get().unwrap();
            let resp = server.get("/healthz").await;
            assert_eq!(resp.status, 503, "{backend:?}: {}", resp.text);
            assert_eq!(resp.error_code(), Some("unavailable"));
            drop(held);
            assert_eq!(server.get("/healthz").await.status, 200);
        });
    }
}
