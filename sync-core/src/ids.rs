//! Identifier newtypes. Every id in the system is a UUID written lowercase and hyphenated;
//! wrapping each kind in its own type keeps a grid id from being passed where a record id is
//! expected. Records and mutations get v7 ids (time-ordered, created offline on the phone).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh time-ordered (v7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `Uuid`'s Display is the lowercase hyphenated form the contract requires.
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    )*};
}

uuid_id!(
    /// A synced record of any collection (household, patrol, hazard action, …).
    RecordId,
    /// A grid (网格): the leaf of the area tree and the unit of sync scope.
    GridId,
    /// A node of the area tree (district, street, community or grid).
    AreaId,
    /// A user account.
    UserId,
    /// A phone (or other client) install; also the node of its hybrid logical clock.
    DeviceId,
    /// One mutation in a device's outbox; stable across retries.
    MutationId,
    /// A conflict record kept for supervisor review.
    ConflictId,
);

impl From<GridId> for AreaId {
    fn from(g: GridId) -> Self {
        AreaId(g.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn serde_is_the_plain_lowercase_string() {
        let id: RecordId = "0193A2C4-0000-7000-8000-000000000001".parse().unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"0193a2c4-0000-7000-8000-000000000001\"");
        let back: RecordId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
    }

    #[test]
    fn new_ids_are_v7_and_ordered() {
        let a = RecordId::new();
        let b = RecordId::new();
        assert_eq!(a.0.get_version_num(), 7);
        assert!(a < b);
    }
}
