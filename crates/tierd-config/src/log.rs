//! `[log]`: the log format and filter. The subscriber that uses it lives in tierd-server.

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

/// `[log]`: how the daemon logs.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `human` (coloured lines when on a terminal) or `json` (one object per line).
    #[serde(default)]
    pub format: LogFormat,
    /// Which events to keep, in `RUST_LOG` syntax (`info`, `tierd=debug,sqlx=warn`). The
    /// `RUST_LOG` environment variable, when set, wins.
    #[serde(default = "default_filter")]
    pub filter: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Lines for people.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

fn default_filter() -> String {
    // sqlx logs every statement at debug and slow ones at warn; only the latter help operators.
    "info,sqlx=warn".to_string()
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::default(),
            filter: default_filter(),
        }
    }
}

impl crate::Checked for LogSettings {
    fn problems(&self) -> Vec<(&'static str, String)> {
        match EnvFilter::try_new(&self.filter) {
            Ok(_) => Vec::new(),
            Err(e) => vec![(
                "filter",
                format!(
                    "'{}' is not a log filter ({e}); use RUST_LOG syntax such as \"info\" or \"tierd=debug,warn\"",
                    self.filter
                ),
            )],
        }
    }
}

impl LogSettings {
    /// The filter in effect: `RUST_LOG` when set and valid, else `filter`.
    pub fn env_filter(&self) -> EnvFilter {
        std::env::var("RUST_LOG")
            .ok()
            .filter(|f| !f.trim().is_empty())
            .and_then(|f| EnvFilter::try_new(f).ok())
            .unwrap_or_else(|| EnvFilter::try_new(&self.filter).unwrap_or_else(|_| EnvFilter::new("info")))
    }
}
