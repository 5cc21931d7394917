//! `tierd score`: an accounts file in, a tiers file out, in two streaming passes.
//!
//! Pass 1 reads and scores accounts as they stream in (a reader thread parses
//! while this thread scores, over a bounded channel), writes each scored row to
//! an anonymous spill file, and keeps only a small [`TierCandidate`] per account.
//! Tiering needs the whole population (caps rank everybody). Pass 2 reads the
//! spill back and writes the output with each account's tier. Memory therefore
//! grows with the number of accounts times a candidate's size, never with the
//! explanations; that is what keeps 1M accounts well under 300 MB.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::{bail, Context as _};
use tierd_connectors::files::{
    AccountReader, AccountRecord, FileError, Next, RejectWriter, Rejected, TierRecord, TierWriter,
};
use tierd_core::diff::Movements;
use tierd_core::model::FutureEvent;
use tierd_core::tier::{pyramid, Decision, Lock, RunKind, TierCandidate};
use tierd_core::{Date, ScoreCard, Tier};

use tierd_config::Settings;
use tierd_engine::enrich::{EnrichSummary, Enricher};

/// What to score and where to write it.
pub struct ScoreJob<'a> {
    /// Accounts file (CSV or JSONL).
    pub input: &'a Path,
    /// Tiers file to write (CSV or JSONL).
    pub output: &'a Path,
    /// Rejects file (its extension sets its format).
    pub rejects: PathBuf,
    /// Tiers from a previous run: enables movements and, on incremental runs, hysteresis.
    pub previous: Option<HashMap<String, Tier>>,
    /// The scoring date.
    pub as_of: Date,
    /// Full or incremental.
    pub kind: RunKind,
    /// Plugins to run over each batch before it is scored (`--enrich`).
    pub enrich: Option<Enricher>,
}

/// What a run did, for the summary.
#[derive(Debug, Default)]
pub struct ScoreSummary {
    /// Accounts scored and tiered.
    pub accounts: usize,
    /// Accounts per tier, best first.
    pub pyramid: [usize; 4],
    /// Records rejected (first few kept for the report).
    pub rejected: u64,
    /// The first rejected records.
    pub first_rejects: Vec<Rejected>,
    /// Where rejects were written, if any were.
    pub rejects_path: Option<PathBuf>,
    /// Movements against the previous tiers, when given.
    pub movements: Option<Movements>,
    /// Input columns nothing reads.
    pub ignored_columns: Vec<String>,
    /// Lifted by an engagement override.
    pub lifted: usize,
    /// Held by hysteresis.
    pub held: usize,
    /// Demoted by caps.
    pub capped: usize,
    /// Held below the tier their score reached by too little coverage.
    pub insufficient_data: usize,
    /// Locked by a person.
    pub locked: usize,
    /// What enrichment did, when it ran.
    pub enrichment: Option<EnrichSummary>,
    /// Accounts with events dated after the as-of date (ignored by scoring and overrides).
    pub future_events: u64,
    /// The first of them: (line, account id, what).
    pub first_future_events: Vec<(u64, String, FutureEvent)>,
}

const BATCH: usize = 1024;

/// Up to [`BATCH`] accounts read in a row (the first `filled` of `accounts`; the rest are
/// records kept for reuse) and the records rejected among them.
#[derive(Default)]
struct Batch {
    accounts: Vec<AccountRecord>,
    filled: usize,
    rejected: Vec<Rejected>,
}
const KEEP_REJECTS: usize = 20;

/// Runs one scoring job.
pub fn score_file(settings: &Settings, mut job: ScoreJob<'_>) -> anyhow::Result<ScoreSummary> {
    let reader = AccountReader::open(job.input, &settings.schema)?;
    let header = reader.header().to_vec();
    let mut summary = ScoreSummary {
        ignored_columns: reader.ignored_columns().to_vec(),
        ..ScoreSummary::default()
    };

    // Parsing runs on its own thread; the bounded channel keeps at most a few batches in flight.
    // Used batches go back to the parser, which reads the next rows into the same records:
    // after the first few batches, parsing allocates almost nothing.
    let (tx, rx) = mpsc::sync_channel::<Result<Batch, FileError>>(4);
    let (used_tx, used_rx) = mpsc::sync_channel::<Batch>(8);
    let parser = std::thread::spawn(move || {
        let mut reader = reader;
        loop {
            let mut batch = used_rx.try_recv().unwrap_or_default();
            batch.filled = 0;
            batch.rejected.clear();
            let mut end = false;
            while batch.filled < BATCH {
                if batch.filled == batch.accounts.len() {
                    batch.accounts.push(reader.empty_record());
                }
                match reader.read_into(&mut batch.accounts[batch.filled]) {
                    Ok(Next::Account) => batch.filled += 1,
                    Ok(Next::Rejected(r)) => batch.rejected.push(r),
                    Ok(Next::End) => {
                        end = true;
                        break;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
            if tx.send(Ok(batch)).is_err() || end {
                return;
            }
        }
    });

    let model = &settings.model;
    let model_id = model.id();
    // The spill holds one explanation per line, in input order.
    let spill_file = tempfile::tempfile().context("cannot create a temporary spill file")?;
    let mut spill = BufWriter::with_capacity(1 << 16, spill_file);
    let mut rejects: Option<RejectWriter> = None;
    let mut candidates: Vec<TierCandidate> = Vec::new();
    let mut card = ScoreCard::default();
    let mut reasons = String::new();
    let mut movements = job.previous.as_ref().map(|_| Movements::default());
    let (up, down) = (settings.output.reasons_up, settings.output.reasons_down);

    for batch in rx {
        let mut batch = batch?;
        if let Some(enricher) = &mut job.enrich {
            enricher.enrich(&settings.schema, &mut batch.accounts[..batch.filled]);
        }
        for acc in &batch.accounts[..batch.filled] {
            for event in settings.schema.future_events(&acc.facts, job.as_of) {
                summary.future_events += 1;
                if summary.first_future_events.len() < KEEP_REJECTS {
                    summary
                        .first_future_events
                        .push((acc.line, acc.id.clone(), event));
                }
            }
            model.score_into(&acc.facts, job.as_of, &mut card);
            reasons.clear();
            model.compact_reasons(&acc.facts, &card, job.as_of, up, down, &mut reasons);
            if reasons.contains('\n') {
                reasons = reasons.replace('\n', " ");
            }
            reasons.push('\n');
            spill
                .write_all(reasons.as_bytes())
                .context("cannot write the spill file")?;
            let previous = job.previous.as_mut().and_then(|p| p.remove(&acc.id));
            candidates.push(TierCandidate {
                id: acc.id.as_str().into(),
                score: card.score,
                potential_value: card.potential_value.unwrap_or(0.0),
                coverage: card.coverage,
                previous,
                lock: Lock::from(acc.lock),
                engagement: settings.policy.engagement_on(&acc.facts, job.as_of),
            });
        }
        for r in &batch.rejected {
            let writer = match &mut rejects {
                Some(w) => w,
                None => rejects.insert(RejectWriter::create(&job.rejects, &header)?),
            };
            writer.write(r)?;
            summary.rejected += 1;
            if summary.first_rejects.len() < KEEP_REJECTS {
                summary.first_rejects.push(r.clone());
            }
        }
        let _ = used_tx.try_send(batch);
    }
    drop(used_tx);
    summary.enrichment = job.enrich.take().map(Enricher::finish);
    if parser.join().is_err() {
        bail!("the reader of {} stopped unexpectedly", job.input.display());
    }
    if let Some(w) = rejects {
        w.finish()?;
        summary.rejects_path = Some(job.rejects.clone());
    }

    let assignments = settings.policy.assign(&candidates, job.kind, job.as_of);
    let tiers: Vec<Tier> = assignments.iter().map(|a| a.tier).collect();
    summary.accounts = candidates.len();
    summary.pyramid = pyramid(&tiers);
    for (c, a) in candidates.iter().zip(&assignments) {
        let Decision {
            held_by_hysteresis,
            lifted_by,
            capped_from,
            locked,
            insufficient_data,
        } = a.decision;
        summary.held += usize::from(held_by_hysteresis);
        summary.lifted += usize::from(lifted_by.is_some());
        summary.capped += usize::from(capped_from.is_some());
        summary.insufficient_data += usize::from(insufficient_data.is_some());
        summary.locked += usize::from(locked);
        if let Some(m) = &mut movements {
            m.record(c.previous, a.tier);
        }
    }
    if let (Some(m), Some(prev)) = (&mut movements, &job.previous) {
        m.gone = prev.len();
    }
    summary.movements = movements;

    // Pass 2: candidates and the spilled explanations, in input order, with tiers and the
    // reason (how the tier was decided, then the score's reasons).
    let mut spill_file = spill
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot flush the spill file: {}", e.error()))?;
    spill_file.seek(SeekFrom::Start(0))?;
    let mut spilled = BufReader::with_capacity(1 << 16, spill_file);
    let mut out = TierWriter::create(job.output)?;
    let mut line = String::new();
    for (c, a) in candidates.iter().zip(&assignments) {
        line.clear();
        if spilled
            .read_line(&mut line)
            .context("cannot read the spill file")?
            == 0
        {
            bail!("the spill file ended early");
        }
        out.write(&TierRecord {
            id: &c.id,
            score: c.score,
            tier: a.tier,
            coverage: c.coverage,
            model_version: &model_id,
            explanation: &settings.policy.reason(a, line.trim_end_matches('\n')),
        })?;
    }
    out.finish()?;
    Ok(summary)
}

/// `accounts.csv` -> `accounts.rejects.csv` beside the output.
pub fn default_rejects_path(input: &Path, output: &Path) -> PathBuf {
    let stem = input.file_stem().and_then(|s| s.to_str()).unwrap_or("accounts");
    let ext = input.extension().and_then(|s| s.to_str()).unwrap_or("csv");
    output
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(format!("{stem}.rejects.{ext}"))
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Prints the pyramid: accounts per tier with a bar.
pub fn print_pyramid(out: &mut impl Write, counts: [usize; 4]) -> std::io::Result<()> {
    let total: usize = counts.iter().sum::<usize>().max(1);
    for (tier, n) in Tier::ALL.iter().zip(counts) {
        let pct = 100.0 * n as f64 / total as f64;
        let bar = "#".repeat(((pct / 2.0).ceil() as usize).min(50));
        writeln!(
            out,
            "  {:<9} {:>10} {:>6.1}%  {bar}",
            tier.as_str(),
            thousands(n),
            pct
        )?;
    }
    Ok(())
}

/// Prints what a run did.
pub fn print_summary(
    out: &mut impl Write,
    s: &ScoreSummary,
    model_id: &str,
    as_of: Date,
    previous: Option<&Path>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "Scored {} accounts with {model_id} as of {as_of}.",
        thousands(s.accounts)
    )?;
    print_pyramid(out, s.pyramid)?;
    if let Some(m) = &s.movements {
        let new: usize = m.new_accounts.iter().sum();
        writeln!(
            out,
            "Movements against {}: {} up, {} down, {} unchanged, {} new, {} no longer present.",
            previous.map_or_else(|| "previous".into(), |p| p.display().to_string()),
            thousands(m.upgrades()),
            thousands(m.downgrades()),
            thousands(m.unchanged()),
            thousands(new),
            thousands(m.gone)
        )?;
        writeln!(out, "  from \\ to   tier_1   tier_2   tier_3 untiered")?;
        for (i, from) in Tier::ALL.iter().enumerate() {
            let row = m.matrix[i];
            writeln!(
                out,
                "  {:<9} {:>8} {:>8} {:>8} {:>8}",
                from.as_str(),
                row[0],
                row[1],
                row[2],
                row[3]
            )?;
        }
    }
    writeln!(
        out,
        "Decisions: {} lifted by engagement, {} held by hysteresis, {} held down for insufficient data, {} demoted by caps, {} locked by hand.",
        s.lifted, s.held, s.insufficient_data, s.capped, s.locked
    )?;
    if !s.ignored_columns.is_empty() {
        writeln!(
            out,
            "Columns no criterion reads (ignored): {}",
            s.ignored_columns.join(", ")
        )?;
    }
    Ok(())
}

/// Prints rejected records and warnings (events dated after the as-of date), a line each, to
/// stderr-like output.
pub fn print_rejects(out: &mut impl Write, s: &ScoreSummary, input: &Path) -> std::io::Result<()> {
    for (line, id, event) in &s.first_future_events {
        writeln!(out, "{}:{line} (id {id}): warning: {event}", input.display())?;
    }
    let more = s.future_events.saturating_sub(s.first_future_events.len() as u64);
    if more > 0 {
        writeln!(out, "... and {more} more facts with events after the as-of date")?;
    }
    if s.rejected == 0 {
        return Ok(());
    }
    for r in &s.first_rejects {
        let id = r.id.as_deref().map(|i| format!(" (id {i})")).unwrap_or_default();
        writeln!(out, "{}:{}{id}: {}", input.display(), r.line, r.reason)?;
    }
    let more = s.rejected.saturating_sub(s.first_rejects.len() as u64);
    if more > 0 {
        writeln!(out, "... and {more} more")?;
    }
    if let Some(p) = &s.rejects_path {
        writeln!(
            out,
            "{} records rejected, kept as they were in {}",
            s.rejected,
            p.display()
        )?;
    }
    Ok(())
}
