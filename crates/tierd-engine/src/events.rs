//! The webhook events a committing run causes, built where their cause is committed so each is
//! written to the outbox in the same transaction (see `tierd_activation::webhooks`):
//!
//! - `tier.changed`: the push batch commits an account's new tier (`sink::CommitSink::deliver`),
//!   only for a real move: an account's first tiering is not announced.
//! - `account.locked`: the push batch commits a tier a person's lock decided, when the committed
//!   tier changes with it (or the account is tiered for the first time).
//! - `push.rejected`: the CRM first refuses a tier update (not again while it stays pending).
//! - `technology.adopted`, `technology.removed`, `renewal.due`: a plugin's signal is first
//!   recorded (`Store::insert_signals_with_events`).
//! - `run.finished`, `run.failed`: the run's end (`Store::finish_run_with_events`).
//!
//! Must not: send anything (the delivery worker does) or decide what an endpoint wants
//! (`Webhooks::outbox_event` does).

use tierd_activation::webhooks::{AccountRef, Event, Webhooks};
use tierd_core::{ConfigErrors, Tier};
use tierd_store::{NewEvent, Timestamp};

/// The configured endpoints that could be set up: an entry with a missing secret or a bad URL
/// is reported (by key, never with a secret) and left out, so a run never fails for a receiver.
pub(crate) fn compile(raw: &[tierd_activation::webhooks::RawWebhook]) -> Webhooks {
    let (webhooks, problems): (Webhooks, ConfigErrors) =
        Webhooks::compile_usable(raw, |k| std::env::var(k).ok(), "webhooks");
    for p in &problems.0 {
        tracing::error!(key = %p.path, problem = %p.message, "webhook endpoint left out");
    }
    webhooks
}

/// An account as events show it.
pub(crate) fn account(id: &str, name: &str, domain: Option<&str>, tier: Tier) -> AccountRef {
    AccountRef {
        id: id.to_string(),
        name: name.to_string(),
        domain: domain.map(str::to_string),
        tier,
    }
}

/// The outbox row of `event` for the endpoints that want it, happened now.
pub(crate) fn outbox(webhooks: &Webhooks, event: &Event) -> Option<NewEvent> {
    if webhooks.endpoints().is_empty() {
        return None;
    }
    webhooks.outbox_event(event, Timestamp::now())
}
