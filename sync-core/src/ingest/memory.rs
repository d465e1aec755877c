//! An in-memory [`Store`]: the server's push rules and a gap-free pull over plain maps. It is
//! the in-process hub of the replica property tests and a reference for the real server's
//! store; it is not a production server.

use std::collections::{BTreeMap, HashMap};

use super::{to_change, Caller, ConflictRecord, RecordWrite, Store, StoredRecord};
use crate::collection::Collection;
use crate::cursor::PullCursor;
use crate::ids::{DeviceId, GridId, RecordId, UserId};
use crate::merge::RecordState;
use crate::time::Timestamp;
use crate::wire::{Mutation, PullResponse, Reason, Scope};
use crate::workflow::Role;

#[derive(Clone, Debug)]
struct Row {
    grid_id: GridId,
    state: RecordState,
    change_seq: u64,
}

/// Everything the hub holds. Cloning it snapshots a transaction's starting point.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    records: BTreeMap<(Collection, RecordId), Row>,
    /// Per grid: change counter → record, the pull index.
    changes: HashMap<GridId, BTreeMap<u64, (Collection, RecordId)>>,
    counters: HashMap<GridId, u64>,
    last_seq: HashMap<DeviceId, u64>,
    rejections: HashMap<(DeviceId, u64), Reason>,
    /// The grids each user may write; supervisors and admins reach every grid.
    pub grants: HashMap<UserId, Vec<GridId>>,
    pub conflicts: Vec<ConflictRecord>,
    /// Every rejected mutation with its reason, in order.
    pub rejected: Vec<(Mutation, Reason)>,
    pub hazard_submits: HashMap<RecordId, bool>,
}

impl MemoryStore {
    pub fn grant(&mut self, user: UserId, grid: GridId) {
        let grids = self.grants.entry(user).or_default();
        if !grids.contains(&grid) {
            grids.push(grid);
        }
    }

    pub fn revoke(&mut self, user: UserId, grid: GridId) {
        if let Some(g) = self.grants.get_mut(&user) {
            g.retain(|x| *x != grid);
        }
    }

    pub fn grids_of(&self, user: UserId) -> Vec<GridId> {
        self.grants.get(&user).cloned().unwrap_or_default()
    }

    pub fn record(&self, collection: Collection, id: RecordId) -> Option<(GridId, &RecordState)> {
        self.records
            .get(&(collection, id))
            .map(|r| (r.grid_id, &r.state))
    }

    /// Every record of a grid (for comparing exports).
    pub fn records_of(
        &self,
        grid: GridId,
    ) -> impl Iterator<Item = (Collection, RecordId, &RecordState)> {
        self.records
            .iter()
            .filter(move |(_, r)| r.grid_id == grid)
            .map(|((c, id), r)| (*c, *id, &r.state))
    }

    /// Changes of `grids` after `cursor`, at most `limit`, in per-grid counter order.
    pub fn pull(
        &self,
        grids: &[GridId],
        cursor: &PullCursor,
        limit: usize,
        now: Timestamp,
    ) -> PullResponse {
        let mut next = cursor.clone();
        next.retain_grids(grids);
        let mut changes = Vec::new();
        let mut has_more = false;
        for grid in grids {
            let Some(index) = self.changes.get(grid) else {
                continue;
            };
            for (seq, (collection, id)) in index.range(cursor.get(*grid) + 1..) {
                if changes.len() >= limit {
                    has_more = true;
                    break;
                }
                if let Some(row) = self.records.get(&(*collection, *id)) {
                    changes.push(to_change(*collection, *id, row.grid_id, &row.state));
                }
                next.set(*grid, *seq);
            }
        }
        PullResponse {
            changes,
            cursor: next.to_string(),
            has_more,
            server_time: now,
            server_hlc: None,
            scope: Some(Scope {
                grid_ids: grids.to_vec(),
            }),
        }
    }
}

impl Store for MemoryStore {
    type Error = std::convert::Infallible;

    fn last_seq(&mut self, device: DeviceId) -> Result<u64, Self::Error> {
        Ok(self.last_seq.get(&device).copied().unwrap_or(0))
    }

    fn set_last_seq(&mut self, device: DeviceId, seq: u64) -> Result<(), Self::Error> {
        self.last_seq.insert(device, seq);
        Ok(())
    }

    fn conflicted_fields(
        &mut self,
        device: DeviceId,
        seq: u64,
    ) -> Result<Vec<String>, Self::Error> {
        Ok(self
            .conflicts
            .iter()
            .filter(|c| c.incoming_device == device && c.incoming_seq == Some(seq))
            .map(|c| c.field.clone())
            .collect())
    }

    fn rejection(&mut self, device: DeviceId, seq: u64) -> Result<Option<Reason>, Self::Error> {
        Ok(self.rejections.get(&(device, seq)).cloned())
    }

    fn save_rejection(
        &mut self,
        caller: &Caller,
        mutation: &Mutation,
        reason: &Reason,
        _at: Timestamp,
    ) -> Result<(), Self::Error> {
        self.rejections
            .insert((caller.device, mutation.seq), reason.clone());
        self.rejected.push((mutation.clone(), reason.clone()));
        Ok(())
    }

    fn grid_in_scope(&mut self, caller: &Caller, grid: GridId) -> Result<bool, Self::Error> {
        Ok(match caller.role {
            Role::Supervisor | Role::Admin | Role::Department => true,
            Role::Worker => self
                .grants
                .get(&caller.user)
                .is_some_and(|g| g.contains(&grid)),
        })
    }

    fn load(
        &mut self,
        collection: Collection,
        id: RecordId,
    ) -> Result<Option<StoredRecord>, Self::Error> {
        Ok(self.records.get(&(collection, id)).map(|r| StoredRecord {
            grid_id: r.grid_id,
            state: r.state.clone(),
        }))
    }

    fn save(&mut self, write: RecordWrite<'_>) -> Result<(), Self::Error> {
        let counter = self.counters.entry(write.grid_id).or_insert(0);
        *counter += 1;
        let seq = *counter;
        let index = self.changes.entry(write.grid_id).or_default();
        if let Some(old) = self.records.get(&(write.collection, write.id)) {
            index.remove(&old.change_seq);
        }
        index.insert(seq, (write.collection, write.id));
        if write.collection == Collection::HazardActions
            && write.state.value("action").as_str() == Some("submit")
            && write.state.value("effect").as_str() == Some("applied")
        {
            if let Some(h) = write
                .state
                .value("hazard_id")
                .as_str()
                .and_then(|s| s.parse().ok())
            {
                self.hazard_submits.insert(h, true);
            }
        }
        self.records.insert(
            (write.collection, write.id),
            Row {
                grid_id: write.grid_id,
                state: write.state.clone(),
                change_seq: seq,
            },
        );
        Ok(())
    }

    fn save_conflict(&mut self, conflict: ConflictRecord) -> Result<(), Self::Error> {
        self.conflicts.push(conflict);
        Ok(())
    }

    fn hazard_submitted(&mut self, hazard: RecordId) -> Result<bool, Self::Error> {
        Ok(self.hazard_submits.get(&hazard).copied().unwrap_or(false))
    }
}
