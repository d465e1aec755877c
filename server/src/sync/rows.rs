//! The typed rows of the synced collections and their mapping to sync-core's field maps.
//!
//! Each collection's table has a real column per field (supervisors query them) plus the same
//! sync metadata (`change_seq`, `versions`, times, origin). The mapping between a row and a
//! [`RecordState`] goes through serde: each row struct names its columns exactly as the
//! contract's wire fields, and the few columns whose storage form differs from the wire form
//! use the adapters below (times: BIGINT ms ↔ RFC 3339 text; tags: JSON text ↔ array).
//! So a field's wire name, column name and spec entry are always the same string.
//!
//! Invariants: a row built from a state carries every field of the collection (null when
//! unset); `versions` holds a stamp for exactly the fields that were ever written.

use std::collections::BTreeMap;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sync_core::merge::RecordState;
use sync_core::{Collection, Hlc};

use crate::db::schema::{
    attachments, hazard_actions, hazards, households, needs, patrols, track_points, visits,
};
use crate::error::{AppError, AppResult};

/// BIGINT milliseconds ↔ RFC 3339 text.
mod time_ms {
    use serde::{de, Deserialize, Deserializer, Serializer};
    use sync_core::Timestamp;

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&Timestamp(*ms).to_rfc3339())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text)
            .map(|t| t.millis())
            .ok_or_else(|| de::Error::custom("not an RFC 3339 time"))
    }
}

/// Nullable BIGINT milliseconds ↔ RFC 3339 text or null.
mod opt_time_ms {
    use serde::{de, Deserialize, Deserializer, Serializer};
    use sync_core::Timestamp;

    pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(ms) => s.serialize_str(&Timestamp(*ms).to_rfc3339()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => Timestamp::parse(&text)
                .map(|t| Some(t.millis()))
                .ok_or_else(|| de::Error::custom("not an RFC 3339 time")),
        }
    }
}

/// Nullable JSON text ↔ the JSON value itself (tags arrays).
mod opt_json_text {
    use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    pub fn serialize<S: Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match text {
            Some(t) => serde_json::from_str::<Value>(t)
                .map_err(serde::ser::Error::custom)?
                .serialize(s),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            v => serde_json::to_string(&v)
                .map(Some)
                .map_err(de::Error::custom),
        }
    }
}

/// Server-side columns every synced row has besides its fields.
pub const META_COLUMNS: &[&str] = &[
    "id",
    "grid_id",
    "change_seq",
    "versions",
    "created_at",
    "updated_at",
    "origin_device",
    "client_time",
    "server_order",
];

/// The server-side bookkeeping of one row.
#[derive(Clone, Debug, PartialEq)]
pub struct RowMeta {
    pub id: String,
    pub grid_id: String,
    pub change_seq: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub origin_device: Option<String>,
    pub client_time: Option<i64>,
}

macro_rules! record_row {
    ($(#[$m:meta])* $name:ident => $table:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Serialize, Deserialize)]
        #[diesel(table_name = $table, treat_none_as_null = true)]
        pub struct $name {
            pub id: String,
            pub grid_id: String,
            $($(#[$fm])* pub $field: $ty,)*
            pub change_seq: i64,
            pub versions: String,
            pub created_at: i64,
            pub updated_at: i64,
            pub origin_device: Option<String>,
            pub client_time: Option<i64>,
        }
    };
}

record_row!(HouseholdRow => households {
    address: String, building: Option<String>, unit: Option<String>, room: Option<String>,
    head_name: Option<String>, phone: Option<String>, members: Option<i64>,
    #[serde(with = "opt_json_text")] tags: Option<String>,
    care_level: Option<String>, notes: Option<String>, deleted: bool,
});

record_row!(PatrolRow => patrols {
    worker_id: Option<String>,
    #[serde(with = "opt_time_ms")] started_at: Option<i64>,
    #[serde(with = "opt_time_ms")] ended_at: Option<i64>,
    status: Option<String>, summary: Option<String>,
});

record_row!(TrackPointRow => track_points {
    patrol_id: String,
    #[serde(with = "time_ms")] recorded_at: i64,
    lat: f64, lon: f64, accuracy_m: Option<f64>,
});

record_row!(VisitRow => visits {
    household_id: Option<String>, worker_id: Option<String>,
    #[serde(with = "opt_time_ms")] visited_at: Option<i64>,
    mode: Option<String>, outcome: Option<String>, summary: Option<String>, follow_up_due: Option<String>,
    lat: Option<f64>, lon: Option<f64>,
});

record_row!(NeedRow => needs {
    household_id: Option<String>, visit_id: Option<String>, category: Option<String>, description: Option<String>,
    urgency: Option<String>, status: Option<String>, due_on: Option<String>, resolution: Option<String>,
});

record_row!(HazardRow => hazards {
    reporter_id: Option<String>, source: Option<String>, category: Option<String>, severity: Option<String>,
    title: String, description: Option<String>, lat: Option<f64>, lon: Option<f64>, address: Option<String>,
    status: String, assignee_department: Option<String>,
    #[serde(with = "opt_time_ms")] due_at: Option<i64>,
});

record_row!(
    /// `server_order` is the grid counter at which the server received the action: the
    /// order the workflow folds actions in.
    HazardActionRow => hazard_actions {
    hazard_id: String, actor_id: String, action: String, note: Option<String>, department: Option<String>,
    #[serde(with = "opt_time_ms")] due_at: Option<i64>,
    #[serde(with = "opt_time_ms")] at: Option<i64>,
    effect: String, reason: Option<String>, server_order: i64,
});

record_row!(AttachmentRow => attachments {
    owner_collection: String, owner_id: String, sha256: String, media_type: Option<String>, bytes: Option<i64>,
    #[serde(with = "opt_time_ms")] taken_at: Option<i64>,
    lat: Option<f64>, lon: Option<f64>,
});

/// What every row type offers the generic sync code.
pub trait RecordRow: Serialize + serde::de::DeserializeOwned {
    fn meta(&self) -> RowMeta;
    fn versions_text(&self) -> &str;
}

macro_rules! impl_record_row {
    ($($name:ident),*) => {$(
        impl RecordRow for $name {
            fn meta(&self) -> RowMeta {
                RowMeta {
                    id: self.id.clone(),
                    grid_id: self.grid_id.clone(),
                    change_seq: self.change_seq,
                    created_at: self.created_at,
                    updated_at: self.updated_at,
                    origin_device: self.origin_device.clone(),
                    client_time: self.client_time,
                }
            }
            fn versions_text(&self) -> &str {
                &self.versions
            }
        }
    )*};
}
impl_record_row!(
    HouseholdRow,
    PatrolRow,
    TrackPointRow,
    VisitRow,
    NeedRow,
    HazardRow,
    HazardActionRow,
    AttachmentRow
);

/// Run `$body` with `$table` bound to the collection's schema module and `$Row` to its row
/// type: the one place that maps a [`Collection`] to its table.
#[macro_export]
macro_rules! for_collection {
    ($collection:expr, |$table:ident, $Row:ident| $body:block) => {{
        use sync_core::Collection as C;
        #[allow(unused_imports)]
        use $crate::sync::rows::*;
        match $collection {
            C::Households => {
                #[allow(unused_imports)]
                use $crate::db::schema::households as $table;
                type $Row = HouseholdRow;
                $body
            }
            C::Patrols => {
                #[allow(unused_imports)]
                use $crate::db::schema::patrols as $table;
                type $Row = PatrolRow;
                $body
            }
            C::TrackPoints => {
                #[allow(unused_imports)]
                use $crate::db::schema::track_points as $table;
                type $Row = TrackPointRow;
                $body
            }
            C::Visits => {
                #[allow(unused_imports)]
                use $crate::db::schema::visits as $table;
                type $Row = VisitRow;
                $body
            }
            C::Needs => {
                #[allow(unused_imports)]
                use $crate::db::schema::needs as $table;
                type $Row = NeedRow;
                $body
            }
            C::Hazards => {
                #[allow(unused_imports)]
                use $crate::db::schema::hazards as $table;
                type $Row = HazardRow;
                $body
            }
            C::HazardActions => {
                #[allow(unused_imports)]
                use $crate::db::schema::hazard_actions as $table;
                type $Row = HazardActionRow;
                $body
            }
            C::Attachments => {
                #[allow(unused_imports)]
                use $crate::db::schema::attachments as $table;
                type $Row = AttachmentRow;
                $body
            }
        }
    }};
}

/// A row's fields (wire names, all of the collection's) and versions as a record state.
pub fn row_to_state<R: RecordRow>(collection: Collection, row: &R) -> AppResult<RecordState> {
    let Value::Object(all) = serde_json::to_value(row).map_err(AppError::internal)? else {
        return Err(AppError::internal(anyhow::anyhow!(
            "a row did not serialise to an object"
        )));
    };
    let fields: Map<String, Value> = collection
        .fields()
        .iter()
        .filter_map(|s| all.get(s.name).map(|v| (s.name.to_owned(), v.clone())))
        .collect();
    let versions: BTreeMap<String, Hlc> =
        serde_json::from_str(row.versions_text()).map_err(AppError::internal)?;
    Ok(RecordState::from_parts(&fields, &versions))
}

/// The row for a record state with the given bookkeeping.
pub fn state_to_row<R: RecordRow>(
    collection: Collection,
    state: &RecordState,
    meta: &RowMeta,
) -> AppResult<R> {
    let mut obj = Map::new();
    for spec in collection.fields() {
        obj.insert(spec.name.to_owned(), state.value(spec.name).clone());
    }
    if collection == Collection::Households && state.value("deleted").is_null() {
        obj.insert("deleted".into(), Value::Bool(false));
    }
    let versions = serde_json::to_string(&state.versions()).map_err(AppError::internal)?;
    obj.insert("id".into(), Value::String(meta.id.clone()));
    obj.insert("grid_id".into(), Value::String(meta.grid_id.clone()));
    obj.insert("change_seq".into(), meta.change_seq.into());
    obj.insert("server_order".into(), meta.change_seq.into());
    obj.insert("versions".into(), Value::String(versions));
    obj.insert("created_at".into(), meta.created_at.into());
    obj.insert("updated_at".into(), meta.updated_at.into());
    obj.insert(
        "origin_device".into(),
        meta.origin_device
            .clone()
            .map_or(Value::Null, Value::String),
    );
    obj.insert(
        "client_time".into(),
        meta.client_time.map_or(Value::Null, Value::from),
    );
    serde_json::from_value(Value::Object(obj)).map_err(|e| {
        AppError::internal(anyhow::anyhow!(
            "record state does not fit the {collection} table: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn meta() -> RowMeta {
        RowMeta {
            id: "0193a2c4-0000-7000-8000-000000000001".into(),
            grid_id: "0193a2c4-0000-7000-8000-000000000002".into(),
            change_seq: 7,
            created_at: 1,
            updated_at: 2,
            origin_device: None,
            client_time: Some(3),
        }
    }

    #[test]
    fn hazard_state_round_trips_through_its_row() {
        let mut state = RecordState::default();
        let v = Hlc::new(5, 0, "server");
        state.set(
            "title",
            json!("燃气泄漏 '; DROP TABLE hazards;--"),
            v.clone(),
        );
        state.set("category", json!("gas"), v.clone());
        state.set("severity", json!("critical"), v.clone());
        state.set("status", json!("dispatched"), v.clone());
        state.set("due_at", json!("2026-11-23T08:30:00.000Z"), v.clone());
        state.set("lat", json!(31.5), v);
        let row: HazardRow = state_to_row(Collection::Hazards, &state, &meta()).unwrap();
        assert_eq!(row.due_at, Some(1_795_422_600_000));
        assert_eq!(row.client_time, Some(3));
        assert_eq!(row_to_state(Collection::Hazards, &row).unwrap(), state);
    }

    #[test]
    fn tags_are_arrays_on_the_wire_and_json_text_in_the_column() {
        let mut state = RecordState::default();
        let v = Hlc::new(5, 0, "d");
        state.set("address", json!("幸福路1号"), v.clone());
        state.set("tags", json!(["elderly_alone", "veteran"]), v);
        let row: HouseholdRow = state_to_row(Collection::Households, &state, &meta()).unwrap();
        assert_eq!(row.tags.as_deref(), Some(r#"["elderly_alone","veteran"]"#));
        assert!(!row.deleted);
        assert_eq!(row_to_state(Collection::Households, &row).unwrap(), state);
    }

    fn sample(ty: sync_core::collection::FieldType) -> Value {
        use sync_core::collection::FieldType as T;
        match ty {
            T::Text { .. } => json!("文本 <b>&</b> 🚒"),
            T::Int { min, .. } => json!(min + 3),
            T::Float { min, max } => json!((min + max) / 2.0 + 0.25),
            T::Bool => json!(true),
            T::Time => json!("2026-11-21T08:30:00.123Z"),
            T::Date => json!("2026-11-30"),
            T::Ref => json!("0193a2c4-0000-7000-8000-00000000000a"),
            T::Enum(values) => json!(values[values.len() - 1]),
            T::Tags(values) => json!([values[0], values[values.len() - 1]]),
            T::Sha256 => json!("ab".repeat(32)),
        }
    }

    #[test]
    fn every_field_of_every_collection_round_trips_through_its_row() {
        for c in Collection::ALL {
            let mut state = RecordState::default();
            for (i, spec) in c.fields().iter().enumerate() {
                state.set(spec.name, sample(spec.ty), Hlc::new(100 + i as u64, 0, "d"));
            }
            let back = for_collection!(c, |_t, Row| {
                let row: Row = state_to_row(c, &state, &meta()).unwrap();
                row_to_state(c, &row).unwrap()
            });
            assert_eq!(back, state, "{c}");
        }
    }
}
