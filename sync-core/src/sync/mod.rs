//! The sync engine: drives a [`Transport`] to push the replica's outbox and pull the server's
//! changes, applying every response page in one replica transaction.
//!
//! - [`transport`]: the two calls a server offers and how their failures are classified;
//! - [`engine`]: [`sync`], the push-then-pull run, and [`Backoff`] for retries;
//! - [`summary`]: what one run did ([`SyncSummary`]).

pub mod engine;
pub mod summary;
pub mod transport;

pub use engine::{sync, Backoff, SyncError, SyncOptions};
pub use summary::{ConflictNote, RejectedNote, SyncSummary};
pub use transport::{Transport, TransportError};
