//! The push rules, exercised on the in-memory store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};

use super::memory::MemoryStore;
use super::*;
use crate::wire::{Mutation, Op};

const NOW: i64 = 1_795_249_800_000; // 2026-11-21T08:30:00Z

struct World {
    store: MemoryStore,
    clock: HlcClock,
    grid: GridId,
    other_grid: GridId,
}

struct Phone {
    caller: Caller,
    seq: u64,
}

impl World {
    fn new() -> Self {
        Self {
            store: MemoryStore::default(),
            clock: HlcClock::new("server"),
            grid: GridId::new(),
            other_grid: GridId::new(),
        }
    }

    fn worker(&mut self) -> Phone {
        let caller = Caller {
            user: UserId::new(),
            role: Role::Worker,
            device: DeviceId::new(),
            department: None,
        };
        self.store.grant(caller.user, self.grid);
        Phone { caller, seq: 0 }
    }

    fn with_role(&mut self, role: Role, department: Option<&str>) -> Phone {
        let caller = Caller {
            user: UserId::new(),
            role,
            device: DeviceId::new(),
            department: department.map(str::to_owned),
        };
        Phone { caller, seq: 0 }
    }

    /// Push atomically, as the server does (one transaction).
    fn push(
        &mut self,
        phone: &Phone,
        mutations: Vec<Mutation>,
    ) -> Result<PushResponse, IngestError<std::convert::Infallible>> {
        let mut tx = self.store.clone();
        let req = PushRequest {
            device_id: phone.caller.device,
            mutations,
            pending_count: None,
            app_version: None,
        };
        let resp = ingest(
            &mut tx,
            &phone.caller,
            &req,
            Timestamp(NOW),
            &mut self.clock,
        )?;
        self.store = tx;
        Ok(resp)
    }

    fn state(&self, c: Collection, id: RecordId) -> RecordState {
        self.store
            .record(c, id)
            .map(|(_, s)| s.clone())
            .expect("record on the server")
    }
}

impl Phone {
    fn stamp(&self, wall: i64) -> Hlc {
        Hlc::new(wall as u64, 0, self.caller.device.to_string())
    }

    fn mutation(
        &mut self,
        c: Collection,
        id: RecordId,
        grid: GridId,
        fields: Value,
        base: &[(&str, Option<Hlc>)],
        wall: i64,
    ) -> Mutation {
        self.seq += 1;
        Mutation {
            seq: self.seq,
            id: crate::ids::MutationId::new(),
            collection: c,
            record_id: id,
            grid_id: grid,
            op: Op::Upsert,
            hlc: self.stamp(wall),
            fields: fields.as_object().cloned().unwrap(),
            base: base
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }
}

fn statuses(resp: &PushResponse) -> Vec<ResultStatus> {
    resp.results.iter().map(|r| r.status).collect()
}

#[test]
fn replayed_pushes_are_duplicates_and_change_nothing() {
    let mut w = World::new();
    let mut p = w.worker();
    let id = RecordId::new();
    let m = p.mutation(
        Collection::Households,
        id,
        w.grid,
        json!({"address": "幸福路1号"}),
        &[],
        NOW,
    );
    let first = w.push(&p, vec![m.clone()]).unwrap();
    assert_eq!(statuses(&first), vec![ResultStatus::Applied]);
    let before = w.store.clone();
    let again = w.push(&p, vec![m]).unwrap();
    assert_eq!(statuses(&again), vec![ResultStatus::Duplicate]);
    assert_eq!(again.last_applied_seq, 1);
    assert_eq!(
        w.state(Collection::Households, id),
        before.record(Collection::Households, id).unwrap().1.clone()
    );
}

#[test]
fn a_gap_in_seq_refuses_the_whole_batch() {
    let mut w = World::new();
    let mut p = w.worker();
    let a = p.mutation(
        Collection::Households,
        RecordId::new(),
        w.grid,
        json!({"address": "a"}),
        &[],
        NOW,
    );
    p.seq += 1; // skip one
    let c = p.mutation(
        Collection::Households,
        RecordId::new(),
        w.grid,
        json!({"address": "c"}),
        &[],
        NOW,
    );
    let err = w.push(&p, vec![a, c]).unwrap_err();
    assert!(matches!(
        err,
        IngestError::SeqGap {
            expected_after: 1,
            got: 3
        }
    ));
    assert_eq!(w.store.records_of(w.grid).count(), 0, "nothing processed");
}

#[test]
fn out_of_scope_is_rejected_and_the_rest_of_the_batch_applies() {
    let mut w = World::new();
    let mut p = w.worker();
    let outside = RecordId::new();
    let inside = RecordId::new();
    let grid = w.grid;
    let other = w.other_grid;
    let bad = p.mutation(
        Collection::Households,
        outside,
        other,
        json!({"address": "别人的网格"}),
        &[],
        NOW,
    );
    let invalid = p.mutation(
        Collection::Households,
        RecordId::new(),
        grid,
        json!({"address": "x", "members": -1}),
        &[],
        NOW,
    );
    let good = p.mutation(
        Collection::Households,
        inside,
        grid,
        json!({"address": "ok"}),
        &[],
        NOW,
    );
    let resp = w.push(&p, vec![bad, invalid, good]).unwrap();
    assert_eq!(
        statuses(&resp),
        vec![
            ResultStatus::Rejected,
            ResultStatus::Rejected,
            ResultStatus::Applied
        ]
    );
    assert_eq!(
        resp.results[0].reason.as_ref().unwrap().code,
        RejectCode::OutOfScope
    );
    assert_eq!(
        resp.results[1].reason.as_ref().unwrap().code,
        RejectCode::InvalidValue
    );
    assert_eq!(resp.last_applied_seq, 3);
    assert!(w.store.record(Collection::Households, outside).is_none());
    assert!(w.store.record(Collection::Households, inside).is_some());
    // A phone that lost that response learns the reason from the duplicate answer.
    let replay = w.push(&p, vec![p_mutation_copy(&resp, 1)]).unwrap();
    assert_eq!(replay.results[0].status, ResultStatus::Duplicate);
    assert_eq!(
        replay.results[0].reason.as_ref().unwrap().code,
        RejectCode::OutOfScope
    );
}

fn p_mutation_copy(resp: &PushResponse, seq: u64) -> Mutation {
    Mutation {
        seq,
        id: resp.results[(seq - 1) as usize].id,
        collection: Collection::Households,
        record_id: RecordId::new(),
        grid_id: GridId::new(),
        op: Op::Upsert,
        hlc: Hlc::new(1, 0, "x"),
        fields: Default::default(),
        base: Default::default(),
    }
}

#[test]
fn concurrent_edits_are_conflicts_with_both_values_kept() {
    let mut w = World::new();
    let mut a = w.worker();
    let mut b = w.worker();
    let id = RecordId::new();
    let grid = w.grid;
    let create = a.mutation(
        Collection::Households,
        id,
        grid,
        json!({"address": "a", "notes": "原始"}),
        &[],
        NOW - 10_000,
    );
    w.push(&a, vec![create]).unwrap();
    let v0 = w
        .state(Collection::Households, id)
        .get("notes")
        .unwrap()
        .version
        .clone();
    let ea = a.mutation(
        Collection::Households,
        id,
        grid,
        json!({"notes": "A改"}),
        &[("notes", Some(v0.clone()))],
        NOW - 5_000,
    );
    let eb = b.mutation(
        Collection::Households,
        id,
        grid,
        json!({"notes": "B改"}),
        &[("notes", Some(v0))],
        NOW - 6_000,
    );
    w.push(&a, vec![ea]).unwrap();
    let resp = w.push(&b, vec![eb.clone()]).unwrap();
    assert_eq!(resp.results[0].conflicts, vec!["notes".to_string()]);
    // A phone that lost that response learns the conflict from the duplicate answer.
    let replay = w.push(&b, vec![eb]).unwrap();
    assert_eq!(replay.results[0].status, ResultStatus::Duplicate);
    assert_eq!(replay.results[0].conflicts, vec!["notes".to_string()]);
    // A's stamp is later, so A's value stays; B's is kept in the conflict record.
    assert_eq!(
        w.state(Collection::Households, id).value("notes"),
        &json!("A改")
    );
    let c = &w.store.conflicts[0];
    assert_eq!(
        (c.current.value.clone(), c.incoming.value.clone(), c.winner),
        (json!("A改"), json!("B改"), Winner::Current)
    );
    assert_eq!(c.incoming_device, b.caller.device);
    assert_eq!(c.current_device, a.caller.device.to_string());
}

#[test]
fn a_clock_48h_behind_editing_the_current_version_wins() {
    let mut w = World::new();
    let mut a = w.worker();
    let mut b = w.worker();
    let id = RecordId::new();
    let grid = w.grid;
    let m = a.mutation(
        Collection::Households,
        id,
        grid,
        json!({"address": "a", "phone": "1"}),
        &[],
        NOW,
    );
    w.push(&a, vec![m]).unwrap();
    let v = w
        .state(Collection::Households, id)
        .get("phone")
        .unwrap()
        .version
        .clone();
    let behind = NOW - 48 * 3600 * 1000;
    let m = b.mutation(
        Collection::Households,
        id,
        grid,
        json!({"phone": "2"}),
        &[("phone", Some(v.clone()))],
        behind,
    );
    let resp = w.push(&b, vec![m]).unwrap();
    assert!(resp.results[0].conflicts.is_empty());
    let after = w.state(Collection::Households, id);
    assert_eq!(after.value("phone"), &json!("2"));
    assert!(after.get("phone").unwrap().version > v);
}

#[test]
fn a_stamp_from_2099_is_clamped() {
    let mut w = World::new();
    let mut p = w.worker();
    let id = RecordId::new();
    let grid = w.grid;
    let y2099 = 4_070_908_800_000;
    let m = p.mutation(
        Collection::Households,
        id,
        grid,
        json!({"address": "a"}),
        &[],
        y2099,
    );
    let resp = w.push(&p, vec![m]).unwrap();
    let version = w
        .state(Collection::Households, id)
        .get("address")
        .unwrap()
        .version
        .clone();
    assert_eq!(version.wall, NOW as u64 + MAX_DRIFT_MS);
    assert!(
        resp.server_hlc > version,
        "the server's clock has observed the clamped stamp"
    );
    // A later honest edit by another phone that saw it is not beaten by the far-future phone.
    let mut q = w.worker();
    let m = q.mutation(
        Collection::Households,
        id,
        grid,
        json!({"address": "b"}),
        &[("address", Some(version))],
        NOW + 1,
    );
    let resp = w.push(&q, vec![m]).unwrap();
    assert_eq!(statuses(&resp), vec![ResultStatus::Applied]);
    assert_eq!(
        w.state(Collection::Households, id).value("address"),
        &json!("b")
    );
}

#[test]
fn the_stamp_must_come_from_the_pushing_device() {
    let mut w = World::new();
    let mut p = w.worker();
    let grid = w.grid;
    let mut m = p.mutation(
        Collection::Households,
        RecordId::new(),
        grid,
        json!({"address": "a"}),
        &[],
        NOW,
    );
    m.hlc.node = DeviceId::new().to_string();
    let resp = w.push(&p, vec![m]).unwrap();
    assert_eq!(
        resp.results[0].reason.as_ref().unwrap().code,
        RejectCode::Malformed
    );
}

#[test]
fn server_owned_author_and_append_only_rules() {
    let mut w = World::new();
    let mut p = w.worker();
    let grid = w.grid;
    let hazard = RecordId::new();
    let owned = p.mutation(
        Collection::Hazards,
        hazard,
        grid,
        json!({"title": "t", "category": "gas", "severity": "low", "status": "closed"}),
        &[],
        NOW,
    );
    let forged = p.mutation(Collection::Hazards, RecordId::new(), grid, json!({"title": "t", "category": "gas", "severity": "low", "reporter_id": UserId::new().to_string()}), &[], NOW);
    let patrol = RecordId::new();
    let start = p.mutation(
        Collection::Patrols,
        patrol,
        grid,
        json!({"started_at": "2026-11-21T08:00:00Z", "status": "active"}),
        &[],
        NOW,
    );
    let point = RecordId::new();
    let pt = p.mutation(Collection::TrackPoints, point, grid, json!({"patrol_id": patrol.to_string(), "recorded_at": "2026-11-21T08:01:00Z", "lat": 31.2, "lon": 121.4}), &[], NOW);
    let pt_again = p.mutation(
        Collection::TrackPoints,
        point,
        grid,
        json!({"lat": 0.0}),
        &[],
        NOW,
    );
    let orphan = p.mutation(Collection::TrackPoints, RecordId::new(), grid, json!({"patrol_id": RecordId::new().to_string(), "recorded_at": "2026-11-21T08:01:00Z", "lat": 1.0, "lon": 1.0}), &[], NOW);
    let resp = w
        .push(&p, vec![owned, forged, start, pt, pt_again, orphan])
        .unwrap();
    let codes: Vec<_> = resp
        .results
        .iter()
        .map(|r| r.reason.as_ref().map(|x| x.code))
        .collect();
    assert_eq!(
        codes,
        vec![
            Some(RejectCode::ServerOwned),
            Some(RejectCode::AuthorMismatch),
            None,
            None,
            Some(RejectCode::Immutable),
            Some(RejectCode::NotFound)
        ]
    );
    let patrol_state = w.state(Collection::Patrols, patrol);
    assert_eq!(
        patrol_state.value("worker_id"),
        &json!(p.caller.user.to_string()),
        "author filled in by the server"
    );
    assert_eq!(
        w.state(Collection::TrackPoints, point).value("lat"),
        &json!(31.2)
    );
}

#[test]
fn hazard_workflow_over_push_with_a_stale_offline_action() {
    let mut w = World::new();
    let mut worker = w.worker();
    let mut sup = w.with_role(Role::Supervisor, None);
    let mut dept = w.with_role(Role::Department, Some("消防"));
    let mut other_dept = w.with_role(Role::Department, Some("燃气"));
    let grid = w.grid;
    let h = RecordId::new();
    let act = |p: &mut Phone, action: &str, extra: Value| {
        let mut f =
            json!({"hazard_id": h.to_string(), "action": action, "at": "2026-11-21T08:30:00Z"});
        f.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap());
        p.mutation(
            Collection::HazardActions,
            RecordId::new(),
            grid,
            f,
            &[],
            NOW,
        )
    };
    let report = worker.mutation(
        Collection::Hazards,
        h,
        grid,
        json!({"title": "楼道电瓶车充电", "category": "ebike_charging", "severity": "high"}),
        &[],
        NOW,
    );
    let submit = act(&mut worker, "submit", json!({}));
    let resp = w.push(&worker, vec![report, submit]).unwrap();
    assert_eq!(
        statuses(&resp),
        vec![ResultStatus::Applied, ResultStatus::Applied]
    );
    assert_eq!(
        w.state(Collection::Hazards, h).value("status"),
        &json!("reported")
    );

    // The worker, offline, will try to handle it on the spot; meanwhile the supervisor dispatches.
    let stale = act(&mut worker, "self_handle", json!({"note": "已劝离"}));
    let forbidden = act(&mut worker, "dispatch", json!({"department": "消防"}));
    let a1 = act(&mut sup, "accept", json!({}));
    let a2 = act(
        &mut sup,
        "dispatch",
        json!({"department": "消防", "due_at": "2026-11-23T08:30:00Z"}),
    );
    w.push(&sup, vec![a1, a2]).unwrap();
    let resp = w.push(&worker, vec![stale.clone(), forbidden]).unwrap();
    assert_eq!(
        statuses(&resp),
        vec![ResultStatus::Applied, ResultStatus::Rejected]
    );
    assert_eq!(
        resp.results[1].reason.as_ref().unwrap().code,
        RejectCode::Forbidden
    );
    let recorded = w.state(Collection::HazardActions, stale.record_id);
    assert_eq!(recorded.value("effect"), &json!("no_effect"));
    assert!(recorded
        .value("reason")
        .as_str()
        .unwrap()
        .contains("dispatched"));
    let hazard = w.state(Collection::Hazards, h);
    assert_eq!(
        (hazard.value("status"), hazard.value("assignee_department")),
        (&json!("dispatched"), &json!("消防"))
    );
    assert_eq!(hazard.value("due_at"), &json!("2026-11-23T08:30:00.000Z"));

    // Only the department it was dispatched to may act on it.
    let wrong = act(&mut other_dept, "sign_for", json!({}));
    assert_eq!(
        w.push(&other_dept, vec![wrong]).unwrap().results[0]
            .reason
            .as_ref()
            .unwrap()
            .code,
        RejectCode::OutOfScope
    );
    let sign = act(&mut dept, "sign_for", json!({}));
    let done = act(&mut dept, "report_done", json!({"note": "已清理"}));
    w.push(&dept, vec![sign, done]).unwrap();
    let verify = act(&mut worker, "verify_pass", json!({}));
    w.push(&worker, vec![verify]).unwrap();
    assert_eq!(
        w.state(Collection::Hazards, h).value("status"),
        &json!("closed")
    );

    // A second submit has no effect; a reject without a reason is refused outright.
    let resubmit = act(&mut worker, "submit", json!({}));
    let reason_less = act(&mut sup, "reject", json!({}));
    let r1 = w.push(&worker, vec![resubmit.clone()]).unwrap();
    assert_eq!(
        w.state(Collection::HazardActions, resubmit.record_id)
            .value("effect"),
        &json!("no_effect")
    );
    assert_eq!(r1.results[0].status, ResultStatus::Applied);
    assert_eq!(
        w.push(&sup, vec![reason_less]).unwrap().results[0]
            .reason
            .as_ref()
            .unwrap()
            .code,
        RejectCode::MissingField
    );
}

#[test]
fn pull_is_per_grid_and_resumable() {
    let mut w = World::new();
    let mut p = w.worker();
    let grid = w.grid;
    for i in 0..5 {
        let m = p.mutation(
            Collection::Households,
            RecordId::new(),
            grid,
            json!({"address": format!("{i}号")}),
            &[],
            NOW,
        );
        w.push(&p, vec![m]).unwrap();
    }
    let mut cursor = crate::cursor::PullCursor::default();
    let mut seen = 0;
    loop {
        let page = w.store.pull(&[grid], &cursor, 2, Timestamp(NOW));
        seen += page.changes.len();
        cursor = page.cursor.parse().unwrap();
        if !page.has_more {
            break;
        }
    }
    assert_eq!(seen, 5);
    assert!(w
        .store
        .pull(&[grid], &cursor, 2, Timestamp(NOW))
        .changes
        .is_empty());
    assert!(w
        .store
        .pull(&[w.other_grid], &Default::default(), 10, Timestamp(NOW))
        .changes
        .is_empty());
}
