//! `tierd pending list|retry`: the records the CRM rejected, held in the store, and retrying them
//! at the next run (after the CRM was fixed: a picklist value added, a field made writable). The
//! same store calls as `GET /api/v1/pending-pushes` and `POST /api/v1/pending-pushes/retry`.

use std::process::ExitCode;

use anyhow::Context as _;
use tierd_config::Settings;
use tierd_store::{RejectionGroup, Store};

/// `tierd pending` actions.
#[derive(clap::Subcommand, Debug)]
pub enum PendingAction {
    /// List the held rejections: by reason, then each record.
    List {
        /// Print the records as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Retry held rejections (permanent ones too) at the next run.
    Retry {
        /// Every held rejection.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// The accounts whose rejections to retry.
        #[arg(value_name = "ID", required_unless_present = "all")]
        ids: Vec<String>,
    },
}

/// Runs `tierd pending ...` against the configured store.
pub fn run(action: &PendingAction, settings: &Settings) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = Store::connect(&settings.store.url).await?;
        let mut out = std::io::stdout().lock();
        let code = match action {
            PendingAction::List { json } => {
                let pending = store.pending_pushes(true).await?;
                if *json {
                    serde_json::to_writer_pretty(&mut out, &pending)?;
                    use std::io::Write as _;
                    writeln!(out)?;
                } else if pending.is_empty() {
                    use std::io::Write as _;
                    writeln!(out, "no rejected pushes held")?;
                } else {
                    print_rejections(&mut out, &store.rejection_summary().await?, usize::MAX)?;
                    for p in &pending {
                        use std::io::Write as _;
                        writeln!(
                            out,
                            "{}\t{}\t{}\tattempts {}\t{}",
                            p.account,
                            p.tier,
                            if p.permanent { "permanent" } else { "pending" },
                            p.attempts,
                            p.last_error
                        )?;
                    }
                }
                ExitCode::SUCCESS
            }
            PendingAction::Retry { all, ids } => {
                let retried = match all {
                    true => store.retry_pending(None).await?,
                    false => store.retry_pending(Some(ids)).await?,
                };
                use std::io::Write as _;
                writeln!(out, "{retried} rejected pushes will be retried at the next run")?;
                if !*all && retried < ids.len() as u64 {
                    eprintln!(
                        "{} of the {} accounts had no rejected push held",
                        ids.len() as u64 - retried,
                        ids.len()
                    );
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                }
            }
        };
        store.close().await;
        Ok(code)
    })
}

/// The held rejections by the CRM's reason, most records first, at most `top` reasons: the run
/// summary and `tierd pending list` both print them this way.
pub fn print_rejections(
    out: &mut impl std::io::Write,
    groups: &[RejectionGroup],
    top: usize,
) -> std::io::Result<()> {
    if groups.is_empty() {
        return Ok(());
    }
    let total: u64 = groups.iter().map(|g| g.records).sum();
    writeln!(out, "  rejected pushes held: {total}, by the CRM's reason:")?;
    for g in groups.iter().take(top) {
        let state = if g.permanent {
            "permanent"
        } else {
            "retried each run"
        };
        writeln!(out, "    {:>7}  {} ({state})", g.records, g.reason)?;
    }
    let rest: u64 = groups.iter().skip(top).map(|g| g.records).sum();
    if rest > 0 {
        writeln!(out, "    {rest:>7}  other reasons (tierd pending list)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_top_reasons_are_named_and_the_rest_summed() {
        let group = |reason: &str, permanent, records| RejectionGroup {
            reason: reason.into(),
            permanent,
            records,
        };
        let groups = [
            group("INVALID_OPTION: tier_1", true, 890),
            group("UNABLE_TO_LOCK_ROW", false, 4),
            group("FIELD_INTEGRITY_EXCEPTION", true, 2),
        ];
        let mut out = Vec::new();
        print_rejections(&mut out, &groups, 2).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "  rejected pushes held: 896, by the CRM's reason:\n\
             \x20       890  INVALID_OPTION: tier_1 (permanent)\n\
             \x20         4  UNABLE_TO_LOCK_ROW (retried each run)\n\
             \x20         2  other reasons (tierd pending list)\n"
        );
    }
}
