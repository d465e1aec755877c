//! Field work: patrols and their track points, visits, needs, attachments' metadata.
//! Records that hang off another record (a point off its patrol, a visit or need off its
//! household, an attachment off its owner) take that record's grid.

use super::error::Result;
use super::records::Tracked;
use super::Replica;
use crate::collection::Collection;
use crate::ids::{GridId, RecordId};
use crate::model::{
    Attachment, Need, NeedPatch, NewAttachment, NewNeed, NewPatrol, NewTrackPoint, NewVisit,
    Patrol, PatrolPatch, PatrolStatus, TrackPoint, Visit, VisitPatch,
};
use crate::wire::Fields;

impl Replica {
    // Patrols -------------------------------------------------------------------------------

    pub fn start_patrol(&self, grid: GridId, patrol: &NewPatrol) -> Result<RecordId> {
        self.write(|w| {
            let fields = patrol.to_fields(w.now());
            Ok(w.create(Collection::Patrols, Some(grid), &fields, None)?.0)
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
            let fields = point.to_fields(patrol, w.now());
            Ok(w.create(Collection::TrackPoints, None, &fields, None)?.0)
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
            let fields = visit.to_fields(w.now());
            Ok(w.create(Collection::Visits, None, &fields, None)?.0)
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
        self.write(|w| {
            Ok(w.create(Collection::Needs, None, &need.to_fields(), None)?
                .0)
        })
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
        self.write(|w| Ok(w.create(Collection::Attachments, None, &fields, None)?.0))
    }

    pub fn attachments_of(&self, owner: RecordId) -> Result<Vec<Tracked<Attachment>>> {
        self.children_of(owner)
    }
}
