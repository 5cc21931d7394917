//! A plugin claiming ABI major 999: the host must refuse it, naming both versions.

use serde_json::Value;
use tierd_plugin_api::prelude::*;

/// Never initialised by a correct host.
pub struct FromTheFuture;

impl Provider for FromTheFuture {
    fn init(_config: Value, _host: Host) -> Result<Self, PluginError> {
        Ok(FromTheFuture)
    }
    fn describe(&self) -> Description {
        Description {
            name: "abi-mismatch".into(),
            version: "999.0.0".into(),
            facts: vec![],
            signals: vec![],
            hosts: vec![],
            batch_size: None,
            rate_limit_per_minute: None,
            config: vec![],
        }
    }
    fn enrich(&mut self, _request: EnrichRequest) -> Result<EnrichResponse, PluginError> {
        Ok(EnrichResponse::default())
    }
}

tierd_plugin_api::export_plugin!(FromTheFuture, abi_major = 999);
