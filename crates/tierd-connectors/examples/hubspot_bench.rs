//! Pull and push throughput of the HubSpot connector against the HubSpot emulator.
//!
//! ```text
//! cargo run --release -p tierd-connectors --example hubspot_bench -- [--accounts 100000] [--limit 1000]
//! ```
//!
//! Two runs over `--accounts` companies: rate limits off (raw connector throughput), then
//! the emulator enforcing `--limit` requests per rolling 10 s and the connector configured
//! with the same limit. The second run prints the least time the limit allows (requests ×
//! 10 s / limit) beside the time taken. Both check the emulator's write log: every company
//! written exactly once.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tierd_connectors::connector::{Connector, PushOutcome, TierUpdate, Watermark};
use tierd_connectors::http::Secret;
use tierd_connectors::hubspot::HubSpotConfig;
use tierd_core::Tier;
use tierd_emulators::{HubSpotConfig as EmuConfig, HubSpotEmulator};

struct Figures {
    pulled: usize,
    pull: Duration,
    push: Duration,
    requests: u64,
    rate_limited: u64,
}

async fn run(accounts: u64, limit: Option<u32>) -> anyhow::Result<Figures> {
    let mut emu_cfg = EmuConfig::unlimited(accounts, 42);
    emu_cfg.tierd_properties = true;
    emu_cfg.rate_limit = limit;
    let emu = HubSpotEmulator::start(emu_cfg).await?;
    let connector = HubSpotConfig {
        base_url: emu.base_url(),
        token: Secret::new("test-token"),
        rate_limit: limit.unwrap_or(0),
        ..HubSpotConfig::default()
    }
    .build()?;

    let started = Instant::now();
    let mut ids = Vec::with_capacity(accounts as usize);
    let mut pages = connector.pull(None);
    while let Some(page) = pages.next().await {
        let page = page?;
        anyhow::ensure!(page.quarantined.is_empty(), "quarantined: {:?}", page.quarantined);
        ids.extend(page.accounts.into_iter().map(|a| a.id));
    }
    drop(pages);
    let pull = started.elapsed();
    anyhow::ensure!(ids.len() as u64 == accounts, "pulled {} of {accounts}", ids.len());

    let updates: Vec<TierUpdate> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| TierUpdate {
            id: id.clone(),
            tier: Tier::ALL[i % 4],
            score: (i % 50) as f32 / 10.0,
            coverage: 1.0,
            reason: "uses Snowflake; demo requested 12 days ago".into(),
            model: "default@1".into(),
            scored_at: Watermark(1_795_000_000_000),
        })
        .collect();
    let started = Instant::now();
    let outcomes = connector.push(&updates).await?;
    let push = started.elapsed();
    let written = outcomes.iter().filter(|o| **o == PushOutcome::Written).count();
    anyhow::ensure!(written == updates.len(), "written {written} of {}", updates.len());
    let log = emu.writes();
    anyhow::ensure!(
        log.total == accounts && log.max_per_record() == 1 && log.per_record.len() as u64 == accounts,
        "write log: {} writes, {} records, at most {} per record",
        log.total,
        log.per_record.len(),
        log.max_per_record()
    );
    let stats = connector.http_stats();
    emu.shutdown().await;
    Ok(Figures {
        pulled: ids.len(),
        pull,
        push,
        requests: stats.requests,
        rate_limited: stats.rate_limited,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut accounts = 100_000u64;
    let mut limit = 1_000u32;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))?;
        match arg.as_str() {
            "--accounts" => accounts = value.parse()?,
            "--limit" => limit = value.parse()?,
            other => anyhow::bail!("unknown option {other} (use --accounts N, --limit L)"),
        }
    }
    let per_sec = |n: usize, d: Duration| n as f64 / d.as_secs_f64();

    let f = run(accounts, None).await?;
    println!("rate limits off, {accounts} companies:");
    println!(
        "  pull {:>7.2} s  {:>9.0} accounts/s",
        f.pull.as_secs_f64(),
        per_sec(f.pulled, f.pull)
    );
    println!(
        "  push {:>7.2} s  {:>9.0} accounts/s  ({} requests in all; every company written exactly once)",
        f.push.as_secs_f64(),
        per_sec(f.pulled, f.push),
        f.requests
    );

    let f = run(accounts, Some(limit)).await?;
    let total = f.pull + f.push;
    let minimum = Duration::from_secs_f64(f.requests as f64 * 10.0 / f64::from(limit));
    println!("rate limit {limit} requests / 10 s, {accounts} companies:");
    println!(
        "  pull {:>7.2} s, push {:>7.2} s, total {:>7.2} s for {} requests ({} answered 429)",
        f.pull.as_secs_f64(),
        f.push.as_secs_f64(),
        total.as_secs_f64(),
        f.requests,
        f.rate_limited
    );
    println!(
        "  least time the limit allows {:>7.2} s: took {:.1}% of it (every company written exactly once)",
        minimum.as_secs_f64(),
        100.0 * total.as_secs_f64() / minimum.as_secs_f64()
    );
    Ok(())
}
