//! The built-in plugins, loaded from their built cdylibs through the plugin host exactly as the
//! daemon loads them, against the provider emulators. Company domains and the enrichment API
//! reach the emulators through the host's `resolve` routes; the plugins are not changed for tests.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tierd_test_support::{cdylib, tierd_bin};

use serde_json::{json, Value};
use tierd_emulators::enrichment::{EnrichmentConfig, EnrichmentEmulator};
use tierd_emulators::websites::{WebsiteConfig, WebsiteEmulator};
use tierd_emulators::{DnsConfig, DnsEmulator};
use tierd_plugin_host::{AccountInput, EnrichOptions, HostOptions, Mode, Outcome, PluginConfig, PluginSet};

async fn load(name: &str, cfg: PluginConfig) -> PluginSet {
    let configs = BTreeMap::from([(name.to_owned(), cfg)]);
    PluginSet::load(&configs, &HostOptions::default())
        .await
        .expect("plugin loads")
}

fn account(id: &str, name: &str, domain: Option<&str>) -> AccountInput {
    serde_json::from_value(json!({"key": "", "id": id, "name": name, "domain": domain})).unwrap()
}

fn facts(outcome: &Outcome) -> &serde_json::Map<String, Value> {
    match outcome {
        Outcome::Fresh { facts, .. } | Outcome::Cached { facts, .. } => facts,
        other => panic!("expected facts, got {other:?}"),
    }
}

/// Runs technographic over every site at `snapshot` and returns, per domain, the outcome.
async fn fetch_all(
    set: &PluginSet,
    web: &WebsiteEmulator,
    snapshot: u32,
    as_of: &str,
) -> Vec<(String, Outcome)> {
    web.set_snapshot(snapshot);
    let accounts: Vec<AccountInput> = web
        .domains()
        .enumerate()
        .map(|(i, d)| account(&format!("crm:{i}"), d, Some(d)))
        .collect();
    let out = set
        .enrich_with(as_of, accounts, &EnrichOptions { refresh: true })
        .await;
    out.into_iter()
        .map(|a| (a.key, a.results.into_iter().next().unwrap().outcome))
        .collect()
}

#[tokio::test]
async fn technographic_follows_stacks_across_snapshots_with_lingering_tags_and_failed_fetches() {
    let mut web_cfg = WebsiteConfig::new(60, 21);
    web_cfg.change_share = 0.5;
    web_cfg.error_share = 0.1;
    let web = WebsiteEmulator::start(web_cfg).await.unwrap();
    let mut cfg = PluginConfig::library(cdylib("technographic"), Mode::InProcess);
    cfg.resolve.insert("*".into(), web.addr().to_string());
    cfg.config.insert("scheme".into(), json!("http"));
    let set = load("technographic", cfg).await;

    // The emulator's vocabulary: detections outside it (web servers, implied languages) are
    // the plugin's business, not this test's.
    let web_ref = &web;
    let vocabulary: BTreeSet<&str> = web
        .domains()
        .flat_map(|d| (0..4).flat_map(move |s| web_ref.visible(d, s).unwrap()))
        .collect();
    // What the plugin should remember: per domain, technology -> consecutive misses.
    let mut expected: BTreeMap<String, Option<BTreeMap<&str, u32>>> = BTreeMap::new();
    let (mut adopted, mut removed, mut stale) = (0, 0, 0);

    for (snapshot, as_of) in [
        (0, "2026-01-01"),
        (1, "2026-02-01"),
        (2, "2026-03-01"),
        (3, "2026-04-01"),
    ] {
        for (domain, outcome) in fetch_all(&set, &web, snapshot, as_of).await {
            let history = expected.entry(domain.clone()).or_default();
            if web.failure(&domain, snapshot).is_some() {
                assert!(
                    matches!(outcome, Outcome::Stale { .. }),
                    "{domain} at {snapshot}: {outcome:?}"
                );
                stale += 1;
                continue;
            }
            let Outcome::Fresh { facts, signals } = &outcome else {
                panic!("{domain}: {outcome:?}")
            };
            let visible: BTreeSet<&str> = web.visible(&domain, snapshot).unwrap().into_iter().collect();
            let mut want_adopted = BTreeSet::new();
            let mut want_removed = BTreeSet::new();
            match history {
                None => *history = Some(visible.iter().map(|t| (*t, 0)).collect()),
                Some(h) => {
                    for t in &visible {
                        if h.insert(t, 0).is_none() {
                            want_adopted.insert(*t);
                        }
                    }
                    h.retain(|t, misses| {
                        if visible.contains(t) {
                            return true;
                        }
                        *misses += 1;
                        let gone = *misses >= 2;
                        if gone {
                            want_removed.insert(*t);
                        }
                        !gone
                    });
                }
            }
            let got = |kind: &str| -> BTreeSet<&str> {
                signals
                    .iter()
                    .filter(|s| s.kind == kind)
                    .filter_map(|s| s.subject.as_deref())
                    .filter(|t| vocabulary.contains(t))
                    .collect()
            };
            assert_eq!(
                got("technology_adopted"),
                want_adopted,
                "{domain} at snapshot {snapshot}"
            );
            assert_eq!(
                got("technology_removed"),
                want_removed,
                "{domain} at snapshot {snapshot}"
            );
            let in_use: BTreeSet<&str> = facts["technographic.technologies"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| vocabulary.contains(t))
                .collect();
            let remembered: BTreeSet<&str> = history.as_ref().unwrap().keys().copied().collect();
            assert_eq!(
                in_use, remembered,
                "{domain} at snapshot {snapshot}: lingering technologies stay in use"
            );
            adopted += want_adopted.len();
            removed += want_removed.len();
        }
    }
    assert!(
        adopted > 10 && removed > 3 && stale > 5,
        "adopted {adopted}, removed {removed}, stale {stale}"
    );
    set.shutdown().await;
    web.shutdown().await;
}

fn firmographic(api: &EnrichmentEmulator) -> PluginConfig {
    let mut cfg = PluginConfig::library(cdylib("firmographic"), Mode::InProcess);
    cfg.resolve
        .insert("api.peopledatalabs.com".into(), api.addr().to_string());
    cfg.config
        .insert("base_url".into(), json!("http://api.peopledatalabs.com"));
    cfg.config.insert("api_key".into(), json!("test-key"));
    cfg
}

fn companies(api: &EnrichmentEmulator, count: usize) -> Vec<AccountInput> {
    api.companies()
        .take(count)
        .enumerate()
        .map(|(i, (name, domain))| account(&format!("crm:{i}"), name, Some(domain)))
        .collect()
}

fn count(out: &[tierd_plugin_host::AccountEnrichment], pred: impl Fn(&Outcome) -> bool) -> usize {
    out.iter().filter(|a| pred(&a.results[0].outcome)).count()
}

// In-process mode loads a library once per process, so two tests loading `firmographic` at the
// same time would share one provider: the scenarios run one after the other in one test.
#[tokio::test]
async fn firmographic_against_the_enrichment_api_bills_stops_at_402_and_waits_out_429() {
    stops_at_402_for_the_rest_of_the_run().await;
    waits_for_the_rate_limit_window_and_retries().await;
}

async fn stops_at_402_for_the_rest_of_the_run() {
    let mut api_cfg = EnrichmentConfig::new(20, 4);
    api_cfg.credits = Some(3);
    api_cfg.unknown_share = 0.0;
    let api = EnrichmentEmulator::start(api_cfg).await.unwrap();
    let set = load("firmographic", firmographic(&api)).await;

    let out = set.enrich("2026-11-24", companies(&api, 10)).await;
    assert_eq!(count(&out, |o| matches!(o, Outcome::Fresh { .. })), 3);
    let fresh = out
        .iter()
        .find(|a| matches!(a.results[0].outcome, Outcome::Fresh { .. }))
        .unwrap();
    let f = facts(&fresh.results[0].outcome);
    assert!(
        f.contains_key("firmographic.region") && f.contains_key("firmographic.size_range"),
        "{f:?}"
    );
    let out_of_credits =
        |o: &Outcome| matches!(o, Outcome::Stale { reason } if reason.contains("out of credits"));
    assert_eq!(count(&out, out_of_credits), 7);
    assert_eq!(api.stats().billed, 3);

    // The rest of the run (same as_of) does not call the API again.
    let requests = api.stats().requests;
    let more: Vec<AccountInput> = companies(&api, 15).into_iter().skip(10).collect();
    let out = set.enrich("2026-11-24", more).await;
    assert_eq!(count(&out, out_of_credits), 5, "{out:?}");
    assert_eq!(api.stats().requests, requests, "no call after the 402");
    set.shutdown().await;
    api.shutdown().await;
}

async fn waits_for_the_rate_limit_window_and_retries() {
    let mut api_cfg = EnrichmentConfig::new(20, 8);
    api_cfg.rate_limit = Some(4);
    // PDL's window is 60 seconds; a short one keeps the test fast, the behaviour is the same.
    api_cfg.window = Duration::from_secs(1);
    let api = EnrichmentEmulator::start(api_cfg).await.unwrap();
    let mut cfg = firmographic(&api);
    cfg.timeout_ms = 20_000;
    let set = load("firmographic", cfg).await;

    let accounts = companies(&api, 6);
    let mut unknown = account("crm:x", "Nobody Known", Some("nobody-known.example"));
    unknown.key = String::new();
    let mut all = accounts;
    all.push(unknown);
    let out = set.enrich("2026-11-24", all).await;
    assert_eq!(count(&out, |o| matches!(o, Outcome::Fresh { .. })), 6, "{out:?}");
    assert_eq!(
        count(&out, |o| matches!(o, Outcome::NoMatch)),
        1,
        "404 is no match, not an error"
    );
    let stats = api.stats();
    assert!(stats.rate_limited >= 3, "{stats:?}");
    assert_eq!((stats.billed, stats.not_found), (6, 1), "{stats:?} {out:?}");
    set.shutdown().await;
    api.shutdown().await;
}

#[tokio::test]
async fn contract_renewals_reads_related_contracts_and_signals_windows() {
    let mut cfg = PluginConfig::library(cdylib("contract-renewals"), Mode::InProcess);
    cfg.config.insert(
        "competitors".into(),
        json!(["Hightouch", "Census", "RudderStack"]),
    );
    let set = load("contract-renewals", cfg).await;
    let mut a = account("salesforce:001A", "Acme", Some("acme.test"));
    a.related.insert(
        "contracts".into(),
        json!([{"vendor": "Hightouch", "start_date": "2025-01-01", "term_months": 24, "status": "Activated", "annual_value": 40000}]),
    );
    let out = set
        .enrich(
            "2026-11-24",
            vec![a, account("salesforce:001B", "Bare", Some("bare.test"))],
        )
        .await;
    let Outcome::Fresh { facts, signals } = &out[0].results[0].outcome else {
        panic!("{out:?}")
    };
    assert_eq!(facts["contracts.renewal_date"], "2026-12-31");
    assert_eq!(facts["contracts.days_to_renewal"], 37);
    assert_eq!(facts["contracts.is_competitor"], true);
    let windows: Vec<&str> = signals.iter().filter_map(|s| s.subject.as_deref()).collect();
    assert_eq!(windows, ["90", "180"]);
    assert_eq!(out[1].results[0].outcome, Outcome::NoMatch);
    set.shutdown().await;
}

/// `tierd plugins check --page` shows each detection with its version and confidence, and the
/// plugin's load report names the pattern kinds it cannot use (no longer `dns`: the host has a
/// DNS capability).
#[test]
fn plugins_check_page_prints_detections_and_the_ignored_pattern_kinds() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/wappalyzer");
    let config = serde_json::json!({
        "rules_path": corpus.join("rules/technologies.json"),
        "categories_path": corpus.join("rules/categories.json"),
        "paths": [],
    });
    let out = std::process::Command::new(tierd_e2e::tierd_bin())
        .args(["plugins", "check", "--mode", "in-process"])
        .arg(cdylib("technographic"))
        .arg("--page")
        .arg(corpus.join("pages/woocommerce-ver-timestamp.html"))
        .args(["--plugin-config", &config.to_string()])
        .output()
        .expect("tierd runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            r#"technographic.detections = ["PHP (50%)","WooCommerce 8.4.0 (100%)","WordPress 6.4.2 (100%)"]"#
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"technographic.versions = ["WooCommerce 8.4.0","WordPress 6.4.2"]"#),
        "{stdout}"
    );
    for kind in [
        "js: 1 patterns in 1 technologies ignored (needs a browser",
        "dom: 1 patterns",
        "xhr: 1 patterns",
    ] {
        assert!(stderr.contains(kind), "{kind} not in {stderr}");
    }
    assert!(!stderr.contains("dns patterns"), "{stderr}");
}

/// A technology known only by its `dns` patterns (the conformance corpus's "Acme Mail": a TXT
/// verification record and MX servers) is detected from the records the emulator's DNS responder
/// serves for the site's domain, in process and in an isolated child (which relays the queries).
#[tokio::test]
async fn technographic_detects_a_technology_known_only_by_its_dns_records() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = root.join("conformance/wappalyzer/rules");
    let web = WebsiteEmulator::start(WebsiteConfig::new(2, 7)).await.unwrap();
    let domains: Vec<String> = web.domains().map(str::to_owned).collect();
    let responder = DnsEmulator::start(
        DnsConfig::new()
            .txt(&domains[0], "v=spf1 include:acme-mail.test ~all")
            .txt(&domains[0], "acme-mail-verification=1f2e")
            .mx(&domains[0], 10, "mx1.acme-mail.test")
            .name(&domains[1]),
    )
    .await
    .unwrap();
    let isolated = HostOptions {
        child_command: vec![tierd_bin().into_os_string(), "plugin-host".into()],
    };
    let mut asked = 0;
    for mode in [Mode::InProcess, Mode::Isolated] {
        let mut cfg = PluginConfig::library(cdylib("technographic"), mode);
        cfg.resolve.insert("*".into(), web.addr().to_string());
        cfg.dns.nameservers = vec![responder.addr().to_string()];
        cfg.config.insert("scheme".into(), json!("http"));
        cfg.config.insert("paths".into(), json!([]));
        cfg.config.insert("site_files".into(), json!(false));
        cfg.config.insert(
            "rules_path".into(),
            json!(rules.join("technologies.json").to_str().unwrap()),
        );
        cfg.config.insert(
            "categories_path".into(),
            json!(rules.join("categories.json").to_str().unwrap()),
        );
        let configs = BTreeMap::from([("technographic".to_owned(), cfg)]);
        let set = PluginSet::load(&configs, &isolated).await.expect("plugin loads");
        let accounts = domains
            .iter()
            .enumerate()
            .map(|(i, d)| account(&format!("crm:{i}"), d, Some(d)))
            .collect();
        let out = set.enrich("2026-11-24", accounts).await;
        let techs = |i: usize| -> Vec<String> {
            serde_json::from_value(facts(&out[i].results[0].outcome)["technographic.technologies"].clone())
                .unwrap()
        };
        assert!(
            techs(0).contains(&"Acme Mail".to_owned()),
            "{mode:?}: {:?}",
            techs(0)
        );
        assert!(
            !techs(1).contains(&"Acme Mail".to_owned()),
            "{mode:?}: {:?}",
            techs(1)
        );
        let counters = set.dns_counters("technographic").unwrap();
        assert_eq!(
            (counters.queries, counters.refused, counters.errors),
            (4, 0, 0),
            "{mode:?}"
        );
        asked += 4;
        assert_eq!(responder.queries(), asked, "{mode:?}: TXT and MX of each domain");
        set.shutdown().await;

        // Turned off in the plugin's config: nothing is asked, nothing is detected from DNS.
        let mut cfg = configs["technographic"].clone();
        cfg.config.insert("dns".into(), json!(false));
        let configs = BTreeMap::from([("technographic".to_owned(), cfg)]);
        let set = PluginSet::load(&configs, &isolated).await.expect("plugin loads");
        let out = set
            .enrich(
                "2026-11-24",
                vec![account("crm:0", &domains[0], Some(&domains[0]))],
            )
            .await;
        let techs: Vec<String> =
            serde_json::from_value(facts(&out[0].results[0].outcome)["technographic.technologies"].clone())
                .unwrap();
        assert!(!techs.contains(&"Acme Mail".to_owned()), "{mode:?}: {techs:?}");
        assert_eq!(responder.queries(), asked, "{mode:?}: dns = false asks nothing");
        set.shutdown().await;
    }
}

/// `tierd plugins check --resolve HOST=ADDR` routes a plugin's vendor to a local emulator: the
/// firmographic plugin's sample enrich reaches the enrichment API (one request) instead of
/// failing on DNS.
#[tokio::test]
async fn plugins_check_resolve_routes_the_vendor_host_to_an_emulator() {
    let api = EnrichmentEmulator::start(EnrichmentConfig::new(20, 4))
        .await
        .unwrap();
    let config = json!({"base_url": "http://api.peopledatalabs.com", "api_key": "test-key"});
    let resolve = format!("api.peopledatalabs.com={}", api.addr());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(tierd_e2e::tierd_bin())
            .args(["plugins", "check", "--mode", "isolated"])
            .arg(cdylib("firmographic"))
            .args(["--resolve", &resolve, "--plugin-config", &config.to_string()])
            .output()
            .expect("tierd runs")
    })
    .await
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("firmographic "), "named by describe(): {stdout}");
    assert_eq!(api.stats().requests, 1, "{stdout}\n{stderr}");
    api.shutdown().await;
}
