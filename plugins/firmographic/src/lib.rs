//! firmographic: tierd's built-in firmographic provider.
//!
//! Asks a company-enrichment API shaped like People Data Labs' Company Enrichment
//! (`GET /v5/company/enrich` by website, else by name; `X-Api-Key`) and falls back to a local
//! CSV dataset when the API has no match or no key is configured. Answers are normalised into
//! the scoring model's `firmographic.*` facts (industry names, ISO country codes, regions,
//! revenue midpoints).
//!
//! What each API status means: 200 a billed match; 404 no match (free, not an error); 402 out
//! of credits: no further calls for runs with the same `as_of`, the remaining accounts fail
//! (their previous facts stay, marked stale); 429: wait for `x-ratelimit-reset` and retry a
//! bounded number of times; 401 a bad key, reported without the key.
//!
//! Written only against `tierd-plugin-api`: HTTP goes through the host's capability.

mod company;
mod dataset;
mod normalise;
mod provider;

pub use provider::Firmographic;

tierd_plugin_api::export_plugin!(Firmographic);
