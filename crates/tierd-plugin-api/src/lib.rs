//! tierd-plugin-api: the stable plugin ABI, its JSON messages, and the SDK plugin authors use.
//!
//! # Writing a plugin
//! ```ignore
//! use tierd_plugin_api::prelude::*;
//!
//! struct Hello { host: Host }
//! impl Provider for Hello {
//!     fn init(_config: serde_json::Value, host: Host) -> Result<Self, PluginError> { Ok(Hello { host }) }
//!     fn describe(&self) -> Description { /* facts, hosts, batch size... */ }
//!     fn enrich(&mut self, request: EnrichRequest) -> Result<EnrichResponse, PluginError> { /* ... */ }
//! }
//! tierd_plugin_api::export_plugin!(Hello);
//! ```
//! Build it as a `cdylib` (`crate-type = ["cdylib", "rlib"]` keeps unit tests possible). See
//! `docs/plugins.md` for the walkthrough and `plugins/examples/hello` for a complete plugin.
//!
//! # The ABI ([`abi`])
//! A plugin library exports one symbol, [`ENTRY_SYMBOL`] (`tierd_plugin_entry`), an
//! `extern "C" fn() -> *const PluginTable` returning a static [`PluginTable`]: ABI major/minor,
//! name, version and the functions `init(host, config, out)`, `describe(out)`,
//! `enrich(request, out)`, `free(buf)`, `shutdown()`. Requests and responses are UTF-8 JSON
//! ([`message`]); return 0 means `out` holds the answer, non-zero means `out` holds
//! `{"error": "..."}`. A buffer is always freed by the side that allocated it. The host hands
//! `init` a [`HostApi`] (logging, HTTP, free, and since 1.1 DNS) valid until `shutdown`.
//!
//! Versioning: [`ABI_MAJOR`] changes break the layout and hosts refuse other majors;
//! [`ABI_MINOR`] changes only append (fields, optional JSON keys), and hosts accept lower minors.
//!
//! # What stays out
//! No async runtime, no HTTP stack, nothing of the host: a plugin depends on this crate, serde and
//! serde_json only, and gets network access through [`Host::http`] and [`Host::dns`], where the
//! host enforces the allowlists, timeouts and rate limits. Calendar dates ([`Date`]) and credentials ([`Secret`])
//! are tierd-core's, re-exported here, so a plugin uses the types tierd does without depending
//! on any other tierd crate (tierd-core is pure: no I/O, no runtime).

// This crate *is* the FFI boundary: raw pointers cross it and `extern "C"` functions are exported.
// Each unsafe block is small and states its invariant.
#![allow(unsafe_code)]

pub mod abi;
pub mod message;
mod sdk;

pub use abi::{Buffer, ByteSlice, EntryFn, HostApi, HostApiV1_0, PluginTable, StrRef};
pub use abi::{ABI_MAJOR, ABI_MINOR, ENTRY_SYMBOL, RC_ERROR, RC_OK, RC_PANIC};
pub use message::{AccountInput, AccountResult, ConfigField, Description, EnrichRequest, EnrichResponse};
pub use message::{
    DnsAnswer, DnsBatch, DnsKind, DnsQuery, DnsRecord, DnsResults, ErrorReply, FactSpec, FactType, HttpBatch,
    HttpRequest, HttpResponse, HttpResults, Signal,
};
#[doc(hidden)]
pub use sdk::__private;
pub use sdk::{Host, Level, PluginError, Provider};

/// A calendar day (`YYYY-MM-DD`), with the arithmetic renewals need; tierd-core's.
pub use tierd_core::Date;
/// A credential that never prints; tierd-core's.
pub use tierd_core::Secret;

/// Everything a plugin author needs: `use tierd_plugin_api::prelude::*;`.
pub mod prelude {
    pub use crate::message::{AccountInput, AccountResult, ConfigField, Description, EnrichRequest};
    pub use crate::message::{DnsAnswer, DnsKind, DnsQuery, DnsRecord};
    pub use crate::message::{EnrichResponse, FactSpec, FactType, HttpRequest, HttpResponse, Signal};
    pub use crate::sdk::{Host, Level, PluginError, Provider};
    pub use crate::{Date, Secret};
}

#[cfg(test)]
mod tests {
    use std::ffi::c_void;
    use std::sync::Mutex;

    use serde_json::{json, Value};

    use super::prelude::*;
    use super::*;

    struct Echo {
        host: Host,
        calls: u32,
    }

    impl Provider for Echo {
        fn init(config: Value, host: Host) -> Result<Self, PluginError> {
            if config.get("fail").is_some() {
                return Err(PluginError::new("configured to fail"));
            }
            Ok(Echo { host, calls: 0 })
        }
        fn describe(&self) -> Description {
            Description {
                name: "echo".into(),
                version: "1.0.0".into(),
                facts: vec![FactSpec::new("echo.calls", FactType::Number)],
                signals: vec![],
                hosts: vec!["example.test".into()],
                batch_size: Some(10),
                rate_limit_per_minute: None,
                config: vec![],
            }
        }
        fn enrich(&mut self, request: EnrichRequest) -> Result<EnrichResponse, PluginError> {
            self.calls += 1;
            self.host.log(Level::Info, "enriching");
            if request.accounts.iter().any(|a| a.key == "panic") {
                panic!("asked to panic");
            }
            let answers = self.host.http(vec![HttpRequest::get("https://example.test/")])?;
            let results = request
                .accounts
                .into_iter()
                .map(|a| {
                    let mut r = AccountResult::new(a.key);
                    r.facts.insert("echo.calls".into(), json!(self.calls));
                    r.facts.insert("echo.status".into(), json!(answers[0].status));
                    r
                })
                .collect();
            Ok(EnrichResponse { results })
        }
    }

    export_plugin!(Echo);

    static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

    unsafe extern "C" fn log(_ctx: *mut c_void, level: u32, message: ByteSlice) {
        // SAFETY: the SDK passes a valid slice for the call.
        let text = String::from_utf8_lossy(unsafe { message.as_slice() }).into_owned();
        LOGS.lock().unwrap().push(format!("{level}:{text}"));
    }
    unsafe extern "C" fn http(_ctx: *mut c_void, request: ByteSlice, out: *mut Buffer) -> i32 {
        // SAFETY: the SDK passes a valid slice for the call.
        let batch: HttpBatch = serde_json::from_slice(unsafe { request.as_slice() }).unwrap();
        let responses = batch
            .requests
            .iter()
            .map(|_| HttpResponse {
                status: 204,
                ..Default::default()
            })
            .collect();
        let bytes = serde_json::to_vec(&HttpResults { responses }).unwrap();
        // SAFETY: out is valid for writes.
        unsafe { out.write(Buffer::from_vec(bytes)) };
        RC_OK
    }
    unsafe extern "C" fn dns(_ctx: *mut c_void, request: ByteSlice, out: *mut Buffer) -> i32 {
        // SAFETY: the SDK passes a valid slice for the call.
        let batch: DnsBatch = serde_json::from_slice(unsafe { request.as_slice() }).unwrap();
        let answers = batch
            .queries
            .iter()
            .map(|q| DnsAnswer {
                records: vec![DnsRecord::Txt {
                    strings: vec![format!("{}:{:?}", q.name, q.kind)],
                }],
                error: None,
            })
            .collect();
        let bytes = serde_json::to_vec(&DnsResults { answers }).unwrap();
        // SAFETY: out is valid for writes.
        unsafe { out.write(Buffer::from_vec(bytes)) };
        RC_OK
    }
    unsafe extern "C" fn free(_ctx: *mut c_void, buf: Buffer) {
        // SAFETY: produced by Buffer::from_vec above.
        drop(unsafe { buf.into_vec() });
    }

    fn call(f: impl FnOnce(*mut Buffer) -> i32) -> (i32, Value) {
        let mut out = Buffer::empty();
        let rc = f(&mut out);
        // SAFETY: the plugin wrote a buffer it owns.
        let value = serde_json::from_slice(unsafe { out.as_slice() }).unwrap();
        // SAFETY: the buffer goes back to the plugin's free.
        unsafe { (table().free)(out) };
        (rc, value)
    }

    extern "C" {
        // Defined by export_plugin! above; the generated function is not nameable from Rust.
        fn tierd_plugin_entry() -> *const PluginTable;
    }

    fn table() -> &'static PluginTable {
        // SAFETY: the macro's entry returns a pointer to a static table.
        unsafe { &*tierd_plugin_entry() }
    }

    #[test]
    fn the_exported_table_drives_the_provider_and_catches_panics() {
        let t = table();
        assert_eq!((t.abi_major, t.abi_minor), (ABI_MAJOR, ABI_MINOR));
        // SAFETY: static strings of the table.
        assert_eq!(unsafe { t.name.to_string_lossy() }, "tierd-plugin-api");

        let api = HostApi {
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            ctx: std::ptr::null_mut(),
            log,
            http,
            free,
            dns,
        };
        let bad = br#"{"fail": true}"#;
        // SAFETY: valid host table, config slice and out buffer.
        let (rc, v) = call(|out| unsafe { (t.init)(&api, ByteSlice::new(bad), out) });
        assert_eq!((rc, v["error"].as_str()), (RC_ERROR, Some("configured to fail")));

        // SAFETY: as above.
        let (rc, _) = call(|out| unsafe { (t.init)(&api, ByteSlice::new(b"{}"), out) });
        assert_eq!(rc, RC_OK);
        // SAFETY: valid out buffer.
        let (rc, d) = call(|out| unsafe { (t.describe)(out) });
        assert_eq!((rc, d["facts"][0]["type"].as_str()), (RC_OK, Some("number")));

        let req = json!({"as_of": "2026-11-24", "accounts": [{"key": "acme.com", "id": "x:1"}]});
        let req = serde_json::to_vec(&req).unwrap();
        // SAFETY: valid request slice and out buffer.
        let (rc, r) = call(|out| unsafe { (t.enrich)(ByteSlice::new(&req), out) });
        assert_eq!(rc, RC_OK, "{r}");
        assert_eq!(
            r["results"][0]["facts"],
            json!({"echo.calls": 1, "echo.status": 204})
        );
        assert!(LOGS.lock().unwrap().iter().any(|l| l == "2:enriching"));

        let req = br#"{"as_of": "2026-11-24", "accounts": [{"key": "panic", "id": "x:2"}]}"#;
        // SAFETY: as above.
        let (rc, r) = call(|out| unsafe { (t.enrich)(ByteSlice::new(req), out) });
        assert_eq!(rc, RC_PANIC);
        assert_eq!(r["error"], "plugin panicked in enrich: asked to panic");

        // SAFETY: as above.
        let (rc, r) = call(|out| unsafe { (t.enrich)(ByteSlice::new(b"not json"), out) });
        assert_eq!(rc, RC_ERROR);
        assert!(
            r["error"]
                .as_str()
                .unwrap()
                .starts_with("enrich request is not valid"),
            "{r}"
        );

        // SAFETY: no call follows shutdown except init.
        unsafe { (t.shutdown)() };
        // SAFETY: valid out buffer.
        let (rc, r) = call(|out| unsafe { (t.describe)(out) });
        assert_eq!(
            (rc, r["error"].as_str()),
            (RC_ERROR, Some("describe called before init"))
        );
    }

    #[test]
    fn init_refuses_a_host_of_another_abi_major() {
        let api = HostApi {
            abi_major: 7,
            abi_minor: 0,
            ctx: std::ptr::null_mut(),
            log,
            http,
            free,
            dns,
        };
        let sdk_slot = __private::Slot::<Echo>::new();
        let mut out = Buffer::empty();
        // SAFETY: valid host table, empty config and out buffer.
        let rc = unsafe { __private::init(&sdk_slot, &api, ByteSlice::new(b""), &mut out) };
        // SAFETY: produced by the SDK in this binary.
        let body = unsafe { out.into_vec() };
        assert_eq!(rc, RC_ERROR);
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("host speaks plugin ABI 7.0"), "{text}");
    }

    /// Initialises a fresh provider slot with `api` and returns the host it was given.
    fn host_given(api: *const HostApi) -> Host {
        static GIVEN: Mutex<Option<Host>> = Mutex::new(None);
        struct Keep;
        impl Provider for Keep {
            fn init(_config: Value, host: Host) -> Result<Self, PluginError> {
                *GIVEN.lock().unwrap() = Some(host);
                Ok(Keep)
            }
            fn describe(&self) -> Description {
                unreachable!("not described")
            }
            fn enrich(&mut self, _request: EnrichRequest) -> Result<EnrichResponse, PluginError> {
                unreachable!("not called")
            }
        }
        let slot = __private::Slot::<Keep>::new();
        let mut out = Buffer::empty();
        // SAFETY: api points at a table of the layout its minor says; empty config; out buffer.
        let rc = unsafe { __private::init(&slot, api, ByteSlice::new(b""), &mut out) };
        // SAFETY: produced by the SDK in this binary.
        drop(unsafe { out.into_vec() });
        assert_eq!(rc, RC_OK);
        let host = GIVEN.lock().unwrap().take();
        host.expect("init ran")
    }

    #[test]
    fn dns_runs_through_a_1_1_host_and_is_refused_by_a_1_0_one() {
        let api = HostApi {
            abi_major: ABI_MAJOR,
            abi_minor: 1,
            ctx: std::ptr::null_mut(),
            log,
            http,
            free,
            dns,
        };
        let host = host_given(&api);
        assert!(host.has_dns());
        let answers = host
            .dns(&[DnsQuery::txt("acme.com"), DnsQuery::mx("acme.com")])
            .unwrap();
        let texts: Vec<_> = answers.iter().map(|a| a.records[0].clone()).collect();
        assert_eq!(
            texts,
            [
                DnsRecord::Txt {
                    strings: vec!["acme.com:Txt".into()]
                },
                DnsRecord::Txt {
                    strings: vec!["acme.com:Mx".into()]
                }
            ]
        );

        // A 1.0 host's table is only as long as the 1.0 layout; the SDK must not read past it.
        let old = Box::new(HostApiV1_0 {
            abi_major: ABI_MAJOR,
            abi_minor: 0,
            ctx: std::ptr::null_mut(),
            log,
            http,
            free,
        });
        let host = host_given(&*old as *const HostApiV1_0 as *const HostApi);
        assert!(!host.has_dns());
        let error = host.dns(&[DnsQuery::txt("acme.com")]).unwrap_err();
        assert!(
            error.message().contains("ABI 1.0, which has no DNS capability"),
            "{error}"
        );
        // HTTP still works through the 1.0 table.
        let answers = host.http(vec![HttpRequest::get("https://a.test/")]).unwrap();
        assert_eq!(answers[0].status, 204);
    }

    #[test]
    fn local_hosts_serve_provider_unit_tests() {
        assert!(!Host::detached().has_dns());
        assert!(Host::detached().dns(&[DnsQuery::mx("a.test")]).is_err());
        let host =
            Host::detached().with_dns(|queries| queries.iter().map(|_| DnsAnswer::failed("nope")).collect());
        assert!(host.has_dns());
        assert_eq!(
            host.dns(&[DnsQuery::mx("a.test")]).unwrap(),
            [DnsAnswer::failed("nope")]
        );
        assert!(Host::detached()
            .http(vec![HttpRequest::get("https://a.test/")])
            .is_err());
        let host = Host::with_http(|reqs| reqs.iter().map(|_| HttpResponse::failed("nope")).collect());
        let answers = host.http(vec![HttpRequest::get("https://a.test/")]).unwrap();
        assert_eq!(answers[0].error.as_deref(), Some("nope"));
    }
}
