//! Account files in (CSV or JSONL), tier files out.
//!
//! Input: one account per row or line, an `id`, optional `name`, `domain` and
//! `locked_tier`, and facts named `namespace.fact` (lists `;`-separated in CSV,
//! arrays in JSONL; dates ISO-8601). Values are parsed into the types the model
//! reads ([`FactSchema`]); a row that does not parse, lacks an id or repeats one
//! is rejected with its line number and reason, and kept whole in a rejects file,
//! so nothing is lost. Output: `id,score,tier,coverage,model_version,explanation`.
//!
//! [`AccountReader`] streams either format record by record. [`CsvChunks`] cuts a CSV file
//! into chunks of whole records that several threads parse at once ([`RecordSplitter`],
//! [`CsvLayout`]) with the same fields, lines and reject reasons; the caller checks ids across
//! chunks in input order ([`IdSet`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use tierd_core::decimal::push_fixed;
use tierd_core::fact::{FactType, FactValue, Spares};
use tierd_core::model::{FactRow, FactSchema, FactSlot};
use tierd_core::tier::Tier;

/// The format of an account or tier file, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

impl FileFormat {
    /// `.csv` or `.jsonl`/`.ndjson`.
    pub fn from_path(path: &Path) -> Result<FileFormat, FileError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Ok(FileFormat::Csv),
            Some("jsonl" | "ndjson") => Ok(FileFormat::Jsonl),
            _ => Err(FileError::Format {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// A problem that stops reading or writing a whole file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The extension names no known format.
    #[error("{}: unknown format (use a .csv or .jsonl file)", path.display())]
    Format {
        /// The file.
        path: PathBuf,
    },
    /// The header cannot be used.
    #[error("{}: {message}", path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn csv_err(path: &Path) -> impl FnOnce(csv::Error) -> FileError + '_ {
    move |e| FileError::Io {
        path: path.to_path_buf(),
        source: io::Error::other(e.to_string()),
    }
}

/// One account read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRecord {
    /// Line where the record starts (1-based, the header is line 1 in CSV).
    pub line: u64,
    /// The account id.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Web domain.
    pub domain: Option<String>,
    /// A tier set by a person, kept as it is.
    pub lock: Option<Tier>,
    /// Facts laid out by the schema the reader was opened with.
    pub facts: FactRow,
    /// Room the facts' cells no longer need, kept for the next record read into this one.
    spares: Spares,
}

/// The original text of a rejected record, to be written to the rejects file as it was.
#[derive(Debug, Clone, PartialEq)]
pub enum RawRecord {
    /// CSV fields.
    Csv(Vec<String>),
    /// A JSONL line.
    Jsonl(String),
}

/// A record that could not be used, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Line where the record starts.
    pub line: u64,
    /// Its id, when it had one.
    pub id: Option<String>,
    /// Why, naming the field: `firmographic.employee_count: '12k' is not a number`.
    pub reason: String,
    /// The record as it was.
    pub raw: RawRecord,
}

/// What [`AccountReader::read_into`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// The record it was given now holds an account.
    Account,
    /// A bad record (the record it was given holds nothing useful).
    Rejected(Rejected),
    /// The end of the file.
    End,
}

impl AccountRecord {
    /// An empty record with room for the facts of `schema`, to be filled by
    /// [`AccountReader::read_into`] again and again.
    pub fn empty(schema: &FactSchema) -> AccountRecord {
        AccountRecord {
            line: 0,
            id: String::new(),
            name: None,
            domain: None,
            lock: None,
            facts: schema.empty_row(),
            spares: Spares::default(),
        }
    }
}

/// What reading one record gave.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadItem {
    /// A usable account.
    Account(AccountRecord),
    /// A bad record.
    Rejected(Rejected),
}

#[derive(Debug, Clone, Copy)]
enum Column {
    Id,
    Name,
    Domain,
    Lock,
    Fact(FactSlot, FactType),
    Ignored,
}

/// Columns with these names are tierd's own (rejects files add them) and are read silently.
const REJECT_COLUMNS: [&str; 2] = ["reject_line", "reject_reason"];

enum Source {
    Csv {
        reader: csv::Reader<Box<dyn io::Read + Send>>,
        columns: Vec<Column>,
        record: csv::ByteRecord,
    },
    Jsonl {
        lines: io::Lines<BufReader<Box<dyn io::Read + Send>>>,
        line: u64,
    },
}

/// Streams accounts from a CSV or JSONL file.
pub struct AccountReader {
    path: PathBuf,
    check: RowCheck,
    source: Source,
    header: Vec<String>,
    ignored: Vec<String>,
}

impl AccountReader {
    /// Opens `path`, reading the facts `schema` names.
    pub fn open(path: &Path, schema: &FactSchema) -> Result<AccountReader, FileError> {
        let format = FileFormat::from_path(path)?;
        let file = File::open(path).map_err(io_err(path))?;
        let input: Box<dyn io::Read + Send> = Box::new(file);
        Self::from_reader(path, input, format, schema)
    }

    /// Reads from any source; `path` is only used to name it in errors.
    pub fn from_reader(
        path: &Path,
        input: Box<dyn io::Read + Send>,
        format: FileFormat,
        schema: &FactSchema,
    ) -> Result<AccountReader, FileError> {
        let mut header = Vec::new();
        let mut ignored = Vec::new();
        let source = match format {
            FileFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .flexible(true)
                    .buffer_capacity(1 << 16)
                    .from_reader(input);
                let head = reader.headers().map_err(csv_err(path))?.clone();
                let columns = csv_columns(path, &head, schema, &mut header, &mut ignored)?;
                Source::Csv {
                    reader,
                    columns,
                    record: csv::ByteRecord::new(),
                }
            }
            FileFormat::Jsonl => Source::Jsonl {
                lines: BufReader::with_capacity(1 << 16, input).lines(),
                line: 0,
            },
        };
        Ok(AccountReader {
            path: path.to_path_buf(),
            check: RowCheck {
                schema: schema.clone(),
                seen: SeenIds::default(),
            },
            source,
            header,
            ignored,
        })
    }

    /// Columns that are neither tierd's nor read by the model (CSV only; known after opening).
    pub fn ignored_columns(&self) -> &[String] {
        &self.ignored
    }

    /// The CSV header as read (empty for JSONL).
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Reads the next record into `rec`, reusing its strings and lists: streaming readers
    /// keep a pool of records and allocate almost nothing per row.
    pub fn read_into(&mut self, rec: &mut AccountRecord) -> Result<Next, FileError> {
        match self.source {
            Source::Csv { .. } => self.csv_into(rec),
            Source::Jsonl { .. } => self.jsonl_into(rec),
        }
    }

    /// A record sized for this reader's schema.
    pub fn empty_record(&self) -> AccountRecord {
        AccountRecord::empty(&self.check.schema)
    }

    fn csv_into(&mut self, rec: &mut AccountRecord) -> Result<Next, FileError> {
        let AccountReader {
            path, check, source, ..
        } = self;
        let Source::Csv {
            reader,
            columns,
            record,
        } = source
        else {
            return Ok(Next::End);
        };
        match reader.read_byte_record(record) {
            Ok(false) => return Ok(Next::End),
            Ok(true) => {}
            Err(e) => {
                // A record the CSV parser cannot split (e.g. an unterminated quote): reject what we
                // know and go on; I/O errors end the file.
                return match e.kind() {
                    csv::ErrorKind::Io(_) => Err(csv_err(path)(e)),
                    _ => {
                        let line = e.position().map_or(0, |p| p.line());
                        Ok(Next::Rejected(Rejected {
                            line,
                            id: None,
                            reason: format!("not valid CSV: {e}"),
                            raw: RawRecord::Csv(Vec::new()),
                        }))
                    }
                };
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        // The record is read in place: no per-row vector of fields.
        let fields: &csv::ByteRecord = record;
        let raw = || {
            RawRecord::Csv(
                fields
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect(),
            )
        };
        if fields.len() != columns.len() {
            // Name the account when its id is among the fields there are.
            let id = columns
                .iter()
                .position(|c| matches!(c, Column::Id))
                .and_then(|i| fields.get(i))
                .and_then(|f| std::str::from_utf8(f).ok())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            return Ok(Next::Rejected(Rejected {
                line,
                id,
                reason: format!("expected {} fields, found {}", columns.len(), fields.len()),
                raw: raw(),
            }));
        }
        rec.line = line;
        let mut problems: Vec<String> = Vec::new();
        let has_id = fill_record(
            columns,
            &check.schema,
            fields.iter().map(std::str::from_utf8),
            rec,
            &mut problems,
        );
        Ok(check.finish(rec, has_id, problems, raw))
    }

    fn jsonl_into(&mut self, rec: &mut AccountRecord) -> Result<Next, FileError> {
        let Source::Jsonl { lines, line } = &mut self.source else {
            return Ok(Next::End);
        };
        let text = loop {
            *line += 1;
            let Some(next) = lines.next() else {
                return Ok(Next::End);
            };
            match next {
                Ok(t) if t.trim().is_empty() => continue,
                Ok(t) => break t,
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    let l = *line;
                    return Ok(Next::Rejected(Rejected {
                        line: l,
                        id: None,
                        reason: "not valid UTF-8".into(),
                        raw: RawRecord::Jsonl(String::new()),
                    }));
                }
                Err(e) => return Err(io_err(&self.path)(e)),
            }
        };
        let line = *line;
        let object: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(&text) {
            Ok(o) => o,
            Err(e) => {
                return Ok(Next::Rejected(Rejected {
                    line,
                    id: None,
                    reason: format!("not a JSON object: {e}"),
                    raw: RawRecord::Jsonl(text),
                }))
            }
        };
        // A line names only the facts it has: start from an empty row.
        rec.facts.0.iter_mut().for_each(|v| *v = None);
        let (mut id, mut name, mut domain, mut lock) = (None, None, None, None);
        let facts = &mut rec.facts;
        let mut problems = Vec::new();
        let mut put = |key: &str, value: &serde_json::Value, problems: &mut Vec<String>| match key {
            "id" => match value {
                serde_json::Value::String(s) if !s.trim().is_empty() => id = Some(s.trim().to_string()),
                serde_json::Value::Number(n) => id = Some(n.to_string()),
                serde_json::Value::Null => {}
                other => problems.push(format!("id: {other} is not a string")),
            },
            "name" => name = value.as_str().map(str::to_string),
            "domain" => domain = value.as_str().map(str::to_string),
            "locked_tier" => match value {
                serde_json::Value::Null => {}
                v => match v.as_str().unwrap_or_default().parse::<Tier>() {
                    Ok(t) => lock = Some(t),
                    Err(e) => problems.push(format!("locked_tier: {e}")),
                },
            },
            key => {
                if let Some(slot) = self.check.schema.slot(key) {
                    match json_fact(self.check.schema.fact_type(slot), value) {
                        Ok(v) => facts.set(slot, v),
                        Err(e) => problems.push(format!("{key}: {e}")),
                    }
                }
            }
        };
        for (key, value) in &object {
            match value {
                // `{"firmographic": {"employee_count": 1200}}` is `firmographic.employee_count`.
                serde_json::Value::Object(inner) if !key.contains('.') => {
                    for (k, v) in inner {
                        put(&format!("{key}.{k}"), v, &mut problems);
                    }
                }
                v => put(key, v, &mut problems),
            }
        }
        rec.line = line;
        rec.name = name;
        rec.domain = domain;
        rec.lock = lock;
        rec.id.clear();
        let has_id = id.is_some();
        if let Some(id) = id {
            rec.id = id;
        }
        Ok(self
            .check
            .finish(rec, has_id, problems, || RawRecord::Jsonl(text)))
    }
}

/// The column each header name feeds; fills `header` (the names as read) and `ignored`.
fn csv_columns(
    path: &Path,
    head: &csv::StringRecord,
    schema: &FactSchema,
    header: &mut Vec<String>,
    ignored: &mut Vec<String>,
) -> Result<Vec<Column>, FileError> {
    let mut columns = Vec::with_capacity(head.len());
    for name in head.iter() {
        let name = name.trim().trim_start_matches('\u{feff}');
        header.push(name.to_string());
        let col = match name {
            "id" => Column::Id,
            "name" => Column::Name,
            "domain" => Column::Domain,
            "locked_tier" => Column::Lock,
            n => match schema.slot(n) {
                Some(slot) => Column::Fact(slot, schema.fact_type(slot)),
                None => {
                    if !REJECT_COLUMNS.contains(&n) {
                        ignored.push(n.to_string());
                    }
                    Column::Ignored
                }
            },
        };
        columns.push(col);
    }
    if !columns.iter().any(|c| matches!(c, Column::Id)) {
        return Err(FileError::Header {
            path: path.to_path_buf(),
            message: format!(
                "line 1: no `id` column in the header (found: {})",
                header.join(", ")
            ),
        });
    }
    Ok(columns)
}

/// Fills `rec` from the fields of one CSV record (one per column, as split), trimmed and typed
/// by `columns`; says whether the record has an id and pushes what does not parse to `problems`.
fn fill_record<'f>(
    columns: &[Column],
    schema: &FactSchema,
    fields: impl Iterator<Item = Result<&'f str, std::str::Utf8Error>>,
    rec: &mut AccountRecord,
    problems: &mut Vec<String>,
) -> bool {
    rec.lock = None;
    let mut has_id = false;
    for (col, text) in columns.iter().zip(fields) {
        if matches!(col, Column::Ignored) {
            continue;
        }
        let Ok(text) = text else {
            problems.push(format!("{}: not valid UTF-8", column_name(schema, col)));
            continue;
        };
        if let Column::Fact(slot, ty) = *col {
            // `parse_reusing` trims the cell itself: trimmed once, not twice.
            if let Err(e) = ty.parse_reusing(text, &mut rec.facts.0[slot], &mut rec.spares) {
                problems.push(format!("{}: {e}", schema.name(slot)));
            }
            continue;
        }
        let text = tierd_core::fact::trim(text);
        match *col {
            Column::Id => {
                rec.id.clear();
                rec.id.push_str(text);
                has_id = !text.is_empty();
            }
            Column::Name => assign(&mut rec.name, text),
            Column::Domain => assign(&mut rec.domain, text),
            Column::Lock if text.is_empty() => {}
            Column::Lock => match text.parse::<Tier>() {
                Ok(t) => rec.lock = Some(t),
                Err(e) => problems.push(format!("locked_tier: {e}")),
            },
            Column::Fact(..) | Column::Ignored => {}
        }
    }
    has_id
}

fn column_name(schema: &FactSchema, col: &Column) -> String {
    match col {
        Column::Id => "id".into(),
        Column::Name => "name".into(),
        Column::Domain => "domain".into(),
        Column::Lock => "locked_tier".into(),
        Column::Fact(slot, _) => schema.name(*slot).to_string(),
        Column::Ignored => String::new(),
    }
}

/// Sets an optional text, reusing its allocation; empty text is no value.
fn assign(slot: &mut Option<String>, text: &str) {
    match slot {
        _ if text.is_empty() => *slot = None,
        Some(s) => {
            s.clear();
            s.push_str(text);
        }
        None => *slot = Some(text.to_string()),
    }
}

/// Checks a parsed record and remembers ids, so repeats are rejected.
struct RowCheck {
    schema: FactSchema,
    seen: SeenIds,
}

impl RowCheck {
    fn finish(
        &mut self,
        rec: &AccountRecord,
        has_id: bool,
        mut problems: Vec<String>,
        raw: impl FnOnce() -> RawRecord,
    ) -> Next {
        if !has_id {
            problems.insert(0, "missing id".to_string());
        } else if problems.is_empty() {
            if let Some(first) = self.seen.insert(&rec.id, rec.line) {
                problems.push(format!("duplicate id '{}' (first seen on line {first})", rec.id));
            }
        }
        if problems.is_empty() {
            return Next::Account;
        }
        Next::Rejected(Rejected {
            line: rec.line,
            id: has_id.then(|| rec.id.clone()),
            reason: problems.join("; "),
            raw: raw(),
        })
    }
}

/// The ids seen so far, with the line each was first seen on.
///
/// A file of millions of accounts checks every id, so the set keeps all ids in one text
/// buffer keyed by a 64-bit hash, instead of one heap string per id behind SipHash (which
/// cost more than parsing the row). Distinct ids whose hashes collide go to a plain map.
#[derive(Default)]
struct SeenIds {
    text: String,
    /// (start in `text`, length, first line) per id.
    entries: Vec<(usize, u32, u64)>,
    by_hash: HashMap<u64, u32, std::hash::BuildHasherDefault<PassThrough>>,
    collided: HashMap<Box<str>, u64>,
}

impl SeenIds {
    /// Remembers `id` at `line`; when it was seen before, returns the line it was first seen on.
    fn insert(&mut self, id: &str, line: u64) -> Option<u64> {
        self.insert_hashed(id, id_hash(id.as_bytes()), line)
    }

    /// [`SeenIds::insert`] with `id`'s hash ([`id_hash`]) worked out already.
    fn insert_hashed(&mut self, id: &str, hash: u64, line: u64) -> Option<u64> {
        match self.by_hash.entry(hash) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let (start, len, first) = self.entries[*e.get() as usize];
                if &self.text[start..start + len as usize] == id {
                    return Some(first);
                }
                match self.collided.get(id) {
                    Some(first) => Some(*first),
                    None => {
                        self.collided.insert(id.into(), line);
                        None
                    }
                }
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(self.entries.len() as u32);
                self.entries.push((self.text.len(), id.len() as u32, line));
                self.text.push_str(id);
                None
            }
        }
    }
}

/// `rustc-hash`'s byte hash (a folded multiply per word). Hand-written FxHash rounds over
/// 8-byte words were here before: a difference in one word only moved towards the high bits,
/// so numbered ids that differ in two words could cancel out (`tierd gen`'s `acc-00000001` and
/// on had 28,000 fewer distinct hashes than ids in the first million), and every such id took
/// the slow path of `SeenIds` and, in `tierd score`, a second read of the file.
fn id_hash(bytes: &[u8]) -> u64 {
    use std::hash::Hasher as _;
    let mut hasher = rustc_hash::FxHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

/// The hasher of `SeenIds::by_hash`, whose keys are already hashes.
#[derive(Default)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = id_hash(bytes);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A JSON value as a fact of type `ty` (`tierd_core::codec`: strings through the same parser as
/// CSV cells, list items one by one). Used for JSONL accounts and for the facts enrichment
/// plugins return.
pub fn json_fact(ty: FactType, value: &serde_json::Value) -> Result<Option<FactValue>, String> {
    tierd_core::codec::value_from_json(ty, value).map_err(|e| e.to_string())
}

impl Iterator for AccountReader {
    type Item = Result<ReadItem, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut rec = self.empty_record();
        match self.read_into(&mut rec) {
            Ok(Next::Account) => Some(Ok(ReadItem::Account(rec))),
            Ok(Next::Rejected(r)) => Some(Ok(ReadItem::Rejected(r))),
            Ok(Next::End) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Writes rejected records as they came, plus `reject_line` and `reject_reason`.
/// A CSV rejects file has the input's header, so it can be fixed and fed back in.
pub struct RejectWriter {
    path: PathBuf,
    inner: RejectSink,
    count: u64,
}

enum RejectSink {
    Csv(Box<csv::Writer<BufWriter<File>>>),
    Jsonl(BufWriter<File>),
}

impl RejectWriter {
    /// Creates `path` in the format of its extension; `header` is the input's CSV header.
    pub fn create(path: &Path, header: &[String]) -> Result<RejectWriter, FileError> {
        let file = BufWriter::new(File::create(path).map_err(io_err(path))?);
        let inner = match FileFormat::from_path(path)? {
            FileFormat::Csv => {
                // Rejected rows may have any number of fields.
                let mut w = csv::WriterBuilder::new().flexible(true).from_writer(file);
                let mut head: Vec<&str> = header.iter().map(String::as_str).collect();
                head.extend(REJECT_COLUMNS);
                w.write_record(&head).map_err(csv_err(path))?;
                RejectSink::Csv(Box::new(w))
            }
            FileFormat::Jsonl => RejectSink::Jsonl(file),
        };
        Ok(RejectWriter {
            path: path.to_path_buf(),
            inner,
            count: 0,
        })
    }

    /// Appends one rejected record.
    pub fn write(&mut self, r: &Rejected) -> Result<(), FileError> {
        self.count += 1;
        let line = r.line.to_string();
        match (&mut self.inner, &r.raw) {
            (RejectSink::Csv(w), RawRecord::Csv(fields)) => {
                let mut rec: Vec<&str> = fields.iter().map(String::as_str).collect();
                rec.extend([line.as_str(), r.reason.as_str()]);
                w.write_record(&rec).map_err(csv_err(&self.path))
            }
            (RejectSink::Csv(w), RawRecord::Jsonl(text)) => w
                .write_record([text.as_str(), line.as_str(), r.reason.as_str()])
                .map_err(csv_err(&self.path)),
            (RejectSink::Jsonl(w), raw) => {
                let record = match raw {
                    RawRecord::Jsonl(text) => {
                        serde_json::from_str(text).unwrap_or(serde_json::Value::String(text.clone()))
                    }
                    RawRecord::Csv(fields) => serde_json::Value::from(fields.clone()),
                };
                let out =
                    serde_json::json!({ "reject_line": r.line, "reject_reason": r.reason, "record": record });
                writeln!(w, "{out}").map_err(io_err(&self.path))
            }
        }
    }

    /// How many records were written.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Flushes to disk.
    pub fn finish(self) -> Result<(), FileError> {
        match self.inner {
            RejectSink::Csv(mut w) => w.flush().map_err(io_err(&self.path)),
            RejectSink::Jsonl(mut w) => w.flush().map_err(io_err(&self.path)),
        }
    }
}

/// One output row.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TierRecord<'a> {
    /// Account id.
    pub id: &'a str,
    /// Score, 0..=5.
    pub score: f32,
    /// Tier.
    pub tier: Tier,
    /// Coverage, 0..=1.
    pub coverage: f32,
    /// `name@version` of the model.
    pub model_version: &'a str,
    /// Compact reasons.
    pub explanation: &'a str,
}

/// The output columns, in order.
pub const TIER_COLUMNS: [&str; 6] = ["id", "score", "tier", "coverage", "model_version", "explanation"];

/// Writes tier files.
pub struct TierWriter {
    path: PathBuf,
    sink: TierSink,
    /// Reused for the number cells of every row.
    score: String,
    coverage: String,
}

enum TierSink {
    Csv(Box<csv::Writer<BufWriter<File>>>),
    Jsonl(BufWriter<File>),
}

impl TierWriter {
    /// Creates `path` in the format of its extension.
    pub fn create(path: &Path) -> Result<TierWriter, FileError> {
        let format = FileFormat::from_path(path)?;
        let out = BufWriter::with_capacity(1 << 16, File::create(path).map_err(io_err(path))?);
        let sink = match format {
            FileFormat::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(TIER_COLUMNS).map_err(csv_err(path))?;
                TierSink::Csv(Box::new(w))
            }
            FileFormat::Jsonl => TierSink::Jsonl(out),
        };
        Ok(TierWriter {
            path: path.to_path_buf(),
            sink,
            score: String::new(),
            coverage: String::new(),
        })
    }

    /// Appends one row.
    pub fn write(&mut self, r: &TierRecord<'_>) -> Result<(), FileError> {
        match &mut self.sink {
            TierSink::Csv(w) => {
                self.score.clear();
                push_fixed(&mut self.score, r.score, 3, false);
                self.coverage.clear();
                push_fixed(&mut self.coverage, r.coverage, 2, false);
                w.write_record([
                    r.id,
                    &self.score,
                    r.tier.as_str(),
                    &self.coverage,
                    r.model_version,
                    r.explanation,
                ])
                .map_err(csv_err(&self.path))
            }
            TierSink::Jsonl(out) => {
                let rounded = TierRecord {
                    score: (r.score * 1000.0).round() / 1000.0,
                    coverage: (r.coverage * 100.0).round() / 100.0,
                    ..r.clone()
                };
                serde_json::to_writer(&mut *out, &rounded).map_err(|e| io_err(&self.path)(e.into()))?;
                out.write_all(b"\n").map_err(io_err(&self.path))
            }
        }
    }

    /// Flushes what was written so far, keeping the file open for more.
    pub fn flush(&mut self) -> Result<(), FileError> {
        match &mut self.sink {
            TierSink::Csv(w) => w.flush().map_err(io_err(&self.path)),
            TierSink::Jsonl(w) => w.flush().map_err(io_err(&self.path)),
        }
    }

    /// Flushes to disk.
    pub fn finish(self) -> Result<(), FileError> {
        match self.sink {
            TierSink::Csv(mut w) => w.flush().map_err(io_err(&self.path)),
            TierSink::Jsonl(mut w) => w.flush().map_err(io_err(&self.path)),
        }
    }
}

/// Tiers by account id, and the skipped rows of the file they came from (line, reason).
pub type PreviousTiers = (HashMap<String, Tier>, Vec<(u64, String)>);

/// Reads the tiers of a previous output (`id` and `tier` columns of a tier file).
/// Returns the tiers and the problems found (line and reason) for rows that were skipped.
pub fn read_tiers(path: &Path) -> Result<PreviousTiers, FileError> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut tiers = HashMap::new();
    let mut problems = Vec::new();
    match FileFormat::from_path(path)? {
        FileFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(BufReader::new(file));
            let head = reader.headers().map_err(csv_err(path))?.clone();
            let find = |name: &str| head.iter().position(|h| h.trim() == name);
            let (Some(id_col), Some(tier_col)) = (find("id"), find("tier")) else {
                return Err(FileError::Header {
                    path: path.to_path_buf(),
                    message: "line 1: a tiers file needs `id` and `tier` columns".into(),
                });
            };
            for rec in reader.records() {
                let rec = match rec {
                    Ok(r) => r,
                    Err(e) => {
                        problems.push((e.position().map_or(0, |p| p.line()), e.to_string()));
                        continue;
                    }
                };
                let line = rec.position().map_or(0, |p| p.line());
                match (rec.get(id_col), rec.get(tier_col).map(str::parse::<Tier>)) {
                    (Some(id), Some(Ok(t))) if !id.is_empty() => {
                        tiers.insert(id.to_string(), t);
                    }
                    (_, Some(Err(e))) => problems.push((line, e.to_string())),
                    _ => problems.push((line, "missing id or tier".into())),
                }
            }
        }
        FileFormat::Jsonl => {
            for (i, text) in BufReader::new(file).lines().enumerate() {
                let text = text.map_err(io_err(path))?;
                let line = i as u64 + 1;
                if text.trim().is_empty() {
                    continue;
                }
                #[derive(serde::Deserialize)]
                struct Row {
                    id: String,
                    tier: String,
                }
                match serde_json::from_str::<Row>(&text) {
                    Ok(row) => match row.tier.parse::<Tier>() {
                        Ok(t) => {
                            tiers.insert(row.id, t);
                        }
                        Err(e) => problems.push((line, e.to_string())),
                    },
                    Err(e) => problems.push((line, e.to_string())),
                }
            }
        }
    }
    Ok((tiers, problems))
}

/// A CSV accounts file read in chunks of whole records, so that several threads can parse it:
/// [`CsvChunks::open`] reads the header (with the `csv` crate, as [`AccountReader`] does) and
/// [`CsvChunks::next_chunk`] cuts what follows after a record's line end. Each chunk is parsed
/// on its own by a [`CsvLayout`] and a [`RecordSplitter`], with the same fields, line numbers
/// and reject reasons [`AccountReader`] gives; ids are checked across chunks, in input order,
/// by the caller ([`IdSet`]).
pub struct CsvChunks {
    path: PathBuf,
    file: File,
    /// Bytes read and not yet handed out; `buf[0]` starts a record (or blank lines).
    buf: Vec<u8>,
    /// How far `buf` has been scanned for cuts, in which state, and the line count there.
    scan: usize,
    quoted: bool,
    lines: u64,
    /// The line count at `buf[0]`, and the line of the first record there (see [`Chunk`]).
    start_lines: u64,
    start_record_line: u64,
    /// The last cut found: where, the line count after it, and the next record's line.
    cut: Option<(usize, u64, u64)>,
    eof: bool,
}

/// Whole CSV records cut from a file, and where they start.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The records' bytes.
    pub bytes: Vec<u8>,
    /// The `csv` crate's line count at the chunk's first byte.
    lines: u64,
    /// The line the first record of the chunk is reported on. The `csv` crate reports a
    /// record at the line count where the record before it ended (after the `\r` of a
    /// `\r\n`, before blank lines), which tierd's reject messages have always shown.
    record_line: u64,
}

impl Chunk {
    /// The chunk as text, when it is valid UTF-8 (for [`CsvLayout::read`]; one check of the
    /// whole chunk).
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes).ok()
    }
}

/// How a CSV file's columns map to an account, from its header.
#[derive(Debug, Clone)]
pub struct CsvLayout {
    columns: Vec<Column>,
    schema: FactSchema,
    header: Vec<String>,
    ignored: Vec<String>,
}

impl CsvChunks {
    /// Opens a CSV accounts file and reads its header.
    pub fn open(path: &Path, schema: &FactSchema) -> Result<(CsvLayout, CsvChunks), FileError> {
        let file = File::open(path).map_err(io_err(path))?;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(BufReader::new(file));
        let head = reader.headers().map_err(csv_err(path))?.clone();
        let (mut header, mut ignored) = (Vec::new(), Vec::new());
        let columns = csv_columns(path, &head, schema, &mut header, &mut ignored)?;
        // Records start where the header's reader stopped: re-open there.
        let pos = reader.position().clone();
        let mut file = File::open(path).map_err(io_err(path))?;
        io::Seek::seek(&mut file, io::SeekFrom::Start(pos.byte())).map_err(io_err(path))?;
        let layout = CsvLayout {
            columns,
            schema: schema.clone(),
            header,
            ignored,
        };
        let chunks = CsvChunks {
            path: path.to_path_buf(),
            file,
            buf: Vec::new(),
            scan: 0,
            quoted: false,
            lines: pos.line(),
            start_lines: pos.line(),
            start_record_line: pos.line(),
            cut: None,
            eof: false,
        };
        Ok((layout, chunks))
    }

    /// The next chunk of whole records, about `target` bytes (more when one record is longer),
    /// into `bytes` (a buffer for reuse); `None` at the end of the file.
    pub fn next_chunk(&mut self, target: usize, mut bytes: Vec<u8>) -> Result<Option<Chunk>, FileError> {
        let target = target.max(1);
        loop {
            if !self.eof && self.buf.len() < target {
                let want = target - self.buf.len();
                let n = self.read_more(want)?;
                self.eof = n < want;
            }
            self.scan_for_cuts();
            let cut = match self.cut.take() {
                Some(c) => Some(c),
                None if self.eof => None,
                None => {
                    // One record longer than the buffer: read on.
                    self.eof = self.read_more(target)? == 0;
                    continue;
                }
            };
            bytes.clear();
            let chunk_lines = self.start_lines;
            let chunk_record_line = self.start_record_line;
            match cut {
                Some((at, lines_after, next_record_line)) => {
                    // The chunk takes the buffer as read; the part record after the cut goes on
                    // in the recycled one (a megabyte not copied per chunk).
                    bytes.extend_from_slice(&self.buf[at..]);
                    std::mem::swap(&mut bytes, &mut self.buf);
                    bytes.truncate(at);
                    self.scan -= at;
                    self.start_lines = lines_after;
                    self.start_record_line = next_record_line;
                }
                None if self.buf.is_empty() => return Ok(None),
                None => {
                    std::mem::swap(&mut bytes, &mut self.buf);
                    self.buf.clear();
                    self.scan = 0;
                    self.start_lines = self.lines;
                }
            }
            return Ok(Some(Chunk {
                bytes,
                lines: chunk_lines,
                record_line: chunk_record_line,
            }));
        }
    }

    /// Appends up to `want` bytes of the file to `buf` (fewer only at its end), read straight
    /// into the buffer's spare room (no zero-filling first); returns how many.
    fn read_more(&mut self, want: usize) -> Result<usize, FileError> {
        let have = self.buf.len();
        self.buf.reserve(want);
        io::Read::read_to_end(&mut io::Read::take(&mut self.file, want as u64), &mut self.buf)
            .map_err(io_err(&self.path))?;
        Ok(self.buf.len() - have)
    }

    /// Scans `buf` from `scan` on, in the `csv` crate's grammar (a quote opens a quoted field
    /// only at a field's start; `""` inside one is a quote; `\r`, `\n` end records), and
    /// remembers the last place to cut: after a `\n` outside quotes that ends a record, or ends
    /// the `\r\n` that did.
    fn scan_for_cuts(&mut self) {
        let buf = &self.buf;
        let mut i = self.scan;
        while i < buf.len() {
            if self.quoted {
                let Some(q) = find_byte(&buf[i..], b'"', &mut self.lines) else {
                    i = buf.len();
                    break;
                };
                let q = i + q;
                match buf.get(q + 1) {
                    // Need the next byte to know: scan again when more is read.
                    None if !self.eof => {
                        // Count the `\n`s once: `find_byte` counted up to q.
                        i = q;
                        self.scan = i;
                        return;
                    }
                    Some(b'"') => i = q + 2,
                    _ => {
                        self.quoted = false;
                        i = q + 1;
                    }
                }
            } else {
                let Some(k) = find_quote_or_newline(&buf[i..]) else {
                    i = buf.len();
                    break;
                };
                let k = i + k;
                if buf[k] == b'"' {
                    let field_start = k == 0 || matches!(buf[k - 1], b',' | b'\r' | b'\n');
                    self.quoted = field_start;
                    i = k + 1;
                    continue;
                }
                self.lines += 1;
                let before = |n: usize| k.checked_sub(n).map(|j| buf[j]);
                let ends_record = |b: Option<u8>| b.is_some_and(|b| b != b'\r' && b != b'\n');
                if ends_record(before(1)) {
                    self.cut = Some((k + 1, self.lines, self.lines));
                } else if before(1) == Some(b'\r') && ends_record(before(2)) {
                    self.cut = Some((k + 1, self.lines, self.lines - 1));
                }
                i = k + 1;
            }
        }
        self.scan = i;
    }
}

/// Where `b` first is in `hay`, counting the `\n`s before it (or in all of `hay`) into `lines`.
fn find_byte(hay: &[u8], b: u8, lines: &mut u64) -> Option<usize> {
    for (i, &c) in hay.iter().enumerate() {
        if c == b {
            return Some(i);
        }
        *lines += u64::from(c == b'\n');
    }
    None
}

/// Where the first `"` or `\n` of `hay` is.
fn find_quote_or_newline(hay: &[u8]) -> Option<usize> {
    memchr::memchr2(b'"', b'\n', hay)
}

/// Splits the records of a [`Chunk`] into fields as the `csv` crate does (lenient: a quote
/// that does not start a field is text, text after a closing quote is kept, an unterminated
/// quote runs to the end), reusing its buffers from record to record.
#[derive(Debug, Default)]
pub struct RecordSplitter {
    /// Unquoted text of quoted fields.
    text: Vec<u8>,
    /// Per field: in `text` (true) or in the chunk, start, end.
    fields: Vec<(bool, usize, usize)>,
    pos: usize,
    lines: u64,
    record_line: u64,
    /// Where the current record starts and ends in the chunk.
    span: (usize, usize),
}

impl RecordSplitter {
    /// Starts on a chunk.
    pub fn start(&mut self, chunk: &Chunk) {
        self.pos = 0;
        self.lines = chunk.lines;
        self.record_line = chunk.record_line;
    }

    /// Splits the next record of `chunk` (the one given to [`RecordSplitter::start`]); returns
    /// its line, or `None` at the chunk's end.
    pub fn next_record(&mut self, chunk: &[u8]) -> Option<u64> {
        let mut i = self.pos;
        // Blank lines between records are skipped, as the csv crate does.
        while i < chunk.len() && matches!(chunk[i], b'\r' | b'\n') {
            self.lines += u64::from(chunk[i] == b'\n');
            i += 1;
        }
        if i >= chunk.len() {
            self.pos = i;
            return None;
        }
        let line = self.record_line;
        self.text.clear();
        self.fields.clear();
        let start = i;
        // Most records are one line without a quote or a carriage return: their fields are the
        // line cut at its commas ([`RecordSplitter::split_plain_line`]).
        if let Some(end) = self.split_plain_line(chunk, start) {
            i = end;
            if i < chunk.len() {
                // The `\n` ending the record.
                self.lines += 1;
                i += 1;
            }
            self.span = (start, i);
            self.record_line = self.lines;
            self.pos = i;
            return Some(line);
        }
        loop {
            // One field from i.
            if chunk[i] == b'"' {
                let t0 = self.text.len();
                i += 1;
                loop {
                    match chunk[i..].iter().position(|&c| c == b'"') {
                        None => {
                            self.lines += count_newlines(&chunk[i..]);
                            self.text.extend_from_slice(&chunk[i..]);
                            i = chunk.len();
                            break;
                        }
                        Some(q) => {
                            self.lines += count_newlines(&chunk[i..i + q]);
                            self.text.extend_from_slice(&chunk[i..i + q]);
                            i += q + 1;
                            if chunk.get(i) == Some(&b'"') {
                                self.text.push(b'"');
                                i += 1;
                            } else {
                                break;
                            }
                        }
                    }
                }
                // Text after the closing quote belongs to the field.
                let rest = field_end(&chunk[i..]);
                self.text.extend_from_slice(&chunk[i..i + rest]);
                i += rest;
                self.fields.push((true, t0, self.text.len()));
            } else {
                let n = field_end(&chunk[i..]);
                self.fields.push((false, i, i + n));
                i += n;
            }
            match chunk.get(i).copied() {
                Some(b',') => {
                    i += 1;
                    if i == chunk.len() {
                        // A trailing delimiter at the end of the input: one more, empty field.
                        self.fields.push((false, i, i));
                        break;
                    }
                    if matches!(chunk[i], b'\r' | b'\n') {
                        self.fields.push((false, i, i));
                        self.lines += u64::from(chunk[i] == b'\n');
                        i += 1;
                        break;
                    }
                }
                Some(b) => {
                    // `\r` or `\n`: the record ends here.
                    self.lines += u64::from(b == b'\n');
                    i += 1;
                    break;
                }
                None => break,
            }
        }
        self.span = (start, i);
        self.record_line = self.lines;
        self.pos = i;
        Some(line)
    }

    /// Cuts the line from `start` at its commas into `fields` when it holds no `"` and no
    /// `\r` (the case of most records), returning where it ends (its `\n` or the chunk's end);
    /// `None`, with `fields` left empty, otherwise. The line's end and the check are two vector
    /// searches; the commas are found eight bytes at a time.
    fn split_plain_line(&mut self, chunk: &[u8], start: usize) -> Option<usize> {
        let end = start + memchr::memchr(b'\n', &chunk[start..]).unwrap_or(chunk.len() - start);
        let line = &chunk[start..end];
        if memchr::memchr2(b'"', b'\r', line).is_some() {
            return None;
        }
        let mut a = start;
        let mut words = line.chunks_exact(8);
        let mut pos = start;
        for word in &mut words {
            let mut commas =
                zero_bytes(u64::from_le_bytes(word.try_into().unwrap_or_default()) ^ splat(b','));
            while commas != 0 {
                let c = pos + (commas.trailing_zeros() / 8) as usize;
                self.fields.push((false, a, c));
                a = c + 1;
                commas &= commas - 1;
            }
            pos += 8;
        }
        for (j, &b) in words.remainder().iter().enumerate() {
            if b == b',' {
                self.fields.push((false, a, pos + j));
                a = pos + j + 1;
            }
        }
        self.fields.push((false, a, end));
        Some(end)
    }

    /// The fields of the record last split.
    pub fn fields<'a>(&'a self, chunk: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields.iter().map(
            move |&(in_text, a, b)| {
                if in_text {
                    &self.text[a..b]
                } else {
                    &chunk[a..b]
                }
            },
        )
    }

    /// The fields of the record last split as text: the record is checked for UTF-8 once, not
    /// field by field (fields are cut at ASCII bytes, so a valid record has valid fields), and
    /// not at all when the whole chunk was (`text`: the chunk as text, when it is valid).
    fn texts<'a>(
        &'a self,
        chunk: &'a [u8],
        text: Option<&'a str>,
    ) -> impl Iterator<Item = Result<&'a str, std::str::Utf8Error>> + 'a {
        let (start, end) = self.span;
        // A record starts and ends at ASCII bytes (or the chunk's ends): character boundaries.
        let record = match text.and_then(|t| t.get(start..end)) {
            Some(record) => Some(record),
            None => std::str::from_utf8(&chunk[start..end]).ok(),
        };
        self.fields
            .iter()
            .map(move |&(in_text, a, b)| match (in_text, record) {
                (false, Some(record)) => Ok(&record[a - start..b - start]),
                (false, None) => std::str::from_utf8(&chunk[a..b]),
                (true, _) => std::str::from_utf8(&self.text[a..b]),
            })
    }

    /// How many fields the record last split has.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the record last split has no fields (never, for a record).
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Where the record last split lies in its chunk.
    pub fn span(&self) -> (usize, usize) {
        self.span
    }

    /// Splits the one record at `span` of `chunk` again (to write a rejected record as it was).
    pub fn split_again(&mut self, chunk: &[u8], span: (usize, usize), line: u64) {
        self.pos = span.0;
        self.lines = line;
        self.record_line = line;
        let _ = self.next_record(&chunk[..span.1]);
    }
}

/// `b` in every byte of a word.
fn splat(b: u8) -> u64 {
    u64::from(b) * 0x0101_0101_0101_0101
}

/// The high bit of every zero byte of `w`, and no other bit (exact: no carry crosses a byte).
fn zero_bytes(w: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((w & LOW7) + LOW7) | w | LOW7)
}

/// The length of an unquoted field's text: up to a `,`, `\r` or `\n`.
fn field_end(s: &[u8]) -> usize {
    memchr::memchr3(b',', b'\r', b'\n', s).unwrap_or(s.len())
}

fn count_newlines(s: &[u8]) -> u64 {
    s.iter().filter(|&&c| c == b'\n').count() as u64
}

impl CsvLayout {
    /// The header as read.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Columns that are neither tierd's nor read by the model.
    pub fn ignored_columns(&self) -> &[String] {
        &self.ignored
    }

    /// A record sized for this file's schema.
    pub fn empty_record(&self) -> AccountRecord {
        AccountRecord::empty(&self.schema)
    }

    /// Fills `rec` with the record `split` holds (from `chunk`, on `line`): `None` when it is an
    /// account, else why it is rejected, as [`AccountReader`] would reject it. Ids are not
    /// checked for repeats here (the caller does, in input order, with an [`IdSet`]).
    ///
    /// `text` is the whole chunk as text when it is valid UTF-8 ([`Chunk::text`], checked once
    /// per chunk, which costs a fraction of checking each record); `None` checks the record.
    pub fn read(
        &self,
        split: &RecordSplitter,
        chunk: &[u8],
        text: Option<&str>,
        line: u64,
        rec: &mut AccountRecord,
    ) -> Option<Rejected> {
        let raw = || {
            RawRecord::Csv(
                split
                    .fields(chunk)
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect(),
            )
        };
        if split.len() != self.columns.len() {
            let id = self
                .columns
                .iter()
                .position(|c| matches!(c, Column::Id))
                .and_then(|i| split.fields(chunk).nth(i))
                .and_then(|f| std::str::from_utf8(f).ok())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            return Some(Rejected {
                line,
                id,
                reason: format!("expected {} fields, found {}", self.columns.len(), split.len()),
                raw: raw(),
            });
        }
        rec.line = line;
        let mut problems = Vec::new();
        let has_id = fill_record(
            &self.columns,
            &self.schema,
            split.texts(chunk, text),
            rec,
            &mut problems,
        );
        if !has_id {
            problems.insert(0, "missing id".to_string());
        }
        if problems.is_empty() {
            return None;
        }
        Some(Rejected {
            line,
            id: has_id.then(|| rec.id.clone()),
            reason: problems.join("; "),
            raw: raw(),
        })
    }

    /// The rejection of a record whose id was first seen on line `first` (`split` holds it).
    pub fn duplicate(
        &self,
        split: &RecordSplitter,
        chunk: &[u8],
        line: u64,
        id: &str,
        first: u64,
    ) -> Rejected {
        Rejected {
            line,
            id: Some(id.to_string()),
            reason: format!("duplicate id '{id}' (first seen on line {first})"),
            raw: RawRecord::Csv(
                split
                    .fields(chunk)
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect(),
            ),
        }
    }
}

/// The ids of a file seen so far, with the line each was first seen on (as [`AccountReader`]
/// checks them: one text buffer and a 64-bit hash per id, no heap string per id).
#[derive(Default)]
pub struct IdSet(SeenIds);

impl IdSet {
    /// Remembers `id` at `line`; when it was seen before, returns the line it was first seen on.
    pub fn insert(&mut self, id: &str, line: u64) -> Option<u64> {
        self.0.insert(id, line)
    }

    /// The hash [`IdSet::insert_hashed`] takes for `id`: worked out where the id is read, it
    /// leaves the thread that keeps the set (and checks every id in order) a table look-up.
    pub fn hash(id: &str) -> u64 {
        id_hash(id.as_bytes())
    }

    /// [`IdSet::insert`] with `hash`, which must be [`IdSet::hash`] of `id`.
    pub fn insert_hashed(&mut self, id: &str, hash: u64, line: u64) -> Option<u64> {
        self.0.insert_hashed(id, hash, line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierd_core::Model;

    const MODEL: &str = r#"
name = "t"
version = "1"
[components.fit]
weight = 1.0
[[criteria]]
name = "size"
component = "fit"
weight = 1.0
fact = "firmographic.employee_count"
rule = { bands = [{ min = 0, max = 100, points = 1 }, { min = 100, points = 5 }] }
[[criteria]]
name = "stack"
component = "fit"
weight = 1.0
fact = "technographic.technologies"
rule = { any_of = ["Snowflake"], points = 5 }
[[criteria]]
name = "industry"
component = "fit"
weight = 1.0
fact = "firmographic.industry"
rule = { map = { software = 5 } }
"#;

    fn reader(text: &str, format: FileFormat) -> AccountReader {
        let model = Model::from_toml(MODEL, "model").expect("model");
        let input: Box<dyn io::Read + Send> = Box::new(io::Cursor::new(text.to_string().into_bytes()));
        AccountReader::from_reader(Path::new("accounts.csv"), input, format, model.schema()).expect("reader")
    }

    const CSV: &str =
        "id,name,firmographic.employee_count,technographic.technologies,firmographic.industry\n\
        a,Acme,120,Snowflake;dbt;Segment,Software\n\
        b,,12k,,Retail\n\
        c,Corp,,Looker,\n\
        a,Again,5,,\n\
        d,Dee,7,Snowflake,Media\n";

    #[test]
    fn reading_into_one_reused_record_gives_what_fresh_records_give() {
        let fresh: Vec<ReadItem> = reader(CSV, FileFormat::Csv).map(|r| r.expect("read")).collect();
        let mut reused = Vec::new();
        let mut r = reader(CSV, FileFormat::Csv);
        let mut rec = r.empty_record();
        loop {
            match r.read_into(&mut rec).expect("read") {
                Next::Account => reused.push(ReadItem::Account(rec.clone())),
                Next::Rejected(x) => reused.push(ReadItem::Rejected(x)),
                Next::End => break,
            }
        }
        assert_eq!(fresh, reused);
        let ids: Vec<String> = fresh
            .iter()
            .map(|i| match i {
                ReadItem::Account(a) => format!("ok {}", a.id),
                ReadItem::Rejected(r) => format!("line {}: {}", r.line, r.reason),
            })
            .collect();
        assert_eq!(
            ids,
            [
                "ok a",
                "line 3: firmographic.employee_count: '12k' is not a number",
                "ok c",
                "line 5: duplicate id 'a' (first seen on line 2)",
                "ok d",
            ]
        );
        // The shorter list of `d` replaced the longer one of `a` in the reused record.
        let ReadItem::Account(d) = &reused[4] else {
            panic!("d is an account")
        };
        let model = Model::from_toml(MODEL, "model").expect("model");
        let slot = model.schema().slot("technographic.technologies").expect("slot");
        assert_eq!(
            d.facts.get(slot),
            Some(&FactValue::StringList(vec!["Snowflake".into()]))
        );
    }

    #[test]
    fn jsonl_lines_do_not_inherit_facts_from_the_line_before() {
        let text = "{\"id\":\"a\",\"firmographic.industry\":\"Software\"}\n{\"id\":\"b\"}\n";
        let mut r = reader(text, FileFormat::Jsonl);
        let mut rec = r.empty_record();
        assert_eq!(r.read_into(&mut rec).expect("read"), Next::Account);
        assert_eq!(r.read_into(&mut rec).expect("read"), Next::Account);
        assert_eq!(rec.id, "b");
        assert!(rec.facts.0.iter().all(Option::is_none));
        assert_eq!(r.read_into(&mut rec).expect("read"), Next::End);
    }

    #[test]
    fn ids_inserted_with_their_hash_are_checked_as_ids_inserted_plainly() {
        let ids = ["a", "b", "a", "acc-00000001", "", "acc-00000001", "b", "c"];
        let mut plain = IdSet::default();
        let mut hashed = IdSet::default();
        for (line, id) in ids.iter().enumerate() {
            let line = line as u64 + 2;
            assert_eq!(
                hashed.insert_hashed(id, IdSet::hash(id), line),
                plain.insert(id, line),
                "{id} on line {line}"
            );
        }
    }

    #[test]
    fn seen_ids_tell_distinct_ids_apart_even_when_their_hashes_collide() {
        let mut seen = SeenIds::default();
        assert_eq!(seen.insert("a", 2), None);
        assert_eq!(seen.insert("a", 9), Some(2));
        // Pretend "b" hashes like "a": it must still count as new, then as a repeat of itself.
        seen.by_hash.insert(id_hash(b"b"), 0);
        assert_eq!(seen.insert("b", 3), None);
        assert_eq!(seen.insert("b", 4), Some(3));
        assert_eq!(seen.insert("a", 5), Some(2));
    }

    /// Records as the csv crate reads them after the header: (line, fields).
    fn csv_crate_records(text: &[u8]) -> Vec<(u64, Vec<Vec<u8>>)> {
        let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(text);
        let _ = r.headers().expect("header");
        let mut rec = csv::ByteRecord::new();
        let mut out = Vec::new();
        while r.read_byte_record(&mut rec).expect("csv") {
            let line = rec.position().map_or(0, |p| p.line());
            out.push((line, rec.iter().map(<[u8]>::to_vec).collect()));
        }
        out
    }

    /// The same through `CsvChunks` cut at about `target` bytes and `RecordSplitter`.
    fn chunked_records(text: &[u8], target: usize) -> Vec<(u64, Vec<Vec<u8>>)> {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a.csv");
        std::fs::write(&path, text).expect("write");
        let model = Model::from_toml(MODEL, "model").expect("model");
        let (_, mut chunks) = CsvChunks::open(&path, model.schema()).expect("open");
        let mut split = RecordSplitter::default();
        let mut out = Vec::new();
        while let Some(chunk) = chunks.next_chunk(target, Vec::new()).expect("chunk") {
            split.start(&chunk);
            while let Some(line) = split.next_record(&chunk.bytes) {
                out.push((line, split.fields(&chunk.bytes).map(<[u8]>::to_vec).collect()));
                // Splitting a record again from its span gives the same fields.
                let fields: Vec<Vec<u8>> = split.fields(&chunk.bytes).map(<[u8]>::to_vec).collect();
                let mut again = RecordSplitter::default();
                again.split_again(&chunk.bytes, split.span(), line);
                assert_eq!(
                    again.fields(&chunk.bytes).map(<[u8]>::to_vec).collect::<Vec<_>>(),
                    fields
                );
            }
        }
        out
    }

    #[test]
    fn field_end_finds_what_a_byte_by_byte_scan_finds() {
        let bytewise = |s: &[u8]| {
            s.iter()
                .position(|&c| matches!(c, b',' | b'\r' | b'\n'))
                .unwrap_or(s.len())
        };
        // Delimiters, their neighbours in value, bytes above 0x7f, at every place and length.
        let alphabet = [
            b',', b'\r', b'\n', b'a', b'+', b'-', 0x0b, 0x0c, 0x2d, 0x80, 0xac, 0xff, 0,
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..40 {
            for _ in 0..300 {
                let field: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        // Mostly plain text, so delimiters also come late.
                        if state % 5 == 0 {
                            alphabet[(state >> 8) as usize % alphabet.len()]
                        } else {
                            b'a' + (state >> 16) as u8 % 26
                        }
                    })
                    .collect();
                assert_eq!(field_end(&field), bytewise(&field), "{field:?}");
            }
        }
    }

    #[test]
    fn zero_bytes_marks_exactly_the_zero_bytes() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Words with zero bytes, bytes of 0x80 and 0x01 (carry and borrow cases) and others.
            let w = u64::from_le_bytes(state.to_le_bytes().map(|b| match b % 5 {
                0 => 0,
                1 => 0x80,
                2 => 0x01,
                _ => b,
            }));
            let want = w
                .to_le_bytes()
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == 0)
                .fold(0u64, |m, (i, _)| m | 0x80 << (8 * i));
            assert_eq!(zero_bytes(w), want, "{w:#018x}");
        }
    }

    #[test]
    fn chunks_split_records_as_the_csv_crate_does() {
        let cases: Vec<&[u8]> = vec![
            b"id,x\na,1\nb,2\n",
            b"id,x\na,1\nb,2",
            b"id,x\r\na,1\r\nb,2\r\n\r\nc,3\r\n",
            b"id,x\n\"a,b\",\"say \"\"hi\"\"\"\n\"multi\nline\",2\nz,\"\"\n",
            b"id,x\na\"b,c\"d\n\"q\"tail,x\n\"unterminated,1\nmore\n",
            b"id,x\na,1,\n,\nb\rc,2\n\n\n\nd,4\r\r\ne,\"\r\n\"\r\n",
            b"id,x\r\n\"a\r\nb\",1\r\n\"\",\"\"\"\"\r\nlast,",
            b"\xef\xbb\xbfid,x\n\xff\xfe,1\n\"\xc3\xa9\",2\n",
            b"id,x\n",
            b"id,x",
        ];
        let mut generated = b"id,name,x\n".to_vec();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..400 {
            for f in 0..3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let pieces: [&[u8]; 8] = [
                    b"abc",
                    b"\"q,\"\"x\"",
                    b"",
                    b"\"a\nb\"",
                    b"1;2",
                    b"\"\r\n\"",
                    b"x\"y",
                    b" ",
                ];
                generated.extend_from_slice(pieces[(state % 8) as usize]);
                if f < 2 {
                    generated.push(b',');
                }
            }
            generated.extend_from_slice(if i % 7 == 0 { b"\r\n" } else { b"\n" });
            if i % 31 == 0 {
                generated.extend_from_slice(b"\n\r\n");
            }
        }
        // Mostly plain lines (no quote, no `\r`) of every length, split eight bytes at a time,
        // with a quote or a `\r` now and then at any place of a word.
        let mut plain = b"id,name,x\n".to_vec();
        for i in 0..600 {
            for f in 0..1 + i % 9 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let pieces: [&[u8]; 8] = [
                    b"abcdefghij",
                    b"",
                    b"x",
                    b"1234567",
                    b"a\"b",
                    b"c\rd",
                    b"snowflake;dbt;looker",
                    b"\xc3\xa9t\xc3\xa9",
                ];
                let piece = pieces[(state % 8) as usize];
                // The rare pieces (a quote, a `\r`) one time in eight.
                let piece = if (4..6).contains(&(state % 8)) && state % 64 >= 8 {
                    b"plain".as_slice()
                } else {
                    piece
                };
                if f > 0 {
                    plain.push(b',');
                }
                plain.extend_from_slice(piece);
            }
            plain.push(b'\n');
        }
        plain.extend_from_slice(b"last,record,without,a,newline");
        let mut all: Vec<&[u8]> = cases;
        all.push(&generated);
        all.push(&plain);
        for text in all {
            let want = csv_crate_records(text);
            for target in [1, 2, 3, 5, 8, 13, 64, 1000, 1 << 20] {
                assert_eq!(
                    chunked_records(text, target),
                    want,
                    "{:?} in chunks of {target}",
                    String::from_utf8_lossy(text)
                );
            }
        }
    }

    /// What the chunk reader makes of the CSV file at `path`, read in chunks of about
    /// `target` bytes, its ids checked in order as `tierd score` checks them.
    fn read_in_chunks(path: &Path, target: usize) -> Vec<ReadItem> {
        let model = Model::from_toml(MODEL, "model").expect("model");
        let (layout, mut chunks) = CsvChunks::open(path, model.schema()).expect("open");
        let mut ids = IdSet::default();
        let mut split = RecordSplitter::default();
        let mut rec = layout.empty_record();
        let mut got = Vec::new();
        while let Some(chunk) = chunks.next_chunk(target, Vec::new()).expect("chunk") {
            split.start(&chunk);
            let text = chunk.text();
            while let Some(line) = split.next_record(&chunk.bytes) {
                match layout.read(&split, &chunk.bytes, text, line, &mut rec) {
                    Some(r) => got.push(ReadItem::Rejected(r)),
                    None => match ids.insert(&rec.id, line) {
                        Some(first) => got.push(ReadItem::Rejected(layout.duplicate(
                            &split,
                            &chunk.bytes,
                            line,
                            &rec.id,
                            first,
                        ))),
                        None => got.push(ReadItem::Account(rec.clone())),
                    },
                }
            }
        }
        got
    }

    /// Spaces and tabs around a cell, and around a list's items, are not part of the value,
    /// read whole or in chunks; a padded bad number is rejected by its trimmed text.
    #[test]
    fn cells_are_read_trimmed() {
        let dir = tempfile::tempdir().expect("dir");
        let padded = "id,name,firmographic.employee_count,technographic.technologies,firmographic.industry\n\
            \ta , Acme , 120 , Snowflake ; dbt ;\tSegment , Software\t\n\
            b,, 12k ,,Retail\n";
        let plain = "id,name,firmographic.employee_count,technographic.technologies,firmographic.industry\n\
            a,Acme,120,Snowflake;dbt;Segment,Software\n\
            b,,12k,,Retail\n";
        let want: Vec<ReadItem> = reader(plain, FileFormat::Csv).map(|r| r.expect("read")).collect();
        let whole: Vec<ReadItem> = reader(padded, FileFormat::Csv)
            .map(|r| r.expect("read"))
            .collect();
        let path = dir.path().join("padded.csv");
        std::fs::write(&path, padded).expect("write");
        let chunked = read_in_chunks(&path, 16);
        let accounts = |items: &[ReadItem]| -> Vec<AccountRecord> {
            items
                .iter()
                .filter_map(|i| match i {
                    ReadItem::Account(a) => Some(a.clone()),
                    ReadItem::Rejected(_) => None,
                })
                .collect()
        };
        let reasons = |items: &[ReadItem]| -> Vec<String> {
            items
                .iter()
                .filter_map(|i| match i {
                    ReadItem::Rejected(r) => Some(r.reason.clone()),
                    ReadItem::Account(_) => None,
                })
                .collect()
        };
        assert_eq!(accounts(&whole), accounts(&want));
        assert_eq!(accounts(&chunked), accounts(&want));
        assert_eq!(accounts(&want).len(), 1);
        assert_eq!(reasons(&whole), reasons(&want));
        assert_eq!(reasons(&chunked), reasons(&want));
        assert_eq!(reasons(&want).len(), 1, "{:?}", reasons(&want));
    }

    #[test]
    fn chunked_reading_rejects_as_the_account_reader_does() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("accounts.csv");
        let text = format!("{CSV}e,,1,,\n,Nameless,2,,\nf,Short\n");
        std::fs::write(&path, &text).expect("write");
        let want: Vec<ReadItem> = reader(&text, FileFormat::Csv).map(|r| r.expect("read")).collect();
        let got = read_in_chunks(&path, 16);
        assert_eq!(got, want);
        assert!(got.len() >= 8, "{got:?}");
    }

    /// A chunk checked for UTF-8 as a whole hands out its records unchecked; a chunk with an
    /// invalid byte falls back to checking each record, so only that record is rejected.
    #[test]
    fn chunks_with_and_without_valid_text_read_as_the_account_reader_does() {
        let mut bytes = format!("{CSV}é,Café Noir,3,Snowflake,Médias\n").into_bytes();
        bytes.extend_from_slice(b"g,Bad\xff,4,,\nh,Fine,5,,\n");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("accounts.csv");
        std::fs::write(&path, &bytes).expect("write");
        let model = Model::from_toml(MODEL, "model").expect("model");
        let input: Box<dyn io::Read + Send> = Box::new(io::Cursor::new(bytes));
        let want: Vec<ReadItem> =
            AccountReader::from_reader(Path::new("accounts.csv"), input, FileFormat::Csv, model.schema())
                .expect("reader")
                .map(|r| r.expect("read"))
                .collect();
        assert!(
            want.iter()
                .any(|r| matches!(r, ReadItem::Rejected(r) if r.reason.contains("not valid UTF-8"))),
            "{want:?}"
        );
        for target in [16, 1 << 20] {
            assert_eq!(read_in_chunks(&path, target), want, "chunks of {target} bytes");
        }
    }
}
