//! The in-process hub: the server's push rules (`ingest::ingest`) over a `MemoryStore`, with a
//! server `HlcClock` and a simulated server time. A push is applied atomically (the store is
//! cloned, the push ingested into the clone, the clone swapped in on success); a pull serves
//! the caller's grids (`grids_of` for workers, every grid for supervisors).
//!
//! With an [`Oracle`] installed, mutations are ingested one at a time into the clone (the
//! same rules and the same atomicity; only the server clock ticks more) so the oracle can look
//! at the state each mutation lands on.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use serde_json::Value;
use sync_core::collection::Collection;
use sync_core::cursor::PullCursor;
use sync_core::export::canonical_export;
use sync_core::ingest::memory::MemoryStore;
use sync_core::ingest::{ingest, Caller, IngestError, Store};
use sync_core::sync::{Transport, TransportError};
use sync_core::wire::{
    Fields, Mutation, MutationResult, PullResponse, PushRequest, PushResponse, ResultStatus,
};
use sync_core::workflow::Role;
use sync_core::{DeviceId, GridId, Hlc, HlcClock, RecordId, Timestamp, UserId};

/// 2026-11-21T08:30:00Z.
pub const T0: i64 = 1_795_249_800_000;

/// The true time shared by the hub and the phones (each phone adds its own skew).
#[derive(Clone, Debug)]
pub struct SimTime(pub Arc<AtomicI64>);

impl SimTime {
    pub fn new(ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(ms)))
    }
    pub fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

/// What one processed (non-duplicate) mutation came to.
#[derive(Clone, Debug)]
pub struct Processed {
    pub seq: u64,
    pub collection: Collection,
    pub record_id: RecordId,
    pub status: ResultStatus,
}

pub struct Hub {
    pub store: MemoryStore,
    pub clock: HlcClock,
    pub time: SimTime,
    pub grids: Vec<GridId>,
    pub roles: HashMap<UserId, Role>,
    /// Per device, every mutation processed for the first time, in order.
    pub processed: HashMap<DeviceId, Vec<Processed>>,
    pub oracle: Option<Rc<RefCell<Oracle>>>,
    pub pushes: u64,
    pub pulls: u64,
    /// Phones opened against this hub (test bookkeeping for id streams).
    pub opens: u64,
}

impl Hub {
    pub fn new(time: SimTime) -> Self {
        Self {
            store: MemoryStore::default(),
            clock: HlcClock::new("server"),
            time,
            grids: Vec::new(),
            roles: HashMap::new(),
            processed: HashMap::new(),
            oracle: None,
            pushes: 0,
            pulls: 0,
            opens: 0,
        }
    }

    pub fn add_grid(&mut self, grid: GridId) -> GridId {
        self.grids.push(grid);
        grid
    }

    pub fn add_user(&mut self, user: UserId, role: Role, grids: &[GridId]) -> UserId {
        self.roles.insert(user, role);
        for g in grids {
            self.store.grant(user, *g);
        }
        user
    }

    /// The grids a user may hold.
    pub fn grids_for(&self, user: UserId) -> Vec<GridId> {
        match self.roles.get(&user) {
            Some(Role::Supervisor | Role::Admin) => self.grids.clone(),
            _ => {
                // In the hub's grid order, so that pulls are deterministic.
                let granted = self.store.grids_of(user);
                self.grids
                    .iter()
                    .copied()
                    .filter(|g| granted.contains(g))
                    .collect()
            }
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.time.now().millis()).unwrap_or(0)
    }

    pub fn push(
        &mut self,
        user: UserId,
        request: &PushRequest,
    ) -> Result<PushResponse, TransportError> {
        self.pushes += 1;
        let caller = Caller {
            user,
            role: self.roles.get(&user).copied().unwrap_or(Role::Worker),
            device: request.device_id,
            department: None,
        };
        let now = self.time.now();
        let mut tx = self.store.clone();
        let mut clock = self.clock.clone();
        let mut processed = Vec::new();
        let outcome = match self.oracle.clone() {
            None => {
                let last = tx.last_seq(caller.device).unwrap_or(0);
                ingest(&mut tx, &caller, request, now, &mut clock).inspect(|r| {
                    for (m, r) in request.mutations.iter().zip(&r.results) {
                        if m.seq > last {
                            processed.push(processed_of(m, r));
                        }
                    }
                })
            }
            Some(oracle) => {
                let mut results = Vec::new();
                let mut failed = None;
                for m in &request.mutations {
                    let fresh = m.seq > tx.last_seq(caller.device).unwrap_or(0);
                    let expected = fresh.then(|| oracle.borrow_mut().before(&tx, &caller, m));
                    let one = PushRequest {
                        device_id: request.device_id,
                        mutations: vec![m.clone()],
                        pending_count: None,
                        app_version: None,
                    };
                    match ingest(&mut tx, &caller, &one, now, &mut clock) {
                        Ok(mut r) => {
                            let result = r.results.remove(0);
                            if let Some(expected) = expected {
                                oracle.borrow_mut().after(&caller, m, &result, expected);
                                processed.push(processed_of(m, &result));
                            }
                            results.push(result);
                        }
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                match failed {
                    Some(e) => Err(e),
                    None => Ok(PushResponse {
                        results,
                        last_applied_seq: tx.last_seq(caller.device).unwrap_or(0),
                        server_time: now,
                        server_hlc: clock.tick(self.now_ms()),
                    }),
                }
            }
        };
        match outcome {
            Ok(response) => {
                self.store = tx;
                self.clock = clock;
                self.processed
                    .entry(caller.device)
                    .or_default()
                    .extend(processed);
                Ok(response)
            }
            Err(IngestError::SeqGap {
                expected_after,
                got,
            }) => Err(TransportError::Refused {
                status: 409,
                code: "seq_gap".into(),
                message: format!("seq {got} does not follow {expected_after}"),
            }),
            Err(IngestError::Store(never)) => match never {},
        }
    }

    pub fn pull(
        &mut self,
        user: UserId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PullResponse, TransportError> {
        self.pulls += 1;
        let cursor = match cursor {
            None => PullCursor::default(),
            Some(c) => c.parse().map_err(|_| TransportError::Refused {
                status: 400,
                code: "bad_cursor".into(),
                message: "the pull cursor is not one this server issued".into(),
            })?,
        };
        let grids = self.grids_for(user);
        let mut page = self.store.pull(&grids, &cursor, limit, self.time.now());
        page.server_hlc = Some(self.clock.tick(self.now_ms()));
        Ok(page)
    }

    /// The canonical export of the given grids, built with the same function as the phone's.
    pub fn export_for(&self, grids: &[GridId]) -> Value {
        let held: Vec<(Collection, RecordId, GridId, Fields)> = grids
            .iter()
            .flat_map(|g| {
                self.store
                    .records_of(*g)
                    .map(move |(c, id, state)| (c, id, *g, state.fields()))
            })
            .collect();
        canonical_export(held.iter().map(|(c, id, g, f)| (*c, *id, *g, f)))
    }

    pub fn last_seq(&self, device: DeviceId) -> u64 {
        self.store.clone().last_seq(device).unwrap_or(0)
    }
}

fn processed_of(m: &Mutation, r: &MutationResult) -> Processed {
    Processed {
        seq: m.seq,
        collection: m.collection,
        record_id: m.record_id,
        status: r.status,
    }
}

/// The versions a phone displayed for a record's fields when it made an edit.
pub type Displayed = BTreeMap<String, Hlc>;

/// Checks that every concurrent edit is reported as a conflict and stored for review, and
/// nothing else is. "Concurrent": the field's value on the hub, when the edit lands, was
/// written by another device and is not the version the editing phone displayed (so the
/// worker did not see it), and the values differ.
#[derive(Default)]
pub struct Oracle {
    /// Per (device, record): what was displayed at each of its edits, in `seq` order.
    pub displayed: HashMap<(DeviceId, RecordId), VecDeque<Displayed>>,
    pub expected_conflicts: usize,
    pub reported_conflicts: usize,
    pub violations: Vec<String>,
    conflicts_before: usize,
}

impl Oracle {
    pub fn note_edit(&mut self, device: DeviceId, record: RecordId, displayed: Displayed) {
        self.displayed
            .entry((device, record))
            .or_default()
            .push_back(displayed);
    }

    fn before(&mut self, store: &MemoryStore, caller: &Caller, m: &Mutation) -> Vec<String> {
        self.conflicts_before = store.conflicts.len();
        let displayed = self
            .displayed
            .get_mut(&(caller.device, m.record_id))
            .and_then(VecDeque::pop_front);
        let Some(displayed) = displayed else {
            self.violations.push(format!(
                "seq {} of {}: the hub processed a mutation the test never made",
                m.seq, caller.device
            ));
            return vec![];
        };
        if m.collection.is_append_only() {
            return vec![];
        }
        let Some((_, state)) = store.record(m.collection, m.record_id) else {
            return vec![];
        };
        let me = caller.device.to_string();
        m.fields
            .iter()
            .filter(|(field, value)| match state.get(field) {
                Some(cur) => {
                    cur.version.node != me
                        && displayed.get(*field) != Some(&cur.version)
                        && &cur.value != *value
                }
                None => false,
            })
            .map(|(f, _)| f.clone())
            .collect()
    }

    fn after(
        &mut self,
        _caller: &Caller,
        m: &Mutation,
        result: &MutationResult,
        mut expected: Vec<String>,
    ) {
        if result.status != ResultStatus::Applied {
            return;
        }
        let mut got = result.conflicts.clone();
        got.sort();
        expected.sort();
        if got != expected {
            self.violations.push(format!(
                "seq {} ({} {}): conflicts reported {got:?}, expected {expected:?}",
                m.seq, m.collection, m.record_id
            ));
        }
        self.expected_conflicts += expected.len();
        self.reported_conflicts += got.len();
    }
}

/// A device's link to the hub.
pub struct Link {
    pub hub: Rc<RefCell<Hub>>,
    pub user: UserId,
}

impl Transport for Link {
    fn push(&mut self, request: &PushRequest) -> Result<PushResponse, TransportError> {
        self.hub.borrow_mut().push(self.user, request)
    }
    fn pull(&mut self, cursor: Option<&str>, limit: usize) -> Result<PullResponse, TransportError> {
        self.hub.borrow_mut().pull(self.user, cursor, limit)
    }
}
