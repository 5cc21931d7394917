//! tierd-activation: what tierd does with tiers once they are decided.
//!
//! Owns budgets per tier ([`budget`]: planned spend, cost per deal and return per tier, the seats a
//! total budget buys), audience exports in the ad platforms' exact templates ([`export`]), and
//! webhook events with their signed, durable delivery ([`webhooks`]: the `[[webhooks]]` config,
//! the event payloads, Standard Webhooks signing and the delivery worker over the store's outbox).
//!
//! It must not know the connectors, the plugins or the run engine: the engine hands it accounts,
//! contacts, funnel figures and events as plain values, and it hands back files, numbers and
//! outbox rows. Persistence goes through `tierd-store` only; time is always an argument, so
//! retry schedules and reports are reproducible in tests.

pub mod budget;
pub mod export;
pub mod webhooks;
