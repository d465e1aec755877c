//! The app is killed (SIGKILL) while writing: every write whose call returned is on disk with
//! its outbox entry, the seqs stay contiguous, and the replica opens and syncs afterwards.
//!
//! The test runs itself as a child process (`GRID_KILL_CHILD` set): the child writes in a loop
//! and prints each returned id; the parent kills it mid-stream and checks the file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use support::*;
use sync_core::collection::Collection;
use sync_core::model::{NewHousehold, NewPatrol, NewTrackPoint};
use sync_core::replica::{Replica, SyncState};
use sync_core::workflow::Role;
use sync_core::RecordId;

const CHILD: &str = "GRID_KILL_CHILD";

#[test]
fn kill_child_writer() {
    let Ok(path) = std::env::var(CHILD) else {
        return; // only meaningful as the child of the test below
    };
    let grid: sync_core::GridId = std::env::var("GRID_KILL_GRID").unwrap().parse().unwrap();
    let r = Replica::open(&path).unwrap();
    r.set_session(user(2), Role::Worker, vec![grid]).unwrap();
    let patrol = r.start_patrol(grid, &NewPatrol::default()).unwrap();
    println!("patrols {patrol}");
    for i in 0u32.. {
        let id = if i % 3 == 0 {
            let id = r
                .add_household(
                    grid,
                    &NewHousehold {
                        address: format!("{i}号"),
                        ..Default::default()
                    },
                )
                .unwrap();
            println!("households {id}");
            id
        } else {
            let id = r
                .add_track_point(
                    patrol,
                    &NewTrackPoint {
                        recorded_at: None,
                        lat: 31.0,
                        lon: 121.0,
                        accuracy_m: None,
                    },
                )
                .unwrap();
            println!("track_points {id}");
            id
        };
        let _ = id;
    }
}

#[test]
fn writes_that_returned_survive_a_kill() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let w = World::new();
    let path = w.path("killed");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "kill_child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, &path)
        .env("GRID_KILL_GRID", w.g2.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut saved: Vec<(Collection, RecordId)> = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while saved.len() < 300 {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some((c, id)) = line.split_once(' ') {
            if let (Ok(c), Ok(id)) = (c.parse(), id.trim().parse()) {
                saved.push((c, id));
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(saved.len() >= 300, "the child stopped early");

    // The file opens; every write the child saw returned is there, pending.
    let phone = Phone::open(&w.hub, &path, w.w2, 0, 99);
    let status = phone.replica.status().unwrap();
    assert!(status.pending >= saved.len() as u64);
    for (c, id) in &saved {
        let view = phone.replica.record(*c, *id).unwrap();
        assert_eq!(view.sync, SyncState::Pending, "{c} {id}");
    }
    // … and reaches the server in one contiguous run of seqs.
    let s = phone.sync().unwrap();
    assert_eq!(s.applied, status.pending);
    let seqs: Vec<u64> = w.hub.borrow().processed[&phone.replica.device_id()]
        .iter()
        .map(|p| p.seq)
        .collect();
    assert_eq!(seqs, (1..=status.pending).collect::<Vec<_>>());
    phone.assert_converged();
}
