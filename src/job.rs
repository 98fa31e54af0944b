//! The batch job: lines in, paced concurrent reads, evaluation on the evaluator's
//! threads (each rule bounded by `--eval-timeout`), streaming reports.
//!
//! Lines are read concurrently (at most `--concurrency` in flight) but reach the
//! report writers in input order through a bounded reorder window, so memory stays
//! flat however many lines there are: no line's body is held once it is written.
//!
//! The lines are a stream: the explicit ones (`--lines`, `--line`) first, then, with
//! `--all`, those the listing hands over page by page while the audit runs
//! ([`crate::discovery`]); a bounded channel of one page lets listing run a page ahead
//! and no further.
//!
//! The job prints nothing and handles no signal: its caller hands in the [`Stop`]
//! signal (which an interrupt triggers) and a [`Progress`] it may draw from.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use chrono::Utc;
use futures::StreamExt;
use tokio::sync::{mpsc, Semaphore};

use crate::discovery::{self, DiscoveryReport, Lister};
use crate::eval;
use crate::evaluator::Evaluator;
use crate::exit::{Exit, UsageError};
use crate::input::InputLine;
use crate::model::{ErrorKind, LineError, LineIdentity, LineReport, LineStatus};
use crate::policy::PolicySet;
use crate::report::{Reports, RunEnd, RunMeta, Summary};
use crate::settings::{ApiSettings, AuditSettings, FailOn, ReportSettings};
use crate::webex::{
    AuthFailure, ClientConfig, ClientError, Pace, Pacer, Stop, StopReason, WebexClient,
};

/// How far ahead of the oldest unfinished line the run may start lines: bounds the
/// results held for reordering, independently of `--concurrency`.
pub(crate) const REORDER_WINDOW: usize = 1024;

/// How far a run has got, for a progress display to read while it works (the library
/// draws nothing itself).
#[derive(Debug, Default)]
pub struct Progress {
    total: AtomicUsize,
    done: AtomicUsize,
    listing: AtomicBool,
    /// The run's pacer, once it has one: the pace and the 429s are read live from it.
    pacer: Mutex<Option<Arc<Pacer>>>,
}

impl Progress {
    /// True while `--all` is still listing lines (the total is still growing).
    pub fn listing(&self) -> bool {
        self.listing.load(Ordering::Relaxed)
    }

    /// Counts `n` more lines to do (`--all` lists them as the run goes).
    pub(crate) fn add_total(&self, n: usize) {
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    /// Lines finished so far: read (or given up) and evaluated, whatever their place in
    /// the input. A line counts when its result is ready, not when the in-order report
    /// writer reaches it, so a slow line does not hold the count back.
    pub fn done(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    /// Lines the run has to do.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// 429s the run has received so far.
    pub fn throttled(&self) -> u64 {
        self.pacer().map_or(0, |p| p.throttles())
    }

    /// How fast requests may start now; `None` before the run has started.
    pub fn pace(&self) -> Option<Pace> {
        self.pacer().map(|p| p.shown_pace())
    }

    fn pacer(&self) -> Option<Arc<Pacer>> {
        self.pacer.lock().unwrap_or_else(|e| e.into_inner()).clone()
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
    /// What `--all`'s listing did; `None` without `--all`.
    pub discovery: Option<DiscoveryReport>,
    /// The JSON report's `run` object (for a machine-readable summary).
    pub run: serde_json::Value,
    /// The `--fail-on` the exit code was judged by.
    pub fail_on: FailOn,
    /// Why the run lost its token (which credential to renew), when it did.
    pub auth_failure: Option<AuthFailure>,
}

/// The API client for `api`'s settings, stopped by `stop`.
pub(crate) fn client_for(api: &ApiSettings, stop: &Stop) -> Result<WebexClient, ClientError> {
    let config = ClientConfig {
        base_url: api.base_url.clone(),
        org_id: api.org_id.clone(),
        timeout: api.timeout,
        max_retries: api.max_retries,
        rate: api.rate,
        max_body: api.max_body,
        max_stall: api.max_stall,
    };
    WebexClient::new(&config, &api.token, stop.clone())
}

/// Runs one audit of `lines` (the explicit ones, deduplicated) and, with `--all`
/// (`settings.discovery`), of every line listed that is not among them. Problems with
/// the settings are errors (exit 2); everything that happens to individual lines, and
/// to the listing, ends up in the reports.
pub async fn run(
    settings: &AuditSettings,
    policies: Arc<PolicySet>,
    lines: Vec<InputLine>,
    stop: &Stop,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let (api, out) = (&settings.api, &settings.report);
    // Before anything else: a second run into the folder stops here, having requested
    // nothing. Held until this function returns.
    let _lock = crate::report::lock_out_dir(&out.out).map_err(UsageError::from)?;
    let client = client_for(api, stop).map_err(UsageError::from)?;
    // A token that is missing or about to expire is refreshed (and saved) before the
    // first request; credentials that cannot give one stop the run here (exit 2).
    api.token.prepare().await.map_err(UsageError::from)?;
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
    let mut reports = open_reports(out, meta.clone(), &policies)?;
    let total = lines.len();
    progress.set_total(total);
    progress.done.store(0, Ordering::Relaxed);
    *progress.pacer.lock().unwrap_or_else(|e| e.into_inner()) = Some(client.pacer().clone());
    tracing::info!(
        lines = total,
        all = settings.discovery.is_some(),
        rules = policies.rules.len(),
        rate = %api.rate,
        concurrency = api.concurrency,
        "audit started"
    );

    let evaluator = Arc::new(Evaluator::new(
        policies.clone(),
        today,
        settings.eval_timeout,
    ));
    // Aborted when the run ends, however it ends.
    let _watchdog = AbortOnDrop(tokio::spawn({
        let client = client.clone();
        async move { client.watch_stall().await }
    }));
    let permits = Arc::new(Semaphore::new(api.concurrency));
    let window = REORDER_WINDOW.max(api.concurrency * 4);

    // With --all, the explicit lines are left out of the listing (each line once,
    // explicit first): only their digests are kept.
    let explicit: HashSet<u128> = match settings.discovery {
        Some(_) => lines.iter().map(|l| discovery::digest(&l.id)).collect(),
        None => HashSet::new(),
    };
    let mut lister = settings
        .discovery
        .as_ref()
        .map(|d| Lister::new(&client, api, d));
    let (pages_tx, pages_rx) = mpsc::channel::<Vec<InputLine>>(1);
    progress.listing.store(lister.is_some(), Ordering::Relaxed);
    let listing = async {
        match lister.as_mut() {
            Some(lister) => discovery::feed(lister, &explicit, pages_tx, &permits, progress).await,
            // Nothing to list: the stream of listed lines ends at once.
            None => drop(pages_tx),
        }
        progress.listing.store(false, Ordering::Relaxed);
    };
    let listed = futures::stream::unfold(pages_rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|page| (futures::stream::iter(page), rx))
    })
    .flatten();

    let results = futures::stream::iter(lines)
        .chain(listed)
        .enumerate()
        .map(|(index, line)| {
            let (id, identity) = (line.id.clone(), line.identity.clone());
            let policies_for_panic = policies.clone();
            let task = audit_line(
                index,
                line,
                client.clone(),
                evaluator.clone(),
                permits.clone(),
                stop.clone(),
            );
            async move {
                // A panic in one line's task must not sink the run.
                let report = tokio::spawn(task).await.unwrap_or_else(|e| {
                    panicked_line(index, id, identity, &policies_for_panic, &e.to_string())
                });
                // Counted here, as it completes: the writer below takes lines in input
                // order, and would hold the count at a slow line while later ones finish.
                progress.done.fetch_add(1, Ordering::Relaxed);
                report
            }
        })
        .buffered(window);

    let auditing = async {
        // Dropped when this block ends, error or not, which ends the listing too.
        let mut results = std::pin::pin!(results);
        let (mut read, mut requested, mut not_found) = (0usize, 0usize, 0usize);
        while let Some(report) = results.next().await {
            read += usize::from(report.read_at.is_some());
            requested += usize::from(
                report.read_at.is_some() || report.error.as_ref().is_some_and(|e| e.attempts > 0),
            );
            not_found +=
                usize::from(report.error.as_ref().and_then(|e| e.http_status) == Some(404));
            reports.write(report).context("cannot write the reports")?;
        }
        anyhow::Ok((read, requested, not_found))
    };
    let ((), audited) = tokio::join!(listing, auditing);
    let (read, requested, not_found) = audited?;
    let discovery = lister.map(Lister::report);

    // A refresh that a stopped line started still finishes (and saves the new tokens).
    api.token.settle().await;
    let stopped = stop.reason();
    let stem = reports.stem().to_string();
    let (exit, end, summary, paths) =
        finish_reports(reports, out.fail_on, stopped, discovery.clone())?;
    let run = crate::report::run_object(&meta, &end, &policies);
    if let Some(keep) = out.keep {
        crate::report::retention::apply(&out.out, keep, &stem);
    }
    tracing::info!(
        exit_code = exit.code(),
        seconds = clock.elapsed().as_secs_f64(),
        throttled = client.pacer().throttles(),
        "audit finished"
    );
    Ok(Outcome {
        run,
        fail_on: out.fail_on,
        summary,
        paths,
        exit,
        stopped,
        all_not_found: read == 0 && not_found > 1 && not_found == requested,
        discovery,
        auth_failure: api.token.failure().await,
    })
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens a run's report set as `out` says, with the previous report to compare with
/// loaded (a previous report that cannot be read is exit 2: the user asked for it).
pub(crate) fn open_reports(
    out: &ReportSettings,
    meta: RunMeta,
    policies: &Arc<PolicySet>,
) -> anyhow::Result<Reports> {
    let previous = match &out.previous {
        Some(path) => crate::compare::Previous::resolve(path).map_err(UsageError::from)?,
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

/// Decides the exit code and puts the reports in place. `discovery` is what `--all`'s
/// listing did (`None` without it): a listing that failed audited part of the org only.
pub(crate) fn finish_reports(
    reports: Reports,
    fail_on: FailOn,
    stopped: Option<StopReason>,
    discovery: Option<DiscoveryReport>,
) -> anyhow::Result<(Exit, RunEnd, Summary, Vec<PathBuf>)> {
    let listed_all = discovery.as_ref().is_none_or(|d| d.complete);
    let exit = exit_code(reports.summary(), fail_on, stopped, listed_all);
    let end = RunEnd {
        finished_at: Utc::now(),
        // A run stopped by a 401 (or the 403 rule) is incomplete even when the refused
        // line was its last; one whose listing failed audited part of the org only.
        complete: stopped.is_none() && reports.summary().lines.not_audited == 0 && listed_all,
        exit_code: i32::from(exit.code()),
        discovery,
    };
    let (summary, paths) = reports
        .finish(end.clone())
        .context("cannot finish the reports")?;
    Ok((exit, end, summary, paths))
}

/// The contract's exit code for a finished run; `listed_all` is false when `--all`'s
/// listing failed (the audit then covers part of the org only).
pub(crate) fn exit_code(
    summary: &Summary,
    fail_on: FailOn,
    stopped: Option<StopReason>,
    listed_all: bool,
) -> Exit {
    match stopped {
        // Nothing useful was audited, and the cause is the invocation or the token.
        Some(StopReason::Unauthorized | StopReason::Forbidden { .. }) => return Exit::Usage,
        // A run that made no progress is incomplete even if its last line was read as
        // the stop came.
        Some(StopReason::Stalled { .. } | StopReason::Unreachable { .. }) => {
            return Exit::Incomplete
        }
        Some(StopReason::Interrupted) | None => {}
    }
    if summary.is_incomplete() || !listed_all {
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

/// The report of a line whose task or evaluation panicked: `internal`, since the fault
/// is this tool's and neither the API's nor the line's; every rule `error`, never a pass.
fn panicked_line(
    index: usize,
    id: String,
    identity: Arc<LineIdentity>,
    policies: &PolicySet,
    panic: &str,
) -> LineReport {
    let error = LineError::unrequested(
        ErrorKind::Internal,
        format!("internal error while auditing this line: {panic}"),
    );
    LineReport {
        index,
        id,
        identity,
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
    evaluator: Arc<Evaluator>,
    permits: Arc<Semaphore>,
    stop: Stop,
) -> LineReport {
    let policies = evaluator.policies();
    let unread = |status, error: LineError| LineReport {
        index,
        findings: eval::unreadable(policies, &error.message),
        id: line.id.clone(),
        identity: line.identity.clone(),
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
    // Held until the line is evaluated too: evaluation runs on other threads, and
    // reads must not run ahead of it, each read line holding its settings meanwhile
    // (with 64 requests in flight, up to the whole reorder window did: 35 MB more).
    let _permit = permits.acquire().await.expect("semaphore is never closed");
    match client.read_ptt(&line.id).await {
        Ok(f) => {
            let settings = Arc::new(f.settings);
            let evaluated = evaluator
                .evaluate(&line.id, &line.identity, &settings, f.body_bytes, &stop)
                .await;
            let findings = match evaluated {
                Ok(findings) => findings,
                Err(panic) => {
                    return panicked_line(index, line.id, line.identity, policies, &panic)
                }
            };
            LineReport {
                index,
                status: LineReport::status_from_findings(&findings),
                findings,
                id: line.id,
                identity: line.identity,
                read_at: Some(f.read_at),
                // Evaluation is over, so this is the only holder unless a rule ran
                // too long and its thread still holds a copy.
                settings: Some(Arc::try_unwrap(settings).unwrap_or_else(|s| (*s).clone())),
                error: None,
            }
        }
        Err(e) if e.kind == ErrorKind::NotAudited => unread(LineStatus::NotAudited, e),
        Err(e) => {
            tracing::warn!(
                line = %line.id,
                line_name = line.identity.label(),
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

/// Where a run's policies came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOrigin {
    /// A file or folder: `--policies`, or `policies/` in the current folder.
    Path(PathBuf),
    /// The baseline pack compiled into the binary (no `--policies`, no `policies/`).
    BuiltIn,
}

impl std::fmt::Display for PolicyOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyOrigin::Path(p) => write!(f, "{}", p.display()),
            PolicyOrigin::BuiltIn => f.write_str("the baseline pack built into ptt-audit"),
        }
    }
}

/// The name the built-in pack's positions are reported under.
pub const BUILT_IN_NAME: &str = "(built-in baseline)";

/// Which policies a run uses: `given` if there is one; else `policies/` in the current
/// folder if it exists; else the built-in baseline pack, so that an installed binary
/// works from any folder (cron's is rarely the repository).
pub fn choose_policies(given: Option<&std::path::Path>) -> PolicyOrigin {
    match given {
        Some(path) => PolicyOrigin::Path(path.to_path_buf()),
        None if std::path::Path::new(crate::settings::DEFAULT_POLICIES).exists() => {
            PolicyOrigin::Path(PathBuf::from(crate::settings::DEFAULT_POLICIES))
        }
        None => PolicyOrigin::BuiltIn,
    }
}

/// Loads policies, every problem collected, from a file, a folder or the built-in pack.
pub fn load_from(origin: &PolicyOrigin) -> Result<PolicySet, UsageError> {
    Ok(match origin {
        PolicyOrigin::Path(path) => crate::policy::load(path)?,
        PolicyOrigin::BuiltIn => {
            crate::policy::load_str(std::path::Path::new(BUILT_IN_NAME), crate::policy::BASELINE)?
        }
    })
}

/// Loads the policies to audit with: valid, and with at least one enabled rule, since
/// an audit against nothing would report every line compliant.
pub fn load_policies(origin: &PolicyOrigin) -> Result<PolicySet, UsageError> {
    let set = load_from(origin)?;
    if set.rules.iter().any(|r| r.enabled) {
        Ok(set)
    } else {
        Err(UsageError::NoEnabledRule {
            path: match origin {
                PolicyOrigin::Path(p) => p.clone(),
                PolicyOrigin::BuiltIn => PathBuf::from(BUILT_IN_NAME),
            },
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
        let report = panicked_line(
            7,
            "L7".into(),
            LineIdentity::unknown(),
            &policies,
            &panic.to_string(),
        );
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
