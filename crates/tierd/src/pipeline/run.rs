//! The stages of one run: pull into work items, process items (enrich, score, commit), tier with
//! caps, push with per-batch commits. See the module doc of `pipeline` for the rules.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tierd_connectors::connector::{CrmAccount, PushOutcome, TierUpdate, Watermark};
use tierd_connectors::files::json_fact;
use tierd_connectors::plan::{plan_push, CrmTierState, LastPush, PlanOptions};
use tierd_core::diff::Movements;
use tierd_core::fact::{Fact, FactName, Facts};
use tierd_core::tier::{rank_order, RunKind as TierRunKind, TierCandidate};
use tierd_core::{Date, Tier};
use tierd_plugin_host::{AccountInput, EnrichOptions, Outcome};
use tierd_store::{
    AccountState, BatchCommit, Engagement, NewSignal, PushRecord, RejectedPush, Rescored, RunId, RunKind,
    RunStatus, ScoredAccount, Timestamp, WorkItem,
};

use super::{pyramid_of, Job, MovementLine, PilotSpec, Pipeline, Progress, RunReport, RunRequest, Scorer};
use crate::shutdown::ShutdownSignal;

/// How a run that did not fail ended.
pub(crate) enum Ending {
    Done,
    Stopped,
}

/// One account in a work item, as the queue carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WorkAccount {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    pub(crate) domain: Option<String>,
    pub(crate) crm_tier: Option<String>,
    pub(crate) locked: bool,
    /// Facts as stored: `{name: {value, source, observed_at}}`.
    pub(crate) facts: Value,
    /// Pulled from the CRM in this run (else restored from the store: CRM state unknown).
    pub(crate) pulled: bool,
}

impl WorkAccount {
    fn from_crm(a: &CrmAccount) -> Self {
        WorkAccount {
            id: a.id.clone(),
            name: a.name.clone(),
            domain: a.domain.clone(),
            crm_tier: a.crm_tier.map(|t| t.to_string()),
            locked: a.locked,
            facts: serde_json::to_value(&a.facts).unwrap_or_else(|_| json!({})),
            pulled: true,
        }
    }

    fn from_state(s: &AccountState) -> Self {
        WorkAccount {
            id: s.id.clone(),
            name: Some(s.name.clone()),
            domain: s.domain.clone(),
            crm_tier: s.crm_tier_seen.map(|t| t.to_string()),
            locked: s.locked,
            facts: s.facts.clone(),
            pulled: false,
        }
    }
}

/// A work item's payload.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    accounts: Vec<WorkAccount>,
}

/// What processing a batch found, for the report; and, when it committed nothing, its scores.
#[derive(Debug, Default)]
pub(crate) struct BatchResult {
    accounts: u64,
    stale: u64,
    quarantined: u64,
    uncommitted: Vec<Scored>,
}

/// A scored account kept in memory by runs that commit nothing.
#[derive(Debug, Clone)]
pub(crate) struct Scored {
    id: String,
    name: String,
    score: f64,
    coverage: f64,
    potential_value: f64,
    /// Thresholds, hysteresis, lock: before the lift and the caps.
    base: Tier,
    engagement: Option<Engagement>,
    live: Option<Tier>,
    locked: bool,
    crm_tier: Option<Tier>,
    last_push: Option<LastPush>,
    /// The score's reasons (the lift and the cap are added when tiering decides them).
    reason: String,
}

/// Facts read back from their stored JSON, typed by `schema` (facts it does not read are dropped).
pub(crate) fn facts_from_json(schema: &tierd_core::FactSchema, stored: &Value) -> Facts {
    let mut facts = Facts::new();
    let Value::Object(map) = stored else {
        return facts;
    };
    for (name, fact) in map {
        let (Some(slot), Ok(fact_name)) = (schema.slot(name), FactName::new(name)) else {
            continue;
        };
        let Ok(Some(value)) = json_fact(schema.fact_type(slot), &fact["value"]) else {
            continue;
        };
        facts.insert(
            fact_name,
            Fact {
                value,
                source: fact["source"].as_str().unwrap_or("crm").to_string(),
                observed_at: fact["observed_at"].as_str().and_then(|d| d.parse().ok()),
            },
        );
    }
    facts
}

/// Flags the facts of `failed` plugins as `"stale": true` in the stored JSON: they are the
/// previous run's, kept because the plugin failed this time (the API shows the flag).
fn mark_stale(facts: &mut Value, failed: &[String]) {
    let Value::Object(map) = facts else { return };
    for fact in map.values_mut() {
        let from_failed = fact["source"]
            .as_str()
            .is_some_and(|s| failed.iter().any(|f| f == s));
        if let (true, Value::Object(fields)) = (from_failed, fact) {
            fields.insert("stale".into(), Value::Bool(true));
        }
    }
}

/// The cache key the host would choose: the domain (lower-cased) or the id.
fn account_key(domain: Option<&str>, id: &str) -> String {
    match domain.map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => d.to_ascii_lowercase(),
        None => id.to_string(),
    }
}

fn fnv(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn date_of(t: Timestamp) -> Date {
    Date::from_unix_seconds(t.millis().div_euclid(1000))
}

fn tier_run_kind(job: Job) -> TierRunKind {
    match job {
        Job::Full => TierRunKind::Full,
        Job::Incremental => TierRunKind::Incremental,
    }
}

/// The engagement that lifts an account on `as_of`, with the last day it keeps lifting it (the
/// latest window of any override that fired; the first override on ties): stored with the
/// account, so runs that do not rescore it end the lift on time.
pub(crate) fn engagement_on(
    policy: &tierd_core::TierPolicy,
    row: &tierd_core::FactRow,
    as_of: Date,
) -> Option<Engagement> {
    let mut best: Option<Engagement> = None;
    for (i, o) in policy.overrides.iter().enumerate() {
        let Some(tierd_core::fact::FactValue::DateList(dates)) = row.get(o.slot) else {
            continue;
        };
        let within = i32::try_from(o.within_days).unwrap_or(i32::MAX);
        for d in dates {
            if !(0..=within).contains(&d.days_until(as_of)) {
                continue;
            }
            let until = d.add_days(within);
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

/// The override lifting an account on `as_of`, from its stored engagement.
fn lifting(engagement: Option<Engagement>, as_of: Date) -> Option<u16> {
    engagement.filter(|e| e.until >= as_of).map(|e| e.by)
}

fn bucket(score: f64, step: f32) -> f64 {
    let step = f64::from(step);
    (score / step).round() * step
}

/// Whether a pilot includes the account.
fn in_pilot(spec: &PilotSpec, account: &WorkAccount, facts: &Facts) -> bool {
    if let Some(share) = spec.sample {
        // FNV's high bits barely move for ids differing in their last digits: mix them first.
        let mut x = fnv(&account.id);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
        if unit >= share {
            return false;
        }
    }
    if let Some(filter) = &spec.filter {
        let Some((name, want)) = filter.split_once('=') else {
            return false;
        };
        let (name, want) = (name.trim(), want.trim());
        let Some(fact) = facts.iter().find(|(n, _)| n.as_str() == name).map(|(_, f)| f) else {
            return false;
        };
        return match &fact.value {
            tierd_core::fact::FactValue::StringList(items) => {
                items.iter().any(|i| i.eq_ignore_ascii_case(want))
            }
            other => other.to_string().eq_ignore_ascii_case(want),
        };
    }
    true
}

/// Enriches, scores and (when `commit`) commits one batch: scores and tiering basis, not tiers.
pub(crate) async fn process_batch(
    p: &Pipeline,
    scorer: &Scorer,
    run: RunId,
    kind: RunKind,
    job: Job,
    accounts: Vec<WorkAccount>,
    commit: bool,
) -> anyhow::Result<BatchResult> {
    let mut result = BatchResult {
        accounts: accounts.len() as u64,
        ..BatchResult::default()
    };
    let ids: Vec<String> = accounts.iter().map(|a| a.id.clone()).collect();
    let previous = p
        .store
        .accounts(&ids)
        .await
        .context("read the batch's previous state")?;
    let mut facts: Vec<Facts> = accounts
        .iter()
        .map(|a| {
            let mut f = facts_from_json(&scorer.schema, &a.facts);
            // Restored accounts carry plugin facts too: plugins answer for them again below.
            if !a.pulled {
                f.retain(|_, fact| {
                    fact.source == "crm" || fact.source == "file" || fact.source == p.connector.kind()
                });
            }
            f
        })
        .collect();
    let mut signals = Vec::new();
    // Per account: the plugins that failed for it this run (their previous facts are kept).
    let mut stale_sources: Vec<Vec<String>> = vec![Vec::new(); accounts.len()];
    if let Some(set) = &p.plugins {
        let keys: Vec<String> = accounts
            .iter()
            .map(|a| account_key(a.domain.as_deref(), &a.id))
            .collect();
        let versions: Vec<(String, String)> =
            set.plugins().into_iter().map(|i| (i.name, i.version)).collect();
        p.cache
            .prefetch(&p.store, &versions, &keys)
            .await
            .context("read the plugins' cached facts")?;
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
                    .filter_map(|(n, fact)| {
                        Some((n.as_str().to_string(), serde_json::to_value(&fact.value).ok()?))
                    })
                    .collect(),
                related: Map::new(),
                state: Value::Null,
            })
            .collect();
        let options = EnrichOptions {
            refresh: kind == RunKind::Full,
        };
        let started = std::time::Instant::now();
        let enriched = set.enrich_with(&scorer.as_of.to_string(), inputs, &options).await;
        let seconds = started.elapsed().as_secs_f64();
        let mut failed_plugins: HashSet<String> = HashSet::new();
        for ((i, enrichment), key) in enriched.into_iter().enumerate().zip(&keys) {
            let account = &accounts[i];
            for r in enrichment.results {
                let observed = match &r.outcome {
                    Outcome::Cached { .. } => p.cache.observed_at(&r.plugin, key).map(date_of),
                    _ => None,
                }
                .unwrap_or(scorer.as_of);
                let (plugin_facts, plugin_signals) = match r.outcome {
                    Outcome::Fresh { facts, signals } | Outcome::Cached { facts, signals } => {
                        (facts, signals)
                    }
                    Outcome::NoMatch => continue,
                    Outcome::Stale { reason } => {
                        result.stale += 1;
                        failed_plugins.insert(r.plugin.clone());
                        stale_sources[i].push(r.plugin.clone());
                        tracing::warn!(plugin = %r.plugin, account = %account.id, %reason, "plugin failed; previous facts kept");
                        if let Some(prev) = previous.get(&account.id) {
                            let kept = facts_from_json(&scorer.schema, &prev.facts);
                            for (name, fact) in kept.into_iter().filter(|(_, f)| f.source == r.plugin) {
                                facts[i].insert(name, fact);
                            }
                        }
                        continue;
                    }
                };
                for (name, _slot, typed) in crate::enrich::typed_plugin_facts(&scorer.schema, &plugin_facts) {
                    let (Ok(Some(value)), Ok(fact_name)) = (typed, FactName::new(name)) else {
                        continue;
                    };
                    facts[i].insert(
                        fact_name,
                        Fact {
                            value,
                            source: r.plugin.clone(),
                            observed_at: Some(observed),
                        },
                    );
                }
                for s in plugin_signals {
                    if let Ok(date) = s.date.parse() {
                        signals.push(NewSignal {
                            account: account.id.clone(),
                            kind: s.kind,
                            subject: s.subject.unwrap_or_default(),
                            date,
                            source: r.plugin.clone(),
                        });
                    }
                }
            }
        }
        for info in set.plugins() {
            p.metrics
                .plugin_call(&info.name, seconds, !failed_plugins.contains(&info.name));
        }
        p.cache
            .flush(&p.store, &keys)
            .await
            .context("write the plugins' cached facts")?;
    }

    let model_version = scorer.model.id();
    let mut scored = Vec::with_capacity(accounts.len());
    for ((account, facts), stale) in accounts.iter().zip(facts).zip(&stale_sources) {
        let row = match scorer.schema.row_from(&facts) {
            Ok(row) => row,
            Err(e) => {
                result.quarantined += 1;
                tracing::warn!(account = %account.id, error = %e, "account left out of the run");
                continue;
            }
        };
        let card = scorer.model.score(&row, scorer.as_of);
        let mut reasons = String::new();
        scorer.model.compact_reasons(
            &row,
            &card,
            scorer.as_of,
            scorer.reasons.0,
            scorer.reasons.1,
            &mut reasons,
        );
        let engagement = engagement_on(&scorer.policy, &row, scorer.as_of);
        let prev = previous.get(&account.id);
        let crm_tier: Option<Tier> = account.crm_tier.as_deref().and_then(|t| t.parse().ok());
        let lock = account
            .locked
            .then(|| crm_tier.or(prev.map(|p| p.tier)))
            .flatten();
        let candidate = TierCandidate {
            id: account.id.as_str().into(),
            score: card.score,
            potential_value: card.potential_value.unwrap_or(0.0),
            coverage: card.coverage,
            // Hysteresis compares tiers earned by score: the lift and the caps are decided anew.
            previous: prev.map(|p| p.base_tier),
            lock,
            engaged: None,
        };
        let base = scorer
            .per_account
            .assign(std::slice::from_ref(&candidate), tier_run_kind(job))[0]
            .tier;
        let reason = reasons;
        let name = account
            .name
            .clone()
            .or_else(|| prev.map(|p| p.name.clone()))
            .unwrap_or_else(|| account.id.clone());
        if !commit {
            result.uncommitted.push(Scored {
                id: account.id.clone(),
                name,
                score: f64::from(card.score),
                coverage: f64::from(card.coverage),
                potential_value: card.potential_value.unwrap_or(0.0),
                base,
                engagement,
                live: prev.map(|p| p.tier),
                locked: account.locked,
                crm_tier,
                last_push: prev.and_then(|p| p.pushed.as_ref()).map(|pushed| LastPush {
                    tier: pushed.tier,
                    score: pushed.score_bucket as f32,
                    reason: pushed.reason.clone(),
                }),
                reason,
            });
            continue;
        }
        let explanation = scorer.model.explain(&row, &card, scorer.as_of);
        let mut facts_json = serde_json::to_value(&facts).unwrap_or_else(|_| json!({}));
        mark_stale(&mut facts_json, stale);
        let facts_hash = format!("{:016x}", fnv(&facts_json.to_string()));
        scored.push(Rescored {
            account: ScoredAccount {
                id: account.id.clone(),
                name,
                domain: account.domain.clone(),
                facts: facts_json,
                facts_hash,
                score: f64::from(card.score),
                coverage: f64::from(card.coverage),
                potential_value: card.potential_value.unwrap_or(0.0),
                tier: base,
                explanation: json!({ "reasons": reason, "detail": explanation }),
                reason,
                model_version: model_version.clone(),
                crm_tier_seen: crm_tier,
                locked: account.locked,
            },
            engagement,
        });
    }
    if commit {
        p.store
            .commit_scores(run, &scored)
            .await
            .context("commit the batch's scores")?;
        if !signals.is_empty() {
            p.store
                .insert_signals(Some(run), &signals)
                .await
                .context("record signals")?;
        }
    }
    p.metrics.accounts_processed(result.accounts);
    Ok(result)
}

/// Claims and processes one work item of `run`; false when none was queued.
pub(crate) async fn consume_one(
    p: &Pipeline,
    scorer: &Scorer,
    run: RunId,
    kind: RunKind,
) -> anyhow::Result<bool> {
    let items: Vec<WorkItem> = p.store.claim_work(run, &p.instance, 1).await?;
    let Some(item) = items.into_iter().next() else {
        return Ok(false);
    };
    let job = match kind {
        RunKind::Full => Job::Full,
        _ => Job::Incremental,
    };
    let outcome = match serde_json::from_value::<Payload>(item.payload) {
        Ok(payload) => process_batch(p, scorer, run, kind, job, payload.accounts, true).await,
        Err(e) => Err(anyhow::anyhow!(
            "work item {} of run {run} is unreadable: {e}",
            item.id
        )),
    };
    let ok = match &outcome {
        Ok(_) => true,
        Err(e) => {
            p.metrics.error("score");
            tracing::error!(run = run.0, item = item.id.0, error = %format!("{e:#}"), "work item failed");
            false
        }
    };
    p.store.complete_work(item.id, &p.instance, ok).await?;
    Ok(true)
}

/// Shared between the pull, the enqueuer and the local consumers of one run.
struct Shared {
    pull_done: AtomicBool,
    enqueued: tokio::sync::Notify,
    results: Mutex<BatchResult>,
}

/// The whole run after `begin_run`.
pub(crate) async fn execute(
    p: &Pipeline,
    scorer: &Scorer,
    request: &RunRequest,
    run: RunId,
    report: &mut RunReport,
    shutdown: ShutdownSignal,
    progress: Option<Arc<dyn Progress>>,
) -> anyhow::Result<Ending> {
    let kind = request.kind;
    let job = request.effective_job();
    let commit = matches!(kind, RunKind::Full | RunKind::Incremental);
    if commit {
        let schema = p
            .connector
            .ensure_schema()
            .await
            .inspect_err(|_| {
                p.metrics.error("push");
            })
            .context("check tierd's fields in the CRM")?;
        if !schema.is_complete() {
            anyhow::bail!(
                "{}: tierd's fields are missing in the CRM: {}; create them, then run again",
                p.connector.kind(),
                schema.missing.join(", ")
            );
        }
    }
    let last_success = last_successful(p).await?;
    let since = match (job, &last_success) {
        (Job::Incremental, Some(r)) => r.watermark.as_deref().and_then(Watermark::parse),
        _ => None,
    };

    // Pull -> work items -> processed.
    if let Some(pr) = &progress {
        pr.stage("pull", None);
    }
    let shared = Shared {
        pull_done: AtomicBool::new(false),
        enqueued: tokio::sync::Notify::new(),
        results: Mutex::new(BatchResult::default()),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<WorkAccount>>(p.settings.pipeline.channel_pages);
    let mut pulled_ids: HashSet<String> = HashSet::new();
    let track_ids = job == Job::Incremental;
    let stop_rx = shutdown.clone();
    let pull = async {
        let mut stream = p.connector.pull(since);
        let mut quarantined = 0u64;
        let mut stopped = false;
        // The last page's watermark is the one to store; no page means nothing new.
        let mut watermark = since;
        while let Some(page) = stream.next().await {
            if *stop_rx.borrow() {
                stopped = true;
                break;
            }
            let page = page.map_err(|e| {
                p.metrics.error("pull");
                anyhow::Error::new(e).context("pull accounts from the CRM")
            })?;
            watermark = page.watermark.or(watermark);
            quarantined += page.quarantined.len() as u64;
            for q in &page.quarantined {
                tracing::warn!(record = %q, "record quarantined");
            }
            let mut batch: Vec<WorkAccount> = page.accounts.iter().map(WorkAccount::from_crm).collect();
            if let (RunKind::Pilot, Some(spec)) = (kind, &request.pilot) {
                batch.retain(|a| in_pilot(spec, a, &facts_from_json(&scorer.schema, &a.facts)));
            }
            if tx.send(batch).await.is_err() {
                break;
            }
        }
        drop(tx);
        anyhow::Ok((quarantined, stopped, watermark))
    };
    let enqueue = async {
        let size = p.settings.pipeline.batch_size;
        let mut buffer: Vec<WorkAccount> = Vec::new();
        let mut out: Vec<Vec<WorkAccount>> = Vec::new();
        while let Some(accounts) = rx.recv().await {
            if track_ids {
                pulled_ids.extend(accounts.iter().map(|a| a.id.clone()));
            }
            buffer.extend(accounts);
            while buffer.len() >= size {
                let rest = buffer.split_off(size);
                out.push(std::mem::replace(&mut buffer, rest));
            }
            for batch in out.drain(..) {
                hand_over(p, scorer, run, kind, job, commit, batch, &shared, &progress).await?;
            }
        }
        if !buffer.is_empty() {
            hand_over(p, scorer, run, kind, job, commit, buffer, &shared, &progress).await?;
        }
        anyhow::Ok(())
    };
    let consumers = async {
        if !commit {
            return anyhow::Ok(());
        }
        let workers =
            (0..p.settings.pipeline.workers).map(|_| consume_until_done(p, scorer, run, kind, job, &shared));
        for r in futures_util::future::join_all(workers).await {
            r?;
        }
        anyhow::Ok(())
    };
    let producer = async {
        let (pulled, enqueued) = tokio::join!(pull, enqueue);
        shared.pull_done.store(true, Ordering::SeqCst);
        shared.enqueued.notify_waiters();
        let pulled = pulled?;
        enqueued?;
        anyhow::Ok(pulled)
    };
    let (produced, consumed) = tokio::join!(producer, consumers);
    let (quarantined, stopped, watermark) = match (produced, consumed) {
        (Ok(v), Ok(())) => v,
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    report.quarantined += quarantined;
    p.metrics.quarantined(quarantined);
    if stopped {
        return Ok(Ending::Stopped);
    }

    // Incremental: accounts with new signals since the last successful run, from the store.
    if job == Job::Incremental {
        if let Some(last) = &last_success {
            let signalled = p.store.accounts_with_signals_since(last.started_at).await?;
            let restore: Vec<String> = signalled
                .into_iter()
                .filter(|id| !pulled_ids.contains(id))
                .collect();
            for chunk in restore.chunks(p.settings.pipeline.batch_size) {
                let states = p.store.accounts(chunk).await?;
                let batch: Vec<WorkAccount> = states.values().map(WorkAccount::from_state).collect();
                let r = process_batch(p, scorer, run, kind, job, batch, commit).await?;
                merge(&shared, r);
            }
        }
    }
    let progress_of_work = p.store.work_progress(run).await?;
    if progress_of_work.failed > 0 {
        p.metrics.error("score");
        anyhow::bail!(
            "{} work item(s) of run {run} failed (see the log); the next run processes those accounts again",
            progress_of_work.failed
        );
    }
    let results = std::mem::take(&mut *shared.results.lock().unwrap_or_else(|e| e.into_inner()));
    report.accounts = results.accounts;
    report.stale_plugin_results = results.stale;
    report.quarantined += results.quarantined;

    // Tier.
    if let Some(pr) = &progress {
        pr.stage("tier", None);
    }
    let population = if commit {
        population_from_store(p, scorer, None).await?
    } else if kind == RunKind::DryRun {
        population_from_store(p, scorer, Some(&results.uncommitted)).await?
    } else {
        results
            .uncommitted
            .iter()
            .map(|s| Member {
                id: s.id.clone(),
                score: s.score,
                coverage: s.coverage,
                potential_value: s.potential_value,
                base: s.base,
                engaged: lifting(s.engagement, scorer.as_of),
                stored: s.live,
                compare: s.live,
                locked: s.locked,
            })
            .collect()
    };
    let decided = decide_tiers(scorer, &population);
    report.pyramid = pyramid_of(decided.iter().map(|d| d.tier));
    let mut movements = Movements::default();
    for (m, d) in population.iter().zip(&decided) {
        movements.record(m.compare, d.tier);
    }
    report.movements = Some(movements);

    // Diff and push.
    // An incremental job looks at what it pulled, what tiering changed, and what is pending.
    let to_finalize: Vec<Final> = {
        let pending: HashSet<String> = p
            .store
            .pending_pushes(false)
            .await?
            .into_iter()
            .map(|pp| pp.account)
            .collect();
        population
            .iter()
            .zip(decided)
            .filter(|(m, d)| {
                job != Job::Incremental
                    || Some(d.tier) != m.stored
                    || Some(d.tier) != m.compare
                    || pulled_ids.contains(&m.id)
                    || pending.contains(&m.id)
            })
            .map(|(m, d)| Final {
                id: m.id.clone(),
                compare: m.compare,
                decided: d,
            })
            .collect()
    };
    drop(population);
    let uncommitted: HashMap<String, Scored> = results
        .uncommitted
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    push_stage(
        p,
        scorer,
        run,
        kind,
        to_finalize,
        &uncommitted,
        report,
        shutdown,
        progress,
        watermark,
    )
    .await
}

/// Hands a batch to the queue (committing runs) or processes it here.
#[allow(clippy::too_many_arguments)]
async fn hand_over(
    p: &Pipeline,
    scorer: &Scorer,
    run: RunId,
    kind: RunKind,
    job: Job,
    commit: bool,
    batch: Vec<WorkAccount>,
    shared: &Shared,
    progress: &Option<Arc<dyn Progress>>,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    if let Some(pr) = progress {
        pr.advance(batch.len() as u64);
    }
    if commit {
        let payload = serde_json::to_value(Payload { accounts: batch })?;
        p.store.enqueue_work(run, &[payload]).await?;
        shared.enqueued.notify_waiters();
        return Ok(());
    }
    let r = process_batch(p, scorer, run, kind, job, batch, false).await?;
    merge(shared, r);
    Ok(())
}

fn merge(shared: &Shared, r: BatchResult) {
    let mut total = shared.results.lock().unwrap_or_else(|e| e.into_inner());
    total.accounts += r.accounts;
    total.stale += r.stale;
    total.quarantined += r.quarantined;
    total.uncommitted.extend(r.uncommitted);
}

/// A local consumer: processes the run's items until the pull is done and no item is left
/// (items claimed by other instances included; stale claims are requeued).
async fn consume_until_done(
    p: &Pipeline,
    scorer: &Scorer,
    run: RunId,
    kind: RunKind,
    job: Job,
    shared: &Shared,
) -> anyhow::Result<()> {
    let stale_after = Duration::from_secs(p.settings.pipeline.stale_work_secs);
    loop {
        let notified = shared.enqueued.notified();
        let items = p.store.claim_work(run, &p.instance, 1).await?;
        if let Some(item) = items.into_iter().next() {
            let r = match serde_json::from_value::<Payload>(item.payload) {
                Ok(payload) => process_batch(p, scorer, run, kind, job, payload.accounts, true).await,
                Err(e) => Err(anyhow::anyhow!("work item {} is unreadable: {e}", item.id)),
            };
            let ok = match r {
                Ok(r) => {
                    merge(shared, r);
                    true
                }
                Err(e) => {
                    p.metrics.error("score");
                    tracing::error!(run = run.0, item = item.id.0, error = %format!("{e:#}"), "work item failed");
                    false
                }
            };
            p.store.complete_work(item.id, &p.instance, ok).await?;
            continue;
        }
        if shared.pull_done.load(Ordering::SeqCst) {
            let progress = p.store.work_progress(run).await?;
            if progress.is_finished() {
                return Ok(());
            }
            // Items claimed elsewhere: wait for them, taking back those of a dead instance.
            p.store.requeue_stale_work(stale_after).await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), notified).await;
    }
}

/// The last successful committing run.
async fn last_successful(p: &Pipeline) -> anyhow::Result<Option<tierd_store::Run>> {
    let full = p
        .store
        .last_run(Some(RunKind::Full), Some(RunStatus::Succeeded))
        .await?;
    let incr = p
        .store
        .last_run(Some(RunKind::Incremental), Some(RunStatus::Succeeded))
        .await?;
    Ok(match (full, incr) {
        (Some(a), Some(b)) => Some(if a.id > b.id { a } else { b }),
        (a, b) => a.or(b),
    })
}

/// What tiering needs of one account.
#[derive(Debug, Clone)]
struct Member {
    id: String,
    score: f64,
    coverage: f64,
    potential_value: f64,
    /// Its tier by thresholds, hysteresis and lock (as of its last scoring).
    base: Tier,
    /// The engagement override lifting it on the run's date.
    engaged: Option<u16>,
    /// Its tier before this run (`None`: never tiered).
    stored: Option<Tier>,
    /// What movements compare with: the pushed tier (committing runs) or the live tier.
    compare: Option<Tier>,
    locked: bool,
}

/// The whole population from the store, paged; `overlay` replaces scores of a run that commits
/// nothing.
async fn population_from_store(
    p: &Pipeline,
    scorer: &Scorer,
    overlay: Option<&[Scored]>,
) -> anyhow::Result<Vec<Member>> {
    const PAGE: u32 = 5_000;
    let overlay: HashMap<&str, &Scored> = overlay
        .unwrap_or_default()
        .iter()
        .map(|s| (s.id.as_str(), s))
        .collect();
    let from_memory = |o: &Scored, live: Option<Tier>| Member {
        id: o.id.clone(),
        score: o.score,
        coverage: o.coverage,
        potential_value: o.potential_value,
        base: o.base,
        engaged: lifting(o.engagement, scorer.as_of),
        stored: live,
        compare: live,
        locked: o.locked,
    };
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    let mut seen: HashSet<&str> = HashSet::new();
    loop {
        let page = p.store.account_summaries(after.as_deref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for s in page {
            let stored = s.tiered.then_some(s.tier);
            let member = match overlay.get(s.id.as_str()) {
                Some(o) => {
                    seen.insert(o.id.as_str());
                    from_memory(o, stored)
                }
                None => Member {
                    // Committing runs compare with what the CRM was given; dry runs with the live tier.
                    compare: if overlay.is_empty() { s.pushed_tier } else { stored },
                    engaged: lifting(s.engagement, scorer.as_of),
                    stored,
                    id: s.id,
                    score: s.score,
                    coverage: s.coverage,
                    potential_value: s.potential_value,
                    base: s.base_tier,
                    locked: s.locked,
                },
            };
            out.push(member);
        }
    }
    for (id, o) in &overlay {
        if !seen.contains(id) {
            out.push(from_memory(o, None));
        }
    }
    Ok(out)
}

/// How tiering decided one account's tier.
#[derive(Debug, Clone, Copy)]
struct Decided {
    tier: Tier,
    /// The override that lifted it one tier.
    lifted_by: Option<u16>,
    /// The tier a pyramid cap demoted it from.
    capped_from: Option<Tier>,
}

/// One account the push stage looks at.
struct Final {
    id: String,
    compare: Option<Tier>,
    decided: Decided,
}

/// Every account's tier on the run's date: its base tier, lifted one tier while an engagement
/// override holds (locked accounts keep their tier), then the pyramid caps over the population
/// (locked accounts take their seats first), as `TierPolicy::assign` applies them: overflow
/// demoted by rank.
fn decide_tiers(scorer: &Scorer, population: &[Member]) -> Vec<Decided> {
    let mut out: Vec<Decided> = population
        .iter()
        .map(|m| match m.engaged {
            Some(by) if !m.locked && m.base.lifted() != m.base => Decided {
                tier: m.base.lifted(),
                lifted_by: Some(by),
                capped_from: None,
            },
            _ => Decided {
                tier: m.base,
                lifted_by: None,
                capped_from: None,
            },
        })
        .collect();
    let n = population.len();
    let candidate = |m: &Member| TierCandidate {
        id: m.id.as_str().into(),
        score: m.score as f32,
        potential_value: m.potential_value,
        coverage: m.coverage as f32,
        previous: None,
        lock: None,
        engaged: None,
    };
    for (i, cap) in scorer.policy.caps.iter().enumerate() {
        let Some(cap) = cap else { continue };
        let capped = Tier::ALL[i];
        let locked_in = (0..n)
            .filter(|&j| population[j].locked && out[j].tier == capped)
            .count();
        let room = cap.limit(n).saturating_sub(locked_in);
        let mut members: Vec<usize> = (0..n)
            .filter(|&j| !population[j].locked && out[j].tier == capped)
            .collect();
        if members.len() <= room {
            continue;
        }
        members.sort_unstable_by(|&a, &b| rank_order(&candidate(&population[a]), &candidate(&population[b])));
        for &j in &members[room..] {
            out[j].capped_from.get_or_insert(capped);
            out[j].tier = capped.demoted();
        }
    }
    out
}

/// An account's reason in a seller's words: the score's reasons, after the cap and the lift that
/// decided its tier, if any.
fn final_reason(scorer: &Scorer, score_reasons: &str, d: &Decided) -> String {
    let mut out = String::new();
    if let Some(from) = d.capped_from {
        out.push_str(&format!("pyramid cap: {from} is full; "));
    }
    if let Some(by) = d.lifted_by {
        let label = scorer
            .policy
            .overrides
            .get(usize::from(by))
            .map_or("engagement", |o| o.label.as_str());
        out.push_str(&format!("{label} (lifted one tier); "));
    }
    out.push_str(score_reasons);
    out
}

/// Pushes (or, for runs that commit nothing, plans) the final tiers, batch by batch.
#[allow(clippy::too_many_arguments)]
async fn push_stage(
    p: &Pipeline,
    scorer: &Scorer,
    run: RunId,
    kind: RunKind,
    to_finalize: Vec<Final>,
    uncommitted: &HashMap<String, Scored>,
    report: &mut RunReport,
    shutdown: ShutdownSignal,
    progress: Option<Arc<dyn Progress>>,
    watermark: Option<Watermark>,
) -> anyhow::Result<Ending> {
    let commit = matches!(kind, RunKind::Full | RunKind::Incremental);
    let options = PlanOptions {
        score_step: p.settings.pipeline.score_step,
    };
    let pending: HashMap<String, tierd_store::PendingPush> = p
        .store
        .pending_pushes(true)
        .await?
        .into_iter()
        .map(|pp| (pp.account.clone(), pp))
        .collect();
    if let Some(pr) = &progress {
        pr.stage("push", Some(to_finalize.len() as u64));
    }
    let top = p.settings.pipeline.top_movements;
    let now = Timestamp::now();
    for (batch_no, chunk) in to_finalize
        .chunks(p.settings.pipeline.push_batch_size)
        .enumerate()
    {
        if commit && *shutdown.borrow() {
            return Ok(Ending::Stopped);
        }
        let ids: Vec<String> = chunk.iter().map(|f| f.id.clone()).collect();
        // Dry runs read them too: accounts they did not rescore may still change tier.
        let states = p.store.accounts(&ids).await?;
        let mut updates = Vec::new();
        let mut crm: HashMap<String, CrmTierState> = HashMap::new();
        let mut last: HashMap<String, LastPush> = HashMap::new();
        let mut scored = Vec::new();
        let mut adopted = Vec::new();
        let mut held_rejected = 0u64;
        for Final { id, compare, decided } in chunk {
            let tier = &decided.tier;
            // Runs that commit nothing scored in memory what they rescored.
            let mut view = match (uncommitted.get(id), states.get(id)) {
                (Some(u), _) => View::from_scored(u),
                (None, Some(s)) => View::from_state(s, run),
                (None, None) => continue,
            };
            view.reason = final_reason(scorer, &view.reason, decided);
            if compare != &Some(*tier) && report.top_movements.len() < top {
                report.top_movements.push(MovementLine {
                    id: id.clone(),
                    name: view.name.clone(),
                    from: *compare,
                    to: *tier,
                    reason: view.reason.clone(),
                });
            }
            if let Some(state) = states.get(id) {
                if state.tier != *tier || !state.tiered {
                    scored.push(final_state(state, *tier, &view.reason));
                }
            }
            let update = TierUpdate {
                id: id.clone(),
                tier: *tier,
                score: view.score as f32,
                coverage: view.coverage as f32,
                reason: view.reason.clone(),
                model: view.model.clone(),
                scored_at: Watermark(view.scored_at),
            };
            if let Some(l) = &view.last_push {
                last.insert(id.clone(), l.clone());
            }
            let pulled_now = view.pulled_now;
            // The adoption rule (module doc): the CRM already holds what tierd is about to write.
            if pulled_now
                && !view.locked
                && view.crm_tier == Some(*tier)
                && view.last_push.as_ref().map(|l| l.tier) != Some(*tier)
            {
                adopted.push(PushRecord {
                    account: id.clone(),
                    tier: *tier,
                    score_bucket: bucket(view.score, options.score_step),
                    reason: view.reason.clone(),
                });
                continue;
            }
            if let Some(pp) = pending.get(id) {
                if pp.tier == *tier && (pp.permanent || pp.next_attempt_at > now) {
                    held_rejected += 1;
                    continue;
                }
            }
            crm.insert(
                id.clone(),
                CrmTierState {
                    crm_tier: if pulled_now { view.crm_tier } else { None },
                    locked: view.locked,
                },
            );
            updates.push(update);
        }
        report.rejected += held_rejected;
        let plan = plan_push(updates, &crm, &last, options);
        let mut cleared = Vec::new();
        for (id, outcome) in &plan.held {
            match outcome {
                PushOutcome::Unchanged => {
                    report.unchanged += 1;
                    if pending.contains_key(id) {
                        cleared.push(id.clone());
                    }
                }
                PushOutcome::SkippedLocked => report.skipped_locked += 1,
                PushOutcome::SkippedOverridden { .. } => report.skipped_overridden += 1,
                _ => {}
            }
        }
        if !commit {
            report.pushed += plan.send.len() as u64;
            if let Some(pr) = &progress {
                pr.advance(chunk.len() as u64);
            }
            continue;
        }
        let adopted_here = adopted.len() as u64;
        let mut pushed = adopted;
        let mut rejected = Vec::new();
        let mut deferred_reason = None;
        let mut deferred_here = 0u64;
        let mut stop_error = None;
        if !plan.send.is_empty() {
            for batch in plan.send.chunks(p.settings.pipeline.push_batch_size) {
                match p.connector.push(batch).await {
                    Ok(outcomes) => {
                        for (u, o) in batch.iter().zip(outcomes) {
                            match o {
                                PushOutcome::Written => pushed.push(PushRecord {
                                    account: u.id.clone(),
                                    tier: u.tier,
                                    score_bucket: bucket(f64::from(u.score), options.score_step),
                                    reason: u.reason.clone(),
                                }),
                                PushOutcome::Rejected { reason, permanent } => {
                                    rejected.push(rejection(u, reason, permanent, options.score_step))
                                }
                                PushOutcome::Deferred { reason } => {
                                    rejected.push(rejection(u, reason.clone(), false, options.score_step));
                                    deferred_reason = Some(reason);
                                    deferred_here += 1;
                                }
                                _ => {}
                            }
                        }
                    }
                    Err(e) => {
                        p.metrics.error("push");
                        stop_error = Some(format!("{}: {e}", p.connector.kind()));
                        break;
                    }
                }
            }
        }
        let written = pushed.len() as u64 - adopted_here;
        let refused = rejected.len() as u64 - deferred_here;
        report.deferred += deferred_here;
        report.pushed += written;
        report.rejected += refused;
        p.store
            .commit_batch(&BatchCommit {
                run,
                scored,
                pushed,
                rejected,
                cleared,
                checkpoint: Some(("push".into(), batch_no.to_string())),
            })
            .await
            .inspect_err(|_| {
                p.metrics.error("store");
            })
            .context("commit a pushed batch")?;
        p.metrics.pushes("written", written);
        p.metrics.pushes("rejected", refused);
        if let Some(pr) = &progress {
            pr.advance(chunk.len() as u64);
        }
        if let Some(e) = stop_error {
            anyhow::bail!("the push stopped: {e}; what was pushed is recorded, the next run resumes");
        }
        if let Some(reason) = deferred_reason {
            anyhow::bail!(
                "the CRM did not take more updates ({reason}); {} deferred to the next run",
                report.deferred
            );
        }
    }
    for (outcome, n) in [
        ("unchanged", report.unchanged),
        ("skipped_locked", report.skipped_locked),
        ("skipped_overridden", report.skipped_overridden),
        ("deferred", report.deferred),
    ] {
        p.metrics.pushes(outcome, n);
    }
    if commit {
        if let Some(w) = watermark {
            p.store.set_watermark(run, &w.millis().to_string()).await?;
        }
    }
    Ok(Ending::Done)
}

fn rejection(u: &TierUpdate, error: String, permanent: bool, step: f32) -> RejectedPush {
    RejectedPush {
        account: u.id.clone(),
        tier: u.tier,
        score_bucket: bucket(f64::from(u.score), step),
        reason: u.reason.clone(),
        error,
        permanent,
        retry_after: None,
    }
}

/// An account's stored state with its final tier and that tier's reason (what the history
/// records), for the push batch's commit.
fn final_state(s: &AccountState, tier: Tier, reason: &str) -> ScoredAccount {
    ScoredAccount {
        id: s.id.clone(),
        name: s.name.clone(),
        domain: s.domain.clone(),
        facts: s.facts.clone(),
        facts_hash: s.facts_hash.clone(),
        score: s.score,
        coverage: s.coverage,
        potential_value: s.potential_value,
        tier,
        explanation: s.explanation.clone(),
        reason: reason.to_string(),
        model_version: s.model_version.clone(),
        crm_tier_seen: s.crm_tier_seen,
        locked: s.locked,
    }
}

fn reason_of(s: &AccountState) -> String {
    s.explanation["reasons"].as_str().unwrap_or_default().to_string()
}

/// What the push stage needs of one account, from the store or from memory.
struct View {
    name: String,
    score: f64,
    coverage: f64,
    reason: String,
    model: String,
    scored_at: i64,
    locked: bool,
    crm_tier: Option<Tier>,
    pulled_now: bool,
    last_push: Option<LastPush>,
}

impl View {
    fn from_state(s: &AccountState, run: RunId) -> View {
        View {
            name: s.name.clone(),
            score: s.score,
            coverage: s.coverage,
            reason: reason_of(s),
            model: s.model_version.clone(),
            scored_at: s.scored_at.millis(),
            locked: s.locked,
            crm_tier: s.crm_tier_seen,
            pulled_now: s.updated_run == Some(run),
            last_push: s.pushed.as_ref().map(|p| LastPush {
                tier: p.tier,
                score: p.score_bucket as f32,
                reason: p.reason.clone(),
            }),
        }
    }

    fn from_scored(s: &Scored) -> View {
        View {
            name: s.name.clone(),
            score: s.score,
            coverage: s.coverage,
            reason: s.reason.clone(),
            model: String::new(),
            scored_at: Timestamp::now().millis(),
            locked: s.locked,
            crm_tier: s.crm_tier,
            pulled_now: true,
            last_push: s.last_push.clone(),
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn pilots_sample_deterministically_and_filter_by_fact() {
        let account = |id: &str| WorkAccount {
            id: id.into(),
            name: None,
            domain: None,
            crm_tier: None,
            locked: false,
            facts: json!({}),
            pulled: true,
        };
        let spec = PilotSpec {
            sample: Some(0.3),
            ..PilotSpec::default()
        };
        let picked: Vec<bool> = (0..1000)
            .map(|i| in_pilot(&spec, &account(&format!("hubspot:{i}")), &Facts::new()))
            .collect();
        let share = picked.iter().filter(|b| **b).count();
        assert!((220..380).contains(&share), "{share} of 1000 for 0.3");
        let again: Vec<bool> = (0..1000)
            .map(|i| in_pilot(&spec, &account(&format!("hubspot:{i}")), &Facts::new()))
            .collect();
        assert_eq!(picked, again);

        let mut facts = Facts::new();
        facts.insert(
            FactName::new("firmographic.region").expect("name"),
            Fact {
                value: tierd_core::fact::FactValue::String("EMEA".into()),
                source: "crm".into(),
                observed_at: None,
            },
        );
        let spec = PilotSpec {
            filter: Some("firmographic.region=emea".into()),
            ..PilotSpec::default()
        };
        assert!(in_pilot(&spec, &account("a"), &facts));
        assert!(!in_pilot(&spec, &account("a"), &Facts::new()));
    }

    #[test]
    fn score_buckets_round_to_the_step() {
        assert!((bucket(3.84, 0.1) - 3.8).abs() < 1e-6);
        assert!((bucket(3.86, 0.1) - 3.9).abs() < 1e-6);
    }
}
