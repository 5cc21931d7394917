//! technographic: tierd's built-in technographic provider.
//!
//! Fetches each account's website (home page and configured paths) through the host's HTTP
//! capability, detects technologies with fingerprint rules in the Wappalyzer
//! `technologies.json` format, and derives `technology_adopted` / `technology_removed`
//! signals from a per-account history the host keeps as the plugin's `state`.
//!
//! Written only against `tierd-plugin-api`, exactly as a third-party plugin would be: no other
//! tierd crate, no async runtime, no HTTP stack of its own. The fingerprint engine ([`RuleSet`],
//! [`Page`], [`Detection`]) is public so benches and tools can use it without the ABI.
//!
//! The shipped rules (`config/fingerprints/`) were written for tierd; the community rule set is
//! GPL-3.0 and is not bundled, but any file in its format can be used through `rules_path`.

mod detect;
mod history;
mod page;
mod provider;
mod rules;

pub use detect::Detection;
pub use page::Page;
pub use provider::Technographic;
pub use rules::{IgnoredKind, LoadReport, RuleError, RuleSet, DEFAULT_CATEGORIES, DEFAULT_TECHNOLOGIES};

tierd_plugin_api::export_plugin!(Technographic);
