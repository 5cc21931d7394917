//! The daemon's counters, exposed at `/metrics` through `prometheus-client` (OpenMetrics text).
//!
//! The pipeline increments, the admin API renders. Families are keyed by small label sets (run
//! kind, push outcome, error stage, plugin) and touched once per batch or per run, never per
//! account. Nothing here may hold a secret: label values are kinds, outcomes, stages and plugin
//! names only. Connector and plugin HTTP counters are owned by their clients; `render` takes a
//! snapshot of them in [`ExtraGauges`], which a collector encodes, so this module does not depend
//! on the pipeline.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tierd_connectors::http::HttpStats;
use tierd_plugin_host::HttpCounters;

/// Tier label values in the order of [`Metrics::set_tier_counts`].
const TIERS: [&str; 4] = ["tier_1", "tier_2", "tier_3", "untiered"];

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;
type FloatCounter = Counter<f64, AtomicU64>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Counters of one daemon process.
pub struct Metrics {
    registry: Registry,
    runs: Family<Labels, Counter>,
    run_seconds: Family<Labels, FloatCounter>,
    stage_seconds: Family<Labels, FloatCounter>,
    stage_vendor_seconds: Family<Labels, FloatCounter>,
    tiers: Family<Labels, Gauge>,
    pushes: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    crm_list_members: Family<Labels, Counter>,
    accounts_processed: Counter,
    quarantined: Counter,
    plugin_calls: Family<Labels, Counter>,
    plugin_seconds: Family<Labels, FloatCounter>,
    /// plugin -> (ok calls, failed calls, seconds), for the dashboard's plugins page.
    plugin_totals: Mutex<std::collections::BTreeMap<String, (u64, u64, f64)>>,
    /// The funnel report's headline per tier after the last committing run.
    funnel_deals: Family<Labels, Gauge>,
    funnel_win_rate: Family<Labels, FloatGauge>,
    funnel_win_rate_lift: Family<Labels, FloatGauge>,
    funnel_velocity: Family<Labels, FloatGauge>,
    extra: Arc<Mutex<ExtraGauges>>,
}

/// Snapshots of counters owned by the connector and plugin HTTP clients, taken when rendering.
#[derive(Debug, Default, Clone)]
pub struct ExtraGauges {
    /// The connector's kind (`hubspot`) and its HTTP counters; `None` before the pipeline started.
    pub connector: Option<(String, HttpStats)>,
    /// Each plugin's name and HTTP counters.
    pub plugins: Vec<(String, HttpCounters)>,
    /// The webhook outbox's deliveries per state (`Store::webhook_delivery_counts`, shared by
    /// every instance); `None` when the store could not be read.
    pub webhook_deliveries: Option<tierd_store::DeliveryCounts>,
    /// Rejected pushes held in the store: (the CRM's reason, permanent, records), most first;
    /// `None` when not read.
    pub rejections: Option<Vec<(String, bool, u64)>>,
}

/// Reasons exported as labels at most; the rest are summed under `other`.
const MAX_REJECTION_REASONS: usize = 20;
/// Characters of a reason kept in its label.
const MAX_REASON_CHARS: usize = 120;

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            runs: Family::default(),
            run_seconds: Family::default(),
            stage_seconds: Family::default(),
            stage_vendor_seconds: Family::default(),
            tiers: Family::default(),
            pushes: Family::default(),
            errors: Family::default(),
            crm_list_members: Family::default(),
            accounts_processed: Counter::default(),
            quarantined: Counter::default(),
            plugin_calls: Family::default(),
            plugin_seconds: Family::default(),
            plugin_totals: Mutex::default(),
            funnel_deals: Family::default(),
            funnel_win_rate: Family::default(),
            funnel_win_rate_lift: Family::default(),
            funnel_velocity: Family::default(),
            extra: Arc::default(),
            registry: Registry::default(),
        };
        registry.register(
            "tierd_runs",
            "Runs finished, by kind and final status",
            m.runs.clone(),
        );
        registry.register(
            "tierd_run_duration_seconds",
            "Wall time spent in finished runs, by kind and final status",
            m.run_seconds.clone(),
        );
        registry.register(
            "tierd_run_stage_seconds",
            "Time spent in each stage of finished runs, by run kind, stage and (for enrich) plugin; processing stages add up every worker's time",
            m.stage_seconds.clone(),
        );
        registry.register(
            "tierd_run_stage_vendor_wait_seconds",
            "Of tierd_run_stage_seconds, time spent waiting for the vendor (its answers, rate limits and back-off)",
            m.stage_vendor_seconds.clone(),
        );
        registry.register(
            "tierd_accounts",
            "Accounts per tier after the last run",
            m.tiers.clone(),
        );
        registry.register("tierd_pushes", "Push decisions, by outcome", m.pushes.clone());
        registry.register("tierd_errors", "Errors, by pipeline stage", m.errors.clone());
        registry.register(
            "tierd_crm_list_members",
            "CRM list members changed after runs ([crm_lists]), by tier and change (added, removed, refused)",
            m.crm_list_members.clone(),
        );
        registry.register(
            "tierd_accounts_processed",
            "Accounts scored",
            m.accounts_processed.clone(),
        );
        registry.register(
            "tierd_accounts_quarantined",
            "Records set aside as invalid",
            m.quarantined.clone(),
        );
        registry.register(
            "tierd_plugin_calls",
            "Calls into enrichment plugins, by plugin and result",
            m.plugin_calls.clone(),
        );
        registry.register(
            "tierd_plugin_call_duration_seconds",
            "Time spent in enrichment plugin calls; divide by tierd_plugin_calls_total for the mean latency",
            m.plugin_seconds.clone(),
        );
        registry.register(
            "tierd_funnel_deals",
            "Deals created under each tier (the tier held on the deal's creation day), from the funnel report",
            m.funnel_deals.clone(),
        );
        registry.register(
            "tierd_funnel_win_rate",
            "Won / closed deals per tier, from the funnel report",
            m.funnel_win_rate.clone(),
        );
        registry.register(
            "tierd_funnel_win_rate_lift",
            "Each tier's win rate over the untiered baseline's, from the funnel report",
            m.funnel_win_rate_lift.clone(),
        );
        registry.register(
            "tierd_funnel_velocity",
            "Sales velocity per tier (deals x win rate x mean won amount / mean days to close), from the funnel report",
            m.funnel_velocity.clone(),
        );
        registry.register_collector(Box::new(HttpCollector(m.extra.clone())));
        for t in TIERS {
            m.tiers.get_or_create(&labels(&[("tier", t)])).set(0);
        }
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// A run ended with `status` (`succeeded`, `failed`, `interrupted`) after `seconds`.
    pub fn run_finished(&self, kind: &str, status: &str, seconds: f64) {
        let key = labels(&[("kind", kind), ("status", status)]);
        self.runs.get_or_create(&key).inc();
        self.run_seconds.get_or_create(&key).inc_by(seconds);
    }

    /// Takes the headline figures of the funnel report: deals, win rate, its lift over the
    /// baseline and velocity per tier (the report's own numbers, not recomputed). A figure the
    /// report could not compute (no closed deals) is left out rather than exported as 0.
    pub fn set_funnel(&self, funnel: &tierd_outcomes::Funnel) {
        self.funnel_win_rate.clear();
        self.funnel_win_rate_lift.clear();
        self.funnel_velocity.clear();
        for (t, tier) in TIERS.iter().zip(tierd_core::Tier::ALL) {
            let Some(r) = funnel.row(tier) else { continue };
            let key = labels(&[("tier", t)]);
            self.funnel_deals
                .get_or_create(&key)
                .set(i64::try_from(r.deals).unwrap_or(i64::MAX));
            let float = |family: &Family<Labels, FloatGauge>, v: Option<f64>| {
                if let Some(v) = v.filter(|v| v.is_finite()) {
                    family.get_or_create(&key).set(v);
                }
            };
            float(&self.funnel_win_rate, r.win_rate.value);
            float(&self.funnel_win_rate_lift, r.win_rate_lift.value);
            float(&self.funnel_velocity, r.velocity);
        }
    }

    /// Accounts per tier after a run: tier_1, tier_2, tier_3, untiered.
    pub fn set_tier_counts(&self, counts: [u64; 4]) {
        for (t, n) in TIERS.iter().zip(counts) {
            self.tiers
                .get_or_create(&labels(&[("tier", t)]))
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// `n` push decisions with `outcome`: written, unchanged, skipped_locked, skipped_overridden,
    /// rejected, deferred.
    pub fn pushes(&self, outcome: &str, n: u64) {
        self.pushes
            .get_or_create(&labels(&[("outcome", outcome)]))
            .inc_by(n);
    }

    /// `n` members of the tier's CRM list had `change`: added, removed, refused.
    pub fn crm_list_members(&self, tier: &str, change: &str, n: u64) {
        self.crm_list_members
            .get_or_create(&labels(&[("tier", tier), ("change", change)]))
            .inc_by(n);
    }

    /// One error in `stage`: pull, enrich, score, tier, push, store.
    pub fn error(&self, stage: &str) {
        self.errors.get_or_create(&labels(&[("stage", stage)])).inc();
    }

    /// `n` accounts went through scoring.
    pub fn accounts_processed(&self, n: u64) {
        self.accounts_processed.inc_by(n);
    }

    /// Adds a finished run's time per stage (`RunReport::stages`).
    pub fn stage_times(&self, kind: &str, times: &crate::timings::StageTimes) {
        for (stage, t) in times.stages() {
            let (stage, plugin) = stage.split_once(':').unwrap_or((stage.as_str(), ""));
            let key = labels(&[("kind", kind), ("stage", stage), ("plugin", plugin)]);
            self.stage_seconds.get_or_create(&key).inc_by(t.seconds);
            self.stage_vendor_seconds
                .get_or_create(&key)
                .inc_by(t.vendor_seconds);
        }
    }

    /// `n` records were set aside as invalid.
    pub fn quarantined(&self, n: u64) {
        self.quarantined.inc_by(n);
    }

    /// One call into `plugin` took `seconds` and succeeded or not.
    pub fn plugin_call(&self, plugin: &str, seconds: f64, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.plugin_calls
            .get_or_create(&labels(&[("plugin", plugin), ("result", result)]))
            .inc();
        self.plugin_seconds
            .get_or_create(&labels(&[("plugin", plugin)]))
            .inc_by(seconds);
        let mut totals = self.plugin_totals.lock().unwrap_or_else(|p| p.into_inner());
        let entry = totals.entry(plugin.to_owned()).or_default();
        if ok {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
        entry.2 += seconds;
    }

    /// Each plugin's calls so far: (plugin, succeeded, failed, seconds), by name.
    pub fn plugin_calls(&self) -> Vec<(String, u64, u64, f64)> {
        self.plugin_totals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(name, (ok, failed, secs))| (name.clone(), *ok, *failed, *secs))
            .collect()
    }

    /// Accounts scored so far (for reports and tests).
    pub fn accounts_processed_total(&self) -> u64 {
        self.accounts_processed.get()
    }

    /// The OpenMetrics text exposition ([`CONTENT_TYPE`]) of every counter and of `extra`.
    pub fn render(&self, extra: &ExtraGauges) -> String {
        *self.extra.lock().unwrap_or_else(|p| p.into_inner()) = extra.clone();
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Encodes the connector's and plugins' HTTP counters from the last snapshot `render` was given.
#[derive(Debug)]
struct HttpCollector(Arc<Mutex<ExtraGauges>>);

/// One family of constant samples: `(labels, value)` per connector or plugin.
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: Vec<(Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (l, value) in samples {
        value.encode(family.encode_family(&l)?)?;
    }
    Ok(())
}

impl Collector for HttpCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let extra = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let connector: Vec<(Labels, HttpStats)> = extra
            .connector
            .iter()
            .map(|(c, s)| (labels(&[("connector", c)]), *s))
            .collect();
        let counter = |f: fn(&HttpStats) -> u64| -> Vec<(Labels, ConstCounter)> {
            connector
                .iter()
                .map(|(l, s)| (l.clone(), ConstCounter::new(f(s))))
                .collect()
        };
        let gauge = |f: fn(&HttpStats) -> u64| -> Vec<(Labels, ConstGauge)> {
            connector
                .iter()
                .map(|(l, s)| {
                    (
                        l.clone(),
                        ConstGauge::new(i64::try_from(f(s)).unwrap_or(i64::MAX)),
                    )
                })
                .collect()
        };
        let e = &mut encoder;
        family(
            e,
            "tierd_connector_http_requests",
            "HTTP requests sent to the CRM, retries included",
            MetricType::Counter,
            counter(|s| s.requests),
        )?;
        family(
            e,
            "tierd_connector_http_retries",
            "HTTP requests to the CRM that were retries",
            MetricType::Counter,
            counter(|s| s.retries),
        )?;
        family(
            e,
            "tierd_connector_http_rate_limited",
            "429 answers from the CRM",
            MetricType::Counter,
            counter(|s| s.rate_limited),
        )?;
        family(
            e,
            "tierd_connector_http_server_errors",
            "5xx answers from the CRM",
            MetricType::Counter,
            counter(|s| s.server_errors),
        )?;
        family(
            e,
            "tierd_connector_http_transport_errors",
            "Timeouts, refused and dropped connections to the CRM",
            MetricType::Counter,
            counter(|s| s.transport_errors),
        )?;
        family(
            e,
            "tierd_connector_rate_limit_wait_seconds",
            "Time spent waiting for the CRM rate limiter and in back-off",
            MetricType::Counter,
            connector
                .iter()
                .map(|(l, s)| (l.clone(), ConstCounter::new(s.waited.as_secs_f64())))
                .collect(),
        )?;
        family(
            e,
            "tierd_connector_http_in_flight_seconds",
            "Time requests to the CRM were outstanding, from sending to the whole answer",
            MetricType::Counter,
            connector
                .iter()
                .map(|(l, s)| (l.clone(), ConstCounter::new(s.in_flight.as_secs_f64())))
                .collect(),
        )?;
        family(
            e,
            "tierd_connector_api_calls_used",
            "API calls used today as the CRM last reported them (0 when unknown)",
            MetricType::Gauge,
            gauge(|s| s.api_used),
        )?;
        family(
            e,
            "tierd_connector_api_calls_limit",
            "The CRM's daily API call limit as last reported (0 when unknown)",
            MetricType::Gauge,
            gauge(|s| s.api_max),
        )?;

        let plugins = |f: fn(&HttpCounters) -> u64| -> Vec<(Labels, ConstCounter)> {
            extra
                .plugins
                .iter()
                .map(|(p, c)| (labels(&[("plugin", p)]), ConstCounter::new(f(c))))
                .collect()
        };
        family(
            e,
            "tierd_plugin_http_requests",
            "HTTP requests sent by enrichment plugins",
            MetricType::Counter,
            plugins(|c| c.requests),
        )?;
        family(
            e,
            "tierd_plugin_http_errors",
            "Plugin HTTP requests without a response or with a 5xx",
            MetricType::Counter,
            plugins(|c| c.errors),
        )?;
        family(
            e,
            "tierd_plugin_http_refused",
            "Plugin HTTP requests refused by the host allowlist",
            MetricType::Counter,
            plugins(|c| c.refused),
        )?;
        family(
            e,
            "tierd_plugin_http_latency_seconds",
            "Sum of plugin HTTP request latencies",
            MetricType::Counter,
            extra
                .plugins
                .iter()
                .map(|(p, c)| {
                    (
                        labels(&[("plugin", p)]),
                        ConstCounter::new(c.latency_micros as f64 / 1e6),
                    )
                })
                .collect(),
        )?;
        let deliveries: Vec<(Labels, ConstGauge)> = extra
            .webhook_deliveries
            .iter()
            .flat_map(|c| {
                [
                    ("pending", c.pending),
                    ("delivering", c.delivering),
                    ("delivered", c.delivered),
                    ("failed", c.failed),
                ]
            })
            .map(|(state, n)| {
                (
                    labels(&[("state", state)]),
                    ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX)),
                )
            })
            .collect();
        if let Some(rejections) = &extra.rejections {
            let mut samples: Vec<(Labels, ConstGauge)> = Vec::new();
            let mut other = [0u64; 2];
            for (i, (reason, permanent, n)) in rejections.iter().enumerate() {
                let state = if *permanent { "permanent" } else { "pending" };
                if i < MAX_REJECTION_REASONS {
                    let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
                    let n = i64::try_from(*n).unwrap_or(i64::MAX);
                    samples.push((
                        labels(&[("state", state), ("reason", &reason)]),
                        ConstGauge::new(n),
                    ));
                } else {
                    other[usize::from(*permanent)] += n;
                }
            }
            for (state, n) in [("pending", other[0]), ("permanent", other[1])] {
                if n > 0 {
                    let n = i64::try_from(n).unwrap_or(i64::MAX);
                    samples.push((
                        labels(&[("state", state), ("reason", "other")]),
                        ConstGauge::new(n),
                    ));
                }
            }
            family(
                e,
                "tierd_rejected_pushes",
                "Records the CRM rejected, held in the store now, by state and the CRM's reason",
                MetricType::Gauge,
                samples,
            )?;
        }
        family(
            e,
            "tierd_webhook_deliveries",
            "Webhook deliveries in the outbox, by state (delivered and failed ones until purged)",
            MetricType::Gauge,
            deliveries,
        )?;
        Ok(())
    }
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
        let mut times = crate::timings::StageTimes::default();
        times.add(
            crate::timings::Stage::Push,
            std::time::Duration::from_millis(2500),
            std::time::Duration::from_millis(2000),
        );
        times.add_plugin(
            "technographic",
            std::time::Duration::from_millis(750),
            std::time::Duration::from_millis(500),
        );
        m.stage_times("full", &times);
        m.stage_times("full", &times);
        let extra = ExtraGauges {
            connector: Some((
                "hubspot".into(),
                HttpStats {
                    requests: 9,
                    rate_limited: 4,
                    waited: std::time::Duration::from_millis(1500),
                    in_flight: std::time::Duration::from_millis(250),
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
                    waiting_micros: 1_000_000,
                },
            )],
            webhook_deliveries: Some(tierd_store::DeliveryCounts {
                pending: 3,
                ..Default::default()
            }),
            rejections: Some(vec![
                ("INVALID_OPTION: \"tier_1\"".into(), true, 3),
                ("rate limited".into(), false, 1),
            ]),
        };
        let text = m.render(&extra);
        for line in [
            "tierd_runs_total{kind=\"full\",status=\"succeeded\"} 2",
            "tierd_run_duration_seconds_total{kind=\"full\",status=\"succeeded\"} 3.0",
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
            "tierd_plugin_call_duration_seconds_total{plugin=\"firmographic\"} 0.5",
            "tierd_connector_http_rate_limited_total{connector=\"hubspot\"} 4",
            "tierd_connector_rate_limit_wait_seconds_total{connector=\"hubspot\"} 1.5",
            "tierd_plugin_http_latency_seconds_total{plugin=\"technographic\"} 2.0",
            "tierd_webhook_deliveries{state=\"pending\"} 3",
            "tierd_connector_http_in_flight_seconds_total{connector=\"hubspot\"} 0.25",
            "tierd_run_stage_seconds_total{kind=\"full\",stage=\"push\",plugin=\"\"} 5.0",
            "tierd_run_stage_vendor_wait_seconds_total{kind=\"full\",stage=\"push\",plugin=\"\"} 4.0",
            "tierd_run_stage_seconds_total{kind=\"full\",stage=\"enrich\",plugin=\"technographic\"} 1.5",
            "tierd_run_stage_vendor_wait_seconds_total{kind=\"full\",stage=\"enrich\",plugin=\"technographic\"} 1.0",
        ] {
            assert!(text.contains(line), "missing `{line}` in\n{text}");
        }
        // Every sample belongs to a declared family, and the exposition is terminated.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            let family = name.strip_suffix("_total").unwrap_or(name);
            assert!(text.contains(&format!("# TYPE {family} ")), "undeclared {name}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(m.accounts_processed_total(), 100);
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::default();
        m.error("a\"b\\c\nd");
        let text = m.render(&ExtraGauges::default());
        assert!(
            text.contains(r#"tierd_errors_total{stage="a\"b\\c\nd"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn webhook_deliveries_render_one_gauge_per_state() {
        let counts = tierd_store::DeliveryCounts {
            pending: 3,
            delivering: 1,
            delivered: 40,
            failed: 2,
        };
        let extra = ExtraGauges {
            webhook_deliveries: Some(counts),
            ..ExtraGauges::default()
        };
        let text = Metrics::default().render(&extra);
        assert!(text.contains("# TYPE tierd_webhook_deliveries gauge\n"), "{text}");
        for line in [
            "tierd_webhook_deliveries{state=\"pending\"} 3\n",
            "tierd_webhook_deliveries{state=\"delivering\"} 1\n",
            "tierd_webhook_deliveries{state=\"delivered\"} 40\n",
            "tierd_webhook_deliveries{state=\"failed\"} 2\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
