//! The stop signal every long-running task takes explicitly: a `watch` channel whose value turns
//! `true` once when the process is asked to stop (SIGTERM from systemd, SIGINT from Ctrl-C).
//!
//! `true` means "finish the batches in flight, commit them, then return": a batch's push outcome and
//! its state commit together (see tierd-store), so stopping between batches loses nothing. A second
//! signal while stopping exits at once, for the operator who really means it; the store's crash
//! safety makes that safe too, only slower to resume.

use tokio::sync::watch;

/// Receiver side of the stop signal; `*signal.borrow()` is `true` once stopping.
pub type ShutdownSignal = watch::Receiver<bool>;

/// A stop signal nobody will ever raise: for one-shot commands and tests that stop by themselves.
#[allow(dead_code)]
pub fn never() -> (watch::Sender<bool>, ShutdownSignal) {
    watch::channel(false)
}

/// Installs SIGTERM and SIGINT handlers (on Unix; Ctrl-C elsewhere) and returns the stop channel.
/// Keep the sender to stop programmatically too. Must be called inside a Tokio runtime.
pub fn install() -> std::io::Result<(watch::Sender<bool>, ShutdownSignal)> {
    let (tx, rx) = watch::channel(false);
    let signals = Signals::new()?;
    let sender = tx.clone();
    tokio::spawn(async move {
        let mut signals = signals;
        let name = signals.next().await;
        tracing::info!(signal = name, "stopping: finishing the batches in flight");
        let _ = sender.send(true);
        let name = signals.next().await;
        tracing::warn!(signal = name, "second stop signal: exiting now");
        std::process::exit(130);
    });
    Ok((tx, rx))
}

/// Waits until `signal` says stop (or its sender is gone, which also means nobody will run us).
pub async fn requested(signal: &mut ShutdownSignal) {
    let _ = signal.wait_for(|stop| *stop).await;
}

#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Signals)
    }

    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requested_returns_once_the_sender_says_stop() {
        let (tx, mut rx) = never();
        assert!(!*rx.borrow());
        tx.send(true).expect("receiver alive");
        requested(&mut rx).await;
        assert!(*rx.borrow());
    }

    #[tokio::test]
    async fn requested_returns_when_the_sender_is_gone() {
        let (tx, mut rx) = never();
        drop(tx);
        requested(&mut rx).await;
    }
}
