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
    /// Start the configured plugins and show name, version, ABI, mode, facts and allowed hosts;
    /// list the plugin libraries beside the tierd binary, marking which are configured.
    List,
    /// Load one plugin, check its ABI, run describe and a sample enrich on one account. Uses its
    /// `[plugins.<name>]` table when the config has one for this path (or PATH is a table's name).
    Check {
        /// A plugin library (.so/.dylib/.dll), with --mode exec an executable, or the name of a
        /// configured plugin.
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
        /// Route HOST to ADDR (IP:port) for the plugin's HTTP calls, e.g. to a local emulator of
        /// its vendor; repeatable. `*` routes every host.
        #[arg(long, value_name = "HOST=ADDR", value_parser = parse_resolve)]
        resolve: Vec<(String, String)>,
        /// Let the plugin reach HOST besides the hosts it declares; repeatable.
        #[arg(long, value_name = "HOST")]
        allow_host: Vec<String>,
    },
}

fn parse_resolve(s: &str) -> Result<(String, String), String> {
    let (host, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected HOST=IP:PORT"))?;
    addr.parse::<std::net::SocketAddr>()
        .map_err(|_| format!("{s:?}: {addr:?} is not an IP:port address"))?;
    Ok((host.to_owned(), addr.to_owned()))
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

/// Runs a `plugins` action. Both actions log as the daemon would (the `[log]` section), so a
/// plugin's own log lines, such as its load report, are shown on stderr.
pub fn run(action: PluginsAction, settings: Settings) -> anyhow::Result<ExitCode> {
    tierd_server::logging::init(&settings.log)?;
    match action {
        PluginsAction::List => list(&settings),
        PluginsAction::Check {
            path,
            mode,
            plugin_config,
            page,
            resolve,
            allow_host,
        } => check(
            &settings,
            &path,
            CheckOptions {
                mode,
                config: plugin_config.as_deref(),
                page: page.as_deref(),
                resolve,
                allow_hosts: allow_host,
            },
        ),
    }
}

use tierd_plugin_host::locate::{beside_binary, configured_for};

fn list(settings: &Settings) -> anyhow::Result<ExitCode> {
    let configs = &settings.plugins;
    let mut out = std::io::stdout().lock();
    let mut errors = Vec::new();
    if configs.is_empty() {
        writeln!(
            out,
            "No plugins configured in {}: add a [plugins.<name>] table (see docs/plugins.md).",
            settings.origin
        )?;
    } else {
        writeln!(out, "Configured in {}:", settings.origin)?;
        let rt = runtime()?;
        let (set, failed) = rt.block_on(PluginSet::start(configs, &HostOptions::default()));
        for info in set.plugins() {
            print_info(&mut out, &info)?;
            if let Some(cfg) = configs.get(&info.name) {
                let what = match (&cfg.path, &cfg.command) {
                    (Some(p), _) => format!("path {}", p.display()),
                    (None, Some(c)) => format!("command {}", c.display()),
                    (None, None) => String::new(),
                };
                writeln!(out, "  config: [plugins.{}] {what}", info.name)?;
            }
        }
        rt.block_on(set.shutdown());
        errors = failed;
    }
    let found = beside_binary();
    if !found.is_empty() {
        writeln!(out, "\nFound beside the tierd binary:")?;
        for (name, path) in &found {
            let status = match configured_for(configs, path) {
                Some((table, cfg)) => format!("configured as [plugins.{table}], {}", cfg.mode.as_str()),
                None => format!(
                    "not configured: add [plugins.{name}] with path = {:?}",
                    path.display().to_string()
                ),
            };
            writeln!(out, "  {name:<20} {}\n    {status}", path.display())?;
        }
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// For `tierd config validate`: a warning for each configured plugin none of whose declared
/// facts the model (or an engagement override) reads, since the host keeps only the facts the
/// model's schema has a slot for; and for each plugin that cannot start to say what it provides.
/// Starts the plugins (to read their `describe`), then stops them.
pub fn unread_plugin_warnings(settings: &Settings) -> anyhow::Result<Vec<String>> {
    if settings.plugins.is_empty() {
        return Ok(Vec::new());
    }
    // Like every command that loads plugins, show what they log (their load report).
    tierd_server::logging::init(&settings.log)?;
    let rt = runtime()?;
    let (set, errors) = rt.block_on(PluginSet::start(&settings.plugins, &HostOptions::default()));
    let mut warnings: Vec<String> = errors
        .iter()
        .map(|e| format!("cannot check which facts a plugin provides: {e}"))
        .collect();
    for info in set.plugins() {
        if info.facts.iter().all(|f| settings.schema.slot(&f.name).is_none()) {
            let facts: Vec<&str> = info.facts.iter().map(|f| f.name.as_str()).collect();
            warnings.push(format!(
                "plugins.{}: no criterion of model {} reads any of its facts ({}): its results would be dropped",
                info.name,
                settings.model.id(),
                facts.join(", ")
            ));
        }
    }
    rt.block_on(set.shutdown());
    Ok(warnings)
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
    if info.described_name == info.name {
        writeln!(out, "{} {}", info.name, info.version)?;
    } else {
        writeln!(
            out,
            "{} {} (describes itself as {})",
            info.name, info.version, info.described_name
        )?;
    }
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

/// What `plugins check` was told besides the path.
struct CheckOptions<'a> {
    mode: Option<CheckMode>,
    config: Option<&'a str>,
    page: Option<&'a Path>,
    resolve: Vec<(String, String)>,
    allow_hosts: Vec<String>,
}

fn check(settings: &Settings, path: &Path, opts: CheckOptions<'_>) -> anyhow::Result<ExitCode> {
    let is_library = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("so" | "dylib" | "dll")
    );
    // The plugin's own table when there is one: by name, or by the file it names.
    let configured = match settings.plugins.get_key_value(&*path.to_string_lossy()) {
        Some(found) if !path.exists() => Some(found),
        _ => configured_for(&settings.plugins, path),
    };
    let mut cfg = match configured {
        Some((name, cfg)) => {
            eprintln!("using [plugins.{name}] from {}", settings.origin);
            cfg.clone()
        }
        None => match opts.mode {
            Some(CheckMode::Exec) => PluginConfig::exec(path),
            None if !is_library => PluginConfig::exec(path),
            _ => PluginConfig::library(path, Mode::Isolated),
        },
    };
    match opts.mode {
        Some(CheckMode::InProcess) => cfg.mode = Mode::InProcess,
        Some(CheckMode::Isolated) => cfg.mode = Mode::Isolated,
        Some(CheckMode::Exec) => cfg.mode = Mode::Exec,
        None => {}
    }
    if cfg.mode == Mode::Exec && cfg.command.is_none() {
        cfg.command = Some(path.to_path_buf());
    } else if cfg.mode != Mode::Exec && cfg.path.is_none() {
        cfg.path = Some(path.to_path_buf());
    }
    let mode = cfg.mode;
    if let Some(json) = opts.config {
        let value: serde_json::Value = serde_json::from_str(json)
            .context("--plugin-config must be a JSON object, e.g. '{\"key\": \"value\"}'")?;
        let serde_json::Value::Object(map) = value else {
            anyhow::bail!("--plugin-config must be a JSON object, e.g. '{{\"key\": \"value\"}}'");
        };
        cfg.config = map;
    }
    cfg.resolve.extend(opts.resolve);
    cfg.allow_hosts.extend(opts.allow_hosts);
    let rt = runtime()?;
    if let Some(page) = opts.page {
        let html = std::fs::read_to_string(page).with_context(|| format!("--page {}", page.display()))?;
        let addr = rt.block_on(serve_page(html))?;
        cfg.resolve.insert(SAMPLE_DOMAIN.to_owned(), addr.to_string());
        cfg.config.entry("scheme").or_insert_with(|| "http".into());
        // A saved page has no DNS records: the sample domain is not asked of the system's resolver.
        cfg.dns.enabled = false;
    }
    let load = |name: String, cfg: PluginConfig| {
        let configs = BTreeMap::from([(name, cfg)]);
        rt.block_on(PluginSet::load(&configs, &HostOptions::default()))
    };
    // Named as configured; otherwise by the name the plugin gives itself in describe().
    let provisional = match configured {
        Some((name, _)) => name.clone(),
        None => "plugin-check".to_owned(),
    };
    let loaded = load(provisional.clone(), cfg.clone()).and_then(|set| {
        let described = set.plugins().first().map(|p| p.described_name.clone());
        match described {
            Some(name) if configured.is_none() && name != provisional && !name.is_empty() => {
                rt.block_on(set.shutdown());
                load(name, cfg)
            }
            _ => Ok(set),
        }
    });
    let set = match loaded {
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
