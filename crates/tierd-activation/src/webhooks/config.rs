//! The `[[webhooks]]` section: endpoints, their secrets and filters, checked with errors that
//! name the key.
//!
//! ```toml
//! [[webhooks]]
//! name = "sales-alerts"
//! url = "https://hooks.example.com/tierd"
//! secret_env = "TIERD_WEBHOOK_SALES_SECRET"   # holds whsec_<base64 of 24..64 random bytes>
//! events = ["tier.changed", "renewal.due"]
//! tiers = ["tier_1", "tier_2"]                # optional: accounts entering, leaving or in these tiers
//! plugins = ["contract-renewals"]             # optional: signals seen by these plugins
//! technologies = ["Snowflake"]                # optional: technology events about these
//! renewal_within_days = 90                    # optional: renewal.due only this close
//! format = "standard"                         # or "slack": {"text": ...} for incoming webhooks
//! timeout_secs = 15
//! ```

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use tierd_core::{ConfigErrors, Tier};
use tierd_store::{NewEvent, Timestamp};

use super::event::{new_event_id, Event, EventType};

/// One `[[webhooks]]` entry, as written. `Debug` shows its name only: the URL may be a credential.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    name: String,
    url: String,
    secret_env: String,
    events: Vec<String>,
    #[serde(default)]
    tiers: Vec<String>,
    #[serde(default)]
    plugins: Vec<String>,
    #[serde(default)]
    technologies: Vec<String>,
    #[serde(default)]
    renewal_within_days: Option<u32>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    timeout_secs: Option<u64>,
}

impl fmt::Debug for RawWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawWebhook")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl RawWebhook {
    /// Its name, as written.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A signing secret: the bytes behind `whsec_...`. Never printed: `Debug` shows `***`, and there is
/// no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// The spec's bounds on a symmetric secret's length, in bytes.
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

impl WebhookSecret {
    /// Parses `whsec_<base64>`. The error says what is wrong without repeating the value.
    pub fn parse(text: &str) -> Result<WebhookSecret, String> {
        let Some(encoded) = text.trim().strip_prefix("whsec_") else {
            return Err("the secret must look like whsec_<base64> (make one with: \
                        echo whsec_$(openssl rand -base64 32))"
                .to_string());
        };
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| "the secret after whsec_ is not valid base64".to_string())?;
        if !SECRET_BYTES.contains(&key.len()) {
            return Err(format!(
                "the secret holds {} bytes; Standard Webhooks asks for 24 to 64",
                key.len()
            ));
        }
        Ok(WebhookSecret(key))
    }

    /// The HMAC key.
    pub(crate) fn key(&self) -> &[u8] {
        &self.0
    }
}

/// How an endpoint wants its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointFormat {
    /// The Standard Webhooks envelope `{type, timestamp, data}`.
    Standard,
    /// `{"text": ...}`, for Slack-compatible incoming webhooks.
    Slack,
}

/// A checked endpoint.
#[derive(Clone)]
pub struct Endpoint {
    name: String,
    url: reqwest::Url,
    secret: WebhookSecret,
    events: Vec<EventType>,
    tiers: Vec<Tier>,
    plugins: Vec<String>,
    technologies: Vec<String>,
    renewal_within_days: Option<u32>,
    format: EndpointFormat,
    timeout: Duration,
}

/// Only the URL's origin: the rest of it may be a credential.
impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("url", &self.origin())
            .field("events", &self.events)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Its configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `scheme://host[:port]`: what logs and errors may show of the URL.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// The URL to post to.
    pub(crate) fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// The signing secret.
    pub(crate) fn secret(&self) -> &WebhookSecret {
        &self.secret
    }

    /// The body format.
    pub fn format(&self) -> EndpointFormat {
        self.format
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether this endpoint wants `event`: its type is subscribed and every filter that applies
    /// to it lets it through. Filters that do not concern an event (a tier filter on
    /// `run.finished`) let it through.
    pub fn wants(&self, event: &Event) -> bool {
        if !self.events.contains(&event.event_type()) {
            return false;
        }
        if !self.tiers.is_empty() {
            let tier_matches = match event {
                Event::TierChanged { account, from, .. } => {
                    self.tiers.contains(&account.tier) || from.is_some_and(|f| self.tiers.contains(&f))
                }
                other => other.account().is_none_or(|a| self.tiers.contains(&a.tier)),
            };
            if !tier_matches {
                return false;
            }
        }
        match event {
            Event::TechnologyAdopted {
                technology, plugin, ..
            }
            | Event::TechnologyRemoved {
                technology, plugin, ..
            } => {
                self.plugin_allowed(plugin)
                    && (self.technologies.is_empty()
                        || self
                            .technologies
                            .iter()
                            .any(|t| t.eq_ignore_ascii_case(technology)))
            }
            Event::RenewalDue {
                days_until, plugin, ..
            } => {
                self.plugin_allowed(plugin)
                    && self
                        .renewal_within_days
                        .is_none_or(|w| i64::from(*days_until) <= i64::from(w))
            }
            _ => true,
        }
    }

    fn plugin_allowed(&self, plugin: &str) -> bool {
        self.plugins.is_empty() || self.plugins.iter().any(|p| p == plugin)
    }
}

/// Requests wait this long for an answer unless the endpoint says otherwise: the spec recommends
/// 15 to 30 seconds.
const DEFAULT_TIMEOUT_SECS: u64 = 15;

/// The checked `[[webhooks]]` endpoints.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    endpoints: Vec<Endpoint>,
}

impl Webhooks {
    /// Checks every entry, reading each secret from the environment through `env` (pass
    /// `|k| std::env::var(k).ok()`). Every problem is reported with its key path under `prefix`
    /// (`webhooks[2].url`); secrets never appear in the messages.
    pub fn compile(
        raw: &[RawWebhook],
        env: impl Fn(&str) -> Option<String>,
        prefix: &str,
    ) -> Result<Webhooks, ConfigErrors> {
        let (webhooks, errors) = Webhooks::compile_usable(raw, env, prefix);
        errors.into_result(webhooks)
    }

    /// Like [`Webhooks::compile`], but keeps the endpoints that are fine beside the problems of
    /// the others: a run must not fail because one receiver's secret is missing. The caller
    /// reports the problems (they name the key, never a secret) and delivers to the rest.
    pub fn compile_usable(
        raw: &[RawWebhook],
        env: impl Fn(&str) -> Option<String>,
        prefix: &str,
    ) -> (Webhooks, ConfigErrors) {
        let mut errors = ConfigErrors::default();
        let mut endpoints = Vec::with_capacity(raw.len());
        let mut names = HashSet::new();
        for (i, w) in raw.iter().enumerate() {
            let path = format!("{prefix}[{i}]");
            let name = w.name.trim();
            if name.is_empty() {
                errors.push(format!("{path}.name"), "must not be empty");
            } else if !names.insert(name.to_string()) {
                errors.push(
                    format!("{path}.name"),
                    format!("'{name}' is used by another webhook"),
                );
            }
            let url = match reqwest::Url::parse(w.url.trim()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Some(u),
                Ok(u) => {
                    errors.push(
                        format!("{path}.url"),
                        format!(
                            "must be an http:// or https:// URL, found scheme '{}'",
                            u.scheme()
                        ),
                    );
                    None
                }
                Err(e) => {
                    errors.push(format!("{path}.url"), format!("is not a valid URL: {e}"));
                    None
                }
            };
            let secret = if w.secret_env.trim().is_empty() {
                errors.push(format!("{path}.secret_env"), "must name an environment variable");
                None
            } else {
                match env(w.secret_env.trim()) {
                    None => {
                        errors.push(
                            format!("{path}.secret_env"),
                            format!("the environment variable {} is not set", w.secret_env.trim()),
                        );
                        None
                    }
                    Some(value) => match WebhookSecret::parse(&value) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            errors.push(
                                format!("{path}.secret_env"),
                                format!("{} is set but unusable: {e}", w.secret_env.trim()),
                            );
                            None
                        }
                    },
                }
            };
            let mut events = Vec::new();
            if w.events.is_empty() {
                errors.push(format!("{path}.events"), "list at least one event");
            }
            for (j, e) in w.events.iter().enumerate() {
                match e.parse::<EventType>() {
                    Ok(t) if !events.contains(&t) => events.push(t),
                    Ok(_) => {}
                    Err(msg) => errors.push(format!("{path}.events[{j}]"), msg),
                }
            }
            let mut tiers = Vec::new();
            for (j, t) in w.tiers.iter().enumerate() {
                match t.parse::<Tier>() {
                    Ok(t) => tiers.push(t),
                    Err(e) => errors.push(format!("{path}.tiers[{j}]"), e.to_string()),
                }
            }
            let format = match w.format.as_deref() {
                None | Some("standard") => EndpointFormat::Standard,
                Some("slack") => EndpointFormat::Slack,
                Some(other) => {
                    errors.push(
                        format!("{path}.format"),
                        format!("unknown format '{other}' (expected standard or slack)"),
                    );
                    EndpointFormat::Standard
                }
            };
            let timeout_secs = w.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
            if !(1..=120).contains(&timeout_secs) {
                errors.push(
                    format!("{path}.timeout_secs"),
                    format!("must be within 1..=120, found {timeout_secs}"),
                );
            }
            let entry_ok = errors.0.iter().all(|e| !e.path.starts_with(&format!("{path}.")));
            if let (Some(url), Some(secret), true) = (url, secret, entry_ok) {
                endpoints.push(Endpoint {
                    name: name.to_string(),
                    url,
                    secret,
                    events,
                    tiers,
                    plugins: w.plugins.clone(),
                    technologies: w.technologies.clone(),
                    renewal_within_days: w.renewal_within_days,
                    format,
                    timeout: Duration::from_secs(timeout_secs),
                });
            }
        }
        (Webhooks { endpoints }, errors)
    }

    /// The endpoints, in configuration order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The endpoint called `name`.
    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }

    /// The endpoints' names.
    pub fn names(&self) -> Vec<String> {
        self.endpoints.iter().map(|e| e.name.clone()).collect()
    }

    /// The outbox row for `event`, happened at `at`, addressed to every endpoint that wants it;
    /// `None` when none does (nothing to store). Hand it to the store with the event's cause.
    pub fn outbox_event(&self, event: &Event, at: Timestamp) -> Option<NewEvent> {
        let endpoints: Vec<String> = self
            .endpoints
            .iter()
            .filter(|e| e.wants(event))
            .map(|e| e.name.clone())
            .collect();
        if endpoints.is_empty() {
            return None;
        }
        Some(NewEvent {
            id: new_event_id(),
            kind: event.event_type().as_str().to_string(),
            body: event.payload(at),
            occurred_at: at,
            endpoints,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::AccountRef;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn raw(text: &str) -> Vec<RawWebhook> {
        #[derive(Deserialize)]
        struct File {
            webhooks: Vec<RawWebhook>,
        }
        toml::from_str::<File>(text).expect("parse").webhooks
    }

    fn env(key: &str) -> Option<String> {
        match key {
            "GOOD" => Some(SECRET.to_string()),
            "SHORT" => Some("whsec_c2hvcnQ=".to_string()),
            "PLAIN" => Some("hunter2-not-a-whsec".to_string()),
            _ => None,
        }
    }

    #[test]
    fn every_problem_is_reported_by_key_and_no_secret_leaks() {
        let errors = Webhooks::compile(
            &raw(r#"
                [[webhooks]]
                name = "a"
                url = "not a url"
                secret_env = "MISSING"
                events = ["tier.changed", "tier.exploded"]
                tiers = ["tier_9"]

                [[webhooks]]
                name = "a"
                url = "ftp://files.example/x"
                secret_env = "PLAIN"
                events = []
                format = "teams"

                [[webhooks]]
                name = "c"
                url = "https://hooks.example/c"
                secret_env = "SHORT"
                events = ["run.failed"]
                timeout_secs = 0
            "#),
            env,
            "webhooks",
        )
        .expect_err("invalid");
        let text = errors.to_string();
        let keys: Vec<&str> = errors.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            keys,
            [
                "webhooks[0].url",
                "webhooks[0].secret_env",
                "webhooks[0].events[1]",
                "webhooks[0].tiers[0]",
                "webhooks[1].name",
                "webhooks[1].url",
                "webhooks[1].secret_env",
                "webhooks[1].events",
                "webhooks[1].format",
                "webhooks[2].secret_env",
                "webhooks[2].timeout_secs",
            ],
            "{text}"
        );
        assert!(
            text.contains("the environment variable MISSING is not set"),
            "{text}"
        );
        assert!(text.contains("holds 5 bytes"), "{text}");
        assert!(!text.contains("hunter2") && !text.contains("c2hvcnQ"), "{text}");
    }

    #[test]
    fn debug_output_hides_the_secret_and_the_url_path() {
        let hooks = Webhooks::compile(
            &raw(r#"
                [[webhooks]]
                name = "slack"
                url = "https://hooks.slack.example/services/T000/B000/XXXXSECRETPATH"
                secret_env = "GOOD"
                events = ["tier.changed"]
                format = "slack"
            "#),
            env,
            "webhooks",
        )
        .expect("valid");
        let debug = format!("{hooks:?}");
        assert!(debug.contains("https://hooks.slack.example"), "{debug}");
        assert!(
            !debug.contains("XXXXSECRETPATH") && !debug.contains("MfKQ9r8G"),
            "{debug}"
        );
    }

    fn account(tier: Tier) -> AccountRef {
        AccountRef {
            id: "hubspot:1".to_string(),
            name: "Acme".to_string(),
            domain: None,
            tier,
        }
    }

    #[test]
    fn filters_pick_the_endpoints_an_event_goes_to() {
        let hooks = Webhooks::compile(
            &raw(r#"
                [[webhooks]]
                name = "top-tiers"
                url = "https://a.example/"
                secret_env = "GOOD"
                events = ["tier.changed", "run.finished"]
                tiers = ["tier_1"]

                [[webhooks]]
                name = "snowflake"
                url = "https://b.example/"
                secret_env = "GOOD"
                events = ["technology.adopted", "renewal.due"]
                technologies = ["snowflake"]
                plugins = ["technographic", "contract-renewals"]
                renewal_within_days = 60
            "#),
            env,
            "webhooks",
        )
        .expect("valid");
        let to = |e: &Event| {
            hooks
                .outbox_event(e, Timestamp::from_millis(0))
                .map(|n| n.endpoints)
                .unwrap_or_default()
        };
        let changed = |from, to_tier| Event::TierChanged {
            account: account(to_tier),
            from,
            score: 4.0,
            reason: String::new(),
            run: None,
        };
        assert_eq!(
            to(&changed(Some(Tier::Tier2), Tier::Tier1)),
            ["top-tiers"],
            "entering tier 1"
        );
        assert_eq!(
            to(&changed(Some(Tier::Tier1), Tier::Tier2)),
            ["top-tiers"],
            "leaving tier 1"
        );
        assert!(to(&changed(Some(Tier::Tier3), Tier::Tier2)).is_empty());
        let finished = Event::RunFinished {
            run: 1,
            kind: "full".to_string(),
            stats: serde_json::json!({}),
        };
        assert_eq!(
            to(&finished),
            ["top-tiers"],
            "a tier filter does not concern runs"
        );
        let adopted = |tech: &str, plugin: &str| Event::TechnologyAdopted {
            account: account(Tier::Tier3),
            technology: tech.to_string(),
            plugin: plugin.to_string(),
            date: tierd_core::Date::from_ymd(2026, 12, 1).expect("date"),
        };
        assert_eq!(to(&adopted("Snowflake", "technographic")), ["snowflake"]);
        assert!(to(&adopted("Segment", "technographic")).is_empty());
        assert!(to(&adopted("Snowflake", "other-plugin")).is_empty());
        let renewal = |days| Event::RenewalDue {
            account: account(Tier::Tier2),
            renewal_date: tierd_core::Date::from_ymd(2027, 1, 30).expect("date"),
            days_until: days,
            plugin: "contract-renewals".to_string(),
        };
        assert_eq!(to(&renewal(60)), ["snowflake"]);
        assert!(to(&renewal(61)).is_empty());
    }
}
