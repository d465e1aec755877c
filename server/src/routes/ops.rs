//! Operations endpoints: `GET /healthz` (200 `{"status":"ok"}` when the database answers
//! `SELECT 1`, else 503 in the envelope) and `GET /metrics` (Prometheus text format).
//! Both are unauthenticated: bind the server to a private address or filter these paths at
//! the reverse proxy if they must not be public.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use diesel::RunQueryDsl;
use serde_json::json;

use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// How long the health check waits for a pooled connection.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Register the operations routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(healthz)))
        .service(web::resource("/metrics").route(web::get().to(metrics)));
}

#[utoipa::path(
    get, path = "/healthz", tag = "ops",
    responses(
        (status = 200, description = "the database answers", body = crate::routes::openapi::schemas::Health),
        (status = 503, description = "the database does not answer", body = crate::routes::openapi::schemas::ErrorEnvelope)
    )
)]
async fn healthz(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let pool = state.pool.clone();
    let checked = web::block(move || -> AppResult<()> {
        let mut conn = pool.get_timeout(HEALTH_TIMEOUT)?;
        diesel::sql_query("SELECT 1").execute(&mut *conn)?;
        Ok(())
    })
    .await
    .map_err(AppError::from)
    .and_then(|r| r);
    match checked {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({"status": "ok"}))),
        Err(err) => {
            tracing::warn!(error = %err, "health check failed");
            Err(AppError::unavailable("database unavailable"))
        }
    }
}

#[utoipa::path(
    get, path = "/metrics", tag = "ops",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)
    )
)]
async fn metrics(state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let body = state.metrics.render()?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body))
}
