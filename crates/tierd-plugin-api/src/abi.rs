//! The C-compatible boundary: the table a plugin exports and the table the host hands to `init`.
//!
//! Everything crossing the boundary is either a plain integer, a function pointer with the C
//! calling convention, or a (pointer, length) pair of UTF-8 JSON bytes. No Rust type with an
//! unstable layout (String, Vec, trait objects) ever crosses it, which is what lets a plugin
//! built by one compiler version run in a host built by another.
//!
//! Must not depend on the SDK layer (`sdk`) or on serde: the host uses these types raw.

use std::ffi::c_void;

/// The ABI major version this crate speaks. A host refuses a plugin with a different major.
pub const ABI_MAJOR: u32 = 1;
/// The ABI minor version this crate speaks. A host accepts plugins with a lower or equal minor.
///
/// - 1.0: log, HTTP, free.
/// - 1.1: [`HostApi::dns`] appended (TXT and MX lookups).
pub const ABI_MINOR: u32 = 1;

/// The one symbol a plugin library exports: `extern "C" fn() -> *const PluginTable`.
pub const ENTRY_SYMBOL: &str = "tierd_plugin_entry";

/// The signature of [`ENTRY_SYMBOL`].
pub type EntryFn = unsafe extern "C" fn() -> *const PluginTable;

/// Return code: success; the out buffer holds the JSON response.
pub const RC_OK: i32 = 0;
/// Return code: the call failed; the out buffer holds `{"error": "..."}`.
pub const RC_ERROR: i32 = 1;
/// Return code: the plugin panicked (caught by the SDK); the out buffer holds `{"error": "..."}`.
pub const RC_PANIC: i32 = 2;

/// Log levels passed to [`HostApi::log`].
pub const LOG_ERROR: u32 = 0;
/// Warning.
pub const LOG_WARN: u32 = 1;
/// Information.
pub const LOG_INFO: u32 = 2;
/// Debugging detail.
pub const LOG_DEBUG: u32 = 3;
/// Very verbose detail.
pub const LOG_TRACE: u32 = 4;

/// A static UTF-8 string inside the plugin (its name and version), valid while the library is loaded.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StrRef {
    /// First byte.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl StrRef {
    /// Points at a string that lives as long as the library.
    pub const fn from_static(s: &'static str) -> Self {
        Self {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Reads the string, replacing invalid UTF-8.
    ///
    /// # Safety
    /// `ptr` must point at `len` readable bytes that outlive the returned value.
    pub unsafe fn to_string_lossy(&self) -> String {
        if self.ptr.is_null() {
            return String::new();
        }
        // SAFETY: the caller guarantees ptr/len describe readable memory.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Borrowed bytes passed into a call; valid only for the duration of that call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ByteSlice {
    /// First byte (may be null when `len` is 0).
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl ByteSlice {
    /// Borrows `bytes` for one call.
    pub fn new(bytes: &[u8]) -> Self {
        Self {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// The borrowed bytes.
    ///
    /// # Safety
    /// `ptr` must point at `len` readable bytes for the lifetime `'a`.
    pub unsafe fn as_slice<'a>(&self) -> &'a [u8] {
        if self.ptr.is_null() || self.len == 0 {
            return &[];
        }
        // SAFETY: the caller guarantees ptr/len describe readable memory for 'a.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// Bytes allocated by one side and handed to the other, which must give them back to the
/// allocating side's `free` (the plugin's [`PluginTable::free`] or the host's [`HostApi::free`]).
/// Two sides may use different allocators, so neither may free the other's buffers.
#[repr(C)]
pub struct Buffer {
    /// First byte (null for an empty buffer).
    pub ptr: *mut u8,
    /// Length in bytes.
    pub len: usize,
    /// Allocation capacity, needed by the allocating side to free it.
    pub cap: usize,
}

impl Buffer {
    /// An empty buffer that owns nothing; freeing it is a no-op.
    pub const fn empty() -> Self {
        Self {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }

    /// Hands a vector's allocation over; the same side must later call [`Buffer::into_vec`].
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        let mut bytes = std::mem::ManuallyDrop::new(bytes);
        Self {
            ptr: bytes.as_mut_ptr(),
            len: bytes.len(),
            cap: bytes.capacity(),
        }
    }

    /// Takes the allocation back.
    ///
    /// # Safety
    /// The buffer must come from [`Buffer::from_vec`] in this same binary (same allocator), or be
    /// empty, and must not be used again.
    pub unsafe fn into_vec(self) -> Vec<u8> {
        if self.ptr.is_null() {
            return Vec::new();
        }
        // SAFETY: the caller guarantees the parts come from a Vec<u8> of this allocator.
        unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) }
    }

    /// The bytes, borrowed.
    ///
    /// # Safety
    /// The buffer must hold `len` readable bytes (as every buffer produced by a well-behaved side does).
    pub unsafe fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() || self.len == 0 {
            return &[];
        }
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// The table a plugin exports through [`ENTRY_SYMBOL`]. It is a `static` in the plugin.
///
/// Layout rule: `abi_major` and `abi_minor` are the first two fields in every ABI version, so a
/// host can read them from any plugin before trusting the rest of the layout. Minor versions may
/// only append fields.
#[repr(C)]
pub struct PluginTable {
    /// [`ABI_MAJOR`] the plugin was built against.
    pub abi_major: u32,
    /// [`ABI_MINOR`] the plugin was built against.
    pub abi_minor: u32,
    /// The plugin's name (e.g. `firmographic`).
    pub name: StrRef,
    /// The plugin's version (e.g. `0.1.0`); part of the cache key.
    pub version: StrRef,
    /// `init(host, config_json, out)`: called once before anything else. `host` stays valid until
    /// `shutdown` returns. On success `out` holds `{}` or nothing.
    pub init: unsafe extern "C" fn(host: *const HostApi, config: ByteSlice, out: *mut Buffer) -> i32,
    /// `describe(out)`: `out` receives the [`crate::Description`] JSON.
    pub describe: unsafe extern "C" fn(out: *mut Buffer) -> i32,
    /// `enrich(request_json, out)`: `out` receives the [`crate::EnrichResponse`] JSON.
    pub enrich: unsafe extern "C" fn(request: ByteSlice, out: *mut Buffer) -> i32,
    /// Frees a buffer this plugin produced.
    pub free: unsafe extern "C" fn(buf: Buffer),
    /// Releases the plugin's resources; no call follows except possibly `init` again.
    pub shutdown: unsafe extern "C" fn(),
}

// SAFETY: the table is immutable static data (integers, pointers to static strings, function
// pointers); sharing it between threads reads it only.
unsafe impl Sync for PluginTable {}

/// Capabilities the host passes to `init`. Every function receives `ctx` back as its first argument.
///
/// Minor versions only append fields: a plugin may read a field only when the host's
/// `abi_minor` has it (the SDK checks; a 1.0 host's table ends at `free`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HostApi {
    /// The host's [`ABI_MAJOR`].
    pub abi_major: u32,
    /// The host's [`ABI_MINOR`].
    pub abi_minor: u32,
    /// Opaque host state; thread-safe on the host side.
    pub ctx: *mut c_void,
    /// Writes one log line (UTF-8) at `level` ([`LOG_ERROR`]..[`LOG_TRACE`]) under the plugin's name.
    pub log: unsafe extern "C" fn(ctx: *mut c_void, level: u32, message: ByteSlice),
    /// Runs an [`crate::HttpBatch`] JSON and writes an [`crate::HttpResults`] JSON into `out`
    /// (allocated by the host: give it back to `free`). Returns [`RC_OK`] or [`RC_ERROR`].
    pub http: unsafe extern "C" fn(ctx: *mut c_void, request: ByteSlice, out: *mut Buffer) -> i32,
    /// Frees a buffer the host produced.
    pub free: unsafe extern "C" fn(ctx: *mut c_void, buf: Buffer),
    /// Since 1.1. Resolves a [`crate::DnsBatch`] JSON and writes a [`crate::DnsResults`] JSON into
    /// `out` (allocated by the host: give it back to `free`). Returns [`RC_OK`] or [`RC_ERROR`].
    pub dns: unsafe extern "C" fn(ctx: *mut c_void, request: ByteSlice, out: *mut Buffer) -> i32,
}

/// The 1.0 layout of [`HostApi`], a prefix of every later one: what a plugin may read from a
/// host whose `abi_minor` is 0.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HostApiV1_0 {
    /// The host's [`ABI_MAJOR`].
    pub abi_major: u32,
    /// The host's [`ABI_MINOR`] (0).
    pub abi_minor: u32,
    /// Opaque host state.
    pub ctx: *mut c_void,
    /// As [`HostApi::log`].
    pub log: unsafe extern "C" fn(ctx: *mut c_void, level: u32, message: ByteSlice),
    /// As [`HostApi::http`].
    pub http: unsafe extern "C" fn(ctx: *mut c_void, request: ByteSlice, out: *mut Buffer) -> i32,
    /// As [`HostApi::free`].
    pub free: unsafe extern "C" fn(ctx: *mut c_void, buf: Buffer),
}
