//! tierd-rate-limit: the one rate limiter of tierd, a token bucket that reserves ahead, and the
//! clock of how long requests waited.
//!
//! Owns [`RateLimiter`], which paces the CRM connectors (sized from a vendor's documented
//! window, paused by a 429, shrunk by a lower limit the vendor reports) and the plugin host's
//! HTTP capability (a plugin's requests per minute, refused past a patience), and [`WaitClock`],
//! the wall time during which at least one of their requests was waiting (requests in flight
//! together count once). It is its own crate because both need them and neither may depend on
//! the other; it knows nothing of HTTP, vendors or plugins.
//!
//! # Why not `governor`
//! `governor` (GCRA) was evaluated and does not fit, for three reasons:
//! - **No reserving ahead.** Its `check` admits a cell only when it conforms *now* and leaves
//!   the state untouched otherwise, and `until_ready` sleeps until the earliest conforming
//!   instant and checks again, so concurrent waiters wake together and race for one cell.
//!   The connectors reserve: each caller is handed the next slot, possibly in the future, and
//!   the bucket goes into debt, so a long paced run takes the time the rate allows (a sleep
//!   that overshoots is absorbed by the next slot instead of added to every request) and
//!   waiters are served in order. Its maintainers say the GCRA model cannot support
//!   reservations (boinkor-net/governor#218).
//! - **No runtime change of the quota.** A 429 carrying a smaller limit than configured must
//!   lower the rate of a limiter that requests are already waiting on
//!   ([`RateLimiter::lower_limit`]); `governor`'s quota is fixed at construction
//!   (boinkor-net/governor#39, #273: replace the limiter).
//! - **No pause.** After a 429 every request sharing the bucket holds back until
//!   `Retry-After` ([`RateLimiter::pause_for`]); `governor` has no such operation.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket: `burst` requests may go at once, then `rate` per second.
///
/// Vendors publish rolling-window limits ("100 per 10 s"); [`RateLimiter::for_window`]
/// turns one into a bucket that can never exceed it (burst 1, rate 98% of the window's
/// average), so the limiter, not the vendor's 429, paces a run. A 429 still pauses the
/// bucket for everyone sharing it ([`RateLimiter::pause_for`]), and a lower limit
/// reported by the vendor shrinks it ([`RateLimiter::lower_limit`]).
#[derive(Debug)]
pub struct RateLimiter {
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Requests per second; `None` means unlimited.
    rate: Option<f64>,
    burst: f64,
    tokens: f64,
    refilled: Instant,
    paused_until: Option<Instant>,
}

/// What [`RateLimiter::reserve`] gives.
#[derive(Debug, PartialEq)]
enum Slot {
    /// Paused (after a 429): wait this long, then ask again.
    Paused(Duration),
    /// Reserved: go after this delay.
    After(Duration),
    /// The wait would exceed the caller's patience; nothing was reserved.
    Refused,
}

/// Share of a documented window limit the bucket uses: the rest absorbs clock skew between
/// our sends and the vendor's arrival times.
const WINDOW_SHARE: f64 = 0.98;

impl RateLimiter {
    /// A bucket of `burst` requests refilled at `rate` per second (0 or not finite: unlimited).
    pub fn new(rate: f64, burst: u32) -> RateLimiter {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            state: Mutex::new(Bucket {
                rate: (rate > 0.0 && rate.is_finite()).then_some(rate),
                burst,
                tokens: burst,
                refilled: Instant::now(),
                paused_until: None,
            }),
        }
    }

    /// A bucket that never exceeds `limit` requests in any rolling `window`.
    pub fn for_window(limit: u32, window: Duration) -> RateLimiter {
        let secs = window.as_secs_f64().max(1e-3);
        RateLimiter::new(f64::from(limit.max(1)) * WINDOW_SHARE / secs, 1)
    }

    /// `per_minute` requests a minute, in bursts of up to a minute's quota: the 60-second
    /// windows enrichment vendors count in.
    pub fn per_minute(per_minute: u32) -> RateLimiter {
        let n = per_minute.max(1);
        RateLimiter::new(f64::from(n) / 60.0, n)
    }

    /// No limit (tests, benches, files); 429s still pause it.
    pub fn unlimited() -> RateLimiter {
        RateLimiter::new(0.0, 1)
    }

    /// Waits for a token; returns the wait the bucket asked for (pauses and the slot's
    /// delay, not what the timer measured, so counters are exact).
    pub async fn acquire(&self) -> Duration {
        let mut planned = Duration::ZERO;
        loop {
            match self.reserve(Instant::now(), None) {
                Slot::Paused(d) => {
                    planned += d;
                    tokio::time::sleep(d).await;
                }
                // Nothing is refused without a patience.
                Slot::Refused => return planned,
                Slot::After(d) => {
                    if !d.is_zero() {
                        planned += d;
                        tokio::time::sleep(d).await;
                    }
                    return planned;
                }
            }
        }
    }

    /// Takes a token if one comes within `patience`, waiting for it; false (and nothing
    /// taken) when the wait would be longer.
    pub async fn acquire_within(&self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        loop {
            let now = Instant::now();
            match self.reserve(now, Some(deadline.saturating_duration_since(now))) {
                Slot::Paused(d) => tokio::time::sleep(d).await,
                Slot::After(d) => {
                    if !d.is_zero() {
                        tokio::time::sleep(d).await;
                    }
                    return true;
                }
                Slot::Refused => return false,
            }
        }
    }

    /// Reserves the next token as of `now`, which may lie in the future (the bucket goes into
    /// debt); with `patience`, only when that slot comes within it.
    ///
    /// Reserving instead of polling keeps each request on its theoretical schedule: a sleep
    /// that overshoots (timers have millisecond resolution) is absorbed by the next slot
    /// rather than added to every request, so a long paced run takes the time the rate
    /// allows and not ~10% more.
    fn reserve(&self, now: Instant, patience: Option<Duration>) -> Slot {
        let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = b.paused_until {
            if until > now {
                let wait = until - now;
                return match patience {
                    Some(p) if wait > p => Slot::Refused,
                    _ => Slot::Paused(wait),
                };
            }
            b.paused_until = None;
        }
        let Some(rate) = b.rate else {
            return Slot::After(Duration::ZERO);
        };
        let elapsed = now.saturating_duration_since(b.refilled).as_secs_f64();
        let tokens = (b.tokens + elapsed * rate).min(b.burst);
        let wait = if tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - tokens) / rate)
        };
        if patience.is_some_and(|p| wait > p) {
            return Slot::Refused;
        }
        b.tokens = tokens - 1.0;
        b.refilled = now;
        Slot::After(wait)
    }

    /// Holds every request on this bucket back for `delay` (after a 429).
    pub fn pause_for(&self, delay: Duration) {
        let until = Instant::now() + delay;
        let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
        b.tokens = b.tokens.min(0.0);
        b.paused_until = Some(b.paused_until.map_or(until, |u| u.max(until)));
    }

    /// Lowers the rate when the vendor reports a smaller limit than the bucket was sized for
    /// (e.g. a lower subscription tier than configured). Never raises it.
    pub fn lower_limit(&self, limit: u32, window: Duration) {
        let rate = f64::from(limit.max(1)) * WINDOW_SHARE / window.as_secs_f64().max(1e-3);
        let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if b.rate.is_some_and(|r| rate < r) {
            tracing::warn!(
                limit,
                window_ms = window.as_millis() as u64,
                "vendor reports a lower rate limit"
            );
            b.rate = Some(rate);
        }
    }

    /// Requests per second, `None` when unlimited.
    pub fn rate(&self) -> Option<f64> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).rate
    }
}

/// The wall time during which at least one waiter was in ([`WaitClock::enter`] until its guard
/// drops): waits that overlap count once, so the total never exceeds the time that passed.
#[derive(Debug, Default)]
pub struct WaitClock {
    /// Waiters in now, and since when at least one has been.
    inner: Mutex<(u32, Option<Instant>)>,
    /// Closed spans, in nanoseconds.
    total_nanos: std::sync::atomic::AtomicU64,
}

impl WaitClock {
    /// A waiter comes in; it is counted until the guard drops.
    pub fn enter(&self) -> Waiting<'_> {
        let mut w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if w.0 == 0 {
            w.1 = Some(Instant::now());
        }
        w.0 += 1;
        Waiting(self)
    }

    /// The time some waiter was in, up to now.
    pub fn total(&self) -> Duration {
        // Read under the lock a closing waiter adds its span under, so no span is missed.
        let w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let closed = Duration::from_nanos(self.total_nanos.load(std::sync::atomic::Ordering::Relaxed));
        closed + w.1.map_or(Duration::ZERO, |since| since.elapsed())
    }
}

/// One waiter of a [`WaitClock`], counted until dropped.
#[derive(Debug)]
pub struct Waiting<'a>(&'a WaitClock);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let clock = self.0;
        let mut w = clock.inner.lock().unwrap_or_else(|p| p.into_inner());
        w.0 = w.0.saturating_sub(1);
        if w.0 == 0 {
            if let Some(since) = w.1.take() {
                clock.total_nanos.fetch_add(
                    since.elapsed().as_nanos() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
        }
    }
}

#[cfg(test)]
mod wait_clock_tests {
    use super::*;

    /// Three waiters in together for at least a millisecond count once: the clock's total is
    /// at most the span around them (a sum would be about three times it).
    #[test]
    fn waiters_in_together_count_once() {
        let clock = WaitClock::default();
        let start = Instant::now();
        let waiters = [clock.enter(), clock.enter(), clock.enter()];
        while start.elapsed() < Duration::from_millis(1) {
            std::hint::spin_loop();
        }
        let open = clock.total();
        assert!(open > Duration::ZERO, "a span still open counts up to now");
        drop(waiters);
        let span = start.elapsed();
        let total = clock.total();
        assert!(total >= open && total <= span, "total {total:?}, span {span:?}");
        // Closed: nobody waits, so the total no longer grows.
        assert_eq!(clock.total(), total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_bucket_never_exceeds_the_window() {
        let limiter = RateLimiter::for_window(100, Duration::from_secs(10));
        let start = Instant::now();
        // A simulated clock: each request goes at its reserved slot; count those in 10 s.
        let mut now = start;
        let mut sent = 0;
        loop {
            let Slot::After(wait) = limiter.reserve(now, None) else {
                panic!("neither paused nor refused")
            };
            now += wait;
            if now >= start + Duration::from_secs(10) {
                break;
            }
            sent += 1;
        }
        assert!((95..=100).contains(&sent), "{sent} in one window");
    }

    #[test]
    fn reservations_queue_up_in_debt_each_one_slot_later() {
        let limiter = RateLimiter::new(10.0, 1);
        let now = Instant::now() + Duration::from_secs(1);
        let waits: Vec<Slot> = (0..3).map(|_| limiter.reserve(now, None)).collect();
        let ms = |n| Slot::After(Duration::from_millis(n));
        assert_eq!(waits, [ms(0), ms(100), ms(200)]);
    }

    #[test]
    fn a_pause_holds_everyone_back() {
        let limiter = RateLimiter::unlimited();
        let before = Instant::now();
        limiter.pause_for(Duration::from_secs(5));
        // Asked as of a moment before the pause began: the whole pause lies ahead.
        assert!(matches!(limiter.reserve(before, None), Slot::Paused(d) if d >= Duration::from_secs(5)));
        assert_eq!(
            limiter.reserve(before, Some(Duration::from_secs(1))),
            Slot::Refused
        );
    }

    #[test]
    fn past_its_patience_a_caller_is_refused_and_takes_nothing() {
        // 60 a minute, a minute's burst: 60 go at once, the 61st waits a second.
        let limiter = RateLimiter::per_minute(60);
        let now = Instant::now() + Duration::from_secs(1);
        for _ in 0..60 {
            assert_eq!(
                limiter.reserve(now, Some(Duration::ZERO)),
                Slot::After(Duration::ZERO)
            );
        }
        assert_eq!(
            limiter.reserve(now, Some(Duration::from_millis(10))),
            Slot::Refused
        );
        // Refusing took nothing: the next patient caller still gets the first free slot.
        assert_eq!(
            limiter.reserve(now, Some(Duration::from_secs(2))),
            Slot::After(Duration::from_secs(1))
        );
    }

    #[test]
    fn a_lower_vendor_limit_shrinks_the_rate_and_never_raises_it() {
        let limiter = RateLimiter::for_window(1000, Duration::from_millis(100));
        limiter.lower_limit(50, Duration::from_millis(100));
        let rate = limiter.rate().expect("limited");
        assert!((rate - 490.0).abs() < 1.0, "{rate}");
        limiter.lower_limit(5000, Duration::from_millis(100));
        assert_eq!(limiter.rate(), Some(rate));
    }
}
