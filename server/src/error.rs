//! The server's one error type, [`AppError`], and its HTTP rendering.
//!
//! Owns: the mapping from an error *kind* to an HTTP status and a stable snake_case code,
//! and the error envelope `{"error": {"code", "message", "details"?}}` that every 4xx and
//! 5xx response carries (contract, "Conventions").
//!
//! Invariants:
//! - A handler, a db helper or an extractor returns `AppError`; nothing else reaches the
//!   client. Foreign errors (diesel, r2d2, blocking-pool) convert via `From` impls here.
//! - The `cause` of an error is for the log only. Internal (5xx) errors log it with
//!   `tracing::error!` and answer a generic message, so database text, SQL or file paths
//!   never reach a client.
//! - Bad input is a 4xx, never a 5xx: extractor errors are mapped in `crate::app::extractors`.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

/// Result alias used across the server.
pub type AppResult<T> = Result<T, AppError>;

/// What went wrong, from the client's point of view. Each kind has one HTTP status and a
/// default code; [`AppError::with_code`] may refine the code (e.g. `username_taken`) but
/// never the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400: the request is malformed (query string, path, headers, body shape).
    BadRequest,
    /// 400: the body is not valid JSON (syntax, truncated, nested too deeply).
    MalformedJson,
    /// 401: missing, invalid or expired credentials.
    Unauthorized,
    /// 403: authenticated, but not allowed.
    Forbidden,
    /// 404: no such object or route (also for objects outside the caller's scope).
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 409: state conflict (e.g. username taken).
    Conflict,
    /// 413: body too large.
    PayloadTooLarge,
    /// 415: the body has a content type this route does not take.
    UnsupportedMediaType,
    /// 422: well-formed JSON whose values are invalid (wrong type, unknown enum value,
    /// out of range, too long, missing required field).
    InvalidValue,
    /// 429: too many requests; see [`AppError::with_retry_after`].
    RateLimited,
    /// 500: a bug or an unexpected failure. The cause is logged, never sent.
    Internal,
    /// 503: a dependency (the database) is not answering.
    Unavailable,
}

impl ErrorKind {
    /// The HTTP status for this kind.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest | ErrorKind::MalformedJson => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::InvalidValue => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The default snake_case code for this kind.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::MalformedJson => "malformed_json",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::InvalidValue => "invalid_value",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Internal => "internal",
            ErrorKind::Unavailable => "unavailable",
        }
    }

    /// The kind for a bare HTTP status (used to wrap responses that actix produced
    /// without going through `AppError`, e.g. a 405 from route matching).
    pub fn from_status(status: StatusCode) -> ErrorKind {
        match status.as_u16() {
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            405 => ErrorKind::MethodNotAllowed,
            409 => ErrorKind::Conflict,
            413 => ErrorKind::PayloadTooLarge,
            415 => ErrorKind::UnsupportedMediaType,
            422 => ErrorKind::InvalidValue,
            429 => ErrorKind::RateLimited,
            503 => ErrorKind::Unavailable,
            400..=499 => ErrorKind::BadRequest,
            _ => ErrorKind::Internal,
        }
    }

    /// A generic message for this kind, used when no better one is known.
    pub fn default_message(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "the request is malformed",
            ErrorKind::MalformedJson => "the request body is not valid JSON",
            ErrorKind::Unauthorized => "missing or invalid credentials",
            ErrorKind::Forbidden => "not allowed",
            ErrorKind::NotFound => "not found",
            ErrorKind::MethodNotAllowed => "method not allowed on this route",
            ErrorKind::Conflict => "the request conflicts with the current state",
            ErrorKind::PayloadTooLarge => "the request body is too large",
            ErrorKind::UnsupportedMediaType => "unsupported content type",
            ErrorKind::InvalidValue => "invalid value",
            ErrorKind::RateLimited => "too many requests, try again later",
            ErrorKind::Internal => "internal server error",
            ErrorKind::Unavailable => "service unavailable",
        }
    }
}

/// The server's error: a kind (status + default code), a client-facing message, optional
/// JSON details for the client, and an optional cause for the log.
pub struct AppError {
    kind: ErrorKind,
    code: Option<Cow<'static, str>>,
    message: Cow<'static, str>,
    details: Option<Value>,
    retry_after_secs: Option<u64>,
    cause: Option<anyhow::Error>,
}

impl AppError {
    /// An error of `kind` with a client-facing `message`.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        AppError {
            kind,
            code: None,
            message: message.into(),
            details: None,
            retry_after_secs: None,
            cause: None,
        }
    }

    /// An error of `kind` with the kind's generic message.
    pub fn from_kind(kind: ErrorKind) -> Self {
        AppError::new(kind, kind.default_message())
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        AppError::new(ErrorKind::BadRequest, message)
    }
    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        AppError::new(ErrorKind::Unauthorized, message)
    }
    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        AppError::new(ErrorKind::Forbidden, message)
    }
    /// 404 `not_found`.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        AppError::new(ErrorKind::NotFound, message)
    }
    /// 409 `conflict`.
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        AppError::new(ErrorKind::Conflict, message)
    }
    /// 422 `invalid_value`.
    pub fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        AppError::new(ErrorKind::InvalidValue, message)
    }
    /// 429 `rate_limited`, with a `Retry-After` header.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        AppError::from_kind(ErrorKind::RateLimited).with_retry_after(retry_after_secs)
    }
    /// 500 `internal`: `cause` is logged, the client sees a generic message.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        AppError::from_kind(ErrorKind::Internal).with_cause(cause)
    }
    /// 503 `unavailable`.
    pub fn unavailable(message: impl Into<Cow<'static, str>>) -> Self {
        AppError::new(ErrorKind::Unavailable, message)
    }

    /// Replace the default code of the kind with a more specific one (snake_case).
    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.code = Some(code.into());
        self
    }
    /// Attach a `details` member to the envelope (never put secrets or internals here).
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
    /// Attach a cause, logged (not sent) when the response is rendered.
    pub fn with_cause(mut self, cause: impl Into<anyhow::Error>) -> Self {
        self.cause = Some(cause.into());
        self
    }
    /// Send a `Retry-After: secs` header with the response.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The code sent to the client.
    pub fn code(&self) -> &str {
        self.code.as_deref().unwrap_or(self.kind.code())
    }
    /// The message sent to the client.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The details sent to the client, if any.
    pub fn details(&self) -> Option<&Value> {
        self.details.as_ref()
    }
    /// The cause (log only), if any.
    pub fn cause(&self) -> Option<&anyhow::Error> {
        self.cause.as_ref()
    }

    /// The JSON envelope sent to the client.
    pub fn envelope(&self) -> Value {
        let mut inner = json!({ "code": self.code(), "message": self.message() });
        if let (Some(details), Some(obj)) = (&self.details, inner.as_object_mut()) {
            obj.insert("details".to_owned(), details.clone());
        }
        json!({ "error": inner })
    }
}

impl fmt::Debug for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppError")
            .field("kind", &self.kind)
            .field("code", &self.code())
            .field("message", &self.message)
            .field("cause", &self.cause)
            .finish()
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message)?;
        if let Some(cause) = &self.cause {
            write!(f, " ({cause:#})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_ref().map(|c| c.as_ref() as _)
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.kind.status();
        if status.is_server_error() {
            // Only here does the cause meet the log; the client gets the generic message.
            match &self.cause {
                Some(cause) => {
                    tracing::error!(code = self.code(), error = %format!("{cause:#}"), "request failed")
                }
                None => {
                    tracing::error!(code = self.code(), message = %self.message, "request failed")
                }
            }
        } else if let Some(cause) = &self.cause {
            tracing::debug!(code = self.code(), error = %format!("{cause:#}"), "request refused");
        }
        let mut builder = HttpResponse::build(status);
        if self.kind == ErrorKind::Unauthorized {
            // RFC 7235: a 401 names the scheme it wants (bearer tokens, RFC 6750).
            builder.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let Some(secs) = self.retry_after_secs {
            builder.insert_header((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        builder.json(self.envelope())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::NotFound => AppError::from_kind(ErrorKind::NotFound),
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                AppError::conflict("already exists").with_cause(err)
            }
            other => AppError::internal(other),
        }
    }
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        // No connection within the pool's timeout: the database is down or saturated.
        AppError::unavailable("database unavailable").with_cause(err)
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(err: actix_web::error::BlockingError) -> Self {
        AppError::internal(anyhow::anyhow!("blocking task failed: {err}"))
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        AppError::internal(err)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use actix_web::body::to_bytes;

    #[actix_web::test]
    async fn internal_error_hides_cause() {
        let err = AppError::internal(anyhow::anyhow!("secret table xyz"));
        let resp = err.error_response();
        assert_eq!(resp.status(), 500);
        let body = to_bytes(resp.into_body()).await.unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(!text.contains("xyz"), "{text}");
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["error"]["code"], "internal");
    }

    #[actix_web::test]
    async fn custom_code_details_and_retry_after() {
        let err = AppError::rate_limited(30)
            .with_code("too_many_logins")
            .with_details(json!({"retry_after": 30}));
        let resp = err.error_response();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers().get("retry-after").unwrap(), "30");
        let body = to_bytes(resp.into_body()).await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({"error": {"code": "too_many_logins", "message": "too many requests, try again later", "details": {"retry_after": 30}}})
        );
    }

    #[test]
    fn diesel_errors_map() {
        assert_eq!(
            AppError::from(diesel::result::Error::NotFound).kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            AppError::from(diesel::result::Error::RollbackTransaction).kind(),
            ErrorKind::Internal
        );
    }

    #[test]
    fn every_status_maps_to_a_kind_with_that_status() {
        for code in [
            400u16, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 503,
        ] {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(ErrorKind::from_status(status).status(), status);
        }
        assert_eq!(
            ErrorKind::from_status(StatusCode::IM_A_TEAPOT),
            ErrorKind::BadRequest
        );
    }
}
