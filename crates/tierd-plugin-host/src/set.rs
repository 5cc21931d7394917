//! The configured plugins as one unit: start them, enrich accounts through each (batched,
//! concurrent, cached), check what they return, and stop them.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};
use tierd_plugin_api::{AccountInput, FactSpec, FactType, Signal};
use tokio::task::JoinSet;

use crate::backend::{Backend, CallContext, HostOptions};
use crate::cache::{CachedResult, FactsCache, Lookup, MemoryCache};
use crate::dns::{DnsCapability, DnsCounters};
use crate::error::HostError;
use crate::http::{HttpCapability, HttpCounters};
use crate::keyhash::KeyHashState;
use crate::{Mode, PluginConfig};

/// Accounts per batch when neither config nor plugin says.
const DEFAULT_BATCH_SIZE: usize = 100;

/// What a running plugin is, for `tierd plugins list` and the admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    /// The configured name (`[plugins.<name>]`): the plugin's name in tierd (cache, logs,
    /// metrics, fact rejections).
    pub name: String,
    /// The name `describe` reported (informational; may differ from the configured one).
    pub described_name: String,
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

/// What [`PluginSet::enrich_timed`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Enriched {
    /// Each account's results, in the order accounts were given.
    pub accounts: Vec<AccountEnrichment>,
    /// Each plugin's name and the time it took over the batch (cache look-ups included), in
    /// plugin name order.
    pub took: Vec<(String, std::time::Duration)>,
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
    dns: Arc<DnsCapability>,
    facts: HashMap<String, FactType>,
    signals: HashSet<String>,
    ttl: Duration,
    /// Whether calls need their batch's domains: the HTTP allowlist holds `{account.domain}`, or
    /// the DNS capability is on (it allows the batch's domains).
    needs_batch_domains: bool,
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
        // A library's provider is a single instance per process, so a second in-process plugin
        // over the same file would re-initialise the first one's provider under its feet.
        let mut in_process: BTreeMap<PathBuf, &str> = BTreeMap::new();
        for (name, cfg) in configs {
            if let (Mode::InProcess, Some(path)) = (cfg.mode, &cfg.path) {
                let key = path.canonicalize().unwrap_or_else(|_| path.clone());
                if let Some(first) = in_process.insert(key, name) {
                    errors.push(HostError::Config {
                        plugin: name.clone(),
                        message: format!(
                            "{} is already loaded in process by plugin {first}; a library runs once per \
                             process in in_process mode, so run this one with mode = \"isolated\"",
                            path.display()
                        ),
                    });
                    continue;
                }
            }
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

    /// DNS counters of one plugin.
    pub fn dns_counters(&self, plugin: &str) -> Option<DnsCounters> {
        self.plugins
            .iter()
            .find(|p| p.info.name == plugin)
            .map(|p| p.dns.counters())
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
        accounts: Vec<AccountInput>,
        options: &EnrichOptions,
    ) -> Vec<AccountEnrichment> {
        self.enrich_timed(as_of, accounts, options).await.accounts
    }

    /// [`PluginSet::enrich_with`], also saying how long each plugin took over the batch (the
    /// plugins run one after another, each over every account), for run reports.
    pub async fn enrich_timed(
        &self,
        as_of: &str,
        mut accounts: Vec<AccountInput>,
        options: &EnrichOptions,
    ) -> Enriched {
        for a in &mut accounts {
            if a.key.is_empty() {
                a.key = account_key(a);
            }
        }
        let accounts = Arc::new(accounts);
        let mut per_plugin = Vec::with_capacity(self.plugins.len());
        let mut took = Vec::with_capacity(self.plugins.len());
        for plugin in &self.plugins {
            let started = std::time::Instant::now();
            per_plugin.push(
                run_plugin(plugin, &self.cache, as_of, &accounts, options)
                    .await
                    .into_iter(),
            );
            took.push((plugin.info.name.clone(), started.elapsed()));
        }
        // Every batch task has finished, so the accounts are ours again: their ids and keys move
        // into the answer instead of being copied.
        let accounts = Arc::try_unwrap(accounts).unwrap_or_else(|shared| (*shared).clone());
        let accounts = accounts
            .into_iter()
            .map(|a| AccountEnrichment {
                id: a.id,
                key: a.key,
                results: per_plugin.iter_mut().filter_map(Iterator::next).collect(),
            })
            .collect();
        Enriched { accounts, took }
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
    let dns = Arc::new(DnsCapability::new(name, &cfg.dns)?);
    let ctx = Arc::new(CallContext {
        plugin: name.to_owned(),
        timeout: Duration::from_millis(cfg.timeout_ms),
        http: http.clone(),
        dns: dns.clone(),
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
        described_name: d.name.clone(),
        version: d.version.clone(),
        abi: started.abi,
        mode: cfg.mode,
        facts: d.facts.clone(),
        signals: d.signals.clone(),
        allowed_hosts: http.allowed_hosts(),
        batch_size,
    };
    let needs_batch_domains = http.permits_batch_domains() || cfg.dns.enabled;
    tracing::info!(plugin = %name, version = %d.version, mode = cfg.mode.as_str(), "plugin started");
    Ok(RunningPlugin {
        key_name: Arc::from(name),
        key_version: Arc::from(d.version.as_str()),
        info,
        backend,
        http,
        dns,
        facts: d.facts.iter().map(|f| (f.name.clone(), f.fact_type)).collect(),
        signals: d.signals.into_iter().collect(),
        ttl: Duration::from_secs(cfg.cache_ttl_secs),
        needs_batch_domains,
    })
}

/// What the host concluded for one account key: the outcome and what was dropped.
type Settled = (Outcome, Vec<RejectedFact>);

/// The batches of a pass in flight, each answering `(slot, settled)` per key it asked.
type Batches = JoinSet<Vec<(usize, Settled)>>;

/// An account key to ask the plugin about.
struct Asked {
    /// Index into the accounts of the pass (the first account with this key).
    account: usize,
    /// Index of the key among the pass's distinct keys.
    slot: usize,
    /// The plugin's state for the account from last time.
    state: Value,
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
    // Accounts sharing a key (same domain) are asked once: `slot_of[i]` is the index of account
    // i's key among the distinct keys (its slot).
    let mut dispatch = Dispatch::new(plugin, cache, as_of, accounts, options);
    let mut slots: HashMap<&str, usize, KeyHashState> =
        HashMap::with_capacity_and_hasher(accounts.len(), KeyHashState::default());
    let slot_of: Vec<usize> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| match slots.entry(a.key.as_str()) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => *e.insert(dispatch.add_key(i)),
        })
        .collect();
    drop(slots);
    let (mut outcomes, first, mut batches) = dispatch.finish();

    // How many accounts share each key.
    let mut sharing = vec![0u32; outcomes.len()];
    for &slot in &slot_of {
        sharing[slot] += 1;
    }
    // The result of an account with a key of its own is made as soon as its batch is in, while
    // the plugin works on the next batches, rather than all at the end.
    let mut done: Vec<Option<PluginResult>> = (0..accounts.len()).map(|_| None).collect();
    while let Some(joined) = batches.join_next().await {
        match joined {
            Ok(results) => {
                for (slot, settled) in results {
                    match sharing[slot] {
                        1 => {
                            let (outcome, rejected) = settled;
                            done[first[slot]] = Some(PluginResult {
                                plugin: name.clone(),
                                outcome,
                                rejected,
                            });
                        }
                        _ => outcomes[slot] = Some(settled),
                    }
                }
            }
            Err(e) => tracing::error!(plugin = %name, error = %e, "enrich batch task failed"),
        }
    }

    // The rest: cached, failed, or sharing a key, where the last account sharing it takes the
    // outcome and the earlier ones a copy.
    accounts
        .iter()
        .zip(slot_of)
        .zip(done)
        .map(|((a, slot), done)| {
            if let Some(result) = done {
                return result;
            }
            sharing[slot] -= 1;
            let found = match sharing[slot] {
                0 => outcomes[slot].take(),
                _ => outcomes[slot].clone(),
            };
            let (outcome, mut rejected) = found.unwrap_or_else(|| {
                let reason = "the batch holding this account did not finish".to_owned();
                (Outcome::Stale { reason }, Vec::new())
            });
            for r in &mut rejected {
                r.account_id.clone_from(&a.id);
            }
            PluginResult {
                plugin: name.clone(),
                outcome,
                rejected,
            }
        })
        .collect()
}

/// Sorts the distinct keys of a pass into cached answers and batches to ask, starting each
/// batch as soon as it is full: the plugin works on the first batches while the rest of the
/// accounts are still being looked up, instead of after.
struct Dispatch<'p> {
    plugin: &'p Arc<RunningPlugin>,
    cache: &'p Arc<dyn FactsCache>,
    as_of: Arc<str>,
    accounts: &'p Arc<Vec<AccountInput>>,
    fresh_at: Option<SystemTime>,
    /// By slot: the cached answer, or (later) the batch's.
    outcomes: Vec<Option<Settled>>,
    /// By slot: the first account with that key.
    first: Vec<usize>,
    /// `(account, slot)` of keys not looked up in the cache yet.
    unchecked: Vec<(usize, usize)>,
    /// Keys without a fresh entry, not in a batch yet.
    to_ask: Vec<Asked>,
    batches: Batches,
}

impl<'p> Dispatch<'p> {
    fn new(
        plugin: &'p Arc<RunningPlugin>,
        cache: &'p Arc<dyn FactsCache>,
        as_of: &str,
        accounts: &'p Arc<Vec<AccountInput>>,
        options: &EnrichOptions,
    ) -> Self {
        Dispatch {
            plugin,
            cache,
            as_of: Arc::from(as_of),
            accounts,
            fresh_at: (!options.refresh).then(SystemTime::now),
            outcomes: Vec::new(),
            first: Vec::new(),
            unchecked: Vec::with_capacity(plugin.info.batch_size),
            to_ask: Vec::with_capacity(plugin.info.batch_size),
            batches: JoinSet::new(),
        }
    }

    /// Takes the first account with a new key; answers the key's slot.
    fn add_key(&mut self, account: usize) -> usize {
        let slot = self.outcomes.len();
        self.outcomes.push(None);
        self.first.push(account);
        self.unchecked.push((account, slot));
        if self.unchecked.len() == self.plugin.info.batch_size {
            self.look_up();
        }
        slot
    }

    fn look_up(&mut self) {
        let keys: Vec<&str> = self
            .unchecked
            .iter()
            .map(|&(account, _)| self.accounts[account].key.as_str())
            .collect();
        let plugin = self.plugin;
        let lookups = self
            .cache
            .lookup_batch(&plugin.key_name, &plugin.key_version, &keys, self.fresh_at);
        for (&(account, slot), lookup) in self.unchecked.iter().zip(lookups) {
            match lookup {
                Lookup::Fresh(c) => {
                    let outcome = match c.no_match {
                        true => Outcome::NoMatch,
                        false => Outcome::Cached {
                            facts: c.facts,
                            signals: c.signals,
                        },
                    };
                    self.outcomes[slot] = Some((outcome, Vec::new()));
                }
                Lookup::Ask { state } => self.to_ask.push(Asked { account, slot, state }),
            }
        }
        self.unchecked.clear();
        while self.to_ask.len() >= plugin.info.batch_size {
            let batch = self.to_ask.drain(..plugin.info.batch_size).collect();
            self.spawn(batch);
        }
    }

    fn spawn(&mut self, batch: Vec<Asked>) {
        let (plugin, cache) = (self.plugin.clone(), self.cache.clone());
        let (as_of, accounts) = (self.as_of.clone(), self.accounts.clone());
        self.batches
            .spawn(async move { run_batch(&plugin, &cache, &as_of, &accounts, batch).await });
    }

    /// Looks up and starts what is left; answers the outcomes so far and the running batches.
    fn finish(mut self) -> (Vec<Option<Settled>>, Vec<usize>, Batches) {
        if !self.unchecked.is_empty() {
            self.look_up();
        }
        if !self.to_ask.is_empty() {
            let batch = std::mem::take(&mut self.to_ask);
            self.spawn(batch);
        }
        (self.outcomes, self.first, self.batches)
    }
}

/// One enrich call; a failed call fails every account of the batch as stale. Answers by slot.
async fn run_batch(
    plugin: &RunningPlugin,
    cache: &Arc<dyn FactsCache>,
    as_of: &str,
    all: &[AccountInput],
    batch: Vec<Asked>,
) -> Vec<(usize, Settled)> {
    let name = &plugin.info.name;
    let account = |b: &Asked| &all[b.account];
    // Only `{account.domain}` in the HTTP allowlist and the DNS capability read them.
    let domains: Arc<Vec<String>> = match plugin.needs_batch_domains {
        true => Arc::new(batch.iter().filter_map(|b| account(b).domain.clone()).collect()),
        false => Arc::default(),
    };
    let response = match encode_request(as_of, all, &batch) {
        Ok(request) => plugin.backend.enrich(request, domains).await,
        Err(e) => Err(format!("cannot encode the request: {e}")),
    };
    let failed = |reason: String| {
        tracing::warn!(plugin = %name, accounts = batch.len(), %reason, "enrich batch failed; facts kept as stale");
        let reason = format!("plugin {name}: {reason}");
        batch
            .iter()
            .map(|b| {
                let outcome = Outcome::Stale {
                    reason: reason.clone(),
                };
                (b.slot, (outcome, Vec::new()))
            })
            .collect()
    };
    let answer = match response {
        Ok(answer) => answer,
        Err(reason) => return failed(reason),
    };
    let found = match answer.decode::<ResponseRef<'_>>() {
        Ok(response) => {
            let keys: Vec<&str> = batch.iter().map(|b| account(b).key.as_str()).collect();
            match_results(response.results, &keys)
        }
        Err(reason) => return failed(reason),
    };
    let expires_at = SystemTime::now() + plugin.ttl;
    let mut to_cache = Vec::with_capacity(batch.len());
    let settled = batch
        .iter()
        .zip(found)
        .map(|(b, result)| {
            let a = account(b);
            let settled = match result {
                None => (
                    Outcome::Stale {
                        reason: format!("plugin {name} returned no result for this account"),
                    },
                    Vec::new(),
                ),
                Some(r) => {
                    let (settled, entry) = settle(plugin, &a.id, r, expires_at);
                    to_cache.extend(entry.map(|e| (a.key.as_str(), e)));
                    settled
                }
            };
            (b.slot, settled)
        })
        .collect();
    cache.put_batch(&plugin.key_name, &plugin.key_version, to_cache);
    settled
}

/// The `EnrichRequest` JSON of a batch, written straight from the borrowed accounts (their facts
/// and related records are not copied) into one buffer sized for the usual account.
///
/// The JSON structure is written by hand and only the values go through serde: serde would
/// escape-check every field name of every account, a fifth of the cost of encoding. The shape
/// is [`tierd_plugin_api::EnrichRequest`]'s (a test holds it to that).
fn encode_request(as_of: &str, all: &[AccountInput], batch: &[Asked]) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64 + 256 * batch.len());
    out.extend_from_slice(br#"{"as_of":"#);
    serde_json::to_writer(&mut out, as_of)?;
    out.extend_from_slice(br#","accounts":["#);
    for (n, asked) in batch.iter().enumerate() {
        let a = &all[asked.account];
        out.extend_from_slice(if n == 0 { br#"{"key":"# } else { br#",{"key":"# });
        serde_json::to_writer(&mut out, &a.key)?;
        out.extend_from_slice(br#","id":"#);
        serde_json::to_writer(&mut out, &a.id)?;
        out.extend_from_slice(br#","name":"#);
        serde_json::to_writer(&mut out, &a.name)?;
        if let Some(domain) = &a.domain {
            out.extend_from_slice(br#","domain":"#);
            serde_json::to_writer(&mut out, domain)?;
        }
        out.extend_from_slice(br#","facts":"#);
        serde_json::to_writer(&mut out, &a.facts)?;
        out.extend_from_slice(br#","related":"#);
        serde_json::to_writer(&mut out, &a.related)?;
        out.extend_from_slice(br#","state":"#);
        serde_json::to_writer(&mut out, &asked.state)?;
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// An `EnrichResponse` decoded in place: the same JSON as
/// [`tierd_plugin_api::EnrichResponse`], with each key borrowed from the answer.
#[derive(serde::Deserialize)]
struct ResponseRef<'a> {
    #[serde(borrow)]
    results: Vec<ResultRef<'a>>,
}

/// An [`tierd_plugin_api::AccountResult`] whose key borrows from the answer (copied only if it has escapes). The
/// rest is owned because it moves into the outcome and the cache.
#[derive(serde::Deserialize)]
struct ResultRef<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(default)]
    facts: Map<String, Value>,
    #[serde(default)]
    signals: Vec<Signal>,
    #[serde(default)]
    state: Value,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    no_match: bool,
}

/// Puts each result at the position of its key in `keys` (distinct keys); a result for a key
/// not asked is ignored, and of two results for one key the last wins. Plugins usually answer
/// in request order, so a result is first tried at its own position; the map of positions is
/// built only for an answer out of order.
fn match_results<'r>(results: Vec<ResultRef<'r>>, keys: &[&str]) -> Vec<Option<ResultRef<'r>>> {
    let mut found: Vec<Option<ResultRef<'r>>> = (0..keys.len()).map(|_| None).collect();
    let mut positions: Option<HashMap<&str, usize>> = None;
    for (at, result) in results.into_iter().enumerate() {
        let position = match keys.get(at) {
            Some(&key) if key == result.key => Some(at),
            _ => positions
                .get_or_insert_with(|| keys.iter().enumerate().map(|(i, &k)| (k, i)).collect())
                .get(&*result.key)
                .copied(),
        };
        if let Some(position) = position {
            found[position] = Some(result);
        }
    }
    found
}

/// Checks one account's result against the declaration; answers the outcome and, unless the
/// account failed, the entry to cache.
fn settle(
    plugin: &RunningPlugin,
    id: &str,
    result: ResultRef<'_>,
    expires_at: SystemTime,
) -> (Settled, Option<CachedResult>) {
    let name = &plugin.info.name;
    if let Some(error) = result.error {
        let reason = format!("plugin {name}: {error}");
        return ((Outcome::Stale { reason }, Vec::new()), None);
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
    // Checked in place: the common answer, all declared and well typed, is kept as decoded.
    let mut facts = result.facts;
    facts.retain(|fact, value| match plugin.facts.get(fact.as_str()) {
        None => {
            reject(fact.clone(), "not declared in describe()".to_owned());
            false
        }
        Some(t) if !t.accepts(value) => {
            let shown: String = value.to_string().chars().take(40).collect();
            reject(fact.clone(), format!("declared as {t}, got {shown}"));
            false
        }
        Some(_) => true,
    });
    let mut signals = result.signals;
    signals.retain(|s| {
        let declared = plugin.signals.contains(&s.kind);
        if !declared {
            reject(
                format!("signal:{}", s.kind),
                "signal kind not declared in describe()".to_owned(),
            );
        }
        declared
    });
    let (outcome, facts, signals) = match result.no_match {
        // Nothing to hand out: the checked facts move into the cache entry.
        true => (Outcome::NoMatch, facts, signals),
        false => (
            Outcome::Fresh {
                facts: facts.clone(),
                signals: signals.clone(),
            },
            facts,
            signals,
        ),
    };
    let entry = CachedResult {
        facts,
        signals,
        no_match: result.no_match,
        state: result.state,
        expires_at,
    };
    ((outcome, rejected), Some(entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(json: &str) -> ResponseRef<'_> {
        serde_json::from_str(json).unwrap()
    }

    fn keys_found(found: &[Option<ResultRef<'_>>]) -> Vec<Option<String>> {
        found
            .iter()
            .map(|r| r.as_ref().map(|r| format!("{}:{}", r.key, r.state)))
            .collect()
    }

    #[test]
    fn results_are_matched_by_key_in_any_order() {
        let answer = r#"{"results": [{"key": "b", "state": 1}, {"key": "zz", "state": 9},
            {"key": "a", "state": 2}]}"#;
        let found = match_results(results(answer).results, &["a", "b", "c"]);
        assert_eq!(
            keys_found(&found),
            [Some("a:2".to_owned()), Some("b:1".to_owned()), None]
        );
    }

    #[test]
    fn of_two_results_for_one_key_the_last_wins() {
        let answer = r#"{"results": [{"key": "a", "state": 1}, {"key": "a", "state": 2}]}"#;
        let found = match_results(results(answer).results, &["a", "b"]);
        assert_eq!(keys_found(&found), [Some("a:2".to_owned()), None]);
    }

    #[test]
    fn requests_are_encoded_as_enrich_requests() {
        let accounts: Vec<AccountInput> = serde_json::from_value(serde_json::json!([
            {"key": "a\"q.test", "id": "x:1", "name": "Caf\u{e9} \\ \"Q\"", "domain": "a\"q.test",
             "facts": {"crm.industry": "Software", "crm.n": 3}, "related": {"contracts": [{"v": 1}]}},
            {"key": "x:2", "id": "x:2", "name": ""}
        ]))
        .unwrap();
        let batch = [
            Asked {
                account: 1,
                slot: 0,
                state: serde_json::json!({"seen": ["2026-01-01"]}),
            },
            Asked {
                account: 0,
                slot: 1,
                state: Value::Null,
            },
        ];
        let encoded = encode_request("2026-11-24", &accounts, &batch).unwrap();
        let decoded: tierd_plugin_api::EnrichRequest = serde_json::from_slice(&encoded).unwrap();
        let mut expected = vec![accounts[1].clone(), accounts[0].clone()];
        expected[0].state = batch[0].state.clone();
        assert_eq!(
            decoded,
            tierd_plugin_api::EnrichRequest {
                as_of: "2026-11-24".to_owned(),
                accounts: expected,
            }
        );
        assert!(!String::from_utf8(encoded).unwrap().contains("domain\":null"));
        let empty = encode_request("2026-11-24", &accounts, &[]).unwrap();
        assert_eq!(empty, br#"{"as_of":"2026-11-24","accounts":[]}"#);
    }

    #[test]
    fn a_key_with_escapes_is_decoded() {
        let answer = r#"{"results": [{"key": "caf\u00e9.test"}]}"#;
        let found = match_results(results(answer).results, &["café.test"]);
        assert!(found[0].is_some());
    }
}
