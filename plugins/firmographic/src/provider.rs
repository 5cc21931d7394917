//! The plugin: config, the API calls (one host HTTP batch per enrich, 429 retries), the
//! dataset fallback, and what each API answer means for an account.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;
use tierd_plugin_api::prelude::*;

use crate::company::Company;
use crate::dataset::Dataset;

/// `[plugins.firmographic.config]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct Config {
    /// The enrichment API's base URL.
    pub(crate) base_url: String,
    /// The API key (resolved by the host from `api_key_env`); without it only the dataset is used.
    pub(crate) api_key: Option<Secret>,
    /// Only matches with at least this likelihood (1..=10) count.
    pub(crate) min_likelihood: Option<u8>,
    /// The local CSV dataset (second source).
    pub(crate) dataset_path: Option<String>,
    /// Per-request timeout.
    pub(crate) timeout_ms: u64,
    /// How many times accounts answered 429 are retried after waiting for the window reset.
    pub(crate) rate_limit_retries: u32,
    /// The longest single wait for a rate-limit reset.
    pub(crate) max_wait_ms: u64,
    /// The host resolves `api_key` from it; accepted so the key's source may stay in the table.
    pub(crate) api_key_env: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            base_url: "https://api.peopledatalabs.com".into(),
            api_key: None,
            min_likelihood: None,
            dataset_path: None,
            timeout_ms: 10_000,
            rate_limit_retries: 3,
            max_wait_ms: 65_000,
            api_key_env: None,
        }
    }
}

/// The firmographic provider.
pub struct Firmographic {
    config: Config,
    dataset: Option<Dataset>,
    host: Host,
    /// Set by a 402: the `as_of` date of the run that ran out of credits. The API is not called
    /// again for that date; a later run tries once more (credits renew).
    out_of_credits: Option<String>,
}

/// What the API said about one account.
enum ApiAnswer {
    Match(Company),
    NoMatch,
    Failed(String),
}

impl Firmographic {
    pub(crate) fn new(config: Value, host: Host) -> Result<Firmographic, PluginError> {
        let config: Config = serde_json::from_value(config)
            .map_err(|e| PluginError::new(format!("firmographic config: {e}")))?;
        if !(config.base_url.starts_with("https://") || config.base_url.starts_with("http://")) {
            return Err(PluginError::new(format!(
                "firmographic config: base_url must start with https:// or http://, got {:?}",
                config.base_url
            )));
        }
        if config.min_likelihood.is_some_and(|m| !(1..=10).contains(&m)) {
            return Err(PluginError::new(
                "firmographic config: min_likelihood must be within 1..=10",
            ));
        }
        let dataset = match &config.dataset_path {
            None => None,
            Some(path) => {
                let loaded =
                    Dataset::load(path).map_err(|e| PluginError::new(format!("firmographic: {e}")))?;
                if !loaded.problems.is_empty() {
                    host.log(
                        Level::Warn,
                        format!(
                            "{} rows of the dataset were skipped: {}",
                            loaded.problems.len(),
                            loaded.problems.join("; ")
                        ),
                    );
                }
                host.log(
                    Level::Info,
                    format!("dataset {path}: {} companies", loaded.dataset.len()),
                );
                Some(loaded.dataset)
            }
        };
        if config.api_key.is_none() && dataset.is_none() {
            host.log(
                Level::Warn,
                "neither api_key (or api_key_env) nor dataset_path is set: every account will be a no-match",
            );
        }
        Ok(Firmographic {
            config,
            dataset,
            host,
            out_of_credits: None,
        })
    }

    pub(crate) fn description(&self) -> Description {
        let api_host = self
            .config
            .base_url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ':']).next())
            .unwrap_or_default()
            .to_owned();
        let fact = |name: &str, t| FactSpec::new(format!("firmographic.{name}"), t);
        let field = |name: &str, secret, description: &str| ConfigField {
            name: name.into(),
            secret,
            required: false,
            description: description.into(),
        };
        Description {
            name: "firmographic".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            facts: vec![
                fact("industry", FactType::String),
                fact("employee_count", FactType::Number),
                fact("size_range", FactType::String),
                fact("annual_revenue", FactType::Number),
                fact("country", FactType::String),
                fact("region", FactType::String),
                fact("org_type", FactType::String),
                fact("founded_year", FactType::Number),
                fact("tags", FactType::StringList),
            ],
            signals: vec![],
            hosts: vec![api_host],
            batch_size: Some(100),
            // PDL's default for free keys; paid keys allow more (raise it in the host config).
            rate_limit_per_minute: Some(100),
            config: vec![
                field(
                    "base_url",
                    false,
                    "enrichment API base URL (https://api.peopledatalabs.com)",
                ),
                field(
                    "api_key",
                    true,
                    "API key, usually from the environment through api_key_env",
                ),
                field(
                    "min_likelihood",
                    false,
                    "minimum match likelihood 1..10 (the API's default when unset)",
                ),
                field(
                    "dataset_path",
                    false,
                    "CSV of companies used when the API has no match or no key",
                ),
                field("timeout_ms", false, "per-request timeout (10000)"),
                field(
                    "rate_limit_retries",
                    false,
                    "retries after a 429, each after the window reset (3)",
                ),
                field(
                    "max_wait_ms",
                    false,
                    "longest wait for a rate-limit reset (65000)",
                ),
            ],
        }
    }

    pub(crate) fn run(&mut self, request: EnrichRequest) -> Result<EnrichResponse, PluginError> {
        if self.out_of_credits.as_ref().is_some_and(|d| *d != request.as_of) {
            self.out_of_credits = None;
        }
        let api_answers = self.ask_api(&request)?;
        let results = request
            .accounts
            .iter()
            .zip(api_answers)
            .map(|(account, answer)| match answer {
                Some(ApiAnswer::Match(company)) => {
                    let mut r = AccountResult::new(&account.key);
                    r.facts = company.facts();
                    r
                }
                Some(ApiAnswer::Failed(why)) => AccountResult::failed(&account.key, why),
                Some(ApiAnswer::NoMatch) | None => {
                    match self
                        .dataset
                        .as_ref()
                        .and_then(|d| d.find(account.domain.as_deref(), &account.name))
                    {
                        Some(company) => {
                            let mut r = AccountResult::new(&account.key);
                            r.facts = company.facts();
                            r
                        }
                        None => AccountResult::no_match(&account.key),
                    }
                }
            })
            .collect();
        Ok(EnrichResponse { results })
    }

    /// The API's answer per account (`None`: not asked: no key, nothing to match on).
    fn ask_api(&mut self, request: &EnrichRequest) -> Result<Vec<Option<ApiAnswer>>, PluginError> {
        let mut answers: Vec<Option<ApiAnswer>> = request.accounts.iter().map(|_| None).collect();
        let Some(key) = self.config.api_key.clone() else {
            return Ok(answers);
        };
        let mut pending: Vec<(usize, HttpRequest)> = Vec::new();
        for (i, account) in request.accounts.iter().enumerate() {
            let param = match (&account.domain, account.name.trim()) {
                (Some(d), _) if !d.trim().is_empty() => format!("website={}", encode(d.trim())),
                (_, name) if !name.is_empty() => format!("name={}", encode(name)),
                _ => continue,
            };
            if self.out_of_credits.is_some() {
                answers[i] = Some(ApiAnswer::Failed(out_of_credits_message(&request.as_of)));
                continue;
            }
            let mut url = format!(
                "{}/v5/company/enrich?{param}",
                self.config.base_url.trim_end_matches('/')
            );
            if let Some(m) = self.config.min_likelihood {
                url.push_str(&format!("&min_likelihood={m}"));
            }
            let mut r = HttpRequest::get(url).header("X-Api-Key", key.expose());
            r.timeout_ms = Some(self.config.timeout_ms);
            pending.push((i, r));
        }

        let mut retries_left = self.config.rate_limit_retries;
        while !pending.is_empty() {
            let requests: Vec<HttpRequest> = pending.iter().map(|(_, r)| r.clone()).collect();
            let responses = self.host.http(requests)?;
            let mut limited = Vec::new();
            let mut wait = Duration::ZERO;
            for ((i, req), response) in pending.into_iter().zip(responses) {
                match response.status {
                    200 => match serde_json::from_str::<Value>(&response.body) {
                        Ok(body) => answers[i] = Some(ApiAnswer::Match(Company::from_pdl(&body))),
                        Err(e) => {
                            answers[i] = Some(ApiAnswer::Failed(format!(
                                "enrichment API answered 200 with a body that is not JSON: {e}"
                            )))
                        }
                    },
                    404 => answers[i] = Some(ApiAnswer::NoMatch),
                    402 => {
                        if self.out_of_credits.is_none() {
                            self.host.log(
                                Level::Warn,
                                format!(
                                    "the enrichment API is out of credits (402 payment_required, x-totallimit-remaining: {}); \
                                     no more calls for runs as of {}, remaining accounts keep their previous facts",
                                    response.header("x-totallimit-remaining").unwrap_or("?"),
                                    request.as_of
                                ),
                            );
                        }
                        self.out_of_credits = Some(request.as_of.clone());
                        answers[i] = Some(ApiAnswer::Failed(out_of_credits_message(&request.as_of)));
                    }
                    429 => {
                        wait = wait.max(reset_wait(
                            &response,
                            Duration::from_millis(self.config.max_wait_ms),
                            SystemTime::now(),
                        ));
                        limited.push((i, req));
                    }
                    401 | 403 => {
                        answers[i] = Some(ApiAnswer::Failed(format!(
                            "the enrichment API refused the API key ({} {}); check api_key / api_key_env",
                            response.status,
                            error_type(&response.body).unwrap_or("authentication_error")
                        )))
                    }
                    0 => {
                        let why = response.error.as_deref().unwrap_or("no response");
                        answers[i] = Some(ApiAnswer::Failed(format!("enrichment API request failed: {why}")))
                    }
                    status => {
                        let detail = error_message(&response.body).unwrap_or_default();
                        answers[i] = Some(ApiAnswer::Failed(
                            format!("enrichment API answered HTTP {status} {detail}")
                                .trim_end()
                                .to_owned(),
                        ))
                    }
                }
            }
            // After a 402 the queued retries are out of credits too.
            if self.out_of_credits.is_some() {
                for (i, _) in limited.drain(..) {
                    answers[i] = Some(ApiAnswer::Failed(out_of_credits_message(&request.as_of)));
                }
            }
            if limited.is_empty() {
                break;
            }
            if retries_left == 0 {
                for (i, _) in limited {
                    answers[i] = Some(ApiAnswer::Failed(format!(
                        "enrichment API rate limit (429) still hit after {} retries",
                        self.config.rate_limit_retries
                    )));
                }
                break;
            }
            retries_left -= 1;
            self.host.log(
                Level::Info,
                format!(
                    "rate limited on {} requests; waiting {} ms for the window to reset",
                    limited.len(),
                    wait.as_millis()
                ),
            );
            std::thread::sleep(wait);
            pending = limited;
        }
        Ok(answers)
    }
}

fn out_of_credits_message(as_of: &str) -> String {
    format!("out of credits at the enrichment API (402 payment_required); not called again for runs as of {as_of}")
}

fn error_type(body: &str) -> Option<&str> {
    let start = body.find("\"type\"")?;
    let rest = body[start + 6..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    rest.split('"').next()
}

fn error_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let e = v.get("error")?;
    Some(format!(
        "{}: {}",
        e.get("type")?.as_str()?,
        e.get("message")?.as_str()?
    ))
}

/// How long to wait after a 429: until `x-ratelimit-reset` (a UTC timestamp, or epoch seconds
/// in PDL's older headers), else `retry-after` seconds, else a whole 60-second window; at most
/// `cap`. `now` is an argument so the arithmetic is tested without the clock.
fn reset_wait(response: &HttpResponse, cap: Duration, now: SystemTime) -> Duration {
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let from_reset = response.header("x-ratelimit-reset").and_then(|v| {
        let v = v.trim();
        let at = match v.parse::<u64>() {
            Ok(epoch) if epoch > 1_000_000_000 => Duration::from_secs(epoch),
            Ok(seconds) => return Some(Duration::from_secs(seconds)),
            Err(_) => Duration::from_secs(parse_utc(v)?),
        };
        Some(at.saturating_sub(now))
    });
    let from_retry = || {
        response
            .header("retry-after")
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_secs)
    };
    from_reset
        .or_else(from_retry)
        .unwrap_or(Duration::from_secs(60))
        .min(cap)
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS` followed by `Z` or `+00:00`.
fn parse_utc(s: &str) -> Option<u64> {
    let (date, time) = s.split_once(['T', ' '])?;
    let time = time
        .strip_suffix('Z')
        .or_else(|| time.strip_suffix("+00:00"))
        .unwrap_or(time);
    let date: Date = date.parse().ok()?;
    let mut t = time
        .split(':')
        .map(|p| p.split('.').next().and_then(|x| x.parse::<i64>().ok()));
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next().flatten().unwrap_or(0));
    u64::try_from(i64::from(date.days()) * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl Provider for Firmographic {
    fn init(config: Value, host: Host) -> Result<Self, PluginError> {
        Firmographic::new(config, host)
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
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::*;

    fn account(domain: Option<&str>, name: &str) -> AccountInput {
        AccountInput {
            key: domain.unwrap_or(name).into(),
            id: format!("crm:{name}"),
            name: name.into(),
            domain: domain.map(str::to_owned),
            facts: Default::default(),
            related: Default::default(),
            state: Value::Null,
        }
    }

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.into(),
            error: None,
            tls_issuer: None,
        }
    }

    /// A host answering each URL with `answer(url, call number)` and recording the URLs.
    fn host(
        answer: impl Fn(&str, usize) -> HttpResponse + Send + Sync + 'static,
    ) -> (Host, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::new(Mutex::new(0));
        let log = seen.clone();
        let host = Host::with_http(move |requests| {
            let mut n = calls.lock().unwrap();
            *n += 1;
            requests
                .iter()
                .map(|r| {
                    assert_eq!(r.headers.get("X-Api-Key").map(String::as_str), Some("k3y"));
                    log.lock().unwrap().push(r.url.clone());
                    answer(&r.url, *n)
                })
                .collect()
        });
        (host, seen)
    }

    fn run(p: &mut Firmographic, as_of: &str, accounts: Vec<AccountInput>) -> Vec<AccountResult> {
        p.run(EnrichRequest {
            as_of: as_of.into(),
            accounts,
        })
        .unwrap()
        .results
    }

    const ACME: &str = r#"{"status": 200, "name": "acme", "industry": "banking", "employee_count": 500,
        "size": "201-500", "inferred_revenue": "$50M-$100M", "location": {"country": "germany"},
        "type": "public", "founded": 1990, "tags": ["b2b"], "likelihood": 8}"#;

    #[test]
    fn matches_no_matches_and_the_dataset_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("companies.csv");
        std::fs::write(
            &csv,
            "domain,name,industry,employee_count,country\nlocal.com,Local,Retail,40,FR\n",
        )
        .unwrap();
        let (h, seen) = host(|url, _| {
            if url.contains("website=acme.com") {
                response(200, &[], ACME)
            } else {
                response(
                    404,
                    &[],
                    r#"{"status":404,"error":{"type":"not_found","message":"No records"}}"#,
                )
            }
        });
        let config = json!({"api_key": "k3y", "base_url": "http://api.test", "min_likelihood": 4,
                            "dataset_path": csv.to_str().unwrap()});
        let mut p = Firmographic::new(config, h).unwrap();
        let results = run(
            &mut p,
            "2026-11-24",
            vec![
                account(Some("acme.com"), "Acme"),
                account(Some("local.com"), "Local"),
                account(None, "Nobody & Co"),
            ],
        );
        assert_eq!(results[0].facts["firmographic.industry"], "Financial Services");
        assert_eq!(results[0].facts["firmographic.region"], "EMEA");
        assert_eq!(results[0].facts["firmographic.annual_revenue"], 75_000_000.0);
        assert_eq!(
            results[1].facts["firmographic.industry"], "Retail",
            "404 falls back to the dataset"
        );
        assert_eq!(results[1].facts["firmographic.country"], "FR");
        assert!(results[2].no_match && results[2].error.is_none());
        let urls = seen.lock().unwrap();
        assert_eq!(
            urls[0],
            "http://api.test/v5/company/enrich?website=acme.com&min_likelihood=4"
        );
        assert_eq!(
            urls[2],
            "http://api.test/v5/company/enrich?name=Nobody%20%26%20Co&min_likelihood=4"
        );
    }

    #[test]
    fn out_of_credits_stops_calling_for_the_rest_of_the_run_day() {
        let (h, seen) = host(|url, _| {
            if url.contains("first.com") {
                response(200, &[("x-totallimit-remaining", "0")], ACME)
            } else {
                response(
                    402,
                    &[("x-totallimit-remaining", "0")],
                    r#"{"status":402,"error":{"type":"payment_required","message":"all matches used"}}"#,
                )
            }
        });
        let mut p = Firmographic::new(json!({"api_key": "k3y"}), h).unwrap();
        let r = run(
            &mut p,
            "2026-11-24",
            vec![
                account(Some("first.com"), "First"),
                account(Some("second.com"), "Second"),
            ],
        );
        assert!(r[0].error.is_none());
        assert!(r[1].error.as_deref().unwrap().starts_with("out of credits"));
        let r = run(&mut p, "2026-11-24", vec![account(Some("third.com"), "Third")]);
        assert!(r[0].error.as_deref().unwrap().starts_with("out of credits"));
        assert_eq!(
            seen.lock().unwrap().len(),
            2,
            "no call after the 402 on the same day"
        );
        run(&mut p, "2026-11-25", vec![account(Some("third.com"), "Third")]);
        assert_eq!(seen.lock().unwrap().len(), 3, "a later run tries again");
    }

    #[test]
    fn rate_limited_requests_are_retried_after_the_reset_and_then_given_up() {
        let limited = r#"{"status":429,"error":{"type":"rate_limit_error","message":"too quick"}}"#;
        // The reset has already passed, so the retry needs no wait.
        let (h, seen) = host(move |url, call| {
            if (url.contains("slow.com") && call == 1) || url.contains("never.com") {
                response(429, &[("x-ratelimit-reset", "2020-01-01T00:00:00Z")], limited)
            } else {
                response(200, &[], ACME)
            }
        });
        let mut p = Firmographic::new(json!({"api_key": "k3y", "rate_limit_retries": 2}), h).unwrap();
        let r = run(
            &mut p,
            "2026-11-24",
            vec![
                account(Some("slow.com"), "Slow"),
                account(Some("never.com"), "Never"),
            ],
        );
        assert!(r[0].error.is_none() && r[0].facts.contains_key("firmographic.industry"));
        assert_eq!(
            r[1].error.as_deref(),
            Some("enrichment API rate limit (429) still hit after 2 retries")
        );
        assert_eq!(seen.lock().unwrap().len(), 5, "2 + (2 retried) + (1 retried)");
    }

    #[test]
    fn a_bad_key_fails_clearly_without_showing_the_key() {
        let (h, _) = host(|_, _| {
            response(
                401,
                &[],
                r#"{"status":401,"error":{"type":"authentication_error","message":"bad key"}}"#,
            )
        });
        let mut p = Firmographic::new(json!({"api_key": "k3y"}), h).unwrap();
        let r = run(&mut p, "2026-11-24", vec![account(Some("a.com"), "A")]);
        let e = r[0].error.as_deref().unwrap();
        assert_eq!(
            e,
            "the enrichment API refused the API key (401 authentication_error); check api_key / api_key_env"
        );
        assert!(!format!("{:?}", p.config).contains("k3y"));
    }

    #[test]
    fn reset_headers_in_every_published_shape_give_the_wait() {
        let cap = Duration::from_secs(65);
        // 2026-11-24T14:20:00Z
        let now = UNIX_EPOCH + Duration::from_secs(1_795_530_000);
        let r = response(429, &[("x-ratelimit-reset", "1795530030")], "");
        assert_eq!(reset_wait(&r, cap, now), Duration::from_secs(30));
        let r = response(429, &[("x-ratelimit-reset", "2026-11-24T14:20:45Z")], "");
        assert_eq!(reset_wait(&r, cap, now), Duration::from_secs(45));
        let r = response(429, &[("retry-after", "7")], "");
        assert_eq!(reset_wait(&r, cap, now), Duration::from_secs(7));
        assert_eq!(
            reset_wait(&response(429, &[], ""), cap, now),
            Duration::from_secs(60)
        );
        let r = response(429, &[("x-ratelimit-reset", "2999-01-01T00:00:00Z")], "");
        assert_eq!(reset_wait(&r, cap, now), cap);
        assert_eq!(parse_utc("2026-11-24T14:20:00Z"), Some(1_795_530_000));
        assert_eq!(parse_utc("1970-01-01T00:00:00+00:00"), Some(0));
    }

    #[test]
    fn without_a_key_only_the_dataset_answers_and_config_errors_are_clear() {
        let mut p = Firmographic::new(json!({}), Host::detached()).unwrap();
        let r = run(&mut p, "2026-11-24", vec![account(Some("a.com"), "A")]);
        assert!(r[0].no_match);
        let e = |c: Value| {
            Firmographic::new(c, Host::detached())
                .err()
                .unwrap()
                .message()
                .to_owned()
        };
        assert!(e(json!({"base_url": "api.test"})).contains("base_url must start with"));
        assert!(e(json!({"min_likelihood": 11})).contains("min_likelihood"));
        assert!(e(json!({"dataset_path": "/none.csv"})).contains("cannot open dataset /none.csv"));
    }
}
