//! The pacer on paused (virtual) time where it matters: exact whatever the machine's load.

use super::*;
use std::sync::atomic::Ordering;

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
    let pacer = Pacer::new(fixed(0.01)); // one request per 100 s
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
    let pacer = Pacer::new(fixed(100.0));
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
    let pacer = std::sync::Arc::new(Pacer::new(Rate::Off));
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
    // Without the adaptive gate they would all start the moment the pause ends. Each
    // takes its slot at the pace of the moment, which climbs by at most 1% a second
    // (over these 6 s, 6%).
    let spacing = Duration::from_secs_f64(1.0 / rate);
    for pair in started.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= spacing.mul_f64(0.94), "{gap:?} apart at {rate:.1}/s");
    }
}

// Paused time: the 20 answers below take no virtual time however slow the
// machine is, so they are always counted over the one-second floor. In wall-clock
// time a machine too busy to send them within a second measured less than 20/s.
#[tokio::test(start_paused = true)]
async fn too_few_answers_halve_the_pace_and_enough_answers_measure_it() {
    // Refused at the second request: one answer says nothing about the server.
    let pacer = Pacer::new(fixed(100.0));
    pacer.acquire().await;
    pacer.answered();
    pacer.throttled(Some(Duration::from_millis(10)));
    let rate = pacer.adaptive_rate().unwrap();
    assert!((rate - THROTTLE_FACTOR * 50.0).abs() < 1e-9, "{rate}");

    // 20 answers within a second, counted over one second: the server took 20/s.
    let pacer = Pacer::new(fixed(100.0));
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
        let pacer = Pacer::new(Rate::Off);
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
    let pacer = std::sync::Arc::new(Pacer::new(fixed(10.0)));
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
                        return p.adaptive_rate();
                    }
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await; // the answer
                    p.throttled(Some(Duration::ZERO));
                }
            })
        })
        .collect();
    let mut at_the_end = Vec::new();
    for t in tasks {
        at_the_end.push(t.await.unwrap().expect("slowed down"));
    }
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    // Seen by the first line past the window, at most one slot (2 s) after the last
    // 429: the pace may have climbed by 1% a second since.
    let rate = at_the_end.into_iter().fold(f64::MAX, f64::min);
    assert!(
        rate <= MIN_ADAPTIVE_RATE * SLOW_PROBE.powi(2),
        "the pace fell to its floor: {rate}"
    );
    // At 0.5/s for 20 s: about 10 requests, plus the few that started before the
    // pace had fallen. The ceiling's pace (the bug) would be 200.
    assert!(
        sent <= 30,
        "{sent} requests in {window:?} at a pace of {rate}/s"
    );
}

#[tokio::test]
async fn a_second_429_in_the_same_pause_does_not_lower_the_pace_again() {
    let pacer = Pacer::new(fixed(50.0));
    pacer.throttled(Some(Duration::from_millis(200)));
    let first = pacer.adaptive_rate().unwrap();
    pacer.throttled(Some(Duration::from_millis(100)));
    assert_eq!(pacer.adaptive_rate().unwrap(), first);
    assert_eq!(pacer.throttles(), 2);
}

fn fixed(rate: f64) -> Rate {
    Rate::Fixed(rate)
}

// ---------------------------------------------------------------------------------
// `--rate auto` against a model server, on paused time.

/// A rate-limited server as the simulator is one: a token bucket of `limit(t)` tokens a
/// second holding as many (at least one), starting full, checked when a request
/// arrives; a refused request gets `Retry-After` in whole seconds, at least 1.
struct ModelServer {
    start: Instant,
    tokens: f64,
    at: Instant,
    limit: Box<dyn Fn(Duration) -> f64 + Send>,
}

impl ModelServer {
    fn new(limit: impl Fn(Duration) -> f64 + Send + 'static) -> ModelServer {
        let start = Instant::now();
        let tokens = limit(Duration::ZERO).floor().max(1.0);
        ModelServer {
            start,
            tokens,
            at: start,
            limit: Box::new(limit),
        }
    }

    /// Takes a token, or says the `Retry-After` to answer with.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let limit = (self.limit)(now - self.start);
        let capacity = limit.floor().max(1.0);
        self.tokens = (self.tokens + (now - self.at).as_secs_f64() * limit).min(capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - self.tokens) / limit;
        Err(Duration::from_secs(wait.ceil().max(1.0) as u64))
    }
}

/// What a model run saw: when each request arrived (since the start) and whether
/// it was refused.
#[derive(Debug, Default)]
struct ModelRun {
    arrivals: Vec<(Duration, bool)>,
    elapsed: Duration,
}

impl ModelRun {
    fn refused(&self) -> usize {
        self.arrivals.iter().filter(|(_, refused)| *refused).count()
    }

    /// Requests that arrived in `[from, to)` seconds, and how many of them were refused.
    fn between(&self, from: f64, to: f64) -> (usize, usize) {
        let inside = self
            .arrivals
            .iter()
            .filter(|(t, _)| (from..to).contains(&t.as_secs_f64()));
        inside.fold((0, 0), |(n, r), (_, refused)| {
            (n + 1, r + usize::from(*refused))
        })
    }
}

/// Reads `lines` lines, at most `in_flight` at a time, each answer `latency` after its
/// request, a refused line sent again as the client does (after the pacer's pause).
async fn model_run(
    pacer: &Pacer,
    server: ModelServer,
    lines: usize,
    in_flight: usize,
    latency: Duration,
) -> ModelRun {
    let start = Instant::now();
    let server = Mutex::new(server);
    let run = Mutex::new(ModelRun::default());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let worker = || async {
        while next.fetch_add(1, Ordering::Relaxed) < lines {
            loop {
                pacer.acquire().await;
                let now = Instant::now();
                let answer = server.lock().unwrap().take(now);
                run.lock()
                    .unwrap()
                    .arrivals
                    .push((now - start, answer.is_err()));
                tokio::time::sleep(latency).await;
                match answer {
                    Ok(()) => {
                        pacer.answered();
                        break;
                    }
                    Err(retry_after) => {
                        pacer.throttled(Some(retry_after));
                    }
                }
            }
        }
    };
    futures::future::join_all((0..in_flight).map(|_| worker())).await;
    let mut run = run.into_inner().unwrap();
    run.elapsed = start.elapsed();
    run
}

fn auto(max: f64) -> Rate {
    Rate::Auto { max }
}

const LATENCY: Duration = Duration::from_millis(250);
/// tokio's timer resolution: a sleep ends on a whole millisecond.
const TICK: Duration = Duration::from_millis(1);

/// The slow start: 5/s at first, at most doubling each second, up to `--max-rate` and
/// never above it; the pace is readable all along.
#[tokio::test(start_paused = true)]
async fn auto_starts_at_five_doubles_each_second_and_stops_at_the_max() {
    for max in [50.0, 20.0] {
        let pacer = Pacer::new(auto(max));
        assert_eq!(pacer.current_rate(), Some(AUTO_START_RATE));
        let unlimited = ModelServer::new(|_| 1e9);
        let run = model_run(&pacer, unlimited, 600, 64, LATENCY).await;
        assert_eq!(run.refused(), 0);
        assert_eq!(pacer.current_rate(), Some(max), "at the max by the end");
        let per_second: Vec<usize> = (0..10)
            .map(|k| run.between(k as f64, k as f64 + 1.0).0)
            .collect();
        // 5/s doubling smoothly: 5 × 2^k / ln 2 ≈ 7.2 × 2^k requests in second k.
        assert!((6..=8).contains(&per_second[0]), "{per_second:?}");
        for k in 0..9 {
            let (now, next) = (per_second[k] as f64, per_second[k + 1] as f64);
            assert!(next <= 2.0 * now + 2.0, "more than doubled: {per_second:?}");
        }
        // At the max within four seconds (log2(50/5) = 3.3), then never above it.
        for &n in &per_second[4..] {
            assert!(n as f64 <= max + 1.0, "above {max}/s: {per_second:?}");
            assert!(n as f64 >= max - 1.0, "below {max}/s: {per_second:?}");
        }
    }
}

/// A server allowing `limit` requests a second, 250 ms per answer, 1,000 lines at the
/// default concurrency: the targets (within 1.15× of the ideal time, at most 3%
/// of answers 429), in virtual time, so exactly whatever the machine.
#[tokio::test(start_paused = true)]
async fn auto_finds_the_server_limit_with_few_429s() {
    for limit in [5.0, 8.0, 20.0, 35.0, 100.0] {
        let pacer = Pacer::new(auto(crate::settings::DEFAULT_MAX_RATE));
        let server = ModelServer::new(move |_| limit);
        let concurrency = crate::settings::DEFAULT_CONCURRENCY;
        let run = model_run(&pacer, server, 1000, concurrency, LATENCY).await;
        let ideal = 1000.0 / limit.min(crate::settings::DEFAULT_MAX_RATE);
        let (wall, refused) = (run.elapsed.as_secs_f64(), run.refused());
        let share = refused as f64 / run.arrivals.len() as f64;
        eprintln!(
            "limit {limit}: {wall:.1} s for an ideal {ideal:.0} s ({:.3}x), {refused} of {} refused ({:.1}%)",
            wall / ideal,
            run.arrivals.len(),
            share * 100.0
        );
        assert!(
            wall <= 1.15 * ideal,
            "limit {limit}: {wall:.1} s, ideal {ideal}"
        );
        assert!(share <= 0.03, "limit {limit}: {refused} refused");
    }
}

/// The server's limit falls from 20/s to 5/s, then rises to 50/s: the pace follows a
/// fall within seconds and a rise within a quiet spell and a few seconds, with few 429s.
#[tokio::test(start_paused = true)]
async fn auto_follows_a_limit_that_changes() {
    let limit = |t: Duration| match t.as_secs() {
        0..30 => 20.0,
        30..60 => 5.0,
        _ => 50.0,
    };
    let pacer = Pacer::new(auto(50.0));
    let run = model_run(&pacer, ModelServer::new(limit), 2600, 16, LATENCY).await;
    // Answers accepted per second, and the share refused, over `[from, to)`.
    let phase = |from: f64, to: f64| {
        let (n, refused) = run.between(from, to);
        let ok = (n - refused) as f64 / (to - from);
        eprintln!("{from:>3} s to {to:>3} s: {ok:4.1}/s accepted, {refused} of {n} refused");
        (ok, refused as f64 / n.max(1) as f64)
    };
    let (ok, refused) = phase(10.0, 30.0);
    assert!(ok >= 15.0 && refused <= 0.05, "at 20/s: {ok}/s, {refused}");
    // The fall: a few 429s in the seconds after it, then hardly any.
    let (_, refused) = phase(30.0, 35.0);
    assert!(refused <= 0.5, "just after the fall: {refused}");
    let (ok, refused) = phase(35.0, 60.0);
    assert!(ok >= 4.0 && refused <= 0.05, "at 5/s: {ok}/s, {refused}");
    // The rise: found once the pace has been quiet for a while.
    let quiet = AUTO_QUIET_PERIOD.as_secs_f64();
    let (ok, refused) = phase(60.0 + quiet + 10.0, 60.0 + quiet + 20.0);
    assert!(ok >= 40.0 && refused <= 0.01, "at 50/s: {ok}/s, {refused}");
    let share = run.refused() as f64 / run.arrivals.len() as f64;
    assert!(
        share <= 0.03,
        "{} of {} refused",
        run.refused(),
        run.arrivals.len()
    );
}

/// After the slow start's first 429, `auto` slows to the rate the server accepted since
/// the first answer (no share below it, unlike a fixed rate), then climbs back quickly
/// towards the pace refused; the pace a progress display reads follows every change.
#[tokio::test(start_paused = true)]
async fn auto_backs_off_to_what_the_server_accepted_and_the_pace_is_readable() {
    assert_eq!(Pacer::new(Rate::Off).current_rate(), None);
    assert_eq!(Pacer::new(fixed(7.0)).current_rate(), Some(7.0));
    // A maximum at or below the start: nothing to find, the ceiling alone.
    let low = Pacer::new(auto(4.0));
    assert_eq!((low.current_rate(), low.adaptive_rate()), (Some(4.0), None));

    let pacer = Pacer::new(auto(50.0));
    let first = Instant::now();
    for _ in 0..20 {
        pacer.acquire().await;
        pacer.answered();
    }
    // 20 requests at a slow start from 5/s take a little over 2 s.
    let climbed = pacer.current_rate().unwrap();
    assert!((15.0..25.0).contains(&climbed), "{climbed}");
    pacer.throttled(Some(Duration::from_secs(1)));
    // The first answer came with the first request, at once.
    let accepted = 20.0 / Instant::now().duration_since(first).as_secs_f64();
    assert!(accepted < climbed, "{accepted} {climbed}");
    assert_eq!(pacer.current_rate(), Some(accepted));
    assert_eq!(pacer.adaptive_rate(), Some(accepted));
    // Once the pause is over, back up in fast steps to 0.9 of the pace refused.
    tokio::time::advance(Duration::from_secs(1)).await;
    let mut seen = Vec::new();
    for _ in 0..12 {
        tokio::time::advance(PROBE_PERIOD).await;
        pacer.acquire().await;
        seen.push(pacer.current_rate().unwrap());
    }
    let hold = AUTO_HOLD * climbed;
    assert!(
        (seen[0] / accepted - FAST_PROBE).abs() < 1e-9,
        "{accepted} then {seen:?}"
    );
    assert!((seen[11] - hold).abs() < 1e-9, "{seen:?} towards {hold}");
}

/// Between two 429s a run settles exactly at what the server accepted over the cycle:
/// the answers between them (and the one request the pause cost), over the time
/// between them, less whatever of the pause went beyond a second.
#[tokio::test(start_paused = true)]
async fn auto_settles_at_the_rate_accepted_between_two_429s() {
    let pacer = Pacer::new(auto(50.0));
    for _ in 0..100 {
        pacer.acquire().await;
        pacer.answered();
    }
    // The end of the slow start, then a pause of 3 s: 2 s of it are the run's waiting.
    pacer.throttled(Some(Duration::from_secs(3)));
    tokio::time::advance(Duration::from_secs(3)).await;
    pacer.acquire().await;
    // 59 answers over the next 10 s, then a 429: 60 requests in 13 - 2 = 11 s.
    for _ in 0..59 {
        pacer.answered();
    }
    tokio::time::advance(Duration::from_secs(10)).await;
    pacer.throttled(Some(Duration::from_secs(1)));
    let settled = pacer.adaptive_rate().unwrap();
    assert!((settled - 60.0 / 11.0).abs() < 1e-9, "{settled}");
    // And it stays there: no climb until the quiet spell is over...
    tokio::time::advance(Duration::from_secs(1)).await;
    for _ in 0..(AUTO_QUIET_PERIOD.as_secs() - 1) {
        tokio::time::advance(PROBE_PERIOD).await;
        pacer.acquire().await;
        assert_eq!(pacer.adaptive_rate(), Some(settled));
    }
    // ...then it probes for more.
    tokio::time::advance(PROBE_PERIOD * 2).await;
    pacer.acquire().await;
    assert!(pacer.adaptive_rate().unwrap() > settled);
}

/// A 429 before any answer starts the window the next 429 measures: the first answer
/// after it does not start it again.
#[tokio::test(start_paused = true)]
async fn auto_measures_from_a_429_that_came_before_any_answer() {
    let pacer = Pacer::new(auto(50.0));
    // 30 requests of a slow start, none answered, then a 429: no evidence, so half
    // the pace.
    for _ in 0..30 {
        pacer.acquire().await;
    }
    pacer.throttled(Some(Duration::from_secs(1)));
    tokio::time::advance(Duration::from_secs(1)).await;
    pacer.acquire().await;
    tokio::time::advance(Duration::from_secs(4)).await;
    for _ in 0..19 {
        pacer.answered();
    }
    pacer.throttled(Some(Duration::from_secs(1)));
    // 19 answers and the request the pause cost, over the 5 s since the first 429.
    let settled = pacer.adaptive_rate().unwrap();
    assert!((settled - 20.0 / 5.0).abs() < 1e-9, "{settled}");
}

/// Under `auto`, when a pause ends, what the pace would have sent during it (less a
/// margin) starts at `--max-rate`'s spacing: a token bucket refilled meanwhile. Never
/// before the pause ends, and never more than `--max-rate` in any second.
#[tokio::test(start_paused = true)]
async fn auto_catches_up_a_pause_at_the_ceiling_after_it_ends() {
    let pacer = std::sync::Arc::new(Pacer::new(auto(50.0)));
    for _ in 0..30 {
        pacer.acquire().await;
        pacer.answered();
    }
    tokio::time::advance(Duration::from_secs(1)).await;
    let throttled_at = Instant::now();
    pacer.throttled(Some(Duration::from_secs(2)));
    let rate = pacer.adaptive_rate().unwrap();
    let resume = throttled_at + Duration::from_secs(2);
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..14)
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
    assert!(started[0] >= resume, "{:?}", started[0] - t0);
    // The pause counts for a second at most: `rate` requests, less the margin, each
    // catch-up slot standing for the share of it the pace would not have sent.
    let gaps: Vec<Duration> = started.windows(2).map(|w| w[1] - w[0]).collect();
    let ceiling = Duration::from_secs_f64(1.0 / 50.0);
    let fast = gaps.iter().take_while(|g| **g <= ceiling * 2).count();
    let expected = ((rate - CATCH_UP_MARGIN) / (1.0 - rate / 50.0)).ceil();
    assert!(
        fast > 0 && fast as f64 == expected,
        "{fast} caught up, {expected} expected at {rate:.1}/s: {gaps:?}"
    );
    // The timer wakes on whole milliseconds.
    for g in &gaps {
        assert!(*g + TICK >= ceiling, "{g:?}");
    }
    // Then the settled pace.
    for g in &gaps[fast..] {
        let period = Duration::from_secs_f64(1.0 / rate);
        assert!(*g + TICK >= period, "{g:?} at {rate:.1}/s");
    }

    // A fixed rate has no catch-up: the adaptive pace from the first request.
    let pacer = std::sync::Arc::new(Pacer::new(fixed(50.0)));
    for _ in 0..100 {
        pacer.acquire().await;
        pacer.answered();
    }
    pacer.throttled(Some(Duration::from_secs(2)));
    let rate = pacer.adaptive_rate().unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    let mut last = None;
    for _ in 0..5 {
        pacer.acquire().await;
        let now = Instant::now();
        if let Some(last) = last {
            let gap: Duration = now - last;
            // The timer wakes on whole milliseconds.
            let period = Duration::from_secs_f64(1.0 / rate);
            assert!(gap + TICK >= period, "{gap:?} at {rate:.1}/s");
        }
        last = Some(now);
    }
}

/// A probe after a quiet spell that meets a 429 (the limit has not risen) makes the
/// next spell twice as long, up to its maximum; one that finds more brings it back.
#[tokio::test(start_paused = true)]
async fn auto_probes_less_often_while_the_limit_stays_the_same() {
    // 5/s for 10 minutes: the spells grow to their maximum, so the episodes of 429s
    // after the first minute come minutes apart.
    let pacer = Pacer::new(auto(50.0));
    let steady = ModelServer::new(|_| 5.0);
    let run = model_run(&pacer, steady, 3000, 16, LATENCY).await;
    assert_eq!(pacer.lock().quiet_spell, AUTO_QUIET_MAX);
    let episodes = pacer.throttles();
    let (_, late) = run.between(60.0, 600.0);
    eprintln!("{episodes} refused in all, {late} after the first minute");
    // Probes some 70, 150, 310 and 470 s in, a refusal or two each, and perhaps a
    // 429 when a settled pace measured a little high: every 20 s, it would be 27 probes.
    assert!(late <= 12, "{late} refused after the first minute");
    // The limit rises to 20/s after 2 minutes: found by the next probe at the latest,
    // and followed at once.
    let pacer = Pacer::new(auto(50.0));
    let rising = ModelServer::new(|t: Duration| if t.as_secs() < 120 { 5.0 } else { 20.0 });
    let run = model_run(&pacer, rising, 5000, 16, LATENCY).await;
    let found = 120.0 + AUTO_QUIET_MAX.as_secs_f64() + 10.0;
    let (n, refused) = run.between(found, found + 10.0);
    eprintln!("{n} requests, {refused} refused from {found} s");
    assert!(n - refused >= 180, "{n} requests, {refused} refused");
}

/// The comparison, in virtual time: against the same model server, `auto` is
/// about as fast as a client that keeps the server saturated (the wxc_sdk script:
/// ten in flight, each sleeping its own `Retry-After`) while sending a fraction of its
/// 429s. What stays between them is the slow start and the first episode of 429s.
#[tokio::test(start_paused = true)]
async fn auto_keeps_up_with_a_client_that_saturates_the_server() {
    for limit in [5.0, 8.0, 20.0] {
        let pacer = Pacer::new(auto(crate::settings::DEFAULT_MAX_RATE));
        let server = ModelServer::new(move |_| limit);
        let concurrency = crate::settings::DEFAULT_CONCURRENCY;
        let ours = model_run(&pacer, server, 1000, concurrency, LATENCY).await;
        let script = saturating_run(ModelServer::new(move |_| limit), 1000, 10).await;
        let (a, b) = (ours.elapsed.as_secs_f64(), script.elapsed.as_secs_f64());
        eprintln!(
            "limit {limit}: {a:.2} s, {} refused; saturating client {b:.2} s, {} refused",
            ours.refused(),
            script.refused()
        );
        assert!(a <= 1.02 * b, "limit {limit}: {a:.2} s against {b:.2} s");
        assert!(ours.refused() * 10 <= script.refused(), "limit {limit}");
    }
}
/// What a progress display shows: `--rate` (or no limit), the pause while a 429's
/// `Retry-After` runs, then the slower pace the server made the run take.
#[tokio::test(start_paused = true)]
async fn the_pace_shown_is_the_ceiling_the_pause_then_the_adaptive_pace() {
    assert_eq!(Pacer::new(Rate::Off).shown_pace(), Pace::Unlimited);
    let pacer = Pacer::new(Rate::Fixed(20.0));
    assert_eq!(pacer.shown_pace(), Pace::PerSecond(20.0));
    pacer.acquire().await;
    pacer.answered();
    pacer.throttled(Some(Duration::from_secs(5)));
    assert_eq!(pacer.throttles(), 1);
    assert_eq!(pacer.shown_pace(), Pace::Paused(Duration::from_secs(5)));
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(pacer.shown_pace(), Pace::Paused(Duration::from_secs(3)));
    tokio::time::advance(Duration::from_secs(3)).await;
    let Pace::PerSecond(rate) = pacer.shown_pace() else {
        panic!("{:?}", pacer.shown_pace())
    };
    assert!(rate < 20.0, "{rate}");
}

/// A client without a pacer, as the wxc_sdk script is one: `in_flight` workers, each
/// sending its next line as soon as the last is answered and, refused, sleeping the
/// `Retry-After` on its own before sending again. It keeps the server saturated.
async fn saturating_run(server: ModelServer, lines: usize, in_flight: usize) -> ModelRun {
    let start = Instant::now();
    let server = Mutex::new(server);
    let run = Mutex::new(ModelRun::default());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let worker = || async {
        while next.fetch_add(1, Ordering::Relaxed) < lines {
            loop {
                let now = Instant::now();
                let answer = server.lock().unwrap().take(now);
                run.lock()
                    .unwrap()
                    .arrivals
                    .push((now - start, answer.is_err()));
                tokio::time::sleep(LATENCY).await;
                match answer {
                    Ok(()) => break,
                    Err(retry_after) => tokio::time::sleep(retry_after).await,
                }
            }
        }
    };
    futures::future::join_all((0..in_flight).map(|_| worker())).await;
    let mut run = run.into_inner().unwrap();
    run.elapsed = start.elapsed();
    run
}
