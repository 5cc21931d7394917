//! Fingerprint rules in the Wappalyzer `technologies.json` format, compiled for fast matching.
//!
//! Owns parsing (technologies, categories, pattern suffixes) and compilation. Patterns are
//! JavaScript regexes matched case-insensitively; each is compiled with `regex` (bytes, ASCII
//! case folding, which keeps the automata small), and only when `regex` refuses it (lookaround,
//! backreferences) with `fancy-regex`. A pattern neither engine accepts is kept in
//! [`LoadReport::failed`] so the caller reports it: nothing is dropped silently.
//!
//! Patterns of one kind that scan large texts (`html`, `scriptSrc`, `scripts`, `url`) are
//! grouped into one `RegexSet`, so a page is scanned once per kind, not once per pattern.
//! Knows nothing about HTTP or the plugin ABI.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

/// Index of a technology in [`RuleSet::technologies`].
pub(crate) type TechId = usize;

/// A compiled rule set.
pub struct RuleSet {
    pub(crate) technologies: Vec<Technology>,
    /// Single-text and text-list kinds, by [`Kind::slot`].
    pub(crate) scanned: [PatternGroup; SCANNED.len()],
    /// Keyed kinds (`headers`, `cookies`, `meta`, `dns`, `probe`), by [`Kind::slot`]: key ->
    /// patterns on its values. Keys are lower-cased except `probe` paths.
    pub(crate) keyed: [HashMap<String, Vec<Pattern>>; KEYED.len()],
    /// `probe` paths any rule asks for, in order.
    pub(crate) probe_paths: Vec<String>,
    report: LoadReport,
}

/// The pattern kinds a server-side fetch can see, in the order the reference engine
/// (wappalyzer-core) walks them; that order decides which of two equally long versions wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    CertIssuer,
    Cookies,
    Css,
    Dns,
    Headers,
    Html,
    Meta,
    Probe,
    Robots,
    ScriptSrc,
    Scripts,
    Text,
    Url,
}

/// Kinds matched against one text (or, for `scriptSrc`, each of a list of texts).
pub(crate) const SCANNED: [Kind; 8] = [
    Kind::CertIssuer,
    Kind::Css,
    Kind::Html,
    Kind::Robots,
    Kind::ScriptSrc,
    Kind::Scripts,
    Kind::Text,
    Kind::Url,
];
/// Kinds matched against the values of a named item (a header, a cookie, a DNS record type).
pub(crate) const KEYED: [Kind; 5] = [Kind::Cookies, Kind::Dns, Kind::Headers, Kind::Meta, Kind::Probe];

impl Kind {
    /// As spelt in the rule file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::CertIssuer => "certIssuer",
            Kind::Cookies => "cookies",
            Kind::Css => "css",
            Kind::Dns => "dns",
            Kind::Headers => "headers",
            Kind::Html => "html",
            Kind::Meta => "meta",
            Kind::Probe => "probe",
            Kind::Robots => "robots",
            Kind::ScriptSrc => "scriptSrc",
            Kind::Scripts => "scripts",
            Kind::Text => "text",
            Kind::Url => "url",
        }
    }

    /// Index in [`SCANNED`] or [`KEYED`].
    pub(crate) fn slot(self) -> usize {
        SCANNED
            .iter()
            .position(|k| *k == self)
            .or_else(|| KEYED.iter().position(|k| *k == self))
            .unwrap_or(0)
    }
}

impl fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSet")
            .field("technologies", &self.technologies.len())
            .field("report", &self.report)
            .finish()
    }
}

/// One technology and its relations.
#[derive(Debug)]
pub(crate) struct Technology {
    pub(crate) name: String,
    pub(crate) categories: Vec<String>,
    pub(crate) category_ids: Vec<u32>,
    /// Technologies this one implies, with the confidence of the implication and the version
    /// it states (`implies: "PHP\\;version:7"`).
    pub(crate) implies: Vec<(TechId, u8, String)>,
    /// Looked for only once one of these is detected (the reference's `requires`).
    pub(crate) requires: Vec<TechId>,
    /// Looked for only once a technology of one of these categories is detected.
    pub(crate) requires_category: Vec<u32>,
    /// When this one is detected, these are not.
    pub(crate) excludes: Vec<TechId>,
}

impl Technology {
    /// Looked for from the start (not behind `requires` or `requiresCategory`).
    pub(crate) fn unconditional(&self) -> bool {
        self.requires.is_empty() && self.requires_category.is_empty()
    }
}

/// One compiled pattern with its suffixes.
#[derive(Debug)]
pub(crate) struct Pattern {
    pub(crate) tech: TechId,
    pub(crate) matcher: Matcher,
    /// `\;version:` template, e.g. `\1` or `\1?\1:legacy`.
    pub(crate) version: Option<String>,
    /// `\;confidence:` (default 100).
    pub(crate) confidence: u8,
    /// The pattern's place among its technology's patterns of the same kind: (key, pattern).
    pub(crate) order: (u16, u16),
}

#[derive(Debug)]
pub(crate) enum Matcher {
    /// An empty pattern: the header, cookie or meta tag merely has to exist.
    Present,
    Fast(LazyRegex),
    /// Lookaround or backreferences: slow to scan with, so a page reaches it only where its
    /// prefilter (the pattern with its lookarounds removed, which matches a superset) matched.
    Fancy {
        regex: fancy_regex::Regex,
        prefilter: Option<regex::bytes::Regex>,
    },
}

/// The patterns of one kind, with a set over the `regex`-compiled ones and the prefilters.
#[derive(Debug)]
pub(crate) struct PatternGroup {
    pub(crate) patterns: Vec<Pattern>,
    /// Set member `i` is (or prefilters, for fancy ones) pattern `members[i]`.
    pub(crate) set: regex::bytes::RegexSet,
    pub(crate) members: Vec<usize>,
    /// Fancy patterns without a prefilter, tried on every text.
    pub(crate) unfiltered: Vec<usize>,
}

/// What loading a rule set found worth telling the user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Technologies loaded.
    pub technologies: usize,
    /// Patterns compiled (both engines).
    pub patterns: usize,
    /// `technology (kind)` of patterns only `fancy-regex` could compile.
    pub fallback: Vec<String>,
    /// Patterns neither engine compiles: `technology (kind): pattern: error`. Not used.
    pub failed: Vec<String>,
    /// Technologies detectable only in a browser (`js`, `dom`, `xhr` patterns only): never
    /// detected here.
    pub browser_only: Vec<String>,
    /// Pattern kinds present in the rules that are not used, with their pattern counts and
    /// why (`js`, `dom` and `xhr` need a browser; unknown kinds are not Wappalyzer's).
    pub ignored: Vec<IgnoredKind>,
    /// `implies`/`requires`/`excludes` naming unknown technologies: `technology -> name`. Ignored.
    pub unknown_references: Vec<String>,
}

/// A pattern kind the rules use and this engine does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredKind {
    /// As spelt in the rule file.
    pub kind: String,
    /// Patterns of that kind (for keyed kinds, one per key and pattern).
    pub patterns: usize,
    /// Technologies with at least one pattern of that kind.
    pub technologies: usize,
    /// Why it is not used.
    pub reason: &'static str,
}

impl LoadReport {
    /// One line per ignored kind, for logs and `tierd plugins check`.
    pub fn ignored_summary(&self) -> Vec<String> {
        self.ignored
            .iter()
            .map(|i| {
                format!(
                    "{}: {} patterns in {} technologies ignored ({})",
                    i.kind, i.patterns, i.technologies, i.reason
                )
            })
            .collect()
    }
}

/// A rule file that cannot be used at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError(pub String);

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RuleError {}

/// The rule set shipped with tierd (`config/fingerprints/`), written for this project.
pub const DEFAULT_TECHNOLOGIES: &str = include_str!("../../../config/fingerprints/technologies.json");
/// The categories of the shipped rule set.
pub const DEFAULT_CATEGORIES: &str = include_str!("../../../config/fingerprints/categories.json");

/// Kinds only a browser can see, with the reason reported for them.
const BROWSER_KINDS: [(&str, &str); 3] = [
    ("js", "needs a browser: JavaScript globals"),
    ("dom", "needs a browser: the rendered DOM"),
    ("xhr", "needs a browser: requests made by scripts"),
];
/// Members of a technology that are not patterns.
const NOT_PATTERNS: [&str; 14] = [
    "cats",
    "website",
    "description",
    "icon",
    "cpe",
    "saas",
    "oss",
    "pricing",
    "implies",
    "requires",
    "requiresCategory",
    "excludes",
    "url_example",
    "certIssuer_example",
];

impl RuleSet {
    /// The shipped rule set.
    pub fn builtin() -> Result<RuleSet, RuleError> {
        RuleSet::parse(DEFAULT_TECHNOLOGIES, DEFAULT_CATEGORIES)
    }

    /// Parses and compiles `technologies` (an object keyed by technology name, or an object
    /// with a `technologies` member as in the old `apps.json`) with `categories` (id -> name,
    /// or id -> `{"name": ...}`; may be empty when `technologies` carries its own).
    pub fn parse(technologies: &str, categories: &str) -> Result<RuleSet, RuleError> {
        let root: Value = serde_json::from_str(technologies)
            .map_err(|e| RuleError(format!("technologies file is not valid JSON: {e}")))?;
        let Value::Object(mut root) = root else {
            return Err(RuleError(
                "technologies file must hold a JSON object keyed by technology name".into(),
            ));
        };
        let mut category_table = Map::new();
        if let Some(Value::Object(techs)) = root.remove("technologies") {
            if let Some(Value::Object(cats)) = root.remove("categories") {
                category_table = cats;
            }
            root = techs;
        }
        if !categories.trim().is_empty() {
            match serde_json::from_str(categories) {
                Ok(Value::Object(cats)) => category_table.extend(cats),
                Ok(_) => {
                    return Err(RuleError(
                        "categories file must hold a JSON object keyed by id".into(),
                    ))
                }
                Err(e) => return Err(RuleError(format!("categories file is not valid JSON: {e}"))),
            }
        }
        let category_name = |id: &Value| -> Option<String> {
            let key = match id {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => return None,
            };
            match category_table.get(&key)? {
                Value::String(name) => Some(name.clone()),
                Value::Object(o) => o.get("name")?.as_str().map(str::to_owned),
                _ => None,
            }
        };

        let ids: HashMap<&str, TechId> = root.keys().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
        let mut report = LoadReport {
            technologies: root.len(),
            ..LoadReport::default()
        };
        let mut technologies = Vec::with_capacity(root.len());
        let mut scanned: [Vec<Pattern>; SCANNED.len()] = Default::default();
        let mut keyed: [HashMap<String, Vec<Pattern>>; KEYED.len()] = Default::default();
        let mut ignored: Vec<IgnoredKind> = Vec::new();
        let mut probe_paths: Vec<String> = Vec::new();

        for (tech, (name, body)) in root.iter().enumerate() {
            let Value::Object(body) = body else {
                return Err(RuleError(format!("technology {name:?}: expected an object")));
            };
            let mut detectable = false;
            let mut browser = false;
            for kind in SCANNED {
                if let Some(v) = body.get(kind.name()) {
                    for (n, raw) in strings(v).into_iter().enumerate() {
                        let where_ = format!("{name} ({})", kind.name());
                        let order = (0, n as u16);
                        if let Some(p) = compile(tech, raw, order, &where_, &mut report) {
                            scanned[kind.slot()].push(p);
                            detectable = true;
                        }
                    }
                }
            }
            for kind in KEYED {
                if let Some(Value::Object(map)) = body.get(kind.name()) {
                    for (k, (key, v)) in map.iter().enumerate() {
                        let key = if kind == Kind::Probe {
                            key.clone()
                        } else {
                            key.to_ascii_lowercase()
                        };
                        if kind == Kind::Probe && !probe_paths.contains(&key) {
                            probe_paths.push(key.clone());
                        }
                        for (n, raw) in strings(v).into_iter().enumerate() {
                            let where_ = format!("{name} ({} {key})", kind.name());
                            let order = (k as u16, n as u16);
                            if let Some(p) = compile(tech, raw, order, &where_, &mut report) {
                                keyed[kind.slot()].entry(key.clone()).or_default().push(p);
                                detectable = true;
                            }
                        }
                    }
                }
            }
            for member in body.keys() {
                let member = member.as_str();
                let known = SCANNED.iter().chain(&KEYED).any(|k| k.name() == member);
                if known || NOT_PATTERNS.contains(&member) {
                    continue;
                }
                let browser_kind = BROWSER_KINDS.iter().find(|(k, _)| *k == member);
                browser |= browser_kind.is_some();
                let reason = browser_kind.map_or("not a Wappalyzer pattern kind", |(_, why)| why);
                let count = body.get(member).map_or(0, pattern_count);
                match ignored.iter_mut().find(|i| i.kind == member) {
                    Some(i) => {
                        i.patterns += count;
                        i.technologies += 1;
                    }
                    None => ignored.push(IgnoredKind {
                        kind: member.to_owned(),
                        patterns: count,
                        technologies: 1,
                        reason,
                    }),
                }
            }
            // Implied-only technologies (no patterns) are fine; browser-only ones are worth a word.
            if !detectable && browser {
                report.browser_only.push(name.clone());
            }

            let mut refs = |kind: &str| -> Vec<(TechId, Suffixes)> {
                let mut out = Vec::new();
                for raw in body.get(kind).map(strings).unwrap_or_default() {
                    let (target, suffix) = split_suffixes(raw);
                    match ids.get(target.trim()) {
                        Some(&id) => out.push((id, suffix)),
                        None => report.unknown_references.push(format!("{name} {kind} {target}")),
                    }
                }
                out
            };
            let implies = refs("implies")
                .into_iter()
                .map(|(id, s)| (id, s.confidence, s.version.unwrap_or_default()))
                .collect();
            let requires = refs("requires").into_iter().map(|(id, _)| id).collect();
            let excludes = refs("excludes").into_iter().map(|(id, _)| id).collect();
            let ids_of = |v: Option<&Value>| -> Vec<u32> {
                let items: Vec<&Value> = match v {
                    Some(Value::Array(items)) => items.iter().collect(),
                    Some(one) => vec![one],
                    None => Vec::new(),
                };
                items
                    .into_iter()
                    .filter_map(|id| match id {
                        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                        Value::String(s) => s.trim().parse().ok(),
                        _ => None,
                    })
                    .collect()
            };
            let category_ids = ids_of(body.get("cats"));
            let requires_category = ids_of(body.get("requiresCategory"));
            let categories = body
                .get("cats")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(category_name);
            technologies.push(Technology {
                name: name.clone(),
                categories: categories.collect(),
                category_ids,
                implies,
                requires,
                requires_category,
                excludes,
            });
        }

        ignored.sort_by(|a, b| b.patterns.cmp(&a.patterns).then_with(|| a.kind.cmp(&b.kind)));
        report.ignored = ignored;
        let mut groups = Vec::with_capacity(SCANNED.len());
        for patterns in scanned {
            groups.push(PatternGroup::new(patterns)?);
        }
        let scanned: [PatternGroup; SCANNED.len()] = groups
            .try_into()
            .map_err(|_| RuleError("internal: one pattern group per kind".into()))?;
        Ok(RuleSet {
            technologies,
            scanned,
            keyed,
            probe_paths,
            report,
        })
    }

    /// The pattern group of a scanned kind.
    pub(crate) fn group(&self, kind: Kind) -> &PatternGroup {
        &self.scanned[kind.slot()]
    }

    /// The patterns of a keyed kind.
    pub(crate) fn keyed(&self, kind: Kind) -> &HashMap<String, Vec<Pattern>> {
        &self.keyed[kind.slot()]
    }

    /// Whether any rule uses pattern kind `kind` (as spelt in the rule file): the provider
    /// fetches `robots.txt`, stylesheets or DNS records only when some rule looks at them.
    pub fn uses(&self, kind: &str) -> bool {
        SCANNED
            .iter()
            .any(|k| k.name() == kind && !self.group(*k).patterns.is_empty())
            || KEYED
                .iter()
                .any(|k| k.name() == kind && !self.keyed(*k).is_empty())
    }

    /// The paths `probe` patterns look at (fetched beside the home page), in rule order.
    pub fn probe_paths(&self) -> &[String] {
        &self.probe_paths
    }

    /// What loading found: counts, fallbacks, failures.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// Names of all technologies, in file order.
    pub fn technology_names(&self) -> impl Iterator<Item = &str> {
        self.technologies.iter().map(|t| t.name.as_str())
    }

    /// The categories of technology `name` (empty when unknown).
    pub fn categories_of(&self, name: &str) -> &[String] {
        self.technologies
            .iter()
            .find(|t| t.name == name)
            .map_or(&[], |t| &t.categories)
    }
}

impl PatternGroup {
    fn new(patterns: Vec<Pattern>) -> Result<PatternGroup, RuleError> {
        let mut members = Vec::new();
        let mut unfiltered = Vec::new();
        let mut sources = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            let source = match &p.matcher {
                Matcher::Fast(re) => re.as_str(),
                Matcher::Fancy {
                    prefilter: Some(pre), ..
                } => pre.as_str(),
                Matcher::Fancy { prefilter: None, .. } => {
                    unfiltered.push(i);
                    continue;
                }
                // An empty scanned pattern matches every text; keep it in the set as such.
                Matcher::Present => "",
            };
            members.push(i);
            sources.push(source.to_owned());
        }
        // Each source already compiled alone, with the same flags, so the set compiles unless
        // it outgrows the size limit, which is raised for big community rule files.
        let set = regex::bytes::RegexSetBuilder::new(&sources)
            .case_insensitive(true)
            .unicode(false)
            .size_limit(256 << 20)
            .dfa_size_limit(64 << 20)
            .build()
            .or_else(|_| {
                regex::bytes::RegexSetBuilder::new(&sources)
                    .case_insensitive(true)
                    .size_limit(256 << 20)
                    .dfa_size_limit(64 << 20)
                    .build()
            })
            .map_err(|e| {
                RuleError(format!(
                    "cannot combine {} patterns into one set: {e}",
                    sources.len()
                ))
            })?;
        Ok(PatternGroup {
            patterns,
            set,
            members,
            unfiltered,
        })
    }
}

/// A string or an array of strings (other shapes give nothing).
fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Suffixes after a pattern: `\;version:...` and `\;confidence:N`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Suffixes {
    pub(crate) version: Option<String>,
    pub(crate) confidence: u8,
}

/// Splits `pattern\;version:\1\;confidence:50` into the pattern and its suffixes.
pub(crate) fn split_suffixes(raw: &str) -> (&str, Suffixes) {
    let mut parts = raw.split("\\;");
    let pattern = parts.next().unwrap_or_default();
    let mut suffixes = Suffixes {
        version: None,
        confidence: 100,
    };
    for part in parts {
        if let Some(v) = part.strip_prefix("version:") {
            suffixes.version = (!v.is_empty()).then(|| v.to_owned());
        } else if let Some(c) = part.strip_prefix("confidence:") {
            // An unreadable confidence counts as full, as in Wappalyzer.
            suffixes.confidence = c.trim().parse::<u32>().map_or(100, |c| c.min(100) as u8);
        }
    }
    (pattern, suffixes)
}

/// How many patterns a member of an ignored kind holds: one per string, and for objects one
/// per key and string (`js: {"window.x": ""}`, `dom: {"#app": {"exists": ""}}`).
fn pattern_count(v: &Value) -> usize {
    match v {
        Value::String(_) | Value::Number(_) => 1,
        Value::Array(items) => items.len(),
        Value::Object(map) => map
            .values()
            .map(|v| match v {
                Value::Array(items) => items.len().max(1),
                _ => 1,
            })
            .sum(),
        _ => 0,
    }
}

/// Compiles one raw pattern, recording fallbacks and failures in `report`.
fn compile(
    tech: TechId,
    raw: &str,
    order: (u16, u16),
    where_: &str,
    report: &mut LoadReport,
) -> Option<Pattern> {
    let (source, suffixes) = split_suffixes(raw);
    let source = &*js_identity_escapes(source);
    let matcher = if source.is_empty() {
        Matcher::Present
    } else {
        match LazyRegex::check(source) {
            Ok(re) => Matcher::Fast(re),
            Err(fast_err) => match fancy_regex::RegexBuilder::new(&format!("(?i){source}")).build() {
                Ok(regex) => {
                    report.fallback.push(where_.to_owned());
                    let prefilter = without_lookaround(source).and_then(|s| compile_fast(&s).ok());
                    Matcher::Fancy { regex, prefilter }
                }
                Err(_) => {
                    let first_line = fast_err.to_string();
                    let reason = first_line.lines().last().unwrap_or("invalid pattern").trim();
                    report.failed.push(format!("{where_}: {source:?}: {reason}"));
                    return None;
                }
            },
        }
    };
    report.patterns += 1;
    Some(Pattern {
        tech,
        matcher,
        version: suffixes.version,
        confidence: suffixes.confidence,
        order,
    })
}

/// `source` with JavaScript's identity escapes written as the letters they stand for. Rules are
/// JavaScript regexes without the `u` flag, where a backslash before a letter that is no escape
/// (`\Z`, `\Q`, `\A`, `\z`, `\e`...) means the letter itself; `regex` refuses some of these and
/// reads others (`\A`, `\z`) as anchors. `\p`, `\P` and `\k` are left alone: rare, and their
/// JavaScript meaning depends on flags and named groups.
fn js_identity_escapes(source: &str) -> std::borrow::Cow<'_, str> {
    const JS_ESCAPES: &str = "bBcdDfnrsStvwWxupPk";
    let bytes = source.as_bytes();
    let identity = |i: usize| {
        bytes[i] == b'\\'
            && bytes
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() && !JS_ESCAPES.contains(*c as char))
    };
    if !(0..bytes.len()).any(identity) {
        return std::borrow::Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            if identity(i) {
                out.push(bytes[i + 1] as char);
            } else {
                out.push_str(&source[i..i + 2]);
            }
            i += 2;
            continue;
        }
        let c = source[i..].chars().next().unwrap_or_default();
        out.push(c);
        i += c.len_utf8().max(1);
    }
    std::borrow::Cow::Owned(out)
}

/// A pattern `regex` accepts, compiled the first time a page needs it: a large rule set is
/// checked at load (parsing is cheap) but only the few patterns that ever match are built,
/// which is most of the load time and memory of a 4,000-technology set. The pattern groups'
/// sets are built at load; a pattern's own regex is needed only for versions, for lookaround
/// windows and for header, cookie, meta, DNS and probe values.
#[derive(Debug)]
pub(crate) struct LazyRegex {
    source: Box<str>,
    /// Needs Unicode mode (ASCII case folding refused it).
    unicode: bool,
    compiled: std::sync::OnceLock<Option<regex::bytes::Regex>>,
}

impl LazyRegex {
    /// Accepts `source` when `regex` parses it (ASCII mode first, then Unicode), as
    /// [`compile_fast`] would build it.
    fn check(source: &str) -> Result<LazyRegex, String> {
        let parse = |unicode: bool| {
            regex_syntax::ParserBuilder::new()
                .case_insensitive(true)
                .unicode(unicode)
                .utf8(false)
                .build()
                .parse(source)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let unicode = match parse(false) {
            Ok(()) => false,
            Err(_) => {
                parse(true)?;
                true
            }
        };
        Ok(LazyRegex {
            source: source.into(),
            unicode,
            compiled: std::sync::OnceLock::new(),
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.source
    }

    /// The compiled regex; `None` only when it outgrows `regex`'s size limit (then it never
    /// matches, as a fancy pattern that exhausts its backtracking budget never matches).
    pub(crate) fn get(&self) -> Option<&regex::bytes::Regex> {
        self.compiled
            .get_or_init(|| {
                regex::bytes::RegexBuilder::new(&self.source)
                    .case_insensitive(true)
                    .unicode(self.unicode)
                    .build()
                    .ok()
            })
            .as_ref()
    }
}

/// `regex` with ASCII case folding (small automata); Unicode only when the pattern needs it.
fn compile_fast(source: &str) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(source)
        .case_insensitive(true)
        .unicode(false)
        .build()
        .or_else(|_| {
            regex::bytes::RegexBuilder::new(source)
                .case_insensitive(true)
                .build()
        })
}

/// `source` with its lookaround groups removed, or `None` when it has none. Removing a
/// zero-width assertion only widens what a pattern matches, so the result is a sound prefilter.
fn without_lookaround(source: &str) -> Option<String> {
    const OPENERS: [&str; 4] = ["(?=", "(?!", "(?<=", "(?<!"];
    let mut out = String::with_capacity(source.len());
    let mut removed = false;
    let mut rest = source;
    let mut in_class = false;
    while let Some(c) = rest.chars().next() {
        if c == '\\' {
            let len = rest[1..].chars().next().map_or(1, |n| 1 + n.len_utf8());
            out.push_str(&rest[..len]);
            rest = &rest[len..];
            continue;
        }
        if !in_class {
            if let Some(opener) = OPENERS.iter().find(|o| rest.starts_with(**o)) {
                rest = &rest[skip_group(rest, opener.len())?..];
                removed = true;
                continue;
            }
        }
        match c {
            '[' => in_class = true,
            ']' => in_class = false,
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    removed.then_some(out)
}

/// The byte length of the group opening at the start of `s` (its opener `open` bytes long),
/// through its closing parenthesis; `None` when unbalanced.
fn skip_group(s: &str, open: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    let (mut depth, mut i, mut in_class) = (1, open, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'[' if !in_class => in_class = true,
            b']' if in_class => in_class = false,
            b'(' if !in_class => depth += 1,
            b')' if !in_class => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookarounds_are_stripped_into_a_prefilter() {
        assert_eq!(
            without_lookaround(r"a\.net/(?!wiki)(?:x|y)").as_deref(),
            Some(r"a\.net/(?:x|y)")
        );
        assert_eq!(without_lookaround(r"(?<=[(])b(?=c(d))e").as_deref(), Some("be"));
        assert_eq!(
            without_lookaround(r"x(?!abc"),
            None,
            "unbalanced group: no prefilter"
        );
        assert_eq!(
            without_lookaround(r"x\(?!a)"),
            None,
            "an escaped parenthesis opens no group"
        );
        assert_eq!(
            without_lookaround(r"[(?!x)]y"),
            None,
            "inside a class it is no group"
        );
        assert_eq!(without_lookaround(r"(a)\1"), None);
    }

    #[test]
    fn suffixes_split_version_and_confidence() {
        let (p, s) = split_suffixes(r"jquery-([\d.]+)\.js\;version:\1\;confidence:50");
        assert_eq!(p, r"jquery-([\d.]+)\.js");
        assert_eq!(
            s,
            Suffixes {
                version: Some(r"\1".into()),
                confidence: 50
            }
        );
        let (p, s) = split_suffixes("plain");
        assert_eq!((p, s.version, s.confidence), ("plain", None, 100));
        assert_eq!(split_suffixes(r"x\;confidence:250").1.confidence, 100);
    }

    #[test]
    fn builtin_rules_load_without_failures() {
        let rules = RuleSet::builtin().unwrap();
        let report = rules.report();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert!(
            report.unknown_references.is_empty(),
            "{:?}",
            report.unknown_references
        );
        assert!(report.technologies >= 80, "{}", report.technologies);
        // The shipped set uses lookaround once on purpose, so the fallback path stays exercised.
        assert!(!report.fallback.is_empty());
        for tech in rules.technologies.iter() {
            assert!(!tech.categories.is_empty(), "{} has no known category", tech.name);
        }
    }

    #[test]
    fn lookaround_falls_back_and_broken_patterns_are_reported() {
        let rules = RuleSet::parse(
            r#"{"A": {"cats": [1], "html": "foo(?!bar)"}, "B": {"cats": [1], "html": ["ok", "(unclosed"]},
                "C": {"cats": [1], "js": {"window.c": ""}}, "D": {"implies": "Nope"}}"#,
            r#"{"1": {"name": "Analytics"}}"#,
        )
        .unwrap();
        let r = rules.report();
        assert_eq!(r.fallback, vec!["A (html)".to_owned()]);
        assert_eq!(r.failed.len(), 1);
        assert!(
            r.failed[0].starts_with("B (html): \"(unclosed\""),
            "{:?}",
            r.failed
        );
        assert_eq!(r.browser_only, vec!["C".to_owned()]);
        assert_eq!(r.unknown_references, vec!["D implies Nope".to_owned()]);
        assert_eq!(r.patterns, 2);
    }

    #[test]
    fn every_ignored_kind_is_reported_with_its_counts() {
        let rules = RuleSet::parse(
            r##"{"A": {"cats": [1], "js": {"window.a": "", "a.version": "\\;version:\\1"}, "dom": "#a",
                     "html": "a-root"},
                "B": {"cats": [1], "js": {"B": ""}, "xhr": ["b\\.test", "b2"], "dom": {"#b": {"exists": ""}}},
                "C": {"cats": [1], "weird": "x", "text": "c", "css": "c", "robots": "c",
                      "certIssuer": "C", "dns": {"TXT": "c"}, "probe": {"/c": ""}}}"##,
            r#"{"1": {"name": "Analytics"}}"#,
        )
        .unwrap();
        let r = rules.report();
        let summary: Vec<(&str, usize, usize)> = r
            .ignored
            .iter()
            .map(|i| (i.kind.as_str(), i.patterns, i.technologies))
            .collect();
        assert_eq!(
            summary,
            [("js", 3, 2), ("dom", 2, 2), ("xhr", 2, 1), ("weird", 1, 1)]
        );
        assert_eq!(r.browser_only, ["B"]);
        assert_eq!(r.patterns, 7, "html + the six server-side kinds of C");
        assert!(
            r.ignored_summary()[0].starts_with("js: 3 patterns in 2 technologies ignored (needs a browser")
        );
        assert!(r.ignored_summary()[3].contains("not a Wappalyzer pattern kind"));
        for kind in ["text", "css", "robots", "certIssuer", "dns", "probe"] {
            assert!(rules.uses(kind), "{kind}");
        }
        assert!(!rules.uses("scripts"));
        assert_eq!(rules.probe_paths(), ["/c"]);
    }

    #[test]
    fn javascript_identity_escapes_stand_for_their_letters() {
        assert_eq!(js_identity_escapes(r"\Zeleris\b"), r"Zeleris\b");
        assert_eq!(js_identity_escapes(r"\Qwik\.js\d\Ax\z"), r"Qwik\.js\dAxz");
        assert_eq!(
            js_identity_escapes(r"a\\Zb"),
            r"a\\Zb",
            "an escaped backslash is kept"
        );
        assert_eq!(js_identity_escapes(r"a\\\Zb"), r"a\\Zb");
        assert_eq!(js_identity_escapes(r"\p{L}\k"), r"\p{L}\k");
        assert!(matches!(
            js_identity_escapes(r"plain\d"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn patterns_are_compiled_only_when_a_page_needs_them() {
        let rules = RuleSet::parse(
            r#"{"A": {"cats": [1], "scriptSrc": "a-(\\d+)\\.js\\;version:\\1"},
                "B": {"cats": [1], "scriptSrc": "b\\.js"},
                "C": {"cats": [1], "headers": {"x-c": "c"}}}"#,
            r#"{"1": {"name": "Analytics"}}"#,
        )
        .unwrap();
        fn compiled(rules: &RuleSet) -> Vec<&str> {
            let scanned = rules.scanned.iter().flat_map(|g| &g.patterns);
            let keyed = rules.keyed.iter().flat_map(|k| k.values().flatten());
            scanned
                .chain(keyed)
                .filter_map(|p| match &p.matcher {
                    Matcher::Fast(re) if re.compiled.get().is_some() => Some(re.as_str()),
                    _ => None,
                })
                .collect()
        }
        assert!(compiled(&rules).is_empty(), "nothing is compiled at load");
        let page = crate::page::Page::new("https://x.test/", [], r#"<script src="/a-2.js"></script>"#.into());
        let found = rules.detect(&[page]);
        assert_eq!(found[0].version.as_deref(), Some("2"));
        assert_eq!(
            compiled(&rules),
            [r"a-(\d+)\.js"],
            "only the matching pattern, for its version"
        );
    }

    #[test]
    fn apps_json_layout_with_embedded_categories_loads() {
        let rules = RuleSet::parse(
            r#"{"categories": {"7": "CDN"}, "technologies": {"Edge": {"cats": [7], "headers": {"X-Edge": ""}}}}"#,
            "",
        )
        .unwrap();
        assert_eq!(rules.categories_of("Edge"), ["CDN".to_owned()]);
        assert!(rules.keyed(Kind::Headers).contains_key("x-edge"));
    }

    #[test]
    fn invalid_files_are_refused_with_the_reason() {
        assert!(RuleSet::parse("[1]", "")
            .unwrap_err()
            .0
            .contains("keyed by technology name"));
        assert!(RuleSet::parse("{", "").unwrap_err().0.contains("not valid JSON"));
    }
}
