//! Keeping plugin secrets (API keys) out of logs, errors and Debug output.

use std::fmt;

use serde_json::{Map, Value};
pub use tierd_plugin_api::Secret;

use crate::error::HostError;
use crate::PluginConfig;

/// Replaces known secret values in text a plugin produced (log lines, errors) before the host
/// shows it: a plugin echoing its API key in an error must not leak it into our logs.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<Secret>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if out.contains(s.expose()) {
                out = out.replace(s.expose(), "***");
            }
        }
        out
    }
}

/// Config keys whose values are treated as secrets even when the plugin does not say so.
fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["key", "secret", "token", "password"]
        .iter()
        .any(|w| key.contains(w))
}

/// The JSON handed to the plugin's `init`: its `config` table with `api_key` filled from
/// `api_key_env`, and a redactor knowing every secret in it.
pub(crate) fn init_config(plugin: &str, cfg: &PluginConfig) -> Result<(Value, Redactor), HostError> {
    let mut config: Map<String, Value> = cfg.config.clone();
    if let Some(var) = &cfg.api_key_env {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => {
                config.insert("api_key".to_owned(), Value::String(v));
            }
            _ => {
                return Err(HostError::Config {
                    plugin: plugin.to_owned(),
                    message: format!(
                        "api_key_env names the environment variable {var}, which is not set: export it or remove api_key_env"
                    ),
                })
            }
        }
    }
    let secrets = config
        .iter()
        .filter(|(k, _)| looks_secret(k))
        .filter_map(|(_, v)| v.as_str())
        .filter(|v| v.len() >= 4)
        .map(Secret::new)
        .collect();
    Ok((Value::Object(config), Redactor { secrets }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_comes_from_the_environment_and_is_redacted() {
        std::env::set_var("TIERD_TEST_SECRET_KEY_1", "sk-abcdef");
        let cfg = PluginConfig {
            api_key_env: Some("TIERD_TEST_SECRET_KEY_1".into()),
            ..PluginConfig::default()
        };
        let (json, redactor) = init_config("p", &cfg).unwrap();
        assert_eq!(json["api_key"], "sk-abcdef");
        assert_eq!(redactor.redact("bad key sk-abcdef!"), "bad key ***!");

        let missing = PluginConfig {
            api_key_env: Some("TIERD_TEST_SECRET_KEY_UNSET".into()),
            ..PluginConfig::default()
        };
        let err = init_config("p", &missing).unwrap_err().to_string();
        assert!(
            err.contains("TIERD_TEST_SECRET_KEY_UNSET, which is not set"),
            "{err}"
        );
    }
}
