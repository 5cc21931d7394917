//! The engine's sections: `[store]`, `[connector]` and `[pipeline]`.
//!
//! `[connector]` is `type = "hubspot" | "salesforce" | "file"` plus that connector's own keys,
//! handed as they are to `tierd_connectors::registry::build`, except that a key ending in `_env`
//! names an environment variable holding the value of the key without the suffix
//! (`token_env = "HUBSPOT_TOKEN"` sets `token`): secrets stay out of config files. Variables are
//! read when the pipeline starts, so `tierd config validate` works without them.

use serde::Deserialize;
use serde_json::Value;

/// `[store]`: where tierd keeps its state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `sqlite://PATH` (relative to the working directory) or `postgres://...`.
    #[serde(default = "default_store_url")]
    pub url: String,
}

fn default_store_url() -> String {
    tierd_store::DEFAULT_URL.to_string()
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            url: default_store_url(),
        }
    }
}

/// `[connector]`: the CRM (or file) accounts come from and tiers go to.
#[derive(Debug, Clone)]
pub struct ConnectorSettings {
    /// The registry name.
    pub kind: String,
    /// The rest of the table, `*_env` keys unresolved.
    pub table: serde_json::Map<String, Value>,
}

impl ConnectorSettings {
    /// Reads the section's table; problems as (key path, message).
    pub fn from_table(mut table: serde_json::Map<String, Value>) -> Result<Self, (String, String)> {
        let kind = match table.remove("type") {
            Some(Value::String(k)) => k,
            Some(other) => {
                return Err((
                    "connector.type".into(),
                    format!("must be a string, found {other}"),
                ));
            }
            None => {
                return Err((
                    "connector.type".into(),
                    "missing: set type = \"hubspot\", \"salesforce\" or \"file\"".into(),
                ));
            }
        };
        // Every key as `sync` will read it; a secret named by `*_env` is read only at start, so
        // a placeholder stands in for it here.
        let mut checked = serde_json::Map::new();
        for (key, value) in &table {
            match (key.strip_suffix("_env"), value) {
                (Some(target), Value::String(var)) => {
                    checked.insert(target.to_string(), Value::String(format!("(from ${var})")));
                }
                (Some(_), other) => {
                    return Err((
                        format!("connector.{key}"),
                        format!("must name an environment variable, found {other}"),
                    ));
                }
                (None, _) => {
                    checked.insert(key.clone(), value.clone());
                }
            }
        }
        match tierd_connectors::registry::validate(&kind, Value::Object(checked)) {
            Ok(()) => {}
            Err(tierd_connectors::connector::ConnectorError::Config { key, message }) => {
                let key = match table.contains_key(&format!("{key}_env")) {
                    true => format!("{key}_env"),
                    false => key,
                };
                return Err((format!("connector.{key}"), message));
            }
            Err(other) => return Err(("connector".into(), other.to_string())),
        }
        Ok(ConnectorSettings { kind, table })
    }

    /// The connector's config with every `*_env` key replaced by its variable's value.
    pub fn resolved(&self, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Value> {
        let mut out = serde_json::Map::new();
        for (key, value) in &self.table {
            match key.strip_suffix("_env") {
                Some(target) => {
                    let Value::String(var) = value else {
                        anyhow::bail!("connector.{key}: must name an environment variable, found {value}");
                    };
                    let Some(secret) = env(var).filter(|v| !v.is_empty()) else {
                        anyhow::bail!(
                            "connector.{key}: the environment variable {var} is not set; export it before starting tierd"
                        );
                    };
                    out.insert(target.to_string(), Value::String(secret));
                }
                None => {
                    out.insert(key.clone(), value.clone());
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// `[pipeline]`: how runs stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineSettings {
    /// Accounts per work item (enrich, score and commit as one unit).
    pub batch_size: usize,
    /// Pulled pages buffered between the pull and the work queue: bounds memory.
    pub channel_pages: usize,
    /// Work items this instance processes at once.
    pub workers: usize,
    /// Tier updates per push call (the CRM's batch limit: HubSpot and Salesforce take 100 and 200).
    pub push_batch_size: usize,
    /// Push calls per push batch: a batch's calls go out one after another, then their outcomes
    /// commit in one store transaction. Fewer, larger transactions (and reads of the accounts'
    /// state) are most of what a full run's push costs the store; a crash between a call and its
    /// batch's commit is closed by the adoption rule (see tierd-engine).
    pub push_calls_per_commit: usize,
    /// Push batches in flight at once: one is sent while another's outcome commits. Each batch
    /// still commits its own outcome before it counts as pushed, so a crash re-sends at most
    /// this many batches (closed by the adoption rule, see tierd-engine).
    pub push_concurrency: usize,
    /// Scores are compared rounded to this step when deciding whether to push.
    pub score_step: f32,
    /// A work item claimed longer than this by an instance is given to another.
    pub stale_work_secs: u64,
    /// Score as of this date (`YYYY-MM-DD`) instead of today: reproducible demos and tests.
    pub as_of: Option<String>,
    /// Movements listed in a run's report.
    pub top_movements: usize,
    /// How often an idle instance looks for work items of a running run, in milliseconds.
    pub idle_poll_ms: u64,
    /// A tier field found empty in the CRM where tierd had pushed a tier is a person's choice
    /// (reported as changed by a person) instead of a loss to repair (written again).
    pub respect_cleared: bool,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            batch_size: 500,
            channel_pages: 4,
            workers: 2,
            push_batch_size: 100,
            push_calls_per_commit: 10,
            push_concurrency: 2,
            score_step: 0.1,
            stale_work_secs: 300,
            as_of: None,
            top_movements: 20,
            idle_poll_ms: 500,
            respect_cleared: false,
        }
    }
}

impl PipelineSettings {
    /// Problems as (key, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (key, v) in [
            ("batch_size", self.batch_size),
            ("channel_pages", self.channel_pages),
            ("workers", self.workers),
            ("push_batch_size", self.push_batch_size),
            ("push_calls_per_commit", self.push_calls_per_commit),
            ("push_concurrency", self.push_concurrency),
            ("idle_poll_ms", self.idle_poll_ms as usize),
        ] {
            if v == 0 {
                out.push((format!("pipeline.{key}"), "must be at least 1".to_string()));
            }
        }
        if let Err(e) = tierd_core::ScoreStep::new(f64::from(self.score_step)) {
            out.push(("pipeline.score_step".into(), e.to_string()));
        }
        if let Some(d) = &self.as_of {
            if d.parse::<tierd_core::Date>().is_err() {
                out.push((
                    "pipeline.as_of".into(),
                    format!("'{d}' is not a date (YYYY-MM-DD)"),
                ));
            }
        }
        out
    }
}

/// Reads the three sections from the loaded configuration, recording problems with key paths.
pub(crate) fn read_sections(
    cfg: &config::Config,
    errors: &mut tierd_core::ConfigErrors,
) -> (StoreSettings, Option<ConnectorSettings>, PipelineSettings) {
    let store: StoreSettings = crate::section(cfg, errors, "store").unwrap_or_default();
    let pipeline: PipelineSettings = crate::section(cfg, errors, "pipeline").unwrap_or_default();
    for (key, problem) in pipeline.problems() {
        errors.push(key, problem);
    }
    let connector =
        crate::section::<serde_json::Map<String, Value>>(cfg, errors, "connector").and_then(|table| {
            ConnectorSettings::from_table(table)
                .map_err(|(key, problem)| errors.push(key, problem))
                .ok()
        });
    (store, connector, pipeline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_keys_name_the_variable_holding_the_secret() {
        let Value::Object(table) =
            json!({"type": "hubspot", "base_url": "http://x", "token_env": "HS_TOKEN"})
        else {
            unreachable!()
        };
        let c = ConnectorSettings::from_table(table).expect("valid");
        assert_eq!(c.kind, "hubspot");
        let resolved = c
            .resolved(|v| (v == "HS_TOKEN").then(|| "s3cret".to_string()))
            .expect("resolved");
        assert_eq!(resolved, json!({"base_url": "http://x", "token": "s3cret"}));
        let err = c.resolved(|_| None).expect_err("unset").to_string();
        assert!(err.contains("HS_TOKEN is not set"), "{err}");
        assert!(!err.contains("s3cret"));
    }

    #[test]
    fn unknown_connectors_and_missing_types_are_named() {
        let Value::Object(t) = json!({"type": "pipedrive"}) else {
            unreachable!()
        };
        let (key, msg) = ConnectorSettings::from_table(t).expect_err("unknown");
        assert_eq!(key, "connector.type");
        assert!(msg.contains("known: file, hubspot, salesforce"), "{msg}");
        assert!(ConnectorSettings::from_table(serde_json::Map::new()).is_err());
        for (section, want) in [
            (
                json!({"type": "hubspot", "token_env": "T", "tokn": "x"}),
                "connector.tokn",
            ),
            (
                json!({"type": "hubspot", "token_env": "T", "search_rate_per_sec": -5}),
                "connector.search_rate_per_sec",
            ),
            (
                json!({"type": "hubspot", "token_env": "T", "base_url": 4_294_967_296u64}),
                "connector.base_url",
            ),
            (
                json!({"type": "hubspot", "token_env": "T", "rate_limit": f64::NAN}),
                "connector.rate_limit",
            ),
            (json!({"type": "hubspot"}), "connector.token"),
            (json!({"type": "hubspot", "token_env": 5}), "connector.token_env"),
        ] {
            let Value::Object(t) = section.clone() else {
                unreachable!()
            };
            let (key, msg) = ConnectorSettings::from_table(t).expect_err("invalid");
            assert_eq!(key, want, "{section}: {msg}");
        }
        let bad = PipelineSettings {
            workers: 0,
            ..PipelineSettings::default()
        };
        assert_eq!(bad.problems()[0].0, "pipeline.workers");
        let bad = PipelineSettings {
            push_concurrency: 0,
            ..PipelineSettings::default()
        };
        assert_eq!(bad.problems()[0].0, "pipeline.push_concurrency");
    }
}
