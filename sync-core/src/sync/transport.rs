//! The transport: how the engine reaches the server. The HTTP client of the app implements it
//! over `POST /api/v1/sync/push` and `GET /api/v1/sync/pull`; the tests implement it over an
//! in-process hub, with and without injected faults.
//!
//! Failures are classified so the engine and the app know what to do:
//! - [`TransportError::Network`] and [`TransportError::Unavailable`] (5xx, 429): retry later,
//!   with backoff; nothing is lost (a push whose response was lost is answered `duplicate`);
//! - [`TransportError::Auth`] (401): refresh the token or log in again; the outbox stays;
//! - [`TransportError::Refused`] (other 4xx, with the error envelope's code and message): the
//!   request as a whole was refused and processed nothing.

use std::time::Duration;

use crate::wire::{PullResponse, PushRequest, PushResponse};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No answer: connection failed, timed out, or the answer was cut off.
    #[error("network error: {0}")]
    Network(String),
    /// The server answered 5xx or 429.
    #[error("server unavailable ({status}): {message}")]
    Unavailable {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// 401: the credentials are missing, invalid or expired.
    #[error("not authenticated: {0}")]
    Auth(String),
    /// Another 4xx: the request was refused as a whole.
    #[error("refused ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

impl TransportError {
    /// Whether trying again later can succeed without anything changing on the phone.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            TransportError::Network(_) | TransportError::Unavailable { .. }
        )
    }
}

/// The two calls of the sync protocol.
pub trait Transport {
    fn push(&mut self, request: &PushRequest) -> Result<PushResponse, TransportError>;
    fn pull(&mut self, cursor: Option<&str>, limit: usize) -> Result<PullResponse, TransportError>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn push(&mut self, request: &PushRequest) -> Result<PushResponse, TransportError> {
        (**self).push(request)
    }
    fn pull(&mut self, cursor: Option<&str>, limit: usize) -> Result<PullResponse, TransportError> {
        (**self).pull(cursor, limit)
    }
}
