//! `STEM-findings.csv` and `STEM-lines.csv` (`CONTRACT.md` §6, with §7's identity
//! columns at the end). The columns and each cell's value come from `rows.rs`, which
//! every tabular format shares; this writer renders the cells as neutralised text.
//!
//! Choices, for users' spreadsheets and scripts:
//! - Comma, RFC 4180 quoting (a cell with a comma, quote or newline is quoted, quotes
//!   doubled), one header row, records ended by `\n`: every RFC 4180 reader accepts it,
//!   and shell tools (`cut`, `awk`) see no stray `\r` in the last column.
//! - UTF-8 **without** a byte-order mark. A BOM would make Excel on Windows guess UTF-8
//!   on double-click, but it also becomes part of the first header cell for scripts
//!   (Python's `csv` with `encoding="utf-8"` sees `\ufeffrun_id`), breaking the exact
//!   header the contract promises. LibreOffice, Google Sheets, Numbers and Excel's
//!   *Data → From Text/CSV* read BOM-less UTF-8 correctly.
//! - Every cell except the header goes through [`neutralise`], so no spreadsheet runs
//!   data from the API as a formula.
//! - A line that was never read still gets one findings row per enabled rule, with
//!   status `error` and the line's error message (see `effective_findings`), so "one
//!   row per line and rule" holds for every line.
//! - `change` compares with a previous report (`audit --previous`): `new`, `unchanged`,
//!   `regressed`, `resolved` or `changed`; empty when there is none.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::csv::{Writer, WriterBuilder};

use super::atomic::{AtomicFile, Sealed};
use super::naming::file_name;
use super::rows::{line_rows, Cell, RowSink, RunCells};
use super::{ReportError, ReportWriter, RunEnd, RunMeta, Summary, WaiverState};
use crate::model::LineReport;
use crate::policy::PolicySet;

pub use super::rows::{FINDINGS_HEADER, LINES_HEADER};

/// Prefixes `'` to a cell that a spreadsheet would read as a formula: one starting with
/// `=`, `+`, `-`, `@`, tab or carriage return. Other cells are returned unchanged.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// Undoes [`neutralise`]: drops the `'` it added, so a report read back (as `--lines`
/// or `--previous`) gives the original values.
pub(crate) fn unneutralise(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

/// Streaming writer of both CSV files.
pub(crate) struct CsvWriter {
    files: Files,
    run_id: String,
    org_id: String,
    policies: Arc<PolicySet>,
}

/// The two files, where the rows go.
struct Files {
    findings: Writer<AtomicFile>,
    findings_path: PathBuf,
    lines: Writer<AtomicFile>,
    lines_path: PathBuf,
}

impl std::fmt::Debug for CsvWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvWriter")
            .field("findings_path", &self.files.findings_path)
            .field("lines_path", &self.files.lines_path)
            .finish()
    }
}

impl CsvWriter {
    /// Opens `dir/.STEM-findings.csv.tmp` and `dir/.STEM-lines.csv.tmp` and writes the
    /// header rows.
    pub(crate) fn create(
        dir: &Path,
        stem: &str,
        meta: &RunMeta,
        policies: Arc<PolicySet>,
    ) -> Result<CsvWriter, ReportError> {
        let findings_file = AtomicFile::create(dir, &file_name(stem, "-findings.csv"))?;
        let findings_path = findings_file.temp_path().to_path_buf();
        let lines_file = AtomicFile::create(dir, &file_name(stem, "-lines.csv"))?;
        let lines_path = lines_file.temp_path().to_path_buf();
        let mut findings = WriterBuilder::new().from_writer(findings_file);
        let mut lines = WriterBuilder::new().from_writer(lines_file);
        findings
            .write_record(FINDINGS_HEADER)
            .map_err(|source| ReportError::Csv {
                path: findings_path.clone(),
                source,
            })?;
        lines
            .write_record(LINES_HEADER)
            .map_err(|source| ReportError::Csv {
                path: lines_path.clone(),
                source,
            })?;
        Ok(CsvWriter {
            files: Files {
                findings,
                findings_path,
                lines,
                lines_path,
            },
            run_id: meta.run_id.clone(),
            org_id: meta.org_id.clone().unwrap_or_default(),
            policies,
        })
    }
}

/// Writes one neutralised record.
fn write_row<W: std::io::Write>(
    w: &mut Writer<W>,
    path: &Path,
    cells: &[Cell<'_>],
) -> Result<(), ReportError> {
    let csv_err = |source| ReportError::Csv {
        path: path.to_path_buf(),
        source,
    };
    for c in cells {
        w.write_field(neutralise(&c.to_text()).as_bytes())
            .map_err(csv_err)?;
    }
    w.write_record(None::<&[u8]>).map_err(csv_err)
}

impl RowSink for Files {
    fn finding(&mut self, cells: &[Cell<'_>]) -> Result<(), ReportError> {
        write_row(&mut self.findings, &self.findings_path, cells)
    }

    fn line(&mut self, cells: &[Cell<'_>]) -> Result<(), ReportError> {
        write_row(&mut self.lines, &self.lines_path, cells)
    }
}

fn finish_one(w: Writer<AtomicFile>, path: &Path) -> Result<Sealed, ReportError> {
    let file = w.into_inner().map_err(|e| ReportError::Io {
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    file.seal()
}

impl ReportWriter for CsvWriter {
    fn write_line(&mut self, line: &LineReport) -> Result<(), ReportError> {
        let run = RunCells {
            run_id: &self.run_id,
            org_id: &self.org_id,
            policies: &self.policies,
        };
        line_rows(&run, line, &mut self.files)
    }

    fn finish(
        self: Box<Self>,
        _summary: &Summary,
        _end: &RunEnd,
        _waivers: &[WaiverState],
    ) -> Result<Vec<Sealed>, ReportError> {
        let Files {
            findings,
            findings_path,
            lines,
            lines_path,
        } = self.files;
        let f = finish_one(findings, &findings_path);
        let l = finish_one(lines, &lines_path);
        Ok(vec![f?, l?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralise_prefixes_only_dangerous_starts() {
        for bad in ["=1+1", "+1984", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralise(bad), format!("'{bad}"));
        }
        for ok in ["", "abc", " =1", "'=1", "1-2", "ümlaut", "#x"] {
            assert!(matches!(neutralise(ok), Cow::Borrowed(s) if s == ok));
        }
    }
}
