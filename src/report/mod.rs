//! The report formats (`CONTRACT.md` §6), written as the run goes.
//!
//! Memory stays flat however many lines a run has: each [`LineReport`] is written to
//! every chosen format the moment it arrives and then forgotten; only the counts of
//! the [`Summary`] are kept. The JSON report, whose `lines` array comes last, spools
//! its line objects to a hidden temporary file and assembles the final file at the end.
//!
//! Every file is written atomically (module `atomic`): a hidden `.NAME.tmp` first, renamed
//! to `NAME` by [`Reports::finish`]. Dropping [`Reports`] without finishing removes the
//! temporary files and leaves no report.
//!
//! Lines that were never read (`error`, `invalid`, `not_audited` without findings) get
//! one `error` result per enabled rule, carrying the line's error message (see
//! `effective_findings`): the contract says every rule of an unread line is `error`,
//! and the findings CSV promises one row per line and rule. The JSON `results`, the
//! findings CSV and the summary counts all use these same results, so they agree.
//!
//! Layout: the set of a run's reports in `set`, the summary counts in `counts`, the
//! changes since a previous report and the waivers' days left in `drift`, file names
//! in `naming`, `--format` and the `ReportWriter` interface in `format`, the columns of
//! the tabular formats in `columns`, and one module per format (`json`, [`csv`],
//! `xlsx`, `html`). `lock` keeps a second run out of the folder; `retention` finds the
//! folder's report sets for `--keep` and `--previous latest`.

mod atomic;
mod background;
mod columns;
mod counts;
pub mod csv;
mod drift;
mod format;
mod html;
pub mod inventory;
mod json;
mod lock;
mod naming;
pub(crate) mod retention;
mod set;
mod spotlight;
mod summary;
mod xlsx;

use std::borrow::Cow;
use std::io;
use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::model::{Finding, LineReport, LineStatus};
use crate::policy::PolicySet;

pub use self::columns::FindingsFilter;
pub use self::counts::{ChangeCounts, LineCounts, ResultCounts, SeverityCounts, Summary};
pub use self::csv::neutralise;
pub(crate) use self::csv::unneutralise;
pub use self::drift::{Changes, WaiverEntry};
pub(crate) use self::format::ReportWriter;
pub use self::format::{Format, FormatError, WriteOptions};
pub use self::json::run_object;
pub(crate) use self::json::SCHEMA_VERSION;
pub(crate) use self::lock::lock_out_dir;
pub use self::lock::{LockError, OutLock, LOCK_FILE};
pub use self::set::Reports;
pub use self::spotlight::{Named, Spotlight};
pub use self::summary::{render_discovery, render_summary};

/// What is known about the run when it starts.
#[derive(Debug, Clone)]
pub struct RunMeta {
    /// Unique ID of this run (also in every CSV row).
    pub run_id: String,
    /// Start time; also names the report files.
    pub started_at: DateTime<Utc>,
    /// `--org-id`, if given.
    pub org_id: Option<String>,
    /// The API base URL used.
    pub base_url: String,
    /// This tool's version.
    pub tool_version: String,
    /// The report whose saved settings were re-evaluated (`evaluate --from`); `None`
    /// for an audit, which read the API.
    pub source_report: Option<SourceReport>,
}

/// `run.source_report`: the saved report an `evaluate` run re-used.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceReport {
    /// The file, as given.
    pub path: String,
    /// Its run's ID.
    pub run_id: String,
    /// When its run started (and its lines were read, give or take the run's length).
    #[serde(serialize_with = "ser_rfc3339")]
    pub started_at: DateTime<Utc>,
}

fn ser_rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(t))
}

/// What is known about the run when it ends.
#[derive(Debug, Clone)]
pub struct RunEnd {
    /// End time.
    pub finished_at: DateTime<Utc>,
    /// False when the run stopped early (a 401, a signal), or `--all`'s listing failed.
    pub complete: bool,
    /// The process exit code.
    pub exit_code: i32,
    /// What `--all`'s listing did (`run.discovery`); `None` without `--all`.
    pub discovery: Option<crate::discovery::DiscoveryReport>,
}

pub(crate) use crate::eval::WaiverState;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The output folder could not be created or listed.
    #[error("cannot create or read report folder {}: {source}", path.display())]
    Dir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A report file could not be created, written, synced or renamed.
    #[error("cannot write report file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The CSV writer failed.
    #[error("cannot write CSV report {}: {source}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: ::csv::Error,
    },
    /// The xlsx writer failed.
    #[error("cannot write xlsx report {}: {message}", path.display())]
    Xlsx {
        /// The file.
        path: PathBuf,
        /// The writer's explanation.
        message: String,
    },
    /// The previous report could not be read again to name the removed lines.
    #[error(transparent)]
    Previous(#[from] crate::compare::CompareError),
    /// A report writer panicked while finishing (a bug in this tool).
    #[error("internal error while finishing the reports: {0}")]
    Internal(String),
    /// The JSON writer failed.
    #[error("cannot write JSON report {}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A finding names a rule index the policy set does not have (a bug upstream).
    #[error("line {line_id:?} has a result for rule #{index}, which the policy set does not have")]
    UnknownRule {
        /// The line.
        line_id: String,
        /// The bad index.
        index: usize,
    },
    /// A finding names a waiver index the policy set does not have (a bug upstream).
    #[error(
        "line {line_id:?} has a result with waiver #{index}, which the policy set does not have"
    )]
    UnknownWaiver {
        /// The line.
        line_id: String,
        /// The bad index.
        index: usize,
    },
    /// Every candidate stem up to the last suffix tried is taken.
    #[error("no free report name in {}: {stem} through {stem}-{last} are all taken", dir.display())]
    NoFreeStem {
        /// The output folder.
        dir: PathBuf,
        /// The unsuffixed stem.
        stem: String,
        /// The last suffix tried.
        last: u32,
    },
}

impl ReportError {
    /// The error for a writer thread that panicked, with the panic's message.
    pub(crate) fn panicked(payload: &(dyn std::any::Any + Send)) -> ReportError {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a report writer panicked".to_string());
        ReportError::Internal(message)
    }

    /// True when a file could not be created because it exists (another run took the
    /// name between our listing and our create).
    fn is_already_exists(&self) -> bool {
        matches!(self, ReportError::Io { source, .. } if source.kind() == io::ErrorKind::AlreadyExists)
    }
}

/// The results a line is reported with.
///
/// A line that was never read (status `error`, `invalid` or `not_audited`, no
/// findings) gets one `error` result per enabled rule, in rule order, with the line's
/// error message; any other line is reported with its own findings.
pub(crate) fn effective_findings<'a>(
    line: &'a LineReport,
    policies: &PolicySet,
) -> Cow<'a, [Finding]> {
    let unread = matches!(
        line.status,
        LineStatus::Error | LineStatus::Invalid | LineStatus::NotAudited
    );
    if !line.findings.is_empty() || !unread {
        return Cow::Borrowed(&line.findings);
    }
    Cow::Owned(crate::eval::unreadable(policies, &unread_message(line)))
}

/// The rule a finding refers to, and the waiver that matched it, checked: a finding
/// that names an index the policy set does not have is a bug worth an error, not a
/// panic in the middle of writing reports.
pub(crate) fn resolve<'p>(
    policies: &'p PolicySet,
    line: &LineReport,
    f: &Finding,
) -> Result<(&'p crate::policy::Rule, Option<&'p crate::policy::Waiver>), ReportError> {
    let rule = policies
        .rules
        .get(f.rule)
        .ok_or_else(|| ReportError::UnknownRule {
            line_id: line.id.clone(),
            index: f.rule,
        })?;
    let waiver = match f.waiver {
        None => None,
        Some(i) => Some(
            policies
                .waivers
                .get(i)
                .ok_or_else(|| ReportError::UnknownWaiver {
                    line_id: line.id.clone(),
                    index: i,
                })?,
        ),
    };
    Ok((rule, waiver))
}

/// Why an unread line has no real results.
fn unread_message(line: &LineReport) -> String {
    match (&line.error, line.status) {
        (Some(e), _) => e.message.clone(),
        (None, LineStatus::Invalid) => "invalid line ID: it was never requested".to_string(),
        (None, LineStatus::NotAudited) => {
            "not audited: the run stopped before this line was read".to_string()
        }
        (None, _) => "the line could not be read".to_string(),
    }
}

/// RFC 3339 UTC with seconds precision and `Z`, e.g. `2026-11-29T03:20:56Z`.
pub(crate) fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}
