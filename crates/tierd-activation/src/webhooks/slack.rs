//! A Slack-compatible rendering of events: `{"text": "..."}`, what Slack's (and Mattermost's,
//! Rocket.Chat's) incoming webhooks take. Rendered from the stored payload at delivery time, so one
//! outbox row serves standard and Slack endpoints alike.

use serde_json::{json, Value};

/// The Slack body for a stored Standard Webhooks payload.
pub fn body(payload: &str) -> String {
    let text = match serde_json::from_str::<Value>(payload) {
        Ok(v) => text(&v),
        // Not JSON (never written by tierd): say what it is rather than drop it.
        Err(_) => "tierd: an event tierd could not read".to_string(),
    };
    json!({ "text": text }).to_string()
}

/// One line of text for an event envelope `{type, timestamp, data}`.
pub fn text(envelope: &Value) -> String {
    let kind = envelope["type"].as_str().unwrap_or("event");
    let data = &envelope["data"];
    let s = |v: &Value| v.as_str().unwrap_or("?").to_string();
    let account = || {
        let a = &data["account"];
        match a["domain"].as_str() {
            Some(d) => format!("*{}* ({d})", s(&a["name"])),
            None => format!("*{}*", s(&a["name"])),
        }
    };
    let tier = |v: &Value| tier_label(v.as_str());
    match kind {
        "tier.changed" => format!(
            "{} moved from {} to {}: {}",
            account(),
            tier(&data["from"]),
            tier(&data["to"]),
            s(&data["reason"])
        ),
        "technology.adopted" => format!("{} adopted {}", account(), s(&data["technology"])),
        "technology.removed" => format!("{} stopped using {}", account(), s(&data["technology"])),
        "renewal.due" => format!(
            "{} renews on {} (in {} days)",
            account(),
            s(&data["renewal_date"]),
            data["days_until"]
        ),
        "account.locked" => format!(
            "{} is locked at {} by a person; tierd would say {}",
            account(),
            tier(&data["account"]["tier"]),
            tier(&data["tierd_tier"])
        ),
        "push.rejected" => format!("The CRM refused the tier of {}: {}", account(), s(&data["error"])),
        "run.finished" => format!("tierd {} run {} finished", s(&data["kind"]), data["run"]),
        "run.failed" => format!(
            "tierd {} run {} failed: {}",
            s(&data["kind"]),
            data["run"],
            s(&data["error"])
        ),
        "webhook.test" => "tierd: a test event; this endpoint receives tierd's webhooks".to_string(),
        other => format!("tierd: {other}"),
    }
}

fn tier_label(tier: Option<&str>) -> &'static str {
    match tier {
        Some("tier_1") => "Tier 1",
        Some("tier_2") => "Tier 2",
        Some("tier_3") => "Tier 3",
        Some("untiered") => "untiered",
        _ => "no tier",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tier_change_reads_as_a_sentence() {
        let payload = r#"{"type":"tier.changed","timestamp":"2026-12-01T10:00:00.000Z","data":{"account":{"domain":"acme.example","id":"hubspot:42","name":"Acme","tier":"tier_1"},"from":"tier_2","reason":"uses Snowflake","run":7,"score":4.6,"to":"tier_1"}}"#;
        assert_eq!(
            body(payload),
            r#"{"text":"*Acme* (acme.example) moved from Tier 2 to Tier 1: uses Snowflake"}"#
        );
    }

    #[test]
    fn a_failed_run_names_its_error() {
        let payload = r#"{"type":"run.failed","timestamp":"2026-12-01T10:00:00.000Z","data":{"error":"HubSpot answered 401","kind":"incremental","run":12}}"#;
        assert_eq!(
            body(payload),
            r#"{"text":"tierd incremental run 12 failed: HubSpot answered 401"}"#
        );
    }
}
