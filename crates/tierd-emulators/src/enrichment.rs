//! The company-enrichment emulator, shaped like People Data Labs' Company Enrichment API
//! (`GET /v5/company/enrich`).
//!
//! Follows PDL's published behaviour: the key in `X-Api-Key` (or an `api_key` query
//! parameter); a match by `website` or `name` returns 200 with the company's fields at the top
//! level of the body (not under `data`) and costs one credit; 404 `not_found` is no match and
//! free; 402 `payment_required` once the credits are used up; 429 `rate_limit_error` past the
//! per-key limit of a fixed window (60 seconds by default); 401 `authentication_error`; 400
//! `invalid_request_error`. Error bodies are `{"status": N, "error": {"type", "message"}}`.
//! Headers: `x-ratelimit-limit` / `x-ratelimit-remaining` as `{"minute": N}`,
//! `x-ratelimit-reset` as a UTC timestamp, `x-totallimit-remaining`, `x-call-credits-spent`,
//! and `retry-after` on 429.
//!
//! The world is the generator's accounts with PDL-style fields (lower-cased names, PDL
//! industry strings, size and revenue ranges, full country names); a configurable share of
//! domains is unknown, and each record has a likelihood (1..=10) that `min_likelihood` filters.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Value};
use tierd_gen::{GenOptions, Generator, SyntheticAccount};

use crate::faults::splitmix;
use crate::server::{form_pairs, json_value, Running};

/// How the enrichment emulator's world and limits are set up.
#[derive(Debug, Clone)]
pub struct EnrichmentConfig {
    /// How many companies the generator makes (company `k` is account `k + 1`).
    pub accounts: u64,
    /// The generator seed; also decides which domains are unknown and each likelihood.
    pub seed: u64,
    /// The generator's `as_of` date, `YYYY-MM-DD`.
    pub as_of: String,
    /// The API key every request must carry.
    pub api_key: String,
    /// Matches the key may still be billed for; `None` = unlimited.
    pub credits: Option<u64>,
    /// Requests per window and key; `None` = no limit.
    pub rate_limit: Option<u32>,
    /// The fixed rate-limit window (PDL: 60 seconds).
    pub window: Duration,
    /// Share of companies the API does not know (404), 0..=1.
    pub unknown_share: f64,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// How long every request waits before it is answered, as a real provider's round trip
    /// does (PDL answers in tens to hundreds of milliseconds); zero answers at once. Benchmarks
    /// use it to make enrichment wait-bound rather than CPU-bound.
    pub latency: Duration,
}

impl EnrichmentConfig {
    /// `accounts` companies from `seed`, as of 2026-11-24, key `test-key`, unlimited credits,
    /// no rate limit (60-second window when set), 10% unknown, any free port, no latency.
    pub fn new(accounts: u64, seed: u64) -> Self {
        EnrichmentConfig {
            accounts,
            seed,
            as_of: "2026-11-24".into(),
            api_key: "test-key".into(),
            credits: None,
            rate_limit: None,
            window: Duration::from_secs(60),
            unknown_share: 0.1,
            port: 0,
            latency: Duration::ZERO,
        }
    }
}

/// What the enrichment emulator answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EnrichmentStats {
    /// Requests received.
    pub requests: u64,
    /// 200 answers: each cost one credit.
    pub billed: u64,
    /// 404 answers (no match, free).
    pub not_found: u64,
    /// 402 answers.
    pub payment_required: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// 401 answers.
    pub unauthorized: u64,
}

/// A running enrichment emulator.
pub struct EnrichmentEmulator {
    api: Arc<Api>,
    running: Running,
}

struct Api {
    cfg: EnrichmentConfig,
    records: Vec<Value>,
    by_domain: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
    limits: Mutex<Limits>,
    requests: AtomicU64,
    billed: AtomicU64,
    not_found: AtomicU64,
    payment_required: AtomicU64,
    rate_limited: AtomicU64,
    unauthorized: AtomicU64,
}

struct Limits {
    credits: Option<u64>,
    window_start: Instant,
    window_start_wall: SystemTime,
    used: u32,
}

impl EnrichmentEmulator {
    /// Seeds the world and starts serving on 127.0.0.1 (`cfg.port`, 0 = any free port).
    pub async fn start(cfg: EnrichmentConfig) -> anyhow::Result<EnrichmentEmulator> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&cfg.unknown_share),
            "enrichment emulator: unknown_share must be within 0..=1"
        );
        anyhow::ensure!(
            !cfg.window.is_zero(),
            "enrichment emulator: window must be positive"
        );
        let as_of = cfg
            .as_of
            .parse()
            .map_err(|e| anyhow::anyhow!("enrichment emulator: as_of is not a date: {e}"))?;
        let opts = GenOptions {
            seed: cfg.seed,
            as_of,
        };
        let (count, seed, unknown) = (cfg.accounts, cfg.seed, cfg.unknown_share);
        let records = tokio::task::spawn_blocking(move || {
            Generator::new(opts)
                .take(count as usize)
                .enumerate()
                .filter(|(k, _)| unit(splitmix(seed ^ splitmix(*k as u64 + 1) ^ 0x404)) >= unknown)
                .map(|(k, a)| record(seed, k as u64 + 1, &a))
                .collect::<Vec<_>>()
        })
        .await?;
        let key = |r: &Value, f: &str| r[f].as_str().unwrap_or_default().to_owned();
        let by_domain = records
            .iter()
            .enumerate()
            .map(|(i, r)| (key(r, "website"), i))
            .collect();
        let by_name = records
            .iter()
            .enumerate()
            .map(|(i, r)| (key(r, "name"), i))
            .collect();
        let api = Arc::new(Api {
            limits: Mutex::new(Limits {
                credits: cfg.credits,
                window_start: Instant::now(),
                window_start_wall: SystemTime::now(),
                used: 0,
            }),
            cfg,
            records,
            by_domain,
            by_name,
            requests: AtomicU64::new(0),
            billed: AtomicU64::new(0),
            not_found: AtomicU64::new(0),
            payment_required: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
        });
        let router = Router::new()
            .route("/v5/company/enrich", get(enrich))
            .route("/__admin/stats", get(stats))
            .with_state(api.clone());
        let running = Running::start(router, api.cfg.port, "enrichment").await?;
        Ok(EnrichmentEmulator { api, running })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.running.base_url()
    }

    /// The bound address, for routing `api.peopledatalabs.com` here.
    pub fn addr(&self) -> SocketAddr {
        let url = self.base_url();
        url.trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|_| unreachable!("{url} is host:port"))
    }

    /// What was answered so far.
    pub fn stats(&self) -> EnrichmentStats {
        self.api.stats()
    }

    /// The delay every request waits before its answer.
    pub fn latency(&self) -> Duration {
        self.api.cfg.latency
    }

    /// Credits left (`None`: unlimited).
    pub fn credits_remaining(&self) -> Option<u64> {
        self.api.limits().credits
    }

    /// Sets the credits left (`None`: unlimited).
    pub fn set_credits(&self, credits: Option<u64>) {
        self.api.limits().credits = credits;
    }

    /// (display name, domain) of every company the API knows, in account order.
    pub fn companies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.api.records.iter().map(|r| {
            (
                r["display_name"].as_str().unwrap_or_default(),
                r["website"].as_str().unwrap_or_default(),
            )
        })
    }

    /// The record the API holds for `domain`, as a 200 body would carry it (without `status`).
    pub fn record(&self, domain: &str) -> Option<&Value> {
        self.api.by_domain.get(domain).map(|&i| &self.api.records[i])
    }

    /// Stops serving.
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

impl Api {
    fn limits(&self) -> std::sync::MutexGuard<'_, Limits> {
        self.limits.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stats(&self) -> EnrichmentStats {
        EnrichmentStats {
            requests: self.requests.load(Ordering::Relaxed),
            billed: self.billed.load(Ordering::Relaxed),
            not_found: self.not_found.load(Ordering::Relaxed),
            payment_required: self.payment_required.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            unauthorized: self.unauthorized.load(Ordering::Relaxed),
        }
    }
}

fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// PDL's lower-case industry strings for each of the generator's industries.
fn pdl_industries(industry: &str) -> &'static [&'static str] {
    match industry {
        "Software" => &[
            "computer software",
            "information technology and services",
            "internet",
        ],
        "Financial Services" => &["financial services", "banking", "insurance"],
        "Healthcare" => &["hospital & health care", "medical devices", "pharmaceuticals"],
        "Manufacturing" => &[
            "machinery",
            "industrial automation",
            "electrical/electronic manufacturing",
        ],
        "Retail" => &["retail", "consumer goods", "apparel & fashion"],
        "Professional Services" => &["management consulting", "accounting", "legal services"],
        "Telecommunications" => &["telecommunications", "wireless"],
        "Media" => &["media production", "publishing", "online media", "entertainment"],
        "Education" => &["higher education", "education management", "e-learning"],
        "Government" => &["government administration", "public policy"],
        "Energy" => &["oil & energy", "renewables & environment", "utilities"],
        "Non-profit" => &["non-profit organization management", "philanthropy"],
        "Logistics" => &[
            "logistics and supply chain",
            "transportation/trucking/railroad",
            "package/freight delivery",
        ],
        _ => &[],
    }
}

fn country_name(code: &str) -> Option<&'static str> {
    Some(match code {
        "US" => "united states",
        "CA" => "canada",
        "GB" => "united kingdom",
        "DE" => "germany",
        "FR" => "france",
        "NL" => "netherlands",
        "SE" => "sweden",
        "AU" => "australia",
        "JP" => "japan",
        "SG" => "singapore",
        "IN" => "india",
        "BR" => "brazil",
        "MX" => "mexico",
        _ => return None,
    })
}

fn size_range(employees: u64) -> &'static str {
    match employees {
        0..=10 => "1-10",
        11..=50 => "11-50",
        51..=200 => "51-200",
        201..=500 => "201-500",
        501..=1000 => "501-1000",
        1001..=5000 => "1001-5000",
        5001..=10_000 => "5001-10000",
        _ => "10001+",
    }
}

fn revenue_range(revenue: u64) -> &'static str {
    const M: u64 = 1_000_000;
    match revenue {
        r if r < M => "$0-$1M",
        r if r < 10 * M => "$1M-$10M",
        r if r < 25 * M => "$10M-$25M",
        r if r < 50 * M => "$25M-$50M",
        r if r < 100 * M => "$50M-$100M",
        r if r < 250 * M => "$100M-$250M",
        r if r < 500 * M => "$250M-$500M",
        r if r < 1000 * M => "$500M-$1B",
        r if r < 10_000 * M => "$1B-$10B",
        _ => "$10B+",
    }
}

/// A PDL-shaped company record for generator account `n`.
fn record(seed: u64, n: u64, a: &SyntheticAccount) -> Value {
    let h = |stream: u64| splitmix(seed ^ splitmix(n.wrapping_mul(31) ^ (stream << 48)));
    let industry = a
        .industry
        .map(pdl_industries)
        .filter(|l| !l.is_empty())
        .map(|l| l[(h(1) % l.len() as u64) as usize]);
    let employees = a.employee_count;
    // Older firms are bigger, on average.
    let founded = employees.map(|e| 2022 - (h(2) % (10 + (e as f64).log2() as u64 * 8)) as i64);
    let org_type = a
        .org_type
        .map(|t| if t == "education" { "educational" } else { t });
    let country = a.country.and_then(country_name);
    let mut tags: Vec<&str> = vec!["b2b"];
    match a.industry {
        Some("Software") => tags.extend(["saas", "cloud computing"]),
        Some("Financial Services") => tags.push("fintech"),
        Some("Retail") => tags.push("e-commerce"),
        Some("Healthcare") => tags.push("healthtech"),
        _ => {}
    }
    json!({
        "id": format!("{:016x}", h(3)),
        "name": a.name.to_lowercase(),
        "display_name": a.name,
        "website": a.domain,
        "size": employees.map(size_range),
        "employee_count": employees,
        "founded": founded,
        "inferred_revenue": a.annual_revenue.map(revenue_range),
        "industry": industry,
        "type": org_type,
        "location": country.map(|c| json!({
            "name": c,
            "country": c,
            "continent": a.region.map(|r| match r { "EMEA" => "europe", "APAC" => "asia", "LATAM" => "south america", _ => "north america" }),
        })),
        "tags": tags,
        "linkedin_url": format!("linkedin.com/company/{}", a.domain.split('.').next().unwrap_or_default()),
        "ticker": Value::Null,
        "likelihood": 3 + h(4) % 8,
    })
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    json_value(
        status,
        &json!({"status": status.as_u16(), "error": {"type": kind, "message": message}}),
    )
}

/// RFC 3339 UTC (`2026-11-24T10:00:00Z`) of `t`, as PDL's `x-ratelimit-reset`.
fn utc_timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    let (year, month, day) = crate::clock::civil(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

fn normalise_website(w: &str) -> String {
    let w = w.trim().to_ascii_lowercase();
    let w = w
        .strip_prefix("https://")
        .or_else(|| w.strip_prefix("http://"))
        .unwrap_or(&w);
    let w = w.split(['/', '?', '#']).next().unwrap_or_default();
    w.strip_prefix("www.").unwrap_or(w).to_owned()
}

async fn stats(State(api): State<Arc<Api>>) -> Json<EnrichmentStats> {
    Json(api.stats())
}

async fn enrich(State(api): State<Arc<Api>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    api.requests.fetch_add(1, Ordering::Relaxed);
    // Before anything is decided, so the wait holds no lock and concurrent requests overlap
    // as they would at a real provider.
    if !api.cfg.latency.is_zero() {
        tokio::time::sleep(api.cfg.latency).await;
    }
    let params: HashMap<String, String> = form_pairs(query.as_deref().unwrap_or_default())
        .into_iter()
        .collect();
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| params.get("api_key").cloned());
    if key.as_deref() != Some(api.cfg.api_key.as_str()) {
        api.unauthorized.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "Request contained a missing or invalid key",
        );
    }

    // Rate limit, credits and the answer are decided under one lock so counts stay exact.
    let mut limits = api.limits();
    let now = Instant::now();
    if now.duration_since(limits.window_start) >= api.cfg.window {
        let elapsed = now.duration_since(limits.window_start);
        let windows = elapsed.as_nanos() / api.cfg.window.as_nanos();
        let advance = api.cfg.window * windows as u32;
        limits.window_start += advance;
        limits.window_start_wall += advance;
        limits.used = 0;
    }
    let reset = limits.window_start_wall + api.cfg.window;
    let mut extra: Vec<(&'static str, String)> = Vec::new();
    if let Some(limit) = api.cfg.rate_limit {
        if limits.used >= limit {
            drop(limits);
            api.rate_limited.fetch_add(1, Ordering::Relaxed);
            let wait = reset.duration_since(SystemTime::now()).unwrap_or_default();
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "An error occurred due to requests hitting the API too quick",
            );
            let h = r.headers_mut();
            put(h, "x-ratelimit-limit", format!("{{\"minute\": {limit}}}"));
            put(h, "x-ratelimit-remaining", "{\"minute\": 0}".into());
            put(h, "x-ratelimit-reset", utc_timestamp(reset));
            put(h, "retry-after", wait.as_secs().max(1).to_string());
            return r;
        }
        limits.used += 1;
        extra.push(("x-ratelimit-limit", format!("{{\"minute\": {limit}}}")));
        extra.push((
            "x-ratelimit-remaining",
            format!("{{\"minute\": {}}}", limit - limits.used),
        ));
        extra.push(("x-ratelimit-reset", utc_timestamp(reset)));
    }

    let mut response = if limits.credits == Some(0) {
        api.payment_required.fetch_add(1, Ordering::Relaxed);
        error(
            StatusCode::PAYMENT_REQUIRED,
            "payment_required",
            "You have hit your account maximum (all matches used)",
        )
    } else {
        let website = params.get("website").map(|w| normalise_website(w));
        let name = params.get("name").map(|n| n.trim().to_lowercase());
        if website.is_none()
            && name.is_none()
            && !params.contains_key("profile")
            && !params.contains_key("ticker")
        {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "Request must contain at least one of: website, name, profile, ticker",
            );
        }
        let min_likelihood: u64 = params
            .get("min_likelihood")
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        let found = website
            .and_then(|w| api.by_domain.get(&w))
            .or_else(|| name.and_then(|n| api.by_name.get(&n)))
            .map(|&i| &api.records[i])
            .filter(|r| r["likelihood"].as_u64().unwrap_or(0) >= min_likelihood);
        match found {
            Some(record) => {
                if let Some(c) = limits.credits.as_mut() {
                    *c -= 1;
                }
                api.billed.fetch_add(1, Ordering::Relaxed);
                let mut body = record.clone();
                body["status"] = json!(200);
                let mut r = json_value(StatusCode::OK, &body);
                put(r.headers_mut(), "x-call-credits-spent", "1".into());
                r
            }
            None => {
                api.not_found.fetch_add(1, Ordering::Relaxed);
                error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "No records were found matching your request",
                )
            }
        }
    };
    let h = response.headers_mut();
    if let Some(c) = limits.credits {
        put(h, "x-totallimit-remaining", c.to_string());
    }
    for (name, value) in extra {
        put(h, name, value);
    }
    response
}

fn put(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(emu: &EnrichmentEmulator, query: &str, key: Option<&str>) -> (u16, HeaderMap, Value) {
        let mut r = reqwest::Client::new().get(format!("{}/v5/company/enrich?{query}", emu.base_url()));
        if let Some(k) = key {
            r = r.header("X-Api-Key", k);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.json().await.unwrap())
    }

    #[tokio::test]
    async fn matches_by_website_or_name_bill_and_misses_do_not() {
        let emu = EnrichmentEmulator::start(EnrichmentConfig::new(100, 9))
            .await
            .unwrap();
        let known = emu.api.records[0].clone();
        let domain = known["website"].as_str().unwrap();
        let (s, h, body) = get(
            &emu,
            &format!("website=https://www.{domain}/about"),
            Some("test-key"),
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(h["x-call-credits-spent"], "1");
        assert_eq!(body["status"], 200);
        assert_eq!(body["name"], known["name"]);
        assert!(body.get("data").is_none(), "fields are top-level");
        assert!(body["size"].is_string() || body["size"].is_null());

        let name = known["display_name"].as_str().unwrap().replace(' ', "+");
        let (s, _, _) = get(&emu, &format!("name={name}&api_key=test-key"), None).await;
        assert_eq!(s, 200, "name match with the key as a query parameter");

        let (s, _, body) = get(&emu, "website=nobody.example", Some("test-key")).await;
        assert_eq!((s, body["error"]["type"].as_str()), (404, Some("not_found")));
        let (s, _, _) = get(
            &emu,
            &format!("website={domain}&min_likelihood=11"),
            Some("test-key"),
        )
        .await;
        assert_eq!(s, 404, "below min_likelihood is no match");
        let (s, _, body) = get(&emu, "min_likelihood=2", Some("test-key")).await;
        assert_eq!(
            (s, body["error"]["type"].as_str()),
            (400, Some("invalid_request_error"))
        );
        let (s, _, body) = get(&emu, "website=x.com", Some("wrong")).await;
        assert_eq!(
            (s, body["error"]["type"].as_str()),
            (401, Some("authentication_error"))
        );

        let st = emu.stats();
        assert_eq!((st.billed, st.not_found, st.unauthorized), (2, 2, 1));
        assert_eq!(emu.stats().requests, 6);
        assert!(emu.api.records.len() < 100, "some domains are unknown");
        emu.shutdown().await;
    }

    #[tokio::test]
    async fn credits_run_out_with_402_and_the_window_limits_with_429() {
        let mut cfg = EnrichmentConfig::new(30, 2);
        cfg.credits = Some(1);
        cfg.rate_limit = Some(3);
        let emu = EnrichmentEmulator::start(cfg).await.unwrap();
        let domain = emu.api.records[0]["website"].as_str().unwrap().to_owned();
        let q = format!("website={domain}");
        let (s, h, _) = get(&emu, &q, Some("test-key")).await;
        assert_eq!((s, h["x-totallimit-remaining"].to_str().unwrap()), (200, "0"));
        assert_eq!(h["x-ratelimit-remaining"], "{\"minute\": 2}");
        let (s, _, body) = get(&emu, &q, Some("test-key")).await;
        assert_eq!(
            (s, body["error"]["type"].as_str()),
            (402, Some("payment_required"))
        );
        let (s, _, _) = get(&emu, &q, Some("test-key")).await;
        assert_eq!(s, 402);
        let (s, h, body) = get(&emu, &q, Some("test-key")).await;
        assert_eq!(
            (s, body["error"]["type"].as_str()),
            (429, Some("rate_limit_error"))
        );
        let reset = h["x-ratelimit-reset"].to_str().unwrap();
        assert!(reset.len() == 20 && reset.ends_with('Z'), "{reset}");
        assert!(h.contains_key("retry-after"));
        assert_eq!(emu.stats().billed, 1);
        emu.set_credits(Some(5));
        assert_eq!(emu.credits_remaining(), Some(5));
        emu.shutdown().await;
    }

    // How long the wait lasts is the benchmark's to measure; here: it is kept, and answers and
    // counts are the same with it as without it.
    #[tokio::test]
    async fn a_latency_is_kept_and_leaves_answers_unchanged() {
        let mut cfg = EnrichmentConfig::new(20, 5);
        cfg.latency = Duration::from_millis(1);
        let emu = EnrichmentEmulator::start(cfg).await.unwrap();
        assert_eq!(emu.latency(), Duration::from_millis(1));
        assert_eq!(
            EnrichmentConfig::new(20, 5).latency,
            Duration::ZERO,
            "no latency unless asked"
        );
        let known = emu.api.records[0].clone();
        let domain = known["website"].as_str().unwrap();
        let (s, _, body) = get(&emu, &format!("website={domain}"), Some("test-key")).await;
        assert_eq!((s, &body["name"]), (200, &known["name"]));
        let (s, _, _) = get(&emu, "website=nobody.example", Some("test-key")).await;
        assert_eq!(s, 404);
        let (s, _, _) = get(&emu, "website=x.com", Some("wrong")).await;
        assert_eq!(s, 401);
        let st = emu.stats();
        assert_eq!(
            (st.requests, st.billed, st.not_found, st.unauthorized),
            (3, 1, 1, 1)
        );
        emu.shutdown().await;
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_530_000);
        assert_eq!(utc_timestamp(t), "2026-11-24T14:20:00Z");
    }
}
