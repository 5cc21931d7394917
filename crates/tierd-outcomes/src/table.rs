//! The funnel as a table for people: the one text rendering, shared by `tierd report funnel` and
//! `tierd demo`. Formats the [`Funnel`]'s own figures; computes nothing. Its cell formats are
//! `tierd calibrate`'s too (`report.rs`).

use std::io::Write;

use crate::{Figures, Funnel, FunnelRow, Lift, Rate};

pub(crate) fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

pub(crate) fn pct(r: &Rate) -> String {
    match (r.value, r.interval) {
        (Some(v), Some(i)) => format!(
            "{:.1}% [{:.1}-{:.1}] n={}",
            v * 100.0,
            i.low * 100.0,
            i.high * 100.0,
            r.trials
        ),
        _ => format!("- n={}", r.trials),
    }
}

pub(crate) fn lift(l: &Lift) -> String {
    match (l.value, l.interval) {
        (Some(v), Some(i)) => format!("{v:.2}x [{:.2}-{:.2}]", i.low, i.high),
        (Some(v), None) => format!("{v:.2}x"),
        _ => "-".into(),
    }
}

fn label(r: &FunnelRow) -> &'static str {
    match r.tier {
        tierd_core::Tier::Untiered => "baseline",
        t => t.as_str(),
    }
}

/// The report for people.
pub fn write_table(out: &mut impl Write, f: &Funnel) -> std::io::Result<()> {
    let period = match (f.from, f.to) {
        (None, None) => "all deals".to_string(),
        (from, to) => format!(
            "deals created {} to {}",
            from.map_or("the start".into(), |d| d.to_string()),
            to.map_or("today".into(), |d| d.to_string())
        ),
    };
    writeln!(
        out,
        "Funnel per tier ({} model; {period}; a deal counts under its account's tier on the day it was created)",
        f.model
    )?;
    writeln!(
        out,
        "{:<9} {:>8} {:>26} {:>7} {:>26} {:>11} {:>11} {:>7} {:>13} {:>11} {:>20} {:>8}",
        "tier",
        "accounts",
        "conversion",
        "deals",
        "win rate",
        "mean won",
        "median won",
        "days",
        "pipeline",
        "velocity/d",
        "win-rate lift",
        "vel/acct"
    )?;
    let groups = f.rows.iter().map(|r| (label(r), &r.figures));
    let off_list = f.not_in_target_list.iter().map(|r| ("off-list", &r.figures));
    for (label, r) in groups.chain(off_list) {
        write_row(out, label, r)?;
    }
    writeln!(
        out,
        "{} deals created in the period; {} before their account was first tiered (in no tier). Rates: 95% Wilson interval and sample size; lifts against the baseline, 95% interval.",
        f.deals_in_period, f.deals_before_tiering
    )?;
    if !f.issues.is_empty() {
        writeln!(out, "{} deals not fully counted:", f.issues.len())?;
        for (reason, n) in &f.issue_counts {
            let ids: Vec<&str> = f
                .issues
                .iter()
                .filter(|i| i.reason == *reason)
                .take(5)
                .map(|i| i.deal.as_str())
                .collect();
            let more = if *n > 5 {
                format!(", ... ({} more: --format json lists all)", n - 5)
            } else {
                String::new()
            };
            writeln!(out, "  {n} {}: {}{more}", reason.describe(), ids.join(", "))?;
        }
    }
    if let Some(r) = &f.not_in_target_list {
        writeln!(
            out,
            "off-list: the {} accounts not on the CRM's target list ({} is not true; {} on it), whatever their tier, as the list was last pulled.",
            r.accounts, r.fact, r.accounts_on_list
        )?;
        if r.accounts_on_list == 0 && r.accounts > 0 && r.accounts_without_fact == r.accounts {
            writeln!(
                out,
                "  No stored account has the fact {}: check [outcomes] target_list_fact and the connector's field mapping.",
                r.fact
            )?;
        }
    }
    Ok(())
}

fn write_row(out: &mut impl Write, label: &str, r: &Figures) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<9} {:>8} {:>26} {:>7} {:>26} {:>11} {:>11} {:>7} {:>13.0} {:>11} {:>20} {:>8}",
        label,
        r.accounts,
        pct(&r.conversion),
        r.deals,
        pct(&r.win_rate),
        num(r.mean_won_amount, 0),
        num(r.median_won_amount, 0),
        num(r.median_days_to_close, 0),
        r.pipeline,
        num(r.velocity, 1),
        lift(&r.win_rate_lift),
        lift(&r.velocity_per_account_lift),
    )
}
