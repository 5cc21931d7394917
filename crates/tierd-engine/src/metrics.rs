//! The daemon's counters and their Prometheus text rendering for `/metrics`.
//!
//! The pipeline increments, the admin API renders. Counters that vary by label (run kind, push
//! outcome, error stage, plugin) sit in small mutex-guarded maps: they are touched once per batch or
//! per run, never per account, so a lock costs nothing measurable and keeps the code plain.
//! Nothing here may hold a secret: label values are kinds, outcomes, stages and plugin names only.
//! Connector and plugin HTTP counters are owned by their clients; `render` takes a snapshot of them
//! in [`ExtraGauges`] so this module does not depend on the pipeline.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tierd_connectors::http::HttpStats;
use tierd_plugin_host::HttpCounters;

/// Tier label values in the order of [`Metrics::set_tier_counts`].
const TIERS: [&str; 4] = ["tier_1", "tier_2", "tier_3", "untiered"];

/// Counters of one daemon process.
#[derive(Default)]
pub struct Metrics {
    /// (kind, status) -> (runs, seconds).
    runs: Mutex<BTreeMap<(String, String), (u64, f64)>>,
    tiers: [AtomicU64; 4],
    pushes: Mutex<BTreeMap<String, u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
    accounts_processed: AtomicU64,
    quarantined: AtomicU64,
    /// plugin -> (ok calls, failed calls, seconds).
    plugin_calls: Mutex<BTreeMap<String, (u64, u64, f64)>>,
}

/// Snapshots of counters owned by the connector and plugin HTTP clients, taken when rendering.
#[derive(Debug, Default, Clone)]
pub struct ExtraGauges {
    /// The connector's kind (`hubspot`) and its HTTP counters; `None` before the pipeline started.
    pub connector: Option<(String, HttpStats)>,
    /// Each plugin's name and HTTP counters.
    pub plugins: Vec<(String, HttpCounters)>,
    /// Rejected pushes held in the store: (the CRM's reason, permanent, records), most first;
    /// `None` when not read.
    pub rejections: Option<Vec<(String, bool, u64)>>,
}

/// Reasons exported as labels at most; the rest are summed under `other`.
const MAX_REJECTION_REASONS: usize = 20;
/// Characters of a reason kept in its label.
const MAX_REASON_CHARS: usize = 120;

/// Locks a counter map; a panic elsewhere while holding it leaves plain numbers, still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Metrics {
    /// A run ended with `status` (`succeeded`, `failed`, `interrupted`) after `seconds`.
    pub fn run_finished(&self, kind: &str, status: &str, seconds: f64) {
        let mut runs = lock(&self.runs);
        let entry = runs.entry((kind.to_owned(), status.to_owned())).or_default();
        entry.0 += 1;
        entry.1 += seconds;
    }

    /// Accounts per tier after a run: tier_1, tier_2, tier_3, untiered.
    pub fn set_tier_counts(&self, counts: [u64; 4]) {
        for (gauge, n) in self.tiers.iter().zip(counts) {
            gauge.store(n, Ordering::Relaxed);
        }
    }

    /// `n` push decisions with `outcome`: written, unchanged, skipped_locked, skipped_overridden,
    /// rejected, deferred.
    pub fn pushes(&self, outcome: &str, n: u64) {
        *lock(&self.pushes).entry(outcome.to_owned()).or_default() += n;
    }

    /// One error in `stage`: pull, enrich, score, tier, push, store.
    pub fn error(&self, stage: &str) {
        *lock(&self.errors).entry(stage.to_owned()).or_default() += 1;
    }

    /// `n` accounts went through scoring.
    pub fn accounts_processed(&self, n: u64) {
        self.accounts_processed.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` records were set aside as invalid.
    pub fn quarantined(&self, n: u64) {
        self.quarantined.fetch_add(n, Ordering::Relaxed);
    }

    /// One call into `plugin` took `seconds` and succeeded or not.
    pub fn plugin_call(&self, plugin: &str, seconds: f64, ok: bool) {
        let mut calls = lock(&self.plugin_calls);
        let entry = calls.entry(plugin.to_owned()).or_default();
        match ok {
            true => entry.0 += 1,
            false => entry.1 += 1,
        }
        entry.2 += seconds;
    }

    /// Each plugin's calls so far: (plugin, succeeded, failed, seconds), by name.
    pub fn plugin_calls(&self) -> Vec<(String, u64, u64, f64)> {
        lock(&self.plugin_calls)
            .iter()
            .map(|(name, (ok, failed, secs))| (name.clone(), *ok, *failed, *secs))
            .collect()
    }

    /// The Prometheus text exposition (version 0.0.4) of every counter and of `extra`.
    pub fn render(&self, extra: &ExtraGauges) -> String {
        let mut out = String::with_capacity(4096);
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };

        let runs = lock(&self.runs).clone();
        family(
            "tierd_runs_total",
            "counter",
            "Runs finished, by kind and final status.",
            runs.iter()
                .map(|((k, s), (n, _))| (labels(&[("kind", k), ("status", s)]), n.to_string()))
                .collect(),
        );
        family(
            "tierd_run_duration_seconds_total",
            "counter",
            "Wall time spent in finished runs, by kind and final status.",
            runs.iter()
                .map(|((k, s), (_, secs))| (labels(&[("kind", k), ("status", s)]), float(*secs)))
                .collect(),
        );
        family(
            "tierd_accounts",
            "gauge",
            "Accounts per tier after the last run.",
            TIERS
                .iter()
                .zip(&self.tiers)
                .map(|(t, n)| (labels(&[("tier", t)]), n.load(Ordering::Relaxed).to_string()))
                .collect(),
        );
        if let Some(rejections) = &extra.rejections {
            let mut samples: Vec<(String, String)> = Vec::new();
            let mut other = [0u64; 2];
            for (i, (reason, permanent, n)) in rejections.iter().enumerate() {
                let state = if *permanent { "permanent" } else { "pending" };
                if i < MAX_REJECTION_REASONS {
                    let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
                    samples.push((labels(&[("state", state), ("reason", &reason)]), n.to_string()));
                } else {
                    other[usize::from(*permanent)] += n;
                }
            }
            for (state, n) in [("pending", other[0]), ("permanent", other[1])] {
                if n > 0 {
                    samples.push((labels(&[("state", state), ("reason", "other")]), n.to_string()));
                }
            }
            family(
                "tierd_rejected_pushes",
                "gauge",
                "Records the CRM rejected, held in the store now, by state and the CRM's reason.",
                samples,
            );
        }
        family(
            "tierd_pushes_total",
            "counter",
            "Push decisions, by outcome.",
            lock(&self.pushes)
                .iter()
                .map(|(o, n)| (labels(&[("outcome", o)]), n.to_string()))
                .collect(),
        );
        family(
            "tierd_errors_total",
            "counter",
            "Errors, by pipeline stage.",
            lock(&self.errors)
                .iter()
                .map(|(s, n)| (labels(&[("stage", s)]), n.to_string()))
                .collect(),
        );
        family(
            "tierd_accounts_processed_total",
            "counter",
            "Accounts scored.",
            vec![(
                String::new(),
                self.accounts_processed.load(Ordering::Relaxed).to_string(),
            )],
        );
        family(
            "tierd_accounts_quarantined_total",
            "counter",
            "Records set aside as invalid.",
            vec![(
                String::new(),
                self.quarantined.load(Ordering::Relaxed).to_string(),
            )],
        );
        let calls = lock(&self.plugin_calls).clone();
        family(
            "tierd_plugin_calls_total",
            "counter",
            "Calls into enrichment plugins, by plugin and result.",
            calls
                .iter()
                .flat_map(|(p, (ok, failed, _))| {
                    [
                        (labels(&[("plugin", p), ("result", "ok")]), ok.to_string()),
                        (labels(&[("plugin", p), ("result", "error")]), failed.to_string()),
                    ]
                })
                .collect(),
        );
        family(
            "tierd_plugin_call_duration_seconds_total",
            "counter",
            "Time spent in enrichment plugin calls; divide by tierd_plugin_calls_total for the mean latency.",
            calls
                .iter()
                .map(|(p, (_, _, secs))| (labels(&[("plugin", p)]), float(*secs)))
                .collect(),
        );

        let connector: Vec<(String, HttpStats)> = extra.connector.iter().cloned().collect();
        let per_connector = |f: fn(&HttpStats) -> String| -> Vec<(String, String)> {
            connector
                .iter()
                .map(|(c, s)| (labels(&[("connector", c)]), f(s)))
                .collect()
        };
        family(
            "tierd_connector_http_requests_total",
            "counter",
            "HTTP requests sent to the CRM, retries included.",
            per_connector(|s| s.requests.to_string()),
        );
        family(
            "tierd_connector_http_retries_total",
            "counter",
            "HTTP requests to the CRM that were retries.",
            per_connector(|s| s.retries.to_string()),
        );
        family(
            "tierd_connector_http_rate_limited_total",
            "counter",
            "429 answers from the CRM.",
            per_connector(|s| s.rate_limited.to_string()),
        );
        family(
            "tierd_connector_http_server_errors_total",
            "counter",
            "5xx answers from the CRM.",
            per_connector(|s| s.server_errors.to_string()),
        );
        family(
            "tierd_connector_http_transport_errors_total",
            "counter",
            "Timeouts, refused and dropped connections to the CRM.",
            per_connector(|s| s.transport_errors.to_string()),
        );
        family(
            "tierd_connector_rate_limit_wait_seconds_total",
            "counter",
            "Time spent waiting for the CRM rate limiter and in back-off.",
            per_connector(|s| float(s.waited.as_secs_f64())),
        );
        family(
            "tierd_connector_api_calls_used",
            "gauge",
            "API calls used today as the CRM last reported them (0 when unknown).",
            per_connector(|s| s.api_used.to_string()),
        );
        family(
            "tierd_connector_api_calls_limit",
            "gauge",
            "The CRM's daily API call limit as last reported (0 when unknown).",
            per_connector(|s| s.api_max.to_string()),
        );

        let per_plugin = |f: fn(&HttpCounters) -> String| -> Vec<(String, String)> {
            extra
                .plugins
                .iter()
                .map(|(p, c)| (labels(&[("plugin", p)]), f(c)))
                .collect()
        };
        family(
            "tierd_plugin_http_requests_total",
            "counter",
            "HTTP requests sent by enrichment plugins.",
            per_plugin(|c| c.requests.to_string()),
        );
        family(
            "tierd_plugin_http_errors_total",
            "counter",
            "Plugin HTTP requests without a response or with a 5xx.",
            per_plugin(|c| c.errors.to_string()),
        );
        family(
            "tierd_plugin_http_refused_total",
            "counter",
            "Plugin HTTP requests refused by the host allowlist.",
            per_plugin(|c| c.refused.to_string()),
        );
        family(
            "tierd_plugin_http_latency_seconds_total",
            "counter",
            "Sum of plugin HTTP request latencies.",
            per_plugin(|c| float(c.latency_micros as f64 / 1e6)),
        );
        out
    }
}

/// `{a="x",b="y"}` with values escaped as the exposition format requires.
fn labels(pairs: &[(&str, &str)]) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s.push('}');
    s
}

fn float(v: f64) -> String {
    format!("{v:.6}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_every_counter_with_its_labels() {
        let m = Metrics::default();
        m.run_finished("full", "succeeded", 2.5);
        m.run_finished("full", "succeeded", 0.5);
        m.set_tier_counts([1, 2, 3, 4]);
        m.pushes("written", 7);
        m.pushes("written", 3);
        m.error("push");
        m.accounts_processed(100);
        m.quarantined(2);
        m.plugin_call("firmographic", 0.25, true);
        m.plugin_call("firmographic", 0.25, false);
        let extra = ExtraGauges {
            connector: Some((
                "hubspot".into(),
                HttpStats {
                    requests: 9,
                    rate_limited: 4,
                    waited: std::time::Duration::from_millis(1500),
                    ..HttpStats::default()
                },
            )),
            plugins: vec![(
                "technographic".into(),
                HttpCounters {
                    requests: 5,
                    errors: 1,
                    refused: 0,
                    latency_micros: 2_000_000,
                },
            )],
            rejections: Some(vec![
                ("INVALID_OPTION: \"tier_1\"".into(), true, 3),
                ("rate limited".into(), false, 1),
            ]),
        };
        let text = m.render(&extra);
        for line in [
            "tierd_runs_total{kind=\"full\",status=\"succeeded\"} 2",
            "tierd_run_duration_seconds_total{kind=\"full\",status=\"succeeded\"} 3.000000",
            "tierd_accounts{tier=\"tier_1\"} 1",
            "tierd_accounts{tier=\"untiered\"} 4",
            "tierd_pushes_total{outcome=\"written\"} 10",
            "tierd_errors_total{stage=\"push\"} 1",
            "tierd_accounts_processed_total 100",
            "tierd_rejected_pushes{state=\"permanent\",reason=\"INVALID_OPTION: \\\"tier_1\\\"\"} 3",
            "tierd_rejected_pushes{state=\"pending\",reason=\"rate limited\"} 1",
            "tierd_accounts_quarantined_total 2",
            "tierd_plugin_calls_total{plugin=\"firmographic\",result=\"ok\"} 1",
            "tierd_plugin_calls_total{plugin=\"firmographic\",result=\"error\"} 1",
            "tierd_plugin_call_duration_seconds_total{plugin=\"firmographic\"} 0.500000",
            "tierd_connector_http_rate_limited_total{connector=\"hubspot\"} 4",
            "tierd_connector_rate_limit_wait_seconds_total{connector=\"hubspot\"} 1.500000",
            "tierd_plugin_http_latency_seconds_total{plugin=\"technographic\"} 2.000000",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        // Every sample belongs to a declared family.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            assert!(text.contains(&format!("# TYPE {name} ")), "undeclared {name}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            labels(&[("plugin", "a\"b\\c\nd")]),
            "{plugin=\"a\\\"b\\\\c\\nd\"}"
        );
    }
}
