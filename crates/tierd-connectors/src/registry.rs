//! Connector names to builders. Each connector has a serde config struct with defaults
//! and a `validate` that checks every value; this table is the only place that lists them,
//! so a new CRM is one module plus one line here.
//!
//! Configs arrive as `serde_json::Value` so the binary can pass any serde source (its
//! TOML sections convert losslessly) without this crate parsing files. Every problem,
//! from an unknown key to a value out of range, is a [`ConnectorError::Config`] naming
//! its key path within `[connector]` (`connector.retry.timeout`), found at validation
//! (`tierd config validate`), not at the first sync.

use serde::de::DeserializeOwned;

use crate::connector::{Connector, ConnectorError};
use crate::file_connector::FileConfig;
use crate::hubspot::HubSpotConfig;
use crate::salesforce::SalesforceConfig;

/// A connector's config: deserialised from the connector's section, checked, then built.
pub trait ConnectorConfig: DeserializeOwned {
    /// Whether the connector keeps CRM lists ([`Connector::lists`] is `Some`).
    const LISTS: bool = false;

    /// Checks every value, naming the key of the first problem.
    fn validate(&self) -> Result<(), ConnectorError>;

    /// Validates the config and builds the connector.
    fn build_connector(self) -> Result<Box<dyn Connector>, ConnectorError>;
}

impl ConnectorConfig for FileConfig {
    fn validate(&self) -> Result<(), ConnectorError> {
        FileConfig::validate(self)
    }

    fn build_connector(self) -> Result<Box<dyn Connector>, ConnectorError> {
        Ok(Box::new(self.build()?))
    }
}

impl ConnectorConfig for HubSpotConfig {
    const LISTS: bool = true;

    fn validate(&self) -> Result<(), ConnectorError> {
        HubSpotConfig::validate(self)
    }

    fn build_connector(self) -> Result<Box<dyn Connector>, ConnectorError> {
        Ok(Box::new(self.build()?))
    }
}

impl ConnectorConfig for SalesforceConfig {
    const LISTS: bool = true;

    fn validate(&self) -> Result<(), ConnectorError> {
        SalesforceConfig::validate(self)
    }

    fn build_connector(self) -> Result<Box<dyn Connector>, ConnectorError> {
        Ok(Box::new(self.build()?))
    }
}

/// Reads a config, naming the key path of what does not fit (`tokn` when unknown,
/// `search_rate_per_sec` for `-5`, `base_url` for a number, `rate_limit` for a NaN, which
/// JSON carries as null).
fn parse<C: ConnectorConfig>(value: serde_json::Value) -> Result<C, ConnectorError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." { String::new() } else { path };
        let message = e.inner().to_string();
        // The path ends at an unknown key; serde's message names it again.
        let message = match message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split_once("`, "))
        {
            Some((_, expected)) => format!("unknown key ({expected})"),
            None => message,
        };
        ConnectorError::config(key, message)
    })
}

type Builder = fn(serde_json::Value) -> Result<Box<dyn Connector>, ConnectorError>;
type Validator = fn(serde_json::Value) -> Result<(), ConnectorError>;

fn builder<C: ConnectorConfig>(value: serde_json::Value) -> Result<Box<dyn Connector>, ConnectorError> {
    parse::<C>(value)?.build_connector()
}

fn validator<C: ConnectorConfig>(value: serde_json::Value) -> Result<(), ConnectorError> {
    parse::<C>(value)?.validate()
}

/// A connector the registry knows: its config name, how to check its config, how to build it.
pub struct Registration {
    /// The name in config (`[connector] type = "hubspot"`).
    pub name: &'static str,
    /// Whether it keeps CRM lists (`[crm_lists]`).
    pub lists: bool,
    validate: Validator,
    build: Builder,
}

const fn register<C: ConnectorConfig>(name: &'static str) -> Registration {
    Registration {
        name,
        lists: C::LISTS,
        validate: validator::<C>,
        build: builder::<C>,
    }
}

/// Every connector tierd knows, by the name used in config (`[connector] type = "hubspot"`).
pub const CONNECTORS: &[Registration] = &[
    register::<FileConfig>("file"),
    register::<HubSpotConfig>("hubspot"),
    register::<SalesforceConfig>("salesforce"),
];

fn find(kind: &str) -> Result<&'static Registration, ConnectorError> {
    CONNECTORS.iter().find(|r| r.name == kind).ok_or_else(|| {
        let known: Vec<&str> = CONNECTORS.iter().map(|r| r.name).collect();
        ConnectorError::config(
            "type",
            format!("unknown connector '{kind}' (known: {})", known.join(", ")),
        )
    })
}

/// Checks the config of the connector named `kind` without building it (no client, no file
/// opened): what `tierd config validate` runs. Secrets read from the environment at start
/// should be given as placeholders.
pub fn validate(kind: &str, config: serde_json::Value) -> Result<(), ConnectorError> {
    (find(kind)?.validate)(config)
}

/// Whether the connector named `kind` keeps CRM lists (what `[crm_lists]` needs), checked at
/// validation so a list configured for account files is refused before the first sync.
pub fn has_lists(kind: &str) -> Result<bool, ConnectorError> {
    Ok(find(kind)?.lists)
}

/// The names of the connectors that keep CRM lists, for messages.
pub fn with_lists() -> Vec<&'static str> {
    CONNECTORS.iter().filter(|r| r.lists).map(|r| r.name).collect()
}

/// Builds the connector named `kind` from its config section.
pub fn build(kind: &str, config: serde_json::Value) -> Result<Box<dyn Connector>, ConnectorError> {
    (find(kind)?.build)(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hubspot(extra: serde_json::Value) -> serde_json::Value {
        let mut config = json!({ "token": "pat-na1-x" });
        config
            .as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        config
    }

    fn problem(kind: &str, config: serde_json::Value) -> (String, String) {
        match validate(kind, config.clone()) {
            Err(ConnectorError::Config { key, message }) => {
                // Building finds the same problem.
                let built = build(kind, config).err().map(|e| e.to_string());
                assert_eq!(
                    built.as_deref(),
                    Some(format!("connector.{key}: {message}").as_str())
                );
                (key, message)
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn builds_by_name_and_names_what_is_wrong() {
        let file =
            build("file", json!({ "path": "accounts.csv", "output": "tiers.csv" })).expect("file connector");
        assert_eq!(file.kind(), "file");
        assert!(validate("hubspot", hubspot(json!({}))).is_ok());
        let (key, message) = problem("pipedrive", json!({}));
        assert_eq!(key, "type");
        assert!(message.contains("known: file, hubspot, salesforce"), "{message}");
    }

    #[test]
    fn only_crm_connectors_keep_lists() {
        assert_eq!(with_lists(), ["hubspot", "salesforce"]);
        assert!(!has_lists("file").expect("known"));
        assert!(has_lists("pipedrive").is_err());
        let file =
            build("file", json!({ "path": "accounts.csv", "output": "tiers.csv" })).expect("file connector");
        assert!(file.lists().is_none(), "account files have no lists");
        let hubspot = build("hubspot", hubspot(json!({}))).expect("hubspot connector");
        assert!(hubspot.lists().is_some());
    }

    #[test]
    fn an_unknown_key_is_named_with_its_path() {
        let (key, message) = problem("hubspot", json!({ "tokn": "x" }));
        assert_eq!(key, "tokn");
        assert!(message.starts_with("unknown key (expected one of"), "{message}");
        let (key, _) = problem("hubspot", hubspot(json!({ "retry": { "timout": 5 } })));
        assert_eq!(key, "retry.timout");
        let (key, _) = problem("file", json!({ "path": "a.csv", "output": "t.csv", "page": 1 }));
        assert_eq!(key, "page");
    }

    #[test]
    fn values_that_do_not_fit_name_their_key() {
        for (config, want) in [
            (json!({ "search_rate_per_sec": -5 }), "search_rate_per_sec"),
            (json!({ "base_url": 4_294_967_296u64 }), "base_url"),
            // TOML's `nan` reaches JSON as null.
            (json!({ "rate_limit": f64::NAN }), "rate_limit"),
            (json!({ "rate_limit": 4_294_967_296u64 }), "rate_limit"),
            (json!({ "retry": { "max_attempts": 1.5 } }), "retry.max_attempts"),
            (
                json!({ "mapping": [{ "fact": "crm.x", "field": "x", "type": "colour" }] }),
                "mapping[0].type",
            ),
            (json!({ "base_url": "not a url" }), "base_url"),
            (json!({ "batch_size": 0 }), "batch_size"),
        ] {
            let (key, message) = problem("hubspot", hubspot(config.clone()));
            assert_eq!(key, want, "{config}: {message}");
        }
        let sf = json!({ "client_id": "id", "client_secret": "s", "api_reserve_share": f64::NAN });
        assert_eq!(problem("salesforce", sf).0, "api_reserve_share");
        let sf = json!({ "client_id": "id", "client_secret": "s", "api_reserve_share": 1.5 });
        assert_eq!(problem("salesforce", sf).0, "api_reserve_share");
        let file = json!({ "path": "a.txt", "output": "t.csv" });
        assert_eq!(problem("file", file).0, "path");
    }
}
