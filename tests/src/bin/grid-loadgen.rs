//! `grid-loadgen`: a day of field work by N phones, synced concurrently to the real server,
//! then the initial sync of a busy grid by a fresh phone; prints one JSON report.
//!
//! ```text
//! grid-loadgen [--workers N] [--workers-per-grid K] [--database-url sqlite://…|postgres://…]
//!              [--server http://127.0.0.1:PORT --admin-user U --admin-password-env VAR]
//!              [--points 720] [--visits 8] [--hazards 3] [--concurrency C] [--out FILE]
//! ```
//!
//! 1. Starts the server in process on `127.0.0.1:<port>` over `--database-url` (default: a
//!    SQLite file in a temp dir; migrations run as `serve` does) with a first admin made in
//!    the database — or targets `--server URL` with an existing admin's credentials.
//! 2. Provisions through the admin API a district, street and community, ⌈N/K⌉ grids and N
//!    workers, K per grid.
//! 3. N threads, each a phone — a real sync-core replica in a temp dir and `HttpTransport` —
//!    log in and record a day offline: 8 households, each visited once with a need; one patrol
//!    of 720 track points (one every 5 s), ended; 3 hazards reported, each with a photo's
//!    metadata and handled on the spot. Then all sync at once (at most C at a time); a sync
//!    that fails is retried with backoff, up to 5 times, and every failure is counted.
//! 4. Checks that the server holds exactly what the phones saved (records per collection and
//!    grid, from `GET /api/v1/export`), and that no phone has anything pending.
//! 5. A fresh worker of grid 0 logs in on a fresh phone and performs the initial sync of that
//!    busy grid (K workers' days); its export must equal the server's.
//! 6. Baseline (own server only): a plain batched diesel insert of as many track-point rows,
//!    200 per transaction, into the same database.
//!
//! Report: mutations/s of the concurrent sync, push latency p50/p95/p99, initial-sync rows/s,
//! JSON bytes per record on the wire (request and response bodies as serialized, before HTTP
//! compression), errors, the check, the baseline. Exit status 0 when the check passed and
//! every phone synced, 1 otherwise, 2 on bad arguments.
//!
//! Bounded: every request has a timeout, retries are counted and bounded, and a watchdog
//! ends the process after `--max-seconds` (default 3600). Only loopback addresses are used.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use diesel::prelude::*;
use grid_server::db::schema::track_points;
use grid_server::db::{write_transaction, DbConnection, DbPool, PoolOptions};
use grid_server::sync::rows::TrackPointRow;
use grid_tests::admin::{Admin, NewUserSpec};
use grid_tests::meter::{quantile_ms, Meter, Metered};
use grid_tests::server::{bootstrap_admin, LiveServer, ServerOptions};
use grid_tests::{env_u64, scratch_dir};
use serde_json::{json, Value};
use sync_core::http::session::login_with;
use sync_core::http::{HttpOptions, HttpTransport};
use sync_core::model::*;
use sync_core::replica::{Replica, ReplicaOptions};
use sync_core::sync::{sync, Backoff, SyncOptions};
use sync_core::{Collection, GridId, Timestamp};

#[derive(Parser, Debug)]
#[command(
    name = "grid-loadgen",
    about = "A day of field work by N phones, synced concurrently to a grid server"
)]
struct Args {
    /// Simulated phones (one worker each).
    #[arg(long, default_value_t = 10)]
    workers: usize,
    /// Workers sharing one grid (the "busy grid" of the initial sync holds this many days).
    #[arg(long, default_value_t = 10)]
    workers_per_grid: usize,
    /// The database of the in-process server: sqlite://PATH or postgres://… on a loopback
    /// host (default: a SQLite file in a temp dir).
    #[arg(long)]
    database_url: Option<String>,
    /// Target a running server (loopback only) instead of starting one.
    #[arg(long)]
    server: Option<String>,
    /// With --server: an admin's username.
    #[arg(long, default_value = "admin")]
    admin_user: String,
    /// With --server: the environment variable holding that admin's password.
    #[arg(long, default_value = "GRID_ADMIN_PASSWORD")]
    admin_password_env: String,
    /// Track points of the day's patrol.
    #[arg(long, default_value_t = 720)]
    points: usize,
    /// Households visited (each with a need).
    #[arg(long, default_value_t = 8)]
    visits: usize,
    /// Hazards reported (each with a photo's metadata and an action).
    #[arg(long, default_value_t = 3)]
    hazards: usize,
    /// At most this many phones sync at the same time (default: all).
    #[arg(long)]
    concurrency: Option<usize>,
    /// The in-process server's database pool size.
    #[arg(long, default_value_t = 16)]
    pool: u32,
    /// Mutations per push request.
    #[arg(long, default_value_t = 200)]
    push_page: usize,
    /// Stop with an error after this many seconds.
    #[arg(long, default_value_t = 3600)]
    max_seconds: u64,
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The host of a URL (`scheme://[user[:pw]@]host[:port][/…]`).
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next()?.to_owned()
    } else {
        hostport.split(':').next()?.to_owned()
    };
    Some(host)
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_loopback(what: &str, url: &str) -> anyhow::Result<()> {
    match host_of(url) {
        Some(h) if is_loopback(&h) => Ok(()),
        Some(h) => bail!("{what}: only loopback addresses are allowed, not {h:?}"),
        None => bail!("{what}: cannot read the host of {url:?}"),
    }
}

/// A counting semaphore.
struct Gate {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Gate {
    fn new(n: usize) -> Self {
        Self {
            free: Mutex::new(n.max(1)),
            cv: Condvar::new(),
        }
    }
    fn enter(&self) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.cv.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
    }
    fn leave(&self) {
        *self.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.cv.notify_one();
    }
}

fn http_options() -> HttpOptions {
    HttpOptions {
        timeout: Duration::from_secs(120),
        max_retries: 3,
        base_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(5),
        app_version: Some(format!("grid-loadgen/{}", env!("CARGO_PKG_VERSION"))),
    }
}

/// What one phone did.
#[derive(Default)]
struct PhoneResult {
    login: Duration,
    record: Duration,
    mutations: u64,
    /// Records saved, per collection.
    saved: BTreeMap<Collection, u64>,
    meter: Meter,
    sync_attempts: u32,
    synced: bool,
    pending_after: u64,
    errors: Vec<String>,
}

struct PhonePlan {
    username: String,
    password: String,
    grid: GridId,
    dir: PathBuf,
    points: usize,
    visits: usize,
    hazards: usize,
    push_page: usize,
}

/// Log in and record a day's work offline.
fn prepare(plan: &PhonePlan, url: &str, out: &mut PhoneResult) -> anyhow::Result<Replica> {
    let replica = Replica::open_with(plan.dir.join("phone.db"), ReplicaOptions::default())?;
    let t = Instant::now();
    login_with(
        &replica,
        url,
        &plan.username,
        &plan.password,
        Some("loadgen phone"),
        &http_options(),
    )
    .map_err(|e| anyhow!("login: {e}"))?;
    out.login = t.elapsed();

    let t = Instant::now();
    let mut saved = |c: Collection, n: u64| *out.saved.entry(c).or_default() += n;
    let g = plan.grid;
    let day_start = chrono::Utc::now().timestamp_millis() - 8 * 3_600_000;
    let patrol = replica.start_patrol(
        g,
        &NewPatrol {
            started_at: Some(Timestamp(day_start)),
            summary: None,
        },
    )?;
    saved(Collection::Patrols, 1);
    for k in 0..plan.points {
        let f = k as f64;
        replica.add_track_point(
            patrol,
            &NewTrackPoint {
                recorded_at: Some(Timestamp(day_start + k as i64 * 5_000)),
                lat: 32.06 + (f * 0.37).sin() * 0.002,
                lon: 118.78 + (f * 0.23).cos() * 0.002,
                accuracy_m: Some(4.0 + (k % 7) as f64),
            },
        )?;
    }
    saved(Collection::TrackPoints, plan.points as u64);
    replica.end_patrol(patrol, Some("巡查结束：楼道、充电点、垃圾站".into()))?;
    for k in 0..plan.visits {
        let h = replica.add_household(
            g,
            &NewHousehold {
                address: format!("幸福路{}号", k + 1),
                building: Some(format!("{}栋", k % 4 + 1)),
                unit: Some("2单元".into()),
                room: Some(format!("{}0{}", k % 6 + 1, k % 3 + 1)),
                head_name: Some("王秀英".into()),
                phone: Some("13800000000".into()),
                members: Some(1 + (k % 4) as i64),
                tags: vec![HouseholdTag::ElderlyAlone],
                care_level: Some(CareLevel::Attention),
                notes: Some("独居，每周走访".into()),
            },
        )?;
        let v = replica.record_visit(&NewVisit {
            household_id: h,
            visited_at: None,
            mode: VisitMode::InPerson,
            outcome: VisitOutcome::Met,
            summary: Some("身体尚可，需要助餐服务".into()),
            follow_up_due: None,
            lat: Some(32.06),
            lon: Some(118.78),
        })?;
        replica.add_need(&NewNeed {
            household_id: h,
            visit_id: Some(v),
            category: NeedCategory::ElderlyCare,
            description: "需要社区助餐".into(),
            urgency: Some(NeedUrgency::Normal),
            due_on: None,
        })?;
    }
    saved(Collection::Households, plan.visits as u64);
    saved(Collection::Visits, plan.visits as u64);
    saved(Collection::Needs, plan.visits as u64);
    for k in 0..plan.hazards {
        let z = replica.report_hazard(&NewHazard {
            grid_id: g,
            source: Some(HazardSource::Patrol),
            category: HazardCategory::EbikeCharging,
            severity: Severity::High,
            title: format!("楼道电瓶车充电 #{k}"),
            description: Some("3栋2单元一楼".into()),
            lat: Some(32.06),
            lon: Some(118.78),
            address: Some("幸福路3栋".into()),
        })?;
        replica.add_attachment(&NewAttachment {
            owner_collection: Collection::Hazards,
            owner_id: z,
            sha256: format!("{:064x}", k + 1),
            media_type: "image/jpeg".into(),
            bytes: 480_000,
            taken_at: None,
            lat: Some(32.06),
            lon: Some(118.78),
        })?;
        replica.act_on_hazard(
            z,
            &NewHazardAction::new(HazardAction::SelfHandle).with_note("已当场劝离并移走电瓶车"),
        )?;
    }
    saved(Collection::Hazards, plan.hazards as u64);
    saved(Collection::HazardActions, 2 * plan.hazards as u64);
    saved(Collection::Attachments, plan.hazards as u64);
    out.record = t.elapsed();
    out.mutations = replica.status()?.pending;
    Ok(replica)
}

/// Sync until it succeeds (at most 5 attempts with backoff).
fn sync_phone(replica: &Replica, push_page: usize, out: &mut PhoneResult) {
    let options = SyncOptions {
        push_page,
        ..SyncOptions::default()
    };
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
    for _ in 0..5 {
        out.sync_attempts += 1;
        let transport = match HttpTransport::with_options(replica, http_options()) {
            Ok(t) => t,
            Err(e) => {
                out.errors.push(format!("transport: {e}"));
                return;
            }
        };
        let mut metered = Metered::new(transport);
        let outcome = sync(replica, &mut metered, &options);
        out.meter.merge(&metered.meter);
        match outcome {
            Ok(_) => {
                out.synced = true;
                break;
            }
            Err(e) => {
                out.errors.push(format!("sync: {e}"));
                match backoff.next_delay(&e) {
                    Some(d) => std::thread::sleep(d),
                    None => break,
                }
            }
        }
    }
    out.pending_after = replica.status().map_or(u64::MAX, |s| s.pending + s.acked);
}

/// Records per collection of an export.
fn counts(export: &Value) -> BTreeMap<String, u64> {
    Collection::ALL
        .iter()
        .map(|c| {
            let n = export[c.as_str()].as_array().map_or(0, Vec::len) as u64;
            (c.as_str().to_owned(), n)
        })
        .collect()
}

/// The plain batched insert of `rows` track points, 200 per transaction, into a new grid.
fn baseline(pool: &DbPool, admin: &Admin, community: &str, rows: usize) -> anyhow::Result<Value> {
    let grid = admin.create_area("基准网格", "grid", Some(community))?;
    let now = chrono::Utc::now().timestamp_millis();
    let patrol = sync_core::RecordId::new().to_string();
    let all: Vec<TrackPointRow> = (0..rows)
        .map(|i| TrackPointRow {
            id: sync_core::RecordId::new().to_string(),
            grid_id: grid.clone(),
            patrol_id: patrol.clone(),
            recorded_at: now + i as i64,
            lat: 32.06,
            lon: 118.78,
            accuracy_m: Some(5.0),
            change_seq: i as i64,
            versions: "{}".into(),
            created_at: now,
            updated_at: now,
            origin_device: None,
            client_time: None,
        })
        .collect();
    let mut conn = pool
        .get()
        .map_err(|e| anyhow!("baseline connection: {e}"))?;
    let started = Instant::now();
    for chunk in all.chunks(200) {
        write_transaction(&mut conn, |c| {
            // The concrete connection: MultiConnection has no multi-row INSERT.
            let insert = diesel::insert_into(track_points::table).values(chunk);
            match c {
                DbConnection::Sqlite(c) => insert.execute(c)?,
                DbConnection::Postgresql(c) => insert.execute(c)?,
            };
            Ok(())
        })
        .map_err(|e| anyhow!("baseline insert: {e}"))?;
    }
    let took = started.elapsed();
    diesel::delete(track_points::table.filter(track_points::grid_id.eq(&grid)))
        .execute(&mut *conn)
        .context("baseline cleanup")?;
    Ok(json!({
        "what": "plain diesel INSERT of track-point rows into the same database, 200 rows per transaction, one connection",
        "rows": rows,
        "seconds": took.as_secs_f64(),
        "rows_per_s": rows as f64 / took.as_secs_f64().max(1e-9),
    }))
}

fn run(args: &Args) -> anyhow::Result<(Value, bool)> {
    if args.workers == 0 || args.workers_per_grid == 0 {
        bail!("--workers and --workers-per-grid must be at least 1");
    }
    let total_start = Instant::now();
    // The server: ours, or the given one.
    let mut own: Option<(LiveServer, DbPool, tempfile::TempDir)> = None;
    let password = format!("loadgen-{:x}", rand::random::<u64>());
    let (base_url, admin, backend) = match &args.server {
        Some(url) => {
            check_loopback("--server", url)?;
            let pw = std::env::var(&args.admin_password_env)
                .with_context(|| format!("the admin password in ${}", args.admin_password_env))?;
            let admin = Admin::login(url, &args.admin_user, &pw)?;
            (
                url.trim_end_matches('/').to_owned(),
                admin,
                "remote".to_owned(),
            )
        }
        None => {
            let data = tempfile::Builder::new().prefix("grid-loadgen").tempdir()?;
            let url = match &args.database_url {
                Some(u) => {
                    if u.starts_with("postgres") {
                        check_loopback("--database-url", u)?;
                    }
                    u.clone()
                }
                None => format!("sqlite://{}", data.path().join("grid.db").display()),
            };
            let options = ServerOptions {
                workers: None,
                pool: PoolOptions {
                    max_size: args.pool,
                    min_idle: 1,
                    connection_timeout: Duration::from_secs(60),
                },
            };
            let server = LiveServer::start(&url, &data.path().join("data"), options)?;
            let side = server.side_pool()?;
            let admin_name = format!("loadgen_admin_{:x}", rand::random::<u32>());
            bootstrap_admin(&side, &admin_name, &password)?;
            let admin = Admin::login(&server.base_url, &admin_name, &password)?;
            let backend = server.backend().as_str().to_owned();
            let base = server.base_url.clone();
            own = Some((server, side, data));
            (base, admin, backend)
        }
    };

    // Provisioning.
    let t = Instant::now();
    let tag = format!("{:x}", rand::random::<u32>());
    let district = admin.create_area(&format!("负载区{tag}"), "district", None)?;
    let street = admin.create_area("负载街道", "street", Some(&district))?;
    let community = admin.create_area("负载社区", "community", Some(&street))?;
    let n_grids = args.workers.div_ceil(args.workers_per_grid);
    let mut grids = Vec::with_capacity(n_grids);
    for k in 0..n_grids {
        grids.push(admin.create_area(&format!("网格{k}"), "grid", Some(&community))?);
    }
    let scratch = scratch_dir("grid-loadgen-phones")?;
    let mut plans = Vec::with_capacity(args.workers);
    for i in 0..args.workers {
        let grid = grids[i / args.workers_per_grid].clone();
        let username = format!("lg{tag}_{i}");
        admin.create_user(&NewUserSpec {
            username: &username,
            password: &password,
            display_name: "网格员",
            role: "worker",
            grid_ids: std::slice::from_ref(&grid),
            area_id: None,
            department: None,
        })?;
        let dir = scratch.path().join(format!("p{i}"));
        std::fs::create_dir_all(&dir)?;
        plans.push(PhonePlan {
            username,
            password: password.clone(),
            grid: grid.parse().map_err(|_| anyhow!("grid id {grid}"))?,
            dir,
            points: args.points,
            visits: args.visits,
            hazards: args.hazards,
            push_page: args.push_page,
        });
    }
    let provision = t.elapsed();

    // The phones: log in and record (in parallel), then sync all at once.
    let ready = Arc::new(Barrier::new(args.workers + 1));
    let go = Arc::new(Barrier::new(args.workers + 1));
    let gate = Arc::new(Gate::new(args.concurrency.unwrap_or(args.workers)));
    let mut handles = Vec::with_capacity(args.workers);
    for plan in plans {
        let (ready, go, gate, url) = (ready.clone(), go.clone(), gate.clone(), base_url.clone());
        let handle = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || {
                let mut out = PhoneResult::default();
                let replica = prepare(&plan, &url, &mut out)
                    .map_err(|e| out.errors.push(format!("prepare: {e}")))
                    .ok();
                ready.wait();
                go.wait();
                if let Some(replica) = replica {
                    gate.enter();
                    sync_phone(&replica, plan.push_page, &mut out);
                    gate.leave();
                }
                out
            })
            .context("spawn a phone thread")?;
        handles.push(handle);
    }
    ready.wait();
    let prepared = total_start.elapsed();
    let sync_start = Instant::now();
    go.wait();
    let mut results = Vec::with_capacity(args.workers);
    for h in handles {
        results.push(h.join().map_err(|_| anyhow!("a phone thread panicked"))?);
    }
    let sync_wall = sync_start.elapsed();
    let push_wall = |m: &Meter| {
        m.last_push_done
            .map_or(sync_wall, |t| t.saturating_duration_since(sync_start))
    };

    // What the phones did.
    let mut meter = Meter::default();
    let mut saved: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let (mut mutations, mut errors, mut synced, mut attempts) = (0u64, Vec::new(), 0usize, 0u32);
    let (mut login, mut record) = (Duration::ZERO, Duration::ZERO);
    for (i, r) in results.iter().enumerate() {
        meter.merge(&r.meter);
        mutations += r.mutations;
        attempts += r.sync_attempts;
        login += r.login;
        record += r.record;
        if r.synced && r.pending_after == 0 {
            synced += 1;
        }
        errors.extend(r.errors.iter().map(|e| format!("phone {i}: {e}")));
        let grid = grids[i / args.workers_per_grid].clone();
        let per = saved.entry(grid).or_default();
        for (c, n) in &r.saved {
            *per.entry(c.as_str().to_owned()).or_default() += n;
        }
    }

    // Does the server hold exactly what the phones saved?
    let mut exact = true;
    let mut server_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut phone_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut busy_export = Value::Null;
    for (k, g) in grids.iter().enumerate() {
        let export = admin.export(g)?;
        let on_server = counts(&export);
        let mut want = saved.get(g).cloned().unwrap_or_default();
        for c in Collection::ALL {
            want.entry(c.as_str().to_owned()).or_default();
        }
        if on_server != want {
            exact = false;
            errors.push(format!(
                "grid {g}: server holds {on_server:?}, phones saved {want:?}"
            ));
        }
        for (c, n) in on_server {
            *server_counts.entry(c).or_default() += n;
        }
        for (c, n) in want {
            *phone_counts.entry(c).or_default() += n;
        }
        if k == 0 {
            busy_export = export;
        }
    }

    // The initial sync of the busy grid by a fresh phone.
    let fresh_name = format!("lg{tag}_fresh");
    admin.create_user(&NewUserSpec {
        username: &fresh_name,
        password: &password,
        display_name: "新网格员",
        role: "worker",
        grid_ids: std::slice::from_ref(&grids[0]),
        area_id: None,
        department: None,
    })?;
    let fresh_dir = scratch.path().join("fresh");
    std::fs::create_dir_all(&fresh_dir)?;
    let fresh = Replica::open(fresh_dir.join("phone.db"))?;
    login_with(
        &fresh,
        &base_url,
        &fresh_name,
        &password,
        Some("fresh phone"),
        &http_options(),
    )
    .map_err(|e| anyhow!("fresh login: {e}"))?;
    let mut metered = Metered::new(
        HttpTransport::with_options(&fresh, http_options()).map_err(|e| anyhow!("{e}"))?,
    );
    let t = Instant::now();
    let initial = sync(&fresh, &mut metered, &SyncOptions::default());
    let initial_took = t.elapsed();
    if let Err(e) = &initial {
        errors.push(format!("initial sync: {e}"));
    }
    let fresh_export = fresh.export()?;
    let converged = fresh_export == busy_export;
    if !converged {
        errors.push("the fresh phone's export differs from the server's export of its grid".into());
    }
    let rows = metered.meter.changes_pulled;

    let baseline = match &own {
        Some((_, side, _)) => baseline(side, &admin, &community, mutations as usize)?,
        None => json!(null),
    };

    let per_mutation = |bytes: u64| bytes as f64 / meter.mutations_pushed.max(1) as f64;
    let ok = exact && converged && synced == args.workers && initial.is_ok();
    let report = json!({
        "workers": args.workers,
        "workers_per_grid": args.workers_per_grid,
        "grids": n_grids,
        "backend": backend,
        "server": if args.server.is_some() { json!(base_url) } else { json!("in-process") },
        "day_per_phone": {
            "mutations": mutations / args.workers as u64,
            "track_points": args.points, "visits": args.visits, "needs": args.visits,
            "households": args.visits, "hazards": args.hazards,
        },
        "provision_s": provision.as_secs_f64(),
        "login_s_mean": login.as_secs_f64() / args.workers as f64,
        "phone_write_mutations_per_s": mutations as f64 / record.as_secs_f64().max(1e-9),
        "prepare_wall_s": prepared.as_secs_f64(),
        "sync": {
            "wall_s": sync_wall.as_secs_f64(),
            "mutations": mutations,
            "mutations_per_s": mutations as f64 / sync_wall.as_secs_f64().max(1e-9),
            "push_phase_s": push_wall(&meter).as_secs_f64(),
            "push_mutations_per_s": mutations as f64 / push_wall(&meter).as_secs_f64().max(1e-9),
            "push_requests": meter.push_requests,
            "push_latency_ms": {
                "p50": quantile_ms(&meter.push_latencies, 0.50),
                "p95": quantile_ms(&meter.push_latencies, 0.95),
                "p99": quantile_ms(&meter.push_latencies, 0.99),
                "max": quantile_ms(&meter.push_latencies, 1.0),
            },
            "pull_requests": meter.pull_requests,
            "changes_pulled": meter.changes_pulled,
            "sync_attempts": attempts,
            "phones_synced": synced,
        },
        "wire_json_bytes": {
            "push_request_per_mutation": per_mutation(meter.push_request_bytes),
            "push_response_per_mutation": per_mutation(meter.push_response_bytes),
            "pull_per_record": meter.pull_response_bytes as f64 / meter.changes_pulled.max(1) as f64,
        },
        "initial_sync": {
            "grid_records": rows,
            "seconds": initial_took.as_secs_f64(),
            "rows_per_s": rows as f64 / initial_took.as_secs_f64().max(1e-9),
            "pull_requests": metered.meter.pull_requests,
            "bytes_per_record": metered.meter.pull_response_bytes as f64 / rows.max(1) as f64,
            "converged": converged,
        },
        "check": {
            "exact": exact,
            "phones_saved": phone_counts,
            "server_holds": server_counts,
        },
        "baseline": baseline,
        "errors": errors.len(),
        "error_samples": errors.iter().take(10).collect::<Vec<_>>(),
        "total_s": total_start.elapsed().as_secs_f64(),
        "ok": ok,
    });
    drop(own);
    Ok((report, ok))
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let limit =
        Duration::from_secs(env_u64("GRID_LOADGEN_MAX_SECONDS").unwrap_or(args.max_seconds));
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("grid-loadgen: gave up after {limit:?}");
        std::process::exit(1);
    });
    match run(&args) {
        Ok((report, ok)) => {
            let text = serde_json::to_string_pretty(&report)
                .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
            println!("{text}");
            if let Some(path) = &args.out {
                if let Err(e) = std::fs::write(path, format!("{text}\n")) {
                    eprintln!("grid-loadgen: cannot write {}: {e}", path.display());
                    return ExitCode::from(1);
                }
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("grid-loadgen: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_pass() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "postgres://postgres@127.0.0.1:5432/x",
            "postgres://u:p@[::1]:5432/x",
            "http://127.0.0.2",
        ] {
            assert!(check_loopback("t", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8080",
            "postgres://u@db.example.com/x",
            "http://0.0.0.0:80",
            "nonsense",
        ] {
            assert!(check_loopback("t", bad).is_err(), "{bad}");
        }
    }
}
