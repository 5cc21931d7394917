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
    /// The funnel's headline per tier (tier_1..untiered) after the last committing run.
    funnel: Mutex<Option<[FunnelHeadline; 4]>>,
}

/// A tier's headline figures of the funnel report (`tierd_outcomes::Funnel`), for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct FunnelHeadline {
    deals: u64,
    win_rate: Option<f64>,
    win_rate_lift: Option<f64>,
    velocity: Option<f64>,
}

/// Snapshots of counters owned by the connector and plugin HTTP clients, taken when rendering.
#[derive(Debug, Default, Clone)]
pub struct ExtraGauges {
    /// The connector's kind (`hubspot`) and its HTTP counters; `None` before the pipeline started.
    pub connector: Option<(String, HttpStats)>,
    /// Each plugin's name and HTTP counters.
    pub plugins: Vec<(String, HttpCounters)>,
}

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

    /// Takes the headline figures of the funnel report: deals, win rate, its lift over the
    /// baseline and velocity per tier (the report's own numbers, not recomputed).
    pub fn set_funnel(&self, funnel: &tierd_outcomes::Funnel) {
        let mut heads = [FunnelHeadline::default(); 4];
        for (head, tier) in heads.iter_mut().zip(tierd_core::Tier::ALL) {
            if let Some(r) = funnel.row(tier) {
                *head = FunnelHeadline {
                    deals: r.deals,
                    win_rate: r.win_rate.value,
                    win_rate_lift: r.win_rate_lift.value,
                    velocity: r.velocity,
                };
            }
        }
        *lock(&self.funnel) = Some(heads);
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
        if let Some(heads) = *lock(&self.funnel) {
            let per_tier = |f: fn(&FunnelHeadline) -> Option<String>| -> Vec<(String, String)> {
                TIERS
                    .iter()
                    .zip(&heads)
                    .filter_map(|(t, h)| f(h).map(|v| (labels(&[("tier", t)]), v)))
                    .collect()
            };
            family(
                "tierd_funnel_deals",
                "gauge",
                "Deals created under each tier (the tier held on the deal's creation day), from the funnel report.",
                per_tier(|h| Some(h.deals.to_string())),
            );
            family(
                "tierd_funnel_win_rate",
                "gauge",
                "Won / closed deals per tier, from the funnel report.",
                per_tier(|h| h.win_rate.map(float)),
            );
            family(
                "tierd_funnel_win_rate_lift",
                "gauge",
                "Each tier's win rate over the untiered baseline's, from the funnel report.",
                per_tier(|h| h.win_rate_lift.map(float)),
            );
            family(
                "tierd_funnel_velocity",
                "gauge",
                "Sales velocity per tier (deals x win rate x mean won amount / mean days to close), from the funnel report.",
                per_tier(|h| h.velocity.map(float)),
            );
        }
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
