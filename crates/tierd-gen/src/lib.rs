//! Synthetic B2B accounts for tests, benchmarks, the demo and CRM emulators.
//!
//! This crate owns one thing: a deterministic generator of realistic-looking account
//! data (firmographics, technographics, contracts, engagement, CRM estimates), skewed
//! and correlated enough to produce a believable tiering pyramid. Output depends only
//! on [`GenOptions`]: the same seed and `as_of` date give byte-identical output on every
//! platform and in every future version of this crate (a golden test pins it), and
//! account number `k` depends only on the seed, `k` and `as_of`, so a prefix of a large
//! run equals a small run, and generation streams in constant memory.
//!
//! It must not depend on any tierd crate other than `tierd-core`, nor on a random-number
//! crate (its own frozen PRNG lives in `rng`), and it does no I/O beyond writing to the
//! caller-supplied [`std::io::Write`].
//!
//! ```
//! use tierd_core::date::Date;
//! use tierd_gen::{GenOptions, Generator};
//!
//! let opts = GenOptions { seed: 7, as_of: Date::from_days(20_000) };
//! let first: Vec<_> = Generator::new(opts).take(3).collect();
//! assert_eq!(first[2].id, "acc-00000003");
//!
//! let mut csv = Vec::new();
//! tierd_gen::write_csv(&mut csv, 3, opts).unwrap();
//! assert_eq!(csv.iter().filter(|&&b| b == b'\n').count(), 4); // header + 3 rows
//! ```

use std::io::{self, BufWriter, Write};

pub use tierd_core::date::Date;
use tierd_core::fact::FactValue;

mod format;
mod model;
mod rng;

use format::Cell;

/// What to generate: everything the output depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GenOptions {
    /// Selects the data set; any value is fine.
    pub seed: u64,
    /// The day the data describes: event dates fall before it, renewals around it.
    pub as_of: Date,
}

/// One generated account. `None` / an empty list means "unknown" or "none" (an empty cell).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyntheticAccount {
    /// `acc-00000001`, `acc-00000002`, ... (at least 8 digits, numbered from 1).
    pub id: String,
    /// Company name, e.g. `Valoria Health`.
    pub name: String,
    /// Web domain derived from the name; unique per id, e.g. `valoria-health-2s.com`.
    pub domain: String,
    /// `firmographic.industry`, e.g. `Software`.
    pub industry: Option<&'static str>,
    /// `firmographic.employee_count`.
    pub employee_count: Option<u64>,
    /// `firmographic.annual_revenue`, in whole US dollars.
    pub annual_revenue: Option<u64>,
    /// `firmographic.region`: `North America`, `EMEA`, `APAC` or `LATAM`.
    pub region: Option<&'static str>,
    /// `firmographic.country`, an ISO 3166 alpha-2 code within the region.
    pub country: Option<&'static str>,
    /// `firmographic.org_type`: `public`, `private`, `nonprofit`, `government` or `education`.
    pub org_type: Option<&'static str>,
    /// `technographic.technologies`; empty when unknown.
    pub technologies: Vec<&'static str>,
    /// `contracts.current_vendor` of the data-activation tool the account uses, if any.
    pub current_vendor: Option<&'static str>,
    /// `contracts.renewal_date`; present exactly when there is a vendor.
    pub renewal_date: Option<Date>,
    /// `contracts.is_competitor`: whether the vendor is a competitor; present exactly when there is a vendor.
    pub is_competitor: Option<bool>,
    /// `engagement.site_visits_30d`; always known, usually 0.
    pub site_visits_30d: u64,
    /// `engagement.demo_requests`: dates in the 180 days up to `as_of`, most recent first.
    pub demo_requests: Vec<Date>,
    /// `engagement.webinars`: attendance dates in the 365 days up to `as_of`, most recent first.
    pub webinars: Vec<Date>,
    /// `engagement.content_downloads`: dates in the 180 days up to `as_of`, most recent first.
    pub content_downloads: Vec<Date>,
    /// `crm.expected_acv`, in whole US dollars.
    pub expected_acv: Option<u64>,
    /// Hidden account quality in thousandths (0..=1000): how likely the account is to buy, from its true (unmasked)
    /// size, industry, data stack and interest, plus noise. Written to no file and no fact; the
    /// emulators draw deals from it, so a model that reads the right facts shows lift and a
    /// random one shows none.
    pub quality: u16,
}

/// Column names in output order: `id`, `name`, `domain`, then one column per fact.
pub const COLUMNS: &[&str] = &[
    "id",
    "name",
    "domain",
    "firmographic.industry",
    "firmographic.employee_count",
    "firmographic.annual_revenue",
    "firmographic.region",
    "firmographic.country",
    "firmographic.org_type",
    "technographic.technologies",
    "contracts.current_vendor",
    "contracts.renewal_date",
    "contracts.is_competitor",
    "engagement.site_visits_30d",
    "engagement.demo_requests",
    "engagement.webinars",
    "engagement.content_downloads",
    "crm.expected_acv",
];

/// How many leading [`COLUMNS`] identify the account rather than hold a fact.
const IDENTITY_COLUMNS: usize = 3;

impl SyntheticAccount {
    /// (column name, value) for every fact column (all of [`COLUMNS`] but `id`, `name` and
    /// `domain`, in that order), `None` when the account has no value for it.
    pub fn facts(&self) -> Vec<(&'static str, Option<FactValue>)> {
        COLUMNS[IDENTITY_COLUMNS..]
            .iter()
            .zip(&self.cells()[IDENTITY_COLUMNS..])
            .map(|(&name, cell)| (name, cell.to_fact_value()))
            .collect()
    }

    /// The value of every column, in [`COLUMNS`] order.
    fn cells(&self) -> [Cell<'_>; 18] {
        let opt_text = |v: Option<&'static str>| v.map_or(Cell::Empty, Cell::Text);
        let opt_int = |v: Option<u64>| v.map_or(Cell::Empty, Cell::Int);
        fn dates(v: &[Date]) -> Cell<'_> {
            if v.is_empty() {
                Cell::Empty
            } else {
                Cell::Dates(v)
            }
        }
        [
            Cell::Text(&self.id),
            Cell::Text(&self.name),
            Cell::Text(&self.domain),
            opt_text(self.industry),
            opt_int(self.employee_count),
            opt_int(self.annual_revenue),
            opt_text(self.region),
            opt_text(self.country),
            opt_text(self.org_type),
            if self.technologies.is_empty() {
                Cell::Empty
            } else {
                Cell::Texts(&self.technologies)
            },
            opt_text(self.current_vendor),
            self.renewal_date.map_or(Cell::Empty, Cell::Date),
            self.is_competitor.map_or(Cell::Empty, Cell::Bool),
            Cell::Int(self.site_visits_30d),
            dates(&self.demo_requests),
            dates(&self.webinars),
            dates(&self.content_downloads),
            opt_int(self.expected_acv),
        ]
    }
}

/// An endless stream of accounts `acc-00000001`, `acc-00000002`, ...; take as many as needed.
///
/// `nth` / `skip` jump ahead without generating the skipped accounts, so disjoint
/// ranges can be generated independently (e.g. in parallel).
#[derive(Debug, Clone)]
pub struct Generator {
    opts: GenOptions,
    /// Number of the next account (from 1).
    next: u64,
}

impl Generator {
    /// A generator starting at the first account.
    pub fn new(opts: GenOptions) -> Self {
        Generator { opts, next: 1 }
    }
}

impl Iterator for Generator {
    type Item = SyntheticAccount;

    fn next(&mut self) -> Option<SyntheticAccount> {
        let mut account = SyntheticAccount::default();
        model::fill(&mut account, self.opts, self.next);
        self.next += 1;
        Some(account)
    }

    fn nth(&mut self, n: usize) -> Option<SyntheticAccount> {
        self.next += n as u64;
        self.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

/// Writes a header row and `count` accounts as CSV: RFC 4180 quoting where needed, `\n`
/// line ends, empty cells for unknown values, lists joined with
/// [`tierd_core::fact::LIST_SEPARATOR`], ISO dates, integers, `true`/`false`.
pub fn write_csv<W: Write>(out: W, count: u64, opts: GenOptions) -> io::Result<()> {
    write_rows(out, count, opts, format::csv_header, format::csv_row)
}

/// Writes `count` accounts as JSON Lines: one flat object per line keyed by [`COLUMNS`],
/// with JSON numbers, booleans, arrays of strings for lists (dates as `"YYYY-MM-DD"`),
/// and unknown values left out.
pub fn write_jsonl<W: Write>(out: W, count: u64, opts: GenOptions) -> io::Result<()> {
    write_rows(out, count, opts, |_| {}, format::json_row)
}

fn write_rows<W: Write>(
    out: W,
    count: u64,
    opts: GenOptions,
    header: impl Fn(&mut String),
    row: impl Fn(&[Cell<'_>], &mut String),
) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let mut line = String::with_capacity(1024);
    header(&mut line);
    out.write_all(line.as_bytes())?;
    // One account's buffers are reused for every row.
    let mut account = SyntheticAccount::default();
    for n in 1..=count {
        model::fill(&mut account, opts, n);
        line.clear();
        row(&account.cells(), &mut line);
        out.write_all(line.as_bytes())?;
    }
    out.flush()
}
