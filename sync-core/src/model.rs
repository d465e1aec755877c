//! The typed model: enums for every enum field, a struct per collection's record, and the
//! typed inputs the app uses to create and edit records.
//!
//! [`crate::collection`] stays the single source of truth for the fields: a record struct is
//! read from a record's [`Fields`] (plus `id` and `grid_id`) by serde, and every input turns
//! into [`Fields`] that then go through [`crate::validate::validate_write`] before anything is
//! stored — the typed layer never bypasses validation. The tests check that every enum here
//! lists exactly the values of the collection table, and that every struct reads a record with
//! all fields set and one with only the required fields set.
//!
//! Inputs: `New*` carries the fields of a new record (`None` = leave unset); `*Patch` carries
//! an edit where `Some(v)` means "set this field to v" and `None` means "leave it alone". To
//! clear a field, use the replica's generic `edit_fields` with an explicit `null`.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::collection::Collection;
use crate::ids::{GridId, RecordId, UserId};
use crate::time::{Date, Timestamp};
use crate::wire::Fields;
pub use crate::workflow::{Effect, HazardAction, HazardStatus, Role};

macro_rules! field_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $s:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),* }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($s => Ok($name::$variant),)* _ => Err(format!("unknown {}: {s:?}", stringify!($name))) }
            }
        }
        impl From<$name> for Value {
            fn from(v: $name) -> Value { Value::String(v.as_str().into()) }
        }
    };
}

field_enum!(
    /// A household's care level (`care_level`).
    CareLevel { Normal => "normal", Attention => "attention", Key => "key" }
);
field_enum!(
    /// A household tag (`tags`).
    HouseholdTag {
        ElderlyAlone => "elderly_alone", Veteran => "veteran", Disabled => "disabled",
        LowIncome => "low_income", Child => "child", KeyCare => "key_care", Other => "other",
    }
);
field_enum!(
    /// A patrol's status.
    PatrolStatus { Active => "active", Ended => "ended" }
);
field_enum!(
    /// How a visit was made.
    VisitMode { InPerson => "in_person", Phone => "phone", Video => "video", Proxy => "proxy" }
);
field_enum!(
    /// What a visit found.
    VisitOutcome { Met => "met", NotHome => "not_home", Refused => "refused", Moved => "moved" }
);
field_enum!(
    /// A need's category (需求清单).
    NeedCategory {
        Medical => "medical", DailyLiving => "daily_living", Housing => "housing",
        ElderlyCare => "elderly_care", MentalHealth => "mental_health", Legal => "legal",
        Employment => "employment", Education => "education", Policy => "policy", Other => "other",
    }
);
field_enum!(
    /// A need's urgency.
    NeedUrgency { Low => "low", Normal => "normal", High => "high" }
);
field_enum!(
    /// A need's status.
    NeedStatus {
        Open => "open", Accepted => "accepted", InProgress => "in_progress",
        Resolved => "resolved", Unable => "unable", Withdrawn => "withdrawn",
    }
);
field_enum!(
    /// Where a hazard report came from.
    HazardSource { Patrol => "patrol", Visit => "visit", Resident => "resident", Hotline => "hotline" }
);
field_enum!(
    /// A hazard's category.
    HazardCategory {
        FireSafety => "fire_safety", EbikeCharging => "ebike_charging", Gas => "gas",
        Electrical => "electrical", Structural => "structural", Sanitation => "sanitation",
        TrafficParking => "traffic_parking", IllegalConstruction => "illegal_construction",
        Dispute => "dispute", PublicOrder => "public_order", Other => "other",
    }
);
field_enum!(
    /// A hazard's severity.
    Severity { Low => "low", Medium => "medium", High => "high", Critical => "critical" }
);

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A typed record of one collection.
pub trait Record: DeserializeOwned + Serialize {
    const COLLECTION: Collection;
    fn id(&self) -> RecordId;
    fn grid_id(&self) -> GridId;
}

/// Read a typed record from its fields (`id` and `grid_id` travel beside them).
pub fn from_fields<T: Record>(
    id: RecordId,
    grid_id: GridId,
    fields: &Fields,
) -> Result<T, serde_json::Error> {
    let mut obj = Map::with_capacity(fields.len() + 2);
    for (k, v) in fields {
        obj.insert(k.clone(), v.clone());
    }
    obj.insert("id".into(), Value::String(id.to_string()));
    obj.insert("grid_id".into(), Value::String(grid_id.to_string()));
    serde_json::from_value(Value::Object(obj))
}

macro_rules! record {
    ($(#[$doc:meta])* $name:ident = $collection:expr; { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            pub id: RecordId,
            pub grid_id: GridId,
            $($(#[$fdoc])* pub $field: $ty),*
        }
        impl Record for $name {
            const COLLECTION: Collection = $collection;
            fn id(&self) -> RecordId { self.id }
            fn grid_id(&self) -> GridId { self.grid_id }
        }
    };
}

record!(
    /// A household (户).
    Household = Collection::Households; {
        address: String,
        building: Option<String>,
        unit: Option<String>,
        room: Option<String>,
        head_name: Option<String>,
        phone: Option<String>,
        members: Option<i64>,
        #[serde(default, deserialize_with = "null_as_default")]
        tags: Vec<HouseholdTag>,
        care_level: Option<CareLevel>,
        notes: Option<String>,
        #[serde(default, deserialize_with = "null_as_default")]
        deleted: bool,
    }
);
record!(
    /// A patrol (巡查); its route is its track points.
    Patrol = Collection::Patrols; {
        worker_id: Option<UserId>,
        started_at: Timestamp,
        ended_at: Option<Timestamp>,
        status: PatrolStatus,
        summary: Option<String>,
    }
);
record!(
    /// One point of a patrol's route.
    TrackPoint = Collection::TrackPoints; {
        patrol_id: RecordId,
        recorded_at: Timestamp,
        lat: f64,
        lon: f64,
        accuracy_m: Option<f64>,
    }
);
record!(
    /// A visit (上门走访) to a household.
    Visit = Collection::Visits; {
        household_id: RecordId,
        worker_id: Option<UserId>,
        visited_at: Timestamp,
        mode: VisitMode,
        outcome: VisitOutcome,
        summary: Option<String>,
        follow_up_due: Option<Date>,
        lat: Option<f64>,
        lon: Option<f64>,
    }
);
record!(
    /// An item of a household's needs list (需求清单).
    Need = Collection::Needs; {
        household_id: RecordId,
        visit_id: Option<RecordId>,
        category: NeedCategory,
        description: String,
        urgency: Option<NeedUrgency>,
        status: NeedStatus,
        due_on: Option<Date>,
        resolution: Option<String>,
    }
);
record!(
    /// A hazard or incident report (隐患/事件). `status`, `assignee_department` and `due_at`
    /// are derived from its actions.
    Hazard = Collection::Hazards; {
        reporter_id: Option<UserId>,
        source: Option<HazardSource>,
        category: HazardCategory,
        severity: Severity,
        title: String,
        description: Option<String>,
        lat: Option<f64>,
        lon: Option<f64>,
        address: Option<String>,
        status: Option<HazardStatus>,
        assignee_department: Option<String>,
        due_at: Option<Timestamp>,
    }
);
record!(
    /// One action of a hazard's timeline. `effect` and `reason` are the server's verdict (`None`
    /// until it has arrived).
    HazardActionRecord = Collection::HazardActions; {
        hazard_id: RecordId,
        actor_id: Option<UserId>,
        action: HazardAction,
        note: Option<String>,
        department: Option<String>,
        due_at: Option<Timestamp>,
        at: Timestamp,
        effect: Option<Effect>,
        reason: Option<String>,
    }
);
record!(
    /// An attachment's metadata (the bytes travel separately).
    Attachment = Collection::Attachments; {
        owner_collection: Collection,
        owner_id: RecordId,
        sha256: String,
        media_type: String,
        bytes: i64,
        taken_at: Option<Timestamp>,
        lat: Option<f64>,
        lon: Option<f64>,
    }
);

/// Builds [`Fields`] from typed values; `None` values are left out.
#[derive(Default)]
struct FieldsBuilder(Fields);

impl FieldsBuilder {
    fn set(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.0.insert(name.into(), value.into());
        self
    }
    fn opt<T: Into<Value>>(self, name: &str, value: Option<T>) -> Self {
        match value {
            Some(v) => self.set(name, v),
            None => self,
        }
    }
    fn text(self, name: &str, value: &Option<String>) -> Self {
        self.opt(name, value.clone())
    }
    fn time(self, name: &str, value: Option<Timestamp>) -> Self {
        self.opt(name, value.map(|t| t.to_rfc3339()))
    }
    fn date(self, name: &str, value: Option<Date>) -> Self {
        self.opt(name, value.map(|d| d.to_string()))
    }
    fn id(self, name: &str, value: Option<RecordId>) -> Self {
        self.opt(name, value.map(|d| d.to_string()))
    }
    fn tags(self, name: &str, value: Option<&[HouseholdTag]>) -> Self {
        self.opt(
            name,
            value.map(|t| Value::Array(t.iter().map(|t| Value::from(*t)).collect())),
        )
    }
    fn done(self) -> Fields {
        self.0
    }
}

/// A new household.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewHousehold {
    pub address: String,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub room: Option<String>,
    pub head_name: Option<String>,
    pub phone: Option<String>,
    pub members: Option<i64>,
    #[serde(default)]
    pub tags: Vec<HouseholdTag>,
    pub care_level: Option<CareLevel>,
    pub notes: Option<String>,
}

impl NewHousehold {
    pub fn to_fields(&self) -> Fields {
        FieldsBuilder::default()
            .set("address", self.address.clone())
            .text("building", &self.building)
            .text("unit", &self.unit)
            .text("room", &self.room)
            .text("head_name", &self.head_name)
            .text("phone", &self.phone)
            .opt("members", self.members)
            .tags(
                "tags",
                (!self.tags.is_empty()).then_some(self.tags.as_slice()),
            )
            .opt("care_level", self.care_level)
            .text("notes", &self.notes)
            .done()
    }
}

/// An edit of a household (`Some` = set).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HouseholdPatch {
    pub address: Option<String>,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub room: Option<String>,
    pub head_name: Option<String>,
    pub phone: Option<String>,
    pub members: Option<i64>,
    pub tags: Option<Vec<HouseholdTag>>,
    pub care_level: Option<CareLevel>,
    pub notes: Option<String>,
}

impl HouseholdPatch {
    pub fn to_fields(&self) -> Fields {
        FieldsBuilder::default()
            .text("address", &self.address)
            .text("building", &self.building)
            .text("unit", &self.unit)
            .text("room", &self.room)
            .text("head_name", &self.head_name)
            .text("phone", &self.phone)
            .opt("members", self.members)
            .tags("tags", self.tags.as_deref())
            .opt("care_level", self.care_level)
            .text("notes", &self.notes)
            .done()
    }
}

/// Starting a patrol; `started_at` defaults to the phone's clock.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewPatrol {
    pub started_at: Option<Timestamp>,
    pub summary: Option<String>,
}

impl NewPatrol {
    pub fn to_fields(&self, now: Timestamp) -> Fields {
        FieldsBuilder::default()
            .set("started_at", self.started_at.unwrap_or(now).to_rfc3339())
            .set("status", PatrolStatus::Active)
            .text("summary", &self.summary)
            .done()
    }
}

/// An edit of a patrol (ending one is `Replica::end_patrol`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PatrolPatch {
    pub ended_at: Option<Timestamp>,
    pub status: Option<PatrolStatus>,
    pub summary: Option<String>,
}

impl PatrolPatch {
    pub fn to_fields(&self) -> Fields {
        FieldsBuilder::default()
            .time("ended_at", self.ended_at)
            .opt("status", self.status)
            .text("summary", &self.summary)
            .done()
    }
}

/// A point of a patrol's route; `recorded_at` defaults to the phone's clock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewTrackPoint {
    pub recorded_at: Option<Timestamp>,
    pub lat: f64,
    pub lon: f64,
    pub accuracy_m: Option<f64>,
}

impl NewTrackPoint {
    pub fn to_fields(&self, patrol_id: RecordId, now: Timestamp) -> Fields {
        FieldsBuilder::default()
            .set("patrol_id", patrol_id.to_string())
            .set("recorded_at", self.recorded_at.unwrap_or(now).to_rfc3339())
            .set("lat", float(self.lat))
            .set("lon", float(self.lon))
            .opt("accuracy_m", self.accuracy_m.map(float))
            .done()
    }
}

/// A float as JSON; a non-finite value becomes a string so that validation reports it.
fn float(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or_else(|| Value::String(x.to_string()), Value::Number)
}

/// A visit; `visited_at` defaults to the phone's clock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewVisit {
    pub household_id: RecordId,
    pub visited_at: Option<Timestamp>,
    pub mode: VisitMode,
    pub outcome: VisitOutcome,
    pub summary: Option<String>,
    pub follow_up_due: Option<Date>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

impl NewVisit {
    pub fn to_fields(&self, now: Timestamp) -> Fields {
        FieldsBuilder::default()
            .set("household_id", self.household_id.to_string())
            .set("visited_at", self.visited_at.unwrap_or(now).to_rfc3339())
            .set("mode", self.mode)
            .set("outcome", self.outcome)
            .text("summary", &self.summary)
            .date("follow_up_due", self.follow_up_due)
            .opt("lat", self.lat.map(float))
            .opt("lon", self.lon.map(float))
            .done()
    }
}

/// An edit of a visit (`Some` = set).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VisitPatch {
    pub mode: Option<VisitMode>,
    pub outcome: Option<VisitOutcome>,
    pub summary: Option<String>,
    pub follow_up_due: Option<Date>,
}

impl VisitPatch {
    pub fn to_fields(&self) -> Fields {
        FieldsBuilder::default()
            .opt("mode", self.mode)
            .opt("outcome", self.outcome)
            .text("summary", &self.summary)
            .date("follow_up_due", self.follow_up_due)
            .done()
    }
}

/// A new need of a household; its status starts `open`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewNeed {
    pub household_id: RecordId,
    pub visit_id: Option<RecordId>,
    pub category: NeedCategory,
    pub description: String,
    pub urgency: Option<NeedUrgency>,
    pub due_on: Option<Date>,
}

impl NewNeed {
    pub fn to_fields(&self) -> Fields {
        FieldsBuilder::default()
            .set("household_id", self.household_id.to_string())
            .id("visit_id", self.visit_id)
            .set("category", self.category)
            .set("description", self.description.clone())
            .opt("urgency", self.urgency)
            .set("status", NeedStatus::Open)
            .date("due_on", self.due_on)
            .done()
    }
}

/// An edit of a need (`Some` = set).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NeedPatch {
    pub category: Option<NeedCategory>,
    pub description: Option<String>,
    pub urgency: Option<NeedUrgency>,
    pub status: Option<NeedStatus>,
    pub due_on: Option<Date>,
    pub resolution: Option<String>,
}

impl NeedPatch {
    pub fn to_fields(&self) -> Fields {
        FieldsBuilder::default()
            .opt("category", self.category)
            .text("description", &self.description)
            .opt("urgency", self.urgency)
            .opt("status", self.status)
            .date("due_on", self.due_on)
            .text("resolution", &self.resolution)
            .done()
    }
}

/// A new hazard report; the replica records its `submit` action with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewHazard {
    pub grid_id: GridId,
    pub source: Option<HazardSource>,
    pub category: HazardCategory,
    pub severity: Severity,
    pub title: String,
    pub description: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub address: Option<String>,
}

impl NewHazard {
    pub fn to_fields(&self) -> Fields {
        FieldsBuilder::default()
            .opt("source", self.source)
            .set("category", self.category)
            .set("severity", self.severity)
            .set("title", self.title.clone())
            .text("description", &self.description)
            .opt("lat", self.lat.map(float))
            .opt("lon", self.lon.map(float))
            .text("address", &self.address)
            .done()
    }
}

/// An edit of a hazard's descriptive fields (`Some` = set); the workflow fields move only
/// through actions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HazardPatch {
    pub source: Option<HazardSource>,
    pub category: Option<HazardCategory>,
    pub severity: Option<Severity>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub address: Option<String>,
}

impl HazardPatch {
    pub fn to_fields(&self) -> Fields {
        FieldsBuilder::default()
            .opt("source", self.source)
            .opt("category", self.category)
            .opt("severity", self.severity)
            .text("title", &self.title)
            .text("description", &self.description)
            .opt("lat", self.lat.map(float))
            .opt("lon", self.lon.map(float))
            .text("address", &self.address)
            .done()
    }
}

/// An action on a hazard (`at` is the phone's clock when it is recorded).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewHazardAction {
    pub action: HazardAction,
    pub note: Option<String>,
    pub department: Option<String>,
    pub due_at: Option<Timestamp>,
}

impl NewHazardAction {
    pub fn new(action: HazardAction) -> Self {
        Self {
            action,
            note: None,
            department: None,
            due_at: None,
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    pub fn to_fields(&self, hazard_id: RecordId, at: Timestamp) -> Fields {
        FieldsBuilder::default()
            .set("hazard_id", hazard_id.to_string())
            .set("action", self.action.as_str())
            .text("note", &self.note)
            .text("department", &self.department)
            .time("due_at", self.due_at)
            .set("at", at.to_rfc3339())
            .done()
    }
}

/// An attachment's metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewAttachment {
    pub owner_collection: Collection,
    pub owner_id: RecordId,
    pub sha256: String,
    pub media_type: String,
    pub bytes: i64,
    pub taken_at: Option<Timestamp>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

impl NewAttachment {
    pub fn to_fields(&self) -> Fields {
        FieldsBuilder::default()
            .set("owner_collection", self.owner_collection.as_str())
            .set("owner_id", self.owner_id.to_string())
            .set("sha256", self.sha256.clone())
            .set("media_type", self.media_type.clone())
            .set("bytes", self.bytes)
            .time("taken_at", self.taken_at)
            .opt("lat", self.lat.map(float))
            .opt("lon", self.lon.map(float))
            .done()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::collection::{self as c, FieldType};
    use crate::validate::{validate_write, WriteContext};
    use crate::wire::Op;
    use serde_json::json;

    fn names<T: Copy + Into<Value>>(all: &[T]) -> Vec<String> {
        all.iter()
            .map(|v| (*v).into().as_str().unwrap().to_string())
            .collect()
    }

    fn enum_values(collection: Collection, field: &str) -> Vec<String> {
        match collection.field(field).unwrap().ty {
            FieldType::Enum(v) | FieldType::Tags(v) => v.iter().map(|s| s.to_string()).collect(),
            other => panic!("{field} is {other:?}"),
        }
    }

    #[test]
    fn enums_list_exactly_the_table_values() {
        use Collection::*;
        assert_eq!(names(CareLevel::ALL), enum_values(Households, "care_level"));
        assert_eq!(names(HouseholdTag::ALL), enum_values(Households, "tags"));
        assert_eq!(names(PatrolStatus::ALL), enum_values(Patrols, "status"));
        assert_eq!(names(VisitMode::ALL), enum_values(Visits, "mode"));
        assert_eq!(names(VisitOutcome::ALL), enum_values(Visits, "outcome"));
        assert_eq!(names(NeedCategory::ALL), enum_values(Needs, "category"));
        assert_eq!(names(NeedUrgency::ALL), enum_values(Needs, "urgency"));
        assert_eq!(names(NeedStatus::ALL), enum_values(Needs, "status"));
        assert_eq!(names(HazardSource::ALL), enum_values(Hazards, "source"));
        assert_eq!(names(HazardCategory::ALL), enum_values(Hazards, "category"));
        assert_eq!(names(Severity::ALL), enum_values(Hazards, "severity"));
        let statuses: Vec<String> = HazardStatus::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(statuses, enum_values(Hazards, "status"));
        let actions: Vec<String> = HazardAction::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(actions, enum_values(HazardActions, "action"));
        assert_eq!(
            c::COLLECTION_NAMES
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
            enum_values(Attachments, "owner_collection")
        );
        for v in CareLevel::ALL {
            assert_eq!(serde_json::to_value(v).unwrap(), Value::from(*v));
            assert_eq!(v.as_str().parse::<CareLevel>().unwrap(), *v);
        }
    }

    /// A value of the right type for every field of the table.
    fn sample(spec: &c::FieldSpec) -> Value {
        match spec.ty {
            FieldType::Text { .. } => json!("文本"),
            FieldType::Int { min, .. } => json!(min + 1),
            FieldType::Float { .. } => json!(12.5),
            FieldType::Bool => json!(true),
            FieldType::Time => json!("2026-11-21T08:30:00.123Z"),
            FieldType::Date => json!("2026-12-01"),
            FieldType::Ref => json!("0193a2c4-0000-7000-8000-000000000001"),
            FieldType::Enum(v) => json!(v[0]),
            FieldType::Tags(v) => json!([v[0], v[1]]),
            FieldType::Sha256 => json!("ab".repeat(32)),
        }
    }

    fn read_all_and_required<T: Record + fmt::Debug>() {
        let collection = T::COLLECTION;
        let full: Fields = collection
            .fields()
            .iter()
            .map(|s| (s.name.to_string(), sample(s)))
            .collect();
        from_fields::<T>(RecordId::new(), GridId::new(), &full)
            .unwrap_or_else(|e| panic!("{collection} full: {e}"));
        let required: Fields = collection
            .fields()
            .iter()
            .filter(|s| s.required)
            .map(|s| (s.name.to_string(), sample(s)))
            .collect();
        from_fields::<T>(RecordId::new(), GridId::new(), &required)
            .unwrap_or_else(|e| panic!("{collection} required only: {e}"));
        // Every field of the table is a member of the struct (a round trip keeps it).
        let rec = from_fields::<T>(RecordId::new(), GridId::new(), &full).unwrap();
        let back = serde_json::to_value(&rec).unwrap();
        for spec in collection.fields() {
            assert!(
                back.get(spec.name).is_some(),
                "{collection}.{} missing",
                spec.name
            );
        }
        let _ = format!("{rec:?}");
    }

    #[test]
    fn every_record_struct_reads_its_collection() {
        read_all_and_required::<Household>();
        read_all_and_required::<Patrol>();
        read_all_and_required::<TrackPoint>();
        read_all_and_required::<Visit>();
        read_all_and_required::<Need>();
        read_all_and_required::<Hazard>();
        read_all_and_required::<HazardActionRecord>();
        read_all_and_required::<Attachment>();
    }

    #[test]
    fn inputs_produce_valid_fields() {
        let now = Timestamp(1_795_249_800_123);
        let hh = RecordId::new();
        let create = |c: Collection, f: Fields| {
            validate_write(c, Op::Upsert, &f, WriteContext::create(Some(UserId::new())))
                .unwrap_or_else(|e| panic!("{c}: {e}"))
        };
        let h = create(
            Collection::Households,
            NewHousehold {
                address: "幸福路1号".into(),
                tags: vec![HouseholdTag::Veteran, HouseholdTag::ElderlyAlone],
                members: Some(2),
                care_level: Some(CareLevel::Key),
                ..Default::default()
            }
            .to_fields(),
        );
        assert_eq!(h["tags"], json!(["elderly_alone", "veteran"]));
        create(Collection::Patrols, NewPatrol::default().to_fields(now));
        create(
            Collection::TrackPoints,
            NewTrackPoint {
                recorded_at: None,
                lat: 31.2,
                lon: 121.5,
                accuracy_m: Some(5.0),
            }
            .to_fields(RecordId::new(), now),
        );
        create(
            Collection::Visits,
            NewVisit {
                household_id: hh,
                visited_at: None,
                mode: VisitMode::InPerson,
                outcome: VisitOutcome::Met,
                summary: Some("身体不错".into()),
                follow_up_due: Date::parse("2026-12-01"),
                lat: None,
                lon: None,
            }
            .to_fields(now),
        );
        create(
            Collection::Needs,
            NewNeed {
                household_id: hh,
                visit_id: None,
                category: NeedCategory::Medical,
                description: "需要轮椅".into(),
                urgency: Some(NeedUrgency::High),
                due_on: None,
            }
            .to_fields(),
        );
        create(
            Collection::Hazards,
            NewHazard {
                grid_id: GridId::new(),
                source: Some(HazardSource::Patrol),
                category: HazardCategory::EbikeCharging,
                severity: Severity::High,
                title: "楼道充电".into(),
                description: None,
                lat: Some(31.0),
                lon: Some(121.0),
                address: None,
            }
            .to_fields(),
        );
        create(
            Collection::HazardActions,
            NewHazardAction::new(HazardAction::Submit).to_fields(RecordId::new(), now),
        );
        create(
            Collection::Attachments,
            NewAttachment {
                owner_collection: Collection::Hazards,
                owner_id: RecordId::new(),
                sha256: "0".repeat(64),
                media_type: "image/jpeg".into(),
                bytes: 1024,
                taken_at: Some(now),
                lat: None,
                lon: None,
            }
            .to_fields(),
        );
        assert!(HouseholdPatch::default().to_fields().is_empty());
        assert_eq!(
            NeedPatch {
                status: Some(NeedStatus::Resolved),
                ..Default::default()
            }
            .to_fields(),
            json!({"status": "resolved"}).as_object().cloned().unwrap()
        );
        let nan = NewTrackPoint {
            recorded_at: None,
            lat: f64::NAN,
            lon: 0.0,
            accuracy_m: None,
        }
        .to_fields(RecordId::new(), now);
        assert!(validate_write(
            Collection::TrackPoints,
            Op::Upsert,
            &nan,
            WriteContext::create(None)
        )
        .is_err());
    }
}
