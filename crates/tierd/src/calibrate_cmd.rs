//! `tierd calibrate`: thresholds for a pyramid shape, a backtest of the live (and a candidate)
//! model on the closed deals, and suggested weights written to a candidate model file.
//!
//! Reads the store (stored facts through `tierd_core::codec`, deals) and the configuration, calls
//! `tierd_outcomes`' calibration functions and formats their structs as a table or JSON. Computes
//! nothing itself and applies nothing: thresholds stay in `[tiering]`, a candidate model is a file
//! for a person to review.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use tierd_config::Settings;
use tierd_core::tier::TierCandidate;
use tierd_core::{Date, Model};
use tierd_outcomes::{
    BacktestSection, CalibrationReport, PyramidSection, PyramidShape, SuggestSection, Suggestion,
};
use tierd_store::{Store, StoredDeal};

/// `tierd calibrate` arguments.
#[derive(clap::Args, Debug)]
pub struct CalibrateArgs {
    /// Percent of the accounts in Tier 1, 2 and 3 (e.g. 5,15,30): the thresholds giving that
    /// shape on the stored accounts, and how many accounts they would move.
    #[arg(long, value_name = "T1,T2,T3")]
    pub pyramid: Option<PyramidShape>,
    /// Backtest the live model on the closed deals.
    #[arg(long)]
    pub backtest: bool,
    /// Backtest this model file beside the live one (implies --backtest).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Fit criterion weights on the closed deals and compare them with the live model's.
    #[arg(long)]
    pub suggest_weights: bool,
    /// Write the suggested weights as a candidate model file (never applied by tierd).
    #[arg(long, value_name = "FILE", requires = "suggest_weights")]
    pub output: Option<PathBuf>,
    /// With --suggest-weights: percent of the accounts (by a hash of their id, the same on every
    /// run) whose deals are held out to compare the fit with the live model.
    #[arg(long, value_name = "PERCENT", default_value_t = 30.0)]
    pub holdout: f64,
    /// Count amounts in this currency only (ISO 4217), as `tierd report funnel` does.
    #[arg(long, value_name = "CODE")]
    pub currency: Option<String>,
    /// Score the accounts for --pyramid as of this day [default: [pipeline] as_of, else today].
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<Date>,
    /// table or json.
    #[arg(long, value_name = "FORMAT", default_value = "table")]
    pub format: String,
}

/// Warns once, on standard error, of the stored facts that could not be read for a schema (they
/// count as unknown).
fn warn_unreadable(unreadable: &[String]) {
    if let Some(first) = unreadable.first() {
        eprintln!(
            "warning: {} stored facts could not be read and count as unknown (first: {first})",
            unreadable.len()
        );
    }
}

/// Runs `tierd calibrate`.
pub fn run(args: &CalibrateArgs, settings: &Settings, today: Date) -> anyhow::Result<ExitCode> {
    if !matches!(args.format.as_str(), "table" | "json") {
        anyhow::bail!("--format {}: expected table or json", args.format);
    }
    if !(args.holdout > 0.0 && args.holdout < 100.0) {
        anyhow::bail!(
            "--holdout {}: expected a percentage above 0 and below 100",
            args.holdout
        );
    }
    let backtest = args.backtest || args.model.is_some();
    if args.pyramid.is_none() && !backtest && !args.suggest_weights {
        anyhow::bail!(
            "nothing to calibrate: give --pyramid T1,T2,T3, --backtest, --model FILE or --suggest-weights"
        );
    }
    let candidate = args
        .model
        .as_ref()
        .map(|p| {
            let (model, schema, policy) = tierd_engine::backtest::load_candidate(p, &settings.policy)?;
            anyhow::Ok((p, model, schema, policy))
        })
        .transpose()?;
    let url = &settings.store.url;
    crate::explain::require_existing_store(url, "or set [store] url")?;
    let mut schemas = vec![&settings.schema];
    schemas.extend(candidate.as_ref().map(|(_, _, schema, _)| schema));
    let (stored, deals) = tierd_engine::runtime("calibrate")?.block_on(async {
        let store = Store::connect(url).await?;
        let stored =
            tierd_engine::backtest::stored_accounts(&store, &schemas, tierd_engine::backtest::PAGE, |_| true)
                .await?;
        let deals: Vec<StoredDeal> = store.deals_for_report().await?;
        store.close().await;
        anyhow::Ok((stored, deals))
    })?;
    let accounts = stored.len() as u64;
    let locks = stored.locks;
    for unreadable in &stored.unreadable {
        warn_unreadable(unreadable);
    }
    let mut laid_out = stored.laid_out.into_iter();
    let live_accounts = laid_out.next().unwrap_or_default();
    let candidate_accounts = laid_out.next();
    let model = &settings.model;
    let mut report = CalibrationReport {
        live_model: model.id(),
        accounts,
        pyramid: None,
        backtest: None,
        suggest_weights: None,
    };

    if let Some(shape) = args.pyramid {
        let as_of = match (args.as_of, &settings.pipeline.as_of) {
            (Some(d), _) => d,
            (None, Some(d)) => d.parse().with_context(|| format!("[pipeline] as_of '{d}'"))?,
            (None, None) => today,
        };
        let policy = &settings.policy;
        let population: Vec<TierCandidate> = live_accounts
            .iter()
            .zip(&locks)
            .map(|(a, lock)| {
                let card = model.score(&a.row, as_of);
                TierCandidate {
                    id: a.id.as_str().into(),
                    score: card.score,
                    potential_value: card.potential_value.unwrap_or(0.0),
                    coverage: card.coverage,
                    previous: None,
                    lock: *lock,
                    engagement: policy.engagement_on(&a.row, as_of),
                }
            })
            .collect();
        let calibration = tierd_outcomes::calibrate_pyramid(&population, policy, shape, as_of);
        report.pyramid = Some(PyramidSection { as_of, calibration });
    }

    // The deals' sections; the pyramid needs none of this.
    let mut failed = false;
    if backtest || args.suggest_weights {
        let labelled = tierd_outcomes::label_deals(&deals, live_accounts.iter().map(|a| a.id.as_str()));
        let (live_backtest, live_scored) = tierd_outcomes::backtest_model(
            "live",
            model,
            &settings.policy,
            &live_accounts,
            &labelled.deals,
            args.currency.clone(),
        );
        if backtest {
            let mut models = vec![live_backtest];
            if let (Some((path, cand, _, policy)), Some(accounts)) = (&candidate, &candidate_accounts) {
                let label = path.display().to_string();
                let (b, _) = tierd_outcomes::backtest_model(
                    &label,
                    cand,
                    policy,
                    accounts,
                    &labelled.deals,
                    args.currency.clone(),
                );
                models.push(b);
            }
            report.backtest = Some(BacktestSection {
                deals: labelled.deals.len() as u64,
                not_closed: labelled.not_closed,
                left_out: labelled.issues.clone(),
                models,
            });
        }

        if args.suggest_weights {
            let options = tierd_outcomes::SuggestOptions {
                holdout: args.holdout / 100.0,
                ..Default::default()
            };
            report.suggest_weights = Some(
                match tierd_outcomes::suggest_weights(model, &live_scored, options) {
                    Ok(s) => {
                        let written = match &args.output {
                            Some(path) => Some(write_candidate(settings, &s, path, labelled.deals.len())?),
                            None => None,
                        };
                        SuggestSection::Fitted {
                            suggestion: Box::new(s),
                            candidate_written: written,
                        }
                    }
                    Err(e) => {
                        failed = true;
                        eprintln!("tierd calibrate --suggest-weights: {e}");
                        SuggestSection::NotFitted { error: e.to_string() }
                    }
                },
            );
        }
    }

    let mut out = std::io::stdout().lock();
    if args.format == "json" {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        tierd_outcomes::write_calibration_table(&mut out, &report)?;
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes the candidate model, checked by the model loader first.
fn write_candidate(settings: &Settings, s: &Suggestion, path: &Path, deals: usize) -> anyhow::Result<String> {
    let auc = |a: Option<f64>| a.map_or_else(|| "-".to_string(), |a| format!("{a:.3}"));
    let header = vec![
        format!("Candidate model suggested by `tierd calibrate --suggest-weights` from {}.", s.live_model),
        "A suggestion: tierd never applies it. Review and edit it, backtest it with".to_string(),
        "`tierd calibrate --model FILE`, and adopt it by pointing [model] path at it.".to_string(),
        format!(
            "Fit: L2-regularised logistic regression (lambda {}) of won/lost on each criterion's points",
            s.l2
        ),
        format!(
            "on the day each deal was created: {} deals fitted, {} held out ({:.0}% of accounts, by id).",
            s.train_deals,
            s.holdout_deals,
            s.holdout_share * 100.0
        ),
        format!(
            "Holdout AUC: this candidate's fit {}, the live model {} (with negative weights allowed: {}).",
            auc(s.holdout_auc),
            auc(s.live_holdout_auc),
            auc(s.unconstrained_holdout_auc)
        ),
        format!(
            "{} of {deals} deals were scored on facts observed after they were created (the store keeps the latest facts only).",
            s.scored_on_later_facts
        ),
        "Fitted with no negative weight: a criterion whose worth came out negative was dropped and the".to_string(),
        format!(
            "rest refitted; a dropped criterion is written with the smallest weight, {}.",
            tierd_outcomes::MIN_WRITTEN_WEIGHT
        ),
        "Only `version` and the weights changed; each weight says where it came from.".to_string(),
    ];
    let text = tierd_outcomes::candidate_model(&settings.model_text, s, &header)
        .map_err(|e| anyhow::anyhow!("cannot write the candidate model: {e}"))?;
    Model::from_toml(&text, "model").map_err(|e| {
        anyhow::anyhow!(
            "the candidate model does not load (a bug; nothing written): {}",
            e.0[0]
        )
    })?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path.display().to_string())
}
