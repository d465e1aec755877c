//! The canonical export: the one JSON shape in which a phone and the server show the records
//! they hold, so that "after a full sync a phone's export equals the server's for its grid" is
//! a comparison of two JSON values (object key order is not significant).
//!
//! Shape (contract, "Canonical export"): one key per collection — all eight always present —
//! each an array of records sorted by `id`; a record is `id`, `grid_id`, then every field of
//! [`Collection::fields`] in table order, `null` when unset. Two rules fill in what a store may
//! not hold explicitly:
//! - a household whose `deleted` was never written exports `deleted: false`;
//! - nothing else is defaulted: an unset field is `null`.
//!
//! No sync metadata (versions, clocks, outbox state) appears. Fields a record holds that the
//! collection table does not know are left out. Both the replica and the server build their
//! export with [`canonical_export`], so the two cannot drift apart.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::collection::Collection;
use crate::ids::{GridId, RecordId};
use crate::wire::Fields;

/// One exported record: `id`, `grid_id` and every field of the collection.
pub fn export_record(
    collection: Collection,
    id: RecordId,
    grid_id: GridId,
    fields: &Fields,
) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), Value::String(id.to_string()));
    out.insert("grid_id".into(), Value::String(grid_id.to_string()));
    for spec in collection.fields() {
        let value = match fields.get(spec.name) {
            Some(v) if !v.is_null() => v.clone(),
            _ if spec.name == "deleted" => Value::Bool(false),
            _ => Value::Null,
        };
        out.insert(spec.name.into(), value);
    }
    Value::Object(out)
}

/// Accumulates records and writes the canonical export. Adding the same record twice keeps the
/// last one (a store iterates each record once; this keeps the output well-formed regardless).
#[derive(Debug, Default)]
pub struct ExportBuilder {
    by_collection: BTreeMap<Collection, BTreeMap<RecordId, Value>>,
}

impl ExportBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, collection: Collection, id: RecordId, grid_id: GridId, fields: &Fields) {
        self.by_collection
            .entry(collection)
            .or_default()
            .insert(id, export_record(collection, id, grid_id, fields));
    }

    /// The export object. `RecordId`'s order is the order of its lowercase text, so the arrays
    /// are sorted by the `id` string as the contract asks.
    pub fn finish(mut self) -> Value {
        let mut out = Map::new();
        for collection in Collection::ALL {
            let records = self
                .by_collection
                .remove(&collection)
                .map(|m| m.into_values().collect())
                .unwrap_or_default();
            out.insert(collection.as_str().into(), Value::Array(records));
        }
        Value::Object(out)
    }
}

/// The canonical export of the given records.
pub fn canonical_export<'a, I>(records: I) -> Value
where
    I: IntoIterator<Item = (Collection, RecordId, GridId, &'a Fields)>,
{
    let mut builder = ExportBuilder::new();
    for (collection, id, grid_id, fields) in records {
        builder.add(collection, id, grid_id, fields);
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn every_collection_and_every_field_is_present() {
        let grid = GridId::new();
        let a: RecordId = "0193a2c4-0000-7000-8000-00000000000b".parse().unwrap();
        let b: RecordId = "0193a2c4-0000-7000-8000-00000000000a".parse().unwrap();
        let ha = fields(json!({"address": "幸福路1号", "tags": ["veteran"], "unknown": 1}));
        let hb = fields(json!({"address": "幸福路2号", "deleted": true}));
        let out = canonical_export([
            (Collection::Households, a, grid, &ha),
            (Collection::Households, b, grid, &hb),
        ]);
        let obj = out.as_object().unwrap();
        assert_eq!(obj.len(), 8);
        for c in Collection::ALL {
            assert!(obj[c.as_str()].is_array(), "{c}");
        }
        let households = obj["households"].as_array().unwrap();
        assert_eq!(households[0]["id"], json!(b.to_string()));
        assert_eq!(households[1]["id"], json!(a.to_string()));
        assert_eq!(households[1]["deleted"], json!(false));
        assert_eq!(households[0]["deleted"], json!(true));
        assert_eq!(households[1]["phone"], Value::Null);
        assert!(households[1].get("unknown").is_none());
        let keys: Vec<&String> = households[1].as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 2 + Collection::Households.fields().len());
    }

    #[test]
    fn hazards_export_derived_fields_and_nothing_defaults_but_deleted() {
        let h = fields(json!({"title": "t", "status": "reported"}));
        let out = canonical_export([(Collection::Hazards, RecordId::new(), GridId::new(), &h)]);
        let rec = &out["hazards"][0];
        assert_eq!(rec["status"], json!("reported"));
        assert_eq!(rec["assignee_department"], Value::Null);
        assert_eq!(rec["due_at"], Value::Null);
        assert!(rec.get("deleted").is_none());
    }
}
