//! `tierd explain`: one account's score breakdown from a file.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use tierd_connectors::files::{AccountReader, ReadItem};
use tierd_core::Date;

use tierd_config::Settings;

/// Finds `id` in `input`, scores it and prints the breakdown.
pub fn explain(
    settings: &Settings,
    input: &Path,
    id: &str,
    as_of: Date,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let reader = AccountReader::open(input, &settings.schema)?;
    for item in reader {
        match item? {
            ReadItem::Account(acc) if acc.id == id => {
                let model = &settings.model;
                let card = model.score(&acc.facts, as_of);
                let e = model.explain(&acc.facts, &card, as_of);
                let mut out = io::stdout().lock();
                if json {
                    serde_json::to_writer_pretty(&mut out, &e)?;
                    writeln!(out)?;
                    return Ok(ExitCode::SUCCESS);
                }
                let by_threshold = settings.policy.tier_for(card.score);
                let engaged = settings.policy.override_for(&acc.facts, as_of);
                writeln!(
                    out,
                    "{id}  {}{}",
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
                let tier = match engaged {
                    Some(i) if by_threshold.lifted() != by_threshold => format!(
                        "{} by thresholds, lifted to {} by a recent {}",
                        by_threshold,
                        by_threshold.lifted(),
                        settings.policy.overrides[usize::from(i)].label
                    ),
                    _ => format!("{by_threshold} by thresholds"),
                };
                writeln!(
                    out,
                    "tier  {tier} (pyramid caps apply across a whole file in `tierd score`)"
                )?;
                if let Some(lock) = acc.lock {
                    writeln!(out, "locked by hand at {lock}: tierd keeps it")?;
                }
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
                return Ok(ExitCode::SUCCESS);
            }
            ReadItem::Rejected(r) if r.id.as_deref() == Some(id) => {
                anyhow::bail!(
                    "{}:{}: account {id} cannot be scored: {}",
                    input.display(),
                    r.line,
                    r.reason
                );
            }
            _ => {}
        }
    }
    eprintln!("{}: no account with id '{id}'", input.display());
    Ok(ExitCode::from(1))
}
