//! The synced collections: their wire names (also their table names and the `collection`
//! value in `record_index`), their fields, and which are append-only.
//!
//! Invariant: `Collection::fields()` lists exactly the contract's "Record fields" for the
//! collection, plus `deleted` for households and the server-owned fields (hazard `status`,
//! `assignee_department`, `due_at`; action `effect`, `reason`). Each is a column of the
//! collection's table (checked by the migration tests on both backends).

/// A synced collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collection {
    /// `households`
    Households,
    /// `patrols`
    Patrols,
    /// `track_points` (append-only)
    TrackPoints,
    /// `visits`
    Visits,
    /// `needs`
    Needs,
    /// `hazards`
    Hazards,
    /// `hazard_actions` (append-only)
    HazardActions,
    /// `attachments` (append-only)
    Attachments,
}

impl Collection {
    /// Every collection, in the canonical export's order.
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

    /// The wire name, which is also the table name.
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

    /// Parse a wire name.
    pub fn parse(name: &str) -> Option<Collection> {
        Collection::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Append-only collections take one `upsert` per record and never change after.
    pub fn is_append_only(self) -> bool {
        matches!(
            self,
            Collection::TrackPoints | Collection::HazardActions | Collection::Attachments
        )
    }

    /// The record's fields besides `id` and `grid_id`, in wire names.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Collection::Households => &[
                "address",
                "building",
                "unit",
                "room",
                "head_name",
                "phone",
                "members",
                "tags",
                "care_level",
                "notes",
                "deleted",
            ],
            Collection::Patrols => &["worker_id", "started_at", "ended_at", "status", "summary"],
            Collection::TrackPoints => &["patrol_id", "recorded_at", "lat", "lon", "accuracy_m"],
            Collection::Visits => &[
                "household_id",
                "worker_id",
                "visited_at",
                "mode",
                "outcome",
                "summary",
                "follow_up_due",
                "lat",
                "lon",
            ],
            Collection::Needs => &[
                "household_id",
                "visit_id",
                "category",
                "description",
                "urgency",
                "status",
                "due_on",
                "resolution",
            ],
            Collection::Hazards => &[
                "reporter_id",
                "source",
                "category",
                "severity",
                "title",
                "description",
                "lat",
                "lon",
                "address",
                "status",
                "assignee_department",
                "due_at",
            ],
            Collection::HazardActions => &[
                "hazard_id",
                "actor_id",
                "action",
                "note",
                "department",
                "due_at",
                "at",
                "effect",
                "reason",
            ],
            Collection::Attachments => &[
                "owner_collection",
                "owner_id",
                "sha256",
                "media_type",
                "bytes",
                "taken_at",
                "lat",
                "lon",
            ],
        }
    }

    /// Fields only the server sets; a phone's mutation may not carry them.
    pub fn server_owned_fields(self) -> &'static [&'static str] {
        match self {
            Collection::Hazards => &["status", "assignee_department", "due_at"],
            Collection::HazardActions => &["effect", "reason"],
            _ => &[],
        }
    }
}

impl std::fmt::Display for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Collection::ALL {
            assert_eq!(Collection::parse(c.as_str()), Some(c));
            for owned in c.server_owned_fields() {
                assert!(c.fields().contains(owned));
            }
        }
        assert_eq!(Collection::parse("users"), None);
    }
}
