//! Audience exports: a tier's accounts (or their contacts) as files in the platforms' templates,
//! with what changed since the last export beside them.
//!
//! Each audience is a directory. An export writes there:
//!
//! - `full.<ext>`: the whole list (`full-1.csv`, `full-2.csv`, ... when the platform's per-file
//!   limit splits it, each part with the header);
//! - `adds.<ext>` and `removes.<ext>`: members that joined and left since the previous export in
//!   that directory, in the same template and split the same way (a first export adds everyone);
//! - `.tierd-audience.jsonl`: what the next export diffs against: the format, then one
//!   `{key, row}` per member.
//!   The key is the account id for company lists and the row's hashes for people; the row is the
//!   line as written, so people's lists keep hashes only, never a raw email or phone.
//!
//! Files are written under temporary names and renamed into place, the state last, so an export
//! interrupted half-way is repeated whole by the next one. Errors name the path.
//!
//! Formats: [`AudienceFormat`]. Company lists (`linkedin-companies`, `csv`, `jsonl`) come from
//! [`AudienceAccount`]s; people lists (`google-customer-match`, `meta-custom-audience`) from the
//! [`Contact`]s of the tier's accounts, normalised and hashed in [`people`].

mod from_store;
mod linkedin;
pub mod people;

pub use from_store::{account_ids_in_tiers, accounts_in_tiers, export_tiers, AudienceError};

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tierd_core::Tier;

pub use linkedin::{ColumnSource, LinkedInMapping, RawLinkedInMapping, LINKEDIN_HEADER};
pub use people::{GOOGLE_HEADER, META_HEADER};

/// An account in an audience.
#[derive(Debug, Clone, PartialEq)]
pub struct AudienceAccount {
    /// Its id in the CRM.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its domain.
    pub domain: Option<String>,
    /// Its tier.
    pub tier: Tier,
    /// Its score.
    pub score: f64,
    /// The top reasons, in a seller's words.
    pub reasons: Vec<String>,
    /// Its facts as the store keeps them (`{name: {value, source, observed_at}}`).
    pub facts: serde_json::Value,
}

/// A person at an account, as the CRM has them. Used only to write an export: raw values are
/// never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Contact {
    /// The account the contact belongs to.
    pub account_id: String,
    /// Email address.
    pub email: Option<String>,
    /// Phone number, in any format the country's conventions allow.
    pub phone: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// ISO 3166-1 alpha-2 country code (`US`, `de`).
    pub country: Option<String>,
    /// Postal code.
    pub zip: Option<String>,
}

/// Only the account: a contact's details are personal data and stay out of logs.
impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contact")
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudienceFormat {
    /// `linkedin-companies`: LinkedIn Matched Audiences company list.
    LinkedInCompanies,
    /// `google-customer-match`: Google Ads Customer Match, hashed.
    GoogleCustomerMatch,
    /// `meta-custom-audience`: Meta customer list, hashed.
    MetaCustomAudience,
    /// `csv`: id, name, domain, tier, score, reasons.
    Csv,
    /// `jsonl`: the same fields, one JSON object per line.
    Jsonl,
}

impl AudienceFormat {
    /// Every format.
    pub const ALL: [AudienceFormat; 5] = [
        AudienceFormat::LinkedInCompanies,
        AudienceFormat::GoogleCustomerMatch,
        AudienceFormat::MetaCustomAudience,
        AudienceFormat::Csv,
        AudienceFormat::Jsonl,
    ];

    /// Its name on the command line and in config.
    pub fn as_str(self) -> &'static str {
        match self {
            AudienceFormat::LinkedInCompanies => "linkedin-companies",
            AudienceFormat::GoogleCustomerMatch => "google-customer-match",
            AudienceFormat::MetaCustomAudience => "meta-custom-audience",
            AudienceFormat::Csv => "csv",
            AudienceFormat::Jsonl => "jsonl",
        }
    }

    /// Whether it lists people (from contacts) rather than companies.
    pub fn needs_contacts(self) -> bool {
        matches!(
            self,
            AudienceFormat::GoogleCustomerMatch | AudienceFormat::MetaCustomAudience
        )
    }

    fn extension(self) -> &'static str {
        match self {
            AudienceFormat::Jsonl => "jsonl",
            _ => "csv",
        }
    }
}

impl fmt::Display for AudienceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AudienceFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        AudienceFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = AudienceFormat::ALL.iter().map(|f| f.as_str()).collect();
                format!(
                    "unknown audience format '{s}' (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// How large one file may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    /// Data rows per file (the header not counted).
    pub max_rows: usize,
    /// Bytes per file, header included.
    pub max_bytes: usize,
}

impl FileLimits {
    /// LinkedIn's: 300,000 records or 20 MB per file. 20 MB is taken as 20,000,000 bytes, the
    /// smaller reading.
    pub const LINKEDIN: FileLimits = FileLimits {
        max_rows: 300_000,
        max_bytes: 20_000_000,
    };
    /// No split.
    pub const NONE: FileLimits = FileLimits {
        max_rows: usize::MAX,
        max_bytes: usize::MAX,
    };
}

/// LinkedIn will not build a list from fewer rows than this.
pub const LINKEDIN_MIN_ROWS: usize = 300;
/// Meta advises against customer lists of fewer people than this.
pub const META_MIN_ROWS: usize = 100;

/// What an export did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExportReport {
    /// The audience's directory.
    pub directory: PathBuf,
    /// The full list's files, in order (`adds` and `removes` are split the same way).
    pub files: Vec<PathBuf>,
    /// Members in the list.
    pub rows: usize,
    /// Members added since the previous export.
    pub added: usize,
    /// Members removed since the previous export.
    pub removed: usize,
    /// Contacts left out: nothing the platform can match on.
    pub skipped: usize,
    /// Contacts whose phone was left out (unreadable, or no country to read it in).
    pub phones_dropped: usize,
    /// Things a person should know (a list too small to upload).
    pub warnings: Vec<String>,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A file or directory could not be written or read.
    #[error("cannot {op} {}: {source} (check the path exists and is writable)", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The previous export's state file does not read.
    #[error("cannot read {}: line {line}: {detail} (delete it to start the audience afresh)", path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// The format lists people, the input companies (or the other way round).
    #[error("the {format} format {detail}")]
    WrongInput {
        /// The format.
        format: AudienceFormat,
        /// What it needs.
        detail: &'static str,
    },
}

/// How a contact becomes one platform's row.
type PersonRowFn = fn(&Contact) -> Option<people::PersonRow>;

/// One member: its diff key and its line as written.
struct Member {
    key: String,
    line: String,
}

const STATE_FILE: &str = ".tierd-audience.jsonl";

/// Writes the audience of `accounts` in `format` (a company format) to `dir`, with the adds and
/// removes since the previous export there.
pub fn export_accounts(
    dir: &Path,
    format: AudienceFormat,
    accounts: &[AudienceAccount],
    linkedin: &LinkedInMapping,
) -> Result<ExportReport, ExportError> {
    let mut report = ExportReport::default();
    let (header, members, limits) = match format {
        AudienceFormat::LinkedInCompanies => {
            let members = accounts
                .iter()
                .map(|a| Member {
                    key: a.id.clone(),
                    line: csv_line(&linkedin.row(a)),
                })
                .collect::<Vec<_>>();
            if members.len() < LINKEDIN_MIN_ROWS {
                report.warnings.push(format!(
                    "LinkedIn needs at least {LINKEDIN_MIN_ROWS} companies to upload a list; this one has {}",
                    members.len()
                ));
            }
            (Some(csv_line(&LINKEDIN_HEADER)), members, FileLimits::LINKEDIN)
        }
        AudienceFormat::Csv => {
            let members = accounts
                .iter()
                .map(|a| Member {
                    key: a.id.clone(),
                    line: csv_line(&[
                        a.id.clone(),
                        a.name.clone(),
                        a.domain.clone().unwrap_or_default(),
                        a.tier.as_str().to_string(),
                        score_text(a.score),
                        a.reasons.join("; "),
                    ]),
                })
                .collect();
            (
                Some(csv_line(&["id", "name", "domain", "tier", "score", "reasons"])),
                members,
                FileLimits::NONE,
            )
        }
        AudienceFormat::Jsonl => {
            let members = accounts
                .iter()
                .map(|a| Member {
                    key: a.id.clone(),
                    line: format!("{}\n", jsonl_line(a)),
                })
                .collect();
            (None, members, FileLimits::NONE)
        }
        AudienceFormat::GoogleCustomerMatch | AudienceFormat::MetaCustomAudience => {
            return Err(ExportError::WrongInput {
                format,
                detail: "lists people: export the contacts of the tier's accounts (export_contacts)",
            })
        }
    };
    write_audience(dir, format, header.as_deref(), members, limits, report)
}

/// Writes the people audience of `contacts` in `format` (`google-customer-match` or
/// `meta-custom-audience`) to `dir`, normalised and hashed, with the adds and removes since the
/// previous export there.
pub fn export_contacts(
    dir: &Path,
    format: AudienceFormat,
    contacts: &[Contact],
) -> Result<ExportReport, ExportError> {
    let (header, to_row): (&[&str], PersonRowFn) = match format {
        AudienceFormat::GoogleCustomerMatch => (&GOOGLE_HEADER, people::google_row),
        AudienceFormat::MetaCustomAudience => (&META_HEADER, people::meta_row),
        _ => {
            return Err(ExportError::WrongInput {
                format,
                detail: "lists companies: export the tier's accounts (export_accounts)",
            })
        }
    };
    let mut report = ExportReport::default();
    let mut members = Vec::with_capacity(contacts.len());
    for c in contacts {
        match to_row(c) {
            None => report.skipped += 1,
            Some(row) => {
                report.phones_dropped += usize::from(row.phone_dropped);
                let line = csv_line(&row.cells);
                // A person is the hashes that identify them: a changed phone is a new member.
                members.push(Member {
                    key: people::sha256_hex(&line),
                    line,
                });
            }
        }
    }
    if report.skipped > 0 {
        report.warnings.push(format!(
            "{} contacts had nothing {} can match on (no email, phone, or full name with country and zip) and were left out",
            report.skipped,
            platform(format)
        ));
    }
    if report.phones_dropped > 0 {
        report.warnings.push(format!(
            "{} phone numbers were left out: not valid, or no country code to read them in E.164",
            report.phones_dropped
        ));
    }
    if format == AudienceFormat::MetaCustomAudience && members.len() < META_MIN_ROWS {
        report.warnings.push(format!(
            "Meta advises against lists of fewer than {META_MIN_ROWS} people; this one has {}",
            members.len()
        ));
    }
    write_audience(
        dir,
        format,
        Some(&csv_line(header)),
        members,
        FileLimits::NONE,
        report,
    )
}

fn platform(format: AudienceFormat) -> &'static str {
    match format {
        AudienceFormat::GoogleCustomerMatch => "Google",
        AudienceFormat::MetaCustomAudience => "Meta",
        _ => "the platform",
    }
}

/// One `jsonl` object, fields in the same order as the `csv` columns.
fn jsonl_line(a: &AudienceAccount) -> String {
    #[derive(serde::Serialize)]
    struct Line<'a> {
        id: &'a str,
        name: &'a str,
        domain: Option<&'a str>,
        tier: &'a str,
        score: f64,
        reasons: &'a [String],
    }
    // Serialising strings and numbers cannot fail.
    serde_json::to_string(&Line {
        id: &a.id,
        name: &a.name,
        domain: a.domain.as_deref(),
        tier: a.tier.as_str(),
        score: a.score,
        reasons: &a.reasons,
    })
    .unwrap_or_default()
}

/// The score as written: at most 3 decimals, no trailing zeros.
fn score_text(score: f64) -> String {
    let s = format!("{score:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One CSV record with its `\n`, quoted where needed.
fn csv_line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    // Writing strings to memory cannot fail.
    let _ = writer.write_record(cells.iter().map(|c| c.as_ref()));
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

fn write_audience(
    dir: &Path,
    format: AudienceFormat,
    header: Option<&str>,
    members: Vec<Member>,
    limits: FileLimits,
    mut report: ExportReport,
) -> Result<ExportReport, ExportError> {
    fs::create_dir_all(dir).map_err(|source| ExportError::Io {
        op: "create the audience directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut seen = HashSet::with_capacity(members.len());
    let members: Vec<Member> = members
        .into_iter()
        .filter(|m| seen.insert(m.key.clone()))
        .collect();
    let state_path = dir.join(STATE_FILE);
    let previous = read_state(&state_path, format)?;
    let previous_keys: HashSet<&str> = previous.iter().map(|m| m.key.as_str()).collect();
    let adds = members.iter().filter(|m| !previous_keys.contains(m.key.as_str()));
    let removes = previous.iter().filter(|m| !seen.contains(&m.key));

    let ext = format.extension();
    let header_len = header.map_or(0, str::len);
    report.files = write_parts(dir, "full", ext, header, split(header_len, &members, limits))?;
    let adds = split(header_len, adds, limits);
    let removes = split(header_len, removes, limits);
    report.added = adds.iter().map(Vec::len).sum();
    report.removed = removes.iter().map(Vec::len).sum();
    write_parts(dir, "adds", ext, header, adds)?;
    write_parts(dir, "removes", ext, header, removes)?;
    let format_line = format!("{}\n", serde_json::json!({ "format": format.as_str() }));
    let state: Vec<String> = members
        .iter()
        .map(|m| format!("{}\n", serde_json::json!({"key": m.key, "row": m.line})))
        .collect();
    write_lines(
        &state_path,
        std::iter::once(format_line.as_str()).chain(state.iter().map(String::as_str)),
    )?;
    report.directory = dir.to_path_buf();
    report.rows = members.len();
    Ok(report)
}

/// Members cut into files within `limits` (at least one file, possibly with the header only).
fn split<'a>(
    header_len: usize,
    members: impl IntoIterator<Item = &'a Member>,
    limits: FileLimits,
) -> Vec<Vec<&'a Member>> {
    let mut parts: Vec<Vec<&Member>> = vec![Vec::new()];
    let mut bytes = header_len;
    for m in members {
        let current = parts.last().map_or(0, Vec::len);
        if current > 0 && (current >= limits.max_rows || bytes + m.line.len() > limits.max_bytes) {
            parts.push(Vec::new());
            bytes = header_len;
        }
        bytes += m.line.len();
        if let Some(part) = parts.last_mut() {
            part.push(m);
        }
    }
    parts
}

/// Writes `stem.ext`, or `stem-1.ext`, `stem-2.ext`... when there are several parts, after
/// removing the parts of an earlier, longer export. Returns the paths written.
fn write_parts(
    dir: &Path,
    stem: &str,
    ext: &str,
    header: Option<&str>,
    parts: Vec<Vec<&Member>>,
) -> Result<Vec<PathBuf>, ExportError> {
    remove_old_parts(dir, stem, ext)?;
    let many = parts.len() > 1;
    let mut paths = Vec::with_capacity(parts.len());
    for (i, part) in parts.into_iter().enumerate() {
        let name = if many {
            format!("{stem}-{}.{ext}", i + 1)
        } else {
            format!("{stem}.{ext}")
        };
        let path = dir.join(name);
        write_file(&path, header, part.into_iter())?;
        paths.push(path);
    }
    Ok(paths)
}

fn remove_old_parts(dir: &Path, stem: &str, ext: &str) -> Result<(), ExportError> {
    let entries = fs::read_dir(dir).map_err(|source| ExportError::Io {
        op: "list",
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_part = name
            .strip_prefix(stem)
            .and_then(|rest| rest.strip_suffix(&format!(".{ext}")))
            .is_some_and(|mid| {
                mid.is_empty() || mid.strip_prefix('-').is_some_and(|n| n.parse::<u32>().is_ok())
            });
        if is_part {
            fs::remove_file(entry.path()).map_err(|source| ExportError::Io {
                op: "remove the old part",
                path: entry.path(),
                source,
            })?;
        }
    }
    Ok(())
}

fn write_file<'a>(
    path: &Path,
    header: Option<&'a str>,
    members: impl Iterator<Item = &'a Member>,
) -> Result<(), ExportError> {
    write_lines(path, header.into_iter().chain(members.map(|m| m.line.as_str())))
}

/// Writes `lines` to `path` through a temporary file renamed into place.
fn write_lines<'a>(path: &Path, lines: impl Iterator<Item = &'a str>) -> Result<(), ExportError> {
    let tmp = path.with_extension("tmp");
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| ExportError::Io { op, path: p, source }
    };
    let file = fs::File::create(&tmp).map_err(io("create", &tmp))?;
    let mut out = std::io::BufWriter::new(file);
    for line in lines {
        out.write_all(line.as_bytes()).map_err(io("write", &tmp))?;
    }
    let file = out.into_inner().map_err(|e| ExportError::Io {
        op: "write",
        path: tmp.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io("write", &tmp))?;
    fs::rename(&tmp, path).map_err(io("move into place", path))
}

fn read_state(path: &Path, format: AudienceFormat) -> Result<Vec<Member>, ExportError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ExportError::Io {
                op: "read",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Format { format: String },
        Member { key: String, row: String },
    }
    let mut members = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |detail: String| ExportError::State {
            path: path.to_path_buf(),
            line: i + 1,
            detail,
        };
        match serde_json::from_str::<Entry>(line).map_err(|e| bad(e.to_string()))? {
            Entry::Format { format: found } if found != format.as_str() => {
                return Err(bad(format!(
                    "this directory holds a {found} audience, not {format}: export to another directory"
                )))
            }
            Entry::Format { .. } => {}
            Entry::Member { key, row } => members.push(Member { key, line: row }),
        }
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_only_when_needed() {
        assert_eq!(
            csv_line(&["a", "b,c", "say \"hi\"", ""]),
            "a,\"b,c\",\"say \"\"hi\"\"\",\n"
        );
    }

    fn members(lines: &[&str]) -> Vec<Member> {
        lines
            .iter()
            .map(|l| Member {
                key: l.to_string(),
                line: format!("{l}\n"),
            })
            .collect()
    }

    fn parts(header_len: usize, m: &[Member], limits: FileLimits) -> Vec<Vec<&str>> {
        split(header_len, m, limits)
            .into_iter()
            .map(|p| p.into_iter().map(|m| m.key.as_str()).collect())
            .collect()
    }

    #[test]
    fn files_are_split_at_the_row_limit_or_the_byte_limit() {
        let m = members(&["aaaa", "bbbb", "cccc", "dddd", "eeee"]);
        let rows = FileLimits {
            max_rows: 2,
            max_bytes: usize::MAX,
        };
        assert_eq!(
            parts(7, &m, rows),
            [vec!["aaaa", "bbbb"], vec!["cccc", "dddd"], vec!["eeee"]]
        );
        // Header 7 bytes + 5 per line: 17 bytes hold two lines, 16 only one.
        let bytes = |max_bytes| FileLimits {
            max_rows: usize::MAX,
            max_bytes,
        };
        assert_eq!(
            parts(7, &m, bytes(17)),
            [vec!["aaaa", "bbbb"], vec!["cccc", "dddd"], vec!["eeee"]]
        );
        assert_eq!(parts(7, &m, bytes(16)).len(), 5);
        // A line larger than the limit still gets a file of its own rather than being lost.
        assert_eq!(parts(7, &m, bytes(3)).len(), 5);
        assert_eq!(
            parts(7, &[], rows),
            [Vec::<&str>::new()],
            "an empty list is one file with its header"
        );
        assert_eq!(FileLimits::LINKEDIN.max_rows, 300_000);
    }

    #[test]
    fn scores_are_written_short() {
        assert_eq!(score_text(4.5), "4.5");
        assert_eq!(score_text(3.0), "3");
        assert_eq!(score_text(4.12345), "4.123");
    }

    #[test]
    fn formats_parse_by_name() {
        for f in AudienceFormat::ALL {
            assert_eq!(f.as_str().parse::<AudienceFormat>(), Ok(f));
        }
        assert!("linkedin"
            .parse::<AudienceFormat>()
            .unwrap_err()
            .contains("linkedin-companies"));
    }
}
