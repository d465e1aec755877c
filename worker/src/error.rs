//! The CLI's error: what went wrong, in one line for standard error, and the exit status.
//!
//! Exit statuses: 2 bad arguments or input; 3 the server could not be reached or was
//! unavailable (try again later: nothing was lost); 4 the session cannot be used (log in
//! again: unsent changes stay in the replica); 1 anything else (a refused write, a missing
//! record, a storage failure).

use sync_core::http::HttpError;
use sync_core::replica::ReplicaError;
use sync_core::sync::{SyncError, TransportError};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or input (also clap's own errors, reduced to their first line).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("sync failed: {0}")]
    Sync(#[from] SyncError),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(String),
}

fn transport_status(t: &TransportError) -> u8 {
    match t {
        TransportError::Network(_) | TransportError::Unavailable { .. } => 3,
        TransportError::Auth(_) => 4,
        TransportError::Refused { .. } => 1,
    }
}

impl CliError {
    pub fn exit_status(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Replica(ReplicaError::NotLoggedIn) => 4,
            CliError::Replica(ReplicaError::Invalid(_)) => 2,
            CliError::Replica(_) | CliError::Output(_) => 1,
            CliError::Http(HttpError::Transport(t)) => transport_status(t),
            CliError::Http(HttpError::NotLoggedIn) => 4,
            CliError::Http(HttpError::InvalidUrl(_)) => 2,
            CliError::Http(_) => 1,
            CliError::Sync(SyncError::Transport(t)) => transport_status(t),
            CliError::Sync(SyncError::Replica(ReplicaError::NotLoggedIn)) => 4,
            CliError::Sync(_) => 1,
        }
    }

    /// The message as one line (newlines of nested messages folded).
    pub fn one_line(&self) -> String {
        let text = self.to_string();
        let mut out = String::with_capacity(text.len());
        for part in text
            .split(['\n', '\r'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(part);
        }
        out
    }
}
