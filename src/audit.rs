//! The batch job: IDs in, paced concurrent reads, pure evaluation, streaming reports.
//!
//! Lines are read concurrently (at most `--concurrency` in flight) but reach the
//! report writers in input order through a bounded reorder window, so memory stays
//! flat however many lines there are: no line's body is held once it is written.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{NaiveDate, Utc};
use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::config::AuditArgs;
use crate::eval;
use crate::input::InputLine;
use crate::model::{ErrorKind, LineError, LineReport, LineStatus};
use crate::policy::PolicySet;
use crate::report::{Reports, RunEnd, RunMeta, Summary};
use crate::webex::{ClientConfig, Stop, StopReason, Token, WebexClient};

/// How far ahead of the oldest unfinished line the run may start lines: bounds the
/// results held for reordering, independently of `--concurrency`.
pub const REORDER_WINDOW: usize = 1024;

/// Exit codes of the contract.
pub mod exit {
    /// Every line read, no failure at or above `--fail-on`.
    pub const OK: i32 = 0;
    /// Some failure at or above `--fail-on`.
    pub const FAILED: i32 = 1;
    /// Bad invocation, configuration, policy or credentials.
    pub const USAGE: i32 = 2;
    /// Some line is `error`, `invalid` or `not_audited`.
    pub const INCOMPLETE: i32 = 3;
}

/// How the run presents itself while it works.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Show a progress line on stderr (only when stderr is a terminal).
    pub progress: bool,
}

/// What a finished run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The counts, as in the JSON report.
    pub summary: Summary,
    /// Report files written.
    pub paths: Vec<PathBuf>,
    /// The contract's exit code.
    pub exit_code: i32,
    /// Why the run stopped early, if it did.
    pub stopped: Option<StopReason>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// 429s received.
    pub throttled: u64,
    /// Every line requested answered 404: most likely a wrong `--base-url` or org.
    pub all_not_found: bool,
}

/// Runs one audit. Configuration problems are errors (exit 2); everything that
/// happens to individual lines ends up in the reports.
pub async fn run(
    args: &AuditArgs,
    token: &Token,
    policies: Arc<PolicySet>,
    lines: Vec<InputLine>,
    options: RunOptions,
) -> anyhow::Result<Outcome> {
    let base_url = crate::webex::parse_base_url(&args.base_url)?;
    let client_config = ClientConfig {
        base_url: base_url.clone(),
        org_id: args.org_id.clone(),
        timeout: args.timeout,
        max_retries: args.max_retries,
        rate: (args.rate > 0.0).then_some(args.rate),
    };
    let stop = Stop::default();
    let client = WebexClient::new(&client_config, token, stop.clone())?;
    let started_at = Utc::now();
    let clock = Instant::now();
    let today = started_at.date_naive();
    let meta = RunMeta {
        run_id: uuid::Uuid::new_v4().to_string(),
        started_at,
        org_id: args.org_id.clone(),
        base_url: base_url.to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let previous = match &args.previous {
        Some(path) => Some(crate::compare::Previous::load(path)?),
        None => None,
    };
    let mut reports = Reports::create(&args.out, &args.format.0, meta, policies.clone())
        .with_context(|| format!("cannot create reports in {}", args.out.display()))?;
    let total = lines.len();
    tracing::info!(
        lines = total,
        rules = policies.rules.len(),
        rate = args.rate,
        concurrency = args.concurrency,
        "audit started"
    );

    let signals = tokio::spawn(watch_signals(stop.clone()));
    let done = Arc::new(AtomicUsize::new(0));
    let ticker = (options.progress && std::io::stderr().is_terminal())
        .then(|| tokio::spawn(show_progress(done.clone(), total)));

    let permits = Arc::new(Semaphore::new(args.concurrency));
    let window = REORDER_WINDOW.max(args.concurrency * 4);
    let mut results = futures::stream::iter(lines.into_iter().enumerate())
        .map(|(index, line)| {
            let (id, name) = (line.id.clone(), line.name.clone());
            let policies_for_panic = policies.clone();
            let task = audit_line(
                index,
                line,
                client.clone(),
                policies.clone(),
                permits.clone(),
                today,
            );
            async move {
                // A panic in one line's evaluation must not sink the run.
                tokio::spawn(task)
                    .await
                    .unwrap_or_else(|e| panicked_line(index, id, name, &policies_for_panic, &e))
            }
        })
        .buffered(window);

    let (mut read, mut requested, mut not_found) = (0usize, 0usize, 0usize);
    while let Some(mut report) = results.next().await {
        if let Some(previous) = &previous {
            previous.annotate(&mut report, &policies);
        }
        read += usize::from(report.read_at.is_some());
        requested += usize::from(
            report.read_at.is_some() || report.error.as_ref().is_some_and(|e| e.attempts > 0),
        );
        not_found += usize::from(report.error.as_ref().and_then(|e| e.http_status) == Some(404));
        reports
            .write_line(&report)
            .context("cannot write the reports")?;
        done.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(t) = ticker {
        t.abort();
        eprint!("\r\x1b[2K");
    }

    let stopped = stop.reason();
    let exit_code = exit_code(reports.summary(), args, stopped);
    let end = RunEnd {
        finished_at: Utc::now(),
        // A run stopped by a 401 is incomplete even when the refused line was its last.
        complete: stopped.is_none() && reports.summary().lines.not_audited == 0,
        exit_code,
    };
    let (summary, paths) = reports.finish(end).context("cannot finish the reports")?;
    // Only now: until the reports are on disk a second interrupt must still exit.
    signals.abort();
    let throttled = client.pacer().throttles();
    tracing::info!(
        exit_code,
        seconds = clock.elapsed().as_secs_f64(),
        throttled,
        "audit finished"
    );
    Ok(Outcome {
        summary,
        paths,
        exit_code,
        stopped,
        elapsed: clock.elapsed(),
        throttled,
        all_not_found: read == 0 && not_found > 1 && not_found == requested,
    })
}

/// The contract's exit code for a finished run.
pub fn exit_code(summary: &Summary, args: &AuditArgs, stopped: Option<StopReason>) -> i32 {
    if stopped == Some(StopReason::Unauthorized) {
        return exit::USAGE;
    }
    if summary.is_incomplete() {
        return exit::INCOMPLETE;
    }
    let failed = args
        .fail_on
        .threshold()
        .is_some_and(|min| summary.fails_at_or_above(min) > 0);
    if failed {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// The report of a line whose task panicked: `internal`, since the fault is this
/// tool's and neither the API's nor the line's; every rule `error`, never a pass.
fn panicked_line(
    index: usize,
    id: String,
    name: Option<String>,
    policies: &PolicySet,
    panic: &tokio::task::JoinError,
) -> LineReport {
    let error = LineError::unrequested(
        ErrorKind::Internal,
        format!("internal error while auditing this line: {panic}"),
    );
    LineReport {
        index,
        id,
        name,
        status: LineStatus::Error,
        read_at: None,
        settings: None,
        findings: eval::unreadable(policies, &error.message),
        error: Some(error),
    }
}

/// Reads and evaluates one line; never fails: every outcome is a report.
async fn audit_line(
    index: usize,
    line: InputLine,
    client: WebexClient,
    policies: Arc<PolicySet>,
    permits: Arc<Semaphore>,
    today: NaiveDate,
) -> LineReport {
    let unread = |status, error: LineError| LineReport {
        index,
        findings: eval::unreadable(&policies, &error.message),
        id: line.id.clone(),
        name: line.name.clone(),
        status,
        read_at: None,
        settings: None,
        error: Some(error),
    };
    if let Some(reason) = &line.invalid {
        return unread(
            LineStatus::Invalid,
            LineError::unrequested(
                ErrorKind::InvalidId,
                format!("invalid ID ({}): {reason}; not requested", line.origin),
            ),
        );
    }
    let fetched = {
        let _permit = permits.acquire().await.expect("semaphore is never closed");
        client.read_ptt(&line.id).await
    };
    match fetched {
        Ok(f) => {
            let findings = eval::evaluate(&policies, &line.id, &f.settings, today);
            LineReport {
                index,
                status: LineReport::status_from_findings(&findings),
                findings,
                id: line.id,
                name: line.name,
                read_at: Some(f.read_at),
                settings: Some(f.settings),
                error: None,
            }
        }
        Err(e) if e.kind == ErrorKind::NotAudited => unread(LineStatus::NotAudited, e),
        Err(e) => {
            tracing::warn!(
                line = %line.id,
                kind = e.kind.as_str(),
                status = e.http_status,
                tracking_id = e.tracking_id.as_deref().unwrap_or(""),
                attempts = e.attempts,
                "line not read: {}",
                e.message
            );
            unread(LineStatus::Error, e)
        }
    }
}

async fn watch_signals(stop: Stop) {
    // Once tokio handles a signal the default action (exit) is gone for good: the
    // second signal restores it by hand, for a user whose first Ctrl-C seems to hang.
    for interrupt in 0.. {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut term) = signal(SignalKind::terminate()) else {
                return;
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        if interrupt > 0 {
            tracing::error!("interrupted twice: exiting without finishing the reports");
            std::process::exit(130);
        }
        tracing::warn!(
            "interrupted: finishing the reports; unread lines become not_audited \
             (interrupt again to exit at once)"
        );
        stop.trigger(StopReason::Interrupted);
    }
}

async fn show_progress(done: Arc<AtomicUsize>, total: usize) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let n = done.load(Ordering::Relaxed);
        let secs = start.elapsed().as_secs_f64().max(0.001);
        eprint!(
            "\r\x1b[2K  {n}/{total} lines  {:.0}/s  {:.0}s",
            n as f64 / secs,
            secs
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RuleStatus;

    #[tokio::test]
    async fn a_panicking_line_is_an_internal_error_not_a_pass() {
        let policies = crate::policy::load_str(
            std::path::Path::new("t.toml"),
            "[[rule]]\nid = \"A\"\ntitle = \"t\"\nseverity = \"low\"\nrequire = \"true\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let panic = tokio::spawn(async { panic!("boom") }).await.unwrap_err();
        let report = panicked_line(7, "L7".into(), None, &policies, &panic);
        assert_eq!((report.index, report.status), (7, LineStatus::Error));
        let error = report.error.expect("an error");
        assert_eq!(error.kind, ErrorKind::Internal);
        assert_eq!(serde_json::to_value(&error).unwrap()["kind"], "internal");
        assert_eq!(error.kind.as_str(), "internal");
        assert!(error.message.contains("boom"), "{}", error.message);
        let statuses: Vec<_> = report.findings.iter().map(|f| f.status).collect();
        assert_eq!(statuses, [RuleStatus::Error]);
    }
}
