//! The sync endpoints' server side: typed rows of the synced collections ([`rows`]), the
//! diesel store the shared push rules run on ([`store`]), and the push and pull operations
//! ([`push`], [`pull`]). HTTP handlers live in `routes::sync`.

pub mod pull;
pub mod push;
pub mod rows;
pub mod store;
