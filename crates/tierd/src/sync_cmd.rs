//! `tierd sync --once`: one run in the foreground, a progress line on an interactive terminal, a
//! summary at the end. Exit codes: 0 the run succeeded, 1 it failed or was stopped (the report
//! says why; the next run resumes), 2 it could not start (configuration, store, another run).

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tierd_store::{RunKind, RunStatus};

use tierd_config::Settings;
use tierd_engine::metrics::Metrics;
use tierd_engine::progress::ProgressLine;
use tierd_engine::{instance_name, Job, PilotSpec, Pipeline, Progress, RunReport, RunRequest};

/// `tierd sync` arguments.
#[derive(clap::Args, Debug)]
pub struct SyncArgs {
    /// Run once and exit (the only mode; `tierd run` is the daemon).
    #[arg(long)]
    pub once: bool,
    /// full (every account, caches refreshed, no hysteresis), incremental (changes since the
    /// last successful run) or deals (only the deals of every stored account, for the funnel).
    #[arg(long, value_name = "JOB", default_value = "incremental")]
    pub job: String,
    /// Compute everything and report what would be pushed; push and record nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Pilot a candidate model file (and/or --filter/--sample) against the live tiers; nothing pushed.
    #[arg(long, value_name = "MODEL")]
    pub pilot: Option<Option<PathBuf>>,
    /// Pilot only accounts whose fact matches, e.g. firmographic.region=EMEA.
    #[arg(long, value_name = "FACT=VALUE")]
    pub filter: Option<String>,
    /// Pilot a deterministic share (0..1) of accounts.
    #[arg(long, value_name = "SHARE")]
    pub sample: Option<f64>,
    /// After the run, deliver due webhook events for at most this many seconds; what is left
    /// stays in the outbox for the daemon or the next run.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub deliver_timeout: u64,
}

impl SyncArgs {
    fn request(&self) -> anyhow::Result<RunRequest> {
        if !self.once {
            anyhow::bail!("tierd sync runs once: pass --once (the scheduled daemon is `tierd run`)");
        }
        let job = match self.job.as_str() {
            "full" => Job::Full,
            "incremental" => Job::Incremental,
            other => anyhow::bail!("--job {other}: expected full, incremental or deals"),
        };
        if let Some(s) = self.sample {
            if !(0.0..=1.0).contains(&s) {
                anyhow::bail!("--sample {s}: expected a share between 0 and 1");
            }
        }
        let piloting = self.pilot.is_some() || self.filter.is_some() || self.sample.is_some();
        if piloting && self.dry_run {
            anyhow::bail!(
                "--pilot and --dry-run are separate kinds of run: pick one (a pilot pushes nothing either)"
            );
        }
        Ok(match (piloting, self.dry_run) {
            (true, _) => RunRequest {
                kind: RunKind::Pilot,
                pilot: Some(PilotSpec {
                    model: self.pilot.clone().flatten(),
                    filter: self.filter.clone(),
                    sample: self.sample,
                }),
                job: Job::Full,
            },
            // A dry run rehearses the job asked for: how it pulls, and its hysteresis.
            (false, true) => RunRequest {
                kind: RunKind::DryRun,
                pilot: None,
                job,
            },
            (false, false) => RunRequest::new(job.run_kind()),
        })
    }
}

/// Rejection reasons named in the run summary.
const TOP_REJECTION_REASONS: usize = 5;

/// Runs `tierd sync --once`.
pub fn run(args: &SyncArgs, settings: Settings) -> anyhow::Result<ExitCode> {
    if args.job == "deals" {
        return deals_only(args, settings);
    }
    let request = args.request()?;
    let pilot = request.pilot.clone();
    let live_model = settings.model.id();
    tierd_server::logging::init(&settings.log)?;
    let runtime = tierd_engine::runtime("sync")?;
    runtime.block_on(async move {
        let (_stop, signal) =
            tierd_engine::shutdown::install().context("cannot install the signal handlers")?;
        let pipeline =
            Pipeline::start(Arc::new(settings), Arc::new(Metrics::default()), instance_name()).await?;
        // A one-off run leads like a daemon would: on a shared database a running daemon's leader
        // owns the schedule, and a new leader takes runs it does not own for dead.
        let Some(_leadership) = pipeline.store().try_lead(tierd_engine::LEADER_LOCK_KEY).await? else {
            pipeline.shutdown().await;
            anyhow::bail!(
                "a tierd daemon leads this database: queue the run on it (POST /api/v1/runs) instead of \
                 running sync --once beside it"
            );
        };
        let interactive = std::io::stderr().is_terminal();
        let progress: Option<Arc<dyn Progress>> =
            interactive.then(|| Arc::new(ProgressLine::new(true)) as Arc<dyn Progress>);
        let report = pipeline.run(request, signal, progress).await;
        if interactive {
            eprintln!();
        }
        let delivered = match &report {
            Ok(r) if matches!(r.kind, RunKind::Full | RunKind::Incremental) => {
                deliver(&pipeline, std::time::Duration::from_secs(args.deliver_timeout)).await
            }
            _ => None,
        };
        // A pilot's backtest: both models on the pilot's accounts and their closed deals.
        let backtest = match (&report, &pilot) {
            (Ok(_), Some(spec)) => Some(pipeline.backtest(spec).await),
            _ => None,
        };
        let rejections = pipeline.store().rejection_summary().await;
        pipeline.shutdown().await;
        let report = report?;
        let mut out = std::io::stdout().lock();
        print_report(&mut out, &report)?;
        if let Some(backtest) = backtest {
            writeln!(
                out,
                "  Backtest on the pilot's accounts (tierd calibrate --model, on this subset):"
            )?;
            tierd_outcomes::write_calibration_table(
                &mut out,
                &tierd_outcomes::CalibrationReport {
                    live_model: live_model.clone(),
                    accounts: report.accounts,
                    pyramid: None,
                    backtest: Some(backtest.context("the pilot's backtest")?),
                    suggest_weights: None,
                },
            )?;
        }
        // The top reasons, not only a count: what to fix in the CRM.
        crate::pending_cmd::print_rejections(&mut out, &rejections?, TOP_REJECTION_REASONS)?;
        if let Some(line) = delivered {
            writeln!(out, "  {line}")?;
        }
        Ok(match report.status {
            RunStatus::Succeeded => ExitCode::SUCCESS,
            _ => ExitCode::from(1),
        })
    })
}

/// Delivers the outbox's due webhook events within `budget`; the summary line, `None` when no
/// endpoint is configured. A failure is reported, never fatal: the events stay in the outbox.
async fn deliver(pipeline: &Pipeline, budget: std::time::Duration) -> Option<String> {
    let webhooks = pipeline.webhooks();
    if webhooks.endpoints().is_empty() {
        return None;
    }
    let http = match tierd_activation::webhooks::Webhooks::http_client() {
        Ok(c) => c,
        Err(e) => return Some(format!("webhooks: not delivered ({e}); they stay in the outbox")),
    };
    let report = webhooks
        .deliver_until_idle(
            pipeline.store(),
            &http,
            pipeline.instance(),
            tierd_store::Timestamp::now,
            budget,
        )
        .await;
    let left = pipeline
        .store()
        .webhook_delivery_counts()
        .await
        .map(|c| c.pending + c.delivering)
        .unwrap_or_default();
    Some(match report {
        Ok(r) => {
            for d in &r.disabled {
                tracing::warn!(endpoint = %d.endpoint, reason = %d.reason, "webhook endpoint disabled");
            }
            format!(
                "webhooks: {} delivered, {} to retry, {} given up; {left} left in the outbox",
                r.delivered, r.retrying, r.failed
            )
        }
        Err(e) => format!("webhooks: delivery stopped ({e}); {left} left in the outbox"),
    })
}

/// `tierd sync --once --job deals`: the deals of every stored account, nothing else.
fn deals_only(args: &SyncArgs, settings: Settings) -> anyhow::Result<ExitCode> {
    if !args.once {
        anyhow::bail!("tierd sync runs once: pass --once (the scheduled daemon is `tierd run`)");
    }
    if args.dry_run || args.pilot.is_some() || args.filter.is_some() || args.sample.is_some() {
        anyhow::bail!("--job deals only pulls deals: it takes no --dry-run, --pilot, --filter or --sample");
    }
    tierd_server::logging::init(&settings.log)?;
    let runtime = tierd_engine::runtime("sync")?;
    runtime.block_on(async move {
        let pipeline =
            Pipeline::start(Arc::new(settings), Arc::new(Metrics::default()), instance_name()).await?;
        let report = pipeline.sync_deals().await;
        pipeline.shutdown().await;
        let r = report?;
        println!(
            "Deals of {} accounts: {} pulled, {} new, {} changed ({} moved, {} reopened, {} restored), {} deleted, {} without an account",
            r.accounts, r.pulled, r.sync.new, r.sync.changed, r.sync.moved, r.sync.reopened, r.sync.restored, r.deleted, r.without_account
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// The run's summary for people.
pub fn print_report(out: &mut impl std::io::Write, r: &RunReport) -> std::io::Result<()> {
    writeln!(out, "Run {} ({}): {}", r.run, r.kind, r.status)?;
    writeln!(
        out,
        "  {} accounts scored; pyramid: tier_1 {}, tier_2 {}, tier_3 {}, untiered {}",
        r.accounts, r.pyramid[0], r.pyramid[1], r.pyramid[2], r.pyramid[3]
    )?;
    let verb = match r.kind {
        RunKind::DryRun | RunKind::Pilot => "would push",
        _ => "pushed",
    };
    writeln!(
        out,
        "  {verb} {}, unchanged {}, skipped locked {}, skipped (changed by a person) {}, rejected {}, deferred {}; of the pushed, {} restored a tier the CRM had lost",
        r.pushed, r.unchanged, r.skipped_locked, r.skipped_overridden, r.rejected, r.deferred, r.repaired
    )?;
    if r.quarantined > 0 || r.stale_plugin_results > 0 {
        writeln!(
            out,
            "  {} records quarantined, {} plugin results failed (previous facts kept)",
            r.quarantined, r.stale_plugin_results
        )?;
    }
    if let Some(m) = &r.movements {
        writeln!(
            out,
            "  movements: {} up, {} down, {} unchanged, new {:?}",
            m.upgrades(),
            m.downgrades(),
            m.unchanged(),
            m.new_accounts
        )?;
        writeln!(out, "  from \\ to   tier_1  tier_2  tier_3  untiered")?;
        for (i, row) in m.matrix.iter().enumerate() {
            let name = tierd_core::Tier::ALL[i].as_str();
            writeln!(
                out,
                "  {name:<10} {:>7} {:>7} {:>7} {:>9}",
                row[0], row[1], row[2], row[3]
            )?;
        }
    }
    for line in &r.top_movements {
        let from = line.from.map_or("new", |t| t.as_str());
        writeln!(
            out,
            "  {} {}: {from} -> {}: {}",
            line.id, line.name, line.to, line.reason
        )?;
    }
    if let Some(d) = &r.deals {
        writeln!(
            out,
            "  deals of {} accounts: {} pulled, {} new, {} changed, {} deleted, {} without an account",
            d.accounts, d.pulled, d.sync.new, d.sync.changed, d.deleted, d.without_account
        )?;
    }
    writeln!(out, "  time: {}", r.stages.summary())?;
    if let Some(e) = &r.error {
        writeln!(out, "  error: {e}")?;
    }
    Ok(())
}
