//! The enrich stage: runs the plugins over one work item's accounts through the store-backed
//! facts cache, and merges their answers into each account's facts.
//!
//! A plugin's answer replaces the account's own value of the same fact, and the replaced value
//! is kept with it (`tierd_core::codec`), so an account re-enriched from storage starts from its
//! own facts again. A plugin that fails for an account leaves its previous answer in place,
//! flagged stale; the account's score is never zeroed by a failure.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Map, Value};
use tierd_core::codec::{self, StoredFact, StoredFacts};
use tierd_core::fact::{Fact, FactName};
use tierd_core::Date;
use tierd_plugin_host::{AccountInput, EnrichOptions, Outcome};
use tierd_store::{AccountState, NewSignal, RunKind, Timestamp};

use crate::context::RunCtx;
use crate::timings::{Stage, StageTimes};
use crate::work::WorkAccount;

/// A work item after enrichment.
pub(crate) struct Enriched {
    /// Per account, in the item's order.
    pub(crate) facts: Vec<StoredFacts>,
    /// Signals the plugins reported.
    pub(crate) signals: Vec<SeenSignal>,
    /// Plugin results that failed (previous facts kept).
    pub(crate) stale: u64,
}

/// A signal a plugin reported, with its detail (a renewal's date...), which webhook events carry
/// and the store does not keep.
pub(crate) struct SeenSignal {
    pub(crate) signal: NewSignal,
    pub(crate) detail: Value,
}

/// The cache key the host would choose: the domain (lower-cased) or the id.
fn account_key(domain: Option<&str>, id: &str) -> String {
    match domain.map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => d.to_ascii_lowercase(),
        None => id.to_string(),
    }
}

fn date_of(t: Timestamp) -> Date {
    Date::from_unix_seconds(t.millis().div_euclid(1000))
}

/// Enriches `accounts`; `previous` is their stored state (for the answers of failing plugins).
pub(crate) async fn enrich(
    ctx: &RunCtx<'_>,
    accounts: &[WorkAccount],
    previous: &HashMap<String, AccountState>,
    times: &mut StageTimes,
) -> anyhow::Result<Enriched> {
    let (p, scorer) = (ctx.p, ctx.scorer);
    let mut facts: Vec<StoredFacts> = accounts
        .iter()
        .map(|a| {
            let (f, problems) = codec::decode(&scorer.schema, &a.facts);
            for problem in problems {
                tracing::warn!(account = %a.id, fact = %problem.fact, problem = %problem.problem, "fact left out");
            }
            f
        })
        .collect();
    let mut out = Enriched {
        facts: Vec::new(),
        signals: Vec::new(),
        stale: 0,
    };
    let Some(set) = &p.plugins else {
        out.facts = facts;
        return Ok(out);
    };
    let keys: Vec<String> = accounts
        .iter()
        .map(|a| account_key(a.domain.as_deref(), &a.id))
        .collect();
    let versions: Vec<(String, String)> = set.plugins().into_iter().map(|i| (i.name, i.version)).collect();
    let started = Instant::now();
    p.cache
        .prefetch(&p.store, &versions, &keys)
        .await
        .context("read the plugins' cached facts")?;
    times.since(Stage::Commit, started);
    let inputs = accounts
        .iter()
        .zip(&facts)
        .zip(&keys)
        .map(|((a, f), key)| AccountInput {
            key: key.clone(),
            id: a.id.clone(),
            name: a.name.clone().unwrap_or_default(),
            domain: a.domain.clone(),
            facts: f
                .iter()
                .map(|(n, s)| (n.as_str().to_string(), codec::value_to_json(&s.fact.value)))
                .collect(),
            related: Map::new(),
            state: Value::Null,
        })
        .collect();
    let options = EnrichOptions {
        refresh: ctx.kind == RunKind::Full,
    };
    let enriched = set
        .enrich_timed(&scorer.as_of.to_string(), inputs, &options)
        .await;
    let mut failed_plugins: HashSet<String> = HashSet::new();
    for ((i, enrichment), key) in enriched.accounts.into_iter().enumerate().zip(&keys) {
        let account = &accounts[i];
        for r in enrichment.results {
            // A cached answer was observed when it was cached; never after the scoring date
            // (runs scored as of a past date read answers cached since).
            let observed = match &r.outcome {
                Outcome::Cached { .. } => p.cache.observed_at(&r.plugin, key).map(date_of),
                _ => None,
            }
            .map_or(scorer.as_of, |d| d.min(scorer.as_of));
            let (plugin_facts, plugin_signals) = match r.outcome {
                Outcome::Fresh { facts, signals } | Outcome::Cached { facts, signals } => (facts, signals),
                Outcome::NoMatch => continue,
                Outcome::Stale { reason } => {
                    out.stale += 1;
                    failed_plugins.insert(r.plugin.clone());
                    tracing::warn!(plugin = %r.plugin, account = %account.id, %reason, "plugin failed; previous facts kept");
                    if let Some(prev) = previous.get(&account.id) {
                        let (kept, _) = codec::decode(&scorer.schema, &prev.facts);
                        for (name, mut stored) in kept.into_iter().filter(|(_, s)| s.fact.source == r.plugin)
                        {
                            stored.stale = true;
                            facts[i].insert(name, stored);
                        }
                    }
                    continue;
                }
            };
            for (name, _slot, typed) in crate::enrich::typed_plugin_facts(&scorer.schema, &plugin_facts) {
                let (Ok(Some(value)), Ok(fact_name)) = (typed, FactName::new(name)) else {
                    continue;
                };
                // Keep the account's own value this answer replaces (or the one the replaced
                // answer had kept), so it is never lost.
                let replaced = facts[i].get(&fact_name).and_then(|s| {
                    if ctx.is_own_source(&s.fact.source) {
                        Some(s.fact.clone())
                    } else {
                        s.replaced.clone()
                    }
                });
                facts[i].insert(
                    fact_name,
                    StoredFact {
                        fact: Fact {
                            value,
                            source: r.plugin.clone(),
                            observed_at: Some(observed),
                        },
                        stale: false,
                        replaced,
                    },
                );
            }
            for s in plugin_signals {
                match s.date.parse() {
                    Ok(date) => out.signals.push(SeenSignal {
                        signal: NewSignal {
                            account: account.id.clone(),
                            kind: s.kind,
                            subject: s.subject.unwrap_or_default(),
                            date,
                            source: r.plugin.clone(),
                        },
                        detail: Value::Object(s.detail),
                    }),
                    Err(_) => {
                        tracing::warn!(plugin = %r.plugin, account = %account.id, date = %s.date, "signal left out: its date is not YYYY-MM-DD")
                    }
                }
            }
        }
    }
    for (plugin, took) in &enriched.took {
        // The plugin's HTTP time is added per run (`timings`): requests of items processed side
        // by side cannot be told apart here.
        times.add_plugin(plugin, *took, Duration::ZERO);
        p.metrics
            .plugin_call(plugin, took.as_secs_f64(), !failed_plugins.contains(plugin));
    }
    let started = Instant::now();
    p.cache
        .flush(&p.store, &keys)
        .await
        .context("write the plugins' cached facts")?;
    times.since(Stage::Commit, started);
    out.facts = facts;
    Ok(out)
}
