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
//!   then drops to about the rate the server actually accepted, and probes upwards
//!   slowly, so such a server sees a handful of 429s instead of a storm (with a fixed
//!   `--rate`, a little under that rate, climbing back by 1% a second);
//! - under `--rate auto`, a slow start: the run begins at 5 requests/s and doubles its
//!   pace each second (smoothly, not in steps) until the ceiling or the first 429.
//!   Against a server with a limit below the ceiling, the run then keeps up with it:
//!   - it settles at the rate the server accepted from one 429 to the next (that
//!     window spans a whole cycle of sending and pausing, so its rate is the server's,
//!     not the burst it allows after a pause), not below it, since every request per
//!     second under the limit is sending time lost for good;
//!   - when a pause ends, it catches up: what the pace would have sent during the pause
//!     (a second of it at most, less a small margin) starts at once, spaced at the
//!     ceiling, since a server that refills its allowance while nobody sends (a token
//!     bucket) has that much to spare, and the pause would otherwise cost its length;
//!   - after a quiet spell without 429s it looks for more the same way as the slow
//!     start, so a server whose limit rose is followed within seconds of that spell;
//!     each probe that finds the same limit makes the next spell twice as long (from
//!     20 s to 160 s), so a server steadily at its limit sees few 429s.

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
/// Under `--rate auto`, after this long without a 429 the pace probes for more, then
/// doubles each second towards `--max-rate`: a server whose limit rose is found in
/// seconds of this spell. A probe that only meets a 429 (the limit is the same) costs
/// a pause, so each such probe doubles the next spell, up to [`AUTO_QUIET_MAX`]; one
/// that finds more brings the spell back to this.
pub(crate) const AUTO_QUIET_PERIOD: Duration = Duration::from_secs(20);
/// Under `--rate auto`, the longest quiet spell before a probe. Each probe that meets a
/// 429 costs about one request's worth of the server's allowance (the pause lets the
/// fraction the refused request found go to waste), a fifth of a second at 5/s: a
/// server steadily at its limit sees one every few minutes, not every twenty seconds.
pub(crate) const AUTO_QUIET_MAX: Duration = Duration::from_secs(160);
/// Under `--rate auto`, after a 429 that ends a doubling pace (the slow start, or a
/// probe that found the limit risen), the pace climbs back in [`FAST_PROBE`] steps to
/// this share of the pace refused: the rate the server accepted meanwhile is only a
/// floor, the run having sent less than the server allowed until the pace caught up.
pub(crate) const AUTO_HOLD: f64 = 0.9;
/// Under `--rate auto`, when a run-wide pause ends, the requests the pace would have
/// sent during it (up to [`CATCH_UP_MAX`] of it) start at `--max-rate`'s spacing, less
/// this many: a server that refilled its allowance while nobody sent (a token bucket,
/// as a `Retry-After` of whole seconds suggests) has them to spare, and not sending
/// them is sending time lost for good, which the settled pace cannot make up. The few
/// left stay in the server's allowance, so the requests after the catch-up do not
/// meet an empty one at the slightest jitter, and are not lost either: the pace uses
/// them up before the next pause, or they are what the run ends with unused.
pub(crate) const CATCH_UP_MARGIN: f64 = 3.0;
/// Under `--rate auto`, the longest pause the catch-up counts, and the pause a
/// server's allowance is taken to refill in: the rest of a longer pause is the run's
/// waiting, left out of the rate the server accepted. A server's allowance beyond a
/// second's worth of requests is not to be counted on.
pub(crate) const CATCH_UP_MAX: Duration = Duration::from_secs(1);
/// Under `--rate auto`, a probe after a quiet spell climbs in [`FAST_PROBE`] steps up to
/// this multiple of the pace last refused, then doubles. The settled pace is about the
/// pace refused, and the allowance the server has to spare lets a pace some 30% above
/// its limit through for a few seconds: doubling any sooner would take that for a
/// risen limit and send a burst of 429s.
pub(crate) const AUTO_DOUBLE_FROM: f64 = 1.4;
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
    /// When the pause now on began (its first 429 or `Retry-After`), for the catch-up.
    pause_began: Option<Instant>,
    /// Under `--rate auto`, requests that may still start at the ceiling's spacing
    /// rather than the pace's, catching up the pause that just ended.
    credit: f64,
    /// Under `--rate auto`, answers since the last 429 episode began (or the run
    /// started), and when that was: from one 429 to the next the window spans a whole
    /// cycle of a throttled run (sending, then the pause), so the rate over it is the
    /// server's, where the answers since the pause ended would add the allowance the
    /// server refilled during it.
    window_start: Instant,
    ok_in_window: u64,
    /// The part of the pauses in that window beyond [`CATCH_UP_MAX`]: a server
    /// refills no more of its allowance than the catch-up counts on, so that time is
    /// the run's waiting, not the server's rate, and is left out of the window.
    idle_in_window: Duration,
    /// Whether an answer (or a 429) has come yet: the first window starts at the first
    /// answer, not at the first request, which had yet to be answered.
    answered_once: bool,
    /// Whether the window began at a 429 (not at the run's start, in the slow start).
    window_after_429: bool,
    /// Under `--rate auto`, how long the pace stays settled without a 429 before it
    /// probes for more: [`AUTO_QUIET_PERIOD`], twice as long after each probe that
    /// found nothing, up to [`AUTO_QUIET_MAX`].
    quiet_spell: Duration,
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
    /// Under `--rate auto`, the pace the climb after a 429 stops at until the quiet
    /// spell has passed.
    settle_at: f64,
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
                settle_at: 0.0,
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
                pause_began: None,
                credit: 0.0,
                window_start: now,
                ok_in_window: 0,
                idle_in_window: Duration::ZERO,
                answered_once: false,
                window_after_429: false,
                quiet_spell: AUTO_QUIET_PERIOD,
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
                        if let Some(until) = s.paused_until.take() {
                            s.resumed_at = now;
                            s.sent_since_resume = 0;
                            s.ok_since_resume = 0;
                            self.catch_up(&mut s, until, now);
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

    /// When a pause that ended at `until` is over, under `--rate auto`: grants the
    /// catch-up credit (the requests the pace would have sent during the pause, less
    /// [`CATCH_UP_MARGIN`]) and leaves the pause beyond [`CATCH_UP_MAX`] out of the
    /// window the server's rate is measured over.
    fn catch_up(&self, s: &mut State, until: Instant, now: Instant) {
        let Some(began) = s.pause_began.take() else {
            return;
        };
        if !self.auto {
            return;
        }
        let pause = until.saturating_duration_since(began);
        s.idle_in_window += pause.saturating_sub(CATCH_UP_MAX);
        let pause = pause.min(CATCH_UP_MAX);
        if let Some(rate) = self.pace(s, now) {
            s.credit = (pause.as_secs_f64() * rate - CATCH_UP_MARGIN).max(0.0);
        }
    }

    /// Takes the slot due at `now` at the pace of the moment, or says when the next is.
    fn take_slot(&self, s: &mut State, now: Instant) -> Result<(), Instant> {
        let Some(mut rate) = self.pace(s, now) else {
            return Ok(());
        };
        if now < s.next_slot {
            return Err(s.next_slot);
        }
        // A catch-up slot follows at the ceiling's spacing: however many there are, no
        // second holds more requests than `--max-rate`.
        let ceiling = self.configured.unwrap_or(rate);
        if s.credit > 0.0 && ceiling > rate {
            // Of a slot at the ceiling's spacing, the share the pace would have sent
            // in that time anyway is no catch-up.
            s.credit -= 1.0 - rate / ceiling;
            rate = ceiling;
        } else {
            s.credit = 0.0;
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
                } else if quiet < s.quiet_spell {
                    // Back to the pace the last 429 settled on (there already when it
                    // measured the server's limit; in fast steps after the slow start,
                    // whose rate is only a floor), and stay there: a server steadily
                    // at its limit then sees no 429 until the next probe.
                    a.rate = (a.rate * FAST_PROBE).min(a.settle_at).max(a.rate);
                } else if a.rate < AUTO_DOUBLE_FROM * a.refused_pace {
                    // A quiet spell: probe past the refused pace in small steps, so a
                    // server still at its limit refuses one or two requests, not the
                    // handful a doubling pace sends in one answer's time...
                    a.rate *= FAST_PROBE;
                } else {
                    // ...and past it, the limit has risen: doubling finds how far, as
                    // the slow start does, and the rate measured at its end is taken
                    // over the doubling alone, not the slower spell before it.
                    a.grow = Grow::Double;
                    s.quiet_spell = AUTO_QUIET_PERIOD;
                    s.window_start = a.last_change;
                    s.ok_in_window = 0;
                    s.idle_in_window = Duration::ZERO;
                    s.window_after_429 = false;
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
        if !s.answered_once {
            s.answered_once = true;
            s.window_start = Instant::now();
        }
        s.ok_in_window += 1;
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
            let (accepted, rate, settle_at) = if self.auto {
                self.auto_settle(&mut s, now, current)
            } else {
                // A server that refuses almost at once (no burst allowance) leaves too
                // few answers to measure its rate, and dividing them by a second would
                // take it for a server of one request a second: halve the pace
                // instead, and let the next 429 measure again.
                let accepted = if s.ok_since_resume >= MIN_EVIDENCE {
                    s.ok_since_resume as f64 / active
                } else {
                    current / 2.0
                };
                let rate = (THROTTLE_FACTOR * accepted.min(current)).max(MIN_ADAPTIVE_RATE);
                (accepted, rate, rate)
            };
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
                settle_at,
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

    /// Under `--rate auto`, at the first 429 of an episode: the rate the server
    /// accepted, the pace to settle at, and the pace to climb back to before the quiet
    /// spell has passed. Starts the next window.
    fn auto_settle(&self, s: &mut State, now: Instant, current: f64) -> (f64, f64, f64) {
        // A probe after a quiet spell that met a 429 found the same limit: the next
        // spell is twice as long, so a server steadily at its limit sees few of them.
        if let Some(a) = s.adaptive.as_ref().filter(|a| a.grow == Grow::Probe) {
            if now.duration_since(a.since) >= s.quiet_spell {
                s.quiet_spell = (2 * s.quiet_spell).min(AUTO_QUIET_MAX);
            }
        }
        let window = now.duration_since(s.window_start);
        let window = window
            .saturating_sub(s.idle_in_window)
            .as_secs_f64()
            .max(1.0);
        // The request refused found the server's allowance short of one request, and
        // the pause let that fraction go to waste: counted back, the window says what
        // the server allows while the run sends, which is the pace to keep.
        let ok = s.ok_in_window + u64::from(s.window_after_429);
        let mut accepted = ok as f64 / window;
        // Few answers over the one-second floor may say far less than the server
        // takes: never drop by more than half at once on them.
        if s.ok_in_window < MIN_EVIDENCE {
            accepted = accepted.max(current / 2.0);
        }
        let rate = accepted.min(current).max(MIN_ADAPTIVE_RATE);
        // A window in which the pace doubled (the slow start, or a probe that found
        // the limit risen) was partly spent below the server's limit: its rate is a
        // floor, so climb back quickly towards the pace refused. A window spent at the
        // settled pace (and a probe that met the same limit) is a whole cycle at the
        // server's limit: its rate is the limit, so stay there.
        let doubled = s.adaptive.as_ref().is_none_or(|a| a.grow == Grow::Double);
        let settle_at = if doubled {
            (AUTO_HOLD * current).max(rate)
        } else {
            rate
        };
        s.window_start = now;
        // A 429 before any answer starts the window as well: the first answer after it
        // must not start it again.
        s.answered_once = true;
        s.window_after_429 = true;
        s.ok_in_window = 0;
        s.idle_in_window = Duration::ZERO;
        (accepted, rate, settle_at)
    }

    /// Pauses the whole run until `retry_after` from now (a `Retry-After` on a
    /// response other than 429), without changing the pace.
    pub(crate) fn pause_for(&self, retry_after: Duration) {
        let mut s = self.lock();
        Self::extend_pause(&mut s, Instant::now() + retry_after);
    }

    fn extend_pause(s: &mut State, until: Instant) {
        let now = Instant::now();
        if until > now && s.paused_until.is_none_or(|u| u <= now) {
            // A new pause: what is left of the last catch-up is lost with it.
            s.pause_began = Some(now);
            s.credit = 0.0;
        }
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
