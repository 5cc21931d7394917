//! `tierd demo`: the README's main command, the daemon's whole loop on one machine.
//!
//! Starts the bundled HubSpot, enrichment-API and website emulators in this process, writes a
//! demo configuration (SQLite store, the HubSpot connector, the three built-in plugins in
//! `isolated` mode, the admin API) and loads it through the normal settings loader, so the demo
//! runs exactly the code `tierd run` runs. Then: a full reassessment, a week of changes in the
//! world (websites, renewals, demo requests, one tier a person locks), an incremental run, a
//! quarter in which deals open and close in the CRM (an incremental run every four weeks), the
//! funnel per tier over that quarter's deals, and the admin API over the result.
//!
//! Must not: reach into the pipeline's internals (it uses `Pipeline::start/run` and the store's
//! public reads, like the daemon) or fake any figure it prints: every number comes from a run
//! report, the store, or an emulator's own counters.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tierd_core::{Date, Tier};
use tierd_emulators::enrichment::{EnrichmentConfig, EnrichmentEmulator};
use tierd_emulators::websites::{WebsiteConfig, WebsiteEmulator};
use tierd_emulators::{HubSpotConfig, HubSpotEmulator, WriteLog};
use tierd_store::{RunKind, RunStatus, Store};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use tierd_config::Settings;
use tierd_engine::metrics::Metrics;
use tierd_engine::progress::ProgressLine;
use tierd_engine::{MovementLine, Pipeline, Progress, RunReport, RunRequest};
use tierd_server::api::{ApiState, RunQueue};

/// Prints one line to stdout; a closed stdout (`| head`) ends the demo with an error.
macro_rules! say {
    ($demo:expr, $($arg:tt)*) => {
        writeln!($demo.out, $($arg)*).context("cannot write to stdout")?
    };
}
/// `tierd demo` arguments.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Keep the demo's config and SQLite store here [default: a temporary directory].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Companies in the HubSpot emulator.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    accounts: u64,
    /// Seed of the generated world and of the changes made to it.
    #[arg(long, value_name = "S", default_value_t = 42)]
    seed: u64,
    /// Keep serving the admin API until Ctrl-C [default: when stdin is a terminal].
    #[arg(long)]
    keep_serving: bool,
}

/// The secrets the demo config names (`*_env`): the emulators' credentials and the API token.
const HUBSPOT_TOKEN_ENV: &str = "TIERD_DEMO_HUBSPOT_TOKEN";
const PDL_KEY_ENV: &str = "TIERD_DEMO_PDL_API_KEY";
const API_TOKEN_ENV: &str = "TIERD_DEMO_API_TOKEN";
/// The host the firmographic plugin calls; `resolve` routes it to the enrichment emulator.
const PDL_HOST: &str = "api.peopledatalabs.com";
/// How far the clock moves between the two runs.
const WEEK: i32 = 7;
/// The website snapshot after the week: two steps, so technologies dropped in the first step are
/// gone from the pages (not lingering), and `removal_after = 1` reports them removed.
const NEXT_SNAPSHOT: u32 = 2;
/// The quarter after the week: this many incremental runs, `STEP_DAYS` apart.
const QUARTER_STEPS: i32 = 3;
const STEP_DAYS: i32 = 28;
/// Accounts shown per listing.
const SHOWN: usize = 8;

/// Runs `tierd demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    if args.accounts < 10 {
        bail!(
            "--accounts {}: the demo needs at least 10 accounts",
            args.accounts
        );
    }
    let plugins = plugin_libraries()?;
    let temp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.canonicalize()
                .with_context(|| format!("cannot resolve {}", d.display()))?
        }
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    // A store left by an earlier demo describes another emulator world: start from an empty one.
    for file in ["tierd.db", "tierd.db-wal", "tierd.db-shm"] {
        let path = dir.join(file);
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    // Set before the runtime and the plugin processes start: the process is single-threaded here.
    let api_token = fresh_token();
    std::env::set_var(HUBSPOT_TOKEN_ENV, "demo-hubspot-token");
    std::env::set_var(PDL_KEY_ENV, "demo-pdl-key");
    std::env::set_var(API_TOKEN_ENV, &api_token);

    let keep_serving = args.keep_serving || std::io::stdin().is_terminal();
    let runtime = tierd_engine::runtime("the demo")?;
    runtime.block_on(async move {
        let demo = Demo {
            args,
            dir,
            plugins,
            api_token,
            started,
            out: std::io::stdout(),
        };
        demo.run(keep_serving).await
    })
}

/// The demo's state between its steps.
struct Demo {
    args: DemoArgs,
    dir: PathBuf,
    plugins: Vec<(&'static str, PathBuf)>,
    api_token: String,
    started: Instant,
    out: std::io::Stdout,
}

/// The emulators of the demo's world.
struct World {
    hubspot: HubSpotEmulator,
    enrichment: EnrichmentEmulator,
    websites: WebsiteEmulator,
}

/// What step 4 changed, to report on after the incremental run.
struct Changes {
    renewals: Vec<String>,
    demos: Vec<String>,
    /// (id, name, tier before, tier the person set).
    locked: Option<(String, String, Tier, Tier)>,
}

impl Demo {
    async fn run(mut self, keep_serving: bool) -> anyhow::Result<ExitCode> {
        let (_stop, stop) = tierd_engine::shutdown::install().context("cannot install the Ctrl-C handler")?;
        let n = self.args.accounts;
        let today = tierd_engine::today();
        let world = self.start_world(today).await?;
        let config = self.dir.join("tierd.toml");
        self.write_config(&config, &world, today)?;
        let settings = tierd_config::load(Some(&config))?;
        tierd_server::logging::init(&settings.log)?;
        say!(
            self,
            "tierd demo: {n} HubSpot companies (seed {}), the enrichment API and {n} company websites, emulated on 127.0.0.1",
            self.args.seed
        );
        say!(self, "Config {} (loaded like any tierd.toml)", config.display());
        say!(self, "Store  {}", settings.store.url);

        // Step 3: the full reassessment.
        let metrics = Arc::new(Metrics::default());
        let pipeline = start_pipeline(settings, &metrics).await?;
        say!(
            self,
            "\n== 1. Full reassessment as of {today}: pull, enrich ({} plugins, isolated), score, tier, push",
            pipeline.plugins().len()
        );
        let first = run_step(&pipeline, RunKind::Full, stop.clone()).await?;
        let after_full = world.hubspot.writes();
        self.print_run_summary(&first)?;
        self.print_pyramid(&first.pyramid)?;
        self.print_top_tier_1(pipeline.store()).await?;

        // Step 4: a week passes.
        let later = today.add_days(WEEK);
        say!(
            self,
            "\n== 2. A week later ({later}): websites change, renewals come due, demo requests, one tier locked by a person"
        );
        let changes = self.change_world(&world, pipeline.store(), later).await?;
        pipeline.shutdown().await;
        self.write_config(&config, &world, later)?;
        let settings = tierd_config::load(Some(&config))?;
        let pipeline = Arc::new(start_pipeline(settings, &metrics).await?);

        // Step 5: the incremental sync.
        say!(
            self,
            "\n== 3. Incremental sync: only what changed since the last run"
        );
        let second = run_step(&pipeline, RunKind::Incremental, stop.clone()).await?;
        self.print_run_summary(&second)?;
        self.print_pyramid(&second.pyramid)?;
        self.print_movements(&second)?;
        self.print_signals(pipeline.store(), &second, &changes).await?;
        self.print_writes(&after_full, &world.hubspot.writes(), &changes)?;

        // Step 6: a quarter passes. The CRM's deal history runs on (deals open, open deals close
        // won or lost, as the emulator's seeded script says) and tierd tiers along the way.
        let end = later.add_days(QUARTER_STEPS * STEP_DAYS);
        say!(
            self,
            "\n== 4. A quarter passes ({later} to {end}): deals open and close in HubSpot; an incremental run every {STEP_DAYS} days"
        );
        let mut pipeline = pipeline;
        let mut quarter_ok = true;
        for step in 1..=QUARTER_STEPS {
            let day = later.add_days(step * STEP_DAYS);
            let (opened, closed) = world.hubspot.advance_deals_to(day);
            shut(pipeline).await;
            self.write_config(&config, &world, day)?;
            let settings = tierd_config::load(Some(&config))?;
            pipeline = Arc::new(start_pipeline(settings, &metrics).await?);
            let r = run_step(&pipeline, RunKind::Incremental, stop.clone()).await?;
            quarter_ok &= r.status == RunStatus::Succeeded;
            let deals = r.deals.as_ref().map_or(String::from("no deals pulled"), |d| {
                format!(
                    "deals of {} accounts pulled: {} new, {} changed",
                    d.accounts, d.sync.new, d.sync.changed
                )
            });
            say!(
                self,
                "  {day}: {opened} deals opened and {closed} closed in the CRM; {} run over {} accounts, {} tiers pushed; {deals}",
                r.status,
                r.accounts,
                r.pushed
            );
        }

        // The funnel per tier over the deals created since tierd's first run, each under the
        // tier its account held on the day it was created (no hindsight).
        say!(
            self,
            "\n== 5. Funnel per tier since the first run (tierd report funnel --from {today})"
        );
        let funnel = tierd_outcomes::funnel_from_store(
            pipeline.store(),
            &tierd_outcomes::FunnelQuery {
                from: Some(today),
                ..pipeline.funnel_query("live")
            },
        )
        .await?;
        tierd_outcomes::write_table(&mut self.out, &funnel)?;
        self.print_win_rate_lift(&funnel)?;
        // The calibration line: the live model backtested on every closed deal the CRM holds,
        // the history from before tierd included (tierd calibrate --backtest).
        let backtest = pipeline.backtest(&tierd_engine::PilotSpec::default()).await?;
        if let Some(live) = backtest.models.first() {
            let rate = |tier: Tier| live.funnel.row(tier).and_then(|r| r.win_rate.value);
            say!(
                self,
                "Calibration (tierd calibrate --backtest): over {} closed deals since before tierd, the live model ranks won above lost with AUC {}; tiered on each deal's creation day, Tier 1 would have won {} of its deals and the baseline {} ({} deals scored on today's facts: the CRM dates none).",
                backtest.deals,
                live.auc.map_or("-".into(), |a| format!("{a:.3}")),
                rate(Tier::Tier1).map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
                rate(Tier::Untiered).map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
                live.scored_on_later_facts
            );
        }

        // Step 6: the admin API over the result.
        let (api_stop, api_stopped) = tokio::sync::watch::channel(false);
        let api = self.start_api(&pipeline, &metrics, api_stopped).await?;
        let elapsed = self.started.elapsed();
        say!(self, "\nDemo finished in {:.1} s.", elapsed.as_secs_f64());
        if keep_serving {
            say!(self, "Serving the admin API until Ctrl-C.");
            let mut stop = stop;
            tierd_engine::shutdown::requested(&mut stop).await;
        } else if self.args.dir.is_none() {
            say!(
                self,
                "(Not serving on: stdin is not a terminal. --keep-serving keeps the API up; --dir DIR keeps the store.)"
            );
        }
        let _ = api_stop.send(true);
        if let Ok(Err(e)) = api.await {
            tracing::warn!(error = %e, "admin API stopped with an error");
        }
        shut(pipeline).await;
        world.hubspot.shutdown().await;
        world.enrichment.shutdown().await;
        world.websites.shutdown().await;
        Ok(match (first.status, second.status, quarter_ok) {
            (RunStatus::Succeeded, RunStatus::Succeeded, true) => ExitCode::SUCCESS,
            _ => ExitCode::from(1),
        })
    }

    /// Step 1: the three emulators, seeded with the same generated companies.
    async fn start_world(&self, today: Date) -> anyhow::Result<World> {
        let (n, seed, as_of) = (self.args.accounts, self.args.seed, today.to_string());
        let mut hubspot = HubSpotConfig::unlimited(n, seed);
        hubspot.as_of = as_of.clone();
        hubspot.token = "demo-hubspot-token".into();
        let mut enrichment = EnrichmentConfig::new(n, seed);
        enrichment.as_of = as_of.clone();
        enrichment.api_key = "demo-pdl-key".into();
        let mut websites = WebsiteConfig::new(n, seed);
        websites.as_of = as_of;
        let (hubspot, enrichment, websites) = tokio::try_join!(
            HubSpotEmulator::start(hubspot),
            EnrichmentEmulator::start(enrichment),
            WebsiteEmulator::start(websites),
        )
        .context("cannot start the emulators")?;
        Ok(World {
            hubspot,
            enrichment,
            websites,
        })
    }

    /// Step 2: the built-in configuration plus the demo's store, connector, plugins and API.
    fn write_config(&self, path: &Path, world: &World, as_of: Date) -> anyhow::Result<()> {
        let model = self.dir.join("model.toml");
        std::fs::write(&model, tierd_config::DEFAULT_MODEL)
            .with_context(|| format!("cannot write {}", model.display()))?;
        let mut text = String::from(tierd_config::DEFAULT_CONFIG);
        let toml_str = |s: &str| toml::Value::String(s.to_string()).to_string();
        text.push_str(&format!(
            r#"
# ---- Written by `tierd demo`: the emulated world. ----

[store]
url = {store}

[connector]
type = "hubspot"
base_url = {hubspot}
token_env = "{HUBSPOT_TOKEN_ENV}"
# The emulator runs without HubSpot's rate limits; a real private app keeps the defaults.
rate_limit = 0
search_rate_per_sec = 0

[outcomes]
# The funnel report's second baseline: the companies not on HubSpot's target-account list.
target_list_fact = "crm.target_account"

[pipeline]
# The demo moves the clock a week between its two runs.
as_of = "{as_of}"
top_movements = 20

[plugins.firmographic]
path = {firmographic}
mode = "isolated"
api_key_env = "{PDL_KEY_ENV}"
# The plugin declares PDL's 100 requests a minute; the emulated API has no limit.
rate_limit_per_minute = 1000000
resolve = {{ "{PDL_HOST}" = "{enrichment}" }}
[plugins.firmographic.config]
base_url = "http://{PDL_HOST}"

[plugins.technographic]
path = {technographic}
mode = "isolated"
# Every company website is served by the website emulator, which picks the site by Host header.
resolve = {{ "*" = "{websites}" }}
# The demo's week passes in seconds: a cache would hide the websites' changes.
cache_ttl_secs = 0
[plugins.technographic.config]
scheme = "http"
paths = ["/careers"]   # job postings reveal the data stack (warehouses) the home page hides
removal_after = 1

[plugins.contract-renewals]
path = {renewals}
mode = "isolated"
# Renewal dates come from the CRM's contract_renewal_date: re-read on every rescoring.
cache_ttl_secs = 0
[plugins.contract-renewals.config]
windows = [30, 90, 180]

[api]
listen = "127.0.0.1:0"
token_env = "{API_TOKEN_ENV}"

[log]
filter = "warn,sqlx=warn"
"#,
            store = toml_str(&format!("sqlite://{}", self.dir.join("tierd.db").display())),
            hubspot = toml_str(&world.hubspot.base_url()),
            enrichment = world.enrichment.addr(),
            websites = world.websites.addr(),
            firmographic = toml_str(&self.plugin_path("firmographic")),
            technographic = toml_str(&self.plugin_path("technographic")),
            renewals = toml_str(&self.plugin_path("contract-renewals")),
        ));
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    fn plugin_path(&self, name: &str) -> String {
        self.plugins
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.display().to_string())
            .unwrap_or_default()
    }

    /// Step 4: websites move two snapshots on; a few dozen renewals come due and demo requests
    /// arrive; a person locks one Tier 2 account at Tier 1.
    async fn change_world(&mut self, world: &World, store: &Store, later: Date) -> anyhow::Result<Changes> {
        world.websites.set_snapshot(NEXT_SNAPSHOT);
        let summaries = tierd_engine::all_summaries(store).await?;
        let ids: Vec<String> = summaries.iter().map(|s| s.id.clone()).collect();
        // A seller's conviction: the best account below Tier 1 is set one tier up, by hand.
        let locked = summaries
            .iter()
            .filter(|s| s.tier != Tier::Tier1 && !s.locked)
            .max_by(|a, b| a.score.total_cmp(&b.score).then_with(|| b.id.cmp(&a.id)))
            .map(|s| (s.id.clone(), s.tier, Tier::ALL[s.tier as usize - 1]));
        let picks = (ids.len() / 10).clamp(1, 30);
        let mut order = shuffled(ids.len(), self.args.seed);
        order.retain(|&i| locked.as_ref().map(|l| &l.0) != Some(&ids[i]));
        let renewals: Vec<String> = order.iter().take(picks).map(|&i| ids[i].clone()).collect();
        let demos: Vec<String> = order
            .iter()
            .skip(picks)
            .take(picks)
            .map(|&i| ids[i].clone())
            .collect();
        for (k, id) in renewals.iter().enumerate() {
            let due = later.add_days(10 + (k as i32 * 7) % 50).to_string();
            world
                .hubspot
                .set_properties(crm_id(id), &[("contract_renewal_date", due.as_str())]);
        }
        for id in &demos {
            let mut dates = world
                .hubspot
                .property(crm_id(id), "demo_request_dates")
                .unwrap_or_default();
            if !dates.is_empty() {
                dates.push(';');
            }
            dates.push_str(&later.to_string());
            world
                .hubspot
                .set_properties(crm_id(id), &[("demo_request_dates", dates.as_str())]);
        }
        let locked = match locked {
            Some((id, from, to)) => {
                world.hubspot.set_properties(
                    crm_id(&id),
                    &[("tierd_tier", to.as_str()), ("tierd_tier_locked", "true")],
                );
                let name = store.account(&id).await?.map(|a| a.name).unwrap_or_default();
                Some((id, name, from, to))
            }
            None => None,
        };
        say!(
            self,
            "  websites: snapshot {NEXT_SNAPSHOT} (about a quarter of the sites change their stack per step)"
        );
        say!(
            self,
            "  HubSpot: {} contract renewals moved into the next 60 days, {} demo requests dated {later}",
            renewals.len(),
            demos.len()
        );
        if let Some((id, name, from, to)) = &locked {
            say!(
                self,
                "  HubSpot: a person sets {id} ({name}) from {from} to {to} and ticks tierd_tier_locked"
            );
        }
        Ok(Changes {
            renewals,
            demos,
            locked,
        })
    }

    /// Tier 1's win rate against the untiered baseline's, from the funnel's own rows.
    fn print_win_rate_lift(&mut self, f: &tierd_outcomes::Funnel) -> anyhow::Result<()> {
        let rate = |tier: Tier| f.row(tier).map(|r| r.win_rate);
        match (rate(Tier::Tier1), rate(Tier::Untiered)) {
            (Some(t1), Some(base)) => match (t1.value, base.value) {
                (Some(a), Some(b)) if b > 0.0 => say!(
                    self,
                    "Tier 1 won {:.1}% of its {} closed deals, the untiered baseline {:.1}% of {}: {:.2}x the baseline's win rate.",
                    a * 100.0,
                    t1.trials,
                    b * 100.0,
                    base.trials,
                    a / b
                ),
                _ => say!(
                    self,
                    "Tier 1 closed {} deals and the baseline {} since the first run: too few to compare win rates.",
                    t1.trials,
                    base.trials
                ),
            },
            _ => say!(self, "No tiered deals since the first run."),
        }
        Ok(())
    }

    fn print_run_summary(&mut self, r: &RunReport) -> anyhow::Result<()> {
        say!(
            self,
            "Run {} ({}): {}; {} accounts scored; pushed {}, unchanged {}, skipped locked {}, \
             skipped (changed by a person) {}, rejected {}, deferred {}",
            r.run,
            r.kind,
            r.status,
            r.accounts,
            r.pushed,
            r.unchanged,
            r.skipped_locked,
            r.skipped_overridden,
            r.rejected,
            r.deferred
        );
        if r.quarantined > 0 || r.stale_plugin_results > 0 {
            say!(
                self,
                "  {} records quarantined; {} plugin results failed (previous facts kept, marked stale)",
                r.quarantined,
                r.stale_plugin_results
            );
        }
        say!(self, "  time: {}", r.stages.summary());
        if let Some(e) = &r.error {
            say!(self, "  error: {e}");
        }
        Ok(())
    }

    fn print_pyramid(&mut self, pyramid: &[u64; 4]) -> anyhow::Result<()> {
        let total: u64 = pyramid.iter().sum::<u64>().max(1);
        say!(self, "Pyramid:");
        for (tier, count) in Tier::ALL.iter().zip(pyramid) {
            let share = *count as f64 * 100.0 / total as f64;
            let bar = "#".repeat(((share / 2.0).round() as usize).max(usize::from(*count > 0)));
            say!(self, "  {:<9} {count:>7} {share:>5.1}%  {bar}", tier.as_str());
        }
        Ok(())
    }

    async fn print_top_tier_1(&mut self, store: &Store) -> anyhow::Result<()> {
        let mut top = tierd_engine::all_summaries(store).await?;
        top.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        // Small worlds may have no Tier 1 account: then the best accounts, whatever their tier.
        match top.iter().any(|s| s.tier == Tier::Tier1) {
            true => {
                top.retain(|s| s.tier == Tier::Tier1);
                say!(self, "Top Tier 1 accounts:");
            }
            false => say!(
                self,
                "Top Tier 1 accounts: none in this world; the best accounts:"
            ),
        }
        top.truncate(SHOWN);
        let ids: Vec<String> = top.iter().map(|s| s.id.clone()).collect();
        let states = store.accounts(&ids).await?;
        for s in &top {
            let Some(state) = states.get(&s.id) else {
                continue;
            };
            // What HubSpot holds: the pushed tier and its reason, which starts with what put the
            // account there (a lift, a cap, a lock) before the score's reasons.
            let pushed = match &state.pushed {
                Some(p) => format!("pushed {}: {}", p.tier.as_str(), p.reason),
                None => format!(
                    "not pushed: {}",
                    state.explanation["reasons"].as_str().unwrap_or("")
                ),
            };
            say!(
                self,
                "  {} {:<26} {:.2} {:<8}  {pushed}",
                s.id,
                state.name,
                s.score,
                s.tier.as_str(),
            );
        }
        Ok(())
    }

    fn print_movements(&mut self, r: &RunReport) -> anyhow::Result<()> {
        let Some(m) = &r.movements else {
            say!(self, "No movements recorded.");
            return Ok(());
        };
        say!(
            self,
            "Movements: {} up, {} down, {} unchanged",
            m.upgrades(),
            m.downgrades(),
            m.unchanged()
        );
        say!(self, "  from \\ to    tier_1   tier_2   tier_3  untiered");
        for (tier, row) in Tier::ALL.iter().zip(&m.matrix) {
            say!(
                self,
                "  {:<10} {:>8} {:>8} {:>8} {:>9}",
                tier.as_str(),
                row[0],
                row[1],
                row[2],
                row[3]
            );
        }
        let moved: Vec<&MovementLine> = r.top_movements.iter().filter(|l| l.from != Some(l.to)).collect();
        say!(self, "Top movements:");
        for line in moved.iter().take(SHOWN * 2) {
            let from = line.from.map_or("new", Tier::as_str);
            say!(
                self,
                "  {} {}: {from} -> {}: {}",
                line.id,
                line.name,
                line.to,
                line.reason
            );
        }
        if moved.is_empty() {
            say!(self, "  (none)");
        }
        Ok(())
    }

    /// What the plugins noticed on the accounts changed in the CRM.
    async fn print_signals(&mut self, store: &Store, r: &RunReport, changes: &Changes) -> anyhow::Result<()> {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut examples: Vec<String> = Vec::new();
        for id in changes.renewals.iter().chain(&changes.demos) {
            let mut adopted = Vec::new();
            let mut removed = Vec::new();
            for s in store.signals(id).await? {
                if s.run != Some(r.run) {
                    continue;
                }
                *counts.entry(s.kind.clone()).or_default() += 1;
                match s.kind.as_str() {
                    "technology_adopted" => adopted.push(s.subject),
                    "technology_removed" => removed.push(s.subject),
                    _ => {}
                }
            }
            if examples.len() < 3 && !(adopted.is_empty() && removed.is_empty()) {
                examples.push(format!(
                    "  {id}: adopted [{}], removed [{}]",
                    adopted.join(", "),
                    removed.join(", ")
                ));
            }
        }
        let listed: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        say!(
            self,
            "Signals the plugins recorded on the {} accounts changed in HubSpot: {}",
            changes.renewals.len() + changes.demos.len(),
            if listed.is_empty() {
                "none".to_string()
            } else {
                listed.join(", ")
            }
        );
        for e in examples {
            say!(self, "{e}");
        }
        Ok(())
    }

    fn print_writes(&mut self, before: &WriteLog, after: &WriteLog, changes: &Changes) -> anyhow::Result<()> {
        let delta: HashMap<&String, u64> = after
            .per_record
            .iter()
            .map(|(id, n)| (id, n - before.count(id)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let most = delta.values().copied().max().unwrap_or(0);
        say!(
            self,
            "HubSpot emulator: {} record writes in the full run, {} in the incremental run \
             ({} accounts, at most {most} write each); {} over both runs, at most {} per account",
            before.total,
            after.total - before.total,
            delta.len(),
            after.total,
            after.max_per_record()
        );
        if let Some((id, name, _, tier)) = &changes.locked {
            let crm = crm_id(id);
            say!(
                self,
                "Locked by a person: {id} ({name}) at {tier}; tierd wrote it {} times in the incremental run",
                after.count(crm) - before.count(crm)
            );
        }
        Ok(())
    }

    /// Step 6: the admin API, with one request to show it answers.
    async fn start_api(
        &mut self,
        pipeline: &Arc<Pipeline>,
        metrics: &Arc<Metrics>,
        stop: tierd_engine::shutdown::ShutdownSignal,
    ) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
        let settings_token = tierd_server::api::auth::Token::new(self.api_token.clone())
            .map_err(|why| anyhow::anyhow!("the demo's API token: {why}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen for the admin API on 127.0.0.1")?;
        let address = listener.local_addr()?;
        let queue = Arc::new(RunQueue::default());
        queue.set_leading(true);
        let state = ApiState {
            store: pipeline.store().clone(),
            view: pipeline.clone(),
            metrics: metrics.clone(),
            runs: queue,
            instance: tierd_engine::instance_name(),
            schema: Arc::new(pipeline.schema().clone()),
        };
        let router = tierd_server::app(state, settings_token);
        let api = tokio::spawn(tierd_server::api::serve(listener, router, stop));
        say!(self, "\n== 6. Admin API and dashboard on http://{address}");
        say!(
            self,
            "  Dashboard: open http://{address}/ and sign in with the token {}",
            self.api_token
        );
        let (status, body) = http_get(address, "/api/v1/tiers", &self.api_token).await?;
        say!(self, "  GET /api/v1/tiers -> {status} {body}");
        say!(
            self,
            "  curl -H \"Authorization: Bearer {}\" http://{address}/api/v1/tiers",
            self.api_token
        );
        say!(
            self,
            "  also: /api/v1/runs, /api/v1/accounts/{{id}}, /api/v1/plugins, /metrics, /healthz"
        );
        Ok(api)
    }
}

/// Starts the pipeline, with a note on what failed when it cannot.
/// Stops a pipeline the API may still share.
async fn shut(pipeline: Arc<Pipeline>) {
    match Arc::try_unwrap(pipeline) {
        Ok(p) => p.shutdown().await,
        Err(shared) => shared.store().close().await,
    }
}

async fn start_pipeline(settings: Settings, metrics: &Arc<Metrics>) -> anyhow::Result<Pipeline> {
    Pipeline::start(Arc::new(settings), metrics.clone(), tierd_engine::instance_name())
        .await
        .context("cannot start the pipeline on the demo configuration")
}

/// Runs one run with a progress line on an interactive terminal, and its time after it.
async fn run_step(
    pipeline: &Pipeline,
    kind: RunKind,
    stop: tierd_engine::shutdown::ShutdownSignal,
) -> anyhow::Result<RunReport> {
    let interactive = std::io::stderr().is_terminal();
    let progress = Arc::new(ProgressLine::new(interactive));
    let started = Instant::now();
    let report = pipeline
        .run(
            RunRequest {
                kind,
                pilot: None,
                job: Default::default(),
            },
            stop,
            Some(progress.clone() as Arc<dyn Progress>),
        )
        .await?;
    if interactive {
        eprint!("\r\x1b[2K");
    }
    println!("({kind} run took {:.1} s)", started.elapsed().as_secs_f64());
    Ok(report)
}

/// The built-in plugins' libraries next to the running executable (`target/release/`), or in its
/// `deps/` (where cargo puts them when they are built as another crate's dependency). Run from a
/// checkout by `cargo run` (which sets `CARGO` and `CARGO_MANIFEST_DIR`), missing ones are built
/// first, with the same profile into the same target directory, so `cargo run --release -- demo`
/// works from a fresh clone.
fn plugin_libraries() -> anyhow::Result<Vec<(&'static str, PathBuf)>> {
    let mut found = tierd_plugin_host::locate::beside_binary();
    let missing = |found: &[(String, PathBuf)]| {
        tierd_plugin_host::locate::BUILT_IN
            .iter()
            .any(|(name, _)| !found.iter().any(|(n, _)| n == name))
    };
    if missing(&found) {
        if let (Some(cargo), Some(manifest)) =
            (std::env::var_os("CARGO"), std::env::var_os("CARGO_MANIFEST_DIR"))
        {
            build_plugins(&cargo, Path::new(&manifest))?;
            found = tierd_plugin_host::locate::beside_binary();
        }
    }
    tierd_plugin_host::locate::BUILT_IN
        .iter()
        .map(|(name, _)| {
            found
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| (*name, p.clone()))
                .with_context(|| {
                    format!(
                        "the {name} plugin is not built: run the demo with `cargo run --release -- demo` \
                         from a checkout, or `cargo build --release --workspace` first (it is neither \
                         beside the tierd binary nor in its deps/)"
                    )
                })
        })
        .collect()
}

/// `cargo build` of the built-in plugins, for a demo started by `cargo run` from a checkout.
fn build_plugins(cargo: &std::ffi::OsStr, manifest_dir: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    let profile_dir = exe.parent().context("the executable has no directory")?;
    let target_dir = profile_dir
        .parent()
        .context("the executable is not in a target directory")?;
    let profile = profile_dir
        .file_name()
        .and_then(|p| p.to_str())
        .map_or("dev", |p| if p == "debug" { "dev" } else { p });
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(manifest_dir)
        .args(["build", "--profile", profile, "--target-dir"])
        .arg(target_dir);
    for (name, _) in tierd_plugin_host::locate::BUILT_IN {
        cmd.args(["-p", name]);
    }
    eprintln!("Building the built-in plugins ({profile} profile), once: the demo loads them");
    let status = cmd.status().context("cannot run cargo to build the plugins")?;
    anyhow::ensure!(status.success(), "building the plugins failed ({status})");
    Ok(())
}

/// The HubSpot record id of a stored account id (`hubspot:1000000042`).
fn crm_id(id: &str) -> &str {
    id.strip_prefix("hubspot:").unwrap_or(id)
}

/// `0..n` in an order fixed by `seed` (Fisher-Yates over splitmix64).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed ^ 0x5eed_de30;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// A token for this demo's API: 32 hex digits from the standard library's random hash keys.
fn fresh_token() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    (0..2)
        .map(|i| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(i);
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            format!("{:016x}", h.finish())
        })
        .collect()
}

/// One `GET` over plain HTTP/1.1: (status code, body).
async fn http_get(address: std::net::SocketAddr, path: &str, token: &str) -> anyhow::Result<(u16, String)> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .context("the admin API did not answer within 10 s")?
        .with_context(|| format!("cannot reach the admin API at {address}"))?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("the admin API answered something that is not HTTP: {head}"))?;
    Ok((status, body.trim().to_string()))
}
