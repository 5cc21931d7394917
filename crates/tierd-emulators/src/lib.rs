//! tierd-emulators: HTTP emulators of the SaaS APIs tierd talks to.
//!
//! Owns faithful stand-ins for HubSpot, Salesforce, the company-enrichment API and
//! company websites, seeded from `tierd-gen`, with the vendors' paging, limits, error
//! bodies, rate limiting and partial failures, plus fault injection. Tests, benches and
//! `tierd demo` run against them.
//!
//! Must not depend on the other tierd crates except `tierd-gen` (its synthetic accounts
//! are the emulators' world): connectors and plugins reach an emulator over HTTP only,
//! exactly as they reach the real service.
