//! The replica's half of a sync run: hand out pending mutations, apply a push response, apply
//! a pull page — each in one transaction. The engine ([`crate::sync::engine`]) sequences them.
//!
//! Invariants:
//! - a push result is matched to its entry by `seq` AND mutation id, and only a still-pending
//!   entry is changed, so a repeated or stale response is harmless;
//! - a pull change is folded into the mirror with [`join`], so repeated or reordered pages are
//!   harmless; the cursor is stored in the page's transaction;
//! - every page that states the caller's scope applies it at once (the session's grids are
//!   updated and records of withdrawn grids purged, in the page's transaction), so the phone
//!   never shows records of a grid it knows it may no longer hold;
//! - the removal of acked entries and the sync time happen only on the final page
//!   (`has_more == false`), when the pulled state is complete.
//!
//! Conflict marks (`records.conflict_fields`): set from a push result's `conflicts`; a field's
//! mark is cleared when a later push of a local edit of that field is applied without conflict
//! (the worker decided again, knowing), when a pull brings a version of it stamped by the
//! server (a supervisor resolved the conflict), or when the worker dismisses it.

use std::collections::{BTreeSet, HashSet};

use rusqlite::params;
use serde_json::Value;

use super::error::Result;
use super::meta;
use super::outbox;
use super::records::{self, parent_of};
use super::Replica;
use crate::collection::Collection;
use crate::hlc::SERVER_NODE;
use crate::ids::{GridId, RecordId};
use crate::ingest::from_change;
use crate::merge::{join_into, RecordState};
use crate::sync::{ConflictNote, RejectedNote};
use crate::wire::{Fields, Mutation, PullResponse, PushResponse, Reason, RejectCode, ResultStatus};

/// What applying one push response did.
#[derive(Debug, Default)]
pub(crate) struct PushApplied {
    /// Results that matched a pending entry of the batch.
    pub answered: u64,
    pub applied: u64,
    pub duplicates: u64,
    pub rejected: Vec<RejectedNote>,
    pub conflicts: Vec<ConflictNote>,
}

/// What applying one pull page did.
#[derive(Debug, Default)]
pub(crate) struct PullApplied {
    pub changes: u64,
    pub purged: u64,
}

fn now_ms(replica: &Replica) -> u64 {
    u64::try_from(replica.now().millis()).unwrap_or(0)
}

impl Replica {
    /// The first `limit` pending mutations and the number pending in all.
    pub(crate) fn pending_batch(&self, limit: usize) -> Result<(Vec<Mutation>, u64)> {
        let inner = self.lock();
        Ok((
            outbox::pending_page(&inner.conn, limit)?,
            outbox::pending_count(&inner.conn)?,
        ))
    }

    pub(crate) fn pending_count(&self) -> Result<u64> {
        outbox::pending_count(&self.lock().conn)
    }

    pub(crate) fn pull_cursor(&self) -> Result<Option<String>> {
        meta::get(&self.lock().conn, "cursor")
    }

    /// Remember how the last run ended (`None`: it succeeded).
    pub(crate) fn note_sync_outcome(&self, error: Option<&str>) -> Result<()> {
        let inner = self.lock();
        match error {
            Some(e) => meta::set(&inner.conn, "last_error", e),
            None => meta::delete(&inner.conn, "last_error"),
        }
    }

    /// Apply a push response to the entries it answers (one transaction).
    pub(crate) fn apply_push(
        &self,
        sent: &[Mutation],
        response: &PushResponse,
    ) -> Result<PushApplied> {
        let mut guard = self.lock();
        let super::Inner { conn, session } = &mut *guard;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut counters = meta::counters(&tx, self.device)?;
        counters.clock.observe(&response.server_hlc, now_ms(self));
        meta::save_counters(&tx, &counters)?;

        let now = self.now();
        let sent_seqs: HashSet<u64> = sent.iter().map(|m| m.seq).collect();
        let mut out = PushApplied::default();
        let mut marked_now: HashSet<(Collection, RecordId, String)> = HashSet::new();
        let mut hazards = BTreeSet::new();
        for result in &response.results {
            if !sent_seqs.contains(&result.seq) {
                continue;
            }
            let Some(entry) = outbox::pending_by_seq(&tx, result.seq, result.id)? else {
                continue;
            };
            out.answered += 1;
            let rejection =
                match (result.status, &result.reason) {
                    (ResultStatus::Rejected, reason) => Some(reason.clone().unwrap_or_else(|| {
                        Reason::new(RejectCode::Other, "rejected by the server")
                    })),
                    (ResultStatus::Duplicate, Some(reason)) => Some(reason.clone()),
                    _ => None,
                };
            if let Some(reason) = rejection {
                outbox::save_rejection(&tx, result.seq, result.id, &entry, &reason, now)?;
                outbox::remove(&tx, result.seq)?;
                records::recompute(
                    &tx,
                    entry.collection,
                    entry.record_id,
                    session.role,
                    session.scope(),
                )?;
                if entry.collection == Collection::HazardActions {
                    if let Some(h) = entry.parent_id.as_deref().and_then(|p| p.parse().ok()) {
                        hazards.insert(h);
                    }
                }
                out.rejected.push(RejectedNote {
                    seq: result.seq,
                    collection: entry.collection,
                    record_id: entry.record_id,
                    code: reason.code,
                    message: reason.message,
                });
                continue;
            }
            outbox::mark_acked(&tx, result.seq)?;
            outbox::clear_rejections_before(&tx, entry.collection, entry.record_id, result.seq)?;
            if result.status == ResultStatus::Applied {
                out.applied += 1;
            } else {
                out.duplicates += 1;
            }
            let mut marks = records::conflict_fields(&tx, entry.collection, entry.record_id)?;
            let before = marks.clone();
            if result.conflicts.is_empty() {
                if result.status == ResultStatus::Applied {
                    let fields: Fields = serde_json::from_str(&entry.fields)?;
                    marks.retain(|f| {
                        !fields.contains_key(f)
                            || marked_now.contains(&(entry.collection, entry.record_id, f.clone()))
                    });
                }
            } else {
                for f in &result.conflicts {
                    marked_now.insert((entry.collection, entry.record_id, f.clone()));
                    if !marks.contains(f) {
                        marks.push(f.clone());
                    }
                }
                out.conflicts.push(ConflictNote {
                    seq: result.seq,
                    collection: entry.collection,
                    record_id: entry.record_id,
                    fields: result.conflicts.clone(),
                });
            }
            if marks != before {
                records::set_conflict_fields(&tx, entry.collection, entry.record_id, &marks)?;
            }
        }
        for h in hazards {
            records::recompute(&tx, Collection::Hazards, h, session.role, session.scope())?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Apply one pull page (one transaction, with the cursor).
    pub(crate) fn apply_pull(&self, page: &PullResponse) -> Result<PullApplied> {
        let mut guard = self.lock();
        let super::Inner { conn, session } = &mut *guard;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Saved as the floor before any entry is deleted (see `meta::counters`).
        let mut counters = meta::counters(&tx, self.device)?;
        if let Some(remote) = &page.server_hlc {
            counters.clock.observe(remote, now_ms(self));
        }
        meta::save_counters(&tx, &counters)?;
        let scope: Option<Vec<GridId>> = page
            .scope
            .as_ref()
            .map(|s| s.grid_ids.clone())
            .or_else(|| session.scope().map(<[GridId]>::to_vec));
        let role = session.role;
        let mut out = PullApplied::default();
        let mut hazards = BTreeSet::new();
        for change in &page.changes {
            out.changes += 1;
            let incoming = from_change(change);
            let stored = records::load_mirror(&tx, change.collection, change.id)?;
            let had_row = stored.is_some();
            let mut mirror = stored.and_then(|(_, m)| m).unwrap_or_default();
            let previous = mirror.clone();
            if !join_into(&mut mirror, &incoming) && had_row {
                continue; // nothing new (a repeated page)
            }
            records::put_mirror(&tx, change.collection, change.id, change.grid_id, &mirror)?;
            clear_resolved_conflicts(&tx, change.collection, change.id, &previous, &mirror)?;
            records::recompute(&tx, change.collection, change.id, role, scope.as_deref())?;
            if change.collection == Collection::HazardActions {
                if let Some(h) =
                    parent_of(change.collection, &mirror.fields()).and_then(|p| p.parse().ok())
                {
                    hazards.insert(h);
                }
            }
        }
        for h in &hazards {
            records::recompute(&tx, Collection::Hazards, *h, role, scope.as_deref())?;
        }
        meta::set(&tx, "cursor", &page.cursor)?;
        if let Some(s) = &page.scope {
            meta::save_grids(&tx, &s.grid_ids)?;
            out.purged = purge_outside(&tx, &s.grid_ids)?;
        }
        if !page.has_more {
            let touched = outbox::acked_records(&tx)?;
            outbox::delete_acked(&tx)?;
            let mut parents = BTreeSet::new();
            for (collection, id, parent) in touched {
                records::recompute(&tx, collection, id, role, scope.as_deref())?;
                if collection == Collection::HazardActions {
                    if let Some(p) = parent.and_then(|p| p.parse::<RecordId>().ok()) {
                        parents.insert(p);
                    }
                }
            }
            for h in parents {
                records::recompute(&tx, Collection::Hazards, h, role, scope.as_deref())?;
            }
            meta::set(&tx, "last_sync_at", &self.now().to_rfc3339())?;
        }
        tx.commit()?;
        if out.purged > 0 {
            // The WAL still holds the purged rows' old page images: checkpoint them into the
            // (zeroed, secure_delete) database pages and truncate the log.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        if let Some(s) = &page.scope {
            session.grid_ids = s.grid_ids.clone();
        }
        Ok(out)
    }
}

/// A pulled server-stamped version of a marked field means a supervisor resolved it.
fn clear_resolved_conflicts(
    conn: &rusqlite::Connection,
    collection: Collection,
    id: RecordId,
    previous: &RecordState,
    mirror: &RecordState,
) -> Result<()> {
    let marks = records::conflict_fields(conn, collection, id)?;
    if marks.is_empty() {
        return Ok(());
    }
    let kept: Vec<String> = marks
        .iter()
        .filter(|f| {
            let now = mirror.get(f).map(|v| &v.version);
            let resolved = now.is_some_and(|v| v.node == SERVER_NODE)
                && now != previous.get(f).map(|v| &v.version);
            !resolved
        })
        .cloned()
        .collect();
    if kept != marks {
        records::set_conflict_fields(conn, collection, id, &kept)?;
    }
    Ok(())
}

/// Remove what the phone may no longer hold: records of other grids, the field data of
/// entries and rejections of those grids. Pending entries keep their `seq` (the server must
/// still process it; it rejects them as out of scope). Returns the number of records removed.
fn purge_outside(conn: &rusqlite::Connection, grids: &[GridId]) -> Result<u64> {
    let keep =
        Value::Array(grids.iter().map(|g| Value::String(g.to_string())).collect()).to_string();
    let purged = conn
        .prepare_cached(
            "DELETE FROM records WHERE grid_id NOT IN (SELECT value FROM json_each(?1))",
        )?
        .execute(params![keep])?;
    conn.prepare_cached(
        "UPDATE outbox SET fields = '{}', base = '{}'
         WHERE grid_id NOT IN (SELECT value FROM json_each(?1)) AND fields <> '{}'",
    )?
    .execute(params![keep])?;
    conn.prepare_cached(
        "UPDATE rejections SET fields = NULL
         WHERE grid_id NOT IN (SELECT value FROM json_each(?1)) AND fields IS NOT NULL",
    )?
    .execute(params![keep])?;
    Ok(purged as u64)
}
