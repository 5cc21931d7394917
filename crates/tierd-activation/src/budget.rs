//! Budget per tier: what the pyramid costs, what each tier's spend buys in deals and return, and
//! how many Tier 1 and Tier 2 seats a total budget pays for.
//!
//! `[budget]` in `tierd.toml`:
//!
//! ```toml
//! [budget]
//! tier_1 = 50        # spend per account per period
//! tier_2 = 30
//! tier_3 = 5
//! period = "month"   # month | quarter | year: the period of the rates and of `total`
//! currency = "USD"
//! total = 10000      # optional: what the team has per period
//! ```
//!
//! Untiered accounts cost nothing: they are the baseline the tiers are measured against.
//!
//! # Seats from a total ([`Budget::seats`])
//!
//! Every account that qualifies for a tier by its score stays at least in Tier 3 whatever the
//! caps do (a cap demotes overflow one tier, and Tier 3 has no cap), so the money for all of them
//! at the Tier 3 rate is reserved first. What is left buys upgrades, top down: Tier 1 seats first,
//! each costing the Tier 1 rate minus the Tier 3 rate, up to the accounts that qualify for Tier 1;
//! then Tier 2 seats at the Tier 2 rate minus the Tier 3 rate, up to the accounts that qualify
//! for Tier 2 plus the Tier 1 candidates left without a seat. The seats become the pyramid's caps
//! ([`SeatPlan::caps`]). When even Tier 3 for everyone costs more than the total, no seat is
//! bought and the shortfall is reported.

use serde::{Deserialize, Serialize};
use tierd_core::tier::Cap;
use tierd_core::{ConfigErrors, Tier};

/// The period rates and totals are given for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// A calendar month.
    Month,
    /// Three months.
    Quarter,
    /// Twelve months.
    Year,
}

impl Period {
    /// Its length in months.
    pub fn months(self) -> u32 {
        match self {
            Period::Month => 1,
            Period::Quarter => 3,
            Period::Year => 12,
        }
    }

    /// Its name in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Month => "month",
            Period::Quarter => "quarter",
            Period::Year => "year",
        }
    }
}

/// `[budget]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    #[serde(default)]
    tier_1: Option<f64>,
    #[serde(default)]
    tier_2: Option<f64>,
    #[serde(default)]
    tier_3: Option<f64>,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    total: Option<f64>,
}

/// The checked budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    /// Spend per account per period for Tier 1, 2 and 3.
    pub per_account: [f64; 3],
    /// The period of the rates and the total.
    pub period: Period,
    /// ISO 4217 code, e.g. `USD`.
    pub currency: String,
    /// What the team has per period, if given.
    pub total: Option<f64>,
}

const TIERS: [Tier; 3] = [Tier::Tier1, Tier::Tier2, Tier::Tier3];

impl Budget {
    /// Checks `[budget]`; every problem is reported at `prefix.<key>`.
    pub fn compile(raw: &RawBudget, prefix: &str) -> Result<Budget, ConfigErrors> {
        let mut errors = ConfigErrors::default();
        let mut per_account = [0.0; 3];
        for (i, rate) in [raw.tier_1, raw.tier_2, raw.tier_3].into_iter().enumerate() {
            let key = format!("{prefix}.tier_{}", i + 1);
            match rate {
                None => errors.push(key, "missing: the spend per account per period for this tier"),
                Some(r) if !r.is_finite() || r < 0.0 => {
                    errors.push(key, format!("must be a number of at least 0, found {r}"));
                }
                Some(r) => per_account[i] = r,
            }
        }
        let period = match raw.period.as_deref() {
            Some("month") => Period::Month,
            Some("quarter") => Period::Quarter,
            Some("year") => Period::Year,
            Some(other) => {
                errors.push(
                    format!("{prefix}.period"),
                    format!("unknown period '{other}' (expected month, quarter or year)"),
                );
                Period::Month
            }
            None => {
                errors.push(format!("{prefix}.period"), "missing: month, quarter or year");
                Period::Month
            }
        };
        let currency = match raw.currency.as_deref().map(str::trim) {
            Some(c) if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_uppercase()) => c.to_string(),
            Some(c) => {
                errors.push(
                    format!("{prefix}.currency"),
                    format!("expected a three-letter ISO 4217 code such as USD or EUR, found '{c}'"),
                );
                String::new()
            }
            None => {
                errors.push(format!("{prefix}.currency"), "missing: a code such as USD or EUR");
                String::new()
            }
        };
        if let Some(t) = raw.total {
            if !t.is_finite() || t <= 0.0 {
                errors.push(
                    format!("{prefix}.total"),
                    format!("must be a number above 0, found {t}"),
                );
            }
        }
        errors.into_result(Budget {
            per_account,
            period,
            currency,
            total: raw.total,
        })
    }

    /// The spend per period for `accounts` per tier (`[tier_1, tier_2, tier_3, untiered]`, as
    /// `Store::tier_counts` returns them).
    pub fn planned_spend(&self, accounts: [u64; 4]) -> SpendPlan {
        let tiers: Vec<TierSpend> = TIERS
            .iter()
            .enumerate()
            .map(|(i, tier)| TierSpend {
                tier: *tier,
                accounts: accounts[i],
                per_account: self.per_account[i],
                spend: self.per_account[i] * accounts[i] as f64,
            })
            .collect();
        let total: f64 = tiers.iter().map(|t| t.spend).sum();
        SpendPlan {
            tiers,
            untiered: accounts[3],
            total,
            budget: self.total,
            over_budget: self.total.map(|b| (total - b).max(0.0)),
        }
    }

    /// Cost per deal and return per tier against the untiered baseline, for a funnel that covers
    /// `funnel.periods` budget periods.
    pub fn returns(&self, funnel: &FunnelInput) -> Vec<TierReturn> {
        let baseline = per_account(funnel.baseline.won_amount, funnel.baseline.accounts);
        TIERS
            .iter()
            .enumerate()
            .map(|(i, tier)| {
                let f = &funnel.tiers[i];
                let spend = self.per_account[i] * f.accounts as f64 * funnel.periods;
                let won_per_account = per_account(f.won_amount, f.accounts);
                let incremental = match (won_per_account, baseline) {
                    (Some(w), Some(b)) => Some((w - b) * f.accounts as f64),
                    _ => None,
                };
                TierReturn {
                    tier: *tier,
                    accounts: f.accounts,
                    spend,
                    cost_per_deal_created: ratio(spend, f.deals_created as f64),
                    cost_per_deal_won: ratio(spend, f.deals_won as f64),
                    won_per_account,
                    baseline_won_per_account: baseline,
                    lift: match (won_per_account, baseline) {
                        (Some(w), Some(b)) => ratio(w, b),
                        _ => None,
                    },
                    incremental_won: incremental,
                    return_on_spend: incremental.and_then(|inc| ratio(inc, spend)),
                    net_return: incremental.map(|inc| inc - spend),
                }
            })
            .collect()
    }

    /// The Tier 1 and Tier 2 seats the total buys per period, given how many accounts qualify for
    /// each tier by score (`[tier_1, tier_2, tier_3]`, before caps); see the module doc for the
    /// rule. `None` without a total.
    pub fn seats(&self, candidates: [u64; 3]) -> Option<SeatPlan> {
        let total = self.total?;
        let [r1, r2, r3] = self.per_account;
        let everyone = candidates.iter().sum::<u64>();
        let base = r3 * everyone as f64;
        if base > total {
            return Some(SeatPlan {
                tier_1_seats: 0,
                tier_2_seats: 0,
                tier_3_accounts: everyone,
                spend: base,
                left_over: 0.0,
                shortfall: Some(base - total),
            });
        }
        let mut left = total - base;
        let buy = |left: &mut f64, upgrade: f64, wanted: u64| -> u64 {
            let seats = if upgrade <= 0.0 {
                wanted
            } else {
                // Whole seats only; the division of two finite non-negative numbers.
                wanted.min((*left / upgrade).floor() as u64)
            };
            *left -= upgrade.max(0.0) * seats as f64;
            seats
        };
        let tier_1_seats = buy(&mut left, r1 - r3, candidates[0]);
        let tier_2_seats = buy(&mut left, r2 - r3, candidates[1] + (candidates[0] - tier_1_seats));
        Some(SeatPlan {
            tier_1_seats,
            tier_2_seats,
            tier_3_accounts: everyone - tier_1_seats - tier_2_seats,
            spend: total - left,
            left_over: left,
            shortfall: None,
        })
    }
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b != 0.0).then(|| a / b)
}

fn per_account(amount: f64, accounts: u64) -> Option<f64> {
    ratio(amount, accounts as f64)
}

/// One tier's planned spend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierSpend {
    /// The tier.
    pub tier: Tier,
    /// Its accounts.
    pub accounts: u64,
    /// Spend per account per period.
    pub per_account: f64,
    /// Spend per period.
    pub spend: f64,
}

/// What the current pyramid costs per period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpendPlan {
    /// Tier 1, 2 and 3.
    pub tiers: Vec<TierSpend>,
    /// Untiered accounts (no spend).
    pub untiered: u64,
    /// Spend per period, all tiers.
    pub total: f64,
    /// The budget's total, if given.
    pub budget: Option<f64>,
    /// How far the plan exceeds the total (0 within it), if a total is given.
    pub over_budget: Option<f64>,
}

/// One tier's funnel over the measured window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TierFunnel {
    /// Accounts in the tier.
    pub accounts: u64,
    /// Deals created.
    pub deals_created: u64,
    /// Deals won.
    pub deals_won: u64,
    /// Amount won.
    pub won_amount: f64,
}

/// The funnel per tier and the untiered baseline, over a window of `periods` budget periods.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FunnelInput {
    /// Tier 1, 2 and 3.
    pub tiers: [TierFunnel; 3],
    /// The untiered accounts.
    pub baseline: TierFunnel,
    /// How many budget periods the window covers (e.g. 3 for a quarter of monthly rates).
    pub periods: f64,
}

/// A tier's cost per deal and return against the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierReturn {
    /// The tier.
    pub tier: Tier,
    /// Its accounts.
    pub accounts: u64,
    /// Spend over the window.
    pub spend: f64,
    /// Spend per deal created (none without deals).
    pub cost_per_deal_created: Option<f64>,
    /// Spend per deal won (none without wins).
    pub cost_per_deal_won: Option<f64>,
    /// Amount won per account.
    pub won_per_account: Option<f64>,
    /// Amount won per untiered account.
    pub baseline_won_per_account: Option<f64>,
    /// Won per account over the baseline's.
    pub lift: Option<f64>,
    /// What the tier won beyond what its accounts would have won at the baseline's rate.
    pub incremental_won: Option<f64>,
    /// Incremental won per unit of spend (above 1: the spend paid for itself).
    pub return_on_spend: Option<f64>,
    /// Incremental won minus spend.
    pub net_return: Option<f64>,
}

/// What a total budget buys per period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeatPlan {
    /// Tier 1 seats.
    pub tier_1_seats: u64,
    /// Tier 2 seats.
    pub tier_2_seats: u64,
    /// Accounts left in Tier 3.
    pub tier_3_accounts: u64,
    /// What the plan spends per period.
    pub spend: f64,
    /// What is left of the total.
    pub left_over: f64,
    /// How much more Tier 3 alone needs, when the total does not cover it.
    pub shortfall: Option<f64>,
}

impl SeatPlan {
    /// The seats as the tiering policy's caps on Tier 1 and Tier 2.
    pub fn caps(&self) -> [Option<Cap>; 2] {
        [
            Some(Cap::Count(self.tier_1_seats)),
            Some(Cap::Count(self.tier_2_seats)),
        ]
    }
}

/// `tierd report budget`: what the current pyramid costs, what the total buys, and (with the
/// funnel) cost per deal and return per tier. One report for the CLI, the API and the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetReport {
    /// The budget's currency.
    pub currency: String,
    /// The period of the rates and of the total.
    pub period: Period,
    /// Accounts and planned spend per tier, as tiered now.
    pub plan: SpendPlan,
    /// Accounts qualifying for Tier 1, 2 and 3 before the caps (what seats are bought for).
    pub candidates: [u64; 3],
    /// The Tier 1 and Tier 2 seats the total buys (none without a total).
    pub seats: Option<SeatPlan>,
    /// Cost per deal and return per tier (none until the funnel is given).
    pub returns: Option<Vec<TierReturn>>,
}

/// The budget report over the store's accounts: their tiers now, their candidates for each tier
/// on `as_of` (base tier lifted by an engagement window that holds, as tiering counts them), and
/// the returns of `funnel` when given.
pub async fn report(
    store: &tierd_store::Store,
    budget: &Budget,
    policy: &tierd_core::TierPolicy,
    as_of: tierd_core::Date,
    funnel: Option<&FunnelInput>,
) -> Result<BudgetReport, tierd_store::StoreError> {
    use tierd_core::tier::{Engagement, TierBasis, TierMember};
    const PAGE: u32 = 5_000;
    let mut candidates = [0u64; 3];
    let mut after: Option<String> = None;
    loop {
        let page = store.account_summaries(after.as_deref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        let members: Vec<TierMember> = page
            .iter()
            .map(|a| TierMember {
                id: a.id.as_str().into(),
                score: a.score as f32,
                potential_value: a.potential_value,
                coverage: a.coverage as f32,
                basis: TierBasis {
                    base: a.base_tier,
                    held_by_hysteresis: false,
                    locked: a.locked,
                    engagement: a.engagement.map(|e| Engagement {
                        until: e.until,
                        by: e.by,
                    }),
                },
            })
            .collect();
        for (sum, n) in candidates.iter_mut().zip(policy.candidates(&members, as_of)) {
            *sum += n;
        }
    }
    Ok(BudgetReport {
        currency: budget.currency.clone(),
        period: budget.period,
        plan: budget.planned_spend(store.tier_counts().await?),
        candidates,
        seats: budget.seats(candidates),
        returns: funnel.map(|f| budget.returns(f)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(total: Option<f64>) -> Budget {
        let text = format!(
            "tier_1 = 50\ntier_2 = 30\ntier_3 = 5\nperiod = \"month\"\ncurrency = \"USD\"\n{}",
            total.map(|t| format!("total = {t}")).unwrap_or_default()
        );
        Budget::compile(&toml::from_str(&text).expect("parse"), "budget").expect("valid")
    }

    #[test]
    fn problems_are_reported_by_key() {
        let raw: RawBudget =
            toml::from_str("tier_1 = -1\ntier_3 = 5\nperiod = \"week\"\ncurrency = \"usd\"\ntotal = 0")
                .expect("parse");
        let errors = Budget::compile(&raw, "budget").expect_err("invalid");
        let keys: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            keys,
            [
                "budget.tier_1",
                "budget.tier_2",
                "budget.period",
                "budget.currency",
                "budget.total"
            ]
        );
        assert!(
            toml::from_str::<RawBudget>("tier_4 = 1").is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn planned_spend_is_rate_times_accounts() {
        // 100 x 50 + 150 x 30 + 400 x 5 = 5,000 + 4,500 + 2,000 = 11,500, 1,500 over 10,000.
        let plan = budget(Some(10_000.0)).planned_spend([100, 150, 400, 1_000]);
        let spends: Vec<f64> = plan.tiers.iter().map(|t| t.spend).collect();
        assert_eq!(spends, [5_000.0, 4_500.0, 2_000.0]);
        assert_eq!(
            (plan.total, plan.untiered, plan.over_budget),
            (11_500.0, 1_000, Some(1_500.0))
        );
    }

    #[test]
    fn returns_compare_each_tier_with_the_untiered_baseline() {
        let funnel = FunnelInput {
            tiers: [
                TierFunnel {
                    accounts: 100,
                    deals_created: 40,
                    deals_won: 10,
                    won_amount: 500_000.0,
                },
                TierFunnel {
                    accounts: 200,
                    deals_created: 30,
                    deals_won: 6,
                    won_amount: 120_000.0,
                },
                TierFunnel {
                    accounts: 400,
                    ..TierFunnel::default()
                },
            ],
            baseline: TierFunnel {
                accounts: 1_000,
                deals_created: 20,
                deals_won: 4,
                won_amount: 200_000.0,
            },
            periods: 3.0,
        };
        let r = budget(None).returns(&funnel);
        // Tier 1: spend 100 x 50 x 3 = 15,000; 15,000 / 40 = 375 per deal created, / 10 = 1,500
        // per deal won; 5,000 won per account against 200: lift 25, incremental
        // (5,000 - 200) x 100 = 480,000, 32 per unit of spend, net 465,000.
        assert_eq!(r[0].spend, 15_000.0);
        assert_eq!(r[0].cost_per_deal_created, Some(375.0));
        assert_eq!(r[0].cost_per_deal_won, Some(1_500.0));
        assert_eq!(r[0].lift, Some(25.0));
        assert_eq!(r[0].incremental_won, Some(480_000.0));
        assert_eq!(r[0].return_on_spend, Some(32.0));
        assert_eq!(r[0].net_return, Some(465_000.0));
        // Tier 2: spend 200 x 30 x 3 = 18,000; 600 per deal created, 3,000 per deal won; 600 won
        // per account: incremental (600 - 200) x 200 = 80,000, 80,000 / 18,000 = 4.444...
        assert_eq!(r[1].cost_per_deal_created, Some(600.0));
        assert_eq!(r[1].cost_per_deal_won, Some(3_000.0));
        assert_eq!(r[1].incremental_won, Some(80_000.0));
        assert!((r[1].return_on_spend.expect("some") - 40.0 / 9.0).abs() < 1e-12);
        // Tier 3 won nothing: spend 6,000, no cost per deal, and it fell short of the baseline by
        // 200 x 400 = 80,000.
        assert_eq!(r[2].spend, 6_000.0);
        assert_eq!((r[2].cost_per_deal_created, r[2].cost_per_deal_won), (None, None));
        assert_eq!(r[2].incremental_won, Some(-80_000.0));
        assert_eq!(r[2].net_return, Some(-86_000.0));
    }

    #[test]
    fn a_total_buys_tier_1_seats_first_then_tier_2() {
        // Tier 3 for all 650 candidates: 3,250; 6,750 left buys all 100 Tier 1 upgrades (45 each,
        // 4,500), and 2,250 / 25 = 90 of the 150 Tier 2 upgrades: 100 x 50 + 90 x 30 + 460 x 5 =
        // 10,000 exactly.
        let plan = budget(Some(10_000.0)).seats([100, 150, 400]).expect("a total");
        assert_eq!(
            (plan.tier_1_seats, plan.tier_2_seats, plan.tier_3_accounts),
            (100, 90, 460)
        );
        assert_eq!(
            (plan.spend, plan.left_over, plan.shortfall),
            (10_000.0, 0.0, None)
        );
        assert_eq!(plan.caps(), [Some(Cap::Count(100)), Some(Cap::Count(90))]);
    }

    #[test]
    fn a_tight_total_leaves_tier_1_candidates_to_compete_for_tier_2() {
        // 5,000 - 3,250 = 1,750: 38 Tier 1 seats (1,710); 40 left buys 1 Tier 2 seat (25) among
        // 150 + 62 candidates; 15 left over. 38 x 50 + 1 x 30 + 611 x 5 = 4,985.
        let plan = budget(Some(5_000.0)).seats([100, 150, 400]).expect("a total");
        assert_eq!(
            (plan.tier_1_seats, plan.tier_2_seats, plan.tier_3_accounts),
            (38, 1, 611)
        );
        assert_eq!((plan.spend, plan.left_over), (4_985.0, 15.0));
    }

    #[test]
    fn a_total_below_tier_3_for_everyone_buys_no_seat() {
        let plan = budget(Some(3_000.0)).seats([100, 150, 400]).expect("a total");
        assert_eq!((plan.tier_1_seats, plan.tier_2_seats), (0, 0));
        assert_eq!(plan.shortfall, Some(250.0));
        assert!(budget(None).seats([1, 1, 1]).is_none());
    }
}
