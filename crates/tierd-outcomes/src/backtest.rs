//! The backtest: how a model would have tiered the accounts of the closed deals, each on the day
//! the deal was created, and how those deals then went.
//!
//! Each closed deal of a stored account is labelled won or lost and its account scored by the
//! model **as of the deal's creation day** (`Model::score`: events dated later have not happened,
//! renewal dates count from that day) and tiered by `TierPolicy::assign` on that day: a full run
//! (no hysteresis), no locks (a person's lock says nothing of a model), the engagement lift as
//! configured, and the caps over the whole population scored that day when the policy has caps
//! (budget-sized caps are not sized here: no cap). The figures per tier are the funnel's
//! ([`crate::funnel`], over a tier history made of those decisions): closed deals, win rate with
//! its Wilson interval, velocity, and their lifts over the deals the model leaves untiered. Then
//! the AUC of the scores (won against lost, [`crate::auc`]) and **Tier 1 precision**: won ÷
//! closed among the deals the model put in Tier 1.
//!
//! **Hindsight.** The store keeps each account's latest facts with the day each was observed, not
//! their history. A deal is scored on facts known when it was created when every fact read (event
//! lists aside: their events carry their own dates, and later ones are ignored) was observed on or
//! before that day; otherwise on today's facts, and it is counted (`scored_on_later_facts`).
//!
//! **Cost.** With caps, each deal creation day scores and ranks the whole population, so the
//! days (independent of one another) are shared out among the cores in runs of about equal work;
//! the deals come back in the order one thread gives them.
//!
//! Owns no I/O and knows nothing of the store's JSON: the caller decodes each account's facts for
//! each model (`BacktestAccount::new`) and passes the deals the store returned.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use tierd_core::fact::{FactType, Facts};
use tierd_core::model::FactRow;
use tierd_core::score::Weights;
use tierd_core::tier::{Lock, RunKind, TierCandidate};
use tierd_core::{Date, Model, ScoreCard, Tier, TierPolicy};
use tierd_store::{StoredDeal, TierEvent};

use crate::auc::auc;
use crate::funnel::{funnel, Funnel, FunnelQuery};
use crate::stats::Rate;

const DAY_MS: i64 = 86_400_000;

/// One stored account, laid out for one model (and its policy).
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestAccount {
    /// Its id.
    pub id: String,
    /// Its facts, in the model's (and policy's) schema.
    pub row: FactRow,
    /// The latest day one of its facts (event lists aside) was observed.
    pub observed: Option<Date>,
    /// Some fact (event lists aside) has no observation day: when it was known is unknown.
    pub undated: bool,
}

impl BacktestAccount {
    /// An account from its current facts, laid out by `schema` (the model's, extended by the
    /// policy's). Fails, naming the fact, when a fact's type is not the one the model reads.
    pub fn new(
        id: impl Into<String>,
        schema: &tierd_core::FactSchema,
        facts: &Facts,
    ) -> Result<BacktestAccount, String> {
        let row = schema.row_from(facts)?;
        let mut observed = None;
        let mut undated = false;
        for (name, fact) in facts {
            let Some(slot) = schema.slot(name.as_str()) else {
                continue;
            };
            if schema.fact_type(slot) == FactType::DateList {
                continue;
            }
            match fact.observed_at {
                Some(d) => observed = observed.max(Some(d)),
                None => undated = true,
            }
        }
        Ok(BacktestAccount {
            id: id.into(),
            row,
            observed,
            undated,
        })
    }

    /// Whether scoring it for `day` uses facts observed later (or undated).
    fn hindsight_on(&self, day: Date) -> bool {
        self.undated || self.observed.is_some_and(|o| o > day)
    }
}

/// Why a deal is not in the backtest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BacktestIssueReason {
    /// Closed, without an account.
    NoAccount,
    /// Closed, of an account the store does not hold.
    UnknownAccount,
    /// Closed, without a creation date: no day to score it on.
    NoCreationDate,
    /// Closed, but neither won nor lost is known.
    UnknownOutcome,
}

impl BacktestIssueReason {
    /// Words for a person.
    pub fn describe(self) -> &'static str {
        match self {
            BacktestIssueReason::NoAccount => "closed without an account",
            BacktestIssueReason::UnknownAccount => "closed, of an account the store does not hold",
            BacktestIssueReason::NoCreationDate => "closed without a creation date",
            BacktestIssueReason::UnknownOutcome => "closed, neither won nor lost",
        }
    }
}

/// A closed deal left out of the backtest, by id and reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BacktestIssue {
    /// The deal's id.
    pub deal: String,
    /// Why.
    pub reason: BacktestIssueReason,
}

/// The closed deals a backtest (and a fit) can learn from.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledDeals {
    /// Closed, won or lost, of a stored account, with a creation date.
    pub deals: Vec<StoredDeal>,
    /// Deals not closed (open, or a stage that says neither): not outcomes yet.
    pub not_closed: u64,
    /// Closed deals left out, by id.
    pub issues: Vec<BacktestIssue>,
}

/// Sorts the live deals into those with an outcome to learn from and those left out (by id).
pub fn label_deals<'a>(deals: &[StoredDeal], accounts: impl IntoIterator<Item = &'a str>) -> LabelledDeals {
    let known: HashSet<&str> = accounts.into_iter().collect();
    let mut out = LabelledDeals {
        deals: Vec::new(),
        not_closed: 0,
        issues: Vec::new(),
    };
    for d in deals {
        if d.closed != Some(true) {
            out.not_closed += 1;
            continue;
        }
        let reason = match (&d.account, d.created_at, d.won) {
            (None, _, _) => Some(BacktestIssueReason::NoAccount),
            (Some(a), _, _) if !known.contains(a.as_str()) => Some(BacktestIssueReason::UnknownAccount),
            (_, None, _) => Some(BacktestIssueReason::NoCreationDate),
            (_, _, None) => Some(BacktestIssueReason::UnknownOutcome),
            _ => None,
        };
        match reason {
            Some(reason) => out.issues.push(BacktestIssue {
                deal: d.id.clone(),
                reason,
            }),
            None => out.deals.push(d.clone()),
        }
    }
    out.issues
        .sort_by(|a, b| (a.reason, &a.deal).cmp(&(b.reason, &b.deal)));
    out
}

/// The day of an epoch-millisecond instant (UTC).
fn day_of(ms: i64) -> Date {
    Date::from_days(i32::try_from(ms.div_euclid(DAY_MS)).unwrap_or(i32::MAX))
}

/// One labelled deal as a model saw it on its creation day.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredDeal {
    /// The deal's id.
    pub deal: String,
    /// Its account.
    pub account: String,
    /// Its creation day: the day scored and tiered on.
    pub created: Date,
    /// Won (else lost).
    pub won: bool,
    /// The account's score that day.
    pub score: f32,
    /// Its tier that day.
    pub tier: Tier,
    /// Scored on facts observed after that day.
    pub hindsight: bool,
    /// Each criterion's points that day, in model order (an unknown fact at its criterion's blank
    /// points, as scoring counts it). The score is Σ share × points over every criterion (see
    /// [`live_shares`]).
    pub points: Vec<f64>,
}

/// Each criterion's share of the score when every criterion is scored: component weight ÷ all
/// component weights × criterion weight ÷ its component's criterion weights. They sum to 1.
pub fn live_shares(model: &Model) -> Vec<f64> {
    let all: f64 = model.components.iter().map(|c| f64::from(c.weight)).sum();
    model
        .criteria
        .iter()
        .map(|c| {
            let within: f64 = model
                .criteria
                .iter()
                .filter(|k| k.component == c.component)
                .map(|k| f64::from(k.weight))
                .sum();
            f64::from(model.components[c.component].weight) / all * f64::from(c.weight) / within
        })
        .collect()
}

/// The points each criterion counts with (see [`ScoredDeal::points`]): every criterion counts in
/// every score, an unknown fact with its criterion's blank points.
pub fn effective_points(card: &ScoreCard) -> Vec<f64> {
    card.criteria.iter().map(|o| f64::from(o.points)).collect()
}

/// Scores and tiers the account of each labelled deal on the deal's creation day (see the
/// module doc). `accounts` must hold every labelled deal's account, laid out for `model`.
pub fn score_deals(
    model: &Model,
    policy: &TierPolicy,
    accounts: &[BacktestAccount],
    labelled: &[StoredDeal],
) -> Vec<ScoredDeal> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    score_deals_on(model, policy, accounts, labelled, threads.clamp(1, 8))
}

/// [`score_deals`] on up to `threads` threads.
fn score_deals_on(
    model: &Model,
    policy: &TierPolicy,
    accounts: &[BacktestAccount],
    labelled: &[StoredDeal],
    threads: usize,
) -> Vec<ScoredDeal> {
    let index: HashMap<&str, usize> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.as_str(), i))
        .collect();
    let capped = policy.caps.iter().any(Option::is_some);
    let mut by_day: BTreeMap<Date, Vec<(&StoredDeal, usize)>> = BTreeMap::new();
    for d in labelled {
        let (Some(account), Some(created)) = (d.account.as_deref(), d.created_at) else {
            continue;
        };
        let Some(&i) = index.get(account) else {
            continue;
        };
        by_day.entry(day_of(created)).or_default().push((d, i));
    }
    // Days are independent: they are shared out among the cores in runs of consecutive days of
    // about equal work (a day with caps scores the whole population, one without only its deals'
    // accounts), and the deals come back in day order, as one thread would give them.
    let days: Vec<DayDeals> = by_day.into_iter().collect();
    let work = |deals: &[(&StoredDeal, usize)]| if capped { accounts.len() } else { deals.len() };
    let total: usize = days.iter().map(|(_, d)| work(d)).sum();
    let threads = threads.max(1);
    let mut shares: Vec<&[DayDeals]> = Vec::with_capacity(threads);
    let (mut from, mut done) = (0, 0);
    for (i, (_, deals)) in days.iter().enumerate() {
        done += work(deals);
        if done * threads >= total * (shares.len() + 1) || i + 1 == days.len() {
            shares.push(&days[from..=i]);
            from = i + 1;
        }
    }
    let weights = Weights::of(model);
    let scorer = DayScorer {
        model,
        weights: &weights,
        policy,
        accounts,
        capped,
    };
    let score_days = |share: &[DayDeals]| {
        let mut out = Vec::new();
        let mut card = ScoreCard::default();
        for (day, deals) in share {
            scorer.score_day(*day, deals, &mut card, &mut out);
        }
        out
    };
    let mut out: Vec<ScoredDeal> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .iter()
            .map(|&share| scope.spawn(move || score_days(share)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    out.sort_by(|a, b| a.deal.cmp(&b.deal));
    out
}

/// A day's deals, each with its account's place in the accounts.
type DayDeals<'a> = (Date, Vec<(&'a StoredDeal, usize)>);

/// What [`score_deals`] scores and tiers with, shared by its threads.
struct DayScorer<'a> {
    model: &'a Model,
    /// The model's weights, worked out once.
    weights: &'a Weights,
    policy: &'a TierPolicy,
    accounts: &'a [BacktestAccount],
    /// The policy has caps: a day ranks the whole population.
    capped: bool,
}

impl DayScorer<'_> {
    /// Scores and tiers the accounts of one day's deals (the whole population when capped) as
    /// of `day`, appending a [`ScoredDeal`] per deal to `out`.
    fn score_day(
        &self,
        day: Date,
        deals: &[(&StoredDeal, usize)],
        card: &mut ScoreCard,
        out: &mut Vec<ScoredDeal>,
    ) {
        let DayScorer {
            model,
            weights,
            policy,
            accounts,
            capped,
        } = *self;
        // Caps rank the whole population; without them a tier needs only its own account.
        let tiered: Vec<usize> = if capped {
            (0..accounts.len()).collect()
        } else {
            let mut v: Vec<usize> = deals.iter().map(|(_, i)| *i).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let mut cards = Vec::with_capacity(tiered.len());
        let candidates: Vec<TierCandidate> = tiered
            .iter()
            .map(|&i| {
                let a = &accounts[i];
                model.score_weighed(&a.row, day, weights, card);
                cards.push(card.clone());
                TierCandidate {
                    id: a.id.as_str().into(),
                    score: card.score,
                    potential_value: card.potential_value.unwrap_or(0.0),
                    coverage: card.coverage,
                    previous: None,
                    lock: Lock::Unlocked,
                    engagement: policy.engagement_on(&a.row, day),
                }
            })
            .collect();
        let assigned = policy.assign(&candidates, RunKind::Full, day);
        let position: HashMap<usize, usize> = tiered.iter().enumerate().map(|(p, &i)| (i, p)).collect();
        for &(d, i) in deals {
            let p = position[&i];
            out.push(ScoredDeal {
                deal: d.id.clone(),
                account: accounts[i].id.clone(),
                created: day,
                won: d.won == Some(true),
                score: cards[p].score,
                tier: assigned[p].tier,
                hindsight: accounts[i].hindsight_on(day),
                points: effective_points(&cards[p]),
            });
        }
    }
}

/// One model's backtest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelBacktest {
    /// The model's `name@version`.
    pub model: String,
    /// Which model this is (`live`, or the candidate's file).
    pub label: String,
    /// Closed deals scored.
    pub deals: u64,
    /// Of those, won.
    pub won: u64,
    /// Of those, lost.
    pub lost: u64,
    /// Scored on facts observed after the deal was created (or undated): with hindsight.
    pub scored_on_later_facts: u64,
    /// The AUC of the scores, won against lost (`None` without both).
    pub auc: Option<f64>,
    /// Won ÷ closed among the deals tiered Tier 1, with its Wilson interval.
    pub tier_1_precision: Rate,
    /// The funnel per tier of these deals, against the deals the model left untiered. Its
    /// `accounts` are the accounts with a closed deal under the tier.
    pub funnel: Funnel,
}

/// Backtests one model over the labelled deals (see the module doc). `currency` limits the
/// amounts counted, as in the funnel.
pub fn backtest_model(
    label: &str,
    model: &Model,
    policy: &TierPolicy,
    accounts: &[BacktestAccount],
    labelled: &[StoredDeal],
    currency: Option<String>,
) -> (ModelBacktest, Vec<ScoredDeal>) {
    let scored = score_deals(model, policy, accounts, labelled);
    // The model's decisions as a tier history: each account's tier on each day it had a deal.
    let mut events: Vec<TierEvent> = scored
        .iter()
        .map(|s| TierEvent {
            account: s.account.clone(),
            at: i64::from(s.created.days()) * DAY_MS,
            tier: s.tier,
        })
        .collect();
    events.sort_by(|a, b| (&a.account, a.at).cmp(&(&b.account, b.at)));
    events.dedup();
    let query = FunnelQuery {
        from: None,
        to: None,
        currency,
        model: model.id(),
        target_list_fact: None,
    };
    let f = funnel(&events, labelled, &query);
    let won = scored.iter().filter(|s| s.won).count() as u64;
    let pairs: Vec<(f64, bool)> = scored.iter().map(|s| (f64::from(s.score), s.won)).collect();
    let tier_1_precision = f.row(Tier::Tier1).map_or(Rate::new(0, 0), |r| r.win_rate);
    let report = ModelBacktest {
        model: model.id(),
        label: label.to_string(),
        deals: scored.len() as u64,
        won,
        lost: scored.len() as u64 - won,
        scored_on_later_facts: scored.iter().filter(|s| s.hindsight).count() as u64,
        auc: auc(&pairs),
        tier_1_precision,
        funnel: f,
    };
    (report, scored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierd_core::fact::{Fact, FactName, FactValue};
    use tierd_core::tier::Cap;

    /// One criterion: the industry, A = 5 (Tier 1 at the default 4.5 / 3.75 / 3.0), B = 4
    /// (Tier 2), C = 3.2 (Tier 3), D = 1 (untiered).
    const MODEL: &str = r#"
name = "bt"
version = "1"
[components.fit]
weight = 1
[[criteria]]
name = "industry"
component = "fit"
weight = 1
fact = "firmographic.industry"
[criteria.rule]
map = { A = 5, B = 4, C = 3.2, D = 1 }
"#;

    fn date(s: &str) -> Date {
        s.parse().expect("date")
    }

    fn account(model: &Model, id: &str, industry: &str, observed: Option<&str>) -> BacktestAccount {
        let mut facts = Facts::new();
        facts.insert(
            FactName::new("firmographic.industry").expect("name"),
            Fact {
                value: FactValue::String(industry.into()),
                source: "crm".into(),
                observed_at: observed.map(date),
            },
        );
        BacktestAccount::new(id, model.schema(), &facts).expect("account")
    }

    fn deal(
        id: &str,
        account: Option<&str>,
        created: Option<&str>,
        closed: bool,
        won: Option<bool>,
    ) -> StoredDeal {
        StoredDeal {
            id: id.into(),
            account: account.map(Into::into),
            pipeline: None,
            stage: None,
            amount: Some(100.0),
            currency: None,
            created_at: created.map(|d| i64::from(date(d).days()) * DAY_MS),
            close_date: created.map(|d| date(d).add_days(10)),
            closed: Some(closed),
            won,
        }
    }

    fn fixture() -> (Model, Vec<BacktestAccount>, Vec<StoredDeal>) {
        let model = Model::from_toml(MODEL, "model").expect("model");
        // a1 observed 2026-01-10; a3's fact has no observation day; the rest observed 2025-12-01.
        let accounts = vec![
            account(&model, "a1", "A", Some("2026-01-10")),
            account(&model, "a2", "A", Some("2025-12-01")),
            account(&model, "a3", "B", None),
            account(&model, "a4", "B", Some("2025-12-01")),
            account(&model, "a5", "C", Some("2025-12-01")),
            account(&model, "a6", "D", Some("2025-12-01")),
            account(&model, "a7", "D", Some("2025-12-01")),
        ];
        let c = |d: &str, a: &str, day: &str, won: bool| deal(d, Some(a), Some(day), true, Some(won));
        let deals = vec![
            c("d1", "a1", "2026-01-05", true),
            c("d2", "a1", "2026-02-01", true),
            c("d3", "a2", "2026-02-01", false),
            c("d4", "a3", "2026-02-02", true),
            c("d5", "a4", "2026-02-02", false),
            c("d6", "a4", "2026-02-03", false),
            c("d7", "a5", "2026-02-03", true),
            c("d8", "a6", "2026-02-04", false),
            c("d9", "a7", "2026-02-04", true),
            c("d10", "a7", "2026-02-05", false),
            deal("x1", None, Some("2026-02-01"), true, Some(true)),
            deal("x2", Some("zz"), Some("2026-02-01"), true, Some(false)),
            deal("x3", Some("a1"), None, true, Some(true)),
            deal("x4", Some("a1"), Some("2026-02-01"), true, None),
            deal("o1", Some("a1"), Some("2026-02-01"), false, Some(false)),
        ];
        (model, accounts, deals)
    }

    #[test]
    fn deals_without_an_outcome_to_learn_from_are_listed_by_id() {
        let (_, accounts, deals) = fixture();
        let l = label_deals(&deals, accounts.iter().map(|a| a.id.as_str()));
        assert_eq!(l.deals.len(), 10);
        assert_eq!(l.not_closed, 1);
        let issues: Vec<(&str, BacktestIssueReason)> =
            l.issues.iter().map(|i| (i.deal.as_str(), i.reason)).collect();
        assert_eq!(
            issues,
            vec![
                ("x1", BacktestIssueReason::NoAccount),
                ("x2", BacktestIssueReason::UnknownAccount),
                ("x3", BacktestIssueReason::NoCreationDate),
                ("x4", BacktestIssueReason::UnknownOutcome),
            ]
        );
    }

    #[test]
    fn the_backtest_matches_the_hand_computation() {
        let (model, accounts, deals) = fixture();
        let l = label_deals(&deals, accounts.iter().map(|a| a.id.as_str()));
        let (b, scored) = backtest_model("live", &model, &TierPolicy::default(), &accounts, &l.deals, None);
        // Tier 1 (A: a1, a2): d1, d2 won, d3 lost: 2/3. Tier 2 (B: a3, a4): d4 won, d5, d6 lost:
        // 1/3. Tier 3 (C: a5): d7 won: 1/1. Untiered (D: a6, a7): d9 won, d8, d10 lost: 1/3.
        let rate = |t: Tier| {
            let r = b.funnel.row(t).expect("row").win_rate;
            (r.successes, r.trials)
        };
        assert_eq!(rate(Tier::Tier1), (2, 3));
        assert_eq!(rate(Tier::Tier2), (1, 3));
        assert_eq!(rate(Tier::Tier3), (1, 1));
        assert_eq!(rate(Tier::Untiered), (1, 3));
        assert_eq!((b.deals, b.won, b.lost), (10, 5, 5));
        assert_eq!((b.tier_1_precision.successes, b.tier_1_precision.trials), (2, 3));
        // Win-rate lift of Tier 1 over the untiered: (2/3) / (1/3) = 2.
        let lift = b.funnel.row(Tier::Tier1).expect("row").win_rate_lift.value;
        assert!((lift.expect("lift") - 2.0).abs() < 1e-12);
        // Won scores 5, 5, 4, 3.2, 1; lost 5, 4, 4, 1, 1. Won-over-lost pairs, ties half:
        // 4.5 + 4.5 + 3 + 2 + 1 = 15 of 25 = 0.6.
        assert!((b.auc.expect("auc") - 0.6).abs() < 1e-12, "{:?}", b.auc);
        // Hindsight: d1 (created 2026-01-05, a1 observed 2026-01-10) and d4 (a3 undated).
        let later: Vec<&str> = scored
            .iter()
            .filter(|s| s.hindsight)
            .map(|s| s.deal.as_str())
            .collect();
        assert_eq!(later, vec!["d1", "d4"]);
        assert_eq!(b.scored_on_later_facts, 2);
        // Velocity of Tier 1: 3 deals × 2/3 × 100 mean won ÷ 10 days = 20 a day.
        let v = b
            .funnel
            .row(Tier::Tier1)
            .expect("row")
            .velocity
            .expect("velocity");
        assert!((v - 20.0).abs() < 1e-9, "{v}");
    }

    #[test]
    fn caps_rank_the_population_of_the_day() {
        let (model, accounts, deals) = fixture();
        let l = label_deals(&deals, accounts.iter().map(|a| a.id.as_str()));
        // One Tier 1 seat: a1 and a2 both score 5 every day; the tie goes to the id (a1), so
        // a2's d3 (2026-02-01) counts in Tier 2, a1's d1 and d2 in Tier 1.
        let policy = TierPolicy {
            caps: [Some(Cap::Count(1)), None],
            ..TierPolicy::default()
        };
        let (b, scored) = backtest_model("live", &model, &policy, &accounts, &l.deals, None);
        let tier_of = |d: &str| scored.iter().find(|s| s.deal == d).expect("deal").tier;
        assert_eq!(tier_of("d1"), Tier::Tier1);
        assert_eq!(tier_of("d2"), Tier::Tier1);
        assert_eq!(tier_of("d3"), Tier::Tier2);
        let r = b.funnel.row(Tier::Tier1).expect("row").win_rate;
        assert_eq!((r.successes, r.trials), (2, 2));
    }

    /// Days are scored on several threads: any number of them gives what one gives, with caps
    /// (each day ranks every account) and without.
    #[test]
    fn scoring_the_days_on_several_threads_gives_what_one_thread_gives() {
        let (model, accounts, deals) = fixture();
        let labelled = label_deals(&deals, accounts.iter().map(|a| a.id.as_str())).deals;
        let capped = TierPolicy {
            caps: [Some(Cap::Count(1)), Some(Cap::Count(2))],
            ..TierPolicy::default()
        };
        for policy in [TierPolicy::default(), capped] {
            let one = score_deals_on(&model, &policy, &accounts, &labelled, 1);
            assert_eq!(one.len(), 10, "every labelled deal once");
            for threads in [2, 3, 5, 6, 64] {
                assert!(
                    score_deals_on(&model, &policy, &accounts, &labelled, threads) == one,
                    "{threads} threads"
                );
            }
        }
    }

    #[test]
    fn shares_and_effective_points_rebuild_the_score() {
        let model = Model::from_toml(
            r#"
name = "two"
version = "1"
[components.fit]
weight = 3
[components.timing]
weight = 1
[[criteria]]
name = "industry"
component = "fit"
weight = 1
fact = "firmographic.industry"
[criteria.rule]
map = { A = 5, B = 2 }
[[criteria]]
name = "size"
component = "fit"
weight = 3
fact = "firmographic.employee_count"
[criteria.rule]
bands = [{ max = 100, points = 1 }, { min = 100, points = 4 }]
[[criteria]]
name = "competitor"
component = "timing"
weight = 1
fact = "contracts.is_competitor"
[criteria.rule]
bool = { true = 5, false = 2 }
"#,
            "model",
        )
        .expect("model");
        // Shares: fit 3/4 × (1/4, 3/4), timing 1/4 × 1.
        assert_eq!(live_shares(&model), vec![0.1875, 0.5625, 0.25]);
        let of = |facts: &[(&str, FactValue)]| {
            let facts: Facts = facts
                .iter()
                .map(|(n, v)| {
                    let fact = Fact {
                        value: v.clone(),
                        source: "crm".into(),
                        observed_at: None,
                    };
                    (FactName::new(n).expect("name"), fact)
                })
                .collect();
            let a = BacktestAccount::new("x", model.schema(), &facts).expect("account");
            let card = model.score(&a.row, date("2026-01-01"));
            (card.score, effective_points(&card))
        };
        // Industry A (5), size unknown (its lowest points, 1), not with a competitor (2):
        // score 0.1875·5 + 0.5625·1 + 0.25·2 = 2.0.
        let industry = |v: &str| ("firmographic.industry", FactValue::String(v.into()));
        let (score, points) = of(&[industry("A"), ("contracts.is_competitor", FactValue::Bool(false))]);
        assert_eq!((score, points), (2.0, vec![5.0, 1.0, 2.0]));
        // Industry B (2) alone: size and competitor unknown at their lowest (1 and 2):
        // 0.1875·2 + 0.5625·1 + 0.25·2 = 1.4375, kept in thousandths as scores are: 1.438.
        assert_eq!(of(&[industry("B")]), (1.438, vec![2.0, 1.0, 2.0]));
    }
}
