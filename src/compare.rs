//! Comparing a run with a previous report (`audit --previous`): fills the findings'
//! `change` column, so a nightly job can tell what regressed since last night.
//!
//! Only each (line, rule) pair's status is kept, hashed to 64 bits, so a 100,000-line
//! previous report costs a few MB, not its size on disk.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::model::{Change, LineReport, RuleStatus};
use crate::policy::PolicySet;
use crate::report::unneutralise;

/// A previous findings report, reduced to what comparison needs.
#[derive(Debug)]
pub(crate) struct Previous {
    statuses: HashMap<u64, RuleStatus>,
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
    /// The file is not a findings CSV.
    #[error("{path}: not a ptt-audit findings CSV (its header has no `line_id`, `rule_id` and `status` columns)")]
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
}

fn key(line_id: &str, rule_id: &str) -> u64 {
    // DefaultHasher::new() has fixed keys: the same pair hashes the same in one run.
    let mut h = DefaultHasher::new();
    line_id.hash(&mut h);
    rule_id.hash(&mut h);
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

    /// Reads a previous `STEM-findings.csv`; given `STEM.json` or `STEM-lines.csv`, reads
    /// the findings CSV next to it, or the JSON itself when there is none (a run with
    /// `--format json`).
    pub(crate) fn load(path: &Path) -> Result<Previous, CompareError> {
        let findings = findings_path(path);
        let is_json = path.extension().is_some_and(|e| e == "json");
        if is_json && !findings.exists() && path.exists() {
            return Previous::load_json(path);
        }
        let path = findings;
        let file = std::fs::File::open(&path).map_err(|source| CompareError::Io {
            path: path.clone(),
            source,
        })?;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(std::io::BufReader::new(file));
        let csv_err = |e: csv::Error| CompareError::Csv {
            path: path.clone(),
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        };
        let headers = reader.headers().map_err(csv_err)?.clone();
        let col = |name: &str| headers.iter().position(|h| h == name);
        let (Some(line_col), Some(rule_col), Some(status_col)) =
            (col("line_id"), col("rule_id"), col("status"))
        else {
            return Err(CompareError::NotFindings { path });
        };
        let mut statuses = HashMap::new();
        let mut record = csv::StringRecord::new();
        while reader.read_record(&mut record).map_err(csv_err)? {
            let (Some(line), Some(rule), Some(status)) = (
                record.get(line_col),
                record.get(rule_col),
                record.get(status_col).and_then(RuleStatus::parse),
            ) else {
                continue;
            };
            // Cells were neutralised on the way out (a leading `'`); undo that so the
            // IDs match what the API and the policies use.
            statuses.insert(key(unneutralise(line), unneutralise(rule)), status);
        }
        Ok(Previous { statuses })
    }

    /// Reads the results of a JSON report (`lines[].id`, `lines[].results[]`).
    fn load_json(path: &Path) -> Result<Previous, CompareError> {
        #[derive(serde::Deserialize)]
        struct Report {
            lines: Vec<Line>,
        }
        #[derive(serde::Deserialize)]
        struct Line {
            id: String,
            #[serde(default)]
            results: Vec<Result>,
        }
        #[derive(serde::Deserialize)]
        struct Result {
            rule_id: String,
            status: String,
        }
        let file = std::fs::File::open(path).map_err(|source| CompareError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let report: Report =
            serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| {
                CompareError::Json {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                }
            })?;
        let mut statuses = HashMap::new();
        for line in report.lines {
            for r in line.results {
                if let Some(status) = RuleStatus::parse(&r.status) {
                    statuses.insert(key(&line.id, &r.rule_id), status);
                }
            }
        }
        Ok(Previous { statuses })
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
}

fn findings_path(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = name
        .strip_suffix("-lines.csv")
        .or_else(|| name.strip_suffix(".json"));
    match stem {
        Some(stem) => path.with_file_name(format!("{stem}-findings.csv")),
        None => path.to_path_buf(),
    }
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

    #[test]
    fn loads_a_findings_csv_and_its_siblings() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("ptt-audit-X-findings.csv");
        std::fs::write(
            &csv,
            "run_id,audited_at,org_id,line_id,line_name,rule_id,rule_title,severity,status,message\n\
             r,,,L1,,R1,t,high,fail,m\n\
             r,,,'-L2,,R1,t,high,pass,\n",
        )
        .unwrap();
        for given in [
            "ptt-audit-X-findings.csv",
            "ptt-audit-X.json",
            "ptt-audit-X-lines.csv",
        ] {
            let p = Previous::load(&dir.path().join(given)).unwrap();
            assert_eq!(p.change("L1", "R1", RuleStatus::Pass), Change::Resolved);
            assert_eq!(p.change("-L2", "R1", RuleStatus::Fail), Change::Regressed);
            assert_eq!(p.change("L3", "R1", RuleStatus::Fail), Change::New);
        }
        let bad = dir.path().join("other.csv");
        std::fs::write(&bad, "a,b\n1,2\n").unwrap();
        let err = Previous::load(&bad).unwrap_err().to_string();
        assert!(
            err.contains("other.csv") && err.contains("findings"),
            "{err}"
        );
    }
}
