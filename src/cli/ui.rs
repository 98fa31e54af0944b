//! Everything the user sees or does to a running command: messages on stderr, the
//! summary on stdout, the progress line, and interrupts.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ptt_audit::job::{Outcome, Progress};
use ptt_audit::policy::PolicySet;
use ptt_audit::webex::{Stop, StopReason};

use super::LogFormat;

/// Exit code of a process ended by a second interrupt (128 + SIGINT), as shells do.
const EXIT_INTERRUPTED: i32 = 130;

/// How often the progress line is redrawn.
const PROGRESS_TICK: Duration = Duration::from_millis(500);

/// How messages reach the user; built once from the global flags.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// Every stderr line is a JSON log event.
    pub json: bool,
    /// `-q`: no progress, no summary noise.
    pub quiet: bool,
}

/// How much a message to the user matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Something failed.
    Error,
    /// Something the user should know.
    Warn,
    /// Information.
    Info,
}

impl Ui {
    /// From the global flags.
    pub fn new(log_format: LogFormat, quiet: bool) -> Ui {
        Ui {
            json: log_format == LogFormat::Json,
            quiet,
        }
    }

    /// Tells the user something on stderr: a plain line for a person, or one log event
    /// when the logs are JSON, so that a log shipper never sees a line that is not JSON.
    pub fn tell(&self, tone: Tone, text: &str) {
        if self.json {
            match tone {
                Tone::Error => tracing::error!("{text}"),
                Tone::Warn => tracing::warn!("{text}"),
                Tone::Info => tracing::info!("{text}"),
            }
        } else {
            let prefix = if tone == Tone::Error { "error: " } else { "" };
            // One message, one line, whatever a server put into it; and a closed
            // stderr must not turn into a panic.
            let text = super::log::escape_controls(text);
            let _ = writeln!(std::io::stderr(), "{prefix}{text}");
        }
    }

    /// Prints text to stdout. A stdout that cannot be written (a closed pipe) is only
    /// logged: the reports and the exit code already say what happened.
    pub fn print(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!("cannot print to stdout: {e}");
        }
    }

    /// Prints an audit's summary to stdout, and what went wrong to stderr.
    pub fn print_outcome(&self, outcome: &Outcome, policies: &PolicySet) {
        let listed = outcome
            .discovery
            .as_ref()
            .map(ptt_audit::report::render_discovery)
            .unwrap_or_default();
        self.print(&format!(
            "{listed}{}",
            ptt_audit::report::render_summary(
                &outcome.summary,
                policies,
                &outcome.paths,
                i32::from(outcome.exit.code()),
            )
        ));
        if let Some(hint) = outcome
            .discovery
            .as_ref()
            .and_then(|d| d.error.as_ref())
            .and_then(listing_hint)
        {
            self.tell(Tone::Warn, hint);
        }
        let unread = if outcome.summary.lines.not_audited > 0 {
            "Lines not read are marked not_audited; reports were written."
        } else {
            "Reports were written."
        };
        if outcome.all_not_found {
            self.tell(
                Tone::Warn,
                "hint: every line requested answered 404 Not Found: check that --base-url ends \
                 in /v1 (https://webexapis.com/v1) and that --org-id names the org the lines \
                 belong to",
            );
        }
        match outcome.stopped {
            Some(StopReason::Unauthorized) => self.tell(
                Tone::Error,
                &format!(
                    "the Webex API refused the token (401 Unauthorized). It is missing, wrong \
                     or expired (personal tokens last 12 hours; use a service-app or \
                     integration token for cron). {unread}"
                ),
            ),
            Some(StopReason::Interrupted) => {
                self.tell(Tone::Warn, &format!("interrupted. {unread}"))
            }
            None => {}
        }
    }

    /// Starts what a running job needs from the user's side: interrupts turned into
    /// the stop signal, and a progress line when a person watches. Dropping the guard
    /// ends both.
    pub fn attend(&self, stop: &Stop, progress: &Arc<Progress>) -> Attended {
        let signals = tokio::spawn(watch_signals(stop.clone()));
        let ticker = (!self.quiet && std::io::stderr().is_terminal())
            .then(|| tokio::spawn(show_progress(progress.clone())));
        Attended { signals, ticker }
    }

    /// Interrupts turned into the stop signal, without a progress line.
    pub fn attend_quietly(&self, stop: &Stop) -> Attended {
        Attended {
            signals: tokio::spawn(watch_signals(stop.clone())),
            ticker: None,
        }
    }
}

/// What to check when listing the lines failed with this error, if a hint helps.
pub fn listing_hint(error: &ptt_audit::model::LineError) -> Option<&'static str> {
    match error.http_status {
        Some(403) => Some(
            "hint: listing the virtual lines answered 403 Forbidden: the token may lack the \
             scope spark-admin:telephony_config_read, or may not administer the org \
             --org-id names",
        ),
        Some(404) => Some(
            "hint: listing the virtual lines answered 404 Not Found: check that --base-url \
             ends in /v1 (https://webexapis.com/v1)",
        ),
        _ => None,
    }
}

/// The signal watcher and progress line of a running job.
#[derive(Debug)]
pub struct Attended {
    signals: tokio::task::JoinHandle<()>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Attended {
    /// Clears the progress line. Interrupts are still watched until the guard drops:
    /// until the reports are on disk a second interrupt must still exit.
    pub fn clear_progress(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

impl Drop for Attended {
    fn drop(&mut self) {
        self.clear_progress();
        self.signals.abort();
    }
}

async fn watch_signals(stop: Stop) {
    // Once tokio handles a signal the default action (exit) is gone for good: the
    // second signal exits by hand, for a user whose first Ctrl-C seems to hang.
    for interrupt in 0.. {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            // SIGHUP too: a closed terminal or ssh session should leave reports, not
            // kill the run without any.
            let (Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        if interrupt > 0 {
            tracing::error!("interrupted twice: exiting without finishing the reports");
            std::process::exit(EXIT_INTERRUPTED);
        }
        tracing::warn!(
            "interrupted: finishing the reports; unread lines become not_audited \
             (interrupt again to exit at once)"
        );
        stop.trigger(StopReason::Interrupted);
    }
}

async fn show_progress(progress: Arc<Progress>) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(PROGRESS_TICK);
    loop {
        tick.tick().await;
        let (n, total) = (progress.done(), progress.total());
        let secs = start.elapsed().as_secs_f64().max(0.001);
        // While --all still lists, the total grows: say so.
        let more = if progress.listing() {
            "+ (listing)"
        } else {
            ""
        };
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[2K  {n}/{total}{more} lines  {:.0}/s  {:.0}s",
            n as f64 / secs,
            secs
        );
    }
}

/// How many threads a command's async runtime runs on.
#[derive(Debug, Clone, Copy)]
pub enum Threads {
    /// Every async task on the calling thread. For `audit` (and `demo`): its work per
    /// line is small and its pace is set by the rate limit, so one thread does it all,
    /// and avoiding hand-offs between threads halves its CPU time per line and its
    /// memory (results are made, written and freed on the same thread: no allocator
    /// contention, no per-thread heaps). See `benches/e2e.rs`. Policy evaluation alone
    /// runs elsewhere, one hand-off per line, so that a slow rule never blocks this
    /// thread (and with it signals).
    One,
    /// One worker per core: for `simulate`, a server answering many clients.
    #[cfg(feature = "simulator")]
    PerCore,
}

/// Runs a command's future to completion on a runtime of its own.
pub fn run_async<T>(
    threads: Threads,
    fut: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let mut builder = match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread(),
        #[cfg(feature = "simulator")]
        Threads::PerCore => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(fut)
}
