//! Host overhead per account with a no-op plugin, in each mode, at batch 100.
//!
//! `cargo bench -p tierd-plugin-host --bench overhead`. The plugin answers an empty result per
//! account, so what is measured is the host: building and encoding the request, the call (FFI, or
//! pipes to a child), decoding and checking the answer, and the cache writes. The cache is
//! bypassed (`refresh`) so every account goes to the plugin. One batch in flight (concurrency 1):
//! the figure is the cost of one account on one stream, not a throughput across cores.
//! `exec` runs the isolated child binary as an exec program: a no-op plugin speaking the protocol;
//! the Python example is also timed, for the cost of a plugin written in Python.
//! Arguments (`cargo bench ... -- in_process`) keep only the modes whose label contains one of
//! them, so a profiler can watch one mode.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use serde_json::json;
use tierd_plugin_host::{AccountInput, EnrichOptions, HostOptions, Mode, PluginConfig, PluginSet};
use tierd_test_support::cdylib;

const ACCOUNTS: usize = 10_000;
const ROUNDS: usize = 5;

fn accounts(name: &str) -> Vec<AccountInput> {
    (0..ACCOUNTS)
        .map(|i| {
            serde_json::from_value(json!({"key": "", "id": format!("bench:{i}"), "name": name,
                "domain": format!("company-{i}.example"), "facts": {"crm.industry": "Software"}}))
            .unwrap()
        })
        .collect()
}

async fn measure(label: &str, cfg: PluginConfig, name: &str) {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| label.contains(f.as_str())) {
        return;
    }
    let cfg = PluginConfig {
        batch_size: Some(100),
        concurrency: 1,
        ..cfg
    };
    let options = HostOptions {
        child_command: vec![
            env!("CARGO_BIN_EXE_tierd-plugin-child").into(),
            "plugin-host".into(),
        ],
    };
    let set = PluginSet::load(&BTreeMap::from([("noop".to_owned(), cfg)]), &options)
        .await
        .expect("plugin starts");
    let input = accounts(name);
    let refresh = EnrichOptions { refresh: true };
    set.enrich_with("2026-11-24", input.clone(), &refresh).await; // warm-up: start, page in
    let mut best = f64::MAX;
    for _ in 0..ROUNDS {
        let batch = input.clone();
        let started = Instant::now();
        let out = set.enrich_with("2026-11-24", batch, &refresh).await;
        let per_account = started.elapsed().as_secs_f64() * 1e6 / ACCOUNTS as f64;
        assert!(out
            .iter()
            .all(|a| !matches!(a.results[0].outcome, tierd_plugin_host::Outcome::Stale { .. })));
        best = best.min(per_account);
    }
    println!("{label:<28} {best:>8.2} us/account  (best of {ROUNDS} x {ACCOUNTS} accounts, batch 100)");
    set.shutdown().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let noop = cdylib("tierd-test-misbehaving");
    rt.block_on(async {
        measure(
            "in_process",
            PluginConfig::library(&noop, Mode::InProcess),
            "noop",
        )
        .await;
        measure("isolated", PluginConfig::library(&noop, Mode::Isolated), "noop").await;
        let exec = PluginConfig::exec(env!("CARGO_BIN_EXE_tierd-plugin-child")).with_args([
            "plugin-host".to_owned(),
            "--library".to_owned(),
            noop.display().to_string(),
        ]);
        measure("exec (no-op, Rust)", exec, "noop").await;
        let python =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/examples/exec-python/plugin.py");
        measure("exec (Python example)", PluginConfig::exec(python), "noop").await;
    });
}
