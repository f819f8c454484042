//! Event time: microseconds since the Unix epoch, UTC, parsed from the many ways
//! Microsoft's exports and our own kinds write a timestamp.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use std::fmt;

/// A point in event time (microseconds since 1970-01-01T00:00:00Z). Serde sees the number
/// (state snapshots are lossless); rows use [`datetime_text`] for ClickHouse's text form.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct EventTime(pub i64);

const MICROS_PER_SEC: i64 = 1_000_000;
/// Microseconds in one day.
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;

impl EventTime {
    /// Parses RFC 3339 (`2022-01-24T05:10:08.6816663Z`, `...+00:00`), and the offset-less
    /// forms real exports carry (`2023-07-24 07:11:51.987224200`, `2025-01-15T09:30:25`),
    /// which are UTC. Returns `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Some(Self::from_chrono(t.with_timezone(&Utc)));
        }
        // Seven or nine fractional digits with a `Z` fail RFC 3339 in chrono only when the
        // separator is a space; try the naive forms next.
        let naive = text.strip_suffix('Z').unwrap_or(text);
        for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(naive, fmt) {
                return Some(Self::from_chrono(Utc.from_utc_datetime(&t)));
            }
        }
        if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return d
                .and_hms_opt(0, 0, 0)
                .map(|t| Self::from_chrono(Utc.from_utc_datetime(&t)));
        }
        None
    }

    fn from_chrono(t: DateTime<Utc>) -> Self {
        Self(t.timestamp_micros())
    }

    /// The UTC day this time falls in (days since the epoch).
    pub fn day(self) -> Day {
        Day(self.0.div_euclid(MICROS_PER_DAY))
    }

    /// Seconds since the epoch.
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(MICROS_PER_SEC)
    }

    /// From seconds since the epoch (JWT `iat`/`exp`).
    pub fn from_unix_seconds(s: i64) -> Self {
        Self(s.saturating_mul(MICROS_PER_SEC))
    }

    /// This time plus a number of seconds.
    pub fn plus_seconds(self, s: i64) -> Self {
        Self(self.0.saturating_add(s.saturating_mul(MICROS_PER_SEC)))
    }
}

/// ClickHouse `DateTime` text form, `YYYY-MM-DD hh:mm:ss` (UTC): what `JSONEachRow` reads on
/// every ClickHouse version, 18.16 included.
impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match DateTime::<Utc>::from_timestamp_micros(self.0) {
            Some(t) => write!(f, "{}", t.format("%Y-%m-%d %H:%M:%S")),
            None => write!(f, "1970-01-01 00:00:00"),
        }
    }
}

/// Serialises an [`EventTime`] as ClickHouse `DateTime` text (`serialize_with`).
pub fn datetime_text<S: serde::Serializer>(t: &EventTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

/// A UTC calendar day, as days since the epoch. Serde sees the number; rows use
/// [`date_text`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Day(pub i64);

impl Day {
    /// Midnight at the start of this day.
    pub fn start(self) -> EventTime {
        EventTime(self.0.saturating_mul(MICROS_PER_DAY))
    }

    /// The day `n` days later (or earlier, for negative `n`).
    pub fn plus(self, n: i64) -> Day {
        Day(self.0 + n)
    }

    /// Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday).
    pub fn weekday(self) -> i64 {
        (self.0 + 3).rem_euclid(7)
    }
}

/// ClickHouse `Date` text form, `YYYY-MM-DD`.
impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match DateTime::<Utc>::from_timestamp(self.0.saturating_mul(86_400), 0) {
            Some(t) => write!(f, "{}", t.format("%Y-%m-%d")),
            None => write!(f, "1970-01-01"),
        }
    }
}

/// Serialises a [`Day`] as ClickHouse `Date` text (`serialize_with`).
pub fn date_text<S: serde::Serializer>(d: &Day, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_real_exports_use() {
        let want = EventTime::parse("2022-01-24T05:10:08Z").unwrap();
        assert_eq!(want.to_string(), "2022-01-24 05:10:08");
        for s in [
            "2022-01-24T05:10:08.6816663Z",
            "2022-01-24T05:10:08.6816663+00:00",
            "2022-01-24 05:10:08.681666300",
            "2022-01-24 05:10:08",
            "2022-01-24T05:10:08",
            "2022-01-24T07:10:08+02:00",
        ] {
            let t = EventTime::parse(s).unwrap_or_else(|| panic!("{s} did not parse"));
            assert_eq!(t.unix_seconds(), want.unix_seconds(), "{s}");
        }
        assert_eq!(
            EventTime::parse("2020-05-01").unwrap().to_string(),
            "2020-05-01 00:00:00"
        );
        assert!(EventTime::parse("yesterday").is_none());
        assert!(EventTime::parse("").is_none());
    }

    #[test]
    fn days_and_weekdays() {
        let t = EventTime::parse("2020-05-01T23:59:59Z").unwrap();
        assert_eq!(t.day().to_string(), "2020-05-01");
        assert_eq!(t.day().weekday(), 4, "2020-05-01 was a Friday");
        assert_eq!(t.day().plus(1).start().to_string(), "2020-05-02 00:00:00");
    }
}
