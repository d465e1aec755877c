//! HTTP routes. Handlers are thin: parse, call the db layer through `AppState::pool`,
//! answer JSON or an `AppError`.
//!
//! To add an API area, write `routes/<area>.rs` with `pub fn configure(cfg: &mut
//! web::ServiceConfig)` registering its resources relative to `/api/v1` (e.g.
//! `web::resource("/auth/login")`), and call it from [`api_v1`].
//!
//! Register with `cfg.service(web::resource(path).route(web::post().to(h)))`, not
//! `cfg.route(path, web::post().to(h))`: the latter puts the method guard on the resource
//! itself, so a wrong method falls through to 404 instead of 405 with an `Allow` header.

use actix_web::web;

pub mod admin;
pub mod audit;
pub mod auth;
pub mod conflicts;
pub mod export;
pub mod hazards;
pub mod lists;
pub mod openapi;
pub mod ops;
pub mod pagination;
pub mod stats;
pub mod sync;

/// Everything under `/api/v1`.
pub fn api_v1(cfg: &mut web::ServiceConfig) {
    // Mounted by later modules: sync, supervisor API.
    auth::configure(cfg);
    admin::configure(cfg);
    sync::configure(cfg);
    export::configure(cfg);
    hazards::configure(cfg);
    conflicts::configure(cfg);
    lists::configure(cfg);
    stats::configure(cfg);
    audit::configure(cfg);
    openapi::configure(cfg);
}
