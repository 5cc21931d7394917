//! Calendar dates as days since 1970-01-01 (UTC, proleptic Gregorian).
//!
//! Scoring only ever needs "how many days between two dates", so a date is an
//! `i32` day number: cheap to copy, compare and subtract in the hot loop. The
//! calendar itself (months, leap years, month arithmetic) is chrono's.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Months, NaiveDate};

/// A calendar day. Parse at the edge with [`Date::from_str`]; format with `Display` (ISO-8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

/// Why a string is not an ISO-8601 date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{input}' is not an ISO-8601 date (expected YYYY-MM-DD)")]
pub struct DateParseError {
    input: String,
}

/// `NaiveDate::num_days_from_ce` of 1970-01-01.
const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

impl Date {
    /// The date `days` days after 1970-01-01.
    pub const fn from_days(days: i32) -> Self {
        Date(days)
    }

    /// Days since 1970-01-01 (negative before).
    pub const fn days(self) -> i32 {
        self.0
    }

    fn from_naive(d: NaiveDate) -> Self {
        Date(d.num_days_from_ce() - UNIX_EPOCH_CE_DAYS)
    }

    /// As chrono's date; days beyond chrono's range (±262,000 years) clamp to its ends.
    fn naive(self) -> NaiveDate {
        self.0
            .checked_add(UNIX_EPOCH_CE_DAYS)
            .and_then(NaiveDate::from_num_days_from_ce_opt)
            .unwrap_or(if self.0 < 0 {
                NaiveDate::MIN
            } else {
                NaiveDate::MAX
            })
    }

    /// The date for a year, month (1..=12) and day (1..=31), or `None` when it does not exist.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Self> {
        NaiveDate::from_ymd_opt(year, month, day).map(Date::from_naive)
    }

    /// The (year, month, day) of this date.
    pub fn ymd(self) -> (i32, u32, u32) {
        let d = self.naive();
        (d.year(), d.month(), d.day())
    }

    /// This date moved by `days` (negative moves back).
    pub const fn add_days(self, days: i32) -> Self {
        Date(self.0 + days)
    }

    /// This date moved by `months` (negative moves back), the day clamped to the length of
    /// the month it lands in (2025-01-31 plus one month is 2025-02-28); `None` past chrono's range.
    pub fn add_months(self, months: i32) -> Option<Self> {
        let d = self.naive();
        let moved = if months >= 0 {
            d.checked_add_months(Months::new(months.unsigned_abs()))
        } else {
            d.checked_sub_months(Months::new(months.unsigned_abs()))
        };
        moved.map(Date::from_naive)
    }

    /// Whole days from `self` to `later` (negative when `later` is earlier).
    pub const fn days_until(self, later: Date) -> i32 {
        later.0 - self.0
    }

    /// The date of a Unix timestamp in seconds (UTC).
    pub const fn from_unix_seconds(secs: i64) -> Self {
        Date(secs.div_euclid(86_400) as i32)
    }
}

impl FromStr for Date {
    type Err = DateParseError;

    /// Accepts `YYYY-MM-DD`, and a full RFC 3339 timestamp whose date part is taken
    /// (CRMs export both).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DateParseError { input: s.to_string() };
        let t = s.trim();
        let b = t.as_bytes();
        // The shape is checked here, the calendar by chrono (which alone would also take
        // `2024-1-1` and signed years).
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        if b.len() < 10
            || b[4] != b'-'
            || b[7] != b'-'
            || !(digits(0..4) && digits(5..7) && digits(8..10))
            || (b.len() > 10 && b[10] != b'T' && b[10] != b' ')
        {
            return Err(err());
        }
        // The digits are checked: read them directly (chrono's format parser costs more than
        // scoring a date, and files hold millions of them).
        let num = |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        Date::from_ymd(num(0..4) as i32, num(5..7), num(8..10)).ok_or_else(err)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether an event dated `event` has happened by `as_of`. One rule for scoring, explanations
/// and engagement overrides: an event dated after the as-of date has not happened, so it
/// neither scores nor lifts ([`crate::model::FactSchema::future_events`] names it for a warning).
pub fn has_happened(event: Date, as_of: Date) -> bool {
    event <= as_of
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn epoch_and_known_dates_round_trip() {
        assert_eq!(Date::from_ymd(1970, 1, 1), Some(Date(0)));
        assert_eq!("2000-03-01".parse::<Date>().map(|d| d.days()), Ok(11_017));
        assert_eq!(Date::from_days(20_000).to_string(), "2024-10-04");
        assert_eq!(
            "2024-02-29".parse::<Date>().map(|d| d.to_string()),
            Ok("2024-02-29".into())
        );
    }

    #[test]
    fn rejects_impossible_and_malformed_dates() {
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "yesterday",
            "2024-01-01x",
            "",
        ] {
            assert!(bad.parse::<Date>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn months_move_by_the_calendar_and_clamp_to_the_month_end() {
        let d = |s: &str| s.parse::<Date>().expect("date");
        assert_eq!(d("2025-01-31").add_months(1), Some(d("2025-02-28")));
        assert_eq!(d("2024-01-31").add_months(1), Some(d("2024-02-29")));
        assert_eq!(d("2025-01-01").add_months(24), Some(d("2027-01-01")));
        assert_eq!(d("2025-03-31").add_months(-1), Some(d("2025-02-28")));
    }

    #[test]
    fn takes_the_date_part_of_a_timestamp() {
        assert_eq!(
            "2026-03-31T23:59:59Z".parse::<Date>(),
            Date::from_ymd(2026, 3, 31).ok_or(DateParseError { input: String::new() })
        );
    }

    proptest! {
        #[test]
        fn ymd_round_trips(days in -1_000_000i32..1_000_000) {
            let d = Date::from_days(days);
            let (y, m, dd) = d.ymd();
            prop_assert_eq!(Date::from_ymd(y, m, dd), Some(d));
            if (0..=9999).contains(&y) {
                prop_assert_eq!(d.to_string().parse::<Date>(), Ok(d));
            }
        }
    }
}
