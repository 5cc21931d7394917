//! The scoring model: what a model file says, and the checked, compiled form scoring runs on.
//!
//! A model file (TOML) names criteria `{name, weight, fact, rule}` grouped into
//! components, and how to estimate an account's potential annual value. [`Model::from_toml`]
//! checks all of it and reports every problem with its key path; the compiled
//! [`Model`] resolves fact names to slots of a [`FactSchema`] once, so scoring an
//! account does no name lookups and no allocation beyond its score card.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::config_error::ConfigErrors;
use crate::date::Date;
use crate::fact::{FactName, FactType, FactValue};

/// Points are always within `0..=MAX_POINTS`, and so are scores.
pub const MAX_POINTS: f32 = 5.0;

/// The fact name under which criteria can read the model's potential-value estimate.
pub const POTENTIAL_VALUE_FACT: &str = "derived.potential_value";

// ---------------------------------------------------------------------------
// The file's shape. Everything is `deny_unknown_fields`: a typo is an error, not a silent default.

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    weight: f64,
    #[serde(default)]
    label: Option<String>,
}

/// What a blank (an unknown fact) means for a criterion. Either way the criterion keeps its
/// weight: dropping it would let the known criteria speak for the unknown ones, and an account
/// known only by engagement scored 5.0 (issue 13). So a blank never beats a known value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingPolicy {
    /// `lowest` (the default): the fact is unknown. It scores the lowest points any known value
    /// can earn under the rule ([`Rule::lowest_points`]), and coverage falls.
    #[default]
    Lowest,
    /// `zero`: a blank means none (no visits, no demo request, no technology): it scores exactly
    /// what the value none scores (the number 0, an empty list, `false`) and counts toward
    /// coverage, as a recorded absence is knowledge. Only for rules whose fact has such a value.
    Zero,
}

impl MissingPolicy {
    fn parse(errors: &mut ConfigErrors, path: &str, raw: Option<&str>) -> MissingPolicy {
        match raw {
            None | Some("lowest") => MissingPolicy::Lowest,
            Some("zero") => MissingPolicy::Zero,
            Some("skip") => {
                errors.push(
                    path,
                    "\"skip\" is no longer a policy: it dropped the criterion, so the known facts spoke \
                     for the unknown one and little knowledge could score high. Remove the key (an \
                     unknown fact then scores the rule's lowest points) or write \"zero\" where a blank \
                     means none",
                );
                MissingPolicy::Lowest
            }
            Some(other) => {
                errors.push(
                    path,
                    format!("'{other}' is not a policy (expected \"lowest\" or \"zero\")"),
                );
                MissingPolicy::Lowest
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBand {
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
    points: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValueBand {
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
    value: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecency {
    #[serde(default)]
    bands: Option<Vec<RawBand>>,
    #[serde(default)]
    per_event: Option<f64>,
    #[serde(default)]
    lifespan_days: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoolRule {
    #[serde(rename = "true")]
    when_true: f64,
    #[serde(rename = "false")]
    when_false: f64,
}

/// A rule is a table holding exactly one rule kind plus its options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    bands: Option<Vec<RawBand>>,
    #[serde(default)]
    map: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    any_of: Option<Vec<String>>,
    #[serde(default)]
    all_of: Option<Vec<String>>,
    #[serde(default)]
    days_until: Option<Vec<RawBand>>,
    #[serde(default)]
    recency: Option<RawRecency>,
    #[serde(default)]
    bool: Option<RawBoolRule>,
    /// Points when the value is known but matches no band, key or item.
    #[serde(default)]
    otherwise: Option<f64>,
    /// any_of: points when anything matches (default 5).
    #[serde(default)]
    points: Option<f64>,
    /// any_of: points per matching item, capped at `points`.
    #[serde(default)]
    per_match: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCriterion {
    name: String,
    component: String,
    weight: f64,
    fact: FactName,
    rule: RawRule,
    #[serde(default)]
    missing: Option<String>,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValueSource {
    fact: FactName,
    #[serde(default)]
    bands: Option<Vec<RawValueBand>>,
    #[serde(default)]
    ratio: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPotentialValue {
    sources: Vec<RawValueSource>,
}

// ---------------------------------------------------------------------------
// The compiled form.

/// Index of a fact within a [`FactSchema`].
pub type FactSlot = usize;

/// The facts a model (and policy) reads, with the type each must have.
/// Rows of facts are laid out in this order; see [`FactRow`].
#[derive(Debug, Clone, Default)]
pub struct FactSchema {
    names: Vec<FactName>,
    types: Vec<FactType>,
    index: HashMap<FactName, FactSlot>,
    /// The slots of type [`FactType::DateList`], in slot order: the only ones that hold events.
    date_lists: Vec<FactSlot>,
}

impl FactSchema {
    /// The slot for `name`, adding it if new. Fails when the fact is already required with another type.
    pub fn require(&mut self, name: &FactName, ty: FactType) -> Result<FactSlot, String> {
        if let Some(&slot) = self.index.get(name) {
            let have = self.types[slot];
            return if have == ty {
                Ok(slot)
            } else {
                Err(format!(
                    "fact '{name}' is used as a {have} elsewhere, here as a {ty}"
                ))
            };
        }
        self.names.push(name.clone());
        self.types.push(ty);
        let slot = self.names.len() - 1;
        self.index.insert(name.clone(), slot);
        if ty == FactType::DateList {
            self.date_lists.push(slot);
        }
        Ok(slot)
    }

    /// The slot of a fact, if the schema reads it.
    pub fn slot(&self, name: &str) -> Option<FactSlot> {
        self.index.get(name).copied()
    }

    /// Number of facts.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the schema reads no fact.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The fact at `slot`.
    pub fn name(&self, slot: FactSlot) -> &FactName {
        &self.names[slot]
    }

    /// The type of the fact at `slot`.
    pub fn fact_type(&self, slot: FactSlot) -> FactType {
        self.types[slot]
    }

    /// An empty row for this schema.
    pub fn empty_row(&self) -> FactRow {
        FactRow(vec![None; self.names.len()])
    }

    /// A row from a map of facts (facts the schema does not read are ignored;
    /// a fact of the wrong type is reported by name).
    pub fn row_from(&self, facts: &crate::fact::Facts) -> Result<FactRow, String> {
        let mut row = self.empty_row();
        for (slot, name) in self.names.iter().enumerate() {
            if let Some(fact) = facts.get(name) {
                let ty = fact.value.fact_type();
                let want = self.types[slot];
                // A single date is a one-event list.
                row.0[slot] = Some(match (&fact.value, want) {
                    (FactValue::Date(d), FactType::DateList) => FactValue::DateList(vec![*d]),
                    (v, w) if ty == w => v.clone(),
                    _ => return Err(format!("fact '{name}' is a {ty}, the model reads it as a {want}")),
                });
            }
        }
        Ok(row)
    }
}

impl FactSchema {
    /// The event facts (date lists) of `row` holding events dated after `as_of`. Such events
    /// have not happened: scoring and engagement overrides ignore them
    /// ([`crate::date::has_happened`]); callers log these so a person can fix the source.
    ///
    /// Only the schema's date-list slots are read (a row laid out by this schema holds a list
    /// of dates nowhere else): every account of a file passes here, and most slots hold none.
    pub fn future_events(&self, row: &FactRow, as_of: Date) -> Vec<FutureEvent> {
        let mut out = Vec::new();
        for &slot in &self.date_lists {
            let Some(FactValue::DateList(dates)) = row.get(slot) else {
                continue;
            };
            let name = &self.names[slot];
            let mut future = dates.iter().filter(|d| !crate::date::has_happened(**d, as_of));
            if let Some(&first) = future.next() {
                let (count, latest) = future.fold((1, first), |(n, l), &d| (n + 1, l.max(d)));
                out.push(FutureEvent {
                    fact: name.clone(),
                    count,
                    latest,
                    as_of,
                });
            }
        }
        out
    }
}

/// Events of one fact dated after the as-of date: ignored by scoring and overrides alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FutureEvent {
    /// The fact holding them (e.g. `engagement.demo_requests`).
    pub fact: FactName,
    /// How many.
    pub count: usize,
    /// The latest of them.
    pub latest: Date,
    /// The as-of date they are after.
    pub as_of: Date,
}

impl std::fmt::Display for FutureEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let events = if self.count == 1 { "event" } else { "events" };
        write!(
            f,
            "{}: {} {events} dated after the as-of date {} (latest {}), ignored as not yet happened",
            self.fact, self.count, self.as_of, self.latest
        )
    }
}

/// One account's facts laid out by a [`FactSchema`]: `None` where unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct FactRow(pub Vec<Option<FactValue>>);

impl FactRow {
    /// The value at `slot`, if known.
    pub fn get(&self, slot: FactSlot) -> Option<&FactValue> {
        self.0.get(slot).and_then(Option::as_ref)
    }

    /// Sets the value at `slot`.
    pub fn set(&mut self, slot: FactSlot, value: Option<FactValue>) {
        self.0[slot] = value;
    }
}

/// A numeric range `[min, max)` worth some points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Band {
    /// Inclusive lower bound (`-inf` when open).
    pub min: f64,
    /// Exclusive upper bound (`+inf` when open).
    pub max: f64,
    /// Points (or value, for value bands) for a number in the range.
    pub points: f32,
}

/// How a criterion turns a fact into points.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// Numeric ranges to points.
    Bands(Vec<Band>),
    /// Categorical value (case-insensitive) to points.
    Map(Vec<(String, f32)>),
    /// Points when the list holds any of `values` (or `per_match` points each, capped at `points`).
    AnyOf {
        /// Items looked for.
        values: Vec<String>,
        /// Points on a match (the cap when `per_match` is set).
        points: f32,
        /// Points per matching item.
        per_match: Option<f32>,
    },
    /// Points when the list holds all of `values`; partial matches earn `otherwise`.
    AllOf {
        /// Items required.
        values: Vec<String>,
        /// Points when all are present.
        points: f32,
    },
    /// Days from the scoring date to a date, in bands (negative: the date has passed).
    DaysUntil(Vec<Band>),
    /// Age in days of the most recent event, in bands.
    RecencyBands(Vec<Band>),
    /// Each event is worth `per_event` points, fading linearly to 0 over `lifespan_days`; the sum is capped at 5.
    RecencyFade {
        /// Points of an event that happened today.
        per_event: f32,
        /// Days after which an event is worth nothing.
        lifespan_days: f32,
    },
    /// Points for true and for false.
    Bool {
        /// Points when true.
        when_true: f32,
        /// Points when false.
        when_false: f32,
    },
}

impl Rule {
    /// The type of fact the rule reads.
    pub fn fact_type(&self) -> FactType {
        match self {
            Rule::Bands(_) => FactType::Number,
            Rule::Map(_) => FactType::String,
            Rule::AnyOf { .. } | Rule::AllOf { .. } => FactType::StringList,
            Rule::DaysUntil(_) => FactType::Date,
            Rule::RecencyBands(_) | Rule::RecencyFade { .. } => FactType::DateList,
            Rule::Bool { .. } => FactType::Bool,
        }
    }

    /// The fewest points any known value can earn: `otherwise` counts when some value reaches
    /// it (a string outside the map, a list without the items, a number outside every band).
    /// What an unknown fact scores under `missing = "lowest"`.
    pub fn lowest_points(&self, otherwise: f32) -> f32 {
        let min = |points: &mut dyn Iterator<Item = f32>| points.fold(f32::INFINITY, f32::min);
        let lowest = match self {
            Rule::Bands(bands) | Rule::DaysUntil(bands) => {
                let banded = min(&mut bands.iter().map(|b| b.points));
                if covers_every_number(bands) {
                    banded
                } else {
                    banded.min(otherwise)
                }
            }
            // An empty list (or events past every band) earns `otherwise`.
            Rule::RecencyBands(bands) => min(&mut bands.iter().map(|b| b.points)).min(otherwise),
            Rule::Map(entries) => min(&mut entries.iter().map(|e| e.1)).min(otherwise),
            Rule::AnyOf {
                points, per_match, ..
            } => per_match.map_or(*points, |each| each.min(*points)).min(otherwise),
            Rule::AllOf { points, .. } => points.min(otherwise),
            // No events, or only events past their lifespan.
            Rule::RecencyFade { .. } => 0.0,
            Rule::Bool {
                when_true,
                when_false,
            } => when_true.min(*when_false),
        };
        if lowest.is_finite() {
            lowest
        } else {
            otherwise
        }
    }

    /// The points of the value none (the number 0, an empty list, `false`), what a blank scores
    /// under `missing = "zero"`; `None` for strings and dates, which have no such value.
    pub fn none_points(&self, otherwise: f32) -> Option<f32> {
        match self {
            Rule::Bands(bands) => Some(
                bands
                    .iter()
                    .find(|b| 0.0 >= b.min && 0.0 < b.max)
                    .map_or(otherwise, |b| b.points),
            ),
            Rule::AnyOf { .. } | Rule::AllOf { .. } | Rule::RecencyBands(_) => Some(otherwise),
            Rule::RecencyFade { .. } => Some(0.0),
            Rule::Bool { when_false, .. } => Some(*when_false),
            Rule::Map(_) | Rule::DaysUntil(_) => None,
        }
    }
}

/// Whether sorted, non-overlapping bands leave no number out.
fn covers_every_number(bands: &[Band]) -> bool {
    bands.first().is_some_and(|b| b.min == f64::NEG_INFINITY)
        && bands.last().is_some_and(|b| b.max == f64::INFINITY)
        && bands.windows(2).all(|w| w[0].max == w[1].min)
}

/// Where a criterion's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactSource {
    /// A fact of the account.
    Slot(FactSlot),
    /// The model's own potential-value estimate.
    PotentialValue,
}

/// A weighted component of the score (`fit`, `engagement`, `value`...).
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// Key in the model file.
    pub name: String,
    /// Words for people.
    pub label: String,
    /// Relative weight in the total.
    pub weight: f32,
}

/// One checked criterion.
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    /// Unique name.
    pub name: String,
    /// Words for people, used in reasons ("demo request", "target warehouse").
    pub label: String,
    /// Index into [`Model::components`].
    pub component: usize,
    /// Relative weight within its component (> 0).
    pub weight: f32,
    /// The fact it reads.
    pub fact: FactName,
    /// Where that fact sits.
    pub source: FactSource,
    /// How the fact becomes points.
    pub rule: Rule,
    /// Points for a known value that matches nothing.
    pub otherwise: f32,
    /// What an unknown fact means.
    pub missing: MissingPolicy,
    /// The points an unknown fact scores, by [`Criterion::missing`]: the rule's lowest, or what
    /// the value none scores.
    pub blank_points: f32,
}

/// One way to estimate potential annual value; the first source with data wins.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueSource {
    /// The numeric fact read.
    pub fact: FactName,
    /// Its slot.
    pub slot: FactSlot,
    /// Value bands (`points` holds the value), or none.
    pub bands: Vec<Band>,
    /// Multiplier applied when there are no bands (1 by default).
    pub ratio: f64,
}

/// A checked, compiled scoring model.
#[derive(Debug, Clone)]
pub struct Model {
    /// The model's name.
    pub name: String,
    /// Its version; history records which version scored what.
    pub version: String,
    /// Points counted as neither good nor bad when ranking reasons (default 2.5).
    pub neutral_points: f32,
    /// Components, in name order.
    pub components: Vec<Component>,
    /// Criteria, in file order.
    pub criteria: Vec<Criterion>,
    /// Potential-value sources, in priority order.
    pub potential_value: Vec<ValueSource>,
    schema: FactSchema,
}

const MODEL_KEYS: &[&str] = &[
    "name",
    "version",
    "neutral_points",
    "components",
    "criteria",
    "potential_value",
];

/// Weights are relative: anything within `MIN_WEIGHT..=MAX_WEIGHT` expresses any sensible
/// ratio, and keeps every sum scoring makes finite in `f32` (a weight of 1e308 would be
/// infinite there, and infinite sums give NaN scores).
pub const MIN_WEIGHT: f64 = 1e-6;
/// See [`MIN_WEIGHT`].
pub const MAX_WEIGHT: f64 = 1e6;

fn check_weight(errors: &mut ConfigErrors, path: &str, w: f64) -> f32 {
    if !(MIN_WEIGHT..=MAX_WEIGHT).contains(&w) {
        errors.push(
            path,
            format!("must be within {MIN_WEIGHT}..={MAX_WEIGHT} (weights are relative), found {w}"),
        );
    }
    w as f32
}

fn check_points(errors: &mut ConfigErrors, path: &str, p: f64) -> f32 {
    if !(0.0..=f64::from(MAX_POINTS)).contains(&p) {
        errors.push(path, format!("points must be within 0..=5, found {p}"));
    }
    p as f32
}

/// Checks bands: each `min < max`, points in range, no overlap. Sorted by `min`.
fn compile_bands(errors: &mut ConfigErrors, path: &str, raw: &[RawBand], value_bands: bool) -> Vec<Band> {
    if raw.is_empty() {
        errors.push(path, "needs at least one band");
    }
    let mut bands: Vec<Band> = raw
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let min = b.min.unwrap_or(f64::NEG_INFINITY);
            let max = b.max.unwrap_or(f64::INFINITY);
            for (key, bound) in [("min", min), ("max", max)] {
                if bound.is_nan() {
                    errors.push(format!("{path}[{i}].{key}"), "must be a number, found nan");
                }
            }
            if min >= max {
                errors.push(
                    format!("{path}[{i}]"),
                    format!("min ({min}) must be below max ({max})"),
                );
            }
            let points = if value_bands {
                if !(0.0..=f64::from(f32::MAX)).contains(&b.points) {
                    errors.push(
                        format!("{path}[{i}].value"),
                        format!("must be within 0..={}, found {}", f32::MAX, b.points),
                    );
                }
                b.points as f32
            } else {
                check_points(errors, &format!("{path}[{i}].points"), b.points)
            };
            Band { min, max, points }
        })
        .collect();
    bands.sort_by(|a, b| a.min.total_cmp(&b.min));
    for pair in bands.windows(2) {
        if pair[1].min < pair[0].max {
            errors.push(path, format!("ranges overlap at {}", pair[1].min));
        }
    }
    bands
}

fn compile_rule(errors: &mut ConfigErrors, path: &str, raw: &RawRule) -> Option<Rule> {
    let kinds: Vec<&str> = [
        ("bands", raw.bands.is_some()),
        ("map", raw.map.is_some()),
        ("any_of", raw.any_of.is_some()),
        ("all_of", raw.all_of.is_some()),
        ("days_until", raw.days_until.is_some()),
        ("recency", raw.recency.is_some()),
        ("bool", raw.bool.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
    .collect();
    if kinds.len() != 1 {
        errors.push(
            path,
            format!(
                "needs exactly one rule kind (bands, map, any_of, all_of, days_until, recency, bool), found {}",
                if kinds.is_empty() { "none".to_string() } else { kinds.join(", ") }
            ),
        );
        return None;
    }
    let only_for = |errors: &mut ConfigErrors, key: &str, present: bool, allowed: bool| {
        if present && !allowed {
            errors.push(
                format!("{path}.{key}"),
                format!("does not apply to a {} rule", kinds[0]),
            );
        }
    };
    let is_any_of = raw.any_of.is_some();
    only_for(errors, "per_match", raw.per_match.is_some(), is_any_of);
    only_for(
        errors,
        "points",
        raw.points.is_some(),
        is_any_of || raw.all_of.is_some(),
    );
    let points = raw
        .points
        .map_or(MAX_POINTS, |p| check_points(errors, &format!("{path}.points"), p));
    let list = |errors: &mut ConfigErrors, key: &str, values: &[String]| {
        if values.is_empty() {
            errors.push(format!("{path}.{key}"), "needs at least one value");
        }
        values.to_vec()
    };
    let rule = if let Some(b) = &raw.bands {
        Rule::Bands(compile_bands(errors, &format!("{path}.bands"), b, false))
    } else if let Some(m) = &raw.map {
        if m.is_empty() {
            errors.push(format!("{path}.map"), "needs at least one value");
        }
        let mut seen: HashMap<String, &str> = HashMap::new();
        let entries = m
            .iter()
            .map(|(k, &p)| {
                if let Some(prev) = seen.insert(k.to_lowercase(), k) {
                    errors.push(
                        format!("{path}.map"),
                        format!("'{prev}' and '{k}' are the same value (matching ignores case)"),
                    );
                }
                (k.clone(), check_points(errors, &format!("{path}.map.{k}"), p))
            })
            .collect();
        Rule::Map(entries)
    } else if let Some(v) = &raw.any_of {
        Rule::AnyOf {
            values: list(errors, "any_of", v),
            points,
            per_match: raw
                .per_match
                .map(|p| check_points(errors, &format!("{path}.per_match"), p)),
        }
    } else if let Some(v) = &raw.all_of {
        Rule::AllOf {
            values: list(errors, "all_of", v),
            points,
        }
    } else if let Some(b) = &raw.days_until {
        Rule::DaysUntil(compile_bands(errors, &format!("{path}.days_until"), b, false))
    } else if let Some(r) = &raw.recency {
        let rpath = format!("{path}.recency");
        match (&r.bands, r.per_event, r.lifespan_days) {
            (Some(b), None, None) => {
                Rule::RecencyBands(compile_bands(errors, &format!("{rpath}.bands"), b, false))
            }
            (None, Some(per_event), Some(lifespan)) => {
                if !(lifespan > 0.0 && lifespan <= f64::from(f32::MAX)) {
                    errors.push(
                        format!("{rpath}.lifespan_days"),
                        format!("must be a number of days above 0, found {lifespan}"),
                    );
                }
                Rule::RecencyFade {
                    per_event: check_points(errors, &format!("{rpath}.per_event"), per_event),
                    lifespan_days: lifespan as f32,
                }
            }
            _ => {
                errors.push(
                    rpath,
                    "give either `bands` (age in days to points) or both `per_event` and `lifespan_days` (fading events)",
                );
                return None;
            }
        }
    } else if let Some(b) = &raw.bool {
        Rule::Bool {
            when_true: check_points(errors, &format!("{path}.bool.true"), b.when_true),
            when_false: check_points(errors, &format!("{path}.bool.false"), b.when_false),
        }
    } else {
        return None;
    };
    Some(rule)
}

impl Model {
    /// Reads and checks a model file. `prefix` starts every error path (e.g. `model`).
    pub fn from_toml(text: &str, prefix: &str) -> Result<Model, ConfigErrors> {
        let mut errors = ConfigErrors::default();
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                errors.push(prefix, format!("not valid TOML: {}", e.to_string().trim()));
                return Err(errors);
            }
        };
        for key in table.keys() {
            if !MODEL_KEYS.contains(&key.as_str()) {
                errors.push(
                    format!("{prefix}.{key}"),
                    format!("unknown key (expected one of: {})", MODEL_KEYS.join(", ")),
                );
            }
        }
        let take = |key: &str| table.get(key).cloned();
        let name: Option<String> = match take("name") {
            Some(v) => errors.deserialize(&format!("{prefix}.name"), v),
            None => {
                errors.push(format!("{prefix}.name"), "missing: every model needs a name");
                None
            }
        };
        let version: Option<String> = match take("version") {
            Some(v) => errors.deserialize(&format!("{prefix}.version"), v),
            None => {
                errors.push(
                    format!("{prefix}.version"),
                    "missing: history records which version scored what",
                );
                None
            }
        };
        let neutral_points = take("neutral_points")
            .and_then(|v| errors.deserialize::<f64>(&format!("{prefix}.neutral_points"), v))
            .map_or(MAX_POINTS / 2.0, |p| {
                check_points(&mut errors, &format!("{prefix}.neutral_points"), p)
            });

        // Components come out in name order (TOML tables are unordered maps).
        let mut components = Vec::new();
        match take("components") {
            Some(toml::Value::Table(t)) => {
                for (cname, v) in t {
                    let path = format!("{prefix}.components.{cname}");
                    if let Some(raw) = errors.deserialize::<RawComponent>(&path, v) {
                        let weight = check_weight(&mut errors, &format!("{path}.weight"), raw.weight);
                        components.push(Component {
                            label: raw.label.unwrap_or_else(|| cname.replace('_', " ")),
                            name: cname,
                            weight,
                        });
                    }
                }
            }
            Some(_) => errors.push(format!("{prefix}.components"), "must be a table of components"),
            None => errors.push(
                format!("{prefix}.components"),
                "missing: declare at least one component, e.g. [components.fit] weight = 1",
            ),
        }

        let mut schema = FactSchema::default();
        let mut potential_value = Vec::new();
        if let Some(v) = take("potential_value") {
            let path = format!("{prefix}.potential_value");
            if let Some(raw) = errors.deserialize::<RawPotentialValue>(&path, v) {
                for (i, s) in raw.sources.iter().enumerate() {
                    let spath = format!("{path}.sources[{i}]");
                    let slot = schema
                        .require(&s.fact, FactType::Number)
                        .map_err(|e| errors.push(format!("{spath}.fact"), e))
                        .unwrap_or(0);
                    let bands = s
                        .bands
                        .as_ref()
                        .map(|b| {
                            let raw: Vec<RawBand> = b
                                .iter()
                                .map(|vb| RawBand {
                                    min: vb.min,
                                    max: vb.max,
                                    points: vb.value,
                                })
                                .collect();
                            compile_bands(&mut errors, &format!("{spath}.bands"), &raw, true)
                        })
                        .unwrap_or_default();
                    if let Some(r) = s.ratio.filter(|r| !r.is_finite()) {
                        errors.push(
                            format!("{spath}.ratio"),
                            format!("must be a finite number, found {r}"),
                        );
                    }
                    if s.bands.is_some() && s.ratio.is_some() {
                        errors.push(&spath, "give `bands` or `ratio`, not both");
                    }
                    potential_value.push(ValueSource {
                        fact: s.fact.clone(),
                        slot,
                        bands,
                        ratio: s.ratio.unwrap_or(1.0),
                    });
                }
            }
        }

        let mut criteria = Vec::new();
        match take("criteria") {
            Some(toml::Value::Array(items)) => {
                let mut names: HashMap<String, usize> = HashMap::new();
                for (i, item) in items.into_iter().enumerate() {
                    let path = format!("{prefix}.criteria[{i}]");
                    let Some(raw) = errors.deserialize::<RawCriterion>(&path, item) else {
                        continue;
                    };
                    if let Some(first) = names.insert(raw.name.clone(), i) {
                        errors.push(
                            format!("{path}.name"),
                            format!("'{}' is already the name of criteria[{first}]", raw.name),
                        );
                    }
                    let component = components.iter().position(|c| c.name == raw.component);
                    if component.is_none() {
                        errors.push(
                            format!("{path}.component"),
                            format!(
                                "'{}' is not a declared component (declared: {})",
                                raw.component,
                                components
                                    .iter()
                                    .map(|c| c.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        );
                    }
                    let weight = check_weight(&mut errors, &format!("{path}.weight"), raw.weight);
                    let otherwise = raw.rule.otherwise.map_or(0.0, |p| {
                        check_points(&mut errors, &format!("{path}.rule.otherwise"), p)
                    });
                    let Some(rule) = compile_rule(&mut errors, &format!("{path}.rule"), &raw.rule) else {
                        continue;
                    };
                    let source = if raw.fact.as_str() == POTENTIAL_VALUE_FACT {
                        if rule.fact_type() != FactType::Number {
                            errors.push(
                                format!("{path}.fact"),
                                format!("{POTENTIAL_VALUE_FACT} is a number: use a bands rule"),
                            );
                        }
                        if potential_value.is_empty() {
                            errors.push(
                                format!("{path}.fact"),
                                format!("{POTENTIAL_VALUE_FACT} needs a [potential_value] section"),
                            );
                        }
                        FactSource::PotentialValue
                    } else {
                        match schema.require(&raw.fact, rule.fact_type()) {
                            Ok(slot) => FactSource::Slot(slot),
                            Err(e) => {
                                errors.push(format!("{path}.fact"), e);
                                continue;
                            }
                        }
                    };
                    let missing =
                        MissingPolicy::parse(&mut errors, &format!("{path}.missing"), raw.missing.as_deref());
                    let blank_points = match missing {
                        MissingPolicy::Lowest => rule.lowest_points(otherwise),
                        MissingPolicy::Zero => match rule.none_points(otherwise) {
                            Some(p) => p,
                            None => {
                                errors.push(
                                    format!("{path}.missing"),
                                    format!(
                                        "\"zero\" means a blank is none, and a {} has no such value: remove the key",
                                        rule.fact_type()
                                    ),
                                );
                                0.0
                            }
                        },
                    };
                    criteria.push(Criterion {
                        label: raw.label.unwrap_or_else(|| raw.fact.label()),
                        name: raw.name,
                        component: component.unwrap_or(0),
                        weight,
                        fact: raw.fact,
                        source,
                        rule,
                        otherwise,
                        missing,
                        blank_points,
                    });
                }
                if criteria.is_empty() && errors.is_empty() {
                    errors.push(format!("{prefix}.criteria"), "needs at least one criterion");
                }
            }
            Some(_) => errors.push(
                format!("{prefix}.criteria"),
                "must be an array of tables ([[criteria]])",
            ),
            None => errors.push(format!("{prefix}.criteria"), "missing: add [[criteria]] entries"),
        }
        for (ci, c) in components.iter().enumerate() {
            if errors.is_empty() && !criteria.iter().any(|k| k.component == ci) {
                errors.push(
                    format!("{prefix}.components.{}", c.name),
                    "has no criteria: remove it or add criteria with this component",
                );
            }
        }
        let model = Model {
            name: name.unwrap_or_default(),
            version: version.unwrap_or_default(),
            neutral_points,
            components,
            criteria,
            potential_value,
            schema,
        };
        errors.into_result(model)
    }

    /// The facts the model reads, in slot order.
    pub fn schema(&self) -> &FactSchema {
        &self.schema
    }

    /// `name@version`, as recorded in outputs and history.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(text: &str) -> Vec<String> {
        match Model::from_toml(text, "model") {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    const HEADER: &str = "name = \"t\"\nversion = \"1\"\n[components.fit]\nweight = 1\n";

    #[test]
    fn future_events_are_read_from_every_date_list_and_nothing_else() {
        let mut schema = FactSchema::default();
        let fact = |n: &str| FactName::new(n).expect("a fact name");
        let slots = [
            ("a.name", FactType::String),
            ("a.visits", FactType::DateList),
            ("a.renewal", FactType::Date),
            ("a.size", FactType::Number),
            ("a.demos", FactType::DateList),
            ("a.calls", FactType::DateList),
        ]
        .map(|(n, t)| schema.require(&fact(n), t).expect("a new fact"));
        let d = |s: &str| s.parse::<Date>().expect("a date");
        let as_of = d("2026-11-24");
        let mut row = schema.empty_row();
        row.0[slots[0]] = Some(FactValue::String("2027-01-01".into()));
        row.0[slots[1]] = Some(FactValue::DateList(vec![
            d("2026-12-01"),
            d("2026-11-01"),
            d("2027-02-03"),
            d("2026-11-25"),
        ]));
        // A single date after the as-of date is a renewal to come, not an event.
        row.0[slots[2]] = Some(FactValue::Date(d("2027-03-01")));
        row.0[slots[3]] = Some(FactValue::Number(20270101.0));
        row.0[slots[4]] = Some(FactValue::DateList(vec![d("2026-11-24"), d("2026-01-01")]));
        row.0[slots[5]] = Some(FactValue::DateList(vec![d("2026-11-30")]));
        let events = schema.future_events(&row, as_of);
        let expected =
            [("a.visits", 3, "2027-02-03"), ("a.calls", 1, "2026-11-30")].map(|(f, count, latest)| {
                FutureEvent {
                    fact: fact(f),
                    count,
                    latest: d(latest),
                    as_of,
                }
            });
        assert_eq!(events, expected);
    }

    #[test]
    fn reports_overlapping_bands_with_their_path() {
        let text = format!(
            "{HEADER}[[criteria]]\nname = \"size\"\ncomponent = \"fit\"\nweight = 1\nfact = \"firmographic.employee_count\"\n\
             [criteria.rule]\nbands = [{{ min = 0, max = 1500, points = 1 }}, {{ min = 1000, points = 5 }}]\n"
        );
        assert_eq!(
            errors_of(&text),
            vec!["model.criteria[0].rule.bands: ranges overlap at 1000"]
        );
    }

    #[test]
    fn reports_every_problem_not_just_the_first() {
        let text = format!(
            "colour = 1\n{HEADER}[[criteria]]\nname = \"a\"\ncomponent = \"fti\"\nweight = -1\nfact = \"x.y\"\n\
             [criteria.rule]\nmap = {{ A = 7 }}\n\
             [[criteria]]\nname = \"b\"\ncomponent = \"fit\"\nwieght = 1\nfact = \"x.z\"\n[criteria.rule]\nbool = {{ true = 1, false = 0 }}\n"
        );
        let errs = errors_of(&text);
        let joined = errs.join("\n");
        assert!(joined.contains("model.colour: unknown key"), "{joined}");
        assert!(
            joined.contains("model.criteria[0].component: 'fti' is not a declared component"),
            "{joined}"
        );
        assert!(
            joined.contains("model.criteria[0].weight: must be within 0.000001..=1000000 (weights are relative), found -1"),
            "{joined}"
        );
        assert!(
            joined.contains("model.criteria[0].rule.map.A: points must be within 0..=5"),
            "{joined}"
        );
        assert!(
            joined.contains("model.criteria[1]: unknown field `wieght`"),
            "{joined}"
        );
    }

    #[test]
    fn rejects_a_fact_used_with_two_types() {
        let text = format!(
            "{HEADER}[[criteria]]\nname = \"a\"\ncomponent = \"fit\"\nweight = 1\nfact = \"x.y\"\n[criteria.rule]\nmap = {{ A = 1 }}\n\
             [[criteria]]\nname = \"b\"\ncomponent = \"fit\"\nweight = 1\nfact = \"x.y\"\n[criteria.rule]\nbands = [{{ min = 0, points = 1 }}]\n"
        );
        assert_eq!(
            errors_of(&text),
            vec!["model.criteria[1].fact: fact 'x.y' is used as a string elsewhere, here as a number"]
        );
    }

    #[test]
    fn a_rule_needs_exactly_one_kind() {
        let text = format!(
            "{HEADER}[[criteria]]\nname = \"a\"\ncomponent = \"fit\"\nweight = 1\nfact = \"x.y\"\n[criteria.rule]\nmap = {{ A = 1 }}\nany_of = [\"A\"]\n"
        );
        let errs = errors_of(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("model.criteria[0].rule: needs exactly one rule kind"),
            "{errs:?}"
        );
    }
}
