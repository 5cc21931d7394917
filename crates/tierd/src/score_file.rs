//! `tierd score`: an accounts file in, a tiers file out, in two streaming passes, in memory
//! that does not grow with the file.
//!
//! Pass 1 scores accounts as they stream in and writes each one's output row, whole, to an
//! anonymous spill file. A CSV file (without `--enrich`) is cut into chunks of whole records
//! ([`CsvChunks`]) that one worker per core parses, scores and formats on its own
//! ([`RowWriter`]); this thread takes the chunks back in input order, writes rejects and
//! appends the rows to the spill. JSONL files and enriched runs are read by one reader thread
//! and scored here, through the same writer.
//!
//! A repeated id is rejected, with the line it was first seen on. For a CSV file the check is
//! optimistic: pass 1 keeps no id, only each id's 64-bit hash, on disk, in partitions by the
//! hash's top bits ([`IdHashes`]). After the pass each partition's hashes go into a set (the
//! partitions shared out among the cores); when no hash occurs twice (a file without
//! repeats) pass 1's result stands. Otherwise pass 1 is run again from the start of the
//! file, and only ids whose hash occurred twice are kept, in an exact set ([`Suspects`]):
//! the repeats are rejected as if every id had been kept, and distinct ids whose hashes
//! collide are both scored. A file with repeats costs a second read
//! (the chunk reader needs a file it can seek in already, never a pipe). JSONL files and
//! enriched runs have their ids checked by [`AccountReader`], which keeps every id: only the
//! CSV path's memory is flat in the number of accounts.
//!
//! Tiering needs the whole population only for the pyramid caps, and only accounts in a capped
//! tier before the caps can move: their row keeps its tier and the cap's words as something
//! to fill in, and a small record (rank key and where the row is) goes to a second spill. The
//! caps' lines come from a tally per score ([`CapTally`]); pass 2 copies the spill to the
//! output, filling in the rows the caps decide, one share of the spill per core, each written
//! at its own place in the output. Memory holds the chunks in flight, the tally,
//! a partition of id hashes at a time and the ids whose hash repeats (for a CSV file), never a
//! record per account.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;

use anyhow::{bail, Context as _};
use tierd_connectors::files::{
    AccountReader, AccountRecord, Chunk, CsvChunks, CsvLayout, FileError, FileFormat, IdSet, Next,
    RecordSplitter, RejectWriter, Rejected, TIER_COLUMNS,
};
use tierd_core::decimal::push_fixed_bytes;
use tierd_core::diff::Movements;
use tierd_core::model::FutureEvent;
use tierd_core::tier::{
    Assignment, CapCut, CapTally, Lines, Lock, OnTheLine, RunKind, TierBasis, TierCandidate, TierMember,
    TierPolicy,
};
use tierd_core::{Date, ScoreCard, ScoreMemo, Tier};

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
const KEEP_REJECTS: usize = 20;
/// Bytes of input per chunk a worker parses.
const CHUNK: usize = 1 << 20;
/// Chunks waiting per worker, in each direction.
const IN_FLIGHT: usize = 2;

/// Up to [`BATCH`] accounts read in a row (the first `filled` of `accounts`; the rest are
/// records kept for reuse) and the records rejected among them.
#[derive(Default)]
struct Batch {
    accounts: Vec<AccountRecord>,
    filled: usize,
    rejected: Vec<Rejected>,
}

/// One account's row as [`RowWriter`] wrote it, and what tiering and the summary need of it.
#[derive(Debug, Clone)]
struct RowMeta {
    line: u64,
    /// The id, in [`Rows::ids`].
    id: (usize, usize),
    /// [`IdHashes::hash`] of the id, worked out by the worker.
    id_hash: u64,
    /// The row, in [`Rows::out`].
    row: (usize, usize),
    /// The record, in its chunk (to write it to the rejects file should its id be a repeat).
    record: (usize, usize),
    /// Where in the row the tier is, and where the cap's words would go.
    tier_at: u32,
    cap_at: u32,
    score: f32,
    potential_value: f64,
    coverage: f32,
    before: Assignment,
    previous: Option<Tier>,
    future_events: u32,
}

#[derive(Debug)]
enum Item {
    Row(RowMeta),
    Rejected(Rejected),
}

/// What pass 1 made of a chunk (or a batch): its rows and rejects in input order.
#[derive(Debug, Default)]
struct Rows {
    items: Vec<Item>,
    out: Vec<u8>,
    ids: String,
    /// Events after the as-of date: (item, event), the first few.
    events: Vec<(usize, FutureEvent)>,
    /// The chunk the rows came from (CSV).
    chunk: Chunk,
}

impl Rows {
    fn clear(&mut self) {
        self.items.clear();
        self.out.clear();
        self.ids.clear();
        self.events.clear();
    }
}

/// Scores accounts and writes each one's output row (CSV or JSONL), its tier being the tier
/// before the caps; one per worker, its buffers reused from account to account.
struct RowWriter<'a> {
    settings: &'a Settings,
    as_of: Date,
    kind: RunKind,
    previous: Option<&'a HashMap<String, Tier>>,
    format: FileFormat,
    /// The model's id, as the output writes it.
    model_field: Vec<u8>,
    /// The model's scorer with what it gave each distinct value so far (a file repeats a few
    /// hundred industries, technologies and dates over millions of rows).
    memo: ScoreMemo<'a>,
    /// The policy's lines in thousandths, worked out once.
    lines: Lines,
    card: ScoreCard,
    reasons: String,
    explanation: String,
}

impl<'a> RowWriter<'a> {
    fn new(
        settings: &'a Settings,
        job: &ScoreJob<'_>,
        previous: Option<&'a HashMap<String, Tier>>,
        format: FileFormat,
    ) -> RowWriter<'a> {
        let id = settings.model.id();
        let mut model_field = Vec::new();
        match format {
            FileFormat::Csv => push_csv_field(&mut model_field, id.as_bytes()),
            FileFormat::Jsonl => push_json_str(&mut model_field, &id),
        }
        RowWriter {
            settings,
            as_of: job.as_of,
            kind: job.kind,
            previous,
            format,
            model_field,
            memo: ScoreMemo::new(&settings.model, job.as_of),
            lines: settings.policy.lines(),
            card: ScoreCard::default(),
            reasons: String::new(),
            explanation: String::new(),
        }
    }

    /// Scores `acc` and appends its row to `rows`.
    fn write(&mut self, acc: &AccountRecord, record: (usize, usize), rows: &mut Rows) {
        let settings = self.settings;
        let policy = &settings.policy;
        let events = settings.schema.future_events(&acc.facts, self.as_of);
        if !events.is_empty() {
            let item = rows.items.len();
            let room = KEEP_REJECTS.saturating_sub(rows.events.len());
            rows.events
                .extend(events.iter().take(room).map(|e| (item, e.clone())));
        }
        self.memo.score_into(&acc.facts, &mut self.card);
        let card = &self.card;
        self.reasons.clear();
        self.memo.compact_reasons(
            &acc.facts,
            card,
            settings.output.reasons_up,
            settings.output.reasons_down,
            &mut self.reasons,
        );
        if memchr::memchr(b'\n', self.reasons.as_bytes()).is_some() {
            // One row per account: a newline inside a value is a space in its reason.
            self.reasons = self.reasons.replace('\n', " ");
        }
        let previous = self.previous.and_then(|p| p.get(&acc.id).copied());
        let candidate = TierCandidate {
            // The basis reads no id (only the caps' ranking does, from the spilled record):
            // an empty one costs no allocation.
            id: Box::from(""),
            score: card.score,
            potential_value: card.potential_value.unwrap_or(0.0),
            coverage: card.coverage,
            previous,
            lock: Lock::from(acc.lock),
            engagement: policy.engagement_on(&acc.facts, self.as_of),
        };
        let basis = policy.basis_on(&self.lines, &candidate, self.kind);
        let before = policy.before_caps_on(&self.lines, &basis, card.coverage, self.as_of);
        self.explanation.clear();
        let cap_text = policy.reason_into(&before, &self.reasons, &mut self.explanation);

        let id_start = rows.ids.len();
        rows.ids.push_str(&acc.id);
        let out = &mut rows.out;
        let start = out.len();
        let (tier_at, cap_at) = match self.format {
            FileFormat::Csv => {
                push_csv_field(out, acc.id.as_bytes());
                out.push(b',');
                push_fixed_bytes(out, card.score, 3);
                out.push(b',');
                let tier_at = out.len() - start;
                out.extend_from_slice(before.tier.as_str().as_bytes());
                out.push(b',');
                push_fixed_bytes(out, card.coverage, 2);
                out.push(b',');
                out.extend_from_slice(&self.model_field);
                out.push(b',');
                let text = self.explanation.as_bytes();
                let quote = needs_quotes(text);
                if quote {
                    out.push(b'"');
                }
                push_escaped(out, &text[..cap_text], quote);
                let cap_at = out.len() - start;
                push_escaped(out, &text[cap_text..], quote);
                if quote {
                    out.push(b'"');
                }
                out.push(b'\n');
                (tier_at, cap_at)
            }
            FileFormat::Jsonl => {
                out.extend_from_slice(b"{\"id\":");
                push_json_str(out, &acc.id);
                out.extend_from_slice(b",\"score\":");
                push_json_f32(out, (card.score * 1000.0).round() / 1000.0);
                out.extend_from_slice(b",\"tier\":\"");
                let tier_at = out.len() - start;
                out.extend_from_slice(before.tier.as_str().as_bytes());
                out.extend_from_slice(b"\",\"coverage\":");
                push_json_f32(out, (card.coverage * 100.0).round() / 100.0);
                out.extend_from_slice(b",\"model_version\":");
                out.extend_from_slice(&self.model_field);
                out.extend_from_slice(b",\"explanation\":");
                // One JSON string in two parts, with the place for the cap's words between.
                push_json_str(out, &self.explanation[..cap_text]);
                out.pop();
                let at = out.len() - start;
                let mark = out.len();
                push_json_str(out, &self.explanation[cap_text..]);
                out.remove(mark);
                out.extend_from_slice(b"}\n");
                (tier_at, at)
            }
        };
        rows.items.push(Item::Row(RowMeta {
            line: acc.line,
            id: (id_start, rows.ids.len()),
            id_hash: IdHashes::hash(&acc.id),
            row: (start, rows.out.len()),
            record,
            tier_at: tier_at as u32,
            cap_at: cap_at as u32,
            score: card.score,
            potential_value: card.potential_value.unwrap_or(0.0),
            coverage: card.coverage,
            before,
            previous,
            future_events: events.len() as u32,
        }));
    }
}

/// Whether the `csv` crate's writer quotes this field (`QuoteStyle::Necessary`).
fn needs_quotes(field: &[u8]) -> bool {
    if field.len() < 32 {
        // An id: a loop over a few bytes costs less than setting up two vector searches.
        return field.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    }
    memchr::memchr3(b',', b'"', b'\n', field).is_some() || memchr::memchr(b'\r', field).is_some()
}

/// `field`'s bytes with quotes doubled when `quoted`.
fn push_escaped(out: &mut Vec<u8>, field: &[u8], quoted: bool) {
    if !quoted {
        out.extend_from_slice(field);
        return;
    }
    for part in field.split_inclusive(|&b| b == b'"') {
        out.extend_from_slice(part);
        if part.last() == Some(&b'"') {
            out.push(b'"');
        }
    }
}

/// One CSV field as the `csv` crate writes it.
fn push_csv_field(out: &mut Vec<u8>, field: &[u8]) {
    let quote = needs_quotes(field);
    if quote {
        out.push(b'"');
    }
    push_escaped(out, field, quote);
    if quote {
        out.push(b'"');
    }
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn push_json_f32(out: &mut Vec<u8>, x: f32) {
    let _ = serde_json::to_writer(&mut *out, &x);
}

/// Threads pass 1's chunk workers and pass 2's copies each use: one per core, up to 8.
fn cores() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8)
}

/// Runs one scoring job.
pub fn score_file(settings: &Settings, mut job: ScoreJob<'_>) -> anyhow::Result<ScoreSummary> {
    // The output's format is checked again when it is created, after pass 1, as it always was.
    let format = FileFormat::from_path(job.output).unwrap_or(FileFormat::Csv);
    let previous = job.previous.take();
    let pass = if FileFormat::from_path(job.input)? == FileFormat::Csv && job.enrich.is_none() {
        pass1_csv(settings, &job, previous.as_ref(), format)?
    } else {
        let mut pass = Pass1::new(&job, previous.as_ref())?;
        pass1_batches(settings, &mut job, previous.as_ref(), format, &mut pass)?;
        pass
    };
    pass.finish(settings, &job, format)
}

/// Pass 1 over a CSV file, its ids checked optimistically: a first run keeps only their hashes
/// ([`IdHashes`]); only when a hash occurs twice is the file read again, the ids with such a
/// hash checked exactly ([`Suspects`]).
fn pass1_csv(
    settings: &Settings,
    job: &ScoreJob<'_>,
    previous: Option<&HashMap<String, Tier>>,
    format: FileFormat,
) -> anyhow::Result<Pass1> {
    let mut hashes = IdHashes::new();
    let pass = pass1_chunks(settings, job, previous, format, &mut hashes)?;
    let repeated = hashes.repeated()?;
    if repeated.is_empty() {
        return Ok(pass);
    }
    // The first run's spills, tally and summary are dropped, and its rejects file (if it began
    // one) is flushed before the second run creates it again.
    drop(pass);
    pass1_chunks(settings, job, previous, format, &mut Suspects::new(repeated))
}

/// Pass 1 over a CSV file: chunks parsed, scored and written on every core, their ids checked
/// by `ids` in input order.
fn pass1_chunks(
    settings: &Settings,
    job: &ScoreJob<'_>,
    previous: Option<&HashMap<String, Tier>>,
    format: FileFormat,
    ids: &mut dyn IdCheck,
) -> anyhow::Result<Pass1> {
    let mut pass = Pass1::new(job, previous)?;
    let (layout, mut chunks) = CsvChunks::open(job.input, &settings.schema)?;
    pass.header = layout.header().to_vec();
    pass.summary.ignored_columns = layout.ignored_columns().to_vec();
    let workers = cores();
    // Buffers go round: reader -> worker -> this thread -> back to the pools.
    let chunk_pool: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    let rows_pool: Mutex<Vec<Rows>> = Mutex::new(Vec::new());
    let layout = &layout;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut to_workers = Vec::new();
        let mut from_workers = Vec::new();
        for _ in 0..workers {
            let (tx, rx) = mpsc::sync_channel::<Chunk>(IN_FLIGHT);
            let (done_tx, done_rx) = mpsc::sync_channel::<Rows>(IN_FLIGHT);
            to_workers.push(tx);
            from_workers.push(done_rx);
            let rows_pool = &rows_pool;
            scope.spawn(move || {
                let mut writer = RowWriter::new(settings, job, previous, format);
                let mut split = RecordSplitter::default();
                let mut rec = layout.empty_record();
                for chunk in rx {
                    let mut rows = rows_pool
                        .lock()
                        .ok()
                        .and_then(|mut p| p.pop())
                        .unwrap_or_default();
                    rows.clear();
                    split.start(&chunk);
                    let text = chunk.text();
                    while let Some(line) = split.next_record(&chunk.bytes) {
                        match layout.read(&split, &chunk.bytes, text, line, &mut rec) {
                            None => writer.write(&rec, split.span(), &mut rows),
                            Some(r) => rows.items.push(Item::Rejected(r)),
                        }
                    }
                    rows.chunk = chunk;
                    if done_tx.send(rows).is_err() {
                        return;
                    }
                }
            });
        }
        let chunk_pool = &chunk_pool;
        let reader = scope.spawn(move || -> Result<(), FileError> {
            let mut i = 0;
            loop {
                let bytes = chunk_pool
                    .lock()
                    .ok()
                    .and_then(|mut p| p.pop())
                    .unwrap_or_default();
                let Some(chunk) = chunks.next_chunk(CHUNK, bytes)? else {
                    return Ok(());
                };
                if to_workers[i % workers].send(chunk).is_err() {
                    return Ok(());
                }
                i += 1;
            }
        });
        // Results in input order: chunk i went to worker i % workers.
        let mut i = 0;
        let mut split = RecordSplitter::default();
        while let Ok(mut rows) = from_workers[i % workers].recv() {
            pass.take(&rows, Some((layout, &mut split, &mut *ids)))?;
            let bytes = std::mem::take(&mut rows.chunk.bytes);
            if let Ok(mut p) = chunk_pool.lock() {
                p.push(bytes);
            }
            if let Ok(mut p) = rows_pool.lock() {
                p.push(rows);
            }
            i += 1;
        }
        match reader.join() {
            Ok(r) => r?,
            Err(_) => bail!("the reader of {} stopped unexpectedly", job.input.display()),
        }
        Ok(())
    })?;
    Ok(pass)
}

/// Pass 1 over a JSONL file, or with enrichment: a reader thread, scoring on this one.
fn pass1_batches(
    settings: &Settings,
    job: &mut ScoreJob<'_>,
    previous: Option<&HashMap<String, Tier>>,
    format: FileFormat,
    pass: &mut Pass1,
) -> anyhow::Result<()> {
    let reader = AccountReader::open(job.input, &settings.schema)?;
    pass.header = reader.header().to_vec();
    pass.summary.ignored_columns = reader.ignored_columns().to_vec();

    // Parsing runs on its own thread; the bounded channel keeps at most a few batches in flight.
    // Used batches go back to the parser, which reads the next rows into the same records.
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
    let mut writer = RowWriter::new(settings, job, previous, format);
    let mut rows = Rows::default();
    for batch in rx {
        let mut batch = batch?;
        if let Some(enricher) = &mut job.enrich {
            enricher.enrich(&settings.schema, &mut batch.accounts[..batch.filled]);
        }
        rows.clear();
        for acc in &batch.accounts[..batch.filled] {
            writer.write(acc, (0, 0), &mut rows);
        }
        // A batch's rejects follow its accounts, as they always have.
        rows.items.extend(batch.rejected.drain(..).map(Item::Rejected));
        pass.take(&rows, None)?;
        let _ = used_tx.try_send(batch);
    }
    drop(used_tx);
    pass.summary.enrichment = job.enrich.take().map(Enricher::finish);
    if parser.join().is_err() {
        bail!("the reader of {} stopped unexpectedly", job.input.display());
    }
    Ok(())
}

/// A row pass 2 fills in: where it is in the spill, and what the caps need to place it.
struct Movable {
    key: u64,
    at: u64,
    len: u32,
    tier_at: u32,
    cap_at: u32,
    score: f32,
    potential_value: f64,
    coverage: f32,
    tier: Tier,
    previous: Option<Tier>,
    id: String,
}

/// The fixed-size head of a [`Movable`] record, up to its id's length.
const MOVABLE_HEAD: usize = 46;

impl Movable {
    fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(&self.key.to_le_bytes())?;
        out.write_all(&self.at.to_le_bytes())?;
        out.write_all(&self.len.to_le_bytes())?;
        out.write_all(&self.tier_at.to_le_bytes())?;
        out.write_all(&self.cap_at.to_le_bytes())?;
        out.write_all(&self.score.to_le_bytes())?;
        out.write_all(&self.potential_value.to_le_bytes())?;
        out.write_all(&self.coverage.to_le_bytes())?;
        out.write_all(&[tier_code(Some(self.tier)), tier_code(self.previous)])?;
        out.write_all(&(self.id.len() as u32).to_le_bytes())?;
        out.write_all(self.id.as_bytes())
    }

    /// Reads the next one into `self`; `false` at the end.
    fn read_from(&mut self, input: &mut impl Read) -> std::io::Result<bool> {
        let mut head = [0u8; MOVABLE_HEAD];
        match input.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e),
        }
        let u32_at = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&head[i..i + 8]);
            u64::from_le_bytes(b)
        };
        self.key = u64_at(0);
        self.at = u64_at(8);
        self.len = u32_at(16);
        self.tier_at = u32_at(20);
        self.cap_at = u32_at(24);
        self.score = f32::from_bits(u32_at(28));
        self.potential_value = f64::from_bits(u64_at(32));
        self.coverage = f32::from_bits(u32_at(40));
        self.tier = tier_of(head[44]).unwrap_or(Tier::Untiered);
        self.previous = tier_of(head[45]);
        let mut len = [0u8; 4];
        input.read_exact(&mut len)?;
        let mut id = std::mem::take(&mut self.id).into_bytes();
        id.resize(u32::from_le_bytes(len) as usize, 0);
        input.read_exact(&mut id)?;
        self.id = String::from_utf8(id).map_err(std::io::Error::other)?;
        Ok(true)
    }

    /// The bytes [`Movable::write_to`] writes: the head, the id's length (4) and the id.
    fn encoded_len(&self) -> u64 {
        (MOVABLE_HEAD + 4 + self.id.len()) as u64
    }

    fn empty() -> Movable {
        Movable {
            key: 0,
            at: 0,
            len: 0,
            tier_at: 0,
            cap_at: 0,
            score: 0.0,
            potential_value: 0.0,
            coverage: 0.0,
            tier: Tier::Untiered,
            previous: None,
            id: String::new(),
        }
    }
}

fn tier_code(t: Option<Tier>) -> u8 {
    t.map_or(u8::MAX, |t| t as u8)
}

fn tier_of(code: u8) -> Option<Tier> {
    Tier::ALL.get(usize::from(code)).copied()
}

/// How pass 1 checks a CSV file's ids for repeats, in input order.
trait IdCheck {
    /// Takes the id of the account on `line` (`hash` is its [`IdHashes::hash`]): the line the
    /// id was first seen on when the account is to be rejected as a repeat.
    fn check(&mut self, id: &str, hash: u64, line: u64) -> anyhow::Result<Option<u64>>;
}

/// Bits of an id's hash that choose its partition in [`IdHashes`].
const HASH_PART_BITS: u32 = 6;
/// Bytes of hashes a partition of [`IdHashes`] holds before writing them to its file (32 KiB,
/// 2 MiB for all of them).
const HASH_BUFFER: usize = 32 << 10;

/// The first run's check: it rejects nothing and keeps the hash of every id, on disk (8 bytes
/// an account), in `2^HASH_PART_BITS` partitions by the hash's top bits, so that the hashes
/// that occur more than once can be found a partition at a time ([`IdHashes::repeated`]).
struct IdHashes {
    /// Per partition: the hashes not yet written (little-endian), and its file once it has one.
    parts: Vec<(Vec<u8>, Option<File>)>,
}

impl IdHashes {
    fn new() -> IdHashes {
        IdHashes {
            parts: (0..1 << HASH_PART_BITS).map(|_| (Vec::new(), None)).collect(),
        }
    }

    /// The hash kept for `id`, worked out where the id is read: [`IdSet::hash`], whose quality
    /// matters here, as a collision costs a second read of the file (a test checks numbered ids
    /// do not collide).
    fn hash(id: &str) -> u64 {
        IdSet::hash(id)
    }

    /// The hashes taken more than once, each once, in order.
    fn repeated(self) -> anyhow::Result<Vec<u64>> {
        // A partition holds the hashes of one range, the next partition the next one's: the
        // repeats come out in order. The partitions are shared out in runs, one per core.
        let per_core = self.parts.len().div_ceil(cores());
        std::thread::scope(|scope| {
            let runs: Vec<_> = self
                .parts
                .chunks(per_core)
                .map(|run| scope.spawn(move || repeated_in(run)))
                .collect();
            let mut repeated = Vec::new();
            for run in runs {
                match run.join() {
                    Ok(r) => repeated.extend(r?),
                    Err(_) => bail!("a check of the ids stopped unexpectedly"),
                }
            }
            Ok(repeated)
        })
    }
}

/// The hashes that occur more than once in the partitions `parts` ([`IdHashes`]), in order.
fn repeated_in(parts: &[(Vec<u8>, Option<File>)]) -> anyhow::Result<Vec<u64>> {
    let mut repeated = Vec::new();
    let mut bytes = Vec::new();
    let mut table = Vec::new();
    for (buffer, file) in parts {
        bytes.clear();
        if let Some(file) = file {
            At { file, pos: 0 }
                .read_to_end(&mut bytes)
                .context("cannot read the spill file")?;
        }
        bytes.extend_from_slice(buffer);
        let start = repeated.len();
        repeats_into(
            bytes
                .chunks_exact(8)
                .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default())),
            bytes.len() / 8,
            &mut table,
            &mut repeated,
        );
        // A partition's repeats are few: sorted here, they follow the last partition's.
        repeated[start..].sort_unstable();
    }
    repeated.dedup();
    Ok(repeated)
}

/// Appends to `out` every one of the `n` `hashes` already seen among them (a hash taken three
/// times twice), through `table`, an open-addressing set with room for twice as many: one probe
/// or two a hash, where sorting them took a dozen comparisons each.
fn repeats_into(hashes: impl Iterator<Item = u64>, n: usize, table: &mut Vec<u64>, out: &mut Vec<u64>) {
    let slots = (2 * n).next_power_of_two().max(2);
    let bits = slots.trailing_zeros();
    table.clear();
    table.resize(slots, 0);
    // 0 marks an empty slot: the hash 0 is counted apart.
    let mut zeros = 0;
    for h in hashes {
        if h == 0 {
            if zeros > 0 {
                out.push(0);
            }
            zeros += 1;
            continue;
        }
        // Mixed again before it picks a slot: the partition's hashes share their top bits.
        let mut i = (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize;
        loop {
            match table[i] {
                0 => {
                    table[i] = h;
                    break;
                }
                seen if seen == h => {
                    out.push(h);
                    break;
                }
                _ => i = (i + 1) & (slots - 1),
            }
        }
    }
}

impl IdCheck for IdHashes {
    fn check(&mut self, _id: &str, hash: u64, _line: u64) -> anyhow::Result<Option<u64>> {
        let (buffer, file) = &mut self.parts[(hash >> (64 - HASH_PART_BITS)) as usize];
        buffer.extend_from_slice(&hash.to_le_bytes());
        if buffer.len() >= HASH_BUFFER {
            let file = match file {
                Some(f) => f,
                None => file.insert(tempfile::tempfile().context("cannot create a temporary spill file")?),
            };
            file.write_all(buffer).context("cannot write the spill file")?;
            buffer.clear();
        }
        Ok(None)
    }
}

/// The second run's check, when the first found hashes that occur more than once: the ids with
/// such a hash are kept, exactly (an [`IdSet`] compares their texts, so distinct ids whose
/// hashes collide are both let through), the others let through unchecked.
struct Suspects {
    /// The repeated hashes, in order.
    hashes: Vec<u64>,
    /// The ids with one of them seen so far, with the line each was first seen on.
    seen: IdSet,
}

impl Suspects {
    /// `hashes` in order ([`IdHashes::repeated`]).
    fn new(hashes: Vec<u64>) -> Suspects {
        Suspects {
            hashes,
            seen: IdSet::default(),
        }
    }
}

impl IdCheck for Suspects {
    fn check(&mut self, id: &str, hash: u64, line: u64) -> anyhow::Result<Option<u64>> {
        if self.hashes.binary_search(&hash).is_err() {
            return Ok(None);
        }
        Ok(self.seen.insert(id, line))
    }
}

/// Pass 1's state on this thread: the spills, the tally and the summary so far.
struct Pass1 {
    spill: BufWriter<File>,
    spilled: u64,
    movable: BufWriter<File>,
    tally: CapTally,
    rejects: Option<RejectWriter>,
    header: Vec<String>,
    summary: ScoreSummary,
    movements: Option<Movements>,
    matched_previous: usize,
    previous_len: Option<usize>,
    rejects_path: PathBuf,
    record: Movable,
}

impl Pass1 {
    fn new(job: &ScoreJob<'_>, previous: Option<&HashMap<String, Tier>>) -> anyhow::Result<Pass1> {
        let spill = tempfile::tempfile().context("cannot create a temporary spill file")?;
        let movable = tempfile::tempfile().context("cannot create a temporary spill file")?;
        Ok(Pass1 {
            spill: BufWriter::with_capacity(1 << 20, spill),
            spilled: 0,
            movable: BufWriter::with_capacity(1 << 16, movable),
            tally: CapTally::default(),
            rejects: None,
            header: Vec::new(),
            summary: ScoreSummary::default(),
            movements: previous.map(|_| Movements::default()),
            matched_previous: 0,
            previous_len: previous.map(HashMap::len),
            rejects_path: job.rejects.clone(),
            record: Movable::empty(),
        })
    }

    /// Takes a chunk's (or batch's) rows and rejects in input order; `check` holds the file's
    /// layout and the check of its ids when they are yet to be checked for repeats (they are
    /// when read by a chunk worker).
    fn take(
        &mut self,
        rows: &Rows,
        mut check: Option<(&CsvLayout, &mut RecordSplitter, &mut dyn IdCheck)>,
    ) -> anyhow::Result<()> {
        let mut events = rows.events.iter().peekable();
        // Rows go to the spill in runs: a chunk's rows lie one after another in `rows.out`,
        // and one write of a run (past the writer's buffer, straight to the file) saves a copy
        // of every row. A repeated id ends a run, as its row is left out.
        let mut run = (0, 0);
        for (i, item) in rows.items.iter().enumerate() {
            let meta = match item {
                Item::Rejected(r) => {
                    self.reject(r)?;
                    continue;
                }
                Item::Row(meta) => meta,
            };
            let id = &rows.ids[meta.id.0..meta.id.1];
            if let Some((layout, split, ids)) = &mut check {
                if let Some(first) = ids.check(id, meta.id_hash, meta.line)? {
                    let bytes = &rows.chunk.bytes;
                    split.split_again(bytes, meta.record, meta.line);
                    let r = layout.duplicate(split, bytes, meta.line, id, first);
                    self.reject(&r)?;
                    while events.next_if(|(at, _)| *at == i).is_some() {}
                    self.spill
                        .write_all(&rows.out[run.0..run.1])
                        .context("cannot write the spill file")?;
                    run = (meta.row.1, meta.row.1);
                    continue;
                }
            }
            self.summary.future_events += u64::from(meta.future_events);
            while let Some((_, event)) = events.next_if(|(at, _)| *at == i) {
                if self.summary.first_future_events.len() < KEEP_REJECTS {
                    self.summary
                        .first_future_events
                        .push((meta.line, id.to_string(), event.clone()));
                }
            }
            let key = self.tally.len() as u64;
            let d = &meta.before.decision;
            self.summary.held += usize::from(d.held_by_hysteresis);
            self.summary.lifted += usize::from(d.lifted_by.is_some());
            self.summary.insufficient_data += usize::from(d.insufficient_data.is_some());
            self.summary.locked += usize::from(d.locked);
            self.matched_previous += usize::from(meta.previous.is_some());
            let row = &rows.out[meta.row.0..meta.row.1];
            if self.tally.add(&meta.before, meta.score) {
                let r = &mut self.record;
                r.key = key;
                r.at = self.spilled;
                r.len = row.len() as u32;
                r.tier_at = meta.tier_at;
                r.cap_at = meta.cap_at;
                r.score = meta.score;
                r.potential_value = meta.potential_value;
                r.coverage = meta.coverage;
                r.tier = meta.before.tier;
                r.previous = meta.previous;
                r.id.clear();
                r.id.push_str(id);
                r.write_to(&mut self.movable)
                    .context("cannot write the spill file")?;
            } else {
                self.summary.pyramid[meta.before.tier as usize] += 1;
                if let Some(m) = &mut self.movements {
                    m.record(meta.previous, meta.before.tier);
                }
            }
            if run.1 != meta.row.0 {
                self.spill
                    .write_all(&rows.out[run.0..run.1])
                    .context("cannot write the spill file")?;
                run.0 = meta.row.0;
            }
            run.1 = meta.row.1;
            self.spilled += row.len() as u64;
        }
        self.spill
            .write_all(&rows.out[run.0..run.1])
            .context("cannot write the spill file")?;
        Ok(())
    }

    fn reject(&mut self, r: &Rejected) -> anyhow::Result<()> {
        let writer = match &mut self.rejects {
            Some(w) => w,
            None => self
                .rejects
                .insert(RejectWriter::create(&self.rejects_path, &self.header)?),
        };
        writer.write(r)?;
        self.summary.rejected += 1;
        if self.summary.first_rejects.len() < KEEP_REJECTS {
            self.summary.first_rejects.push(r.clone());
        }
        Ok(())
    }

    /// Places the rows the caps decide and writes the output (pass 2).
    fn finish(
        mut self,
        settings: &Settings,
        job: &ScoreJob<'_>,
        format: FileFormat,
    ) -> anyhow::Result<ScoreSummary> {
        if let Some(w) = self.rejects.take() {
            w.finish()?;
            self.summary.rejects_path = Some(job.rejects.clone());
        }
        let policy: &TierPolicy = &settings.policy;
        let mut cut = self.tally.cut(policy);
        let mut movable = self
            .movable
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot flush the spill file: {}", e.error()))?;
        // The accounts on a cap's line, ranked in full.
        movable.seek(SeekFrom::Start(0))?;
        let mut input = BufReader::with_capacity(1 << 16, &mut movable);
        let mut r = Movable::empty();
        let mut on_line = Vec::new();
        while r.read_from(&mut input).context("cannot read the spill file")? {
            if cut.on_the_line(r.tier, r.score) {
                on_line.push(OnTheLine {
                    member: TierMember {
                        id: r.id.as_str().into(),
                        score: r.score,
                        potential_value: r.potential_value,
                        coverage: r.coverage,
                        basis: TierBasis {
                            base: r.tier,
                            held_by_hysteresis: false,
                            locked: false,
                            engagement: None,
                        },
                    },
                    tier: r.tier,
                    key: r.key,
                });
            }
        }
        drop(input);
        cut.settle(on_line);
        let mut summary = self.summary;
        summary.accounts = self.tally.len();
        let mut movements = self.movements;
        pass2(
            self.spill,
            &mut movable,
            &cut,
            job.output,
            format,
            &mut summary,
            &mut movements,
        )?;
        if let (Some(m), Some(n)) = (&mut movements, self.previous_len) {
            m.gone = n - self.matched_previous;
        }
        summary.movements = movements;
        Ok(summary)
    }
}

/// Copies the next `n` bytes of the spill to the output.
fn copy_spill(spill: &mut impl BufRead, out: &mut impl Write, n: u64, output: &Path) -> anyhow::Result<()> {
    let mut left = n;
    while left > 0 {
        let buf = spill.fill_buf().context("cannot read the spill file")?;
        if buf.is_empty() {
            bail!("the spill file ended early");
        }
        let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        out.write_all(&buf[..take]).map_err(|source| FileError::Io {
            path: output.to_path_buf(),
            source,
        })?;
        spill.consume(take);
        left -= take as u64;
    }
    Ok(())
}

/// A file read or written at a position of its own, so that threads can share one open file.
struct At<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.pos)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for At<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::write_at(self.file, buf, self.pos)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_write(self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where a part of pass 2 starts: its first record in the movable spill, its first byte in the
/// row spill and where that byte goes in the output.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PartStart {
    movable_at: u64,
    spill_at: u64,
    out_at: u64,
}

/// Pass 2: the spill copied to the output, with the rows the caps decide filled in. The rows the
/// caps move are placed first, in one read of their (small) spill, which gives the summary's
/// counts and where each of `parts` threads starts: each then copies its share of the spill to
/// its own place in the output (copying is most of pass 2, and one thread copies at the speed
/// of one core).
fn pass2(
    spill: BufWriter<File>,
    movable: &mut File,
    cut: &CapCut,
    output: &Path,
    format: FileFormat,
    summary: &mut ScoreSummary,
    movements: &mut Option<Movements>,
) -> anyhow::Result<()> {
    let spill = spill
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot flush the spill file: {}", e.error()))?;
    let spilled = spill.metadata().context("cannot read the spill file")?.len();
    let movable_len = movable.seek(SeekFrom::End(0))?;
    movable.seek(SeekFrom::Start(0))?;
    FileFormat::from_path(output)?;
    let io_err = |source| FileError::Io {
        path: output.to_path_buf(),
        source,
    };
    let mut header = Vec::new();
    if format == FileFormat::Csv {
        header.extend_from_slice(TIER_COLUMNS.join(",").as_bytes());
        header.push(b'\n');
    }
    let parts = cores() as u64;
    let head = header.len() as u64;
    let starts = place_movable(
        &mut BufReader::with_capacity(1 << 16, &mut *movable),
        spilled,
        parts,
        head,
        cut,
        summary,
        movements,
    )?;
    let (out, previous) = create_output(output).map_err(io_err)?;
    At { file: &out, pos: 0 }.write_all(&header).map_err(io_err)?;
    let (spill, movable, out) = (&spill, &*movable, &out);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        // The previous file's blocks are freed (its last handle closed) beside the copies.
        if let Some(previous) = previous {
            scope.spawn(move || drop(previous));
        }
        let copies: Vec<_> = starts
            .iter()
            .enumerate()
            .map(|(i, &start)| {
                let end = starts
                    .get(i + 1)
                    .map_or((movable_len, spilled), |e| (e.movable_at, e.spill_at));
                scope.spawn(move || copy_part(spill, movable, out, start, end, cut, output))
            })
            .collect();
        for copy in copies {
            match copy.join() {
                Ok(r) => r?,
                Err(_) => bail!("a writer of {} stopped unexpectedly", output.display()),
            }
        }
        Ok(())
    })
}

/// Creates the output for pass 2, as [`File::create`] does, but a previous file there is not
/// truncated in place: its name is removed while a handle keeps it open, and a new file (with
/// its permissions) takes the name. The handle is returned, for its last close, which frees the
/// old file's blocks, to happen while pass 2 copies. On ext4 a truncated file that is written
/// again is flushed to disk when closed (`auto_da_alloc`): at 193 MB, the truncation took 35 ms
/// and that close 28 ms, one after the other on pass 2's path. A symlink, a file with other
/// hard links, or a name that cannot be removed is truncated in place, as before: what the name
/// points to or shares is written, not replaced.
fn create_output(output: &Path) -> std::io::Result<(File, Option<File>)> {
    #[cfg(unix)]
    let sole_name = |m: &std::fs::Metadata| std::os::unix::fs::MetadataExt::nlink(m) == 1;
    #[cfg(not(unix))]
    let sole_name = |_: &std::fs::Metadata| false;
    let replaceable = std::fs::symlink_metadata(output)
        .ok()
        .filter(|m| m.file_type().is_file() && sole_name(m));
    if let Some(meta) = replaceable {
        if let Ok(previous) = File::open(output) {
            if std::fs::remove_file(output).is_ok() {
                let out = File::create(output)?;
                out.set_permissions(meta.permissions())?;
                return Ok((out, Some(previous)));
            }
        }
    }
    Ok((File::create(output)?, None))
}

/// Reads the movable spill once: places each row the caps may move (counting it in the summary)
/// and returns where each of `parts` parts of pass 2 starts. A part begins at a movable row's
/// start (its row goes whole to one part), or anywhere after the last of them.
fn place_movable(
    keys: &mut impl Read,
    spilled: u64,
    parts: u64,
    head: u64,
    cut: &CapCut,
    summary: &mut ScoreSummary,
    movements: &mut Option<Movements>,
) -> anyhow::Result<Vec<PartStart>> {
    let mut starts = vec![PartStart {
        movable_at: 0,
        spill_at: 0,
        out_at: head,
    }];
    let threshold = |k: usize| spilled * k as u64 / parts;
    let (mut movable_at, mut inserted, mut rows_end) = (0u64, 0u64, 0u64);
    let mut r = Movable::empty();
    while r.read_from(keys).context("cannot read the spill file")? {
        rows_end = r.at + u64::from(r.len);
        while (starts.len() as u64) < parts && r.at >= threshold(starts.len()) {
            starts.push(PartStart {
                movable_at,
                spill_at: r.at,
                out_at: head + r.at + inserted,
            });
        }
        let (tier, capped_from) = cut.place(r.tier, r.score, r.key);
        summary.pyramid[tier as usize] += 1;
        if let Some(m) = movements {
            m.record(r.previous, tier);
        }
        if let Some(from) = capped_from {
            summary.capped += 1;
            inserted += TierPolicy::cap_words(from).len() as u64;
        }
        movable_at += r.encoded_len();
    }
    while (starts.len() as u64) < parts {
        let at = threshold(starts.len()).max(rows_end);
        starts.push(PartStart {
            movable_at,
            spill_at: at,
            out_at: head + at + inserted,
        });
    }
    Ok(starts)
}

/// One part of pass 2: the spill from `start` to `end` (movable spill position, row spill
/// position) copied to the output from `start.out_at`, the movable rows in it placed.
fn copy_part(
    spill: &File,
    movable: &File,
    out: &File,
    start: PartStart,
    end: (u64, u64),
    cut: &CapCut,
    output: &Path,
) -> anyhow::Result<()> {
    let io_err = |source| FileError::Io {
        path: output.to_path_buf(),
        source,
    };
    let mut keys = BufReader::with_capacity(
        1 << 16,
        At {
            file: movable,
            pos: start.movable_at,
        },
    );
    let mut rows = BufReader::with_capacity(
        1 << 20,
        At {
            file: spill,
            pos: start.spill_at,
        },
    );
    let mut out = BufWriter::with_capacity(
        1 << 20,
        At {
            file: out,
            pos: start.out_at,
        },
    );
    // The spill is read through one buffer and copied out in slices (one `io::copy` per row
    // would ask the kernel about both files each time).
    let (mut movable_at, mut at) = (start.movable_at, start.spill_at);
    let mut row = Vec::new();
    let mut r = Movable::empty();
    while movable_at < end.0 && r.read_from(&mut keys).context("cannot read the spill file")? {
        movable_at += r.encoded_len();
        copy_spill(&mut rows, &mut out, r.at - at, output)?;
        row.clear();
        (&mut rows)
            .take(u64::from(r.len))
            .read_to_end(&mut row)
            .context("cannot read the spill file")?;
        if row.len() != r.len as usize {
            bail!("the spill file ended early");
        }
        at = r.at + u64::from(r.len);
        let (tier, capped_from) = cut.place(r.tier, r.score, r.key);
        // Tier 1, 2 and 3 are written with as many letters.
        let t = r.tier_at as usize;
        row[t..t + 6].copy_from_slice(tier.as_str().as_bytes());
        match capped_from {
            None => out.write_all(&row).map_err(io_err)?,
            Some(from) => {
                let c = r.cap_at as usize;
                out.write_all(&row[..c]).map_err(io_err)?;
                out.write_all(TierPolicy::cap_words(from).as_bytes())
                    .map_err(io_err)?;
                out.write_all(&row[c..]).map_err(io_err)?;
            }
        }
    }
    copy_spill(&mut rows, &mut out, end.1 - at, output)?;
    out.flush().map_err(io_err)?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A field is written as the `csv` crate writes it, short (an id) or long (an explanation),
    /// with a delimiter, a quote or a line break at any place, or none.
    #[test]
    fn fields_are_quoted_as_the_csv_crate_quotes_them() {
        let alphabet = [b'a', b'a', b'a', b' ', b';', b',', b'"', b'\n', b'\r'];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 1..80 {
            for _ in 0..50 {
                let field: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        // Mostly plain text, so a special byte is often alone and late.
                        if state % 16 == 0 {
                            alphabet[(state >> 8) as usize % alphabet.len()]
                        } else {
                            b'a'
                        }
                    })
                    .collect();
                let mut want = csv::Writer::from_writer(Vec::new());
                want.write_record([field.as_slice(), b"x"]).expect("write");
                let want = want.into_inner().expect("flush");
                let mut got = Vec::new();
                push_csv_field(&mut got, &field);
                got.extend_from_slice(b",x\n");
                assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&field));
            }
        }
    }

    /// A previous output is replaced, not truncated: the new file has its name and permissions,
    /// and the old one stays whole for the handle that closes it. A symlink is written through
    /// and a file with another hard link is written in place, as `File::create` does.
    #[cfg(unix)]
    #[test]
    fn the_output_replaces_a_previous_file_and_writes_through_links() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("temp dir");
        let read = |p: &Path| std::fs::read_to_string(p).expect("read");

        let out = dir.path().join("tiers.csv");
        std::fs::write(&out, "old rows\n").expect("write");
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let (mut file, previous) = create_output(&out).expect("create");
        file.write_all(b"new\n").expect("write");
        drop(file);
        let mut old = String::new();
        previous
            .expect("the previous file's handle")
            .read_to_string(&mut old)
            .expect("read the previous file");
        assert_eq!(old, "old rows\n", "the previous file is not truncated");
        assert_eq!(read(&out), "new\n");
        let mode = std::fs::metadata(&out).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o640, "the previous file's permissions");

        let fresh = dir.path().join("fresh.csv");
        let (_, previous) = create_output(&fresh).expect("create");
        assert!(previous.is_none() && fresh.exists());

        let target = dir.path().join("target.csv");
        let link = dir.path().join("link.csv");
        std::fs::write(&target, "old rows\n").expect("write");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let (mut file, previous) = create_output(&link).expect("create");
        file.write_all(b"new\n").expect("write");
        assert!(previous.is_none());
        assert!(std::fs::symlink_metadata(&link)
            .expect("link")
            .file_type()
            .is_symlink());
        assert_eq!(read(&target), "new\n", "written through the symlink");

        let other = dir.path().join("other-name.csv");
        std::fs::hard_link(&out, &other).expect("hard link");
        let (mut file, previous) = create_output(&out).expect("create");
        file.write_all(b"third\n").expect("write");
        assert!(previous.is_none());
        assert_eq!(
            read(&other),
            "third\n",
            "both names share the file written in place"
        );
    }

    #[test]
    fn id_hashes_finds_the_hashes_taken_more_than_once_across_partitions_and_their_files() {
        // Enough hashes that every partition writes to its file, the last few still buffered.
        let n: u64 = 300_000;
        let spread = |i: u64| IdHashes::hash(&format!("acc-{i}"));
        let mut hashes = IdHashes::new();
        let mut want = Vec::new();
        for i in 0..n {
            assert_eq!(hashes.check("", spread(i), i).expect("spilled"), None);
        }
        // Taken again: once, twice, and one at the very end (still in its buffer).
        for i in [7, 150_000, 150_000, n - 1] {
            hashes.check("", spread(i), 0).expect("spilled");
            want.push(spread(i));
        }
        assert!(hashes.parts.iter().all(|(_, file)| file.is_some()));
        want.sort_unstable();
        want.dedup();
        assert_eq!(hashes.repeated().expect("read back"), want);
    }

    /// The movable spill of rows at these (start, length) in the row spill.
    fn movable_spill(rows: &[(u64, u32)]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for (i, &(at, len)) in rows.iter().enumerate() {
            let mut r = Movable::empty();
            r.key = i as u64;
            r.at = at;
            r.len = len;
            r.tier = Tier::Tier1;
            r.id = format!("id-{i}");
            r.write_to(&mut bytes).expect("written");
        }
        bytes
    }

    fn starts(rows: &[(u64, u32)], spilled: u64, parts: u64) -> Vec<(u64, u64, u64)> {
        let bytes = movable_spill(rows);
        let mut summary = ScoreSummary::default();
        let found = place_movable(
            &mut &bytes[..],
            spilled,
            parts,
            10,
            &CapCut::default(),
            &mut summary,
            &mut None,
        )
        .expect("placed");
        assert_eq!(
            summary.pyramid[0],
            rows.len(),
            "every movable row is counted once"
        );
        found
            .iter()
            .map(|p| (p.movable_at, p.spill_at, p.out_at))
            .collect()
    }

    #[test]
    fn pass_two_parts_start_at_a_movable_row_or_after_the_last() {
        // A movable record is 50 bytes and its id ("id-0": 4).
        assert_eq!(
            starts(&[(0, 100), (300, 100), (600, 100)], 1000, 2),
            vec![(0, 0, 10), (108, 600, 610)],
            "the first row at or past half the spill starts the second part"
        );
        // Past the last movable row any byte will do, but not one inside that row: the row
        // from 450 to 550 crosses the half at 500 and stays whole in the first part.
        assert_eq!(
            starts(&[(0, 100), (450, 100)], 1000, 2),
            vec![(0, 0, 10), (108, 550, 560)]
        );
        assert_eq!(
            starts(&[], 1000, 4),
            vec![(0, 0, 10), (0, 250, 260), (0, 500, 510), (0, 750, 760)]
        );
        // The one row past three quarters starts the last three parts; two of them are empty.
        assert_eq!(
            starts(&[(0, 10), (800, 100)], 1000, 4),
            vec![(0, 0, 10), (54, 800, 810), (54, 800, 810), (54, 800, 810)]
        );
    }

    #[test]
    fn numbered_ids_do_not_collide() {
        // `tierd gen`'s ids, whose first million have 28,000 fewer distinct `IdSet::hash`es than
        // ids: a collision here would read every such file twice.
        let mut hashes: Vec<u64> = (1..=1_000_000)
            .map(|i| IdHashes::hash(&format!("acc-{i:08}")))
            .collect();
        hashes.sort_unstable();
        assert!(hashes.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn id_hashes_without_repeats_finds_none() {
        let mut hashes = IdHashes::new();
        for i in 0..1000 {
            hashes
                .check("", IdHashes::hash(&format!("acc-{i}")), i)
                .expect("kept");
        }
        assert_eq!(hashes.repeated().expect("read back"), Vec::<u64>::new());
    }

    /// Repeats are found in every partition, whether it stayed in memory or went to its file
    /// (300k hashes: each partition spills), and come out once each, in order, however the
    /// partitions are shared among the cores.
    #[test]
    fn id_hashes_finds_each_repeat_once_in_order() {
        let mut hashes = IdHashes::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut taken = Vec::new();
        for i in 0..300_000u64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            taken.push(state);
            hashes.check("", state, i).expect("kept");
        }
        // Every 997th hash again, and the first one twice more.
        let again: Vec<u64> = taken.iter().step_by(997).copied().collect();
        for (i, &h) in again.iter().chain([taken[0], taken[0]].iter()).enumerate() {
            hashes.check("", h, 300_000 + i as u64).expect("kept");
        }
        let mut want = again.clone();
        want.sort_unstable();
        assert_eq!(want.len(), 301);
        assert_eq!(hashes.repeated().expect("read back"), want);
    }

    /// The set that finds a partition's repeats: hashes that all pick one slot, the hash 0
    /// (which marks an empty slot), a hash taken three times, and a table probed to its end.
    #[test]
    fn repeats_are_found_among_hashes_that_pick_one_slot_and_the_hash_zero() {
        // The slot is chosen by the top bits of the hash times an odd constant: hashes that are
        // small numbers times its inverse all pick slot 0.
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut inverse = K;
        for _ in 0..6 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(K.wrapping_mul(inverse)));
        }
        assert_eq!(K.wrapping_mul(inverse), 1);
        let slot0 = |j: u64| j.wrapping_mul(inverse);
        let mut hashes: Vec<u64> = (1..=7).map(slot0).collect();
        hashes.extend([0, slot0(5), 0, 0, slot0(1), 42, slot0(5), slot0(7), 42]);
        let mut table = Vec::new();
        let mut out = Vec::new();
        repeats_into(hashes.iter().copied(), hashes.len(), &mut table, &mut out);
        // In the order their repeat was met.
        assert_eq!(out, [slot0(5), 0, 0, slot0(1), slot0(5), slot0(7), 42]);
        // The last slots taken first: probing wraps round to the start.
        let mut out = Vec::new();
        let last = |j: u64| (u64::MAX - j).wrapping_mul(inverse);
        let full: Vec<u64> = [last(0), last(1), last(2), 9].repeat(2);
        repeats_into(full.iter().copied(), 4, &mut table, &mut out);
        assert_eq!(out, [last(0), last(1), last(2), 9]);
    }

    #[test]
    fn suspects_are_checked_by_their_text_the_others_let_through() {
        // "x" and "y" share a hash (as two distinct ids whose hashes collide would).
        let shared = IdHashes::hash("x");
        let mut suspects = Suspects::new(vec![shared]);
        let mut check = |id: &str, hash: u64, line: u64| suspects.check(id, hash, line).expect("checked");
        assert_eq!(check("x", shared, 2), None);
        assert_eq!(check("y", shared, 3), None, "a collision is not a repeat");
        assert_eq!(check("z", IdHashes::hash("z"), 4), None);
        assert_eq!(
            check("z", IdHashes::hash("z"), 5),
            None,
            "not a suspect: not kept"
        );
        assert_eq!(check("y", shared, 6), Some(3));
        assert_eq!(check("x", shared, 7), Some(2));
        assert_eq!(check("x", shared, 8), Some(2));
    }
}
