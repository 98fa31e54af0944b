//! The `--rate-limit` bucket over all requests: governor's GCRA limiter, with the
//! wait it reports turned into the duration a 429's `Retry-After` is made from.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

/// A token bucket of `rate` tokens a second holding at most `capacity`, starting full.
/// Generic over the clock so that the unit tests can drive it with a fake one.
pub(crate) struct RateLimit<C: Clock = DefaultClock> {
    limiter: RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<C::Instant>>,
}

impl RateLimit {
    /// `rate` (positive, finite) tokens a second, `capacity` at most in the bucket.
    pub(crate) fn new(rate: f64, capacity: u32) -> RateLimit {
        RateLimit::with_clock(rate, capacity, DefaultClock::default())
    }
}

impl<C: Clock> RateLimit<C> {
    fn with_clock(rate: f64, capacity: u32, clock: C) -> RateLimit<C> {
        let capacity = NonZeroU32::new(capacity).unwrap_or(NonZeroU32::MIN);
        // governor adds and multiplies nanosecond counts unchecked, so a tiny rate
        // (`--rate-limit 1e-12`) would overflow them. The cap keeps a full bucket plus
        // one period within half the range, the other half (146 years) being for the
        // time since start; it binds only below one request per 146 years, or for
        // bursts in the millions at rates well under one a second.
        let longest = u64::MAX / 2 / (u64::from(capacity.get()) + 1);
        let period_ns = (1e9 / rate).round().clamp(1.0, longest as f64) as u64;
        let quota = Quota::with_period(Duration::from_nanos(period_ns))
            .expect("the period is at least 1 ns")
            .allow_burst(capacity);
        RateLimit {
            limiter: RateLimiter::direct_with_clock(quota, clock),
        }
    }

    /// Takes a token, or says how long until one is there.
    pub(crate) fn check(&self) -> Result<(), Duration> {
        self.limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn allows_capacity_then_waits_one_interval() {
        let clock = FakeRelativeClock::default();
        let limit = RateLimit::with_clock(2.0, 3, clock.clone());
        for _ in 0..3 {
            assert!(limit.check().is_ok());
        }
        let wait = limit.check().unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        clock.advance(Duration::from_millis(500));
        assert!(limit.check().is_ok());
    }

    #[test]
    fn absurdly_slow_rates_do_not_overflow() {
        for capacity in [1, 1000, u32::MAX] {
            let clock = FakeRelativeClock::default();
            let limit = RateLimit::with_clock(1e-300, capacity, clock.clone());
            assert!(limit.check().is_ok());
            clock.advance(Duration::from_secs(3600));
            let more = (0..3).map(|_| limit.check()).collect::<Vec<_>>();
            if capacity == 1 {
                assert!(more
                    .iter()
                    .all(|r| r.is_err_and(|w| w > Duration::from_secs(3600))));
            }
        }
    }
}
