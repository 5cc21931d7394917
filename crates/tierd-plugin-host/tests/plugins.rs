//! The host against real plugin libraries: the examples, and deliberately bad plugins. Every bad
//! plugin must leave the host running with an error that names what went wrong.
//!
//! The plugin cdylibs are dev-dependencies of this crate, so `cargo test -p tierd-plugin-host`
//! builds them into `target/<profile>/deps/` first.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use tierd_plugin_host::{AccountInput, HostOptions, Mode, Outcome, PluginConfig, PluginSet};
use tierd_test_support::cdylib;

fn options() -> HostOptions {
    HostOptions {
        child_command: vec![
            env!("CARGO_BIN_EXE_tierd-plugin-child").into(),
            "plugin-host".into(),
        ],
    }
}

fn account(id: &str, name: &str) -> AccountInput {
    serde_json::from_value(json!({"key": "", "id": id, "name": name, "domain": format!("{id}.test")}))
        .unwrap()
}

fn one(name: &str, cfg: PluginConfig) -> BTreeMap<String, PluginConfig> {
    BTreeMap::from([(name.to_owned(), cfg)])
}

async fn load(name: &str, cfg: PluginConfig) -> PluginSet {
    PluginSet::load(&one(name, cfg), &options())
        .await
        .expect("plugin starts")
}

async fn load_error(cfg: PluginConfig) -> String {
    PluginSet::load(&one("bad", cfg), &options())
        .await
        .expect_err("plugin must be refused")
        .to_string()
}

fn misbehaving(mode: Mode) -> PluginConfig {
    PluginConfig {
        batch_size: Some(1),
        concurrency: 1,
        ..PluginConfig::library(cdylib("tierd-test-misbehaving"), mode)
    }
}

fn facts(outcome: &Outcome) -> &serde_json::Map<String, Value> {
    match outcome {
        Outcome::Fresh { facts, .. } | Outcome::Cached { facts, .. } => facts,
        other => panic!("expected facts, got {other:?}"),
    }
}

fn stale_reason(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Stale { reason } => reason,
        other => panic!("expected stale, got {other:?}"),
    }
}

#[tokio::test]
async fn hello_runs_in_each_library_mode_and_is_cached() {
    for mode in [Mode::InProcess, Mode::Isolated] {
        let set = load("hello", PluginConfig::library(cdylib("tierd-plugin-hello"), mode)).await;
        let info = &set.plugins()[0];
        assert_eq!((info.abi.as_str(), info.mode, info.facts.len()), ("1.1", mode, 2));

        let out = set
            .enrich(
                "2026-11-24",
                vec![account("acme", "Acme"), account("globex", "Globex")],
            )
            .await;
        assert_eq!(out[0].key, "acme.test");
        let acme = &out[0].results[0];
        assert!(
            matches!(acme.outcome, Outcome::Fresh { .. }),
            "{mode:?}: {acme:?}"
        );
        assert_eq!(facts(&acme.outcome)["hello.greeting"], "Hello, Acme!");
        assert_eq!(facts(&out[1].results[0].outcome)["hello.name_length"], 6);

        let again = set.enrich("2026-11-24", vec![account("acme", "Acme")]).await;
        assert!(
            matches!(again[0].results[0].outcome, Outcome::Cached { .. }),
            "{mode:?}"
        );
        set.shutdown().await;
    }
}

#[tokio::test]
async fn the_python_exec_example_speaks_the_protocol() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/examples/exec-python/plugin.py");
    let set = load("domain-facts", PluginConfig::exec(script)).await;
    assert_eq!(set.plugins()[0].abi, "exec protocol 1");
    let mut nameless = account("x", "X");
    nameless.domain = None;
    let out = set
        .enrich("2026-11-24", vec![account("acme", "Acme"), nameless])
        .await;
    let got = facts(&out[0].results[0].outcome);
    assert_eq!(
        (got["domain.length"].clone(), got["domain.tld"].clone()),
        (json!(9), json!("test"))
    );
    assert_eq!(out[1].results[0].outcome, Outcome::NoMatch);
    set.shutdown().await;
}

#[tokio::test]
async fn a_library_of_another_abi_major_is_refused_in_every_mode() {
    for mode in [Mode::InProcess, Mode::Isolated] {
        let error = load_error(PluginConfig::library(cdylib("tierd-test-abi-mismatch"), mode)).await;
        assert!(error.contains("was built for plugin ABI 999.1"), "{error}");
        assert!(error.contains("this host speaks ABI 1.1"), "{error}");
    }
}

#[tokio::test]
async fn a_library_without_the_entry_symbol_is_refused() {
    for mode in [Mode::InProcess, Mode::Isolated] {
        let error = load_error(PluginConfig::library(cdylib("tierd-test-no-entry"), mode)).await;
        assert!(
            error.contains("does not export the symbol `tierd_plugin_entry`"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_library_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("libjunk.so");
    std::fs::write(&junk, b"this is not an ELF file").unwrap();
    for mode in [Mode::InProcess, Mode::Isolated] {
        let error = load_error(PluginConfig::library(&junk, mode)).await;
        assert!(error.contains("cannot load plugin library"), "{error}");
        assert!(error.contains("libjunk.so"), "{error}");
    }
    let missing = load_error(PluginConfig::library(
        dir.path().join("absent.so"),
        Mode::InProcess,
    ))
    .await;
    assert!(missing.contains("absent.so"), "{missing}");
}

#[tokio::test]
async fn a_plugin_refusing_its_config_is_reported() {
    let mut cfg = misbehaving(Mode::Isolated);
    cfg.config.insert("fail_init".into(), json!(true));
    let error = load_error(cfg).await;
    assert!(error.contains("refusing to start: fail_init is set"), "{error}");
}

#[tokio::test]
async fn a_panic_in_process_fails_only_its_batch() {
    let set = load("m", misbehaving(Mode::InProcess)).await;
    let out = set
        .enrich("2026-11-24", vec![account("a", "fine"), account("b", "panic")])
        .await;
    assert!(matches!(out[0].results[0].outcome, Outcome::Fresh { .. }));
    let reason = stale_reason(&out[1].results[0].outcome);
    assert_eq!(
        reason,
        "plugin m: plugin panicked in enrich: deliberate panic in enrich"
    );
    let after = set.enrich("2026-11-24", vec![account("c", "fine")]).await;
    assert!(matches!(after[0].results[0].outcome, Outcome::Fresh { .. }));
}

#[tokio::test]
async fn a_segfault_kills_only_the_child_which_restarts() {
    let set = load("m", misbehaving(Mode::Isolated)).await;
    let out = set
        .enrich(
            "2026-11-24",
            vec![
                account("a", "fine"),
                account("b", "segfault"),
                account("c", "fine"),
            ],
        )
        .await;
    let reason = stale_reason(&out[1].results[0].outcome);
    assert!(
        reason.starts_with("plugin m: the plugin process exited or crashed"),
        "{reason}"
    );
    assert!(matches!(out[0].results[0].outcome, Outcome::Fresh { .. }));
    assert!(matches!(out[2].results[0].outcome, Outcome::Fresh { .. }));
    let after = set.enrich("2026-11-24", vec![account("d", "fine")]).await;
    assert!(matches!(after[0].results[0].outcome, Outcome::Fresh { .. }));
    set.shutdown().await;
}

#[tokio::test]
async fn a_hang_is_killed_at_the_timeout() {
    // Long enough for a child process to start on a loaded machine (the timeout covers init).
    let mut cfg = misbehaving(Mode::Isolated);
    cfg.timeout_ms = 2_000;
    let set = load("m", cfg).await;
    let out = set.enrich("2026-11-24", vec![account("a", "hang")]).await;
    let reason = stale_reason(&out[0].results[0].outcome);
    assert_eq!(
        reason,
        "plugin m: no answer within 2000 ms (timeout_ms); the plugin process was killed"
    );
    let after = set.enrich("2026-11-24", vec![account("b", "fine")]).await;
    assert!(matches!(after[0].results[0].outcome, Outcome::Fresh { .. }));
    set.shutdown().await;
}

#[tokio::test]
async fn oversized_output_fails_the_batch() {
    let mut cfg = misbehaving(Mode::Isolated);
    cfg.max_message_bytes = 1 << 20;
    let set = load("m", cfg).await;
    let out = set
        .enrich(
            "2026-11-24",
            vec![account("a", "oversized"), account("b", "fine")],
        )
        .await;
    let reason = stale_reason(&out[0].results[0].outcome);
    assert!(
        reason.contains("over the 1048576-byte limit (max_message_bytes)"),
        "{reason}"
    );
    assert!(matches!(out[1].results[0].outcome, Outcome::Fresh { .. }));
    set.shutdown().await;
}

#[tokio::test]
async fn garbage_output_fails_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("garbage.py");
    std::fs::write(
        &script,
        r#"#!/usr/bin/env python3
import json, struct, sys
def send(m):
    b = json.dumps(m).encode(); sys.stdout.buffer.write(struct.pack(">I", len(b)) + b); sys.stdout.buffer.flush()
while True:
    h = sys.stdin.buffer.read(4)
    if len(h) < 4: break
    m = json.loads(sys.stdin.buffer.read(struct.unpack(">I", h)[0]))
    if m["kind"] == "init": send({"kind": "ok"})
    elif m["kind"] == "describe": send({"kind": "ok", "body": {"name": "g", "version": "1"}})
    else: sys.stdout.buffer.write(b"\x00\x00\x00\x0chello world!"); sys.stdout.buffer.flush()
"#,
    )
    .unwrap();
    let set = load(
        "g",
        PluginConfig::exec("python3").with_args([script.display().to_string()]),
    )
    .await;
    let out = set.enrich("2026-11-24", vec![account("a", "A")]).await;
    let reason = stale_reason(&out[0].results[0].outcome);
    assert!(
        reason.contains("the plugin sent garbage instead of a protocol message"),
        "{reason}"
    );
    assert!(reason.contains("hello world!"), "{reason}");
    set.shutdown().await;
}

#[tokio::test]
async fn undeclared_and_mistyped_facts_are_dropped_and_reported() {
    for mode in [Mode::InProcess, Mode::Isolated] {
        let set = load("m", misbehaving(mode)).await;
        let out = set
            .enrich(
                "2026-11-24",
                vec![account("a", "bad_facts"), account("b", "undeclared_signal")],
            )
            .await;
        let result = &out[0].results[0];
        assert!(facts(&result.outcome).contains_key("test.state"));
        assert!(!facts(&result.outcome).contains_key("test.seen"));
        let mut shown: Vec<String> = result.rejected.iter().map(ToString::to_string).collect();
        shown.sort();
        assert_eq!(
            shown,
            [
                "plugin m, account a: dropped test.seen: declared as number, got \"many\"",
                "plugin m, account a: dropped test.undeclared: not declared in describe()",
            ]
        );
        let signal = &out[1].results[0].rejected[0];
        assert_eq!(
            signal.to_string(),
            "plugin m, account b: dropped signal:surprise: signal kind not declared in describe()"
        );
        set.shutdown().await;
    }
}

#[tokio::test]
async fn state_comes_back_and_batches_follow_the_batch_size() {
    let mut cfg = misbehaving(Mode::InProcess);
    cfg.batch_size = Some(2);
    let set = load("m", cfg).await;
    let accounts: Vec<_> = (0..5).map(|i| account(&format!("a{i}"), "fine")).collect();
    let out = set.enrich("2026-11-24", accounts.clone()).await;
    let batches = out
        .iter()
        .map(|a| facts(&a.results[0].outcome)["test.seen"].as_u64().unwrap())
        .max();
    assert_eq!(batches, Some(3), "5 accounts in batches of 2");
    assert!(out
        .iter()
        .all(|a| facts(&a.results[0].outcome)["test.state"] == 1));

    let refresh = tierd_plugin_host::EnrichOptions { refresh: true };
    let again = set.enrich_with("2026-11-24", accounts, &refresh).await;
    assert!(
        again
            .iter()
            .all(|a| facts(&a.results[0].outcome)["test.state"] == 2),
        "{again:?}"
    );
}

/// A one-route HTTP server: answers every request `200 ok`.
async fn serve_ok() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 1024];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                let _ = stream.write_all(reply).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn http_goes_through_the_allowlist_and_the_routes() {
    let addr = serve_ok().await;
    for mode in [Mode::InProcess, Mode::Isolated] {
        let mut cfg = misbehaving(mode);
        cfg.resolve.insert("*".into(), addr.to_string());
        cfg.config.insert("api_key".into(), json!("sk-test-secret"));
        let set = load("m", cfg).await;
        assert_eq!(set.plugins()[0].allowed_hosts, ["allowed.test"]);
        let mut ok = account("a", "http");
        ok.facts
            .insert("test.url".into(), json!("http://allowed.test/company"));
        let mut refused = account("b", "http");
        refused
            .facts
            .insert("test.url".into(), json!("http://evil.test/steal"));
        let out = set.enrich("2026-11-24", vec![ok, refused]).await;
        assert_eq!(facts(&out[0].results[0].outcome)["test.status"], 200, "{mode:?}");
        let denied = facts(&out[1].results[0].outcome);
        assert_eq!(denied["test.status"], 0);
        let error = denied["test.error"].as_str().unwrap();
        assert!(
            error.starts_with("refused: host evil.test is not allowed for plugin m"),
            "{error}"
        );
        let counters = set.http_counters("m").unwrap();
        assert_eq!((counters.requests, counters.refused, counters.errors), (1, 1, 0));
        // One request alone: its wait spans its latency (refused ones never wait).
        assert!(
            counters.latency_micros > 0 && counters.waiting_micros >= counters.latency_micros,
            "{counters:?}"
        );
        set.shutdown().await;
    }
}

#[tokio::test]
async fn a_plugin_of_the_previous_minor_loads_and_runs_in_each_library_mode() {
    let addr = serve_ok().await;
    for mode in [Mode::InProcess, Mode::Isolated] {
        let mut cfg = PluginConfig::library(cdylib("tierd-test-abi-1-0"), mode);
        cfg.resolve.insert("*".into(), addr.to_string());
        let set = load("old", cfg).await;
        assert_eq!(set.plugins()[0].abi, "1.0", "{mode:?}");
        let mut a = account("a", "A");
        a.facts
            .insert("test.url".into(), json!("http://allowed.test/company"));
        let out = set.enrich("2026-11-24", vec![a]).await;
        assert_eq!(facts(&out[0].results[0].outcome)["old.status"], 200, "{mode:?}");
        set.shutdown().await;
    }
}

#[tokio::test]
async fn dns_resolves_batch_domains_through_the_configured_nameserver_in_each_mode() {
    use tierd_emulators::{DnsConfig, DnsEmulator};
    let responder = DnsEmulator::start(
        DnsConfig::new()
            .txt("acme.test", "acme-mail-verification=1f2e")
            .txt_strings("acme.test", &["v=spf1 include:acme-mail.test ", "~all"])
            .mx("acme.test", 10, "mx1.acme-mail.test")
            .txt("outside.test", "never asked"),
    )
    .await
    .unwrap();
    let mut asked = 0;
    for mode in [Mode::InProcess, Mode::Isolated] {
        let mut cfg = misbehaving(mode);
        cfg.dns.nameservers = vec![responder.addr().to_string()];
        let set = load("dns", cfg).await;
        assert_eq!(set.plugins()[0].abi, "1.1");
        let out = set.enrich("2026-11-24", vec![account("acme", "dns")]).await;
        let got = facts(&out[0].results[0].outcome);
        assert_eq!(
            got["test.dns"],
            json!([
                "TXT acme-mail-verification=1f2e",
                "TXT v=spf1 include:acme-mail.test |~all",
                "MX 10 mx1.acme-mail.test"
            ]),
            "{mode:?}"
        );
        let refused = got["test.error"].as_str().unwrap();
        assert!(
            refused.starts_with("refused: outside.test is neither the domain of an account"),
            "{refused}"
        );
        let counters = set.dns_counters("dns").unwrap();
        assert_eq!(
            (counters.queries, counters.refused, counters.errors),
            (2, 1, 0),
            "{mode:?}"
        );
        asked += 2;
        assert_eq!(
            responder.queries(),
            asked,
            "{mode:?}: the refused name never reached the server"
        );
        set.shutdown().await;
    }
}

/// An exec plugin (any language) asks through a `dns` message once `init` lists the capability.
const EXEC_DNS_PLUGIN: &str = r#"
import json, struct, sys
IN, OUT = sys.stdin.buffer, sys.stdout.buffer
def read():
    header = IN.read(4)
    if len(header) < 4:
        sys.exit(0)
    return json.loads(IN.read(struct.unpack(">I", header)[0]))
def send(message):
    body = json.dumps(message).encode()
    OUT.write(struct.pack(">I", len(body)) + body)
    OUT.flush()
capabilities = []
while True:
    m = read()
    if m["kind"] == "init":
        capabilities = m.get("capabilities", [])
        send({"kind": "ok", "body": {}})
    elif m["kind"] == "describe":
        send({"kind": "ok", "body": {"name": "exec-dns", "version": "1",
              "facts": [{"name": "x.mx", "type": "string_list"}]}})
    elif m["kind"] == "enrich":
        results = []
        for a in m["request"]["accounts"]:
            mx = []
            if "dns" in capabilities:
                send({"kind": "dns", "queries": [{"name": a["domain"], "type": "MX"}]})
                answer = read()
                assert answer["kind"] == "dns_result", answer
                mx = ["%s %d" % (r["exchange"], r["preference"]) for r in answer["answers"][0]["records"]]
            results.append({"key": a["key"], "facts": {"x.mx": mx}})
        send({"kind": "ok", "body": {"results": results}})
    else:
        sys.exit(0)
"#;

#[tokio::test]
async fn an_exec_plugin_resolves_through_dns_messages() {
    use tierd_emulators::{DnsConfig, DnsEmulator};
    let responder = DnsEmulator::start(DnsConfig::new().mx("acme.test", 5, "mx.acme.test"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("exec_dns.py");
    std::fs::write(&script, EXEC_DNS_PLUGIN).unwrap();
    let mut cfg = PluginConfig::exec("python3").with_args([script.to_str().unwrap()]);
    cfg.dns.nameservers = vec![responder.addr().to_string()];
    let set = load("exec-dns", cfg).await;
    let out = set.enrich("2026-11-24", vec![account("acme", "Acme")]).await;
    assert_eq!(
        facts(&out[0].results[0].outcome)["x.mx"],
        json!(["mx.acme.test 5"])
    );
    assert_eq!(set.dns_counters("exec-dns").unwrap().queries, 1);
    set.shutdown().await;
}

#[tokio::test]
async fn dns_turned_off_or_over_its_rate_limit_answers_errors_not_failures() {
    use tierd_emulators::{DnsConfig, DnsEmulator};
    let responder = DnsEmulator::start(DnsConfig::new().txt("acme.test", "x"))
        .await
        .unwrap();
    let mut off = misbehaving(Mode::InProcess);
    off.dns.enabled = false;
    let set = load("off", off).await;
    let out = set.enrich("2026-11-24", vec![account("acme", "dns")]).await;
    let got = facts(&out[0].results[0].outcome);
    assert_eq!(got["test.dns"], json!([]));
    assert!(got["test.error"]
        .as_str()
        .unwrap()
        .contains("dns.enabled = false"));
    set.shutdown().await;

    let mut limited = misbehaving(Mode::Isolated);
    limited.dns.nameservers = vec![responder.addr().to_string()];
    limited.dns.rate_limit_per_minute = Some(1);
    limited.dns.timeout_ms = 50;
    let set = load("limited", limited).await;
    let out = set.enrich("2026-11-24", vec![account("acme", "dns")]).await;
    let got = facts(&out[0].results[0].outcome);
    // One slot a minute: one of the two allowed queries runs, the other is refused.
    assert_eq!(got["test.dns"].as_array().unwrap().len(), 1, "{got:?}");
    let counters = set.dns_counters("limited").unwrap();
    assert_eq!((counters.queries, counters.refused), (1, 2));
    assert_eq!(responder.queries(), 1);
    set.shutdown().await;
}

#[tokio::test]
async fn one_bad_plugin_does_not_stop_the_others() {
    let configs = BTreeMap::from([
        (
            "bad".to_owned(),
            PluginConfig::library(cdylib("tierd-test-abi-mismatch"), Mode::Isolated),
        ),
        (
            "hello".to_owned(),
            PluginConfig::library(cdylib("tierd-plugin-hello"), Mode::Isolated),
        ),
    ]);
    let (set, errors) = PluginSet::start(&configs, &options()).await;
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].to_string().starts_with("plugin bad: start failed"),
        "{}",
        errors[0]
    );
    assert_eq!(set.plugins().len(), 1);
    let out = set.enrich("2026-11-24", vec![account("a", "A")]).await;
    assert!(matches!(out[0].results[0].outcome, Outcome::Fresh { .. }));
    set.shutdown().await;
}

#[tokio::test]
async fn accounts_sharing_a_domain_are_asked_once_and_answered_alike() {
    // Isolated: the child's provider is this test's alone, so its batch count is exact.
    let mut cfg = misbehaving(Mode::Isolated);
    cfg.batch_size = Some(2);
    let set = load("m", cfg).await;
    let mut accounts: Vec<_> = ["a", "b", "c"].iter().map(|id| account(id, "fine")).collect();
    accounts[2].domain = Some("A.test".to_owned()); // same key as the first, after lower-casing
    let out = set.enrich("2026-11-24", accounts).await;
    assert_eq!(
        out.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert_eq!(out[0].key, "a.test");
    assert_eq!(out[2].key, "a.test");
    assert_eq!(out[0].results[0].outcome, out[2].results[0].outcome);
    // Two distinct keys in batches of two: one call.
    assert_eq!(facts(&out[1].results[0].outcome)["test.seen"], 1);
    set.shutdown().await;
}

#[tokio::test]
async fn one_library_is_loaded_in_process_by_one_plugin_only() {
    // A path that loads nothing, so this test never shares a provider with the other tests.
    let library = std::env::temp_dir().join("tierd-no-such-plugin.so");
    let configs = BTreeMap::from([
        (
            "first".to_owned(),
            PluginConfig::library(&library, Mode::InProcess),
        ),
        (
            "second".to_owned(),
            PluginConfig::library(&library, Mode::InProcess),
        ),
    ]);
    let (set, errors) = PluginSet::start(&configs, &options()).await;
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("cannot load plugin library"), "{errors:?}");
    assert!(errors[1].starts_with("plugin second: "), "{errors:?}");
    assert!(
        errors[1].contains("already loaded in process by plugin first"),
        "{errors:?}"
    );
    set.shutdown().await;
}

/// A plugin process (isolated child or exec program) sees PATH, the locale, its own key and the
/// variables its `env` names: never tierd's own secrets or another plugin's key.
#[tokio::test]
async fn plugin_processes_get_only_their_own_environment() {
    let secrets = [
        ("HUBSPOT_TOKEN", "pat-na1-crm-secret"),
        ("TIERD_API_TOKEN", "admin-token-0123456789"),
        ("TIERD__STORE__URL", "postgres://tierd:db-password@db/tierd"),
        ("TIERD_TEST_OTHER_PLUGIN_KEY", "other-plugin-key"),
    ];
    let given = [
        ("TIERD_TEST_OWN_PLUGIN_KEY", "own-key"),
        ("TIERD_TEST_ALLOWED_VAR", "allowed"),
        ("LC_TIME", "C"),
    ];
    for (k, v) in secrets.iter().chain(&given) {
        std::env::set_var(k, v);
    }
    let library = cdylib("tierd-test-misbehaving");
    let exec = PluginConfig::exec(env!("CARGO_BIN_EXE_tierd-plugin-child")).with_args([
        "plugin-host",
        "--library",
        library.to_str().unwrap(),
    ]);
    for (mode, base) in [("isolated", misbehaving(Mode::Isolated)), ("exec", exec)] {
        let me = PluginConfig {
            api_key_env: Some("TIERD_TEST_OWN_PLUGIN_KEY".into()),
            env: vec!["TIERD_TEST_ALLOWED_VAR".into()],
            ..base
        };
        let other = PluginConfig {
            api_key_env: Some("TIERD_TEST_OTHER_PLUGIN_KEY".into()),
            ..misbehaving(Mode::Isolated)
        };
        let configs = BTreeMap::from([("me".to_owned(), me), ("other".to_owned(), other)]);
        let set = PluginSet::load(&configs, &options())
            .await
            .expect("plugins start");
        let out = set.enrich("2026-11-24", vec![account("a", "env")]).await;
        let mine = out[0]
            .results
            .iter()
            .find(|r| r.plugin == "me")
            .expect("a result of plugin me");
        let env: Vec<String> = facts(&mine.outcome)["test.env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        for (k, v) in &given {
            assert!(
                env.contains(&format!("{k}={v}")),
                "{mode}: {k} missing from {env:?}"
            );
        }
        assert!(
            env.iter().any(|e| e.starts_with("PATH=")),
            "{mode}: PATH missing from {env:?}"
        );
        for (k, v) in &secrets {
            assert!(
                !env.iter()
                    .any(|e| e.starts_with(&format!("{k}=")) || e.contains(v)),
                "{mode}: {k} visible to the plugin: {env:?}"
            );
        }
        let names: Vec<&str> = env.iter().filter_map(|e| e.split('=').next()).collect();
        assert!(
            names
                .iter()
                .all(|n| ["PATH", "LANG", "LANGUAGE", "TZ"].contains(n)
                    || n.starts_with("LC_")
                    || n.starts_with("TIERD_TEST_")),
            "{mode}: unexpected variables {names:?}"
        );
        set.shutdown().await;
    }
}
