//! Webhooks: the events tierd announces, the `[[webhooks]]` endpoints that receive them, and
//! their delivery.
//!
//! The flow: the engine builds an [`Event`] for each thing that happened and asks
//! [`Webhooks::outbox_event`] which endpoints want it; the resulting `NewEvent` goes into the store
//! in the same transaction as its cause (`BatchCommit::events`, `finish_run_with_events`,
//! `insert_signals_with_events`). [`Webhooks::deliver_due`] then claims due deliveries from the
//! store's outbox, signs and sends them ([`sign`], Standard Webhooks 1.0), and records each
//! attempt with its outcome: delivered, retried on the spec's schedule with jitter, or given up,
//! switching the endpoint off after the last try or on HTTP 410.
//!
//! Secrets are read from the environment when the config is compiled and live only in memory,
//! inside [`WebhookSecret`], whose `Debug` prints nothing of them. The store knows endpoints by
//! name only. An endpoint's URL can itself be a credential (Slack incoming webhooks), so logs,
//! errors and `Debug` show only its scheme and host.

mod config;
mod deliver;
mod event;
pub mod sign;
pub mod slack;

pub use config::{Endpoint, EndpointFormat, RawWebhook, WebhookSecret, Webhooks};
pub use deliver::{
    DeliveryReport, DisabledNotice, TestDelivery, CLAIM_BATCH, DEFAULT_TIMEOUT, RETRY_SCHEDULE,
};
pub use event::{AccountRef, Event, EventType};
