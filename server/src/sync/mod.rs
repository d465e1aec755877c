//! The sync endpoints' server side: typed rows of the synced collections ([`rows`]), the
//! diesel store the shared push rules run on ([`store`]), and the push and pull operations
//! ([`push`], [`pull`]), and the canonical export of a grid ([`export`]). HTTP handlers live in `routes::sync`.

pub mod export;
pub mod pull;
pub mod push;
pub mod rows;
pub mod store;
