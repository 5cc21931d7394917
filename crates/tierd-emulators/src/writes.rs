//! The write counter: every record write an emulator applies, by record id, so tests
//! and benchmarks can prove nothing was pushed twice or lost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

/// A snapshot of the writes an emulator applied: one count per record write received
/// through the vendor API (a batch of 100 counts 100). Edits made through the emulator's
/// Rust API (`set_properties`, `set_fields`) are not counted: they stand for people.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WriteLog {
    /// All record writes.
    pub total: u64,
    /// Writes per record id (HubSpot company id, Salesforce Account Id).
    pub per_record: BTreeMap<String, u64>,
}

impl WriteLog {
    /// How many times record `id` was written.
    pub fn count(&self, id: &str) -> u64 {
        self.per_record.get(id).copied().unwrap_or(0)
    }

    /// The most writes any one record received (1 after a clean push of every record).
    pub fn max_per_record(&self) -> u64 {
        self.per_record.values().copied().max().unwrap_or(0)
    }
}

/// The live counter behind [`WriteLog`] snapshots; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteCounter(Arc<Mutex<WriteLog>>);

impl WriteCounter {
    pub(crate) fn record<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let mut log = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for id in ids {
            log.total += 1;
            match log.per_record.get_mut(id) {
                Some(n) => *n += 1,
                None => {
                    log.per_record.insert(id.to_string(), 1);
                }
            }
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).total
    }

    pub(crate) fn snapshot(&self) -> WriteLog {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_record_and_in_total() {
        let c = WriteCounter::default();
        c.record(["a", "b"]);
        c.record(["a"]);
        let log = c.snapshot();
        assert_eq!(
            (log.total, log.count("a"), log.count("b"), log.count("z")),
            (3, 2, 1, 0)
        );
        assert_eq!(log.max_per_record(), 2);
    }
}
