//! The write path: validate, stamp, update the local view, queue the outbox entry — all inside
//! one [`WriteTx`], committed before the public call returns.
//!
//! Invariants:
//! - nothing reaches the view or the outbox without [`validate_write`] (the same function the
//!   server runs) and, for a new record, the local checks the server would also make: the
//!   grid is in the session's scope and referenced records exist here, in the same grid;
//! - each entry's `base` is, per field, the version the local view showed before the edit
//!   (`None` for a new record or a field never written);
//! - the `seq` counter and the clock state are read in the same transaction and advance with
//!   the entries it inserts.

use std::collections::BTreeMap;

use rusqlite::{Transaction, TransactionBehavior};
use serde_json::Value;

use super::error::{ReplicaError, Result};
use super::meta::{self, Counters};
use super::outbox::{self, NewEntry};
use super::records::{self, parent_of};
use super::{Inner, Replica, Session};
use crate::collection::Collection;
use crate::hlc::Hlc;
use crate::ids::{GridId, MutationId, RecordId};
use crate::time::Timestamp;
use crate::validate::{validate_write, WriteContext};
use crate::wire::{Fields, Op, Reason, RejectCode};

fn invalid(code: RejectCode, message: impl Into<String>) -> ReplicaError {
    ReplicaError::Invalid(Reason::new(code, message))
}

/// One write transaction of the replica.
pub(crate) struct WriteTx<'a> {
    pub tx: Transaction<'a>,
    pub session: &'a Session,
    counters: Counters,
    replica: &'a Replica,
    now: Timestamp,
}

impl<'a> WriteTx<'a> {
    pub fn begin(replica: &'a Replica, inner: &'a mut Inner) -> Result<Self> {
        let Inner { conn, session } = inner;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let counters = meta::counters(&tx, replica.device)?;
        Ok(Self {
            tx,
            session,
            counters,
            replica,
            now: replica.now(),
        })
    }

    pub fn now(&self) -> Timestamp {
        self.now
    }

    pub fn commit(self) -> Result<()> {
        // The counters live on in the last outbox entry (see `meta::counters`).
        self.tx.commit()?;
        Ok(())
    }

    fn check_scope(&self, grid: GridId) -> Result<()> {
        if self
            .session
            .scope()
            .is_none_or(|grids| grids.contains(&grid))
        {
            Ok(())
        } else {
            Err(invalid(
                RejectCode::OutOfScope,
                "this grid is not in your scope",
            ))
        }
    }

    fn stamp(&mut self) -> (u64, Hlc) {
        let now_ms = u64::try_from(self.now.millis()).unwrap_or(0);
        let hlc = self.counters.clock.tick(now_ms);
        self.counters.last_seq += 1;
        (self.counters.last_seq, hlc)
    }

    /// The records a new record refers to must be here, all in one grid; returns that grid.
    fn referenced_grid(&self, collection: Collection, fields: &Fields) -> Result<Option<GridId>> {
        let refs: &[(&str, Collection)] = match collection {
            Collection::TrackPoints => &[("patrol_id", Collection::Patrols)],
            Collection::Visits => &[("household_id", Collection::Households)],
            Collection::Needs => &[
                ("household_id", Collection::Households),
                ("visit_id", Collection::Visits),
            ],
            Collection::HazardActions => &[("hazard_id", Collection::Hazards)],
            _ => &[],
        };
        let mut targets: Vec<(Collection, &Value)> = refs
            .iter()
            .filter_map(|(f, c)| fields.get(*f).filter(|v| !v.is_null()).map(|v| (*c, v)))
            .collect();
        if collection == Collection::Attachments {
            let owner = fields
                .get("owner_collection")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<Collection>().ok());
            if let (Some(c), Some(v)) = (owner, fields.get("owner_id")) {
                targets.push((c, v));
            }
        }
        let mut grid = None;
        for (target, value) in targets {
            let Some(id) = value.as_str().and_then(|s| s.parse::<RecordId>().ok()) else {
                continue;
            };
            match (records::grid_of(&self.tx, target, id)?, grid) {
                (None, _) => {
                    return Err(invalid(
                        RejectCode::NotFound,
                        format!("no {target} record {id}"),
                    ))
                }
                (Some(g), Some(first)) if g != first => {
                    return Err(invalid(
                        RejectCode::InvalidValue,
                        format!("{target} record {id} belongs to another grid"),
                    ))
                }
                (Some(g), _) => grid = Some(g),
            }
        }
        Ok(grid)
    }

    /// Create a record in `grid` (`None`: the grid of the record it refers to). `extra_view`
    /// adds fields to the local view only (a new hazard's derived status). Returns the id and
    /// the validated fields.
    pub fn create(
        &mut self,
        collection: Collection,
        grid: Option<GridId>,
        fields: &Fields,
        extra_view: Option<&Fields>,
    ) -> Result<(RecordId, Fields)> {
        let validated = validate_write(
            collection,
            Op::Upsert,
            fields,
            WriteContext::create(self.session.user_id),
        )
        .map_err(ReplicaError::Invalid)?;
        let grid = match (grid, self.referenced_grid(collection, &validated)?) {
            (Some(g), Some(r)) if g != r => {
                return Err(invalid(
                    RejectCode::InvalidValue,
                    "the record it refers to belongs to another grid",
                ))
            }
            (Some(g), _) | (None, Some(g)) => g,
            (None, None) => {
                return Err(invalid(
                    RejectCode::MissingField,
                    format!("a new {collection} record needs a grid"),
                ))
            }
        };
        self.check_scope(grid)?;
        let id = RecordId::from(self.replica.fresh_id());
        let mutation_id = MutationId::from(self.replica.fresh_id());
        let (seq, hlc) = self.stamp();

        let fields_json = serde_json::to_string(&validated)?;
        // A new record's base is null for every field; the outbox stores it as `{}` (see
        // `outbox::pending_page`).
        let base_json = "{}";
        let view_json = match extra_view {
            Some(extra) => {
                let mut view = validated.clone();
                view.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
                Some(serde_json::to_string(&view)?)
            }
            None => None,
        };

        let id_text = id.to_string();
        let grid_text = grid.to_string();
        let parent = parent_of(collection, &validated);
        records::insert_view(
            &self.tx,
            collection,
            &id_text,
            &grid_text,
            parent.as_deref(),
            view_json.as_deref().unwrap_or(&fields_json),
            seq,
        )?;
        outbox::insert(
            &self.tx,
            &NewEntry {
                seq,
                mutation_id,
                collection,
                record_id: &id_text,
                grid_id: &grid_text,
                parent_id: parent.as_deref(),
                op: Op::Upsert,
                hlc: &hlc,
                fields: &fields_json,
                base: base_json,
                created_at: self.now,
            },
        )?;
        Ok((id, validated))
    }

    /// Edit (or, with `Op::Delete`, delete) a record held here. An edit that sets nothing new
    /// queues nothing.
    pub fn edit(
        &mut self,
        collection: Collection,
        id: RecordId,
        op: Op,
        fields: &Fields,
    ) -> Result<()> {
        let not_found = || ReplicaError::NotFound { collection, id };
        let mut view = records::load_view(&self.tx, collection, id)?.ok_or_else(not_found)?;
        self.check_scope(view.grid_id)?;
        let validated = validate_write(
            collection,
            op,
            fields,
            WriteContext::edit(self.session.user_id, &view.fields),
        )
        .map_err(ReplicaError::Invalid)?;
        if validated.is_empty() {
            return Ok(());
        }
        let versions = records::versions_of(&self.tx, collection, id)?;
        let mutation_id = MutationId::from(self.replica.fresh_id());
        let (seq, hlc) = self.stamp();
        let base: BTreeMap<&str, Option<&Hlc>> = validated
            .keys()
            .map(|k| (k.as_str(), versions.get(k)))
            .collect();
        let base_json = serde_json::to_string(&base)?;
        let fields_json = serde_json::to_string(&validated)?;
        for (k, v) in &validated {
            view.fields.insert(k.clone(), v.clone());
        }
        let id_text = id.to_string();
        let grid_text = view.grid_id.to_string();
        let parent = parent_of(collection, &view.fields);
        records::append_view(
            &self.tx,
            collection,
            &id_text,
            &serde_json::to_string(&view.fields)?,
            seq,
        )?;
        outbox::insert(
            &self.tx,
            &NewEntry {
                seq,
                mutation_id,
                collection,
                record_id: &id_text,
                grid_id: &grid_text,
                parent_id: parent.as_deref(),
                op,
                hlc: &hlc,
                fields: &fields_json,
                base: &base_json,
                created_at: self.now,
            },
        )?;
        Ok(())
    }
}

impl Replica {
    /// Run `f` in one write transaction and commit it.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut WriteTx<'_>) -> Result<T>) -> Result<T> {
        let mut guard = self.lock();
        let mut w = WriteTx::begin(self, &mut guard)?;
        let out = f(&mut w)?;
        w.commit()?;
        Ok(out)
    }
}
