//! The events tierd announces and their payloads.
//!
//! Every payload is the Standard Webhooks envelope `{"type", "timestamp", "data"}`: `type` is one of
//! [`EventType`], `timestamp` the time the event happened (ISO 8601, UTC, milliseconds), `data`
//! the event's fields. An account event's `data.account` is `{id, name, domain, tier}`, with the
//! account's tier after the event.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::{json, Value};
use tierd_core::{Date, Tier};
use tierd_store::Timestamp;

/// The kinds of event, by their wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// `tier.changed`: an account's tier changed (or it was tiered for the first time).
    TierChanged,
    /// `technology.adopted`: a provider saw a technology appear on an account.
    TechnologyAdopted,
    /// `technology.removed`: a provider saw a technology disappear.
    TechnologyRemoved,
    /// `renewal.due`: a contract renewal came within its window.
    RenewalDue,
    /// `account.locked`: a person set the tier in the CRM; tierd leaves it.
    AccountLocked,
    /// `push.rejected`: the CRM refused a tier update.
    PushRejected,
    /// `run.finished`: a run succeeded.
    RunFinished,
    /// `run.failed`: a run failed.
    RunFailed,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 8] = [
        EventType::TierChanged,
        EventType::TechnologyAdopted,
        EventType::TechnologyRemoved,
        EventType::RenewalDue,
        EventType::AccountLocked,
        EventType::PushRejected,
        EventType::RunFinished,
        EventType::RunFailed,
    ];

    /// The wire name, e.g. `tier.changed`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TierChanged => "tier.changed",
            EventType::TechnologyAdopted => "technology.adopted",
            EventType::TechnologyRemoved => "technology.removed",
            EventType::RenewalDue => "renewal.due",
            EventType::AccountLocked => "account.locked",
            EventType::PushRejected => "push.rejected",
            EventType::RunFinished => "run.finished",
            EventType::RunFailed => "run.failed",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                format!("unknown event '{s}' (expected one of {})", names.join(", "))
            })
    }
}

/// The account an event is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountRef {
    /// Its id in the CRM (`hubspot:123`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its domain, when known.
    pub domain: Option<String>,
    /// Its tier after the event.
    pub tier: Tier,
}

/// Something that happened, to be announced.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// An account's tier changed.
    TierChanged {
        /// The account, with its new tier.
        account: AccountRef,
        /// The tier before (`None`: first tiering).
        from: Option<Tier>,
        /// The score now.
        score: f64,
        /// Why, in a seller's words.
        reason: String,
        /// The run that changed it.
        run: Option<i64>,
    },
    /// A technology appeared on an account.
    TechnologyAdopted {
        /// The account.
        account: AccountRef,
        /// The technology, as the provider names it.
        technology: String,
        /// The plugin that saw it.
        plugin: String,
        /// The day it was seen.
        date: Date,
    },
    /// A technology disappeared from an account.
    TechnologyRemoved {
        /// The account.
        account: AccountRef,
        /// The technology.
        technology: String,
        /// The plugin that saw it.
        plugin: String,
        /// The day it was seen gone.
        date: Date,
    },
    /// A contract renewal is near.
    RenewalDue {
        /// The account.
        account: AccountRef,
        /// The renewal date.
        renewal_date: Date,
        /// Days from the event to the renewal.
        days_until: i32,
        /// The plugin that knows the contract.
        plugin: String,
    },
    /// A person set the account's tier in the CRM; tierd keeps it.
    AccountLocked {
        /// The account, with the tier the person set.
        account: AccountRef,
        /// The tier tierd would have given it.
        tierd_tier: Tier,
    },
    /// The CRM refused a tier update.
    PushRejected {
        /// The account, with the tier that was to be written.
        account: AccountRef,
        /// The CRM's reason.
        error: String,
        /// Whether the CRM called the record invalid (no more retries).
        permanent: bool,
    },
    /// A run succeeded.
    RunFinished {
        /// The run's id.
        run: i64,
        /// `full`, `incremental`, ...
        kind: String,
        /// Its counters.
        stats: Value,
    },
    /// A run failed.
    RunFailed {
        /// The run's id.
        run: i64,
        /// `full`, `incremental`, ...
        kind: String,
        /// Why.
        error: String,
    },
}

impl Event {
    /// Its type.
    pub fn event_type(&self) -> EventType {
        match self {
            Event::TierChanged { .. } => EventType::TierChanged,
            Event::TechnologyAdopted { .. } => EventType::TechnologyAdopted,
            Event::TechnologyRemoved { .. } => EventType::TechnologyRemoved,
            Event::RenewalDue { .. } => EventType::RenewalDue,
            Event::AccountLocked { .. } => EventType::AccountLocked,
            Event::PushRejected { .. } => EventType::PushRejected,
            Event::RunFinished { .. } => EventType::RunFinished,
            Event::RunFailed { .. } => EventType::RunFailed,
        }
    }

    /// The account it is about, if any.
    pub fn account(&self) -> Option<&AccountRef> {
        match self {
            Event::TierChanged { account, .. }
            | Event::TechnologyAdopted { account, .. }
            | Event::TechnologyRemoved { account, .. }
            | Event::RenewalDue { account, .. }
            | Event::AccountLocked { account, .. }
            | Event::PushRejected { account, .. } => Some(account),
            Event::RunFinished { .. } | Event::RunFailed { .. } => None,
        }
    }

    /// The `data` object of its payload.
    pub fn data(&self) -> Value {
        match self {
            Event::TierChanged {
                account,
                from,
                score,
                reason,
                run,
            } => json!({
                "account": account,
                "from": from.map(Tier::as_str),
                "to": account.tier.as_str(),
                "score": score,
                "reason": reason,
                "run": run,
            }),
            Event::TechnologyAdopted {
                account,
                technology,
                plugin,
                date,
            }
            | Event::TechnologyRemoved {
                account,
                technology,
                plugin,
                date,
            } => json!({
                "account": account,
                "technology": technology,
                "plugin": plugin,
                "date": date,
            }),
            Event::RenewalDue {
                account,
                renewal_date,
                days_until,
                plugin,
            } => json!({
                "account": account,
                "renewal_date": renewal_date,
                "days_until": days_until,
                "plugin": plugin,
            }),
            Event::AccountLocked { account, tierd_tier } => json!({
                "account": account,
                "tierd_tier": tierd_tier.as_str(),
            }),
            Event::PushRejected {
                account,
                error,
                permanent,
            } => json!({
                "account": account,
                "error": error,
                "permanent": permanent,
            }),
            Event::RunFinished { run, kind, stats } => json!({
                "run": run,
                "kind": kind,
                "stats": stats,
            }),
            Event::RunFailed { run, kind, error } => json!({
                "run": run,
                "kind": kind,
                "error": error,
            }),
        }
    }

    /// The event a recorded signal announces, if it announces one: `technology_adopted` and
    /// `technology_removed` (the subject is the technology), `renewal_within` (its detail carries
    /// `renewal_date`, `YYYY-MM-DD`; one signal per window the renewal enters, so an endpoint
    /// hears of it at each window and filters with `renewal_within_days`). Other kinds: `None`.
    pub fn from_signal(
        account: AccountRef,
        kind: &str,
        subject: &str,
        date: Date,
        plugin: &str,
        detail: &Value,
    ) -> Option<Event> {
        match kind {
            "technology_adopted" => Some(Event::TechnologyAdopted {
                account,
                technology: subject.to_string(),
                plugin: plugin.to_string(),
                date,
            }),
            "technology_removed" => Some(Event::TechnologyRemoved {
                account,
                technology: subject.to_string(),
                plugin: plugin.to_string(),
                date,
            }),
            "renewal_within" => {
                let renewal_date: Date = detail["renewal_date"].as_str()?.parse().ok()?;
                Some(Event::RenewalDue {
                    account,
                    renewal_date,
                    days_until: date.days_until(renewal_date),
                    plugin: plugin.to_string(),
                })
            }
            _ => None,
        }
    }

    /// The payload: `{"type", "timestamp", "data"}`, compact, in that order.
    pub fn payload(&self, at: Timestamp) -> String {
        envelope(self.event_type().as_str(), at, self.data())
    }
}

/// The Standard Webhooks envelope, fields in the spec's order.
pub(crate) fn envelope(kind: &str, at: Timestamp, data: Value) -> String {
    #[derive(Serialize)]
    struct Envelope<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        timestamp: String,
        data: Value,
    }
    let body = Envelope {
        kind,
        timestamp: iso8601(at),
        data,
    };
    // Serialising strings and a `Value` cannot fail.
    serde_json::to_string(&body).unwrap_or_default()
}

/// `2026-12-01T10:00:00.000Z`.
pub(crate) fn iso8601(at: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(at.millis())
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A new `webhook-id`: `msg_` and 128 random bits in hex. Random rather than derived from the
/// database's row id, so two tierd deployments posting to one receiver never collide.
pub(crate) fn new_event_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        // No OS randomness (never seen on supported platforms): the clock and a counter still
        // make ids unique within this process.
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        bytes[..8].copy_from_slice(&Timestamp::now().millis().to_be_bytes());
        bytes[8..].copy_from_slice(&n.to_be_bytes());
    }
    let mut id = String::with_capacity(36);
    id.push_str("msg_");
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> AccountRef {
        AccountRef {
            id: "hubspot:42".to_string(),
            name: "Acme".to_string(),
            domain: Some("acme.example".to_string()),
            tier: Tier::Tier1,
        }
    }

    #[test]
    fn a_tier_change_payload_is_the_standard_envelope() {
        let event = Event::TierChanged {
            account: account(),
            from: Some(Tier::Tier2),
            score: 4.6,
            reason: "uses Snowflake".to_string(),
            run: Some(7),
        };
        assert_eq!(
            event.payload(Timestamp::from_millis(1_764_583_200_123)),
            r#"{"type":"tier.changed","timestamp":"2025-12-01T10:00:00.123Z","data":{"account":{"domain":"acme.example","id":"hubspot:42","name":"Acme","tier":"tier_1"},"from":"tier_2","reason":"uses Snowflake","run":7,"score":4.6,"to":"tier_1"}}"#
        );
    }

    #[test]
    fn signals_become_events() {
        let day = Date::from_ymd(2026, 12, 1).expect("date");
        let renewal = Event::from_signal(
            account(),
            "renewal_within",
            "90",
            day,
            "contract-renewals",
            &json!({"days": 90, "renewal_date": "2027-02-14"}),
        );
        // December has 31 days, January 31: 30 + 31 + 14 = 75 days.
        assert_eq!(
            renewal,
            Some(Event::RenewalDue {
                account: account(),
                renewal_date: Date::from_ymd(2027, 2, 14).expect("date"),
                days_until: 75,
                plugin: "contract-renewals".to_string(),
            })
        );
        let adopted = Event::from_signal(
            account(),
            "technology_adopted",
            "Snowflake",
            day,
            "technographic",
            &json!({}),
        );
        assert!(
            matches!(adopted, Some(Event::TechnologyAdopted { ref technology, .. }) if technology == "Snowflake")
        );
        assert_eq!(
            Event::from_signal(
                account(),
                "renewal_within",
                "90",
                day,
                "contract-renewals",
                &json!({})
            ),
            None,
            "no renewal date, nothing to announce"
        );
        assert_eq!(
            Event::from_signal(account(), "engagement_spike", "", day, "crm", &json!({})),
            None
        );
    }

    #[test]
    fn event_types_round_trip_and_unknown_ones_list_the_valid() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
        }
        let err = "tier.changd".parse::<EventType>().unwrap_err();
        assert!(err.contains("tier.changed, technology.adopted"), "{err}");
    }

    #[test]
    fn event_ids_are_unique_and_dot_free() {
        let a = new_event_id();
        let b = new_event_id();
        assert_ne!(a, b);
        assert!(a.starts_with("msg_") && a.len() == 36 && !a.contains('.'), "{a}");
    }
}
