//! The pull cursor: for each grid, the last change counter the client has received.
//!
//! The server bumps a per-grid counter under a row lock inside every write transaction, so
//! within one grid, commit order equals counter order and a reader that asks for "counter >
//! c" never skips a change that commits later with a smaller number. A single global sequence
//! would not have that property. The text form is opaque to clients but URL-safe without
//! escaping: `v1` followed by `_GRID.COUNTER` for each grid, e.g. `v1_0193…-…04.17`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::ids::GridId;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullCursor(pub BTreeMap<GridId, u64>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the pull cursor is not one this server issued")]
pub struct CursorError;

impl PullCursor {
    pub fn get(&self, grid: GridId) -> u64 {
        self.0.get(&grid).copied().unwrap_or(0)
    }

    pub fn set(&mut self, grid: GridId, counter: u64) {
        self.0.insert(grid, counter);
    }

    /// Keep only the grids still in scope (a withdrawn grid restarts from 0 if returned).
    pub fn retain_grids(&mut self, grids: &[GridId]) {
        self.0.retain(|g, _| grids.contains(g));
    }
}

impl fmt::Display for PullCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("v1")?;
        for (grid, counter) in &self.0 {
            write!(f, "_{grid}.{counter}")?;
        }
        Ok(())
    }
}

impl FromStr for PullCursor {
    type Err = CursorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split('_');
        if parts.next() != Some("v1") {
            return Err(CursorError);
        }
        let mut map = BTreeMap::new();
        for part in parts {
            let (grid, counter) = part.split_once('.').ok_or(CursorError)?;
            map.insert(
                grid.parse().map_err(|_| CursorError)?,
                counter.parse().map_err(|_| CursorError)?,
            );
        }
        Ok(PullCursor(map))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let mut c = PullCursor::default();
        assert_eq!(c.to_string(), "v1");
        c.set(GridId::new(), 17);
        c.set(GridId::new(), 3);
        assert_eq!(c.to_string().parse::<PullCursor>().unwrap(), c);
        for bad in [
            "",
            "v2",
            "v1_x.1",
            "v1_0193a2c4-0000-7000-8000-000000000001",
            "v1_0193a2c4-0000-7000-8000-000000000001.-1",
        ] {
            assert!(bad.parse::<PullCursor>().is_err(), "{bad}");
        }
    }
}
