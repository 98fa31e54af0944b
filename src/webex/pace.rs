//! When a request may start: the one place that paces every request of a run.
//!
//! Everything here is shared by every task, and runs on tokio's clock (so the unit
//! tests drive it on paused time):
//! - one schedule of slots: each request reserves the next slot, one period after the
//!   last at the pace of the moment, so requests are evenly spaced from the first one
//!   (no burst), retries included, whoever asks; the pace never exceeds the ceiling
//!   (`--rate N`, or `--max-rate` under `--rate auto`);
//! - a run-wide pause: after a 429 (or any `Retry-After`), no request of any line
//!   starts before the pause ends;
//! - an adaptive pace: a server that allows less than the ceiling answers 429; the run
//!   then drops to a little under the rate the server actually accepted, and probes
//!   upwards slowly, so such a server sees a handful of 429s instead of a storm;
//! - under `--rate auto`, a slow start: the run begins at 5 requests/s and doubles its
//!   pace each second (smoothly, not in steps) until the ceiling or the first 429; after
//!   a quiet spell without 429s it looks for more the same way, so a server whose limit
//!   rose is followed within seconds of that spell.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::settings::{Rate, AUTO_START_RATE};

/// Slowest pace the adaptive gate drops to, in requests per second.
pub(crate) const MIN_ADAPTIVE_RATE: f64 = 0.5;
/// Answers since the last pause needed before their rate is taken for the server's;
/// with fewer, a 429 halves the pace.
pub(crate) const MIN_EVIDENCE: u64 = 10;
/// Share of the server's accepted rate the run drops to after a 429.
pub(crate) const THROTTLE_FACTOR: f64 = 0.85;
/// How often the adaptive pace probes upwards while no 429 arrives; under `--rate
/// auto`, the time in which the slow start doubles the pace.
pub(crate) const PROBE_PERIOD: Duration = Duration::from_secs(1);
/// Upward step per probe while well below the rate that was last refused.
pub(crate) const FAST_PROBE: f64 = 1.10;
/// Upward step per probe near or above the rate that was last refused.
pub(crate) const SLOW_PROBE: f64 = 1.01;
/// After this long without a 429 the refusal is taken for a passing episode (a busy
/// minute on the server, not its steady limit) and the pace climbs back fast.
pub(crate) const QUIET_PERIOD: Duration = Duration::from_secs(30);
/// Under `--rate auto`, after this long without a 429 the pace doubles each second
/// again, towards `--max-rate`: a server whose limit rose is found in seconds. Long
/// enough that a server steadily at its limit sees one short episode of 429s per
/// period (a few percent of requests at 5/s, far less above).
pub(crate) const AUTO_QUIET_PERIOD: Duration = Duration::from_secs(20);
/// Under `--rate auto`, after a 429, the pace climbs back to this share of the pace
/// that was refused and holds there until [`AUTO_QUIET_PERIOD`] has passed.
pub(crate) const AUTO_HOLD: f64 = 0.9;
/// Under `--rate auto`, a probe after a quiet spell climbs in [`FAST_PROBE`] steps up to
/// this multiple of the pace last refused, then doubles.
pub(crate) const AUTO_DOUBLE_FROM: f64 = 1.1;
/// A pace change at least this large (up or down, as a ratio) is logged.
const LOGGED_CHANGE: f64 = 1.25;
/// First backoff when a 429 carries no usable `Retry-After`; doubles per 429 in a row.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Longest backoff without a `Retry-After`.
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// How fast the pacer lets requests start right now, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// No ceiling (`--rate 0`) and no server has asked to slow down.
    Unlimited,
    /// At most this many requests per second: `--rate`, the slow start of `auto`, or
    /// less after a 429.
    PerSecond(f64),
    /// No request starts until this much time has passed (a 429 or a `Retry-After`).
    Paused(Duration),
}

/// Paces every request of one run. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub(crate) struct Pacer {
    /// The most requests per second (`--rate N`, or `--max-rate` under `auto`).
    configured: Option<f64>,
    /// `--rate auto`: slow start, and a new one after a quiet spell.
    auto: bool,
    /// The current pace as `f64` bits, `0.0` for none: what [`Pacer::current_rate`]
    /// reads without taking the lock.
    shown: AtomicU64,
    /// The queue of callers waiting to start: see [`Pacer::acquire`].
    turn: tokio::sync::Mutex<()>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    paused_until: Option<Instant>,
    /// The earliest start of the next request: one schedule for the whole run, each
    /// request starting one period (at the pace of the moment) after the last, so
    /// requests are evenly spaced with no burst, whoever asks.
    next_slot: Instant,
    /// `Some` while the pace is below the ceiling: a slow start, or a server that
    /// made the run slow down.
    adaptive: Option<Adaptive>,
    /// Counts since the run last resumed from a pause (or started): what the server
    /// accepted, and what was sent, to estimate the rate it allows.
    resumed_at: Instant,
    sent_since_resume: u64,
    ok_since_resume: u64,
    throttles_in_a_row: u32,
    throttles_total: u64,
    /// The pace last logged (0 for none), so that only real changes are.
    logged: f64,
}

/// A pace below the ceiling, and how it climbs.
#[derive(Debug)]
struct Adaptive {
    rate: f64,
    last_change: Instant,
    refused_at: f64,
    /// The pace that was refused (what the last 429 answered).
    refused_pace: f64,
    /// When the run resumed after the last 429 (or started).
    since: Instant,
    grow: Grow,
}

/// How the adaptive pace climbs while no 429 arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grow {
    /// In steps, once per [`PROBE_PERIOD`]: [`FAST_PROBE`] or [`SLOW_PROBE`].
    Probe,
    /// Doubling per [`PROBE_PERIOD`], continuously (`--rate auto`'s slow start).
    Double,
}

impl Pacer {
    /// A pacer for `rate`: a fixed ceiling, none (`Off`: the adaptive pace still
    /// applies after a 429), or `auto`: a slow start from [`AUTO_START_RATE`] up to its
    /// maximum.
    pub(crate) fn new(rate: Rate) -> Pacer {
        let configured = rate.ceiling().filter(|r| *r > 0.0 && r.is_finite());
        let now = Instant::now();
        let auto = matches!(rate, Rate::Auto { .. });
        // A maximum at or below the start leaves nothing to find: the ceiling alone.
        let slow_start =
            (auto && configured.is_some_and(|c| c > AUTO_START_RATE)).then_some(Adaptive {
                rate: AUTO_START_RATE,
                last_change: now,
                refused_at: f64::INFINITY,
                refused_pace: f64::INFINITY,
                since: now,
                grow: Grow::Double,
            });
        let shown = slow_start.as_ref().map(|a| a.rate).or(configured);
        Pacer {
            configured,
            auto,
            shown: AtomicU64::new(shown.unwrap_or(0.0).to_bits()),
            turn: tokio::sync::Mutex::new(()),
            state: Mutex::new(State {
                paused_until: None,
                next_slot: now,
                adaptive: slow_start,
                resumed_at: now,
                sent_since_resume: 0,
                ok_since_resume: 0,
                throttles_in_a_row: 0,
                throttles_total: 0,
                logged: shown.unwrap_or(0.0),
            }),
        }
    }

    /// The pace requests start at now, in requests per second; `None` when nothing
    /// limits it (`--rate 0`, never throttled). Cheap: one atomic load, no lock, for a
    /// progress display to read as often as it likes.
    pub(crate) fn current_rate(&self) -> Option<f64> {
        let rate = f64::from_bits(self.shown.load(Ordering::Relaxed));
        (rate > 0.0).then_some(rate)
    }

    /// Waits until a request may start, then counts it as started.
    ///
    /// Callers queue (first come, first served) and only the first waits for the
    /// schedule, taking its slot at the pace of the moment it starts: a slot reserved
    /// ahead would keep the pace of the moment it was asked for, and a slow start would
    /// then stay as slow as its first second for every request already waiting.
    pub(crate) async fn acquire(&self) {
        let _turn = self.turn.lock().await;
        loop {
            let until = {
                let mut s = self.lock();
                let now = Instant::now();
                match s.paused_until {
                    Some(until) if until > now => until,
                    _ => {
                        if s.paused_until.take().is_some() {
                            s.resumed_at = now;
                            s.sent_since_resume = 0;
                            s.ok_since_resume = 0;
                        }
                        match self.take_slot(&mut s, now) {
                            Ok(()) => {
                                s.sent_since_resume += 1;
                                return;
                            }
                            Err(slot) => slot,
                        }
                    }
                }
            };
            // A pause may begin, or the pace change, while this caller waits: it looks
            // again when it wakes.
            tokio::time::sleep_until(until).await;
        }
    }

    /// Takes the slot due at `now` at the pace of the moment, or says when the next is.
    fn take_slot(&self, s: &mut State, now: Instant) -> Result<(), Instant> {
        let Some(rate) = self.pace(s, now) else {
            return Ok(());
        };
        if now < s.next_slot {
            return Err(s.next_slot);
        }
        let period = Duration::from_secs_f64(1.0 / rate);
        // The next slot counts from this one's due time, not from the (slightly later)
        // moment the timer woke us, so the pace does not drift below the rate; after
        // an idle spell it counts from now, so no burst is saved up.
        let late = now - s.next_slot;
        let from = if late < period { s.next_slot } else { now };
        s.next_slot = from + period;
        Ok(())
    }

    /// The pace at `now`, climbing the adaptive pace when due; `None` for no limit.
    fn pace(&self, s: &mut State, now: Instant) -> Option<f64> {
        let Some(a) = s.adaptive.as_mut() else {
            return self.configured;
        };
        if a.grow == Grow::Probe {
            while now.duration_since(a.last_change) >= PROBE_PERIOD {
                let quiet = a.last_change.duration_since(a.since);
                a.last_change += PROBE_PERIOD;
                if !self.auto {
                    let step = if quiet >= QUIET_PERIOD || a.rate < 0.8 * a.refused_at {
                        FAST_PROBE
                    } else {
                        SLOW_PROBE
                    };
                    a.rate *= step;
                } else if quiet < AUTO_QUIET_PERIOD {
                    // Back up quickly to just under the pace that was refused, and
                    // stay there: a server steadily at its limit then sees no 429
                    // until the next probe.
                    let hold = AUTO_HOLD * a.refused_pace;
                    if a.rate < hold {
                        a.rate = (a.rate * FAST_PROBE).min(hold);
                    }
                } else if a.rate < AUTO_DOUBLE_FROM * a.refused_pace {
                    // A quiet spell: probe past the refused pace in small steps, so a
                    // server still at its limit refuses one or two requests, not the
                    // handful a doubling pace sends in one answer's time...
                    a.rate *= FAST_PROBE;
                } else {
                    // ...and past it, the limit has risen: doubling finds how far.
                    a.grow = Grow::Double;
                    break;
                }
            }
        }
        if a.grow == Grow::Double && now > a.last_change {
            let periods = (now - a.last_change).as_secs_f64() / PROBE_PERIOD.as_secs_f64();
            a.rate *= periods.exp2();
            a.last_change = now;
        }
        let rate = a.rate;
        match self.configured {
            Some(c) if rate >= c => {
                s.adaptive = None;
                tracing::info!(
                    pace = format_args!("{c}/s"),
                    "pace at its ceiling ({})",
                    if self.auto { "--max-rate" } else { "--rate" }
                );
                self.show(s, c, false);
                Some(c)
            }
            _ => {
                self.show(s, rate, true);
                Some(rate)
            }
        }
    }

    /// Publishes a new pace; logs it when `log` and it moved enough to matter since it
    /// was last logged (a slow start changes it on every request).
    fn show(&self, s: &mut State, rate: f64, log: bool) {
        self.shown.store(rate.to_bits(), Ordering::Relaxed);
        if !log {
            s.logged = rate;
        } else if s.logged <= 0.0 || (rate / s.logged).max(s.logged / rate) >= LOGGED_CHANGE {
            s.logged = rate;
            tracing::debug!(pace = format_args!("{rate:.1}/s"), "pace changed");
        }
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
            // here: starting the schedule afresh at `resume` (= now) would let a
            // request through at once after each one, a steady stream at the
            // ceiling's pace whatever the adaptive pace says.
            s.next_slot = s.next_slot.max(resume);
            s.adaptive = Some(Adaptive {
                rate,
                last_change: resume,
                refused_at: current.min(accepted).max(rate),
                refused_pace: current,
                since: resume,
                grow: Grow::Probe,
            });
            s.logged = rate;
            self.shown.store(rate.to_bits(), Ordering::Relaxed);
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

    /// The current adaptive pace (slow start included), while there is one.
    #[cfg(test)]
    fn adaptive_rate(&self) -> Option<f64> {
        self.lock().adaptive.as_ref().map(|a| a.rate)
    }

    /// What a progress display shows: the pause while a 429's `Retry-After` runs,
    /// else the pace of the moment (or no limit).
    pub(crate) fn shown_pace(&self) -> Pace {
        let paused_until = self.lock().paused_until;
        let now = Instant::now();
        if let Some(until) = paused_until.filter(|u| *u > now) {
            return Pace::Paused(until - now);
        }
        match self.current_rate() {
            Some(rate) => Pace::PerSecond(rate),
            None => Pace::Unlimited,
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
mod tests;
