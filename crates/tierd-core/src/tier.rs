//! The tiering policy: scores of a whole population in, one tier per account out.
//!
//! Steps, in order: thresholds (with hysteresis against the previous tier on
//! incremental runs), engagement override (lift one tier), pyramid caps
//! (overflow demoted by rank), manual locks (kept as they are). Caps need the
//! whole population, which is why tiering is the one step that does not stream;
//! it only needs a small [`TierCandidate`] per account.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::config_error::ConfigErrors;
use crate::date::Date;
use crate::fact::{FactName, FactType, FactValue};
use crate::model::{FactRow, FactSchema, FactSlot, MAX_POINTS};

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
    /// At most this percentage of the population (rounded down).
    Percent(f64),
}

impl Cap {
    /// The number of accounts allowed in a population of `n`.
    pub fn limit(self, n: usize) -> usize {
        match self {
            Cap::Count(c) => usize::try_from(c).unwrap_or(usize::MAX),
            Cap::Percent(p) => ((n as f64) * p / 100.0).floor() as usize,
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
}

impl Default for TierPolicy {
    fn default() -> Self {
        TierPolicy {
            thresholds: [4.5, 3.75, 3.0],
            caps: [None, None],
            hysteresis_margin: 0.0,
            overrides: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCap {
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    percent: Option<f64>,
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
        for (i, raw_cap) in [&raw.tier_1_cap, &raw.tier_2_cap].into_iter().enumerate() {
            let path = format!("{prefix}.tier_{}_cap", i + 1);
            caps[i] = match raw_cap {
                None => None,
                Some(RawCap {
                    count: Some(c),
                    percent: None,
                }) => Some(Cap::Count(*c)),
                Some(RawCap {
                    count: None,
                    percent: Some(p),
                }) if (0.0..=100.0).contains(p) => Some(Cap::Percent(*p)),
                Some(RawCap {
                    count: None,
                    percent: Some(p),
                }) => {
                    errors.push(
                        format!("{path}.percent"),
                        format!("must be within 0..=100, found {p}"),
                    );
                    None
                }
                Some(_) => {
                    errors.push(path, "give exactly one of `count` or `percent`");
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
        })
    }

    /// The tier a score earns by thresholds alone.
    pub fn tier_for(&self, score: f32) -> Tier {
        let [t1, t2, t3] = self.thresholds;
        if score >= t1 {
            Tier::Tier1
        } else if score >= t2 {
            Tier::Tier2
        } else if score >= t3 {
            Tier::Tier3
        } else {
            Tier::Untiered
        }
    }

    /// The first override whose signal fired within its window, by index.
    pub fn override_for(&self, row: &FactRow, as_of: Date) -> Option<u16> {
        self.overrides
            .iter()
            .position(|o| match row.get(o.slot) {
                Some(FactValue::DateList(dates)) => dates.iter().any(|d| {
                    let age = d.days_until(as_of);
                    (0..=i64::from(o.within_days)).contains(&i64::from(age))
                }),
                _ => false,
            })
            .map(|i| i as u16)
    }
}

/// What the policy needs to know about one account.
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
    /// Its tier before this run, if any.
    pub previous: Option<Tier>,
    /// A tier set by a person: kept, never overwritten.
    pub lock: Option<Tier>,
    /// The engagement override that fired for it, by index.
    pub engaged: Option<u16>,
}

/// Full runs let tiers move freely; incremental runs apply hysteresis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// The (quarterly) reassessment.
    Full,
    /// Between full runs.
    Incremental,
}

/// How an account's tier was decided, for reports and history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    /// Kept its previous tier because the score did not pass the threshold by the margin.
    pub held_by_hysteresis: bool,
    /// Lifted one tier by this engagement override.
    pub lifted_by: Option<u16>,
    /// Demoted this many tiers by pyramid caps.
    pub capped: u8,
    /// Kept a manually locked tier.
    pub locked: bool,
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
pub fn rank_order(a: &TierCandidate, b: &TierCandidate) -> Ordering {
    b.score
        .total_cmp(&a.score)
        .then_with(|| b.potential_value.total_cmp(&a.potential_value))
        .then_with(|| b.coverage.total_cmp(&a.coverage))
        .then_with(|| a.id.cmp(&b.id))
}

impl TierPolicy {
    /// Assigns a tier to every candidate (same order as `candidates`).
    ///
    /// Locked accounts keep their tier and count toward caps first, so the
    /// capped tiers never hold more than the cap unless locks alone exceed it.
    pub fn assign(&self, candidates: &[TierCandidate], kind: RunKind) -> Vec<Assignment> {
        let margin = self.hysteresis_margin;
        let mut out: Vec<Assignment> = candidates
            .iter()
            .map(|c| {
                let mut decision = Decision::default();
                if let Some(lock) = c.lock {
                    decision.locked = true;
                    return Assignment { tier: lock, decision };
                }
                let mut tier = self.tier_for(c.score);
                if let (RunKind::Incremental, Some(prev)) = (kind, c.previous) {
                    if margin > 0.0 && tier != prev {
                        // Move up only as far as the score clears thresholds by the margin,
                        // down only as far as it misses them by the margin.
                        let up = self.tier_for(c.score - margin);
                        let down = self.tier_for(c.score + margin);
                        let held = if up < prev {
                            up
                        } else if down > prev {
                            down
                        } else {
                            prev
                        };
                        decision.held_by_hysteresis = held != tier;
                        tier = held;
                    }
                }
                if let Some(o) = c.engaged {
                    let lifted = tier.lifted();
                    if lifted != tier {
                        decision.lifted_by = Some(o);
                        tier = lifted;
                    }
                }
                Assignment { tier, decision }
            })
            .collect();

        let n = candidates.len();
        for (cap_index, cap) in self.caps.iter().enumerate() {
            let Some(cap) = cap else { continue };
            let capped_tier = Tier::ALL[cap_index];
            let locked_in = candidates
                .iter()
                .zip(&out)
                .filter(|(_, a)| a.decision.locked && a.tier == capped_tier)
                .count();
            let room = cap.limit(n).saturating_sub(locked_in);
            let mut members: Vec<usize> = (0..n)
                .filter(|&i| !out[i].decision.locked && out[i].tier == capped_tier)
                .collect();
            if members.len() <= room {
                continue;
            }
            members.sort_unstable_by(|&a, &b| rank_order(&candidates[a], &candidates[b]));
            for &i in &members[room..] {
                out[i].tier = capped_tier.demoted();
                out[i].decision.capped += 1;
            }
        }
        out
    }
}

/// Accounts per tier, best first.
pub fn pyramid<'a>(tiers: impl IntoIterator<Item = &'a Tier>) -> [usize; 4] {
    let mut counts = [0usize; 4];
    for t in tiers {
        counts[t.index()] += 1;
    }
    counts
}
