//! An in-process call that hangs is abandoned at the timeout. In a file of its own because the
//! hung call keeps the library's provider locked for the life of the process, and a library is
//! loaded once per process: every other in-process test would hang behind it.

use std::collections::BTreeMap;

use serde_json::json;
use tierd_plugin_host::{AccountInput, HostOptions, Mode, Outcome, PluginConfig, PluginSet};

#[tokio::test]
async fn a_hang_in_process_is_abandoned_at_the_timeout() {
    let library = tierd_test_support::cdylib("tierd-test-misbehaving");
    let cfg = PluginConfig {
        timeout_ms: 300,
        concurrency: 1,
        ..PluginConfig::library(library, Mode::InProcess)
    };
    let options = HostOptions {
        child_command: vec![
            env!("CARGO_BIN_EXE_tierd-plugin-child").into(),
            "plugin-host".into(),
        ],
    };
    let set = PluginSet::load(&BTreeMap::from([("m".to_owned(), cfg)]), &options)
        .await
        .expect("plugin starts");
    let account: AccountInput =
        serde_json::from_value(json!({"key": "", "id": "a", "name": "hang", "domain": "a.test"})).unwrap();
    let out = set.enrich("2026-11-24", vec![account]).await;
    assert_eq!(
        out[0].results[0].outcome,
        Outcome::Stale {
            reason: "plugin m: no answer within 300 ms (timeout_ms)".to_owned()
        }
    );
    // The next call is served by a new call thread, but waits on the provider the hung call
    // holds: it times out too, rather than queueing forever.
    let account: AccountInput =
        serde_json::from_value(json!({"key": "", "id": "b", "name": "fine", "domain": "b.test"})).unwrap();
    let out = set.enrich("2026-11-24", vec![account]).await;
    assert!(matches!(out[0].results[0].outcome, Outcome::Stale { .. }));
    set.shutdown().await;
}
