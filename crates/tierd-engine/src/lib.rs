//! tierd-engine: one run of tierd: pull -> enrich -> score -> commit state -> tier -> diff -> push ->
//! commit outcome.
//!
//! # Streaming
//! Pulled pages go through a bounded channel into work items of `[pipeline] batch_size`
//! accounts. A work item is enriched (plugins, through the store-backed facts cache), scored and
//! committed as one unit; memory follows the batches in flight, not the population. Only tiering
//! sees every account, and only its summary (id, score, coverage, potential value, tier, pushed
//! tier, lock), paged from the store.
//!
//! # Work queue
//! Committing runs (`full`, `incremental`) put their work items in the store's work queue; every
//! instance sharing the database (PostgreSQL) claims items with `FOR UPDATE SKIP LOCKED`, the
//! leader included ([`Pipeline::work`] on followers). On SQLite the same code runs with one
//! instance. Tiering starts once the run's items are all done; an item claimed by an instance that
//! died is requeued after `stale_work_secs`. `dry_run` and `pilot` runs commit nothing, so their
//! items are processed by the leader alone and their scores kept in memory.
//!
//! # Tiers in two steps
//! A work item stores each account's scores and its *tiering basis* ([`tierd_store::Store::commit_scores`]):
//! the base tier (thresholds, hysteresis against the previous base tier in incremental jobs, manual
//! lock) and until when an engagement override lifts it. It does not decide the tier. Tiering then
//! recomputes the tier of **every** account from its basis on the run's date: the lift if it still
//! holds, then the pyramid caps population-wide. So an expired lift ends on the first run after it
//! expires, rescored or not, and a freed cap seat goes to the next account at once. The push stage
//! commits each final tier once, with the push outcome: one history row per real change, whose
//! reason names the lift and the cap when they decided it.
//!
//! # Crash safety
//! Each push batch (`[pipeline] push_calls_per_commit` calls to the CRM, sent in turn) commits its
//! state and outcome in one store transaction (see `tierd-store`), so a committed push is never
//! sent again. Up to `[pipeline] push_concurrency` batches are in
//! flight at once (one is sent while another commits; each holds only its own accounts). The one
//! window left is a crash after the CRM accepted a batch and before its commit, for each batch
//! in flight. It is closed on the next run by the **adoption rule**: when the
//! account was pulled in this run, is not locked, and the CRM already holds exactly the tier tierd
//! is about to push while tierd's record says it pushed something else (or nothing), the value is
//! recorded as pushed without writing it again. A person's edit is still detected: a person's value
//! differs from what tierd intends, so `plan_push` reports it as overridden; if a person happens to
//! set exactly the tier tierd wants, adopting it changes nothing in the CRM. Reason-only or
//! score-only updates caught in the window are written once more (the CRM's tier field is the
//! only one the pull reads back).
//!
//! Runs never overlap (the store refuses a second `running` run). A run left `running` by a dead
//! process on this host is marked interrupted when the next run starts; the next incremental run
//! pulls from the last *successful* run's watermark, so it redoes whatever the interrupted one
//! did not finish, and diffs against what was actually pushed.
//!
//! Must not: speak HTTP itself (connectors do), decide tiers (tierd-core does), or hold the whole
//! population's facts.

pub mod audience;
pub mod backtest;
#[cfg(test)]
mod budget_caps_tests;
mod cache;
mod commit_sink;
mod context;
mod crm_lists;
#[cfg(test)]
mod crm_lists_tests;
pub mod enrich;
mod events;
#[cfg(test)]
mod events_tests;
mod memory_sink;
pub mod metrics;
mod pilot;
mod plan;
pub mod progress;
mod queue;
mod run;
pub mod shutdown;
mod sink;
mod stage;
#[cfg(test)]
mod tests;
pub mod timings;
mod work;

pub use stage::deals::DealsReport;
pub use timings::{StageTime, StageTimes};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tierd_connectors::connector::Connector;
use tierd_core::diff::Movements;
use tierd_core::{Date, FactSchema, Model, Tier, TierPolicy};
use tierd_plugin_host::{HostOptions, PluginInfo, PluginSet};
use tierd_store::{RunId, RunKind, RunStatus, Store};

use crate::metrics::Metrics;
use crate::shutdown::ShutdownSignal;
use tierd_config::Settings;

use self::backtest::policy_for;
use self::cache::StoreCache;
use self::commit_sink::CommitSink;
use self::context::RunCtx;
pub use self::crm_lists::CrmListOutcome;
use self::memory_sink::MemorySink;
use self::plan::Ending;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Full, incremental, dry run (the job below, nothing pushed or stored) or pilot.
    pub kind: RunKind,
    /// For pilots: the candidate model and the accounts to try it on.
    pub pilot: Option<PilotSpec>,
    /// What a dry run rehearses: a full job (every account, no hysteresis) or an incremental one
    /// (changes since the last successful run, hysteresis). Full and incremental runs are their
    /// own job; pilots always pull everything and tier without hysteresis.
    pub job: Job,
}

impl RunRequest {
    /// A run of `kind`, rehearsing the default job when it is a dry run.
    pub fn new(kind: RunKind) -> Self {
        RunRequest {
            kind,
            pilot: None,
            job: Job::default(),
        }
    }

    /// The job this run does: how it pulls and whether it applies hysteresis.
    pub fn effective_job(&self) -> Job {
        match self.kind {
            RunKind::Full | RunKind::Pilot => Job::Full,
            RunKind::Incremental => Job::Incremental,
            RunKind::DryRun => self.job,
        }
    }
}

/// The connector of `[connector]`, its `*_env` secrets read from the environment.
pub fn build_connector(settings: &Settings) -> anyhow::Result<Box<dyn Connector>> {
    let connector_settings = settings.connector.as_ref().context(
        "no [connector] section in the configuration: add one (type = \"hubspot\", \"salesforce\" or \"file\")",
    )?;
    let config = connector_settings.resolved(|var| std::env::var(var).ok())?;
    tierd_connectors::registry::build(&connector_settings.kind, config)
        .with_context(|| format!("cannot set up the {} connector", connector_settings.kind))
}

/// How much a run redoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// Every account, plugin caches refreshed, tiers move freely.
    Full,
    /// Accounts changed (or signalled) since the last successful run, with hysteresis: what
    /// `tierd sync --once` does unless told otherwise.
    #[default]
    Incremental,
}

impl Job {
    /// The committing run kind of this job.
    pub fn run_kind(self) -> RunKind {
        match self {
            Job::Full => RunKind::Full,
            Job::Incremental => RunKind::Incremental,
        }
    }
}

/// A pilot: a candidate model and/or a subset of accounts; nothing is pushed or stored.
#[derive(Debug, Clone, Default)]
pub struct PilotSpec {
    /// A candidate model file; `None` = the live model.
    pub model: Option<PathBuf>,
    /// Only accounts whose fact matches: `firmographic.region=EMEA` (lists: contains).
    pub filter: Option<String>,
    /// Share of accounts `0..=1`, chosen deterministically by account id.
    pub sample: Option<f64>,
}

/// One account that changed tier, for the report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MovementLine {
    /// The account id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The tier before (`None`: new).
    pub from: Option<Tier>,
    /// The tier now.
    pub to: Tier,
    /// Why, in a seller's words.
    pub reason: String,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run.
    pub run: RunId,
    /// Its kind.
    pub kind: RunKind,
    /// How it ended.
    pub status: RunStatus,
    /// Accounts scored in this run.
    pub accounts: u64,
    /// Accounts per tier after the run (for pilots: of the pilot population).
    pub pyramid: [u64; 4],
    /// Tier before -> after: the pushed tier for committing runs, the live tier for dry runs and
    /// pilots.
    pub movements: Option<Movements>,
    /// Updates written (dry runs and pilots: that would be written).
    pub pushed: u64,
    /// Of `pushed`: tiers the CRM had lost (an emptied field) written again.
    pub repaired: u64,
    /// Not sent: nothing changed since the last push.
    pub unchanged: u64,
    /// Not sent: locked by a person.
    pub skipped_locked: u64,
    /// Not sent: a person changed the tier in the CRM.
    pub skipped_overridden: u64,
    /// Refused by the CRM (kept in pending pushes).
    pub rejected: u64,
    /// Not sent this run (CRM limit or outage); retried next run.
    pub deferred: u64,
    /// Records that could not be read.
    pub quarantined: u64,
    /// Plugin results that failed; the previous facts were kept.
    pub stale_plugin_results: u64,
    /// The first movements with their reasons.
    pub top_movements: Vec<MovementLine>,
    /// What the deals stage did (committing runs that got that far).
    pub deals: Option<DealsReport>,
    /// Where the run's time went, stage by stage.
    pub stages: StageTimes,
    /// Why the run failed or stopped.
    pub error: Option<String>,
}

impl RunReport {
    fn new(run: RunId, kind: RunKind) -> Self {
        RunReport {
            run,
            kind,
            status: RunStatus::Running,
            accounts: 0,
            pyramid: [0; 4],
            movements: None,
            pushed: 0,
            repaired: 0,
            unchanged: 0,
            skipped_locked: 0,
            skipped_overridden: 0,
            rejected: 0,
            deferred: 0,
            quarantined: 0,
            stale_plugin_results: 0,
            top_movements: Vec::new(),
            deals: None,
            stages: StageTimes::default(),
            error: None,
        }
    }

    /// The statistics recorded with the run.
    pub fn stats(&self) -> serde_json::Value {
        serde_json::json!({
            "accounts": self.accounts,
            "pyramid": self.pyramid,
            "pushed": self.pushed,
            "repaired": self.repaired,
            "unchanged": self.unchanged,
            "skipped_locked": self.skipped_locked,
            "skipped_overridden": self.skipped_overridden,
            "rejected": self.rejected,
            "deferred": self.deferred,
            "quarantined": self.quarantined,
            "stale_plugin_results": self.stale_plugin_results,
            "movements": self.movements.as_ref().map(|m| serde_json::json!({
                "matrix": m.matrix, "new": m.new_accounts,
                "upgrades": m.upgrades(), "downgrades": m.downgrades(),
            })),
            "top_movements": self.top_movements,
            "deals": self.deals,
            "stages": self.stages,
        })
    }
}

/// Where a run is, for a progress bar.
pub trait Progress: Send + Sync {
    /// A stage starts (`pull`, `score`, `tier`, `push`), with its size when known.
    fn stage(&self, name: &str, total: Option<u64>);
    /// `n` more units of the current stage are done.
    fn advance(&self, n: u64);
}

/// What scores and tiers a run: the live model and policy, or a pilot's candidate.
pub(crate) struct Scorer {
    pub(crate) model: Model,
    pub(crate) schema: FactSchema,
    pub(crate) policy: TierPolicy,
    pub(crate) as_of: Date,
    pub(crate) reasons: (usize, usize),
    /// `[shadow]`: the candidate scored beside the live model (with the live policy's overrides
    /// re-slotted to its schema) in committing runs; never in pilots or dry runs.
    pub(crate) shadow: Option<Box<Scorer>>,
}

/// The daemon's pipeline: store, connector, plugins.
pub struct Pipeline {
    settings: Arc<Settings>,
    store: Store,
    connector: Box<dyn Connector>,
    plugins: Option<PluginSet>,
    cache: Arc<StoreCache>,
    metrics: Arc<Metrics>,
    instance: String,
    /// The `[[webhooks]]` endpoints that could be set up (the others are reported at start).
    webhooks: tierd_activation::webhooks::Webhooks,
    /// One run at a time in this process (the store refuses overlap across processes).
    busy: tokio::sync::Mutex<()>,
    /// The last connector check, for readiness probes.
    checked: std::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

/// How long a readiness probe reuses the connector check.
const READY_CACHE: Duration = Duration::from_secs(60);

impl Pipeline {
    /// Connects the store (migrating it), builds the connector from `[connector]` and starts the
    /// plugins of `[plugins.*]`.
    pub async fn start(
        settings: Arc<Settings>,
        metrics: Arc<Metrics>,
        instance: String,
    ) -> anyhow::Result<Pipeline> {
        let connector = build_connector(&settings)?;
        let store = Store::connect(&settings.store.url).await.with_context(|| {
            format!(
                "cannot open the store at {}",
                tierd_store::redact_url(&settings.store.url)
            )
        })?;
        let cache = Arc::new(StoreCache::default());
        let plugins = if settings.plugins.is_empty() {
            None
        } else {
            let set = PluginSet::load(&settings.plugins, &HostOptions::default())
                .await
                .context("cannot start the enrichment plugins")?;
            Some(set.with_cache(cache::shared(&cache)))
        };
        let webhooks = events::compile(&settings.webhooks);
        Ok(Pipeline {
            webhooks,
            settings,
            store,
            connector,
            plugins,
            cache,
            metrics,
            instance,
            busy: tokio::sync::Mutex::new(()),
            checked: std::sync::Mutex::new(None),
        })
    }

    /// The funnel over every deal for `model` (`live`, `shadow`) with the configured comparison
    /// groups (`[outcomes]`): what `/metrics`, the API and the demo report.
    pub fn funnel_query(&self, model: &str) -> tierd_outcomes::FunnelQuery {
        tierd_outcomes::FunnelQuery {
            model: model.to_string(),
            target_list_fact: self
                .settings
                .outcomes
                .target_list_fact
                .as_ref()
                .map(ToString::to_string),
            ..tierd_outcomes::FunnelQuery::default()
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The webhook endpoints events are written for (the daemon and `sync --once` deliver to
    /// them).
    pub fn webhooks(&self) -> &tierd_activation::webhooks::Webhooks {
        &self.webhooks
    }

    /// This process's instance name (`host:pid`), for claims and logs.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The facts the live model and policy read.
    pub fn schema(&self) -> &FactSchema {
        &self.settings.schema
    }

    /// The running plugins.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.plugins.as_ref().map(PluginSet::plugins).unwrap_or_default()
    }

    /// The connector (its kind and HTTP counters, for metrics).
    pub fn connector(&self) -> &dyn Connector {
        self.connector.as_ref()
    }

    /// The plugin set, when plugins are configured (HTTP counters, for metrics).
    pub fn plugin_set(&self) -> Option<&PluginSet> {
        self.plugins.as_ref()
    }

    /// Store answers and the connector's CRM is reachable with tierd's fields (checked at most
    /// once a minute: the check is API calls).
    pub async fn ready(&self) -> Result<(), String> {
        self.store.ping().await.map_err(|e| e.to_string())?;
        if let Some((at, result)) = self.checked.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if at.elapsed() < READY_CACHE {
                return result.clone();
            }
        }
        let result = match self.connector.ensure_schema().await {
            Ok(report) if report.is_complete() => Ok(()),
            Ok(report) => Err(format!(
                "{}: fields missing in the CRM: {}",
                self.connector.kind(),
                report.missing.join(", ")
            )),
            Err(e) => Err(format!("{}: {e}", self.connector.kind())),
        };
        let failed_before = {
            let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
            let failed_before = matches!(checked.as_ref(), Some((_, Err(_))));
            *checked = Some((Instant::now(), result.clone()));
            failed_before
        };
        if failed_before && result.is_ok() {
            // The CRM's schema check passes anew: whatever made records permanently invalid
            // (a missing field or option) may be fixed, so they are tried again.
            self.retry_permanent_rejections("the CRM's schema check passes again")
                .await;
        }
        result
    }

    /// Makes permanently rejected pushes pending again (the next run retries them), logging why.
    pub(crate) async fn retry_permanent_rejections(&self, why: &str) {
        match self.store.retry_permanent().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, why, "permanently rejected pushes will be retried"),
            Err(e) => tracing::warn!(error = %e, "cannot reschedule permanently rejected pushes"),
        }
    }

    /// The live scorer.
    fn live_scorer(&self) -> anyhow::Result<Scorer> {
        let as_of = match &self.settings.pipeline.as_of {
            Some(d) => d
                .parse()
                .map_err(|e| anyhow::anyhow!("pipeline.as_of: '{d}' is not a date: {e}"))?,
            None => today(),
        };
        let policy = self.settings.policy.clone();
        let shadow = match &self.settings.shadow {
            Some(model) => {
                let (schema, policy) = policy_for(model, &policy)
                    .context("the shadow model ([shadow] model) cannot be tiered by the live policy")?;
                Some(Box::new(Scorer {
                    model: model.clone(),
                    schema,
                    policy,
                    as_of,
                    reasons: (0, 0),
                    shadow: None,
                }))
            }
            None => None,
        };
        Ok(Scorer {
            model: self.settings.model.clone(),
            schema: self.settings.schema.clone(),
            policy,
            as_of,
            reasons: (self.settings.output.reasons_up, self.settings.output.reasons_down),
            shadow,
        })
    }

    /// A pilot's scorer: the candidate model with the live policy's overrides re-slotted.
    fn pilot_scorer(&self, spec: &PilotSpec) -> anyhow::Result<Scorer> {
        let mut scorer = self.live_scorer()?;
        let Some(path) = &spec.model else {
            return Ok(scorer);
        };
        let (model, schema, policy) = backtest::load_candidate(path, &scorer.policy)?;
        scorer.model = model;
        scorer.schema = schema;
        scorer.policy = policy;
        scorer.shadow = None;
        Ok(scorer)
    }

    /// `tierd sync --once --job deals`: pulls the deals of every stored account, outside any run
    /// (their history rows carry no run), and stores them; accounts and tiers are not touched.
    pub async fn sync_deals(&self) -> anyhow::Result<DealsReport> {
        let Ok(_guard) = self.busy.try_lock() else {
            anyhow::bail!("a run is already in progress in this process; try again when it has finished");
        };
        let accounts = stage::deals::all_accounts(self).await?;
        stage::deals::pull(self, None, &accounts).await
    }

    /// Runs one whole run as the leader. A run that cannot start (another one is running) is an
    /// `Err`; a run that starts and then fails returns its report with status `failed`.
    pub async fn run(
        &self,
        request: RunRequest,
        shutdown: ShutdownSignal,
        progress: Option<Arc<dyn Progress>>,
    ) -> anyhow::Result<RunReport> {
        let Ok(_guard) = self.busy.try_lock() else {
            anyhow::bail!("a run is already in progress in this process; try again when it has finished");
        };
        self.interrupt_dead_runs().await?;
        let scorer = match (&request.kind, &request.pilot) {
            (RunKind::Pilot, Some(spec)) => self.pilot_scorer(spec)?,
            _ => self.live_scorer()?,
        };
        let started = Instant::now();
        let id = self
            .store
            .begin_run(request.kind, &scorer.model.id(), &self.instance)
            .await
            .context("cannot start a run")?;
        tracing::info!(run = id.0, kind = %request.kind, "run started");
        let mut report = RunReport::new(id, request.kind);
        let ctx = RunCtx {
            p: self,
            scorer: &scorer,
            run: id,
            kind: request.kind,
            job: request.effective_job(),
            pilot: request.pilot.as_ref().filter(|_| request.kind == RunKind::Pilot),
            times: std::sync::Mutex::default(),
        };
        let plugin_http = self.plugin_http_time();
        let progress = progress.as_deref();
        let outcome = match request.kind {
            RunKind::Full | RunKind::Incremental => {
                run::execute(&ctx, &CommitSink, &mut report, shutdown, progress).await
            }
            RunKind::DryRun => {
                run::execute(&ctx, &MemorySink::dry_run(), &mut report, shutdown, progress).await
            }
            RunKind::Pilot => run::execute(&ctx, &MemorySink::pilot(), &mut report, shutdown, progress).await,
        };
        report
            .stages
            .merge(&ctx.times.lock().unwrap_or_else(|e| e.into_inner()));
        for (plugin, now) in self.plugin_http_time() {
            let before = plugin_http
                .iter()
                .find(|(p, _)| *p == plugin)
                .map_or(Duration::ZERO, |(_, d)| *d);
            report
                .stages
                .add_plugin_vendor(&plugin, now.saturating_sub(before));
        }
        report.stages.run_seconds = started.elapsed().as_secs_f64();
        let (status, error) = match outcome {
            Ok(Ending::Done) => (RunStatus::Succeeded, None),
            Ok(Ending::Stopped) => (
                RunStatus::Interrupted,
                Some("stopped on request after the batches in flight; the next run resumes".to_string()),
            ),
            Err(e) => (RunStatus::Failed, Some(format!("{e:#}"))),
        };
        report.status = status;
        report.error = error;
        let end_events = self.run_end_events(&report);
        if let Err(e) = self
            .store
            .finish_run_with_events(id, status, &report.stats(), report.error.as_deref(), &end_events)
            .await
        {
            self.metrics.error("store");
            report.status = RunStatus::Failed;
            let previous = report.error.take().map(|e| format!("{e}; ")).unwrap_or_default();
            report.error = Some(format!("{previous}cannot record the end of run {id}: {e}"));
        }
        if matches!(request.kind, RunKind::Full | RunKind::Incremental)
            && report.status == RunStatus::Succeeded
        {
            self.export_audiences().await;
            self.sync_crm_lists().await;
        }
        if matches!(request.kind, RunKind::Full | RunKind::Incremental) {
            if let Ok(counts) = self.store.tier_counts().await {
                self.metrics.set_tier_counts(counts);
            }
            let query = self.funnel_query("live");
            match tierd_outcomes::funnel_from_store(&self.store, &query).await {
                Ok(funnel) => self.metrics.set_funnel(&funnel),
                Err(e) => tracing::warn!(error = %e, "cannot compute the funnel for /metrics"),
            }
        }
        self.metrics.run_finished(
            request.kind.as_str(),
            report.status.as_str(),
            started.elapsed().as_secs_f64(),
        );
        self.metrics.stage_times(request.kind.as_str(), &report.stages);
        match &report.error {
            None => tracing::info!(run = id.0, kind = %request.kind, pushed = report.pushed, "run succeeded"),
            Some(e) => {
                tracing::error!(run = id.0, kind = %request.kind, status = %report.status, error = %e, "run did not succeed")
            }
        }
        Ok(report)
    }

    /// Each plugin's time waiting for its HTTP requests so far in this process (overlapping
    /// requests counted once).
    fn plugin_http_time(&self) -> Vec<(String, Duration)> {
        let Some(set) = &self.plugins else {
            return Vec::new();
        };
        set.plugins()
            .into_iter()
            .filter_map(|p| {
                let c = set.http_counters(&p.name)?;
                Some((p.name, Duration::from_micros(c.waiting_micros)))
            })
            .collect()
    }

    /// `run.finished` or `run.failed` for a committing run's end (dry runs and pilots change
    /// nothing, so announce nothing; an interrupted run is neither).
    fn run_end_events(&self, report: &RunReport) -> Vec<tierd_store::NewEvent> {
        if !matches!(report.kind, RunKind::Full | RunKind::Incremental) {
            return Vec::new();
        }
        let event = match report.status {
            RunStatus::Succeeded => tierd_activation::webhooks::Event::RunFinished {
                run: report.run.0,
                kind: report.kind.as_str().to_string(),
                stats: report.stats(),
            },
            RunStatus::Failed => tierd_activation::webhooks::Event::RunFailed {
                run: report.run.0,
                kind: report.kind.as_str().to_string(),
                error: report.error.clone().unwrap_or_default(),
            },
            _ => return Vec::new(),
        };
        events::outbox(&self.webhooks, &event).into_iter().collect()
    }

    /// Writes the configured audiences (`[[exports.audiences]]`) after a successful committing
    /// run, each with its adds and removes; people formats read the contacts of the tier's
    /// accounts through the connector ([`audience::export_audience`]). A failure (a file, the
    /// store, the connector) is logged with its audience and never fails the run: the next run
    /// writes the audience again.
    pub async fn export_audiences(
        &self,
    ) -> Vec<(String, Result<tierd_activation::export::ExportReport, String>)> {
        let exports = &self.settings.exports;
        let mut out = Vec::with_capacity(exports.audiences.len());
        for a in &exports.audiences {
            let result = audience::export_audience(
                &self.store,
                Some(self.connector.as_ref()),
                &a.directory,
                a.format,
                &a.tiers,
                &exports.linkedin,
            )
            .await;
            match &result {
                Ok(r) => {
                    tracing::info!(audience = %a.name, directory = %a.directory.display(), rows = r.rows,
                        added = r.added, removed = r.removed, "audience exported");
                    for w in &r.warnings {
                        tracing::warn!(audience = %a.name, warning = %w, "audience export");
                    }
                }
                Err(e) => {
                    self.metrics.error("export");
                    tracing::error!(audience = %a.name, key = "exports.audiences", error = format!("{e:#}"), "audience not exported");
                }
            }
            out.push((a.name.clone(), result.map_err(|e| format!("{e:#}"))));
        }
        out
    }

    /// Follower side: processes work items of whichever run is running, until `shutdown`.
    pub async fn work(&self, mut shutdown: ShutdownSignal) -> anyhow::Result<()> {
        let scorer = self.live_scorer()?;
        let idle = Duration::from_millis(self.settings.pipeline.idle_poll_ms);
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let did = match self.store.running_run().await {
                Ok(Some(run)) if matches!(run.kind, RunKind::Full | RunKind::Incremental) => {
                    let ctx = RunCtx {
                        p: self,
                        scorer: &scorer,
                        run: run.id,
                        kind: run.kind,
                        job: if run.kind == RunKind::Full {
                            Job::Full
                        } else {
                            Job::Incremental
                        },
                        pilot: None,
                        times: std::sync::Mutex::default(),
                    };
                    queue::consume_one(&ctx, &CommitSink).await?
                }
                Ok(_) => false,
                Err(e) => {
                    self.metrics.error("store");
                    tracing::warn!(error = %e, "cannot look for work; retrying");
                    false
                }
            };
            if !did {
                tokio::select! {
                    _ = tokio::time::sleep(idle) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }

    /// Stops the plugins and closes the store.
    pub async fn shutdown(self) {
        if let Some(set) = self.plugins {
            set.shutdown().await;
        }
        self.store.close().await;
    }

    /// Marks interrupted the runs left `running` by a process of this host that is gone (same
    /// host name, pid no longer alive), and on SQLite any left by this instance's name.
    async fn interrupt_dead_runs(&self) -> anyhow::Result<()> {
        let Some(running) = self.store.running_run().await? else {
            return Ok(());
        };
        if owner_is_dead(&running.owner) || running.owner == self.instance {
            self.store.interrupt_stale_runs(Some(&running.owner)).await?;
        }
        Ok(())
    }
}

/// The async runtime every tierd command runs on (multi-threaded, every driver enabled); `what`
/// names the command in the error. One builder, so every command runs on the same kind of runtime.
pub fn runtime(what: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .with_context(|| format!("cannot start the async runtime for {what}"))
}

/// The advisory-lock key every instance of a deployment agrees on ("tierd" in ASCII): the
/// daemon's leader and `tierd sync --once` hold it, so runs never overlap across processes.
pub const LEADER_LOCK_KEY: i64 = 0x0074_6965_7264;

/// This process's instance name: `host:pid`, so a later process can tell a dead owner.
pub fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string());
    format!("{host}:{}", std::process::id())
}

/// Whether `owner` (`host:pid`) names a process of this host that no longer runs.
fn owner_is_dead(owner: &str) -> bool {
    let Some((host, pid)) = owner.rsplit_once(':') else {
        return false;
    };
    let me = instance_name();
    let my_host = me.rsplit_once(':').map_or("", |(h, _)| h);
    match pid.parse::<u32>() {
        Ok(pid) if host == my_host => {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => false,
    }
}

/// Every account's summary in the store, paged by id (for commands that show the whole
/// population: the demo, `tierd explain --store`).
pub async fn all_summaries(store: &Store) -> anyhow::Result<Vec<tierd_store::AccountSummary>> {
    let mut out = Vec::new();
    loop {
        let page = store
            .account_summaries(
                out.last().map(|s: &tierd_store::AccountSummary| s.id.as_str()),
                1000,
            )
            .await
            .context("cannot read the accounts from the store")?;
        if page.is_empty() {
            return Ok(out);
        }
        out.extend(page);
    }
}

/// The population step's input from the store: each tiered account's stored basis (base tier from
/// thresholds, hysteresis and lock; engagement window), as a run's tier stage reads it.
pub fn tier_members(summaries: &[tierd_store::AccountSummary]) -> Vec<tierd_core::tier::TierMember> {
    summaries
        .iter()
        .filter(|s| s.tiered)
        .map(|s| tierd_core::tier::TierMember {
            id: s.id.as_str().into(),
            score: s.score as f32,
            potential_value: s.potential_value,
            coverage: s.coverage as f32,
            basis: tierd_core::tier::TierBasis {
                base: s.base_tier,
                held_by_hysteresis: false,
                locked: s.locked,
                engagement: s.engagement.map(|e| tierd_core::tier::Engagement {
                    until: e.until,
                    by: e.by,
                }),
            },
        })
        .collect()
}

/// Today's date (UTC): what runs score as of unless `[pipeline] as_of` says otherwise.
pub fn today() -> Date {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Date::from_unix_seconds(secs)
}

/// Counts per tier, best first.
fn pyramid_of(tiers: impl Iterator<Item = Tier>) -> [u64; 4] {
    let mut out = [0u64; 4];
    for t in tiers {
        out[t as usize] += 1;
    }
    out
}
