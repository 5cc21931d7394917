//! hello: the smallest useful tierd plugin. It greets every account and measures its name,
//! and shows the whole SDK surface: config, describe, enrich and host logging.

use serde_json::{json, Value};
use tierd_plugin_api::prelude::*;

/// Greets accounts with a configurable greeting (`[plugins.hello.config] greeting = "Hi"`).
pub struct Hello {
    greeting: String,
    host: Host,
}

impl Provider for Hello {
    fn init(config: Value, host: Host) -> Result<Self, PluginError> {
        let greeting = config.get("greeting").and_then(Value::as_str).unwrap_or("Hello");
        Ok(Hello {
            greeting: greeting.to_owned(),
            host,
        })
    }

    fn describe(&self) -> Description {
        Description {
            name: "hello".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            facts: vec![
                FactSpec::new("hello.name_length", FactType::Number),
                FactSpec::new("hello.greeting", FactType::String),
            ],
            signals: vec![],
            hosts: vec![],
            batch_size: Some(100),
            rate_limit_per_minute: None,
            config: vec![ConfigField {
                name: "greeting".into(),
                secret: false,
                required: false,
                description: "How to greet (default \"Hello\")".into(),
            }],
        }
    }

    fn enrich(&mut self, request: EnrichRequest) -> Result<EnrichResponse, PluginError> {
        self.host.log(
            Level::Debug,
            format!("greeting {} accounts", request.accounts.len()),
        );
        let results = request.accounts.into_iter().map(|account| {
            let mut result = AccountResult::new(account.key);
            result
                .facts
                .insert("hello.name_length".into(), json!(account.name.chars().count()));
            result.facts.insert(
                "hello.greeting".into(),
                json!(format!("{}, {}!", self.greeting, account.name)),
            );
            result
        });
        Ok(EnrichResponse {
            results: results.collect(),
        })
    }
}

tierd_plugin_api::export_plugin!(Hello);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_by_name() {
        let mut hello = Hello::init(json!({"greeting": "Hi"}), Host::detached()).unwrap();
        let request: EnrichRequest = serde_json::from_value(json!({"as_of": "2026-11-24",
            "accounts": [{"key": "acme.com", "id": "hubspot:1", "name": "Acme"}]}))
        .unwrap();
        let response = hello.enrich(request).unwrap();
        assert_eq!(response.results[0].facts["hello.greeting"], "Hi, Acme!");
        assert_eq!(response.results[0].facts["hello.name_length"], 4);
    }
}
