//! The server a phone talks to and its session tokens, kept in the replica's `meta` table
//! (keys `server_url`, `access_token`, `refresh_token`) so that a restarted app syncs without
//! asking for the password again.
//!
//! Invariants:
//! - Credentials live apart from the data: saving, rotating or clearing them never touches
//!   the records, the outbox or the rejections (an expired session loses nothing unsent).
//! - A token pair is replaced as a whole, in one transaction: a refresh token that the server
//!   has rotated is never left beside the access token of another pair.
//! - Tokens never appear in `Debug` output or errors.
//!
//! The replica file is the app's private storage (the phone's sandbox); tokens are stored as
//! the server issued them.

use super::error::Result;
use super::meta;
use super::Replica;

const SERVER_URL: &str = "server_url";
const ACCESS_TOKEN: &str = "access_token";
const REFRESH_TOKEN: &str = "refresh_token";

/// A server and the session tokens it issued to this device.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The server's base URL (`http://host:port`, without `/api/v1`).
    pub server_url: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("server_url", &self.server_url)
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// The stored server and tokens; `None` before the first login and after a logout.
    pub fn credentials(&self) -> Result<Option<Credentials>> {
        let inner = self.lock();
        let conn = &inner.conn;
        let (Some(server_url), Some(access_token), Some(refresh_token)) = (
            meta::get(conn, SERVER_URL)?,
            meta::get(conn, ACCESS_TOKEN)?,
            meta::get(conn, REFRESH_TOKEN)?,
        ) else {
            return Ok(None);
        };
        Ok(Some(Credentials {
            server_url,
            access_token,
            refresh_token,
        }))
    }

    /// The server this phone last logged in to (kept after a logout).
    pub fn server_url(&self) -> Result<Option<String>> {
        meta::get(&self.lock().conn, SERVER_URL)
    }

    /// Store a server and its tokens (after a login), in one transaction.
    pub fn save_credentials(&self, credentials: &Credentials) -> Result<()> {
        let mut inner = self.lock();
        let tx = inner.conn.transaction()?;
        meta::set(&tx, SERVER_URL, &credentials.server_url)?;
        meta::set(&tx, ACCESS_TOKEN, &credentials.access_token)?;
        meta::set(&tx, REFRESH_TOKEN, &credentials.refresh_token)?;
        tx.commit()?;
        Ok(())
    }

    /// Replace the token pair (after a refresh rotated it), in one transaction.
    pub fn update_tokens(&self, access_token: &str, refresh_token: &str) -> Result<()> {
        let mut inner = self.lock();
        let tx = inner.conn.transaction()?;
        meta::set(&tx, ACCESS_TOKEN, access_token)?;
        meta::set(&tx, REFRESH_TOKEN, refresh_token)?;
        tx.commit()?;
        Ok(())
    }

    /// Forget the tokens (logout); the server URL, the session's user and every record,
    /// outbox entry and rejection stay.
    pub fn clear_tokens(&self) -> Result<()> {
        let mut inner = self.lock();
        let tx = inner.conn.transaction()?;
        meta::delete(&tx, ACCESS_TOKEN)?;
        meta::delete(&tx, REFRESH_TOKEN)?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn credentials_round_trip_rotate_and_clear_without_touching_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let replica = Replica::open(&path).unwrap();
        assert_eq!(replica.credentials().unwrap(), None);
        let creds = Credentials {
            server_url: "http://127.0.0.1:8080".into(),
            access_token: "a1".into(),
            refresh_token: "r1".into(),
        };
        replica.save_credentials(&creds).unwrap();
        assert!(!format!("{creds:?}").contains("r1"));
        replica.update_tokens("a2", "r2").unwrap();
        drop(replica);

        let replica = Replica::open(&path).unwrap();
        let stored = replica.credentials().unwrap().unwrap();
        assert_eq!(stored.server_url, creds.server_url);
        assert_eq!(
            (stored.access_token.as_str(), stored.refresh_token.as_str()),
            ("a2", "r2")
        );
        replica.clear_tokens().unwrap();
        assert_eq!(replica.credentials().unwrap(), None);
        assert_eq!(
            replica.server_url().unwrap().as_deref(),
            Some("http://127.0.0.1:8080")
        );
    }
}
