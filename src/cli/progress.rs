//! The progress bar of a running job: lines done, percentage, rate, ETA, the pace the
//! pacer allows and the 429s so far, drawn with `indicatif` on a terminal only.
//!
//! The library only counts ([`Progress`]); this module draws. Everything else that
//! writes to stderr while a bar is up (log events, [`super::Ui::tell`]) goes through
//! [`write_stderr`], which takes the bar off the screen for the write and puts it back,
//! so a message never lands in the middle of the bar.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use ptt_audit::job::Progress;
use ptt_audit::webex::Pace;

use super::log::Lossy;

/// How often the bar reads the counters (indicatif draws at most 20 times a second).
const TICK: Duration = Duration::from_millis(200);

/// The span the rate (and so the ETA) is measured over: long enough to smooth out
/// concurrent lines finishing together, short enough to follow a run that slows down
/// after a 429.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// The layout: the bar, then [`render`]'s text (the `status` key, see `View`).
const TEMPLATE: &str = "{bar:24.cyan/blue} {status}";

/// The bar on screen, if any: the one stderr writers suspend. Process-wide because
/// stderr is.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Writes `bytes` to stderr, taking the progress bar (if one is drawn) off the screen
/// meanwhile; a failed write is lost quietly (see [`Lossy`]).
pub fn write_stderr(bytes: &[u8]) {
    let bar = ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let write = || {
        let mut stderr = Lossy(std::io::stderr().lock());
        let _ = stderr.write_all(bytes);
        let _ = stderr.flush();
    };
    match bar {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// The tracing writer for stderr: each event (formatted whole, then written in one
/// `write_all`) goes through [`write_stderr`].
#[derive(Debug, Default)]
pub struct StderrWriter;

impl std::io::Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        write_stderr(buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        write_stderr(buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What one frame of the bar shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    /// Lines finished.
    pub done: usize,
    /// Lines in the run.
    pub total: usize,
    /// Lines finished per second lately; `None` until it can be measured.
    pub rate: Option<f64>,
    /// What the pacer allows now.
    pub pace: Option<Pace>,
    /// 429s so far.
    pub throttled: u64,
    /// `--all` is still listing lines: `total` is still growing.
    pub listing: bool,
}

/// The text beside the bar, e.g.
/// `37/50 lines 74%  12.3/s  ETA 1s  pace 10/s  429s 0`.
pub fn render(s: &Snapshot) -> String {
    // Floor: 100% only once every line is done.
    let percent = (s.done.min(s.total) * 100)
        .checked_div(s.total)
        .unwrap_or(100);
    let left = s.total.saturating_sub(s.done);
    let (rate, eta) = match s.rate {
        // The total is not known yet: no ETA from a part of it.
        _ if s.listing => (
            s.rate.map_or("-/s".to_string(), per_second),
            "-".to_string(),
        ),
        _ if left == 0 => (per_second(s.rate.unwrap_or(0.0)), "0s".to_string()),
        Some(r) if r > 0.0 => (per_second(r), whole_seconds(left as f64 / r)),
        _ => ("-/s".to_string(), "-".to_string()),
    };
    let pace = match s.pace {
        None => String::new(),
        Some(Pace::Unlimited) => "  pace unlimited".into(),
        Some(Pace::PerSecond(r)) => format!("  pace {}", per_second(r)),
        Some(Pace::Paused(d)) => format!("  paused {}", whole_seconds(d.as_secs_f64())),
    };
    // While `--all` still lists, the total grows: say so.
    let more = if s.listing { "+ (listing)" } else { "" };
    format!(
        "{}/{}{more} lines {percent}%  {rate}  ETA {eta}{pace}  429s {}",
        s.done, s.total, s.throttled
    )
}

/// `12.3/s` below 100, `150/s` above: as precise as a glance needs.
fn per_second(r: f64) -> String {
    if r < 100.0 {
        format!("{r:.1}/s")
    } else {
        format!("{r:.0}/s")
    }
}

/// `1m 5s`, rounded up to the second (an ETA of 0s while work is left would be wrong).
fn whole_seconds(secs: f64) -> String {
    let secs = if secs.is_finite() {
        secs.ceil().clamp(0.0, 1e9)
    } else {
        1e9
    };
    humantime::format_duration(Duration::from_secs(secs as u64)).to_string()
}

/// Lines finished per second over the last [`RATE_WINDOW`].
#[derive(Debug)]
struct RateWindow {
    samples: VecDeque<(Instant, usize)>,
}

impl RateWindow {
    fn new(start: Instant) -> RateWindow {
        RateWindow {
            samples: VecDeque::from([(start, 0)]),
        }
    }

    /// Adds a sample; the rate since the oldest one kept, once there is a span to
    /// measure.
    fn record(&mut self, now: Instant, done: usize) -> Option<f64> {
        while self.samples.len() > 1
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _)| now.duration_since(*t) >= RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        self.samples.push_back((now, done));
        let (t0, d0) = *self.samples.front()?;
        let span = now.duration_since(t0).as_secs_f64();
        (span >= 0.5).then(|| done.saturating_sub(d0) as f64 / span)
    }
}

/// The bar of one running job. Dropping it draws the final state and clears it, so
/// that the summary starts on a clean line.
#[derive(Debug)]
pub struct Bar {
    view: View,
    ticker: tokio::task::JoinHandle<()>,
    progress: Arc<Progress>,
}

impl Bar {
    /// Starts drawing `progress` on stderr. The caller checks that stderr is a terminal
    /// and that the user wants progress.
    pub fn start(progress: Arc<Progress>) -> Bar {
        let view = View::new(ProgressBar::with_draw_target(
            None,
            ProgressDrawTarget::stderr(),
        ));
        let ticker = tokio::spawn({
            let (view, progress) = (view.clone(), progress.clone());
            async move {
                let mut window = RateWindow::new(Instant::now());
                let mut tick = tokio::time::interval(TICK);
                let mut drawn = false;
                loop {
                    tick.tick().await;
                    // Nothing to show until the run knows its lines; and until the bar
                    // is drawn, stderr writers need not suspend it (suspending draws).
                    if progress.total() == 0 {
                        continue;
                    }
                    if !std::mem::replace(&mut drawn, true) {
                        *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(view.bar.clone());
                    }
                    let rate = window.record(Instant::now(), progress.done());
                    view.show(&progress, rate);
                }
            }
        });
        Bar {
            view,
            ticker,
            progress,
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.ticker.abort();
        *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let bar = &self.view.bar;
        if self.progress.total() > 0 {
            let elapsed = bar.elapsed().as_secs_f64();
            let done = self.progress.done();
            self.view.show(
                &self.progress,
                (elapsed > 0.0).then(|| done as f64 / elapsed),
            );
            // Drawn as it is (not moved to the end as `finish` would), then wiped.
            bar.abandon();
        }
        bar.finish_and_clear();
    }
}

/// An indicatif bar and the text beside it. The text is a template key read at each
/// draw, so one update of position and length draws a whole, consistent frame
/// (setting a message would draw once more, with the old position).
#[derive(Debug, Clone)]
struct View {
    bar: ProgressBar,
    text: Arc<Mutex<String>>,
}

impl View {
    fn new(bar: ProgressBar) -> View {
        let text = Arc::new(Mutex::new(String::new()));
        let key = {
            let text = text.clone();
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&text.lock().unwrap_or_else(|e| e.into_inner()));
            }
        };
        let style = ProgressStyle::with_template(TEMPLATE)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
            .with_key("status", key);
        bar.set_style(style);
        View { bar, text }
    }

    /// Puts `progress` on the bar: the text, then length and position in one draw.
    fn show(&self, progress: &Progress, rate: Option<f64>) {
        let snapshot = Snapshot {
            done: progress.done(),
            total: progress.total(),
            rate,
            pace: progress.pace(),
            throttled: progress.throttled(),
            listing: progress.listing(),
        };
        *self.text.lock().unwrap_or_else(|e| e.into_inner()) = render(&snapshot);
        self.bar.update(|state| {
            state.set_len(snapshot.total as u64);
            state.set_pos(snapshot.done as u64);
        });
    }

    #[cfg(test)]
    fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(done: usize, total: usize, rate: Option<f64>) -> Snapshot {
        Snapshot {
            done,
            total,
            rate,
            pace: Some(Pace::PerSecond(10.0)),
            throttled: 0,
            listing: false,
        }
    }

    #[test]
    fn the_text_shows_lines_percentage_rate_eta_pace_and_429s() {
        assert_eq!(
            render(&Snapshot {
                done: 37,
                total: 50,
                rate: Some(12.34),
                pace: Some(Pace::PerSecond(8.5)),
                throttled: 3,
                listing: false,
            }),
            "37/50 lines 74%  12.3/s  ETA 2s  pace 8.5/s  429s 3"
        );
        assert_eq!(
            render(&Snapshot {
                done: 0,
                total: 10_000,
                rate: Some(250.0),
                pace: Some(Pace::Unlimited),
                throttled: 0,
                listing: false,
            }),
            "0/10000 lines 0%  250/s  ETA 40s  pace unlimited  429s 0"
        );
        let paused = Snapshot {
            pace: Some(Pace::Paused(Duration::from_millis(61_200))),
            ..snapshot(5, 9000, Some(2.0))
        };
        assert_eq!(
            render(&paused),
            "5/9000 lines 0%  2.0/s  ETA 1h 14m 58s  paused 1m 2s  429s 0"
        );
    }

    #[test]
    fn while_listing_the_total_is_marked_growing_and_there_is_no_eta() {
        let listing = Snapshot {
            listing: true,
            ..snapshot(40, 100, Some(5.0))
        };
        assert_eq!(
            render(&listing),
            "40/100+ (listing) lines 40%  5.0/s  ETA -  pace 10.0/s  429s 0"
        );
    }

    #[test]
    fn the_final_state_is_every_line_at_100_percent() {
        assert_eq!(
            render(&snapshot(50, 50, Some(7.0))),
            "50/50 lines 100%  7.0/s  ETA 0s  pace 10.0/s  429s 0"
        );
        // 100% only when done: 999 of 1000 is 99%.
        assert!(render(&snapshot(999, 1000, Some(1.0))).starts_with("999/1000 lines 99% "));
        // No rate yet: no made-up ETA.
        assert!(render(&snapshot(0, 5, None)).contains("-/s  ETA -  pace"));
        assert!(render(&snapshot(0, 0, None)).starts_with("0/0 lines 100%"));
    }

    #[test]
    fn the_bar_is_set_from_the_counters() {
        let view = View::new(ProgressBar::hidden());
        let progress = Progress::default();
        view.show(&progress, None);
        assert_eq!((view.bar.position(), view.bar.length()), (0, Some(0)));
        assert_eq!(view.text(), "0/0 lines 100%  0.0/s  ETA 0s  429s 0");
    }

    #[test]
    fn the_rate_is_measured_over_the_last_ten_seconds() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(t0);
        assert_eq!(w.record(t0 + Duration::from_millis(200), 1), None);
        assert_eq!(w.record(t0 + Duration::from_secs(2), 20), Some(10.0));
        // Steady at 10/s for a while, then a pause: the rate falls within the window.
        for s in 3..=20 {
            w.record(t0 + Duration::from_secs(s), 10 * s as usize);
        }
        let stalled = w.record(t0 + Duration::from_secs(25), 200).unwrap();
        assert!((3.0..=6.0).contains(&stalled), "{stalled}");
        let gone = w.record(t0 + Duration::from_secs(40), 200).unwrap();
        assert_eq!(gone, 0.0);
    }
}
