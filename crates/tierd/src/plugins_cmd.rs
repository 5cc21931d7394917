//! `tierd plugins list|check` and the hidden `tierd plugin-host` child of isolated mode.
//! The work lives in tierd-plugin-host; this module only starts plugins and prints what it saw.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use tierd_plugin_host::{AccountInput, HostOptions, Mode, Outcome, PluginConfig, PluginInfo, PluginSet};

use tierd_config::Settings;

/// `tierd plugins ...`
#[derive(Subcommand)]
pub enum PluginsAction {
    /// Start the configured plugins and show name, version, ABI, mode, facts and allowed hosts.
    List,
    /// Load one plugin, check its ABI, run describe and a sample enrich on one account.
    Check {
        /// A plugin library (.so/.dylib/.dll) or, with --mode exec, an executable.
        path: PathBuf,
        /// How to run it [default: isolated for libraries, exec for anything else].
        #[arg(long, value_enum)]
        mode: Option<CheckMode>,
        /// The plugin's config as JSON, e.g. '{"greeting": "Hi"}' (`--config` is tierd's own file).
        #[arg(long, value_name = "JSON")]
        plugin_config: Option<String>,
        /// For plugins that fetch websites (technographic): serve this HTML file as the sample
        /// account's home page, on a local port over plain HTTP (`scheme = "http"` unless the
        /// plugin config says otherwise).
        #[arg(long, value_name = "FILE")]
        page: Option<PathBuf>,
    },
}

/// Modes for `plugins check`.
#[derive(Clone, Copy, ValueEnum)]
pub enum CheckMode {
    /// Load into this process.
    InProcess,
    /// Load in a child `tierd plugin-host`.
    Isolated,
    /// Run as an exec plugin.
    Exec,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tierd_engine::runtime("plugins")
}

/// Runs a `plugins` action.
pub fn run(
    action: PluginsAction,
    settings: impl FnOnce() -> anyhow::Result<Settings>,
) -> anyhow::Result<ExitCode> {
    match action {
        PluginsAction::List => list(&settings()?.plugins),
        PluginsAction::Check {
            path,
            mode,
            plugin_config,
            page,
        } => check(&path, mode, plugin_config.as_deref(), page.as_deref()),
    }
}

fn list(configs: &BTreeMap<String, PluginConfig>) -> anyhow::Result<ExitCode> {
    if configs.is_empty() {
        println!("No plugins configured: add a [plugins.<name>] table (see docs/plugins.md).");
        return Ok(ExitCode::SUCCESS);
    }
    let rt = runtime()?;
    let (set, errors) = rt.block_on(PluginSet::start(configs, &HostOptions::default()));
    let mut out = std::io::stdout().lock();
    for info in set.plugins() {
        print_info(&mut out, &info)?;
    }
    rt.block_on(set.shutdown());
    for e in &errors {
        eprintln!("error: {e}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_info(out: &mut impl std::io::Write, info: &PluginInfo) -> std::io::Result<()> {
    let facts: Vec<String> = info
        .facts
        .iter()
        .map(|f| format!("{} ({})", f.name, f.fact_type))
        .collect();
    let hosts = if info.allowed_hosts.is_empty() {
        "none".to_owned()
    } else {
        info.allowed_hosts.join(", ")
    };
    writeln!(out, "{} {}", info.name, info.version)?;
    writeln!(out, "  ABI:    {}", info.abi)?;
    writeln!(
        out,
        "  mode:   {}, batches of {}",
        info.mode.as_str(),
        info.batch_size
    )?;
    writeln!(out, "  facts:  {}", facts.join(", "))?;
    if !info.signals.is_empty() {
        writeln!(out, "  signals: {}", info.signals.join(", "))?;
    }
    writeln!(out, "  hosts:  {hosts}")
}

/// The sample account's domain.
const SAMPLE_DOMAIN: &str = "acme.example";

/// The account `plugins check` enriches: a plausible company with a domain, a CRM fact and a contract.
fn sample_account() -> AccountInput {
    let sample = serde_json::json!({
        "key": "", "id": "check:1", "name": "Acme Corporation", "domain": SAMPLE_DOMAIN,
        "facts": {"crm.industry": "Software", "crm.num_employees": 1200},
        "related": {"contracts": [{"vendor": "Talend", "start_date": "2025-01-01", "term_months": 24,
            "end_date": "2026-12-31", "status": "Activated", "annual_value": 40000}]}
    });
    serde_json::from_value(sample).expect("the sample account matches AccountInput")
}

/// Serves `html` at `/` (everything else is 404) on 127.0.0.1, for `check --page`.
async fn serve_page(html: String) -> anyhow::Result<std::net::SocketAddr> {
    use axum::response::Html;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot open a local port for --page")?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route("/", axum::routing::get(move || async move { Html(html) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

fn check(
    path: &Path,
    mode: Option<CheckMode>,
    config: Option<&str>,
    page: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    // The plugin's own log lines (its load report) go to stderr, as the daemon would log them.
    tierd_server::logging::init(&tierd_config::log::LogSettings::default())?;
    let is_library = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("so" | "dylib" | "dll")
    );
    let mode = match mode {
        Some(CheckMode::InProcess) => Mode::InProcess,
        Some(CheckMode::Isolated) => Mode::Isolated,
        Some(CheckMode::Exec) => Mode::Exec,
        None if is_library => Mode::Isolated,
        None => Mode::Exec,
    };
    let mut cfg = match mode {
        Mode::Exec => PluginConfig::exec(path),
        mode => PluginConfig::library(path, mode),
    };
    if let Some(json) = config {
        let value: serde_json::Value = serde_json::from_str(json)
            .context("--plugin-config must be a JSON object, e.g. '{\"key\": \"value\"}'")?;
        let serde_json::Value::Object(map) = value else {
            anyhow::bail!("--plugin-config must be a JSON object, e.g. '{{\"key\": \"value\"}}'");
        };
        cfg.config = map;
    }
    let rt = runtime()?;
    if let Some(page) = page {
        let html = std::fs::read_to_string(page).with_context(|| format!("--page {}", page.display()))?;
        let addr = rt.block_on(serve_page(html))?;
        cfg.resolve.insert(SAMPLE_DOMAIN.to_owned(), addr.to_string());
        cfg.config.entry("scheme").or_insert_with(|| "http".into());
        // A saved page has no DNS records: the sample domain is not asked of the system's resolver.
        cfg.dns.enabled = false;
    }
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .map(|s| s.trim_start_matches("lib").to_owned())
        .unwrap_or_else(|| "plugin".to_owned());
    let configs = BTreeMap::from([(name, cfg)]);
    let set = match rt.block_on(PluginSet::load(&configs, &HostOptions::default())) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("FAILED: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "loaded {} ({})", path.display(), mode.as_str())?;
    for info in set.plugins() {
        print_info(&mut out, &info)?;
    }
    let today = crate::today().to_string();
    let enriched = rt.block_on(set.enrich(&today, vec![sample_account()]));
    rt.block_on(set.shutdown());
    let mut ok = true;
    for result in enriched.iter().flat_map(|a| &a.results) {
        match &result.outcome {
            Outcome::Fresh { facts, signals } | Outcome::Cached { facts, signals } => {
                writeln!(
                    out,
                    "sample enrich of acme.example: {} facts, {} signals",
                    facts.len(),
                    signals.len()
                )?;
                for (fact, value) in facts {
                    writeln!(out, "  {fact} = {value}")?;
                }
                for s in signals {
                    writeln!(
                        out,
                        "  signal {} {} on {}",
                        s.kind,
                        s.subject.as_deref().unwrap_or(""),
                        s.date
                    )?;
                }
            }
            Outcome::NoMatch => writeln!(out, "sample enrich of acme.example: no match (not an error)")?,
            Outcome::Stale { reason } => {
                ok = false;
                writeln!(out, "sample enrich FAILED: {reason}")?;
            }
        }
        for r in &result.rejected {
            ok = false;
            writeln!(out, "  rejected: {r}")?;
        }
    }
    writeln!(out, "{}", if ok { "OK" } else { "FAILED" })?;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `tierd plugin-host --library PATH`: the isolated-mode child. Speaks the protocol on stdio.
pub fn plugin_host(library: &Path) -> ExitCode {
    match tierd_plugin_host::child::serve_stdio(library) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tierd plugin-host: {e}");
            ExitCode::from(1)
        }
    }
}
