//! Prometheus metrics: one registry per server, rendered as text at `GET /metrics`.
//!
//! Owns: HTTP request counts and latencies (recorded by `crate::middleware::observe`), and
//! the sync metrics that the push and pull handlers record. Other modules add their own
//! collectors with [`Metrics::register`].
//!
//! Invariant: label values have bounded cardinality: the route *pattern*
//! (`/api/v1/hazards/{id}`, or `unmatched`), the method, the status code; never a raw path,
//! an id, a user or a device.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use crate::error::{AppError, AppResult};

/// Latency buckets in seconds, 1 ms to 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The server's metrics. Shared as `Arc<Metrics>` in `AppState`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `grid_http_requests_total{method, route, status}`.
    pub http_requests: IntCounterVec,
    /// `grid_http_request_duration_seconds{method, route}`.
    pub http_duration: HistogramVec,
    /// `grid_sync_push_duration_seconds`: one push request, end to end.
    pub sync_push_duration: Histogram,
    /// `grid_sync_pull_duration_seconds`: one pull request, end to end.
    pub sync_pull_duration: Histogram,
    /// `grid_sync_mutations_total{result}`: `applied` | `duplicate` | `rejected`.
    pub sync_mutations: IntCounterVec,
    /// `grid_sync_conflicts_total`: conflict records created.
    pub sync_conflicts: IntCounter,
    /// `grid_sync_pull_changes_total`: changes sent by pulls.
    pub sync_pull_changes: IntCounter,
}

impl Metrics {
    /// A fresh registry with the server's collectors registered.
    pub fn new() -> AppResult<Metrics> {
        let registry = Registry::new_custom(Some("grid".to_owned()), None).map_err(internal)?;
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["method", "route", "status"],
        )
        .map_err(internal)?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )
        .map_err(internal)?;
        let sync_push_duration = Histogram::with_opts(
            HistogramOpts::new("sync_push_duration_seconds", "Sync push latency")
                .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .map_err(internal)?;
        let sync_pull_duration = Histogram::with_opts(
            HistogramOpts::new("sync_pull_duration_seconds", "Sync pull latency")
                .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .map_err(internal)?;
        let sync_mutations = IntCounterVec::new(
            Opts::new("sync_mutations_total", "Pushed mutations by result"),
            &["result"],
        )
        .map_err(internal)?;
        let sync_conflicts = IntCounter::new("sync_conflicts_total", "Conflict records created")
            .map_err(internal)?;
        let sync_pull_changes = IntCounter::new("sync_pull_changes_total", "Changes sent by pulls")
            .map_err(internal)?;

        let metrics = Metrics {
            registry,
            http_requests,
            http_duration,
            sync_push_duration,
            sync_pull_duration,
            sync_mutations,
            sync_conflicts,
            sync_pull_changes,
        };
        metrics.register(Box::new(metrics.http_requests.clone()))?;
        metrics.register(Box::new(metrics.http_duration.clone()))?;
        metrics.register(Box::new(metrics.sync_push_duration.clone()))?;
        metrics.register(Box::new(metrics.sync_pull_duration.clone()))?;
        metrics.register(Box::new(metrics.sync_mutations.clone()))?;
        metrics.register(Box::new(metrics.sync_conflicts.clone()))?;
        metrics.register(Box::new(metrics.sync_pull_changes.clone()))?;
        Ok(metrics)
    }

    /// Add a collector (its names get the `grid_` prefix).
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) -> AppResult<()> {
        self.registry.register(collector).map_err(internal)
    }

    /// The registry, for callers that need more than [`Metrics::register`].
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Record one answered HTTP request.
    pub fn observe_http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .with_label_values(&[method, route, status.to_string().as_str()])
            .inc();
        self.http_duration
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> AppResult<String> {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .map_err(internal)?;
        String::from_utf8(buf).map_err(internal)
    }
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> AppError {
    AppError::internal(anyhow::Error::new(e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn renders_prefixed_metrics() {
        let m = Metrics::new().unwrap();
        m.observe_http("GET", "/healthz", 200, 0.002);
        m.sync_mutations.with_label_values(&["applied"]).inc_by(3);
        let text = m.render().unwrap();
        assert!(
            text.contains(
                r#"grid_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"grid_sync_mutations_total{result="applied"} 3"#));
        assert!(text.contains("grid_http_request_duration_seconds_bucket"));
        let extra = IntCounter::new("extra_total", "x").unwrap();
        m.register(Box::new(extra.clone())).unwrap();
        extra.inc();
        assert!(m.render().unwrap().contains("grid_extra_total 1"));
    }
}
