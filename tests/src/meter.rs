//! A measuring [`Transport`] wrapper: the JSON bytes of every push request and response and
//! of every pull response (serialized with `serde_json`, i.e. the uncompressed body size),
//! the number of mutations pushed and changes pulled, and the latency of each push and pull.

use std::time::{Duration, Instant};

use sync_core::sync::{Transport, TransportError};
use sync_core::wire::{PullResponse, PushRequest, PushResponse};

/// What a [`Metered`] transport saw.
#[derive(Clone, Debug, Default)]
pub struct Meter {
    pub push_requests: u64,
    pub push_request_bytes: u64,
    pub push_response_bytes: u64,
    pub mutations_pushed: u64,
    pub pull_requests: u64,
    pub pull_response_bytes: u64,
    pub changes_pulled: u64,
    pub push_latencies: Vec<Duration>,
    pub pull_latencies: Vec<Duration>,
    pub errors: Vec<String>,
    /// When the last successful push answered.
    pub last_push_done: Option<Instant>,
}

impl Meter {
    pub fn merge(&mut self, other: &Meter) {
        self.push_requests += other.push_requests;
        self.push_request_bytes += other.push_request_bytes;
        self.push_response_bytes += other.push_response_bytes;
        self.mutations_pushed += other.mutations_pushed;
        self.pull_requests += other.pull_requests;
        self.pull_response_bytes += other.pull_response_bytes;
        self.changes_pulled += other.changes_pulled;
        self.push_latencies.extend(&other.push_latencies);
        self.pull_latencies.extend(&other.pull_latencies);
        self.errors.extend(other.errors.iter().cloned());
        self.last_push_done = self.last_push_done.max(other.last_push_done);
    }
}

/// The `q`-quantile (0..=1) of `samples` in milliseconds (nearest rank); 0 when empty.
pub fn quantile_ms(samples: &[Duration], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut v: Vec<Duration> = samples.to_vec();
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1].as_secs_f64() * 1000.0
}

/// The wrapper.
pub struct Metered<T> {
    pub inner: T,
    pub meter: Meter,
}

impl<T: Transport> Metered<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            meter: Meter::default(),
        }
    }
}

fn json_len<S: serde::Serialize>(v: &S) -> u64 {
    serde_json::to_vec(v).map_or(0, |b| b.len() as u64)
}

impl<T: Transport> Transport for Metered<T> {
    fn push(&mut self, request: &PushRequest) -> Result<PushResponse, TransportError> {
        let start = Instant::now();
        let outcome = self.inner.push(request);
        let took = start.elapsed();
        let m = &mut self.meter;
        m.push_requests += 1;
        m.push_request_bytes += json_len(request);
        m.mutations_pushed += request.mutations.len() as u64;
        match &outcome {
            Ok(response) => {
                m.push_latencies.push(took);
                m.push_response_bytes += json_len(response);
                m.last_push_done = Some(Instant::now());
            }
            Err(e) => m.errors.push(format!("push: {e}")),
        }
        outcome
    }

    fn pull(&mut self, cursor: Option<&str>, limit: usize) -> Result<PullResponse, TransportError> {
        let start = Instant::now();
        let outcome = self.inner.pull(cursor, limit);
        let took = start.elapsed();
        let m = &mut self.meter;
        m.pull_requests += 1;
        match &outcome {
            Ok(response) => {
                m.pull_latencies.push(took);
                m.pull_response_bytes += json_len(response);
                m.changes_pulled += response.changes.len() as u64;
            }
            Err(e) => m.errors.push(format!("pull: {e}")),
        }
        outcome
    }
}
