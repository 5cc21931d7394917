//! `tierd explain`: one account's score breakdown and tier from a file.
//!
//! The tier is decided over the whole file, as `tierd score` decides it (a full run: caps
//! rank every account in the file, overrides lift), so the tier and the reason shown here
//! are the ones the tiers file holds for the account.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;
use tierd_connectors::files::{AccountReader, AccountRecord, ReadItem, Rejected};
use tierd_core::explain::Explanation;
use tierd_core::tier::{Assignment, Lock, RunKind, TierCandidate};
use tierd_core::{Date, ScoreCard, Tier};

use tierd_config::Settings;

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
}

/// Finds `id` in `input`, tiers the whole file and prints the account's breakdown and tier.
pub fn explain(
    settings: &Settings,
    input: &Path,
    id: &str,
    as_of: Date,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let reader = AccountReader::open(input, &settings.schema)?;
    let model = &settings.model;
    let policy = &settings.policy;
    let mut candidates: Vec<TierCandidate> = Vec::new();
    let mut card = ScoreCard::default();
    let mut target: Option<(usize, AccountRecord)> = None;
    let mut rejected: Option<Rejected> = None;
    for item in reader {
        match item? {
            ReadItem::Account(acc) => {
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
            ReadItem::Rejected(r) if rejected.is_none() && r.id.as_deref() == Some(id) => {
                rejected = Some(r);
            }
            ReadItem::Rejected(_) => {}
        }
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
        let points = l.points.map_or_else(|| "skip".to_string(), |p| format!("{p:.2}"));
        writeln!(
            out,
            "{:<26} {:<11} {:<32} {points:>6} {:>6.3} {:>7.3} {:>+7.3}",
            l.criterion, l.component, value, l.share, l.contribution, l.impact
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
