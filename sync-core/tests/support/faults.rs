//! A fault-injecting transport: drops requests (nothing reaches the hub), drops responses
//! after the hub applied them, duplicates requests (the hub processes the same request twice;
//! the phone gets the second answer). Faults come from a script first, then from a seeded RNG.

use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sync_core::sync::{Transport, TransportError};
use sync_core::wire::{PullResponse, PushRequest, PushResponse};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    DropRequest,
    DropResponse,
    Duplicate,
}

pub struct Faulty<T> {
    pub inner: T,
    rng: StdRng,
    /// Probability of each fault per call (the rest: none).
    pub drop_request: f64,
    pub drop_response: f64,
    pub duplicate: f64,
    pub push_script: VecDeque<Fault>,
    pub pull_script: VecDeque<Fault>,
    pub injected: u64,
}

impl<T: Transport> Faulty<T> {
    pub fn new(inner: T, seed: u64) -> Self {
        Self {
            inner,
            rng: StdRng::seed_from_u64(seed),
            drop_request: 0.0,
            drop_response: 0.0,
            duplicate: 0.0,
            push_script: VecDeque::new(),
            pull_script: VecDeque::new(),
            injected: 0,
        }
    }

    pub fn with_rates(mut self, drop_request: f64, drop_response: f64, duplicate: f64) -> Self {
        self.drop_request = drop_request;
        self.drop_response = drop_response;
        self.duplicate = duplicate;
        self
    }

    fn next(&mut self, push: bool) -> Fault {
        let scripted = if push {
            self.push_script.pop_front()
        } else {
            self.pull_script.pop_front()
        };
        let fault = scripted.unwrap_or_else(|| {
            let x: f64 = self.rng.random();
            if x < self.drop_request {
                Fault::DropRequest
            } else if x < self.drop_request + self.drop_response {
                Fault::DropResponse
            } else if x < self.drop_request + self.drop_response + self.duplicate {
                Fault::Duplicate
            } else {
                Fault::None
            }
        });
        if fault != Fault::None {
            self.injected += 1;
        }
        fault
    }
}

fn lost() -> TransportError {
    TransportError::Network("connection reset (injected)".into())
}

impl<T: Transport> Transport for Faulty<T> {
    fn push(&mut self, request: &PushRequest) -> Result<PushResponse, TransportError> {
        match self.next(true) {
            Fault::None => self.inner.push(request),
            Fault::DropRequest => Err(lost()),
            Fault::DropResponse => {
                let _ = self.inner.push(request);
                Err(lost())
            }
            Fault::Duplicate => {
                let _ = self.inner.push(request);
                self.inner.push(request)
            }
        }
    }

    fn pull(&mut self, cursor: Option<&str>, limit: usize) -> Result<PullResponse, TransportError> {
        match self.next(false) {
            Fault::None => self.inner.pull(cursor, limit),
            Fault::DropRequest => Err(lost()),
            Fault::DropResponse => {
                let _ = self.inner.pull(cursor, limit);
                Err(lost())
            }
            Fault::Duplicate => {
                let _ = self.inner.pull(cursor, limit);
                self.inner.pull(cursor, limit)
            }
        }
    }
}
