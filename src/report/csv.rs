//! `STEM-findings.csv` and `STEM-lines.csv` (`CONTRACT.md` §6).
//!
//! Choices, for users' spreadsheets and scripts:
//! - Comma, RFC 4180 quoting (a cell with a comma, quote or newline is quoted, quotes
//!   doubled), one header row, records ended by `\n`: every RFC 4180 reader accepts it,
//!   and shell tools (`cut`, `awk`) see no stray `\r` in the last column.
//! - UTF-8 **without** a byte-order mark by default. A BOM would make Excel on Windows
//!   guess UTF-8 on double-click, but it also becomes part of the first header cell for
//!   scripts (Python's `csv` with `encoding="utf-8"` sees `\ufeffrun_id`), breaking the
//!   exact header the contract promises. LibreOffice, Google Sheets, Numbers and
//!   Excel's *Data → From Text/CSV* read BOM-less UTF-8 correctly; `--csv-bom` adds
//!   the mark for those who double-click in Excel.
//! - The columns and their cells are defined once, in `columns`, which the xlsx writer
//!   reads too; `--findings failing` keeps only `fail`, `waived` and `error` rows.
//! - Every cell except the header goes through [`neutralise`], so no spreadsheet runs
//!   data from the API as a formula.
//! - A line that was never read still gets one findings row per enabled rule, with
//!   status `error` and the line's error message (see `effective_findings`), so "one
//!   row per line and rule" holds for every line.
//! - `change` compares with a previous report (`audit --previous`): `new`, `unchanged`,
//!   `regressed`, `resolved` or `changed`; empty when there is none.

use std::borrow::Cow;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::csv::{Writer, WriterBuilder};

use super::atomic::{AtomicFile, Sealed};
use super::columns::{self, Cell, RunCells, FINDINGS, LINES};
use super::format::{Closing, Opening};
use super::naming::file_name;
use super::{ReportError, ReportWriter};
use crate::model::LineReport;
use crate::policy::PolicySet;

pub use super::columns::{FINDINGS_HEADER, LINES_HEADER};

/// The UTF-8 byte-order mark `--csv-bom` starts each CSV with.
const BOM: &[u8] = "\u{feff}".as_bytes();

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
    findings: Writer<AtomicFile>,
    findings_path: PathBuf,
    lines: Writer<AtomicFile>,
    lines_path: PathBuf,
    run: RunCells,
    policies: Arc<PolicySet>,
    filter: columns::FindingsFilter,
}

impl std::fmt::Debug for CsvWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvWriter")
            .field("findings_path", &self.findings_path)
            .field("lines_path", &self.lines_path)
            .finish()
    }
}

/// Opens `dir/.STEM{suffix}.tmp`, writes the byte-order mark if asked and the header.
fn open_one(
    o: &Opening<'_>,
    suffix: &str,
    header: &[&str],
) -> Result<(Writer<AtomicFile>, PathBuf), ReportError> {
    let mut file = AtomicFile::create(o.dir, &file_name(o.stem, suffix))?;
    let path = file.temp_path().to_path_buf();
    if o.options.csv_bom {
        file.write_all(BOM).map_err(|source| ReportError::Io {
            path: path.clone(),
            source,
        })?;
    }
    let mut w = WriterBuilder::new().from_writer(file);
    w.write_record(header).map_err(|source| ReportError::Csv {
        path: path.clone(),
        source,
    })?;
    Ok((w, path))
}

impl CsvWriter {
    /// Opens `dir/.STEM-findings.csv.tmp` and `dir/.STEM-lines.csv.tmp` and writes the
    /// header rows.
    pub(crate) fn create(o: &Opening<'_>) -> Result<CsvWriter, ReportError> {
        let (findings, findings_path) = open_one(o, "-findings.csv", &FINDINGS_HEADER)?;
        let (lines, lines_path) = open_one(o, "-lines.csv", &LINES_HEADER)?;
        Ok(CsvWriter {
            findings,
            findings_path,
            lines,
            lines_path,
            run: RunCells::new(o.meta),
            policies: Arc::clone(o.policies),
            filter: o.options.findings,
        })
    }
}

/// Writes one neutralised record.
fn write_row<'c, W: std::io::Write>(
    w: &mut Writer<W>,
    path: &Path,
    cells: impl Iterator<Item = Cell<'c>>,
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

fn finish_one(w: Writer<AtomicFile>, path: &Path) -> Result<Sealed, ReportError> {
    let file = w.into_inner().map_err(|e| ReportError::Io {
        path: path.to_path_buf(),
        source: e.into_error(),
    })?;
    file.seal()
}

impl ReportWriter for CsvWriter {
    fn write_line(&mut self, line: &LineReport) -> Result<(), ReportError> {
        let CsvWriter {
            findings,
            findings_path,
            lines,
            lines_path,
            run,
            policies,
            filter,
        } = self;
        columns::rows(
            run,
            policies,
            line,
            *filter,
            &mut (),
            |_, row| {
                write_row(
                    findings,
                    findings_path,
                    FINDINGS.iter().map(|c| (c.cell)(row)),
                )
            },
            |_, row| write_row(lines, lines_path, LINES.iter().map(|c| (c.cell)(row))),
        )
    }

    fn finish(self: Box<Self>, _closing: &Closing<'_>) -> Result<Vec<Sealed>, ReportError> {
        let CsvWriter {
            findings,
            findings_path,
            lines,
            lines_path,
            ..
        } = *self;
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

    #[test]
    fn unneutralise_undoes_only_what_neutralise_added() {
        for s in ["=1+1", "-2", "plain", "'plain", ""] {
            assert_eq!(unneutralise(&neutralise(s)), s);
        }
    }
}
