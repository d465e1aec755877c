//! Wall-clock instants and calendar dates as the contract writes them.
//!
//! An instant is kept as milliseconds since the Unix epoch (UTC) and always written as
//! RFC 3339 UTC with exactly three fractional digits (`2026-11-21T08:30:00.123Z`), so the
//! text form is canonical and two replicas holding the same instant export the same bytes.
//! Parsing accepts any RFC 3339 offset and normalises to UTC; sub-millisecond digits are
//! truncated.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// An instant, milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// Earliest and latest instants we accept (years 1970 through 9999): keeps every stored time
/// representable in the 15-digit HLC wall field and in RFC 3339.
const MIN_MS: i64 = 0;
const MAX_MS: i64 = 253_402_300_799_999;

impl Timestamp {
    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    pub fn from_millis(ms: i64) -> Option<Self> {
        (MIN_MS..=MAX_MS).contains(&ms).then_some(Self(ms))
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn to_rfc3339(self) -> String {
        match DateTime::<Utc>::from_timestamp_millis(self.0) {
            Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Millis, true),
            // Unreachable for values built through `from_millis`/`parse`; keep a total
            // function rather than panic across the API boundary.
            None => String::from("1970-01-01T00:00:00.000Z"),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let dt = DateTime::parse_from_rfc3339(s).ok()?;
        Self::from_millis(dt.with_timezone(&Utc).timestamp_millis())
    }

    pub fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms).clamp(MIN_MS, MAX_MS))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl FromStr for Timestamp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| format!("not an RFC 3339 time: {s:?}"))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s)
            .ok_or_else(|| de::Error::custom(format!("not an RFC 3339 time: {s:?}")))
    }
}

/// A calendar date (`YYYY-MM-DD`), used for due dates that have no time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub NaiveDate);

impl Date {
    pub fn parse(s: &str) -> Option<Self> {
        // Exactly the ten-character form, so the text stays canonical.
        if s.len() != 10 {
            return None;
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(Self)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Date::parse(&s).ok_or_else(|| de::Error::custom(format!("not a YYYY-MM-DD date: {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_form_has_millis_and_z() {
        let t = Timestamp::parse("2026-11-21T16:30:00.123+08:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-21T08:30:00.123Z");
        assert_eq!(
            Timestamp::parse("2026-11-21T08:30:00Z")
                .unwrap()
                .to_rfc3339(),
            "2026-11-21T08:30:00.000Z"
        );
        assert!(Timestamp::parse("2026-11-21 08:30").is_none());
        assert!(Timestamp::parse("1969-12-31T23:59:59Z").is_none());
    }

    #[test]
    fn dates_are_strict() {
        assert!(Date::parse("2026-02-29").is_none());
        assert!(Date::parse("2026-2-1").is_none());
        assert_eq!(Date::parse("2028-02-29").unwrap().to_string(), "2028-02-29");
    }

    proptest! {
        #[test]
        fn text_round_trip(ms in MIN_MS..=MAX_MS) {
            let t = Timestamp(ms);
            prop_assert_eq!(Timestamp::parse(&t.to_rfc3339()), Some(t));
        }
    }
}
