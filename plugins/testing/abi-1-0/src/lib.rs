//! A plugin whose table says ABI 1.0, as one built before the DNS capability (1.1) does: it
//! uses only what 1.0 offered (logging, HTTP). A host of a later minor must load and run it in
//! every mode and report it as 1.0.
//!
//! Each account gets `old.status`: the status of a GET of the URL in its `test.url` fact.

use serde_json::{json, Value};
use tierd_plugin_api::prelude::*;

/// The provider.
pub struct Old {
    host: Host,
}

impl Provider for Old {
    fn init(_config: Value, host: Host) -> Result<Self, PluginError> {
        Ok(Old { host })
    }

    fn describe(&self) -> Description {
        Description {
            name: "abi-1-0".into(),
            version: "1.0.0".into(),
            facts: vec![FactSpec::new("old.status", FactType::Number)],
            signals: vec![],
            hosts: vec!["allowed.test".into()],
            batch_size: None,
            rate_limit_per_minute: None,
            config: vec![],
        }
    }

    fn enrich(&mut self, request: EnrichRequest) -> Result<EnrichResponse, PluginError> {
        self.host.log(Level::Info, "an ABI 1.0 plugin enriching");
        let mut results = Vec::new();
        for account in request.accounts {
            let url = account
                .facts
                .get("test.url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let answers = self.host.http(vec![HttpRequest::get(url)])?;
            let mut r = AccountResult::new(account.key);
            r.facts.insert("old.status".into(), json!(answers[0].status));
            results.push(r);
        }
        Ok(EnrichResponse { results })
    }
}

tierd_plugin_api::export_plugin!(Old, abi_major = 1, abi_minor = 0);
