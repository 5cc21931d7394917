//! What can go wrong loading or calling a plugin, worded for the person running tierd.

use std::path::PathBuf;

/// A plugin could not be loaded, started or called.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The file is missing or is not a loadable library.
    #[error("cannot load plugin library {path}: {reason} (expected a shared library built as a cdylib against tierd-plugin-api)")]
    NotALibrary {
        /// The file.
        path: PathBuf,
        /// The loader's explanation.
        reason: String,
    },
    /// The library lacks the entry symbol.
    #[error("{path} is not a tierd plugin: it does not export the symbol `{symbol}` (build it with tierd_plugin_api::export_plugin!)")]
    MissingSymbol {
        /// The file.
        path: PathBuf,
        /// The symbol looked for.
        symbol: &'static str,
    },
    /// The library speaks another ABI.
    #[error("{path} was built for plugin ABI {found_major}.{found_minor}, but this host speaks ABI {expected_major}.{expected_minor} (accepts {expected_major}.0 to {expected_major}.{expected_minor}): rebuild the plugin against this tierd's tierd-plugin-api")]
    AbiMismatch {
        /// The file.
        path: PathBuf,
        /// The host's major.
        expected_major: u32,
        /// The host's minor.
        expected_minor: u32,
        /// The plugin's major.
        found_major: u32,
        /// The plugin's minor.
        found_minor: u32,
    },
    /// The plugin's configuration is unusable.
    #[error("plugin {plugin}: {message}")]
    Config {
        /// Plugin name from config.
        plugin: String,
        /// What to fix.
        message: String,
    },
    /// A call failed (plugin error, crash, timeout, protocol violation).
    #[error("plugin {plugin}: {call} failed: {message}")]
    Call {
        /// Plugin name from config.
        plugin: String,
        /// `init`, `describe`, `enrich`...
        call: &'static str,
        /// Why.
        message: String,
    },
}
