//! The configured plugins as one unit: start them, enrich accounts through each (batched,
//! concurrent, cached), check what they return, and stop them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};
use tierd_plugin_api::{AccountInput, AccountResult, FactSpec, FactType, Signal};
use tokio::task::JoinSet;

use crate::backend::{Backend, CallContext, HostOptions};
use crate::cache::{CacheKey, CachedResult, FactsCache, MemoryCache};
use crate::error::HostError;
use crate::http::{HttpCapability, HttpCounters};
use crate::{Mode, PluginConfig};

/// Accounts per batch when neither config nor plugin says.
const DEFAULT_BATCH_SIZE: usize = 100;

/// What a running plugin is, for `tierd plugins list` and the admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    /// The configured name (`[plugins.<name>]`).
    pub name: String,
    /// The version `describe` reported.
    pub version: String,
    /// The ABI the plugin was built for (`1.0`), or `exec protocol 1`.
    pub abi: String,
    /// How it runs.
    pub mode: Mode,
    /// Facts it declared.
    pub facts: Vec<FactSpec>,
    /// Signal kinds it declared.
    pub signals: Vec<String>,
    /// Hosts its HTTP capability may reach (declared plus configured).
    pub allowed_hosts: Vec<String>,
    /// Accounts per enrich call.
    pub batch_size: usize,
}

/// How one plugin fared for one account.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Facts from this run.
    Fresh {
        /// Checked facts.
        facts: Map<String, Value>,
        /// Checked signals.
        signals: Vec<Signal>,
    },
    /// Facts from the cache, still fresh.
    Cached {
        /// Checked facts.
        facts: Map<String, Value>,
        /// Checked signals.
        signals: Vec<Signal>,
    },
    /// The source knows nothing about the account.
    NoMatch,
    /// The plugin failed for this account: keep its previous facts, marked stale.
    Stale {
        /// Why, for people.
        reason: String,
    },
}

/// A fact or signal the host dropped because the plugin had not declared it with that type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedFact {
    /// The plugin.
    pub plugin: String,
    /// The account's id.
    pub account_id: String,
    /// The fact name (or `signal:<kind>`).
    pub fact: String,
    /// Why it was dropped.
    pub reason: String,
}

impl fmt::Display for RejectedFact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plugin {}, account {}: dropped {}: {}",
            self.plugin, self.account_id, self.fact, self.reason
        )
    }
}

/// One plugin's result for one account.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginResult {
    /// The plugin's configured name.
    pub plugin: String,
    /// What happened.
    pub outcome: Outcome,
    /// What was dropped from its answer.
    pub rejected: Vec<RejectedFact>,
}

/// Every plugin's result for one account, in the order accounts were given.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountEnrichment {
    /// The account's id.
    pub id: String,
    /// The cache key used (domain, or id).
    pub key: String,
    /// One per plugin, in plugin name order.
    pub results: Vec<PluginResult>,
}

/// Options of one enrichment pass.
#[derive(Debug, Clone, Default)]
pub struct EnrichOptions {
    /// Ignore fresh cache entries (a full reassessment); state is still passed back.
    pub refresh: bool,
}

struct RunningPlugin {
    info: PluginInfo,
    key_name: Arc<str>,
    key_version: Arc<str>,
    backend: Backend,
    http: Arc<HttpCapability>,
    facts: HashMap<String, FactType>,
    signals: HashSet<String>,
    ttl: Duration,
}

/// The started plugins. Cheap to share behind an `Arc`; `enrich` may run from several tasks.
pub struct PluginSet {
    plugins: Vec<Arc<RunningPlugin>>,
    cache: Arc<dyn FactsCache>,
}

impl fmt::Debug for PluginSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.plugins.iter().map(|p| &p.info.name))
            .finish()
    }
}

impl PluginSet {
    /// Starts every configured plugin (init + describe); the first failure stops and is returned.
    pub async fn load(
        configs: &BTreeMap<String, PluginConfig>,
        options: &HostOptions,
    ) -> Result<PluginSet, HostError> {
        let (set, mut errors) = Self::start(configs, options).await;
        match errors.is_empty() {
            true => Ok(set),
            false => {
                set.shutdown().await;
                Err(errors.remove(0))
            }
        }
    }

    /// Starts every configured plugin it can; the ones that fail are left out and reported.
    pub async fn start(
        configs: &BTreeMap<String, PluginConfig>,
        options: &HostOptions,
    ) -> (PluginSet, Vec<HostError>) {
        let mut plugins = Vec::new();
        let mut errors = Vec::new();
        for (name, cfg) in configs {
            match start_one(name, cfg, options).await {
                Ok(p) => plugins.push(Arc::new(p)),
                Err(e) => {
                    tracing::error!(plugin = %name, error = %e, "plugin not started");
                    errors.push(e);
                }
            }
        }
        let cache: Arc<dyn FactsCache> = Arc::new(MemoryCache::new());
        (PluginSet { plugins, cache }, errors)
    }

    /// Uses `cache` instead of the in-memory one.
    pub fn with_cache(mut self, cache: Arc<dyn FactsCache>) -> Self {
        self.cache = cache;
        self
    }

    /// The running plugins.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.plugins.iter().map(|p| p.info.clone()).collect()
    }

    /// HTTP counters of one plugin.
    pub fn http_counters(&self, plugin: &str) -> Option<HttpCounters> {
        self.plugins
            .iter()
            .find(|p| p.info.name == plugin)
            .map(|p| p.http.counters())
    }

    /// Enriches `accounts` through every plugin, using fresh cache entries. `as_of` is the run's
    /// date (`YYYY-MM-DD`). An account's `key` is chosen by the host when empty; its `state` is
    /// replaced by what the plugin returned last time.
    pub async fn enrich(&self, as_of: &str, accounts: Vec<AccountInput>) -> Vec<AccountEnrichment> {
        self.enrich_with(as_of, accounts, &EnrichOptions::default()).await
    }

    /// [`PluginSet::enrich`] with options.
    pub async fn enrich_with(
        &self,
        as_of: &str,
        mut accounts: Vec<AccountInput>,
        options: &EnrichOptions,
    ) -> Vec<AccountEnrichment> {
        for a in &mut accounts {
            if a.key.is_empty() {
                a.key = account_key(a);
            }
        }
        let mut out: Vec<AccountEnrichment> = accounts
            .iter()
            .map(|a| AccountEnrichment {
                id: a.id.clone(),
                key: a.key.clone(),
                results: Vec::with_capacity(self.plugins.len()),
            })
            .collect();
        let accounts = Arc::new(accounts);
        for plugin in &self.plugins {
            let results = run_plugin(plugin, &self.cache, as_of, &accounts, options).await;
            for (slot, result) in out.iter_mut().zip(results) {
                slot.results.push(result);
            }
        }
        out
    }

    /// Stops every plugin (shutdown message, then kill after a grace period).
    pub async fn shutdown(self) {
        for p in &self.plugins {
            p.backend.shutdown().await;
        }
    }
}

/// The cache key: the domain (lower-cased) when there is one, else the id.
fn account_key(a: &AccountInput) -> String {
    match a.domain.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => d.to_ascii_lowercase(),
        None => a.id.clone(),
    }
}

async fn start_one(
    name: &str,
    cfg: &PluginConfig,
    options: &HostOptions,
) -> Result<RunningPlugin, HostError> {
    if let Some((key, message)) = cfg.problems().into_iter().next() {
        return Err(HostError::Config {
            plugin: name.to_owned(),
            message: format!("{key}: {message}"),
        });
    }
    let (init_config, redactor) = crate::secret::init_config(name, cfg)?;
    let http = Arc::new(HttpCapability::new(name, cfg)?);
    let ctx = Arc::new(CallContext {
        plugin: name.to_owned(),
        timeout: Duration::from_millis(cfg.timeout_ms),
        http: http.clone(),
        redactor,
        init_config,
    });
    let (backend, started) = Backend::start(cfg, ctx, options).await?;
    let d = started.description;
    http.declare(&d.hosts, d.rate_limit_per_minute);
    let batch_size = cfg
        .batch_size
        .or(d.batch_size)
        .map_or(DEFAULT_BATCH_SIZE, |b| b.max(1) as usize);
    let info = PluginInfo {
        name: name.to_owned(),
        version: d.version.clone(),
        abi: started.abi,
        mode: cfg.mode,
        facts: d.facts.clone(),
        signals: d.signals.clone(),
        allowed_hosts: http.allowed_hosts(),
        batch_size,
    };
    tracing::info!(plugin = %name, version = %d.version, mode = cfg.mode.as_str(), "plugin started");
    Ok(RunningPlugin {
        key_name: Arc::from(name),
        key_version: Arc::from(d.version.as_str()),
        info,
        backend,
        http,
        facts: d.facts.iter().map(|f| (f.name.clone(), f.fact_type)).collect(),
        signals: d.signals.into_iter().collect(),
        ttl: Duration::from_secs(cfg.cache_ttl_secs),
    })
}

/// One plugin over all accounts: answers from the cache where fresh, the rest in batches.
async fn run_plugin(
    plugin: &Arc<RunningPlugin>,
    cache: &Arc<dyn FactsCache>,
    as_of: &str,
    accounts: &Arc<Vec<AccountInput>>,
    options: &EnrichOptions,
) -> Vec<PluginResult> {
    let name = &plugin.info.name;
    let now = SystemTime::now();
    // Accounts sharing a key (same domain) are asked once.
    let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut unique: Vec<usize> = Vec::new();
    for (i, a) in accounts.iter().enumerate() {
        let slot = by_key.entry(a.key.as_str()).or_default();
        if slot.is_empty() {
            unique.push(i);
        }
        slot.push(i);
    }
    let mut outcomes: HashMap<String, (Outcome, Vec<RejectedFact>)> = HashMap::new();
    // (index into accounts, state to pass back)
    let mut to_ask: Vec<(usize, Value)> = Vec::new();
    for &i in &unique {
        let account = &accounts[i];
        let key = cache_key(plugin, &account.key);
        let cached = cache.get(&key);
        match cached {
            Some(c) if !options.refresh && c.expires_at > now => {
                let outcome = match c.no_match {
                    true => Outcome::NoMatch,
                    false => Outcome::Cached {
                        facts: c.facts,
                        signals: c.signals,
                    },
                };
                outcomes.insert(account.key.clone(), (outcome, Vec::new()));
            }
            cached => {
                to_ask.push((i, cached.map(|c| c.state).unwrap_or(Value::Null)));
            }
        }
    }

    let mut batches = JoinSet::new();
    for chunk in to_ask.chunks(plugin.info.batch_size) {
        let (plugin, cache, as_of) = (plugin.clone(), cache.clone(), as_of.to_owned());
        let (accounts, chunk) = (accounts.clone(), chunk.to_vec());
        batches.spawn(async move { run_batch(&plugin, &cache, &as_of, &accounts, chunk).await });
    }
    while let Some(done) = batches.join_next().await {
        match done {
            Ok(results) => outcomes.extend(results),
            Err(e) => tracing::error!(plugin = %name, error = %e, "enrich batch task failed"),
        }
    }

    accounts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            // The last account sharing a key takes the outcome; earlier ones get a copy.
            let last = by_key.get(a.key.as_str()).and_then(|v| v.last()) == Some(&i);
            let found = match last {
                true => outcomes.remove(&a.key),
                false => outcomes.get(&a.key).cloned(),
            };
            let (outcome, mut rejected) = found.unwrap_or_else(|| {
                let reason = "the batch holding this account did not finish".to_owned();
                (Outcome::Stale { reason }, Vec::new())
            });
            for r in &mut rejected {
                r.account_id = a.id.clone();
            }
            PluginResult {
                plugin: name.clone(),
                outcome,
                rejected,
            }
        })
        .collect()
}

fn cache_key(plugin: &RunningPlugin, account: &str) -> CacheKey {
    CacheKey {
        plugin: plugin.key_name.clone(),
        version: plugin.key_version.clone(),
        account: account.to_owned(),
    }
}

/// One enrich call; a failed call fails every account of the batch as stale.
async fn run_batch(
    plugin: &RunningPlugin,
    cache: &Arc<dyn FactsCache>,
    as_of: &str,
    all: &[AccountInput],
    batch: Vec<(usize, Value)>,
) -> Vec<(String, (Outcome, Vec<RejectedFact>))> {
    let name = &plugin.info.name;
    let accounts: Vec<&AccountInput> = batch.iter().map(|(i, _)| &all[*i]).collect();
    let domains: Arc<Vec<String>> = Arc::new(accounts.iter().filter_map(|a| a.domain.clone()).collect());
    let ids: HashMap<&str, &str> = accounts.iter().map(|a| (a.key.as_str(), a.id.as_str())).collect();
    let keys: Vec<String> = accounts.iter().map(|a| a.key.clone()).collect();
    // Serialised from borrows: the accounts' facts are not copied to build the request.
    let request = RequestRef {
        as_of,
        accounts: accounts
            .iter()
            .zip(&batch)
            .map(|(a, (_, state))| AccountRef::new(a, state))
            .collect(),
    };
    let response = match serde_json::to_vec(&request) {
        Ok(request) => plugin.backend.enrich(request, domains).await,
        Err(e) => Err(format!("cannot encode the request: {e}")),
    };
    let mut results = match response {
        Ok(r) => r
            .results
            .into_iter()
            .map(|r| (r.key.clone(), r))
            .collect::<HashMap<_, _>>(),
        Err(reason) => {
            tracing::warn!(plugin = %name, accounts = keys.len(), %reason, "enrich batch failed; facts kept as stale");
            let reason = format!("plugin {name}: {reason}");
            return keys
                .into_iter()
                .map(|k| {
                    (
                        k,
                        (
                            Outcome::Stale {
                                reason: reason.clone(),
                            },
                            Vec::new(),
                        ),
                    )
                })
                .collect();
        }
    };
    let expires_at = SystemTime::now() + plugin.ttl;
    keys.into_iter()
        .map(|key| {
            let id = ids.get(key.as_str()).copied().unwrap_or_default();
            let outcome = match results.remove(&key) {
                None => (
                    Outcome::Stale {
                        reason: format!("plugin {name} returned no result for this account"),
                    },
                    Vec::new(),
                ),
                Some(r) => settle(plugin, cache, id, &key, r, expires_at),
            };
            (key, outcome)
        })
        .collect()
}

/// An `EnrichRequest` borrowing the accounts.
#[derive(serde::Serialize)]
struct RequestRef<'a> {
    as_of: &'a str,
    accounts: Vec<AccountRef<'a>>,
}

/// An `AccountInput` borrowing the account, with the state from the cache.
#[derive(serde::Serialize)]
struct AccountRef<'a> {
    key: &'a str,
    id: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a str>,
    facts: &'a Map<String, Value>,
    related: &'a Map<String, Value>,
    state: &'a Value,
}

impl<'a> AccountRef<'a> {
    fn new(a: &'a AccountInput, state: &'a Value) -> Self {
        AccountRef {
            key: &a.key,
            id: &a.id,
            name: &a.name,
            domain: a.domain.as_deref(),
            facts: &a.facts,
            related: &a.related,
            state,
        }
    }
}

/// Checks one account's result against the declaration and caches it.
fn settle(
    plugin: &RunningPlugin,
    cache: &Arc<dyn FactsCache>,
    id: &str,
    key: &str,
    result: AccountResult,
    expires_at: SystemTime,
) -> (Outcome, Vec<RejectedFact>) {
    let name = &plugin.info.name;
    if let Some(error) = result.error {
        return (
            Outcome::Stale {
                reason: format!("plugin {name}: {error}"),
            },
            Vec::new(),
        );
    }
    let mut rejected = Vec::new();
    let mut reject = |fact: String, reason: String| {
        tracing::warn!(plugin = %name, account = %id, %fact, %reason, "plugin output dropped");
        rejected.push(RejectedFact {
            plugin: name.clone(),
            account_id: id.to_owned(),
            fact,
            reason,
        });
    };
    let mut facts = Map::new();
    for (fact, value) in result.facts {
        match plugin.facts.get(&fact) {
            None => reject(fact, "not declared in describe()".to_owned()),
            Some(t) if !t.accepts(&value) => {
                let shown: String = value.to_string().chars().take(40).collect();
                reject(fact, format!("declared as {t}, got {shown}"))
            }
            Some(_) => {
                facts.insert(fact, value);
            }
        }
    }
    let mut signals = Vec::new();
    for s in result.signals {
        if plugin.signals.contains(&s.kind) {
            signals.push(s);
        } else {
            reject(
                format!("signal:{}", s.kind),
                "signal kind not declared in describe()".to_owned(),
            );
        }
    }
    cache.put(
        cache_key(plugin, key),
        CachedResult {
            facts: facts.clone(),
            signals: signals.clone(),
            no_match: result.no_match,
            state: result.state,
            expires_at,
        },
    );
    let outcome = match result.no_match {
        true => Outcome::NoMatch,
        false => Outcome::Fresh { facts, signals },
    };
    (outcome, rejected)
}
