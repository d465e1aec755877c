//! Sync scenarios through the in-process hub: propagation, per-record sync states, conflicts,
//! lying clocks, rejections that do not block the queue, lost responses, crashes mid-sync,
//! resumable pulls, scope withdrawal, the hazard verdicts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::{json, Value};
use support::*;
use sync_core::collection::Collection;
use sync_core::ingest::MAX_DRIFT_MS;
use sync_core::model::*;
use sync_core::replica::{ReplicaError, SyncState};
use sync_core::sync::{sync, SyncError, SyncOptions, Transport, TransportError};
use sync_core::wire::{PullResponse, PushRequest, PushResponse, RejectCode};
use sync_core::{GridId, RecordId, Timestamp};

fn household(address: &str) -> NewHousehold {
    NewHousehold {
        address: address.into(),
        head_name: Some("李建国".into()),
        members: Some(2),
        ..Default::default()
    }
}

fn notes(text: &str) -> HouseholdPatch {
    HouseholdPatch {
        notes: Some(text.into()),
        ..Default::default()
    }
}

fn hazard(grid: GridId) -> NewHazard {
    NewHazard {
        grid_id: grid,
        source: Some(HazardSource::Patrol),
        category: HazardCategory::FireSafety,
        severity: Severity::High,
        title: "消防通道堵塞".into(),
        description: None,
        lat: None,
        lon: None,
        address: Some("幸福路8号".into()),
    }
}

fn hub_value(w: &World, c: Collection, id: RecordId, field: &str) -> Value {
    let hub = w.hub.borrow();
    let (_, state) = hub.store.record(c, id).expect("record on the hub");
    state.value(field).clone()
}

#[test]
fn a_change_reaches_the_other_phones_of_its_grid_and_only_them() {
    let w = World::new();
    let a = w.phone("a", w.w1, 0);
    let b = w.phone("b", w.w2, 0);
    let sup = w.phone("sup", w.sup, 0);
    let h = a
        .replica
        .add_household(w.g1, &household("幸福路1号"))
        .unwrap();
    let other = b
        .replica
        .add_household(w.g2, &household("和平路2号"))
        .unwrap();
    let s = a.sync().unwrap();
    assert_eq!((s.pushed, s.applied, s.duplicates, s.pending), (1, 1, 0, 0));
    assert!(s.rejected.is_empty() && s.conflicts.is_empty());
    assert_eq!(a.replica.household(h).unwrap().sync, SyncState::Synced);
    assert_eq!(a.replica.status().unwrap().acked, 0);
    assert!(a.replica.status().unwrap().last_sync_at.is_some());
    b.sync().unwrap();
    sup.sync().unwrap();
    a.sync().unwrap();
    assert_eq!(b.replica.household(h).unwrap().record.address, "幸福路1号");
    assert_eq!(b.replica.household(h).unwrap().sync, SyncState::Synced);
    assert_eq!(
        sup.replica.household(other).unwrap().record.address,
        "和平路2号"
    );
    // Worker 1 holds grid 1 only: grid 2's household never reaches it.
    assert!(matches!(
        a.replica.household(other),
        Err(ReplicaError::NotFound { .. })
    ));
    for p in [&a, &b, &sup] {
        p.assert_converged();
    }
}

#[test]
fn every_collection_converges_including_hazard_verdicts_and_tombstones() {
    let w = World::new();
    let a = w.phone("a", w.w1, 0);
    let sup = w.phone("sup", w.sup, 0);
    let h = a
        .replica
        .add_household(w.g1, &household("幸福路1号"))
        .unwrap();
    let v = a
        .replica
        .record_visit(&NewVisit {
            household_id: h,
            visited_at: None,
            mode: VisitMode::Phone,
            outcome: VisitOutcome::NotHome,
            summary: None,
            follow_up_due: None,
            lat: None,
            lon: None,
        })
        .unwrap();
    a.replica
        .add_need(&NewNeed {
            household_id: h,
            visit_id: Some(v),
            category: NeedCategory::Medical,
            description: "需要上门体检".into(),
            urgency: None,
            due_on: None,
        })
        .unwrap();
    let p = a.replica.start_patrol(w.g1, &NewPatrol::default()).unwrap();
    a.replica
        .add_track_point(
            p,
            &NewTrackPoint {
                recorded_at: None,
                lat: 31.2,
                lon: 121.4,
                accuracy_m: None,
            },
        )
        .unwrap();
    a.replica.end_patrol(p, None).unwrap();
    let hz = a.replica.report_hazard(&hazard(w.g1)).unwrap();
    a.replica
        .add_attachment(&NewAttachment {
            owner_collection: Collection::Hazards,
            owner_id: hz,
            sha256: "cd".repeat(32),
            media_type: "image/jpeg".into(),
            bytes: 2048,
            taken_at: None,
            lat: None,
            lon: None,
        })
        .unwrap();
    let gone = a.replica.add_household(w.g1, &household("拆迁户")).unwrap();
    a.replica.delete_household(gone).unwrap();
    let s = a.sync().unwrap();
    assert_eq!(s.applied, 11);
    sup.sync().unwrap();
    a.sync().unwrap();
    // The server's verdict on the submit is now on the phone.
    let timeline = a.replica.hazard_timeline(hz).unwrap();
    assert_eq!(timeline[0].record.effect, Some(Effect::Applied));
    assert!(sup.replica.household(gone).unwrap().record.deleted);
    a.assert_converged();
    sup.assert_converged();
    let e = a.replica.export().unwrap();
    for c in Collection::ALL {
        assert!(!e[c.as_str()].as_array().unwrap().is_empty(), "{c}");
    }
}

#[test]
fn concurrent_edits_are_a_conflict_and_both_values_are_kept() {
    let w = World::new();
    let a = w.phone("a", w.w1, 0);
    let b = w.phone("b", w.w2, 0);
    let h = a
        .replica
        .add_household(w.g1, &household("幸福路1号"))
        .unwrap();
    a.sync().unwrap();
    b.sync().unwrap();
    // Both edit the same field offline, neither seeing the other.
    w.time.advance(1_000);
    a.replica.edit_household(h, &notes("A: 腿脚不便")).unwrap();
    w.time.advance(1_000);
    b.replica
        .edit_household(h, &notes("B: 子女在外地"))
        .unwrap();
    assert!(a.sync().unwrap().conflicts.is_empty());
    let s = b.sync().unwrap();
    assert_eq!(s.conflicts.len(), 1);
    assert_eq!(s.conflicts[0].fields, vec!["notes".to_string()]);
    assert_eq!(
        b.replica.household(h).unwrap().sync,
        SyncState::Conflict {
            fields: vec!["notes".into()]
        }
    );
    assert_eq!(b.replica.status().unwrap().conflicts.len(), 1);
    {
        let hub = w.hub.borrow();
        assert_eq!(hub.store.conflicts.len(), 1);
        let c = &hub.store.conflicts[0];
        assert_eq!(c.field, "notes");
        assert_eq!(c.current.value, json!("A: 腿脚不便"));
        assert_eq!(c.incoming.value, json!("B: 子女在外地"));
    }
    // B's stamp is later: B wins deterministically, everywhere.
    assert_eq!(
        hub_value(&w, Collection::Households, h, "notes"),
        json!("B: 子女在外地")
    );
    a.sync().unwrap();
    a.assert_converged();
    b.assert_converged();
    // B edits the field again, now knowingly: applied without conflict, the mark goes away.
    b.replica.edit_household(h, &notes("B: 已核实")).unwrap();
    let s = b.sync().unwrap();
    assert!(s.conflicts.is_empty());
    assert_eq!(b.replica.household(h).unwrap().sync, SyncState::Synced);
    assert_eq!(w.hub.borrow().store.conflicts.len(), 1);
}

#[test]
fn edits_of_different_fields_merge_without_conflict() {
    let w = World::new();
    let a = w.phone("a", w.w1, 0);
    let b = w.phone("b", w.w2, 0);
    let h = a
        .replica
        .add_household(w.g1, &household("幸福路1号"))
        .unwrap();
    a.sync().unwrap();
    b.sync().unwrap();
    a.replica.edit_household(h, &notes("A")).unwrap();
    b.replica
        .edit_household(
            h,
            &HouseholdPatch {
                phone: Some("13811112222".into()),
                ..Default::default()
            },
        )
        .unwrap();
    a.sync().unwrap();
    b.sync().unwrap();
    a.sync().unwrap();
    let merged = a.replica.household(h).unwrap().record;
    assert_eq!(
        (merged.notes.as_deref(), merged.phone.as_deref()),
        (Some("A"), Some("13811112222"))
    );
    assert!(w.hub.borrow().store.conflicts.is_empty());
    a.assert_converged();
    b.assert_converged();
}

#[test]
fn a_phone_48_hours_behind_editing_on_top_of_the_current_version_wins() {
    let w = World::new();
    let slow = w.phone("slow", w.w1, -48 * HOUR);
    let b = w.phone("b", w.w2, 0);
    let h = b
        .replica
        .add_household(w.g1, &household("幸福路1号"))
        .unwrap();
    b.replica.edit_household(h, &notes("B 的记录")).unwrap();
    b.sync().unwrap();
    slow.sync().unwrap();
    // The slow phone saw B's version and edits on top of it; its own stamp is two days older.
    w.time.advance(60_000);
    slow.replica
        .edit_household(h, &notes("慢手机的更正"))
        .unwrap();
    let s = slow.sync().unwrap();
    assert!(s.conflicts.is_empty());
    assert_eq!(
        hub_value(&w, Collection::Households, h, "notes"),
        json!("慢手机的更正")
    );
    assert!(w.hub.borrow().store.conflicts.is_empty());
    b.sync().unwrap();
    assert_eq!(
        b.replica.household(h).unwrap().record.notes.as_deref(),
        Some("慢手机的更正")
    );
    // The winning version is above B's even though the slow phone's clock is behind it.
    let versions = b.replica.versions(Collection::Households, h).unwrap();
    assert_eq!(versions["notes"].node, slow.replica.device_id().to_string());
    assert!(versions["notes"] > versions["address"]);
    slow.assert_converged();
    b.assert_converged();
}

#[test]
fn a_clock_two_days_ahead_is_clamped_and_cannot_win_forever() {
    let w = World::new();
    let fast = w.phone("fast", w.w1, 2 * DAY);
    let b = w.phone("b", w.w2, 0);
    let h = fast
        .replica
        .add_household(w.g1, &household("幸福路1号"))
        .unwrap();
    fast.sync().unwrap();
    let limit = u64::try_from(w.time.now().millis()).unwrap() + MAX_DRIFT_MS;
    let hub_version = {
        let hub = w.hub.borrow();
        hub.store
            .record(Collection::Households, h)
            .unwrap()
            .1
            .get("address")
            .unwrap()
            .version
            .clone()
    };
    assert!(
        hub_version.wall <= limit,
        "stamp {hub_version} not clamped to {limit}"
    );
    // The phone adopted the clamped version.
    let mine = fast.replica.versions(Collection::Households, h).unwrap();
    assert_eq!(mine["address"], hub_version);
    // A phone with a correct clock editing concurrently an hour later wins on time order …
    b.sync().unwrap();
    fast.replica.edit_household(h, &notes("fast")).unwrap();
    fast.sync().unwrap();
    w.time.advance(HOUR);
    let c = w.phone("c", w.w2, 0);
    c.sync().unwrap();
    // … b edits from its stale view (concurrent with fast's edit): a conflict that b wins,
    // because fast's stamp was clamped to the server's time plus the allowed drift.
    b.replica
        .edit_household(h, &notes("b, an hour later"))
        .unwrap();
    let s = b.sync().unwrap();
    assert_eq!(s.conflicts.len(), 1);
    assert_eq!(
        hub_value(&w, Collection::Households, h, "notes"),
        json!("b, an hour later")
    );
    fast.sync().unwrap();
    fast.assert_converged();
    b.assert_converged();
}

#[test]
fn a_rejected_mutation_does_not_block_the_queue_and_its_reason_stays_visible() {
    let w = World::new();
    let b = w.phone("b", w.w2, 0);
    b.sync().unwrap();
    // Grid 2 is withdrawn on the server while the phone is offline.
    w.hub.borrow_mut().store.revoke(w.w2, w.g2);
    let before = b
        .replica
        .add_household(w.g1, &household("幸福路1号"))
        .unwrap();
    let refused = b
        .replica
        .add_household(w.g2, &household("和平路2号"))
        .unwrap();
    let after = b
        .replica
        .add_household(w.g1, &household("幸福路3号"))
        .unwrap();
    b.replica
        .edit_household(after, &notes("后面的修改"))
        .unwrap();
    // The push goes through, the pull fails: the rejection is visible before any purge.
    let mut link = Faulty::new(b.link(), 1);
    link.pull_script.push_back(Fault::DropRequest);
    let err = sync(&b.replica, &mut link, &SyncOptions::default()).unwrap_err();
    assert!(err.is_retryable());
    let st = b.replica.status().unwrap();
    assert_eq!((st.pending, st.acked), (0, 3));
    assert_eq!(st.rejections.len(), 1);
    assert_eq!(st.rejections[0].code, RejectCode::OutOfScope);
    assert_eq!(st.rejections[0].record_id, refused);
    assert_eq!(
        st.rejections[0].fields.as_ref().unwrap()["address"],
        json!("和平路2号")
    );
    assert!(st.last_error.is_some());
    // The refused creation is undone locally; its state stays readable.
    assert!(matches!(
        b.replica.household(refused),
        Err(ReplicaError::NotFound { .. })
    ));
    assert!(matches!(
        b.replica
            .sync_state(Collection::Households, refused)
            .unwrap(),
        SyncState::Rejected {
            code: RejectCode::OutOfScope,
            ..
        }
    ));
    // Everything behind it reached the server.
    for id in [before, after] {
        assert!(w
            .hub
            .borrow()
            .store
            .record(Collection::Households, id)
            .is_some());
    }
    assert_eq!(
        hub_value(&w, Collection::Households, after, "notes"),
        json!("后面的修改")
    );
    // The next sync completes; the reason is still listed (without the withdrawn grid's data).
    let s = b.sync().unwrap();
    assert_eq!(s.pushed, 0);
    let st = b.replica.status().unwrap();
    assert_eq!(st.rejections.len(), 1);
    assert_eq!(st.rejections[0].fields, None);
    assert_eq!(st.last_error, None);
    b.assert_converged();
    b.replica.dismiss_rejection(st.rejections[0].seq).unwrap();
    assert!(b.replica.status().unwrap().rejections.is_empty());
}

#[test]
fn a_rejected_edit_returns_the_record_to_the_server_state() {
    let w = World::new();
    let b = w.phone("b", w.w2, 0);
    let h = b
        .replica
        .add_household(w.g2, &household("和平路2号"))
        .unwrap();
    b.sync().unwrap();
    w.hub.borrow_mut().store.revoke(w.w2, w.g2);
    b.replica.edit_household(h, &notes("来不及了")).unwrap();
    assert_eq!(
        b.replica.household(h).unwrap().record.notes.as_deref(),
        Some("来不及了")
    );
    let mut link = Faulty::new(b.link(), 1);
    link.pull_script.push_back(Fault::DropRequest);
    assert!(sync(&b.replica, &mut link, &SyncOptions::default()).is_err());
    let shown = b.replica.household(h).unwrap();
    assert_eq!(shown.record.notes, None);
    assert!(matches!(
        shown.sync,
        SyncState::Rejected {
            code: RejectCode::OutOfScope,
            ..
        }
    ));
    // The next complete pull purges the withdrawn grid.
    let s = b.sync().unwrap();
    assert_eq!(s.purged, 1);
    assert!(b.replica.households(w.g2).unwrap().is_empty());
}

#[test]
fn a_withdrawn_grid_is_purged_at_the_next_sync_and_restored_when_returned() {
    let w = World::new();
    let b = w.phone("b", w.w2, 0);
    let keep = b
        .replica
        .add_household(w.g1, &household("幸福路1号"))
        .unwrap();
    let h2 = b
        .replica
        .add_household(w.g2, &household("和平路2号"))
        .unwrap();
    let hz = b.replica.report_hazard(&hazard(w.g2)).unwrap();
    b.sync().unwrap();
    assert_eq!(
        b.replica.export().unwrap()["hazards"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    w.hub.borrow_mut().store.revoke(w.w2, w.g2);
    let s = b.sync().unwrap();
    assert_eq!(s.purged, 3);
    assert_eq!(b.replica.scope().grid_ids, vec![w.g1]);
    assert!(matches!(
        b.replica.household(h2),
        Err(ReplicaError::NotFound { .. })
    ));
    assert!(matches!(
        b.replica.hazard(hz),
        Err(ReplicaError::NotFound { .. })
    ));
    assert!(b.replica.household(keep).is_ok());
    let e = b.replica.export().unwrap();
    assert!(e.to_string().find("和平路2号").is_none());
    // Nor is it left readable in the replica's files (a lost phone must not leak it).
    let secret = "和平路2号".as_bytes();
    for suffix in ["", "-wal"] {
        let mut path = w.path("b").into_os_string();
        path.push(suffix);
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            !bytes.windows(secret.len()).any(|win| win == secret),
            "purged data is still in {path:?}"
        );
    }
    b.assert_converged();
    // Writing there is now refused on the phone.
    assert!(matches!(
        b.replica.add_household(w.g2, &household("x")),
        Err(ReplicaError::Invalid(r)) if r.code == RejectCode::OutOfScope
    ));
    // Given back, the grid is pulled again from its beginning.
    w.hub.borrow_mut().store.grant(w.w2, w.g2);
    b.sync().unwrap();
    assert_eq!(b.replica.household(h2).unwrap().record.address, "和平路2号");
    b.assert_converged();
}

#[test]
fn a_lost_push_response_is_answered_duplicate_and_nothing_doubles() {
    let w = World::new();
    let b = w.phone("b", w.w2, 0);
    b.sync().unwrap();
    w.hub.borrow_mut().store.revoke(w.w2, w.g2);
    let ids: Vec<RecordId> = (0..3)
        .map(|i| {
            b.replica
                .add_household(w.g1, &household(&format!("{i}号")))
                .unwrap()
        })
        .collect();
    let p = b.replica.start_patrol(w.g1, &NewPatrol::default()).unwrap();
    b.replica
        .add_track_point(
            p,
            &NewTrackPoint {
                recorded_at: None,
                lat: 1.0,
                lon: 1.0,
                accuracy_m: None,
            },
        )
        .unwrap();
    let refused = b
        .replica
        .add_household(w.g2, &household("和平路2号"))
        .unwrap();
    let mut link = Faulty::new(b.link(), 1);
    link.push_script.push_back(Fault::DropResponse);
    let err = sync(&b.replica, &mut link, &SyncOptions::default()).unwrap_err();
    assert!(matches!(
        err,
        SyncError::Transport(TransportError::Network(_))
    ));
    // The hub applied everything; the phone does not know yet.
    assert_eq!(w.hub.borrow().last_seq(b.replica.device_id()), 6);
    assert_eq!(b.replica.status().unwrap().pending, 6);
    let s = b.sync().unwrap();
    assert_eq!((s.pushed, s.applied, s.duplicates), (6, 0, 5));
    // The repeated answer carries the original rejection's reason.
    assert_eq!(s.rejected.len(), 1);
    assert_eq!(s.rejected[0].record_id, refused);
    assert_eq!(s.rejected[0].code, RejectCode::OutOfScope);
    let hub = w.hub.borrow();
    assert_eq!(hub.processed[&b.replica.device_id()].len(), 6);
    assert_eq!(hub.store.rejected.len(), 1);
    assert!(hub.store.conflicts.is_empty());
    for id in &ids {
        assert!(hub.store.record(Collection::Households, *id).is_some());
    }
    drop(hub);
    assert_eq!(b.replica.status().unwrap().rejections.len(), 1);
    b.assert_converged();
}

#[test]
fn duplicated_requests_are_harmless() {
    let w = World::new();
    let a = w.phone("a", w.w1, 0);
    let b = w.phone("b", w.w2, 0);
    for i in 0..5 {
        a.replica
            .add_household(w.g1, &household(&format!("{i}号")))
            .unwrap();
    }
    let mut link = Faulty::new(a.link(), 3).with_rates(0.0, 0.0, 1.0);
    let s = sync(&a.replica, &mut link, &SyncOptions::default()).unwrap();
    assert_eq!(s.duplicates, 5);
    let mut link = Faulty::new(b.link(), 4).with_rates(0.0, 0.0, 1.0);
    sync(&b.replica, &mut link, &SyncOptions::default()).unwrap();
    assert_eq!(w.hub.borrow().processed[&a.replica.device_id()].len(), 5);
    a.assert_converged();
    b.assert_converged();
}

#[test]
fn a_crash_between_push_and_pull_resumes_after_reopening() {
    let w = World::new();
    let a = w.phone("a", w.w1, 0);
    let h = a
        .replica
        .add_household(w.g1, &household("幸福路1号"))
        .unwrap();
    a.replica.report_hazard(&hazard(w.g1)).unwrap();
    let mut link = Faulty::new(a.link(), 1);
    link.pull_script.push_back(Fault::DropRequest);
    assert!(sync(&a.replica, &mut link, &SyncOptions::default()).is_err());
    drop(a); // the app is killed
    let a = w.phone("a", w.w1, 0);
    let st = a.replica.status().unwrap();
    assert_eq!((st.pending, st.acked), (0, 3));
    assert_eq!(a.replica.household(h).unwrap().record.address, "幸福路1号");
    let mut rec = Recorder::new(a.link());
    let s = sync(&a.replica, &mut rec, &SyncOptions::default()).unwrap();
    assert_eq!(s.pushed, 0);
    assert!(rec.pushes.is_empty());
    assert_eq!(a.replica.status().unwrap().acked, 0);
    assert_eq!(w.hub.borrow().processed[&a.replica.device_id()].len(), 3);
    a.assert_converged();
}

#[test]
fn an_interrupted_pull_resumes_from_the_last_committed_page() {
    let w = World::new();
    let b = w.phone("b", w.w2, 0);
    for i in 0..25 {
        b.replica
            .add_household(w.g1, &household(&format!("{i}号")))
            .unwrap();
    }
    b.sync().unwrap();
    let a = w.phone("a", w.w1, 0);
    let opts = SyncOptions {
        pull_page: 10,
        ..Default::default()
    };
    let mut link = Recorder::new(Faulty::new(a.link(), 1));
    link.inner
        .pull_script
        .extend([Fault::None, Fault::DropRequest]);
    assert!(sync(&a.replica, &mut link, &opts).is_err());
    assert_eq!(a.replica.households(w.g1).unwrap().len(), 10);
    drop(a);
    let a = w.phone("a", w.w1, 0);
    let mut rec = Recorder::new(a.link());
    let s = sync(&a.replica, &mut rec, &opts).unwrap();
    assert_eq!(s.pulled, 15);
    assert!(rec.pulls[0].is_some(), "resumed from the stored cursor");
    assert_eq!(rec.pulls.len(), 2);
    a.assert_converged();
    // Pulling again from an old cursor is harmless.
    let mut link = Recorder::new(a.link());
    sync(&a.replica, &mut link, &SyncOptions::default()).unwrap();
    a.assert_converged();
}

#[test]
fn pushes_go_in_pages_in_seq_order() {
    let w = World::new();
    let a = w.phone("a", w.w1, 0);
    for i in 0..5 {
        a.replica
            .add_household(w.g1, &household(&format!("{i}号")))
            .unwrap();
    }
    let mut rec = Recorder::new(a.link());
    let opts = SyncOptions {
        push_page: 2,
        app_version: Some("1.2.3".into()),
        ..Default::default()
    };
    let s = sync(&a.replica, &mut rec, &opts).unwrap();
    assert_eq!(s.applied, 5);
    let seqs: Vec<Vec<u64>> = rec
        .pushes
        .iter()
        .map(|p| p.mutations.iter().map(|m| m.seq).collect())
        .collect();
    assert_eq!(seqs, vec![vec![1, 2], vec![3, 4], vec![5]]);
    assert_eq!(rec.pushes[0].pending_count, Some(5));
    assert_eq!(rec.pushes[2].pending_count, Some(1));
    assert_eq!(rec.pushes[0].app_version.as_deref(), Some("1.2.3"));
    assert!(rec
        .pushes
        .iter()
        .all(|p| p.device_id == a.replica.device_id()));
    // Every stamp is the device's and the bases of new records are null.
    let m = &rec.pushes[0].mutations[0];
    assert_eq!(m.hlc.node, a.replica.device_id().to_string());
    assert!(m.base.values().all(Option::is_none));
}

#[test]
fn an_edit_carries_the_version_it_was_made_on_as_base() {
    let w = World::new();
    let a = w.phone("a", w.w1, 0);
    let h = a
        .replica
        .add_household(w.g1, &household("幸福路1号"))
        .unwrap();
    a.sync().unwrap();
    let seen = a.replica.versions(Collection::Households, h).unwrap();
    a.replica.edit_household(h, &notes("n1")).unwrap();
    a.replica.edit_household(h, &notes("n2")).unwrap();
    let mut rec = Recorder::new(a.link());
    sync(&a.replica, &mut rec, &SyncOptions::default()).unwrap();
    let ms = &rec.pushes[0].mutations;
    assert_eq!(ms[0].base["notes"], None, "notes had never been written");
    assert_eq!(ms[1].base["notes"].as_ref(), Some(&ms[0].hlc));
    a.replica
        .edit_household(
            h,
            &HouseholdPatch {
                address: Some("幸福路1号之一".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let mut rec = Recorder::new(a.link());
    sync(&a.replica, &mut rec, &SyncOptions::default()).unwrap();
    assert_eq!(
        rec.pushes[0].mutations[0].base["address"].as_ref(),
        Some(&seen["address"])
    );
}

#[test]
fn a_stale_offline_action_gets_no_effect_and_the_reason_reaches_the_phone() {
    let w = World::new();
    let a = w.phone("a", w.w1, 0);
    let sup = w.phone("sup", w.sup, 0);
    let hz = a.replica.report_hazard(&hazard(w.g1)).unwrap();
    a.sync().unwrap();
    sup.sync().unwrap();
    sup.replica
        .act_on_hazard(hz, &NewHazardAction::new(HazardAction::Accept))
        .unwrap();
    sup.replica
        .act_on_hazard(
            hz,
            &NewHazardAction {
                action: HazardAction::Dispatch,
                note: None,
                department: Some("消防".into()),
                due_at: Some(Timestamp(T0 + DAY)),
            },
        )
        .unwrap();
    sup.sync().unwrap();
    // The worker, offline, handles it on the spot: optimistic "disposed" on the phone.
    let late = a
        .replica
        .act_on_hazard(
            hz,
            &NewHazardAction::new(HazardAction::SelfHandle).with_note("已清理"),
        )
        .unwrap();
    assert_eq!(
        a.replica.hazard(hz).unwrap().record.status,
        Some(HazardStatus::Disposed)
    );
    a.sync().unwrap();
    // The server's order decides: dispatched stays, the action is kept with its reason.
    let shown = a.replica.hazard(hz).unwrap().record;
    assert_eq!(shown.status, Some(HazardStatus::Dispatched));
    assert_eq!(shown.assignee_department.as_deref(), Some("消防"));
    let action = a.replica.get::<HazardActionRecord>(late).unwrap().record;
    assert_eq!(action.effect, Some(Effect::NoEffect));
    assert!(action.reason.unwrap().contains("dispatched"));
    assert_eq!(a.replica.hazard_timeline(hz).unwrap().len(), 4);
    sup.sync().unwrap();
    a.assert_converged();
    sup.assert_converged();
}

/// A transport whose credentials expired.
struct Expired;

impl Transport for Expired {
    fn push(&mut self, _: &PushRequest) -> Result<PushResponse, TransportError> {
        Err(TransportError::Auth("token expired".into()))
    }
    fn pull(&mut self, _: Option<&str>, _: usize) -> Result<PullResponse, TransportError> {
        Err(TransportError::Auth("token expired".into()))
    }
}

#[test]
fn an_expired_token_keeps_the_outbox_and_says_so() {
    let w = World::new();
    let a = w.phone("a", w.w1, 0);
    a.replica
        .add_household(w.g1, &household("幸福路1号"))
        .unwrap();
    let err = sync(&a.replica, &mut Expired, &SyncOptions::default()).unwrap_err();
    assert!(!err.is_retryable());
    let st = a.replica.status().unwrap();
    assert_eq!(st.pending, 1);
    assert!(st.last_error.unwrap().contains("not authenticated"));
    // After logging in again the same entry goes through.
    let s = a.sync().unwrap();
    assert_eq!(s.applied, 1);
    assert_eq!(a.replica.status().unwrap().last_error, None);
}

#[test]
fn a_large_backlog_syncs_in_bounded_pages() {
    let w = World::new();
    let a = w.phone("a", w.w1, 0);
    let p = a.replica.start_patrol(w.g1, &NewPatrol::default()).unwrap();
    for i in 0..450 {
        a.replica
            .add_track_point(
                p,
                &NewTrackPoint {
                    recorded_at: None,
                    lat: 31.0 + f64::from(i) * 1e-5,
                    lon: 121.0,
                    accuracy_m: Some(3.0),
                },
            )
            .unwrap();
    }
    let mut rec = Recorder::new(a.link());
    let s = sync(&a.replica, &mut rec, &SyncOptions::default()).unwrap();
    assert_eq!(s.applied, 451);
    assert!(rec.pushes.iter().all(|p| p.mutations.len() <= 200));
    assert_eq!(rec.pushes.len(), 3);
    let b = w.phone("b", w.w2, 0);
    let mut rec = Recorder::new(b.link());
    let s = sync(
        &b.replica,
        &mut rec,
        &SyncOptions {
            pull_page: 100,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(s.pulled, 451);
    assert_eq!(rec.pulls.len(), 5);
    assert_eq!(b.replica.track(p).unwrap().len(), 450);
    b.assert_converged();
}

#[test]
fn a_conflict_mark_clears_when_a_supervisor_resolves_it_or_the_worker_dismisses_it() {
    use sync_core::ingest::{RecordWrite, Store};
    use sync_core::merge::resolution_edit;
    let w = World::new();
    let a = w.phone("a", w.w1, 0);
    let b = w.phone("b", w.w2, 0);
    let h = a
        .replica
        .add_household(w.g1, &household("幸福路1号"))
        .unwrap();
    let h2 = a
        .replica
        .add_household(w.g1, &household("幸福路2号"))
        .unwrap();
    a.sync().unwrap();
    b.sync().unwrap();
    for id in [h, h2] {
        a.replica.edit_household(id, &notes("A")).unwrap();
        b.replica.edit_household(id, &notes("B")).unwrap();
    }
    a.sync().unwrap();
    assert_eq!(b.sync().unwrap().conflicts.len(), 2);
    assert!(matches!(
        b.replica.household(h).unwrap().sync,
        SyncState::Conflict { .. }
    ));
    // A supervisor keeps A's value for h: a server-stamped edit.
    {
        let mut hub = w.hub.borrow_mut();
        let now = u64::try_from(w.time.now().millis()).unwrap();
        let stamp = hub.clock.tick(now);
        let (grid, state) = hub.store.record(Collection::Households, h).unwrap();
        let resolved = resolution_edit(state, "notes", json!("A"), &stamp);
        let changed = vec!["notes".to_string()];
        hub.store
            .save(RecordWrite {
                collection: Collection::Households,
                id: h,
                grid_id: grid,
                state: &resolved,
                created: false,
                changed: &changed,
                device: None,
                client_time: None,
            })
            .unwrap();
    }
    b.sync().unwrap();
    assert_eq!(b.replica.household(h).unwrap().sync, SyncState::Synced);
    assert_eq!(
        b.replica.household(h).unwrap().record.notes.as_deref(),
        Some("A")
    );
    // h2 is still marked until the worker dismisses it.
    assert!(matches!(
        b.replica.household(h2).unwrap().sync,
        SyncState::Conflict { .. }
    ));
    b.replica
        .dismiss_conflict(Collection::Households, h2)
        .unwrap();
    assert_eq!(b.replica.household(h2).unwrap().sync, SyncState::Synced);
    assert!(b.replica.status().unwrap().conflicts.is_empty());
    a.sync().unwrap();
    a.assert_converged();
    b.assert_converged();
}
