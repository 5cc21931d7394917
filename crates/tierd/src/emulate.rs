//! `tierd emulate hubspot|salesforce`: runs a CRM emulator from `tierd-emulators` in the
//! foreground until Ctrl-C, so connectors, scripts and demos can run against a local
//! HubSpot or Salesforce seeded from the generator.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use tierd_core::Date;
use tierd_emulators::faults::FaultPatch;
use tierd_emulators::{Faults, HubSpotConfig, HubSpotEmulator, SalesforceConfig, SalesforceEmulator};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Vendor {
    Hubspot,
    Salesforce,
}

#[derive(Debug, Args)]
pub(crate) struct EmulateArgs {
    /// Which CRM to emulate.
    vendor: Vendor,
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// How many accounts to seed.
    #[arg(long, default_value_t = 1000)]
    accounts: u64,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// HubSpot: the private-app token to accept; Salesforce: the OAuth client secret
    /// (any client id) [default: a random one, printed at start].
    #[arg(long, value_name = "T")]
    token: Option<String>,
    /// Generator date (YYYY-MM-DD) [default: 2026-11-24].
    #[arg(long, value_name = "DATE")]
    as_of: Option<Date>,
    /// HubSpot: requests per rolling 10 seconds (100 Free/Starter, 190 Professional and
    /// Enterprise) [default: 100].
    #[arg(long, value_name = "N")]
    rate_limit: Option<u32>,
    /// HubSpot: search requests per second [default: 5].
    #[arg(long, value_name = "N")]
    search_rate: Option<u32>,
    /// HubSpot: requests per day; Salesforce: daily API requests [default: 250,000 / 100,000].
    #[arg(long, value_name = "N")]
    daily_limit: Option<u64>,
    /// No rate or daily limits (the vendors' documented limits apply by default); the
    /// limit flags above still set the ones given.
    #[arg(long)]
    no_limits: bool,
    /// HubSpot: milliseconds before a write is visible to search.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    search_lag_ms: u64,
    /// HubSpot: start with tierd's tierd_* properties already created.
    #[arg(long)]
    tierd_properties: bool,
    /// Salesforce: access token lifetime in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 7200)]
    token_ttl: u64,
    /// Fault: latency added to every answer, in milliseconds.
    #[arg(long, value_name = "MS")]
    latency_ms: Option<u64>,
    /// Fault: share (0..1) of requests answered with a 5xx.
    #[arg(long, value_name = "RATE")]
    error_rate: Option<f64>,
    /// Fault: share (0..1) of records served with a garbage numeric or date value.
    #[arg(long, value_name = "RATE")]
    malformed_rate: Option<f64>,
    /// Fault: share (0..1) of connections closed without a complete response.
    #[arg(long, value_name = "RATE")]
    drop_rate: Option<f64>,
}

/// A token for a local emulator when none is given. Not cryptographic (time and pid
/// hashed): it only keeps a stray local client from using the emulator by accident.
fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    let a = h.finish();
    h.write_u64(a);
    format!("emu-{a:016x}{:016x}", h.finish())
}

fn apply_faults(faults: &Faults, args: &EmulateArgs) -> anyhow::Result<()> {
    let patch = FaultPatch {
        latency_ms: args.latency_ms,
        error_rate: args.error_rate,
        malformed_rate: args.malformed_rate,
        drop_rate: args.drop_rate,
        ..FaultPatch::default()
    };
    faults
        .apply(&patch)
        .map_err(|e| anyhow::anyhow!("fault flags: {e}"))?;
    Ok(())
}

pub(crate) fn run(args: EmulateArgs) -> anyhow::Result<ExitCode> {
    let runtime = tierd_engine::runtime("the emulator")?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: EmulateArgs) -> anyhow::Result<()> {
    let as_of = args
        .as_of
        .map_or_else(|| "2026-11-24".to_string(), |d| d.to_string());
    let (token, generated) = match &args.token {
        Some(t) => (t.clone(), false),
        None => (random_token(), true),
    };
    let origin = if generated { "generated" } else { "given" };
    match args.vendor {
        Vendor::Hubspot => {
            let mut cfg = if args.no_limits {
                HubSpotConfig::unlimited(args.accounts, args.seed)
            } else {
                HubSpotConfig::new(args.accounts, args.seed)
            };
            cfg.as_of = as_of;
            cfg.token = token.clone();
            cfg.port = args.port;
            cfg.rate_limit = args.rate_limit.or(cfg.rate_limit);
            cfg.search_rate_per_sec = args.search_rate.or(cfg.search_rate_per_sec);
            cfg.daily_limit = args.daily_limit.or(cfg.daily_limit);
            cfg.search_index_lag = Duration::from_millis(args.search_lag_ms);
            cfg.tierd_properties = args.tierd_properties;
            let limits = match (cfg.rate_limit, cfg.search_rate_per_sec, cfg.daily_limit) {
                (None, None, None) => "none (--no-limits)".to_string(),
                (burst, search, daily) => {
                    let show = |v: Option<u64>| v.map_or_else(|| "off".to_string(), |n| n.to_string());
                    format!(
                        "{} requests per 10 s, {} searches per s, {} per day",
                        show(burst.map(u64::from)),
                        show(search.map(u64::from)),
                        show(daily)
                    )
                }
            };
            let emu = HubSpotEmulator::start(cfg).await?;
            apply_faults(emu.faults(), &args)?;
            println!(
                "HubSpot emulator: {} companies at {}",
                args.accounts,
                emu.base_url()
            );
            println!("limits: {limits}");
            println!("private-app token ({origin}): {token}");
            println!(
                "admin: {0}/__admin/stats, POST {0}/__admin/faults",
                emu.base_url()
            );
            wait_for_ctrl_c().await?;
            emu.shutdown().await;
        }
        Vendor::Salesforce => {
            let mut cfg = if args.no_limits {
                SalesforceConfig::unlimited(args.accounts, args.seed)
            } else {
                SalesforceConfig::new(args.accounts, args.seed)
            };
            cfg.as_of = as_of;
            cfg.client_secret = token.clone();
            cfg.port = args.port;
            cfg.token_ttl = Duration::from_secs(args.token_ttl);
            if let Some(n) = args.daily_limit {
                cfg.daily_api_limit = n;
            }
            let daily = cfg.daily_api_limit;
            let emu = SalesforceEmulator::start(cfg).await?;
            apply_faults(emu.faults(), &args)?;
            println!(
                "Salesforce emulator: {} accounts at {} (instance_url)",
                args.accounts,
                emu.base_url()
            );
            println!("OAuth client secret ({origin}), any client id: {token}");
            if daily == u64::MAX {
                println!("limits: none (--no-limits)");
            } else {
                println!("limits: {daily} API requests per day");
            }
            println!(
                "admin: {0}/__admin/stats, POST {0}/__admin/faults",
                emu.base_url()
            );
            wait_for_ctrl_c().await?;
            emu.shutdown().await;
        }
    }
    Ok(())
}

async fn wait_for_ctrl_c() -> anyhow::Result<()> {
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    eprintln!("stopping");
    Ok(())
}
