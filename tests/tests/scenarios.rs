//! Specific end-to-end scenarios over HTTP against the real server, each on SQLite and (with
//! `TEST_DATABASE_URL`) PostgreSQL — the complaints users of field-worker apps have most
//! (anchors.md), each a test:
//! - phone clocks 48 h behind and two days ahead reach the same final state as true clocks
//!   (causality beats wall time);
//! - a grid withdrawn from a worker leaves the phone at the next sync (and its personal data
//!   is not left behind in the replica file), and comes back when returned;
//! - tokens that expired during 30 days offline take nothing with them: after a new login
//!   everything recorded meanwhile syncs;
//! - a sync is reported successful only when it was (dropped request, lost response, failed
//!   pull, server down) and resumes on reconnect; `grid-worker sync` exits non-zero on failure;
//! - a rejected record does not block the queue, and its reason stays visible even when the
//!   push response carrying it was lost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use grid_server::auth::jwt::{access_claims, sign_claims};
use grid_tests::db;
use grid_tests::faults::{Fault, FaultRates, Faulty};
use grid_tests::phone::Phone;
use grid_tests::world::{Env, Site};
use grid_tests::{scratch_dir, worker_bin, DAY_MS, HOUR_MS};
use serde_json::Value;
use sync_core::collection::FieldType;
use sync_core::model::*;
use sync_core::replica::SyncState;
use sync_core::sync::{sync, SyncError, SyncOptions, SyncSummary, TransportError};
use sync_core::wire::RejectCode;
use sync_core::{Collection, GridId, RecordId, Timestamp, UserId};

/// 2026-11-21T08:00:00Z.
const T0: i64 = 1_795_248_000_000;

macro_rules! both_backends {
    ($($name:ident => $body:path;)*) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::on_backend(grid_server::db::Backend::Sqlite, $body);
            }
            #[test]
            fn postgres() {
                super::on_backend(grid_server::db::Backend::Postgres, $body);
            }
        }
    )*};
}

both_backends! {
    clocks_behind_and_ahead_reach_the_same_final_state => super::clocks;
    withdrawn_grid_leaves_the_phone_at_the_next_sync => super::withdrawal;
    tokens_expired_offline_lose_nothing => super::expired_tokens;
    sync_is_reported_successful_only_when_it_was => super::honest_sync;
    a_rejected_record_does_not_block_the_queue => super::rejection_does_not_block;
}

fn ok(outcome: Result<SyncSummary, SyncError>, what: &str) -> SyncSummary {
    outcome.unwrap_or_else(|e| panic!("{what}: sync failed: {e}"))
}

fn sync_all(phones: &[&Phone]) {
    for _ in 0..2 {
        for p in phones {
            ok(p.sync().unwrap(), &p.name);
        }
    }
}

fn grid(id: &str) -> GridId {
    id.parse().unwrap()
}

fn at(minutes: i64) -> Option<Timestamp> {
    Some(Timestamp(T0 + minutes * 60_000))
}

// ---------------------------------------------------------------------------------------
// Clocks

/// Replace every id and user id by a label, drop every time-typed field (times come from
/// the phones' clocks), and sort each collection by label.
fn normalise(export: &Value, labels: &HashMap<String, String>) -> Value {
    fn relabel(v: &Value, labels: &HashMap<String, String>) -> Value {
        match v {
            Value::String(s) => Value::String(labels.get(s).cloned().unwrap_or_else(|| s.clone())),
            Value::Array(a) => Value::Array(a.iter().map(|x| relabel(x, labels)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| (k.clone(), relabel(x, labels)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    let mut out = serde_json::Map::new();
    for c in Collection::ALL {
        let mut records: Vec<Value> = export[c.as_str()]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut r = relabel(r, labels);
                for spec in c.fields() {
                    if matches!(spec.ty, FieldType::Time) {
                        r.as_object_mut().unwrap().remove(spec.name);
                    }
                }
                let id = r["id"].as_str().unwrap();
                assert!(!id.contains('-'), "unlabelled id {id} in {c}");
                r
            })
            .collect();
        records.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        out.insert(c.as_str().into(), Value::Array(records));
    }
    Value::Object(out)
}

/// One scripted day of sequential work by a worker on both grids (A), the supervisor (B) and
/// a worker of grid 1 (C), with the given clock skews; returns g1's normalised final export.
fn clock_script(env: &Env, tag: &str, skews: [i64; 3]) -> Value {
    let site = env.site(tag).unwrap();
    let dir = scratch_dir("grid-clocks").unwrap();
    let a = phone(env, dir.path(), &site, "w2", "a", skews[0], 1);
    let b = phone(env, dir.path(), &site, "sup", "b", skews[1], 2);
    let c = phone(env, dir.path(), &site, "w1", "c", skews[2], 3);
    let g1 = grid(&site.g1);
    let mut labels: HashMap<String, String> = HashMap::new();
    let mut label = |id: String, name: &str| {
        labels.insert(id, name.to_owned());
    };
    label(site.g1.clone(), "g1");
    for u in &site.users {
        label(u.id.clone(), &format!("user:{}", u.key));
    }

    // A records the morning's work and syncs.
    let h = a
        .replica()
        .add_household(
            g1,
            &NewHousehold {
                address: "幸福路8号".into(),
                head_name: Some("李大爷".into()),
                phone: Some("13800000008".into()),
                members: Some(1),
                tags: vec![HouseholdTag::ElderlyAlone, HouseholdTag::Veteran],
                care_level: Some(CareLevel::Attention),
                notes: Some("n0".into()),
                ..Default::default()
            },
        )
        .unwrap();
    label(h.to_string(), "H");
    let z = a
        .replica()
        .report_hazard(&NewHazard {
            grid_id: g1,
            source: Some(HazardSource::Patrol),
            category: HazardCategory::EbikeCharging,
            severity: Severity::High,
            title: "楼道电瓶车充电".into(),
            description: None,
            lat: Some(31.2),
            lon: Some(121.5),
            address: Some("幸福路8号".into()),
        })
        .unwrap();
    label(z.to_string(), "Z");
    label(
        a.replica().hazard_timeline(z).unwrap()[0]
            .record
            .id
            .to_string(),
        "Z:submit",
    );
    let p = a
        .replica()
        .start_patrol(
            g1,
            &NewPatrol {
                started_at: at(0),
                summary: None,
            },
        )
        .unwrap();
    label(p.to_string(), "P");
    for k in 0..3 {
        let pt = a
            .replica()
            .add_track_point(
                p,
                &NewTrackPoint {
                    recorded_at: at(k + 1),
                    lat: 31.2 + k as f64 * 1e-4,
                    lon: 121.5,
                    accuracy_m: Some(5.0),
                },
            )
            .unwrap();
        label(pt.to_string(), &format!("P:{k}"));
    }
    let v = a
        .replica()
        .record_visit(&NewVisit {
            household_id: h,
            visited_at: at(30),
            mode: VisitMode::InPerson,
            outcome: VisitOutcome::Met,
            summary: Some("身体尚可".into()),
            follow_up_due: None,
            lat: None,
            lon: None,
        })
        .unwrap();
    label(v.to_string(), "V");
    let n = a
        .replica()
        .add_need(&NewNeed {
            household_id: h,
            visit_id: Some(v),
            category: NeedCategory::ElderlyCare,
            description: "需要助餐".into(),
            urgency: Some(NeedUrgency::High),
            due_on: None,
        })
        .unwrap();
    label(n.to_string(), "N");
    ok(a.sync().unwrap(), "a");
    ok(b.sync().unwrap(), "b");
    ok(c.sync().unwrap(), "c");

    // B edits the notes on top of A's version; C, not having seen that, edits another field.
    b.replica()
        .edit_household(
            h,
            &HouseholdPatch {
                notes: Some("B1".into()),
                ..Default::default()
            },
        )
        .unwrap();
    ok(b.sync().unwrap(), "b");
    c.replica()
        .edit_household(
            h,
            &HouseholdPatch {
                phone: Some("13900000000".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let s = ok(c.sync().unwrap(), "c");
    assert!(
        s.conflicts.is_empty(),
        "different fields never conflict: {s:?}"
    );

    // A pulls both, then edits the notes on top of B's version: sequential, A must win
    // whatever its clock says.
    ok(a.sync().unwrap(), "a");
    a.replica()
        .edit_household(
            h,
            &HouseholdPatch {
                notes: Some("A2".into()),
                ..Default::default()
            },
        )
        .unwrap();
    a.replica()
        .edit_need(
            n,
            &NeedPatch {
                status: Some(NeedStatus::InProgress),
                ..Default::default()
            },
        )
        .unwrap();
    let s = ok(a.sync().unwrap(), "a");
    assert!(
        s.conflicts.is_empty(),
        "sequential edits are not conflicts: {s:?}"
    );

    // The supervisor accepts and dispatches; A, offline, handles it on the spot (stale).
    ok(b.sync().unwrap(), "b");
    let act = |p: &Phone, action: HazardAction, dept: Option<&str>, due: Option<Timestamp>| {
        p.replica()
            .act_on_hazard(
                z,
                &NewHazardAction {
                    action,
                    note: Some("说明".into()),
                    department: dept.map(str::to_owned),
                    due_at: due,
                },
            )
            .unwrap()
    };
    let id = act(&b, HazardAction::Accept, None, None);
    label(id.to_string(), "Z:accept");
    let id = act(
        &b,
        HazardAction::Dispatch,
        Some("消防"),
        Some(Timestamp(
            chrono::Utc::now().timestamp_millis() + 3 * DAY_MS,
        )),
    );
    label(id.to_string(), "Z:dispatch");
    ok(b.sync().unwrap(), "b");
    let id = act(&a, HazardAction::SelfHandle, None, None);
    label(id.to_string(), "Z:self_handle");
    ok(a.sync().unwrap(), "a");

    // C resolves the need on top of A's status; the department's work is done by B; A verifies.
    ok(c.sync().unwrap(), "c");
    c.replica()
        .edit_need(
            n,
            &NeedPatch {
                status: Some(NeedStatus::Resolved),
                resolution: Some("已安排助餐".into()),
                ..Default::default()
            },
        )
        .unwrap();
    ok(c.sync().unwrap(), "c");
    ok(b.sync().unwrap(), "b");
    let id = act(&b, HazardAction::SignFor, None, None);
    label(id.to_string(), "Z:sign_for");
    let id = act(&b, HazardAction::ReportDone, None, None);
    label(id.to_string(), "Z:report_done");
    ok(b.sync().unwrap(), "b");
    ok(a.sync().unwrap(), "a");
    let id = act(&a, HazardAction::VerifyPass, None, None);
    label(id.to_string(), "Z:verify_pass");
    a.replica().end_patrol(p, Some("巡查结束".into())).unwrap();
    ok(a.sync().unwrap(), "a");
    sync_all(&[&a, &b, &c]);

    for p in [&a, &c] {
        assert_converged(
            env,
            p,
            &site
                .user(if p.name == "a" { "w2" } else { "w1" })
                .unwrap()
                .grids,
            tag,
        );
    }
    assert_converged(env, &b, &site.grids(), tag);
    let server = env.admin.export(&site.g1).unwrap();
    let hh = &server["households"][0];
    assert_eq!(
        (hh["notes"].as_str(), hh["phone"].as_str()),
        (Some("A2"), Some("13900000000")),
        "{tag}: {hh}"
    );
    assert_eq!(server["needs"][0]["status"], "resolved", "{tag}");
    assert_eq!(server["hazards"][0]["status"], "closed", "{tag}");
    let stale: Vec<&Value> = server["hazard_actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["action"] == "self_handle")
        .collect();
    assert_eq!(
        stale[0]["effect"], "no_effect",
        "{tag}: the stale action is kept without effect"
    );
    let conflicts = db::conflicts_in(&env.side, &site.grids()).unwrap();
    assert!(
        conflicts.is_empty(),
        "{tag}: sequential work made conflicts: {conflicts:?}"
    );
    normalise(&server, &labels)
}

fn clocks(env: &Env) {
    let truth = clock_script(env, "true", [0, 0, 0]);
    let skewed = clock_script(env, "skew1", [-48 * HOUR_MS, 2 * DAY_MS, 0]);
    assert_eq!(skewed, truth, "A 48 h behind, B two days ahead");
    let skewed = clock_script(env, "skew2", [2 * DAY_MS, -48 * HOUR_MS, -48 * HOUR_MS]);
    assert_eq!(skewed, truth, "A two days ahead, B and C 48 h behind");
}

// ---------------------------------------------------------------------------------------
// Scope

/// The replica's files (database, WAL) in which `needle` occurs.
fn files_containing(phone: &Phone, needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for suffix in ["", "-wal"] {
        let mut path = phone.path.clone().into_os_string();
        path.push(suffix);
        if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                out.push(std::path::PathBuf::from(path).display().to_string());
            }
        }
    }
    out
}

fn withdrawal(env: &Env) {
    let mut site: Site = env.site("wd").unwrap();
    let dir = scratch_dir("grid-withdraw").unwrap();
    let w2 = phone(env, dir.path(), &site, "w2", "w2", 0, 11);
    let w3 = phone(env, dir.path(), &site, "w3", "w3", 0, 12);
    let (g1, g2) = (grid(&site.g1), grid(&site.g2));
    const SECRET: &str = "机密张三13812345678";
    let secret_home = w3
        .replica()
        .add_household(
            g2,
            &NewHousehold {
                address: "保密路2号".into(),
                head_name: Some(SECRET.into()),
                ..Default::default()
            },
        )
        .unwrap();
    w3.replica()
        .report_hazard(&NewHazard {
            grid_id: g2,
            source: Some(HazardSource::Resident),
            category: HazardCategory::Gas,
            severity: Severity::Critical,
            title: "燃气泄漏".into(),
            description: None,
            lat: None,
            lon: None,
            address: None,
        })
        .unwrap();
    ok(w3.sync().unwrap(), "w3");
    ok(w2.sync().unwrap(), "w2");
    assert!(
        w2.replica().household(secret_home).is_ok(),
        "w2 holds grid 2's records"
    );
    assert_converged(env, &w2, &site.user("w2").unwrap().grids, "before");

    // Work in both grids, unsent, when the admin withdraws grid 2.
    let mine = w2
        .replica()
        .add_household(
            g1,
            &NewHousehold {
                address: "幸福路9号".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let late_visit = w2
        .replica()
        .record_visit(&NewVisit {
            household_id: secret_home,
            visited_at: None,
            mode: VisitMode::InPerson,
            outcome: VisitOutcome::NotHome,
            summary: Some(format!("{SECRET} 不在家")),
            follow_up_due: None,
            lat: None,
            lon: None,
        })
        .unwrap();
    let w2_id = site.user("w2").unwrap().id.clone();
    env.admin
        .set_grids(&w2_id, std::slice::from_ref(&site.g1))
        .unwrap();
    site.user_mut("w2").unwrap().grids = vec![site.g1.clone()];

    let s = ok(w2.sync().unwrap(), "w2 after withdrawal");
    assert!(s.purged > 0, "{s:?}");
    assert_eq!(
        s.rejected.len(),
        1,
        "the unsent visit in grid 2 is rejected: {s:?}"
    );
    assert_eq!(s.rejected[0].code, RejectCode::OutOfScope);
    assert_eq!(w2.replica().scope().grid_ids, vec![g1]);
    assert!(w2.replica().households(g2).unwrap().is_empty());
    assert!(w2.replica().hazards(g2).unwrap().is_empty());
    assert!(
        w2.replica().household(secret_home).is_err(),
        "grid 2's household left the phone"
    );
    assert!(w2.replica().household(mine).is_ok());
    let status = w2.replica().status().unwrap();
    assert_eq!(status.rejections.len(), 1, "{status:?}");
    assert_eq!(status.rejections[0].record_id, late_visit);
    assert!(matches!(
        w2.replica()
            .sync_state(Collection::Visits, late_visit)
            .unwrap(),
        SyncState::Rejected { .. }
    ));
    assert_converged(
        env,
        &w2,
        &site.user("w2").unwrap().grids,
        "after withdrawal",
    );
    let server = env.admin.export(&site.g2).unwrap();
    assert_eq!(
        server["visits"].as_array().unwrap().len(),
        0,
        "nothing was written to grid 2"
    );

    // Given back: pulled again from its beginning.
    env.admin.set_grids(&w2_id, &site.grids()).unwrap();
    site.user_mut("w2").unwrap().grids = site.grids();
    ok(w2.sync().unwrap(), "w2 after the grid came back");
    assert!(w2.replica().household(secret_home).is_ok());
    assert_converged(env, &w2, &site.user("w2").unwrap().grids, "returned");
    assert_converged(env, &w3, &site.user("w3").unwrap().grids, "w3");
}

/// A lost phone must not leak what it no longer holds: after the purge, the withdrawn
/// grid's personal data is in neither the replica file nor its WAL.
/// (The replica runs with `secure_delete` and truncates its WAL after a purge.)
fn withdrawn_data_is_wiped(env: &Env) {
    let mut site: Site = env.site("wipe").unwrap();
    let dir = scratch_dir("grid-wipe").unwrap();
    let w2 = phone(env, dir.path(), &site, "w2", "w2", 0, 13);
    let w3 = phone(env, dir.path(), &site, "w3", "w3", 0, 14);
    const SECRET: &str = "机密李四13987654321";
    w3.replica()
        .add_household(
            grid(&site.g2),
            &NewHousehold {
                address: "保密路3号".into(),
                head_name: Some(SECRET.into()),
                ..Default::default()
            },
        )
        .unwrap();
    ok(w3.sync().unwrap(), "w3");
    ok(w2.sync().unwrap(), "w2");
    let w2_id = site.user("w2").unwrap().id.clone();
    env.admin
        .set_grids(&w2_id, std::slice::from_ref(&site.g1))
        .unwrap();
    site.user_mut("w2").unwrap().grids = vec![site.g1.clone()];
    let s = ok(w2.sync().unwrap(), "w2 after withdrawal");
    assert!(s.purged > 0, "{s:?}");
    assert_converged(
        env,
        &w2,
        &site.user("w2").unwrap().grids,
        "after withdrawal",
    );
    let leaks = files_containing(&w2, SECRET);
    assert!(
        leaks.is_empty(),
        "grid 2's personal data is still in {leaks:?} after the purge"
    );
}

mod withdrawn_grid_data_is_wiped_from_the_replica_file {
    #[test]
    fn sqlite() {
        super::on_backend(
            grid_server::db::Backend::Sqlite,
            super::withdrawn_data_is_wiped,
        );
    }
}

// ---------------------------------------------------------------------------------------
// Tokens

fn expired_tokens(env: &Env) {
    let site = env.site("tok").unwrap();
    let dir = scratch_dir("grid-tokens").unwrap();
    // The phone's clock starts 30 days back: the month offline is simulated by moving it
    // forward day by day while the worker records.
    let mut p = phone(env, dir.path(), &site, "w1", "w1", -30 * DAY_MS, 21);
    let g1 = grid(&site.g1);
    ok(p.sync().unwrap(), "first sync");

    let mut made = 0;
    for day in 0..30 {
        p.set_skew(-(30 - day) * DAY_MS);
        let h = p
            .replica()
            .add_household(
                g1,
                &NewHousehold {
                    address: format!("幸福路{day}号"),
                    tags: vec![HouseholdTag::LowIncome],
                    ..Default::default()
                },
            )
            .unwrap();
        p.replica()
            .record_visit(&NewVisit {
                household_id: h,
                visited_at: None,
                mode: VisitMode::InPerson,
                outcome: VisitOutcome::Met,
                summary: Some(format!("第{day}天走访")),
                follow_up_due: None,
                lat: None,
                lon: None,
            })
            .unwrap();
        made += 2;
        if day % 10 == 0 {
            let pid = p.replica().start_patrol(g1, &NewPatrol::default()).unwrap();
            for k in 0..5 {
                p.replica()
                    .add_track_point(
                        pid,
                        &NewTrackPoint {
                            recorded_at: None,
                            lat: 31.0 + k as f64 * 1e-4,
                            lon: 121.0,
                            accuracy_m: None,
                        },
                    )
                    .unwrap();
            }
            p.replica().end_patrol(pid, None).unwrap();
            made += 7;
        }
    }
    p.set_skew(0);
    assert_eq!(p.replica().status().unwrap().pending, made);

    // Thirty days later on the server: the access token is long expired and so is the
    // refresh token.
    let device = p.device_id();
    let user: UserId = site.user("w1").unwrap().id.parse().unwrap();
    let expired = {
        let server = env.server.borrow();
        let keys = &server.state().unwrap().jwt;
        let claims = access_claims(
            user,
            device,
            p.role,
            chrono::Utc::now().timestamp() - 30 * 24 * 3600,
        );
        sign_claims(keys, &claims).unwrap()
    };
    let refresh = p.replica().credentials().unwrap().unwrap().refresh_token;
    p.replica().update_tokens(&expired, &refresh).unwrap();
    assert!(db::expire_refresh_tokens(&env.side, &device.to_string()).unwrap() > 0);

    let failed = p.sync().unwrap();
    assert!(
        matches!(failed, Err(SyncError::Transport(TransportError::Auth(_)))),
        "{failed:?}"
    );
    let status = p.replica().status().unwrap();
    assert_eq!(
        status.pending, made,
        "an expired session takes nothing with it"
    );
    assert!(status.last_error.is_some());
    assert_eq!(
        db::last_applied_seq(&env.side, &device.to_string()).unwrap(),
        Some(0)
    );

    // The worker logs in again on the same phone; everything recorded offline syncs.
    p.login(&env.base_url).unwrap();
    let s = ok(p.sync().unwrap(), "after login");
    assert_eq!(s.applied, made);
    assert_eq!(p.replica().status().unwrap().pending, 0);
    assert_eq!(
        db::count_rows(
            &env.side,
            Collection::Households,
            std::slice::from_ref(&site.g1)
        )
        .unwrap(),
        30
    );
    assert_eq!(
        db::count_rows(
            &env.side,
            Collection::TrackPoints,
            std::slice::from_ref(&site.g1)
        )
        .unwrap(),
        15
    );
    assert_converged(env, &p, &site.user("w1").unwrap().grids, "after login");
}

// ---------------------------------------------------------------------------------------
// Honest sync

fn scripted(
    p: &Phone,
    script: Vec<Fault>,
    options: &SyncOptions,
) -> Result<SyncSummary, SyncError> {
    let mut t = Faulty::new(p.http().unwrap(), 0, FaultRates::default()).with_script(script);
    sync(p.replica(), &mut t, options)
}

fn households(p: &Phone, g: GridId, n: usize, from: usize) -> Vec<RecordId> {
    (from..from + n)
        .map(|k| {
            p.replica()
                .add_household(
                    g,
                    &NewHousehold {
                        address: format!("和平路{k}号"),
                        ..Default::default()
                    },
                )
                .unwrap()
        })
        .collect()
}

fn honest_sync(env: &Env) {
    let site = env.site("hon").unwrap();
    let dir = scratch_dir("grid-honest").unwrap();
    let p = phone(env, dir.path(), &site, "w1", "w1", 0, 31);
    let g1 = grid(&site.g1);
    let dev = p.device_id().to_string();
    let seq = || db::last_applied_seq(&env.side, &dev).unwrap().unwrap_or(0);
    let rows = || {
        db::count_rows(
            &env.side,
            Collection::Households,
            std::slice::from_ref(&site.g1),
        )
        .unwrap()
    };
    let opts = SyncOptions::default();

    // A request that never arrived.
    households(&p, g1, 3, 0);
    let r = scripted(&p, vec![Fault::DropRequest], &opts);
    assert!(
        matches!(r, Err(SyncError::Transport(TransportError::Network(_)))),
        "{r:?}"
    );
    let st = p.replica().status().unwrap();
    assert_eq!((st.pending, seq()), (3, 0));
    assert!(st.last_error.is_some());

    // A response lost after the server committed: not a success, and no duplicates after.
    let r = scripted(&p, vec![Fault::DropResponse], &opts);
    assert!(r.is_err(), "{r:?}");
    assert_eq!(seq(), 3, "the server committed");
    assert_eq!(
        p.replica().status().unwrap().pending,
        3,
        "the phone cannot know it"
    );
    let s = ok(p.sync().unwrap(), "retry");
    assert_eq!((s.applied, s.duplicates), (0, 3));
    assert_eq!(
        rows(),
        3,
        "no duplicates after a timeout that hid a success"
    );
    let st = p.replica().status().unwrap();
    assert_eq!((st.pending, st.acked), (0, 0));
    assert!(st.last_error.is_none());

    // Push answered, pull lost: still not a success; the next run resumes.
    households(&p, g1, 2, 3);
    let r = scripted(&p, vec![Fault::None, Fault::DropRequest], &opts);
    assert!(r.is_err(), "{r:?}");
    let st = p.replica().status().unwrap();
    assert_eq!(st.pending, 0);
    assert!(st.acked > 0, "confirmed but not yet pulled: {st:?}");
    assert!(st.last_error.is_some());
    ok(p.sync().unwrap(), "resume");
    let st = p.replica().status().unwrap();
    assert_eq!((st.pending, st.acked, rows()), (0, 0, 5));

    // The server is down: an error, not a success; after it is back the sync resumes.
    households(&p, g1, 2, 5);
    env.server.borrow_mut().stop();
    let r = p.sync().unwrap();
    assert!(matches!(&r, Err(e) if e.is_retryable()), "{r:?}");
    assert_eq!(p.replica().status().unwrap().pending, 2);
    let bin = worker_bin::locate();
    let mut p = p;
    if let Some(bin) = &bin {
        let run = p
            .run_worker(bin, &["sync"], Duration::from_secs(120))
            .unwrap();
        assert_eq!(
            run.code,
            Some(3),
            "grid-worker sync while the server is down: exit 3 (unreachable, nothing lost): {run:?}"
        );
        assert!(!run.stderr.trim().is_empty(), "a failing command says why");
    }
    env.restart().unwrap();
    if let Some(bin) = &bin {
        let run = p
            .run_worker(bin, &["sync"], Duration::from_secs(120))
            .unwrap();
        assert!(run.success, "grid-worker sync after reconnect: {run:?}");
        let summary: Value = serde_json::from_str(run.stdout.trim()).unwrap();
        assert!(summary.is_object(), "{summary}");
    }
    ok(p.sync().unwrap(), "after reconnect");
    assert_eq!((p.replica().status().unwrap().pending, rows()), (0, 7));
    assert_converged(env, &p, &site.user("w1").unwrap().grids, "honest");
}

// ---------------------------------------------------------------------------------------
// Rejections

fn rejection_does_not_block(env: &Env) {
    let mut site = env.site("rej").unwrap();
    let dir = scratch_dir("grid-reject").unwrap();
    let p = phone(env, dir.path(), &site, "w2", "w2", 0, 41);
    let (g1, g2) = (grid(&site.g1), grid(&site.g2));
    let h1 = p
        .replica()
        .add_household(
            g1,
            &NewHousehold {
                address: "幸福路1号".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let hx = p
        .replica()
        .add_household(
            g2,
            &NewHousehold {
                address: "和平路1号".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let vx = p
        .replica()
        .record_visit(&NewVisit {
            household_id: hx,
            visited_at: None,
            mode: VisitMode::Phone,
            outcome: VisitOutcome::Met,
            summary: None,
            follow_up_due: None,
            lat: None,
            lon: None,
        })
        .unwrap();
    let h2 = p
        .replica()
        .add_household(
            g1,
            &NewHousehold {
                address: "幸福路2号".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let v1 = p
        .replica()
        .record_visit(&NewVisit {
            household_id: h1,
            visited_at: None,
            mode: VisitMode::InPerson,
            outcome: VisitOutcome::Met,
            summary: None,
            follow_up_due: None,
            lat: None,
            lon: None,
        })
        .unwrap();
    let w2 = site.user("w2").unwrap().id.clone();
    env.admin
        .set_grids(&w2, std::slice::from_ref(&site.g1))
        .unwrap();
    site.user_mut("w2").unwrap().grids = vec![site.g1.clone()];

    // One mutation per request, and the response carrying the first rejection is lost.
    let opts = SyncOptions {
        push_page: 1,
        ..SyncOptions::default()
    };
    let r = scripted(&p, vec![Fault::None, Fault::DropResponse], &opts);
    assert!(r.is_err(), "{r:?}");
    let s = ok(scripted(&p, vec![], &opts), "after the lost rejection");
    assert_eq!(s.pending, 0);
    let codes: Vec<RejectCode> = s.rejected.iter().map(|r| r.code).collect();
    assert_eq!(codes.len(), 2, "{s:?}");
    assert!(
        codes.iter().all(|c| *c == RejectCode::OutOfScope),
        "{codes:?}"
    );
    let status = p.replica().status().unwrap();
    let shown: Vec<RecordId> = status.rejections.iter().map(|r| r.record_id).collect();
    assert_eq!(
        shown,
        vec![hx, vx],
        "both rejections stay visible, with reasons"
    );
    assert!(status.rejections.iter().all(|r| !r.message.is_empty()));
    for (c, id) in [(Collection::Households, hx), (Collection::Visits, vx)] {
        assert!(matches!(
            p.replica().sync_state(c, id).unwrap(),
            SyncState::Rejected { .. }
        ));
    }
    for id in [h1, h2] {
        assert_eq!(p.replica().household(id).unwrap().sync, SyncState::Synced);
    }
    assert_eq!(p.replica().visit(v1).unwrap().sync, SyncState::Synced);
    assert_eq!(
        db::count_rows(&env.side, Collection::Households, &site.grids()).unwrap(),
        2
    );

    // The queue keeps flowing afterwards.
    let h3 = p
        .replica()
        .add_household(
            g1,
            &NewHousehold {
                address: "幸福路3号".into(),
                ..Default::default()
            },
        )
        .unwrap();
    ok(p.sync().unwrap(), "next");
    assert_eq!(p.replica().household(h3).unwrap().sync, SyncState::Synced);
    assert_converged(env, &p, &site.user("w2").unwrap().grids, "rejections");
}
