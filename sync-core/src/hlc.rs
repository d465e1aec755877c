//! The hybrid logical clock (HLC).
//!
//! A stamp is `(wall, counter, node)`: `wall` is milliseconds since the epoch, `counter` a
//! logical counter that orders events within one millisecond, `node` the device id (or
//! `server`). Its text form is `WALL-COUNTER-NODE` with the wall as 15 zero-padded decimal
//! digits and the counter as 5, so **lexical order of the text equals clock order** (the
//! derived `Ord` compares the same triple). The node breaks ties deterministically.
//!
//! Invariants of [`HlcClock`]:
//! - every stamp it issues is strictly greater than every stamp it issued or observed before;
//! - the counter never exceeds [`MAX_COUNTER`]: on overflow the wall moves one millisecond
//!   forward instead (the clock runs slightly ahead rather than wrapping);
//! - the wall never exceeds [`MAX_WALL`] (15 digits).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

pub const MAX_COUNTER: u32 = 99_999;
pub const MAX_WALL: u64 = 999_999_999_999_999;

/// The node name the server stamps its own edits with.
pub const SERVER_NODE: &str = "server";

/// One clock stamp; also the version of a field.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Hlc {
    pub wall: u64,
    pub counter: u32,
    pub node: String,
}

impl Ord for Hlc {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.wall, self.counter, self.node.as_str()).cmp(&(
            other.wall,
            other.counter,
            other.node.as_str(),
        ))
    }
}

impl PartialOrd for Hlc {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an HLC stamp (WALL-COUNTER-NODE): {0:?}")]
pub struct HlcParseError(pub String);

impl Hlc {
    pub fn new(wall: u64, counter: u32, node: impl Into<String>) -> Self {
        Self {
            wall: wall.min(MAX_WALL),
            counter: counter.min(MAX_COUNTER),
            node: node.into(),
        }
    }

    /// The smallest stamp strictly greater than `self`, carried by `node`. Used when an edit
    /// causally follows `self` but its own stamp is older (a phone clock running behind).
    pub fn successor(&self, node: &str) -> Hlc {
        if self.counter < MAX_COUNTER {
            Hlc::new(self.wall, self.counter + 1, node)
        } else {
            Hlc::new(self.wall.saturating_add(1).min(MAX_WALL), 0, node)
        }
    }

    /// This stamp with its wall clamped to `max_wall` (keeping node; the counter restarts so
    /// the clamped stamp is the earliest at that millisecond for this node).
    pub fn clamped(&self, max_wall: u64) -> Hlc {
        if self.wall <= max_wall {
            self.clone()
        } else {
            Hlc::new(max_wall, 0, self.node.clone())
        }
    }
}

fn valid_node(node: &str) -> bool {
    !node.is_empty()
        && node.len() <= 64
        && node
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:015}-{:05}-{}", self.wall, self.counter, self.node)
    }
}

impl FromStr for Hlc {
    type Err = HlcParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || HlcParseError(s.chars().take(100).collect());
        let bytes = s.as_bytes();
        // Fixed widths: 15 digits, '-', 5 digits, '-', node.
        if bytes.len() < 23 || bytes[15] != b'-' || bytes[21] != b'-' {
            return Err(err());
        }
        let (wall, counter, node) = (&s[..15], &s[16..21], &s[22..]);
        if !wall.bytes().all(|b| b.is_ascii_digit()) || !counter.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        if !valid_node(node) {
            return Err(err());
        }
        Ok(Hlc {
            wall: wall.parse().map_err(|_| err())?,
            counter: counter.parse().map_err(|_| err())?,
            node: node.to_string(),
        })
    }
}

impl Serialize for Hlc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hlc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// The clock state of one node. Persist `(last_wall, last_counter)` to keep stamps monotone
/// across restarts (the replica stores it in the same transaction as each write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HlcClock {
    node: String,
    last_wall: u64,
    last_counter: u32,
}

impl HlcClock {
    pub fn new(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            last_wall: 0,
            last_counter: 0,
        }
    }

    /// Restore a persisted clock.
    pub fn restore(node: impl Into<String>, last_wall: u64, last_counter: u32) -> Self {
        Self {
            node: node.into(),
            last_wall: last_wall.min(MAX_WALL),
            last_counter: last_counter.min(MAX_COUNTER),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn state(&self) -> (u64, u32) {
        (self.last_wall, self.last_counter)
    }

    /// The last stamp issued or observed, as this node.
    pub fn last(&self) -> Hlc {
        Hlc::new(self.last_wall, self.last_counter, self.node.clone())
    }

    fn advance(&mut self, wall: u64, counter: u32) -> Hlc {
        let (wall, counter) = if counter > MAX_COUNTER {
            (wall.saturating_add(1), 0)
        } else {
            (wall, counter)
        };
        self.last_wall = wall.min(MAX_WALL);
        self.last_counter = counter;
        self.last()
    }

    /// Stamp a local event (send rule) at physical time `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        if now_ms > self.last_wall {
            self.advance(now_ms, 0)
        } else {
            self.advance(self.last_wall, self.last_counter + 1)
        }
    }

    /// Fold a remote stamp into the clock (receive rule) at physical time `now_ms`; returns the
    /// new local stamp, greater than both the remote one and everything before.
    pub fn observe(&mut self, remote: &Hlc, now_ms: u64) -> Hlc {
        let wall = now_ms.max(self.last_wall).max(remote.wall);
        let counter = if wall == self.last_wall && wall == remote.wall {
            self.last_counter.max(remote.counter) + 1
        } else if wall == self.last_wall {
            self.last_counter + 1
        } else if wall == remote.wall {
            remote.counter + 1
        } else {
            0
        };
        self.advance(wall, counter)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_form_matches_contract() {
        let h = Hlc::new(1_795_249_800_123, 0, "0193a2c4-0000-7000-8000-000000000001");
        assert_eq!(
            h.to_string(),
            "001795249800123-00000-0193a2c4-0000-7000-8000-000000000001"
        );
        assert_eq!(h.to_string().parse::<Hlc>().unwrap(), h);
        for bad in [
            "",
            "1-2-3",
            "00179524980012-00000-a",
            "001795249800123-0000a-x",
            "001795249800123-00000-",
            "001795249800123-00000-Node",
        ] {
            assert!(bad.parse::<Hlc>().is_err(), "{bad}");
        }
    }

    #[test]
    fn counter_overflow_moves_the_wall() {
        let mut c = HlcClock::restore("a", 100, MAX_COUNTER);
        let h = c.tick(50);
        assert_eq!((h.wall, h.counter), (101, 0));
        let s = Hlc::new(7, MAX_COUNTER, "a").successor("b");
        assert_eq!((s.wall, s.counter, s.node.as_str()), (8, 0, "b"));
    }

    #[test]
    fn clock_behind_still_moves_forward_after_observe() {
        let mut phone = HlcClock::new("p");
        let server = Hlc::new(2_000_000, 5, "server");
        let seen = phone.observe(&server, 1_000_000);
        assert!(seen > server);
        let next = phone.tick(1_000_001);
        assert!(next > seen);
    }

    fn node() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,8}"
    }

    proptest! {
        #[test]
        fn lexical_order_is_clock_order(a in 0..=MAX_WALL, ac in 0..=MAX_COUNTER, an in node(),
                                        b in 0..=MAX_WALL, bc in 0..=MAX_COUNTER, bn in node()) {
            let x = Hlc::new(a, ac, an);
            let y = Hlc::new(b, bc, bn);
            prop_assert_eq!(x.cmp(&y), x.to_string().cmp(&y.to_string()));
            prop_assert_eq!(x.to_string().parse::<Hlc>().unwrap(), x);
        }

        #[test]
        fn stamps_are_strictly_increasing(events in proptest::collection::vec((0u64..3_000, any::<bool>(), 0u64..3_000, 0..=MAX_COUNTER), 1..200)) {
            let mut clock = HlcClock::new("n");
            let mut prev: Option<Hlc> = None;
            for (now, receive, rwall, rcounter) in events {
                let stamp = if receive {
                    let remote = Hlc::new(rwall, rcounter, "r");
                    let s = clock.observe(&remote, now);
                    prop_assert!(s > remote);
                    s
                } else {
                    clock.tick(now)
                };
                prop_assert!(stamp.counter <= MAX_COUNTER);
                if let Some(p) = &prev { prop_assert!(&stamp > p); }
                prev = Some(stamp);
            }
        }
    }
}
