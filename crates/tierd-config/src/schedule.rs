//! `[schedule]`: when the daemon's leader starts runs on its own. The scheduler that reads it
//! lives in tierd-server.

use std::str::FromStr;

use serde::Deserialize;

/// `[schedule]`: when the leader starts runs on its own.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSettings {
    /// Cron expression (with seconds) of full reassessments; `"off"` disables them.
    #[serde(default = "default_full")]
    pub full: String,
    /// Cron expression (with seconds) of incremental runs; `"off"` disables them.
    #[serde(default = "default_incremental")]
    pub incremental: String,
    /// The time zone cron expressions are read in. Only `UTC` is supported.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Run a job missed while the daemon was down once at start.
    #[serde(default = "default_catch_up")]
    pub catch_up: bool,
}

fn default_full() -> String {
    // 06:00 UTC on the first day of each quarter.
    "0 0 6 1 1,4,7,10 *".to_string()
}
fn default_incremental() -> String {
    "0 0 * * * *".to_string()
}
fn default_timezone() -> String {
    "UTC".to_string()
}
fn default_catch_up() -> bool {
    true
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        ScheduleSettings {
            full: default_full(),
            incremental: default_incremental(),
            timezone: default_timezone(),
            catch_up: default_catch_up(),
        }
    }
}

impl crate::Checked for ScheduleSettings {
    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (key, expr) in [("full", &self.full), ("incremental", &self.incremental)] {
            if let Err(e) = parse_job(expr) {
                out.push((key, e));
            }
        }
        if !matches!(self.timezone.as_str(), "UTC" | "Etc/UTC") {
            out.push((
                "timezone",
                format!(
                    "'{}' is not supported: only UTC is; write the cron times in UTC",
                    self.timezone
                ),
            ));
        }
        out
    }
}

/// A job's cron schedule; `None` for `"off"`.
pub fn parse_job(expr: &str) -> Result<Option<cron::Schedule>, String> {
    let expr = expr.trim();
    if expr.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    cron::Schedule::from_str(expr).map(Some).map_err(|e| {
        format!(
            "'{expr}' is not a cron expression ({e}); six fields starting with seconds, \
             e.g. \"0 0 * * * *\" for hourly, or \"off\""
        )
    })
}
