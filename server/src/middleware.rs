//! App-wide middleware.
//!
//! - [`error_envelope`]: any 4xx/5xx response not produced by an `AppError` (actix's 405 for
//!   a wrong method, a raw-body overflow, an error from a foreign extractor) is rewritten
//!   into the envelope `{"error": {"code", "message"}}` with the same status.
//! - [`observe`]: records every request in the metrics (by route pattern) and logs one line
//!   per request: method, path without query string, status, latency. Never bodies or
//!   headers (they hold passwords and tokens).

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{ALLOW, CONTENT_TYPE};
use actix_web::middleware::Next;
use actix_web::{web, Error, ResponseError};

use crate::error::{AppError, ErrorKind};
use crate::state::AppState;

/// Rewrite non-envelope error responses into the envelope.
pub async fn error_envelope(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    // Note: do not clone `req.request()` before the call: routing needs the request's
    // `Rc` to be unique (it writes the match info in place) and panics otherwise.
    let res = match next.call(req).await {
        Ok(res) => res,
        // Rendered by the dispatcher via `AppError::error_response`.
        Err(err) => {
            return Err(foreign_error(err.as_response_error().status_code(), &err).into());
        }
    };
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(res.map_into_boxed_body());
    }
    let is_envelope = match res.response().error() {
        Some(err) => err.as_error::<AppError>().is_some(),
        // A handler that built its own JSON error response is trusted to use the envelope.
        None => res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json")),
    };
    if is_envelope {
        return Ok(res.map_into_boxed_body());
    }
    let app_err = match res.response().error() {
        Some(err) => foreign_error(status, err),
        None => AppError::from_kind(ErrorKind::from_status(status)),
    };
    let (http_req, old) = res.into_parts();
    let mut new = app_err.error_response();
    // A 405 names the allowed methods.
    if let Some(allow) = old.headers().get(ALLOW) {
        new.headers_mut().insert(ALLOW, allow.clone());
    }
    Ok(ServiceResponse::new(http_req, new))
}

/// An `AppError` for an actix error that did not come from our code.
fn foreign_error(status: actix_web::http::StatusCode, err: &Error) -> AppError {
    if let Some(app) = err.as_error::<AppError>() {
        // Rebuild with the same client-facing parts (AppError is not Clone: its cause is not).
        let mut copy =
            AppError::new(app.kind(), app.message().to_owned()).with_code(app.code().to_owned());
        if let Some(details) = app.details() {
            copy = copy.with_details(details.clone());
        }
        return copy;
    }
    let kind = ErrorKind::from_status(status);
    match kind {
        ErrorKind::Internal | ErrorKind::Unavailable => {
            AppError::from_kind(kind).with_cause(anyhow::anyhow!("{err}"))
        }
        ErrorKind::MethodNotAllowed | ErrorKind::NotFound => AppError::from_kind(kind),
        _ => AppError::new(kind, err.to_string()),
    }
}

/// Metrics and one log line per request.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.path().to_owned();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let result = next.call(req).await;
    let elapsed = started.elapsed();
    let (status, route) = match &result {
        Ok(res) => (
            res.status().as_u16(),
            res.request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned()),
        ),
        Err(err) => (
            err.as_response_error().status_code().as_u16(),
            "unmatched".to_owned(),
        ),
    };
    if let Some(state) = state {
        state
            .metrics
            .observe_http(&method, &route, status, elapsed.as_secs_f64());
    }
    tracing::info!(
        method = %method,
        path = %path,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    result
}
