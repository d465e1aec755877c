//! The collection-independent API: create, edit, delete and read any record by collection,
//! and the typed reads every collection's API is built from. Hazards and hazard actions are
//! routed through [`Replica::report_hazard_fields`] and [`Replica::act_fields`] so that a hazard
//! never exists without its `submit` action and an action always moves the hazard's view.

use std::collections::BTreeMap;

use super::error::{ReplicaError, Result};
use super::records::{self, Filter, RecordView, SyncState, Tracked};
use super::Replica;
use crate::collection::Collection;
use crate::hlc::Hlc;
use crate::ids::{GridId, RecordId};
use crate::model::{from_fields, Record};
use crate::wire::{Fields, Op};

pub(crate) fn typed<T: Record>(view: RecordView) -> Result<Tracked<T>> {
    let record = from_fields::<T>(view.id, view.grid_id, &view.fields)?;
    Ok(Tracked {
        record,
        sync: view.sync,
    })
}

impl Replica {
    /// Create a record of any collection from wire-named fields; returns its id.
    pub fn create(
        &self,
        collection: Collection,
        grid: GridId,
        fields: &Fields,
    ) -> Result<RecordId> {
        match collection {
            Collection::Hazards => self.report_hazard_fields(grid, fields),
            Collection::HazardActions => self.act_fields(Some(grid), fields),
            _ => self.write(|w| Ok(w.create(collection, Some(grid), fields, None)?.0)),
        }
    }

    /// Set fields of a record (an explicit `null` clears a field).
    pub fn edit_fields(&self, collection: Collection, id: RecordId, fields: &Fields) -> Result<()> {
        self.write(|w| w.edit(collection, id, Op::Upsert, fields))
    }

    /// Delete a record (households only; the record stays as a tombstone, `deleted: true`).
    pub fn delete(&self, collection: Collection, id: RecordId) -> Result<()> {
        self.write(|w| w.edit(collection, id, Op::Delete, &Fields::new()))
    }

    /// A record's local view and sync state.
    pub fn record(&self, collection: Collection, id: RecordId) -> Result<RecordView> {
        let inner = self.lock();
        records::read(&inner.conn, collection, id)?.ok_or(ReplicaError::NotFound { collection, id })
    }

    /// The records of a collection held here, of one grid or of all (`None`), sorted by id.
    pub fn list(&self, collection: Collection, grid: Option<GridId>) -> Result<Vec<RecordView>> {
        let inner = self.lock();
        records::list(
            &inner.conn,
            collection,
            grid.map_or(Filter::All, Filter::Grid),
        )
    }

    /// The version of each field a record shows (the `base` its next edit will carry).
    pub fn versions(&self, collection: Collection, id: RecordId) -> Result<BTreeMap<String, Hlc>> {
        let inner = self.lock();
        if records::grid_of(&inner.conn, collection, id)?.is_none() {
            return Err(ReplicaError::NotFound { collection, id });
        }
        records::versions_of(&inner.conn, collection, id)
    }

    /// The sync state of a record, also of one that disappeared because the server rejected
    /// its creation.
    pub fn sync_state(&self, collection: Collection, id: RecordId) -> Result<SyncState> {
        let inner = self.lock();
        records::state_of(&inner.conn, collection, id)?
            .ok_or(ReplicaError::NotFound { collection, id })
    }

    /// A typed record with its sync state.
    pub fn get<T: Record>(&self, id: RecordId) -> Result<Tracked<T>> {
        typed(self.record(T::COLLECTION, id)?)
    }

    /// Typed records of one grid (or all), sorted by id.
    pub fn list_of<T: Record>(&self, grid: Option<GridId>) -> Result<Vec<Tracked<T>>> {
        self.list(T::COLLECTION, grid)?
            .into_iter()
            .map(typed)
            .collect()
    }

    /// Typed records hanging off `parent` (a patrol's points, a household's visits and needs,
    /// a hazard's actions, a record's attachments), sorted by id.
    pub fn children_of<T: Record>(&self, parent: RecordId) -> Result<Vec<Tracked<T>>> {
        let views = {
            let inner = self.lock();
            records::list(&inner.conn, T::COLLECTION, Filter::Parent(parent))?
        };
        views.into_iter().map(typed).collect()
    }
}
