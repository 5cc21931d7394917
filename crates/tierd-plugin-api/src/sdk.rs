//! The SDK plugin authors write against: the [`Provider`] trait, the [`Host`] capabilities and
//! the glue behind [`crate::export_plugin!`] that turns C calls into trait calls, catching every
//! panic so no unwind crosses the boundary.

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;

use crate::abi::{Buffer, ByteSlice, HostApi, HostApiV1_0, ABI_MAJOR, RC_ERROR, RC_OK, RC_PANIC};
use crate::message::{Description, DnsAnswer, DnsBatch, DnsQuery, DnsResults, EnrichRequest};
use crate::message::{EnrichResponse, ErrorReply, HttpBatch, HttpRequest, HttpResponse, HttpResults};

/// A data provider: what a plugin author implements, then exports with [`crate::export_plugin!`].
///
/// One instance serves one plugin load; calls never overlap (the SDK holds a lock around each),
/// so `&mut self` is safe to use for connection state or counters.
pub trait Provider: Send + Sized + 'static {
    /// Builds the provider from its `[plugins.<name>.config]` table (secrets already resolved).
    fn init(config: Value, host: Host) -> Result<Self, PluginError>;
    /// Declares facts, signals, hosts, batch size, rate limit and config keys.
    fn describe(&self) -> Description;
    /// Enriches one batch. Fail single accounts with [`crate::AccountResult::failed`]; return `Err`
    /// only when the whole batch failed.
    fn enrich(&mut self, request: EnrichRequest) -> Result<EnrichResponse, PluginError>;
    /// Releases resources before unload.
    fn shutdown(&mut self) {}
}

/// An error a plugin reports to the host. Its message reaches logs and `tierd plugins check`,
/// so never put secrets in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    message: String,
}

impl PluginError {
    /// An error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginError {}

impl From<String> for PluginError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for PluginError {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl From<serde_json::Error> for PluginError {
    fn from(e: serde_json::Error) -> Self {
        Self::new(format!("invalid JSON: {e}"))
    }
}

/// Log levels for [`Host::log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed.
    Error = 0,
    /// Something looks wrong.
    Warn = 1,
    /// Normal progress.
    Info = 2,
    /// Detail for debugging.
    Debug = 3,
    /// Very verbose detail.
    Trace = 4,
}

type LocalHttp = dyn Fn(Vec<HttpRequest>) -> Vec<HttpResponse> + Send + Sync;
type LocalDns = dyn Fn(&[DnsQuery]) -> Vec<DnsAnswer> + Send + Sync;

#[derive(Clone)]
enum HostKind {
    /// The host's table; `dns` is only read when `abi_minor` is 1 or more.
    Abi(HostApi),
    Local {
        http: Option<Arc<LocalHttp>>,
        dns: Option<Arc<LocalDns>>,
    },
}

/// The host's capabilities, handed to [`Provider::init`]: logging under the plugin's name, HTTP
/// through the host's client and DNS through its resolver (allowlists, timeouts, rate limits and
/// metrics enforced by the host). Cheap to clone.
#[derive(Clone)]
pub struct Host {
    kind: HostKind,
}

// SAFETY: the host guarantees its ctx and functions are callable from any thread until shutdown;
// the Local variant only holds Send + Sync closures.
unsafe impl Send for Host {}
// SAFETY: as above; Host has no interior mutability of its own.
unsafe impl Sync for Host {}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            HostKind::Abi(_) => "Host(abi)",
            HostKind::Local { .. } => "Host(local)",
        })
    }
}

impl Host {
    /// A host for unit tests of a provider: logs go nowhere and every HTTP request fails.
    pub fn detached() -> Self {
        Self {
            kind: HostKind::Local {
                http: None,
                dns: None,
            },
        }
    }

    /// A host for unit tests of a provider whose HTTP capability is `answer` (called with each batch).
    pub fn with_http(answer: impl Fn(Vec<HttpRequest>) -> Vec<HttpResponse> + Send + Sync + 'static) -> Self {
        Self {
            kind: HostKind::Local {
                http: Some(Arc::new(answer)),
                dns: None,
            },
        }
    }

    /// This unit-test host with a DNS capability answering from `answer` (called with each
    /// batch): `Host::with_http(pages).with_dns(records)`. No effect on a real host.
    pub fn with_dns(
        mut self,
        answer: impl Fn(&[DnsQuery]) -> Vec<DnsAnswer> + Send + Sync + 'static,
    ) -> Self {
        if let HostKind::Local { dns, .. } = &mut self.kind {
            *dns = Some(Arc::new(answer));
        }
        self
    }

    /// Whether [`Host::dns`] can answer: the host speaks ABI 1.1 or later (or, in unit tests,
    /// was given answers with [`Host::with_dns`]).
    pub fn has_dns(&self) -> bool {
        match &self.kind {
            HostKind::Abi(api) => api.abi_minor >= 1,
            HostKind::Local { dns, .. } => dns.is_some(),
        }
    }

    /// Writes a log line into the host's log under the plugin's name.
    pub fn log(&self, level: Level, message: impl AsRef<str>) {
        if let HostKind::Abi(api) = &self.kind {
            let message = message.as_ref().as_bytes();
            // SAFETY: api came from the host's init call and stays valid until shutdown; the
            // message slice lives for the duration of the call.
            unsafe { (api.log)(api.ctx, level as u32, ByteSlice::new(message)) };
        }
    }

    /// Runs `requests` through the host's HTTP client, concurrently; answers come back in request
    /// order. A refused or failed request is an answer with `status` 0 and `error` set; `Err` means
    /// the whole batch could not run.
    pub fn http(&self, requests: Vec<HttpRequest>) -> Result<Vec<HttpResponse>, PluginError> {
        let api = match &self.kind {
            HostKind::Abi(api) => api,
            HostKind::Local {
                http: Some(answer), ..
            } => return Ok(answer(requests)),
            HostKind::Local { http: None, .. } => {
                return Err(PluginError::new("no HTTP capability (detached host)"))
            }
        };
        let count = requests.len();
        let body = serde_json::to_vec(&HttpBatch { requests })?;
        let mut out = Buffer::empty();
        // SAFETY: api is valid until shutdown; body outlives the call; out is a valid place for
        // the host to write its buffer into.
        let rc = unsafe { (api.http)(api.ctx, ByteSlice::new(&body), &mut out) };
        // SAFETY: out was written by the host (or left empty) and is read before being freed.
        let parsed = unsafe { out.as_slice() }.to_vec();
        // SAFETY: out was allocated by the host, so it goes back to the host's free, once.
        unsafe { (api.free)(api.ctx, out) };
        if rc != RC_OK {
            let why = serde_json::from_slice::<ErrorReply>(&parsed)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&parsed).into_owned());
            return Err(PluginError::new(format!("host HTTP capability failed: {why}")));
        }
        let results: HttpResults = serde_json::from_slice(&parsed)?;
        if results.responses.len() != count {
            return Err(PluginError::new(format!(
                "host answered {} of {count} HTTP requests",
                results.responses.len()
            )));
        }
        Ok(results.responses)
    }
}

impl Host {
    /// Resolves `queries` through the host's resolver, concurrently; answers come back in query
    /// order. A query the host refuses (a name that is not one of the batch's account domains or
    /// the configured ones, the rate limit) or that fails is an answer with `error` set; a name
    /// without such records is an answer without records. `Err` means the whole batch could not
    /// run, e.g. a host older than ABI 1.1 (see [`Host::has_dns`]).
    pub fn dns(&self, queries: &[DnsQuery]) -> Result<Vec<DnsAnswer>, PluginError> {
        let api = match &self.kind {
            HostKind::Abi(api) if api.abi_minor >= 1 => api,
            HostKind::Abi(api) => {
                return Err(PluginError::new(format!(
                    "the host speaks plugin ABI {}.{}, which has no DNS capability (1.1 and later)",
                    api.abi_major, api.abi_minor
                )))
            }
            HostKind::Local {
                dns: Some(answer), ..
            } => return Ok(answer(queries)),
            HostKind::Local { dns: None, .. } => {
                return Err(PluginError::new("no DNS capability (detached host)"))
            }
        };
        let body = serde_json::to_vec(&DnsBatch {
            queries: queries.to_vec(),
        })?;
        let mut out = Buffer::empty();
        // SAFETY: api is valid until shutdown and has `dns` (minor >= 1, checked above); body
        // outlives the call; out is a valid place for the host to write its buffer into.
        let rc = unsafe { (api.dns)(api.ctx, ByteSlice::new(&body), &mut out) };
        // SAFETY: out was written by the host (or left empty) and is read before being freed.
        let parsed = unsafe { out.as_slice() }.to_vec();
        // SAFETY: out was allocated by the host, so it goes back to the host's free, once.
        unsafe { (api.free)(api.ctx, out) };
        if rc != RC_OK {
            let why = serde_json::from_slice::<ErrorReply>(&parsed)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&parsed).into_owned());
            return Err(PluginError::new(format!("host DNS capability failed: {why}")));
        }
        let results: DnsResults = serde_json::from_slice(&parsed)?;
        if results.answers.len() != queries.len() {
            return Err(PluginError::new(format!(
                "host answered {} of {} DNS queries",
                results.answers.len(),
                queries.len()
            )));
        }
        Ok(results.answers)
    }
}

/// Stands in for [`HostApi::dns`] when the host's table is 1.0 (which ends before it); never
/// called, since [`Host::dns`] checks the minor first.
unsafe extern "C" fn no_dns(_ctx: *mut std::ffi::c_void, _request: ByteSlice, _out: *mut Buffer) -> i32 {
    RC_ERROR
}

/// Reads the host's table, only as far as its minor version has fields.
///
/// # Safety
/// `host` points at a table of the layout its `abi_minor` says (1.0: [`HostApiV1_0`]).
unsafe fn read_host_table(host: *const HostApi) -> HostApi {
    // SAFETY: every layout starts with the 1.0 one, so reading that prefix is valid.
    let prefix = unsafe { (host as *const HostApiV1_0).read() };
    if prefix.abi_minor >= 1 {
        // SAFETY: a 1.1 (or later) host's table holds every field of ours.
        return unsafe { host.read() };
    }
    HostApi {
        abi_major: prefix.abi_major,
        abi_minor: prefix.abi_minor,
        ctx: prefix.ctx,
        log: prefix.log,
        http: prefix.http,
        free: prefix.free,
        dns: no_dns,
    }
}

/// Support for [`crate::export_plugin!`]; not part of the stable API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    /// The one provider instance of a loaded plugin.
    pub struct Slot<T> {
        provider: Mutex<Option<T>>,
    }

    impl<T: Provider> Slot<T> {
        #[allow(clippy::new_without_default)]
        pub const fn new() -> Self {
            Self {
                provider: Mutex::new(None),
            }
        }

        /// A panic while the lock was held poisons it; the provider is still usable (the host
        /// decides whether to trust it again), so poisoning is ignored.
        fn lock(&self) -> std::sync::MutexGuard<'_, Option<T>> {
            self.provider
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }

    fn panic_message(payload: &(dyn Any + Send)) -> String {
        if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "unknown panic payload".to_owned()
        }
    }

    /// Writes `bytes` into `*out` as a plugin-owned buffer.
    ///
    /// # Safety
    /// `out` is null or valid for writes.
    unsafe fn put(out: *mut Buffer, bytes: Vec<u8>) {
        if !out.is_null() {
            // SAFETY: guaranteed by the caller; the previous content is an empty buffer by contract.
            unsafe { out.write(Buffer::from_vec(bytes)) };
        }
    }

    /// `value` as JSON, in a buffer of `capacity` to start with.
    fn json<T: Serialize>(value: &T, capacity: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(capacity);
        serde_json::to_writer(&mut out, value)
            .map(|()| out)
            .unwrap_or_else(|e| {
                format!("{{\"error\":\"plugin could not serialise its answer: {e}\"}}").into_bytes()
            })
    }

    /// Runs `call`, turning `Err` and panics into error codes with `{"error"}` in `out`.
    ///
    /// # Safety
    /// `out` is null or valid for writes.
    unsafe fn guard<R: Serialize>(
        what: &str,
        out: *mut Buffer,
        capacity: usize,
        call: impl FnOnce() -> Result<R, PluginError>,
    ) -> i32 {
        let (rc, bytes) = match catch_unwind(AssertUnwindSafe(call)) {
            Ok(Ok(answer)) => (RC_OK, json(&answer, capacity)),
            Ok(Err(e)) => (RC_ERROR, json(&ErrorReply { error: e.message }, 0)),
            Err(payload) => {
                let error = format!("plugin panicked in {what}: {}", panic_message(payload.as_ref()));
                (RC_PANIC, json(&ErrorReply { error }, 0))
            }
        };
        // SAFETY: forwarded from the caller.
        unsafe { put(out, bytes) };
        rc
    }

    /// # Safety
    /// Called by the host through the table: `host` valid until shutdown, `config` readable, `out` writable.
    pub unsafe fn init<T: Provider>(
        slot: &Slot<T>,
        host: *const HostApi,
        config: ByteSlice,
        out: *mut Buffer,
    ) -> i32 {
        // SAFETY: the host passes a readable config slice for the duration of the call.
        let config = unsafe { config.as_slice() };
        let host = if host.is_null() {
            None
        } else {
            // SAFETY: a non-null host pointer points at a host table valid until shutdown, of
            // the layout its minor version says.
            Some(unsafe { read_host_table(host) })
        };
        // SAFETY: out is writable per the ABI.
        unsafe {
            guard("init", out, 0, || {
                let api = host.ok_or_else(|| PluginError::new("init called without host capabilities"))?;
                if api.abi_major != ABI_MAJOR {
                    return Err(PluginError::new(format!(
                        "host speaks plugin ABI {}.{}, this plugin was built for ABI {ABI_MAJOR}.x",
                        api.abi_major, api.abi_minor
                    )));
                }
                let config: Value = if config.is_empty() {
                    Value::Object(Default::default())
                } else {
                    serde_json::from_slice(config)?
                };
                let provider = T::init(
                    config,
                    Host {
                        kind: HostKind::Abi(api),
                    },
                )?;
                let mut slot = slot.lock();
                if let Some(mut old) = slot.take() {
                    old.shutdown();
                }
                *slot = Some(provider);
                Ok(serde_json::json!({}))
            })
        }
    }

    /// # Safety
    /// `out` writable.
    pub unsafe fn describe<T: Provider>(slot: &Slot<T>, out: *mut Buffer) -> i32 {
        // SAFETY: out is writable per the ABI.
        unsafe {
            guard("describe", out, 0, || match slot.lock().as_ref() {
                Some(p) => Ok(p.describe()),
                None => Err(PluginError::new("describe called before init")),
            })
        }
    }

    /// Decodes JSON after checking the whole input is UTF-8 once: `from_slice` checks every
    /// string on its own, which cost more than the rest of parsing a request's short strings.
    pub(crate) fn parse<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// # Safety
    /// `request` readable, `out` writable.
    pub unsafe fn enrich<T: Provider>(slot: &Slot<T>, request: ByteSlice, out: *mut Buffer) -> i32 {
        // SAFETY: the host passes a readable request slice for the duration of the call.
        let request = unsafe { request.as_slice() };
        // SAFETY: out is writable per the ABI.
        unsafe {
            // An answer is rarely larger than its request: sizing the buffer so saves the
            // copies, and the allocator's work, of growing it by doubling.
            guard("enrich", out, request.len(), || {
                let request: EnrichRequest = parse(request)
                    .map_err(|e| PluginError::new(format!("enrich request is not valid: {e}")))?;
                match slot.lock().as_mut() {
                    Some(p) => p.enrich(request),
                    None => Err(PluginError::new("enrich called before init")),
                }
            })
        }
    }

    /// # Safety
    /// `buf` came from this plugin's `put`.
    pub unsafe fn free(buf: Buffer) {
        // SAFETY: the buffer was produced by Buffer::from_vec in this library.
        drop(unsafe { buf.into_vec() });
    }

    pub fn shutdown<T: Provider>(slot: &Slot<T>) {
        // A panic in shutdown has nowhere to be reported; swallowing it keeps the unwind inside.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            if let Some(mut p) = slot.lock().take() {
                p.shutdown();
            }
        }));
    }
}

/// Exports a [`Provider`] as a tierd plugin: defines the `tierd_plugin_entry` symbol and the
/// static [`crate::PluginTable`] behind it. Use once per `cdylib` crate:
///
/// ```ignore
/// tierd_plugin_api::export_plugin!(MyProvider);
/// ```
///
/// The table's name and version are the crate's `CARGO_PKG_NAME` / `CARGO_PKG_VERSION`; the host
/// keys caches by the name and version `describe` returns.
///
/// `export_plugin!(MyProvider, abi_major = N)` builds a table claiming another ABI major, and
/// `export_plugin!(MyProvider, abi_major = N, abi_minor = M)` another version altogether; they
/// exist for the host's version tests only.
#[macro_export]
macro_rules! export_plugin {
    ($provider:ty) => {
        $crate::export_plugin!($provider, abi_major = $crate::ABI_MAJOR);
    };
    ($provider:ty, abi_major = $major:expr) => {
        $crate::export_plugin!($provider, abi_major = $major, abi_minor = $crate::ABI_MINOR);
    };
    ($provider:ty, abi_major = $major:expr, abi_minor = $minor:expr) => {
        // The generated glue is the plugin's FFI boundary; `unsafe` is confined to it.
        #[allow(unsafe_code)]
        const _: () = {
            static SLOT: $crate::__private::Slot<$provider> = $crate::__private::Slot::new();

            unsafe extern "C" fn init(
                host: *const $crate::HostApi,
                config: $crate::ByteSlice,
                out: *mut $crate::Buffer,
            ) -> i32 {
                // SAFETY: forwarded from the host, which follows the ABI.
                unsafe { $crate::__private::init(&SLOT, host, config, out) }
            }
            unsafe extern "C" fn describe(out: *mut $crate::Buffer) -> i32 {
                // SAFETY: forwarded from the host, which follows the ABI.
                unsafe { $crate::__private::describe(&SLOT, out) }
            }
            unsafe extern "C" fn enrich(request: $crate::ByteSlice, out: *mut $crate::Buffer) -> i32 {
                // SAFETY: forwarded from the host, which follows the ABI.
                unsafe { $crate::__private::enrich(&SLOT, request, out) }
            }
            unsafe extern "C" fn free(buf: $crate::Buffer) {
                // SAFETY: the host only frees buffers this plugin produced.
                unsafe { $crate::__private::free(buf) }
            }
            unsafe extern "C" fn shutdown() {
                $crate::__private::shutdown(&SLOT)
            }

            static TABLE: $crate::PluginTable = $crate::PluginTable {
                abi_major: $major,
                abi_minor: $minor,
                name: $crate::StrRef::from_static(env!("CARGO_PKG_NAME")),
                version: $crate::StrRef::from_static(env!("CARGO_PKG_VERSION")),
                init,
                describe,
                enrich,
                free,
                shutdown,
            };

            #[no_mangle]
            pub extern "C" fn tierd_plugin_entry() -> *const $crate::PluginTable {
                &TABLE
            }
        };
    };
}
