//! One sync run: push the outbox, then pull to the end.
//!
//! 1. **Push** the pending entries in pages (`seq` order, with `device_id`, `pending_count`,
//!    `app_version`). Each response is applied in one replica transaction: `applied` and a
//!    reason-less `duplicate` → acked; `rejected` (or a `duplicate` repeating the original
//!    rejection's reason) → the entry moves to the rejections, the record shows the server's
//!    state again; `conflicts` → the record is marked. `server_hlc` is folded into the clock.
//!    A response that is lost leaves the entries pending: the next run sends them again and the
//!    server answers `duplicate`. A 413 halves the page and tries again.
//! 2. **Pull** pages until `has_more` is false, each page applied in one transaction together
//!    with the cursor and the caller's scope (records of withdrawn grids are purged at once); on
//!    the last page acked entries are dropped (the pulled state contains them) and the sync time
//!    is recorded.
//!
//! Every failure is returned, never panicked; what was committed stays committed, so a run that
//! stops anywhere — network, app killed — resumes where it stopped. Two runs on one replica never
//! interleave (the replica's sync lock).

use std::time::Duration;

use super::summary::SyncSummary;
use super::transport::{Transport, TransportError};
use crate::replica::{Replica, ReplicaError};
use crate::wire::PushRequest;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncOptions {
    /// Mutations per push request.
    pub push_page: usize,
    /// Changes per pull request.
    pub pull_page: usize,
    /// Sent with each push for the devices view.
    pub app_version: Option<String>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            push_page: 200,
            pull_page: 500,
            app_version: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// The server answered something the protocol does not allow.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl SyncError {
    /// Whether running the sync again later can succeed by itself.
    pub fn is_retryable(&self) -> bool {
        match self {
            SyncError::Transport(t) => t.is_retryable(),
            SyncError::Replica(ReplicaError::Storage(_)) => true,
            _ => false,
        }
    }
}

/// Push the outbox, then pull to the end. See the module notes. Needs a logged-in session
/// ([`Replica::set_session`]): the server's answers are only meaningful for its user.
pub fn sync(
    replica: &Replica,
    transport: &mut dyn Transport,
    options: &SyncOptions,
) -> Result<SyncSummary, SyncError> {
    let _one_at_a_time = replica.sync_guard();
    if replica.scope().user_id.is_none() {
        return Err(SyncError::Replica(ReplicaError::NotLoggedIn));
    }
    let mut summary = SyncSummary::default();
    let outcome = push(replica, transport, options, &mut summary)
        .and_then(|()| pull(replica, transport, options, &mut summary));
    let message = outcome.as_ref().err().map(ToString::to_string);
    let noted = replica.note_sync_outcome(message.as_deref());
    outcome?;
    noted?;
    summary.pending = replica.pending_count()?;
    Ok(summary)
}

fn push(
    replica: &Replica,
    transport: &mut dyn Transport,
    options: &SyncOptions,
    summary: &mut SyncSummary,
) -> Result<(), SyncError> {
    let mut page = options.push_page.max(1);
    loop {
        let (mutations, pending) = replica.pending_batch(page)?;
        if mutations.is_empty() {
            return Ok(());
        }
        let request = PushRequest {
            device_id: replica.device_id(),
            mutations,
            pending_count: Some(pending),
            app_version: options.app_version.clone(),
        };
        let response = match transport.push(&request) {
            Err(TransportError::Refused { status: 413, .. }) if page > 1 => {
                page = (page / 2).max(1);
                continue;
            }
            other => other?,
        };
        let applied = replica.apply_push(&request.mutations, &response)?;
        summary.pushed += request.mutations.len() as u64;
        summary.applied += applied.applied;
        summary.duplicates += applied.duplicates;
        summary.rejected.extend(applied.rejected);
        summary.conflicts.extend(applied.conflicts);
        if applied.answered == 0 {
            return Err(SyncError::Protocol(
                "the push response answered none of the mutations sent".into(),
            ));
        }
    }
}

fn pull(
    replica: &Replica,
    transport: &mut dyn Transport,
    options: &SyncOptions,
    summary: &mut SyncSummary,
) -> Result<(), SyncError> {
    loop {
        let cursor = replica.pull_cursor()?;
        let response = transport.pull(cursor.as_deref(), options.pull_page.max(1))?;
        let applied = replica.apply_pull(&response)?;
        summary.pulled += applied.changes;
        summary.purged += applied.purged;
        if !response.has_more {
            return Ok(());
        }
        if response.changes.is_empty() && cursor.as_deref() == Some(response.cursor.as_str()) {
            return Err(SyncError::Protocol(
                "the pull promised more but made no progress".into(),
            ));
        }
    }
}

/// Exponential backoff between failed runs: `base`, doubling, at most `max`; a server's
/// `Retry-After` is honoured. Errors that retrying cannot fix give no delay.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_secs(2), Duration::from_secs(300))
    }
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            attempt: 0,
        }
    }

    /// The wait before the next run after `error`, or `None` when the app must act first
    /// (log in again, update, free storage …).
    pub fn next_delay(&mut self, error: &SyncError) -> Option<Duration> {
        if !error.is_retryable() {
            return None;
        }
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(20));
        self.attempt = self.attempt.saturating_add(1);
        let hint = match error {
            SyncError::Transport(TransportError::Unavailable { retry_after, .. }) => *retry_after,
            _ => None,
        };
        Some(exp.min(self.max).max(hint.unwrap_or_default()))
    }

    /// A run succeeded.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_honours_retry_after() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let net = SyncError::Transport(TransportError::Network("down".into()));
        let delays: Vec<_> = (0..6).filter_map(|_| b.next_delay(&net)).collect();
        assert_eq!(
            delays,
            [1, 2, 4, 8, 10, 10].map(Duration::from_secs).to_vec()
        );
        b.reset();
        let busy = SyncError::Transport(TransportError::Unavailable {
            status: 429,
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(30)),
        });
        assert_eq!(b.next_delay(&busy), Some(Duration::from_secs(30)));
        let auth = SyncError::Transport(TransportError::Auth("expired".into()));
        assert_eq!(b.next_delay(&auth), None);
    }
}
