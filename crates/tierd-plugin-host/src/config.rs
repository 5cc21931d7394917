//! Per-plugin configuration: the `[plugins.<name>]` tables of `tierd.toml`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How a plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Loaded into the host process: fastest; a crash takes the host down, so for trusted plugins.
    InProcess,
    /// Loaded by a child `tierd plugin-host` process: a crash or hang kills only the child.
    #[default]
    Isolated,
    /// Any executable speaking the stdio protocol (`docs/plugin-protocol.md`).
    Exec,
}

impl Mode {
    /// The name used in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::InProcess => "in_process",
            Mode::Isolated => "isolated",
            Mode::Exec => "exec",
        }
    }
}

/// `[plugins.<name>]`: one configured plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The plugin library (`in_process`, `isolated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The executable (`exec`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<PathBuf>,
    /// Arguments for `command`.
    #[serde(default)]
    pub args: Vec<String>,
    /// How the plugin runs.
    #[serde(default)]
    pub mode: Mode,
    /// Longest one call (init, describe, one enrich batch) may take.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Accounts per enrich call [default: the plugin's preferred size, else 100].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// Batches in flight at once (child processes in `isolated`/`exec` mode).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// How long a result stays fresh in the cache.
    #[serde(default = "default_cache_ttl_secs")]
    pub cache_ttl_secs: u64,
    /// Hosts the plugin may reach, added to those it declares (`"*"`, `"{account.domain}"`, `"*.example.com"`).
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// HTTP requests per minute [default: the plugin's declared limit, else unlimited].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    /// Longest one HTTP request may take.
    #[serde(default = "default_http_timeout_ms")]
    pub http_timeout_ms: u64,
    /// Largest message accepted from an isolated/exec plugin; larger fails the batch.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Routes hosts to fixed addresses (tests, demo): `{"api.example.com" = "127.0.0.1:8080", "*" = ...}`.
    #[serde(default)]
    pub resolve: BTreeMap<String, String>,
    /// The DNS capability (`[plugins.<name>.dns]`).
    #[serde(default)]
    pub dns: DnsSettings,
    /// The plugin's own settings, passed to `init`.
    #[serde(default)]
    pub config: Map<String, Value>,
    /// Environment variable holding the API key, passed to the plugin as `config.api_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Environment variables passed to the plugin's process (`isolated`, `exec`) besides `PATH`,
    /// the locale and `api_key_env`; the rest of tierd's environment (its CRM token, admin
    /// token, store URL, other plugins' keys) is withheld.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
}

/// Variables every plugin process gets when set: the search path and the locale.
const BASE_ENV: &[&str] = &["PATH", "LANG", "LANGUAGE", "TZ"];

/// `[plugins.<name>.dns]`: the plugin's DNS capability (TXT and MX lookups, plugin ABI 1.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSettings {
    /// Whether the plugin may resolve names at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Nameservers as `IP:port` [default: the system's, from `/etc/resolv.conf`]; tests point
    /// this at a local responder.
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// Names the plugin may query besides the domains of the accounts in its batch and their
    /// subdomains (`"example.com"`, `"*.example.com"`, `"*"`).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Queries per minute [default: unlimited].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    /// Longest one query may take.
    #[serde(default = "default_dns_timeout_ms")]
    pub timeout_ms: u64,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            enabled: true,
            nameservers: Vec::new(),
            allow: Vec::new(),
            rate_limit_per_minute: None,
            timeout_ms: default_dns_timeout_ms(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_dns_timeout_ms() -> u64 {
    5_000
}
fn default_timeout_ms() -> u64 {
    30_000
}
fn default_concurrency() -> usize {
    2
}
fn default_cache_ttl_secs() -> u64 {
    7 * 24 * 3600
}
fn default_http_timeout_ms() -> u64 {
    10_000
}
/// 16 MiB: a batch of 100 accounts with generous facts is far below; a runaway plugin is not.
fn default_max_message_bytes() -> usize {
    16 << 20
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            path: None,
            command: None,
            args: Vec::new(),
            mode: Mode::default(),
            timeout_ms: default_timeout_ms(),
            batch_size: None,
            concurrency: default_concurrency(),
            cache_ttl_secs: default_cache_ttl_secs(),
            allow_hosts: Vec::new(),
            rate_limit_per_minute: None,
            http_timeout_ms: default_http_timeout_ms(),
            max_message_bytes: default_max_message_bytes(),
            resolve: BTreeMap::new(),
            dns: DnsSettings::default(),
            config: Map::new(),
            api_key_env: None,
            env: Vec::new(),
        }
    }
}

impl PluginConfig {
    /// A plugin library at `path` run in `mode`.
    pub fn library(path: impl Into<PathBuf>, mode: Mode) -> Self {
        PluginConfig {
            path: Some(path.into()),
            mode,
            ..PluginConfig::default()
        }
    }

    /// An exec plugin run as `command`.
    pub fn exec(command: impl Into<PathBuf>) -> Self {
        PluginConfig {
            command: Some(command.into()),
            mode: Mode::Exec,
            ..PluginConfig::default()
        }
    }

    /// Sets the arguments of an exec `command`.
    pub fn with_args(mut self, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Makes relative `path` and `command` relative to `base` (the config file's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.path, &mut self.command].into_iter().flatten() {
            if p.is_relative() && p.components().count() > 1 {
                *p = base.join(&*p);
            }
        }
    }

    /// The whole environment of this plugin's process (`isolated`, `exec`): `PATH`, the locale
    /// (`LANG`, `LANGUAGE`, `TZ`, `LC_*`), its own `api_key_env` and the variables its `env`
    /// names, taken from this process's environment where set. Nothing else is inherited.
    pub fn process_environment(&self) -> Vec<(OsString, OsString)> {
        let wanted = |name: &str| {
            BASE_ENV.contains(&name)
                || name.starts_with("LC_")
                || self.api_key_env.as_deref() == Some(name)
                || self.env.iter().any(|e| e == name)
        };
        std::env::vars_os()
            .filter(|(name, _)| name.to_str().is_some_and(wanted))
            .collect()
    }

    /// Problems a person must fix, as `(key, message)` pairs relative to `[plugins.<name>]`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match self.mode {
            Mode::InProcess | Mode::Isolated if self.path.is_none() => out.push((
                "path",
                format!("required in mode \"{}\": the plugin library", self.mode.as_str()),
            )),
            Mode::Exec if self.command.is_none() => out.push((
                "command",
                "required in mode \"exec\": the plugin executable".to_owned(),
            )),
            _ => {}
        }
        if self.concurrency == 0 {
            out.push(("concurrency", "must be at least 1".to_owned()));
        }
        if self.batch_size == Some(0) {
            out.push(("batch_size", "must be at least 1".to_owned()));
        }
        if self.timeout_ms == 0 {
            out.push(("timeout_ms", "must be at least 1".to_owned()));
        }
        for name in &self.env {
            if name.is_empty() || name.contains('=') {
                out.push(("env", format!("{name:?} is not an environment variable name")));
            }
        }
        for server in &self.dns.nameservers {
            if server.parse::<std::net::SocketAddr>().is_err() {
                out.push(("dns.nameservers", format!("{server:?} is not an IP:port address")));
            }
        }
        if self.dns.timeout_ms == 0 {
            out.push(("dns.timeout_ms", "must be at least 1".to_owned()));
        }
        for (host, addr) in &self.resolve {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                out.push(("resolve", format!("{host} = {addr:?} is not an IP:port address")));
            }
        }
        out
    }
}
