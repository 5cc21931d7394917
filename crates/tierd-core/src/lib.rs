//! tierd-core: the domain of account tiering, and the decisions made on it.
//!
//! Owns the types every other crate speaks ([`fact::FactValue`], [`model::FactRow`],
//! [`tier::Tier`]...), the scoring [`model::Model`] with its explanations (and a memo in front of
//! it for scoring whole files, [`memo::ScoreMemo`]), scores at the
//! precision they are printed and bucketed in ([`points`]), the [`tier::TierPolicy`] (both
//! steps of every tiering decision and its words) and diffs between tierings; and the two
//! value types every layer shares, plugins included (re-exported by `tierd-plugin-api`):
//! calendar [`Date`]s and [`Secret`]s.
//!
//! Invariants: this crate is pure. It does no I/O (no files, no network, no clock:
//! the scoring date is always passed in), has no async, and depends on no other
//! tierd crate. Everything here is deterministic for its inputs, which is what
//! makes scores reproducible and explainable.

pub mod codec;
pub mod config_error;
pub mod date;
pub mod decimal;
pub mod diff;
pub mod explain;
pub mod fact;
pub mod hash;
pub mod memo;
pub mod model;
pub mod points;
pub mod score;
pub mod secret;
#[cfg(test)]
mod test_rng;
pub mod tier;

pub use config_error::{ConfigError, ConfigErrors};
pub use date::Date;
pub use memo::ScoreMemo;
pub use model::{FactRow, FactSchema, Model};
pub use points::{MilliPoints, ScoreBucket, ScoreStep};
pub use score::ScoreCard;
pub use secret::Secret;
pub use tier::{Tier, TierPolicy};
