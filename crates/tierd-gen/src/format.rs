//! Text forms of a row: CSV, JSON Lines and [`FactValue`]s, from one list of cells.

use tierd_core::date::Date;
use tierd_core::fact::{FactValue, LIST_SEPARATOR};

use crate::COLUMNS;

/// One column's value, borrowed from a `SyntheticAccount`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cell<'a> {
    /// No value: an empty CSV cell, an omitted JSON key.
    Empty,
    Text(&'a str),
    Int(u64),
    Bool(bool),
    Date(Date),
    /// Non-empty.
    Texts(&'a [&'static str]),
    /// Non-empty.
    Dates(&'a [Date]),
}

impl Cell<'_> {
    pub(crate) fn to_fact_value(self) -> Option<FactValue> {
        Some(match self {
            Cell::Empty => return None,
            Cell::Text(s) => FactValue::String(s.to_string()),
            Cell::Int(n) => FactValue::Number(n as f64),
            Cell::Bool(b) => FactValue::Bool(b),
            Cell::Date(d) => FactValue::Date(d),
            Cell::Texts(items) => FactValue::StringList(items.iter().map(|s| s.to_string()).collect()),
            Cell::Dates(items) => FactValue::DateList(items.to_vec()),
        })
    }
}

pub(crate) fn csv_header(out: &mut String) {
    for (i, name) in COLUMNS.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_csv_text(out, name);
    }
    out.push('\n');
}

pub(crate) fn csv_row(cells: &[Cell<'_>], out: &mut String) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match *cell {
            Cell::Empty => {}
            Cell::Text(s) => push_csv_text(out, s),
            Cell::Int(n) => push_u64(out, n),
            Cell::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            Cell::Date(d) => push_date(out, d),
            Cell::Texts(items) => {
                // Quote the joined cell as a whole if any item needs it.
                let start = out.len();
                for (j, item) in items.iter().enumerate() {
                    if j > 0 {
                        out.push(LIST_SEPARATOR);
                    }
                    out.push_str(item);
                }
                if needs_csv_quotes(&out[start..]) {
                    let joined = out.split_off(start);
                    push_csv_text(out, &joined);
                }
            }
            Cell::Dates(items) => {
                for (j, &d) in items.iter().enumerate() {
                    if j > 0 {
                        out.push(LIST_SEPARATOR);
                    }
                    push_date(out, d);
                }
            }
        }
    }
    out.push('\n');
}

fn needs_csv_quotes(s: &str) -> bool {
    s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
}

/// RFC 4180: quote a field containing a comma, quote or line break; double inner quotes.
fn push_csv_text(out: &mut String, s: &str) {
    if !needs_csv_quotes(s) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

pub(crate) fn json_row(cells: &[Cell<'_>], out: &mut String) {
    out.push('{');
    let mut first = true;
    for (name, cell) in COLUMNS.iter().zip(cells) {
        if matches!(cell, Cell::Empty) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        push_json_string(out, name);
        out.push(':');
        match *cell {
            Cell::Empty => {}
            Cell::Text(s) => push_json_string(out, s),
            Cell::Int(n) => push_u64(out, n),
            Cell::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            Cell::Date(d) => {
                out.push('"');
                push_date(out, d);
                out.push('"');
            }
            Cell::Texts(items) => {
                out.push('[');
                for (j, item) in items.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    push_json_string(out, item);
                }
                out.push(']');
            }
            Cell::Dates(items) => {
                out.push('[');
                for (j, &d) in items.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    out.push('"');
                    push_date(out, d);
                    out.push('"');
                }
                out.push(']');
            }
        }
    }
    out.push_str("}\n");
}

/// A JSON string literal (RFC 8259 escaping).
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 0xf] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(d as char);
    }
}

/// `YYYY-MM-DD`, the same text as `Date`'s `Display`, without the formatting machinery.
fn push_date(out: &mut String, d: Date) {
    let (y, m, day) = d.ymd();
    if !(0..=9999).contains(&y) {
        use std::fmt::Write;
        let _ = write!(out, "{d}");
        return;
    }
    let y = y as u32;
    for digit in [y / 1000, y / 100 % 10, y / 10 % 10, y % 10] {
        out.push((b'0' + digit as u8) as char);
    }
    out.push('-');
    out.push((b'0' + (m / 10) as u8) as char);
    out.push((b'0' + (m % 10) as u8) as char);
    out.push('-');
    out.push((b'0' + (day / 10) as u8) as char);
    out.push((b'0' + (day % 10) as u8) as char);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_when_needed() {
        let mut s = String::new();
        push_csv_text(&mut s, "Acme, \"Inc\"");
        assert_eq!(s, "\"Acme, \"\"Inc\"\"\"");
        s.clear();
        push_csv_text(&mut s, "Nortek Systems");
        assert_eq!(s, "Nortek Systems");
        s.clear();
        csv_row(&[Cell::Texts(&["a,b", "c"]), Cell::Empty, Cell::Int(0)], &mut s);
        assert_eq!(s, "\"a,b;c\",,0\n");
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        push_json_string(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn numbers_and_dates_match_display() {
        for n in [0, 7, 10, 999, 1_000_000, u64::MAX] {
            let mut s = String::new();
            push_u64(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        for days in [-719_528, -1, 0, 11_017, 20_000, 2_932_896] {
            let d = Date::from_days(days);
            let mut s = String::new();
            push_date(&mut s, d);
            assert_eq!(s, d.to_string());
        }
    }
}
