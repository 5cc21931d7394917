//! A plugin that misbehaves on request, for tierd-plugin-host's tests and benchmarks.
//!
//! The account's `name` picks the behaviour for the whole batch: `panic`, `segfault` (a null
//! write; run it isolated only), `hang`, `oversized` (a 2 MiB answer), `bad_facts` (an undeclared
//! fact and a mistyped one), `undeclared_signal`, `http` (GETs the URL in the account's `test.url`
//! fact), `log` (logs a line including the configured api_key), `env` (`test.env`: the process's
//! environment as `NAME=VALUE` strings), `dns` (resolves the TXT and MX records of the account's
//! domain, and the TXT records of `outside.test`, which the host must refuse). Any other name is answered
//! normally with `test.seen` = how many batches this instance served and `test.state` echoing
//! the state it got back. `noop` batches answer empty results (the overhead benchmark).
//! Config: `{"fail_init": true}` refuses to start.

use serde_json::{json, Value};
use tierd_plugin_api::prelude::*;

/// The misbehaving provider.
pub struct Misbehaving {
    host: Host,
    batches: u64,
    api_key: String,
}

impl Provider for Misbehaving {
    fn init(config: Value, host: Host) -> Result<Self, PluginError> {
        if config.get("fail_init").and_then(Value::as_bool) == Some(true) {
            return Err(PluginError::new("refusing to start: fail_init is set"));
        }
        let api_key = config
            .get("api_key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(Misbehaving {
            host,
            batches: 0,
            api_key,
        })
    }

    fn describe(&self) -> Description {
        Description {
            name: "misbehaving".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            facts: vec![
                FactSpec::new("test.seen", FactType::Number),
                FactSpec::new("test.state", FactType::Number),
                FactSpec::new("test.status", FactType::Number),
                FactSpec::new("test.error", FactType::String),
                FactSpec::new("test.blob", FactType::String),
                FactSpec::new("test.env", FactType::StringList),
                FactSpec::new("test.dns", FactType::StringList),
            ],
            signals: vec!["test_signal".into()],
            hosts: vec!["allowed.test".into()],
            batch_size: Some(10),
            rate_limit_per_minute: None,
            config: vec![ConfigField {
                name: "api_key".into(),
                secret: true,
                required: false,
                description: "Echoed in a log line by the `log` behaviour, to test redaction".into(),
            }],
        }
    }

    fn enrich(&mut self, request: EnrichRequest) -> Result<EnrichResponse, PluginError> {
        self.batches += 1;
        let behaviour = request
            .accounts
            .first()
            .map(|a| a.name.clone())
            .unwrap_or_default();
        match behaviour.as_str() {
            "panic" => panic!("deliberate panic in enrich"),
            "segfault" => segfault(),
            "hang" => loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            },
            "noop" => {
                let results = request
                    .accounts
                    .into_iter()
                    .map(|a| AccountResult::new(a.key))
                    .collect();
                return Ok(EnrichResponse { results });
            }
            "log" => self.host.log(Level::Warn, format!("using key {}", self.api_key)),
            _ => {}
        }
        let mut results = Vec::new();
        for account in request.accounts {
            let mut r = AccountResult::new(account.key.clone());
            r.facts.insert("test.seen".into(), json!(self.batches));
            r.state = json!(account.state.as_u64().unwrap_or(0) + 1);
            r.facts.insert("test.state".into(), r.state.clone());
            match behaviour.as_str() {
                "oversized" => {
                    r.facts.insert("test.blob".into(), json!("x".repeat(2 << 20)));
                }
                "env" => {
                    let vars: Vec<String> = std::env::vars_os()
                        .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
                        .collect();
                    r.facts.insert("test.env".into(), json!(vars));
                }
                "bad_facts" => {
                    r.facts.insert("test.seen".into(), json!("many"));
                    r.facts.insert("test.undeclared".into(), json!(1));
                }
                "undeclared_signal" => r.signals.push(Signal {
                    kind: "surprise".into(),
                    subject: None,
                    date: request.as_of.clone(),
                    detail: Default::default(),
                }),
                "http" => {
                    let url = account
                        .facts
                        .get("test.url")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let answers = self
                        .host
                        .http(vec![HttpRequest::get(url).header("X-Api-Key", &self.api_key)])?;
                    r.facts.insert("test.status".into(), json!(answers[0].status));
                    if let Some(e) = &answers[0].error {
                        r.facts.insert("test.error".into(), json!(e));
                    }
                }
                "dns" => {
                    let domain = account.domain.clone().unwrap_or_default();
                    let queries = [
                        DnsQuery::txt(&domain),
                        DnsQuery::mx(&domain),
                        DnsQuery::txt("outside.test"),
                    ];
                    let answers = self.host.dns(&queries)?;
                    let records: Vec<String> = answers[..2]
                        .iter()
                        .flat_map(|a| &a.records)
                        .map(|record| match record {
                            DnsRecord::Txt { strings } => format!("TXT {}", strings.join("|")),
                            DnsRecord::Mx { preference, exchange } => format!("MX {preference} {exchange}"),
                        })
                        .collect();
                    r.facts.insert("test.dns".into(), json!(records));
                    if let Some(e) = answers.iter().find_map(|a| a.error.as_ref()) {
                        r.facts.insert("test.error".into(), json!(e));
                    }
                }
                _ => {}
            }
            results.push(r);
        }
        Ok(EnrichResponse { results })
    }
}

#[allow(unsafe_code)]
fn segfault() -> ! {
    // SAFETY: none - this is the deliberate crash the host's isolation must survive.
    unsafe { std::ptr::null_mut::<u64>().write_volatile(1) };
    unreachable!("a null write returned")
}

tierd_plugin_api::export_plugin!(Misbehaving);
