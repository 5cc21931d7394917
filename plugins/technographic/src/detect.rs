//! Matching pages against a [`RuleSet`]: confidences, versions, implies, requires, excludes.
//!
//! Wappalyzer's semantics: the confidences of a technology's matched patterns add up (capped at
//! 100); a version comes from a capture group through the pattern's `\;version:` template;
//! an implied technology inherits the smaller of its implier's confidence and the
//! implication's own.

use std::collections::HashMap;

use crate::page::Page;
use crate::rules::{Matcher, Pattern, PatternGroup, RuleSet, TechId};

/// Patterns by header, cookie or meta name.
type KeyedPatterns = HashMap<String, Vec<Pattern>>;

/// A technology found on a site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// Technology name as in the rule file.
    pub name: String,
    /// 1..=100.
    pub confidence: u8,
    /// Version, when a pattern captured one.
    pub version: Option<String>,
    /// Category names.
    pub categories: Vec<String>,
}

/// Evidence gathered per technology while matching.
#[derive(Debug, Clone, Default)]
struct Evidence {
    confidence: u32,
    version: Option<String>,
}

impl Evidence {
    fn add_confidence(&mut self, confidence: u8) {
        self.confidence = (self.confidence + u32::from(confidence)).min(100);
    }

    /// Keeps the longest version: the most specific one (`6.4.2` over `6`).
    fn add_version(&mut self, version: Option<String>) {
        if let Some(v) = version.filter(|v| !v.is_empty()) {
            if self.version.as_ref().is_none_or(|old| v.len() > old.len()) {
                self.version = Some(v);
            }
        }
    }
}

impl RuleSet {
    /// Technologies found across `pages` (one site: its home page and other paths), sorted by
    /// name. A technology's confidence is its best over the pages.
    pub fn detect(&self, pages: &[Page]) -> Vec<Detection> {
        let mut best = vec![Evidence::default(); self.technologies.len()];
        for page in pages {
            let found = self.match_page(page);
            for (b, f) in best.iter_mut().zip(found) {
                if f.confidence > b.confidence {
                    b.confidence = f.confidence;
                }
                b.add_version(f.version);
            }
        }
        self.resolve(best)
    }

    /// Direct evidence on one page, per technology.
    fn match_page(&self, page: &Page) -> Vec<Evidence> {
        let mut found = vec![Evidence::default(); self.technologies.len()];
        let mut counted = Vec::new();
        let mut matched: Vec<(usize, &str)> = Vec::new();
        let texts: [(&PatternGroup, Vec<&str>); 4] = [
            (&self.html, vec![page.html.as_str()]),
            (
                &self.script_src,
                page.script_src.iter().map(String::as_str).collect(),
            ),
            (&self.scripts, page.scripts.iter().map(String::as_str).collect()),
            (&self.url, vec![page.url.as_str()]),
        ];
        for (group, texts) in texts {
            // A pattern's confidence counts once per page however many texts it matches.
            counted.clear();
            counted.resize(group.patterns.len(), false);
            for text in texts {
                matched.clear();
                for m in group.set.matches(text.as_bytes()).iter() {
                    let i = group.members[m];
                    if let Some(at) = group.patterns[i].confirm(text) {
                        matched.push((i, at));
                    }
                }
                for &i in &group.unfiltered {
                    if group.patterns[i].is_match(text) {
                        matched.push((i, text));
                    }
                }
                for &(i, at) in &matched {
                    let p = &group.patterns[i];
                    let e = &mut found[p.tech];
                    if !counted[i] {
                        counted[i] = true;
                        e.add_confidence(p.confidence);
                    }
                    if let Some(template) = &p.version {
                        e.add_version(version_of(p, template, at));
                    }
                }
            }
        }

        let keyed: [(&KeyedPatterns, Vec<(&str, &str)>); 3] = [
            (
                &self.headers,
                page.headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            ),
            (
                &self.cookies,
                page.cookies
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            ),
            (
                &self.meta,
                page.meta.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            ),
        ];
        for (table, entries) in keyed {
            for (name, value) in entries {
                for p in table.get(name).into_iter().flatten() {
                    if p.is_match(value) {
                        let e = &mut found[p.tech];
                        e.add_confidence(p.confidence);
                        if let Some(template) = &p.version {
                            e.add_version(version_of(p, template, value));
                        }
                    }
                }
            }
        }
        found
    }

    /// Applies implies, requires and excludes, and names the result.
    fn resolve(&self, mut evidence: Vec<Evidence>) -> Vec<Detection> {
        let mut queue: Vec<TechId> = (0..evidence.len())
            .filter(|&t| evidence[t].confidence > 0)
            .collect();
        while let Some(t) = queue.pop() {
            let from = evidence[t].confidence;
            for &(implied, confidence) in &self.technologies[t].implies {
                let c = from.min(u32::from(confidence));
                if c > evidence[implied].confidence {
                    evidence[implied].confidence = c;
                    queue.push(implied);
                }
            }
        }
        let detected = |e: &[Evidence], t: TechId| e[t].confidence > 0;
        let mut keep: Vec<bool> = (0..evidence.len()).map(|t| detected(&evidence, t)).collect();
        for (t, tech) in self.technologies.iter().enumerate() {
            if keep[t] && !tech.requires.iter().all(|&r| detected(&evidence, r)) {
                keep[t] = false;
            }
        }
        for (t, tech) in self.technologies.iter().enumerate() {
            if detected(&evidence, t) {
                for &x in &tech.excludes {
                    keep[x] = false;
                }
            }
        }
        let mut out: Vec<Detection> = evidence
            .into_iter()
            .enumerate()
            .filter(|&(t, _)| keep[t])
            .map(|(t, e)| Detection {
                name: self.technologies[t].name.clone(),
                confidence: e.confidence as u8,
                version: e.version,
                categories: self.technologies[t].categories.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

impl Pattern {
    fn is_match(&self, text: &str) -> bool {
        match &self.matcher {
            Matcher::Present => true,
            Matcher::Fast(re) => re.is_match(text.as_bytes()),
            // A fancy pattern that exhausts its backtracking budget counts as no match.
            Matcher::Fancy { regex, .. } => regex.is_match(text).unwrap_or(false),
        }
    }

    /// After the set reported this pattern (or its prefilter) in `text`: the text to take a
    /// version from, or `None` when the full pattern does not match. A fancy pattern is only
    /// run on a window around each prefilter match, which keeps backtracking off the rest of
    /// the page; lookarounds reaching further than the window are cut short.
    fn confirm<'t>(&self, text: &'t str) -> Option<&'t str> {
        const CONTEXT: usize = 256;
        let Matcher::Fancy {
            regex,
            prefilter: Some(pre),
        } = &self.matcher
        else {
            return Some(text);
        };
        pre.find_iter(text.as_bytes()).find_map(|m| {
            let mut start = m.start().saturating_sub(CONTEXT);
            let mut end = (m.end() + CONTEXT).min(text.len());
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            while !text.is_char_boundary(end) {
                end += 1;
            }
            let window = &text[start..end];
            regex.is_match(window).unwrap_or(false).then_some(window)
        })
    }

    /// Capture groups of the first match in `text` (group 0 first; `None` for groups that
    /// did not take part).
    fn captures(&self, text: &str) -> Vec<Option<String>> {
        match &self.matcher {
            Matcher::Present => Vec::new(),
            Matcher::Fast(re) => re.captures(text.as_bytes()).map_or_else(Vec::new, |c| {
                c.iter()
                    .map(|m| m.map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned()))
                    .collect()
            }),
            Matcher::Fancy { regex, .. } => regex.captures(text).ok().flatten().map_or_else(Vec::new, |c| {
                c.iter().map(|m| m.map(|m| m.as_str().to_owned())).collect()
            }),
        }
    }
}

/// Fills a `\;version:` template from the pattern's captures in `text`: `\N` is group N,
/// `\N?a:b` is `a` when group N matched something and `b` otherwise.
fn version_of(pattern: &Pattern, template: &str, text: &str) -> Option<String> {
    let groups = pattern.captures(text);
    let group = |n: usize| groups.get(n).cloned().flatten().unwrap_or_default();
    let filled = match ternary(template) {
        Some((n, yes, no)) => substitute(if group(n).is_empty() { no } else { yes }, &group),
        None => substitute(template, &group),
    };
    let filled = filled.trim();
    (!filled.is_empty()).then(|| filled.to_owned())
}

/// `\N?yes:no` -> (N, yes, no).
fn ternary(template: &str) -> Option<(usize, &str, &str)> {
    let rest = template.strip_prefix('\\')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let n = rest[..digits].parse().ok()?;
    let (yes, no) = rest[digits..].strip_prefix('?')?.split_once(':')?;
    Some((n, yes, no))
}

/// Replaces every `\N` in `template` with group N.
fn substitute(template: &str, group: &dyn Fn(usize) -> String) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match after[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&group(n)),
            Err(_) => out.push('\\'),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> RuleSet {
        let rules = RuleSet::parse(json, r#"{"1": {"name": "Analytics"}, "2": {"name": "CDN"}}"#).unwrap();
        assert!(rules.report().failed.is_empty(), "{:?}", rules.report().failed);
        rules
    }

    fn page(headers: &[(&str, &str)], html: &str) -> Page {
        Page::new(
            "https://acme.test/pricing",
            headers.iter().copied(),
            html.to_owned(),
        )
    }

    fn found(rules: &RuleSet, page: &Page) -> Vec<(String, u8, Option<String>)> {
        rules
            .detect(std::slice::from_ref(page))
            .into_iter()
            .map(|d| (d.name, d.confidence, d.version))
            .collect()
    }

    #[test]
    fn every_pattern_kind_matches_case_insensitively() {
        let r = rules(
            r#"{
            "H": {"cats": [2], "headers": {"Server": "^edgeserver"}},
            "C": {"cats": [1], "cookies": {"_trk": ""}},
            "M": {"cats": [1], "meta": {"generator": "^sitebuilder"}},
            "S": {"cats": [1], "scriptSrc": "cdn\\.tracker\\.test/t\\.js"},
            "I": {"cats": [1], "scripts": "tracker\\.init\\("},
            "T": {"cats": [1], "html": "<div id=\"app-root\""},
            "U": {"cats": [1], "url": "/pricing$"},
            "N": {"cats": [1], "html": "never-present"}
        }"#,
        );
        let p = page(
            &[("SERVER", "EdgeServer/2"), ("Set-Cookie", "_TRK=1")],
            r#"<META NAME="Generator" CONTENT="SiteBuilder 9"><SCRIPT SRC="HTTPS://CDN.TRACKER.TEST/T.JS"></SCRIPT>
               <script>TRACKER.INIT({})</script><DIV ID="APP-ROOT"></DIV>"#,
        );
        let names: Vec<String> = found(&r, &p).into_iter().map(|f| f.0).collect();
        assert_eq!(names, ["C", "H", "I", "M", "S", "T", "U"]);
    }

    #[test]
    fn versions_come_from_captures_and_ternaries() {
        let r = rules(
            r#"{
            "jQuery": {"cats": [1], "scriptSrc": "jquery-(\\d[\\d.]*\\d)(?:\\.min)?\\.js\\;version:\\1"},
            "Nginx": {"cats": [2], "headers": {"Server": "^nginx(?:/([\\d.]+))?\\;version:\\1"}},
            "Legacy": {"cats": [1], "html": "legacy-(beta)?widget\\;version:\\1?2-beta:1"}
        }"#,
        );
        let p = page(
            &[("server", "nginx/1.25.3")],
            r#"<script src="/js/jquery-1.12.min.js"></script><script src="/js/jquery-3.7.1.min.js"></script>legacy-widget"#,
        );
        assert_eq!(
            found(&r, &p),
            [
                ("Legacy".into(), 100, Some("1".into())),
                ("Nginx".into(), 100, Some("1.25.3".into())),
                // Both scripts match; the more specific version wins.
                ("jQuery".into(), 100, Some("3.7.1".into())),
            ]
        );
        let p = page(&[("server", "nginx")], "legacy-betawidget");
        assert_eq!(found(&r, &p)[0].2.as_deref(), Some("2-beta"));
        assert_eq!(found(&r, &p)[1], ("Nginx".into(), 100, None));
    }

    #[test]
    fn confidences_add_up_per_pattern_and_cap_at_100() {
        let r = rules(
            r#"{
            "Weak": {"cats": [1], "html": ["alpha\\;confidence:30", "beta\\;confidence:30"], "cookies": {"w": "\\;confidence:50"}}
        }"#,
        );
        // One pattern matching many times counts once.
        assert_eq!(found(&r, &page(&[], "alpha alpha alpha"))[0].1, 30);
        assert_eq!(found(&r, &page(&[], "alpha beta"))[0].1, 60);
        assert_eq!(found(&r, &page(&[("set-cookie", "w=1")], "alpha beta"))[0].1, 100);
    }

    #[test]
    fn implies_carry_the_smaller_confidence_and_requires_excludes_apply() {
        let r = rules(
            r#"{
            "Next": {"cats": [1], "html": "/_next/", "implies": ["React", "Node\\;confidence:40"]},
            "React": {"cats": [1]},
            "Node": {"cats": [1]},
            "Plugin": {"cats": [1], "html": "plugin-x", "requires": "Host"},
            "Host": {"cats": [1], "html": "host-y"},
            "New": {"cats": [1], "html": "new-z", "excludes": "Old"},
            "Old": {"cats": [1], "html": "old-z"}
        }"#,
        );
        let f = found(&r, &page(&[], "/_next/ plugin-x new-z old-z"));
        assert_eq!(
            f,
            [
                ("New".into(), 100, None),
                ("Next".into(), 100, None),
                ("Node".into(), 40, None),
                ("React".into(), 100, None)
            ]
        );
        let f = found(&r, &page(&[], "plugin-x host-y"));
        assert_eq!(
            f.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
            ["Host", "Plugin"]
        );
    }

    #[test]
    fn lookaround_patterns_run_on_the_fallback_engine() {
        let r = rules(r#"{"Jira": {"cats": [1], "html": "atlassian\\.net/(?!wiki)\\w+"}}"#);
        assert_eq!(r.report().fallback, ["Jira (html)"]);
        assert!(found(&r, &page(&[], "https://acme.atlassian.net/wiki/x")).is_empty());
        assert_eq!(
            found(&r, &page(&[], "https://acme.atlassian.net/browse/X-1")).len(),
            1
        );
    }

    #[test]
    fn the_best_evidence_over_several_pages_counts() {
        let r = rules(r#"{"A": {"cats": [1], "html": ["a1\\;confidence:40", "a2\\;confidence:40"]}}"#);
        let pages = [page(&[], "a1"), page(&[], "a1 a2"), page(&[], "")];
        assert_eq!(r.detect(&pages)[0].confidence, 80);
    }

    #[test]
    fn shipped_rules_detect_each_generator_technology_from_its_usual_footprint() {
        let r = RuleSet::builtin().unwrap();
        let careers = r#"{"@type": "JobPosting", "skills": "Python, Snowflake, Databricks, BigQuery, Redshift, dbt, Fivetran, Census"}"#;
        let html = format!(
            r#"<meta name="generator" content="WordPress 6.4.2">
            <script src="https://cdn.segment.com/analytics.js/v1/k/analytics.min.js"></script>
            <script src="https://cdn.amplitude.com/libs/analytics-browser-2.11.1-min.js.gz"></script>
            <script src="https://cdn.mxpnl.com/libs/mixpanel-2-latest.min.js"></script>
            <script async src="https://www.googletagmanager.com/gtag/js?id=G-X1"></script>
            <form action="https://webto.salesforce.com/servlet/servlet.WebToLead?encoding=UTF-8"></form>
            <script src="//js.hs-scripts.com/99.js"></script>
            <script src="//munchkin.marketo.net/159/munchkin.js"></script>
            <script src="https://pi.pardot.com/pd.js"></script>
            <script src="https://cdn.hightouch-events.com/browser/release/v1-latest/events.min.js"></script>
            <script src="https://cdn.rudderlabs.com/v1.1/rudder-analytics.min.js"></script>
            <script id="ze-snippet" src="https://static.zdassets.com/ekr/snippet.js?key=k"></script>
            <script src="https://widget.intercom.io/widget/abc"></script>
            <script src="https://js.stripe.com/v3/"></script>
            <script src="https://cdn.shopify.com/s/trekkie.storefront.min.js"></script>
            <script src="https://ok12static.oktacdn.com/assets/js/sdk/okta-signin-widget/7.0.0/js/okta-sign-in.min.js"></script>
            <a href="https://join.slack.com/t/acme/shared_invite/zt-1">Slack</a>
            <a href="https://acme.atlassian.net/servicedesk/customer/portals">Support</a>
            <script type="application/ld+json">{careers}</script>"#
        );
        let headers = [
            ("server", "cloudflare"),
            ("x-amz-request-id", "R1"),
            ("x-azure-ref", "0abc"),
            ("via", "1.1 google"),
        ];
        let names: Vec<String> = r
            .detect(&[page(&headers, &html)])
            .into_iter()
            .map(|d| d.name)
            .collect();
        for tech in [
            "Snowflake",
            "Databricks",
            "BigQuery",
            "Redshift",
            "dbt",
            "Fivetran",
            "Segment",
            "Amplitude",
            "Mixpanel",
            "Google Analytics",
            "Salesforce",
            "HubSpot",
            "Marketo",
            "Pardot",
            "Hightouch",
            "Census",
            "RudderStack",
            "Zendesk",
            "Intercom",
            "Stripe",
            "Shopify",
            "WordPress",
            "Cloudflare",
            "AWS",
            "Azure",
            "Google Cloud",
            "Okta",
            "Slack",
            "Jira",
        ] {
            assert!(
                names.iter().any(|n| n == tech),
                "{tech} not detected in {names:?}"
            );
        }
        assert!(!names.iter().any(|n| n == "Confluence"));
    }
}
