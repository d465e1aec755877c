//! The synced collections and the specification of every field they carry.
//!
//! This table is the single source of truth for what a record may hold: validation
//! ([`crate::validate`]), the canonical export, the replica and the server's columns all read
//! it. Field names are the contract's wire names.
//!
//! Invariants:
//! - `grid_id` and `id` are not fields: they travel beside the fields on every mutation/change.
//! - A [`Owner::Server`] field is never accepted from a client; an [`Owner::Author`] field may
//!   only name the authenticated user; an `immutable` field is set once, at creation.
//! - Append-only collections are written once per record and never conflict.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The collections phones keep and sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collection {
    Households,
    Patrols,
    TrackPoints,
    Visits,
    Needs,
    Hazards,
    HazardActions,
    Attachments,
}

/// How a collection's records are written and merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeKind {
    /// Per-field last-writer-wins with conflict detection from `base` versions.
    LastWriterWins,
    /// One write per record, never edited, never in conflict.
    AppendOnly,
}

/// Who may write a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Any writer in scope.
    Client,
    /// The authenticated user's own id; the server fills it in when absent.
    Author,
    /// Derived or decided by the server; never accepted from a client.
    Server,
}

/// The type and bounds of a field's value. Every field may also be `null` unless required.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldType {
    /// Unicode text, at most `max` characters (not bytes: Chinese text counts per character).
    Text {
        max: usize,
    },
    /// An integer within the bounds.
    Int {
        min: i64,
        max: i64,
    },
    /// A finite number within the bounds.
    Float {
        min: f64,
        max: f64,
    },
    Bool,
    /// An RFC 3339 instant, stored canonically.
    Time,
    /// A `YYYY-MM-DD` date.
    Date,
    /// A reference to another record (a UUID).
    Ref,
    /// One of the listed values.
    Enum(&'static [&'static str]),
    /// A set of the listed values, written as an array without duplicates.
    Tags(&'static [&'static str]),
    /// A lowercase hex SHA-256 digest.
    Sha256,
}

/// One field of a collection.
#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    pub name: &'static str,
    pub ty: FieldType,
    /// Must be present and non-null when the record is created.
    pub required: bool,
    pub owner: Owner,
    /// Settable at creation only (references, authorship).
    pub immutable: bool,
}

const fn f(name: &'static str, ty: FieldType) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required: false,
        owner: Owner::Client,
        immutable: false,
    }
}
const fn req(name: &'static str, ty: FieldType) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required: true,
        owner: Owner::Client,
        immutable: false,
    }
}
const fn reference(name: &'static str, required: bool) -> FieldSpec {
    FieldSpec {
        name,
        ty: FieldType::Ref,
        required,
        owner: Owner::Client,
        immutable: true,
    }
}
const fn author(name: &'static str) -> FieldSpec {
    FieldSpec {
        name,
        ty: FieldType::Ref,
        required: false,
        owner: Owner::Author,
        immutable: true,
    }
}
const fn server(name: &'static str, ty: FieldType) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required: false,
        owner: Owner::Server,
        immutable: false,
    }
}

pub const SHORT_TEXT: usize = 200;
pub const LONG_TEXT: usize = 4000;

const TEXT: FieldType = FieldType::Text { max: SHORT_TEXT };
const LONG: FieldType = FieldType::Text { max: LONG_TEXT };
const LAT: FieldType = FieldType::Float {
    min: -90.0,
    max: 90.0,
};
const LON: FieldType = FieldType::Float {
    min: -180.0,
    max: 180.0,
};

pub const HOUSEHOLD_TAGS: &[&str] = &[
    "elderly_alone",
    "veteran",
    "disabled",
    "low_income",
    "child",
    "key_care",
    "other",
];
pub const CARE_LEVELS: &[&str] = &["normal", "attention", "key"];
pub const PATROL_STATUSES: &[&str] = &["active", "ended"];
pub const VISIT_MODES: &[&str] = &["in_person", "phone", "video", "proxy"];
pub const VISIT_OUTCOMES: &[&str] = &["met", "not_home", "refused", "moved"];
pub const NEED_CATEGORIES: &[&str] = &[
    "medical",
    "daily_living",
    "housing",
    "elderly_care",
    "mental_health",
    "legal",
    "employment",
    "education",
    "policy",
    "other",
];
pub const NEED_URGENCIES: &[&str] = &["low", "normal", "high"];
pub const NEED_STATUSES: &[&str] = &[
    "open",
    "accepted",
    "in_progress",
    "resolved",
    "unable",
    "withdrawn",
];
pub const HAZARD_SOURCES: &[&str] = &["patrol", "visit", "resident", "hotline"];
pub const HAZARD_CATEGORIES: &[&str] = &[
    "fire_safety",
    "ebike_charging",
    "gas",
    "electrical",
    "structural",
    "sanitation",
    "traffic_parking",
    "illegal_construction",
    "dispute",
    "public_order",
    "other",
];
pub const HAZARD_SEVERITIES: &[&str] = &["low", "medium", "high", "critical"];
pub const HAZARD_STATUSES: &[&str] = &[
    "reported",
    "accepted",
    "rejected",
    "dispatched",
    "in_progress",
    "disposed",
    "closed",
    "cancelled",
];
pub const HAZARD_ACTIONS: &[&str] = &[
    "submit",
    "accept",
    "reject",
    "self_handle",
    "dispatch",
    "sign_for",
    "return",
    "report_done",
    "verify_pass",
    "verify_fail",
    "reopen",
    "cancel",
    "comment",
];
pub const ACTION_EFFECTS: &[&str] = &["applied", "no_effect"];
pub const COLLECTION_NAMES: &[&str] = &[
    "households",
    "patrols",
    "track_points",
    "visits",
    "needs",
    "hazards",
    "hazard_actions",
    "attachments",
];

const HOUSEHOLDS: &[FieldSpec] = &[
    req("address", TEXT),
    f("building", FieldType::Text { max: 50 }),
    f("unit", FieldType::Text { max: 50 }),
    f("room", FieldType::Text { max: 50 }),
    f("head_name", FieldType::Text { max: 100 }),
    f("phone", FieldType::Text { max: 40 }),
    f("members", FieldType::Int { min: 0, max: 1000 }),
    f("tags", FieldType::Tags(HOUSEHOLD_TAGS)),
    f("care_level", FieldType::Enum(CARE_LEVELS)),
    f("notes", LONG),
    f("deleted", FieldType::Bool),
];

const PATROLS: &[FieldSpec] = &[
    author("worker_id"),
    req("started_at", FieldType::Time),
    f("ended_at", FieldType::Time),
    req("status", FieldType::Enum(PATROL_STATUSES)),
    f("summary", LONG),
];

const TRACK_POINTS: &[FieldSpec] = &[
    reference("patrol_id", true),
    req("recorded_at", FieldType::Time),
    req("lat", LAT),
    req("lon", LON),
    f(
        "accuracy_m",
        FieldType::Float {
            min: 0.0,
            max: 100_000.0,
        },
    ),
];

const VISITS: &[FieldSpec] = &[
    reference("household_id", true),
    author("worker_id"),
    req("visited_at", FieldType::Time),
    req("mode", FieldType::Enum(VISIT_MODES)),
    req("outcome", FieldType::Enum(VISIT_OUTCOMES)),
    f("summary", LONG),
    f("follow_up_due", FieldType::Date),
    f("lat", LAT),
    f("lon", LON),
];

const NEEDS: &[FieldSpec] = &[
    reference("household_id", true),
    reference("visit_id", false),
    req("category", FieldType::Enum(NEED_CATEGORIES)),
    req("description", LONG),
    f("urgency", FieldType::Enum(NEED_URGENCIES)),
    req("status", FieldType::Enum(NEED_STATUSES)),
    f("due_on", FieldType::Date),
    f("resolution", LONG),
];

const HAZARDS: &[FieldSpec] = &[
    author("reporter_id"),
    f("source", FieldType::Enum(HAZARD_SOURCES)),
    req("category", FieldType::Enum(HAZARD_CATEGORIES)),
    req("severity", FieldType::Enum(HAZARD_SEVERITIES)),
    req("title", TEXT),
    f("description", LONG),
    f("lat", LAT),
    f("lon", LON),
    f("address", TEXT),
    server("status", FieldType::Enum(HAZARD_STATUSES)),
    server("assignee_department", FieldType::Text { max: 100 }),
    server("due_at", FieldType::Time),
];

const HAZARD_ACTION_FIELDS: &[FieldSpec] = &[
    reference("hazard_id", true),
    author("actor_id"),
    req("action", FieldType::Enum(HAZARD_ACTIONS)),
    f("note", LONG),
    f("department", FieldType::Text { max: 100 }),
    f("due_at", FieldType::Time),
    req("at", FieldType::Time),
    server("effect", FieldType::Enum(ACTION_EFFECTS)),
    server("reason", FieldType::Text { max: 500 }),
];

const ATTACHMENTS: &[FieldSpec] = &[
    req("owner_collection", FieldType::Enum(COLLECTION_NAMES)),
    reference("owner_id", true),
    req("sha256", FieldType::Sha256),
    req("media_type", FieldType::Text { max: 100 }),
    req(
        "bytes",
        FieldType::Int {
            min: 0,
            max: 1 << 40,
        },
    ),
    f("taken_at", FieldType::Time),
    f("lat", LAT),
    f("lon", LON),
];

impl Collection {
    pub const ALL: [Collection; 8] = [
        Collection::Households,
        Collection::Patrols,
        Collection::TrackPoints,
        Collection::Visits,
        Collection::Needs,
        Collection::Hazards,
        Collection::HazardActions,
        Collection::Attachments,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Collection::Households => "households",
            Collection::Patrols => "patrols",
            Collection::TrackPoints => "track_points",
            Collection::Visits => "visits",
            Collection::Needs => "needs",
            Collection::Hazards => "hazards",
            Collection::HazardActions => "hazard_actions",
            Collection::Attachments => "attachments",
        }
    }

    /// Every field of the collection, in export order.
    pub fn fields(self) -> &'static [FieldSpec] {
        match self {
            Collection::Households => HOUSEHOLDS,
            Collection::Patrols => PATROLS,
            Collection::TrackPoints => TRACK_POINTS,
            Collection::Visits => VISITS,
            Collection::Needs => NEEDS,
            Collection::Hazards => HAZARDS,
            Collection::HazardActions => HAZARD_ACTION_FIELDS,
            Collection::Attachments => ATTACHMENTS,
        }
    }

    pub fn field(self, name: &str) -> Option<&'static FieldSpec> {
        self.fields().iter().find(|s| s.name == name)
    }

    pub fn merge_kind(self) -> MergeKind {
        match self {
            Collection::TrackPoints | Collection::HazardActions | Collection::Attachments => {
                MergeKind::AppendOnly
            }
            _ => MergeKind::LastWriterWins,
        }
    }

    pub fn is_append_only(self) -> bool {
        self.merge_kind() == MergeKind::AppendOnly
    }

    /// Whether records can be deleted (`op: delete` sets the `deleted` field).
    pub fn allows_delete(self) -> bool {
        self.field("deleted").is_some()
    }
}

impl fmt::Display for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Collection {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Collection::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown collection {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for c in Collection::ALL {
            assert_eq!(c.as_str().parse::<Collection>(), Ok(c));
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(serde_json::Value::String(c.as_str().into()))
            );
        }
        assert_eq!(COLLECTION_NAMES.len(), Collection::ALL.len());
    }

    #[test]
    fn field_names_are_unique_and_never_id_or_grid() {
        for c in Collection::ALL {
            let mut names: Vec<_> = c.fields().iter().map(|s| s.name).collect();
            assert!(!names.contains(&"id") && !names.contains(&"grid_id"));
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), c.fields().len(), "{c}");
        }
    }

    #[test]
    fn only_households_delete() {
        let deletable: Vec<_> = Collection::ALL
            .into_iter()
            .filter(|c| c.allows_delete())
            .collect();
        assert_eq!(deletable, vec![Collection::Households]);
    }
}
