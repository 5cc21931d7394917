//! tierd-server: `tierd run`, the long-running service. Wires settings, logging, the pipeline, the admin API
//! and the scheduler together, and owns leadership and shutdown.
//!
//! Reads its own configuration sections, `[schedule]`, `[api]` and `[log]`; the pipeline reads
//! `[store]`, `[connector]` and `[pipeline]`.
//!
//! Leadership: every instance tries `Store::try_lead` (a PostgreSQL advisory lock; always granted
//! on SQLite). The leader schedules and starts runs, and executes manual runs queued through its
//! API; standbys ask again every second, so a dead leader's standby takes over within seconds of
//! the database dropping its connection. Every instance, leader included, consumes the run's work
//! queue (`Pipeline::work`).
//!
//! Shutdown: SIGTERM/SIGINT stops scheduling, lets the run in flight commit its batch and return
//! (bounded by [`SHUTDOWN_GRACE`]), stops the work consumer, then closes the API and the store.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tierd_plugin_host::PluginInfo;
use tierd_store::{LeaderGuard, RunKind, RunStatus, Timestamp};

use tierd_config::Settings;
use tierd_engine::metrics::{ExtraGauges, Metrics};
use tierd_engine::shutdown::{self, ShutdownSignal};
use tierd_engine::{PilotSpec, Pipeline, RunRequest, LEADER_LOCK_KEY};

use crate::schedule::{rfc3339, Job, LastRuns, NextRuns, Scheduler};
use api::auth::Token;
use api::{ApiState, DaemonView, ManualRun, RunQueue};

pub mod api;
pub mod dashboard;
mod deliver;
pub mod logging;
pub mod schedule;

/// Everything served at the admin address: the API under `/api/v1` (plus `/healthz`, `/readyz`,
/// `/metrics`) and the dashboard at `/`, both authorised by the same admin token.
pub fn app(state: ApiState, token: Token) -> axum::Router {
    api::router(state.clone(), token.clone()).merge(dashboard::router(state, token))
}

/// How often a standby asks for leadership and a leader checks it still holds it: the bound on
/// how long a dead leader goes unnoticed, besides the database's own detection of the dropped
/// connection.
const LEADERSHIP_POLL: Duration = Duration::from_secs(1);
/// Pause after a run could not start (another is running, the store is down), so a blocked
/// schedule does not spin.
const START_RETRY: Duration = Duration::from_secs(10);
/// How long a stop waits for the run in flight to finish its batch. systemd's `TimeoutStopSec`
/// must be longer; past this the process exits anyway, which the store's crash safety allows.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(120);

/// `tierd run`: serves until SIGTERM/SIGINT, then stops cleanly and returns success.
pub fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    logging::init(&settings.log)?;
    // The token is checked before anything starts, so a misconfigured unit fails at once.
    let token = match settings.api.enabled {
        true => Some(settings.api.token().map_err(|e| anyhow::anyhow!(e))?),
        false => None,
    };
    let runtime = tierd_engine::runtime("the daemon")?;
    runtime.block_on(serve(Arc::new(settings), token))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(settings: Arc<Settings>, token: Option<Token>) -> anyhow::Result<()> {
    let (_stop, shutdown) = shutdown::install().context("cannot install the SIGTERM/SIGINT handlers")?;
    let listener = match (&token, settings.api.enabled) {
        (Some(_), true) => Some(
            tokio::net::TcpListener::bind(&settings.api.listen)
                .await
                .with_context(|| format!("cannot listen on {} ([api] listen)", settings.api.listen))?,
        ),
        _ => None,
    };
    let metrics = Arc::new(Metrics::default());
    let instance = tierd_engine::instance_name();
    tracing::info!(
        instance = %instance,
        config = %settings.origin,
        store = %tierd_store::redact_url(&settings.store.url),
        "tierd starting"
    );
    let pipeline = Arc::new(Pipeline::start(settings.clone(), metrics.clone(), instance.clone()).await?);
    if let Ok(counts) = pipeline.store().tier_counts().await {
        metrics.set_tier_counts(counts);
    }
    let queue = Arc::new(RunQueue::default());

    // The API stops last, after the run in flight: operators can watch the shutdown through it.
    let (api_stop, api_stopped) = tokio::sync::watch::channel(false);
    let api = match (listener, token) {
        (Some(listener), Some(token)) => {
            let state = ApiState {
                store: pipeline.store().clone(),
                view: pipeline.clone(),
                metrics: metrics.clone(),
                runs: queue.clone(),
                instance: instance.clone(),
                schema: Arc::new(pipeline.schema().clone()),
            };
            let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
            tracing::info!(address = %address, "admin API listening");
            let router = app(state, token);
            Some(tokio::spawn(api::serve(listener, router, api_stopped)))
        }
        _ => {
            tracing::info!("admin API disabled ([api] enabled = false)");
            None
        }
    };

    // Every instance, leader included, consumes the work queue: adding instances adds throughput.
    let worker = {
        let pipeline = pipeline.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { pipeline.work(shutdown).await })
    };
    // Every instance delivers webhooks from the outbox, continuously.
    let delivery = tokio::spawn(deliver::deliver_webhooks(pipeline.clone(), shutdown.clone()));
    let scheduler = Scheduler::new(&settings.schedule, Timestamp::now()).map_err(|e| anyhow::anyhow!(e))?;
    let leader = Leader {
        pipeline: pipeline.clone(),
        scheduler,
        queue: queue.clone(),
        instance,
    };
    let mut elect = tokio::spawn(leader.elect(shutdown.clone()));

    let mut waiting = shutdown.clone();
    tokio::select! {
        result = &mut elect => report_task("leadership loop", result),
        _ = shutdown::requested(&mut waiting) => {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut elect).await {
                Ok(result) => report_task("leadership loop", result),
                Err(_) => {
                    elect.abort();
                    tracing::warn!(grace_seconds = SHUTDOWN_GRACE.as_secs(),
                        "the run in flight did not finish its batch in time; the next run resumes it");
                }
            }
        }
    }
    queue.set_leading(false);
    match tokio::time::timeout(SHUTDOWN_GRACE, worker).await {
        Ok(Ok(Err(e))) => tracing::error!(error = %format!("{e:#}"), "work queue consumer stopped"),
        Ok(_) => {}
        Err(_) => tracing::warn!("the work item in flight did not finish in time"),
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, delivery).await.is_err() {
        tracing::warn!(
            "the webhook deliveries in flight did not finish in time; they are retried after their lease"
        );
    }
    let _ = api_stop.send(true);
    if let Some(api) = api {
        if let Ok(Err(e)) = api.await {
            tracing::error!(error = %e, "admin API stopped with an error");
        }
    }
    match Arc::try_unwrap(pipeline) {
        Ok(pipeline) => pipeline.shutdown().await,
        Err(shared) => shared.store().close().await,
    }
    tracing::info!("tierd stopped");
    Ok(())
}

fn report_task(what: &str, result: Result<anyhow::Result<()>, tokio::task::JoinError>) {
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "{what} stopped"),
        Err(e) => tracing::error!(error = %e, "{what} panicked"),
    }
}

/// The leader's side: leadership, the schedule and manual runs.
struct Leader {
    pipeline: Arc<Pipeline>,
    scheduler: Scheduler,
    queue: Arc<RunQueue>,
    instance: String,
}

impl Leader {
    /// Tries to lead until `shutdown`; leads while it can, stands by otherwise.
    async fn elect(self, mut shutdown: ShutdownSignal) -> anyhow::Result<()> {
        let mut announced_standby = false;
        while !*shutdown.borrow() {
            match self.pipeline.store().try_lead(LEADER_LOCK_KEY).await {
                Ok(Some(guard)) => {
                    announced_standby = false;
                    self.lead(guard, shutdown.clone()).await;
                    self.queue.set_leading(false);
                    self.queue.set_next(None);
                    continue;
                }
                Ok(None) if !announced_standby => {
                    tracing::info!(instance = %self.instance, "standing by: another instance leads");
                    announced_standby = true;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot ask for leadership; retrying"),
            }
            pause(&mut shutdown, LEADERSHIP_POLL).await;
        }
        Ok(())
    }

    /// Schedules and starts runs while leading; returns on shutdown or lost leadership.
    async fn lead(&self, mut guard: LeaderGuard, mut shutdown: ShutdownSignal) {
        self.queue.set_leading(true);
        tracing::info!(instance = %self.instance, "leading: this instance schedules runs");
        let store = self.pipeline.store();
        if store.is_shared() {
            // Holding the lock means the previous leader is gone: its run will not finish.
            if let Ok(Some(run)) = store.running_run().await {
                if run.owner != self.instance {
                    match store.interrupt_stale_runs(Some(&run.owner)).await {
                        Ok(ids) if !ids.is_empty() => tracing::warn!(
                            run = run.id.0, owner = %run.owner,
                            "the previous leader's run was left running; marked interrupted, it will resume"
                        ),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot mark the previous leader's run interrupted")
                        }
                    }
                }
            }
        }
        let mut logged_next = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            if !guard.still_leading().await {
                tracing::warn!(
                    "lost leadership (the database connection holding the lock is gone); standing by"
                );
                return;
            }
            let now = Timestamp::now();
            let last = match last_runs(store).await {
                Ok(last) => last,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the run history; retrying");
                    pause(&mut shutdown, LEADERSHIP_POLL).await;
                    continue;
                }
            };
            let next = self.scheduler.next(now, last);
            self.queue.set_next(Some(next));
            let request = match self.queue.pop() {
                Some(manual) => Some((manual_request(&manual), "manual")),
                None => self.scheduler.due(now, last).map(|job| {
                    (
                        RunRequest {
                            kind: job.run_kind(),
                            pilot: None,
                            job: Default::default(),
                        },
                        self.scheduler.trigger(now, last, job),
                    )
                }),
            };
            let Some((request, why)) = request else {
                if logged_next != Some(next) {
                    log_next(&next);
                    logged_next = Some(next);
                }
                // Sleep until the next fire time, a manual request, a stop, or the next
                // leadership check, whichever comes first.
                let until_due = self
                    .scheduler
                    .wake_at(now, last)
                    .map(|at| Duration::from_millis(u64::try_from(at.millis() - now.millis()).unwrap_or(0)))
                    .unwrap_or(LEADERSHIP_POLL);
                tokio::select! {
                    _ = pause(&mut shutdown, until_due.min(LEADERSHIP_POLL)) => {}
                    _ = self.queue.added() => {}
                }
                continue;
            };
            tracing::info!(kind = %request.kind, trigger = why, "starting a run");
            match self.pipeline.run(request, shutdown.clone(), None).await {
                Ok(report) => {
                    tracing::info!(
                        run = report.run.0, kind = %report.kind, status = %report.status,
                        accounts = report.accounts, pushed = report.pushed, "run finished"
                    );
                    logged_next = None;
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "the run could not start; trying again later");
                    pause(&mut shutdown, START_RETRY).await;
                }
            }
        }
        if let Err(e) = guard.release().await {
            tracing::warn!(error = %e, "cannot release leadership; the database frees it when the connection closes");
        }
    }
}

/// Waits `d` or until stop, whichever comes first.
async fn pause(shutdown: &mut ShutdownSignal, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = shutdown::requested(shutdown) => {}
    }
}

fn log_next(next: &NextRuns) {
    let show = |t: Option<Timestamp>| t.map_or_else(|| "off".to_string(), rfc3339);
    tracing::info!(full = %show(next.full), incremental = %show(next.incremental), "next scheduled runs");
}

fn manual_request(manual: &ManualRun) -> RunRequest {
    let pilot = (manual.kind == RunKind::Pilot).then(|| PilotSpec {
        model: manual.model.clone(),
        filter: manual.filter.clone(),
        sample: manual.sample,
    });
    RunRequest {
        kind: manual.kind,
        pilot,
        job: Default::default(),
    }
}

/// The start times of the latest full and incremental runs, and whether the latest of them was
/// interrupted.
async fn last_runs(store: &tierd_store::Store) -> Result<LastRuns, tierd_store::StoreError> {
    let full = store.last_run(Some(RunKind::Full), None).await?;
    let incremental = store.last_run(Some(RunKind::Incremental), None).await?;
    let latest = match (&full, &incremental) {
        (Some(f), Some(i)) => Some(if f.id > i.id { f } else { i }),
        (f, i) => f.as_ref().or(i.as_ref()),
    };
    let interrupted = latest
        .filter(|r| r.status == RunStatus::Interrupted)
        .map(|r| match r.kind {
            RunKind::Full => Job::Full,
            _ => Job::Incremental,
        });
    Ok(LastRuns {
        full: full.map(|r| r.started_at),
        incremental: incremental.map(|r| r.started_at),
        interrupted,
    })
}

impl DaemonView for Pipeline {
    fn ready(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(Pipeline::ready(self))
    }

    fn plugins(&self) -> Vec<PluginInfo> {
        Pipeline::plugins(self)
    }

    fn funnel_query(&self, model: &str) -> tierd_outcomes::FunnelQuery {
        Pipeline::funnel_query(self, model)
    }

    fn http_gauges(&self) -> ExtraGauges {
        let connector = self.connector();
        let plugins = match self.plugin_set() {
            Some(set) => set
                .plugins()
                .into_iter()
                .filter_map(|p| set.http_counters(&p.name).map(|c| (p.name, c)))
                .collect(),
            None => Vec::new(),
        };
        ExtraGauges {
            connector: Some((connector.kind().to_string(), connector.http_stats())),
            plugins,
            webhook_deliveries: None,
            rejections: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_file(path: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path)
    }

    #[test]
    fn the_systemd_unit_stops_gracefully_and_is_hardened() {
        let unit = std::fs::read_to_string(repo_file("config/tierd.service")).expect("config/tierd.service");
        for line in [
            "Type=simple",
            "ExecStart=/usr/local/bin/tierd run --config /etc/tierd/tierd.toml",
            "Restart=on-failure",
            "EnvironmentFile=/etc/tierd/tierd.env",
            "KillSignal=SIGTERM",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ReadWritePaths=/var/lib/tierd",
            // The store, its WAL and anything tierd writes are owner-only.
            "UMask=0077",
            "StateDirectoryMode=0700",
        ] {
            assert!(unit.lines().any(|l| l == line), "missing `{line}`");
        }
        let stop: u64 = unit
            .lines()
            .find_map(|l| l.strip_prefix("TimeoutStopSec="))
            .and_then(|v| v.parse().ok())
            .expect("TimeoutStopSec in seconds");
        assert!(
            stop > SHUTDOWN_GRACE.as_secs(),
            "systemd must wait longer than tierd's own grace"
        );
    }

    /// The router puts `/api/v1/openapi.json` behind the token: the operations guide says so.
    #[test]
    fn the_operations_guide_says_the_openapi_document_needs_the_token() {
        let doc = std::fs::read_to_string(repo_file("docs/operations.md")).expect("docs/operations.md");
        assert!(
            doc.lines()
                .any(|l| l.starts_with("| `GET /api/v1/openapi.json` | bearer |")),
            "docs/operations.md must list GET /api/v1/openapi.json as needing the bearer token"
        );
    }

    #[test]
    fn manual_pilot_requests_carry_their_spec() {
        let manual = ManualRun {
            kind: RunKind::Pilot,
            model: None,
            filter: Some("firmographic.region=EMEA".into()),
            sample: Some(0.5),
        };
        let request = manual_request(&manual);
        let pilot = request.pilot.expect("a pilot spec");
        assert_eq!(pilot.filter.as_deref(), Some("firmographic.region=EMEA"));
        assert_eq!(pilot.sample, Some(0.5));
        let full = manual_request(&ManualRun {
            kind: RunKind::Full,
            model: None,
            filter: None,
            sample: None,
        });
        assert!(full.pilot.is_none());
    }
}
