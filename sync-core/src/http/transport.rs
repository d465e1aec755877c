//! [`HttpTransport`]: the sync engine's [`Transport`] over `POST /api/v1/sync/push` and
//! `GET /api/v1/sync/pull`, with the bearer token of the replica's session.
//!
//! On a 401 the access token is refreshed once (`POST /api/v1/auth/refresh`), the rotated
//! pair stored in the replica at once, and the request sent again. When the refresh is
//! refused (expired, revoked, reused) — or the 401 says the device is revoked, the account
//! disabled or the session ended, which no refresh can mend — the call fails with
//! `TransportError::Auth` ("log in again"); the outbox is untouched, and the next login syncs
//! everything unsent.

use serde::de::DeserializeOwned;

use super::client::{Answer, Client, Method, Retry};
use super::error::HttpError;
use super::options::HttpOptions;
use super::session::{log_in_again, refresh};
use crate::replica::Replica;
use crate::sync::{Transport, TransportError};
use crate::wire::{PullResponse, PushRequest, PushResponse};

/// 401 codes that a refresh cannot mend.
const FINAL_AUTH_CODES: &[&str] = &["device_revoked", "account_disabled", "session_ended"];

/// The HTTP transport. Borrows the replica to persist rotated tokens.
pub struct HttpTransport<'r> {
    client: Client,
    access_token: String,
    refresh_token: String,
    replica: Option<&'r Replica>,
}

impl std::fmt::Debug for HttpTransport<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("server", &self.client.base_url())
            .finish_non_exhaustive()
    }
}

impl<'r> HttpTransport<'r> {
    /// The transport for the replica's stored server and tokens, with default options.
    /// `HttpError::NotLoggedIn` when there are none (log in first).
    pub fn from_replica(replica: &'r Replica) -> Result<HttpTransport<'r>, HttpError> {
        Self::with_options(replica, HttpOptions::default())
    }

    /// [`HttpTransport::from_replica`] with `options`.
    pub fn with_options(
        replica: &'r Replica,
        options: HttpOptions,
    ) -> Result<HttpTransport<'r>, HttpError> {
        let credentials = replica.credentials()?.ok_or(HttpError::NotLoggedIn)?;
        Ok(HttpTransport {
            client: Client::new(&credentials.server_url, &options)?,
            access_token: credentials.access_token,
            refresh_token: credentials.refresh_token,
            replica: Some(replica),
        })
    }

    /// A transport whose tokens live in memory only (tests, tools): a refresh rotates them
    /// here and nowhere else.
    pub fn with_tokens(
        server_url: &str,
        access_token: &str,
        refresh_token: &str,
        options: HttpOptions,
    ) -> Result<HttpTransport<'static>, HttpError> {
        Ok(HttpTransport {
            client: Client::new(server_url, &options)?,
            access_token: access_token.to_owned(),
            refresh_token: refresh_token.to_owned(),
            replica: None,
        })
    }

    /// The server's base URL.
    pub fn server_url(&self) -> &str {
        self.client.base_url()
    }

    /// Send with the bearer token; on a 401 refresh once and send again.
    fn authorized(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Answer, TransportError> {
        let answer = self.send(method, path, body)?;
        if answer.status != 401 {
            return Ok(answer);
        }
        let (code, _) = answer.envelope();
        if FINAL_AUTH_CODES.contains(&code.as_str()) {
            return Err(log_in_again(&answer));
        }
        self.renew()?;
        let answer = self.send(method, path, body)?;
        if answer.status == 401 {
            return Err(log_in_again(&answer));
        }
        Ok(answer)
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Answer, TransportError> {
        self.client
            .send(method, path, Some(&self.access_token), body, Retry::Always)
    }

    /// Exchange the refresh token for a new pair and persist it before anything else.
    fn renew(&mut self) -> Result<(), TransportError> {
        let tokens = refresh(&self.client, &self.refresh_token)?;
        if let Some(replica) = self.replica {
            replica
                .update_tokens(&tokens.access_token, &tokens.refresh_token)
                .map_err(|e| {
                    TransportError::Network(format!("could not store the renewed session: {e}"))
                })?;
        }
        self.access_token = tokens.access_token;
        self.refresh_token = tokens.refresh_token;
        Ok(())
    }

    fn call<T: DeserializeOwned>(
        &mut self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<T, TransportError> {
        self.authorized(method, path, body)?.decode()
    }
}

impl Transport for HttpTransport<'_> {
    fn push(&mut self, request: &PushRequest) -> Result<PushResponse, TransportError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| TransportError::Network(format!("could not encode the push: {e}")))?;
        self.call(Method::Post, "/api/v1/sync/push", Some(&body))
    }

    fn pull(&mut self, cursor: Option<&str>, limit: usize) -> Result<PullResponse, TransportError> {
        let mut path = format!("/api/v1/sync/pull?limit={limit}");
        if let Some(c) = cursor.filter(|c| !c.is_empty()) {
            path.push_str("&cursor=");
            path.push_str(&percent_encode(c));
        }
        self.call(Method::Get, &path, None)
    }
}

/// Query-string encoding: unreserved characters as they are, every other byte `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_query_encoded() {
        assert_eq!(percent_encode("v1_0193a2c4-x.17"), "v1_0193a2c4-x.17");
        assert_eq!(percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
