//! `STEM-findings.csv` and `STEM-lines.csv` (`CONTRACT.md` §6).
//!
//! Choices, for users' spreadsheets and scripts:
//! - Comma, RFC 4180 quoting (a cell with a comma, quote or newline is quoted, quotes
//!   doubled), one header row, records ended by `\n`: every RFC 4180 reader accepts it,
//!   and shell tools (`cut`, `awk`) see no stray `\r` in the last column. Byte for
//!   byte what the `csv` crate writes by default (a test compares the two), written
//!   here because its per-byte state machine was a fifth of the CPU of a run.
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
use std::path::PathBuf;
use std::sync::Arc;

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
#[derive(Debug)]
pub(crate) struct CsvWriter {
    findings: CsvFile,
    rule_cells: RuleCells,
    lines: CsvFile,
    run: RunCells,
    policies: Arc<PolicySet>,
    filter: columns::FindingsFilter,
}

/// The findings cells that depend on the rule alone ([`columns::rule_only`]), encoded
/// once per rule: they are the same on every line, and the longest of a row.
#[derive(Debug)]
struct RuleCells {
    /// Which findings columns they are.
    only: [bool; FINDINGS.len()],
    /// By rule index, each made on first use, without its leading comma.
    cells: Vec<Option<Vec<Box<[u8]>>>>,
}

impl RuleCells {
    fn new(rules: usize) -> RuleCells {
        RuleCells {
            only: FINDINGS.map(|c| columns::rule_only(c.name)),
            cells: vec![None; rules],
        }
    }

    /// The encoded cells of `row`'s rule, in column order.
    fn of(&mut self, row: &columns::FindingRow<'_>) -> &[Box<[u8]>] {
        let only = &self.only;
        self.cells[row.rule_index()].get_or_insert_with(|| {
            let mut field = Vec::new();
            FINDINGS
                .iter()
                .zip(only)
                .filter(|(_, only)| **only)
                .map(|(c, _)| {
                    field.clear();
                    push_field(&mut field, 0, &neutralise(&(c.cell)(row).to_text()));
                    field.as_slice().into()
                })
                .collect()
        })
    }
}

/// One CSV file being written.
#[derive(Debug)]
struct CsvFile {
    file: AtomicFile,
    /// The temporary file, for errors.
    path: PathBuf,
    /// The record being made, reused.
    record: Vec<u8>,
    /// The last time cell's text: every row of a line has the same `audited_at`.
    time: Option<(chrono::DateTime<chrono::Utc>, String)>,
}

impl CsvFile {
    /// Opens `dir/.STEM{suffix}.tmp`, writes the byte-order mark if asked and the
    /// header.
    fn create(o: &Opening<'_>, suffix: &str, header: &[&str]) -> Result<CsvFile, ReportError> {
        let file = AtomicFile::create(o.dir, &file_name(o.stem, suffix))?;
        let mut csv = CsvFile {
            path: file.temp_path().to_path_buf(),
            file,
            record: Vec::with_capacity(1024),
            time: None,
        };
        if o.options.csv_bom {
            csv.record.extend_from_slice(BOM);
        }
        for (i, name) in header.iter().enumerate() {
            push_field(&mut csv.record, i, name);
        }
        csv.end_record()?;
        Ok(csv)
    }

    /// Writes one neutralised record.
    fn write_row<'c>(&mut self, cells: impl Iterator<Item = Cell<'c>>) -> Result<(), ReportError> {
        for (i, cell) in cells.enumerate() {
            self.push_cell(i, cell);
        }
        self.end_record()
    }

    /// Appends one neutralised cell as the `index`th field of the record.
    fn push_cell(&mut self, index: usize, cell: Cell<'_>) {
        let text = match cell {
            Cell::Time(Some(t)) => {
                if self.time.as_ref().is_none_or(|(at, _)| *at != t) {
                    self.time = Some((t, super::rfc3339(&t)));
                }
                let (_, text) = self.time.as_ref().expect("just set");
                Cow::Borrowed(text.as_str())
            }
            other => other.to_text(),
        };
        push_field(&mut self.record, index, &neutralise(&text));
    }

    /// Writes one findings record, the [`columns::rule_only`] cells from `rules`.
    fn write_finding(
        &mut self,
        row: &columns::FindingRow<'_>,
        rules: &mut RuleCells,
    ) -> Result<(), ReportError> {
        let only = rules.only;
        let mut cached = rules.of(row).iter();
        for (i, column) in FINDINGS.iter().enumerate() {
            if only[i] {
                if i > 0 {
                    self.record.push(b',');
                }
                let cell = cached.next().expect("one per rule-only column");
                self.record.extend_from_slice(cell);
            } else {
                self.push_cell(i, (column.cell)(row));
            }
        }
        self.end_record()
    }

    fn end_record(&mut self) -> Result<(), ReportError> {
        self.record.push(b'\n');
        let written = self.file.write_all(&self.record);
        self.record.clear();
        written.map_err(|source| ReportError::Io {
            path: self.path.clone(),
            source,
        })
    }

    fn finish(self) -> Result<Sealed, ReportError> {
        self.file.seal()
    }
}

/// Appends `text` as the `index`th field of a record: quoted when it holds a comma, a
/// quote, CR or LF (CR too: readers take a lone CR for the end of a record), quotes
/// doubled.
fn push_field(record: &mut Vec<u8>, index: usize, text: &str) {
    if index > 0 {
        record.push(b',');
    }
    let bytes = text.as_bytes();
    if !needs_quotes(bytes) {
        record.extend_from_slice(bytes);
        return;
    }
    record.push(b'"');
    // Most quoted cells hold a comma, not a quote: one copy (`contains` is a memchr).
    if bytes.contains(&b'"') {
        for part in bytes.split_inclusive(|&b| b == b'"') {
            record.extend_from_slice(part);
            if part.last() == Some(&b'"') {
                record.push(b'"');
            }
        }
    } else {
        record.extend_from_slice(bytes);
    }
    record.push(b'"');
}

/// Whether `bytes` holds a comma, quote, CR or LF. Eight bytes at a time: the reports
/// are mostly text that needs no quotes (a findings row is about 330 bytes), and a byte
/// at a time was a tenth of the CPU of a run.
fn needs_quotes(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    // Whether a byte of `word` is `b`: the classic test for a zero byte, on `word ^ b`.
    let holds = |word: u64, b: u8| {
        let x = word ^ (ONES * u64::from(b));
        x.wrapping_sub(ONES) & !x & HIGHS != 0
    };
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().expect("chunks of 8"));
        if holds(word, b',') || holds(word, b'"') || holds(word, b'\r') || holds(word, b'\n') {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
}

impl CsvWriter {
    /// Opens `dir/.STEM-findings.csv.tmp` and `dir/.STEM-lines.csv.tmp` and writes the
    /// header rows.
    pub(crate) fn create(o: &Opening<'_>) -> Result<CsvWriter, ReportError> {
        Ok(CsvWriter {
            findings: CsvFile::create(o, "-findings.csv", &FINDINGS_HEADER)?,
            rule_cells: RuleCells::new(o.policies.rules.len()),
            lines: CsvFile::create(o, "-lines.csv", &LINES_HEADER)?,
            run: RunCells::new(o.meta),
            policies: Arc::clone(o.policies),
            filter: o.options.findings,
        })
    }
}

impl ReportWriter for CsvWriter {
    fn write_line(&mut self, line: &LineReport) -> Result<(), ReportError> {
        let CsvWriter {
            findings,
            rule_cells,
            lines,
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
            |_, row| findings.write_finding(row, rule_cells),
            |_, row| lines.write_row(LINES.iter().map(|c| (c.cell)(row))),
        )
    }

    fn finish(self: Box<Self>, _closing: &Closing<'_>) -> Result<Vec<Sealed>, ReportError> {
        let CsvWriter {
            findings, lines, ..
        } = *self;
        let f = findings.finish();
        let l = lines.finish();
        Ok(vec![f?, l?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_what_the_csv_crate_writes() {
        let cells = [
            "",
            "plain",
            "a,b",
            "say \"hi\"",
            "\"",
            "\"\"",
            "two\nlines",
            "cr\rhere",
            "crlf\r\n",
            " padded ",
            "#hash",
            "ümlaut, ß",
            "'=1",
            "tab\there",
            "a\"b,c\nd",
        ];
        let mut ours = Vec::new();
        for (i, c) in cells.iter().enumerate() {
            push_field(&mut ours, i, c);
        }
        ours.push(b'\n');
        let mut theirs = ::csv::Writer::from_writer(Vec::new());
        theirs.write_record(cells).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(theirs.into_inner().unwrap()).unwrap()
        );
    }

    #[test]
    fn needs_quotes_finds_each_special_byte_wherever_it_is() {
        for len in 0..40 {
            let plain: Vec<u8> = (0..len).map(|i| b"ab z\t\x7f\xff0"[i % 8]).collect();
            assert!(!needs_quotes(&plain), "{plain:?}");
            for at in 0..len {
                for special in [b',', b'"', b'\r', b'\n'] {
                    let mut text = plain.clone();
                    text[at] = special;
                    assert!(needs_quotes(&text), "{text:?}");
                }
                // Neighbours of the special bytes (borrows in the word test) are not.
                for near in [
                    b'+', b'-', b'!', b'#', b'\x0b', b'\x0c', b'\x0e', b'\x2d', 0xac,
                ] {
                    let mut text = plain.clone();
                    text[at] = near;
                    assert!(!needs_quotes(&text), "{text:?}");
                }
            }
        }
    }

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
