//! Calendar arithmetic and the timestamp formats the vendors print.
//!
//! The emulators keep times as epoch milliseconds and dates as days since 1970-01-01;
//! this module converts them to HubSpot's `2026-11-24T10:30:00.123Z` and Salesforce's
//! `2026-11-24T10:30:00.000+0000`, and parses what clients send back.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) const DAY_MS: i64 = 86_400_000;

/// (year, month, day) of a day number (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Day number of a calendar date, `None` when it does not exist.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let len = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > len {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// `YYYY-MM-DD`.
pub(crate) fn date_string(days: i64) -> String {
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02}")
}

fn split_ms(ms: i64) -> (i64, i64, i64, i64, i64) {
    let days = ms.div_euclid(DAY_MS);
    let rest = ms.rem_euclid(DAY_MS);
    (
        days,
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    )
}

/// HubSpot's datetime: `2026-11-24T10:30:00.123Z`.
pub(crate) fn iso_utc(ms: i64) -> String {
    let (days, h, mi, s, milli) = split_ms(ms);
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Salesforce's datetime: `2026-11-24T10:30:00.000+0000`.
pub(crate) fn sf_datetime(ms: i64) -> String {
    let (days, h, mi, s, milli) = split_ms(ms);
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}+0000")
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Parses `YYYY-MM-DD` to a day number.
pub(crate) fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    days_from_civil(
        digits(&s[0..4])?,
        digits(&s[5..7])? as u32,
        digits(&s[8..10])? as u32,
    )
}

/// Parses an ISO-8601 datetime (`2026-01-01T00:00:00Z`, `...00.000Z`, `...+0000`, `...+02:00`)
/// to epoch milliseconds.
pub(crate) fn parse_datetime(s: &str) -> Option<i64> {
    if s.len() < 19 || s.as_bytes()[10] != b'T' {
        return None;
    }
    let days = parse_date(&s[..10])?;
    let t = &s[11..];
    let b = t.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, mi, sec) = (digits(&t[0..2])?, digits(&t[3..5])?, digits(&t[6..8])?);
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &t[8..];
    let mut milli = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let end = frac.find(|c: char| !c.is_ascii_digit()).unwrap_or(frac.len());
        let f = &frac[..end];
        if f.is_empty() {
            return None;
        }
        let padded = format!("{:0<3}", &f[..f.len().min(3)]);
        milli = digits(&padded)?;
        rest = &frac[end..];
    }
    let offset_min = match rest {
        "Z" | "" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let o = rest[1..].replace(':', "");
            if o.len() != 4 {
                return None;
            }
            sign * (digits(&o[0..2])? * 60 + digits(&o[2..4])?)
        }
    };
    Some(days * DAY_MS + ((h * 60 + mi - offset_min) * 60 + sec) * 1000 + milli)
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
