//! Prints, for each corpus page, what the plugin's engine sees (the page split into the
//! reference engine's items) and what it detects, one JSON object per line, for the
//! conformance test against wappalyzer-core (`tests/conformance/wappalyzer.sh`).
//!
//! Usage: `conformance TECHNOLOGIES.json CATEGORIES.json PAGE.html...`. A page may have a
//! sidecar `PAGE.site.json` with what a fetch sees besides the body:
//! `{"url", "headers": {name: value}, "robots", "probe": {path: body}, "dns": {type: [record]},
//! "certIssuer"}`; the URL defaults to `https://PAGE-NAME.test/`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use serde::Deserialize;
use serde_json::{json, Value};
use technographic::{Page, RuleSet};

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct Site {
    url: Option<String>,
    headers: BTreeMap<String, String>,
    robots: Option<String>,
    probe: BTreeMap<String, String>,
    dns: BTreeMap<String, Vec<String>>,
    cert_issuer: Option<String>,
}

fn page(path: &Path) -> Result<Page, String> {
    let html = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("page");
    let sidecar = path.with_extension("site.json");
    let site: Site = match std::fs::read_to_string(&sidecar) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", sidecar.display()))?,
        Err(_) => Site::default(),
    };
    let url = site.url.unwrap_or_else(|| format!("https://{stem}.test/"));
    let headers = site.headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let mut page = Page::new(&url, headers, html);
    page.robots = site.robots;
    page.probe = site.probe.into_iter().map(|(k, v)| (k, vec![v])).collect();
    page.dns = site
        .dns
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    page.cert_issuer = site.cert_issuer;
    Ok(page)
}

/// The page as wappalyzer-core's `analyze` takes it.
fn items(page: &Page) -> Value {
    let mut meta: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, content) in &page.meta {
        meta.entry(name).or_default().push(content);
    }
    let one = |m: &std::collections::HashMap<String, String>| -> BTreeMap<String, Vec<String>> {
        m.iter().map(|(k, v)| (k.clone(), vec![v.clone()])).collect()
    };
    json!({
        "url": page.url,
        "html": page.html,
        "text": page.text,
        "css": page.css,
        "robots": page.robots,
        "certIssuer": page.cert_issuer,
        "scriptSrc": page.script_src,
        "scripts": page.scripts.join("\n"),
        "headers": one(&page.headers),
        "cookies": one(&page.cookies),
        "meta": meta,
        "dns": page.dns,
        "probe": page.probe,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: conformance TECHNOLOGIES.json CATEGORIES.json PAGE.html...");
        return ExitCode::from(2);
    }
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"));
    let rules = read(&args[0])
        .and_then(|t| read(&args[1]).map(|c| (t, c)))
        .and_then(|(t, c)| RuleSet::parse(&t, &c).map_err(|e| format!("{}: {e}", args[0])));
    let rules = match rules {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    for failed in &rules.report().failed {
        eprintln!("pattern not compiled: {failed}");
    }
    for path in &args[2..] {
        let page = match page(Path::new(path)) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        };
        let detections: Vec<Value> = rules
            .detect(std::slice::from_ref(&page))
            .into_iter()
            .map(|d| json!({"name": d.name, "confidence": d.confidence, "version": d.version.unwrap_or_default()}))
            .collect();
        let name = Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(path);
        println!(
            "{}",
            json!({"page": name, "items": items(&page), "detections": detections})
        );
    }
    ExitCode::SUCCESS
}
