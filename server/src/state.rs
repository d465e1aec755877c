//! What every handler can reach: the pool, the configuration, the JWT keys, the metrics,
//! the server's clock.
//! Cheap to clone (everything is behind an `Arc` or is one); handlers take
//! `web::Data<AppState>`.

use std::sync::{Arc, Mutex};

use sync_core::HlcClock;

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::db::DbPool;
use crate::error::AppResult;
use crate::metrics::Metrics;

/// Shared server state.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub pool: DbPool,
    /// The resolved configuration.
    pub config: Arc<Config>,
    /// Access-token signing keys.
    pub jwt: Arc<JwtKeys>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The server's hybrid logical clock. A push works on a copy and folds it back, so the
    /// lock is never held across a database transaction.
    pub hlc: Arc<Mutex<HlcClock>>,
}

impl AppState {
    /// State with a fresh metrics registry.
    pub fn new(pool: DbPool, config: Config, jwt: JwtKeys) -> AppResult<AppState> {
        Ok(AppState {
            pool,
            config: Arc::new(config),
            jwt: Arc::new(jwt),
            metrics: Arc::new(Metrics::new()?),
            hlc: Arc::new(Mutex::new(HlcClock::new(sync_core::hlc::SERVER_NODE))),
        })
    }
}
