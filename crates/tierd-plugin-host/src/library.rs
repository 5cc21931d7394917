//! Opening a plugin library and calling through its C table. Used by `in_process` mode in the
//! host and by the child of `isolated` mode; knows nothing of processes, batching or caching.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use tierd_plugin_api::{Buffer, ByteSlice, EntryFn, ErrorReply, HostApi, PluginTable};
use tierd_plugin_api::{ABI_MAJOR, ABI_MINOR, ENTRY_SYMBOL, RC_OK};

use crate::error::HostError;

/// What the host offers a loaded plugin; implemented by the in-process host (HTTP through the
/// host's client) and by the isolated child (relayed to the parent over stdio).
pub(crate) trait HostCallbacks: Send + Sync {
    fn log(&self, level: u32, message: &str);
    /// Runs an `HttpBatch` JSON, answering `HttpResults` JSON, or an error message.
    fn http(&self, batch: &[u8]) -> Result<Vec<u8>, String>;
    /// Resolves a `DnsBatch` JSON, answering `DnsResults` JSON, or an error message.
    fn dns(&self, batch: &[u8]) -> Result<Vec<u8>, String>;
}

/// A loaded plugin library and the host table handed to its `init`.
pub(crate) struct PluginLibrary {
    table: *const PluginTable,
    /// The table passed to init; boxed so its address stays fixed while the plugin holds it.
    host_api: Box<HostApi>,
    /// What `host_api.ctx` points at.
    _callbacks: Box<Arc<dyn HostCallbacks>>,
    /// Never unloaded (see [`PluginLibrary::open`]).
    _library: std::mem::ManuallyDrop<libloading::Library>,
}

// SAFETY: the table is static data of the library, which is never unloaded; the SDK serialises
// calls into a plugin, and callbacks are Send + Sync.
unsafe impl Send for PluginLibrary {}
// SAFETY: as above.
unsafe impl Sync for PluginLibrary {}

impl PluginLibrary {
    /// Opens `path` and checks it is a plugin of our ABI major.
    ///
    /// Libraries are never unloaded: unloading a Rust cdylib whose threads or thread-locals are
    /// still alive is undefined behaviour on common platforms, and a plugin is loaded once per
    /// process anyway.
    pub(crate) fn open(path: &Path, callbacks: Arc<dyn HostCallbacks>) -> Result<Self, HostError> {
        // SAFETY: loading runs the library's initialisers; plugins are code the operator chose
        // to run, which is the trust this mode (and the isolated child) is for.
        let library = unsafe { libloading::Library::new(path) }.map_err(|e| HostError::NotALibrary {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        // SAFETY: the symbol's type is fixed by the ABI (EntryFn).
        let entry = unsafe { library.get::<EntryFn>(ENTRY_SYMBOL.as_bytes()) }
            .map(|sym| *sym)
            .map_err(|_| HostError::MissingSymbol {
                path: path.to_owned(),
                symbol: ENTRY_SYMBOL,
            })?;
        // SAFETY: calling the exported entry, which takes no arguments and returns a static table.
        let table = unsafe { entry() };
        if table.is_null() {
            return Err(HostError::NotALibrary {
                path: path.to_owned(),
                reason: format!("{ENTRY_SYMBOL} returned no plugin table"),
            });
        }
        // SAFETY: every ABI version starts with the two u32 version fields, so reading them is
        // valid whatever the rest of the layout is.
        let (found_major, found_minor) = unsafe { ((*table).abi_major, (*table).abi_minor) };
        if found_major != ABI_MAJOR || found_minor > ABI_MINOR {
            return Err(HostError::AbiMismatch {
                path: path.to_owned(),
                expected_major: ABI_MAJOR,
                expected_minor: ABI_MINOR,
                found_major,
                found_minor,
            });
        }
        let callbacks = Box::new(callbacks);
        let host_api = Box::new(HostApi {
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            ctx: &*callbacks as *const Arc<dyn HostCallbacks> as *mut c_void,
            log: log_callback,
            http: http_callback,
            free: free_callback,
            dns: dns_callback,
        });
        Ok(PluginLibrary {
            table,
            host_api,
            _callbacks: callbacks,
            _library: std::mem::ManuallyDrop::new(library),
        })
    }

    fn table(&self) -> &PluginTable {
        // SAFETY: checked non-null and of our ABI in open; the library is never unloaded.
        unsafe { &*self.table }
    }

    /// `(abi_major, abi_minor, name, version)` from the table.
    pub(crate) fn identity(&self) -> (u32, u32, String, String) {
        let t = self.table();
        // SAFETY: the table's strings are static in the library.
        let (name, version) = unsafe { (t.name.to_string_lossy(), t.version.to_string_lossy()) };
        (t.abi_major, t.abi_minor, name, version)
    }

    /// Runs one table call, returning its JSON answer or its error message.
    fn call(&self, f: impl FnOnce(*mut Buffer) -> i32) -> Result<Vec<u8>, String> {
        let mut out = Buffer::empty();
        let rc = f(&mut out);
        // SAFETY: the plugin wrote a buffer it owns (or left it empty).
        let bytes = unsafe { out.as_slice() }.to_vec();
        // SAFETY: the buffer goes back to the plugin's own free, once.
        unsafe { (self.table().free)(out) };
        if rc == RC_OK {
            Ok(bytes)
        } else {
            Err(serde_json::from_slice::<ErrorReply>(&bytes)
                .map(|e| e.error)
                .unwrap_or_else(|_| format!("error code {rc}: {}", String::from_utf8_lossy(&bytes))))
        }
    }

    pub(crate) fn init(&self, config: &[u8]) -> Result<Vec<u8>, String> {
        let t = self.table();
        // SAFETY: host_api lives as long as self; config and out are valid for the call.
        self.call(|out| unsafe { (t.init)(&*self.host_api, ByteSlice::new(config), out) })
    }

    pub(crate) fn describe(&self) -> Result<Vec<u8>, String> {
        let t = self.table();
        // SAFETY: out is valid for the call.
        self.call(|out| unsafe { (t.describe)(out) })
    }

    pub(crate) fn enrich(&self, request: &[u8]) -> Result<Vec<u8>, String> {
        let t = self.table();
        // SAFETY: request and out are valid for the call.
        self.call(|out| unsafe { (t.enrich)(ByteSlice::new(request), out) })
    }

    pub(crate) fn shutdown(&self) {
        // SAFETY: shutdown takes no arguments; no call follows except init.
        unsafe { (self.table().shutdown)() }
    }
}

/// # Safety
/// `ctx` is the pointer set in [`PluginLibrary::open`].
unsafe fn callbacks<'a>(ctx: *mut c_void) -> &'a Arc<dyn HostCallbacks> {
    // SAFETY: ctx points at the boxed Arc owned by the PluginLibrary, alive while it is.
    unsafe { &*(ctx as *const Arc<dyn HostCallbacks>) }
}

// The callbacks catch panics: an unwind must not cross back into the plugin.

unsafe extern "C" fn log_callback(ctx: *mut c_void, level: u32, message: ByteSlice) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the plugin passes a slice valid for this call, and our ctx.
        let (cb, bytes) = unsafe { (callbacks(ctx), message.as_slice()) };
        cb.log(level, &String::from_utf8_lossy(bytes));
    }));
}

unsafe extern "C" fn http_callback(ctx: *mut c_void, request: ByteSlice, out: *mut Buffer) -> i32 {
    // SAFETY: forwarded from the plugin, which follows the ABI.
    unsafe { capability_call(ctx, request, out, "HTTP", |cb, bytes| cb.http(bytes)) }
}

unsafe extern "C" fn dns_callback(ctx: *mut c_void, request: ByteSlice, out: *mut Buffer) -> i32 {
    // SAFETY: forwarded from the plugin, which follows the ABI.
    unsafe { capability_call(ctx, request, out, "DNS", |cb, bytes| cb.dns(bytes)) }
}

/// Runs one capability call for the plugin, answering its JSON (or an error) in `out`.
///
/// # Safety
/// `ctx` is ours, `request` valid for the call, `out` null or valid for writes.
unsafe fn capability_call(
    ctx: *mut c_void,
    request: ByteSlice,
    out: *mut Buffer,
    what: &str,
    call: impl FnOnce(&Arc<dyn HostCallbacks>, &[u8]) -> Result<Vec<u8>, String>,
) -> i32 {
    let answer = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the plugin passes a slice valid for this call, and our ctx.
        let (cb, bytes) = unsafe { (callbacks(ctx), request.as_slice()) };
        call(cb, bytes)
    }))
    .unwrap_or_else(|_| Err(format!("the host's {what} capability panicked")));
    let (rc, bytes) = match answer {
        Ok(bytes) => (RC_OK, bytes),
        Err(error) => (
            tierd_plugin_api::RC_ERROR,
            serde_json::to_vec(&ErrorReply { error }).unwrap_or_default(),
        ),
    };
    if !out.is_null() {
        // SAFETY: out is valid for writes per the ABI; the plugin returns it through free_callback.
        unsafe { out.write(Buffer::from_vec(bytes)) };
    }
    rc
}

unsafe extern "C" fn free_callback(_ctx: *mut c_void, buf: Buffer) {
    // SAFETY: only buffers made by capability_call (Buffer::from_vec in this binary) come back here.
    drop(unsafe { buf.into_vec() });
}
