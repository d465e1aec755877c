//! Seeded randomized end-to-end scenarios against the real server over HTTP, on SQLite and
//! (with `TEST_DATABASE_URL`) PostgreSQL. One server per backend is shared by all seeds; each
//! seed gets a fresh community with two grids and its own users.
//!
//! Per seed: 2–6 phones (workers on one grid, a worker on both, a supervisor of the
//! community, second devices of a worker), with clocks right, 48 hours behind, two days ahead
//! or a few minutes off (and jumping mid-run), do random offline work of every kind —
//! households created, edited concurrently on the same fields and deleted; visits with needs
//! and need edits; hazards reported, edited and acted on by workers and the supervisor (stale
//! actions included); patrols with track points; attachments — and sync in random order
//! through a fault injector around the real `HttpTransport` (dropped requests, responses
//! dropped after the server committed, duplicated, delayed and stale replayed requests). The
//! admin withdraws and returns a grid of a worker. In a subset of seeds the server is
//! restarted (between operations and between two requests of one sync), and a `grid-worker`
//! process syncing a phone's replica is killed (SIGKILL) at a random moment.
//!
//! Then everyone syncs cleanly until nothing is pending, and:
//! - every phone holds exactly its user's grids, and its export equals the server's
//!   `GET /api/v1/export?grid_id=` for each of them;
//! - every sync reported successful left nothing pending or unconfirmed, and the server had
//!   processed every mutation of that phone; every failed sync left its error in `status()`;
//! - exactly once: each device's `last_applied_seq` equals the mutations it made;
//! - every record a phone reported as saved is on the server, unless its creation was
//!   rejected (and the phone shows that rejection); rows per collection on the server equal
//!   the distinct saved records (no duplicates); every hazard has one applied `submit`;
//! - every rejection not superseded is listed by the phone that made it, and only those;
//! - the conflict oracle ([`grid_tests::oracle`]): every push result reported exactly the
//!   predicted conflicts, and the server's `conflicts` table holds each predicted conflict
//!   once, with both values and a winner consistent with the stamps — and nothing else;
//!   `GET /api/v1/conflicts` lists the same conflicts with the same values. Then the
//!   supervisor reverses up to two of them (`POST /conflicts/{id}/resolve`), everyone syncs,
//!   the server holds the kept values and every phone's export equals the server's again.
//!
//! Conflicts of mutations pushed by a `grid-worker` process (outside the oracle's view) and
//! fields whose winner within one push depends on stamps are tolerated, not predicted (see
//! the oracle's notes); the statistics printed at the end count what was checked.
//!
//! `E2E_SEEDS=N`: seeds per backend (default 100: 200 per CI run on both backends);
//! `E2E_SEED=S`: replay one seed. A failing seed prints its log and how to replay it. A
//! replay repeats the same phones, operations, sync order, pages and injected faults; what
//! it cannot repeat is real time (clock readings, HLC stamps, the moment a kill lands).
//! The kill scenarios need the `grid-worker` binary next to the test binary
//! (`cargo test --workspace` builds it; see `grid_tests::worker_bin`); without it they are
//! skipped with a notice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::*;
use grid_server::db::Backend;
use grid_tests::db;
use grid_tests::faults::{FaultCounts, FaultRates, Faulty};
use grid_tests::oracle::{Displayed, Made, Observed, SharedLedger};
use grid_tests::phone::Phone;
use grid_tests::world::{Env, Site};
use grid_tests::{env_u64, scratch_dir, worker_bin, DAY_MS, HOUR_MS};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::Value;
use sync_core::model::*;
use sync_core::replica::{ReplicaError, SyncState};
use sync_core::sync::{sync, SyncError, SyncOptions, SyncSummary};
use sync_core::workflow::Role;
use sync_core::{Collection, DeviceId, RecordId, Timestamp};

const NOTES: &[&str] = &["独居", "腿脚不便", "子女在外地", "需要助餐", ""];
const PHONE_NUMBERS: &[&str] = &["13800000001", "13800000002", "13800000003"];
const TITLES: &[&str] = &["楼道堆物", "电瓶车充电", "消防通道堵塞", "井盖缺失"];
const DEPARTMENTS: &[&str] = &["消防", "城管", "燃气", "物业"];
/// Phone clocks: right, 48 h behind, two days ahead, a few minutes off.
const SKEWS: &[i64] = &[0, 0, 0, -48 * HOUR_MS, 2 * DAY_MS, -5 * 60_000, 3 * 60_000];
/// Who the phones belong to, in order (the last two are second devices).
const ROSTER: &[&str] = &["w1", "w2", "sup", "w3", "w1", "w2"];

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> Option<&'a T> {
    (!items.is_empty()).then(|| &items[rng.random_range(0..items.len())])
}

#[derive(Default, Debug)]
struct Stats {
    seeds: u64,
    phones: u64,
    mutations: u64,
    syncs: u64,
    failed_syncs: u64,
    faults: FaultCounts,
    conflicts: u64,
    conflicts_checked: u64,
    rejections: u64,
    worker_runs: u64,
    kills: u64,
    /// Kills after the process's push reached the server.
    kills_after_push: u64,
    /// …before the process stored the push's answer (the server committed, the phone still
    /// shows the changes pending).
    kills_response_lost: u64,
    restarts: u64,
    withdrawals: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.seeds += o.seeds;
        self.phones += o.phones;
        self.mutations += o.mutations;
        self.syncs += o.syncs;
        self.failed_syncs += o.failed_syncs;
        self.faults.add(&o.faults);
        self.conflicts += o.conflicts;
        self.conflicts_checked += o.conflicts_checked;
        self.rejections += o.rejections;
        self.worker_runs += o.worker_runs;
        self.kills += o.kills;
        self.kills_after_push += o.kills_after_push;
        self.kills_response_lost += o.kills_response_lost;
        self.restarts += o.restarts;
        self.withdrawals += o.withdrawals;
    }
}

/// A record a phone reported as saved.
struct Saved {
    device: DeviceId,
    phone: usize,
    collection: Collection,
    id: RecordId,
    seq: u64,
}

struct Case<'e> {
    env: &'e Env,
    seed: u64,
    rng: StdRng,
    site: Site,
    phones: Vec<Phone>,
    keys: Vec<&'static str>,
    ledger: SharedLedger,
    saved: Vec<Saved>,
    /// Each hazard's submit action: (device, seq).
    submits: HashMap<RecordId, (DeviceId, u64)>,
    restarts_on: bool,
    worker: Option<PathBuf>,
    log: Vec<String>,
    stats: Stats,
    _dir: tempfile::TempDir,
}

impl<'e> Case<'e> {
    fn new(env: &'e Env, seed: u64, worker: Option<PathBuf>) -> Case<'e> {
        let mut rng = StdRng::seed_from_u64(seed);
        let tag = format!("{}{seed:x}", &env.backend().as_str()[..2]);
        let site = env.site(&tag).unwrap();
        let dir = scratch_dir("grid-e2e").unwrap();
        let n = rng.random_range(2..=ROSTER.len());
        let mut phones = Vec::new();
        let mut keys = Vec::new();
        for (i, key) in ROSTER[..n].iter().enumerate() {
            let skew = *pick(&mut rng, SKEWS).unwrap();
            let ids_seed = seed.wrapping_mul(0x9e37_79b9).wrapping_add(i as u64);
            phones.push(phone(
                env,
                dir.path(),
                &site,
                key,
                &format!("p{i}"),
                skew,
                ids_seed,
            ));
            keys.push(*key);
        }
        let restarts_on = rng.random_bool(0.12);
        let worker = worker.filter(|_| rng.random_bool(0.3));
        Case {
            env,
            seed,
            rng,
            site,
            stats: Stats {
                seeds: 1,
                phones: n as u64,
                ..Stats::default()
            },
            phones,
            keys,
            ledger: Default::default(),
            saved: Vec::new(),
            submits: HashMap::new(),
            restarts_on,
            worker,
            log: Vec::new(),
            _dir: dir,
        }
    }

    fn device(&self, i: usize) -> DeviceId {
        self.phones[i].device_id()
    }

    fn pending(&self, i: usize) -> u64 {
        self.phones[i].replica().status().unwrap().pending
    }

    /// Note the mutations a write queued: `records` in queue order (one per mutation).
    fn made(
        &mut self,
        i: usize,
        before: u64,
        records: &[(Collection, RecordId)],
        displayed: Displayed,
        create: bool,
    ) {
        let queued = self.pending(i) - before;
        let device = self.device(i);
        if create {
            assert_eq!(
                queued as usize,
                records.len(),
                "a creation queues one mutation per record"
            );
        } else {
            assert!(queued <= 1, "an edit queues at most one mutation");
            if queued == 0 {
                return;
            }
        }
        let mut ledger = self.ledger.borrow_mut();
        for &(collection, id) in records {
            let seq = ledger.next_seq(device);
            ledger.note(
                device,
                Made {
                    collection,
                    record_id: id,
                    displayed: displayed.clone(),
                },
            );
            if create {
                self.saved.push(Saved {
                    device,
                    phone: i,
                    collection,
                    id,
                    seq,
                });
            }
        }
        self.stats.mutations += records.len() as u64;
    }

    fn ids(&self, i: usize, c: Collection) -> Vec<RecordId> {
        self.phones[i]
            .replica()
            .list(c, None)
            .unwrap()
            .into_iter()
            .map(|v| v.id)
            .collect()
    }

    fn shown(&self, i: usize, c: Collection, id: RecordId) -> Displayed {
        self.phones[i].replica().versions(c, id).unwrap()
    }

    /// A little shared history first, so that phones have the same records to edit.
    fn warm_up(&mut self) {
        let g = self.phones[0].replica().scope().grid_ids[0];
        let before = self.pending(0);
        let h = NewHousehold {
            address: "幸福路1号".into(),
            head_name: Some("王阿姨".into()),
            tags: vec![HouseholdTag::ElderlyAlone],
            ..Default::default()
        };
        let id = self.phones[0].replica().add_household(g, &h).unwrap();
        self.made(
            0,
            before,
            &[(Collection::Households, id)],
            Displayed::new(),
            true,
        );
        self.report_hazard(0);
        for i in 0..self.phones.len() {
            self.sync_step(i, false).unwrap();
        }
    }

    fn report_hazard(&mut self, i: usize) {
        let grids = self.phones[i].replica().scope().grid_ids;
        let Some(&g) = pick(&mut self.rng, &grids) else {
            return;
        };
        let h = NewHazard {
            grid_id: g,
            source: Some(*pick(&mut self.rng, HazardSource::ALL).unwrap()),
            category: *pick(&mut self.rng, HazardCategory::ALL).unwrap(),
            severity: *pick(&mut self.rng, Severity::ALL).unwrap(),
            title: pick(&mut self.rng, TITLES).unwrap().to_string(),
            description: Some("发现于巡查".into()),
            lat: Some(31.2),
            lon: Some(121.5),
            address: Some("幸福路".into()),
        };
        let before = self.pending(i);
        let replica = self.phones[i].replica();
        let id = replica.report_hazard(&h).unwrap();
        let submit = replica.hazard_timeline(id).unwrap()[0].record.id;
        let device = self.device(i);
        let submit_seq = self.ledger.borrow().next_seq(device) + 1;
        self.submits.insert(id, (device, submit_seq));
        self.made(
            i,
            before,
            &[
                (Collection::Hazards, id),
                (Collection::HazardActions, submit),
            ],
            Displayed::new(),
            true,
        );
    }

    fn step(&mut self) {
        let i = self.rng.random_range(0..self.phones.len());
        let roll = self.rng.random_range(0..100u32);
        let grids = self.phones[i].replica().scope().grid_ids;
        let role = self.phones[i].role;
        let result: Result<(), ReplicaError> = (|| {
            let before = self.pending(i);
            match roll {
                0..=8 => {
                    let Some(&g) = pick(&mut self.rng, &grids) else {
                        return Ok(());
                    };
                    let h = NewHousehold {
                        address: format!("幸福路{}号", self.rng.random_range(1..100)),
                        phone: Some(pick(&mut self.rng, PHONE_NUMBERS).unwrap().to_string()),
                        members: Some(self.rng.random_range(1..5)),
                        tags: vec![*pick(&mut self.rng, HouseholdTag::ALL).unwrap()],
                        ..Default::default()
                    };
                    let id = self.phones[i].replica().add_household(g, &h)?;
                    self.made(
                        i,
                        before,
                        &[(Collection::Households, id)],
                        Displayed::new(),
                        true,
                    );
                }
                9..=25 => {
                    let ids = self.ids(i, Collection::Households);
                    let Some(&id) = pick(&mut self.rng, &ids) else {
                        return Ok(());
                    };
                    let mut patch = HouseholdPatch::default();
                    while patch == HouseholdPatch::default() {
                        if self.rng.random_bool(0.6) {
                            patch.notes = Some(pick(&mut self.rng, NOTES).unwrap().to_string());
                        }
                        if self.rng.random_bool(0.4) {
                            patch.phone =
                                Some(pick(&mut self.rng, PHONE_NUMBERS).unwrap().to_string());
                        }
                        if self.rng.random_bool(0.3) {
                            patch.members = Some(self.rng.random_range(0..4));
                        }
                        if self.rng.random_bool(0.2) {
                            patch.care_level = Some(*pick(&mut self.rng, CareLevel::ALL).unwrap());
                        }
                        if self.rng.random_bool(0.2) {
                            patch.tags =
                                Some(vec![*pick(&mut self.rng, HouseholdTag::ALL).unwrap()]);
                        }
                    }
                    let shown = self.shown(i, Collection::Households, id);
                    self.phones[i].replica().edit_household(id, &patch)?;
                    self.made(i, before, &[(Collection::Households, id)], shown, false);
                }
                26..=27 => {
                    let ids = self.ids(i, Collection::Households);
                    let Some(&id) = pick(&mut self.rng, &ids) else {
                        return Ok(());
                    };
                    let shown = self.shown(i, Collection::Households, id);
                    self.phones[i].replica().delete_household(id)?;
                    self.made(i, before, &[(Collection::Households, id)], shown, false);
                }
                28..=34 => {
                    let ids = self.ids(i, Collection::Households);
                    let Some(&h) = pick(&mut self.rng, &ids) else {
                        return Ok(());
                    };
                    let v = NewVisit {
                        household_id: h,
                        visited_at: None,
                        mode: *pick(&mut self.rng, VisitMode::ALL).unwrap(),
                        outcome: *pick(&mut self.rng, VisitOutcome::ALL).unwrap(),
                        summary: Some("走访，身体尚可".into()),
                        follow_up_due: None,
                        lat: Some(31.2),
                        lon: Some(121.5),
                    };
                    let id = self.phones[i].replica().record_visit(&v)?;
                    self.made(
                        i,
                        before,
                        &[(Collection::Visits, id)],
                        Displayed::new(),
                        true,
                    );
                    if self.rng.random_bool(0.6) {
                        let before = self.pending(i);
                        let n = NewNeed {
                            household_id: h,
                            visit_id: Some(id),
                            category: *pick(&mut self.rng, NeedCategory::ALL).unwrap(),
                            description: "需要上门助浴".into(),
                            urgency: Some(*pick(&mut self.rng, NeedUrgency::ALL).unwrap()),
                            due_on: None,
                        };
                        let nid = self.phones[i].replica().add_need(&n)?;
                        self.made(
                            i,
                            before,
                            &[(Collection::Needs, nid)],
                            Displayed::new(),
                            true,
                        );
                    }
                }
                35..=41 => {
                    let ids = self.ids(i, Collection::Needs);
                    let Some(&id) = pick(&mut self.rng, &ids) else {
                        return Ok(());
                    };
                    let patch = NeedPatch {
                        status: Some(*pick(&mut self.rng, NeedStatus::ALL).unwrap()),
                        resolution: self
                            .rng
                            .random_bool(0.5)
                            .then(|| pick(&mut self.rng, NOTES).unwrap().to_string()),
                        description: self.rng.random_bool(0.3).then(|| "需要轮椅".to_string()),
                        ..Default::default()
                    };
                    let shown = self.shown(i, Collection::Needs, id);
                    self.phones[i].replica().edit_need(id, &patch)?;
                    self.made(i, before, &[(Collection::Needs, id)], shown, false);
                }
                42..=47 => self.report_hazard(i),
                48..=52 => {
                    let ids = self.ids(i, Collection::Hazards);
                    let Some(&id) = pick(&mut self.rng, &ids) else {
                        return Ok(());
                    };
                    let patch = HazardPatch {
                        title: self
                            .rng
                            .random_bool(0.6)
                            .then(|| pick(&mut self.rng, TITLES).unwrap().to_string()),
                        severity: Some(*pick(&mut self.rng, Severity::ALL).unwrap()),
                        ..Default::default()
                    };
                    let shown = self.shown(i, Collection::Hazards, id);
                    self.phones[i].replica().edit_hazard(id, &patch)?;
                    self.made(i, before, &[(Collection::Hazards, id)], shown, false);
                }
                53..=63 => {
                    let ids = self.ids(i, Collection::Hazards);
                    let Some(&id) = pick(&mut self.rng, &ids) else {
                        return Ok(());
                    };
                    let actions: &[HazardAction] = match role {
                        Role::Worker => &[
                            HazardAction::SelfHandle,
                            HazardAction::VerifyPass,
                            HazardAction::VerifyFail,
                            HazardAction::Comment,
                        ],
                        _ => &[
                            HazardAction::Accept,
                            HazardAction::Accept,
                            HazardAction::Reject,
                            HazardAction::Dispatch,
                            HazardAction::Dispatch,
                            HazardAction::SignFor,
                            HazardAction::Return,
                            HazardAction::ReportDone,
                            HazardAction::VerifyPass,
                            HazardAction::VerifyFail,
                            HazardAction::Reopen,
                            HazardAction::Cancel,
                            HazardAction::Comment,
                        ],
                    };
                    let action = *pick(&mut self.rng, actions).unwrap();
                    let now = chrono::Utc::now().timestamp_millis();
                    let input = NewHazardAction {
                        action,
                        note: Some("处理说明".into()),
                        department: Some(pick(&mut self.rng, DEPARTMENTS).unwrap().to_string()),
                        due_at: Some(Timestamp(now + self.rng.random_range(1..5) * DAY_MS)),
                    };
                    let aid = self.phones[i].replica().act_on_hazard(id, &input)?;
                    self.made(
                        i,
                        before,
                        &[(Collection::HazardActions, aid)],
                        Displayed::new(),
                        true,
                    );
                }
                64..=66 => {
                    let Some(&g) = pick(&mut self.rng, &grids) else {
                        return Ok(());
                    };
                    let id = self.phones[i]
                        .replica()
                        .start_patrol(g, &NewPatrol::default())?;
                    self.made(
                        i,
                        before,
                        &[(Collection::Patrols, id)],
                        Displayed::new(),
                        true,
                    );
                }
                67..=71 => {
                    let ids = self.ids(i, Collection::Patrols);
                    let Some(&p) = pick(&mut self.rng, &ids) else {
                        return Ok(());
                    };
                    for _ in 0..self.rng.random_range(1..5) {
                        let before = self.pending(i);
                        let pt = NewTrackPoint {
                            recorded_at: None,
                            lat: 31.0 + self.rng.random_range(0..1000) as f64 * 1e-5,
                            lon: 121.0 + self.rng.random_range(0..1000) as f64 * 1e-5,
                            accuracy_m: Some(4.5),
                        };
                        let id = self.phones[i].replica().add_track_point(p, &pt)?;
                        self.made(
                            i,
                            before,
                            &[(Collection::TrackPoints, id)],
                            Displayed::new(),
                            true,
                        );
                    }
                }
                72..=73 => {
                    let ids = self.ids(i, Collection::Patrols);
                    let Some(&p) = pick(&mut self.rng, &ids) else {
                        return Ok(());
                    };
                    let shown = self.shown(i, Collection::Patrols, p);
                    self.phones[i]
                        .replica()
                        .end_patrol(p, Some("巡查结束，无异常".into()))?;
                    self.made(i, before, &[(Collection::Patrols, p)], shown, false);
                }
                74..=75 => {
                    let ids = self.ids(i, Collection::Hazards);
                    let Some(&owner) = pick(&mut self.rng, &ids) else {
                        return Ok(());
                    };
                    let a = NewAttachment {
                        owner_collection: Collection::Hazards,
                        owner_id: owner,
                        sha256: format!("{:064x}", self.rng.random::<u64>()),
                        media_type: "image/jpeg".into(),
                        bytes: 48_213,
                        taken_at: None,
                        lat: None,
                        lon: None,
                    };
                    let id = self.phones[i].replica().add_attachment(&a)?;
                    self.made(
                        i,
                        before,
                        &[(Collection::Attachments, id)],
                        Displayed::new(),
                        true,
                    );
                }
                76..=91 => {
                    let _ = self.sync_step(i, true);
                }
                92..=93 => self.toggle_grid(),
                94..=97 if self.worker.is_some() => self.kill_step(i),
                98 if self.restarts_on => {
                    self.env.restart().unwrap();
                    self.stats.restarts += 1;
                    self.log.push("server restarted".into());
                }
                99 => {
                    let skew = *pick(&mut self.rng, SKEWS).unwrap();
                    self.phones[i].set_skew(skew);
                    self.log.push(format!("p{i}: clock skew now {skew} ms"));
                }
                _ => {
                    let _ = self.sync_step(i, true);
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            panic!("phone {i} refused a write the generator thought valid (roll {roll}): {e}");
        }
    }

    /// One sync of phone `i` through the oracle and (with `faults`) the fault injector.
    fn sync_step(&mut self, i: usize, faults: bool) -> Result<SyncSummary, SyncError> {
        let env = self.env;
        let phone = &self.phones[i];
        let http = phone.http().expect("transport");
        let observed = Observed::new(
            http,
            self.ledger.clone(),
            env.side.clone(),
            phone.device_id(),
        );
        let rates = if faults {
            FaultRates {
                drop_request: 0.08,
                drop_response: 0.08,
                duplicate: 0.08,
                delay: 0.04,
                replay_stale: 0.06,
                restart: if self.restarts_on { 0.03 } else { 0.0 },
            }
        } else {
            FaultRates::default()
        };
        let mut t =
            Faulty::new(observed, self.rng.next_u64(), rates).with_stash(phone.stash.clone());
        if self.restarts_on {
            t = t.with_restarter(Box::new(move || env.restart().map_err(|e| e.to_string())));
        }
        let options = SyncOptions {
            push_page: self.rng.random_range(1..8),
            pull_page: self.rng.random_range(1..12),
            app_version: Some("e2e".into()),
        };
        let outcome = sync(phone.replica(), &mut t, &options);
        self.stats.faults.add(&t.counts);
        self.stats.restarts += t.counts.restart;
        self.stats.syncs += 1;
        self.log.push(format!(
            "p{i} sync (faults {:?}): {}",
            t.counts,
            match &outcome {
                Ok(s) => format!(
                    "ok, pushed {} applied {} dup {} rejected {} conflicts {} pulled {} purged {}",
                    s.pushed,
                    s.applied,
                    s.duplicates,
                    s.rejected.len(),
                    s.conflicts.len(),
                    s.pulled,
                    s.purged
                ),
                Err(e) => format!("error: {e}"),
            }
        ));
        drop(t);
        self.check_reported(i, &outcome);
        outcome
    }

    /// "Sync reported as successful when it was not" must never happen.
    fn check_reported(&mut self, i: usize, outcome: &Result<SyncSummary, SyncError>) {
        let phone = &self.phones[i];
        let status = phone.replica().status().unwrap();
        match outcome {
            Ok(summary) => {
                assert_eq!(
                    (status.pending, status.acked, summary.pending),
                    (0, 0, 0),
                    "p{i}: a successful sync left changes pending or unconfirmed"
                );
                assert!(
                    status.last_error.is_none(),
                    "p{i}: success with an error shown"
                );
                assert!(
                    status.last_sync_at.is_some(),
                    "p{i}: success without a sync time"
                );
                let device = phone.device_id();
                let server = db::last_applied_seq(&self.env.side, &device.to_string()).unwrap();
                let made = self.ledger.borrow().made_count(device);
                assert_eq!(
                    server.unwrap_or(0) as u64,
                    made,
                    "p{i}: sync reported success but the server has not processed every mutation"
                );
            }
            Err(e) => {
                self.stats.failed_syncs += 1;
                assert!(
                    status.last_error.is_some(),
                    "p{i}: failed sync ({e}) not shown in status"
                );
            }
        }
    }

    /// The admin withdraws worker 2's second grid, or gives it back.
    fn toggle_grid(&mut self) {
        let (g1, g2) = (self.site.g1.clone(), self.site.g2.clone());
        let w2 = self.site.user_mut("w2").unwrap();
        let grids = if w2.grids.contains(&g2) {
            vec![g1]
        } else {
            vec![g1, g2]
        };
        self.env.admin.set_grids(&w2.id, &grids).unwrap();
        self.log.push(format!("admin: w2's grids now {grids:?}"));
        w2.grids = grids;
        self.stats.withdrawals += 1;
    }

    /// `grid-worker sync` on a phone's replica, killed at a random moment.
    fn kill_step(&mut self, i: usize) {
        let Some(bin) = self.worker.clone() else {
            return;
        };
        let device = self.device(i).to_string();
        let side = self.env.side.clone();
        // A whole `grid-worker sync` takes a few tens of milliseconds here: kill within that
        // window so the kill lands during start-up, the push or the pull.
        let kill_after = Duration::from_millis(if self.rng.random_bool(0.5) {
            self.rng.random_range(1..8)
        } else {
            self.rng.random_range(8..40)
        });
        let before = db::last_applied_seq(&side, &device).unwrap();
        let run = self.phones[i]
            .run_worker(&bin, &["sync"], kill_after)
            .unwrap();
        self.stats.worker_runs += 1;
        if run.killed {
            self.stats.kills += 1;
            // A push the process sent may still be committing: wait until the server is done
            // with it before anyone else's push is predicted.
            let mut last = db::last_applied_seq(&side, &device).unwrap();
            loop {
                std::thread::sleep(Duration::from_millis(150));
                let now = db::last_applied_seq(&side, &device).unwrap();
                if now == last {
                    break;
                }
                last = now;
            }
            if last != before {
                self.stats.kills_after_push += 1;
            }
            if last != before && self.pending(i) > 0 {
                self.stats.kills_response_lost += 1;
            }
        } else {
            assert!(
                run.success,
                "grid-worker sync failed without faults: {}{}",
                run.stdout, run.stderr
            );
            let summary: Value = serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| {
                panic!(
                    "grid-worker sync printed no JSON summary ({e}): {}",
                    run.stdout
                )
            });
            assert!(summary.is_object(), "{summary}");
        }
        self.log.push(format!(
            "p{i}: grid-worker sync, killed after {kill_after:?}: {}",
            run.killed
        ));
    }

    /// Everyone syncs without faults until nothing is pending, then once more.
    fn settle(&mut self) {
        for round in 0..8 {
            for i in 0..self.phones.len() {
                if let Err(e) = self.sync_step(i, false) {
                    if matches!(
                        e,
                        SyncError::Transport(sync_core::sync::TransportError::Auth(_))
                    ) {
                        // The worker logs in again (a session ended, e.g. by a refresh that a
                        // killed process never stored); nothing unsent is lost.
                        self.log.push(format!("p{i}: logs in again after: {e}"));
                        let url = self.env.base_url.clone();
                        self.phones[i].login(&url).unwrap();
                        continue;
                    }
                    panic!("clean sync of p{i} failed in round {round}: {e}");
                }
            }
            let quiet = self.phones.iter().all(|p| {
                let s = p.replica().status().unwrap();
                s.pending == 0 && s.acked == 0
            });
            if quiet {
                for i in 0..self.phones.len() {
                    self.sync_step(i, false).unwrap();
                }
                return;
            }
        }
        panic!("still pending after 8 clean rounds");
    }

    fn grids_of(&self, i: usize) -> Vec<String> {
        let mut g = self.site.user(self.keys[i]).unwrap().grids.clone();
        g.sort();
        g
    }

    fn check(&mut self) {
        let env = self.env;
        let side = &env.side;
        let ledger = self.ledger.borrow();
        assert!(
            ledger.violations.is_empty(),
            "conflict oracle: {:#?}",
            ledger.violations
        );

        // Convergence, per phone and grid.
        for (i, p) in self.phones.iter().enumerate() {
            assert_converged(env, p, &self.grids_of(i), &format!("seed {}", self.seed));
        }

        // Exactly once.
        let devices: Vec<String> = self
            .phones
            .iter()
            .map(|p| p.device_id().to_string())
            .collect();
        for (i, p) in self.phones.iter().enumerate() {
            let last = db::last_applied_seq(side, &devices[i])
                .unwrap()
                .unwrap_or(0) as u64;
            assert_eq!(
                last,
                ledger.made_count(p.device_id()),
                "p{i}: processed seqs"
            );
        }

        // Rejections: stored once per (device, seq), shown by the phone unless superseded.
        let rejections = db::rejections_of(side, &devices).unwrap();
        self.stats.rejections += rejections.len() as u64;
        let rejected: BTreeSet<(String, u64)> = rejections
            .iter()
            .map(|r| (r.device_id.clone(), r.seq as u64))
            .collect();
        assert_eq!(rejected.len(), rejections.len(), "a rejection stored twice");
        for (i, p) in self.phones.iter().enumerate() {
            let device = p.device_id();
            let made: &[Made] = ledger.made.get(&device).map_or(&[], Vec::as_slice);
            let listed: BTreeSet<u64> = p
                .replica()
                .status()
                .unwrap()
                .rejections
                .iter()
                .map(|r| r.seq)
                .collect();
            let mine: Vec<u64> = (1..=made.len() as u64)
                .filter(|s| rejected.contains(&(devices[i].clone(), *s)))
                .collect();
            for &r in &mine {
                let record = made[(r - 1) as usize].record_id;
                let superseded = (r + 1..=made.len() as u64).any(|s| {
                    made[(s - 1) as usize].record_id == record
                        && !rejected.contains(&(devices[i].clone(), s))
                });
                if !superseded {
                    assert!(
                        listed.contains(&r),
                        "p{i}: the rejection of seq {r} is not shown"
                    );
                }
            }
            let all: BTreeSet<u64> = mine.iter().copied().collect();
            assert!(
                listed.is_subset(&all),
                "p{i} lists rejections the server never made: {listed:?} vs {all:?}"
            );
        }

        // What the server holds.
        let grids = self.site.grids();
        let mut on_server: HashMap<String, Value> = HashMap::new();
        for g in &grids {
            let export = env.admin.export(g).unwrap();
            for c in Collection::ALL {
                for r in export[c.as_str()].as_array().unwrap() {
                    on_server.insert(r["id"].as_str().unwrap().to_owned(), r.clone());
                }
            }
        }
        for r in &rejections {
            match r.code.as_str() {
                "out_of_scope" | "not_found" => {}
                "missing_field" => assert!(
                    !on_server.contains_key(r.record_id.as_deref().unwrap_or_default()),
                    "an edit of an existing record was refused: {r:?}"
                ),
                _ => panic!("unexpected rejection {r:?}"),
            }
        }
        let mut expected_rows: BTreeMap<Collection, BTreeSet<RecordId>> = BTreeMap::new();
        for s in &self.saved {
            let creation_rejected = rejected.contains(&(s.device.to_string(), s.seq));
            let stored = on_server.contains_key(&s.id.to_string());
            assert!(
                stored || creation_rejected,
                "saved {} {} is lost",
                s.collection,
                s.id
            );
            assert!(
                !(stored && creation_rejected),
                "{} {} rejected yet stored",
                s.collection,
                s.id
            );
            if creation_rejected {
                let p = &self.phones[s.phone];
                if p.replica().record(s.collection, s.id).is_err() {
                    if let Ok(state) = p.replica().sync_state(s.collection, s.id) {
                        assert!(
                            matches!(state, SyncState::Rejected { .. }),
                            "{} {}: {state:?}",
                            s.collection,
                            s.id
                        );
                    }
                }
            } else {
                expected_rows.entry(s.collection).or_default().insert(s.id);
            }
        }
        for c in Collection::ALL {
            let rows = db::count_rows(side, c, &grids).unwrap();
            let want = expected_rows.get(&c).map_or(0, BTreeSet::len) as i64;
            assert_eq!(
                rows, want,
                "rows of {c} on the server (duplicates or strays)"
            );
        }
        for (hazard, (device, seq)) in &self.submits {
            let Some(h) = on_server.get(&hazard.to_string()) else {
                continue;
            };
            let submits = on_server
                .values()
                .filter(|a| {
                    a["hazard_id"] == Value::String(hazard.to_string())
                        && a["action"] == "submit"
                        && a["effect"] == "applied"
                })
                .count();
            let submit_rejected = rejected.contains(&(device.to_string(), *seq));
            assert_eq!(
                submits,
                usize::from(!submit_rejected),
                "hazard {hazard}: applied submits ({h})"
            );
        }

        // Conflicts: the server's table against the oracle.
        let rows = db::conflicts_in(side, &grids).unwrap();
        self.stats.conflicts += rows.len() as u64;
        let mut seen = BTreeSet::new();
        for row in &rows {
            let device: DeviceId = row
                .incoming_device
                .as_deref()
                .expect("conflict from a push")
                .parse()
                .unwrap();
            let seq = row.incoming_seq.expect("conflict with its seq") as u64;
            let key = (device, seq, row.field.clone());
            assert!(seen.insert(key.clone()), "conflict stored twice: {row:?}");
            let winner_incoming =
                row.incoming_version.as_str() > row.current_version.as_deref().unwrap_or("");
            assert_eq!(
                row.winner == "incoming",
                winner_incoming,
                "winner against the stamps: {row:?}"
            );
            if !ledger.checked.contains_key(&(device, seq)) || ledger.uncertain.contains(&key) {
                continue;
            }
            self.stats.conflicts_checked += 1;
            let e = ledger
                .expected
                .get(&key)
                .unwrap_or_else(|| panic!("conflict nobody predicted: {row:?}"));
            assert_eq!(row.current_value, e.current, "current value of {row:?}");
            assert_eq!(row.incoming_value, e.incoming, "incoming value of {row:?}");
            assert_eq!(
                (row.collection.as_str(), row.record_id.as_str()),
                (e.collection.as_str(), e.record_id.to_string().as_str())
            );
        }
        for key in ledger.expected.keys() {
            if ledger.uncertain.contains(key) {
                continue;
            }
            assert!(
                seen.contains(key),
                "predicted conflict not stored: {key:?} {:?}",
                ledger.expected[key]
            );
        }
    }
}

impl Case<'_> {
    /// The review API shows the same conflicts as the table, with both values; a supervisor
    /// reverses some of them, and the kept values reach every phone.
    fn review_conflicts(&mut self) {
        let env = self.env;
        let grids = self.site.grids();
        let rows = db::conflicts_in(&env.side, &grids).unwrap();
        let mut listed = Vec::new();
        for g in &grids {
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(c) => format!("/api/v1/conflicts?grid_id={g}&limit=500&cursor={c}"),
                    None => format!("/api/v1/conflicts?grid_id={g}&limit=500"),
                };
                let page = env.admin.get(&path).unwrap();
                listed.extend(page["items"].as_array().unwrap().iter().cloned());
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
        }
        assert_eq!(
            listed.len(),
            rows.len(),
            "GET /conflicts lists every stored conflict"
        );
        for row in &rows {
            let item = listed
                .iter()
                .find(|c| {
                    c["record_id"] == row.record_id.as_str()
                        && c["field"] == row.field.as_str()
                        && c["incoming"]["version"] == row.incoming_version.as_str()
                })
                .unwrap_or_else(|| panic!("conflict not listed: {row:?}"));
            assert_eq!(item["current"]["value"], row.current_value, "{item}");
            assert_eq!(item["incoming"]["value"], row.incoming_value, "{item}");
            assert_eq!(item["winner"], row.winner.as_str(), "{item}");
        }
        if listed.is_empty() {
            return;
        }
        // The supervisor reverses up to two of them (in the order the server recorded them).
        let sup = self.site.user("sup").unwrap().username.clone();
        let supervisor =
            grid_tests::admin::Admin::login(&env.base_url, &sup, grid_tests::world::PASSWORD)
                .unwrap();
        let mut resolved = Vec::new();
        for _ in 0..2.min(listed.len()) {
            let c = listed.remove(self.rng.random_range(0..listed.len()));
            let keep = if self.rng.random_bool(0.5) {
                "current"
            } else {
                "incoming"
            };
            let resp = supervisor
                .call(
                    "POST",
                    &format!("/api/v1/conflicts/{}/resolve", c["id"].as_str().unwrap()),
                    Some(&serde_json::json!({"keep": keep})),
                )
                .unwrap();
            assert_eq!(resp.status, 200, "resolve {c}: {}", resp.text);
            self.log.push(format!(
                "supervisor keeps {keep} of {}.{}",
                c["record_id"], c["field"]
            ));
            resolved.push((c, keep));
        }
        // Only the last resolution of a field decides its value.
        let mut kept: BTreeMap<(String, String), Value> = BTreeMap::new();
        for (c, keep) in &resolved {
            let key = (
                c["record_id"].as_str().unwrap().to_owned(),
                c["field"].as_str().unwrap().to_owned(),
            );
            kept.insert(key, c[*keep]["value"].clone());
        }
        for _ in 0..2 {
            for i in 0..self.phones.len() {
                let r = self.phones[i].sync().unwrap();
                assert!(r.is_ok(), "p{i} after the review: {r:?}");
            }
        }
        for ((record, field), value) in &kept {
            let c = &resolved
                .iter()
                .find(|(c, _)| c["record_id"] == record.as_str())
                .unwrap()
                .0;
            let export = env.admin.export(c["grid_id"].as_str().unwrap()).unwrap();
            let rec = export[c["collection"].as_str().unwrap()]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"] == record.as_str())
                .unwrap();
            assert_eq!(
                &rec[field.as_str()],
                value,
                "the kept value of {record}.{field}"
            );
        }
        for (i, p) in self.phones.iter().enumerate() {
            assert_converged(
                env,
                p,
                &self.grids_of(i),
                &format!("seed {} after the review", self.seed),
            );
        }
    }
}

fn run_seed(env: &Env, seed: u64, worker: Option<PathBuf>) -> Stats {
    let mut case = Case::new(env, seed, worker);
    case.warm_up();
    let steps = case.rng.random_range(12..32);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // Seeds with kill scenarios kill one `grid-worker sync` at least, on the phone with
        // the most unsent work at a random moment of the run.
        let forced_kill = case
            .worker
            .is_some()
            .then(|| case.rng.random_range(0..steps));
        for k in 0..steps {
            if forced_kill == Some(k) {
                let busiest = (0..case.phones.len())
                    .max_by_key(|&i| case.pending(i))
                    .unwrap_or(0);
                case.kill_step(busiest);
            }
            case.step();
        }
        case.settle();
        case.check();
        case.review_conflicts();
    }));
    if let Err(e) = outcome {
        eprintln!("seed {seed} log:\n  {}", case.log.join("\n  "));
        std::panic::resume_unwind(e);
    }
    std::mem::take(&mut case.stats)
}

fn run_backend(backend: Backend) {
    on_backend(backend, |env| {
        let worker = worker_bin::locate();
        if worker.is_none() {
            eprintln!(
                "note: {} not found next to the test binary; no kill scenarios",
                worker_bin::file_name()
            );
        }
        let (base, count) = match env_u64("E2E_SEED") {
            Some(s) => (s, 1),
            None => (0x6772_6964_0000, env_u64("E2E_SEEDS").unwrap_or(100)),
        };
        let start = Instant::now();
        let mut total = Stats::default();
        for k in 0..count {
            let seed = base + k;
            match catch_unwind(AssertUnwindSafe(|| run_seed(env, seed, worker.clone()))) {
                Ok(s) => total.add(&s),
                Err(_) => panic!(
                    "seed {seed} failed on {backend:?}; replay it with E2E_SEED={seed} cargo test -p grid-tests --test convergence {}",
                    backend.as_str()
                ),
            }
            if !env.server.borrow().is_running() {
                env.restart().unwrap();
            }
        }
        println!(
            "{backend:?}: {count} seeds in {:.1?}: {total:?}",
            start.elapsed()
        );
        if count >= 50 {
            assert!(total.faults.total() > count, "too few faults injected");
            assert!(
                total.conflicts_checked > 0,
                "no concurrent edit was checked"
            );
            assert!(total.restarts > 0, "no server restart");
            assert!(total.withdrawals > 0, "no grid withdrawn");
            if worker.is_some() {
                assert!(total.kills > 0, "no grid-worker killed mid-sync");
            }
        }
    });
}

#[test]
fn sqlite() {
    run_backend(Backend::Sqlite);
}

#[test]
fn postgres() {
    run_backend(Backend::Postgres);
}
