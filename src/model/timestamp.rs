//! UTC timestamps as Cinder and Glance exchange them (ISO 8601 strings).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// A point in time, normalised to UTC.
///
/// Parsing accepts ISO 8601 with an offset (`2024-01-01T00:00:00Z`,
/// `2024-01-01T02:00:00+02:00`) or without one, which is read as UTC the way
/// Cinder stores naive UTC datetimes. Comparison and equality are on the
/// instant, so `+02:00` and `Z` spellings of the same moment are equal, as
/// `image/cache.py: _should_update_entry` compares them after converting to
/// UTC.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

/// A timestamp string that is not ISO 8601.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an ISO 8601 timestamp: {value:?}")]
pub struct TimestampError {
    /// The rejected text.
    pub value: String,
}

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(OffsetDateTime::UNIX_EPOCH);

    /// From seconds since the Unix epoch.
    pub fn from_unix(secs: i64) -> Option<Self> {
        OffsetDateTime::from_unix_timestamp(secs).ok().map(Self)
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> i64 {
        self.0.unix_timestamp()
    }

    /// This timestamp plus `secs` seconds (saturating at the representable
    /// range).
    pub fn plus_seconds(self, secs: i64) -> Self {
        self.0.checked_add(time::Duration::seconds(secs)).map(Self).unwrap_or(self)
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || TimestampError { value: s.to_owned() };
        if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
            return Ok(Self(t.to_offset(UtcOffset::UTC)));
        }
        if let Ok(t) = OffsetDateTime::parse(s, &Iso8601::DEFAULT) {
            return Ok(Self(t.to_offset(UtcOffset::UTC)));
        }
        PrimitiveDateTime::parse(s, &Iso8601::DEFAULT).map(|t| Self(t.assume_utc())).map_err(|_| err())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(&Rfc3339) {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "@{}", self.0.unix_timestamp()),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utc_and_offsets_to_the_same_instant() {
        let a: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let b: Timestamp = "2024-01-01T02:00:00+02:00".parse().unwrap();
        let c: Timestamp = "2024-01-01T00:00:00".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.to_string(), "2024-01-01T00:00:00Z");
        assert_eq!(a.plus_seconds(3).to_string(), "2024-01-01T00:00:03Z");
    }

    #[test]
    fn rejects_garbage_with_the_value() {
        let e = "yesterday".parse::<Timestamp>().unwrap_err();
        assert_eq!(e.value, "yesterday");
    }
}
