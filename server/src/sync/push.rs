//! `POST /api/v1/sync/push`, behind HTTP: one push is one write transaction that runs
//! sync-core's push rules ([`sync_core::ingest::ingest`]) against [`DieselStore`].
//!
//! Lock order, to keep concurrent pushes on PostgreSQL free of deadlocks: the device's row
//! first (serialising pushes of one device), then the clocks of every grid the batch
//! touches, in sorted order. Every record the batch names is then loaded in one query per
//! collection, so applying a mutation costs its writes and little else.

use sync_core::ingest::{ingest, Caller, IngestError};
use sync_core::wire::{PushRequest, PushResponse};
use sync_core::{HlcClock, Timestamp};

use super::store::{lock_device_seq, record_device_sync, DieselStore};
use crate::db::DbConnection;
use crate::error::{AppError, AppResult};
use crate::scope::GridScope;

/// The most mutations one push may carry (a phone sends pages of a few hundred).
pub const MAX_MUTATIONS: usize = 1000;

/// Check a push before it touches the database.
pub fn check_request(caller: &Caller, req: &PushRequest) -> AppResult<()> {
    if req.device_id != caller.device {
        return Err(
            AppError::forbidden("device_id is not the device this token was issued to")
                .with_code("device_mismatch"),
        );
    }
    if req.mutations.len() > MAX_MUTATIONS {
        return Err(
            AppError::invalid(format!("at most {MAX_MUTATIONS} mutations per push"))
                .with_code("too_many_mutations"),
        );
    }
    Ok(())
}

/// Apply a push inside the caller's write transaction. `clock` is the server's clock; the
/// caller folds it back into the shared one afterwards.
pub fn apply_push(
    conn: &mut DbConnection,
    caller: &Caller,
    scope: &GridScope,
    req: &PushRequest,
    now: Timestamp,
    clock: &mut HlcClock,
) -> AppResult<PushResponse> {
    let device = caller.device.to_string();
    lock_device_seq(conn, &device)?;
    let grids: Vec<String> = req
        .mutations
        .iter()
        .map(|m| m.grid_id.to_string())
        .collect();
    let keys: Vec<_> = req
        .mutations
        .iter()
        .map(|m| (m.collection, m.record_id))
        .collect();

    let mut store = DieselStore::new(conn, scope, now.millis());
    store.reserve_counters(&grids)?;
    store.prefetch(&keys)?;
    let response = ingest(&mut store, caller, req, now, clock).map_err(|e| match e {
        IngestError::SeqGap {
            expected_after,
            got,
        } => AppError::conflict(e.to_string())
            .with_code("seq_gap")
            .with_details(serde_json::json!({"expected_seq": expected_after + 1, "got": got})),
        IngestError::Store(inner) => inner,
    })?;
    store.flush_counters()?;
    record_device_sync(
        conn,
        &device,
        now.millis(),
        req.pending_count,
        req.app_version.as_deref(),
    )?;
    Ok(response)
}
