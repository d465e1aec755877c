//! The conflict oracle: which fields of a mutation are concurrent edits, decided from what
//! the phone *displayed* when the worker edited and what the server held when the mutation
//! arrived — independently of the mutation's own `base`.
//!
//! Rule (sync.md, promise 5): a field of an applied mutation is a conflict when the server
//! held a value for it written by another device, that version is not the one the phone
//! displayed when the edit was made (so the worker did not see it), and the values differ.
//!
//! [`Ledger`] keeps, per device and `seq`, what each mutation was and what was displayed; the
//! test fills it as it writes. [`Observed`] is a transport wrapper placed *inside* the fault
//! injector, right around the HTTP transport: before a push reaches the server it reads the
//! device's `last_applied_seq` and the touched records from the server's database (through
//! the server's own `DieselStore`), predicts the conflicts of every mutation the server will
//! process, and after the answer compares them with the push results. What it expected is
//! checked against the server's `conflicts` table at the end ([`crate::db`]).
//!
//! Within one push, a field that an earlier mutation of the batch edited concurrently has an
//! unknown winner (it depends on the stamps); later mutations' verdicts on that field are not
//! predicted ("uncertain"). Mutations pushed by other means (a `grid-worker` process) are
//! "unverified": processed, but not predicted.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use grid_server::db::DbPool;
use grid_server::scope::GridScope;
use grid_server::sync::store::DieselStore;
use serde_json::Value;
use sync_core::ingest::Store;
use sync_core::merge::RecordState;
use sync_core::sync::{Transport, TransportError};
use sync_core::wire::{PullResponse, PushRequest, PushResponse, ResultStatus};
use sync_core::{Collection, DeviceId, Hlc, RecordId};

/// The versions a phone displayed for a record's fields when an edit was made.
pub type Displayed = BTreeMap<String, Hlc>;

/// One mutation a phone made (queued in its outbox).
#[derive(Clone, Debug)]
pub struct Made {
    pub collection: Collection,
    pub record_id: RecordId,
    pub displayed: Displayed,
}

/// A conflict the oracle expects the server to record.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedConflict {
    pub collection: Collection,
    pub record_id: RecordId,
    /// The server's value when the edit arrived.
    pub current: Value,
    /// The edit's value.
    pub incoming: Value,
}

/// (device, seq, field).
pub type FieldKey = (DeviceId, u64, String);

/// Everything the oracle knows about one run.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Per device, its mutations in `seq` order (`made[d][seq - 1]`).
    pub made: HashMap<DeviceId, Vec<Made>>,
    /// Processed seqs the oracle saw the server answer, with the status.
    pub checked: HashMap<(DeviceId, u64), ResultStatus>,
    /// Processed seqs whose answer the oracle did not see.
    pub unverified: BTreeSet<(DeviceId, u64)>,
    pub expected: BTreeMap<FieldKey, ExpectedConflict>,
    pub uncertain: BTreeSet<FieldKey>,
    pub violations: Vec<String>,
    /// Pushes observed.
    pub pushes: u64,
}

impl Ledger {
    /// The next `seq` of `device` (its mutations so far + 1).
    pub fn next_seq(&self, device: DeviceId) -> u64 {
        self.made.get(&device).map_or(0, Vec::len) as u64 + 1
    }

    /// Note the next mutation of `device` (a hazard report is two: the hazard and its submit
    /// action — note them one after the other).
    pub fn note(&mut self, device: DeviceId, made: Made) {
        self.made.entry(device).or_default().push(made);
    }

    /// How many mutations `device` made.
    pub fn made_count(&self, device: DeviceId) -> u64 {
        self.made.get(&device).map_or(0, Vec::len) as u64
    }

    /// Mark the processed seqs `(from, to]` of `device` as unverified (pushed by another
    /// process).
    pub fn mark_unverified(&mut self, device: DeviceId, from: u64, to: u64) {
        for seq in from + 1..=to {
            if !self.checked.contains_key(&(device, seq)) {
                self.unverified.insert((device, seq));
            }
        }
    }

    /// Whether the oracle has no opinion on `(device, seq, field)`.
    pub fn tolerated(&self, key: &FieldKey) -> bool {
        self.uncertain.contains(key) || self.unverified.contains(&(key.0, key.1))
    }
}

/// The shared ledger of a run.
pub type SharedLedger = Rc<RefCell<Ledger>>;

/// The wrapper. See the module notes.
pub struct Observed<T> {
    pub inner: T,
    ledger: SharedLedger,
    pool: DbPool,
    device: DeviceId,
}

impl<T: Transport> Observed<T> {
    /// `pool`: a connection pool on the server's database (not the server's own).
    pub fn new(inner: T, ledger: SharedLedger, pool: DbPool, device: DeviceId) -> Self {
        Self {
            inner,
            ledger,
            pool,
            device,
        }
    }

    fn last_seq(&self) -> Result<u64, String> {
        let mut conn = self.pool.get().map_err(|e| e.to_string())?;
        let scope = GridScope::All;
        let mut store = DieselStore::new(&mut conn, &scope, 0);
        store.last_seq(self.device).map_err(|e| e.to_string())
    }

    /// The predicted conflicts of each mutation the server will process, by seq, and the
    /// fields whose verdict cannot be predicted.
    #[allow(clippy::type_complexity)]
    fn predict(
        &self,
        request: &PushRequest,
        last: u64,
    ) -> Result<
        (
            BTreeMap<u64, Vec<(String, ExpectedConflict)>>,
            BTreeSet<FieldKey>,
        ),
        String,
    > {
        let mut out = BTreeMap::new();
        let mut uncertain = BTreeSet::new();
        let fresh: Vec<_> = request.mutations.iter().filter(|m| m.seq > last).collect();
        if fresh.first().is_some_and(|m| m.seq != last + 1) {
            return Ok((out, uncertain)); // a seq gap: refused whole.
        }
        let mut conn = self.pool.get().map_err(|e| e.to_string())?;
        let scope = GridScope::All;
        let mut store = DieselStore::new(&mut conn, &scope, 0);
        let me = self.device.to_string();
        let mut sim: HashMap<RecordId, Option<RecordState>> = HashMap::new();
        let mut unsure: HashMap<RecordId, BTreeSet<String>> = HashMap::new();
        let ledger = self.ledger.borrow();
        let made_of = ledger.made.get(&self.device);
        let mut violations = Vec::new();
        for m in fresh {
            let made = made_of.and_then(|v| v.get((m.seq - 1) as usize));
            let Some(made) = made else {
                violations.push(format!(
                    "{}: seq {} reaches the server but the test never made it",
                    self.device, m.seq
                ));
                continue;
            };
            if made.record_id != m.record_id || made.collection != m.collection {
                violations.push(format!(
                    "{}: seq {} is {} {}, the test made {} {}",
                    self.device, m.seq, m.collection, m.record_id, made.collection, made.record_id
                ));
            }
            let mut conflicts = Vec::new();
            if !m.collection.is_append_only() {
                let state = match sim.entry(m.record_id) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => e.insert(
                        store
                            .load(m.collection, m.record_id)
                            .map_err(|e| e.to_string())?
                            .map(|r| r.state),
                    ),
                };
                let stamp = Hlc::new(u64::MAX / 2, 0, me.clone());
                match state {
                    None => {
                        let mut s = RecordState::default();
                        for (f, v) in &m.fields {
                            s.set(f.clone(), v.clone(), stamp.clone());
                        }
                        *state = Some(s);
                    }
                    Some(s) => {
                        let unsure_fields = unsure.entry(m.record_id).or_default();
                        for (f, v) in &m.fields {
                            if unsure_fields.contains(f) {
                                uncertain.insert((self.device, m.seq, f.clone()));
                                continue;
                            }
                            let Some(cur) = s.get(f).cloned() else {
                                s.set(f.clone(), v.clone(), stamp.clone());
                                continue;
                            };
                            if &cur.value == v {
                                continue;
                            }
                            let seen = made.displayed.get(f) == Some(&cur.version);
                            if seen || cur.version.node == me {
                                s.set(f.clone(), v.clone(), stamp.clone());
                                continue;
                            }
                            conflicts.push((
                                f.clone(),
                                ExpectedConflict {
                                    collection: m.collection,
                                    record_id: m.record_id,
                                    current: cur.value.clone(),
                                    incoming: v.clone(),
                                },
                            ));
                            unsure_fields.insert(f.clone());
                        }
                    }
                }
            }
            out.insert(m.seq, conflicts);
        }
        drop(ledger);
        self.ledger.borrow_mut().violations.extend(violations);
        Ok((out, uncertain))
    }
}

impl<T: Transport> Transport for Observed<T> {
    fn push(&mut self, request: &PushRequest) -> Result<PushResponse, TransportError> {
        let before = self.last_seq();
        let prediction = match &before {
            Ok(last) => self.predict(request, *last),
            Err(e) => Err(e.clone()),
        };
        let outcome = self.inner.push(request);
        let after = self.last_seq();
        let mut ledger = self.ledger.borrow_mut();
        ledger.pushes += 1;
        let (before, after, (predicted, uncertain)) = match (before, after, prediction) {
            (Ok(b), Ok(a), Ok(p)) => (b, a, p),
            (b, a, p) => {
                ledger.violations.push(format!(
                    "oracle could not read the server's database: {:?} {:?} {:?}",
                    b.err(),
                    a.err(),
                    p.err()
                ));
                return outcome;
            }
        };
        ledger.uncertain.extend(uncertain);
        let processed = before + 1..=after;
        match &outcome {
            Ok(response) => {
                for r in &response.results {
                    if !processed.contains(&r.seq) {
                        continue;
                    }
                    ledger.checked.insert((self.device, r.seq), r.status);
                    if r.status != ResultStatus::Applied {
                        continue;
                    }
                    let expected = predicted.get(&r.seq).cloned().unwrap_or_default();
                    let device = self.device;
                    let keep = |f: &String, l: &Ledger| !l.tolerated(&(device, r.seq, f.clone()));
                    let mut want: Vec<String> = expected
                        .iter()
                        .map(|(f, _)| f.clone())
                        .filter(|f| keep(f, &ledger))
                        .collect();
                    let mut got: Vec<String> = r
                        .conflicts
                        .iter()
                        .filter(|f| keep(f, &ledger))
                        .cloned()
                        .collect();
                    want.sort();
                    got.sort();
                    if want != got {
                        ledger.violations.push(format!(
                            "{device} seq {}: the server reported conflicts {got:?}, the oracle expected {want:?}",
                            r.seq
                        ));
                    }
                    for (f, e) in expected {
                        ledger.expected.insert((device, r.seq, f), e);
                    }
                }
                let answered: BTreeSet<u64> = response.results.iter().map(|r| r.seq).collect();
                for seq in processed.clone() {
                    if !answered.contains(&seq) {
                        ledger.violations.push(format!(
                            "{}: seq {seq} was processed but not answered",
                            self.device
                        ));
                    }
                }
            }
            Err(_) => {
                for seq in processed {
                    ledger.unverified.insert((self.device, seq));
                }
            }
        }
        outcome
    }

    fn pull(&mut self, cursor: Option<&str>, limit: usize) -> Result<PullResponse, TransportError> {
        self.inner.pull(cursor, limit)
    }
}
