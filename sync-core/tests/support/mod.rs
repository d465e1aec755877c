//! Shared test support: the in-process hub, transports with faults, phones with skewed clocks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod faults;
pub mod hub;

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sync_core::replica::{Replica, ReplicaOptions};
use sync_core::sync::{sync, SyncError, SyncOptions, SyncSummary};
use sync_core::workflow::Role;
use sync_core::{GridId, Timestamp, UserId};
use uuid::Uuid;

#[allow(unused_imports)]
pub use faults::{Fault, Faulty};
#[allow(unused_imports)]
pub use hub::{Hub, Link, Oracle, SimTime, T0};

pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;

/// A seeded source of v7-shaped ids, so a seed replays a run exactly.
pub fn seeded_ids(seed: u64, time: SimTime) -> Arc<dyn Fn() -> Uuid + Send + Sync> {
    let rng = Mutex::new(StdRng::seed_from_u64(seed));
    Arc::new(move || {
        let mut bytes = [0u8; 10];
        rng.lock().unwrap().fill(&mut bytes);
        let ms = u64::try_from(time.now().millis()).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(ms, &bytes).into_uuid()
    })
}

/// A phone: its replica, its user and its link to the hub.
pub struct Phone {
    pub replica: Replica,
    pub user: UserId,
    pub role: Role,
    pub hub: Rc<RefCell<Hub>>,
    pub skew: i64,
    pub time: SimTime,
    pub ids_seed: u64,
}

impl Phone {
    pub fn options(time: &SimTime, skew: i64, ids_seed: u64) -> ReplicaOptions {
        let t = time.clone();
        ReplicaOptions {
            clock: Arc::new(move || Timestamp(t.now().millis() + skew)),
            ids: seeded_ids(ids_seed, time.clone()),
        }
    }

    /// Open a phone on `path` for `user` and log it in with the hub's grids for the user.
    pub fn open(
        hub: &Rc<RefCell<Hub>>,
        path: &Path,
        user: UserId,
        skew: i64,
        ids_seed: u64,
    ) -> Phone {
        let time = hub.borrow().time.clone();
        let replica = Replica::open_with(path, Self::options(&time, skew, ids_seed)).unwrap();
        let (role, grids) = {
            let h = hub.borrow();
            (h.roles[&user], h.grids_for(user))
        };
        replica.set_session(user, role, grids).unwrap();
        Phone {
            replica,
            user,
            role,
            hub: hub.clone(),
            skew,
            time,
            ids_seed,
        }
    }

    pub fn link(&self) -> Link {
        Link {
            hub: self.hub.clone(),
            user: self.user,
        }
    }

    pub fn sync(&self) -> Result<SyncSummary, SyncError> {
        sync(&self.replica, &mut self.link(), &SyncOptions::default())
    }

    pub fn sync_with(&self, options: &SyncOptions) -> Result<SyncSummary, SyncError> {
        sync(&self.replica, &mut self.link(), options)
    }

    pub fn grids(&self) -> Vec<GridId> {
        self.hub.borrow().grids_for(self.user)
    }

    /// The phone's export equals the hub's for the phone's grids.
    pub fn assert_converged(&self) {
        let mine = self.replica.export().unwrap();
        let hub = self.hub.borrow().export_for(&self.grids());
        if mine != hub {
            panic!(
                "export of {} differs from the hub's:\nphone: {}\nhub:   {}",
                self.replica.device_id(),
                serde_json::to_string_pretty(&mine).unwrap(),
                serde_json::to_string_pretty(&hub).unwrap()
            );
        }
    }
}

/// A hub with two grids, sharing `time`.
pub fn hub_with_grids(time: &SimTime, n: usize) -> (Rc<RefCell<Hub>>, Vec<GridId>) {
    let mut hub = Hub::new(time.clone());
    let grids = (0..n)
        .map(|i| {
            hub.add_grid(GridId::from(Uuid::from_u128(
                0x0193_0000_0000_7000_8000_0000_0000_0000 + i as u128 + 1,
            )))
        })
        .collect();
    (Rc::new(RefCell::new(hub)), grids)
}

pub fn user(n: u128) -> UserId {
    UserId::from(Uuid::from_u128(
        0x0193_0000_0000_7000_8000_0000_0001_0000 + n,
    ))
}

/// Records what a transport was asked (push requests, pull cursors).
pub struct Recorder<T> {
    pub inner: T,
    pub pushes: Vec<sync_core::wire::PushRequest>,
    pub pulls: Vec<Option<String>>,
}

impl<T> Recorder<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            pushes: Vec::new(),
            pulls: Vec::new(),
        }
    }
}

impl<T: sync_core::sync::Transport> sync_core::sync::Transport for Recorder<T> {
    fn push(
        &mut self,
        request: &sync_core::wire::PushRequest,
    ) -> Result<sync_core::wire::PushResponse, sync_core::sync::TransportError> {
        self.pushes.push(request.clone());
        self.inner.push(request)
    }
    fn pull(
        &mut self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<sync_core::wire::PullResponse, sync_core::sync::TransportError> {
        self.pulls.push(cursor.map(str::to_owned));
        self.inner.pull(cursor, limit)
    }
}

/// A small world: a hub with grids g1 and g2, worker 1 on g1, worker 2 on g1 and g2, a
/// supervisor; phones are opened in a temporary directory.
pub struct World {
    pub dir: tempfile::TempDir,
    pub time: SimTime,
    pub hub: Rc<RefCell<Hub>>,
    pub g1: GridId,
    pub g2: GridId,
    pub w1: UserId,
    pub w2: UserId,
    pub sup: UserId,
}

impl World {
    pub fn new() -> Self {
        let time = SimTime::new(T0);
        let (hub, grids) = hub_with_grids(&time, 2);
        let (g1, g2) = (grids[0], grids[1]);
        let (w1, w2, sup) = (user(1), user(2), user(3));
        {
            let mut h = hub.borrow_mut();
            h.add_user(w1, Role::Worker, &[g1]);
            h.add_user(w2, Role::Worker, &[g1, g2]);
            h.add_user(sup, Role::Supervisor, &[]);
        }
        Self {
            dir: tempfile::tempdir().unwrap(),
            time,
            hub,
            g1,
            g2,
            w1,
            w2,
            sup,
        }
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(format!("{name}.db"))
    }

    /// Open (or reopen) the phone stored under `name`.
    pub fn phone(&self, name: &str, user: UserId, skew: i64) -> Phone {
        let seed = name
            .bytes()
            .fold(7u64, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
        Phone::open(&self.hub, &self.path(name), user, skew, seed)
    }
}
