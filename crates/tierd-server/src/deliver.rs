//! The daemon's webhook delivery: every instance claims due deliveries from the store's outbox
//! and sends them, continuously, until shutdown (claims are leases, so instances share the work
//! and one that dies is replaced). Events are written by the runs, with their causes; this task
//! only delivers them, so a process killed between a commit and its delivery delivers after the
//! restart, with the same `webhook-id`.
//!
//! Must not: build events (the engine does) or decide retries (tierd-activation does).

use std::sync::Arc;
use std::time::Duration;

use tierd_engine::shutdown::{self, ShutdownSignal};
use tierd_engine::Pipeline;
use tierd_store::Timestamp;

/// How long the task waits when nothing was due: the delay between a commit and its first
/// attempt, at most.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// The pause after the store could not be read.
const ERROR_PAUSE: Duration = Duration::from_secs(5);

/// Delivers until `shutdown`; returns at once when no endpoint is configured. The call in flight
/// at shutdown finishes (it is bounded by the endpoints' timeouts) and records its outcomes.
pub(crate) async fn deliver_webhooks(pipeline: Arc<Pipeline>, mut shutdown: ShutdownSignal) {
    let webhooks = pipeline.webhooks();
    if webhooks.endpoints().is_empty() {
        return;
    }
    let http = match tierd_activation::webhooks::Webhooks::http_client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client; webhooks stay in the outbox");
            return;
        }
    };
    tracing::info!(endpoints = webhooks.endpoints().len(), "delivering webhooks");
    while !*shutdown.borrow() {
        let pause = match webhooks
            .deliver_due(pipeline.store(), &http, pipeline.instance(), Timestamp::now())
            .await
        {
            Ok(report) if report.is_idle() => IDLE_POLL,
            Ok(_) => Duration::ZERO,
            Err(e) => {
                tracing::warn!(error = %e, "cannot deliver webhooks; retrying");
                ERROR_PAUSE
            }
        };
        if !pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown::requested(&mut shutdown) => {}
            }
        }
    }
}
