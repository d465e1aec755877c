//! The phone's HTTP client (feature `http`): blocking, no async runtime (the app calls it from
//! a background thread), built on `ureq` with gzip responses; HTTPS with feature `rustls`.
//!
//! - [`login`] / [`logout`] ([`session`]): `POST /api/v1/auth/login` registers this replica's
//!   own device id (the node of its clock) and stores the server URL and tokens in the replica
//!   (`Replica::save_credentials`) and the user in its session (`Replica::set_session`);
//! - [`HttpTransport`] ([`transport`]): the sync engine's [`Transport`](crate::sync::Transport)
//!   over `POST /api/v1/sync/push` and `GET /api/v1/sync/pull`;
//! - [`client`]: one request with timeouts, bounded retries with exponential backoff and
//!   jitter (network errors, 5xx, 429 with `Retry-After`) and the mapping of answers to
//!   [`TransportError`](crate::sync::TransportError);
//! - [`options`]: [`HttpOptions`]; [`error`]: [`HttpError`].
//!
//! Invariants:
//! - Authentication failures never touch the outbox: an expired access token is refreshed
//!   once (the rotated pair persisted before the request is retried); when the refresh token
//!   is refused too the call fails with `TransportError::Auth` ("log in again") and every
//!   unsent change waits for the next login.
//! - A refresh is never retried after a network error: the server may have rotated the token
//!   already, and presenting the old one again would end the session as a token reuse.
//! - Tokens and passwords never appear in errors or `Debug` output.

pub mod client;
pub mod error;
pub mod options;
pub mod session;
pub mod transport;

pub use error::HttpError;
pub use options::HttpOptions;
pub use session::{login, login_with, logout, logout_with, LoginInfo};
pub use transport::HttpTransport;
