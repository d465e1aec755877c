//! Push ingest throughput: mutations per second through the real handler path — HTTP on
//! loopback, JSON, JWT, scope, validation, merge, diesel, one commit per push of 500 — next to
//! a plain batched diesel insert of the same rows (one transaction per 500 rows) into the same
//! table of the same database, measured in the same run. Reported as a ratio because these
//! machines are noisy.
//!
//! `cargo bench -p grid-server --bench push` (PostgreSQL too when `TEST_DATABASE_URL` is
//! set). `PUSH_BENCH_BATCHES` sets how many pushes of 500 each side makes (default 10).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use diesel::prelude::*;
use grid_server::auth::password::hash_password;
use grid_server::db::areas::{insert_area, AreaLevel};
use grid_server::db::schema::households;
use grid_server::db::users::{insert_user, NewUser, Role};
use grid_server::db::{write_transaction, Backend, DbConnection};
use grid_server::sync::rows::HouseholdRow;
use grid_server::testing::{block_on, TestServer};
use serde_json::{json, Value};
use sync_core::ids::{MutationId, RecordId};

const BATCH: usize = 500;

fn fields(i: usize) -> Value {
    json!({"address": format!("幸福路{i}号"), "building": "3栋", "unit": "2单元", "room": format!("{}", 100 + i % 50),
           "head_name": "王秀英", "phone": "13800000000", "members": 3, "tags": ["elderly_alone"], "notes": "独居，需每周走访"})
}

fn plain_row(grid: &str, i: usize, now: i64) -> HouseholdRow {
    HouseholdRow {
        id: RecordId::new().to_string(),
        grid_id: grid.to_owned(),
        address: format!("幸福路{i}号"),
        building: Some("3栋".into()),
        unit: Some("2单元".into()),
        room: Some(format!("{}", 100 + i % 50)),
        head_name: Some("王秀英".into()),
        phone: Some("13800000000".into()),
        members: Some(3),
        tags: Some(r#"["elderly_alone"]"#.into()),
        care_level: None,
        notes: Some("独居，需每周走访".into()),
        deleted: false,
        change_seq: i as i64,
        versions: "{}".into(),
        created_at: now,
        updated_at: now,
        origin_device: None,
        client_time: None,
    }
}

struct Figures {
    real: Duration,
    plain: Duration,
    mutations: usize,
}

fn run(backend: Backend, batches: usize) -> Option<Figures> {
    let server = TestServer::start(backend)?;
    let pool = server.pool().clone();
    let grid = block_on(pool.write(|c| {
        let d = insert_area(c, "区", None, AreaLevel::District, None)?;
        let s = insert_area(c, "街道", None, AreaLevel::Street, Some(&d.id))?;
        let cm = insert_area(c, "社区", None, AreaLevel::Community, Some(&s.id))?;
        Ok(insert_area(c, "网格", None, AreaLevel::Grid, Some(&cm.id))?.id)
    }))
    .unwrap();
    let hash = hash_password("bench password").unwrap();
    let g = grid.clone();
    block_on(pool.write(move |c| {
        insert_user(
            c,
            &NewUser {
                username: "bench",
                password_hash: &hash,
                display_name: None,
                role: Role::Worker,
                area_id: None,
                department: None,
                grid_ids: &[g],
            },
        )
    }))
    .unwrap();
    let login = block_on(server.post_json(
        "/api/v1/auth/login",
        &json!({"username": "bench", "password": "bench password"}),
    ));
    let token = login.json["access_token"].as_str().unwrap().to_owned();
    let device = login.json["device_id"].as_str().unwrap().to_owned();

    // The pushes are built before the clock starts: the phone's work is not the server's.
    let mut seq = 0u64;
    let bodies: Vec<String> = (0..batches)
        .map(|_| {
            let mutations: Vec<Value> = (0..BATCH)
                .map(|i| {
                    seq += 1;
                    json!({"seq": seq, "id": MutationId::new().to_string(), "collection": "households",
                           "record_id": RecordId::new().to_string(), "grid_id": grid, "op": "upsert",
                           "hlc": format!("{:015}-00000-{device}", 1_795_249_800_000u64 + seq),
                           "fields": fields(i), "base": {}})
                })
                .collect();
            json!({"device_id": device, "mutations": mutations}).to_string()
        })
        .collect();

    let started = Instant::now();
    for body in bodies {
        let req = server
            .client()
            .post(server.url("/api/v1/sync/push"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body);
        let resp = block_on(server.send(req));
        assert_eq!(resp.status, 200, "{}", resp.text);
        assert!(resp.json["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "applied"));
    }
    let real = started.elapsed();

    let now = chrono::Utc::now().timestamp_millis();
    let mut conn = server.db().connect();
    let started = Instant::now();
    for b in 0..batches {
        let rows: Vec<HouseholdRow> = (0..BATCH)
            .map(|i| plain_row(&grid, b * BATCH + i, now))
            .collect();
        write_transaction(&mut conn, |c| {
            // The concrete connection: MultiConnection has no multi-row INSERT.
            for chunk in rows.chunks(100) {
                let insert = diesel::insert_into(households::table).values(chunk);
                match c {
                    DbConnection::Sqlite(c) => insert.execute(c)?,
                    DbConnection::Postgresql(c) => insert.execute(c)?,
                };
            }
            Ok(())
        })
        .unwrap();
    }
    let plain = started.elapsed();
    Some(Figures {
        real,
        plain,
        mutations: batches * BATCH,
    })
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a tiny pass.
    let benching = std::env::args().any(|a| a == "--bench");
    let batches: usize = match std::env::var("PUSH_BENCH_BATCHES") {
        Ok(v) => v.parse().expect("PUSH_BENCH_BATCHES is a number"),
        Err(_) if benching => 10,
        Err(_) => 1,
    };
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(f) = run(backend, batches) else {
            println!("{backend:?}: skipped (TEST_DATABASE_URL not set)");
            continue;
        };
        let per_s = |d: Duration| f.mutations as f64 / d.as_secs_f64();
        println!(
            "{backend:?}: push path {:.0} mutations/s, plain batched insert {:.0} rows/s, ratio {:.2}x ({} mutations, pushes of {BATCH})",
            per_s(f.real),
            per_s(f.plain),
            f.real.as_secs_f64() / f.plain.as_secs_f64(),
            f.mutations
        );
    }
}
