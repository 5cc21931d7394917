//! hello: the smallest useful tierd plugin. It greets every account, measures its name and
//! signals a rename, and shows the whole SDK surface: config, describe, enrich, state kept by
//! the host, signals and host logging. docs/plugins.md quotes this file; a test below keeps the
//! guide's code identical to it.

use serde_json::{json, Map, Value};
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
            signals: vec!["renamed".into()],
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
        let as_of = request.as_of;
        let results = request.accounts.into_iter().map(|account| {
            let mut result = AccountResult::new(account.key);
            result
                .facts
                .insert("hello.name_length".into(), json!(account.name.chars().count()));
            result.facts.insert(
                "hello.greeting".into(),
                json!(format!("{}, {}!", self.greeting, account.name)),
            );
            // `account.state` is what this plugin returned as `result.state` for this account
            // last time: a `Value`, `Value::Null` the first time.
            if let Some(old) = account.state.get("name").and_then(Value::as_str) {
                if old != account.name {
                    let mut detail = Map::new();
                    detail.insert("from".into(), json!(old));
                    result.signals.push(Signal {
                        kind: "renamed".into(), // declared in describe().signals
                        subject: Some(account.name.clone()),
                        date: as_of.clone(), // "YYYY-MM-DD"
                        detail,
                    });
                }
            }
            result.state = json!({ "name": account.name });
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
    fn greets_by_name_and_signals_a_rename() {
        let mut hello = Hello::init(json!({"greeting": "Hi"}), Host::detached()).unwrap();
        // Host::with_http(|requests| ...) answers HTTP requests from a closure instead.
        let request: EnrichRequest = serde_json::from_value(json!({"as_of": "2026-11-24",
            "accounts": [{"key": "acme.com", "id": "hubspot:1", "name": "Acme Inc",
                          "state": {"name": "Acme"}}]}))
        .unwrap();
        let result = &hello.enrich(request).unwrap().results[0];
        assert_eq!(result.facts["hello.greeting"], "Hi, Acme Inc!");
        assert_eq!(result.facts["hello.name_length"], 8);
        assert_eq!(result.signals[0].kind, "renamed");
        assert_eq!(result.signals[0].detail["from"], "Acme");
        assert_eq!(result.state, json!({"name": "Acme Inc"}));
    }

    /// Every ```rust block of docs/plugins.md is a piece of this file, line for line (leading
    /// spaces aside), so the guide's code is the code compiled and tested here.
    #[test]
    fn the_plugin_guide_quotes_this_file() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
        let guide = std::fs::read_to_string(root.join("docs/plugins.md")).expect("docs/plugins.md");
        let normal = |text: &str| -> String { text.lines().map(str::trim).collect::<Vec<_>>().join("\n") };
        let source = normal(include_str!("lib.rs"));
        let mut blocks = 0;
        for block in guide.split("```rust\n").skip(1) {
            let code = block.split("```").next().unwrap_or_default();
            assert!(
                source.contains(normal(code).trim()),
                "docs/plugins.md has Rust code that is not in plugins/examples/hello/src/lib.rs:\n{code}"
            );
            blocks += 1;
        }
        assert!(blocks >= 2, "the guide shows the plugin and its test");
    }
}
