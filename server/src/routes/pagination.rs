//! Keyset pagination for every list endpoint (contract, "Conventions"): responses are
//! `{"items": [...], "next_cursor": "opaque" | null}`; requests take `limit` (default
//! [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]) and `cursor`.
//!
//! Invariants:
//! - A cursor is the sort key of the last item served, JSON-encoded then base64url (no
//!   padding). Clients treat it as opaque; the server decodes it into the key type the
//!   endpoint sorts by and continues strictly after it. Because the key is unique and the
//!   order total (e.g. `id`, or `(created_at, id)`), pages never overlap or skip rows that
//!   existed when the listing started, whatever is inserted meanwhile.
//! - `limit` outside 1..=500 is a 422 `invalid_value` (not silently clamped: a client asking
//!   for 1000 would otherwise believe it got everything). A cursor that does not decode to
//!   the endpoint's key is a 400 `invalid_cursor`.
//! - `next_cursor` is `null` exactly when the page is the last: the query fetches
//!   `limit + 1` rows ([`PageRequest::fetch_limit`]) to know without a count.
//!
//! Use:
//!
//! ```ignore
//! async fn list(q: web::Query<PageParams>, ..) -> AppResult<HttpResponse> {
//!     let page = PageRequest::new(q.limit, q.cursor.clone())?;
//!     let after: Option<String> = page.after()?;            // key type of this endpoint
//!     let rows = db::load_after(conn, after, page.fetch_limit())?; // ORDER BY key, LIMIT n+1
//!     Ok(HttpResponse::Ok().json(page.finish(rows, |r| r.id.clone())))
//! }
//! ```
//!
//! An endpoint with more query parameters declares `limit: Option<u32>` and
//! `cursor: Option<String>` in its own query struct (not `#[serde(flatten)]`: with
//! `serde_urlencoded`, flattened numbers fail to parse) and calls [`PageRequest::new`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};

/// Items per page when the client gives no `limit`.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest `limit` accepted.
pub const MAX_LIMIT: u32 = 500;

/// The query parameters of a plain list endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Page size, 1..=500 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A response page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// The items, in the endpoint's order.
    pub items: Vec<T>,
    /// Where the next page starts, or `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A validated page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    limit: u32,
    cursor: Option<String>,
}

impl PageRequest {
    /// Validate `limit` (1..=500, default 50) and keep `cursor` for [`PageRequest::after`].
    pub fn new(limit: Option<u32>, cursor: Option<String>) -> AppResult<PageRequest> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(
                AppError::invalid(format!("limit must be between 1 and {MAX_LIMIT}"))
                    .with_details(serde_json::json!({"field": "limit", "max": MAX_LIMIT})),
            );
        }
        Ok(PageRequest {
            limit,
            cursor: cursor.filter(|c| !c.is_empty()),
        })
    }

    /// From [`PageParams`].
    pub fn from_params(params: &PageParams) -> AppResult<PageRequest> {
        PageRequest::new(params.limit, params.cursor.clone())
    }

    /// The page size.
    pub fn limit(&self) -> usize {
        self.limit as usize
    }

    /// How many rows to fetch: one more than the page, to know whether another follows.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// The key to continue after, decoded from the cursor (`None` on the first page);
    /// 400 `invalid_cursor` when it is not one of ours.
    pub fn after<K: DeserializeOwned>(&self) -> AppResult<Option<K>> {
        self.cursor.as_deref().map(decode_cursor).transpose()
    }

    /// Build the page from up to [`PageRequest::fetch_limit`] rows sorted by `key`.
    pub fn finish<T, K: Serialize>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> K) -> Page<T> {
        let next_cursor = if rows.len() > self.limit() {
            rows.truncate(self.limit());
            rows.last().map(|last| encode_cursor(&key(last)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

/// Encode a sort key as an opaque cursor.
pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    // Serialising a plain key (strings, numbers, tuples of them) cannot fail; fall back to
    // an empty cursor rather than panic if a caller passes something exotic.
    let json = serde_json::to_vec(key).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// Decode a cursor made by [`encode_cursor`]; 400 `invalid_cursor` otherwise.
pub fn decode_cursor<K: DeserializeOwned>(cursor: &str) -> AppResult<K> {
    let invalid = || AppError::bad_request("the cursor is not valid").with_code("invalid_cursor");
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn limits() {
        assert_eq!(PageRequest::new(None, None).unwrap().limit(), 50);
        assert_eq!(PageRequest::new(Some(500), None).unwrap().limit(), 500);
        assert_eq!(PageRequest::new(Some(1), None).unwrap().fetch_limit(), 2);
        for bad in [0, 501, u32::MAX] {
            assert_eq!(
                PageRequest::new(Some(bad), None).unwrap_err().kind(),
                ErrorKind::InvalidValue
            );
        }
    }

    #[test]
    fn pages_and_cursors() {
        let req = PageRequest::new(Some(2), None).unwrap();
        assert_eq!(req.after::<String>().unwrap(), None);
        let page = req.finish(vec![1, 2, 3], |n| (n * 10, format!("k{n}")));
        assert_eq!(page.items, vec![1, 2]);
        let cursor = page.next_cursor.unwrap();
        let next = PageRequest::new(Some(2), Some(cursor)).unwrap();
        assert_eq!(
            next.after::<(i32, String)>().unwrap(),
            Some((20, "k2".to_owned()))
        );
        let last = next.finish(vec![3], |n| *n);
        assert_eq!(last.next_cursor, None);
        assert_eq!(
            PageRequest::new(None, Some("!!".into()))
                .unwrap()
                .after::<String>()
                .unwrap_err()
                .code(),
            "invalid_cursor"
        );
        // A cursor of another endpoint's key type is refused, not misread.
        let other = encode_cursor(&42);
        assert!(PageRequest::new(None, Some(other))
            .unwrap()
            .after::<String>()
            .is_err());
        // Empty cursor = first page.
        assert_eq!(
            PageRequest::new(None, Some(String::new()))
                .unwrap()
                .after::<String>()
                .unwrap(),
            None
        );
    }
}
