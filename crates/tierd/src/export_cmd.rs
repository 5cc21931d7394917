//! `tierd export audience --tier tier_1[,tier_2] --format F --output DIR`: the accounts of those
//! tiers, as the store holds them after the last run, written as an audience directory (full
//! list, adds and removes since the last export there); for the people formats, the contacts
//! of those accounts, read through the configured connector and written hashed. The same
//! export (`tierd_engine::audience::export_audience`) runs after each committing run for every
//! `[[exports.audiences]]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use tierd_activation::export::AudienceFormat;
use tierd_config::Settings;
use tierd_core::Tier;
use tierd_store::Store;

/// `tierd export` actions.
#[derive(clap::Subcommand, Debug)]
pub enum ExportAction {
    /// Write the accounts of some tiers as an audience in a platform's template.
    Audience {
        /// The tiers, comma-separated: tier_1,tier_2.
        #[arg(long, value_name = "TIERS", value_delimiter = ',', required = true)]
        tier: Vec<String>,
        /// linkedin-companies, csv, jsonl, or google-customer-match and meta-custom-audience
        /// (the contacts of the accounts, read through the connector, hashed).
        #[arg(long, value_name = "FORMAT")]
        format: String,
        /// The audience's directory.
        #[arg(long, value_name = "DIR")]
        output: PathBuf,
    },
}

/// Runs `tierd export ...`.
pub fn run(action: ExportAction, settings: Settings) -> anyhow::Result<ExitCode> {
    let ExportAction::Audience { tier, format, output } = action;
    let tiers = tier
        .iter()
        .map(|t| {
            t.trim()
                .parse::<Tier>()
                .map_err(|e| anyhow::anyhow!("--tier {t}: {e}"))
        })
        .collect::<anyhow::Result<Vec<Tier>>>()?;
    let format: AudienceFormat = format
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--format: {e}"))?;
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
        // Only the people formats need the CRM: company lists work from the store alone.
        let connector = match format.needs_contacts() {
            true => Some(tierd_engine::build_connector(&settings)?),
            false => None,
        };
        let r = tierd_engine::audience::export_audience(
            &store,
            connector.as_deref(),
            &output,
            format,
            &tiers,
            &settings.exports.linkedin,
        )
        .await;
        store.close().await;
        r
    })?;
    println!(
        "{}: {} rows ({} added, {} removed) in {}",
        format,
        report.rows,
        report.added,
        report.removed,
        report.directory.display()
    );
    for w in &report.warnings {
        println!("  warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}
