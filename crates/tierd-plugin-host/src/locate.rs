//! Where plugin libraries are found without a configuration: beside the tierd binary (and in
//! its `deps/`, where cargo puts libraries built as another crate's dependency). Used by
//! `tierd plugins list` and `tierd demo`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::PluginConfig;

/// The built-in plugins: (config name, library name without prefix and suffix).
pub const BUILT_IN: [(&str, &str); 3] = [
    ("firmographic", "firmographic"),
    ("technographic", "technographic"),
    ("contract-renewals", "contract_renewals"),
];

/// The plugin libraries beside the tierd binary (and in its `deps/`, where cargo puts libraries
/// built as another crate's dependency): the built-in ones and any named `tierd_plugin_<name>`,
/// as `(name, path)` by name.
pub fn beside_binary() -> Vec<(String, PathBuf)> {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    else {
        return Vec::new();
    };
    let plugin_name = |file: &str| {
        let stem = file.strip_prefix(DLL_PREFIX)?.strip_suffix(DLL_SUFFIX)?;
        match BUILT_IN.iter().find(|(_, lib)| *lib == stem) {
            Some((name, _)) => Some((*name).to_owned()),
            None => stem.strip_prefix("tierd_plugin_").map(|n| n.replace('_', "-")),
        }
    };
    let mut found = BTreeMap::new();
    for d in [dir.join("deps"), dir] {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(plugin_name) else {
                continue;
            };
            // Later directories win: the binary's own directory over deps/.
            found.insert(name, entry.path());
        }
    }
    found.into_iter().collect()
}

/// The configured plugin whose library or command is `path`, by file identity.
pub fn configured_for<'a>(
    configs: &'a BTreeMap<String, PluginConfig>,
    path: &Path,
) -> Option<(&'a String, &'a PluginConfig)> {
    configs.iter().find(|(_, cfg)| {
        [&cfg.path, &cfg.command]
            .into_iter()
            .flatten()
            .any(|p| same_file(p, path))
    })
}

/// Whether two paths name one plugin library: the same canonical path, the same device and inode
/// (a hard link), or the same library file name (cargo builds `deps/libX.so` and copies it beside
/// the binary as `libX.so`).
fn same_file(a: &Path, b: &Path) -> bool {
    if a.file_name().is_some() && a.file_name() == b.file_name() {
        return true;
    }
    if let (Ok(x), Ok(y)) = (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        if x == y {
            return true;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    false
}
