//! `tierd report ...`: reports over the store, each one library function's struct formatted as
//! a table, CSV or JSON. `funnel`: `tierd_outcomes::funnel` (the funnel per tier against the
//! untiered baseline); `budget`: `tierd_activation::budget::report` (planned spend per tier, the
//! seats a total buys, and cost per deal and return per tier from the same funnel). This module
//! formats; it computes nothing.

use std::process::ExitCode;

use tierd_config::Settings;
use tierd_core::Date;

mod budget;
mod funnel;

/// `tierd report` actions.
#[derive(clap::Subcommand, Debug)]
pub enum ReportAction {
    /// Accounts, conversion, deals, win rate, won amounts, days to close, pipeline and velocity per
    /// tier, each against the untiered baseline; a deal counts under the tier its account held on
    /// the day it was created.
    Funnel(funnel::FunnelArgs),
    /// Accounts and planned spend per tier ([budget]), the Tier 1 and Tier 2 seats a total buys,
    /// and cost per deal and return per tier against the baseline from the funnel.
    Budget(budget::BudgetArgs),
}

/// Runs `tierd report ...`.
pub fn run(action: ReportAction, settings: Settings, today: Date) -> anyhow::Result<ExitCode> {
    match action {
        ReportAction::Funnel(args) => funnel::run(&args, &settings),
        ReportAction::Budget(args) => budget::run(&args, &settings, today),
    }
}

/// Checks `--format`.
fn check_format(format: &str) -> anyhow::Result<()> {
    if matches!(format, "table" | "csv" | "json") {
        Ok(())
    } else {
        anyhow::bail!("--format {format}: expected table, csv or json")
    }
}
