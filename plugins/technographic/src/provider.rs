//! The plugin: config, one HTTP batch per enrich call, detection, history and signals.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{json, Value};
use tierd_plugin_api::prelude::*;

use crate::detect::Detection;
use crate::history::History;
use crate::page::Page;
use crate::rules::RuleSet;

/// `[plugins.technographic.config]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct Config {
    /// `https` normally; `http` for emulators.
    pub(crate) scheme: String,
    /// Paths fetched besides the home page; a careers page reveals the back-office stack.
    pub(crate) paths: Vec<String>,
    /// A `technologies.json` to use instead of the shipped rules.
    pub(crate) rules_path: Option<String>,
    /// The `categories.json` for `rules_path` (the shipped categories otherwise).
    pub(crate) categories_path: Option<String>,
    /// Consecutive successful fetches a technology must be missing from to count as removed.
    pub(crate) removal_after: u32,
    /// Detections below this confidence (0..=100) are ignored.
    pub(crate) min_confidence: u8,
    /// Per-request timeout.
    pub(crate) timeout_ms: u64,
    /// Whether an account's first fetch emits `technology_adopted` for everything it finds
    /// (off: the first fetch is the baseline, or every account would "adopt" its whole stack).
    pub(crate) signal_first_fetch: bool,
    /// Refuse to start when a rule pattern compiles in neither regex engine (default: warn).
    pub(crate) strict_rules: bool,
    /// Same-site stylesheets fetched per page for `css` patterns (0: inline styles only).
    pub(crate) stylesheets: usize,
    /// Fetch `/robots.txt` and the paths `probe` patterns name, when any rule uses them.
    pub(crate) site_files: bool,
    /// Resolve the TXT and MX records of each account's domain through the host's DNS
    /// capability, when any rule has `dns` patterns.
    pub(crate) dns: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            scheme: "https".into(),
            paths: vec!["/careers".into()],
            rules_path: None,
            categories_path: None,
            removal_after: 2,
            min_confidence: 50,
            timeout_ms: 10_000,
            signal_first_fetch: false,
            strict_rules: false,
            stylesheets: 0,
            site_files: true,
            dns: true,
        }
    }
}

const KNOWN_KEYS: [&str; 12] = [
    "scheme",
    "paths",
    "rules_path",
    "categories_path",
    "removal_after",
    "min_confidence",
    "timeout_ms",
    "signal_first_fetch",
    "strict_rules",
    "stylesheets",
    "site_files",
    "dns",
];

/// The technographic provider.
pub struct Technographic {
    config: Config,
    rules: RuleSet,
    host: Host,
}

impl Technographic {
    /// Builds the provider from its config (see [`Config`]).
    pub(crate) fn new(config: Value, host: Host) -> Result<Technographic, PluginError> {
        if let Value::Object(map) = &config {
            let unknown: Vec<&str> = map
                .keys()
                .map(String::as_str)
                .filter(|k| !KNOWN_KEYS.contains(k))
                .collect();
            if !unknown.is_empty() {
                host.log(
                    Level::Warn,
                    format!("ignoring unknown config keys {unknown:?}; known keys: {KNOWN_KEYS:?}"),
                );
            }
        }
        let config: Config = serde_json::from_value(config)
            .map_err(|e| PluginError::new(format!("technographic config: {e}")))?;
        if !matches!(config.scheme.as_str(), "http" | "https") {
            return Err(PluginError::new(format!(
                "technographic config: scheme must be \"https\" or \"http\", not {:?}",
                config.scheme
            )));
        }
        if config.min_confidence > 100 {
            return Err(PluginError::new(
                "technographic config: min_confidence must be 0..=100",
            ));
        }
        let (rules, source) = match &config.rules_path {
            None => (RuleSet::builtin(), "the shipped rules".to_owned()),
            Some(path) => {
                let read = |p: &str| {
                    std::fs::read_to_string(p).map_err(|e| {
                        PluginError::new(format!("technographic: cannot read rule file {p}: {e}"))
                    })
                };
                let technologies = read(path)?;
                let categories = match &config.categories_path {
                    Some(p) => read(p)?,
                    None => crate::rules::DEFAULT_CATEGORIES.to_owned(),
                };
                (RuleSet::parse(&technologies, &categories), path.clone())
            }
        };
        let rules = rules.map_err(|e| PluginError::new(format!("technographic: rule file {source}: {e}")))?;
        let report = rules.report();
        if !report.failed.is_empty() {
            let message = format!(
                "{} fingerprint patterns in {source} compile in neither regex engine and are not used: {}",
                report.failed.len(),
                report.failed.join("; ")
            );
            if config.strict_rules {
                return Err(PluginError::new(message));
            }
            host.log(Level::Warn, message);
        }
        host.log(
            Level::Info,
            format!(
                "loaded {} technologies ({} patterns) from {source}; {} patterns use the fallback engine{}",
                report.technologies,
                report.patterns,
                report.fallback.len(),
                if report.fallback.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", report.fallback.join(", "))
                }
            ),
        );
        if !report.ignored.is_empty() {
            host.log(
                Level::Info,
                format!("pattern kinds not used: {}", report.ignored_summary().join("; ")),
            );
        }
        if !report.browser_only.is_empty() {
            host.log(
                Level::Info,
                format!(
                    "{} technologies have only browser-side (js/dom/xhr) patterns and cannot be detected from a fetch",
                    report.browser_only.len()
                ),
            );
        }
        if rules.uses("dns") && !config.dns {
            host.log(Level::Info, "dns patterns are not used: dns = false");
        } else if rules.uses("dns") && !host.has_dns() {
            host.log(
                Level::Warn,
                "dns patterns cannot match: the host offers no DNS capability (plugin ABI 1.1 and later do)",
            );
        }
        if rules.uses("certIssuer") && config.scheme != "https" {
            host.log(
                Level::Info,
                "certIssuer patterns cannot match over plain http (scheme = \"http\")",
            );
        }
        let unfetched = [
            (
                "css",
                config.stylesheets == 0,
                "stylesheets = 0: inline <style> only",
            ),
            ("robots", !config.site_files, "site_files = false"),
            ("probe", !config.site_files, "site_files = false"),
        ];
        for (kind, off, why) in unfetched {
            if off && rules.uses(kind) {
                host.log(Level::Info, format!("{kind} patterns see less: {why}"));
            }
        }
        if !report.unknown_references.is_empty() {
            host.log(
                Level::Warn,
                format!(
                    "rules name unknown technologies: {}",
                    report.unknown_references.join(", ")
                ),
            );
        }
        Ok(Technographic { config, rules, host })
    }

    pub(crate) fn description(&self) -> Description {
        Description {
            name: "technographic".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            facts: vec![
                FactSpec::new("technographic.technologies", FactType::StringList),
                FactSpec::new("technographic.categories", FactType::StringList),
                FactSpec::new("technographic.versions", FactType::StringList),
                FactSpec::new("technographic.detections", FactType::StringList),
            ],
            signals: vec!["technology_adopted".into(), "technology_removed".into()],
            hosts: vec!["{account.domain}".into()],
            batch_size: Some(50),
            rate_limit_per_minute: None,
            config: vec![
                field("scheme", "https (default) or http"),
                field(
                    "paths",
                    "paths fetched besides the home page (default [\"/careers\"])",
                ),
                field(
                    "rules_path",
                    "a Wappalyzer-format technologies.json replacing the shipped rules",
                ),
                field("categories_path", "the categories.json for rules_path"),
                field(
                    "removal_after",
                    "successful fetches without a technology before it counts as removed (2)",
                ),
                field(
                    "min_confidence",
                    "ignore detections below this confidence, 0..100 (50)",
                ),
                field("timeout_ms", "per-request timeout (10000)"),
                field(
                    "signal_first_fetch",
                    "emit technology_adopted on an account's first fetch (false)",
                ),
                field(
                    "strict_rules",
                    "refuse to start when a rule pattern cannot be compiled (false)",
                ),
                field(
                    "stylesheets",
                    "same-site stylesheets fetched per page for css patterns (0)",
                ),
                field(
                    "site_files",
                    "fetch /robots.txt and probed paths when rules use them (true)",
                ),
                field(
                    "dns",
                    "resolve each domain's TXT and MX records when rules have dns patterns (true)",
                ),
            ],
        }
    }

    /// What is fetched from every site: the home page, the configured paths, then
    /// `/robots.txt` and the probed paths when rules look at them.
    fn site_paths(&self) -> SitePaths {
        let mut paths: Vec<String> = std::iter::once("/".to_owned())
            .chain(self.config.paths.iter().cloned())
            .collect();
        let pages = paths.len();
        let robots = (self.config.site_files && self.rules.uses("robots")).then(|| {
            paths.push("/robots.txt".into());
            paths.len() - 1
        });
        let mut probes = Vec::new();
        if self.config.site_files {
            for probe in self.rules.probe_paths() {
                let path = if probe.starts_with('/') {
                    probe.clone()
                } else {
                    format!("/{probe}")
                };
                probes.push((probe.clone(), paths.len()));
                paths.push(path);
            }
        }
        SitePaths {
            paths,
            pages,
            robots,
            probes,
        }
    }

    fn get(&self, url: String) -> HttpRequest {
        let mut r = HttpRequest::get(url);
        r.timeout_ms = Some(self.config.timeout_ms);
        r
    }

    pub(crate) fn run(&mut self, request: EnrichRequest) -> Result<EnrichResponse, PluginError> {
        let layout = self.site_paths();
        let per_site = layout.paths.len();
        let mut targets = Vec::new();
        let mut results: Vec<Option<AccountResult>> = Vec::with_capacity(request.accounts.len());
        let mut requests = Vec::new();
        for (i, account) in request.accounts.iter().enumerate() {
            let Some(domain) = account.domain.as_deref() else {
                results.push(Some(AccountResult::no_match(&account.key)));
                continue;
            };
            let Some(host) = host_of(domain) else {
                let why = format!("domain {domain:?} is not a host name");
                results.push(Some(AccountResult::failed(&account.key, why)));
                continue;
            };
            results.push(None);
            let origin = format!("{}://{host}", self.config.scheme);
            for path in &layout.paths {
                requests.push(self.get(format!("{origin}{path}")));
            }
            targets.push((i, origin));
        }
        let urls: Vec<String> = requests.iter().map(|r| r.url.clone()).collect();
        let responses = if requests.is_empty() {
            Vec::new()
        } else {
            self.host.http(requests)?
        };
        let mut sites: Vec<(usize, Result<Vec<Page>, String>)> = Vec::with_capacity(targets.len());
        for (n, (i, _)) in targets.iter().enumerate() {
            let answers = &responses[n * per_site..(n + 1) * per_site];
            let urls = &urls[n * per_site..(n + 1) * per_site];
            sites.push((*i, self.pages(&layout, urls, answers)));
        }
        if self.config.stylesheets > 0 && self.rules.uses("css") {
            self.add_stylesheets(&targets, &mut sites)?;
        }
        if self.config.dns && self.rules.uses("dns") && self.host.has_dns() {
            self.add_dns(&targets, &mut sites);
        }
        for (i, pages) in sites {
            let account = &request.accounts[i];
            results[i] = Some(match pages {
                Ok(pages) => self.observe(account, &request.as_of, &pages),
                Err(why) => AccountResult::failed(&account.key, why),
            });
        }
        Ok(EnrichResponse {
            results: results.into_iter().flatten().collect(),
        })
    }

    /// One site's answers as pages (the home page first, carrying `robots.txt` and the probed
    /// paths), or why the site could not be read.
    fn pages(
        &self,
        layout: &SitePaths,
        urls: &[String],
        answers: &[HttpResponse],
    ) -> Result<Vec<Page>, String> {
        let ok = |a: &HttpResponse| (200..300).contains(&a.status);
        let home = &answers[0];
        if !ok(home) {
            let why = match &home.error {
                Some(e) => e.clone(),
                None => format!("HTTP status {}", home.status),
            };
            // The previous facts stay (stale) and the history is untouched: a failed fetch removes nothing.
            return Err(format!("fetching {} failed: {why}", urls[0]));
        }
        let mut pages: Vec<Page> = urls[..layout.pages]
            .iter()
            .zip(&answers[..layout.pages])
            .filter(|(_, a)| ok(a))
            .map(|(url, a)| {
                let headers = a.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                Page::new(url, headers, a.body.clone())
            })
            .collect();
        let home = &mut pages[0];
        home.cert_issuer = answers[0].tls_issuer.clone();
        if let Some(a) = layout.robots.map(|at| &answers[at]).filter(|a| ok(a)) {
            home.robots = Some(a.body.clone());
        }
        for (probe, at) in &layout.probes {
            if ok(&answers[*at]) {
                home.probe.insert(probe.clone(), vec![answers[*at].body.clone()]);
            }
        }
        Ok(pages)
    }

    /// Fetches up to `stylesheets` same-site stylesheets per page and appends them to its `css`.
    fn add_stylesheets(
        &self,
        targets: &[(usize, String)],
        sites: &mut [(usize, Result<Vec<Page>, String>)],
    ) -> Result<(), PluginError> {
        let mut requests = Vec::new();
        for ((_, origin), (_, pages)) in targets.iter().zip(sites.iter()) {
            let Ok(pages) = pages else { continue };
            for page in pages {
                let same_site = page
                    .stylesheets
                    .iter()
                    .filter_map(|href| same_site_url(origin, &page.url, href))
                    .take(self.config.stylesheets);
                requests.extend(same_site.map(|url| self.get(url)));
            }
        }
        if requests.is_empty() {
            return Ok(());
        }
        let answers = self.host.http(requests)?;
        let mut at = 0;
        for ((_, origin), (_, pages)) in targets.iter().zip(sites.iter_mut()) {
            let Ok(pages) = pages else { continue };
            for page in pages.iter_mut() {
                let count = page
                    .stylesheets
                    .iter()
                    .filter_map(|href| same_site_url(origin, &page.url, href))
                    .take(self.config.stylesheets)
                    .count();
                for a in &answers[at..at + count] {
                    if (200..300).contains(&a.status) && !a.body.is_empty() {
                        if !page.css.is_empty() {
                            page.css.push('\n');
                        }
                        page.css.push_str(&a.body);
                    }
                }
                at += count;
            }
        }
        Ok(())
    }

    /// Resolves the TXT and MX records of each readable site's domain (without a leading
    /// `www.`, as the reference asks) into its home page's `dns`, in the reference's shapes: a TXT
    /// record's strings joined by a space, an MX record as `exchange preference`. A query that
    /// fails leaves that type empty, as the reference does; a batch the host cannot run is
    /// logged and the pages are matched without DNS.
    fn add_dns(&self, targets: &[(usize, String)], sites: &mut [(usize, Result<Vec<Page>, String>)]) {
        let mut queries = Vec::new();
        let mut asked = Vec::new();
        for (n, ((_, origin), (_, pages))) in targets.iter().zip(sites.iter()).enumerate() {
            if pages.is_err() {
                continue;
            }
            let host = origin.split_once("://").map_or(origin.as_str(), |(_, h)| h);
            let host = host.split(':').next().unwrap_or(host);
            let domain = host.strip_prefix("www.").unwrap_or(host);
            queries.push(DnsQuery::txt(domain));
            queries.push(DnsQuery::mx(domain));
            asked.push(n);
        }
        if queries.is_empty() {
            return;
        }
        let answers = match self.host.dns(&queries) {
            Ok(answers) => answers,
            Err(e) => {
                self.host.log(
                    Level::Warn,
                    format!("DNS lookups failed; dns patterns skipped: {e}"),
                );
                return;
            }
        };
        for (n, pair) in asked.into_iter().zip(answers.chunks(2)) {
            let Ok(pages) = &mut sites[n].1 else { continue };
            for answer in pair {
                if let Some(e) = &answer.error {
                    self.host.log(Level::Debug, format!("DNS: {e}"));
                }
                for record in &answer.records {
                    let (kind, value) = match record {
                        DnsRecord::Txt { strings } => ("txt", strings.join(" ")),
                        DnsRecord::Mx { preference, exchange } => ("mx", format!("{exchange} {preference}")),
                    };
                    pages[0].dns.entry(kind.to_owned()).or_default().push(value);
                }
            }
        }
    }

    /// Turns one site's pages into the account's result.
    fn observe(&self, account: &AccountInput, as_of: &str, pages: &[Page]) -> AccountResult {
        let detections: Vec<Detection> = self
            .rules
            .detect(pages)
            .into_iter()
            .filter(|d| d.confidence >= self.config.min_confidence.max(1))
            .collect();
        let detected: Vec<String> = detections.iter().map(|d| d.name.clone()).collect();

        let previous = History::from_state(&account.state);
        let first_fetch = previous.is_none();
        let mut history = previous.unwrap_or_default();
        let change = history.observe(&detected, as_of, self.config.removal_after);

        let mut result = AccountResult::new(&account.key);
        let in_use = history.in_use();
        let categories: BTreeSet<&str> = in_use
            .iter()
            .flat_map(|t| self.rules.categories_of(t))
            .map(String::as_str)
            .collect();
        let versions: Vec<String> = detections
            .iter()
            .filter_map(|d| d.version.as_ref().map(|v| format!("{} {v}", d.name)))
            .collect();
        let seen: Vec<String> = detections
            .iter()
            .map(|d| match &d.version {
                Some(v) => format!("{} {v} ({}%)", d.name, d.confidence),
                None => format!("{} ({}%)", d.name, d.confidence),
            })
            .collect();
        result
            .facts
            .insert("technographic.technologies".into(), json!(in_use));
        result
            .facts
            .insert("technographic.categories".into(), json!(categories));
        result
            .facts
            .insert("technographic.versions".into(), json!(versions));
        result
            .facts
            .insert("technographic.detections".into(), json!(seen));
        if !first_fetch || self.config.signal_first_fetch {
            result.signals.extend(
                change
                    .adopted
                    .into_iter()
                    .map(|t| signal("technology_adopted", t, as_of)),
            );
        }
        result.signals.extend(
            change
                .removed
                .into_iter()
                .map(|t| signal("technology_removed", t, as_of)),
        );
        result.state = history.to_state();
        result
    }
}

/// The request paths of one site and where each kind of answer sits among them.
struct SitePaths {
    paths: Vec<String>,
    /// The first `pages` paths are pages (the home page first).
    pages: usize,
    robots: Option<usize>,
    /// (probe key as in the rules, index).
    probes: Vec<(String, usize)>,
}

/// `href` (absolute, protocol-relative, root-relative or relative to `page`) as a URL on
/// `origin` (`scheme://host`), or `None` when it points elsewhere: the host allows a plugin
/// only its account's own domain.
fn same_site_url(origin: &str, page: &str, href: &str) -> Option<String> {
    let href = href.trim();
    let host = origin.split_once("://")?.1;
    if let Some(rest) = href.strip_prefix("//") {
        let (h, path) = rest.split_once('/').unwrap_or((rest, ""));
        return h.eq_ignore_ascii_case(host).then(|| format!("{origin}/{path}"));
    }
    if let Some((_, rest)) = href.split_once("://") {
        let (h, path) = rest.split_once('/').unwrap_or((rest, ""));
        return h.eq_ignore_ascii_case(host).then(|| format!("{origin}/{path}"));
    }
    if href.starts_with('/') {
        return Some(format!("{origin}{href}"));
    }
    if href.is_empty() || href.contains(':') {
        return None;
    }
    let base = page.rsplit_once('/').map_or(page, |(b, _)| b);
    Some(format!("{base}/{href}"))
}

fn field(name: &str, description: &str) -> ConfigField {
    ConfigField {
        name: name.into(),
        secret: false,
        required: false,
        description: description.into(),
    }
}

fn signal(kind: &str, subject: String, date: &str) -> Signal {
    Signal {
        kind: kind.into(),
        subject: Some(subject),
        date: date.into(),
        detail: Default::default(),
    }
}

/// The host name in a CRM domain field (`Acme.com`, `https://www.acme.com/about`), or `None`.
fn host_of(domain: &str) -> Option<String> {
    let d = domain.trim();
    let d = d
        .strip_prefix("https://")
        .or_else(|| d.strip_prefix("http://"))
        .unwrap_or(d);
    let host = d
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.contains('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    valid.then_some(host)
}

impl Provider for Technographic {
    fn init(config: Value, host: Host) -> Result<Self, PluginError> {
        Technographic::new(config, host)
    }

    fn describe(&self) -> Description {
        self.description()
    }

    fn enrich(&mut self, request: EnrichRequest) -> Result<EnrichResponse, PluginError> {
        self.run(request)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A site: its home page headers and body, and its careers page body.
    type Sites = Arc<Mutex<BTreeMap<String, (u16, Vec<(String, String)>, String, String)>>>;

    fn host_for(sites: Sites) -> Host {
        Host::with_http(move |requests| {
            let sites = sites.lock().unwrap();
            requests
                .iter()
                .map(|r| {
                    let rest = r.url.split_once("://").map_or("", |x| x.1);
                    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
                    match sites.get(host) {
                        None => HttpResponse::failed("connection refused"),
                        Some((status, headers, home, careers)) => HttpResponse {
                            status: if path.is_empty() { *status } else { 200 },
                            headers: headers.iter().cloned().collect(),
                            body: if path.is_empty() {
                                home.clone()
                            } else {
                                careers.clone()
                            },
                            error: None,
                            tls_issuer: None,
                        },
                    }
                })
                .collect()
        })
    }

    fn account(domain: &str, state: Value) -> AccountInput {
        AccountInput {
            key: domain.into(),
            id: format!("crm:{domain}"),
            name: String::new(),
            domain: Some(domain.into()),
            facts: Default::default(),
            related: Default::default(),
            state,
        }
    }

    fn enrich(p: &mut Technographic, as_of: &str, accounts: Vec<AccountInput>) -> Vec<AccountResult> {
        p.run(EnrichRequest {
            as_of: as_of.into(),
            accounts,
        })
        .unwrap()
        .results
    }

    fn techs(r: &AccountResult) -> Vec<String> {
        serde_json::from_value(r.facts["technographic.technologies"].clone()).unwrap()
    }

    const SEGMENT: &str =
        r#"<script src="https://cdn.segment.com/analytics.js/v1/k/analytics.min.js"></script>"#;
    const STRIPE: &str = r#"<script src="https://js.stripe.com/v3/"></script>"#;
    const CAREERS: &str = r#"<script type="application/ld+json">{"@type":"JobPosting","skills":"SQL, Snowflake, dbt"}</script>"#;

    #[test]
    fn detection_history_and_signals_across_fetches() {
        let sites: Sites = Arc::default();
        let set = |status: u16, home: &str| {
            sites.lock().unwrap().insert(
                "acme.test".into(),
                (
                    status,
                    vec![("server".into(), "cloudflare".into())],
                    home.into(),
                    CAREERS.into(),
                ),
            );
        };
        let mut p = Technographic::new(json!({"scheme": "http"}), host_for(sites.clone())).unwrap();

        set(200, &format!("{SEGMENT}{STRIPE}"));
        let r = &enrich(&mut p, "2026-01-01", vec![account("acme.test", Value::Null)])[0];
        assert_eq!(techs(r), ["Cloudflare", "Segment", "Snowflake", "Stripe", "dbt"]);
        assert!(
            r.signals.is_empty(),
            "the first fetch is the baseline: {:?}",
            r.signals
        );
        let cats = r.facts["technographic.categories"].as_array().unwrap();
        assert!(
            cats.contains(&json!("Data warehouse")) && cats.contains(&json!("CDN")),
            "{cats:?}"
        );

        // Stripe added, Segment gone once: adopted now, removal not yet.
        set(200, STRIPE);
        let state = r.state.clone();
        let r = &enrich(&mut p, "2026-02-01", vec![account("acme.test", state)])[0];
        assert_eq!(r.signals.len(), 0, "{:?}", r.signals);
        assert!(
            techs(r).contains(&"Segment".to_owned()),
            "one miss keeps it in use"
        );

        // A failed fetch changes nothing: per-account error, no state, no signals.
        set(503, "");
        let r2 = &enrich(&mut p, "2026-02-15", vec![account("acme.test", r.state.clone())])[0];
        assert!(
            r2.error.as_deref().unwrap().contains("HTTP status 503"),
            "{:?}",
            r2.error
        );
        assert!(r2.facts.is_empty() && r2.signals.is_empty() && r2.state.is_null());

        // Second successful miss: removed. A new technology: adopted.
        set(
            200,
            &format!("{STRIPE}<script src=\"https://js.hs-scripts.com/123.js\"></script>"),
        );
        let r = &enrich(&mut p, "2026-03-01", vec![account("acme.test", r.state.clone())])[0];
        let signals: Vec<(&str, &str)> = r
            .signals
            .iter()
            .map(|s| (s.kind.as_str(), s.subject.as_deref().unwrap()))
            .collect();
        assert_eq!(
            signals,
            [
                ("technology_adopted", "HubSpot"),
                ("technology_removed", "Segment")
            ]
        );
        assert!(r.signals.iter().all(|s| s.date == "2026-03-01"));
        assert!(!techs(r).contains(&"Segment".to_owned()));
    }

    #[test]
    fn unreachable_sites_fail_only_their_account_and_domainless_accounts_are_no_match() {
        let sites: Sites = Arc::default();
        sites
            .lock()
            .unwrap()
            .insert("up.test".into(), (200, vec![], STRIPE.into(), String::new()));
        let mut p = Technographic::new(json!({"scheme": "http", "paths": []}), host_for(sites)).unwrap();
        let mut nodomain = account("x", Value::Null);
        nodomain.domain = None;
        let mut bad = account("y", Value::Null);
        bad.domain = Some("not a domain".into());
        let results = enrich(
            &mut p,
            "2026-01-01",
            vec![
                account("down.test", Value::Null),
                nodomain,
                bad,
                account("up.test", Value::Null),
            ],
        );
        assert_eq!(results.len(), 4);
        assert_eq!(
            results[0].error.as_deref(),
            Some("fetching http://down.test/ failed: connection refused")
        );
        assert!(results[1].no_match);
        assert!(results[2].error.as_deref().unwrap().contains("not a host name"));
        assert_eq!(techs(&results[3]), ["Stripe"]);
    }

    #[test]
    fn robots_probes_and_same_site_stylesheets_are_fetched_when_rules_look_at_them() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("technologies.json");
        std::fs::write(
            &rules,
            r#"{"R": {"cats": [1], "robots": "Disallow: /r-admin"},
                "P": {"cats": [1], "probe": {"/p/status": "p-ok ([\\d.]+)\\;version:\\1"}},
                "S": {"cats": [1], "css": "\\.s-grid\\{"}}"#,
        )
        .unwrap();
        let asked: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = asked.clone();
        let host = Host::with_http(move |requests| {
            requests
                .iter()
                .map(|r| {
                    log.lock().unwrap().push(r.url.clone());
                    let path = r.url.splitn(4, '/').nth(3).unwrap_or("");
                    let body = match path {
                        "" => r#"<link rel="stylesheet" href="/a.css"><link rel="stylesheet" href="https://cdn.other.test/b.css"><link rel=stylesheet href="c.css">"#,
                        "robots.txt" => "User-agent: *\nDisallow: /r-admin",
                        "p/status" => "p-ok 2.1",
                        "a.css" => ".s-grid{display:grid}",
                        _ => "",
                    };
                    HttpResponse {
                        status: 200,
                        body: body.into(),
                        ..HttpResponse::default()
                    }
                })
                .collect()
        });
        let config = json!({"scheme": "http", "paths": [], "rules_path": rules.to_str().unwrap(),
            "stylesheets": 5, "min_confidence": 0});
        let mut p = Technographic::new(config, host).unwrap();
        let r = &enrich(&mut p, "2026-01-01", vec![account("shop.test", Value::Null)])[0];
        assert_eq!(techs(r), ["P", "R", "S"]);
        assert_eq!(r.facts["technographic.versions"], json!(["P 2.1"]));
        assert_eq!(
            r.facts["technographic.detections"],
            json!(["P 2.1 (100%)", "R (100%)", "S (100%)"])
        );
        assert_eq!(
            *asked.lock().unwrap(),
            [
                "http://shop.test/",
                "http://shop.test/robots.txt",
                "http://shop.test/p/status",
                "http://shop.test/a.css",
                "http://shop.test/c.css"
            ],
            "the other site's stylesheet is not asked for"
        );
    }

    #[test]
    fn the_certificate_issuer_the_host_reports_reaches_cert_issuer_patterns() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("technologies.json");
        std::fs::write(
            &rules,
            r#"{"Let's Encrypt": {"cats": [1], "certIssuer": "Let's Encrypt"}}"#,
        )
        .unwrap();
        let host = Host::with_http(|requests| {
            requests
                .iter()
                .map(|_| HttpResponse {
                    status: 200,
                    body: "<html></html>".into(),
                    tls_issuer: Some("C=US, O=Let's Encrypt, CN=R11".into()),
                    ..HttpResponse::default()
                })
                .collect()
        });
        let config = json!({"paths": [], "rules_path": rules.to_str().unwrap()});
        let mut p = Technographic::new(config, host).unwrap();
        let r = &enrich(&mut p, "2026-01-01", vec![account("secure.test", Value::Null)])[0];
        assert_eq!(techs(r), ["Let's Encrypt"]);
    }

    #[test]
    fn dns_records_of_the_domain_reach_dns_patterns_in_the_reference_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("technologies.json");
        // The TXT pattern spans the space the reference puts between a record's strings; the
        // MX pattern reads the preference after the exchange, as the reference writes it.
        std::fs::write(
            &rules,
            r#"{"Mailer": {"cats": [1], "dns": {"TXT": "mailer-verification=ab cd",
                                                 "MX": "mx\\.mailer\\.test (\\d+)\\;version:\\1"}}}"#,
        )
        .unwrap();
        let asked: Arc<Mutex<Vec<DnsQuery>>> = Arc::default();
        let log = asked.clone();
        let host = Host::with_http(|requests| {
            requests
                .iter()
                .map(|_| HttpResponse {
                    status: 200,
                    body: "<html></html>".into(),
                    ..HttpResponse::default()
                })
                .collect()
        })
        .with_dns(move |queries| {
            log.lock().unwrap().extend_from_slice(queries);
            queries
                .iter()
                .map(|q| match (q.name.as_str(), q.kind) {
                    ("acme.test", DnsKind::Txt) => DnsAnswer {
                        records: vec![DnsRecord::Txt {
                            strings: vec!["mailer-verification=ab".into(), "cd".into()],
                        }],
                        error: None,
                    },
                    ("acme.test", DnsKind::Mx) => DnsAnswer {
                        records: vec![DnsRecord::Mx {
                            preference: 10,
                            exchange: "mx.mailer.test".into(),
                        }],
                        error: None,
                    },
                    _ => DnsAnswer::failed("refused"),
                })
                .collect()
        });
        let config = json!({"paths": [], "rules_path": rules.to_str().unwrap()});
        let mut p = Technographic::new(config.clone(), host.clone()).unwrap();
        let r = &enrich(
            &mut p,
            "2026-01-01",
            vec![
                account("www.acme.test", Value::Null),
                account("other.test", Value::Null),
            ],
        );
        assert_eq!(techs(&r[0]), ["Mailer"]);
        assert_eq!(
            r[0].facts["technographic.detections"],
            json!(["Mailer 10 (100%)"])
        );
        assert_eq!(
            techs(&r[1]),
            Vec::<String>::new(),
            "a refused query detects nothing"
        );
        assert_eq!(
            *asked.lock().unwrap(),
            [
                DnsQuery::txt("acme.test"),
                DnsQuery::mx("acme.test"),
                DnsQuery::txt("other.test"),
                DnsQuery::mx("other.test")
            ]
        );

        let mut config = config;
        config["dns"] = json!(false);
        let mut off = Technographic::new(config, host).unwrap();
        let r = &enrich(&mut off, "2026-01-01", vec![account("acme.test", Value::Null)]);
        assert_eq!(techs(&r[0]), Vec::<String>::new());
        assert_eq!(asked.lock().unwrap().len(), 4, "dns = false asks nothing");
    }

    #[test]
    fn stylesheet_urls_stay_on_the_site() {
        let o = "https://acme.test";
        let page = "https://acme.test/blog/post";
        assert_eq!(
            same_site_url(o, page, "/s.css").as_deref(),
            Some("https://acme.test/s.css")
        );
        assert_eq!(
            same_site_url(o, page, "s.css").as_deref(),
            Some("https://acme.test/blog/s.css")
        );
        assert_eq!(
            same_site_url(o, page, "//ACME.test/x.css").as_deref(),
            Some("https://acme.test/x.css")
        );
        assert_eq!(same_site_url(o, page, "https://cdn.test/x.css"), None);
        assert_eq!(same_site_url(o, page, "data:text/css,x"), None);
    }

    #[test]
    fn bad_config_and_unreadable_rule_files_fail_init_clearly() {
        let err = |c: Value| {
            Technographic::new(c, Host::detached())
                .err()
                .unwrap()
                .message()
                .to_owned()
        };
        assert!(err(json!({"scheme": "ftp"})).contains("scheme must be"));
        assert!(err(json!({"removal_after": "two"})).contains("technographic config"));
        assert!(err(json!({"rules_path": "/nonexistent/rules.json"}))
            .contains("cannot read rule file /nonexistent/rules.json"));
    }

    #[test]
    fn strict_rules_refuse_patterns_no_engine_compiles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("technologies.json");
        std::fs::write(&path, r#"{"Broken": {"cats": [1], "html": "(unclosed"}}"#).unwrap();
        let path = path.to_str().unwrap();
        let e = Technographic::new(
            json!({"rules_path": path, "strict_rules": true}),
            Host::detached(),
        );
        assert!(
            e.err().unwrap().message().contains("1 fingerprint patterns"),
            "strict mode refuses"
        );
        assert!(
            Technographic::new(json!({"rules_path": path}), Host::detached()).is_ok(),
            "default warns"
        );
    }

    #[test]
    fn host_names_are_taken_from_crm_domain_fields() {
        assert_eq!(host_of("Acme.COM").as_deref(), Some("acme.com"));
        assert_eq!(
            host_of("https://www.acme.com/about?x").as_deref(),
            Some("www.acme.com")
        );
        assert_eq!(host_of("acme"), None);
        assert_eq!(host_of("a b.com"), None);
    }
}
