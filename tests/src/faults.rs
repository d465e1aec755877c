//! A fault-injecting [`Transport`] wrapper for the real HTTP transport (or any other).
//!
//! Faults, per call, from a script first and then from a seeded RNG:
//! - [`Fault::DropRequest`]: nothing reaches the server; the phone sees a network error;
//! - [`Fault::DropResponse`]: the request is sent and the server commits it, then the answer
//!   is thrown away and the phone sees a network error (a timeout that hid a success);
//! - [`Fault::Duplicate`]: the request is delivered twice; the phone gets the second answer;
//! - [`Fault::Delay`]: the request waits before it is sent;
//! - [`Fault::ReplayStale`] (push only): an older push request of this phone, kept from an
//!   earlier call, is delivered again first (a late, reordered duplicate); its answer is lost;
//! - [`Fault::Restart`]: the server is stopped and started again (same port and database)
//!   before the request is sent — a restart between two requests of one sync run.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sync_core::sync::{Transport, TransportError};
use sync_core::wire::{PullResponse, PushRequest, PushResponse};

/// One injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    DropRequest,
    DropResponse,
    Duplicate,
    Delay(Duration),
    ReplayStale,
    Restart,
}

/// Probabilities of each fault per call (the rest: none).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FaultRates {
    pub drop_request: f64,
    pub drop_response: f64,
    pub duplicate: f64,
    pub delay: f64,
    pub replay_stale: f64,
    pub restart: f64,
}

/// How many faults of each kind were injected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub drop_request: u64,
    pub drop_response: u64,
    pub duplicate: u64,
    pub delay: u64,
    pub replay_stale: u64,
    pub restart: u64,
}

impl FaultCounts {
    pub fn total(&self) -> u64 {
        self.drop_request
            + self.drop_response
            + self.duplicate
            + self.delay
            + self.replay_stale
            + self.restart
    }

    pub fn add(&mut self, other: &FaultCounts) {
        self.drop_request += other.drop_request;
        self.drop_response += other.drop_response;
        self.duplicate += other.duplicate;
        self.delay += other.delay;
        self.replay_stale += other.replay_stale;
        self.restart += other.restart;
    }
}

/// Push requests a phone sent, kept for stale replays (shared across its sync runs).
pub type Stash = Rc<RefCell<VecDeque<PushRequest>>>;

/// Restarts the server; returns a description of the failure, if any.
pub type Restarter<'a> = Box<dyn FnMut() -> Result<(), String> + 'a>;

const STASH_MAX: usize = 8;

/// The wrapper. See the module notes.
pub struct Faulty<'a, T> {
    pub inner: T,
    rng: StdRng,
    rates: FaultRates,
    /// Faults to inject first, one per call (push or pull), in order.
    pub script: VecDeque<Fault>,
    stash: Option<Stash>,
    restart: Option<Restarter<'a>>,
    pub counts: FaultCounts,
}

impl<'a, T: Transport> Faulty<'a, T> {
    pub fn new(inner: T, seed: u64, rates: FaultRates) -> Self {
        Self {
            inner,
            rng: StdRng::seed_from_u64(seed),
            rates,
            script: VecDeque::new(),
            stash: None,
            restart: None,
            counts: FaultCounts::default(),
        }
    }

    /// Keep push requests in `stash` and replay stale ones from it.
    pub fn with_stash(mut self, stash: Stash) -> Self {
        self.stash = Some(stash);
        self
    }

    /// How to restart the server when a [`Fault::Restart`] comes up (without it, that fault
    /// is not injected).
    pub fn with_restarter(mut self, restart: Restarter<'a>) -> Self {
        self.restart = Some(restart);
        self
    }

    /// A script of faults to inject first.
    pub fn with_script(mut self, script: impl IntoIterator<Item = Fault>) -> Self {
        self.script = script.into_iter().collect();
        self
    }

    fn next(&mut self, push: bool) -> Fault {
        if let Some(f) = self.script.pop_front() {
            return f;
        }
        let r = self.rates;
        let x: f64 = self.rng.random();
        let mut edge = 0.0;
        let mut hit = |p: f64| {
            edge += p;
            x < edge
        };
        if hit(r.drop_request) {
            Fault::DropRequest
        } else if hit(r.drop_response) {
            Fault::DropResponse
        } else if hit(r.duplicate) {
            Fault::Duplicate
        } else if hit(r.delay) {
            Fault::Delay(Duration::from_millis(self.rng.random_range(1..40)))
        } else if hit(r.replay_stale) && push {
            Fault::ReplayStale
        } else if hit(r.restart) && self.restart.is_some() {
            Fault::Restart
        } else {
            Fault::None
        }
    }

    fn count(&mut self, fault: Fault) {
        let c = &mut self.counts;
        match fault {
            Fault::None => {}
            Fault::DropRequest => c.drop_request += 1,
            Fault::DropResponse => c.drop_response += 1,
            Fault::Duplicate => c.duplicate += 1,
            Fault::Delay(_) => c.delay += 1,
            Fault::ReplayStale => c.replay_stale += 1,
            Fault::Restart => c.restart += 1,
        }
    }

    /// Run the restart, if one is configured; a failure is a network error for the caller.
    fn restart_server(&mut self) -> Result<(), TransportError> {
        match self.restart.as_mut() {
            Some(restart) => restart()
                .map_err(|e| TransportError::Network(format!("the server did not come back: {e}"))),
            None => Ok(()),
        }
    }
}

fn lost(what: &str) -> TransportError {
    TransportError::Network(format!("connection reset (injected: {what})"))
}

impl<T: Transport> Transport for Faulty<'_, T> {
    fn push(&mut self, request: &PushRequest) -> Result<PushResponse, TransportError> {
        let mut fault = self.next(true);
        let stale = match (fault, &self.stash) {
            (Fault::ReplayStale, Some(stash)) => {
                let stash = stash.borrow();
                if stash.is_empty() {
                    None
                } else {
                    let i = self.rng.random_range(0..stash.len());
                    stash.get(i).cloned()
                }
            }
            _ => None,
        };
        if fault == Fault::ReplayStale && stale.is_none() {
            fault = Fault::None;
        }
        self.count(fault);
        if let Some(stash) = &self.stash {
            let mut s = stash.borrow_mut();
            s.push_back(request.clone());
            while s.len() > STASH_MAX {
                s.pop_front();
            }
        }
        match fault {
            Fault::None => self.inner.push(request),
            Fault::DropRequest => Err(lost("request dropped")),
            Fault::DropResponse => {
                let _ = self.inner.push(request);
                Err(lost("response dropped"))
            }
            Fault::Duplicate => {
                let _ = self.inner.push(request);
                self.inner.push(request)
            }
            Fault::Delay(d) => {
                std::thread::sleep(d);
                self.inner.push(request)
            }
            Fault::ReplayStale => {
                if let Some(old) = stale {
                    let _ = self.inner.push(&old);
                }
                self.inner.push(request)
            }
            Fault::Restart => {
                self.restart_server()?;
                self.inner.push(request)
            }
        }
    }

    fn pull(&mut self, cursor: Option<&str>, limit: usize) -> Result<PullResponse, TransportError> {
        let fault = self.next(false);
        self.count(fault);
        match fault {
            Fault::None | Fault::ReplayStale => self.inner.pull(cursor, limit),
            Fault::DropRequest => Err(lost("request dropped")),
            Fault::DropResponse => {
                let _ = self.inner.pull(cursor, limit);
                Err(lost("response dropped"))
            }
            Fault::Duplicate => {
                let _ = self.inner.pull(cursor, limit);
                self.inner.pull(cursor, limit)
            }
            Fault::Delay(d) => {
                std::thread::sleep(d);
                self.inner.pull(cursor, limit)
            }
            Fault::Restart => {
                self.restart_server()?;
                self.inner.pull(cursor, limit)
            }
        }
    }
}
