//! The phone's offline replica: one SQLite file holding the records of the worker's grids, the
//! outbox of changes not yet confirmed by the server, and the rejections the server gave.
//!
//! Invariants:
//! - **Offline first.** Every write is validated ([`crate::validate::validate_write`]), stamped
//!   by the hybrid logical clock, applied to the local view and queued in the outbox — record,
//!   outbox entry, clock state and `seq` counter in ONE transaction — before the call returns.
//!   Reads never touch the network.
//! - **Local view = mirror ⊕ outbox.** `mirror` is the last server state of a record (pulled,
//!   folded with [`crate::merge::join`]); the local view is the mirror overlaid, in `seq` order,
//!   with the record's outbox entries (pending and acked-but-not-yet-pulled), field by field,
//!   plain override. A hazard's workflow fields are the mirror's state folded with the hazard's
//!   not-yet-pulled actions through [`crate::workflow::decide`] (optimistic; the server's
//!   verdict replaces it once pulled). A record with neither mirror nor outbox entry is gone.
//! - **`seq` is never reused.** The push `seq` is the outbox's primary key, taken from a
//!   counter in `meta`, contiguous from 1. An entry leaves the outbox only after the server has
//!   processed its `seq` (rejected → moved to `rejections`; acked → deleted once a complete pull
//!   has brought the server state that contains it), so the pending entries always form a
//!   contiguous run right after the server's `last_applied_seq`.
//! - **Never panics.** Every public call returns [`ReplicaError`]; a poisoned lock is
//!   recovered (SQLite's transactions keep the file consistent).
//!
//! The file is [`Replica`]'s alone: open one `Replica` per file per process and share it
//! (`Replica` is `Send + Sync`; calls serialise on one connection).

mod credentials;
mod error;
mod export;
mod generic;
mod hazards;
mod households;
mod meta;
mod outbox;
mod records;
pub mod schema;
mod syncing;
mod work;
mod write;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;
use uuid::Uuid;

pub use credentials::Credentials;
pub use error::{ReplicaError, Result};
pub use export::{ConflictMark, Status, StoredRejection};
pub use records::{RecordView, SyncState, Tracked};

use crate::ids::{DeviceId, GridId, UserId};
use crate::time::Timestamp;
use crate::workflow::Role;

/// The phone's wall clock (tests inject one running behind or ahead).
pub type ClockFn = Arc<dyn Fn() -> Timestamp + Send + Sync>;
/// Where fresh UUIDs come from (the device id, record and mutation ids).
pub type IdFn = Arc<dyn Fn() -> Uuid + Send + Sync>;

/// How a replica is opened.
#[derive(Clone)]
pub struct ReplicaOptions {
    /// The phone's clock; defaults to the system clock.
    pub clock: ClockFn,
    /// Fresh ids; defaults to v7 UUIDs. Tests inject a seeded source to replay a run.
    pub ids: IdFn,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(Timestamp::now),
            ids: Arc::new(Uuid::now_v7),
        }
    }
}

impl std::fmt::Debug for ReplicaOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaOptions").finish_non_exhaustive()
    }
}

/// Who is logged in on this phone and what they may hold.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Session {
    pub user_id: Option<UserId>,
    /// The role used to show hazard workflow moves optimistically (worker until logged in).
    pub role: Role,
    /// The grids this phone holds; empty until the first login.
    pub grid_ids: Vec<GridId>,
}

impl Session {
    /// The grids this phone may hold, once known: `None` before the first login, and while a
    /// supervisor's login listed no grids (their scope is an area; the first pull states it).
    pub fn scope(&self) -> Option<&[GridId]> {
        (self.user_id.is_some() && !self.grid_ids.is_empty()).then_some(self.grid_ids.as_slice())
    }
}

impl Default for Session {
    fn default() -> Self {
        Self {
            user_id: None,
            role: Role::Worker,
            grid_ids: Vec::new(),
        }
    }
}

pub(crate) struct Inner {
    conn: Connection,
    session: Session,
}

/// The offline replica. See the module notes.
pub struct Replica {
    inner: Mutex<Inner>,
    sync_lock: Mutex<()>,
    device: DeviceId,
    clock: ClockFn,
    ids: IdFn,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// Open (creating or upgrading) the replica at `path` with the system clock.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, ReplicaOptions::default())
    }

    /// Open with an injected clock and id source.
    pub fn open_with(path: impl AsRef<Path>, options: ReplicaOptions) -> Result<Self> {
        let mut conn = Connection::open(path)?;
        // A file from a newer app is refused before anything (even the journal mode) changes.
        schema::check_not_newer(&conn)?;
        schema::configure(&conn)?;
        schema::migrate(&mut conn)?;
        let device = meta::device_id(&mut conn, || DeviceId::from((options.ids)()))?;
        let session = meta::load_session(&conn)?;
        Ok(Self {
            inner: Mutex::new(Inner { conn, session }),
            sync_lock: Mutex::new(()),
            device,
            clock: options.clock,
            ids: options.ids,
        })
    }

    /// This install's id: the node of its clock and the `device_id` of its pushes.
    pub fn device_id(&self) -> DeviceId {
        self.device
    }

    pub(crate) fn now(&self) -> Timestamp {
        (self.clock)()
    }

    pub(crate) fn fresh_id(&self) -> Uuid {
        (self.ids)()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Held for the duration of one sync so that two syncs never interleave.
    pub(crate) fn sync_guard(&self) -> MutexGuard<'_, ()> {
        self.sync_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record who logged in (after `POST /auth/login`): the user, their role and the login
    /// response's `grid_ids` (may be empty for a supervisor: every pull states the scope, and
    /// the phone keeps to it). Logging in as another user is refused while that user's changes
    /// are unsent; otherwise the previous user's data is removed.
    pub fn set_session(&self, user_id: UserId, role: Role, grid_ids: Vec<GridId>) -> Result<()> {
        let mut inner = self.lock();
        let Inner { conn, session } = &mut *inner;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(previous) = session.user_id {
            if previous != user_id {
                if outbox::pending_count(&tx)? > 0 {
                    return Err(ReplicaError::OtherUser);
                }
                // The device keeps its seq and clock across users: save them before the
                // outbox goes.
                let counters = meta::counters(&tx, self.device)?;
                meta::save_counters(&tx, &counters)?;
                tx.execute_batch(
                    "DELETE FROM records; DELETE FROM outbox; DELETE FROM rejections;
                     DELETE FROM meta WHERE key IN ('cursor', 'last_sync_at', 'last_error');",
                )?;
            }
        }
        let next = Session {
            user_id: Some(user_id),
            role,
            grid_ids,
        };
        meta::save_session(&tx, &next)?;
        tx.commit()?;
        *session = next;
        Ok(())
    }

    /// Who is logged in and which grids this phone holds (updated by every complete pull).
    pub fn scope(&self) -> Session {
        self.lock().session.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn replica_is_send_and_sync() {
        assert_send_sync::<Replica>();
    }
}
