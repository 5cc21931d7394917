//! `tierd report funnel`: the funnel per tier against the untiered baseline, from the store, as a
//! table, CSV or JSON. The figures are `tierd_outcomes::funnel`'s; this module only formats them.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use tierd_config::Settings;
use tierd_core::Date;
use tierd_outcomes::{write_table, Funnel, FunnelQuery};
use tierd_store::Store;

/// `tierd report funnel` arguments.
#[derive(clap::Args, Debug)]
pub struct FunnelArgs {
    /// Count deals created on or after this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub from: Option<Date>,
    /// Count deals created on or before this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub to: Option<Date>,
    /// Count amounts in this currency only (ISO 4217); deals in another are counted, their amounts
    /// are not, and they are listed.
    #[arg(long, value_name = "CODE")]
    pub currency: Option<String>,
    /// Whose tiers: `live` (what tierd pushed) or `shadow` (the `[shadow]` model's, never pushed).
    #[arg(long, value_name = "MODEL", default_value = "live", value_parser = ["live", "shadow"])]
    pub model: String,
    /// table, csv or json.
    #[arg(long, value_name = "FORMAT", default_value = "table")]
    pub format: String,
}

/// Runs `tierd report funnel`.
pub fn run(args: &FunnelArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    super::check_format(&args.format)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let funnel = runtime.block_on(async {
        let store = Store::connect(&settings.store.url).await?;
        let query = FunnelQuery {
            from: args.from,
            to: args.to,
            currency: args.currency.clone(),
            model: args.model.clone(),
            target_list_fact: settings
                .outcomes
                .target_list_fact
                .as_ref()
                .map(ToString::to_string),
        };
        let report = tierd_outcomes::funnel_from_store(&store, &query).await;
        store.close().await;
        anyhow::Ok(report?)
    })?;
    let mut out = std::io::stdout().lock();
    match args.format.as_str() {
        "json" => {
            serde_json::to_writer_pretty(&mut out, &funnel)?;
            writeln!(out)?;
        }
        "csv" => write_csv(&mut out, &funnel)?,
        _ => write_table(&mut out, &funnel)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per tier (and for the accounts off the CRM's target list, when configured), figures
/// unformatted, for spreadsheets.
pub fn write_csv(out: &mut impl Write, f: &Funnel) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "tier",
        "accounts",
        "accounts_with_deal",
        "conversion",
        "deals",
        "closed",
        "won",
        "win_rate",
        "win_rate_low",
        "win_rate_high",
        "mean_won_amount",
        "median_won_amount",
        "mean_days_to_close",
        "median_days_to_close",
        "pipeline",
        "velocity",
        "conversion_lift",
        "win_rate_lift",
        "won_amount_lift",
        "days_to_close_lift",
        "velocity_per_account_lift",
    ])?;
    let o = |v: Option<f64>| v.map_or_else(String::new, |v| v.to_string());
    let groups = f.rows.iter().map(|r| (r.tier.as_str(), &r.figures));
    // The accounts off the CRM's target list, when configured, as one more group.
    let off_list = f
        .not_in_target_list
        .iter()
        .map(|r| ("not_in_target_list", &r.figures));
    for (group, r) in groups.chain(off_list) {
        w.write_record([
            group.to_string(),
            r.accounts.to_string(),
            r.conversion.successes.to_string(),
            o(r.conversion.value),
            r.deals.to_string(),
            r.win_rate.trials.to_string(),
            r.win_rate.successes.to_string(),
            o(r.win_rate.value),
            o(r.win_rate.interval.map(|i| i.low)),
            o(r.win_rate.interval.map(|i| i.high)),
            o(r.mean_won_amount),
            o(r.median_won_amount),
            o(r.mean_days_to_close),
            o(r.median_days_to_close),
            r.pipeline.to_string(),
            o(r.velocity),
            o(r.conversion_lift.value),
            o(r.win_rate_lift.value),
            o(r.won_amount_lift.value),
            o(r.days_to_close_lift.value),
            o(r.velocity_per_account_lift.value),
        ])?;
    }
    w.flush()?;
    Ok(())
}
