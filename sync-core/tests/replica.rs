//! The replica on its own (no network): every collection's typed API, validation before
//! storage, durability across reopen, the optimistic hazard workflow, sessions, threads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use serde_json::{json, Value};
use support::*;
use sync_core::collection::Collection;
use sync_core::model::*;
use sync_core::replica::{Replica, ReplicaError, SyncState};
use sync_core::wire::{Fields, RejectCode};
use sync_core::workflow::Role;
use sync_core::{Date, GridId, RecordId, Timestamp};

fn fields(v: Value) -> Fields {
    v.as_object().cloned().unwrap()
}

fn code(e: ReplicaError) -> RejectCode {
    match e {
        ReplicaError::Invalid(r) => r.code,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    time: SimTime,
    grid: GridId,
    other: GridId,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    Setup {
        _dir: dir,
        path,
        time: SimTime::new(T0),
        grid: GridId::new(),
        other: GridId::new(),
    }
}

impl Setup {
    fn open(&self, role: Role) -> Replica {
        let r = Replica::open_with(&self.path, Phone::options(&self.time, 0, 7)).unwrap();
        r.set_session(user(1), role, vec![self.grid]).unwrap();
        r
    }
}

fn household(address: &str) -> NewHousehold {
    NewHousehold {
        address: address.into(),
        head_name: Some("王秀兰".into()),
        phone: Some("13800000000".into()),
        members: Some(1),
        tags: vec![HouseholdTag::ElderlyAlone],
        care_level: Some(CareLevel::Key),
        ..Default::default()
    }
}

fn hazard(grid: GridId) -> NewHazard {
    NewHazard {
        grid_id: grid,
        source: Some(HazardSource::Patrol),
        category: HazardCategory::EbikeCharging,
        severity: Severity::High,
        title: "楼道内电瓶车充电".into(),
        description: Some("3号楼2单元一楼".into()),
        lat: Some(31.23),
        lon: Some(121.47),
        address: None,
    }
}

#[test]
fn a_write_is_committed_with_its_outbox_entry_and_survives_reopen() {
    let s = setup();
    let id = {
        let r = s.open(Role::Worker);
        let id = r.add_household(s.grid, &household("幸福路1号")).unwrap();
        assert_eq!(r.status().unwrap().pending, 1);
        id
    };
    let r = Replica::open_with(&s.path, Phone::options(&s.time, 0, 7)).unwrap();
    let h = r.household(id).unwrap();
    assert_eq!(h.record.address, "幸福路1号");
    assert_eq!(h.record.tags, vec![HouseholdTag::ElderlyAlone]);
    assert_eq!(h.sync, SyncState::Pending);
    let st = r.status().unwrap();
    assert_eq!((st.pending, st.acked), (1, 0));
    assert_eq!(st.user_id, Some(user(1)));
    assert_eq!(r.scope().grid_ids, vec![s.grid]);
}

#[test]
fn the_device_id_is_made_once_and_is_a_uuid() {
    let s = setup();
    let a = Replica::open(&s.path).unwrap().device_id();
    let b = Replica::open(&s.path).unwrap().device_id();
    assert_eq!(a, b);
    let fresh = setup();
    assert_ne!(Replica::open(&fresh.path).unwrap().device_id(), a);
}

#[test]
fn households_add_edit_delete_and_list() {
    let s = setup();
    let r = s.open(Role::Worker);
    let a = r.add_household(s.grid, &household("幸福路1号")).unwrap();
    let b = r.add_household(s.grid, &household("幸福路2号")).unwrap();
    r.edit_household(
        a,
        &HouseholdPatch {
            phone: Some("13900000000".into()),
            tags: Some(vec![
                HouseholdTag::Veteran,
                HouseholdTag::ElderlyAlone,
                HouseholdTag::Veteran,
            ]),
            notes: Some("独居，耳背".into()),
            ..Default::default()
        },
    )
    .unwrap();
    r.delete_household(b).unwrap();
    let list = r.households(s.grid).unwrap();
    assert_eq!(list.len(), 2);
    let a_rec = r.household(a).unwrap().record;
    assert_eq!(a_rec.phone.as_deref(), Some("13900000000"));
    assert_eq!(
        a_rec.tags,
        vec![HouseholdTag::ElderlyAlone, HouseholdTag::Veteran]
    );
    assert_eq!(a_rec.head_name.as_deref(), Some("王秀兰"));
    assert!(r.household(b).unwrap().record.deleted);
    assert!(!a_rec.deleted);
    assert!(r.households(s.other).unwrap().is_empty());
    // An explicit null clears a field.
    r.edit_fields(Collection::Households, a, &fields(json!({"notes": null})))
        .unwrap();
    assert_eq!(r.household(a).unwrap().record.notes, None);
    assert_eq!(r.status().unwrap().pending, 5);
    let exported = r.export().unwrap();
    assert_eq!(exported["households"].as_array().unwrap().len(), 2);
    assert!(exported["households"][0]["deleted"].is_boolean());
}

#[test]
fn patrols_track_points_visits_needs_and_attachments() {
    let s = setup();
    let r = s.open(Role::Worker);
    let p = r.start_patrol(s.grid, &NewPatrol::default()).unwrap();
    assert_eq!(r.patrol(p).unwrap().record.status, PatrolStatus::Active);
    assert_eq!(r.patrol(p).unwrap().record.worker_id, Some(user(1)));
    for i in 0..3 {
        s.time.advance(10_000);
        r.add_track_point(
            p,
            &NewTrackPoint {
                recorded_at: None,
                lat: 31.0 + f64::from(i) / 1000.0,
                lon: 121.0,
                accuracy_m: Some(5.0),
            },
        )
        .unwrap();
    }
    r.end_patrol(p, Some("巡查正常".into())).unwrap();
    let patrol = r.patrol(p).unwrap().record;
    assert_eq!(patrol.status, PatrolStatus::Ended);
    assert!(patrol.ended_at.unwrap() > patrol.started_at);
    let track = r.track(p).unwrap();
    assert_eq!(track.len(), 3);
    assert!(track
        .windows(2)
        .all(|w| w[0].recorded_at < w[1].recorded_at));
    assert_eq!(r.patrols(s.grid).unwrap().len(), 1);

    let h = r.add_household(s.grid, &household("幸福路3号")).unwrap();
    let v = r
        .record_visit(&NewVisit {
            household_id: h,
            visited_at: None,
            mode: VisitMode::InPerson,
            outcome: VisitOutcome::Met,
            summary: Some("身体不错".into()),
            follow_up_due: Date::parse("2026-12-01"),
            lat: Some(31.0),
            lon: Some(121.0),
        })
        .unwrap();
    r.edit_visit(
        v,
        &VisitPatch {
            summary: Some("身体不错，需要助餐".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let visit = r.visit(v).unwrap().record;
    assert_eq!(visit.grid_id, s.grid);
    assert_eq!(visit.worker_id, Some(user(1)));
    assert_eq!(r.visits_of(h).unwrap().len(), 1);
    assert_eq!(r.visits(s.grid).unwrap().len(), 1);

    let n = r
        .add_need(&NewNeed {
            household_id: h,
            visit_id: Some(v),
            category: NeedCategory::ElderlyCare,
            description: "助餐".into(),
            urgency: Some(NeedUrgency::High),
            due_on: None,
        })
        .unwrap();
    assert_eq!(r.need(n).unwrap().record.status, NeedStatus::Open);
    r.edit_need(
        n,
        &NeedPatch {
            status: Some(NeedStatus::Resolved),
            resolution: Some("已对接社区食堂".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.need(n).unwrap().record.status, NeedStatus::Resolved);
    assert_eq!(r.needs_of(h).unwrap().len(), 1);
    assert_eq!(r.needs(s.grid).unwrap().len(), 1);

    let att = r
        .add_attachment(&NewAttachment {
            owner_collection: Collection::Visits,
            owner_id: v,
            sha256: "ab".repeat(32),
            media_type: "image/jpeg".into(),
            bytes: 123_456,
            taken_at: Some(s.time.now()),
            lat: None,
            lon: None,
        })
        .unwrap();
    let atts = r.attachments_of(v).unwrap();
    assert_eq!(atts.len(), 1);
    assert_eq!(atts[0].record.id, att);
    assert_eq!(atts[0].record.grid_id, s.grid);

    // Append-only records cannot be edited.
    let point = track[0].id;
    let e = r
        .edit_fields(Collection::TrackPoints, point, &fields(json!({"lat": 1.0})))
        .unwrap_err();
    assert_eq!(code(e), RejectCode::Immutable);

    let exported = r.export().unwrap();
    for (c, n) in [
        ("patrols", 1),
        ("track_points", 3),
        ("visits", 1),
        ("needs", 1),
        ("households", 1),
        ("attachments", 1),
        ("hazards", 0),
    ] {
        assert_eq!(exported[c].as_array().unwrap().len(), n, "{c}");
    }
}

#[test]
fn invalid_writes_are_refused_and_store_nothing() {
    let s = setup();
    let r = s.open(Role::Worker);
    let h = r.add_household(s.grid, &household("幸福路1号")).unwrap();
    let before = r.status().unwrap().pending;
    let too_long = NewHousehold {
        address: "长".repeat(201),
        ..Default::default()
    };
    assert_eq!(
        code(r.add_household(s.grid, &too_long).unwrap_err()),
        RejectCode::InvalidValue
    );
    assert_eq!(
        code(
            r.add_household(s.other, &household("别的网格"))
                .unwrap_err()
        ),
        RejectCode::OutOfScope
    );
    assert_eq!(
        code(
            r.edit_household(
                h,
                &HouseholdPatch {
                    members: Some(-1),
                    ..Default::default()
                }
            )
            .unwrap_err()
        ),
        RejectCode::InvalidValue
    );
    let hz = r.report_hazard(&hazard(s.grid)).unwrap();
    let before_hazard = r.status().unwrap().pending;
    assert_eq!(before_hazard, before + 2);
    assert_eq!(
        code(
            r.edit_fields(
                Collection::Hazards,
                hz,
                &fields(json!({"status": "closed"}))
            )
            .unwrap_err()
        ),
        RejectCode::ServerOwned
    );
    assert_eq!(
        code(
            r.edit_fields(
                Collection::Hazards,
                hz,
                &fields(json!({"reporter_id": user(9).to_string()}))
            )
            .unwrap_err()
        ),
        RejectCode::AuthorMismatch
    );
    let mut dispatch = NewHazardAction::new(HazardAction::Dispatch);
    dispatch.department = Some("消防".into());
    assert_eq!(
        code(r.act_on_hazard(hz, &dispatch).unwrap_err()),
        RejectCode::Forbidden
    );
    assert_eq!(
        code(
            r.act_on_hazard(hz, &NewHazardAction::new(HazardAction::SelfHandle))
                .unwrap_err()
        ),
        RejectCode::MissingField
    );
    assert_eq!(
        code(
            r.act_on_hazard(hz, &NewHazardAction::new(HazardAction::Submit))
                .unwrap_err()
        ),
        RejectCode::InvalidValue
    );
    let missing = RecordId::new();
    assert!(matches!(
        r.add_track_point(
            missing,
            &NewTrackPoint {
                recorded_at: None,
                lat: 0.0,
                lon: 0.0,
                accuracy_m: None
            }
        ),
        Err(ReplicaError::Invalid(r)) if r.code == RejectCode::NotFound
    ));
    assert_eq!(
        code(
            r.create(
                Collection::TrackPoints,
                s.grid,
                &fields(json!({"patrol_id": missing.to_string(), "recorded_at": "2026-11-21T08:30:00Z", "lat": 1.0, "lon": 1.0}))
            )
            .unwrap_err()
        ),
        RejectCode::NotFound
    );
    assert!(matches!(
        r.household(missing),
        Err(ReplicaError::NotFound { .. })
    ));
    assert!(matches!(
        r.delete(Collection::Needs, missing),
        Err(ReplicaError::NotFound { .. })
    ));
    assert_eq!(r.status().unwrap().pending, before_hazard);
    // Nothing half-written either: the refused hazard edit left the view alone.
    assert_eq!(
        r.hazard(hz).unwrap().record.status,
        Some(HazardStatus::Reported)
    );
}

#[test]
fn a_reported_hazard_and_its_workflow_are_shown_optimistically() {
    let s = setup();
    let r = s.open(Role::Worker);
    let hz = r.report_hazard(&hazard(s.grid)).unwrap();
    let shown = r.hazard(hz).unwrap();
    assert_eq!(shown.record.status, Some(HazardStatus::Reported));
    assert_eq!(shown.record.reporter_id, Some(user(1)));
    assert_eq!(shown.sync, SyncState::Pending);
    let timeline = r.hazard_timeline(hz).unwrap();
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].record.action, HazardAction::Submit);
    assert_eq!(timeline[0].record.effect, None);
    assert_eq!(r.status().unwrap().pending, 2);

    s.time.advance(1000);
    r.act_on_hazard(
        hz,
        &NewHazardAction::new(HazardAction::SelfHandle).with_note("已劝离"),
    )
    .unwrap();
    assert_eq!(
        r.hazard(hz).unwrap().record.status,
        Some(HazardStatus::Disposed)
    );
    s.time.advance(1000);
    r.act_on_hazard(hz, &NewHazardAction::new(HazardAction::VerifyPass))
        .unwrap();
    assert_eq!(
        r.hazard(hz).unwrap().record.status,
        Some(HazardStatus::Closed)
    );
    // An action that does not fit is recorded (the server decides) but moves nothing here.
    s.time.advance(1000);
    r.act_on_hazard(hz, &NewHazardAction::new(HazardAction::VerifyFail))
        .unwrap();
    assert_eq!(
        r.hazard(hz).unwrap().record.status,
        Some(HazardStatus::Closed)
    );
    r.edit_hazard(
        hz,
        &HazardPatch {
            severity: Some(Severity::Critical),
            ..Default::default()
        },
    )
    .unwrap();
    let h = r.hazard(hz).unwrap().record;
    assert_eq!(
        (h.severity, h.status),
        (Severity::Critical, Some(HazardStatus::Closed))
    );
    assert_eq!(r.hazard_timeline(hz).unwrap().len(), 4);
    assert_eq!(r.hazards(s.grid).unwrap().len(), 1);
}

#[test]
fn a_supervisor_sees_dispatch_with_department_and_due_date() {
    let s = setup();
    let r = s.open(Role::Supervisor);
    let hz = r.report_hazard(&hazard(s.grid)).unwrap();
    r.act_on_hazard(hz, &NewHazardAction::new(HazardAction::Accept))
        .unwrap();
    let due = Timestamp(T0 + 3 * DAY);
    r.act_on_hazard(
        hz,
        &NewHazardAction {
            action: HazardAction::Dispatch,
            note: None,
            department: Some("消防".into()),
            due_at: Some(due),
        },
    )
    .unwrap();
    let h = r.hazard(hz).unwrap().record;
    assert_eq!(h.status, Some(HazardStatus::Dispatched));
    assert_eq!(h.assignee_department.as_deref(), Some("消防"));
    assert_eq!(h.due_at, Some(due));
    r.act_on_hazard(
        hz,
        &NewHazardAction::new(HazardAction::Return).with_note("不属于本部门"),
    )
    .unwrap();
    let h = r.hazard(hz).unwrap().record;
    assert_eq!(h.status, Some(HazardStatus::Accepted));
    assert_eq!(h.assignee_department, None);
    // The export shows the derived fields.
    let e = r.export().unwrap();
    assert_eq!(e["hazards"][0]["status"], json!("accepted"));
    assert_eq!(e["hazards"][0]["assignee_department"], Value::Null);
    assert_eq!(e["hazards"][0]["due_at"], json!(due.to_rfc3339()));
    assert_eq!(e["hazard_actions"].as_array().unwrap().len(), 4);
    assert_eq!(e["hazard_actions"][0]["effect"], Value::Null);
}

#[test]
fn another_user_cannot_log_in_over_unsent_changes() {
    let s = setup();
    let r = s.open(Role::Worker);
    r.add_household(s.grid, &household("幸福路1号")).unwrap();
    assert!(matches!(
        r.set_session(user(2), Role::Worker, vec![s.grid]),
        Err(ReplicaError::OtherUser)
    ));
    // The same user logging in again (new grids) is fine and keeps the data.
    r.set_session(user(1), Role::Worker, vec![s.grid, s.other])
        .unwrap();
    assert_eq!(r.status().unwrap().pending, 1);
    assert_eq!(r.scope().grid_ids, vec![s.grid, s.other]);
}

#[test]
fn before_login_writes_are_kept_and_authors_left_to_the_server() {
    let s = setup();
    let r = Replica::open_with(&s.path, Phone::options(&s.time, 0, 7)).unwrap();
    assert_eq!(r.scope().user_id, None);
    let p = r.start_patrol(s.grid, &NewPatrol::default()).unwrap();
    assert_eq!(r.patrol(p).unwrap().record.worker_id, None);
    assert_eq!(r.status().unwrap().pending, 1);
    // Syncing needs a session.
    let err = sync_core::sync::sync(&r, &mut NoServer, &Default::default()).unwrap_err();
    assert!(matches!(
        err,
        sync_core::sync::SyncError::Replica(ReplicaError::NotLoggedIn)
    ));
}

struct NoServer;

impl sync_core::sync::Transport for NoServer {
    fn push(
        &mut self,
        _: &sync_core::wire::PushRequest,
    ) -> Result<sync_core::wire::PushResponse, sync_core::sync::TransportError> {
        panic!("no request may be made")
    }
    fn pull(
        &mut self,
        _: Option<&str>,
        _: usize,
    ) -> Result<sync_core::wire::PullResponse, sync_core::sync::TransportError> {
        panic!("no request may be made")
    }
}

#[test]
fn the_replica_is_shared_across_threads_and_seqs_stay_contiguous() {
    let s = setup();
    let r = Arc::new(s.open(Role::Worker));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let r = r.clone();
            let grid = s.grid;
            std::thread::spawn(move || {
                for i in 0..10 {
                    r.add_household(grid, &household(&format!("{t}号楼{i}室")))
                        .unwrap();
                    let _ = r.households(grid).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(r.status().unwrap().pending, 40);
    assert_eq!(r.households(s.grid).unwrap().len(), 40);
}

#[test]
fn generic_records_carry_fields_versions_and_sync_state() {
    let s = setup();
    let r = s.open(Role::Worker);
    let id = r
        .create(
            Collection::Households,
            s.grid,
            &fields(json!({"address": "幸福路9号", "members": 3})),
        )
        .unwrap();
    let v = r.record(Collection::Households, id).unwrap();
    assert_eq!(v.fields["members"], json!(3));
    let versions = r.versions(Collection::Households, id).unwrap();
    assert_eq!(versions["members"].node, r.device_id().to_string());
    assert_eq!(versions.len(), 2);
    assert_eq!(v.sync, SyncState::Pending);
    assert_eq!(r.list(Collection::Households, None).unwrap().len(), 1);
    assert_eq!(
        r.sync_state(Collection::Households, id).unwrap(),
        SyncState::Pending
    );
    // Creating a hazard generically also records its submission.
    let hz = r
        .create(
            Collection::Hazards,
            s.grid,
            &fields(json!({"title": "井盖缺失", "category": "other", "severity": "medium"})),
        )
        .unwrap();
    assert_eq!(r.hazard_timeline(hz).unwrap().len(), 1);
}

#[test]
fn a_supervisor_whose_login_lists_no_grids_can_work_until_the_first_pull_states_the_scope() {
    let s = setup();
    let r = Replica::open_with(&s.path, Phone::options(&s.time, 0, 7)).unwrap();
    r.set_session(user(5), Role::Supervisor, vec![]).unwrap();
    let hz = r.report_hazard(&hazard(s.other)).unwrap();
    r.act_on_hazard(hz, &NewHazardAction::new(HazardAction::Accept))
        .unwrap();
    assert_eq!(
        r.hazard(hz).unwrap().record.status,
        Some(HazardStatus::Accepted)
    );
}
