//! The replica's public error. Internal failures (SQLite, JSON) are converted once, here, into
//! variants that carry no personal data: SQLite's messages name tables and constraints, never
//! values, and JSON errors are reduced to their category and position.

use crate::collection::Collection;
use crate::ids::RecordId;
use crate::wire::Reason;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplicaError {
    /// The write is not valid (the same reasons the server would give).
    #[error("invalid: {0}")]
    Invalid(Reason),
    /// No such record on this phone (or it lies outside what the phone holds).
    #[error("no {collection} record {id} on this phone")]
    NotFound {
        collection: Collection,
        id: RecordId,
    },
    /// The operation needs a logged-in user.
    #[error("not logged in")]
    NotLoggedIn,
    /// Another user's unsent changes are still on this phone.
    #[error("another user's unsent changes are still on this phone; sync them first")]
    OtherUser,
    /// The database file was written by a newer app version.
    #[error("the replica's schema version {found} is newer than this app supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    /// Stored data could not be read back.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// SQLite failed (disk full, I/O error, locked, …).
    #[error("storage error: {0}")]
    Storage(String),
}

impl From<rusqlite::Error> for ReplicaError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            // Bound values never appear in rusqlite's error text, but a conversion error may
            // quote a column's content: keep only its kind.
            rusqlite::Error::FromSqlConversionFailure(i, ty, _) => {
                ReplicaError::Corrupt(format!("column {i} of type {ty} could not be converted"))
            }
            other => ReplicaError::Storage(other.to_string()),
        }
    }
}

impl From<serde_json::Error> for ReplicaError {
    fn from(e: serde_json::Error) -> Self {
        ReplicaError::Corrupt(format!(
            "JSON {:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    }
}

pub type Result<T, E = ReplicaError> = std::result::Result<T, E>;
