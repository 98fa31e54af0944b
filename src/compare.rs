//! Comparing a run with a previous report (`--previous`): fills the findings' `change`
//! column, counts the lines added and removed, and names the removed ones, so a
//! nightly job can tell what regressed and what disappeared since last night.
//!
//! The previous report is a `STEM.json` (read one line at a time), or a
//! `STEM-findings.csv` / `STEM-lines.csv` (each with its sibling when there is one).
//! Only hashes and statuses are kept: each (line, rule) pair's status and each line's
//! status, 64-bit hashed, so a 100,000-line previous report costs a few MB, not its
//! size on disk. The removed lines' IDs and names are read again from the file at the
//! end of the run, for the few lines that need them.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

use crate::model::{Change, LineReport, LineStatus, RuleStatus};
use crate::policy::PolicySet;
use crate::report::unneutralise;
use crate::saved::{self, PreviousLine, SavedError};

/// A previous report, reduced to what comparison needs.
#[derive(Debug)]
pub struct Previous {
    source: Source,
    statuses: HashMap<u64, RuleStatus>,
    /// Per previous line: its status (unknown from a findings CSV alone) and whether
    /// this run has the line too.
    lines: HashMap<u64, PreviousEntry>,
}

#[derive(Debug, Clone, Copy)]
struct PreviousEntry {
    status: Option<LineStatus>,
    seen: bool,
}

/// Where the previous report is read from.
#[derive(Debug, Clone)]
enum Source {
    Json(PathBuf),
    Csv {
        findings: Option<PathBuf>,
        lines: Option<PathBuf>,
    },
}

/// A line the previous report had and this run lacks (`removed_lines`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedLine {
    /// Its ID.
    pub id: String,
    /// Its name, when the previous report knew it.
    pub name: Option<String>,
    /// Its status then; `None` when the previous report does not say (a findings CSV
    /// without its lines CSV).
    pub status: Option<LineStatus>,
}

/// Why a previous report could not be used (exit 2: the user asked for it).
#[derive(Debug, Error)]
pub enum CompareError {
    /// The file could not be read.
    #[error("cannot read previous report {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a findings or lines CSV.
    #[error("{path}: not a ptt-audit findings or lines CSV (its header has no `line_id` and `status` columns)")]
    NotFindings {
        /// The file.
        path: PathBuf,
    },
    /// A JSON report (without its findings CSV) could not be read.
    #[error("{path}: not a ptt-audit JSON report: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's explanation.
        message: String,
    },
    /// A row could not be parsed.
    #[error("{path}:{line}: malformed CSV: {message}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// Line of the record.
        line: u64,
        /// The parser's explanation.
        message: String,
    },
    /// A JSON report that cannot be read.
    #[error("previous report: {0}")]
    Saved(#[from] SavedError),
}

fn key(line_id: &str, rule_id: &str) -> u64 {
    // DefaultHasher::new() has fixed keys: the same pair hashes the same in one run.
    let mut h = DefaultHasher::new();
    line_id.hash(&mut h);
    rule_id.hash(&mut h);
    h.finish()
}

fn line_key(line_id: &str) -> u64 {
    let mut h = DefaultHasher::new();
    0u8.hash(&mut h);
    line_id.hash(&mut h);
    h.finish()
}

impl Previous {
    /// The previous report `--previous PATH` names: `PATH` itself, or for a folder the
    /// newest complete report in it (none there: no comparison, not an error).
    pub(crate) fn resolve(path: &Path) -> Result<Option<Previous>, CompareError> {
        if !path.is_dir() {
            return Previous::load(path).map(Some);
        }
        let latest =
            crate::report::retention::latest_complete(path).map_err(|source| CompareError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        match latest {
            Some(file) => {
                tracing::info!(previous = %file.display(), "comparing with the newest complete report");
                Previous::load(&file).map(Some)
            }
            None => {
                tracing::info!(
                    folder = %path.display(),
                    "no complete earlier report in the folder: nothing to compare with"
                );
                Ok(None)
            }
        }
    }

    /// Reads a previous report: `STEM.json`, `STEM-findings.csv` or `STEM-lines.csv`.
    /// A CSV brings its sibling along when it exists (results from the findings, line
    /// statuses and names from the lines); a `.json` is read on its own.
    pub fn load(path: &Path) -> Result<Previous, CompareError> {
        let source = source_of(path);
        let mut p = Previous {
            source: source.clone(),
            statuses: HashMap::new(),
            lines: HashMap::new(),
        };
        scan(
            &source,
            |id, _name, status| {
                p.lines
                    .entry(line_key(id))
                    .and_modify(|e| e.status = e.status.or(status))
                    .or_insert(PreviousEntry {
                        status,
                        seen: false,
                    });
            },
            |line, rule, status| {
                p.statuses.insert(key(line, rule), status);
            },
        )?;
        Ok(p)
    }

    /// The change of one result.
    pub(crate) fn change(&self, line_id: &str, rule_id: &str, now: RuleStatus) -> Change {
        Change::between(self.statuses.get(&key(line_id, rule_id)).copied(), now)
    }

    /// Fills `change` on every finding of `line`.
    pub(crate) fn annotate(&self, line: &mut LineReport, policies: &PolicySet) {
        for f in &mut line.findings {
            if let Some(rule) = policies.rules.get(f.rule) {
                f.change = Some(self.change(&line.id, &rule.id, f.status));
            }
        }
    }

    /// Notes that this run has `line_id`; true when the previous report had it too.
    pub(crate) fn mark_seen(&mut self, line_id: &str) -> bool {
        match self.lines.get_mut(&line_key(line_id)) {
            Some(e) => {
                e.seen = true;
                true
            }
            None => false,
        }
    }

    /// How many previous lines this run has not (so far) had.
    pub(crate) fn unseen(&self) -> usize {
        self.lines.values().filter(|e| !e.seen).count()
    }

    /// The previous lines this run did not have, in the previous report's order, with
    /// their IDs and names read again from the file.
    pub(crate) fn removed(&self) -> Result<Vec<RemovedLine>, CompareError> {
        let mut out = Vec::new();
        if self.unseen() == 0 {
            return Ok(out);
        }
        let mut listed = std::collections::HashSet::new();
        scan(
            &self.source,
            |id, name, _| {
                let k = line_key(id);
                if let Some(e) = self.lines.get(&k) {
                    if !e.seen && listed.insert(k) {
                        out.push(RemovedLine {
                            id: id.to_string(),
                            name: name.filter(|n| !n.is_empty()).map(str::to_string),
                            status: e.status,
                        });
                    }
                }
            },
            |_, _, _| {},
        )?;
        Ok(out)
    }
}

/// The files a previous report is read from.
fn source_of(path: &Path) -> Source {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.ends_with(".json") {
        return Source::Json(path.to_path_buf());
    }
    let sibling = |from: &str, to: &str| {
        let stem = name.strip_suffix(from)?;
        let p = path.with_file_name(format!("{stem}{to}"));
        p.exists().then_some(p)
    };
    if name.ends_with("-lines.csv") {
        Source::Csv {
            findings: sibling("-lines.csv", "-findings.csv"),
            lines: Some(path.to_path_buf()),
        }
    } else {
        Source::Csv {
            findings: Some(path.to_path_buf()),
            lines: sibling("-findings.csv", "-lines.csv"),
        }
    }
}

/// Reads the previous report once: `on_line(id, name, status)` for each line (more
/// than once for the same line when only a findings CSV tells of it), `on_result(line,
/// rule, status)` for each result.
fn scan(
    source: &Source,
    mut on_line: impl FnMut(&str, Option<&str>, Option<LineStatus>),
    mut on_result: impl FnMut(&str, &str, RuleStatus),
) -> Result<(), CompareError> {
    match source {
        Source::Json(path) => {
            saved::read_header(path)?;
            saved::for_each_line(path, |l: PreviousLine| -> Result<(), CompareError> {
                on_line(&l.id, l.name().as_deref(), l.status);
                for r in &l.results {
                    on_result(&l.id, &r.rule_id, r.status);
                }
                Ok(())
            })
        }
        Source::Csv { findings, lines } => {
            if let Some(path) = lines {
                read_csv(path, &["line_id", "status"], |row| {
                    let (Some(id), status) = (row.get("line_id"), row.get("status")) else {
                        return;
                    };
                    let status = status.and_then(parse_line_status);
                    on_line(id, row.get("line_name"), status);
                })?;
            }
            if let Some(path) = findings {
                let lines_known = lines.is_some();
                read_csv(path, &["line_id", "rule_id", "status"], |row| {
                    let (Some(id), Some(rule), Some(status)) = (
                        row.get("line_id"),
                        row.get("rule_id"),
                        row.get("status").and_then(RuleStatus::parse),
                    ) else {
                        return;
                    };
                    if !lines_known {
                        on_line(id, row.get("line_name"), None);
                    }
                    on_result(id, rule, status);
                })?;
            }
            Ok(())
        }
    }
}

fn parse_line_status(s: &str) -> Option<LineStatus> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

/// One row of a CSV report, its cells by column name.
struct CsvRow<'r> {
    headers: &'r csv::StringRecord,
    record: &'r csv::StringRecord,
}

impl<'r> CsvRow<'r> {
    /// The cell of column `name`, un-neutralised (so IDs match what the API and the
    /// policies use). `--csv-bom` reports start with a byte-order mark; it is not part
    /// of the first column's name.
    fn get(&self, name: &str) -> Option<&'r str> {
        let i = self
            .headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)?;
        self.record.get(i).map(unneutralise)
    }
}

/// Reads a CSV report, handing each row to `row`. The header must have every column of
/// `required`.
fn read_csv(
    path: &Path,
    required: &[&str],
    mut row: impl FnMut(&CsvRow<'_>),
) -> Result<(), CompareError> {
    let file = std::fs::File::open(path).map_err(|source| CompareError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(std::io::BufReader::new(file));
    let csv_err = |e: csv::Error| CompareError::Csv {
        path: path.to_path_buf(),
        line: e.position().map_or(0, |p| p.line()),
        message: e.to_string(),
    };
    let headers = reader.headers().map_err(csv_err)?.clone();
    let has = |name: &str| {
        headers
            .iter()
            .any(|h| h.trim_start_matches('\u{feff}') == name)
    };
    if !required.iter().all(|c| has(c)) {
        return Err(CompareError::NotFindings {
            path: path.to_path_buf(),
        });
    }
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(csv_err)? {
        row(&CsvRow {
            headers: &headers,
            record: &record,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_between_statuses() {
        use RuleStatus::*;
        assert_eq!(Change::between(None, Pass), Change::New);
        assert_eq!(Change::between(Some(Fail), Fail), Change::Unchanged);
        assert_eq!(Change::between(Some(Pass), Fail), Change::Regressed);
        assert_eq!(Change::between(Some(Error), Fail), Change::Regressed);
        assert_eq!(Change::between(Some(Fail), Pass), Change::Resolved);
        assert_eq!(Change::between(Some(Fail), Waived), Change::Resolved);
        assert_eq!(Change::between(Some(Fail), Error), Change::Changed);
        assert_eq!(Change::between(Some(Pass), Error), Change::Changed);
    }

    const FINDINGS: &str = "\u{feff}run_id,audited_at,org_id,line_id,line_name,rule_id,rule_title,severity,status,message\n\
         r,,,L1,One,R1,t,high,fail,m\n\
         r,,,L1,One,R2,t,high,pass,m\n\
         r,,,'-L2,,R1,t,high,pass,\n";

    #[test]
    fn loads_a_findings_csv_alone() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("ptt-audit-X-findings.csv");
        std::fs::write(&csv, FINDINGS).unwrap();
        let mut p = Previous::load(&csv).unwrap();
        assert_eq!(p.change("L1", "R1", RuleStatus::Pass), Change::Resolved);
        assert_eq!(p.change("-L2", "R1", RuleStatus::Fail), Change::Regressed);
        assert_eq!(p.change("L3", "R1", RuleStatus::Fail), Change::New);
        assert!(p.mark_seen("L1"));
        assert!(!p.mark_seen("L3"));
        assert_eq!(p.unseen(), 1);
        assert_eq!(
            p.removed().unwrap(),
            [RemovedLine {
                id: "-L2".into(),
                name: None,
                status: None
            }]
        );
        let bad = dir.path().join("other.csv");
        std::fs::write(&bad, "a,b\n1,2\n").unwrap();
        let err = Previous::load(&bad).unwrap_err().to_string();
        assert!(
            err.contains("other.csv") && err.contains("findings"),
            "{err}"
        );
    }

    #[test]
    fn a_lines_csv_brings_statuses_and_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ptt-audit-X-findings.csv"), FINDINGS).unwrap();
        let lines = dir.path().join("ptt-audit-X-lines.csv");
        std::fs::write(
            &lines,
            "run_id,audited_at,org_id,line_id,line_name,status\n\
             r,,,L1,One,non_compliant\nr,,,'-L2,Two,compliant\n",
        )
        .unwrap();
        for given in ["ptt-audit-X-findings.csv", "ptt-audit-X-lines.csv"] {
            let mut p = Previous::load(&dir.path().join(given)).unwrap();
            assert_eq!(p.change("L1", "R1", RuleStatus::Fail), Change::Unchanged);
            p.mark_seen("L1");
            assert_eq!(
                p.removed().unwrap(),
                [RemovedLine {
                    id: "-L2".into(),
                    name: Some("Two".into()),
                    status: Some(LineStatus::Compliant)
                }]
            );
        }
    }
}
