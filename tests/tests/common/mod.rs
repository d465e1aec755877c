//! Shared by the end-to-end test files: phones logged in to a [`Site`]'s users, the split of
//! a phone's export by grid, the comparison with the server's export, and running a body on
//! every available backend.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use grid_server::db::Backend;
use grid_tests::phone::Phone;
use grid_tests::world::{Env, Site, PASSWORD};
use serde_json::{Map, Value};
use sync_core::Collection;

/// Run `body` on a fresh [`Env`] of each backend available (PostgreSQL needs
/// `TEST_DATABASE_URL`; without it a notice is printed and only SQLite runs).
pub fn on_backend(backend: Backend, body: impl FnOnce(&Env)) {
    match Env::start(backend).expect("start the server") {
        Some(env) => body(&env),
        None => eprintln!("skipping PostgreSQL: TEST_DATABASE_URL not set"),
    }
}

/// Open and log in a phone for `site`'s user `key`.
pub fn phone(
    env: &Env,
    dir: &std::path::Path,
    site: &Site,
    key: &str,
    name: &str,
    skew_ms: i64,
    seed: u64,
) -> Phone {
    let user = site.user(key).expect("site user");
    let mut p =
        Phone::open(dir, name, &user.username, PASSWORD, skew_ms, seed).expect("open phone");
    p.login(&env.base_url).expect("login");
    p
}

/// The records of `export` (canonical shape) whose `grid_id` is `grid`.
pub fn export_of_grid(export: &Value, grid: &str) -> Value {
    let mut out = Map::new();
    for c in Collection::ALL {
        let records: Vec<Value> = export[c.as_str()]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|r| r["grid_id"].as_str() == Some(grid))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        out.insert(c.as_str().into(), Value::Array(records));
    }
    Value::Object(out)
}

/// The grids `export` has records of.
pub fn grids_in(export: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for c in Collection::ALL {
        for r in export[c.as_str()].as_array().into_iter().flatten() {
            if let Some(g) = r["grid_id"].as_str() {
                out.insert(g.to_owned());
            }
        }
    }
    out
}

/// The first difference between two exports, for a readable failure.
pub fn first_difference(a: &Value, b: &Value) -> String {
    for c in Collection::ALL {
        let (x, y) = (&a[c.as_str()], &b[c.as_str()]);
        if x == y {
            continue;
        }
        let xs = x.as_array().cloned().unwrap_or_default();
        let ys = y.as_array().cloned().unwrap_or_default();
        if xs.len() != ys.len() {
            let ids = |v: &[Value]| -> BTreeSet<String> {
                v.iter()
                    .filter_map(|r| r["id"].as_str().map(str::to_owned))
                    .collect()
            };
            let (ix, iy) = (ids(&xs), ids(&ys));
            return format!(
                "{c}: {} vs {} records; only left: {:?}; only right: {:?}",
                xs.len(),
                ys.len(),
                ix.difference(&iy).collect::<Vec<_>>(),
                iy.difference(&ix).collect::<Vec<_>>()
            );
        }
        for (r, s) in xs.iter().zip(&ys) {
            if r != s {
                return format!("{c}:\n  left:  {r}\n  right: {s}");
            }
        }
    }
    "no difference".into()
}

/// Assert that `phone`'s export equals the server's for every grid it holds, that it holds
/// exactly `grids`, and nothing of any other grid.
pub fn assert_converged(env: &Env, phone: &Phone, grids: &[String], what: &str) {
    let mine = phone.replica().export().unwrap();
    let held: BTreeSet<String> = phone
        .replica()
        .scope()
        .grid_ids
        .iter()
        .map(|g| g.to_string())
        .collect();
    let want: BTreeSet<String> = grids.iter().cloned().collect();
    assert_eq!(held, want, "{what}: {} holds the wrong grids", phone.name);
    let outside: Vec<String> = grids_in(&mine).difference(&want).cloned().collect();
    assert!(
        outside.is_empty(),
        "{what}: {} has records of grids {outside:?}",
        phone.name
    );
    for g in grids {
        let server = env.admin.export(g).unwrap();
        let local = export_of_grid(&mine, g);
        if local != server {
            panic!(
                "{what}: {}'s export of grid {g} differs from the server's: {}",
                phone.name,
                first_difference(&local, &server)
            );
        }
    }
}
