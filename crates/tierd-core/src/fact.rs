//! Facts: typed values under a `namespace.name`, with where and when they came from.
//!
//! Values are parsed once, at the edge, into the type the scoring model expects
//! ([`FactType::parse`]); scoring then trusts them.

use std::collections::BTreeMap;
use std::fmt;

use crate::date::Date;

/// A fact's name: `namespace.fact`, lower-case ASCII letters, digits and `_`
/// (e.g. `firmographic.employee_count`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct FactName(String);

/// Why a string is not a valid fact name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a fact name: expected 'namespace.fact' in lower-case letters, digits and '_'")]
pub struct FactNameError(pub String);

impl FactName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, FactNameError> {
        let valid_part = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        };
        match name.split_once('.') {
            Some((ns, fact)) if valid_part(ns) && valid_part(fact) => Ok(FactName(name.to_string())),
            _ => Err(FactNameError(name.to_string())),
        }
    }

    /// The full name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the dot.
    pub fn namespace(&self) -> &str {
        self.0.split_once('.').map_or("", |(ns, _)| ns)
    }

    /// The part after the dot, spaced for people: `employee_count` -> `employee count`.
    pub fn label(&self) -> String {
        self.0
            .split_once('.')
            .map_or(self.0.as_str(), |(_, f)| f)
            .replace('_', " ")
    }
}

/// Lets maps keyed by fact name be searched with a plain `&str`, without building a `FactName`.
impl std::borrow::Borrow<str> for FactName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FactName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for FactName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FactName::new(&s).map_err(serde::de::Error::custom)
    }
}

/// The type of a fact's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactType {
    /// A real number (counts, amounts).
    Number,
    /// Free or categorical text.
    String,
    /// `true` / `false`.
    Bool,
    /// An ISO-8601 calendar date.
    Date,
    /// A set of strings (e.g. technologies).
    StringList,
    /// Dates of events (e.g. demo requests), most recent first after parsing.
    DateList,
}

impl fmt::Display for FactType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FactType::Number => "number",
            FactType::String => "string",
            FactType::Bool => "bool",
            FactType::Date => "date",
            FactType::StringList => "string list",
            FactType::DateList => "date list",
        })
    }
}

/// Separator of list items in flat formats (CSV cells, CRM text fields).
pub const LIST_SEPARATOR: char = ';';

/// `raw` without leading and trailing whitespace, as [`str::trim`] gives it, answered from the
/// first and last byte when neither can be whitespace (nearly every cell of a file: readers
/// trim every field of millions of rows).
pub fn trim(raw: &str) -> &str {
    let b = raw.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) if f.is_ascii_graphic() && l.is_ascii_graphic() => raw,
        _ => raw.trim(),
    }
}

/// The items of a list cell: `raw` cut at each [`LIST_SEPARATOR`], as `str::split` cuts it,
/// by a plain scan of its bytes (items are a few bytes long; a vector search per item, which
/// `str::split` makes, costs more than the scan).
fn list_items(raw: &str) -> impl Iterator<Item = &str> {
    const SEPARATOR: u8 = {
        assert!(LIST_SEPARATOR.is_ascii());
        LIST_SEPARATOR as u8
    };
    let mut rest = Some(raw);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.bytes().position(|b| b == SEPARATOR) {
            // An ASCII byte: both cuts are character boundaries.
            Some(i) => {
                rest = Some(&s[i + 1..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

/// `digits` as a number when it is 1 to 15 ASCII digits and nothing else.
fn plain_whole_number(digits: &[u8]) -> Option<f64> {
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut n = 0u64;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(d - b'0');
    }
    // Below 10^15 < 2^53: exact.
    Some(n as f64)
}

/// Why a raw value does not fit a fact's type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a {expected}")]
pub struct FactValueError {
    /// The raw text.
    pub value: String,
    /// The type that was expected.
    pub expected: FactType,
}

impl FactType {
    /// Parses the text form of a value (a CSV cell). Empty text means "no value" and gives `Ok(None)`.
    /// Lists are `;`-separated; blank items are dropped.
    pub fn parse(self, raw: &str) -> Result<Option<FactValue>, FactValueError> {
        let mut value = None;
        self.parse_into(raw, &mut value)?;
        Ok(value)
    }

    /// [`FactType::parse`] into `slot`, reusing the strings and lists already there.
    /// On error `slot` is left empty.
    pub fn parse_into(self, raw: &str, slot: &mut Option<FactValue>) -> Result<(), FactValueError> {
        self.parse_reusing(raw, slot, &mut Spares::default())
    }

    /// [`FactType::parse_into`] keeping what a cell no longer needs in `spares` (the list of a
    /// cell gone blank, the strings a shorter list leaves over) and taking what it needs from
    /// there: a reader that streams millions of rows through one row and one `Spares`
    /// allocates only when a row needs more room than every row before it.
    pub fn parse_reusing(
        self,
        raw: &str,
        slot: &mut Option<FactValue>,
        spares: &mut Spares,
    ) -> Result<(), FactValueError> {
        let raw = trim(raw);
        if raw.is_empty() {
            // A slot already empty (a column blank row after row) is left as it is.
            if let Some(old) = slot.take() {
                spares.keep(old);
            }
            return Ok(());
        }
        let err = |slot: &mut Option<FactValue>, spares: &mut Spares| {
            if let Some(old) = slot.take() {
                spares.keep(old);
            }
            FactValueError {
                value: raw.to_string(),
                expected: self,
            }
        };
        match self {
            FactType::Number => {
                // Plain whole numbers (most cells) are read digit by digit: below 10^15 they
                // are exact in an f64, the value the float parser gives them.
                if let Some(n) = plain_whole_number(raw.as_bytes()) {
                    // Written over the last row's number where there is one: no drop.
                    match slot {
                        Some(FactValue::Number(x)) => *x = n,
                        _ => *slot = Some(FactValue::Number(n)),
                    }
                    return Ok(());
                }
                // Digit separators (`1_200`) are allowed; copy only when there are some.
                let parsed: Result<f64, _> = if raw.as_bytes().contains(&b'_') {
                    raw.replace('_', "").parse()
                } else {
                    raw.parse()
                };
                match parsed {
                    Ok(n) if n.is_finite() => *slot = Some(FactValue::Number(n)),
                    _ => return Err(err(slot, spares)),
                }
            }
            FactType::String => match slot {
                Some(FactValue::String(s)) => {
                    s.clear();
                    s.push_str(raw);
                }
                _ => *slot = Some(FactValue::String(spares.string(raw))),
            },
            FactType::Bool => {
                let b = if ["true", "yes", "1", "y"]
                    .iter()
                    .any(|t| raw.eq_ignore_ascii_case(t))
                {
                    true
                } else if ["false", "no", "0", "n"]
                    .iter()
                    .any(|t| raw.eq_ignore_ascii_case(t))
                {
                    false
                } else {
                    return Err(err(slot, spares));
                };
                *slot = Some(FactValue::Bool(b));
            }
            FactType::Date => match spares.dates.parse(raw) {
                Ok(d) => *slot = Some(FactValue::Date(d)),
                Err(_) => return Err(err(slot, spares)),
            },
            FactType::StringList => {
                if !matches!(slot, Some(FactValue::StringList(_))) {
                    *slot = Some(FactValue::StringList(
                        spares.string_lists.pop().unwrap_or_default(),
                    ));
                }
                let Some(FactValue::StringList(list)) = slot else {
                    unreachable!("just set to a string list")
                };
                let items = list_items(raw).map(trim).filter(|s| !s.is_empty());
                let mut n = 0;
                for item in items {
                    match list.get_mut(n) {
                        Some(s) => {
                            s.clear();
                            s.push_str(item);
                        }
                        None => list.push(spares.string(item)),
                    }
                    n += 1;
                }
                spares.strings.extend(list.drain(n..));
            }
            FactType::DateList => {
                if !matches!(slot, Some(FactValue::DateList(_))) {
                    *slot = Some(FactValue::DateList(spares.date_lists.pop().unwrap_or_default()));
                }
                let Some(FactValue::DateList(dates)) = slot else {
                    unreachable!("just set to a date list")
                };
                dates.clear();
                for item in list_items(raw).map(trim).filter(|s| !s.is_empty()) {
                    match spares.dates.parse(item) {
                        Ok(d) => dates.push(d),
                        Err(_) => return Err(err(slot, spares)),
                    }
                }
                dates.sort_unstable_by(|a, b| b.cmp(a));
            }
        }
        Ok(())
    }
}

/// What a reader keeps from one row to the next for [`FactType::parse_reusing`]: strings,
/// lists of strings (empty) and lists of dates that cells no longer hold, and the dates read
/// so far. Not part of any value: a clone starts with none, any two compare equal, and its
/// debug form gives only how much it holds.
#[derive(Default)]
pub struct Spares {
    strings: Vec<String>,
    string_lists: Vec<Vec<String>>,
    date_lists: Vec<Vec<Date>>,
    dates: DateMemo,
}

/// Dates already read, by their text (`YYYY-MM-DD` only), in a table of [`DATE_MEMO_SLOTS`]
/// where a date's text picks one slot: a file's cells repeat a few thousand days millions of
/// times, and a look-up costs a tenth of reading the date.
#[derive(Debug, Default)]
struct DateMemo {
    /// Per slot: the text's first eight bytes, its last two, and the date; empty until used.
    slots: Vec<(u64, u16, Date)>,
}

/// Slots of a [`DateMemo`].
const DATE_MEMO_SLOTS: usize = 1 << 12;

impl DateMemo {
    /// [`Date::from_str`] of `text`.
    fn parse(&mut self, text: &str) -> Result<Date, crate::date::DateParseError> {
        let b = text.as_bytes();
        let (Some(head), Some(&[t0, t1]), 10) = (b.first_chunk::<8>(), b.get(8..10), b.len()) else {
            return text.parse();
        };
        let (head, tail) = (u64::from_le_bytes(*head), u16::from_le_bytes([t0, t1]));
        if self.slots.is_empty() {
            self.slots = vec![(0, 0, Date::from_days(0)); DATE_MEMO_SLOTS];
        }
        let mixed = (head ^ u64::from(tail).rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let slot = &mut self.slots[(mixed >> (64 - DATE_MEMO_SLOTS.trailing_zeros())) as usize];
        // No date's text is eight zero bytes: an empty slot matches nothing.
        if slot.0 == head && slot.1 == tail && head != 0 {
            return Ok(slot.2);
        }
        let date = text.parse()?;
        *slot = (head, tail, date);
        Ok(date)
    }
}

impl Spares {
    /// Keeps the room of `value`, which a cell no longer holds.
    fn keep(&mut self, value: FactValue) {
        match value {
            FactValue::String(s) => self.strings.push(s),
            FactValue::StringList(mut list) => {
                self.strings.append(&mut list);
                self.string_lists.push(list);
            }
            FactValue::DateList(mut dates) => {
                dates.clear();
                self.date_lists.push(dates);
            }
            FactValue::Number(_) | FactValue::Bool(_) | FactValue::Date(_) => {}
        }
    }

    /// `text` in a kept string when there is one.
    fn string(&mut self, text: &str) -> String {
        match self.strings.pop() {
            Some(mut s) => {
                s.clear();
                s.push_str(text);
                s
            }
            None => text.to_string(),
        }
    }
}

impl fmt::Debug for Spares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spares")
            .field("strings", &self.strings.len())
            .field("string_lists", &self.string_lists.len())
            .field("date_lists", &self.date_lists.len())
            .finish_non_exhaustive()
    }
}

impl Clone for Spares {
    fn clone(&self) -> Spares {
        Spares::default()
    }
}

impl PartialEq for Spares {
    fn eq(&self, _: &Spares) -> bool {
        true
    }
}

/// A fact's value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum FactValue {
    /// A number.
    Number(f64),
    /// Text.
    String(String),
    /// A flag.
    Bool(bool),
    /// A date.
    Date(Date),
    /// A set of strings.
    StringList(Vec<String>),
    /// Event dates, most recent first.
    DateList(Vec<Date>),
}

impl FactValue {
    /// The value's type.
    pub fn fact_type(&self) -> FactType {
        match self {
            FactValue::Number(_) => FactType::Number,
            FactValue::String(_) => FactType::String,
            FactValue::Bool(_) => FactType::Bool,
            FactValue::Date(_) => FactType::Date,
            FactValue::StringList(_) => FactType::StringList,
            FactValue::DateList(_) => FactType::DateList,
        }
    }
}

impl fmt::Display for FactValue {
    /// The flat text form, the inverse of [`FactType::parse`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    write!(f, "{LIST_SEPARATOR}")?;
                }
                write!(f, "{item}")?;
            }
            Ok(())
        }
        match self {
            FactValue::Number(n) => write!(f, "{n}"),
            FactValue::String(s) => f.write_str(s),
            FactValue::Bool(b) => write!(f, "{b}"),
            FactValue::Date(d) => write!(f, "{d}"),
            FactValue::StringList(items) => list(f, items),
            FactValue::DateList(items) => list(f, items),
        }
    }
}

/// One known fact about an account.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Fact {
    /// The value.
    pub value: FactValue,
    /// Who produced it: a plugin name, `crm`, or `file`.
    pub source: String,
    /// When it was observed, when known.
    pub observed_at: Option<Date>,
}

/// Everything known about one account, by fact name.
pub type Facts = BTreeMap<FactName, Fact>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_items_are_cut_as_str_split_cuts_them() {
        let alphabet = ["a", ";", " ", "é", "日", "dbt", ";;", ""];
        let mut rng = crate::test_rng::Xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let mut cell = String::new();
            for _ in 0..rng.below(9) {
                cell.push_str(rng.pick(&alphabet));
            }
            let got: Vec<&str> = list_items(&cell).collect();
            let want: Vec<&str> = cell.split(LIST_SEPARATOR).collect();
            assert_eq!(got, want, "{cell:?}");
        }
    }

    #[test]
    fn whole_numbers_read_digit_by_digit_are_what_the_float_parser_reads() {
        let mut rng = crate::test_rng::Xorshift(0x9e37_79b9_7f4a_7c15);
        let mut texts: Vec<String> = ["0", "7", "00012", "999999999999999", "1000000000000000"]
            .iter()
            .map(ToString::to_string)
            .collect();
        for _ in 0..100_000 {
            let x = rng.next();
            texts.push((x >> (x % 60)).to_string());
        }
        for text in texts {
            let mut slot = None;
            FactType::Number.parse_into(&text, &mut slot).expect("a number");
            let want: f64 = text.parse().expect("a number");
            assert_eq!(slot, Some(FactValue::Number(want)), "{text}");
        }
    }

    #[test]
    fn parse_into_reuses_the_slot_and_matches_parse() {
        let cases = [
            (
                FactType::StringList,
                vec!["Snowflake; dbt ;Segment", "Looker", "", "a;b;c;d"],
            ),
            (
                FactType::DateList,
                vec!["2026-01-02;2026-03-01", "2025-12-31", ""],
            ),
            (FactType::String, vec!["Software", "", "Retail"]),
            (FactType::Number, vec!["1_200", "7", ""]),
            (FactType::Bool, vec!["Yes", "n", ""]),
        ];
        for (ty, texts) in cases {
            let mut slot = None;
            for text in texts {
                ty.parse_into(text, &mut slot).expect("valid");
                assert_eq!(slot, ty.parse(text).expect("valid"), "{ty} from {text:?}");
            }
        }
        let mut slot = Some(FactValue::DateList(vec![]));
        assert!(FactType::DateList
            .parse_into("2026-01-02;soon", &mut slot)
            .is_err());
        assert_eq!(slot, None, "a value that does not parse leaves nothing behind");
    }

    /// A row of cells typed again and again through one `Spares`, as a reader does: every slot
    /// holds what `parse` makes of its cell, whatever the slots held before (longer or shorter
    /// lists, blanks, bad values), and the spares stay within what one row can hold.
    #[test]
    fn cells_typed_through_spares_match_parse_and_the_spares_stay_bounded() {
        let types = [
            FactType::StringList,
            FactType::DateList,
            FactType::String,
            FactType::StringList,
            FactType::DateList,
        ];
        let items = [
            "dbt",
            "Snowflake",
            " Segment ",
            "a-longer-technology-name",
            "",
            "x",
        ];
        let dates = ["2026-01-02", "2025-12-31", " 2026-11-24 ", "soon", ""];
        let mut rng = crate::test_rng::Xorshift(0x2545_f491_4f6c_dd1d);
        let mut next = |n: usize| rng.below(n);
        let mut row: Vec<Option<FactValue>> = vec![None; types.len()];
        let mut spares = Spares::default();
        for _ in 0..5000 {
            for (slot, ty) in row.iter_mut().zip(types) {
                let cell = match ty {
                    FactType::String => items[next(items.len())].to_string(),
                    FactType::DateList => (0..next(4))
                        .map(|_| dates[next(dates.len())])
                        .collect::<Vec<_>>()
                        .join(";"),
                    _ => (0..next(7))
                        .map(|_| items[next(items.len())])
                        .collect::<Vec<_>>()
                        .join(";"),
                };
                let got = ty.parse_reusing(&cell, slot, &mut spares);
                assert_eq!(got, ty.parse(&cell).map(|_| ()), "{ty} {cell:?}");
                assert_eq!(*slot, ty.parse(&cell).ok().flatten(), "{ty} from {cell:?}");
            }
            // Room for one row at most: six items in each list of strings, one string.
            assert!(
                spares.strings.len() <= 13,
                "{} strings kept",
                spares.strings.len()
            );
            assert!(spares.string_lists.len() <= 2 && spares.date_lists.len() <= 2);
        }
        assert_eq!(
            spares.clone(),
            Spares::default(),
            "spares are not part of a value"
        );
        assert!(spares.clone().strings.is_empty());
    }

    /// Dates read through the memo are what `Date::from_str` reads, when a date is new, seen
    /// again, or has lost its slot to another (18k days in 4,096 slots), and errors too.
    #[test]
    fn dates_read_through_the_memo_are_the_parser_s() {
        let mut texts: Vec<String> = (Date::from_days(7_300).days()..Date::from_days(25_567).days())
            .map(|d| Date::from_days(d).to_string())
            .collect();
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-1-01",
            "2026-01-1x",
            "20260101xx",
            "soon",
        ] {
            texts.push(bad.to_string());
        }
        texts.extend(["2026-11-24T10:00:00Z", "2024-02-29", "0000-01-01"].map(String::from));
        let mut memo = DateMemo::default();
        let mut rng = crate::test_rng::Xorshift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3 {
            for i in 0..texts.len() {
                let text = &texts[if i % 2 == 0 { i } else { rng.below(texts.len()) }];
                assert_eq!(memo.parse(text), text.parse::<Date>(), "{text}");
            }
        }
    }

    #[test]
    fn fact_names_need_a_namespace_and_lower_case() {
        assert!(FactName::new("firmographic.employee_count").is_ok());
        for bad in [
            "employee_count",
            "Firmographic.size",
            "a.",
            ".b",
            "a.b-c",
            "a.b.c",
        ] {
            assert!(FactName::new(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn parses_each_type_and_names_the_bad_value() {
        assert_eq!(
            FactType::Number.parse(" 1_200 "),
            Ok(Some(FactValue::Number(1200.0)))
        );
        assert_eq!(FactType::Number.parse(""), Ok(None));
        assert_eq!(
            FactType::Number.parse("12k").map_err(|e| e.to_string()),
            Err("'12k' is not a number".to_string())
        );
        assert_eq!(FactType::Number.parse("NaN").ok(), None);
        assert_eq!(FactType::Bool.parse("Yes"), Ok(Some(FactValue::Bool(true))));
        assert!(FactType::Bool.parse("maybe").is_err());
        assert_eq!(
            FactType::StringList.parse("Snowflake; Segment;;"),
            Ok(Some(FactValue::StringList(vec![
                "Snowflake".into(),
                "Segment".into()
            ])))
        );
        let dates = FactType::DateList.parse("2026-01-01;2026-03-01");
        assert_eq!(
            dates.map(|v| v.map(|v| v.to_string())),
            Ok(Some("2026-03-01;2026-01-01".to_string()))
        );
        assert!(FactType::Date.parse("31/03/2026").is_err());
    }
}
