//! Calendar arithmetic and the timestamp formats the vendors print.
//!
//! The emulators keep times as epoch milliseconds and dates as days since 1970-01-01;
//! this module converts them to HubSpot's `2026-11-24T10:30:00.123Z` and Salesforce's
//! `2026-11-24T10:30:00.000+0000`, and parses what clients send back. The calendar is
//! chrono's.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};

pub(crate) const DAY_MS: i64 = 86_400_000;

/// `NaiveDate::num_days_from_ce` of 1970-01-01.
const UNIX_EPOCH_CE_DAYS: i64 = 719_163;

fn naive(days: i64) -> Option<NaiveDate> {
    i32::try_from(days + UNIX_EPOCH_CE_DAYS)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt)
}

fn day_number(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce()) - UNIX_EPOCH_CE_DAYS
}

/// (year, month, day) of a day number (1970-01-01 for days beyond chrono's range).
pub(crate) fn civil(days: i64) -> (i64, u32, u32) {
    let d = naive(days).unwrap_or_default();
    (i64::from(d.year()), d.month(), d.day())
}

/// Day number of a calendar date, `None` when it does not exist.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day).map(day_number)
}

/// `YYYY-MM-DD`.
pub(crate) fn date_string(days: i64) -> String {
    naive(days).unwrap_or_default().to_string()
}

fn utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// HubSpot's datetime: `2026-11-24T10:30:00.123Z`.
pub(crate) fn iso_utc(ms: i64) -> String {
    utc(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Salesforce's datetime: `2026-11-24T10:30:00.000+0000`.
pub(crate) fn sf_datetime(ms: i64) -> String {
    let mut text = iso_utc(ms);
    text.pop(); // the `Z`
    text.push_str("+0000");
    text
}

/// Parses `YYYY-MM-DD` to a day number.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    // chrono alone would also take `2026-1-5`: the vendors' dates are zero-padded.
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(day_number)
}

/// Parses an ISO-8601 datetime (`2026-01-01T00:00:00Z`, `...00.000Z`, `...+0000`, `...+02:00`)
/// to epoch milliseconds.
pub(crate) fn parse_datetime(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|at| at.timestamp_millis())
}

/// Wall-clock epoch milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Hands out modification timestamps for writes: never before the seeded world's last
/// stamp (so a seeded `as_of` in the future cannot make a fresh edit look older than the
/// seed) and strictly increasing (so watermarks never see two writes at one instant
/// unless they are one write).
#[derive(Debug)]
pub(crate) struct WriteClock {
    last: AtomicI64,
}

impl WriteClock {
    pub(crate) fn starting_after(ms: i64) -> Self {
        WriteClock {
            last: AtomicI64::new(ms),
        }
    }

    pub(crate) fn next(&self) -> i64 {
        let now = now_ms();
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let next = now.max(prev + 1);
            match self
                .last
                .compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let ms = parse_datetime("2026-11-24T10:30:05.123Z").unwrap();
        assert_eq!(iso_utc(ms), "2026-11-24T10:30:05.123Z");
        assert_eq!(sf_datetime(ms), "2026-11-24T10:30:05.123+0000");
        assert_eq!(parse_datetime("2026-11-24T12:30:05.123+02:00"), Some(ms));
        assert_eq!(parse_datetime("2026-11-24T10:30:05.123+0000"), Some(ms));
        assert_eq!(
            parse_date("2026-11-24").map(date_string).as_deref(),
            Some("2026-11-24")
        );
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(parse_datetime("2026-11-24"), None);
    }

    #[test]
    fn write_clock_is_strictly_increasing_and_after_the_seed() {
        let far = now_ms() + DAY_MS;
        let clock = WriteClock::starting_after(far);
        let a = clock.next();
        assert!(a > far);
        assert!(clock.next() > a);
    }
}
