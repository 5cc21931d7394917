//! A shared library that is not a tierd plugin: it lacks the `tierd_plugin_entry` symbol.
//! The host must refuse it by name.

/// Present so the library has some code in it.
pub fn not_a_plugin() -> u32 {
    7
}
