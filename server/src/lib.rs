//! `grid-server`: the backend and system of record of the grid system (REST API, sync
//! endpoint) over SQLite or PostgreSQL.
//!
//! Module map:
//! - [`cli`], [`config`], [`telemetry`]: the binary's commands, settings and logging;
//! - [`app`], [`state`], [`routes`], [`middleware`], [`extractors`]: the HTTP server;
//! - [`error`]: the one error type and its envelope;
//! - [`db`]: connections, pool, transactions, schema, migrations, dialect-specific SQL;
//! - [`auth`]: password hashing, token keys;
//! - [`metrics`]: Prometheus metrics;
//! - [`queries`]: the SQL of the supervisor and department API (lists, stats, review);
//!   [`csv`]: the CSV form of every list;
//! - [`demo`]: the demo city seed;
//! - `testing` (feature `test-support`): the integration-test harness.
//!
//! Writing a handler (register it in `routes/<area>.rs`, see [`routes`]):
//!
//! ```ignore
//! async fn create_area(
//!     state: web::Data<AppState>,
//!     body: web::Json<NewAreaBody>,          // bad JSON → 400/415/422 envelope, automatically
//! ) -> AppResult<HttpResponse> {
//!     let body = body.into_inner();
//!     // Blocking diesel work runs on the blocking pool, inside one write transaction
//!     // (BEGIN IMMEDIATE on SQLite); an Err rolls it back.
//!     let area = state.pool.write(move |conn| {
//!         db::areas::insert_area(conn, &body.name, body.code.as_deref(), body.level, None)
//!     }).await?;
//!     Ok(HttpResponse::Created().json(area))
//! }
//! ```
//!
//! Every write to a synced record, inside its transaction, calls
//! [`db::record_change`] (grid counter + record index) and stores the returned
//! `change_seq`; see `db::sync_clock` for why.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod csv;
pub mod db;
pub mod demo;
pub mod error;
pub mod extractors;
pub mod metrics;
pub mod middleware;
pub mod queries;
pub mod routes;
pub mod scope;
pub mod state;
pub mod sync;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod testing;

pub use app::{build_app, build_app_with, run};
pub use error::{AppError, AppResult, ErrorKind};
pub use state::AppState;
