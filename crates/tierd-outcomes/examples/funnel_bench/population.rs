//! A deterministic population for the funnel at scale: accounts with one to three tier changes
//! over a year, and deals spread over them with a realistic mix (open, won, lost; amounts from
//! 1k to 200k USD, some in EUR) and a few bad ones of each kind the report lists (no account, no
//! creation date, no amount, unknown stage, closed before created). Shared by the benchmark and
//! the test that the streamed report equals the in-memory one; knows nothing of timing or of
//! which store it goes to.

use tierd_core::{Date, Tier};
use tierd_store::{DealRecord, TierEvent, Timestamp};

const DAY_MS: i64 = 86_400_000;
/// 2025-12-01, the first day anything happens.
const START: i32 = 20_423;
/// The as-of day: 2026-12-01; deals created within 120 days of it are mostly still open.
const AS_OF: i32 = START + 365;

/// SplitMix64: fixed seed, same numbers on every machine, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

pub fn account_id(i: u64) -> String {
    format!("hubspot:{}", 1_000_000_000 + i)
}

/// Tiers 2% / 8% / 20% / 70%.
fn draw_tier(rng: &mut Rng) -> Tier {
    match rng.below(100) {
        0..=1 => Tier::Tier1,
        2..=9 => Tier::Tier2,
        10..=29 => Tier::Tier3,
        _ => Tier::Untiered,
    }
}

/// The tier history of accounts `from..to`: one to three changes each, the first in the first two
/// months of the year, the others later, at noon.
pub fn tier_history(rng: &mut Rng, from: u64, to: u64) -> Vec<TierEvent> {
    let mut out = Vec::with_capacity(((to - from) * 2) as usize);
    for i in from..to {
        let account = account_id(i);
        let mut day = START + rng.below(60) as i32;
        for _ in 0..=rng.below(3) {
            out.push(TierEvent {
                account: account.clone(),
                at: i64::from(day) * DAY_MS + DAY_MS / 2,
                tier: draw_tier(rng),
            });
            day += 1 + rng.below(90) as i32;
        }
    }
    out
}

/// Deals `from..to` over `accounts` accounts (the lower-numbered accounts get more of them).
pub fn deals(rng: &mut Rng, accounts: u64, from: u64, to: u64) -> Vec<DealRecord> {
    let mut out = Vec::with_capacity((to - from) as usize);
    for i in from..to {
        // The minimum of two draws: account 0 is about twice as likely as the median account.
        let account = rng.below(accounts).min(rng.below(accounts));
        let created_day = START - 30 + rng.below(395) as i32;
        let created = i64::from(created_day) * DAY_MS + rng.below(DAY_MS as u64) as i64;
        let cycle = 5 + rng.below(175) as i32;
        let age = AS_OF - created_day;
        let (closed, won) = if cycle < age || rng.below(4) == 0 {
            (true, rng.below(100) < 30)
        } else {
            (false, false)
        };
        let stage = match (closed, won) {
            (false, _) => ["appointmentscheduled", "qualifiedtobuy", "contractsent"][rng.below(3) as usize],
            (true, true) => "closedwon",
            (true, false) => "closedlost",
        };
        // A log-uniform-ish amount, 1k to 200k.
        let amount = (1_000.0 * 200f64.powf(rng.below(10_000) as f64 / 10_000.0)).round();
        let mut d = DealRecord {
            id: format!("deal:{i:09}"),
            account: Some(account_id(account)),
            pipeline: Some("default".into()),
            stage: Some(stage.into()),
            amount: Some(amount),
            currency: Some(if rng.below(100) == 0 { "EUR" } else { "USD" }.into()),
            created_at: Some(Timestamp::from_millis(created)),
            close_date: Some(Date::from_days(created_day + cycle)),
            closed: Some(closed),
            won: Some(won),
            stage_entries: Vec::new(),
        };
        // About 1 in 200 deals is bad in one way.
        match rng.below(1_000) {
            0 => d.account = None,
            1 => d.created_at = None,
            2 => d.amount = None,
            3 => (d.closed, d.won, d.stage) = (None, None, Some("mystery".into())),
            4 => {
                (d.closed, d.won, d.stage) = (Some(true), Some(true), Some("closedwon".into()));
                d.close_date = Some(Date::from_days(created_day - 3));
            }
            _ => {}
        }
        out.push(d);
    }
    out
}
