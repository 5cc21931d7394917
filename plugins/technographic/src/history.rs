//! Per-account technology history kept in the plugin's `state` (the host stores it with the
//! cache and hands it back next time): first-seen and last-seen dates and how many successful
//! fetches in a row have missed each technology.
//!
//! A technology counts as removed only after `removal_after` consecutive successful fetches
//! without it, because leftover tags linger on sites for a while after a tool is dropped.
//! Failed fetches never reach this module, so they remove nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the plugin remembers about one account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct History {
    /// Technologies currently considered in use, by name.
    pub(crate) technologies: BTreeMap<String, Seen>,
}

/// One technology's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Seen {
    /// `YYYY-MM-DD` of the first fetch that found it.
    pub(crate) first_seen: String,
    /// `YYYY-MM-DD` of the latest fetch that found it.
    pub(crate) last_seen: String,
    /// Successful fetches in a row that did not find it.
    #[serde(default)]
    pub(crate) misses: u32,
}

/// What one successful fetch changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) adopted: Vec<String>,
    pub(crate) removed: Vec<String>,
}

impl History {
    /// The history in `state`, or `None` when there is none yet (first fetch) or it is not
    /// ours to read (a state from an incompatible version is a fresh start, not an error).
    pub(crate) fn from_state(state: &Value) -> Option<History> {
        if state.is_null() {
            return None;
        }
        serde_json::from_value(state.clone()).ok()
    }

    pub(crate) fn to_state(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Records a successful fetch on `as_of` that detected `detected`.
    pub(crate) fn observe(&mut self, detected: &[String], as_of: &str, removal_after: u32) -> Change {
        let mut change = Change::default();
        for name in detected {
            match self.technologies.get_mut(name) {
                Some(seen) => {
                    seen.last_seen = as_of.to_owned();
                    seen.misses = 0;
                }
                None => {
                    self.technologies.insert(
                        name.clone(),
                        Seen {
                            first_seen: as_of.to_owned(),
                            last_seen: as_of.to_owned(),
                            misses: 0,
                        },
                    );
                    change.adopted.push(name.clone());
                }
            }
        }
        self.technologies.retain(|name, seen| {
            if detected.contains(name) {
                return true;
            }
            seen.misses += 1;
            let gone = seen.misses >= removal_after.max(1);
            if gone {
                change.removed.push(name.clone());
            }
            !gone
        });
        change
    }

    /// Names of the technologies considered in use (including ones missed fewer than
    /// `removal_after` times), sorted.
    pub(crate) fn in_use(&self) -> Vec<String> {
        self.technologies.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn removal_needs_n_consecutive_misses() {
        let mut h = History::default();
        h.observe(&names(&["Segment", "Stripe"]), "2026-01-01", 2);
        let c = h.observe(&names(&["Stripe"]), "2026-02-01", 2);
        assert_eq!(c, Change::default(), "one miss is not a removal");
        assert_eq!(h.in_use(), names(&["Segment", "Stripe"]));
        assert_eq!(h.technologies["Segment"].misses, 1);
        assert_eq!(h.technologies["Segment"].last_seen, "2026-01-01");

        let c = h.observe(&names(&["Stripe"]), "2026-03-01", 2);
        assert_eq!(c.removed, names(&["Segment"]));
        assert_eq!(h.in_use(), names(&["Stripe"]));
    }

    #[test]
    fn a_reappearing_technology_resets_its_misses_without_a_new_adoption() {
        let mut h = History::default();
        h.observe(&names(&["Segment"]), "2026-01-01", 3);
        h.observe(&[], "2026-02-01", 3);
        h.observe(&[], "2026-03-01", 3);
        let c = h.observe(&names(&["Segment"]), "2026-04-01", 3);
        assert_eq!(c, Change::default());
        let seen = &h.technologies["Segment"];
        assert_eq!(
            (seen.first_seen.as_str(), seen.last_seen.as_str(), seen.misses),
            ("2026-01-01", "2026-04-01", 0)
        );
    }

    #[test]
    fn new_technologies_are_adopted_with_their_first_seen_date() {
        let mut h = History::default();
        h.observe(&names(&["Stripe"]), "2026-01-01", 2);
        let c = h.observe(&names(&["Snowflake", "Stripe"]), "2026-02-01", 2);
        assert_eq!(c.adopted, names(&["Snowflake"]));
        assert_eq!(h.technologies["Snowflake"].first_seen, "2026-02-01");
        assert_eq!(h.technologies["Stripe"].first_seen, "2026-01-01");
    }

    #[test]
    fn state_round_trips_and_unknown_state_starts_fresh() {
        let mut h = History::default();
        h.observe(&names(&["Okta"]), "2026-01-01", 2);
        assert_eq!(History::from_state(&h.to_state()), Some(h));
        assert_eq!(History::from_state(&Value::Null), None);
        assert_eq!(
            History::from_state(&serde_json::json!({"v": "something else"})),
            None
        );
    }
}
