//! Validation and normalisation of a write's fields against [`crate::collection`]'s table.
//!
//! Phone and server call the same function: the phone before it commits a write (so a worker
//! learns about a bad value at once, offline) and the server on every mutation it receives
//! (it trusts nothing). Normalisation makes equal values equal text — times in the canonical
//! RFC 3339 form, tags in the enum's order without duplicates — so both sides export the same
//! bytes.
//!
//! Checks: unknown fields, server-owned fields, author fields naming someone else, set-once
//! fields changed after creation, required fields on creation, and each value's type, range,
//! enum membership and length (in characters). Text keeps any Unicode except NUL, which
//! PostgreSQL cannot store.

use serde_json::{Number, Value};

use crate::collection::{Collection, FieldSpec, FieldType, Owner};
use crate::ids::UserId;
use crate::time::{Date, Timestamp};
use crate::wire::{Fields, Op, Reason, RejectCode};

/// What the validator needs to know about the write beyond its fields.
#[derive(Clone, Copy, Debug)]
pub struct WriteContext<'a> {
    /// The authenticated user (unknown on a phone that has not logged in yet).
    pub actor: Option<UserId>,
    /// The record's current fields, when it exists.
    pub existing: Option<&'a Fields>,
    /// Fill absent author fields of a new record with `actor` (the server does; a phone does
    /// when it knows its user).
    pub fill_author: bool,
}

impl<'a> WriteContext<'a> {
    pub fn create(actor: Option<UserId>) -> Self {
        Self {
            actor,
            existing: None,
            fill_author: true,
        }
    }
    pub fn edit(actor: Option<UserId>, existing: &'a Fields) -> Self {
        Self {
            actor,
            existing: Some(existing),
            fill_author: false,
        }
    }
}

fn reject(code: RejectCode, message: String) -> Reason {
    Reason::new(code, message)
}

/// Validate and normalise the fields of one write. Returns the fields to store: normalised,
/// with author fields filled in on creation, and with set-once fields that repeat their
/// current value dropped.
pub fn validate_write(
    collection: Collection,
    op: Op,
    fields: &Fields,
    ctx: WriteContext<'_>,
) -> Result<Fields, Reason> {
    let creating = ctx.existing.is_none();
    if collection.is_append_only() && !creating {
        return Err(reject(
            RejectCode::Immutable,
            format!("{collection} records are append-only and already exist"),
        ));
    }
    if op == Op::Delete {
        if !collection.allows_delete() {
            return Err(reject(
                RejectCode::DeleteNotAllowed,
                format!("{collection} records cannot be deleted"),
            ));
        }
        if creating {
            return Err(reject(
                RejectCode::NotFound,
                "cannot delete a record that does not exist".into(),
            ));
        }
        let mut out = Fields::new();
        out.insert("deleted".into(), Value::Bool(true));
        return Ok(out);
    }

    let mut out = Fields::new();
    for (name, value) in fields {
        let spec = collection.field(name).ok_or_else(|| {
            reject(
                RejectCode::UnknownField,
                format!("{collection} has no field {name:?}"),
            )
        })?;
        match spec.owner {
            Owner::Server => {
                return Err(reject(
                    RejectCode::ServerOwned,
                    format!("{name} is set by the server, not by a client"),
                ));
            }
            Owner::Author => check_author(spec, value, ctx.actor)?,
            Owner::Client => {}
        }
        let value = normalise(spec, value)?;
        if spec.required && is_blank(&value) {
            return Err(reject(
                RejectCode::MissingField,
                format!("{name} cannot be empty"),
            ));
        }
        if spec.immutable {
            if let Some(existing) = ctx.existing {
                if existing.get(name).unwrap_or(&Value::Null) == &value {
                    continue; // repeating the current value is harmless
                }
                return Err(reject(
                    RejectCode::Immutable,
                    format!("{name} is set once, when the record is created"),
                ));
            }
        }
        out.insert(name.clone(), value);
    }

    if creating {
        for spec in collection.fields() {
            if spec.owner == Owner::Author && ctx.fill_author && !out.contains_key(spec.name) {
                if let Some(actor) = ctx.actor {
                    out.insert(spec.name.into(), Value::String(actor.to_string()));
                }
            }
            if spec.required && out.get(spec.name).is_none_or(is_blank) {
                return Err(reject(
                    RejectCode::MissingField,
                    format!("{collection} needs {}", spec.name),
                ));
            }
        }
    }
    Ok(out)
}

/// Null, or text with nothing but white space: not a value for a required field.
fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn check_author(spec: &FieldSpec, value: &Value, actor: Option<UserId>) -> Result<(), Reason> {
    let named = value.as_str().and_then(|s| s.parse::<UserId>().ok());
    match (named, actor) {
        (Some(named), Some(actor)) if named == actor => Ok(()),
        (Some(_), None) => Ok(()), // a phone before login cannot check; the server will
        _ => Err(reject(
            RejectCode::AuthorMismatch,
            format!("{} must be the authenticated user's own id", spec.name),
        )),
    }
}

/// Check one value against its field's type and return its canonical form.
pub fn normalise(spec: &FieldSpec, value: &Value) -> Result<Value, Reason> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let name = spec.name;
    let invalid = |what: String| reject(RejectCode::InvalidValue, format!("{name}: {what}"));
    match spec.ty {
        FieldType::Text { max } => {
            let s = value
                .as_str()
                .ok_or_else(|| invalid("expected text".into()))?;
            if s.contains('\0') {
                return Err(invalid("text may not contain NUL".into()));
            }
            let chars = s.chars().count();
            if chars > max {
                return Err(invalid(format!(
                    "{chars} characters, at most {max} allowed"
                )));
            }
            Ok(value.clone())
        }
        FieldType::Int { min, max } => {
            let n = value
                .as_i64()
                .ok_or_else(|| invalid("expected an integer".into()))?;
            if n < min || n > max {
                return Err(invalid(format!("{n} is outside {min}..={max}")));
            }
            Ok(Value::Number(n.into()))
        }
        FieldType::Float { min, max } => {
            let n = value
                .as_f64()
                .filter(|n| n.is_finite())
                .ok_or_else(|| invalid("expected a number".into()))?;
            if n < min || n > max {
                return Err(invalid(format!("{n} is outside {min}..={max}")));
            }
            // Integers written as 30 and 30.0 are one value: keep the float form.
            Number::from_f64(n)
                .map(Value::Number)
                .ok_or_else(|| invalid("expected a number".into()))
        }
        FieldType::Bool => value
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| invalid("expected true or false".into())),
        FieldType::Time => value
            .as_str()
            .and_then(Timestamp::parse)
            .map(|t| Value::String(t.to_rfc3339()))
            .ok_or_else(|| invalid("expected an RFC 3339 time".into())),
        FieldType::Date => value
            .as_str()
            .and_then(Date::parse)
            .map(|d| Value::String(d.to_string()))
            .ok_or_else(|| invalid("expected a YYYY-MM-DD date".into())),
        FieldType::Ref => value
            .as_str()
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .map(|u| Value::String(u.to_string()))
            .ok_or_else(|| invalid("expected a UUID".into())),
        FieldType::Enum(allowed) => match value.as_str() {
            Some(s) if allowed.contains(&s) => Ok(value.clone()),
            _ => Err(invalid(format!("expected one of {}", allowed.join(", ")))),
        },
        FieldType::Tags(allowed) => {
            let items = value
                .as_array()
                .ok_or_else(|| invalid("expected an array of tags".into()))?;
            let mut seen = vec![false; allowed.len()];
            for item in items {
                let pos = item
                    .as_str()
                    .and_then(|s| allowed.iter().position(|a| *a == s))
                    .ok_or_else(|| invalid(format!("tags must be among {}", allowed.join(", "))))?;
                seen[pos] = true;
            }
            Ok(Value::Array(
                allowed
                    .iter()
                    .zip(seen)
                    .filter(|(_, s)| *s)
                    .map(|(t, _)| Value::String((*t).into()))
                    .collect(),
            ))
        }
        FieldType::Sha256 => match value.as_str() {
            Some(s)
                if s.len() == 64
                    && s.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
            {
                Ok(value.clone())
            }
            _ => Err(invalid("expected 64 lowercase hex digits".into())),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        v.as_object().cloned().unwrap()
    }

    fn code(r: Result<Fields, Reason>) -> RejectCode {
        r.unwrap_err().code
    }

    #[test]
    fn creates_fill_author_and_need_required_fields() {
        let me = UserId::new();
        let ok = validate_write(
            Collection::Hazards,
            Op::Upsert,
            &fields(json!({"title": "楼道堆物 <script>", "category": "fire_safety", "severity": "high"})),
            WriteContext::create(Some(me)),
        )
        .unwrap();
        assert_eq!(ok["reporter_id"], json!(me.to_string()));
        assert_eq!(ok["title"], json!("楼道堆物 <script>"));
        let missing = validate_write(
            Collection::Hazards,
            Op::Upsert,
            &fields(json!({"title": "x"})),
            WriteContext::create(Some(me)),
        );
        assert_eq!(code(missing), RejectCode::MissingField);
        for blank in ["", "  \t"] {
            let empty = validate_write(
                Collection::Households,
                Op::Upsert,
                &fields(json!({"address": blank})),
                WriteContext::create(Some(me)),
            );
            assert_eq!(code(empty), RejectCode::MissingField, "{blank:?}");
        }
        let cleared = validate_write(
            Collection::Households,
            Op::Upsert,
            &fields(json!({"address": ""})),
            WriteContext::edit(Some(me), &fields(json!({"address": "a"}))),
        );
        assert_eq!(code(cleared), RejectCode::MissingField);
    }

    #[test]
    fn rejects_server_owned_author_and_unknown_fields() {
        let me = UserId::new();
        let base = json!({"title": "t", "category": "gas", "severity": "low"});
        let with = |k: &str, v: Value| {
            let mut f = fields(base.clone());
            f.insert(k.into(), v);
            validate_write(
                Collection::Hazards,
                Op::Upsert,
                &f,
                WriteContext::create(Some(me)),
            )
        };
        assert_eq!(
            code(with("status", json!("closed"))),
            RejectCode::ServerOwned
        );
        assert_eq!(
            code(with("assignee_department", json!("消防"))),
            RejectCode::ServerOwned
        );
        assert_eq!(
            code(with("reporter_id", json!(UserId::new().to_string()))),
            RejectCode::AuthorMismatch
        );
        assert_eq!(code(with("colour", json!("red"))), RejectCode::UnknownField);
        assert_eq!(
            code(with("severity", json!("apocalyptic"))),
            RejectCode::InvalidValue
        );
        assert_eq!(
            code(with("title", json!("长".repeat(201)))),
            RejectCode::InvalidValue
        );
        assert!(with("title", json!("长".repeat(200))).is_ok());
        assert_eq!(
            code(with("title", json!("a\u{0}b"))),
            RejectCode::InvalidValue
        );
        assert_eq!(code(with("lat", json!(90.5))), RejectCode::InvalidValue);
        assert_eq!(code(with("lat", json!("31.2"))), RejectCode::InvalidValue);
    }

    #[test]
    fn append_only_and_set_once_fields() {
        let existing = fields(json!({"patrol_id": "0193a2c4-0000-7000-8000-000000000001"}));
        let r = validate_write(
            Collection::TrackPoints,
            Op::Upsert,
            &fields(json!({"lat": 1.0})),
            WriteContext::edit(None, &existing),
        );
        assert_eq!(code(r), RejectCode::Immutable);
        let visit =
            fields(json!({"household_id": "0193a2c4-0000-7000-8000-000000000001", "summary": "x"}));
        let same = validate_write(
            Collection::Visits,
            Op::Upsert,
            &fields(
                json!({"household_id": "0193A2C4-0000-7000-8000-000000000001", "summary": "y"}),
            ),
            WriteContext::edit(None, &visit),
        )
        .unwrap();
        assert_eq!(same, fields(json!({"summary": "y"})));
        let moved = validate_write(
            Collection::Visits,
            Op::Upsert,
            &fields(json!({"household_id": "0193a2c4-0000-7000-8000-000000000009"})),
            WriteContext::edit(None, &visit),
        );
        assert_eq!(code(moved), RejectCode::Immutable);
    }

    #[test]
    fn deletes_only_where_allowed() {
        let existing = fields(json!({"address": "a"}));
        let d = validate_write(
            Collection::Households,
            Op::Delete,
            &Fields::new(),
            WriteContext::edit(None, &existing),
        )
        .unwrap();
        assert_eq!(d, fields(json!({"deleted": true})));
        let r = validate_write(
            Collection::Needs,
            Op::Delete,
            &Fields::new(),
            WriteContext::edit(None, &existing),
        );
        assert_eq!(code(r), RejectCode::DeleteNotAllowed);
    }

    #[test]
    fn normalises_times_tags_and_numbers() {
        let f = validate_write(
            Collection::Households,
            Op::Upsert,
            &fields(json!({"address": "a", "tags": ["veteran", "elderly_alone", "veteran"], "members": 3})),
            WriteContext::create(None),
        )
        .unwrap();
        assert_eq!(f["tags"], json!(["elderly_alone", "veteran"]));
        let v = validate_write(
            Collection::Visits,
            Op::Upsert,
            &fields(json!({"household_id": "0193a2c4-0000-7000-8000-000000000001", "visited_at": "2026-11-21T16:30:00+08:00",
                            "mode": "in_person", "outcome": "met", "lat": 31})),
            WriteContext::create(None),
        )
        .unwrap();
        assert_eq!(v["visited_at"], json!("2026-11-21T08:30:00.000Z"));
        assert_eq!(v["lat"], json!(31.0));
        let bad = validate_write(
            Collection::Households,
            Op::Upsert,
            &fields(json!({"address": "a", "members": 1.5})),
            WriteContext::create(None),
        );
        assert_eq!(code(bad), RejectCode::InvalidValue);
    }
}
