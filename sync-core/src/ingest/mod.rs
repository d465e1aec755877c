//! How the server applies a push: the one implementation of the push rules, used by the real
//! server (over diesel) and by the in-process test hub ([`memory`]), so the property tests
//! exercise the very rules the server runs.
//!
//! For each mutation, in order, inside the caller's single transaction:
//! 1. `seq` at or below the device's last processed one → `duplicate`, nothing changes (the
//!    original rejection reason, if any, is repeated);
//! 2. stamp node ≠ device, grid or record outside the caller's scope, role not allowed, invalid
//!    fields, references to missing records, writes to append-only records → `rejected`, stored;
//! 3. otherwise merged ([`crate::merge::apply_edit`]) with conflicts stored, hazards get their
//!    workflow fields from their actions ([`crate::workflow`]).
//!
//! Every processed mutation, applied or rejected, moves the device's `last_applied_seq`.
//! A batch whose non-duplicate `seq`s are not contiguous from `last_applied_seq + 1` is refused
//! whole ([`IngestError::SeqGap`]) before anything is processed.
//!
//! Stamps more than [`MAX_DRIFT_MS`] ahead of the server's clock are clamped; the server's clock
//! observes every accepted stamp so the stamps it issues itself (derived hazard fields,
//! conflict resolutions) order after everything it has seen.

pub mod memory;
#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::collection::Collection;
use crate::hlc::{Hlc, HlcClock};
use crate::ids::{ConflictId, DeviceId, GridId, RecordId, UserId};
use crate::merge::{apply_edit, Edit, FieldConflict, RecordState, Versioned, Winner};
use crate::time::Timestamp;
use crate::validate::{validate_write, WriteContext};
use crate::wire::{
    Change, Fields, Mutation, MutationResult, PushRequest, PushResponse, Reason, RejectCode,
    ResultStatus,
};
use crate::workflow::{
    check_params, decide, ActionInput, HazardAction, HazardStatus, Role, Verdict, WorkflowState,
};

/// How far ahead of the server's clock a client stamp may be before it is clamped.
pub const MAX_DRIFT_MS: u64 = 5 * 60 * 1000;

/// The authenticated caller of a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user: UserId,
    pub role: Role,
    pub device: DeviceId,
    /// The department a `department` user works for.
    pub department: Option<String>,
}

/// A record as the store holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredRecord {
    pub grid_id: GridId,
    pub state: RecordState,
}

/// One record write for the store to persist (create or update).
#[derive(Clone, Debug)]
pub struct RecordWrite<'a> {
    pub collection: Collection,
    pub id: RecordId,
    pub grid_id: GridId,
    pub state: &'a RecordState,
    pub created: bool,
    /// Fields whose value or version changed.
    pub changed: &'a [String],
    /// The device whose mutation caused the write (`None`: the server itself).
    pub device: Option<DeviceId>,
    /// The device's clock when it recorded the write (for sync-lag statistics).
    pub client_time: Option<Timestamp>,
}

/// A concurrent edit kept for review.
#[derive(Clone, Debug, PartialEq)]
pub struct ConflictRecord {
    pub id: ConflictId,
    pub collection: Collection,
    pub record_id: RecordId,
    pub grid_id: GridId,
    pub field: String,
    pub current: Versioned,
    pub incoming: Versioned,
    pub winner: Winner,
    pub current_device: String,
    pub incoming_device: DeviceId,
    /// The push `seq` of the incoming mutation (`None` outside a device's push stream).
    pub incoming_seq: Option<u64>,
    pub at: Timestamp,
}

/// The storage the push rules run against; one transaction for the whole push.
pub trait Store {
    type Error;
    /// The highest `seq` processed for the device (0 when none).
    fn last_seq(&mut self, device: DeviceId) -> Result<u64, Self::Error>;
    fn set_last_seq(&mut self, device: DeviceId, seq: u64) -> Result<(), Self::Error>;
    /// The fields of a processed mutation of the device that met concurrent edits.
    fn conflicted_fields(&mut self, device: DeviceId, seq: u64)
        -> Result<Vec<String>, Self::Error>;
    /// The reason a processed mutation of the device was rejected, if it was.
    fn rejection(&mut self, device: DeviceId, seq: u64) -> Result<Option<Reason>, Self::Error>;
    fn save_rejection(
        &mut self,
        caller: &Caller,
        mutation: &Mutation,
        reason: &Reason,
        at: Timestamp,
    ) -> Result<(), Self::Error>;
    /// Whether the caller may write records of this grid.
    fn grid_in_scope(&mut self, caller: &Caller, grid: GridId) -> Result<bool, Self::Error>;
    fn load(
        &mut self,
        collection: Collection,
        id: RecordId,
    ) -> Result<Option<StoredRecord>, Self::Error>;
    fn save(&mut self, write: RecordWrite<'_>) -> Result<(), Self::Error>;
    fn save_conflict(&mut self, conflict: ConflictRecord) -> Result<(), Self::Error>;
    /// Whether a `submit` action has been applied to the hazard.
    fn hazard_submitted(&mut self, hazard: RecordId) -> Result<bool, Self::Error>;
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError<E> {
    /// The batch skips a `seq`: refused whole, nothing processed.
    #[error("mutation seq {got} does not follow {expected_after}; seqs must be contiguous")]
    SeqGap { expected_after: u64, got: u64 },
    #[error(transparent)]
    Store(E),
}

type Outcome = Result<Vec<String>, Reason>;

/// Apply a push. The caller wraps this in one transaction and commits only on `Ok`.
pub fn ingest<S: Store>(
    store: &mut S,
    caller: &Caller,
    request: &PushRequest,
    now: Timestamp,
    clock: &mut HlcClock,
) -> Result<PushResponse, IngestError<S::Error>> {
    let device = caller.device;
    let mut last = store.last_seq(device).map_err(IngestError::Store)?;
    let mut expect = last;
    for m in &request.mutations {
        if m.seq > expect {
            if m.seq != expect + 1 {
                return Err(IngestError::SeqGap {
                    expected_after: expect,
                    got: m.seq,
                });
            }
            expect = m.seq;
        }
    }

    let now_ms = u64::try_from(now.millis()).unwrap_or(0);
    let mut results = Vec::with_capacity(request.mutations.len());
    for m in &request.mutations {
        if m.seq <= last {
            // Repeat what the phone may have missed: the rejection, or the conflicts.
            let reason = store.rejection(device, m.seq).map_err(IngestError::Store)?;
            let conflicts = match reason {
                Some(_) => vec![],
                None => store
                    .conflicted_fields(device, m.seq)
                    .map_err(IngestError::Store)?,
            };
            results.push(MutationResult {
                seq: m.seq,
                id: m.id,
                status: ResultStatus::Duplicate,
                reason,
                conflicts,
            });
            continue;
        }
        let outcome =
            apply_one(store, caller, m, now, now_ms, clock, true).map_err(IngestError::Store)?;
        results.push(match outcome {
            Ok(conflicts) => MutationResult {
                seq: m.seq,
                id: m.id,
                status: ResultStatus::Applied,
                reason: None,
                conflicts,
            },
            Err(reason) => {
                store
                    .save_rejection(caller, m, &reason, now)
                    .map_err(IngestError::Store)?;
                MutationResult {
                    seq: m.seq,
                    id: m.id,
                    status: ResultStatus::Rejected,
                    reason: Some(reason),
                    conflicts: vec![],
                }
            }
        });
        last = m.seq;
    }
    store
        .set_last_seq(device, last)
        .map_err(IngestError::Store)?;
    Ok(PushResponse {
        results,
        last_applied_seq: last,
        server_time: now,
        server_hlc: clock.tick(now_ms),
    })
}

fn reject<T>(code: RejectCode, message: impl Into<String>) -> Result<T, Reason> {
    Err(Reason::new(code, message))
}

/// Which collections a role may write.
fn role_may_write(role: Role, collection: Collection) -> bool {
    match role {
        Role::Worker | Role::Supervisor | Role::Admin => true,
        Role::Department => matches!(
            collection,
            Collection::HazardActions | Collection::Attachments
        ),
    }
}

/// Apply one mutation outside a device's `seq` stream — the supervisor and department API
/// records actions this way, so they follow exactly the rules phones do. The mutation's
/// `seq` is ignored and nothing about the device's stream changes; a rejection is returned,
/// not stored (the API answers it as an HTTP error). The outer `Result` is a storage failure.
pub fn apply_mutation<S: Store>(
    store: &mut S,
    caller: &Caller,
    m: &Mutation,
    now: Timestamp,
    clock: &mut HlcClock,
) -> Result<Result<Vec<String>, Reason>, S::Error> {
    let now_ms = u64::try_from(now.millis()).unwrap_or(0);
    apply_one(store, caller, m, now, now_ms, clock, false)
}

/// Apply one mutation. The outer `Result` is a storage failure (abort the push); the inner one
/// is the verdict.
/// `in_stream`: the mutation is part of the device's `seq` stream (a push), so its conflicts
/// are remembered by `seq` for a replayed push.
#[allow(clippy::too_many_arguments)]
fn apply_one<S: Store>(
    store: &mut S,
    caller: &Caller,
    m: &Mutation,
    now: Timestamp,
    now_ms: u64,
    clock: &mut HlcClock,
    in_stream: bool,
) -> Result<Outcome, S::Error> {
    if m.hlc.node != caller.device.to_string() {
        return Ok(reject(
            RejectCode::Malformed,
            "the stamp's node must be the pushing device's id",
        ));
    }
    if !role_may_write(caller.role, m.collection) {
        return Ok(reject(
            RejectCode::Forbidden,
            format!("a {} may not write {}", caller.role, m.collection),
        ));
    }
    if !store.grid_in_scope(caller, m.grid_id)? {
        return Ok(reject(
            RejectCode::OutOfScope,
            "this grid is not in your scope",
        ));
    }
    let existing = store.load(m.collection, m.record_id)?;
    if let Some(e) = &existing {
        if e.grid_id != m.grid_id {
            return Ok(reject(
                RejectCode::InvalidValue,
                "a record cannot move to another grid",
            ));
        }
    }
    let existing_fields = existing.as_ref().map(|e| e.state.fields());
    let ctx = match &existing_fields {
        Some(f) => WriteContext::edit(Some(caller.user), f),
        None => WriteContext::create(Some(caller.user)),
    };
    let fields = match validate_write(m.collection, m.op, &m.fields, ctx) {
        Ok(f) => f,
        Err(reason) => return Ok(Err(reason)),
    };
    // A role that may never take an action is refused before anything else is looked at.
    let action = if m.collection == Collection::HazardActions {
        match check_action(caller, &fields) {
            Ok(action) => Some(action),
            Err(reason) => return Ok(Err(reason)),
        }
    } else {
        None
    };
    let referenced_hazard = match check_references(store, caller, m, &fields)? {
        Ok(hazard) => hazard,
        Err(reason) => return Ok(Err(reason)),
    };

    let stamp = m.hlc.clamped(now_ms.saturating_add(MAX_DRIFT_MS));
    clock.observe(&stamp, now_ms);
    let client_time = i64::try_from(m.hlc.wall)
        .ok()
        .and_then(Timestamp::from_millis);
    let created = existing.is_none();
    let current = existing.map(|e| e.state).unwrap_or_default();

    if m.collection == Collection::HazardActions {
        let (Some(hazard), Some(action)) = (referenced_hazard, action) else {
            return Ok(reject(RejectCode::MissingField, "hazard_id is required"));
        };
        return apply_hazard_action(
            store,
            caller,
            m,
            fields,
            action,
            hazard,
            stamp,
            now_ms,
            clock,
            client_time,
        );
    }

    let base = if m.collection.is_append_only() {
        Default::default()
    } else {
        m.base.clone()
    };
    let mut outcome = apply_edit(
        &current,
        Edit {
            fields: &fields,
            base: &base,
            hlc: &stamp,
        },
    );
    if created && m.collection == Collection::Hazards {
        let server = clock.tick(now_ms);
        outcome.state.set(
            "status",
            Value::String(HazardStatus::Reported.as_str().into()),
            server,
        );
        outcome.changed.push("status".into());
    }
    let conflicts: Vec<String> = outcome.conflicts.iter().map(|c| c.field.clone()).collect();
    for c in outcome.conflicts {
        let seq = in_stream.then_some(m.seq);
        store.save_conflict(conflict_record(m, caller.device, seq, c, now))?;
    }
    if created || !outcome.changed.is_empty() {
        store.save(RecordWrite {
            collection: m.collection,
            id: m.record_id,
            grid_id: m.grid_id,
            state: &outcome.state,
            created,
            changed: &outcome.changed,
            device: Some(caller.device),
            client_time,
        })?;
    }
    Ok(Ok(conflicts))
}

fn conflict_record(
    m: &Mutation,
    device: DeviceId,
    incoming_seq: Option<u64>,
    c: FieldConflict,
    at: Timestamp,
) -> ConflictRecord {
    ConflictRecord {
        id: ConflictId::new(),
        collection: m.collection,
        record_id: m.record_id,
        grid_id: m.grid_id,
        current_device: c.current.version.node.clone(),
        field: c.field,
        current: c.current,
        incoming: c.incoming,
        winner: c.winner,
        incoming_device: device,
        incoming_seq,
        at,
    }
}

/// The fields that name another record, which must exist in the same grid.
fn references(collection: Collection, fields: &Fields) -> Vec<(Collection, &Value)> {
    let refs: &[(&str, Collection)] = match collection {
        Collection::TrackPoints => &[("patrol_id", Collection::Patrols)],
        Collection::Visits => &[("household_id", Collection::Households)],
        Collection::Needs => &[
            ("household_id", Collection::Households),
            ("visit_id", Collection::Visits),
        ],
        Collection::HazardActions => &[("hazard_id", Collection::Hazards)],
        _ => &[],
    };
    let mut out: Vec<(Collection, &Value)> = refs
        .iter()
        .filter_map(|(f, c)| fields.get(*f).filter(|v| !v.is_null()).map(|v| (*c, v)))
        .collect();
    if collection == Collection::Attachments {
        let owner = fields
            .get("owner_collection")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Collection>().ok());
        if let (Some(c), Some(v)) = (owner, fields.get("owner_id")) {
            out.push((c, v));
        }
    }
    out
}

/// Check that referenced records exist in the mutation's grid (and, for a department, that a
/// referenced hazard is dispatched to it). Returns the referenced hazard of a hazard action.
fn check_references<S: Store>(
    store: &mut S,
    caller: &Caller,
    m: &Mutation,
    fields: &Fields,
) -> Result<Result<Option<StoredRecord>, Reason>, S::Error> {
    let mut hazard = None;
    for (collection, value) in references(m.collection, fields) {
        let Some(id) = value.as_str().and_then(|s| s.parse::<RecordId>().ok()) else {
            continue;
        };
        match store.load(collection, id)? {
            None => {
                return Ok(reject(
                    RejectCode::NotFound,
                    format!("no {collection} record {id}"),
                ))
            }
            Some(r) if r.grid_id != m.grid_id => {
                return Ok(reject(
                    RejectCode::InvalidValue,
                    format!("{collection} record {id} belongs to another grid"),
                ))
            }
            Some(r)
                if caller.role == Role::Department
                    && collection == Collection::Hazards
                    && !dispatched_to(&r, caller) =>
            {
                return Ok(reject(
                    RejectCode::OutOfScope,
                    "this hazard is not dispatched to your department",
                ));
            }
            Some(r) => {
                if collection == Collection::Hazards {
                    hazard = Some(r);
                }
            }
        }
    }
    Ok(Ok(hazard))
}

/// Role and parameter checks of a hazard action, which do not depend on the hazard.
fn check_action(caller: &Caller, fields: &Fields) -> Result<HazardAction, Reason> {
    let input = action_input(fields);
    let Some(action) = input.action else {
        return reject(RejectCode::InvalidValue, "unknown action");
    };
    if !crate::workflow::may_take(caller.role, action) {
        return reject(
            RejectCode::Forbidden,
            format!("a {} may not {action} a hazard", caller.role),
        );
    }
    check_params(action, &input)?;
    Ok(action)
}

fn dispatched_to(hazard: &StoredRecord, caller: &Caller) -> bool {
    let assigned = hazard.state.value("assignee_department").as_str();
    assigned.is_some() && assigned == caller.department.as_deref()
}

/// The workflow fields of a stored hazard.
pub fn workflow_state(hazard: &RecordState, submitted: bool) -> WorkflowState {
    let text = |f: &str| hazard.value(f).as_str().map(str::to_owned);
    WorkflowState {
        status: text("status")
            .and_then(|s| s.parse().ok())
            .or(Some(HazardStatus::Reported)),
        assignee_department: text("assignee_department"),
        due_at: text("due_at").and_then(|s| Timestamp::parse(&s)),
        submitted,
    }
}

/// An action's parameters from its (validated) fields.
pub fn action_input(fields: &Fields) -> ActionInput {
    let text = |f: &str| fields.get(f).and_then(Value::as_str).map(str::to_owned);
    ActionInput {
        action: text("action").and_then(|s| s.parse().ok()),
        note: text("note"),
        department: text("department"),
        due_at: text("due_at").and_then(|s| Timestamp::parse(&s)),
    }
}

fn opt_text(v: Option<String>) -> Value {
    v.map_or(Value::Null, Value::String)
}

#[allow(clippy::too_many_arguments)]
fn apply_hazard_action<S: Store>(
    store: &mut S,
    caller: &Caller,
    m: &Mutation,
    mut fields: Fields,
    action: HazardAction,
    hazard: StoredRecord,
    stamp: Hlc,
    now_ms: u64,
    clock: &mut HlcClock,
    client_time: Option<Timestamp>,
) -> Result<Outcome, S::Error> {
    let input = action_input(&fields);
    let Some(hazard_id) = fields
        .get("hazard_id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<RecordId>().ok())
    else {
        return Ok(reject(RejectCode::MissingField, "hazard_id is required"));
    };
    let submitted = action == HazardAction::Submit && store.hazard_submitted(hazard_id)?;
    let state = workflow_state(&hazard.state, submitted);

    let server = clock.tick(now_ms);
    match decide(&state, action, caller.role, &input) {
        Verdict::Forbidden(reason) => return Ok(reject(RejectCode::Forbidden, reason)),
        Verdict::NoEffect(reason) => {
            fields.insert("effect".into(), Value::String("no_effect".into()));
            fields.insert("reason".into(), Value::String(reason));
        }
        Verdict::Applied(next) => {
            fields.insert("effect".into(), Value::String("applied".into()));
            fields.insert("reason".into(), Value::Null);
            let mut hazard_state = hazard.state.clone();
            let mut changed = Vec::new();
            let derived = [
                (
                    "status",
                    opt_text(next.status.map(|s| s.as_str().to_owned())),
                ),
                (
                    "assignee_department",
                    opt_text(next.assignee_department.clone()),
                ),
                ("due_at", opt_text(next.due_at.map(|t| t.to_rfc3339()))),
            ];
            for (field, value) in derived {
                if hazard_state.value(field) != &value {
                    set_after(&mut hazard_state, field, value, &server);
                    changed.push(field.to_string());
                }
            }
            if !changed.is_empty() {
                store.save(RecordWrite {
                    collection: Collection::Hazards,
                    id: hazard_id,
                    grid_id: hazard.grid_id,
                    state: &hazard_state,
                    created: false,
                    changed: &changed,
                    device: Some(caller.device),
                    client_time,
                })?;
            }
        }
    }
    let mut record = RecordState::default();
    for (field, value) in fields {
        let version = if matches!(field.as_str(), "effect" | "reason") {
            server.clone()
        } else {
            stamp.clone()
        };
        record.set(field, value, version);
    }
    let changed: Vec<String> = record.0.keys().cloned().collect();
    store.save(RecordWrite {
        collection: Collection::HazardActions,
        id: m.record_id,
        grid_id: m.grid_id,
        state: &record,
        created: true,
        changed: &changed,
        device: Some(caller.device),
        client_time,
    })?;
    Ok(Ok(vec![]))
}

/// Set a server-owned field with a version above whatever it had (the server's wall clock may
/// trail a stamp it accepted within the allowed drift).
pub fn set_after(state: &mut RecordState, field: &str, value: Value, stamp: &Hlc) {
    let version = match state.get(field) {
        Some(cur) if &cur.version >= stamp => cur.version.successor(&stamp.node),
        _ => stamp.clone(),
    };
    state.set(field, value, version);
}

/// A stored record as a pull change: every field of the collection present (`null` when
/// unset), with the versions of those written.
pub fn to_change(
    collection: Collection,
    id: RecordId,
    grid_id: GridId,
    state: &RecordState,
) -> Change {
    let mut fields = Fields::new();
    for spec in collection.fields() {
        fields.insert(spec.name.into(), state.value(spec.name).clone());
    }
    Change {
        collection,
        id,
        grid_id,
        deleted: state.value("deleted") == &Value::Bool(true),
        fields,
        versions: state.versions(),
    }
}

/// The state a pulled change describes.
pub fn from_change(change: &Change) -> RecordState {
    RecordState::from_parts(&change.fields, &change.versions)
}
