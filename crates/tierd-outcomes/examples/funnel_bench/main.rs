//! The funnel report at scale (issue 13): seeds a fresh store with N accounts' tier history and M
//! deals ([`population`], fixed seed) through the store's batch APIs, then times
//! `tierd_outcomes::funnel_from_store` (median of a few runs) and prints its wall time and the
//! process's peak resident memory while reporting. SQLite lives in a temp dir, PostgreSQL in a
//! throwaway schema; both are removed at the end. Seeding is timed and printed apart: it is not
//! the figure. Then the same report once through the in-memory reads (`tier_timeline`,
//! `deals_for_report`, `funnel`), for comparison, and the two must agree.
//!
//! ```sh
//! cargo run --release -p tierd-outcomes --example funnel_bench -- 1000000 3000000 sqlite
//! cargo run --release -p tierd-outcomes --example funnel_bench -- 1000000 3000000 postgres
//! ```

mod population;

use std::time::{Duration, Instant};

use anyhow::Context as _;
use population::Rng;
use tierd_outcomes::{funnel_from_store, FunnelQuery};
use tierd_store::{RunKind, Store};

/// Accounts' history and deals written per store call (each call is one transaction).
const ACCOUNTS_PER_CALL: u64 = 20_000;
const DEALS_PER_CALL: u64 = 10_000;
/// Timed reports; the median is the figure.
const RUNS: usize = 3;
const SEED: u64 = 13;

/// A line of `/proc/self/status` in MiB (`VmHWM`: peak resident set; `VmRSS`: now).
fn status_mib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets the peak resident set to the current one (Linux `clear_refs` 5), so the peak read
/// after the reports is theirs and not the seeding's. Returns whether it could.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

async fn seed(store: &Store, accounts: u64, deals: u64) -> anyhow::Result<()> {
    let run = store.begin_run(RunKind::Full, "bench@1", "funnel_bench").await?;
    let mut rng = Rng::new(SEED);
    let mut from = 0;
    while from < accounts {
        let to = (from + ACCOUNTS_PER_CALL).min(accounts);
        let events = population::tier_history(&mut rng, from, to);
        store
            .import_tier_history(run, &events)
            .await
            .context("seed tier history")?;
        from = to;
    }
    let mut from = 0;
    while from < deals {
        let to = (from + DEALS_PER_CALL).min(deals);
        let batch = population::deals(&mut rng, accounts, from, to);
        store
            .record_deals(Some(run), &batch)
            .await
            .context("seed deals")?;
        from = to;
    }
    Ok(())
}

async fn bench(backend: &str, store: &Store, accounts: u64, deals: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    seed(store, accounts, deals).await?;
    eprintln!(
        "{backend}: seeded {accounts} accounts, {deals} deals in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let before = status_mib("VmRSS").unwrap_or(f64::NAN);
    let reset = reset_peak();
    let query = FunnelQuery {
        currency: Some("USD".into()),
        model: "live".into(),
        ..FunnelQuery::default()
    };
    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        let funnel = funnel_from_store(store, &query).await?;
        times.push(t.elapsed());
        last = Some(funnel);
    }
    let peak = status_mib("VmHWM").unwrap_or(f64::NAN);
    times.sort();
    let funnel = last.context("no run")?;
    println!(
        "{backend}: {accounts} accounts, {deals} deals: funnel median {:.2} s (runs {}), peak RSS {:.0} MiB{} (RSS before the reports {:.0} MiB)",
        times[RUNS / 2].as_secs_f64(),
        times
            .iter()
            .map(|t| format!("{:.2}", t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        peak,
        if reset { "" } else { " (seeding included: could not reset the peak)" },
        before,
    );
    // What was counted, so a run that counted nothing cannot pass for a fast one.
    let tiered: u64 = funnel.rows.iter().map(|r| r.deals).sum();
    println!(
        "{backend}: {} deals in the period, {} under a tier, {} before tiering, {} listed with an issue",
        funnel.deals_in_period,
        tiered,
        funnel.deals_before_tiering,
        funnel.issues.len()
    );
    // The same report through the in-memory reads (every row held as owned strings, as
    // `funnel_from_store` read them before it streamed): for comparison, and as a check.
    let before_in_memory = status_mib("VmRSS").unwrap_or(f64::NAN);
    reset_peak();
    let t = Instant::now();
    let history = store.tier_timeline().await?;
    let all_deals = store.deals_for_report().await?;
    let in_memory = tierd_outcomes::funnel(&history, &all_deals, &query);
    let took = t.elapsed();
    let peak_in_memory = status_mib("VmHWM").unwrap_or(f64::NAN);
    drop((history, all_deals));
    anyhow::ensure!(
        in_memory == funnel,
        "{backend}: the in-memory reads gave another funnel"
    );
    println!(
        "{backend}: in-memory reads for comparison: {:.2} s, peak RSS {peak_in_memory:.0} MiB (RSS before {before_in_memory:.0} MiB); same funnel",
        took.as_secs_f64()
    );
    for r in &funnel.rows {
        println!(
            "  {:<9} accounts {:>8}  deals {:>8}  win rate {:.3}  lift {:.2}",
            r.tier.as_str(),
            r.accounts,
            r.deals,
            r.win_rate.value.unwrap_or(f64::NAN),
            r.win_rate_lift.value.unwrap_or(f64::NAN),
        );
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let accounts: u64 = args
        .next()
        .map_or(Ok(1_000_000), |a| a.parse())
        .context("accounts")?;
    let deals: u64 = args
        .next()
        .map_or(Ok(3_000_000), |a| a.parse())
        .context("deals")?;
    let backend = args.next().unwrap_or_else(|| "both".into());
    anyhow::ensure!(
        ["sqlite", "postgres", "both"].contains(&backend.as_str()),
        "backend is sqlite, postgres or both, not {backend}"
    );

    if backend != "postgres" {
        let dir = tempfile::tempdir()?;
        let store = Store::connect_sqlite_file(&dir.path().join("bench.db")).await?;
        bench("sqlite", &store, accounts, deals).await?;
        store.close().await;
    }
    if backend != "sqlite" {
        match tierd_test_support::postgres::Schema::create("bench_funnel").await {
            Some(schema) => {
                let store = Store::connect_postgres(schema.options()).await?;
                bench("postgres", &store, accounts, deals).await?;
                store.close().await;
                drop(schema);
            }
            None => eprintln!("postgres: not reachable, skipped"),
        }
    }
    Ok(())
}
