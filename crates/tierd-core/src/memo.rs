//! A memo in front of the scorer for scoring a whole file: what a list fact earns under the
//! model's `any_of` / `all_of` rules, worked out once per distinct item and per set of rule
//! items held, by the scorer itself, and looked up after that.
//!
//! Owns [`ScoreMemo`]. It is not a second implementation of the rules: the points and reason
//! texts it keeps are the scorer's own ([`Criterion::points_for`], [`Criterion::write_reason`]),
//! and the score and the compact explanation are put together by the same code as
//! [`Model::score_into`] and [`Model::compact_reasons`] (`score_with`, `compact_reasons_with`).
//!
//! Why lists only: matching a list against a set rule compares every item with every rule item
//! case-insensitively (the default model reads one technology list with four rules, 16 items),
//! the most expensive part of scoring. A list's points and reason under such a rule depend only
//! on which of the rule's items it holds, so each distinct item is matched once (a bit per rule
//! item), a list becomes a bit set per rule by or-ing its items' bits, and the bit set indexes
//! the points and reason, computed once on a list holding exactly those rule items. Memoising
//! the other rules (map strings, numbers, dates) by value, or their reason texts, was measured
//! and did not pay: hashing a value cost about what scoring or formatting it does.
//!
//! Distinct items are bounded ([`MAX_ENTRIES`] per list fact); a list with an item past the
//! bound is scored without the memo.

use std::collections::HashMap;

use crate::date::Date;
use crate::fact::FactValue;
use crate::model::{Criterion, FactRow, FactSource, Model, Rule};
use crate::score::{ScoreCard, Weights};

/// Distinct items kept per list fact.
pub const MAX_ENTRIES: usize = 1 << 16;

/// A rule's items are tracked as a bit set indexing a table when there are at most this many.
const MAX_SET_ITEMS: usize = 12;

/// No outcome stored yet.
const EMPTY: u32 = u32::MAX;

/// What a criterion gives one set of rule items held: its points and where its reason is.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    points: Option<f32>,
    reason: (usize, usize),
}

#[derive(Debug)]
struct CriterionMemo {
    /// For a set rule: the list fact in [`ScoreMemo::sets`] and this rule's place among its
    /// rules; `None`: scored without the memo.
    set: Option<(usize, usize)>,
    /// Per set of rule items held (bit i: the rule's i-th item): its outcome, or [`EMPTY`].
    by_items: Vec<u32>,
    outcomes: Vec<Outcome>,
    /// The outcome of the account last scored, when it came from the memo.
    current: Option<usize>,
}

/// A list fact read by set rules: each distinct item once, with the rule items it is.
#[derive(Debug)]
struct SetFact {
    /// The criteria reading it with a set rule, in model order.
    criteria: Vec<usize>,
    /// Item text -> its first place in `masks` (one mask per rule).
    items: HashMap<Box<str>, usize, rustc_hash::FxBuildHasher>,
    /// Per item and rule: which of the rule's items it is (case-insensitively).
    masks: Vec<u16>,
    /// For the account last scored: per rule, the rule items its list holds.
    current: Vec<u16>,
    /// The account `current` is for.
    stamp: u64,
}

/// A memo in front of one model's scorer at one as-of date, for scoring many accounts (one per
/// thread): [`ScoreMemo::score_into`] and [`ScoreMemo::compact_reasons`] give exactly what
/// [`Model::score_into`] and [`Model::compact_reasons`] give.
#[derive(Debug)]
pub struct ScoreMemo<'m> {
    model: &'m Model,
    as_of: Date,
    criteria: Vec<CriterionMemo>,
    sets: Vec<SetFact>,
    /// The model's weights, worked out once.
    weights: Weights,
    /// Reason texts.
    text: String,
    /// Room for ranking an account's reasons: one entry per criterion.
    ranking: Vec<u64>,
    stamp: u64,
    max_entries: usize,
}

/// The items of a set rule, when it is one the memo tracks.
fn set_items(c: &Criterion) -> Option<&[String]> {
    match &c.rule {
        Rule::AnyOf { values, .. } | Rule::AllOf { values, .. } if values.len() <= MAX_SET_ITEMS => {
            Some(values)
        }
        _ => None,
    }
}

impl<'m> ScoreMemo<'m> {
    /// An empty memo for `model` scoring as of `as_of`.
    pub fn new(model: &'m Model, as_of: Date) -> ScoreMemo<'m> {
        ScoreMemo::with_bound(model, as_of, MAX_ENTRIES)
    }

    fn with_bound(model: &'m Model, as_of: Date, max_entries: usize) -> ScoreMemo<'m> {
        let mut sets: Vec<(FactSource, SetFact)> = Vec::new();
        let mut criteria = Vec::with_capacity(model.criteria.len());
        for (i, c) in model.criteria.iter().enumerate() {
            let mut memo = CriterionMemo {
                set: None,
                by_items: Vec::new(),
                outcomes: Vec::new(),
                current: None,
            };
            if let Some(items) = set_items(c) {
                let set = match sets.iter().position(|(s, _)| *s == c.source) {
                    Some(s) => s,
                    None => {
                        sets.push((
                            c.source,
                            SetFact {
                                criteria: Vec::new(),
                                items: HashMap::default(),
                                masks: Vec::new(),
                                current: Vec::new(),
                                stamp: 0,
                            },
                        ));
                        sets.len() - 1
                    }
                };
                let fact = &mut sets[set].1;
                fact.criteria.push(i);
                fact.current.push(0);
                memo.set = Some((set, fact.criteria.len() - 1));
                memo.by_items = vec![EMPTY; 1 << items.len()];
            }
            criteria.push(memo);
        }
        ScoreMemo {
            model,
            as_of,
            criteria,
            sets: sets.into_iter().map(|(_, s)| s).collect(),
            weights: Weights::of(model),
            text: String::new(),
            ranking: vec![0u64; model.criteria.len()],
            stamp: 0,
            max_entries,
        }
    }

    /// The model's score of `row` ([`Model::score_into`]) into `card`.
    pub fn score_into(&mut self, row: &FactRow, card: &mut ScoreCard) {
        self.stamp += 1;
        for m in &mut self.criteria {
            m.current = None;
        }
        let model = self.model;
        // Out of `self` while the points borrow it (moves of two vectors, no copy).
        let weights = std::mem::take(&mut self.weights);
        model.score_with(row, card, &weights, |i, c, value| self.points(i, c, value));
        self.weights = weights;
    }

    /// The compact explanation ([`Model::compact_reasons`]) of `card`, which must be this
    /// memo's last score of `row` ([`ScoreMemo::score_into`]), appended to `out`.
    pub fn compact_reasons(
        &mut self,
        row: &FactRow,
        card: &ScoreCard,
        up: usize,
        down: usize,
        out: &mut String,
    ) {
        let potential = card.potential_value.map(FactValue::Number);
        let model = self.model;
        model.compact_reasons_with(card, up, down, out, &mut self.ranking, |i, out| {
            let c = &model.criteria[i];
            match self.criteria[i].current {
                Some(idx) => {
                    let (a, b) = self.criteria[i].outcomes[idx].reason;
                    out.push_str(&self.text[a..b]);
                }
                None => c.write_reason(c.value(row, potential.as_ref()), self.as_of, out),
            }
        });
    }

    /// The points criterion `i` gives a known `value` (what [`Criterion::points_for`] gives).
    fn points(&mut self, i: usize, c: &Criterion, value: &FactValue) -> Option<f32> {
        let as_of = self.as_of;
        let (Some((set, col)), FactValue::StringList(list)) = (self.criteria[i].set, value) else {
            return c.points_for(value, as_of);
        };
        let Some(held) = self.items_held(set, col, list) else {
            return c.points_for(value, as_of);
        };
        let m = &mut self.criteria[i];
        let idx = match m.by_items[usize::from(held)] {
            EMPTY if m.outcomes.len() >= self.max_entries => return c.points_for(value, as_of),
            EMPTY => {
                // A list holding exactly the rule items this one holds: the same points and
                // reason (both read only which of the rule's items the list holds).
                let items = set_items(c).unwrap_or_default();
                let same = FactValue::StringList(
                    items
                        .iter()
                        .enumerate()
                        .filter(|(b, _)| held & (1 << b) != 0)
                        .map(|(_, v)| v.clone())
                        .collect(),
                );
                let start = self.text.len();
                c.write_reason(Some(&same), as_of, &mut self.text);
                m.outcomes.push(Outcome {
                    points: c.points_for(&same, as_of),
                    reason: (start, self.text.len()),
                });
                m.by_items[usize::from(held)] = (m.outcomes.len() - 1) as u32;
                m.outcomes.len() - 1
            }
            idx => idx as usize,
        };
        m.current = Some(idx);
        m.outcomes[idx].points
    }

    /// For the set rule `col` of list fact `set`: bit b set when `list` holds the rule's b-th
    /// item (case-insensitively), worked out once per account for all the fact's rules. `None`
    /// when the list has an item past the memo's bound.
    fn items_held(&mut self, set: usize, col: usize, list: &[String]) -> Option<u16> {
        let model = self.model;
        let fact = &mut self.sets[set];
        if fact.stamp != self.stamp {
            fact.stamp = self.stamp;
            let n = fact.criteria.len();
            fact.current.iter_mut().for_each(|m| *m = 0);
            for item in list {
                let at = match fact.items.get(item.as_str()) {
                    Some(&at) => at,
                    None if fact.items.len() < self.max_entries => {
                        let at = fact.masks.len();
                        for &ci in &fact.criteria {
                            let items = set_items(&model.criteria[ci]).unwrap_or_default();
                            let mask = items
                                .iter()
                                .enumerate()
                                .filter(|(_, v)| v.eq_ignore_ascii_case(item))
                                .fold(0u16, |m, (b, _)| m | 1 << b);
                            fact.masks.push(mask);
                        }
                        fact.items.insert(item.as_str().into(), at);
                        at
                    }
                    None => {
                        // Not memoised for this account: marked by a stamp no account has.
                        fact.stamp = 0;
                        break;
                    }
                };
                for (held, mask) in fact.current.iter_mut().zip(&fact.masks[at..at + n]) {
                    *held |= mask;
                }
            }
        }
        (fact.stamp == self.stamp).then(|| fact.current[col])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fact::FactType;

    const DEFAULT_MODEL: &str = include_str!("../../../config/model.toml");

    /// Rules as the default model does not use them (fading events, `any_of` without
    /// `per_match`, a map without `otherwise`, bands with gaps, `missing = "zero"` on a list,
    /// potential value from a ratio).
    const OTHER_MODEL: &str = r#"
name = "t"
version = "1"
neutral_points = 2.0
[components.a]
weight = 2
[components.b]
weight = 1
[potential_value]
sources = [{ fact = "crm.expected_acv" }, { fact = "firmographic.annual_revenue", ratio = 0.001 }]
[[criteria]]
name = "industry"
component = "a"
weight = 2
fact = "firmographic.industry"
rule = { map = { "software" = 5, "Retail" = 3.5, "x" = 0.5 } }
[[criteria]]
name = "stack_any"
component = "a"
weight = 1
fact = "technographic.technologies"
missing = "zero"
rule = { any_of = ["dbt", "Snowflake", "snow flake"], points = 4.5, otherwise = 1 }
[[criteria]]
name = "stack_all"
component = "b"
weight = 1
fact = "technographic.technologies"
rule = { all_of = ["dbt", "Fivetran", "Segment"], points = 5, otherwise = 2 }
[[criteria]]
name = "fading"
component = "b"
weight = 3
fact = "engagement.webinars"
rule = { recency = { per_event = 2, lifespan_days = 100 } }
[[criteria]]
name = "recent"
component = "b"
weight = 1
fact = "engagement.demo_requests"
missing = "zero"
rule = { recency = { bands = [{ max = 30, points = 5 }, { min = 30, max = 60, points = 3 }] }, otherwise = 1 }
[[criteria]]
name = "renewal"
component = "b"
weight = 1
fact = "contracts.renewal_date"
rule = { days_until = [{ max = 0, points = 1 }, { min = 0, max = 100, points = 5 }] }
[[criteria]]
name = "flag"
component = "a"
weight = 1
fact = "contracts.is_competitor"
rule = { bool = { true = 0, false = 4 } }
[[criteria]]
name = "value"
component = "a"
weight = 1
fact = "derived.potential_value"
rule = { bands = [{ max = 1000, points = 1 }, { min = 1000, points = 5 }] }
[[criteria]]
name = "size"
component = "b"
weight = 1
fact = "firmographic.employee_count"
rule = { bands = [{ min = 10, max = 100, points = 3 }] }
"#;

    use crate::test_rng::Xorshift as Gen;

    /// The text of a cell for a fact of type `ty`: blanks, mixed case, unknown values, lists
    /// with repeats and blank items, past and future dates, odd numbers.
    fn cell(g: &mut Gen, ty: FactType) -> String {
        if g.next() % 6 == 0 {
            return String::new();
        }
        match ty {
            FactType::String => g
                .pick(&[
                    "Software",
                    "software",
                    "SOFTWARE",
                    "SoftWare",
                    "Retail",
                    "retail ",
                    "Non-profit",
                    "Unknown Industry",
                    "EMEA",
                    "emea",
                    "north america",
                    "APAC",
                    "Latam",
                    "public",
                    "Private",
                    "nonprofit",
                    "x",
                    "Ünïcode",
                ])
                .to_string(),
            FactType::StringList => {
                let n = g.next() % 6;
                (0..n)
                    .map(|_| {
                        g.pick(&[
                            "dbt",
                            "DBT",
                            "Dbt",
                            "Fivetran",
                            "fivetran",
                            "Segment",
                            "Snowflake",
                            "snowflake",
                            "snow flake",
                            "BigQuery",
                            "bigquery",
                            "Redshift",
                            "Databricks",
                            "Hightouch",
                            "census",
                            "RudderStack",
                            "Amplitude",
                            "Mixpanel",
                            "Salesforce",
                            "marketo",
                            "Slack",
                            "HubSpot",
                            " ",
                            "Looker",
                        ])
                    })
                    .collect::<Vec<_>>()
                    .join(";")
            }
            FactType::Number => g
                .pick(&[
                    "0",
                    "1",
                    "3",
                    "5",
                    "19",
                    "20",
                    "49.5",
                    "50",
                    "136",
                    "999",
                    "1000",
                    "20000",
                    "25000",
                    "7900",
                    "-3",
                    "1_200",
                    "0.25",
                    "123456789",
                ])
                .to_string(),
            FactType::Bool => g.pick(&["true", "false", "Yes", "no", "1", "0"]).to_string(),
            FactType::Date => {
                let d = Date::from_days(20_000 + (g.next() % 800) as i32);
                d.to_string()
            }
            FactType::DateList => {
                let n = 1 + g.next() % 4;
                (0..n)
                    .map(|_| Date::from_days(20_250 + (g.next() % 500) as i32).to_string())
                    .collect::<Vec<_>>()
                    .join(";")
            }
        }
    }

    fn rows(model: &Model, n: usize, seed: u64) -> Vec<FactRow> {
        let schema = model.schema();
        let mut g = Gen(seed);
        (0..n)
            .map(|_| {
                let mut row = schema.empty_row();
                for slot in 0..schema.len() {
                    let ty = schema.fact_type(slot);
                    let text = cell(&mut g, ty);
                    row.set(slot, ty.parse(&text).expect("generated cells parse"));
                }
                row
            })
            .collect()
    }

    /// Scores every row with the model and with one memo (twice over, so the second pass
    /// reads what the first stored) and compares cards and explanations.
    fn check(model: &Model, rows: &[FactRow], as_of: Date, bound: usize) {
        let mut memo = ScoreMemo::with_bound(model, as_of, bound);
        let stored = |memo: &ScoreMemo<'_>| memo.criteria.iter().map(|m| m.outcomes.len()).sum::<usize>();
        let mut card = ScoreCard::default();
        for round in 0..2 {
            for (n, row) in rows.iter().enumerate() {
                let want = model.score(row, as_of);
                memo.score_into(row, &mut card);
                assert_eq!(card, want, "round {round}, row {n}: {row:?}");
                for (up, down) in [(3, 2), (64, 64), (0, 1)] {
                    let mut want_text = String::new();
                    model.compact_reasons(row, &want, as_of, up, down, &mut want_text);
                    let mut text = String::new();
                    memo.compact_reasons(row, &card, up, down, &mut text);
                    assert_eq!(text, want_text, "round {round}, row {n}: {row:?}");
                }
            }
            if bound == 0 {
                assert_eq!(stored(&memo), 0);
            } else {
                assert!(stored(&memo) > 0, "the memo was used");
            }
        }
    }

    #[test]
    fn the_memo_scores_and_explains_as_the_model_does() {
        let as_of = Date::from_days(20_600);
        for (text, seed) in [(DEFAULT_MODEL, 7), (OTHER_MODEL, 11)] {
            let model = Model::from_toml(text, "model").expect("model");
            let rows = rows(&model, 4000, seed);
            check(&model, &rows, as_of, MAX_ENTRIES);
            // Past its bound the memo scores without storing: still the same answers.
            check(&model, &rows, as_of, 3);
            check(&model, &rows, as_of, 0);
        }
    }

    #[test]
    fn values_that_differ_only_in_case_keep_their_own_points() {
        let model = Model::from_toml(OTHER_MODEL, "model").expect("model");
        let as_of = Date::from_days(20_600);
        let schema = model.schema();
        let industry = schema.slot("firmographic.industry").expect("slot");
        let stack = schema.slot("technographic.technologies").expect("slot");
        let mut memo = ScoreMemo::new(&model, as_of);
        let mut card = ScoreCard::default();
        for (ind, tech) in [
            ("software", "dbt;Fivetran;segment"),
            ("SOFTWARE", "DBT;fivetran"),
            ("Software", ";"),
            ("Retail", "snow flake;Snowflake;dbt"),
        ] {
            let mut row = schema.empty_row();
            row.set(industry, FactType::String.parse(ind).expect("string"));
            row.set(stack, FactType::StringList.parse(tech).expect("list"));
            memo.score_into(&row, &mut card);
            assert_eq!(card, model.score(&row, as_of), "{ind} / {tech}");
        }
    }
}
