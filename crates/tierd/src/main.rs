//! tierd: the binary. Parses the command line and wires the library crates together;
//! the decisions live in tierd-core, file formats in tierd-connectors, synthetic data in tierd-gen.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tierd_core::tier::RunKind;
use tierd_core::Date;

mod calibrate_cmd;
mod emulate;
mod explain;
mod export_cmd;
mod pending_cmd;
mod plugins_cmd;
mod report_cmd;
mod score_file;
mod sync_cmd;
mod webhooks_cmd;

use tierd_config::{load, LoadError, Settings};
use tierd_engine::{enrich, today};

/// mimalloc rather than the system's malloc: the daemon allocates and frees many small values
/// per account on several threads (JSON bodies, facts, rows), where glibc's allocator took a
/// fifth of a run's CPU time (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// B2B account tiering: score accounts over firmographic, technographic, contract and
/// engagement facts, and sort them into a Tier 1 / 2 / 3 pyramid.
#[derive(Parser)]
#[command(name = "tierd", version, propagate_version = true)]
struct Cli {
    /// Configuration file [default: $TIERD_CONFIG, ./config/tierd.toml, or the built-in defaults].
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score and tier a file of accounts (offline).
    Score {
        /// Accounts: .csv or .jsonl, one account per row (`id`, `name`, `domain`, facts as `namespace.fact`).
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// Where to write tiers: .csv or .jsonl (`id,score,tier,coverage,model_version,explanation`).
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
        /// Tiers of an earlier run: prints movements, and applies hysteresis unless --full.
        #[arg(long, value_name = "FILE")]
        previous: Option<PathBuf>,
        /// Where rejected records go [default: INPUT_STEM.rejects.EXT beside the output].
        #[arg(long, value_name = "FILE")]
        rejects: Option<PathBuf>,
        /// Treat this as a full reassessment: tiers move freely, no hysteresis.
        #[arg(long)]
        full: bool,
        /// Score as of this date (YYYY-MM-DD) [default: today, UTC].
        #[arg(long, value_name = "DATE")]
        as_of: Option<Date>,
        /// Run the configured enrichment plugins ([plugins.*]) over the accounts before scoring.
        #[arg(long)]
        enrich: bool,
    },
    /// Show why one account scored what it did.
    Explain {
        /// Accounts file holding the account (tiered over the whole file, as `score` does).
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "store",
            conflicts_with = "store"
        )]
        input: Option<PathBuf>,
        /// Explain the account as the store holds it: stored facts, tier and why [default URL:
        /// the config's `[store] url`].
        #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
        store: Option<String>,
        /// Run the configured plugins ([plugins.*]) over the file's accounts first, as
        /// `score --enrich` does.
        #[arg(long, requires = "input")]
        enrich: bool,
        /// The account's id.
        id: String,
        /// Score as of this date (YYYY-MM-DD) [default: today, UTC].
        #[arg(long, value_name = "DATE")]
        as_of: Option<Date>,
        /// Print the breakdown as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Write synthetic accounts (deterministic for a seed and date).
    Gen {
        /// How many accounts.
        #[arg(long, value_name = "N")]
        accounts: u64,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// .csv or .jsonl.
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
        /// Dates are generated around this day [default: today, UTC].
        #[arg(long, value_name = "DATE")]
        as_of: Option<Date>,
    },
    /// Run a local HubSpot or Salesforce emulator seeded with synthetic accounts, until Ctrl-C.
    Emulate(emulate::EmulateArgs),
    /// One pull-enrich-score-tier-push run against the configured CRM, in the foreground.
    Sync(sync_cmd::SyncArgs),
    /// Run the daemon: scheduled runs, the admin API, leadership among instances; until SIGTERM.
    Run,
    /// The whole loop locally: emulated HubSpot and providers, a full run, a week of changes, an
    /// incremental run, the admin API.
    Demo(tierd_demo::DemoArgs),
    /// List the configured enrichment plugins, or check one.
    Plugins {
        #[command(subcommand)]
        action: plugins_cmd::PluginsAction,
    },
    /// Export audiences (a tier's accounts in an ad platform's template).
    Export {
        #[command(subcommand)]
        action: export_cmd::ExportAction,
    },
    /// Reports over the store: `funnel` (deals per tier against the untiered baseline) and
    /// `budget` (planned spend per tier, seats a total buys, cost per deal and return per tier).
    Report {
        #[command(subcommand)]
        action: report_cmd::ReportAction,
    },
    /// Tune tiering on the stored accounts and deals: thresholds for a pyramid shape, a backtest
    /// of the live (or a candidate) model, suggested weights. Reports; never applies anything.
    Calibrate(calibrate_cmd::CalibrateArgs),
    /// Webhook endpoints: send a signed test event.
    Webhooks {
        #[command(subcommand)]
        action: webhooks_cmd::WebhooksAction,
    },
    /// Records the CRM rejected, held in the store: list them, or retry them at the next run.
    Pending {
        #[command(subcommand)]
        action: pending_cmd::PendingAction,
    },
    /// The child process of an isolated plugin (started by tierd itself).
    #[command(hide = true)]
    PluginHost {
        /// The plugin library to load.
        #[arg(long, value_name = "PATH")]
        library: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Report every problem in the configuration and model, with its key path.
    Validate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        // A reader that stopped early (`tierd explain ... | head`) is not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes joined by ": ", leaving out a cause whose text an outer message
/// already holds (errors that print their source, such as a file error naming its path).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config.as_deref();
    match cli.command {
        Command::Score {
            input,
            output,
            previous,
            rejects,
            full,
            as_of,
            enrich,
        } => {
            let settings = load(config)?;
            let as_of = as_of.unwrap_or_else(today);
            let enrich = match enrich {
                true => {
                    // Plugins log (their load report, failures) as they would in the daemon.
                    tierd_server::logging::init(&settings.log)?;
                    Some(enrich::Enricher::start(&settings, as_of)?)
                }
                false => None,
            };
            let prev = match &previous {
                Some(p) => {
                    let (tiers, problems) = tierd_connectors::files::read_tiers(p)?;
                    for (line, why) in problems.iter().take(10) {
                        eprintln!("{}:{line}: skipped: {why}", p.display());
                    }
                    Some(tiers)
                }
                None => None,
            };
            let kind = if full || prev.is_none() {
                RunKind::Full
            } else {
                RunKind::Incremental
            };
            let job = score_file::ScoreJob {
                input: &input,
                output: &output,
                rejects: rejects.unwrap_or_else(|| score_file::default_rejects_path(&input, &output)),
                previous: prev,
                as_of,
                kind,
                enrich,
            };
            let summary = score_file::score_file(&settings, job)?;
            score_file::print_rejects(&mut io::stderr().lock(), &summary, &input)?;
            let mut out = io::stdout().lock();
            if let Some(e) = &summary.enrichment {
                enrich::print_summary(&mut out, e)?;
            }
            score_file::print_summary(
                &mut out,
                &summary,
                &settings.model.id(),
                as_of,
                previous.as_deref(),
            )?;
            writeln!(out, "Wrote {}", output.display())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain {
            input,
            store,
            enrich,
            id,
            as_of,
            json,
        } => {
            let settings = load(config)?;
            match (input, store) {
                (Some(input), _) => {
                    let as_of = as_of.unwrap_or_else(today);
                    let enricher = match enrich {
                        true => {
                            tierd_server::logging::init(&settings.log)?;
                            Some(enrich::Enricher::start(&settings, as_of)?)
                        }
                        false => None,
                    };
                    explain::explain(&settings, &input, &id, as_of, json, enricher)
                }
                (None, store) => {
                    let url = match store.as_deref() {
                        None | Some("") => settings.store.url.clone(),
                        Some(url) => url.to_owned(),
                    };
                    explain::explain_stored(&settings, &url, &id, as_of, json)
                }
            }
        }
        Command::Config {
            action: ConfigAction::Validate,
        } => {
            let path = tierd_config::locate(config);
            match Settings::load(path.as_deref()) {
                Ok(s) => {
                    println!(
                        "{}: valid. Model {} with {} criteria in {} components, reading {} facts; tiers at {} / {} / {}.",
                        s.origin,
                        s.model.id(),
                        s.model.criteria.len(),
                        s.model.components.len(),
                        s.schema.len(),
                        s.policy.thresholds[0],
                        s.policy.thresholds[1],
                        s.policy.thresholds[2]
                    );
                    for w in plugins_cmd::unread_plugin_warnings(&s)? {
                        eprintln!("warning: {w}");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(LoadError::Io(e)) => Err(e),
                Err(LoadError::Invalid(origin, errors)) => {
                    eprintln!("{origin}: {} problems", errors.0.len());
                    for e in &errors.0 {
                        eprintln!("  {e}");
                    }
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Gen {
            accounts,
            seed,
            output,
            as_of,
        } => {
            gen(&output, accounts, seed, as_of.unwrap_or_else(today))?;
            eprintln!("Wrote {accounts} accounts to {}", output.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => tierd_demo::run(args),
        Command::Emulate(args) => emulate::run(args),
        Command::Sync(args) => sync_cmd::run(&args, load(config)?),
        Command::Pending { action } => pending_cmd::run(&action, &load(config)?),
        Command::Run => tierd_server::run(load(config)?),
        Command::Plugins { action } => plugins_cmd::run(action, load(config)?),
        Command::Export { action } => export_cmd::run(action, load(config)?),
        Command::Report { action } => report_cmd::run(action, load(config)?, today()),
        Command::Calibrate(args) => calibrate_cmd::run(&args, &load(config)?, today()),
        Command::Webhooks { action } => webhooks_cmd::run(action, load(config)?),
        Command::PluginHost { library } => Ok(plugins_cmd::plugin_host(&library)),
    }
}

fn gen(output: &Path, accounts: u64, seed: u64, as_of: Date) -> anyhow::Result<()> {
    use tierd_connectors::files::FileFormat;
    let opts = tierd_gen::GenOptions { seed, as_of };
    let file =
        std::fs::File::create(output).with_context(|| format!("cannot create {}", output.display()))?;
    match FileFormat::from_path(output)? {
        FileFormat::Csv => tierd_gen::write_csv(file, accounts, opts),
        FileFormat::Jsonl => tierd_gen::write_jsonl(file, accounts, opts),
    }
    .with_context(|| format!("cannot write {}", output.display()))
}
