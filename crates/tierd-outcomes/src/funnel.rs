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
    /// The flag fact that marks the CRM's target list (`[outcomes] target_list_fact`): when set,
    /// the report has a row for the accounts not on it ([`TargetListRow`]).
    pub target_list_fact: Option<String>,
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

/// One group's funnel figures: a tier's, the untiered baseline's, or those of the accounts not on
/// the CRM's target list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Accounts in the group in the period.
    pub accounts: u64,
    /// Accounts with a deal created in the group / accounts.
    pub conversion: Rate,
    /// Deals created in the group.
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

/// One tier's funnel (or the baseline's). Its figures are flattened into it in JSON, and read
/// through it in Rust (`row.win_rate`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelRow {
    /// The tier; `untiered` is the baseline.
    pub tier: Tier,
    /// The tier's figures.
    #[serde(flatten)]
    pub figures: Figures,
}

impl std::ops::Deref for FunnelRow {
    type Target = Figures;
    fn deref(&self) -> &Figures {
        &self.figures
    }
}

/// The accounts **not** on the CRM's target list (`[outcomes] target_list_fact` is not `true`),
/// whatever their tier: the team's own list as a second baseline, so tierd's tiers can be compared
/// with it. Membership is the list as last pulled (the CRM keeps no history of it); every deal in
/// the period of such an account counts here, before its first tiering too.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetListRow {
    /// The flag fact that says an account is on the list.
    pub fact: String,
    /// Stored accounts on the list (the fact is `true`), who are not in this row.
    pub accounts_on_list: u64,
    /// Of this row's accounts, those without the fact at all. All of them without it usually means
    /// the fact is misnamed or not mapped from the CRM.
    pub accounts_without_fact: u64,
    /// The figures, lifts against the untiered baseline.
    #[serde(flatten)]
    pub figures: Figures,
}

impl std::ops::Deref for TargetListRow {
    type Target = Figures;
    fn deref(&self) -> &Figures {
        &self.figures
    }
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
    /// The accounts not on the CRM's target list, when `target_list_fact` is configured.
    pub not_in_target_list: Option<TargetListRow>,
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
    funnel_with_target_list(history, deals, std::iter::empty(), q)
}

/// [`funnel`] with the row of the accounts not on the CRM's target list, from every stored
/// account's `target_list_fact` read as a flag (as `Store::for_each_account_flag` gives it); without
/// `q.target_list_fact` the flags are not read and there is no such row.
pub fn funnel_with_target_list<'a>(
    history: &[TierEvent],
    deals: &[StoredDeal],
    flags: impl IntoIterator<Item = (&'a str, Option<bool>)>,
    q: &FunnelQuery,
) -> Funnel {
    let mut timeline = Timeline::default();
    for e in history {
        timeline.push(&e.account, e.at, e.tier);
    }
    let mut counter = FunnelCounter::new(timeline, q);
    if q.target_list_fact.is_some() {
        for (account, flag) in flags {
            counter.list_account(account, flag);
        }
    }
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
    off_list: OffList,
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
            off_list: OffList::default(),
            issues: Vec::new(),
            deals_in_period: 0,
            before_tiering: 0,
        }
    }

    /// Adds one stored account and its target-list flag (before any deal is counted).
    pub(crate) fn list_account(&mut self, account: &str, flag: Option<bool>) {
        let o = &mut self.off_list;
        match flag {
            Some(true) => o.on_list += 1,
            _ => {
                let n = u32::try_from(o.number.len()).unwrap_or(u32::MAX);
                o.number.insert(account.into(), n);
                o.without_fact += u64::from(flag.is_none());
                o.acc.accounts.member.push(true);
                o.acc.accounts.len += 1;
                o.acc.converted.member.push(false);
            }
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
        if let Some(n) = self.off_list.number.get(account) {
            self.off_list.acc.add(*n, amount, cycle, d.closed, d.won);
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
        self.acc[index(tier)].add(n, amount, cycle, d.closed, d.won);
    }

    /// The report over the deals counted.
    pub(crate) fn finish(self) -> Funnel {
        let FunnelCounter {
            q,
            mut acc,
            mut off_list,
            mut issues,
            deals_in_period,
            before_tiering,
            ..
        } = self;
        let mut rows: Vec<FunnelRow> = Tier::ALL
            .iter()
            .zip(acc.iter_mut())
            .map(|(tier, a)| FunnelRow {
                tier: *tier,
                figures: a.figures(),
            })
            .collect();
        let base = rows[3].figures.clone();
        for r in &mut rows {
            r.figures.lift_over(&base);
        }
        let not_in_target_list = q.target_list_fact.as_ref().map(|fact| {
            let mut figures = off_list.acc.figures();
            figures.lift_over(&base);
            TargetListRow {
                fact: fact.clone(),
                accounts_on_list: off_list.on_list,
                accounts_without_fact: off_list.without_fact,
                figures,
            }
        });
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
            not_in_target_list,
            deals_in_period,
            deals_before_tiering: before_tiering,
            issue_counts,
            issues,
        }
    }
}

/// The accounts not on the CRM's target list, numbered as they were listed, and their counts.
#[derive(Default)]
struct OffList {
    number: HashMap<Box<str>, u32>,
    on_list: u64,
    without_fact: u64,
    acc: Acc,
}

impl Acc {
    /// Counts a deal of account `n` in this group.
    fn add(
        &mut self,
        n: u32,
        amount: Option<f64>,
        cycle: Option<f64>,
        closed: Option<bool>,
        won: Option<bool>,
    ) {
        self.accounts.insert(n);
        self.converted.insert(n);
        self.deals += 1;
        self.pipeline += amount.unwrap_or(0.0);
        if closed == Some(true) {
            self.closed += 1;
            if won == Some(true) {
                self.won += 1;
                self.won_amounts.extend(amount);
                self.cycles.extend(cycle);
            }
        }
    }

    /// The group's figures, lifts not yet set.
    fn figures(&mut self) -> Figures {
        let win_rate = Rate::new(self.won, self.closed);
        let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
        let mean_won_amount = mean(&self.won_amounts);
        let mean_days_to_close = mean(&self.cycles);
        let velocity = match (win_rate.value, mean_won_amount, mean_days_to_close) {
            (Some(w), Some(m), Some(c)) if c > 0.0 => Some(self.deals as f64 * w * m / c),
            _ => None,
        };
        Figures {
            accounts: self.accounts.len,
            conversion: Rate::new(self.converted.len, self.accounts.len),
            deals: self.deals,
            win_rate,
            mean_won_amount,
            median_won_amount: median(&mut self.won_amounts),
            won_with_amount: self.won_amounts.len() as u64,
            mean_days_to_close,
            median_days_to_close: median(&mut self.cycles),
            pipeline: self.pipeline,
            velocity,
            conversion_lift: Lift::of(None, None),
            win_rate_lift: Lift::of(None, None),
            won_amount_lift: Lift::of(None, None),
            days_to_close_lift: Lift::of(None, None),
            velocity_per_account_lift: Lift::of(None, None),
        }
    }
}

impl Figures {
    /// Sets each lift against `base`, the untiered baseline's figures.
    fn lift_over(&mut self, base: &Figures) {
        let per_account = |r: &Figures| {
            r.velocity
                .filter(|_| r.accounts > 0)
                .map(|v| v / r.accounts as f64)
        };
        self.conversion_lift = Lift::of_rate(&self.conversion, &base.conversion);
        self.win_rate_lift = Lift::of_rate(&self.win_rate, &base.win_rate);
        self.won_amount_lift = Lift::of(self.mean_won_amount, base.mean_won_amount);
        self.days_to_close_lift = Lift::of(self.mean_days_to_close, base.mean_days_to_close);
        self.velocity_per_account_lift = Lift::of(per_account(self), per_account(base));
    }
}

/// Whether a deal created on `day` is in the period.
fn in_period(q: &FunnelQuery, day: Date) -> bool {
    q.from.is_none_or(|f| day >= f) && q.to.is_none_or(|t| day <= t)
}
