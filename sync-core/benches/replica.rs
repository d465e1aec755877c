//! What the replica costs per write, against the cheapest thing that could record the same
//! data: a plain rusqlite insert of the same row into a plain table of a database with the same
//! pragmas (WAL, synchronous=FULL, temp_store=MEMORY, foreign keys), one transaction per write.
//!
//! (a) recording a hazard report (the replica writes the hazard, its `submit` action, two
//!     outbox entries and the clock/seq counters) vs inserting one hazard row;
//! (b) appending a track point (point + outbox entry + counters) vs inserting one point row;
//! (c) an initial pull of 20 000 records (pages of 500) into an empty replica: records/s.
//!
//! `cargo bench -p sync-core --bench replica` runs criterion on the four and then prints the
//! two ratios from a direct interleaved measurement. `BENCH_DIR` picks the directory of the
//! database files (default: the system temp dir; use a tmpfs to see CPU cost without fsync).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{black_box, Criterion};
use rusqlite::{params, Connection, TransactionBehavior};
use sync_core::collection::Collection;
use sync_core::model::{
    HazardCategory, HazardSource, NewHazard, NewPatrol, NewTrackPoint, Severity,
};
use sync_core::replica::Replica;
use sync_core::sync::{sync, SyncOptions, Transport, TransportError};
use sync_core::wire::{Change, PullResponse, PushRequest, PushResponse, Scope};
use sync_core::workflow::Role;
use sync_core::Hlc;
use sync_core::{GridId, RecordId, Timestamp, UserId};

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

fn plain(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    let _: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY; PRAGMA foreign_keys = ON;
         CREATE TABLE IF NOT EXISTS hazards (id TEXT PRIMARY KEY, grid_id TEXT NOT NULL, reporter_id TEXT,
             source TEXT, category TEXT NOT NULL, severity TEXT NOT NULL, title TEXT NOT NULL,
             description TEXT, lat REAL, lon REAL, address TEXT, status TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS track_points (id TEXT PRIMARY KEY, grid_id TEXT NOT NULL,
             patrol_id TEXT NOT NULL, recorded_at TEXT NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL,
             accuracy_m REAL);",
    )
    .unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn
}

struct Bench {
    _dir: tempfile::TempDir,
    replica: Replica,
    plain: Connection,
    grid: GridId,
    user: UserId,
    patrol: RecordId,
    i: u64,
}

fn hazard(grid: GridId, i: u64) -> NewHazard {
    NewHazard {
        grid_id: grid,
        source: Some(HazardSource::Patrol),
        category: HazardCategory::EbikeCharging,
        severity: Severity::High,
        title: format!("楼道内电瓶车充电 {i}"),
        description: Some("3号楼2单元一楼，已劝离".into()),
        lat: Some(31.2304),
        lon: Some(121.4737),
        address: Some("幸福路8号".into()),
    }
}

impl Bench {
    fn new() -> Self {
        let dir = bench_dir();
        let replica = Replica::open(dir.path().join("replica.db")).unwrap();
        let grid = GridId::new();
        let user = UserId::new();
        replica.set_session(user, Role::Worker, vec![grid]).unwrap();
        let patrol = replica.start_patrol(grid, &NewPatrol::default()).unwrap();
        let plain = plain(&dir.path().join("plain.db"));
        Self {
            _dir: dir,
            replica,
            plain,
            grid,
            user,
            patrol,
            i: 0,
        }
    }

    fn replica_hazard(&mut self) {
        self.i += 1;
        black_box(
            self.replica
                .report_hazard(&hazard(self.grid, self.i))
                .unwrap(),
        );
    }

    fn plain_hazard(&mut self) {
        self.i += 1;
        let h = hazard(self.grid, self.i);
        let tx = self
            .plain
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        tx.prepare_cached(
            "INSERT INTO hazards (id, grid_id, reporter_id, source, category, severity, title, description, lat, lon, address, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'reported')",
        )
        .unwrap()
        .execute(params![
            RecordId::new().to_string(),
            self.grid.to_string(),
            self.user.to_string(),
            h.source.map(|s| s.as_str()),
            h.category.as_str(),
            h.severity.as_str(),
            h.title,
            h.description,
            h.lat,
            h.lon,
            h.address,
        ])
        .unwrap();
        tx.commit().unwrap();
    }

    fn point(&self) -> NewTrackPoint {
        NewTrackPoint {
            recorded_at: None,
            lat: 31.2304 + (self.i % 1000) as f64 * 1e-5,
            lon: 121.4737,
            accuracy_m: Some(4.5),
        }
    }

    fn replica_point(&mut self) {
        self.i += 1;
        let p = self.point();
        black_box(self.replica.add_track_point(self.patrol, &p).unwrap());
    }

    fn plain_point(&mut self) {
        self.i += 1;
        let p = self.point();
        let tx = self
            .plain
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        tx.prepare_cached(
            "INSERT INTO track_points (id, grid_id, patrol_id, recorded_at, lat, lon, accuracy_m)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .unwrap()
        .execute(params![
            RecordId::new().to_string(),
            self.grid.to_string(),
            self.patrol.to_string(),
            Timestamp::now().to_rfc3339(),
            p.lat,
            p.lon,
            p.accuracy_m,
        ])
        .unwrap();
        tx.commit().unwrap();
    }
}

fn criterion_benches(c: &mut Criterion) {
    let mut b = Bench::new();
    let mut g = c.benchmark_group("hazard report");
    g.bench_function("replica", |x| x.iter(|| b.replica_hazard()));
    g.bench_function("plain insert", |x| x.iter(|| b.plain_hazard()));
    g.finish();
    let mut g = c.benchmark_group("track point");
    g.bench_function("replica", |x| x.iter(|| b.replica_point()));
    g.bench_function("plain insert", |x| x.iter(|| b.plain_point()));
    g.finish();
}

/// Median per-op time of `f`, interleaving rounds of the two contenders so that disk and CPU
/// noise hits both alike.
fn ratio(
    b: &mut Bench,
    rounds: usize,
    per_round: usize,
    ours: fn(&mut Bench),
    theirs: fn(&mut Bench),
) -> (Duration, Duration) {
    let (mut a, mut p) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..per_round {
            ours(b);
        }
        a.push(t.elapsed() / per_round as u32);
        let t = Instant::now();
        for _ in 0..per_round {
            theirs(b);
        }
        p.push(t.elapsed() / per_round as u32);
    }
    a.sort();
    p.sort();
    (a[a.len() / 2], p[p.len() / 2])
}

/// A server holding `total` households of one grid, serving them in pages.
struct Initial {
    grid: GridId,
    total: usize,
}

impl Transport for Initial {
    fn push(&mut self, _: &PushRequest) -> Result<PushResponse, TransportError> {
        Err(TransportError::Network("read-only".into()))
    }
    fn pull(&mut self, cursor: Option<&str>, limit: usize) -> Result<PullResponse, TransportError> {
        let from: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let to = (from + limit).min(self.total);
        let changes = (from..to)
            .map(|i| {
                let v = Hlc::new(1_795_249_800_000 + i as u64, 0, "server");
                let mut fields = sync_core::wire::Fields::new();
                fields.insert("address".into(), format!("幸福路{i}号").into());
                fields.insert("head_name".into(), "王秀兰".into());
                fields.insert("members".into(), 2.into());
                fields.insert("tags".into(), serde_json::json!(["elderly_alone"]));
                let versions = fields.keys().map(|k| (k.clone(), v.clone())).collect();
                Change {
                    collection: Collection::Households,
                    id: RecordId::new(),
                    grid_id: self.grid,
                    fields,
                    versions,
                    deleted: false,
                }
            })
            .collect();
        Ok(PullResponse {
            changes,
            cursor: to.to_string(),
            has_more: to < self.total,
            server_time: Timestamp::now(),
            server_hlc: None,
            scope: Some(Scope {
                grid_ids: vec![self.grid],
            }),
        })
    }
}

fn initial_pull(total: usize) -> Duration {
    let dir = bench_dir();
    let replica = Replica::open(dir.path().join("initial.db")).unwrap();
    let grid = GridId::new();
    replica
        .set_session(UserId::new(), Role::Worker, vec![grid])
        .unwrap();
    let mut server = Initial { grid, total };
    let t = Instant::now();
    let s = sync(&replica, &mut server, &SyncOptions::default()).unwrap();
    let took = t.elapsed();
    assert_eq!(s.pulled as usize, total);
    assert_eq!(replica.households(grid).unwrap().len(), total);
    took
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();

    let dir: PathBuf = std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let mut b = Bench::new();
    let (rh, ph) = ratio(&mut b, 15, 40, Bench::replica_hazard, Bench::plain_hazard);
    let (rp, pp) = ratio(&mut b, 15, 40, Bench::replica_point, Bench::plain_point);
    println!("\nreplica vs plain insert (files in {}):", dir.display());
    println!(
        "  hazard report: replica {rh:?} / plain {ph:?} = {:.2}x",
        rh.as_secs_f64() / ph.as_secs_f64()
    );
    println!(
        "  track point:   replica {rp:?} / plain {pp:?} = {:.2}x",
        rp.as_secs_f64() / pp.as_secs_f64()
    );
    let total = 20_000;
    let took = initial_pull(total);
    println!(
        "  initial pull:  {total} records in {took:?} = {:.0} records/s",
        total as f64 / took.as_secs_f64()
    );
}
