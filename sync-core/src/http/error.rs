//! [`HttpError`]: what a login, a logout or building a transport can fail with. Failures of
//! the requests themselves are the sync engine's [`TransportError`] (network, unavailable,
//! authentication, refused), so an app handles one classification everywhere.

use crate::replica::ReplicaError;
use crate::sync::TransportError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HttpError {
    /// No server and tokens are stored: log in first.
    #[error("not logged in: run login first")]
    NotLoggedIn,
    /// The server URL is not `http://…` (or `https://…` with feature `rustls`).
    #[error("invalid server URL: {0}")]
    InvalidUrl(String),
    /// The request failed (see [`TransportError`]; `Auth` means: log in again).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The server answered 2xx with a body this client does not understand.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// The replica could not store or read what the call needs.
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

impl HttpError {
    /// Whether trying again later can succeed without anything changing on the phone.
    pub fn is_retryable(&self) -> bool {
        match self {
            HttpError::Transport(t) => t.is_retryable(),
            _ => false,
        }
    }
}
