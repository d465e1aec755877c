//! `sync-core`: everything the phones and the server must agree on.
//!
//! - [`ids`], [`time`]: identifier newtypes and the contract's time formats;
//! - [`hlc`]: the hybrid logical clock that stamps every write;
//! - [`collection`]: the synced collections and every field's specification;
//! - [`wire`]: the JSON bodies of push, pull and the error envelope;
//! - [`validate`]: field validation and normalisation (phone and server alike);
//! - [`merge`]: per-field last-writer-wins, conflict detection, the state join;
//! - [`workflow`]: the hazard workflow table and its verdicts;
//! - [`ingest`]: the server's push rules over a storage trait (the server and the test hub run
//!   the same code); [`cursor`]: the gap-free per-grid pull cursor;
//! - `replica` and `sync` (feature `replica`): the phone's SQLite replica, its outbox and the
//!   sync engine that drives a [`Transport`](crate::sync::Transport);
//! - `http` (feature `http`): the phone's blocking HTTP client: login, logout and the
//!   `Transport` over the server's sync endpoints.
//!
//! Nothing here panics on bad input: every fallible call returns a `Result`.

pub mod collection;
pub mod cursor;
pub mod export;
pub mod hlc;
#[cfg(feature = "http")]
pub mod http;
pub mod ids;
pub mod ingest;
pub mod merge;
pub mod model;
#[cfg(feature = "replica")]
pub mod replica;
#[cfg(feature = "replica")]
pub mod sync;
pub mod time;
pub mod validate;
pub mod wire;
pub mod workflow;

pub use collection::Collection;
pub use hlc::{Hlc, HlcClock};
pub use ids::{AreaId, ConflictId, DeviceId, GridId, MutationId, RecordId, UserId};
pub use time::{Date, Timestamp};
