//! The DNS capability (plugin ABI 1.1): plugins resolve TXT and MX records only through the
//! host's resolver (hickory-resolver), which enforces a per-plugin name allowlist (the domains of
//! the accounts in the current batch, plus configured names), a timeout and a rate limit of its
//! own, and counts what happened. Knows nothing of how plugins run: `backend` and the isolated
//! child hand it queries.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use tierd_plugin_api::{DnsAnswer, DnsKind, DnsQuery, DnsRecord};
use tierd_rate_limit::RateLimiter;
use tokio::task::JoinSet;

use crate::config::DnsSettings;
use crate::error::HostError;

/// Queries of one batch in flight at once; the rest queue.
const PARALLEL_QUERIES: usize = 16;

/// Counters of one plugin's DNS use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DnsCounters {
    /// Queries sent to the resolver.
    pub queries: u64,
    /// Queries that got no answer (timeout, server failure); a name without records is not one.
    pub errors: u64,
    /// Queries refused by the allowlist or the rate limit.
    pub refused: u64,
    /// Sum of the latencies of sent queries, in microseconds.
    pub latency_micros: u64,
}

#[derive(Default)]
struct Stats {
    queries: AtomicU64,
    errors: AtomicU64,
    refused: AtomicU64,
    latency_micros: AtomicU64,
}

/// One plugin's DNS capability.
pub(crate) struct DnsCapability {
    plugin: String,
    /// The resolver, or why there is none (DNS turned off, no system configuration).
    resolver: Result<TokioResolver, String>,
    /// Configured names besides the batch's account domains.
    allowed: Vec<String>,
    limiter: Option<(u32, Arc<RateLimiter>)>,
    timeout: Duration,
    stats: Stats,
}

impl DnsCapability {
    pub(crate) fn new(plugin: &str, cfg: &DnsSettings) -> Result<Self, HostError> {
        let config_error = |message: String| HostError::Config {
            plugin: plugin.to_owned(),
            message,
        };
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let resolver = if !cfg.enabled {
            Err(format!(
                "DNS is turned off for plugin {plugin} (dns.enabled = false)"
            ))
        } else {
            let mut builder = if cfg.nameservers.is_empty() {
                match TokioResolver::builder_tokio() {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(plugin, error = %e, "no system DNS configuration; DNS queries will fail until dns.nameservers is set");
                        return Ok(Self::without_resolver(
                            plugin,
                            cfg,
                            format!("no DNS resolver: {e}"),
                        ));
                    }
                }
            } else {
                let mut servers = Vec::new();
                for server in &cfg.nameservers {
                    let addr: SocketAddr = server.parse().map_err(|_| {
                        config_error(format!("dns.nameservers: {server:?} is not an IP:port address"))
                    })?;
                    let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                        .into_iter()
                        .map(|mut c| {
                            c.port = addr.port();
                            c
                        })
                        .collect();
                    servers.push(NameServerConfig::new(addr.ip(), true, connections));
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(servers),
                    TokioRuntimeProvider::default(),
                )
            };
            let options = builder.options_mut();
            options.timeout = timeout;
            options.attempts = 1;
            // Names are asked as given (fully qualified), never through search domains or
            // /etc/hosts: a plugin learns what the public DNS says.
            options.ndots = 0;
            options.use_hosts_file = ResolveHosts::Never;
            builder
                .build()
                .map_err(|e| format!("cannot build the DNS resolver: {e}"))
        };
        Ok(Self {
            resolver,
            ..Self::without_resolver(plugin, cfg, String::new())
        })
    }

    fn without_resolver(plugin: &str, cfg: &DnsSettings, why: String) -> Self {
        Self {
            plugin: plugin.to_owned(),
            resolver: Err(why),
            allowed: cfg.allow.clone(),
            limiter: cfg
                .rate_limit_per_minute
                .map(|r| (r, Arc::new(RateLimiter::per_minute(r)))),
            timeout: Duration::from_millis(cfg.timeout_ms),
            stats: Stats::default(),
        }
    }

    pub(crate) fn counters(&self) -> DnsCounters {
        DnsCounters {
            queries: self.stats.queries.load(Ordering::Relaxed),
            errors: self.stats.errors.load(Ordering::Relaxed),
            refused: self.stats.refused.load(Ordering::Relaxed),
            latency_micros: self.stats.latency_micros.load(Ordering::Relaxed),
        }
    }

    /// Resolves `queries` concurrently; answers in query order. `batch_domains` are the domains
    /// of the accounts in the current batch, which (with their subdomains) are allowed.
    pub(crate) async fn run(
        self: &Arc<Self>,
        queries: Vec<DnsQuery>,
        batch_domains: Arc<Vec<String>>,
    ) -> Vec<DnsAnswer> {
        let count = queries.len();
        let gate = Arc::new(tokio::sync::Semaphore::new(PARALLEL_QUERIES));
        let mut tasks = JoinSet::new();
        for (index, query) in queries.into_iter().enumerate() {
            let (this, domains, gate) = (self.clone(), batch_domains.clone(), gate.clone());
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await;
                (index, this.one(query, &domains).await)
            });
        }
        let mut answers = vec![DnsAnswer::failed("query was not run"); count];
        while let Some(done) = tasks.join_next().await {
            if let Ok((index, answer)) = done {
                answers[index] = answer;
            }
        }
        answers
    }

    async fn one(&self, query: DnsQuery, batch_domains: &[String]) -> DnsAnswer {
        let name = query.name.trim_end_matches('.').to_ascii_lowercase();
        let kind = match query.kind {
            DnsKind::Txt => "TXT",
            DnsKind::Mx => "MX",
        };
        let resolver = match &self.resolver {
            Ok(r) => r,
            Err(why) => return DnsAnswer::failed(why.clone()),
        };
        if !self.allows(&name, batch_domains) {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(plugin = %self.plugin, %name, "DNS query refused: name not allowed");
            return DnsAnswer::failed(format!(
                "refused: {name} is neither the domain of an account in this batch nor allowed for \
                 plugin {} (add it to dns.allow)",
                self.plugin
            ));
        }
        if let Some((per_minute, limiter)) = &self.limiter {
            if !limiter.acquire_within(self.timeout).await {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                return DnsAnswer::failed(format!(
                    "refused: plugin {}'s DNS rate limit ({per_minute}/minute) leaves no slot within the timeout",
                    self.plugin
                ));
            }
        }
        let record_type = match query.kind {
            DnsKind::Txt => RecordType::TXT,
            DnsKind::Mx => RecordType::MX,
        };
        self.stats.queries.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(self.timeout, resolver.lookup(format!("{name}."), record_type)).await;
        let micros = started.elapsed().as_micros() as u64;
        self.stats.latency_micros.fetch_add(micros, Ordering::Relaxed);
        let failed = |why: String| {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(plugin = %self.plugin, %name, kind, error = %why, "DNS");
            DnsAnswer::failed(why)
        };
        match outcome {
            Err(_) => failed(format!(
                "{kind} query for {name} timed out after {} ms",
                self.timeout.as_millis()
            )),
            Ok(Err(e)) if e.is_no_records_found() => DnsAnswer::default(),
            Ok(Err(e)) => failed(format!("{kind} query for {name} failed: {e}")),
            Ok(Ok(lookup)) => {
                let records = lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::TXT(txt) => Some(DnsRecord::Txt {
                            strings: txt
                                .txt_data
                                .iter()
                                .map(|s| String::from_utf8_lossy(s).into_owned())
                                .collect(),
                        }),
                        RData::MX(mx) => Some(DnsRecord::Mx {
                            preference: mx.preference,
                            exchange: mx.exchange.to_utf8().trim_end_matches('.').to_owned(),
                        }),
                        _ => None,
                    })
                    .filter(|r| {
                        matches!(
                            (r, query.kind),
                            (DnsRecord::Txt { .. }, DnsKind::Txt) | (DnsRecord::Mx { .. }, DnsKind::Mx)
                        )
                    })
                    .collect::<Vec<_>>();
                tracing::debug!(plugin = %self.plugin, %name, kind, records = records.len(), micros, "DNS");
                DnsAnswer { records, error: None }
            }
        }
    }

    /// A batch's account domain (a leading `www.` dropped, as Wappalyzer asks) or one of its
    /// subdomains, or a configured name (`example.com`, `*.example.com`, `*`).
    fn allows(&self, name: &str, batch_domains: &[String]) -> bool {
        if name.is_empty() {
            return false;
        }
        let domains: Vec<String> = batch_domains
            .iter()
            .map(|d| {
                let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
                d.strip_prefix("www.").map(str::to_owned).unwrap_or(d)
            })
            .collect();
        crate::http::host_allowed(name, &["{account.domain}".to_owned()], &domains)
            || crate::http::host_allowed(name, &self.allowed, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capability(allow: &[&str]) -> DnsCapability {
        let cfg = DnsSettings {
            enabled: false,
            allow: allow.iter().map(|s| s.to_string()).collect(),
            ..DnsSettings::default()
        };
        DnsCapability::new("t", &cfg).unwrap()
    }

    #[test]
    fn batch_domains_their_subdomains_and_configured_names_are_allowed() {
        let dns = capability(&["*.vendor.test", "exact.test"]);
        let batch = vec!["www.acme.test".to_owned(), "globex.test".to_owned()];
        assert!(dns.allows("acme.test", &batch));
        assert!(dns.allows("_dmarc.acme.test", &batch));
        assert!(dns.allows("globex.test", &batch));
        assert!(!dns.allows("notacme.test", &batch));
        assert!(!dns.allows("acme.test", &[]));
        assert!(dns.allows("mx.vendor.test", &[]));
        assert!(!dns.allows("vendor.test", &[]));
        assert!(dns.allows("exact.test", &[]));
        assert!(!dns.allows("", &batch));
    }

    #[tokio::test]
    async fn a_turned_off_capability_answers_every_query_with_why() {
        let dns = Arc::new(capability(&[]));
        let answers = dns
            .run(
                vec![DnsQuery::txt("acme.test"), DnsQuery::mx("evil.test")],
                Arc::new(vec!["acme.test".to_owned()]),
            )
            .await;
        assert!(answers[0]
            .error
            .as_deref()
            .unwrap()
            .contains("dns.enabled = false"));
        assert!(answers[1]
            .error
            .as_deref()
            .unwrap()
            .contains("dns.enabled = false"));
        assert_eq!(dns.counters(), DnsCounters::default());
    }
}
