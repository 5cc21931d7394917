//! The HTTP capability: plugins reach the network only through the host's client, which
//! enforces a per-plugin host allowlist, timeouts and a rate limit, and counts what happened.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tierd_plugin_api::{HttpRequest, HttpResponse};
use tierd_rate_limit::{RateLimiter, WaitClock};
use tokio::task::JoinSet;

use crate::error::HostError;
use crate::PluginConfig;

/// Requests of one batch in flight at once; the rest queue.
const PARALLEL_REQUESTS: usize = 32;
/// Largest response body handed to a plugin.
const MAX_BODY_BYTES: usize = 8 << 20;

/// Counters of one plugin's HTTP use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpCounters {
    /// Requests sent.
    pub requests: u64,
    /// Requests that got no response (timeout, connection failure) or a 5xx.
    pub errors: u64,
    /// Requests refused by the allowlist.
    pub refused: u64,
    /// Sum of the latencies of sent requests, in microseconds.
    pub latency_micros: u64,
    /// Wall time during which at least one request was waiting (for the plugin's rate limit or
    /// for its answer), in microseconds: unlike `latency_micros`, requests in flight together
    /// count once.
    pub waiting_micros: u64,
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    errors: AtomicU64,
    refused: AtomicU64,
    latency_micros: AtomicU64,
    /// Wall time during which at least one request was waiting (see [`HttpCounters::waiting_micros`]).
    waiting: WaitClock,
}

/// Sends chosen hosts to fixed addresses (`"*"`: every other host), for tests and the demo.
struct Routes {
    exact: HashMap<String, SocketAddr>,
    fallback: Option<SocketAddr>,
}

impl reqwest::dns::Resolve for Routes {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_ascii_lowercase();
        if let Some(addr) = self.exact.get(&host).or(self.fallback.as_ref()).copied() {
            return Box::pin(async move { Ok(Box::new(std::iter::once(addr)) as reqwest::dns::Addrs) });
        }
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

struct Policy {
    allowed: Vec<String>,
    /// Requests a minute and the bucket pacing them.
    limiter: Option<(u32, Arc<RateLimiter>)>,
}

/// One plugin's HTTP capability.
pub(crate) struct HttpCapability {
    plugin: String,
    client: reqwest::Client,
    configured_hosts: Vec<String>,
    configured_rate: Option<u32>,
    timeout: Duration,
    policy: RwLock<Arc<Policy>>,
    stats: Stats,
}

impl HttpCapability {
    pub(crate) fn new(plugin: &str, cfg: &PluginConfig) -> Result<Self, HostError> {
        Self::with_client(plugin, cfg, |b| b)
    }

    /// As [`HttpCapability::new`], with a last say on the client (tests add a root certificate).
    fn with_client(
        plugin: &str,
        cfg: &PluginConfig,
        adjust: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Result<Self, HostError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("tierd/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_millis(cfg.http_timeout_ms))
            .redirect(reqwest::redirect::Policy::limited(5))
            // API plugins reuse a few connections to their one host; one-off hosts are not pooled
            // at all (see `one`).
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(16)
            // Plugins see the certificate's issuer (technographic's `certIssuer` patterns).
            .tls_info(true);
        if !cfg.resolve.is_empty() {
            let mut routes = Routes {
                exact: HashMap::new(),
                fallback: None,
            };
            for (host, addr) in &cfg.resolve {
                let addr: SocketAddr = addr.parse().map_err(|_| HostError::Config {
                    plugin: plugin.to_owned(),
                    message: format!("resolve: {host} = {addr:?} is not an IP:port address"),
                })?;
                if host == "*" {
                    routes.fallback = Some(addr);
                } else {
                    routes.exact.insert(host.to_ascii_lowercase(), addr);
                }
            }
            builder = builder.dns_resolver(Arc::new(routes));
        }
        let client = adjust(builder).build().map_err(|e| HostError::Config {
            plugin: plugin.to_owned(),
            message: format!("cannot build the HTTP client: {e}"),
        })?;
        let capability = HttpCapability {
            plugin: plugin.to_owned(),
            client,
            configured_hosts: cfg.allow_hosts.clone(),
            configured_rate: cfg.rate_limit_per_minute,
            timeout: Duration::from_millis(cfg.http_timeout_ms),
            policy: RwLock::new(Arc::new(Policy {
                allowed: Vec::new(),
                limiter: None,
            })),
            stats: Stats::default(),
        };
        capability.declare(&[], None);
        Ok(capability)
    }

    /// Applies what the plugin declared: its hosts join the configured ones; the configured rate
    /// limit wins over the declared one.
    pub(crate) fn declare(&self, hosts: &[String], rate_limit_per_minute: Option<u32>) {
        let mut allowed: Vec<String> = self.configured_hosts.iter().chain(hosts).cloned().collect();
        allowed.sort();
        allowed.dedup();
        let limiter = self
            .configured_rate
            .or(rate_limit_per_minute)
            .map(|r| (r, Arc::new(RateLimiter::per_minute(r))));
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(Policy { allowed, limiter });
    }

    pub(crate) fn allowed_hosts(&self) -> Vec<String> {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .allowed
            .clone()
    }

    /// Whether `{account.domain}` is allowed, i.e. whether calls need their batch's domains.
    pub(crate) fn permits_batch_domains(&self) -> bool {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .allowed
            .iter()
            .any(|h| h == "{account.domain}")
    }

    pub(crate) fn counters(&self) -> HttpCounters {
        HttpCounters {
            requests: self.stats.requests.load(Ordering::Relaxed),
            errors: self.stats.errors.load(Ordering::Relaxed),
            refused: self.stats.refused.load(Ordering::Relaxed),
            latency_micros: self.stats.latency_micros.load(Ordering::Relaxed),
            waiting_micros: self.stats.waiting.total().as_micros() as u64,
        }
    }

    /// Runs `requests` concurrently; answers in request order. `batch_domains` are the domains of
    /// the accounts in the current batch, which `{account.domain}` permits.
    pub(crate) async fn run(
        self: &Arc<Self>,
        requests: Vec<HttpRequest>,
        batch_domains: Arc<Vec<String>>,
    ) -> Vec<HttpResponse> {
        let count = requests.len();
        let gate = Arc::new(tokio::sync::Semaphore::new(PARALLEL_REQUESTS));
        let mut tasks = JoinSet::new();
        for (index, request) in requests.into_iter().enumerate() {
            let (this, domains, gate) = (self.clone(), batch_domains.clone(), gate.clone());
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await;
                (index, this.one(request, &domains).await)
            });
        }
        let mut answers = vec![HttpResponse::failed("request was not run"); count];
        while let Some(done) = tasks.join_next().await {
            if let Ok((index, answer)) = done {
                answers[index] = answer;
            }
        }
        answers
    }

    async fn one(&self, request: HttpRequest, batch_domains: &[String]) -> HttpResponse {
        let url = match reqwest::Url::parse(&request.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            _ => return HttpResponse::failed(format!("refused: {:?} is not an http(s) URL", request.url)),
        };
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let policy = self.policy.read().unwrap_or_else(|p| p.into_inner()).clone();
        if !host_allowed(&host, &policy.allowed, batch_domains) {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(plugin = %self.plugin, %host, "HTTP request refused: host not allowed");
            return HttpResponse::failed(format!(
                "refused: host {host} is not allowed for plugin {} (allowed: {}); add it to allow_hosts",
                self.plugin,
                policy.allowed.join(", ")
            ));
        }
        let timeout = request
            .timeout_ms
            .map(Duration::from_millis)
            .map_or(self.timeout, |t| t.min(self.timeout));
        // From its rate-limit slot to its answer.
        let _waiting = self.stats.waiting.enter();
        if let Some((per_minute, limiter)) = &policy.limiter {
            if !limiter.acquire_within(timeout).await {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                return HttpResponse::failed(format!(
                    "refused: plugin {}'s rate limit ({}/minute) leaves no slot within the timeout",
                    self.plugin, per_minute
                ));
            }
        }
        let Ok(method) = reqwest::Method::from_bytes(request.method.as_bytes()) else {
            return HttpResponse::failed(format!("refused: {:?} is not an HTTP method", request.method));
        };
        let mut builder = self.client.request(method, url).timeout(timeout);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        // A host allowed as an account's own domain (or by `*`) is met once per pass: keeping its
        // connection alive would hold a socket per account, and a 10k-account technographic pass
        // would run the process out of file descriptors.
        if !policy.allowed.contains(&host) {
            builder = builder.header(reqwest::header::CONNECTION, "close");
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let outcome = send(builder).await;
        let micros = started.elapsed().as_micros() as u64;
        self.stats.latency_micros.fetch_add(micros, Ordering::Relaxed);
        match outcome {
            Ok(response) => {
                if response.status >= 500 {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                }
                tracing::debug!(plugin = %self.plugin, %host, status = response.status, micros, "HTTP");
                response
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                let why = if e.is_timeout() {
                    format!("request to {host} timed out after {} ms", timeout.as_millis())
                } else {
                    // without_url: a URL may carry a key in its query string.
                    format!("request to {host} failed: {}", e.without_url())
                };
                tracing::debug!(plugin = %self.plugin, %host, error = %why, "HTTP");
                HttpResponse::failed(why)
            }
        }
    }
}

/// Response headers for plugins: a header sent more than once (`set-cookie`) keeps every value,
/// one per line, so cookie and header fingerprints see them all.
fn header_map(headers: &reqwest::header::HeaderMap) -> std::collections::BTreeMap<String, String> {
    let mut map: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    for (k, v) in headers {
        let value = String::from_utf8_lossy(v.as_bytes());
        map.entry(k.as_str().to_owned())
            .and_modify(|all| {
                all.push('\n');
                all.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    map
}

async fn send(builder: reqwest::RequestBuilder) -> Result<HttpResponse, reqwest::Error> {
    let mut response = builder.send().await?;
    let status = response.status().as_u16();
    let headers = header_map(response.headers());
    let tls_issuer = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|tls| tls.peer_certificate())
        .and_then(certificate_issuer);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Ok(HttpResponse::failed(format!(
                "response body over {MAX_BODY_BYTES} bytes (status {status})"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        error: None,
        tls_issuer,
    })
}

/// The issuer of a DER certificate as an RFC 4514 name, or `None` when it cannot be read.
fn certificate_issuer(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.issuer().to_string())
}

/// Whether `host` matches one of `patterns`: exact names, `*`, `*.suffix`, or `{account.domain}`
/// (a batch domain or one of its subdomains).
pub(crate) fn host_allowed(host: &str, patterns: &[String], batch_domains: &[String]) -> bool {
    let within = |domain: &str| {
        host == domain
            || (host.len() > domain.len()
                && host.ends_with(domain)
                && host[..host.len() - domain.len()].ends_with('.'))
    };
    patterns.iter().any(|p| match p.as_str() {
        "*" => true,
        "{account.domain}" => batch_domains.iter().any(|d| within(d)),
        p if p.starts_with("*.") => within(&p[2..].to_ascii_lowercase()) && host != &p[2..],
        p => p.eq_ignore_ascii_case(host),
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn repeated_headers_keep_every_value() {
        use reqwest::header::{HeaderMap, HeaderValue, SET_COOKIE};
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("_ga=1"));
        h.append(SET_COOKIE, HeaderValue::from_static("hubspotutk=2"));
        h.append("server", HeaderValue::from_static("cloudflare"));
        let map = header_map(&h);
        assert_eq!(map["set-cookie"], "_ga=1\nhubspotutk=2");
        assert_eq!(map["server"], "cloudflare");
    }

    use super::*;

    #[test]
    fn allowlist_patterns() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let domains = p(&["acme.com"]);
        assert!(host_allowed("api.x.com", &p(&["api.x.com"]), &[]));
        assert!(!host_allowed("evil.com", &p(&["api.x.com"]), &[]));
        assert!(host_allowed("www.acme.com", &p(&["{account.domain}"]), &domains));
        assert!(host_allowed("acme.com", &p(&["{account.domain}"]), &domains));
        assert!(!host_allowed("notacme.com", &p(&["{account.domain}"]), &domains));
        assert!(host_allowed("a.b.example.com", &p(&["*.example.com"]), &[]));
        assert!(!host_allowed("example.com", &p(&["*.example.com"]), &[]));
        assert!(host_allowed("anything.test", &p(&["*"]), &[]));
    }

    /// A CA, and a certificate for `localhost` it issued (DER), with the server's key (PKCS#8 DER).
    fn test_pki() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CountryName, "NL");
        ca.distinguished_name
            .push(DnType::OrganizationName, "Tierd Test Trust");
        ca.distinguished_name
            .push(DnType::CommonName, "Tierd Test Root R1");
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("server key");
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("server params")
            .signed_by(&key, &issuer)
            .expect("server certificate");
        (ca_cert.der().to_vec(), cert.der().to_vec(), key.serialize_der())
    }

    /// Serves one HTTPS answer per connection on 127.0.0.1 with `cert`; returns the port.
    async fn https_server(cert: Vec<u8>, key: Vec<u8>) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        use tokio_rustls::rustls::{self, ServerConfig};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            )
            .expect("server TLS config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello";
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn https_answers_carry_the_certificate_issuer() {
        let (ca, cert, key) = test_pki();
        let port = https_server(cert, key).await;
        let mut cfg = PluginConfig::library("unused.so", crate::Mode::InProcess);
        cfg.allow_hosts = vec!["localhost".to_owned()];
        let root = reqwest::Certificate::from_der(&ca).expect("root certificate");
        let http = Arc::new(
            HttpCapability::with_client("tls-test", &cfg, |b| b.add_root_certificate(root)).expect("client"),
        );
        let answers = http
            .run(
                vec![HttpRequest::get(format!("https://localhost:{port}/"))],
                Arc::default(),
            )
            .await;
        assert_eq!(answers[0].error, None);
        assert_eq!((answers[0].status, answers[0].body.as_str()), (200, "hello"));
        assert_eq!(
            answers[0].tls_issuer.as_deref(),
            // In the order the certificate encodes it (rcgen starts every name with its CN).
            Some("CN=Tierd Test Root R1, C=NL, O=Tierd Test Trust")
        );
    }

    #[test]
    fn an_unreadable_certificate_has_no_issuer() {
        assert_eq!(certificate_issuer(b"not a certificate"), None);
    }

    #[tokio::test]
    async fn rate_limiter_refuses_past_its_patience() {
        let limiter = RateLimiter::per_minute(1);
        assert!(limiter.acquire_within(Duration::ZERO).await);
        assert!(!limiter.acquire_within(Duration::from_millis(10)).await);
    }
}
