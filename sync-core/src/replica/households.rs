//! Households: add, edit, delete (a tombstone: `deleted: true`), read and list.

use super::error::Result;
use super::records::Tracked;
use super::Replica;
use crate::collection::Collection;
use crate::ids::{GridId, RecordId};
use crate::model::{Household, HouseholdPatch, NewHousehold};

impl Replica {
    pub fn add_household(&self, grid: GridId, household: &NewHousehold) -> Result<RecordId> {
        self.create(Collection::Households, grid, &household.to_fields())
    }

    pub fn edit_household(&self, id: RecordId, patch: &HouseholdPatch) -> Result<()> {
        self.edit_fields(Collection::Households, id, &patch.to_fields())
    }

    pub fn delete_household(&self, id: RecordId) -> Result<()> {
        self.delete(Collection::Households, id)
    }

    pub fn household(&self, id: RecordId) -> Result<Tracked<Household>> {
        self.get(id)
    }

    /// The households of a grid (deleted ones included, flagged), sorted by id.
    pub fn households(&self, grid: GridId) -> Result<Vec<Tracked<Household>>> {
        self.list_of(Some(grid))
    }
}
