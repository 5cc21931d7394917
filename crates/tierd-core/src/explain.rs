//! Explanations: why an account scored what it did, per criterion and in a seller's words.
//!
//! Each criterion's *contribution* (share × points) sums to the score; its *impact*
//! (share × (points − neutral)) says how far it pulled the score up or down and
//! ranks the reasons. Reason texts are built from the criterion's label and the
//! value that earned the points: `uses Snowflake (+0.6)`, `no demo request in 90 days (-0.3)`.

use std::cmp::Ordering;
use std::fmt::{self, Write as _};
use std::sync::OnceLock;

use crate::date::Date;
use crate::decimal::{push_fixed, round_half_even};
use crate::fact::FactValue;
use crate::model::{Criterion, FactRow, FactSource, Model, Rule};
use crate::score::{happened, ScoreCard};

/// One reason, with its signed impact on the score.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reason {
    /// Words a seller reads.
    pub text: String,
    /// Points above (+) or below (-) neutral this reason moved the score.
    pub impact: f32,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:+.1})", self.text, self.impact)
    }
}

/// One criterion's line in an explanation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CriterionLine {
    /// Criterion name.
    pub criterion: String,
    /// Its component.
    pub component: String,
    /// The fact it read.
    pub fact: String,
    /// The fact's value, as text (`None`: unknown).
    pub value: Option<String>,
    /// Points earned (an unknown fact earns the criterion's blank points).
    pub points: f32,
    /// Share of the total weight.
    pub share: f32,
    /// share × points: sums to the score.
    pub contribution: f32,
    /// share × (points − neutral).
    pub impact: f32,
    /// The reason in words.
    pub reason: String,
}

/// A component's line in an explanation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ComponentLine {
    /// Component name.
    pub component: String,
    /// Sub-score, `None` when nothing in it could be scored.
    pub score: Option<f32>,
    /// Its configured weight.
    pub weight: f32,
}

/// The full breakdown of one score.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Explanation {
    /// `name@version` of the model.
    pub model: String,
    /// The score.
    pub score: f32,
    /// Its coverage.
    pub coverage: f32,
    /// Potential annual value estimate.
    pub potential_value: Option<f64>,
    /// Sub-scores.
    pub components: Vec<ComponentLine>,
    /// Every criterion.
    pub criteria: Vec<CriterionLine>,
    /// The strongest reasons up, best first.
    pub positive: Vec<Reason>,
    /// The strongest reasons down, worst first.
    pub negative: Vec<Reason>,
}

/// Reasons whose impact rounds to nothing are left out of summaries.
const MIN_IMPACT: f32 = 0.05;

fn join<'a>(out: &mut String, items: impl Iterator<Item = &'a String>, sep: &str) {
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(item);
    }
}

impl Criterion {
    /// The reason for this criterion's points, in words.
    pub fn reason(&self, value: Option<&FactValue>, as_of: Date) -> String {
        let mut out = String::new();
        self.write_reason(value, as_of, &mut out);
        out
    }

    /// Appends the reason to `out` (the compact explanation writes every account's reasons
    /// into one reused buffer, so this allocates nothing).
    pub fn write_reason(&self, value: Option<&FactValue>, as_of: Date, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = self.write_reason_fmt(value, as_of, out);
    }

    fn write_reason_fmt(&self, value: Option<&FactValue>, as_of: Date, out: &mut String) -> fmt::Result {
        let label = &self.label;
        let Some(value) = value else {
            return match (&self.rule, self.missing) {
                (Rule::RecencyFade { lifespan_days, .. }, _) => {
                    write!(out, "no {label} in {lifespan_days} days")
                }
                (_, crate::model::MissingPolicy::Zero) => {
                    out.push_str("no ");
                    out.push_str(label);
                    Ok(())
                }
                _ => {
                    out.push_str(label);
                    out.push_str(" unknown");
                    Ok(())
                }
            };
        };
        let has = |list: &[String], v: &str| list.iter().any(|x| x.eq_ignore_ascii_case(v));
        match (&self.rule, value) {
            (Rule::AnyOf { values, .. }, FactValue::StringList(list)) => {
                let mut hits = values.iter().filter(|v| has(list, v)).peekable();
                if hits.peek().is_none() {
                    out.push_str("no ");
                    out.push_str(label);
                    return Ok(());
                }
                out.push_str("uses ");
                join(out, hits, ", ");
                Ok(())
            }
            (Rule::AllOf { values, .. }, FactValue::StringList(list)) => {
                let mut missing = values.iter().filter(|v| !has(list, v)).peekable();
                if missing.peek().is_none() {
                    write!(out, "{label}: has ")?;
                    join(out, values.iter(), " + ");
                } else {
                    write!(out, "{label}: lacks ")?;
                    join(out, missing, ", ");
                }
                Ok(())
            }
            (Rule::DaysUntil(_), FactValue::Date(d)) => {
                let days = as_of.days_until(*d);
                out.push_str(label);
                if days >= 0 {
                    out.push_str(" in ");
                    push_int(out, days);
                    out.push_str(" days");
                } else {
                    out.push_str(" passed ");
                    push_int(out, -i64::from(days));
                    out.push_str(" days ago");
                }
                Ok(())
            }
            (Rule::RecencyBands(_), FactValue::DateList(dates))
            | (Rule::RecencyFade { .. }, FactValue::DateList(dates)) => match happened(dates, as_of).max() {
                None => {
                    out.push_str("no ");
                    out.push_str(label);
                    Ok(())
                }
                Some(latest) => {
                    let age = latest.days_until(as_of);
                    match (&self.rule, happened(dates, as_of).count()) {
                        (Rule::RecencyFade { lifespan_days, .. }, _) if age as f32 >= *lifespan_days => {
                            write!(out, "no {label} in {lifespan_days} days")
                        }
                        (_, 1) => {
                            out.push_str(label);
                            out.push(' ');
                            push_int(out, age);
                            out.push_str(" days ago");
                            Ok(())
                        }
                        (_, n) => {
                            push_int(out, n);
                            out.push(' ');
                            out.push_str(label);
                            out.push_str("s, latest ");
                            push_int(out, age);
                            out.push_str(" days ago");
                            Ok(())
                        }
                    }
                }
            },
            (Rule::Bool { .. }, FactValue::Bool(b)) => {
                write!(out, "{label}: {}", if *b { "yes" } else { "no" })
            }
            (Rule::Bands(_), FactValue::Number(x)) if x.fract() == 0.0 && x.abs() < 1e15 => {
                out.push_str(label);
                out.push(' ');
                push_int(out, *x as i64);
                Ok(())
            }
            (Rule::Bands(_), FactValue::Number(x)) => write!(out, "{label} {x:.2}"),
            (_, FactValue::String(v)) => {
                out.push_str(label);
                out.push_str(": ");
                out.push_str(v);
                Ok(())
            }
            (_, v) => write!(out, "{label}: {v}"),
        }
    }

    pub(crate) fn value<'a>(
        &self,
        row: &'a FactRow,
        potential: Option<&'a FactValue>,
    ) -> Option<&'a FactValue> {
        match self.source {
            FactSource::Slot(slot) => row.get(slot),
            FactSource::PotentialValue => potential,
        }
    }
}

/// The order of reasons: strongest up first, strongest down last, ties in criterion order.
fn ranking(a: &(f32, usize), b: &(f32, usize)) -> Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// A whole number as `Display` writes it, without `core::fmt` (reasons are written for
/// every account of a file).
fn push_int(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

impl Model {
    /// The full breakdown of `card`, which must be this model's score of `row` on `as_of`.
    pub fn explain(&self, row: &FactRow, card: &ScoreCard, as_of: Date) -> Explanation {
        let potential = card.potential_value.map(FactValue::Number);
        let criteria: Vec<CriterionLine> = self
            .criteria
            .iter()
            .zip(&card.criteria)
            .map(|(c, o)| {
                let value = c.value(row, potential.as_ref());
                CriterionLine {
                    criterion: c.name.clone(),
                    component: self.components[c.component].name.clone(),
                    fact: c.fact.to_string(),
                    value: value.map(ToString::to_string),
                    points: o.points,
                    share: o.share,
                    contribution: o.contribution(),
                    impact: o.impact(self.neutral_points),
                    reason: c.reason(value, as_of),
                }
            })
            .collect();
        let ranked = self.rank_reasons(card);
        let reason = |&(impact, i): &(f32, usize)| Reason {
            text: criteria[i].reason.clone(),
            impact,
        };
        let positive = ranked.iter().filter(|r| r.0 > 0.0).map(reason).collect();
        let negative = ranked.iter().rev().filter(|r| r.0 < 0.0).map(reason).collect();
        Explanation {
            model: self.id(),
            score: card.score,
            coverage: card.coverage,
            potential_value: card.potential_value,
            components: self
                .components
                .iter()
                .zip(&card.components)
                .map(|(c, s)| ComponentLine {
                    component: c.name.clone(),
                    score: *s,
                    weight: c.weight,
                })
                .collect(),
            criteria,
            positive,
            negative,
        }
    }

    /// (impact, criterion index) of every criterion that moved the score noticeably, strongest
    /// up first and strongest down last; ties in criterion order. One ranking for every view.
    fn rank_reasons(&self, card: &ScoreCard) -> Vec<(f32, usize)> {
        let mut ranked = vec![(0f32, 0usize); card.criteria.len()];
        let n = self.rank_reasons_into(card, &mut ranked);
        ranked.truncate(n);
        ranked
    }

    /// [`Model::rank_reasons`] into `buf` (as long as the card's criteria); returns how many.
    fn rank_reasons_into(&self, card: &ScoreCard, buf: &mut [(f32, usize)]) -> usize {
        let n = self.notable_into(card, buf);
        buf[..n].sort_unstable_by(ranking);
        n
    }

    /// (impact, criterion index) of every criterion that moved the score noticeably, in
    /// criterion order, into `buf` (as long as the card's criteria); returns how many.
    fn notable_into(&self, card: &ScoreCard, buf: &mut [(f32, usize)]) -> usize {
        let mut n = 0;
        for (i, o) in card.criteria.iter().enumerate() {
            let impact = o.impact(self.neutral_points);
            if impact.abs() >= MIN_IMPACT {
                buf[n] = (impact, i);
                n += 1;
            }
        }
        n
    }

    /// The compact one-line explanation written beside each score: the top `up` reasons up and
    /// `down` reasons down, e.g. `uses Snowflake (+0.6); no demo request in 90 days (-0.3)`.
    /// Appends to `out` so a writer can reuse one buffer for every account.
    pub fn compact_reasons(
        &self,
        row: &FactRow,
        card: &ScoreCard,
        as_of: Date,
        up: usize,
        down: usize,
        out: &mut String,
    ) {
        let potential = card.potential_value.map(FactValue::Number);
        // Models have a few dozen criteria at most: rank on the stack, not the heap (a writer
        // of many accounts keeps its own room instead, [`crate::memo::ScoreMemo`]).
        let mut stack = [0u64; 64];
        let mut heap = Vec::new();
        let buf: &mut [u64] = if card.criteria.len() <= stack.len() {
            &mut stack[..card.criteria.len()]
        } else {
            heap.resize(card.criteria.len(), 0u64);
            &mut heap
        };
        self.compact_reasons_with(card, up, down, out, buf, |i, out| {
            let c = &self.criteria[i];
            c.write_reason(c.value(row, potential.as_ref()), as_of, out);
        });
    }

    /// [`Model::compact_reasons`] with each chosen criterion's reason text written by
    /// `write_reason(criterion index, out)`, which must write what [`Criterion::write_reason`]
    /// writes for the account's value (a memo in front of it, [`crate::memo::ScoreMemo`]). One
    /// ranking and layout for every writer. `buf` is room for the ranking, at least one entry
    /// per criterion; a writer of many accounts keeps it from one to the next (zeroing room on
    /// the stack for every account cost more than the ranking).
    pub(crate) fn compact_reasons_with(
        &self,
        card: &ScoreCard,
        up: usize,
        down: usize,
        out: &mut String,
        buf: &mut [u64],
        mut write_reason: impl FnMut(usize, &mut String),
    ) {
        // The notable reasons as rank keys ([`rank_key`]), those up from the front of `buf`,
        // those down from its back. The first `up` of the ranking are the largest keys up, the
        // last `down` the smallest keys down, picked one at a time (a handful of passes over a
        // few numbers cost less than ranking them all).
        let (mut ups, mut downs) = (0, buf.len());
        for (i, o) in card.criteria.iter().enumerate() {
            let impact = o.impact(self.neutral_points);
            if impact.abs() >= MIN_IMPACT {
                if impact > 0.0 {
                    buf[ups] = rank_key(impact, i);
                    ups += 1;
                } else {
                    downs -= 1;
                    buf[downs] = rank_key(impact, i);
                }
            }
        }
        let (front, back) = buf.split_at_mut(downs);
        let mut written = 0;
        for (keys, take, largest) in [(&mut front[..ups], up, true), (back, down, false)] {
            let mut len = keys.len();
            for _ in 0..take.min(len) {
                let mut best = 0;
                for j in 1..len {
                    if (keys[j] > keys[best]) == largest {
                        best = j;
                    }
                }
                let key = keys[best];
                keys.swap(best, len - 1);
                len -= 1;
                let (impact, i) = from_rank_key(key);
                if written > 0 {
                    out.push_str("; ");
                }
                written += 1;
                write_reason(i, out);
                push_impact(out, impact);
            }
        }
    }
}

/// ` (+0.6)`: a reason's impact as the compact line writes it after the reason, to a tenth.
fn push_impact(out: &mut String, impact: f32) {
    /// Tenths below this many come from the table.
    const TABLED: usize = 100;
    /// Each text of the table, ` (+0.6)`, padded to this width.
    const WIDTH: usize = 8;
    // Built by the writer of the other impacts, one text per tenth and sign: one push per
    // reason instead of four.
    static TABLE: OnceLock<(String, Vec<u8>)> = OnceLock::new();
    let (table, lens) = TABLE.get_or_init(|| {
        let (mut table, mut lens) = (String::new(), Vec::new());
        for sign in [1f32, -1.0] {
            for n in 0..TABLED {
                let start = table.len();
                push_impact_text(&mut table, sign * n as f32 / 10.0);
                lens.push((table.len() - start) as u8);
                table.extend(std::iter::repeat_n(' ', WIDTH - (table.len() - start)));
            }
        }
        (table, lens)
    });
    let tenths = round_half_even(f64::from(impact).abs() * 10.0);
    if impact.is_finite() && tenths < TABLED as f64 {
        let at = tenths as usize + TABLED * usize::from(impact.is_sign_negative());
        let start = at * WIDTH;
        if let Some(text) = table.get(start..start + usize::from(lens[at])) {
            out.push_str(text);
            return;
        }
    }
    push_impact_text(out, impact);
}

/// [`push_impact`] written piece by piece.
fn push_impact_text(out: &mut String, impact: f32) {
    out.push_str(" (");
    push_fixed(out, impact, 1, true);
    out.push(')');
}

/// An impact and its criterion's index as one number that orders as [`ranking`] ranks them
/// (the larger, the earlier): the impact's bits in `f32::total_cmp` order above the index
/// counted down. Keys are distinct (indexes are), so the largest and the smallest are the
/// ends of the ranking exactly.
fn rank_key(impact: f32, i: usize) -> u64 {
    let bits = impact.to_bits();
    let ordered = if bits >> 31 == 1 { !bits } else { bits | 1 << 31 };
    (u64::from(ordered) << 32) | u64::from(u32::MAX - i as u32)
}

/// The impact and criterion index of a [`rank_key`].
fn from_rank_key(key: u64) -> (f32, usize) {
    let ordered = (key >> 32) as u32;
    let bits = if ordered >> 31 == 1 {
        ordered & !(1 << 31)
    } else {
        !ordered
    };
    (f32::from_bits(bits), (u32::MAX - key as u32) as usize)
}

/// The words of a reason text with every number in it (`70`, `0.6`, `1,200`) replaced by `#`:
/// two reasons with the same skeleton name the same criteria in the same order and direction,
/// and differ only in counts (days to a renewal, an impact's last digit).
pub fn reason_skeleton(reason: &str) -> String {
    let chars: Vec<char> = reason.chars().collect();
    let mut out = String::with_capacity(reason.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || (matches!(chars[i], '.' | ',' | '_')
                        && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
            {
                i += 1;
            }
            out.push('#');
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Whether two reason texts say the same thing in substance (see [`reason_skeleton`]).
pub fn same_in_substance(a: &str, b: &str) -> bool {
    a == b || reason_skeleton(a) == reason_skeleton(b)
}

#[cfg(test)]
mod substance_tests {
    use super::*;

    #[test]
    fn counts_inside_reasons_are_not_substance() {
        assert!(same_in_substance(
            "uses Snowflake (+0.6); contract renewal in 70 days (+0.3)",
            "uses Snowflake (+0.6); contract renewal in 69 days (+0.2)"
        ));
        assert!(same_in_substance(
            "1,200 employees (+1.0)",
            "950 employees (+0.9)"
        ));
        // Another criterion, another order or another direction is news.
        assert!(!same_in_substance(
            "uses Snowflake (+0.6); contract renewal in 70 days (+0.3)",
            "contract renewal in 70 days (+0.3); uses Snowflake (+0.6)"
        ));
        assert!(!same_in_substance(
            "contract renewal in 70 days (+0.3)",
            "contract renewal in 70 days (-0.3)"
        ));
        assert!(!same_in_substance(
            "demo request (lifted one tier); uses dbt (+0.4)",
            "uses dbt (+0.4)"
        ));
        assert_eq!(reason_skeleton("v2.5 in 3 days"), "v# in # days");
    }
}

#[cfg(test)]
mod ranking_tests {
    use super::*;
    use crate::score::CriterionOutcome;

    #[test]
    fn impacts_from_the_table_read_as_written_piece_by_piece() {
        let mut x = -12.0f32;
        let mut values = vec![0.0, -0.0, 0.05, -0.05, 0.15, 0.25, -0.25, 9.94, 9.95, -9.95, 9.96];
        values.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e-30]);
        while x <= 12.0 {
            values.push(x);
            x += 0.0125;
        }
        for x in values {
            let (mut table, mut pieces) = (String::new(), String::new());
            push_impact(&mut table, x);
            push_impact_text(&mut pieces, x);
            assert_eq!(table, pieces, "{x}");
        }
        let mut one = String::new();
        push_impact(&mut one, -0.25);
        assert_eq!(one, " (-0.2)");
    }

    #[test]
    fn rank_keys_order_as_the_ranking_and_give_back_impact_and_index() {
        let impacts = [
            -5.0f32,
            -1.25,
            -0.3,
            -0.05,
            -f32::MIN_POSITIVE,
            0.05,
            0.1,
            0.3,
            0.3f32.next_up(),
            2.0,
            5.0,
        ];
        let mut entries = Vec::new();
        for (k, &impact) in impacts.iter().enumerate() {
            for i in [0usize, 1, 7, k, 63, 1000] {
                entries.push((impact, i));
            }
        }
        for a in &entries {
            let (impact, i) = from_rank_key(rank_key(a.0, a.1));
            assert_eq!((impact.to_bits(), i), (a.0.to_bits(), a.1));
            for b in &entries {
                // The larger key ranks earlier.
                assert_eq!(
                    rank_key(b.0, b.1).cmp(&rank_key(a.0, a.1)),
                    ranking(a, b),
                    "{a:?} {b:?}"
                );
            }
        }
    }

    /// The compact line picks its reasons one at a time; it must name exactly the ends of the
    /// full ranking (ties included), which is worked out here by sorting.
    #[test]
    fn the_compact_line_names_the_ends_of_the_full_ranking() {
        let text = include_str!("../../../config/model.toml");
        let model = Model::from_toml(text, "model").expect("the default model");
        let points = [0.0, 1.0, 2.0, 2.5, 3.0, 4.0, 5.0];
        let shares = [0.05, 0.1, 0.2];
        let mut rng = crate::test_rng::Xorshift(0x2545_f491_4f6c_dd1d);
        let mut next = |n: usize| rng.below(n);
        for _ in 0..2000 {
            let n = 1 + next(14);
            let card = ScoreCard {
                criteria: (0..n)
                    .map(|_| CriterionOutcome {
                        points: points[next(points.len())],
                        known: true,
                        share: shares[next(shares.len())],
                    })
                    .collect(),
                ..ScoreCard::default()
            };
            let ranked = model.rank_reasons(&card);
            for up in 0..4 {
                for down in 0..4 {
                    let pos = ranked.iter().filter(|r| r.0 > 0.0).take(up);
                    let neg = ranked.iter().rev().filter(|r| r.0 < 0.0).take(down);
                    let want: Vec<String> = pos
                        .chain(neg)
                        .map(|&(impact, i)| format!("{i} ({impact:+.1})"))
                        .collect();
                    let mut got = String::new();
                    model.compact_reasons_with(
                        &card,
                        up,
                        down,
                        &mut got,
                        &mut vec![0u64; card.criteria.len()],
                        |i, out| out.push_str(&i.to_string()),
                    );
                    assert_eq!(got, want.join("; "), "{card:?} up {up} down {down}");
                }
            }
        }
    }
}
