//! Everything the user sees or does to a running command: messages on stderr, the
//! summary on stdout, the progress bar (drawn by `progress.rs`), and interrupts.

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::Context as _;
use ptt_audit::job::{Outcome, Progress};
use ptt_audit::policy::PolicySet;
use ptt_audit::webex::{Stop, StopReason};

use super::progress::Bar;
use super::LogFormat;

/// Exit code of a process ended by a second interrupt (128 + SIGINT), as shells do.
const EXIT_INTERRUPTED: i32 = 130;

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
        // `-q`: only warnings and errors.
        if self.quiet && tone == Tone::Info {
            return;
        }
        if self.json {
            match tone {
                Tone::Error => tracing::error!("{text}"),
                Tone::Warn => tracing::warn!("{text}"),
                Tone::Info => tracing::info!("{text}"),
            }
        } else {
            let prefix = if tone == Tone::Error { "error: " } else { "" };
            // One message, one line, whatever a server put into it; a closed stderr
            // must not turn into a panic; and a progress bar must not tear it.
            let text = super::log::escape_controls(text);
            super::progress::write_stderr(format!("{prefix}{text}\n").as_bytes());
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

    /// The end-of-run summary on stdout: nothing with `-q`; one JSON object (the
    /// report's `run` and `summary`, the report paths, and `extra` under its key) with
    /// `--log-format json`; else the readable text.
    pub fn print_summary(
        &self,
        outcome: &Outcome,
        policies: &PolicySet,
        warn_expiring_days: u32,
        extra: Option<(&str, serde_json::Value)>,
    ) {
        if self.quiet {
            return;
        }
        if self.json {
            let mut object = serde_json::json!({
                "run": outcome.run,
                "summary": outcome.summary,
                "reports": outcome.paths,
            });
            if let (Some((key, value)), Some(map)) = (extra, object.as_object_mut()) {
                map.insert(key.to_string(), value);
            }
            self.print(&format!("{object}\n"));
        } else {
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
                    outcome.fail_on,
                    warn_expiring_days,
                )
            ));
        }
    }

    /// Prints an audit's summary to stdout (see [`Ui::print_summary`]; the waivers that
    /// expire within `warn_expiring_days` are named), and what went wrong to stderr.
    pub fn print_outcome(&self, outcome: &Outcome, policies: &PolicySet, warn_expiring_days: u32) {
        self.print_summary(outcome, policies, warn_expiring_days, None);
        self.tell_problems(outcome);
    }

    /// Tells on stderr why a run stopped early or what its answers hint at.
    pub fn tell_problems(&self, outcome: &Outcome) {
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
            // Which credential to renew, when the token source knows.
            Some(StopReason::Unauthorized) if outcome.auth_failure.is_some() => {
                if let Some(failure) = &outcome.auth_failure {
                    self.tell(Tone::Error, &format!("{failure}. {unread}"));
                }
            }
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
            Some(reason @ StopReason::Stalled { .. }) => self.tell(
                Tone::Error,
                &format!(
                    "{}. The API throttled, failed or left unanswered every request \
                     meanwhile; raise --max-stall to wait longer. {unread}",
                    reason.describe()
                ),
            ),
            Some(reason @ StopReason::Forbidden { .. }) => self.tell(
                Tone::Error,
                &format!(
                    "{}. {} {unread}",
                    reason.describe(),
                    forbidden_hint(outcome)
                ),
            ),
            Some(reason @ StopReason::Unreachable { .. }) => self.tell(
                Tone::Error,
                &format!(
                    "{}. Check --base-url and that the host can be reached from here. \
                     {unread}",
                    reason.describe()
                ),
            ),
            None => {}
        }
    }

    /// Starts what a running job needs from the user's side: interrupts turned into
    /// the stop signal, and a progress bar when a person watches (stderr a terminal,
    /// no `-q`, text logs: under `--log-format json` every stderr line is JSON).
    /// Dropping the guard ends both.
    pub fn attend(&self, stop: &Stop, progress: &Arc<Progress>) -> Attended {
        let signals = tokio::spawn(watch_signals(stop.clone()));
        let bar = (!self.quiet && !self.json && std::io::stderr().is_terminal())
            .then(|| Bar::start(progress.clone()));
        Attended { signals, bar }
    }

    /// Interrupts turned into the stop signal, without a progress line.
    pub fn attend_quietly(&self, stop: &Stop) -> Attended {
        Attended {
            signals: tokio::spawn(watch_signals(stop.clone())),
            bar: None,
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

/// The likely causes of a run stopped by the 403 rule, naming the `--org-id` it used:
/// the same refusal on every line is the org or the token, never the lines.
fn forbidden_hint(outcome: &Outcome) -> String {
    let org = match outcome.run.get("org_id").and_then(|v| v.as_str()) {
        Some(org) => format!(
            "--org-id {org} is wrong (not an org this token may read)",
            org = super::log::escape_controls(org)
        ),
        None => "no --org-id was given (a partner admin must name the customer's org)".into(),
    };
    format!(
        "The token may not read these lines. Most likely {org}, or the token belongs to a \
         user who is not an admin of that org, or it lacks the scope \
         spark-admin:telephony_config_read (a full, user or read-only admin token)."
    )
}

/// The signal watcher and progress bar of a running job.
#[derive(Debug)]
pub struct Attended {
    signals: tokio::task::JoinHandle<()>,
    bar: Option<Bar>,
}

impl Attended {
    /// Draws the progress bar's final state and clears it. Interrupts are still
    /// watched until the guard drops: until the reports are on disk a second interrupt
    /// must still exit.
    pub fn clear_progress(&mut self) {
        // Dropping the bar clears it.
        self.bar = None;
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
