//! Extractor configurations whose errors are `AppError`s, so bad input always gets the
//! error envelope and a 4xx (never actix's plain-text errors, never a 5xx).
//!
//! - JSON body: syntax errors, truncated bodies and nesting deeper than serde_json's
//!   recursion limit (128) → 400 `malformed_json`; well-formed JSON of the wrong shape or
//!   with invalid values (wrong type, unknown enum value, missing field) → 422
//!   `invalid_value`; too large → 413; a missing `Content-Type` or one that is not JSON
//!   (`application/json`, `application/*+json`) → 415 `unsupported_media_type`.
//! - Path parameters that do not parse (e.g. a malformed UUID) → 404: no such resource.
//! - Query strings that do not parse → 400 `bad_request`.
//!
//! A route that needs a different body limit (sync push) adds its own
//! `.app_data(json_config(N))` on its resource.

use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::web;

use crate::error::{AppError, ErrorKind};

/// Default limit for JSON bodies: 4 MiB (a push page of a few thousand mutations).
pub const DEFAULT_JSON_LIMIT: usize = 4 * 1024 * 1024;

/// JSON body extractor config with `limit` bytes.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| json_error(err).into())
}

/// Raw body (`Bytes`, `String`) limit; overflow becomes 413 via the envelope middleware.
pub fn payload_config(limit: usize) -> web::PayloadConfig {
    web::PayloadConfig::new(limit)
}

/// Path extractor config: unparsable path parameters are 404.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| path_error(err).into())
}

/// Query extractor config: unparsable query strings are 400.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| query_error(err).into())
}

/// Map a JSON body error to the envelope's kinds.
pub fn json_error(err: JsonPayloadError) -> AppError {
    match err {
        JsonPayloadError::OverflowKnownLength { length, limit } => AppError::new(
            ErrorKind::PayloadTooLarge,
            format!("the body is {length} bytes; the limit is {limit}"),
        ),
        JsonPayloadError::Overflow { limit } => AppError::new(
            ErrorKind::PayloadTooLarge,
            format!("the body is larger than the limit of {limit} bytes"),
        ),
        JsonPayloadError::ContentType => AppError::new(
            ErrorKind::UnsupportedMediaType,
            "the body must be JSON (Content-Type: application/json)",
        ),
        JsonPayloadError::Deserialize(e) => deserialize_error(&e),
        JsonPayloadError::Serialize(e) => AppError::internal(e),
        JsonPayloadError::Payload(e) => payload_error(e),
        other => AppError::new(ErrorKind::BadRequest, other.to_string()),
    }
}

/// Map a serde_json error met while reading a request body.
pub fn deserialize_error(e: &serde_json::Error) -> AppError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => AppError::new(ErrorKind::InvalidValue, e.to_string()),
        Category::Syntax | Category::Eof => {
            AppError::new(ErrorKind::MalformedJson, format!("malformed JSON: {e}"))
        }
        Category::Io => AppError::new(ErrorKind::BadRequest, "the body could not be read"),
    }
}

fn payload_error(e: PayloadError) -> AppError {
    match e {
        PayloadError::Overflow => AppError::from_kind(ErrorKind::PayloadTooLarge),
        other => AppError::bad_request(format!("the body could not be read: {other}")),
    }
}

fn path_error(err: PathError) -> AppError {
    AppError::not_found(format!("not found ({err})"))
}

fn query_error(err: QueryPayloadError) -> AppError {
    AppError::bad_request(format!("invalid query string: {err}"))
}
