//! The one HTTP layer every CRM connector goes through.
//!
//! Owns: the `reqwest` client setup (rustls, per-request timeout), pacing with tierd's one
//! [`RateLimiter`] (`tierd-rate-limit`) sized from a vendor's documented limit, the retry policy (429, 5xx,
//! timeouts and dropped connections, with jittered exponential back-off and a cap),
//! reading vendors' rate-limit headers, and the counters behind `/metrics`.
//!
//! It knows nothing about any CRM's payloads: a connector builds the request, this
//! module sends it until it gets an answer worth interpreting, and hands back the
//! status, headers and body. Tokens travel only inside [`Secret`], which never prints.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
/// Tokens travel in tierd-core's one `Secret` type (re-exported here for connector configs).
pub use tierd_core::Secret;
/// Requests are paced by tierd's one rate limiter (re-exported here for connectors).
pub use tierd_rate_limit::RateLimiter;
use tierd_rate_limit::WaitClock;

/// How hard to try before giving up on a request.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// First back-off, doubled per attempt.
    #[serde(with = "millis")]
    pub base_delay: Duration,
    /// Longest single back-off (a `Retry-After` longer than this is still honoured).
    #[serde(with = "millis")]
    pub max_delay: Duration,
    /// Time limit of one attempt, connection to last body byte.
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// Seed of the back-off jitter, so runs and tests are reproducible.
    pub jitter_seed: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            jitter_seed: 0x74_6965_7264,
        }
    }
}

/// Durations in config files are whole milliseconds (`timeout = 30000`).
mod millis {
    use std::time::Duration;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        <u64 as serde::Deserialize>::deserialize(d).map(Duration::from_millis)
    }
}

/// Which vendor's rate-limit conventions to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// `X-HubSpot-RateLimit-*` headers; a 429 for the `DAILY` policy is not retried.
    HubSpot,
    /// `Sforce-Limit-Info: api-usage=used/max` on every response.
    Salesforce,
    /// Only `Retry-After`.
    Other,
}

/// Counters of one client, cheap to update from many tasks.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    server_errors: AtomicU64,
    transport_errors: AtomicU64,
    waited_micros: AtomicU64,
    in_flight_micros: AtomicU64,
    waiting: WaitClock,
    api_used: AtomicU64,
    api_max: AtomicU64,
}

/// A snapshot of a client's counters, for `/metrics` and run reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HttpStats {
    /// Attempts sent, retries included.
    pub requests: u64,
    /// Attempts that were retries.
    pub retries: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// 5xx answers.
    pub server_errors: u64,
    /// Timeouts, refused and dropped connections.
    pub transport_errors: u64,
    /// Time spent waiting for the rate limiter and in back-off, as planned (the waits the
    /// limiter, `Retry-After` and back-off asked for).
    pub waited: Duration,
    /// Time requests were outstanding: from sending each attempt to reading its whole answer
    /// (or its failure), summed over attempts.
    pub in_flight: Duration,
    /// Wall time during which at least one request was with the vendor: waiting for the rate
    /// limiter, for an answer, or in back-off. Unlike `waited` and `in_flight`, requests sent
    /// side by side count once, so a stage's share of it never exceeds the stage's own time.
    pub waiting: Duration,
    /// API calls used today as the vendor last reported them (Salesforce), 0 when unknown.
    pub api_used: u64,
    /// The vendor's daily API limit as last reported, 0 when unknown.
    pub api_max: u64,
}

impl HttpStats {
    /// Time spent on the vendor: waiting for its answers and for its limits (rate limiter,
    /// `Retry-After`, back-off), requests side by side counted once.
    pub fn vendor_time(&self) -> Duration {
        self.waiting
    }
}

/// Why a request failed for good.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No usable answer after every attempt.
    #[error("{what}: gave up after {attempts} attempts: {last}")]
    GaveUp {
        /// What was being done (`list companies`).
        what: String,
        /// Attempts made.
        attempts: u32,
        /// The last problem (status and the start of the body, or the transport error).
        last: String,
        /// The last status, when there was an answer.
        status: Option<u16>,
    },
    /// The request could not be built (a bad base URL in the config).
    #[error("{what}: cannot build the request: {reason} (check the connector's base_url)")]
    Build {
        /// What was being done.
        what: String,
        /// Why.
        reason: String,
    },
    /// The answer was not the JSON expected.
    #[error("{what}: unexpected answer (HTTP {status}): {reason}")]
    Decode {
        /// What was being done.
        what: String,
        /// The HTTP status.
        status: u16,
        /// What did not parse.
        reason: String,
    },
}

/// A complete answer: status, headers and the whole body.
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON of type `T`; `what` names the call in the error.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Decode {
            what: what.to_string(),
            status: self.status.as_u16(),
            reason: format!("{e}; body starts: {}", self.snippet()),
        })
    }

    /// As [`Reply::json`], for answers that hold personal data (contacts): a failure names the
    /// line and column where decoding stopped, never the body or the value found there (serde's
    /// own message quotes it).
    pub fn json_personal<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Decode {
            what: what.to_string(),
            status: self.status.as_u16(),
            reason: format!(
                "{:?} error at line {} column {} (the body holds personal data and is not shown)",
                e.classify(),
                e.line(),
                e.column()
            ),
        })
    }

    /// The start of the body as text, for error messages.
    pub fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let mut s: String = text.chars().take(300).collect();
        if text.chars().count() > 300 {
            s.push('…');
        }
        s
    }
}

/// The HTTP client of one connector: one `reqwest` client, one retry policy, one set of counters.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    policy: RetryPolicy,
    vendor: Vendor,
    counters: Arc<Counters>,
    jitter: Arc<AtomicU64>,
}

impl HttpClient {
    /// A client for `vendor` with `policy`.
    pub fn new(vendor: Vendor, policy: RetryPolicy) -> Result<HttpClient, HttpError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("tierd/", env!("CARGO_PKG_VERSION")))
            .timeout(policy.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| HttpError::Build {
                what: "HTTP client".into(),
                reason: e.to_string(),
            })?;
        Ok(HttpClient {
            client,
            jitter: Arc::new(AtomicU64::new(policy.jitter_seed)),
            policy,
            vendor,
            counters: Arc::default(),
        })
    }

    /// The counters as they are now.
    pub fn stats(&self) -> HttpStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        HttpStats {
            requests: get(&c.requests),
            retries: get(&c.retries),
            rate_limited: get(&c.rate_limited),
            server_errors: get(&c.server_errors),
            transport_errors: get(&c.transport_errors),
            waited: Duration::from_micros(get(&c.waited_micros)),
            in_flight: Duration::from_micros(get(&c.in_flight_micros)),
            waiting: c.waiting.total(),
            api_used: get(&c.api_used),
            api_max: get(&c.api_max),
        }
    }

    /// Sends the request `build` makes (called once per attempt), pacing it with `limiter`
    /// and retrying 429s, 5xx, timeouts and dropped connections. Returns the first answer
    /// that is neither (2xx, 3xx, 4xx; and a 429 that retrying cannot cure, such as
    /// HubSpot's daily limit), or [`HttpError::GaveUp`].
    ///
    /// Every request tierd sends is safe to repeat (reads, and updates that set values), so
    /// a request whose connection dropped after it was sent is sent again.
    pub async fn send(
        &self,
        what: &str,
        limiter: &RateLimiter,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Reply, HttpError> {
        let c = &self.counters;
        let _waiting = c.waiting.enter();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let waited = limiter.acquire().await;
            self.add_wait(waited);
            c.requests.fetch_add(1, Ordering::Relaxed);
            if attempt > 1 {
                c.retries.fetch_add(1, Ordering::Relaxed);
            }
            let request = build(&self.client).timeout(self.policy.timeout);
            let sent = std::time::Instant::now();
            let outcome = match request.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    resp.bytes().await.map(|body| Reply {
                        status,
                        headers,
                        body: body.to_vec(),
                    })
                }
                Err(e) => Err(e),
            };
            c.in_flight_micros
                .fetch_add(sent.elapsed().as_micros() as u64, Ordering::Relaxed);
            let last_attempt = attempt >= self.policy.max_attempts.max(1);
            let (delay, problem, status) = match outcome {
                Ok(reply) => {
                    self.read_usage(&reply.headers);
                    let status = reply.status;
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        c.rate_limited.fetch_add(1, Ordering::Relaxed);
                        match self.rate_limit_delay(&reply, attempt, limiter) {
                            Some(delay) => {
                                limiter.pause_for(delay);
                                (delay, format!("HTTP 429: {}", reply.snippet()), Some(429))
                            }
                            // Retrying cannot help within this run: let the connector decide.
                            None => return Ok(reply),
                        }
                    } else if status.is_server_error() {
                        c.server_errors.fetch_add(1, Ordering::Relaxed);
                        let delay = self.backoff(attempt);
                        (
                            delay,
                            format!("HTTP {}: {}", status.as_u16(), reply.snippet()),
                            Some(status.as_u16()),
                        )
                    } else {
                        return Ok(reply);
                    }
                }
                Err(e) if e.is_builder() => {
                    return Err(HttpError::Build {
                        what: what.to_string(),
                        reason: e.to_string(),
                    })
                }
                Err(e) => {
                    c.transport_errors.fetch_add(1, Ordering::Relaxed);
                    let kind = if e.is_timeout() {
                        "timed out"
                    } else if e.is_connect() {
                        "could not connect"
                    } else {
                        "connection failed"
                    };
                    (self.backoff(attempt), format!("{kind}: {e}"), None)
                }
            };
            if last_attempt {
                return Err(HttpError::GaveUp {
                    what: what.to_string(),
                    attempts: attempt,
                    last: problem,
                    status,
                });
            }
            tracing::debug!(what, attempt, delay_ms = delay.as_millis() as u64, %problem, "retrying");
            tokio::time::sleep(delay).await;
            self.add_wait(delay);
        }
    }

    fn add_wait(&self, d: Duration) {
        if !d.is_zero() {
            self.counters
                .waited_micros
                .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        }
    }

    /// How long to wait after a 429, or `None` when waiting would not help in this run.
    /// `Retry-After` first; then the vendor's headers; then jittered exponential back-off.
    fn rate_limit_delay(&self, reply: &Reply, attempt: u32, limiter: &RateLimiter) -> Option<Duration> {
        if let Some(delay) = retry_after(&reply.headers, std::time::SystemTime::now()) {
            return Some(delay);
        }
        if self.vendor == Vendor::HubSpot {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Body {
                policy_name: Option<String>,
            }
            let policy = serde_json::from_slice::<Body>(&reply.body)
                .ok()
                .and_then(|b| b.policy_name);
            if policy.as_deref() == Some("DAILY") {
                return None;
            }
            let interval = header_u64(&reply.headers, "x-hubspot-ratelimit-interval-milliseconds");
            let max = header_u64(&reply.headers, "x-hubspot-ratelimit-max");
            let remaining = header_u64(&reply.headers, "x-hubspot-ratelimit-remaining");
            if let (Some(interval), Some(max)) = (interval, max) {
                let window = Duration::from_millis(interval.max(1));
                limiter.lower_limit(max.min(u64::from(u32::MAX)) as u32, window);
                // The window is rolling: a slot frees when the oldest request in it ages out,
                // which is at most one interval away and on average one slot's share of it.
                let slot = window / (max.max(1) as u32);
                let delay = match remaining {
                    Some(0) | None => self.backoff(attempt).clamp(slot, window),
                    Some(_) => slot,
                };
                return Some(delay);
            }
        }
        Some(self.backoff(attempt))
    }

    /// Jittered exponential back-off: a random point in the upper half of `base·2^(attempt-1)`,
    /// capped at `max_delay`.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .policy
            .base_delay
            .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(20));
        let cap = exp.min(self.policy.max_delay);
        let unit = self.next_jitter();
        cap.mul_f64(0.5 + 0.5 * unit)
    }

    /// A number in [0, 1) from a splitmix64 sequence shared by the client's tasks.
    fn next_jitter(&self) -> f64 {
        let mut z = self
            .jitter
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Remembers the daily API usage the vendor reports (`Sforce-Limit-Info: api-usage=12/15000`).
    fn read_usage(&self, headers: &HeaderMap) {
        if self.vendor != Vendor::Salesforce {
            return;
        }
        let Some(info) = headers.get("sforce-limit-info").and_then(|v| v.to_str().ok()) else {
            return;
        };
        if let Some((used, max)) = parse_api_usage(info) {
            self.counters.api_used.store(used, Ordering::Relaxed);
            self.counters.api_max.store(max, Ordering::Relaxed);
        }
    }
}

/// `api-usage=used/max` out of a `Sforce-Limit-Info` value (other entries may follow, comma-separated).
pub(crate) fn parse_api_usage(info: &str) -> Option<(u64, u64)> {
    info.split(',').find_map(|part| {
        let (key, value) = part.trim().split_once('=')?;
        if key.trim() != "api-usage" {
            return None;
        }
        let (used, max) = value.trim().split_once('/')?;
        Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
    })
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// `Retry-After` as RFC 9110 allows it: delay seconds, or an HTTP date (`Wed, 21 Oct 2015
/// 07:28:00 GMT`) counted from `now` (a date already past means "now").
fn retry_after(headers: &HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let text = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::sync::Mutex;
    use std::time::Instant;

    use axum::http::{HeaderValue, StatusCode as S};
    use axum::response::IntoResponse;

    /// Status, headers and body of one canned answer.
    type Answer = (u16, Vec<(&'static str, String)>, &'static str);

    #[test]
    fn personal_answers_that_do_not_decode_are_named_without_their_values() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Person {
            email: u32,
        }
        let reply = Reply {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: br#"{"email": "ada.lovelace@example.com"}"#.to_vec(),
        };
        let open = reply
            .json::<Person>("read people")
            .expect_err("a string is no number");
        assert!(
            open.to_string().contains("ada.lovelace"),
            "json shows the body: {open}"
        );
        let err = reply
            .json_personal::<Person>("read people")
            .expect_err("a string is no number");
        let text = err.to_string();
        assert!(!text.contains("ada") && !text.contains('@'), "{text}");
        assert!(
            text.starts_with("read people: unexpected answer (HTTP 200): Data error at line 1 column"),
            "{text}"
        );
    }

    /// Serves `answers` in turn (then 200 "done"), counting requests.
    async fn serve(answers: Vec<Answer>) -> (String, Arc<AtomicU32>) {
        let hits = Arc::new(AtomicU32::new(0));
        let answers = Arc::new(answers);
        let h = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let (h, answers) = (h.clone(), answers.clone());
            async move {
                let n = h.fetch_add(1, Ordering::SeqCst) as usize;
                match answers.get(n) {
                    Some((status, headers, body)) => {
                        let mut resp = (S::from_u16(*status).unwrap_or(S::OK), *body).into_response();
                        for (k, v) in headers {
                            if let Ok(v) = HeaderValue::from_str(v) {
                                resp.headers_mut().insert(*k, v);
                            }
                        }
                        resp
                    }
                    None => (S::OK, "done").into_response(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), hits)
    }

    fn fast_policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
            timeout: Duration::from_secs(5),
            jitter_seed: 1,
        }
    }

    #[test]
    fn reads_salesforce_api_usage() {
        assert_eq!(parse_api_usage("api-usage=25/15000"), Some((25, 15000)));
        assert_eq!(
            parse_api_usage("per-app-api-usage=1/10(appName=x), api-usage=7/100"),
            Some((7, 100))
        );
        assert_eq!(parse_api_usage("nonsense"), None);
    }

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        let client = HttpClient::new(Vendor::Other, fast_policy()).expect("client");
        for attempt in 1..30 {
            let d = client.backoff(attempt);
            assert!(d <= Duration::from_millis(20), "{d:?}");
            let floor = Duration::from_millis(1 << (attempt - 1).min(20)).min(Duration::from_millis(20)) / 2;
            assert!(d >= floor, "attempt {attempt}: {d:?} < {floor:?}");
        }
    }

    #[tokio::test]
    async fn retries_server_errors_then_succeeds() {
        let (url, hits) = serve(vec![(500, vec![], "boom"), (503, vec![], "busy")]).await;
        let client = HttpClient::new(Vendor::Other, fast_policy()).expect("client");
        let reply = client
            .send("test", &RateLimiter::unlimited(), |c| c.get(&url))
            .await
            .expect("reply");
        assert_eq!(
            (reply.status.as_u16(), reply.body.as_slice()),
            (200, b"done".as_slice())
        );
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        let stats = client.stats();
        assert_eq!((stats.requests, stats.retries, stats.server_errors), (3, 2, 2));
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_and_says_why() {
        let errors = vec![(502, vec![], "bad gateway"); 4];
        let (url, hits) = serve(errors).await;
        let client = HttpClient::new(Vendor::Other, fast_policy()).expect("client");
        let err = client
            .send("list companies", &RateLimiter::unlimited(), |c| c.get(&url))
            .await
            .expect_err("gave up");
        assert_eq!(hits.load(Ordering::SeqCst), 4);
        let text = err.to_string();
        assert!(text.contains("list companies") && text.contains("502"), "{text}");
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        let at = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("retry-after", reqwest::header::HeaderValue::from_static(v));
            h
        };
        // 2015-10-21T07:27:30Z
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_445_412_450);
        assert_eq!(retry_after(&at("120"), now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after(&at("Wed, 21 Oct 2015 07:28:00 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&at("Wed, 21 Oct 2015 07:00:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&at("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    /// A server that answers the first request 429 with `Retry-After: 1` and refuses, again
    /// with a 429, any request that comes before that second is over.
    async fn retry_after_enforcing_server() -> (String, Arc<AtomicU32>) {
        let refused = Arc::new(AtomicU32::new(0));
        let until: Arc<Mutex<Option<Instant>>> = Arc::default();
        let r = refused.clone();
        let app = axum::Router::new().fallback(move || {
            let (r, until) = (r.clone(), until.clone());
            async move {
                let mut until = until.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                match *until {
                    Some(t) if now >= t => (S::OK, "done").into_response(),
                    _ => {
                        r.fetch_add(1, Ordering::SeqCst);
                        until.get_or_insert(now + Duration::from_secs(1));
                        let mut resp = (S::TOO_MANY_REQUESTS, "{}").into_response();
                        resp.headers_mut()
                            .insert("retry-after", HeaderValue::from_static("1"));
                        resp
                    }
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), refused)
    }

    #[tokio::test]
    async fn honours_retry_after() {
        // The server refuses a retry that comes early, so one 429 in all proves the wait.
        let (url, refused) = retry_after_enforcing_server().await;
        let client = HttpClient::new(Vendor::HubSpot, fast_policy()).expect("client");
        let reply = client
            .send("test", &RateLimiter::unlimited(), |c| c.get(&url))
            .await
            .expect("reply");
        assert_eq!(reply.status.as_u16(), 200);
        assert_eq!(
            refused.load(Ordering::SeqCst),
            1,
            "the retry came after Retry-After"
        );
        let stats = client.stats();
        assert_eq!((stats.requests, stats.rate_limited), (2, 1), "{stats:?}");
    }

    #[tokio::test]
    async fn hubspot_daily_limit_is_not_retried() {
        let body = r#"{"status":"error","errorType":"RATE_LIMIT","policyName":"DAILY"}"#;
        let (url, hits) = serve(vec![(429, vec![], body)]).await;
        let client = HttpClient::new(Vendor::HubSpot, fast_policy()).expect("client");
        let reply = client
            .send("test", &RateLimiter::unlimited(), |c| c.get(&url))
            .await
            .expect("reply");
        assert_eq!((reply.status.as_u16(), hits.load(Ordering::SeqCst)), (429, 1));
    }

    #[tokio::test]
    async fn hubspot_headers_shrink_the_bucket() {
        let headers = vec![
            ("x-hubspot-ratelimit-interval-milliseconds", "100".to_string()),
            ("x-hubspot-ratelimit-max", "50".to_string()),
            ("x-hubspot-ratelimit-remaining", "0".to_string()),
        ];
        let (url, _) = serve(vec![(429, headers, "{}")]).await;
        let client = HttpClient::new(Vendor::HubSpot, fast_policy()).expect("client");
        let limiter = RateLimiter::for_window(1000, Duration::from_millis(100));
        client
            .send("test", &limiter, |c| c.get(&url))
            .await
            .expect("reply");
        let rate = limiter.rate().expect("limited");
        assert!((rate - 490.0).abs() < 1.0, "{rate}");
    }

    #[tokio::test]
    async fn dropped_connections_are_retried() {
        // A server that closes the first connection without answering, then answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut n = 0;
            while let Ok((mut sock, _)) = listener.accept().await {
                n += 1;
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                if n > 1 {
                    let _ = sock
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                        .await;
                }
            }
        });
        let client = HttpClient::new(Vendor::Other, fast_policy()).expect("client");
        let url = format!("http://{addr}/");
        let reply = client
            .send("test", &RateLimiter::unlimited(), |c| c.get(&url))
            .await
            .expect("reply");
        assert_eq!(reply.body, b"ok");
        assert_eq!(client.stats().transport_errors, 1);
    }
}
