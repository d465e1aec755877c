//! A phone on the first app version (schema v1) upgrades: its data and its pending outbox
//! survive the ladder and then reach the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::json;
use support::*;
use sync_core::collection::Collection;
use sync_core::ingest::Store;
use sync_core::replica::{schema, Replica, ReplicaError, SyncState};
use sync_core::wire::RejectCode;
use sync_core::{DeviceId, RecordId};

const V1: &str = include_str!("fixtures/replica_v1.sql");

fn id(s: &str) -> RecordId {
    s.parse().unwrap()
}

fn v1_file(w: &World) -> std::path::PathBuf {
    let path = w.path("old-phone");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(V1).unwrap();
    drop(conn);
    path
}

#[test]
fn a_v1_replica_upgrades_keeping_records_pending_outbox_and_rejections() {
    let w = World::new();
    let path = v1_file(&w);
    let household = id("0193a2c4-0000-7000-8000-00000000a001");
    let visit = id("0193a2c4-0000-7000-8000-00000000a002");
    {
        let r = Replica::open_with(&path, Phone::options(&w.time, 0, 1)).unwrap();
        let version: i64 = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, schema::CURRENT_VERSION);
        const { assert!(schema::CURRENT_VERSION >= 2) };
        assert_eq!(
            r.device_id().to_string(),
            "0193a2c4-0000-7000-8000-00000000d001"
        );
        let session = r.scope();
        assert_eq!(session.user_id, Some(w.w2));
        assert_eq!(session.grid_ids, vec![w.g1, w.g2]);
        let st = r.status().unwrap();
        assert_eq!((st.pending, st.acked), (3, 0));
        assert_eq!(st.rejections.len(), 1);
        assert_eq!(st.rejections[0].code, RejectCode::OutOfScope);
        assert_eq!(st.rejections[0].seq, 1);
        assert_eq!(
            st.rejections[0].fields.as_ref().unwrap()["address"],
            json!("别的网格1号")
        );
        let h = r.household(household).unwrap();
        assert_eq!(h.record.notes.as_deref(), Some("独居"));
        assert_eq!(h.sync, SyncState::Pending);
        // v2's parent index was filled from the old rows.
        let visits = r.visits_of(household).unwrap();
        assert_eq!(visits.len(), 1);
        assert_eq!(visits[0].record.id, visit);
        assert!(matches!(
            r.sync_state(
                Collection::Households,
                id("0193a2c4-0000-7000-8000-00000000a009")
            )
            .unwrap(),
            SyncState::Rejected {
                code: RejectCode::OutOfScope,
                ..
            }
        ));
        // New writes continue the old seq counter.
        r.edit_household(
            household,
            &sync_core::model::HouseholdPatch {
                phone: Some("13900000000".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r.status().unwrap().pending, 4);
    }
    // The server had processed seq 1 (the rejection) before the upgrade.
    let device: DeviceId = "0193a2c4-0000-7000-8000-00000000d001".parse().unwrap();
    w.hub.borrow_mut().store.set_last_seq(device, 1).unwrap();
    let phone = Phone::open(&w.hub, &path, w.w2, 0, 1);
    let s = phone.sync().unwrap();
    assert_eq!((s.pushed, s.applied, s.duplicates), (4, 4, 0));
    assert!(s.rejected.is_empty() && s.conflicts.is_empty());
    let seqs: Vec<u64> = w.hub.borrow().processed[&device]
        .iter()
        .map(|p| p.seq)
        .collect();
    assert_eq!(seqs, vec![2, 3, 4, 5]);
    {
        let hub = w.hub.borrow();
        let (_, state) = hub.store.record(Collection::Households, household).unwrap();
        assert_eq!(state.value("notes"), &json!("独居"));
        assert_eq!(state.value("phone"), &json!("13900000000"));
        assert!(hub.store.record(Collection::Visits, visit).is_some());
    }
    assert_eq!(
        phone.replica.household(household).unwrap().sync,
        SyncState::Synced
    );
    phone.assert_converged();
    // Reopening an upgraded file runs no step again.
    drop(phone);
    let again = Replica::open(&path).unwrap();
    assert_eq!(again.status().unwrap().pending, 0);
}

#[test]
fn a_file_from_a_newer_app_is_refused_untouched() {
    let w = World::new();
    let path = v1_file(&w);
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", schema::CURRENT_VERSION + 1)
        .unwrap();
    assert!(matches!(
        Replica::open(&path),
        Err(ReplicaError::SchemaTooNew { .. })
    ));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let states: i64 = conn
        .query_row(
            "SELECT count(*) FROM outbox WHERE state = 'rejected'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(states, 1, "the refused file was not migrated");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "not even the journal mode changed");
}
