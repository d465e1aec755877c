//! Field work: patrols and their track points, visits, needs, attachments' metadata.
//! Records that hang off another record (a point off its patrol, a visit or need off its
//! household, an attachment off its owner) take that record's grid.

use super::error::{ReplicaError, Result};
use super::records::{self, Tracked};
use super::Replica;
use crate::collection::Collection;
use crate::ids::{GridId, RecordId};
use crate::model::{
    Attachment, Need, NeedPatch, NewAttachment, NewNeed, NewPatrol, NewTrackPoint, NewVisit,
    Patrol, PatrolPatch, PatrolStatus, TrackPoint, Visit, VisitPatch,
};
use crate::wire::Fields;

impl Replica {
    /// The grid of a record held here.
    pub(crate) fn grid_of(&self, collection: Collection, id: RecordId) -> Result<GridId> {
        let inner = self.lock();
        records::grid_of(&inner.conn, collection, id)?
            .ok_or(ReplicaError::NotFound { collection, id })
    }

    // Patrols -------------------------------------------------------------------------------

    pub fn start_patrol(&self, grid: GridId, patrol: &NewPatrol) -> Result<RecordId> {
        self.write(|w| {
            let fields = patrol.to_fields(w.now());
            Ok(w.create(Collection::Patrols, grid, &fields, None)?.0)
        })
    }

    /// End a patrol now, optionally with a summary.
    pub fn end_patrol(&self, id: RecordId, summary: Option<String>) -> Result<()> {
        self.write(|w| {
            let patch = PatrolPatch {
                ended_at: Some(w.now()),
                status: Some(PatrolStatus::Ended),
                summary,
            };
            w.edit(
                Collection::Patrols,
                id,
                crate::wire::Op::Upsert,
                &patch.to_fields(),
            )
        })
    }

    pub fn edit_patrol(&self, id: RecordId, patch: &PatrolPatch) -> Result<()> {
        self.edit_fields(Collection::Patrols, id, &patch.to_fields())
    }

    pub fn patrol(&self, id: RecordId) -> Result<Tracked<Patrol>> {
        self.get(id)
    }

    pub fn patrols(&self, grid: GridId) -> Result<Vec<Tracked<Patrol>>> {
        self.list_of(Some(grid))
    }

    /// Append a point to a patrol's route.
    pub fn add_track_point(&self, patrol: RecordId, point: &NewTrackPoint) -> Result<RecordId> {
        self.write(|w| {
            let grid = records::grid_of(&w.tx, Collection::Patrols, patrol)?.ok_or(
                ReplicaError::NotFound {
                    collection: Collection::Patrols,
                    id: patrol,
                },
            )?;
            let fields = point.to_fields(patrol, w.now());
            Ok(w.create(Collection::TrackPoints, grid, &fields, None)?.0)
        })
    }

    /// A patrol's route, in the order the points were recorded.
    pub fn track(&self, patrol: RecordId) -> Result<Vec<TrackPoint>> {
        let mut points: Vec<TrackPoint> = self
            .children_of::<TrackPoint>(patrol)?
            .into_iter()
            .map(|t| t.record)
            .collect();
        points.sort_by_key(|a| (a.recorded_at, a.id));
        Ok(points)
    }

    // Visits --------------------------------------------------------------------------------

    pub fn record_visit(&self, visit: &NewVisit) -> Result<RecordId> {
        self.write(|w| {
            let grid = records::grid_of(&w.tx, Collection::Households, visit.household_id)?.ok_or(
                ReplicaError::NotFound {
                    collection: Collection::Households,
                    id: visit.household_id,
                },
            )?;
            let fields = visit.to_fields(w.now());
            Ok(w.create(Collection::Visits, grid, &fields, None)?.0)
        })
    }

    pub fn edit_visit(&self, id: RecordId, patch: &VisitPatch) -> Result<()> {
        self.edit_fields(Collection::Visits, id, &patch.to_fields())
    }

    pub fn visit(&self, id: RecordId) -> Result<Tracked<Visit>> {
        self.get(id)
    }

    pub fn visits(&self, grid: GridId) -> Result<Vec<Tracked<Visit>>> {
        self.list_of(Some(grid))
    }

    pub fn visits_of(&self, household: RecordId) -> Result<Vec<Tracked<Visit>>> {
        self.children_of(household)
    }

    // Needs ---------------------------------------------------------------------------------

    pub fn add_need(&self, need: &NewNeed) -> Result<RecordId> {
        let grid = self.grid_of(Collection::Households, need.household_id)?;
        self.create(Collection::Needs, grid, &need.to_fields())
    }

    pub fn edit_need(&self, id: RecordId, patch: &NeedPatch) -> Result<()> {
        self.edit_fields(Collection::Needs, id, &patch.to_fields())
    }

    pub fn need(&self, id: RecordId) -> Result<Tracked<Need>> {
        self.get(id)
    }

    pub fn needs(&self, grid: GridId) -> Result<Vec<Tracked<Need>>> {
        self.list_of(Some(grid))
    }

    pub fn needs_of(&self, household: RecordId) -> Result<Vec<Tracked<Need>>> {
        self.children_of(household)
    }

    // Attachments ---------------------------------------------------------------------------

    /// Record an attachment's metadata (the bytes are uploaded separately).
    pub fn add_attachment(&self, attachment: &NewAttachment) -> Result<RecordId> {
        let fields: Fields = attachment.to_fields();
        let grid = self.grid_of(attachment.owner_collection, attachment.owner_id)?;
        self.create(Collection::Attachments, grid, &fields)
    }

    pub fn attachments_of(&self, owner: RecordId) -> Result<Vec<Tracked<Attachment>>> {
        self.children_of(owner)
    }
}
