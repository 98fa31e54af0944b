//! The report formats (`CONTRACT.md` §6), written as the run goes.
//!
//! Memory stays flat however many lines a run has: each [`LineReport`] is written to
//! every chosen format the moment it arrives and then forgotten; only the counts of
//! the [`Summary`] are kept. The JSON report, whose `lines` array comes last, spools
//! its line objects to a hidden temporary file and assembles the final file at the end.
//!
//! Every file is written atomically ([`atomic`]): a hidden `.NAME.tmp` first, renamed
//! to `NAME` by [`Reports::finish`]. Dropping [`Reports`] without finishing removes the
//! temporary files and leaves no report.
//!
//! Lines that were never read (`error`, `invalid`, `not_audited` without findings) get
//! one `error` result per enabled rule, carrying the line's error message (see
//! [`effective_findings`]): the contract says every rule of an unread line is `error`,
//! and the findings CSV promises one row per line and rule. The JSON `results`, the
//! findings CSV and the summary counts all use these same results, so they agree.

pub mod atomic;
mod counts;
pub mod csv;
mod format;
pub mod json;
mod naming;
pub mod summary;

use std::borrow::Cow;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::model::{Finding, LineReport, LineStatus};
use crate::policy::PolicySet;

pub use self::counts::{ChangeCounts, LineCounts, ResultCounts, SeverityCounts, Summary};
pub use self::csv::{neutralise, unneutralise};
pub use self::format::{Format, FormatError, ReportWriter};
pub use self::naming::base_stem;
pub use self::summary::render_summary;

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
}

/// What is known about the run when it ends.
#[derive(Debug, Clone)]
pub struct RunEnd {
    /// End time.
    pub finished_at: DateTime<Utc>,
    /// False when the run stopped early (a 401, a signal).
    pub complete: bool,
    /// The process exit code.
    pub exit_code: i32,
}

pub use crate::eval::WaiverState;

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
pub fn effective_findings<'a>(line: &'a LineReport, policies: &PolicySet) -> Cow<'a, [Finding]> {
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
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The reports of one run: a writer per chosen format, and the summary counts.
pub struct Reports {
    stem: String,
    writers: Vec<Box<dyn ReportWriter>>,
    summary: Summary,
    policies: Arc<PolicySet>,
    /// Per waiver: did it turn some `fail` into `waived` (for its state at the end).
    waivers_applied: Vec<bool>,
    /// The day waivers are judged by: the run's start, as in evaluation.
    today: chrono::NaiveDate,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports")
            .field("stem", &self.stem)
            .field("writers", &self.writers.len())
            .field("summary", &self.summary)
            .finish()
    }
}

impl Reports {
    /// Creates `out_dir` if missing, picks a free stem (`ptt-audit-YYYYMMDDTHHMMSSZ`
    /// from `meta.started_at`, then `-2`, `-3`… while any file of that stem exists) and
    /// opens the temporary files of every format in `formats` (duplicates ignored).
    pub fn create(
        out_dir: &Path,
        formats: &[Format],
        meta: RunMeta,
        policies: Arc<PolicySet>,
    ) -> Result<Reports, ReportError> {
        fs::create_dir_all(out_dir).map_err(|source| ReportError::Dir {
            path: out_dir.to_path_buf(),
            source,
        })?;
        let base = base_stem(&meta.started_at);
        let taken = naming::names_claiming(out_dir, &base)?;
        let mut unique = Vec::new();
        for f in formats {
            if !unique.contains(f) {
                unique.push(*f);
            }
        }
        for stem in naming::free_stems(&base, &taken) {
            match open_writers(out_dir, &stem, &unique, &meta, &policies) {
                Ok(writers) => {
                    return Ok(Reports {
                        stem,
                        writers,
                        summary: Summary::default(),
                        waivers_applied: vec![false; policies.waivers.len()],
                        today: meta.started_at.date_naive(),
                        policies,
                    })
                }
                // Another run created one of our names since we listed the folder.
                Err(e) if e.is_already_exists() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ReportError::NoFreeStem {
            dir: out_dir.to_path_buf(),
            stem: base,
            last: naming::MAX_SUFFIX,
        })
    }

    /// The chosen file stem, e.g. `ptt-audit-20261129T032056Z` or `…Z-2`.
    pub fn stem(&self) -> &str {
        &self.stem
    }

    /// Counts the line and writes it to every format.
    pub fn write_line(&mut self, line: &LineReport) -> Result<(), ReportError> {
        self.summary.add(line, &self.policies);
        crate::eval::mark_applied(&mut self.waivers_applied, &line.findings);
        for w in &mut self.writers {
            w.write_line(line)?;
        }
        Ok(())
    }

    /// The counts so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Completes every report and renames it to its final name.
    ///
    /// All or nothing: every file is completed and synced first, and only when all of
    /// them are does any get its final name, so the JSON and the CSVs of one run never
    /// disagree (or exist one without the other) after a full disk.
    pub fn finish(self, end: RunEnd) -> Result<(Summary, Vec<PathBuf>), ReportError> {
        // Waivers expire by the date the run started, as evaluation judged them.
        let waiver_states =
            crate::eval::waiver_states(&self.policies, &self.waivers_applied, self.today);
        let mut sealed = Vec::new();
        for w in self.writers {
            // On error, dropping what was sealed removes those temporary files too.
            sealed.extend(w.finish(&self.summary, &end, &waiver_states)?);
        }
        let paths = sealed
            .into_iter()
            .map(atomic::Sealed::commit)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((self.summary, paths))
    }
}

/// Opens every format's writer under `stem`; on an error, the writers opened so far
/// are dropped, which removes their temporary files.
fn open_writers(
    dir: &Path,
    stem: &str,
    formats: &[Format],
    meta: &RunMeta,
    policies: &Arc<PolicySet>,
) -> Result<Vec<Box<dyn ReportWriter>>, ReportError> {
    formats
        .iter()
        .map(|f| f.open(dir, stem, meta, policies))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_can_move_between_threads() {
        // The audit driver owns the reports inside a tokio task.
        fn assert_send<T: Send>() {}
        assert_send::<Reports>();
    }
}
