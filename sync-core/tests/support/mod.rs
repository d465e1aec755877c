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
