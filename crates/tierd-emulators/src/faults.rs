//! Fault injection shared by every emulator: latency, a share of 5xx answers, 429
//! storms, malformed records and dropped connections.
//!
//! Set from the Rust API ([`Faults`]), from `tierd emulate` flags, or over HTTP with
//! `POST /__admin/faults` (a JSON [`FaultPatch`]); `GET /__admin/stats` reports what was
//! served. Which requests fail comes from a seeded generator, so a test run repeats;
//! which records are malformed depends only on the seed and the record id, so the same
//! records are malformed on every read.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The current fault settings (what `GET /__admin/faults` and `POST /__admin/faults` answer).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultSettings {
    /// Added before every answer.
    pub latency_ms: u64,
    /// Share (0..=1) of requests answered with the vendor's 5xx.
    pub error_rate: f64,
    /// The next N requests get the vendor's 429.
    pub rate_limit_storm: u32,
    /// Share (0..=1) of records served with a garbage value in a numeric or date field.
    pub malformed_rate: f64,
    /// Share (0..=1) of requests whose connection is closed without a complete response.
    pub drop_rate: f64,
}

/// A partial update for `POST /__admin/faults`: fields left out keep their value;
/// `"reset": true` first clears everything.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPatch {
    pub reset: bool,
    pub latency_ms: Option<u64>,
    pub error_rate: Option<f64>,
    pub rate_limit_storm: Option<u32>,
    pub malformed_rate: Option<f64>,
    pub drop_rate: Option<f64>,
}

/// Handle on one emulator's fault injection; clones share the settings.
#[derive(Debug, Clone)]
pub struct Faults {
    inner: Arc<Mutex<FaultState>>,
    seed: u64,
}

#[derive(Debug)]
struct FaultState {
    settings: FaultSettings,
    rng: u64,
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultAction {
    Pass,
    RateLimited,
    ServerError,
    Drop,
}

/// SplitMix64: tiny, good enough for picking faults, and frozen so runs repeat.
pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// FNV-1a (its offset basis mixed with `seed`), to turn record ids into numbers.
pub(crate) fn hash_str(seed: u64, s: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::with_key(0xcbf2_9ce4_8422_2325 ^ seed);
    h.write(s.as_bytes());
    splitmix(h.finish())
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn check_rate(name: &str, v: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{name} must be between 0 and 1, got {v}"))
    }
}

impl Faults {
    pub(crate) fn new(seed: u64) -> Self {
        Faults {
            inner: Arc::new(Mutex::new(FaultState {
                settings: FaultSettings::default(),
                rng: seed,
            })),
            seed,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut FaultState) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Delay every answer by `d`.
    pub fn set_latency(&self, d: Duration) {
        self.with(|s| s.settings.latency_ms = d.as_millis() as u64);
    }

    /// Answer this share (clamped to 0..=1) of requests with the vendor's 5xx.
    pub fn set_error_rate(&self, rate: f64) {
        self.with(|s| s.settings.error_rate = rate.clamp(0.0, 1.0));
    }

    /// Answer the next `n` requests with the vendor's 429.
    pub fn set_rate_limit_storm(&self, n: u32) {
        self.with(|s| s.settings.rate_limit_storm = n);
    }

    /// Serve this share (clamped to 0..=1) of records with a garbage value in a numeric or date field.
    pub fn set_malformed_rate(&self, rate: f64) {
        self.with(|s| s.settings.malformed_rate = rate.clamp(0.0, 1.0));
    }

    /// Close the connection without a complete response for this share (clamped to 0..=1) of requests.
    pub fn set_drop_rate(&self, rate: f64) {
        self.with(|s| s.settings.drop_rate = rate.clamp(0.0, 1.0));
    }

    /// No faults.
    pub fn reset(&self) {
        self.with(|s| s.settings = FaultSettings::default());
    }

    /// The current settings.
    pub fn settings(&self) -> FaultSettings {
        self.with(|s| s.settings.clone())
    }

    /// Applies a partial update; rates outside 0..=1 are refused with a message naming the field.
    pub fn apply(&self, patch: &FaultPatch) -> Result<FaultSettings, String> {
        let error_rate = patch
            .error_rate
            .map(|v| check_rate("error_rate", v))
            .transpose()?;
        let malformed_rate = patch
            .malformed_rate
            .map(|v| check_rate("malformed_rate", v))
            .transpose()?;
        let drop_rate = patch.drop_rate.map(|v| check_rate("drop_rate", v)).transpose()?;
        Ok(self.with(|s| {
            if patch.reset {
                s.settings = FaultSettings::default();
            }
            let t = &mut s.settings;
            t.latency_ms = patch.latency_ms.unwrap_or(t.latency_ms);
            t.error_rate = error_rate.unwrap_or(t.error_rate);
            t.rate_limit_storm = patch.rate_limit_storm.unwrap_or(t.rate_limit_storm);
            t.malformed_rate = malformed_rate.unwrap_or(t.malformed_rate);
            t.drop_rate = drop_rate.unwrap_or(t.drop_rate);
            t.clone()
        }))
    }

    /// Decides the fate of one request, and the latency to add before it.
    pub(crate) fn next_action(&self) -> (Duration, FaultAction) {
        self.with(|s| {
            let latency = Duration::from_millis(s.settings.latency_ms);
            if s.settings.rate_limit_storm > 0 {
                s.settings.rate_limit_storm -= 1;
                return (latency, FaultAction::RateLimited);
            }
            if s.settings.drop_rate == 0.0 && s.settings.error_rate == 0.0 {
                return (latency, FaultAction::Pass);
            }
            s.rng = splitmix(s.rng);
            let x = unit(s.rng);
            let action = if x < s.settings.drop_rate {
                FaultAction::Drop
            } else if x < s.settings.drop_rate + s.settings.error_rate {
                FaultAction::ServerError
            } else {
                FaultAction::Pass
            };
            (latency, action)
        })
    }

    /// When record `id` is to be served malformed, a number that picks which field to spoil.
    pub(crate) fn malformed(&self, id: &str) -> Option<u64> {
        let rate = self.with(|s| s.settings.malformed_rate);
        if rate == 0.0 {
            return None;
        }
        let h = hash_str(self.seed ^ 0x6d61_6c66, id);
        (unit(h) < rate).then_some(h >> 7)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storm_answers_exactly_n_requests_then_passes() {
        let f = Faults::new(1);
        f.set_rate_limit_storm(2);
        let got: Vec<_> = (0..3).map(|_| f.next_action().1).collect();
        assert_eq!(
            got,
            [
                FaultAction::RateLimited,
                FaultAction::RateLimited,
                FaultAction::Pass
            ]
        );
    }

    #[test]
    fn malformed_records_depend_only_on_seed_and_id() {
        let (a, b) = (Faults::new(7), Faults::new(7));
        a.set_malformed_rate(0.3);
        b.set_malformed_rate(0.3);
        let ids: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        let pick = |f: &Faults| ids.iter().filter(|i| f.malformed(i).is_some()).count();
        let n = pick(&a);
        assert_eq!(n, pick(&b));
        assert!((200..400).contains(&n), "{n} of 1000 at rate 0.3");
    }

    #[test]
    fn patch_refuses_rates_out_of_range_and_keeps_other_fields() {
        let f = Faults::new(1);
        f.set_latency(Duration::from_millis(5));
        let bad = FaultPatch {
            error_rate: Some(1.5),
            ..FaultPatch::default()
        };
        assert!(f.apply(&bad).unwrap_err().contains("error_rate"));
        let ok = FaultPatch {
            drop_rate: Some(0.5),
            ..FaultPatch::default()
        };
        let s = f.apply(&ok).unwrap();
        assert_eq!((s.latency_ms, s.drop_rate), (5, 0.5));
    }
}
