//! The progress line `tierd sync --once` and `tierd demo` draw on an interactive terminal.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::Progress;

/// A `\r`-redrawn stderr line, at most ten times a second; silent when stderr is not a terminal.
pub struct ProgressLine {
    interactive: bool,
    /// The stage, its size, and when the line was last drawn.
    stage: Mutex<(String, Option<u64>, Instant)>,
    done: AtomicU64,
}

impl ProgressLine {
    /// A line drawn only when `interactive` (stderr is a terminal).
    pub fn new(interactive: bool) -> Self {
        ProgressLine {
            interactive,
            stage: Mutex::new((String::new(), None, Instant::now())),
            done: AtomicU64::new(0),
        }
    }

    fn draw(&self, force: bool) {
        if !self.interactive {
            return;
        }
        let Ok(mut stage) = self.stage.lock() else {
            return;
        };
        if !force && stage.2.elapsed() < Duration::from_millis(100) {
            return;
        }
        stage.2 = Instant::now();
        let done = self.done.load(Ordering::Relaxed);
        let line = match stage.1 {
            Some(total) if total > 0 => format!("  {}: {done}/{total} ({}%)", stage.0, done * 100 / total),
            _ => format!("  {}: {done}", stage.0),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }
}

impl Progress for ProgressLine {
    fn stage(&self, name: &str, total: Option<u64>) {
        if let Ok(mut s) = self.stage.lock() {
            s.0 = name.to_string();
            s.1 = total;
        }
        self.done.store(0, Ordering::Relaxed);
        self.draw(true);
    }

    fn advance(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        self.draw(false);
    }
}
