//! The `households` row and the server-side way to create one (demo seed, admin imports),
//! following the write-path conventions every synced record obeys:
//! inside a write transaction, bump the grid's counter ([`super::record_change`]), store
//! that `change_seq`, and stamp every field's version with a server HLC.

use diesel::prelude::*;
use serde_json::{Map, Value};

use super::hlc::server_stamp;
use super::schema::households;
use super::Collection;
use super::DbConnection;
use crate::error::{AppError, AppResult};

/// A stored household (all columns).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = households)]
pub struct Household {
    /// UUID.
    pub id: String,
    /// Grid.
    pub grid_id: String,
    /// Address (required).
    pub address: String,
    /// Building (栋).
    pub building: Option<String>,
    /// Unit (单元).
    pub unit: Option<String>,
    /// Room (室).
    pub room: Option<String>,
    /// Head of household.
    pub head_name: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Member count (≥ 0).
    pub members: Option<i64>,
    /// JSON array of tags, e.g. `["elderly_alone"]`.
    pub tags: Option<String>,
    /// `normal` | `attention` | `key`.
    pub care_level: Option<String>,
    /// Free notes.
    pub notes: Option<String>,
    /// Soft deletion.
    pub deleted: bool,
    /// The grid counter at the last write.
    pub change_seq: i64,
    /// JSON object field → HLC stamp.
    pub versions: String,
    /// Server time of creation, ms.
    pub created_at: i64,
    /// Server time of the last write, ms.
    pub updated_at: i64,
    /// Device that created it (None: the server).
    pub origin_device: Option<String>,
    /// The device's time of the write, ms.
    pub client_time: Option<i64>,
}

/// The data fields of a household created on the server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HouseholdFields {
    /// Address (required, non-empty).
    pub address: String,
    /// Building.
    pub building: Option<String>,
    /// Unit.
    pub unit: Option<String>,
    /// Room.
    pub room: Option<String>,
    /// Head of household.
    pub head_name: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Member count.
    pub members: Option<i64>,
    /// Tags (stored as a JSON array; None when empty).
    pub tags: Vec<String>,
    /// Care level.
    pub care_level: Option<String>,
    /// Notes.
    pub notes: Option<String>,
}

/// Create a household in `grid_id` as the server (origin_device NULL), every field stamped
/// with one server HLC. Call inside a write transaction.
pub fn create_on_server(
    conn: &mut DbConnection,
    grid_id: &str,
    fields: HouseholdFields,
) -> AppResult<Household> {
    if fields.address.trim().is_empty() {
        return Err(AppError::invalid("address is required"));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let now = super::now_ms();
    let change_seq = super::record_change(conn, Collection::Households.as_str(), &id, grid_id)?;
    let stamp = Value::String(server_stamp(now));
    let versions: Map<String, Value> = Collection::Households
        .fields()
        .iter()
        .map(|f| (f.name.to_owned(), stamp.clone()))
        .collect();
    let tags = if fields.tags.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&fields.tags).map_err(AppError::internal)?)
    };
    let row = Household {
        id,
        grid_id: grid_id.to_owned(),
        address: fields.address,
        building: fields.building,
        unit: fields.unit,
        room: fields.room,
        head_name: fields.head_name,
        phone: fields.phone,
        members: fields.members,
        tags,
        care_level: fields.care_level,
        notes: fields.notes,
        deleted: false,
        change_seq,
        versions: Value::Object(versions).to_string(),
        created_at: now,
        updated_at: now,
        origin_device: None,
        client_time: None,
    };
    diesel::insert_into(households::table)
        .values(&row)
        .execute(conn)?;
    Ok(row)
}
