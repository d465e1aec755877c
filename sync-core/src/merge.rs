//! Merge rules, as pure functions shared by the server (which decides) and the phone and test
//! hub (which must reach the same state).
//!
//! A record's state is a map field → (value, version); a version is an [`Hlc`] stamp whose
//! node is the writing device, so the stamp order already carries the device-id tie-break.
//!
//! Two operations:
//! - [`join`]: the state merge. Per field the higher version wins. It is commutative,
//!   associative and idempotent, so replicas that receive the same states in any order, with
//!   duplicates, end equal. Phones use it to fold pulled records into their mirror.
//! - [`apply_edit`]: how the server applies one mutation on top of its current state. An edit
//!   is *sequential* when the device had seen the current version (`base` equals it) or wrote
//!   it itself (its own writes reach the server in `seq` order, so it always saw them). A
//!   sequential edit always wins — causality beats wall time — and gets a version above the
//!   current one even when the phone's clock is behind. A concurrent edit that changes the
//!   value is a conflict: the higher stamp wins and the losing value is returned so that it
//!   can be kept for review. Every version the server assigns is strictly above the one it
//!   replaces, so the server's states only ever grow in [`join`]'s order.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::hlc::Hlc;
use crate::wire::Fields;

/// A field's value and the version that wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Versioned {
    pub value: Value,
    pub version: Hlc,
}

/// Every written field of one record with its version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordState(pub BTreeMap<String, Versioned>);

impl RecordState {
    /// Build from the `fields` and `versions` of a pulled change. Fields without a version
    /// are ignored (they cannot be ordered against anything).
    pub fn from_parts(fields: &Fields, versions: &BTreeMap<String, Hlc>) -> Self {
        RecordState(
            fields
                .iter()
                .filter_map(|(k, v)| {
                    versions.get(k).map(|ver| {
                        (
                            k.clone(),
                            Versioned {
                                value: v.clone(),
                                version: ver.clone(),
                            },
                        )
                    })
                })
                .collect(),
        )
    }

    pub fn fields(&self) -> Fields {
        self.0
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect()
    }

    pub fn versions(&self) -> BTreeMap<String, Hlc> {
        self.0
            .iter()
            .map(|(k, v)| (k.clone(), v.version.clone()))
            .collect()
    }

    pub fn get(&self, field: &str) -> Option<&Versioned> {
        self.0.get(field)
    }

    pub fn value(&self, field: &str) -> &Value {
        self.0.get(field).map_or(&Value::Null, |v| &v.value)
    }

    pub fn set(&mut self, field: impl Into<String>, value: Value, version: Hlc) {
        self.0.insert(field.into(), Versioned { value, version });
    }

    /// The highest version of any field.
    pub fn max_version(&self) -> Option<&Hlc> {
        self.0.values().map(|v| &v.version).max()
    }
}

/// Order two writes of one field: version first; equal versions (only possible through a bug
/// or a hand-edited database) fall back to the value's text so the choice stays deterministic.
fn wins(a: &Versioned, b: &Versioned) -> bool {
    match a.version.cmp(&b.version) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => {
            let (ours, theirs) = (a.value.to_string(), b.value.to_string());
            ours >= theirs
        }
    }
}

/// The state merge: per field, the write with the higher version.
pub fn join(a: &RecordState, b: &RecordState) -> RecordState {
    let mut out = a.clone();
    join_into(&mut out, b);
    out
}

/// [`join`] in place: fold `other` into `state`. Returns whether `state` changed.
pub fn join_into(state: &mut RecordState, other: &RecordState) -> bool {
    let mut changed = false;
    for (field, theirs) in &other.0 {
        match state.0.get(field) {
            Some(ours) if wins(ours, theirs) => {}
            _ => {
                state.0.insert(field.clone(), theirs.clone());
                changed = true;
            }
        }
    }
    changed
}

/// One mutation's fields as the server applies them.
#[derive(Clone, Copy, Debug)]
pub struct Edit<'a> {
    /// The validated, normalised fields to write.
    pub fields: &'a Fields,
    /// The version of each field the device had seen (`None`: it saw none).
    pub base: &'a BTreeMap<String, Option<Hlc>>,
    /// The mutation's stamp, already clamped by the server.
    pub hlc: &'a Hlc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Winner {
    Current,
    Incoming,
}

/// A concurrent edit of one field: both values are kept.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldConflict {
    pub field: String,
    /// What the server held when the edit arrived.
    pub current: Versioned,
    /// What the edit carried.
    pub incoming: Versioned,
    pub winner: Winner,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EditOutcome {
    pub state: RecordState,
    /// Fields whose value or version changed.
    pub changed: Vec<String>,
    pub conflicts: Vec<FieldConflict>,
}

/// Apply one edit on top of the current state (see the module notes for the rules).
pub fn apply_edit(current: &RecordState, edit: Edit<'_>) -> EditOutcome {
    let node = edit.hlc.node.as_str();
    let mut state = current.clone();
    let mut changed = Vec::new();
    let mut conflicts = Vec::new();
    for (field, value) in edit.fields {
        let Some(cur) = current.get(field) else {
            state.set(field.clone(), value.clone(), edit.hlc.clone());
            changed.push(field.clone());
            continue;
        };
        let base = edit.base.get(field).cloned().flatten();
        let sequential = base.as_ref() == Some(&cur.version) || cur.version.node == node;
        if &cur.value == value {
            // Nothing would be overwritten; a concurrent write of the same value is no conflict.
            continue;
        }
        if sequential {
            let version = if edit.hlc > &cur.version {
                edit.hlc.clone()
            } else {
                cur.version.successor(node)
            };
            state.set(field.clone(), value.clone(), version);
            changed.push(field.clone());
            continue;
        }
        let incoming = Versioned {
            value: value.clone(),
            version: edit.hlc.clone(),
        };
        let winner = if wins(&incoming, cur) {
            Winner::Incoming
        } else {
            Winner::Current
        };
        if winner == Winner::Incoming {
            state.set(field.clone(), value.clone(), edit.hlc.clone());
            changed.push(field.clone());
        }
        conflicts.push(FieldConflict {
            field: field.clone(),
            current: cur.clone(),
            incoming,
            winner,
        });
    }
    EditOutcome {
        state,
        changed,
        conflicts,
    }
}

/// A supervisor's decision on a conflict: write `value` on top of whatever the field holds
/// now, stamped by the server. The result is an ordinary sequential edit.
pub fn resolution_edit(
    current: &RecordState,
    field: &str,
    value: Value,
    server_stamp: &Hlc,
) -> RecordState {
    let mut state = current.clone();
    let version = match current.get(field) {
        Some(cur) if &cur.version >= server_stamp => cur.version.successor(&server_stamp.node),
        _ => server_stamp.clone(),
    };
    state.set(field, value, version);
    state
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn h(wall: u64, node: &str) -> Hlc {
        Hlc::new(wall, 0, node)
    }

    fn one(field: &str, value: Value) -> Fields {
        let mut f = Fields::new();
        f.insert(field.into(), value);
        f
    }

    fn state(field: &str, value: Value, version: Hlc) -> RecordState {
        let mut s = RecordState::default();
        s.set(field, value, version);
        s
    }

    #[test]
    fn edit_on_top_of_current_wins_even_with_an_old_clock() {
        let cur = state("title", json!("old"), h(2_000, "a"));
        let base = [("title".to_string(), Some(h(2_000, "a")))].into();
        let stamp = h(1_000, "b"); // phone clock far behind
        let out = apply_edit(
            &cur,
            Edit {
                fields: &one("title", json!("new")),
                base: &base,
                hlc: &stamp,
            },
        );
        assert!(out.conflicts.is_empty());
        assert_eq!(out.state.value("title"), &json!("new"));
        assert!(out.state.get("title").unwrap().version > h(2_000, "a"));
        assert_eq!(out.state.get("title").unwrap().version.node, "b");
    }

    #[test]
    fn concurrent_edits_conflict_and_the_higher_stamp_wins() {
        let cur = state("title", json!("A's"), h(2_000, "a"));
        let base = [("title".to_string(), Some(h(1_000, "x")))].into();
        let later = h(3_000, "b");
        let out = apply_edit(
            &cur,
            Edit {
                fields: &one("title", json!("B's")),
                base: &base,
                hlc: &later,
            },
        );
        assert_eq!(out.state.value("title"), &json!("B's"));
        assert_eq!(out.conflicts.len(), 1);
        assert_eq!(out.conflicts[0].winner, Winner::Incoming);
        assert_eq!(out.conflicts[0].current.value, json!("A's"));

        let earlier = h(1_500, "b");
        let out = apply_edit(
            &cur,
            Edit {
                fields: &one("title", json!("B's")),
                base: &base,
                hlc: &earlier,
            },
        );
        assert_eq!(out.state.value("title"), &json!("A's"));
        assert_eq!(out.conflicts[0].winner, Winner::Current);
        assert_eq!(out.conflicts[0].incoming.value, json!("B's"));
        assert!(out.changed.is_empty());
    }

    #[test]
    fn same_instant_ties_break_on_device_id() {
        let cur = state("notes", json!("from a"), h(5, "a"));
        let base = BTreeMap::new();
        let out = apply_edit(
            &cur,
            Edit {
                fields: &one("notes", json!("from b")),
                base: &base,
                hlc: &h(5, "b"),
            },
        );
        assert_eq!(out.conflicts[0].winner, Winner::Incoming);
    }

    #[test]
    fn a_device_never_conflicts_with_itself() {
        let cur = state("notes", json!("first"), h(9_000, "a"));
        let base = [("notes".to_string(), Some(h(10, "a")))].into();
        let out = apply_edit(
            &cur,
            Edit {
                fields: &one("notes", json!("second")),
                base: &base,
                hlc: &h(20, "a"),
            },
        );
        assert!(out.conflicts.is_empty());
        assert_eq!(out.state.value("notes"), &json!("second"));
    }

    #[test]
    fn new_fields_and_equal_values_never_conflict() {
        let cur = state("notes", json!("same"), h(9, "a"));
        let base = BTreeMap::new();
        let mut f = one("notes", json!("same"));
        f.insert("phone".into(), json!("123"));
        let out = apply_edit(
            &cur,
            Edit {
                fields: &f,
                base: &base,
                hlc: &h(3, "b"),
            },
        );
        assert!(out.conflicts.is_empty());
        assert_eq!(out.changed, vec!["phone".to_string()]);
    }

    #[test]
    fn resolution_is_above_everything_current() {
        let cur = state("notes", json!("x"), h(9_000, "a"));
        let out = resolution_edit(&cur, "notes", json!("y"), &h(5, "server"));
        assert!(out.get("notes").unwrap().version > h(9_000, "a"));
    }

    fn versioned() -> impl Strategy<Value = Versioned> {
        (
            0u64..20,
            0u32..3,
            prop::sample::select(vec!["a", "b", "c"]),
            prop::sample::select(vec!["x", "y", "z"]),
        )
            .prop_map(|(w, c, n, v)| Versioned {
                value: json!(v),
                version: Hlc::new(w, c, n),
            })
    }

    // Fields written by one device at one stamp always carry one value (stamps are unique per
    // node), so generate states from a shared stamp → value table to respect that.
    fn record() -> impl Strategy<Value = RecordState> {
        prop::collection::btree_map(prop::sample::select(vec!["f", "g", "h"]), versioned(), 0..4)
            .prop_map(|m| {
                RecordState(
                    m.into_iter()
                        .map(|(k, mut v)| {
                            v.value = json!(format!("{k}@{}", v.version));
                            (k.to_string(), v)
                        })
                        .collect(),
                )
            })
    }

    proptest! {
        #[test]
        fn join_is_commutative(a in record(), b in record()) {
            prop_assert_eq!(join(&a, &b), join(&b, &a));
        }

        #[test]
        fn join_is_associative(a in record(), b in record(), c in record()) {
            prop_assert_eq!(join(&join(&a, &b), &c), join(&a, &join(&b, &c)));
        }

        #[test]
        fn join_is_idempotent(a in record(), b in record()) {
            prop_assert_eq!(join(&a, &a), a.clone());
            let ab = join(&a, &b);
            prop_assert_eq!(join(&ab, &b), ab);
        }

        #[test]
        fn any_order_with_duplicates_gives_one_state(states in prop::collection::vec(record(), 1..8), seed in any::<u64>()) {
            let mut forward = RecordState::default();
            for s in &states { join_into(&mut forward, s); }
            // Shuffle deterministically and replay every state twice.
            let mut order: Vec<usize> = (0..states.len()).chain(0..states.len()).collect();
            let mut x = seed | 1;
            for i in (1..order.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                order.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let mut shuffled = RecordState::default();
            for i in order { join_into(&mut shuffled, &states[i]); }
            prop_assert_eq!(forward, shuffled);
        }

        #[test]
        fn server_versions_only_grow(cur in record(), value in "[a-z]{1,3}", wall in 0u64..30, node in prop::sample::select(vec!["a", "b", "c"]), seen in any::<bool>()) {
            let stamp = Hlc::new(wall, 0, node);
            let mut fields = Fields::new();
            let mut base = BTreeMap::new();
            for k in ["f", "g"] {
                fields.insert(k.into(), json!(value));
                base.insert(k.to_string(), if seen { cur.get(k).map(|v| v.version.clone()) } else { None });
            }
            let out = apply_edit(&cur, Edit { fields: &fields, base: &base, hlc: &stamp });
            // The new state dominates the old one: joining the old state in changes nothing.
            prop_assert_eq!(join(&out.state, &cur), out.state.clone());
            for k in &out.changed {
                if let Some(old) = cur.get(k) { prop_assert!(out.state.get(k).unwrap().version > old.version); }
            }
            if seen { prop_assert!(out.conflicts.is_empty()); }
        }
    }
}
