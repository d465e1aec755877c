//! Hazards (隐患/事件): report (the hazard and its `submit` action, one transaction), edit the
//! descriptive fields, act on the workflow, read with the action timeline.
//!
//! The view's `status`, `assignee_department` and `due_at` are optimistic: the server state
//! folded with the actions not yet pulled, decided for the session's role (see
//! [`super::records::recompute`]). An action the role may never take, or missing a required
//! parameter, is refused here at once (the server would reject it); an action that does not
//! fit the status shown is recorded — the server decides where it lands, and the timeline shows
//! its verdict (`effect`, `reason`) once pulled.

use serde_json::Value;

use super::error::{ReplicaError, Result};
use super::records::{self, Tracked};
use super::Replica;
use crate::collection::Collection;
use crate::ids::{GridId, RecordId};
use crate::ingest::action_input;
use crate::model::{Hazard, HazardActionRecord, HazardPatch, NewHazard, NewHazardAction};
use crate::wire::{Fields, Reason, RejectCode};
use crate::workflow::{check_params, may_take, HazardAction, HazardStatus};

impl Replica {
    /// Report a hazard: records the hazard and its `submit` action; returns the hazard's id.
    pub fn report_hazard(&self, hazard: &NewHazard) -> Result<RecordId> {
        self.report_hazard_fields(hazard.grid_id, &hazard.to_fields())
    }

    pub(crate) fn report_hazard_fields(&self, grid: GridId, fields: &Fields) -> Result<RecordId> {
        self.write(|w| {
            let mut derived = Fields::new();
            derived.insert(
                "status".into(),
                Value::String(HazardStatus::Reported.as_str().into()),
            );
            let (id, _) = w.create(Collection::Hazards, Some(grid), fields, Some(&derived))?;
            let submit = NewHazardAction::new(HazardAction::Submit).to_fields(id, w.now());
            w.create(Collection::HazardActions, Some(grid), &submit, None)?;
            Ok(id)
        })
    }

    pub fn edit_hazard(&self, id: RecordId, patch: &HazardPatch) -> Result<()> {
        self.edit_fields(Collection::Hazards, id, &patch.to_fields())
    }

    /// Act on a hazard's workflow; returns the action's id.
    pub fn act_on_hazard(&self, hazard: RecordId, action: &NewHazardAction) -> Result<RecordId> {
        let now = self.now();
        self.act_fields(None, &action.to_fields(hazard, now))
    }

    /// Record an action (`grid`: `None` = the hazard's).
    pub(crate) fn act_fields(&self, grid: Option<GridId>, fields: &Fields) -> Result<RecordId> {
        let input = action_input(fields);
        self.write(|w| {
            if let Some(action) = input.action {
                let role = w.session.role;
                if action == HazardAction::Submit {
                    return Err(ReplicaError::Invalid(Reason::new(
                        RejectCode::InvalidValue,
                        "a hazard is submitted when it is reported",
                    )));
                }
                if !may_take(role, action) {
                    return Err(ReplicaError::Invalid(Reason::new(
                        RejectCode::Forbidden,
                        format!("a {role} may not {action} a hazard"),
                    )));
                }
                check_params(action, &input).map_err(ReplicaError::Invalid)?;
            }
            let (id, validated) = w.create(Collection::HazardActions, grid, fields, None)?;
            if let Some(hazard) = validated
                .get("hazard_id")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<RecordId>().ok())
            {
                let session = w.session;
                records::recompute(
                    &w.tx,
                    Collection::Hazards,
                    hazard,
                    session.role,
                    session.scope(),
                )?;
            }
            Ok(id)
        })
    }

    pub fn hazard(&self, id: RecordId) -> Result<Tracked<Hazard>> {
        self.get(id)
    }

    pub fn hazards(&self, grid: GridId) -> Result<Vec<Tracked<Hazard>>> {
        self.list_of(Some(grid))
    }

    /// A hazard's actions, by the time they were taken (`at`), then id. `effect` and `reason`
    /// are `None` until the server's verdict has been pulled.
    pub fn hazard_timeline(&self, hazard: RecordId) -> Result<Vec<Tracked<HazardActionRecord>>> {
        let mut actions = self.children_of::<HazardActionRecord>(hazard)?;
        actions.sort_by_key(|a| (a.record.at, a.record.id));
        Ok(actions)
    }
}
