//! `tierd report budget`: `tierd_activation::budget::report` over the store, with the funnel of
//! the same window for cost per deal and return per tier.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use tierd_activation::budget::{BudgetReport, FunnelInput, Period, TierFunnel};
use tierd_config::Settings;
use tierd_core::{Date, Tier};
use tierd_store::Store;

/// `tierd report budget` arguments.
#[derive(clap::Args, Debug)]
pub struct BudgetArgs {
    /// table, csv or json.
    #[arg(long, default_value = "table")]
    format: String,
    /// Count engagement lifts as of this date [default: today, UTC].
    #[arg(long, value_name = "DATE")]
    as_of: Option<Date>,
    /// The funnel window's first day (deals created on or after it) [default: the day tierd
    /// first tiered an account].
    #[arg(long, value_name = "DATE")]
    from: Option<Date>,
    /// The funnel window's last day [default: --as-of].
    #[arg(long, value_name = "DATE")]
    to: Option<Date>,
}

/// Runs `tierd report budget`.
pub fn run(args: &BudgetArgs, settings: &Settings, today: Date) -> anyhow::Result<ExitCode> {
    let BudgetArgs {
        format,
        as_of,
        from,
        to,
    } = args;
    let as_of = as_of.unwrap_or(today);
    super::check_format(format)?;
    let Some(budget) = settings.budget.as_ref() else {
        anyhow::bail!(
            "no [budget] section in {}: add tier_1, tier_2, tier_3, period and currency (docs/activation.md)",
            settings.origin
        );
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let store = Store::connect(&settings.store.url).await.with_context(|| {
            format!(
                "cannot open the store at {}",
                tierd_store::redact_url(&settings.store.url)
            )
        })?;
        let funnel = budget_funnel(&store, budget, *from, to.unwrap_or(as_of)).await?;
        let r = tierd_activation::budget::report(&store, budget, &settings.policy, as_of, funnel.as_ref())
            .await
            .context("cannot read the accounts")?;
        store.close().await;
        anyhow::Ok(r)
    })?;
    let mut out = std::io::stdout().lock();
    match format.as_str() {
        "json" => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
        "csv" => write_csv(&mut out, &report)?,
        _ => write_table(&mut out, &report)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The funnel of the window `from..=to` in the budget's currency, as the budget report takes it;
/// `None` before tierd has tiered any account (no window to speak of).
async fn budget_funnel(
    store: &Store,
    budget: &tierd_activation::budget::Budget,
    from: Option<Date>,
    to: Date,
) -> anyhow::Result<Option<FunnelInput>> {
    // The first day tierd tiered an account, streamed like the funnel's own read.
    let mut first: Option<i64> = None;
    store
        .for_each_tier_event(|_, at, _| first = Some(first.map_or(at, |f| f.min(at))))
        .await
        .context("cannot read the tier history")?;
    let Some(first) = first else {
        return Ok(None);
    };
    let from =
        from.unwrap_or_else(|| Date::from_days(i32::try_from(first.div_euclid(86_400_000)).unwrap_or(0)));
    if to < from {
        anyhow::bail!("--to {to} is before the window's first day {from}");
    }
    let query = tierd_outcomes::FunnelQuery {
        from: Some(from),
        to: Some(to),
        currency: Some(budget.currency.clone()),
        model: "live".into(),
        target_list_fact: None,
    };
    let funnel = tierd_outcomes::funnel_from_store(store, &query)
        .await
        .context("cannot read the funnel")?;
    let days = f64::from(to.days() - from.days() + 1);
    Ok(Some(funnel_input(&funnel, days, budget.period)))
}

/// The funnel's rows as the budget's input: `days` of window in budget periods (a month is
/// 365.25 / 12 days).
fn funnel_input(f: &tierd_outcomes::Funnel, days: f64, period: Period) -> FunnelInput {
    let row = |tier: Tier| {
        f.row(tier).map_or(TierFunnel::default(), |r| TierFunnel {
            accounts: r.accounts,
            deals_created: r.deals,
            deals_won: r.win_rate.successes,
            won_amount: r.mean_won_amount.unwrap_or(0.0) * r.won_with_amount as f64,
        })
    };
    FunnelInput {
        tiers: [row(Tier::Tier1), row(Tier::Tier2), row(Tier::Tier3)],
        baseline: row(Tier::Untiered),
        periods: days / (365.25 / 12.0 * f64::from(period.months())),
    }
}

fn money(x: f64) -> String {
    format!("{x:.2}")
}

fn write_csv(out: &mut impl std::io::Write, r: &BudgetReport) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "tier",
        "accounts",
        "per_account",
        "spend",
        "currency",
        "period",
        "seats",
    ])?;
    for (i, t) in r.plan.tiers.iter().enumerate() {
        let seats = match (&r.seats, i) {
            (Some(s), 0) => s.tier_1_seats.to_string(),
            (Some(s), 1) => s.tier_2_seats.to_string(),
            (Some(s), _) => s.tier_3_accounts.to_string(),
            (None, _) => String::new(),
        };
        w.write_record([
            t.tier.as_str().to_string(),
            t.accounts.to_string(),
            money(t.per_account),
            money(t.spend),
            r.currency.clone(),
            r.period.as_str().to_string(),
            seats,
        ])?;
    }
    w.write_record([
        "untiered".to_string(),
        r.plan.untiered.to_string(),
        money(0.0),
        money(0.0),
        r.currency.clone(),
        r.period.as_str().to_string(),
        String::new(),
    ])?;
    w.flush()?;
    Ok(())
}

fn write_table(out: &mut impl std::io::Write, r: &BudgetReport) -> anyhow::Result<()> {
    writeln!(out, "Budget per {} ({})", r.period.as_str(), r.currency)?;
    writeln!(out, "  tier       accounts  per account        spend")?;
    for t in &r.plan.tiers {
        writeln!(
            out,
            "  {:<9} {:>9} {:>12} {:>12}",
            t.tier.as_str(),
            t.accounts,
            money(t.per_account),
            money(t.spend)
        )?;
    }
    writeln!(
        out,
        "  {:<9} {:>9} {:>12} {:>12}",
        "untiered",
        r.plan.untiered,
        "-",
        money(0.0)
    )?;
    writeln!(
        out,
        "  {:<9} {:>9} {:>12} {:>12}",
        "total",
        "",
        "",
        money(r.plan.total)
    )?;
    if let (Some(total), Some(over)) = (r.plan.budget, r.plan.over_budget) {
        if over > 0.0 {
            writeln!(out, "  over the total of {} by {}", money(total), money(over))?;
        } else {
            writeln!(out, "  within the total of {}", money(total))?;
        }
    }
    if let Some(s) = &r.seats {
        writeln!(
            out,
            "  the total buys {} Tier 1 and {} Tier 2 seats for {} / {} / {} candidates; {} accounts in Tier 3; spend {}, left {}",
            s.tier_1_seats,
            s.tier_2_seats,
            r.candidates[0],
            r.candidates[1],
            r.candidates[2],
            s.tier_3_accounts,
            money(s.spend),
            money(s.left_over)
        )?;
        if let Some(short) = s.shortfall {
            writeln!(
                out,
                "  Tier 3 for every candidate alone needs {} more",
                money(short)
            )?;
        }
    }
    if let Some(returns) = &r.returns {
        writeln!(
            out,
            "  tier       cost/deal created  cost/deal won  return on spend"
        )?;
        let opt = |x: Option<f64>| x.map_or("-".to_string(), money);
        for t in returns {
            writeln!(
                out,
                "  {:<9} {:>18} {:>14} {:>16}",
                t.tier.as_str(),
                opt(t.cost_per_deal_created),
                opt(t.cost_per_deal_won),
                opt(t.return_on_spend)
            )?;
        }
    }
    Ok(())
}
