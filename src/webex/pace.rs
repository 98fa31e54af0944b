//! When a request may start: the one place that paces every request of a run.
//!
//! Three things decide it, all shared by every task:
//! - the user's ceiling (`--rate`): a governor GCRA limiter with burst 1, so requests
//!   are evenly spaced from the first one, retries included;
//! - a run-wide pause: after a 429 (or any `Retry-After`), no request of any line
//!   starts before the pause ends;
//! - an adaptive pace: a server that allows less than `--rate` answers 429; the run then
//!   drops to a little under the rate the server actually accepted, and probes upwards
//!   slowly, so such a server sees a handful of 429s instead of a storm.
//!
//! The adaptive pace is a second, slower gate rather than a change to the governor
//! quota because governor cannot change a live limiter's quota.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

/// Slowest pace the adaptive gate drops to, in requests per second.
pub(crate) const MIN_ADAPTIVE_RATE: f64 = 0.5;
/// Answers since the last pause needed before their rate is taken for the server's;
/// with fewer, a 429 halves the pace.
pub(crate) const MIN_EVIDENCE: u64 = 10;
/// Share of the server's accepted rate the run drops to after a 429.
pub(crate) const THROTTLE_FACTOR: f64 = 0.85;
/// How often the adaptive pace probes upwards while no 429 arrives.
pub(crate) const PROBE_PERIOD: Duration = Duration::from_secs(1);
/// Upward step per probe while well below the rate that was last refused.
pub(crate) const FAST_PROBE: f64 = 1.10;
/// Upward step per probe near or above the rate that was last refused.
pub(crate) const SLOW_PROBE: f64 = 1.01;
/// After this long without a 429 the refusal is taken for a passing episode (a busy
/// minute on the server, not its steady limit) and the pace climbs back fast.
pub(crate) const QUIET_PERIOD: Duration = Duration::from_secs(30);
/// First backoff when a 429 carries no usable `Retry-After`; doubles per 429 in a row.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Longest backoff without a `Retry-After`.
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// How fast the pacer lets requests start right now, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// No ceiling (`--rate 0`) and no server has asked to slow down.
    Unlimited,
    /// At most this many requests per second: `--rate`, or less after a 429.
    PerSecond(f64),
    /// No request starts until this much time has passed (a 429 or a `Retry-After`).
    Paused(Duration),
}

/// Paces every request of one run. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub(crate) struct Pacer {
    ceiling: Option<DefaultDirectRateLimiter>,
    configured: Option<f64>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    paused_until: Option<Instant>,
    /// `Some` while the server has made the run slow down.
    adaptive: Option<Adaptive>,
    /// Counts since the run last resumed from a pause (or started): what the server
    /// accepted, and what was sent, to estimate the rate it allows.
    resumed_at: Instant,
    sent_since_resume: u64,
    ok_since_resume: u64,
    throttles_in_a_row: u32,
    throttles_total: u64,
}

/// What a caller of [`Pacer::acquire`] waits for.
enum Wait {
    /// The run-wide pause: wait, then ask again.
    Pause(Instant),
    /// Its reserved slot of the adaptive gate: wait, then go on to the ceiling.
    Slot(Instant),
    No,
}

#[derive(Debug)]
struct Adaptive {
    rate: f64,
    next_slot: Instant,
    last_change: Instant,
    refused_at: f64,
    /// When the run resumed after the last 429.
    since: Instant,
}

impl Pacer {
    /// A pacer with a ceiling of `rate` requests per second; `None` or `0` means no
    /// ceiling (the adaptive pace still applies after a 429).
    pub(crate) fn new(rate: Option<f64>) -> Pacer {
        let rate = rate.filter(|r| *r > 0.0 && r.is_finite());
        let ceiling = rate.map(|r| {
            let period = Duration::from_secs_f64(1.0 / r).max(Duration::from_nanos(1));
            let quota = Quota::with_period(period)
                .expect("period is positive")
                .allow_burst(NonZeroU32::MIN);
            RateLimiter::direct(quota)
        });
        Pacer {
            ceiling,
            configured: rate,
            state: Mutex::new(State {
                paused_until: None,
                adaptive: None,
                resumed_at: Instant::now(),
                sent_since_resume: 0,
                ok_since_resume: 0,
                throttles_in_a_row: 0,
                throttles_total: 0,
            }),
        }
    }

    /// Waits until a request may start, then counts it as started.
    pub(crate) async fn acquire(&self) {
        loop {
            // 1. The run-wide pause, and a slot from the adaptive gate.
            let wait = {
                let mut s = self.lock();
                let now = Instant::now();
                match s.paused_until {
                    Some(until) if until > now => Wait::Pause(until),
                    _ => {
                        if s.paused_until.take().is_some() {
                            s.resumed_at = now;
                            s.sent_since_resume = 0;
                            s.ok_since_resume = 0;
                        }
                        match self.adaptive_slot(&mut s, now) {
                            Some(slot) => Wait::Slot(slot),
                            None => Wait::No,
                        }
                    }
                }
            };
            match wait {
                // Everyone waiting out a pause wakes at the same instant: each must
                // then take its own slot from the adaptive gate, or they would all
                // start at once at the ceiling's pace, which is what the server just
                // refused.
                Wait::Pause(until) => {
                    tokio::time::sleep_until(until).await;
                    continue;
                }
                Wait::Slot(slot) => tokio::time::sleep_until(slot).await,
                Wait::No => {}
            }
            // 2. The user's ceiling.
            if let Some(limiter) = &self.ceiling {
                limiter.until_ready().await;
            }
            // 3. A pause may have begun while we waited: honour it.
            let mut s = self.lock();
            if s.paused_until.is_some_and(|u| u > Instant::now()) {
                continue;
            }
            s.sent_since_resume += 1;
            return;
        }
    }

    /// Reserves the next slot of the adaptive gate, probing upwards when due; returns
    /// when to start, or `None` to start now.
    fn adaptive_slot(&self, s: &mut State, now: Instant) -> Option<Instant> {
        let a = s.adaptive.as_mut()?;
        while now.duration_since(a.last_change) >= PROBE_PERIOD {
            let quiet = a.last_change.duration_since(a.since) >= QUIET_PERIOD;
            let step = if quiet || a.rate < 0.8 * a.refused_at {
                FAST_PROBE
            } else {
                SLOW_PROBE
            };
            a.rate *= step;
            a.last_change += PROBE_PERIOD;
        }
        if self.configured.is_some_and(|c| a.rate >= c) {
            s.adaptive = None;
            return None;
        }
        let slot = a.next_slot.max(now);
        a.next_slot = slot + Duration::from_secs_f64(1.0 / a.rate);
        (slot > now).then_some(slot)
    }

    /// Records an answer that was not a 429.
    pub(crate) fn answered(&self) {
        let mut s = self.lock();
        s.ok_since_resume += 1;
        s.throttles_in_a_row = 0;
    }

    /// Records a 429: pauses the whole run for `retry_after` (or a jittered exponential
    /// backoff when the server gave none that parses) and lowers the pace. Returns the
    /// pause.
    pub(crate) fn throttled(&self, retry_after: Option<Duration>) -> Duration {
        let mut s = self.lock();
        let now = Instant::now();
        s.throttles_total += 1;
        s.throttles_in_a_row += 1;
        let pause = retry_after.unwrap_or_else(|| full_jitter(s.throttles_in_a_row));
        let already_paused = s.paused_until.is_some_and(|u| u > now);
        Self::extend_pause(&mut s, now + pause);
        // Every 429 of one episode arrives while the first one's pause is on: only the
        // first lowers the pace, or one burst would collapse it.
        if !already_paused {
            // Over at least a second: a server with a token bucket accepts a burst
            // right after a pause, which a shorter window would take for its rate.
            let active = now.duration_since(s.resumed_at).as_secs_f64().max(1.0);
            let current = match (&s.adaptive, self.configured) {
                (Some(a), _) => a.rate,
                (None, Some(c)) => c,
                (None, None) => s.sent_since_resume as f64 / active,
            };
            // A server that refuses almost at once (no burst allowance) leaves too few
            // answers to measure its rate, and dividing them by a second would take it
            // for a server of one request a second: halve the pace instead, and let
            // the next 429 measure again.
            let accepted = if s.ok_since_resume >= MIN_EVIDENCE {
                s.ok_since_resume as f64 / active
            } else {
                current / 2.0
            };
            let rate = (THROTTLE_FACTOR * accepted.min(current)).max(MIN_ADAPTIVE_RATE);
            let resume = now + pause;
            // Slots already handed out stay handed out. With `Retry-After: 0` there is
            // no pause to keep the next 429 in the same episode, so every 429 lands
            // here: starting the gate afresh at `resume` (= now) would let a request
            // through at once after each one, a steady stream at the ceiling's pace
            // whatever the adaptive pace says.
            let next_slot = s
                .adaptive
                .as_ref()
                .map_or(resume, |a| a.next_slot.max(resume));
            s.adaptive = Some(Adaptive {
                rate,
                next_slot,
                last_change: resume,
                refused_at: current.min(accepted).max(rate),
                since: resume,
            });
            tracing::info!(
                pause_ms = pause.as_millis() as u64,
                pace = format_args!("{rate:.1}/s"),
                "server throttled (429): pausing every request, then slowing down"
            );
        }
        pause
    }

    /// Pauses the whole run until `retry_after` from now (a `Retry-After` on a
    /// response other than 429), without changing the pace.
    pub(crate) fn pause_for(&self, retry_after: Duration) {
        let mut s = self.lock();
        Self::extend_pause(&mut s, Instant::now() + retry_after);
    }

    fn extend_pause(s: &mut State, until: Instant) {
        if s.paused_until.is_none_or(|u| u < until) {
            s.paused_until = Some(until);
        }
    }

    /// The current adaptive pace, when the server has made the run slow down.
    #[cfg(test)]
    fn adaptive_rate(&self) -> Option<f64> {
        self.lock().adaptive.as_ref().map(|a| a.rate)
    }

    /// The pace now: the pause if one is on, else the adaptive pace if the server made
    /// the run slow down, else `--rate`. (The adaptive pace climbs as requests start,
    /// so while none does it shows the last one's.)
    pub(crate) fn pace(&self) -> Pace {
        let s = self.lock();
        let now = Instant::now();
        if let Some(until) = s.paused_until.filter(|u| *u > now) {
            return Pace::Paused(until - now);
        }
        match (&s.adaptive, self.configured) {
            (Some(a), _) => Pace::PerSecond(a.rate),
            (None, Some(c)) => Pace::PerSecond(c),
            (None, None) => Pace::Unlimited,
        }
    }

    /// How many 429s the run has seen.
    pub(crate) fn throttles(&self) -> u64 {
        self.lock().throttles_total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves consistent counters: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Exponential backoff with full jitter: uniform in `[0, min(cap, base × 2^(n-1))]`.
pub(crate) fn full_jitter(n: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << n.saturating_sub(1).min(16));
    let cap = exp.min(BACKOFF_CAP);
    cap.mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_under_its_cap() {
        for n in 1..40 {
            let d = full_jitter(n);
            let cap = BACKOFF_BASE
                .saturating_mul(1u32 << (n - 1).min(16))
                .min(BACKOFF_CAP);
            assert!(d <= cap, "n={n}: {d:?} > {cap:?}");
        }
    }

    /// Burst 1: once a request has started, the next waits a whole period. A busy
    /// machine can only make the timeout expire later, never let the second request
    /// through sooner, so this cannot flake.
    #[tokio::test]
    async fn the_ceiling_allows_no_burst() {
        let pacer = Pacer::new(Some(0.01)); // one request per 100 s
        tokio::time::timeout(Duration::from_secs(60), pacer.acquire())
            .await
            .expect("the first request starts at once");
        let second = tokio::time::timeout(Duration::from_millis(100), pacer.acquire()).await;
        assert!(
            second.is_err(),
            "a second request started within the period"
        );
    }

    #[tokio::test]
    async fn a_429_pauses_every_caller_and_lowers_the_pace() {
        let pacer = Pacer::new(Some(100.0));
        pacer.acquire().await;
        pacer.answered();
        let pause = pacer.throttled(Some(Duration::from_millis(300)));
        assert_eq!(pause, Duration::from_millis(300));
        let rate = pacer.adaptive_rate().expect("slowed down");
        assert!(rate < 100.0, "{rate}");
        let t0 = std::time::Instant::now();
        pacer.acquire().await;
        assert!(
            t0.elapsed() >= Duration::from_millis(290),
            "{:?}",
            t0.elapsed()
        );
    }

    // Paused (virtual) time: the assertions are exact whatever the machine's load.
    #[tokio::test(start_paused = true)]
    async fn callers_released_by_a_pause_start_at_the_adaptive_pace_not_at_once() {
        let pacer = std::sync::Arc::new(Pacer::new(None));
        pacer.throttled(Some(Duration::from_millis(200)));
        let rate = pacer.adaptive_rate().expect("slowed down");
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let p = pacer.clone();
                tokio::spawn(async move {
                    p.acquire().await;
                    Instant::now()
                })
            })
            .collect();
        let mut started = Vec::new();
        for t in tasks {
            started.push(t.await.unwrap());
        }
        started.sort();
        assert!(started[0] - t0 >= Duration::from_millis(200));
        // Without the adaptive gate they would all start the moment the pause ends.
        let spacing = Duration::from_secs_f64(1.0 / rate);
        for pair in started.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap >= spacing.mul_f64(0.99), "{gap:?} apart at {rate:.1}/s");
        }
    }

    // Paused time: the 20 answers below take no virtual time however slow the
    // machine is, so they are always counted over the one-second floor. In wall-clock
    // time a machine too busy to send them within a second measured less than 20/s.
    #[tokio::test(start_paused = true)]
    async fn too_few_answers_halve_the_pace_and_enough_answers_measure_it() {
        // Refused at the second request: one answer says nothing about the server.
        let pacer = Pacer::new(Some(100.0));
        pacer.acquire().await;
        pacer.answered();
        pacer.throttled(Some(Duration::from_millis(10)));
        let rate = pacer.adaptive_rate().unwrap();
        assert!((rate - THROTTLE_FACTOR * 50.0).abs() < 1e-9, "{rate}");

        // 20 answers within a second, counted over one second: the server took 20/s.
        let pacer = Pacer::new(Some(100.0));
        for _ in 0..20 {
            pacer.acquire().await;
            pacer.answered();
        }
        pacer.throttled(Some(Duration::from_millis(10)));
        let rate = pacer.adaptive_rate().unwrap();
        assert!((rate - THROTTLE_FACTOR * 20.0).abs() < 1e-9, "{rate}");
    }

    /// Near the refused rate the pace probes slowly; after a quiet half-minute it takes
    /// the refusal for a passing episode and climbs back fast.
    #[tokio::test(start_paused = true)]
    async fn the_pace_climbs_slowly_then_fast_once_the_server_has_been_quiet() {
        let rate_after = |quiet: u64| async move {
            let pacer = Pacer::new(None);
            for _ in 0..100 {
                pacer.acquire().await;
                pacer.answered();
            }
            pacer.throttled(Some(Duration::from_millis(10)));
            let start = pacer.adaptive_rate().unwrap();
            tokio::time::advance(Duration::from_millis(10) + Duration::from_secs(quiet)).await;
            pacer.acquire().await;
            pacer.adaptive_rate().unwrap() / start
        };
        let slow = rate_after(20).await;
        assert!((slow - SLOW_PROBE.powi(20)).abs() < 1e-6, "{slow}");
        let fast = rate_after(40).await;
        let expected = SLOW_PROBE.powi(30) * FAST_PROBE.powi(10);
        assert!((fast - expected).abs() < 1e-6, "{fast} vs {expected}");
    }

    /// `Retry-After: 0` on every answer: no pause, so each 429 is an episode of its own.
    /// The requests must still slow to the adaptive pace, not run at the ceiling.
    #[tokio::test(start_paused = true)]
    async fn retry_after_zero_still_slows_the_pace() {
        let pacer = std::sync::Arc::new(Pacer::new(Some(10.0)));
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let t0 = Instant::now();
        let window = Duration::from_secs(20);
        // Eight lines in flight, every request refused with `Retry-After: 0`.
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (p, sent) = (pacer.clone(), sent.clone());
                tokio::spawn(async move {
                    loop {
                        p.acquire().await;
                        if Instant::now() - t0 >= window {
                            return;
                        }
                        sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(5)).await; // the answer
                        p.throttled(Some(Duration::ZERO));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
        let rate = pacer.adaptive_rate().unwrap();
        assert_eq!(rate, MIN_ADAPTIVE_RATE, "the pace fell to its floor");
        // At 0.5/s for 20 s: about 10 requests, plus the few that started before the
        // pace had fallen. The ceiling's pace (the bug) would be 200.
        assert!(
            sent <= 30,
            "{sent} requests in {window:?} at a pace of {rate}/s"
        );
    }

    #[tokio::test]
    async fn a_second_429_in_the_same_pause_does_not_lower_the_pace_again() {
        let pacer = Pacer::new(Some(50.0));
        pacer.throttled(Some(Duration::from_millis(200)));
        let first = pacer.adaptive_rate().unwrap();
        pacer.throttled(Some(Duration::from_millis(100)));
        assert_eq!(pacer.adaptive_rate().unwrap(), first);
        assert_eq!(pacer.throttles(), 2);
    }

    /// What a progress display shows: `--rate` (or no limit), the pause while a 429's
    /// `Retry-After` runs, then the slower pace the server made the run take.
    #[tokio::test(start_paused = true)]
    async fn the_pace_shown_is_the_ceiling_the_pause_then_the_adaptive_pace() {
        assert_eq!(Pacer::new(None).pace(), Pace::Unlimited);
        assert_eq!(Pacer::new(Some(0.0)).pace(), Pace::Unlimited);
        let pacer = Pacer::new(Some(20.0));
        assert_eq!(pacer.pace(), Pace::PerSecond(20.0));
        pacer.acquire().await;
        pacer.answered();
        pacer.throttled(Some(Duration::from_secs(5)));
        assert_eq!(pacer.throttles(), 1);
        assert_eq!(pacer.pace(), Pace::Paused(Duration::from_secs(5)));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(pacer.pace(), Pace::Paused(Duration::from_secs(3)));
        tokio::time::advance(Duration::from_secs(3)).await;
        let Pace::PerSecond(rate) = pacer.pace() else {
            panic!("{:?}", pacer.pace())
        };
        assert!(rate < 20.0 && Some(rate) == pacer.adaptive_rate(), "{rate}");
    }
}
