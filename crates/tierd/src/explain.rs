//! `tierd explain`: one account's score breakdown and tier, from a file or from the store.
//!
//! From a file, the tier is decided over the whole file, as `tierd score` decides it (a full
//! run: caps rank every account in the file, overrides lift; with `--enrich` the plugins run
//! first, in batches, as `score --enrich` runs them), so the tier and the reason shown here
//! are the ones the tiers file holds for the account.
//!
//! From the store (`--store`), the account's stored facts, score and tier, and the population
//! step decided again over every stored account exactly as a run decides it (stored base tiers,
//! engagement windows and locks), so the words for the cap, lift and lock come from
//! `TierPolicy::reason` like everywhere else.

use std::io::{self, Write};

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;
use tierd_connectors::files::{AccountReader, AccountRecord, ReadItem, Rejected};
use tierd_core::explain::Explanation;
use tierd_core::tier::{Assignment, Lock, RunKind, TierCandidate};
use tierd_core::{Date, ScoreCard, Tier};
use tierd_store::{redact_url, Store};

use tierd_config::Settings;
use tierd_engine::enrich::Enricher;

/// Accounts enriched per plugin call with `--enrich`.
const ENRICH_BATCH: usize = 500;

/// `tierd explain --json`: the breakdown, the final tier and how it was decided.
#[derive(Serialize)]
struct ExplainJson<'a> {
    id: &'a str,
    #[serde(flatten)]
    explanation: &'a Explanation,
    /// The final tier, after lift and caps.
    tier: Tier,
    /// The tier by thresholds (or the lock), before lift and caps.
    base_tier: Tier,
    /// How the tier was decided, then the score's reasons: the tiers file's text.
    reason: String,
    /// The decision, field by field.
    decision: DecisionJson<'a>,
}

#[derive(Serialize)]
struct DecisionJson<'a> {
    locked: bool,
    /// The label of the override that lifted the account one tier.
    lifted_by: Option<&'a str>,
    /// The tier whose pyramid cap demoted the account.
    capped_from: Option<Tier>,
    /// The tier the account's score reached but its coverage did not allow.
    insufficient_data: Option<Tier>,
}

/// Finds `id` in `input`, tiers the whole file and prints the account's breakdown and tier.
pub fn explain(
    settings: &Settings,
    input: &Path,
    id: &str,
    as_of: Date,
    json: bool,
    mut enricher: Option<Enricher>,
) -> anyhow::Result<ExitCode> {
    let reader = AccountReader::open(input, &settings.schema)?;
    let model = &settings.model;
    let policy = &settings.policy;
    let mut candidates: Vec<TierCandidate> = Vec::new();
    let mut card = ScoreCard::default();
    let mut target: Option<(usize, AccountRecord)> = None;
    let mut rejected: Option<Rejected> = None;
    let mut batch: Vec<AccountRecord> = Vec::with_capacity(ENRICH_BATCH);
    let mut score_batch = |batch: &mut Vec<AccountRecord>, enricher: &mut Option<Enricher>| {
        if let Some(e) = enricher {
            e.enrich(&settings.schema, batch);
        }
        for acc in batch.drain(..) {
            model.score_into(&acc.facts, as_of, &mut card);
            candidates.push(TierCandidate {
                id: acc.id.as_str().into(),
                score: card.score,
                potential_value: card.potential_value.unwrap_or(0.0),
                coverage: card.coverage,
                previous: None,
                lock: Lock::from(acc.lock),
                engagement: policy.engagement_on(&acc.facts, as_of),
            });
            if target.is_none() && acc.id == id {
                target = Some((candidates.len() - 1, acc));
            }
        }
    };
    for item in reader {
        match item? {
            ReadItem::Account(acc) => {
                batch.push(acc);
                if batch.len() == ENRICH_BATCH {
                    score_batch(&mut batch, &mut enricher);
                }
            }
            ReadItem::Rejected(r) if rejected.is_none() && r.id.as_deref() == Some(id) => {
                rejected = Some(r);
            }
            ReadItem::Rejected(_) => {}
        }
    }
    score_batch(&mut batch, &mut enricher);
    if let Some(e) = enricher {
        let summary = e.finish();
        tierd_engine::enrich::print_summary(&mut io::stderr().lock(), &summary)?;
    }
    let Some((index, acc)) = target else {
        if let Some(r) = rejected {
            anyhow::bail!(
                "{}:{}: account {id} cannot be scored: {}",
                input.display(),
                r.line,
                r.reason
            );
        }
        eprintln!("{}: no account with id '{id}'", input.display());
        return Ok(ExitCode::from(1));
    };
    for event in settings.schema.future_events(&acc.facts, as_of) {
        eprintln!("{}:{} (id {id}): warning: {event}", input.display(), acc.line);
    }
    let assignments = policy.assign(&candidates, RunKind::Full, as_of);
    let assignment = assignments[index];
    let base = policy.basis(&candidates[index], RunKind::Full).base;
    drop(assignments);
    drop(candidates);

    let card = model.score(&acc.facts, as_of);
    let e = model.explain(&acc.facts, &card, as_of);
    let mut reasons = String::new();
    let (up, down) = (settings.output.reasons_up, settings.output.reasons_down);
    model.compact_reasons(&acc.facts, &card, as_of, up, down, &mut reasons);
    let reason = policy.reason(&assignment, &reasons);
    let mut out = io::stdout().lock();
    if json {
        let d = assignment.decision;
        let doc = ExplainJson {
            id,
            explanation: &e,
            tier: assignment.tier,
            base_tier: base,
            reason,
            decision: DecisionJson {
                locked: d.locked,
                lifted_by: d.lifted_by.map(|by| policy.override_label(by)),
                capped_from: d.capped_from,
                insufficient_data: d.insufficient_data,
            },
        };
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    print_breakdown(&mut out, &acc, &e, as_of, &assignment, base, &reason)?;
    Ok(ExitCode::SUCCESS)
}

fn print_breakdown(
    out: &mut impl Write,
    acc: &AccountRecord,
    e: &Explanation,
    as_of: Date,
    assignment: &Assignment,
    base: Tier,
    reason: &str,
) -> io::Result<()> {
    writeln!(
        out,
        "{}  {}{}",
        acc.id,
        acc.name.as_deref().unwrap_or(""),
        acc.domain
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default()
    )?;
    writeln!(
        out,
        "score {:.2}  coverage {:.0}%  model {}  as of {as_of}",
        e.score,
        e.coverage * 100.0,
        e.model
    )?;
    let by = if assignment.decision.locked {
        "locked"
    } else {
        "by thresholds"
    };
    writeln!(
        out,
        "tier  {} ({base} {by}; caps and lifts over the whole file)",
        assignment.tier
    )?;
    writeln!(out, "reason  {reason}")?;
    if let Some(v) = e.potential_value {
        writeln!(out, "potential value  {v:.0} USD/yr")?;
    }
    writeln!(out, "\n{:<14} {:>6} {:>7}", "component", "score", "weight")?;
    for c in &e.components {
        let score = c.score.map_or_else(|| "-".to_string(), |s| format!("{s:.2}"));
        writeln!(out, "{:<14} {score:>6} {:>7.2}", c.component, c.weight)?;
    }
    writeln!(
        out,
        "\n{:<26} {:<11} {:<32} {:>6} {:>6} {:>7} {:>7}",
        "criterion", "component", "value", "points", "share", "contrib", "impact"
    )?;
    for l in &e.criteria {
        let mut value = l.value.clone().unwrap_or_else(|| "(unknown)".into());
        if value.chars().count() > 32 {
            value = value.chars().take(31).collect::<String>() + "…";
        }
        writeln!(
            out,
            "{:<26} {:<11} {:<32} {:>6.2} {:>6.3} {:>7.3} {:>+7.3}",
            l.criterion, l.component, value, l.points, l.share, l.contribution, l.impact
        )?;
    }
    writeln!(out, "\nReasons up:")?;
    for r in &e.positive {
        writeln!(out, "  + {r}")?;
    }
    writeln!(out, "Reasons down:")?;
    for r in &e.negative {
        writeln!(out, "  - {r}")?;
    }
    Ok(())
}

/// Fails when `url` names a SQLite file that does not exist: a store that does not exist is a
/// mistake for commands that read one, not something to create. `hint` ends the message.
pub(crate) fn require_existing_store(url: &str, hint: &str) -> anyhow::Result<()> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = Path::new(path.split('?').next().unwrap_or(path));
        if !url.contains(":memory:") && !path.exists() {
            anyhow::bail!(
                "no store at {}: run `tierd sync --once` first, {hint}",
                path.display()
            );
        }
    }
    Ok(())
}

/// `tierd explain --store`: the account as the store at `url` holds it, and why its tier.
pub fn explain_stored(
    settings: &Settings,
    url: &str,
    id: &str,
    as_of: Option<Date>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    require_existing_store(url, "or name one with --store URL")?;
    let rt = tierd_engine::runtime("explain")?;
    rt.block_on(async {
        let store = Store::connect(url).await?;
        let mut states = store.accounts(&[id.to_owned()]).await?;
        let Some(state) = states.remove(id) else {
            eprintln!("{}: no account with id '{id}'", redact_url(url));
            return Ok(ExitCode::from(1));
        };
        let summaries = tierd_engine::all_summaries(&store).await?;
        store.close().await;
        let as_of = as_of
            .or_else(|| state.explanation["as_of"].as_str().and_then(|d| d.parse().ok()))
            .unwrap_or_else(crate::today);
        let policy = &settings.policy;
        // The population step as a run takes it, from each stored basis.
        let members = tierd_engine::tier_members(&summaries);
        let decided = policy.decide(&members, as_of);
        let assignment = members.iter().position(|m| &*m.id == id).map(|i| decided[i]);
        let by_thresholds = policy.tier_for(state.score as f32);
        let held = !state.locked && state.base_tier != by_thresholds;
        let score_reasons = state.explanation["reasons"].as_str().unwrap_or("");
        let reason = assignment.map(|a| policy.reason(&a, score_reasons));
        let mut out = io::stdout().lock();
        if json {
            let doc = serde_json::json!({
                "id": id,
                "name": state.name,
                "domain": state.domain,
                "score": state.score,
                "coverage": state.coverage,
                "potential_value": state.potential_value,
                "model": state.model_version,
                "tier": state.tier,
                "base_tier": state.base_tier,
                "tier_by_thresholds": by_thresholds,
                "held_by_hysteresis": held,
                "as_of": as_of.to_string(),
                "reason": reason,
                "decision": assignment.map(|a| serde_json::json!({
                    "locked": a.decision.locked,
                    "lifted_by": a.decision.lifted_by.map(|by| policy.override_label(by)),
                    "capped_from": a.decision.capped_from,
                    "insufficient_data": a.decision.insufficient_data,
                })),
                "pushed": state.pushed,
                "facts": state.facts,
                "explanation": state.explanation["detail"],
            });
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
            return Ok(ExitCode::SUCCESS);
        }
        writeln!(
            out,
            "{id}  {}{}",
            state.name,
            state
                .domain
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        )?;
        writeln!(
            out,
            "score {:.2}  coverage {:.0}%  model {}  (stored; tiering as of {as_of})",
            state.score,
            state.coverage * 100.0,
            state.model_version
        )?;
        let base_how = if state.locked {
            "locked by a person".to_owned()
        } else if held {
            format!("held by hysteresis: the thresholds give {by_thresholds}")
        } else {
            "by thresholds".to_owned()
        };
        writeln!(out, "tier  {} ({} {base_how})", state.tier, state.base_tier)?;
        match (assignment, &reason) {
            (Some(a), Some(reason)) => {
                if a.tier != state.tier {
                    writeln!(
                        out,
                        "      deciding again as of {as_of} gives {} (the store holds the last run's tier)",
                        a.tier
                    )?;
                }
                writeln!(out, "reason  {reason}")?;
            }
            _ => writeln!(out, "reason  {score_reasons} (scored, not tiered yet)")?,
        }
        match &state.pushed {
            Some(p) => writeln!(out, "pushed  {}: {}", p.tier, p.reason)?,
            None => writeln!(out, "pushed  nothing yet")?,
        }
        writeln!(out, "\nfacts (source):")?;
        if let Some(facts) = state.facts.as_object() {
            for (name, fact) in facts {
                let value = fact.get("value").unwrap_or(fact);
                let source = fact.get("source").and_then(|s| s.as_str()).unwrap_or("?");
                writeln!(out, "  {name} = {value} ({source})")?;
            }
        }
        if let Some(criteria) = state.explanation["detail"]["criteria"].as_array() {
            writeln!(
                out,
                "\n{:<26} {:<32} {:>6} {:>7}",
                "criterion", "value", "points", "contrib"
            )?;
            for c in criteria {
                let text = |k: &str| c[k].as_str().map(str::to_owned);
                let mut value = text("value").unwrap_or_else(|| "(unknown)".into());
                if value.chars().count() > 32 {
                    value = value.chars().take(31).collect::<String>() + "…";
                }
                let points = c["points"]
                    .as_f64()
                    .map_or_else(|| "skip".to_owned(), |p| format!("{p:.2}"));
                writeln!(
                    out,
                    "{:<26} {value:<32} {points:>6} {:>7.3}",
                    text("criterion").unwrap_or_default(),
                    c["contribution"].as_f64().unwrap_or(0.0)
                )?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
