//! Account files in (CSV or JSONL), tier files out.
//!
//! Input: one account per row or line, an `id`, optional `name`, `domain` and
//! `locked_tier`, and facts named `namespace.fact` (lists `;`-separated in CSV,
//! arrays in JSONL; dates ISO-8601). Values are parsed into the types the model
//! reads ([`FactSchema`]); a row that does not parse, lacks an id or repeats one
//! is rejected with its line number and reason, and kept whole in a rejects file,
//! so nothing is lost. Output: `id,score,tier,coverage,model_version,explanation`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tierd_core::decimal::push_fixed;
use tierd_core::fact::{FactType, FactValue};
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
        /// Added to the parser's line numbers (a chunk's reader starts mid-file).
        line_offset: u64,
        reader: csv::Reader<Box<dyn io::Read + Send>>,
        columns: Arc<[Column]>,
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
        let (mut header, mut ignored) = (Vec::new(), Vec::new());
        let source = match format {
            FileFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .flexible(true)
                    .buffer_capacity(1 << 16)
                    .from_reader(input);
                let head = reader.headers().map_err(csv_err(path))?.clone();
                let (columns, h, i) = csv_columns(path, &head, schema)?;
                (header, ignored) = (h, i);
                Source::Csv {
                    line_offset: 0,
                    reader,
                    columns: columns.into(),
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
                seen: Some(SeenIds::default()),
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
            line_offset,
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
                        let line = *line_offset + e.position().map_or(0, |p| p.line());
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
        let line = *line_offset + record.position().map_or(0, |p| p.line());
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
        rec.lock = None;
        let mut has_id = false;
        let mut problems: Vec<String> = Vec::new();
        for (col, bytes) in columns.iter().zip(fields.iter()) {
            if matches!(col, Column::Ignored) {
                continue;
            }
            let Ok(text) = std::str::from_utf8(bytes) else {
                problems.push(format!("{}: not valid UTF-8", check.column_name(col)));
                continue;
            };
            let text = text.trim();
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
                Column::Fact(slot, ty) => {
                    if let Err(e) = ty.parse_into(text, &mut rec.facts.0[slot]) {
                        problems.push(format!("{}: {e}", check.schema.name(slot)));
                    }
                }
                Column::Ignored => {}
            }
        }
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

/// Why a record is rejected as a repeat.
fn duplicate_reason(id: &str, first: u64) -> String {
    format!("duplicate id '{id}' (first seen on line {first})")
}

/// An accounts file cut into chunks of whole records, so that several threads can parse
/// (and score) it at once: [`Chunks::next_chunk`] reads on one thread, [`ChunkParser::reader`]
/// parses a chunk on any. Ids repeat across chunks, so chunk readers do not check them: the
/// caller passes every account, in file order, through one [`IdSet`].
pub struct Chunks {
    input: File,
    parser: ChunkParser,
    /// Read but not yet handed out: the start of a record cut by the last read.
    carry: Vec<u8>,
    /// Line of the first byte of `carry` (1-based).
    next_line: u64,
    eof: bool,
    header: Vec<String>,
    ignored: Vec<String>,
}

/// Whole records of an accounts file, and the line the first starts on.
#[derive(Debug, Clone)]
pub struct Chunk {
    bytes: Arc<[u8]>,
    first_line: u64,
}

impl Chunk {
    /// The chunk's size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the chunk holds nothing.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// What a chunk's reader needs of the file: its format, columns and schema (cheap to clone).
#[derive(Clone)]
pub struct ChunkParser {
    path: PathBuf,
    format: FileFormat,
    columns: Arc<[Column]>,
    schema: FactSchema,
}

/// In-memory bytes shared between a chunk and its reader.
struct Shared(Arc<[u8]>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Chunks {
    /// Opens `path` and reads its header (CSV), reading the facts `schema` names.
    pub fn open(path: &Path, schema: &FactSchema) -> Result<Chunks, FileError> {
        let format = FileFormat::from_path(path)?;
        let mut input = File::open(path).map_err(io_err(path))?;
        let mut chunks = Chunks {
            input: File::open(path).map_err(io_err(path))?,
            parser: ChunkParser {
                path: path.to_path_buf(),
                format,
                columns: Arc::from(Vec::new()),
                schema: schema.clone(),
            },
            carry: Vec::new(),
            next_line: 1,
            eof: false,
            header: Vec::new(),
            ignored: Vec::new(),
        };
        if format == FileFormat::Csv {
            // The header is the first record; the chunks start after it.
            let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(&mut input);
            let head = reader.headers().map_err(csv_err(path))?.clone();
            let end = reader.position().byte();
            let (columns, header, ignored) = csv_columns(path, &head, schema)?;
            chunks.parser.columns = columns.into();
            chunks.header = header;
            chunks.ignored = ignored;
            chunks.next_line = reader.position().line();
            drop(reader);
            io::Seek::seek(&mut chunks.input, io::SeekFrom::Start(end)).map_err(io_err(path))?;
        }
        Ok(chunks)
    }

    /// The CSV header as read (empty for JSONL).
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Columns that are neither tierd's nor read by the model (CSV only).
    pub fn ignored_columns(&self) -> &[String] {
        &self.ignored
    }

    /// What parses this file's chunks.
    pub fn parser(&self) -> ChunkParser {
        self.parser.clone()
    }

    /// The next chunk of whole records, of about `size` bytes or more (a record is never cut),
    /// or `None` at the end of the file.
    pub fn next_chunk(&mut self, size: usize) -> Result<Option<Chunk>, FileError> {
        let mut buf = std::mem::take(&mut self.carry);
        loop {
            if !self.eof {
                let start = buf.len();
                buf.resize(start + size.max(1), 0);
                let mut filled = start;
                while filled < buf.len() {
                    match io::Read::read(&mut self.input, &mut buf[filled..]) {
                        Ok(0) => {
                            self.eof = true;
                            break;
                        }
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(io_err(&self.parser.path)(e)),
                    }
                }
                buf.truncate(filled);
            }
            if buf.is_empty() {
                return Ok(None);
            }
            let cut = if self.eof {
                Some(buf.len())
            } else {
                record_end(&buf, self.parser.format)
            };
            if let Some(cut) = cut {
                self.carry = buf.split_off(cut);
                let first_line = self.next_line;
                self.next_line += count_byte(&buf, b'\n');
                return Ok(Some(Chunk {
                    bytes: Arc::from(buf),
                    first_line,
                }));
            }
            // One record longer than the chunk: read on.
        }
    }
}

/// How many times `byte` occurs in `bytes` (a loop the compiler vectorises).
fn count_byte(bytes: &[u8], byte: u8) -> u64 {
    bytes.iter().map(|&b| u64::from(b == byte)).sum()
}

/// Just past the last record boundary of `buf` (a newline outside quotes, for CSV), if any.
fn record_end(buf: &[u8], format: FileFormat) -> Option<usize> {
    if format == FileFormat::Jsonl {
        return buf.iter().rposition(|&b| b == b'\n').map(|nl| nl + 1);
    }
    let mut quotes = count_byte(buf, b'"');
    // Walk back over the newlines: the quotes after a newline decide whether the text before
    // it left a quote open (CSV doubles a quote inside quotes, so only the parity counts).
    let mut end = buf.len();
    while let Some(nl) = buf[..end].iter().rposition(|&b| b == b'\n') {
        quotes -= count_byte(&buf[nl..end], b'"');
        if quotes % 2 == 0 {
            return Some(nl + 1);
        }
        end = nl;
    }
    None
}

impl ChunkParser {
    /// A reader of `chunk`'s records, with the file's line numbers. It does not check ids
    /// across records: pass them through an [`IdSet`].
    pub fn reader(&self, chunk: &Chunk) -> AccountReader {
        let input: Box<dyn io::Read + Send> = Box::new(io::Cursor::new(Shared(chunk.bytes.clone())));
        let source = match self.format {
            FileFormat::Csv => Source::Csv {
                line_offset: chunk.first_line - 1,
                reader: csv::ReaderBuilder::new()
                    .flexible(true)
                    .has_headers(false)
                    .buffer_capacity(1 << 16)
                    .from_reader(input),
                columns: self.columns.clone(),
                record: csv::ByteRecord::new(),
            },
            FileFormat::Jsonl => Source::Jsonl {
                lines: BufReader::with_capacity(1 << 16, input).lines(),
                line: chunk.first_line - 1,
            },
        };
        AccountReader {
            path: self.path.clone(),
            check: RowCheck {
                schema: self.schema.clone(),
                seen: None,
            },
            source,
            header: Vec::new(),
            ignored: Vec::new(),
        }
    }

    /// The record of `chunk` that starts on `line`, rejected as a repeat of the account first
    /// seen on line `first` (what [`IdSet::insert`] returned), as the rejects file keeps it.
    pub fn duplicate(&self, chunk: &Chunk, line: u64, id: &str, first: u64) -> Rejected {
        let raw = match self.format {
            FileFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .flexible(true)
                    .has_headers(false)
                    .from_reader(&chunk.bytes[..]);
                let mut record = csv::ByteRecord::new();
                let mut fields = Vec::new();
                while let Ok(true) = reader.read_byte_record(&mut record) {
                    if chunk.first_line - 1 + record.position().map_or(0, |p| p.line()) == line {
                        fields = record
                            .iter()
                            .map(|f| String::from_utf8_lossy(f).into_owned())
                            .collect();
                        break;
                    }
                }
                RawRecord::Csv(fields)
            }
            FileFormat::Jsonl => {
                let nth = usize::try_from(line.saturating_sub(chunk.first_line)).unwrap_or(usize::MAX);
                let text = chunk.bytes.split(|&b| b == b'\n').nth(nth).unwrap_or_default();
                RawRecord::Jsonl(String::from_utf8_lossy(text).trim_end_matches('\r').to_string())
            }
        };
        Rejected {
            line,
            id: Some(id.to_string()),
            reason: duplicate_reason(id, first),
            raw,
        }
    }
}

/// The ids of a file read in chunks, checked in file order.
#[derive(Default)]
pub struct IdSet(SeenIds);

impl IdSet {
    /// Remembers `id` at `line`; when it was seen before, returns the line it was first seen on.
    pub fn insert(&mut self, id: &str, line: u64) -> Option<u64> {
        self.0.insert(id, line)
    }
}

/// What each column holds, the header as read, and the columns nothing reads.
type HeaderColumns = (Vec<Column>, Vec<String>, Vec<String>);

/// The columns of a CSV header: what each holds, the header as read and the columns nothing reads.
fn csv_columns(
    path: &Path,
    head: &csv::StringRecord,
    schema: &FactSchema,
) -> Result<HeaderColumns, FileError> {
    let mut header = Vec::new();
    let mut ignored = Vec::new();
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
    Ok((columns, header, ignored))
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
    /// `None` in a chunk's reader: the caller checks ids across chunks ([`IdSet`]).
    seen: Option<SeenIds>,
}

impl RowCheck {
    fn column_name(&self, col: &Column) -> String {
        match col {
            Column::Id => "id".into(),
            Column::Name => "name".into(),
            Column::Domain => "domain".into(),
            Column::Lock => "locked_tier".into(),
            Column::Fact(slot, _) => self.schema.name(*slot).to_string(),
            Column::Ignored => String::new(),
        }
    }

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
            if let Some(first) = self.seen.as_mut().and_then(|s| s.insert(&rec.id, rec.line)) {
                problems.push(duplicate_reason(&rec.id, first));
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
        let hash = id_hash(id.as_bytes());
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

/// FxHash-style rounds over 8-byte words, then a 64-bit finaliser so every bit is mixed.
fn id_hash(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
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

    /// Everything a reader gives: accounts as (line, id, facts) and rejects as they are.
    fn all_items(reader: &mut AccountReader) -> Vec<Result<(u64, String, FactRow), Rejected>> {
        let mut rec = reader.empty_record();
        let mut out = Vec::new();
        loop {
            match reader.read_into(&mut rec).expect("read") {
                Next::Account => out.push(Ok((rec.line, rec.id.clone(), rec.facts.clone()))),
                Next::Rejected(r) => out.push(Err(r)),
                Next::End => return out,
            }
        }
    }

    #[test]
    fn chunks_of_any_size_give_what_one_reader_gives() {
        // Quoted newlines and quotes, a repeated id, a bad value, a short row and no final
        // newline (and a blank line in JSONL): chunk borders must fall between records, lines
        // must stay the file's, and a repeat is found across chunks. (A blank CSV line is left
        // out: the csv crate numbers the record after it from the blank line, a chunk from the
        // record itself.)
        let csv = "id,name,firmographic.employee_count,technographic.technologies,firmographic.industry\n\
            a,\"Acme,\nInc\",120,Snowflake;dbt,Software\n\
            b,\"Bee \"\"B\"\"\",12k,,Retail\n\
            c,Corp,,Looker,\n\
            a,\"Again\n\n\",5,,\n\
            d,Dee\n\
            e,Eee,7,Snowflake,Media";
        let jsonl = "{\"id\":\"a\",\"firmographic.employee_count\":120}\n\n{\"id\":\"b\"}\nnot json\n{\"id\":\"a\"}\n{\"id\":\"c\"}";
        let model = Model::from_toml(MODEL, "model").expect("model");
        let dir = tempfile::tempdir().expect("dir");
        for (name, text) in [("accounts.csv", csv), ("accounts.jsonl", jsonl)] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            let mut whole = AccountReader::open(&path, model.schema()).expect("open");
            let expected = all_items(&mut whole);
            assert!(expected
                .iter()
                .any(|i| matches!(i, Err(r) if r.reason.starts_with("duplicate id 'a'"))));
            for size in [1, 2, 7, 16, 33, 64, 1 << 16] {
                let mut chunks = Chunks::open(&path, model.schema()).expect("chunks");
                assert_eq!(chunks.header(), whole.header(), "{name}");
                let parser = chunks.parser();
                let mut ids = IdSet::default();
                let mut got = Vec::new();
                while let Some(chunk) = chunks.next_chunk(size).expect("chunk") {
                    for item in all_items(&mut parser.reader(&chunk)) {
                        got.push(match item {
                            Ok((line, id, facts)) => match ids.insert(&id, line) {
                                Some(first) => Err(parser.duplicate(&chunk, line, &id, first)),
                                None => Ok((line, id, facts)),
                            },
                            Err(r) => Err(r),
                        });
                    }
                }
                assert_eq!(got, expected, "{name} in chunks of {size} bytes");
            }
        }
    }

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
}
