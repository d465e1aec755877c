//! The JSON bodies of the sync protocol and the error envelope, exactly as the contract
//! writes them. Both the phone and the server (de)serialise these types, so a change here is
//! a protocol change.
//!
//! Additions beyond the contract (allowed: "more is welcome"): a pull response also carries
//! `server_hlc` and `scope` (the grids the caller may hold — the phone purges the others), and
//! a `duplicate` result for a mutation the server had rejected repeats the original `reason`,
//! so a phone that lost the first response still learns why. A push may carry the phone's
//! `pending_count` and `app_version` for the devices view.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::collection::Collection;
use crate::hlc::Hlc;
use crate::ids::{DeviceId, GridId, MutationId, RecordId};
use crate::time::Timestamp;

/// A record's fields: wire name → JSON value (`null` = unset).
pub type Fields = Map<String, Value>;

/// `POST /api/v1/sync/push` body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushRequest {
    pub device_id: DeviceId,
    pub mutations: Vec<Mutation>,
    /// Addition: how many mutations the phone still holds (shown to supervisors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_count: Option<u64>,
    /// Addition: the phone app's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Upsert,
    Delete,
}

/// One entry of a device's outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mutation {
    /// The device's own contiguous counter, from 1.
    pub seq: u64,
    pub id: MutationId,
    pub collection: Collection,
    pub record_id: RecordId,
    pub grid_id: GridId,
    pub op: Op,
    pub hlc: Hlc,
    /// Only the fields this mutation sets.
    #[serde(default)]
    pub fields: Fields,
    /// For each field set, the version the device had seen (`null` for a new record/field).
    #[serde(default)]
    pub base: BTreeMap<String, Option<Hlc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    Applied,
    Duplicate,
    Rejected,
}

/// Why the server refused a mutation (or an HTTP request).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// The grid or record lies outside the caller's scope.
    OutOfScope,
    /// The caller's role may never do this (e.g. a worker's `dispatch`).
    Forbidden,
    /// A value has the wrong type, is out of range, too long or not in the enum.
    InvalidValue,
    /// A required field is missing on creation.
    MissingField,
    /// The field does not exist in the collection.
    UnknownField,
    /// The field is owned by the server (hazard status, action effect, …).
    ServerOwned,
    /// An author field names somebody else.
    AuthorMismatch,
    /// A second write to an append-only record, or a change to a set-once field.
    Immutable,
    /// The record (or the record it refers to) does not exist.
    NotFound,
    /// `op: delete` on a collection that has no deletion.
    DeleteNotAllowed,
    /// The mutation itself is not well formed (bad stamp, wrong node, …).
    Malformed,
    /// A code this build does not know (newer server); keeps old phones parsing.
    #[serde(other)]
    Other,
}

impl RejectCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::OutOfScope => "out_of_scope",
            RejectCode::Forbidden => "forbidden",
            RejectCode::InvalidValue => "invalid_value",
            RejectCode::MissingField => "missing_field",
            RejectCode::UnknownField => "unknown_field",
            RejectCode::ServerOwned => "server_owned",
            RejectCode::AuthorMismatch => "author_mismatch",
            RejectCode::Immutable => "immutable",
            RejectCode::NotFound => "not_found",
            RejectCode::DeleteNotAllowed => "delete_not_allowed",
            RejectCode::Malformed => "malformed",
            RejectCode::Other => "other",
        }
    }
}

impl fmt::Display for RejectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"code", "message"}` of a rejected mutation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Reason {
    pub code: RejectCode,
    pub message: String,
}

impl Reason {
    pub fn new(code: RejectCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MutationResult {
    pub seq: u64,
    pub id: MutationId,
    pub status: ResultStatus,
    #[serde(default)]
    pub reason: Option<Reason>,
    /// Fields of this mutation that met a concurrent edit.
    #[serde(default)]
    pub conflicts: Vec<String>,
}

/// `POST /api/v1/sync/push` response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushResponse {
    pub results: Vec<MutationResult>,
    pub last_applied_seq: u64,
    pub server_time: Timestamp,
    pub server_hlc: Hlc,
}

/// One record's complete current state in a pull.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub collection: Collection,
    pub id: RecordId,
    pub grid_id: GridId,
    pub fields: Fields,
    #[serde(default)]
    pub versions: BTreeMap<String, Hlc>,
    #[serde(default)]
    pub deleted: bool,
}

/// What the caller may hold; anything else on the phone is purged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub grid_ids: Vec<GridId>,
}

/// `GET /api/v1/sync/pull` response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PullResponse {
    pub changes: Vec<Change>,
    pub cursor: String,
    pub has_more: bool,
    pub server_time: Timestamp,
    #[serde(default)]
    pub server_hlc: Option<Hlc>,
    #[serde(default)]
    pub scope: Option<Scope>,
}

/// The body of every 4xx/5xx response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn push_request_matches_contract_example() {
        let body = json!({"device_id": "0193a2c4-0000-7000-8000-000000000001", "mutations": [
            {"seq": 1, "id": "0193a2c4-0000-7000-8000-000000000002", "collection": "hazards",
             "record_id": "0193a2c4-0000-7000-8000-000000000003", "grid_id": "0193a2c4-0000-7000-8000-000000000004",
             "op": "upsert", "hlc": "001795249800123-00000-0193a2c4-0000-7000-8000-000000000001",
             "fields": {"title": "电瓶车楼道充电"}, "base": {"title": null}}]});
        let req: PushRequest = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(req.mutations[0].collection, Collection::Hazards);
        assert_eq!(req.mutations[0].base.get("title"), Some(&None));
        assert_eq!(serde_json::to_value(&req).unwrap(), body);
    }

    #[test]
    fn responses_round_trip() {
        let resp = PushResponse {
            results: vec![MutationResult {
                seq: 3,
                id: MutationId::new(),
                status: ResultStatus::Rejected,
                reason: Some(Reason::new(RejectCode::OutOfScope, "grid not assigned")),
                conflicts: vec!["title".into()],
            }],
            last_applied_seq: 3,
            server_time: Timestamp(1_795_249_800_123),
            server_hlc: Hlc::new(1_795_249_800_123, 1, "server"),
        };
        let v = serde_json::to_value(&resp).unwrap();
        assert_eq!(v["results"][0]["reason"]["code"], "out_of_scope");
        assert_eq!(v["server_time"], "2026-11-21T08:30:00.123Z");
        assert_eq!(serde_json::from_value::<PushResponse>(v).unwrap(), resp);

        let pull = PullResponse {
            changes: vec![Change {
                collection: Collection::Households,
                id: RecordId::new(),
                grid_id: GridId::new(),
                fields: json!({"address": "幸福路1号"})
                    .as_object()
                    .cloned()
                    .unwrap(),
                versions: [("address".to_string(), Hlc::new(1, 0, "server"))].into(),
                deleted: false,
            }],
            cursor: "abc".into(),
            has_more: false,
            server_time: Timestamp(0),
            server_hlc: None,
            scope: Some(Scope {
                grid_ids: vec![GridId::new()],
            }),
        };
        let v = serde_json::to_value(&pull).unwrap();
        assert_eq!(serde_json::from_value::<PullResponse>(v).unwrap(), pull);
    }

    #[test]
    fn unknown_reject_codes_still_parse() {
        let r: Reason =
            serde_json::from_value(json!({"code": "brand_new", "message": "m"})).unwrap();
        assert_eq!(r.code, RejectCode::Other);
    }

    #[test]
    fn error_envelope_shape() {
        let e = ErrorBody {
            error: ErrorDetail {
                code: "not_found".into(),
                message: "no such hazard".into(),
                details: None,
            },
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"error": {"code": "not_found", "message": "no such hazard"}})
        );
    }
}
