//! What one sync run did, for the app to show and the CLI to print as JSON.

use serde::Serialize;

use crate::collection::Collection;
use crate::ids::RecordId;
use crate::wire::RejectCode;

/// A mutation the server refused during this run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RejectedNote {
    pub seq: u64,
    pub collection: Collection,
    pub record_id: RecordId,
    pub code: RejectCode,
    pub message: String,
}

/// A mutation of this run whose fields met a concurrent edit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConflictNote {
    pub seq: u64,
    pub collection: Collection,
    pub record_id: RecordId,
    pub fields: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SyncSummary {
    /// Mutations sent (retries of a lost response count again).
    pub pushed: u64,
    /// Newly applied by the server.
    pub applied: u64,
    /// Already processed before (a retry after a lost response).
    pub duplicates: u64,
    pub rejected: Vec<RejectedNote>,
    pub conflicts: Vec<ConflictNote>,
    /// Changes received.
    pub pulled: u64,
    /// Records removed because their grid left the phone's scope.
    pub purged: u64,
    /// Mutations still waiting after the run.
    pub pending: u64,
}
