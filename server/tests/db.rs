//! The db layer on both backends: write transactions, grid counters and the record index
//! (including gap-free ordering under concurrent writers), login-failure windows, areas and
//! users, the demo seed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use grid_server::db::areas::{insert_area, subtree_ids, AreaLevel};
use grid_server::db::schema::{
    grid_clock, households, record_index, track_points, user_grids, users as users_t,
};
use grid_server::db::users::{self, NewUser, Role};
use grid_server::db::{
    bump_grid_counter, lock_grid_clocks, rate_limit, record_change, touch_record_index,
    write_transaction, Backend, Collection, DbPool, PoolOptions,
};
use grid_server::testing::{TestDb, BACKENDS};
use grid_server::{AppError, ErrorKind};

grid_server::backend_db_tests! {
    async fn write_transaction_commits_or_rolls_back(pool) {
        pool.run(|conn| {
            // Err: nothing stays.
            let err = write_transaction(conn, |c| {
                insert_area(c, "回滚区", Some("R1"), AreaLevel::District, None)?;
                Err::<(), _>(AppError::invalid("stop"))
            })
            .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidValue);
            assert!(grid_server::db::areas::list_areas(conn).unwrap().is_empty());

            // Ok, with a failed nested transaction inside: the outer work stays, the inner
            // work is rolled back to its savepoint.
            write_transaction(conn, |c| {
                insert_area(c, "提交区", Some("C1"), AreaLevel::District, None)?;
                let inner = write_transaction(c, |c| {
                    insert_area(c, "内层区", Some("C2"), AreaLevel::District, None)?;
                    Err::<(), _>(AppError::conflict("inner"))
                });
                assert!(inner.is_err());
                Ok(())
            })
            .unwrap();
            let names: Vec<String> = grid_server::db::areas::list_areas(conn)
                .unwrap()
                .into_iter()
                .map(|a| a.name)
                .collect();
            assert_eq!(names, vec!["提交区".to_owned()]);
            Ok(())
        })
        .await
        .unwrap();

        // The async form commits too.
        pool.write(|c| insert_area(c, "异步区", None, AreaLevel::District, None))
            .await
            .unwrap();
        let count = pool
            .run(|c| Ok(grid_server::db::areas::list_areas(c)?.len()))
            .await
            .unwrap();
        assert_eq!(count, 2);
    }

    async fn grid_counters_and_record_index(pool) {
        pool.write(|c| {
            assert_eq!(bump_grid_counter(c, "g1")?, 1);
            assert_eq!(bump_grid_counter(c, "g1")?, 2);
            assert_eq!(bump_grid_counter(c, "g2")?, 1);
            // Locking creates missing clocks at 0 and leaves existing ones alone.
            lock_grid_clocks(c, &["g3", "g1", "g3"])?;
            assert_eq!(bump_grid_counter(c, "g1")?, 3);
            assert_eq!(bump_grid_counter(c, "g3")?, 1);

            let seq = record_change(c, "households", "r1", "g1")?;
            assert_eq!(seq, 4);
            let seq = record_change(c, "households", "r1", "g1")?;
            assert_eq!(seq, 5);
            touch_record_index(c, "visits", "r2", "g2", 9)?;
            Ok(())
        })
        .await
        .unwrap();
        pool.run(|c| {
            let rows: Vec<(String, String, String, i64)> = record_index::table
                .select((
                    record_index::collection,
                    record_index::record_id,
                    record_index::grid_id,
                    record_index::change_seq,
                ))
                .order(record_index::collection.asc())
                .load(c)?;
            assert_eq!(
                rows,
                vec![
                    ("households".into(), "r1".into(), "g1".into(), 5),
                    ("visits".into(), "r2".into(), "g2".into(), 9),
                ]
            );
            let g1: i64 = grid_clock::table.find("g1").select(grid_clock::counter).first(c)?;
            assert_eq!(g1, 5);
            Ok(())
        })
        .await
        .unwrap();
    }

    async fn login_failure_windows(pool) {
        pool.write(|c| {
            let w = 60_000;
            assert_eq!(rate_limit::register_failure(c, "user:a", 1_000, w)?, 1);
            assert_eq!(rate_limit::register_failure(c, "user:a", 2_000, w)?, 2);
            assert_eq!(rate_limit::register_failure(c, "ip:1", 2_000, w)?, 1);
            assert_eq!(rate_limit::current_failures(c, "user:a", 30_000, w)?, 2);
            assert_eq!(rate_limit::window_end(c, "user:a", 30_000, w)?, Some(61_000));
            // The window has passed: counting restarts.
            assert_eq!(rate_limit::current_failures(c, "user:a", 61_000, w)?, 0);
            assert_eq!(rate_limit::window_end(c, "user:a", 61_000, w)?, None);
            assert_eq!(rate_limit::register_failure(c, "user:a", 61_000, w)?, 1);
            assert_eq!(rate_limit::window_end(c, "user:a", 61_500, w)?, Some(121_000));
            rate_limit::clear(c, "user:a")?;
            assert_eq!(rate_limit::current_failures(c, "user:a", 61_500, w)?, 0);
            assert_eq!(rate_limit::current_failures(c, "ip:1", 3_000, w)?, 1);
            Ok(())
        })
        .await
        .unwrap();
    }

    async fn areas_and_users(pool) {
        pool.write(|c| {
            let d = insert_area(c, "鼓楼区", Some("320106"), AreaLevel::District, None)?;
            let s = insert_area(c, "湖南路街道", Some("320106002"), AreaLevel::Street, Some(&d.id))?;
            let cm = insert_area(c, "山西路社区", None, AreaLevel::Community, Some(&s.id))?;
            let g1 = insert_area(c, "第一网格", None, AreaLevel::Grid, Some(&cm.id))?;
            let g2 = insert_area(c, "第二网格", None, AreaLevel::Grid, Some(&cm.id))?;

            let err = insert_area(c, "错层", None, AreaLevel::Street, Some(&g1.id)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidValue);
            let err = insert_area(c, "重码", Some("320106"), AreaLevel::District, None).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Conflict);
            let err = insert_area(c, "无父", None, AreaLevel::Grid, Some("nope")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidValue);

            let mut scope = subtree_ids(c, &s.id)?;
            scope.sort();
            let mut expected = vec![s.id.clone(), cm.id.clone(), g1.id.clone(), g2.id.clone()];
            expected.sort();
            assert_eq!(scope, expected);

            let grids = vec![g2.id.clone(), g1.id.clone(), g1.id.clone()];
            let user = users::insert_user(c, &NewUser {
                username: "worker1",
                password_hash: "$argon2id$placeholder",
                display_name: Some("刘洋"),
                role: Role::Worker,
                area_id: None,
                department: None,
                grid_ids: &grids,
            })?;
            let mut sorted = vec![g1.id.clone(), g2.id.clone()];
            sorted.sort();
            assert_eq!(users::grid_ids(c, &user.id)?, sorted);
            assert!(user.active);
            let found = users::find_by_username(c, "worker1")?.unwrap();
            assert_eq!(found, user);
            assert!(!format!("{found:?}").contains("argon2"), "Debug hides the hash");

            let new = |username: &'static str, grids: &'static [String]| NewUser {
                username,
                password_hash: "h",
                display_name: None,
                role: Role::Worker,
                area_id: None,
                department: None,
                grid_ids: grids,
            };
            let err = users::insert_user(c, &new("worker1", &[])).unwrap_err();
            assert_eq!((err.kind(), err.code()), (ErrorKind::Conflict, "username_taken"));
            let not_grid: &'static [String] = Box::leak(vec![cm.id.clone()].into_boxed_slice());
            let err = users::insert_user(c, &new("w2", not_grid)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidValue);
            let missing: &'static [String] = Box::leak(vec!["nope".to_owned()].into_boxed_slice());
            let err = users::insert_user(c, &new("w3", missing)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidValue);
            let err = users::insert_user(c, &new("has space", &[])).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidValue);
            assert_eq!(users::count(c)?, 1);
            Ok(())
        })
        .await
        .unwrap();
    }

    async fn doubles_and_booleans_round_trip(pool) {
        pool.write(|c| {
            let d = insert_area(c, "区", None, AreaLevel::District, None)?;
            let g = insert_area(c, "网格", None, AreaLevel::Grid, Some(&d.id))?;
            let seq = record_change(c, "track_points", "t1", &g.id)?;
            diesel::insert_into(track_points::table)
                .values((
                    track_points::id.eq("t1"),
                    track_points::grid_id.eq(&g.id),
                    track_points::patrol_id.eq("p1"),
                    track_points::recorded_at.eq(1_795_249_800_123_i64),
                    track_points::lat.eq(32.061_234_5_f64),
                    track_points::lon.eq(118.778_901_2_f64),
                    track_points::accuracy_m.eq(Some(4.5_f64)),
                    track_points::change_seq.eq(seq),
                    track_points::versions.eq("{}"),
                    track_points::created_at.eq(1_i64),
                    track_points::updated_at.eq(1_i64),
                ))
                .execute(c)?;
            let (lat, lon, acc): (f64, f64, Option<f64>) = track_points::table
                .find("t1")
                .select((track_points::lat, track_points::lon, track_points::accuracy_m))
                .first(c)?;
            assert_eq!((lat, lon, acc), (32.061_234_5, 118.778_901_2, Some(4.5)));
            Ok(())
        })
        .await
        .unwrap();
    }

    async fn demo_seed_follows_the_write_path(pool) {
        let seed = pool
            .run(grid_server::demo::seed_if_empty)
            .await
            .unwrap()
            .expect("seeded");
        assert_eq!(seed.grids.len(), 4);
        assert_eq!(seed.households, 4 * grid_server::demo::HOUSEHOLDS_PER_GRID);
        let roles: BTreeSet<&str> = seed.accounts.iter().map(|a| a.role.as_str()).collect();
        assert_eq!(roles, BTreeSet::from(["admin", "department", "supervisor", "worker"]));
        let two_grids = seed.accounts.iter().filter(|a| a.grid_ids.len() == 2).count();
        assert_eq!(two_grids, 1);
        let table = seed.credentials_table();
        for a in &seed.accounts {
            assert!(table.contains(&a.password) && table.contains(&a.username));
        }

        let accounts = seed.accounts.clone();
        let grids = seed.grids.clone();
        pool.run(move |c| {
            for (_, grid_id) in &grids {
                let counter: i64 = grid_clock::table.find(grid_id).select(grid_clock::counter).first(c)?;
                assert_eq!(counter, 20);
                let mut seqs: Vec<i64> = households::table
                    .filter(households::grid_id.eq(grid_id))
                    .select(households::change_seq)
                    .load(c)?;
                seqs.sort_unstable();
                assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
                let indexed: i64 = record_index::table
                    .filter(record_index::grid_id.eq(grid_id))
                    .filter(record_index::collection.eq("households"))
                    .count()
                    .get_result(c)?;
                assert_eq!(indexed, 20);
            }
            let versions: Vec<String> = households::table.select(households::versions).load(c)?;
            for v in versions {
                let v: serde_json::Value = serde_json::from_str(&v).unwrap();
                let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
                let fields: BTreeSet<&str> = Collection::Households.fields().iter().map(|f| f.name).collect();
                assert_eq!(keys, fields);
                for stamp in v.as_object().unwrap().values() {
                    let s = stamp.as_str().unwrap();
                    assert_eq!(s.len(), 15 + 1 + 5 + 1 + "server".len(), "{s}");
                    assert!(s.ends_with("-00000-server"), "{s}");
                }
            }
            // Tags are filterable with LIKE.
            let elderly: i64 = households::table
                .filter(households::tags.like("%\"elderly_alone\"%"))
                .count()
                .get_result(c)?;
            assert!(elderly >= 4, "{elderly}");
            // Users and their grids are real rows; passwords verify.
            assert_eq!(users::count(c)? as usize, accounts.len());
            let worker4 = accounts.iter().find(|a| a.grid_ids.len() == 2).unwrap();
            let stored = users::find_by_username(c, &worker4.username)?.unwrap();
            assert!(grid_server::auth::password::verify_password(&worker4.password, &stored.password_hash)?);
            let mut stored_grids = users::grid_ids(c, &stored.id)?;
            let mut planned = worker4.grid_ids.clone();
            stored_grids.sort();
            planned.sort();
            assert_eq!(stored_grids, planned);
            let supervisors_with_area: i64 = users_t::table
                .filter(users_t::role.eq("supervisor"))
                .filter(users_t::area_id.is_not_null())
                .count()
                .get_result(c)?;
            assert_eq!(supervisors_with_area, 3);
            let links: i64 = user_grids::table.count().get_result(c)?;
            assert_eq!(links, 5);
            Ok(())
        })
        .await
        .unwrap();

        // Once only.
        assert!(pool.run(grid_server::demo::seed_if_empty).await.unwrap().is_none());
    }
}

/// Promise 7 (gap-free pull): writers commit concurrently into one grid, each sleeping
/// between taking its number and committing; a reader polling `record_index` past its
/// cursor must always find the next numbers contiguous — a later number is never visible
/// before an earlier one.
fn concurrent_writers_commit_in_counter_order(db: &TestDb) {
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 25;
    let pool = db.migrated_pool_with(PoolOptions {
        max_size: WRITERS as u32 + 2,
        min_idle: 1,
        connection_timeout: Duration::from_secs(30),
    });
    let done = Arc::new(AtomicBool::new(false));

    let reader = {
        let pool: DbPool = pool.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut conn = pool.get().unwrap();
            let mut cursor = 0_i64;
            let mut polls = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let seqs: Vec<i64> = record_index::table
                    .filter(record_index::grid_id.eq("g"))
                    .filter(record_index::change_seq.gt(cursor))
                    .order(record_index::change_seq.asc())
                    .select(record_index::change_seq)
                    .load(&mut *conn)
                    .unwrap();
                for seq in seqs {
                    assert_eq!(seq, cursor + 1, "gap: saw {seq} after {cursor}");
                    cursor = seq;
                }
                polls += 1;
                if finished {
                    return (cursor, polls);
                }
            }
        })
    };

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut conn = pool.get().unwrap();
                for i in 0..PER_WRITER {
                    write_transaction(&mut conn, |c| {
                        let id = format!("w{w}-{i}");
                        record_change(c, "households", &id, "g")?;
                        // Hold the number a while before committing.
                        std::thread::sleep(Duration::from_millis(((w + i) % 3) as u64));
                        Ok(())
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let (cursor, polls) = reader.join().unwrap();
    assert_eq!(cursor, (WRITERS * PER_WRITER) as i64);
    assert!(polls > 1);
}

#[test]
fn concurrent_writers_commit_in_counter_order_on_each_backend() {
    for backend in BACKENDS {
        if let Some(db) = TestDb::create(backend) {
            concurrent_writers_commit_in_counter_order(&db);
        }
    }
}

#[test]
fn sqlite_connections_are_customised() {
    let db = TestDb::create(Backend::Sqlite).unwrap();
    let pool = db.migrated_pool();
    let mut conn = pool.get().unwrap();
    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
    }
    #[derive(QueryableByName)]
    struct Int {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        v: i64,
    }
    let mode: Mode = diesel::sql_query("PRAGMA journal_mode")
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(mode.journal_mode, "wal");
    let fk: Int = diesel::sql_query("SELECT foreign_keys AS v FROM pragma_foreign_keys")
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(fk.v, 1);
    let bt: Int = diesel::sql_query("SELECT timeout AS v FROM pragma_busy_timeout")
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(bt.v, 5000);
    let sync: Int = diesel::sql_query("SELECT synchronous AS v FROM pragma_synchronous")
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(sync.v, 1, "NORMAL");
}
