//! How the HTTP client behaves: timeouts, retries, backoff and how it names itself.

use std::time::Duration;

/// Options of [`super::HttpTransport`], [`super::login`] and [`super::logout`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpOptions {
    /// The longest one request may take, from connecting to the last byte of the answer.
    pub timeout: Duration,
    /// Retries after the first try, for network errors, 5xx and 429 (0 = try once).
    pub max_retries: u32,
    /// The wait before the first retry; doubled for each further retry, with jitter (a random
    /// factor between ½ and 1).
    pub base_backoff: Duration,
    /// The longest wait between two tries. A `Retry-After` longer than this is not waited
    /// for: the call returns `Unavailable` with it, for the app's own schedule.
    pub max_backoff: Duration,
    /// The app's version, sent as the `User-Agent` (`grid-worker/0.1.0`); the sync engine
    /// reports it with every push through `SyncOptions::app_version`.
    pub app_version: Option<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_retries: 3,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            app_version: None,
        }
    }
}

impl HttpOptions {
    /// The `User-Agent` header.
    pub fn user_agent(&self) -> String {
        match &self.app_version {
            Some(v) => format!("{v} (sync-core/{})", env!("CARGO_PKG_VERSION")),
            None => format!("sync-core/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}
