//! Calendar dates as days since 1970-01-01, enough for renewal arithmetic.

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (time parts after `T` are ignored).
pub(crate) fn parse(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.split(['T', ' ']).next()?;
    let mut parts = s.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(from_civil(y, m, d))
}

/// `YYYY-MM-DD` of a day number.
pub(crate) fn format(days: i64) -> String {
    let (y, m, d) = to_civil(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `months` after `days`, the day clamped to the month's length, minus one day: the
/// Salesforce convention (a 12-month contract from 2025-01-01 ends 2025-12-31).
pub(crate) fn end_of_term(start: i64, months: i64) -> i64 {
    let (y, m, d) = to_civil(start);
    let total = y * 12 + (m - 1) + months;
    let (y2, m2) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    from_civil(y2, m2, d.min(days_in_month(y2, m2))) - 1
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil-date algorithms.
fn from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

fn to_civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_invalid_ones_are_refused() {
        for s in ["1970-01-01", "2024-02-29", "2026-11-24", "2100-12-31"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
        assert_eq!(parse("1970-01-02"), Some(1));
        assert_eq!(parse("2026-11-24T10:00:00Z"), parse("2026-11-24"));
        for bad in ["2025-02-29", "2026-13-01", "24/11/2026", "2026-11", ""] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn terms_end_the_day_before_the_anniversary() {
        let end = |s: &str, m| format(end_of_term(parse(s).unwrap(), m));
        assert_eq!(end("2025-01-01", 24), "2026-12-31");
        assert_eq!(
            end("2025-01-31", 1),
            "2025-02-27",
            "clamped to February's length, minus a day"
        );
        assert_eq!(end("2024-03-15", 12), "2025-03-14");
    }
}
