//! Assembling the actix application and starting the HTTP server.
//!
//! Layout:
//! - `GET /healthz`, `GET /metrics` (operations, outside the API prefix);
//! - everything in [`crate::routes::api_v1`] under `/api/v1`;
//! - any other path: 404 `not_found` in the error envelope.
//!
//! Responses are compressed (gzip, brotli, zstd) for clients that ask with
//! `Accept-Encoding` (phones on weak networks pull large pages).
//!
//! Invariant: every 4xx/5xx leaves in the envelope: extractor configs map their errors
//! (`crate::extractors`), the default service answers unknown routes, and
//! `crate::middleware::error_envelope` rewrites whatever else actix produces (405s).

use std::net::TcpListener;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Compress};
use actix_web::{web, App, HttpServer};

use crate::error::{AppError, ErrorKind};
use crate::extractors;
use crate::middleware;
use crate::routes;
use crate::state::AppState;

/// The application with every route, extractor config and middleware. Used by [`run`] and
/// by tests through `actix_web::test::init_service(build_app(state))`.
pub fn build_app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    build_app_with(state, routes::api_v1)
}

/// [`build_app`] with `api` configuring the `/api/v1` scope instead of
/// [`routes::api_v1`] (tests mount probe routes next to the real ones this way).
pub fn build_app_with(
    state: AppState,
    api: fn(&mut web::ServiceConfig),
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let json_limit = state.config.json_limit;
    App::new()
        .app_data(web::Data::new(state))
        .app_data(extractors::json_config(json_limit))
        .app_data(extractors::payload_config(json_limit))
        .app_data(extractors::path_config())
        .app_data(extractors::query_config())
        // Wrapped last = runs first: `observe` sees the final (enveloped) status.
        .wrap(from_fn(middleware::error_envelope))
        .wrap(from_fn(middleware::observe))
        // Outermost: compresses the final body (enveloped errors included) when the client
        // sends `Accept-Encoding`; the layers inside see uncompressed bodies.
        .wrap(Compress::default())
        .configure(routes::ops::configure)
        .service(web::scope("/api/v1").configure(api))
        .default_service(web::to(not_found))
}

/// Start serving on `listener` (already bound: tests bind `127.0.0.1:0`). The returned
/// server runs once awaited (or spawned); stop it with `server.handle().stop(true)`.
pub async fn run(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let workers = state.config.workers;
    let mut server = HttpServer::new(move || build_app(state.clone()));
    if let Some(n) = workers {
        server = server.workers(n.max(1));
    }
    Ok(server.listen(listener)?.run())
}

async fn not_found() -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::new(ErrorKind::NotFound, "no such route"))
}
