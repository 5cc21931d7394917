//! The tiering policy: scores of a whole population in, one tier per account out, decided
//! in two steps that every caller (`tierd score`, `tierd explain`, pilots, the daemon) shares.
//!
//! 1. **Per account** ([`TierPolicy::basis`]): thresholds, hysteresis against the tier this
//!    step gave last time (incremental runs), the manual lock, and the engagement window
//!    ([`TierPolicy::engagement_on`]): a [`TierBasis`]. It needs nothing of other accounts,
//!    so it runs where the account is scored and can be stored with it.
//! 2. **Per population** ([`TierPolicy::decide`]): on the run's date, lift an unlocked
//!    account one tier while its engagement window holds, hold it below any tier whose minimum
//!    coverage it lacks ([`TierPolicy::coverage_allows`]), then apply the pyramid caps over
//!    everybody (locked accounts take their seats first, overflow demoted by
//!    [`rank_order`]): the final tier and its [`Decision`]. [`TierPolicy::reason`] renders
//!    the decision in words, the one text every view of a tier shows.
//!
//! [`TierPolicy::assign`] is the two steps in one, for a population known in full. Caps need
//! the whole population, which is why tiering is the one step that does not stream; it only
//! needs a small [`TierMember`] per account.
//!
//! **Locks.** A tier a person locked is never changed: the basis is the lock's tier, and the
//! population step neither lifts nor caps it (it counts toward the caps first). A lock whose
//! tier is unknown (the CRM's lock is set, its tier field empty: [`Lock::Unknown`]) locks the
//! account as `untiered` in both steps alike, as the CRM shows it.
//!
//! **Minimum coverage.** A score resting on little data is not trusted with a high tier: an
//! unlocked account whose coverage is below a tier's `min_coverage` is placed no higher than the
//! best tier its coverage allows, lift included, and its reason says `insufficient data`. It is
//! applied in the population step, from the coverage every [`TierMember`] carries, so a stored
//! basis needs nothing new and every caller agrees.
//!
//! **Engagement.** Of the overrides that fired, the one whose window ends last lifts (the
//! first override on ties), and the reason names that one. An event dated after the as-of
//! date has not happened: it neither scores nor lifts.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::config_error::ConfigErrors;
use crate::date::has_happened;
use crate::date::Date;
use crate::decimal::push_fixed;
use crate::fact::{FactName, FactType, FactValue};
use crate::model::{FactRow, FactSchema, FactSlot, MAX_POINTS};
use crate::points::MilliPoints;

/// A tier. Ordered best first: `Tier1 < Tier2 < Tier3 < Untiered`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// One-to-one attention.
    Tier1,
    /// One-to-few campaigns.
    Tier2,
    /// One-to-many.
    Tier3,
    /// Not targeted.
    Untiered,
}

impl Tier {
    /// All tiers, best first.
    pub const ALL: [Tier; 4] = [Tier::Tier1, Tier::Tier2, Tier::Tier3, Tier::Untiered];

    /// The wire name: `tier_1`, `tier_2`, `tier_3`, `untiered`.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Tier1 => "tier_1",
            Tier::Tier2 => "tier_2",
            Tier::Tier3 => "tier_3",
            Tier::Untiered => "untiered",
        }
    }

    /// One tier up (Tier 1 stays).
    pub fn lifted(self) -> Tier {
        match self {
            Tier::Tier1 | Tier::Tier2 => Tier::Tier1,
            Tier::Tier3 => Tier::Tier2,
            Tier::Untiered => Tier::Tier3,
        }
    }

    /// One tier down (untiered stays).
    pub fn demoted(self) -> Tier {
        match self {
            Tier::Tier1 => Tier::Tier2,
            Tier::Tier2 => Tier::Tier3,
            Tier::Tier3 | Tier::Untiered => Tier::Untiered,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a tier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a tier (expected tier_1, tier_2, tier_3 or untiered)")]
pub struct TierParseError(pub String);

impl FromStr for Tier {
    type Err = TierParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "tier_1" => Ok(Tier::Tier1),
            "tier_2" => Ok(Tier::Tier2),
            "tier_3" => Ok(Tier::Tier3),
            "untiered" => Ok(Tier::Untiered),
            other => Err(TierParseError(other.to_string())),
        }
    }
}

impl serde::Serialize for Tier {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A cap on a tier's size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cap {
    /// At most this many accounts.
    Count(u64),
    /// At most this percentage of the population, rounded down, but at least one seat when
    /// the percentage is above 0 (else a population under 34 accounts could have no Tier 1 at 3%).
    Percent(f64),
}

impl Cap {
    /// The number of accounts allowed in a population of `n`.
    pub fn limit(self, n: usize) -> usize {
        match self {
            Cap::Count(c) => usize::try_from(c).unwrap_or(usize::MAX),
            Cap::Percent(p) => {
                let seats = ((n as f64) * p / 100.0).floor() as usize;
                if p > 0.0 && n > 0 {
                    seats.max(1)
                } else {
                    seats
                }
            }
        }
    }
}

/// A configured engagement signal that lifts an account one tier.
#[derive(Debug, Clone, PartialEq)]
pub struct EngagementOverride {
    /// The date or date-list fact holding the events (e.g. `engagement.demo_requests`).
    pub fact: FactName,
    /// Its slot in the schema.
    pub slot: FactSlot,
    /// How recent the latest event must be.
    pub within_days: u32,
    /// Words for reports ("demo request").
    pub label: String,
}

/// Thresholds, caps, override and hysteresis: the checked policy.
#[derive(Debug, Clone, PartialEq)]
pub struct TierPolicy {
    /// Minimum score for Tier 1, 2 and 3.
    pub thresholds: [f32; 3],
    /// Caps on Tier 1 and Tier 2.
    pub caps: [Option<Cap>; 2],
    /// How far past a threshold a score must go before an account changes tier on an incremental run.
    pub hysteresis_margin: f32,
    /// Signals that lift one tier.
    pub overrides: Vec<EngagementOverride>,
    /// The least coverage (`0..=1`) an account needs for Tier 1, 2 and 3; non-increasing.
    pub min_coverage: [f32; 3],
    /// Caps on Tier 1 and Tier 2 sized from the budget at each run (`tier_1_cap = { budget =
    /// true }`): the caller computes the seats the budget buys for the run's candidates
    /// ([`TierPolicy::candidates`]) and tiers with [`TierPolicy::with_budget_caps`]. Until then
    /// such a cap is `None` in `caps`.
    pub budget_caps: [bool; 2],
}

/// A [`TierPolicy`]'s thresholds, hysteresis margin and coverage minimums in thousandths
/// ([`MilliPoints`]), as scores and coverage are compared with them ([`TierPolicy::lines`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lines {
    thresholds: [i64; 3],
    margin: i64,
    min_coverage: [MilliPoints; 3],
}

impl Lines {
    fn tier_for_milli(&self, milli: i64) -> Tier {
        let [t1, t2, t3] = self.thresholds;
        if milli >= t1 {
            Tier::Tier1
        } else if milli >= t2 {
            Tier::Tier2
        } else if milli >= t3 {
            Tier::Tier3
        } else {
            Tier::Untiered
        }
    }

    fn coverage_allows(&self, coverage: f32) -> Tier {
        let have = MilliPoints::of(coverage);
        self.min_coverage
            .iter()
            .position(|&need| have >= need)
            .map_or(Tier::Untiered, |i| Tier::ALL[i])
    }
}

impl Default for TierPolicy {
    fn default() -> Self {
        TierPolicy {
            thresholds: [4.5, 3.75, 3.0],
            caps: [None, None],
            hysteresis_margin: 0.0,
            overrides: Vec::new(),
            min_coverage: DEFAULT_MIN_COVERAGE,
            budget_caps: [false, false],
        }
    }
}

/// `min_coverage` when not configured: Tier 1 needs most of the model's weight backed by data,
/// Tier 3 at least a fifth (an account known only by engagement has about that).
pub const DEFAULT_MIN_COVERAGE: [f32; 3] = [0.6, 0.4, 0.2];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMinCoverage {
    #[serde(default)]
    tier_1: Option<f64>,
    #[serde(default)]
    tier_2: Option<f64>,
    #[serde(default)]
    tier_3: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCap {
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    percent: Option<f64>,
    /// `true`: sized from `[budget]` at each run.
    #[serde(default)]
    budget: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    fact: FactName,
    within_days: u32,
    #[serde(default)]
    label: Option<String>,
}

/// The `[tiering]` section of `tierd.toml`, as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTierPolicy {
    #[serde(default)]
    tier_1: Option<f64>,
    #[serde(default)]
    tier_2: Option<f64>,
    #[serde(default)]
    tier_3: Option<f64>,
    #[serde(default)]
    tier_1_cap: Option<RawCap>,
    #[serde(default)]
    tier_2_cap: Option<RawCap>,
    #[serde(default)]
    hysteresis_margin: Option<f64>,
    #[serde(default)]
    overrides: Vec<RawOverride>,
    #[serde(default)]
    min_coverage: Option<RawMinCoverage>,
}

impl TierPolicy {
    /// Checks a policy; override facts are added to `schema` so rows carry them.
    pub fn compile(
        raw: &RawTierPolicy,
        schema: &mut FactSchema,
        prefix: &str,
    ) -> Result<TierPolicy, ConfigErrors> {
        let mut errors = ConfigErrors::default();
        let default = TierPolicy::default();
        let mut thresholds = default.thresholds;
        for (i, value) in [raw.tier_1, raw.tier_2, raw.tier_3].into_iter().enumerate() {
            if let Some(v) = value {
                if !(0.0..=f64::from(MAX_POINTS)).contains(&v) {
                    errors.push(
                        format!("{prefix}.tier_{}", i + 1),
                        format!("must be within 0..=5, found {v}"),
                    );
                }
                thresholds[i] = v as f32;
            }
        }
        if !(thresholds[0] >= thresholds[1] && thresholds[1] >= thresholds[2]) {
            errors.push(
                prefix,
                format!(
                    "thresholds must not increase from tier_1 to tier_3, found {} / {} / {}",
                    thresholds[0], thresholds[1], thresholds[2]
                ),
            );
        }
        let mut caps = [None, None];
        let mut budget_caps = [false, false];
        for (i, raw_cap) in [&raw.tier_1_cap, &raw.tier_2_cap].into_iter().enumerate() {
            let path = format!("{prefix}.tier_{}_cap", i + 1);
            caps[i] = match raw_cap {
                None => None,
                Some(RawCap {
                    count: None,
                    percent: None,
                    budget: Some(true),
                }) => {
                    budget_caps[i] = true;
                    None
                }
                Some(RawCap {
                    count: None,
                    percent: None,
                    budget: Some(false),
                }) => None,
                Some(RawCap {
                    count: Some(c),
                    percent: None,
                    budget: None,
                }) => Some(Cap::Count(*c)),
                Some(RawCap {
                    count: None,
                    percent: Some(p),
                    budget: None,
                }) if (0.0..=100.0).contains(p) => Some(Cap::Percent(*p)),
                Some(RawCap {
                    count: None,
                    percent: Some(p),
                    budget: None,
                }) => {
                    errors.push(
                        format!("{path}.percent"),
                        format!("must be within 0..=100, found {p}"),
                    );
                    None
                }
                Some(_) => {
                    errors.push(path, "give exactly one of `count`, `percent` or `budget = true`");
                    None
                }
            };
        }
        let hysteresis_margin = raw.hysteresis_margin.unwrap_or(0.0);
        if !(0.0..=f64::from(MAX_POINTS)).contains(&hysteresis_margin) {
            errors.push(
                format!("{prefix}.hysteresis_margin"),
                format!("must be within 0..=5, found {hysteresis_margin}"),
            );
        }
        let mut min_coverage = default.min_coverage;
        if let Some(m) = &raw.min_coverage {
            for (i, value) in [m.tier_1, m.tier_2, m.tier_3].into_iter().enumerate() {
                if let Some(v) = value {
                    if !(0.0..=1.0).contains(&v) {
                        errors.push(
                            format!("{prefix}.min_coverage.tier_{}", i + 1),
                            format!("must be a share within 0..=1, found {v}"),
                        );
                    }
                    min_coverage[i] = v as f32;
                }
            }
            if !(min_coverage[0] >= min_coverage[1] && min_coverage[1] >= min_coverage[2]) {
                errors.push(
                    format!("{prefix}.min_coverage"),
                    format!(
                        "must not increase from tier_1 to tier_3 (a better tier needs at least as much data), found {} / {} / {}",
                        min_coverage[0], min_coverage[1], min_coverage[2]
                    ),
                );
            }
        }
        let mut overrides = Vec::new();
        for (i, o) in raw.overrides.iter().enumerate() {
            match schema.require(&o.fact, FactType::DateList) {
                Ok(slot) => overrides.push(EngagementOverride {
                    fact: o.fact.clone(),
                    slot,
                    within_days: o.within_days,
                    label: o.label.clone().unwrap_or_else(|| o.fact.label()),
                }),
                Err(e) => errors.push(format!("{prefix}.overrides[{i}].fact"), e),
            }
        }
        errors.into_result(TierPolicy {
            thresholds,
            caps,
            hysteresis_margin: hysteresis_margin as f32,
            overrides,
            min_coverage,
            budget_caps,
        })
    }

    /// Whether a cap is sized from the budget.
    pub fn has_budget_caps(&self) -> bool {
        self.budget_caps.iter().any(|b| *b)
    }

    /// How many accounts qualify for Tier 1, 2 and 3 before the caps: their base tier (score,
    /// hysteresis, lock) lifted by an engagement window that holds on `as_of`. What a budget
    /// sizes its seats for.
    pub fn candidates(&self, members: &[TierMember], as_of: Date) -> [u64; 3] {
        let mut out = [0u64; 3];
        let lines = self.lines();
        for m in members {
            let tier = self.before_caps(&lines, m, as_of).tier;
            if let Some(slot) = out.get_mut(tier.index()) {
                *slot += 1;
            }
        }
        out
    }

    /// This policy with its budget-sized caps set to `seats` (the other caps as configured).
    pub fn with_budget_caps(&self, seats: [Option<Cap>; 2]) -> TierPolicy {
        let mut policy = self.clone();
        for (i, seat) in seats.into_iter().enumerate() {
            if self.budget_caps[i] {
                policy.caps[i] = seat;
            }
        }
        policy
    }

    /// The tier a score earns by thresholds alone. Scores and thresholds compare in
    /// thousandths ([`MilliPoints`]), as they are printed: a score shown as `3.000` clears 3.0.
    pub fn tier_for(&self, score: f32) -> Tier {
        self.lines()
            .tier_for_milli(i64::from(MilliPoints::of(score).get()))
    }

    /// The best tier `coverage` allows: the first whose `min_coverage` it reaches, compared in
    /// thousandths as coverage is printed; `untiered` below Tier 3's minimum.
    pub fn coverage_allows(&self, coverage: f32) -> Tier {
        self.lines().coverage_allows(coverage)
    }

    /// The thresholds, margin and coverage minimums in thousandths, as accounts are compared
    /// with them: a tierer of many accounts works them out once ([`TierPolicy::basis_on`],
    /// [`TierPolicy::before_caps_on`]); the other methods work them out per call.
    pub fn lines(&self) -> Lines {
        Lines {
            thresholds: self.thresholds.map(|t| i64::from(MilliPoints::of(t).get())),
            margin: i64::from(MilliPoints::of(self.hysteresis_margin).get()),
            min_coverage: self.min_coverage.map(MilliPoints::of),
        }
    }

    /// An account's tier before the caps: its base, lifted while its engagement window holds,
    /// then held to the best tier its coverage allows. Locked accounts keep their lock's tier.
    fn before_caps(&self, lines: &Lines, m: &TierMember, as_of: Date) -> Assignment {
        self.before_caps_on(lines, &m.basis, m.coverage, as_of)
    }

    /// [`TierPolicy::decide`]'s tier before the caps of an account with this basis and coverage:
    /// for those who tier a population without keeping it ([`CapTally`]).
    pub fn before_caps_of(&self, b: &TierBasis, coverage: f32, as_of: Date) -> Assignment {
        self.before_caps_on(&self.lines(), b, coverage, as_of)
    }

    /// [`TierPolicy::before_caps_of`] with `lines`, which must be this policy's
    /// [`TierPolicy::lines`].
    pub fn before_caps_on(&self, lines: &Lines, b: &TierBasis, coverage: f32, as_of: Date) -> Assignment {
        let mut decision = Decision {
            held_by_hysteresis: b.held_by_hysteresis,
            locked: b.locked,
            ..Decision::default()
        };
        let mut tier = b.base;
        if b.locked {
            return Assignment { tier, decision };
        }
        if let Some(e) = b.engagement.filter(|e| e.holds_on(as_of)) {
            if tier.lifted() != tier {
                tier = tier.lifted();
                decision.lifted_by = Some(e.by);
            }
        }
        let allowed = lines.coverage_allows(coverage);
        if tier < allowed {
            decision.insufficient_data = Some(tier);
            if b.base >= allowed {
                // The lift would have passed the ceiling: it lifts nothing.
                decision.lifted_by = None;
            }
            tier = allowed;
        }
        Assignment { tier, decision }
    }

    /// The engagement window of an account on `as_of`: of every event within its override's
    /// window, the one whose window ends last (the first override on ties). Events dated after
    /// `as_of` have not happened and lift nothing, as they score nothing.
    pub fn engagement_on(&self, row: &FactRow, as_of: Date) -> Option<Engagement> {
        let mut best: Option<Engagement> = None;
        for (i, o) in self.overrides.iter().enumerate() {
            let Some(FactValue::DateList(dates)) = row.get(o.slot) else {
                continue;
            };
            let within = i32::try_from(o.within_days).unwrap_or(i32::MAX);
            for &d in dates {
                if !has_happened(d, as_of) || d.days_until(as_of) > within {
                    continue;
                }
                let until = Date::from_days(d.days().saturating_add(within));
                if best.is_none_or(|b| until > b.until) {
                    best = Some(Engagement {
                        until,
                        by: u16::try_from(i).unwrap_or(u16::MAX),
                    });
                }
            }
        }
        best
    }

    /// The per-account step: the account's tier by thresholds, hysteresis and lock, and its
    /// engagement window, none of which depends on other accounts.
    ///
    /// Hysteresis (incremental runs, a margin above 0) compares with `previous`, the tier
    /// this step gave the account last time: the lift and the caps are decided anew each run.
    pub fn basis(&self, candidate: &TierCandidate, kind: RunKind) -> TierBasis {
        self.basis_on(&self.lines(), candidate, kind)
    }

    /// [`TierPolicy::basis`] with `lines`, which must be this policy's [`TierPolicy::lines`].
    pub fn basis_on(&self, lines: &Lines, candidate: &TierCandidate, kind: RunKind) -> TierBasis {
        let engagement = candidate.engagement;
        if let Some(tier) = candidate.lock.tier() {
            return TierBasis {
                base: tier,
                held_by_hysteresis: false,
                locked: true,
                engagement,
            };
        }
        let score = i64::from(MilliPoints::of(candidate.score).get());
        let margin = lines.margin;
        let by_thresholds = lines.tier_for_milli(score);
        let mut base = by_thresholds;
        if let (RunKind::Incremental, Some(prev)) = (kind, candidate.previous) {
            if margin > 0 && by_thresholds != prev {
                // Move up only as far as the score clears thresholds by the margin,
                // down only as far as it misses them by the margin.
                let up = lines.tier_for_milli(score - margin);
                let down = lines.tier_for_milli(score + margin);
                base = if up < prev {
                    up
                } else if down > prev {
                    down
                } else {
                    prev
                };
            }
        }
        TierBasis {
            base,
            held_by_hysteresis: base != by_thresholds,
            locked: false,
            engagement,
        }
    }

    /// The population step: every account's final tier on `as_of` from its basis (same order
    /// as `members`).
    ///
    /// An unlocked account is lifted one tier while its engagement window holds and held to the
    /// best tier its coverage allows ([`TierPolicy::coverage_allows`]); then the pyramid caps apply over the whole population: locked accounts keep their tier and take
    /// their seats first, and the overflow is demoted one tier by [`rank_order`] (Tier 1's
    /// overflow may be demoted again by Tier 2's cap). So the capped tiers never hold more
    /// unlocked accounts than the cap leaves after the locks.
    pub fn decide(&self, members: &[TierMember], as_of: Date) -> Vec<Assignment> {
        let lines = self.lines();
        let mut out: Vec<Assignment> = members
            .iter()
            .map(|m| self.before_caps(&lines, m, as_of))
            .collect();

        let n = members.len();
        for (cap_index, cap) in self.caps.iter().enumerate() {
            let Some(cap) = cap else { continue };
            let capped_tier = Tier::ALL[cap_index];
            let locked_in = out
                .iter()
                .filter(|a| a.decision.locked && a.tier == capped_tier)
                .count();
            let room = cap.limit(n).saturating_sub(locked_in);
            let mut seated: Vec<usize> = (0..n)
                .filter(|&i| !out[i].decision.locked && out[i].tier == capped_tier)
                .collect();
            if seated.len() <= room {
                continue;
            }
            seated.sort_unstable_by(|&a, &b| rank_order(&members[a], &members[b]));
            for &i in &seated[room..] {
                out[i].tier = capped_tier.demoted();
                out[i].decision.capped_from.get_or_insert(capped_tier);
            }
        }
        out
    }

    /// Both steps at once, for a population known in full (`tierd score`, tests, benches):
    /// [`TierPolicy::basis`] per candidate, then [`TierPolicy::decide`].
    pub fn assign(&self, candidates: &[TierCandidate], kind: RunKind, as_of: Date) -> Vec<Assignment> {
        let lines = self.lines();
        let members: Vec<TierMember> = candidates
            .iter()
            .map(|c| TierMember::new(c, self.basis_on(&lines, c, kind)))
            .collect();
        self.decide(&members, as_of)
    }

    /// The words for how an account's tier was decided, followed by `score_reasons` (the
    /// score's compact reasons): `pyramid cap: tier_1 is full; demo request (lifted one
    /// tier); industry: Software (+0.3)`. Every view of a tier (the tiers file, `tierd
    /// explain`, the CRM's reason field, history) uses these words.
    pub fn reason(&self, assignment: &Assignment, score_reasons: &str) -> String {
        let mut out = String::with_capacity(score_reasons.len() + 48);
        self.reason_into(assignment, score_reasons, &mut out);
        out
    }

    /// [`TierPolicy::reason`] appended to `out` (writers of millions of rows reuse one buffer).
    /// Returns where in `out` the pyramid cap's words are, or would go
    /// ([`TierPolicy::cap_words`]): a writer that learns of a cap later inserts them there.
    pub fn reason_into(&self, assignment: &Assignment, score_reasons: &str, out: &mut String) -> usize {
        let d = &assignment.decision;
        if d.locked {
            out.push_str("locked by a person at ");
            out.push_str(assignment.tier.as_str());
            out.push_str("; ");
        }
        if let Some(wanted) = d.insufficient_data {
            out.push_str("insufficient data for ");
            out.push_str(wanted.as_str());
            out.push_str(" (coverage under ");
            push_fixed(out, self.min_coverage[wanted.index()], 2, false);
            out.push_str("); ");
        }
        let cap_at = out.len();
        if let Some(from) = d.capped_from {
            out.push_str(Self::cap_words(from));
        }
        if let Some(by) = d.lifted_by {
            out.push_str(self.override_label(by));
            out.push_str(" (lifted one tier); ");
        }
        out.push_str(score_reasons);
        cap_at
    }

    /// The words a reason starts with (after a lock's or thin coverage's) when `from`'s
    /// pyramid cap demoted the account.
    pub fn cap_words(from: Tier) -> &'static str {
        match from {
            Tier::Tier1 => "pyramid cap: tier_1 is full; ",
            Tier::Tier2 => "pyramid cap: tier_2 is full; ",
            Tier::Tier3 => "pyramid cap: tier_3 is full; ",
            Tier::Untiered => "pyramid cap: untiered is full; ",
        }
    }

    /// Words for override `by` (`engagement` when this policy has no such override).
    pub fn override_label(&self, by: u16) -> &str {
        self.overrides
            .get(usize::from(by))
            .map_or("engagement", |o| o.label.as_str())
    }
}

/// The population step for a population read once and not kept ([`TierPolicy::decide`] in
/// constant memory, for `tierd score` on files of any size).
///
/// Only the pyramid caps need other accounts, and only accounts in a capped tier before the
/// caps (unlocked, Tier 1 or 2) can move. Scores are thousandths, so a tally of those
/// accounts per thousandth ([`CapTally::add`]) finds each cap's line: the score above which
/// everybody keeps the tier and below which everybody is demoted ([`CapTally::cut`]). Only the
/// accounts with exactly the line's score need the rest of [`rank_order`]; the caller gives
/// them to [`CapCut::settle`] and then places every account with [`CapCut::place`]. The
/// result is the same as [`TierPolicy::decide`]'s (a test compares them).
#[derive(Debug, Clone)]
pub struct CapTally {
    /// Per capped tier, unlocked accounts per score in thousandths.
    counts: [Vec<u64>; 2],
    /// Per capped tier, locked accounts in it.
    locked: [usize; 2],
    /// Accounts in the population.
    n: usize,
}

impl Default for CapTally {
    fn default() -> Self {
        let bins = MilliPoints::MAX.get() as usize + 1;
        CapTally {
            counts: [vec![0; bins], vec![0; bins]],
            locked: [0; 2],
            n: 0,
        }
    }
}

/// An account whose place under a cap depends on more than its score (see [`CapTally`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OnTheLine {
    /// Its rank key.
    pub member: TierMember,
    /// Its tier before the caps.
    pub tier: Tier,
    /// The caller's number for it, given again to [`CapCut::place`].
    pub key: u64,
}

/// Where each cap's line falls (see [`CapTally`]).
#[derive(Debug, Clone, Default)]
pub struct CapCut {
    /// Per cap: the line's score and how many accounts with that score keep the tier.
    lines: [Option<(u32, u64)>; 2],
    /// Per cap: the keys of the accounts on the line that keep the tier, sorted.
    kept: [Vec<u64>; 2],
}

impl CapTally {
    /// Counts one account by its tier before the caps (`before`, from [`TierPolicy::before_caps_of`]);
    /// says whether the caps may move it, i.e. whether it must be placed with [`CapCut::place`].
    pub fn add(&mut self, before: &Assignment, score: f32) -> bool {
        self.n += 1;
        let i = before.tier.index();
        if i >= 2 {
            return false;
        }
        if before.decision.locked {
            self.locked[i] += 1;
            return false;
        }
        self.counts[i][MilliPoints::of(score).get() as usize] += 1;
        true
    }

    /// The accounts counted.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether no account was counted.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Where the caps of `policy` draw their lines in this population.
    pub fn cut(&self, policy: &TierPolicy) -> CapCut {
        let mut cut = CapCut::default();
        // Tier 2's pool: its own accounts, then those Tier 1's cap demotes.
        let mut pool2 = self.counts[1].clone();
        for (c, cap) in policy.caps.iter().enumerate() {
            let Some(cap) = cap else { continue };
            let room = cap.limit(self.n).saturating_sub(self.locked[c]) as u64;
            let pool = if c == 0 { &self.counts[0] } else { &pool2 };
            let mut above = 0u64;
            let mut line = None;
            for bin in (0..pool.len()).rev() {
                if above + pool[bin] > room {
                    line = Some((bin as u32, room - above));
                    break;
                }
                above += pool[bin];
            }
            cut.lines[c] = line;
            if c == 0 {
                if let Some((bin, keep)) = line {
                    let bin = bin as usize;
                    pool2[bin] += self.counts[0][bin] - keep;
                    for (b, n) in self.counts[0][..bin].iter().enumerate() {
                        pool2[b] += n;
                    }
                }
            }
        }
        cut
    }
}

impl CapCut {
    /// Whether an account with this tier before the caps and this score is on a line: its rank
    /// key must go to [`CapCut::settle`] before anybody is placed.
    pub fn on_the_line(&self, tier: Tier, score: f32) -> bool {
        let m = MilliPoints::of(score).get();
        let on = |c: usize| matches!(self.lines[c], Some((bin, keep)) if bin == m && keep > 0);
        match tier {
            Tier::Tier1 => on(0) || (on(1) && self.demoted_from_1(m, None)),
            Tier::Tier2 => on(1),
            _ => false,
        }
    }

    /// Whether Tier 1's cap demotes an account with score `m` (`key`: when on its line, and
    /// already settled; `None` counts it as demoted when it may be).
    fn demoted_from_1(&self, m: u32, key: Option<u64>) -> bool {
        match self.lines[0] {
            None => false,
            Some((bin, _)) if m > bin => false,
            Some((bin, _)) if m < bin => true,
            Some(_) => key.is_none_or(|k| self.kept[0].binary_search(&k).is_err()),
        }
    }

    /// Ranks the accounts on the lines (all of them, in any order: those [`CapCut::on_the_line`]
    /// named) and decides which keep their tier.
    pub fn settle(&mut self, mut on_line: Vec<OnTheLine>) {
        on_line.sort_by(|a, b| rank_order(&a.member, &b.member));
        if let Some((bin, keep)) = self.lines[0] {
            let mut kept: Vec<u64> = on_line
                .iter()
                .filter(|a| a.tier == Tier::Tier1 && MilliPoints::of(a.member.score).get() == bin)
                .take(keep as usize)
                .map(|a| a.key)
                .collect();
            kept.sort_unstable();
            self.kept[0] = kept;
        }
        if let Some((bin, keep)) = self.lines[1] {
            let mut kept: Vec<u64> = on_line
                .iter()
                .filter(|a| MilliPoints::of(a.member.score).get() == bin)
                .filter(|a| match a.tier {
                    Tier::Tier2 => true,
                    Tier::Tier1 => self.demoted_from_1(bin, Some(a.key)),
                    _ => false,
                })
                .take(keep as usize)
                .map(|a| a.key)
                .collect();
            kept.sort_unstable();
            self.kept[1] = kept;
        }
    }

    /// The final tier of an account the caps may move (its tier before the caps, score and key),
    /// and the tier whose cap demoted it first.
    pub fn place(&self, tier: Tier, score: f32, key: u64) -> (Tier, Option<Tier>) {
        let m = MilliPoints::of(score).get();
        let mut at = tier;
        let mut capped_from = None;
        if at == Tier::Tier1 && self.demoted_from_1(m, Some(key)) {
            at = Tier::Tier2;
            capped_from = Some(Tier::Tier1);
        }
        if at == Tier::Tier2 {
            let demoted = match self.lines[1] {
                None => false,
                Some((bin, _)) if m > bin => false,
                Some((bin, _)) if m < bin => true,
                Some(_) => self.kept[1].binary_search(&key).is_err(),
            };
            if demoted {
                at = Tier::Tier3;
                capped_from.get_or_insert(Tier::Tier2);
            }
        }
        (at, capped_from)
    }
}

/// A tier a person set: tierd never changes it, and it takes its seat under a cap first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lock {
    /// tierd decides the tier.
    #[default]
    Unlocked,
    /// Locked by a person at this tier.
    At(Tier),
    /// Locked by a person whose tier field is empty: the account is locked as untiered (see
    /// [`Lock::tier`]).
    Unknown,
}

impl Lock {
    /// A lock as a CRM shows it: the lock flag and the tier field's value.
    pub fn from_crm(locked: bool, tier: Option<Tier>) -> Lock {
        match (locked, tier) {
            (false, _) => Lock::Unlocked,
            (true, Some(t)) => Lock::At(t),
            (true, None) => Lock::Unknown,
        }
    }

    /// The tier the lock holds, `None` when unlocked.
    ///
    /// A lock with no known tier holds `untiered`: the person's field is empty and tierd
    /// writes nothing to a locked account, so sellers see no tier; tierd reports none rather
    /// than seat the account, unseen, in a capped tier. Like every lock it is never lifted
    /// or capped, and it is reported as locked.
    pub fn tier(self) -> Option<Tier> {
        match self {
            Lock::Unlocked => None,
            Lock::At(t) => Some(t),
            Lock::Unknown => Some(Tier::Untiered),
        }
    }
}

impl From<Option<Tier>> for Lock {
    /// A `locked_tier` column: a tier locks, an empty cell does not.
    fn from(tier: Option<Tier>) -> Lock {
        tier.map_or(Lock::Unlocked, Lock::At)
    }
}

/// When an engagement override lifts an account: which override, and the last day it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Engagement {
    /// The last day the lift holds (the event's date plus the override's `within_days`).
    pub until: Date,
    /// The override, by its index in [`TierPolicy::overrides`].
    pub by: u16,
}

impl Engagement {
    /// Whether the lift still holds on `as_of`.
    pub fn holds_on(self, as_of: Date) -> bool {
        self.until >= as_of
    }
}

/// What the per-account step needs to know about one account.
#[derive(Debug, Clone, PartialEq)]
pub struct TierCandidate {
    /// The account's id; the last tie-breaker.
    pub id: Box<str>,
    /// Its score.
    pub score: f32,
    /// Its potential annual value (0 when unknown).
    pub potential_value: f64,
    /// Its coverage.
    pub coverage: f32,
    /// Its tier before this run, for hysteresis: the daemon passes the previous *base* tier
    /// ([`TierBasis::base`]), `tierd score --previous` the previous file's tier.
    pub previous: Option<Tier>,
    /// A tier set by a person.
    pub lock: Lock,
    /// Its engagement window ([`TierPolicy::engagement_on`]).
    pub engagement: Option<Engagement>,
}

/// One account's tiering basis: what the per-account step decided. The daemon stores it with
/// the account, so accounts a run does not rescore are tiered from it on the run's date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierBasis {
    /// The tier by thresholds and hysteresis, or the lock's tier.
    pub base: Tier,
    /// Hysteresis kept `base` away from the tier the thresholds give.
    pub held_by_hysteresis: bool,
    /// A person locked the tier: the population step neither lifts nor caps it.
    pub locked: bool,
    /// The engagement window, if an override fired.
    pub engagement: Option<Engagement>,
}

/// What the population step needs to know about one account: its basis and its rank.
#[derive(Debug, Clone, PartialEq)]
pub struct TierMember {
    /// The account's id; the last tie-breaker.
    pub id: Box<str>,
    /// Its score.
    pub score: f32,
    /// Its potential annual value (0 when unknown).
    pub potential_value: f64,
    /// Its coverage.
    pub coverage: f32,
    /// What the per-account step decided.
    pub basis: TierBasis,
}

impl TierMember {
    /// A candidate with its basis.
    pub fn new(c: &TierCandidate, basis: TierBasis) -> TierMember {
        TierMember {
            id: c.id.clone(),
            score: c.score,
            potential_value: c.potential_value,
            coverage: c.coverage,
            basis,
        }
    }
}

/// Full runs let tiers move freely; incremental runs apply hysteresis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// The (quarterly) reassessment.
    Full,
    /// Between full runs.
    Incremental,
}

/// How an account's tier was decided, for reasons, reports and history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    /// Kept its previous tier because the score did not pass the threshold by the margin.
    pub held_by_hysteresis: bool,
    /// Lifted one tier by this engagement override (its index in the policy).
    pub lifted_by: Option<u16>,
    /// Demoted by a pyramid cap: the tier whose cap demoted it first.
    pub capped_from: Option<Tier>,
    /// Kept a manually locked tier.
    pub locked: bool,
    /// Held below this tier, which its score (and lift) reached, by too little coverage.
    pub insufficient_data: Option<Tier>,
}

/// One account's tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// The tier.
    pub tier: Tier,
    /// How it was reached.
    pub decision: Decision,
}

/// Ranking for caps: score desc, potential value desc, coverage desc, id asc.
pub fn rank_order(a: &TierMember, b: &TierMember) -> Ordering {
    b.score
        .total_cmp(&a.score)
        .then_with(|| b.potential_value.total_cmp(&a.potential_value))
        .then_with(|| b.coverage.total_cmp(&a.coverage))
        .then_with(|| a.id.cmp(&b.id))
}

/// Accounts per tier, best first.
pub fn pyramid<'a>(tiers: impl IntoIterator<Item = &'a Tier>) -> [usize; 4] {
    let mut counts = [0usize; 4];
    for t in tiers {
        counts[t.index()] += 1;
    }
    counts
}

#[cfg(test)]
mod cap_tally_tests {
    use super::*;

    /// Populations with many ties (few scores, values and coverages), locks, lifts and thin
    /// coverage, under count and percent caps: the tally places everybody as `decide` does.
    #[test]
    fn the_tally_places_every_account_as_decide_does() {
        let mut rng = crate::test_rng::Xorshift(0x2545_f491_4f6c_dd1d);
        let mut next = |n: u64| rng.next() % n;
        let as_of = Date::from_days(20_000);
        for round in 0..300 {
            let mut policy = TierPolicy::default();
            let pick_cap = |k: u64| match k {
                0 => None,
                1 => Some(Cap::Count(k)),
                2 => Some(Cap::Percent(10.0)),
                _ => Some(Cap::Count(k * 3)),
            };
            policy.caps = [pick_cap(next(5)), pick_cap(next(5))];
            let n = 1 + next(if round % 10 == 0 { 2000 } else { 120 }) as usize;
            let members: Vec<TierMember> = (0..n)
                .map(|i| {
                    let score = [4.6f32, 4.5, 4.2, 3.8, 3.75, 3.2, 2.0][next(7) as usize];
                    let locked = next(12) == 0;
                    let base = if locked {
                        Tier::ALL[next(4) as usize]
                    } else {
                        policy.tier_for(score)
                    };
                    let engagement = (next(5) == 0).then_some(Engagement { until: as_of, by: 0 });
                    TierMember {
                        id: format!("a{}", next(1_000_000) * 10_000 + i as u64).into(),
                        score,
                        potential_value: [0.0, 6000.0, 45_000.0][next(3) as usize],
                        coverage: [1.0f32, 0.95, 0.5][next(3) as usize],
                        basis: TierBasis {
                            base,
                            held_by_hysteresis: false,
                            locked,
                            engagement,
                        },
                    }
                })
                .collect();
            let want = policy.decide(&members, as_of);

            let mut tally = CapTally::default();
            let before: Vec<Assignment> = members
                .iter()
                .map(|m| policy.before_caps_of(&m.basis, m.coverage, as_of))
                .collect();
            let movable: Vec<bool> = members
                .iter()
                .zip(&before)
                .map(|(m, b)| tally.add(b, m.score))
                .collect();
            let mut cut = tally.cut(&policy);
            let on_line = members
                .iter()
                .zip(&before)
                .enumerate()
                .filter(|(i, (m, b))| movable[*i] && cut.on_the_line(b.tier, m.score))
                .map(|(i, (m, b))| OnTheLine {
                    member: m.clone(),
                    tier: b.tier,
                    key: i as u64,
                })
                .collect();
            cut.settle(on_line);
            for (i, (m, b)) in members.iter().zip(&before).enumerate() {
                let mut got = *b;
                if movable[i] {
                    let (tier, capped_from) = cut.place(b.tier, m.score, i as u64);
                    got.tier = tier;
                    got.decision.capped_from = capped_from;
                }
                assert_eq!(got, want[i], "round {round}, account {i} of {n}: {m:?}");
            }
        }
    }
}
