//! What every handler can reach: the pool, the configuration, the JWT keys, the metrics.
//! Cheap to clone (everything is behind an `Arc` or is one); handlers take
//! `web::Data<AppState>`.

use std::sync::Arc;

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
}

impl AppState {
    /// State with a fresh metrics registry.
    pub fn new(pool: DbPool, config: Config, jwt: JwtKeys) -> AppResult<AppState> {
        Ok(AppState {
            pool,
            config: Arc::new(config),
            jwt: Arc::new(jwt),
            metrics: Arc::new(Metrics::new()?),
        })
    }
}
