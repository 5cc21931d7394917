//! `tierd score`: an accounts file in, a tiers file out, in two streaming passes.
//!
//! Pass 1 cuts the input into chunks of whole records (one reader thread), parses and scores
//! the chunks on one worker per core (with their explanations), and takes the results in input
//! order on this thread: ids are checked across chunks, each explanation goes to an anonymous
//! spill file, and only a small [`TierCandidate`] per account is kept. With `--enrich`, the
//! plugins take the chunks one at a time on this thread instead. Tiering needs the whole
//! population (caps rank everybody). Pass 2 reads the spill back and writes the output with
//! each account's tier. Memory therefore grows with the number of accounts times a
//! candidate's size (plus a few chunks in flight), never with the explanations; that is what
//! keeps 1M accounts well under 300 MB.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};

use anyhow::{bail, Context as _};
use tierd_connectors::files::{
    AccountRecord, Chunk, ChunkParser, Chunks, FileError, IdSet, Next, RejectWriter, Rejected, TierRecord,
    TierWriter,
};
use tierd_core::diff::Movements;
use tierd_core::model::FutureEvent;
use tierd_core::tier::{pyramid, Decision, Engagement, Lock, RunKind, TierCandidate};
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
    /// Locked by a person.
    pub locked: usize,
    /// What enrichment did, when it ran.
    pub enrichment: Option<EnrichSummary>,
    /// Accounts with events dated after the as-of date (ignored by scoring and overrides).
    pub future_events: u64,
    /// The first of them: (line, account id, what).
    pub first_future_events: Vec<(u64, String, FutureEvent)>,
}

/// Input bytes per chunk: large enough that handing chunks between threads costs nothing,
/// small enough that the chunks in flight stay a few MB.
const CHUNK: usize = 1 << 20;
const KEEP_REJECTS: usize = 20;

/// One chunk of the input, parsed and scored: everything pass 1 keeps of it, in input order.
struct Scored {
    chunk: Chunk,
    /// The accounts' ids, one after the other (`Row::id_end` marks where each ends).
    ids: String,
    rows: Vec<Row>,
    /// The accounts' compact explanations, a line each (`Row::spill_end` marks each end).
    spill: Vec<u8>,
    rejected: Vec<Rejected>,
    /// Events after the as-of date: (row, what).
    future: Vec<(usize, FutureEvent)>,
}

/// What tiering and the summary need of one scored account.
struct Row {
    line: u64,
    id_end: usize,
    spill_end: usize,
    score: f32,
    coverage: f32,
    potential_value: f64,
    lock: Option<Tier>,
    engagement: Option<Engagement>,
}

/// A thread's reusable buffers: the records a chunk is parsed into, a score card, a text.
#[derive(Default)]
struct Scratch {
    records: Vec<AccountRecord>,
    card: ScoreCard,
    reasons: String,
}

/// Parses `chunk`, enriches its accounts when asked, and scores them with their explanations.
fn score_chunk(
    settings: &Settings,
    parser: &ChunkParser,
    chunk: Chunk,
    as_of: Date,
    scratch: &mut Scratch,
    enrich: Option<&mut Enricher>,
) -> Result<Scored, FileError> {
    let mut reader = parser.reader(&chunk);
    let mut out = Scored {
        ids: String::with_capacity(chunk.len() / 16),
        rows: Vec::with_capacity(chunk.len() / 128),
        spill: Vec::with_capacity(chunk.len()),
        rejected: Vec::new(),
        future: Vec::new(),
        chunk,
    };
    let mut filled = 0;
    loop {
        if filled == scratch.records.len() {
            scratch.records.push(reader.empty_record());
        }
        match reader.read_into(&mut scratch.records[filled])? {
            Next::Account => filled += 1,
            Next::Rejected(r) => out.rejected.push(r),
            Next::End => break,
        }
    }
    let accounts = &mut scratch.records[..filled];
    if let Some(enricher) = enrich {
        enricher.enrich(&settings.schema, accounts);
    }
    let model = &settings.model;
    let (up, down) = (settings.output.reasons_up, settings.output.reasons_down);
    let Scratch { card, reasons, .. } = scratch;
    for acc in accounts.iter() {
        for event in settings.schema.future_events(&acc.facts, as_of) {
            out.future.push((out.rows.len(), event));
        }
        model.score_into(&acc.facts, as_of, card);
        reasons.clear();
        model.compact_reasons(&acc.facts, card, as_of, up, down, reasons);
        let start = out.spill.len();
        out.spill.extend_from_slice(reasons.as_bytes());
        // One explanation per spill line.
        for b in &mut out.spill[start..] {
            if *b == b'\n' {
                *b = b' ';
            }
        }
        out.spill.push(b'\n');
        out.ids.push_str(&acc.id);
        out.rows.push(Row {
            line: acc.line,
            id_end: out.ids.len(),
            spill_end: out.spill.len(),
            score: card.score,
            coverage: card.coverage,
            potential_value: card.potential_value.unwrap_or(0.0),
            lock: acc.lock,
            engagement: settings.policy.engagement_on(&acc.facts, as_of),
        });
    }
    Ok(out)
}

/// Runs one scoring job.
pub fn score_file(settings: &Settings, mut job: ScoreJob<'_>) -> anyhow::Result<ScoreSummary> {
    let mut chunks = Chunks::open(job.input, &settings.schema)?;
    let header = chunks.header().to_vec();
    let parser = chunks.parser();
    let mut summary = ScoreSummary {
        ignored_columns: chunks.ignored_columns().to_vec(),
        ..ScoreSummary::default()
    };

    let model_id = settings.model.id();
    // The spill holds one explanation per line, in input order.
    let spill_file = tempfile::tempfile().context("cannot create a temporary spill file")?;
    let mut pass1 = Pass1 {
        parser: &parser,
        ids: IdSet::default(),
        spill: BufWriter::with_capacity(1 << 16, spill_file),
        rejects: None,
        rejects_path: &job.rejects,
        header: &header,
        candidates: Vec::new(),
        previous: job.previous.as_mut(),
        summary: &mut summary,
    };

    if let Some(enricher) = job.enrich.as_mut() {
        // Plugins take batches one at a time, in order: one thread reads, enriches and scores.
        let mut scratch = Scratch::default();
        while let Some(chunk) = chunks.next_chunk(CHUNK)? {
            let scored = score_chunk(settings, &parser, chunk, job.as_of, &mut scratch, Some(enricher))?;
            pass1.take(scored)?;
        }
    } else {
        score_in_parallel(settings, &mut chunks, &parser, job.as_of, &mut pass1)?;
    }
    let Pass1 {
        spill,
        rejects,
        candidates,
        ..
    } = pass1;
    summary.enrichment = job.enrich.take().map(Enricher::finish);
    if let Some(w) = rejects {
        w.finish()?;
        summary.rejects_path = Some(job.rejects.clone());
    }
    let mut movements = job.previous.as_ref().map(|_| Movements::default());

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
        } = a.decision;
        summary.held += usize::from(held_by_hysteresis);
        summary.lifted += usize::from(lifted_by.is_some());
        summary.capped += usize::from(capped_from.is_some());
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
    let mut explanation = String::new();
    for (c, a) in candidates.iter().zip(&assignments) {
        line.clear();
        if spilled
            .read_line(&mut line)
            .context("cannot read the spill file")?
            == 0
        {
            bail!("the spill file ended early");
        }
        explanation.clear();
        settings
            .policy
            .reason_into(a, line.trim_end_matches('\n'), &mut explanation);
        out.write(&TierRecord {
            id: &c.id,
            score: c.score,
            tier: a.tier,
            coverage: c.coverage,
            model_version: &model_id,
            explanation: &explanation,
        })?;
    }
    out.finish()?;
    Ok(summary)
}

/// Pass 1's state: what it keeps of the scored chunks, taken in input order.
struct Pass1<'a> {
    parser: &'a ChunkParser,
    ids: IdSet,
    spill: BufWriter<std::fs::File>,
    rejects: Option<RejectWriter>,
    rejects_path: &'a Path,
    header: &'a [String],
    candidates: Vec<TierCandidate>,
    previous: Option<&'a mut HashMap<String, Tier>>,
    summary: &'a mut ScoreSummary,
}

impl Pass1<'_> {
    /// Keeps one scored chunk: the next in input order.
    fn take(&mut self, scored: Scored) -> anyhow::Result<()> {
        let Scored {
            chunk,
            ids,
            rows,
            spill,
            mut rejected,
            future,
        } = scored;
        let mut future = future.into_iter().peekable();
        let (mut id_start, mut spill_start) = (0, 0);
        for (i, row) in rows.iter().enumerate() {
            let id = &ids[id_start..row.id_end];
            let text = &spill[spill_start..row.spill_end];
            id_start = row.id_end;
            spill_start = row.spill_end;
            let duplicate = self.ids.insert(id, row.line);
            while let Some((_, event)) = future.next_if(|(r, _)| *r == i) {
                if duplicate.is_some() {
                    continue;
                }
                self.summary.future_events += 1;
                if self.summary.first_future_events.len() < KEEP_REJECTS {
                    self.summary
                        .first_future_events
                        .push((row.line, id.to_string(), event));
                }
            }
            if let Some(first) = duplicate {
                rejected.push(self.parser.duplicate(&chunk, row.line, id, first));
                continue;
            }
            self.spill
                .write_all(text)
                .context("cannot write the spill file")?;
            let previous = self.previous.as_mut().and_then(|p| p.remove(id));
            self.candidates.push(TierCandidate {
                id: id.into(),
                score: row.score,
                potential_value: row.potential_value,
                coverage: row.coverage,
                previous,
                lock: Lock::from(row.lock),
                engagement: row.engagement,
            });
        }
        rejected.sort_by_key(|r| r.line);
        for r in &rejected {
            let writer = match &mut self.rejects {
                Some(w) => w,
                None => self
                    .rejects
                    .insert(RejectWriter::create(self.rejects_path, self.header)?),
            };
            writer.write(r)?;
            self.summary.rejected += 1;
            if self.summary.first_rejects.len() < KEEP_REJECTS {
                self.summary.first_rejects.push(r.clone());
            }
        }
        Ok(())
    }
}

/// Pass 1 on every core: one thread cuts the input into chunks, one worker per core parses and
/// scores them, and this thread takes their results in input order. At most `IN_FLIGHT` chunks
/// are read but not yet taken, so memory does not grow with the input.
fn score_in_parallel(
    settings: &Settings,
    chunks: &mut Chunks,
    parser: &ChunkParser,
    as_of: Date,
    pass1: &mut Pass1<'_>,
) -> anyhow::Result<()> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let in_flight = 4 * workers;
    let (work_tx, work_rx) = mpsc::sync_channel::<(u64, Chunk)>(in_flight);
    let work_rx = Mutex::new(work_rx);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (done_tx, done_rx) = mpsc::sync_channel::<(u64, Result<Scored, FileError>)>(in_flight);
        // A token per chunk in flight: the reader takes one per chunk, this thread gives it back.
        let (token_tx, token_rx) = mpsc::sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            let _ = token_tx.send(());
        }
        let reader = scope.spawn(move || -> Result<(), FileError> {
            let mut seq = 0;
            while token_rx.recv().is_ok() {
                let Some(chunk) = chunks.next_chunk(CHUNK)? else {
                    break;
                };
                if work_tx.send((seq, chunk)).is_err() {
                    break;
                }
                seq += 1;
            }
            Ok(())
        });
        for _ in 0..workers {
            let (work_rx, done_tx) = (&work_rx, done_tx.clone());
            scope.spawn(move || {
                let mut scratch = Scratch::default();
                loop {
                    let next = work_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok((seq, chunk))) = next else { return };
                    let scored = score_chunk(settings, parser, chunk, as_of, &mut scratch, None);
                    if done_tx.send((seq, scored)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let taken = (|| -> anyhow::Result<()> {
            let mut waiting: BTreeMap<u64, Scored> = BTreeMap::new();
            let mut next = 0;
            for (seq, scored) in done_rx.iter() {
                waiting.insert(seq, scored?);
                while let Some(scored) = waiting.remove(&next) {
                    pass1.take(scored)?;
                    next += 1;
                    let _ = token_tx.send(());
                }
            }
            Ok(())
        })();
        // On an error, stop the reader and the workers before waiting for them.
        drop(token_tx);
        drop(done_rx);
        let read = reader
            .join()
            .map_err(|_| anyhow::anyhow!("the reader of the accounts file stopped unexpectedly"))?;
        taken?;
        Ok(read?)
    })
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
        "Decisions: {} lifted by engagement, {} held by hysteresis, {} demoted by caps, {} locked by hand.",
        s.lifted, s.held, s.capped, s.locked
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
