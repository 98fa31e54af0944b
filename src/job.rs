//! The batch job: lines in, paced concurrent reads, pure evaluation, streaming reports.
//!
//! Lines are read concurrently (at most `--concurrency` in flight) but reach the
//! report writers in input order through a bounded reorder window, so memory stays
//! flat however many lines there are: no line's body is held once it is written.
//!
//! The job prints nothing and handles no signal: its caller hands in the [`Stop`]
//! signal (which an interrupt triggers) and a [`Progress`] it may draw from.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use chrono::{NaiveDate, Utc};
use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::eval;
use crate::exit::{Exit, UsageError};
use crate::input::InputLine;
use crate::model::{ErrorKind, LineError, LineReport, LineStatus};
use crate::policy::PolicySet;
use crate::report::{Reports, RunEnd, RunMeta, Summary};
use crate::settings::{AuditSettings, FailOn, ReportSettings};
use crate::webex::{ClientConfig, Stop, StopReason, WebexClient};

/// How far ahead of the oldest unfinished line the run may start lines: bounds the
/// results held for reordering, independently of `--concurrency`.
pub(crate) const REORDER_WINDOW: usize = 1024;

/// How far a run has got, for a progress display to read while it works.
#[derive(Debug, Default)]
pub struct Progress {
    total: AtomicUsize,
    done: AtomicUsize,
}

impl Progress {
    /// Lines finished (written to the reports) so far.
    pub fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    /// Lines the run has to do.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Sets how many lines the run has to do.
    pub(crate) fn set_total(&self, total: usize) {
        self.total.store(total, Ordering::Relaxed);
    }

    /// Counts one more line done.
    pub(crate) fn advance(&self) {
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a finished run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The counts, as in the JSON report.
    pub summary: Summary,
    /// Report files written.
    pub paths: Vec<PathBuf>,
    /// The contract's exit code.
    pub exit: Exit,
    /// Why the run stopped early, if it did.
    pub stopped: Option<StopReason>,
    /// Every line requested answered 404: most likely a wrong `--base-url` or org.
    pub all_not_found: bool,
}

/// Runs one audit. Problems with the settings are errors (exit 2); everything that
/// happens to individual lines ends up in the reports.
pub async fn run(
    settings: &AuditSettings,
    policies: Arc<PolicySet>,
    lines: Vec<InputLine>,
    stop: &Stop,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let (api, out) = (&settings.api, &settings.report);
    let client_config = ClientConfig {
        base_url: api.base_url.clone(),
        org_id: api.org_id.clone(),
        timeout: api.timeout,
        max_retries: api.max_retries,
        rate: api.rate.per_second(),
    };
    let client =
        WebexClient::new(&client_config, &api.token, stop.clone()).map_err(UsageError::from)?;
    let started_at = Utc::now();
    let clock = Instant::now();
    let today = started_at.date_naive();
    let meta = RunMeta {
        run_id: uuid::Uuid::new_v4().to_string(),
        started_at,
        org_id: api.org_id.clone(),
        base_url: api.base_url.to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        source_report: None,
    };
    let mut reports = open_reports(out, meta, &policies)?;
    let total = lines.len();
    progress.set_total(total);
    tracing::info!(
        lines = total,
        rules = policies.rules.len(),
        rate = ?api.rate,
        concurrency = api.concurrency,
        "audit started"
    );

    let permits = Arc::new(Semaphore::new(api.concurrency));
    let window = REORDER_WINDOW.max(api.concurrency * 4);
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
    while let Some(report) = results.next().await {
        read += usize::from(report.read_at.is_some());
        requested += usize::from(
            report.read_at.is_some() || report.error.as_ref().is_some_and(|e| e.attempts > 0),
        );
        not_found += usize::from(report.error.as_ref().and_then(|e| e.http_status) == Some(404));
        reports.write(report).context("cannot write the reports")?;
        progress.advance();
    }

    let stopped = stop.reason();
    let (exit, summary, paths) = finish_reports(reports, out.fail_on, stopped)?;
    tracing::info!(
        exit_code = exit.code(),
        seconds = clock.elapsed().as_secs_f64(),
        throttled = client.pacer().throttles(),
        "audit finished"
    );
    Ok(Outcome {
        summary,
        paths,
        exit,
        stopped,
        all_not_found: read == 0 && not_found > 1 && not_found == requested,
    })
}

/// Opens a run's report set as `out` says, with the previous report to compare with
/// loaded (a previous report that cannot be read is exit 2: the user asked for it).
pub(crate) fn open_reports(
    out: &ReportSettings,
    meta: RunMeta,
    policies: &Arc<PolicySet>,
) -> anyhow::Result<Reports> {
    let previous = match &out.previous {
        Some(path) => Some(crate::compare::Previous::load(path).map_err(UsageError::from)?),
        None => None,
    };
    Reports::create_with(
        &out.out,
        &out.formats,
        &out.write_options(),
        meta,
        policies.clone(),
        previous,
    )
    .with_context(|| format!("cannot create reports in {}", out.out.display()))
}

/// Decides the exit code and puts the reports in place.
pub(crate) fn finish_reports(
    reports: Reports,
    fail_on: FailOn,
    stopped: Option<StopReason>,
) -> anyhow::Result<(Exit, Summary, Vec<PathBuf>)> {
    let exit = exit_code(reports.summary(), fail_on, stopped);
    let end = RunEnd {
        finished_at: Utc::now(),
        // A run stopped by a 401 is incomplete even when the refused line was its last.
        complete: stopped.is_none() && reports.summary().lines.not_audited == 0,
        exit_code: i32::from(exit.code()),
    };
    let (summary, paths) = reports.finish(end).context("cannot finish the reports")?;
    Ok((exit, summary, paths))
}

/// The contract's exit code for a finished run.
pub(crate) fn exit_code(summary: &Summary, fail_on: FailOn, stopped: Option<StopReason>) -> Exit {
    if stopped == Some(StopReason::Unauthorized) {
        return Exit::Usage;
    }
    if summary.is_incomplete() {
        return Exit::Incomplete;
    }
    let failed = fail_on
        .threshold()
        .is_some_and(|min| summary.fails_at_or_above(min) > 0);
    if failed {
        Exit::Failed
    } else {
        Exit::Ok
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

/// Loads the policies to audit with: valid, and with at least one enabled rule, since
/// an audit against nothing would report every line compliant.
pub fn load_policies(path: &std::path::Path) -> Result<PolicySet, UsageError> {
    let set = crate::policy::load(path)?;
    if set.rules.iter().any(|r| r.enabled) {
        Ok(set)
    } else {
        Err(UsageError::NoEnabledRule {
            path: path.to_path_buf(),
        })
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
