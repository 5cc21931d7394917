//! Connector names to builders. Each connector has a serde config struct with defaults
//! and a `build()` that validates it; this table is the only place that lists them, so a
//! new CRM is one module plus one line here.
//!
//! Configs arrive as `serde_json::Value` so the binary can pass any serde source (its
//! TOML sections convert losslessly) without this crate parsing files.

use serde::de::DeserializeOwned;

use crate::connector::{Connector, ConnectorError};
use crate::file_connector::FileConfig;
use crate::hubspot::HubSpotConfig;
use crate::salesforce::SalesforceConfig;

/// A connector's config: deserialised from the connector's section, then built.
pub trait ConnectorConfig: DeserializeOwned {
    /// Validates the config and builds the connector.
    fn build_connector(self) -> Result<Box<dyn Connector>, ConnectorError>;
}

impl ConnectorConfig for FileConfig {
    fn build_connector(self) -> Result<Box<dyn Connector>, ConnectorError> {
        Ok(Box::new(self.build()?))
    }
}

impl ConnectorConfig for HubSpotConfig {
    fn build_connector(self) -> Result<Box<dyn Connector>, ConnectorError> {
        Ok(Box::new(self.build()?))
    }
}

impl ConnectorConfig for SalesforceConfig {
    fn build_connector(self) -> Result<Box<dyn Connector>, ConnectorError> {
        Ok(Box::new(self.build()?))
    }
}

type Builder = fn(serde_json::Value) -> Result<Box<dyn Connector>, ConnectorError>;

fn builder<C: ConnectorConfig>(value: serde_json::Value) -> Result<Box<dyn Connector>, ConnectorError> {
    serde_json::from_value::<C>(value)
        .map_err(|e| ConnectorError::Config(e.to_string()))?
        .build_connector()
}

/// Every connector tierd knows, by the name used in config (`[connector] type = "hubspot"`).
pub const CONNECTORS: &[(&str, Builder)] = &[
    ("file", builder::<FileConfig>),
    ("hubspot", builder::<HubSpotConfig>),
    ("salesforce", builder::<SalesforceConfig>),
];

/// Builds the connector named `kind` from its config section.
pub fn build(kind: &str, config: serde_json::Value) -> Result<Box<dyn Connector>, ConnectorError> {
    let Some((_, build)) = CONNECTORS.iter().find(|(name, _)| *name == kind) else {
        let known: Vec<&str> = CONNECTORS.iter().map(|(n, _)| *n).collect();
        return Err(ConnectorError::Config(format!(
            "unknown connector type '{kind}' (known: {})",
            known.join(", ")
        )));
    };
    build(config).map_err(|e| match e {
        ConnectorError::Config(msg) => ConnectorError::Config(format!("connector '{kind}': {msg}")),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_by_name_and_names_what_is_wrong() {
        let file = build(
            "file",
            serde_json::json!({ "path": "accounts.csv", "output": "tiers.csv" }),
        )
        .expect("file connector");
        assert_eq!(file.kind(), "file");
        let err = build("pipedrive", serde_json::json!({})).err().expect("unknown");
        assert!(
            err.to_string().contains("known: file, hubspot, salesforce"),
            "{err}"
        );
        let err = build("hubspot", serde_json::json!({ "tokn": "x" }))
            .err()
            .expect("typo");
        assert!(err.to_string().contains("connector 'hubspot'"), "{err}");
        assert!(err.to_string().contains("tokn"), "{err}");
    }
}
