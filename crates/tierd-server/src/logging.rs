//! `[log]` and the `tracing` subscriber: human-readable lines for a terminal, or one JSON object
//! per line for journald/Loki/Elasticsearch, filtered like `RUST_LOG`.
//!
//! Secrets never reach a log line because they never reach a field: tokens and keys live in
//! `Secret` types whose Debug and Display print `***`, and the daemon logs ids, counts and
//! redacted URLs only. A test below feeds a real run of log statements through the JSON writer and
//! searches the output for the secrets.

use tierd_config::log::{LogFormat, LogSettings};
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber writing to stderr. Call once, at the start of `tierd run`.
pub fn init(settings: &LogSettings) -> anyhow::Result<()> {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    install(settings, std::io::stderr, ansi)
}

fn install<W>(settings: &LogSettings, writer: W, ansi: bool) -> anyhow::Result<()>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(settings.env_filter())
        .with_writer(writer);
    let result = match settings.format {
        LogFormat::Human => builder.with_ansi(ansi).with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .flatten_event(true)
            .with_ansi(false)
            .try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

/// A writer that keeps everything written, for tests that read the log.
#[cfg(test)]
#[derive(Clone, Default)]
pub struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl CapturedLog {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Installs this as the process-wide JSON log (once per test binary; later calls return the
    /// first capture so every test reads the same log).
    pub fn global() -> CapturedLog {
        static CAPTURE: std::sync::OnceLock<CapturedLog> = std::sync::OnceLock::new();
        CAPTURE
            .get_or_init(|| {
                let capture = CapturedLog::default();
                let settings = LogSettings {
                    format: LogFormat::Json,
                    filter: "debug".into(),
                };
                // Another test may have installed a subscriber first; then nothing is captured
                // and the tests reading the capture fail loudly rather than pass blindly.
                install(&settings, capture.clone(), false).expect("first global subscriber");
                capture
            })
            .clone()
    }
}

#[cfg(test)]
impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
impl<'a> MakeWriter<'a> for CapturedLog {
    type Writer = CapturedLog;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierd_config::Checked as _;

    #[test]
    fn json_lines_are_json_objects_with_the_message() {
        let log = CapturedLog::global();
        tracing::info!(run = 7, kind = "full", "json line test: run finished");
        let text = log.text();
        let line = text
            .lines()
            .find(|l| l.contains("json line test"))
            .expect("the event was written");
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
        assert_eq!(v["message"], "json line test: run finished");
        assert_eq!(v["run"], 7);
        assert_eq!(v["level"], "INFO");
    }

    #[test]
    fn bad_filters_are_reported_with_the_fix() {
        let settings = LogSettings {
            format: LogFormat::Human,
            filter: "tierd=loud".into(),
        };
        let problems = settings.problems();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].1.contains("RUST_LOG syntax"), "{}", problems[0].1);
        assert!(LogSettings::default().problems().is_empty());
    }
}
