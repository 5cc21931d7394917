//! The funnel per tier against the untiered baseline.
//!
//! Definitions (also in `docs/outcomes.md`):
//! - A deal is **in the period** when the day it was created is within `[from, to]`.
//! - It counts under the tier its account held at the end of that day (the last tier-history row
//!   at or before it). Before the account's first tiering it counts under none
//!   (`deals_before_tiering`).
//! - **Accounts** of a tier: those that held it on some day of the period (the tier held on `from`
//!   and every tier taken after it up to `to`); an account that changed tier counts in each.
//!   **Conversion** = accounts with a deal created under that tier / accounts.
//! - **Win rate** = won / closed, over the closed deals created in the period.
//! - Amounts (pipeline, won amounts) are in the configured currency only; **days to close** =
//!   close date − creation day, over won deals.
//! - **Velocity** = deals × win rate × mean won amount ÷ mean days to close (revenue per day).
//! - **Lift** = a tier's figure ÷ the baseline's (untiered), with a 95% interval for rates.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use tierd_core::tier::Tier;
use tierd_core::Date;
use tierd_store::{ReportDeal, StoredDeal, TierEvent};

use crate::stats::{median, ratio_interval, Interval, Rate};

const DAY_MS: i64 = 86_400_000;

/// What to count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunnelQuery {
    /// First creation day counted (inclusive); `None`: from the first deal.
    pub from: Option<Date>,
    /// Last creation day counted (inclusive); `None`: to the last deal.
    pub to: Option<Date>,
    /// The currency amounts are counted in; a deal in another is counted but its amount is not.
    /// `None`: every amount counts.
    pub currency: Option<String>,
    /// Which tiering the report follows (`live`, `shadow`), echoed in the report.
    pub model: String,
}

/// Why a deal is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueReason {
    /// No account: counted in no tier.
    NoAccount,
    /// No creation date: in no period, counted nowhere.
    NoCreationDate,
    /// No amount: counted as a deal, not in amounts.
    NoAmount,
    /// A currency other than the configured one: counted as a deal, not in amounts.
    OtherCurrency,
    /// The stage says neither open nor closed: counted as a deal, not in the win rate.
    UnknownStage,
    /// Closed before it was created: counted, not in days to close.
    CloseBeforeCreate,
}

impl IssueReason {
    /// Words for a person.
    pub fn describe(self) -> &'static str {
        match self {
            IssueReason::NoAccount => "no account: counted in no tier",
            IssueReason::NoCreationDate => "no creation date: counted in no period",
            IssueReason::NoAmount => "no amount: counted as a deal, not in amounts",
            IssueReason::OtherCurrency => "another currency: counted as a deal, not in amounts",
            IssueReason::UnknownStage => "unknown stage: counted as a deal, not in the win rate",
            IssueReason::CloseBeforeCreate => "closes before it was created: not in days to close",
        }
    }
}

/// A deal the report could not fully count, by id and reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DealIssue {
    /// The deal's id.
    pub deal: String,
    /// Why.
    pub reason: IssueReason,
}

/// A figure's lift over the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Lift {
    /// This row's value ÷ the baseline's; `None` when either is missing or the baseline's is 0.
    pub value: Option<f64>,
    /// 95% interval, for rates (Katz log method).
    pub interval: Option<Interval>,
}

impl Lift {
    fn of(value: Option<f64>, baseline: Option<f64>) -> Lift {
        let value = match (value, baseline) {
            (Some(v), Some(b)) if b != 0.0 => Some(v / b),
            _ => None,
        };
        Lift {
            value,
            interval: None,
        }
    }

    fn of_rate(rate: &Rate, baseline: &Rate) -> Lift {
        Lift {
            interval: ratio_interval(rate.successes, rate.trials, baseline.successes, baseline.trials),
            ..Lift::of(rate.value, baseline.value)
        }
    }
}

/// One tier's funnel (or the baseline's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelRow {
    /// The tier; `untiered` is the baseline.
    pub tier: Tier,
    /// Accounts that held the tier in the period.
    pub accounts: u64,
    /// Accounts with a deal created under the tier / accounts.
    pub conversion: Rate,
    /// Deals created under the tier.
    pub deals: u64,
    /// Won / closed deals.
    pub win_rate: Rate,
    /// Mean won amount.
    pub mean_won_amount: Option<f64>,
    /// Median won amount.
    pub median_won_amount: Option<f64>,
    /// Won deals with an amount in the currency (the amounts' sample size).
    pub won_with_amount: u64,
    /// Mean days from creation to close of won deals.
    pub mean_days_to_close: Option<f64>,
    /// Median days from creation to close of won deals.
    pub median_days_to_close: Option<f64>,
    /// Sum of the amounts of the deals created.
    pub pipeline: f64,
    /// deals × win rate × mean won amount ÷ mean days to close: revenue per day.
    pub velocity: Option<f64>,
    /// Conversion's lift over the baseline.
    pub conversion_lift: Lift,
    /// Win rate's lift.
    pub win_rate_lift: Lift,
    /// Mean won amount's lift.
    pub won_amount_lift: Lift,
    /// Mean days to close ÷ the baseline's (below 1: faster).
    pub days_to_close_lift: Lift,
    /// Velocity per account's lift (velocity ÷ accounts, so tiers of different sizes compare).
    pub velocity_per_account_lift: Lift,
}

/// The funnel report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Funnel {
    /// Which tiering it follows (`live`, `shadow`).
    pub model: String,
    /// First creation day counted, when bounded.
    pub from: Option<Date>,
    /// Last creation day counted, when bounded.
    pub to: Option<Date>,
    /// The currency amounts are in, when configured.
    pub currency: Option<String>,
    /// Tier 1, 2, 3, then the untiered baseline.
    pub rows: Vec<FunnelRow>,
    /// Deals created in the period.
    pub deals_in_period: u64,
    /// Of those, created before their account was first tiered (counted under no tier).
    pub deals_before_tiering: u64,
    /// Reported deals per reason.
    pub issue_counts: BTreeMap<IssueReason, u64>,
    /// Every reported deal, by id.
    pub issues: Vec<DealIssue>,
}

impl Funnel {
    /// The row of a tier.
    pub fn row(&self, tier: Tier) -> Option<&FunnelRow> {
        self.rows.iter().find(|r| r.tier == tier)
    }
}

/// The day of an epoch-millisecond instant (UTC).
fn day_of(ms: i64) -> Date {
    Date::from_days(i32::try_from(ms.div_euclid(DAY_MS)).unwrap_or(i32::MAX))
}

/// Each account's tiers over time, from the tier history. Accounts are numbered as they first
/// appear, so the per-tier sets below are flags by number rather than sets of strings: at a
/// million accounts that is what keeps the report in a few hundred MB.
#[derive(Default)]
pub(crate) struct Timeline {
    number: HashMap<Box<str>, u32>,
    changes: Vec<Vec<(Date, Tier)>>,
}

impl Timeline {
    /// Adds that `account` took `tier` at `at` (epoch milliseconds). Several changes of one
    /// account on one day must come in the order they happened (the store's order): the last
    /// holds that day.
    pub(crate) fn push(&mut self, account: &str, at: i64, tier: Tier) {
        let n = match self.number.get(account) {
            Some(n) => *n,
            None => {
                let n = u32::try_from(self.changes.len()).unwrap_or(u32::MAX);
                self.number.insert(account.into(), n);
                self.changes.push(Vec::new());
                n
            }
        };
        self.changes[n as usize].push((day_of(at), tier));
    }

    /// The tier account `n` held at the end of `day`, `None` before its first tiering.
    fn tier_on(&self, n: u32, day: Date) -> Option<Tier> {
        let v = &self.changes[n as usize];
        let i = v.partition_point(|(d, _)| *d <= day);
        i.checked_sub(1).map(|i| v[i].1)
    }
}

/// Accounts of one tier, by number: a flag each and how many are set.
#[derive(Default)]
struct AccountSet {
    member: Vec<bool>,
    len: u64,
}

impl AccountSet {
    fn with_accounts(n: usize) -> Self {
        AccountSet {
            member: vec![false; n],
            len: 0,
        }
    }

    fn insert(&mut self, n: u32) {
        let slot = &mut self.member[n as usize];
        if !*slot {
            *slot = true;
            self.len += 1;
        }
    }
}

#[derive(Default)]
struct Acc {
    accounts: AccountSet,
    converted: AccountSet,
    deals: u64,
    closed: u64,
    won: u64,
    won_amounts: Vec<f64>,
    cycles: Vec<f64>,
    pipeline: f64,
}

fn index(t: Tier) -> usize {
    Tier::ALL.iter().position(|x| *x == t).unwrap_or(3)
}

/// The funnel per tier and for the untiered baseline, from the tier history and the live deals.
pub fn funnel(history: &[TierEvent], deals: &[StoredDeal], q: &FunnelQuery) -> Funnel {
    let mut timeline = Timeline::default();
    for e in history {
        timeline.push(&e.account, e.at, e.tier);
    }
    let mut counter = FunnelCounter::new(timeline, q);
    for d in deals {
        counter.count(d.as_report());
    }
    counter.finish()
}

/// The funnel counted one deal at a time, so the store's rows can stream through it: the tier
/// history is held (compactly), the deals are not. [`funnel`] and `funnel_from_store` both count
/// through it, so there is one computation.
pub(crate) struct FunnelCounter<'q> {
    q: &'q FunnelQuery,
    timeline: Timeline,
    acc: [Acc; 4],
    issues: Vec<DealIssue>,
    deals_in_period: u64,
    before_tiering: u64,
}

impl<'q> FunnelCounter<'q> {
    /// Ready to count deals over `timeline`, the whole tier history.
    pub(crate) fn new(mut timeline: Timeline, q: &'q FunnelQuery) -> Self {
        for v in &mut timeline.changes {
            // Stable: several changes on one day keep their order; the last one holds that day.
            v.sort_by_key(|(d, _)| *d);
        }
        let n = timeline.changes.len();
        let mut acc: [Acc; 4] = std::array::from_fn(|_| Acc {
            accounts: AccountSet::with_accounts(n),
            converted: AccountSet::with_accounts(n),
            ..Acc::default()
        });
        // Accounts per tier: the tier held on `from`, and every tier taken within the period.
        for (account, changes) in timeline.changes.iter().enumerate() {
            let account = u32::try_from(account).unwrap_or(u32::MAX);
            for (i, (day, tier)) in changes.iter().enumerate() {
                let later_before_from = changes
                    .get(i + 1)
                    .is_some_and(|(next, _)| q.from.is_some_and(|f| *next <= f));
                let held = if q.from.is_some_and(|f| *day <= f) {
                    !later_before_from
                } else {
                    in_period(q, *day)
                };
                if held {
                    acc[index(*tier)].accounts.insert(account);
                }
            }
        }
        FunnelCounter {
            q,
            timeline,
            acc,
            issues: Vec::new(),
            deals_in_period: 0,
            before_tiering: 0,
        }
    }

    /// Counts one live deal.
    pub(crate) fn count(&mut self, d: ReportDeal<'_>) {
        let q = self.q;
        let issues = &mut self.issues;
        let Some(created) = d.created_at.map(day_of) else {
            issues.push(DealIssue {
                deal: d.id.to_string(),
                reason: IssueReason::NoCreationDate,
            });
            return;
        };
        if !in_period(q, created) {
            return;
        }
        self.deals_in_period += 1;
        let Some(account) = d.account else {
            issues.push(DealIssue {
                deal: d.id.to_string(),
                reason: IssueReason::NoAccount,
            });
            return;
        };
        let mut report = |reason| {
            issues.push(DealIssue {
                deal: d.id.to_string(),
                reason,
            })
        };
        let amount = match (d.amount, &q.currency, d.currency) {
            (None, _, _) => {
                report(IssueReason::NoAmount);
                None
            }
            (Some(_), Some(want), Some(got)) if !want.eq_ignore_ascii_case(got) => {
                report(IssueReason::OtherCurrency);
                None
            }
            (Some(a), _, _) => Some(a),
        };
        let cycle = match (d.won, d.close_date) {
            (Some(true), Some(close)) if close < created => {
                report(IssueReason::CloseBeforeCreate);
                None
            }
            (Some(true), Some(close)) => Some(f64::from(close.days() - created.days())),
            _ => None,
        };
        if d.closed.is_none() {
            report(IssueReason::UnknownStage);
        }
        let Some((n, tier)) = self
            .timeline
            .number
            .get(account)
            .and_then(|n| Some((*n, self.timeline.tier_on(*n, created)?)))
        else {
            self.before_tiering += 1;
            return;
        };
        let a = &mut self.acc[index(tier)];
        a.accounts.insert(n);
        a.converted.insert(n);
        a.deals += 1;
        a.pipeline += amount.unwrap_or(0.0);
        if d.closed == Some(true) {
            a.closed += 1;
            if d.won == Some(true) {
                a.won += 1;
                a.won_amounts.extend(amount);
                a.cycles.extend(cycle);
            }
        }
    }

    /// The report over the deals counted.
    pub(crate) fn finish(self) -> Funnel {
        let FunnelCounter {
            q,
            mut acc,
            mut issues,
            deals_in_period,
            before_tiering,
            ..
        } = self;
        let mut rows: Vec<FunnelRow> = Tier::ALL
            .iter()
            .zip(acc.iter_mut())
            .map(|(tier, a)| {
                let win_rate = Rate::new(a.won, a.closed);
                let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
                let mean_won_amount = mean(&a.won_amounts);
                let mean_days_to_close = mean(&a.cycles);
                let velocity = match (win_rate.value, mean_won_amount, mean_days_to_close) {
                    (Some(w), Some(m), Some(c)) if c > 0.0 => Some(a.deals as f64 * w * m / c),
                    _ => None,
                };
                FunnelRow {
                    tier: *tier,
                    accounts: a.accounts.len,
                    conversion: Rate::new(a.converted.len, a.accounts.len),
                    deals: a.deals,
                    win_rate,
                    mean_won_amount,
                    median_won_amount: median(&mut a.won_amounts),
                    won_with_amount: a.won_amounts.len() as u64,
                    mean_days_to_close,
                    median_days_to_close: median(&mut a.cycles),
                    pipeline: a.pipeline,
                    velocity,
                    conversion_lift: Lift::of(None, None),
                    win_rate_lift: Lift::of(None, None),
                    won_amount_lift: Lift::of(None, None),
                    days_to_close_lift: Lift::of(None, None),
                    velocity_per_account_lift: Lift::of(None, None),
                }
            })
            .collect();
        let base = rows[3].clone();
        let per_account = |r: &FunnelRow| {
            r.velocity
                .filter(|_| r.accounts > 0)
                .map(|v| v / r.accounts as f64)
        };
        for r in &mut rows {
            r.conversion_lift = Lift::of_rate(&r.conversion, &base.conversion);
            r.win_rate_lift = Lift::of_rate(&r.win_rate, &base.win_rate);
            r.won_amount_lift = Lift::of(r.mean_won_amount, base.mean_won_amount);
            r.days_to_close_lift = Lift::of(r.mean_days_to_close, base.mean_days_to_close);
            r.velocity_per_account_lift = Lift::of(per_account(r), per_account(&base));
        }
        issues.sort_by(|a, b| (a.reason, &a.deal).cmp(&(b.reason, &b.deal)));
        let mut issue_counts = BTreeMap::new();
        for i in &issues {
            *issue_counts.entry(i.reason).or_insert(0) += 1;
        }
        Funnel {
            model: q.model.clone(),
            from: q.from,
            to: q.to,
            currency: q.currency.clone(),
            rows,
            deals_in_period,
            deals_before_tiering: before_tiering,
            issue_counts,
            issues,
        }
    }
}

/// Whether a deal created on `day` is in the period.
fn in_period(q: &FunnelQuery, day: Date) -> bool {
    q.from.is_none_or(|f| day >= f) && q.to.is_none_or(|t| day <= t)
}
