//! `STEM.xlsx` (`CONTRACT.md` §9): one workbook a reviewer can sort and filter.
//!
//! Sheets, in order: Summary, Findings, Lines, Rules, Waivers. Findings and Lines have
//! exactly the CSVs' columns, from the same table (`columns`). Choices:
//! - Every sheet is in rust_xlsxwriter's constant-memory mode: a row goes to a
//!   temporary file as soon as the next one starts, so a 100,000-line run holds no
//!   sheet in memory. The temporary files are anonymous files in the report folder
//!   (nothing is left behind, and nothing fills a small `/tmp`).
//! - Text cells hold the text exactly (no `'` prefix: an xlsx string cell is never a
//!   formula); times and dates are real date-times (UTC); counts and HTTP statuses are
//!   numbers; statuses, severities and changes are colour-coded.
//! - Header row frozen, autofilter on, widths from the column table.
//! - A sheet holds at most 1,048,575 data rows (Excel's limit); more rows continue on
//!   `Findings (2)`, `Findings (3)`… rather than failing the run.
//! - Excel cells hold at most 32,767 characters: longer text (a huge member list) is
//!   cut there with a note pointing at the CSV and JSON, which hold all of it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use rust_xlsxwriter::{Color, Format as Style, Workbook, Worksheet, XlsxError};

use super::atomic::{AtomicFile, Sealed};
use super::columns::{self, Cell, Column, FindingsFilter, RunCells, FINDINGS, LINES};
use super::format::{Closing, Opening};
use super::naming::file_name;
use super::{ReportError, ReportWriter, RunMeta};
use crate::model::LineReport;
use crate::policy::PolicySet;

mod summary_sheet;

/// Excel's last row index (rows are 0-based, 1,048,576 in all).
const MAX_ROW: u32 = 1_048_575;
/// Excel's longest cell text, in characters.
const MAX_TEXT: usize = 32_767;
/// Deflate level of the zip container: 1 is several times faster than the default 6
/// on a 100,000-line workbook for a file about a third larger.
const ZIP_LEVEL: u8 = 1;

/// The cell formats, made once.
pub(super) struct Styles {
    header: Style,
    title: Style,
    bold: Style,
    time: Style,
    date: Style,
    number: Style,
    /// Colour by label (`fail`, `critical`, `regressed`, `expired`…).
    labels: HashMap<&'static str, Style>,
    /// A waiver that expires soon.
    soon: Style,
}

impl Styles {
    fn new() -> Styles {
        let fill = |bg: u32, fg: u32| {
            Style::new()
                .set_background_color(Color::RGB(bg))
                .set_font_color(Color::RGB(fg))
        };
        let green = fill(0xC6EFCE, 0x006100);
        let red = fill(0xFFC7CE, 0x9C0006);
        let amber = fill(0xFFEB9C, 0x9C5700);
        let orange = fill(0xF8CBAD, 0x843C0C);
        let grey = fill(0xE7E6E6, 0x3A3838);
        let blue = fill(0xDDEBF7, 0x1F4E78);
        let labels: [(&'static str, &Style); 19] = [
            ("pass", &green),
            ("compliant", &green),
            ("applied", &green),
            ("resolved", &green),
            ("fail", &red),
            ("non_compliant", &red),
            ("expired", &red),
            ("regressed", &red),
            ("high", &red),
            ("waived", &amber),
            ("medium", &amber),
            ("changed", &amber),
            ("error", &orange),
            ("not_applicable", &grey),
            ("invalid", &grey),
            ("not_audited", &grey),
            ("unused", &grey),
            ("low", &blue),
            ("new", &blue),
        ];
        let mut map: HashMap<&'static str, Style> =
            labels.into_iter().map(|(k, s)| (k, s.clone())).collect();
        map.insert("critical", fill(0xC00000, 0xFFFFFF).set_bold());
        Styles {
            header: Style::new()
                .set_bold()
                .set_background_color(Color::RGB(0x1F4E78))
                .set_font_color(Color::RGB(0xFFFFFF)),
            title: Style::new().set_bold().set_font_size(16),
            bold: Style::new().set_bold(),
            time: Style::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            date: Style::new().set_num_format("yyyy-mm-dd"),
            number: Style::new().set_num_format("0"),
            labels: map,
            soon: amber.set_num_format("0"),
        }
    }
}

/// Writes one cell; an empty value writes nothing (a blank cell).
pub(super) fn put(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    cell: &Cell<'_>,
    styles: &Styles,
) -> Result<(), XlsxError> {
    match cell {
        Cell::Text(t) if t.is_empty() => {}
        Cell::Text(t) => {
            ws.write_string(row, col, fit(t).as_ref())?;
        }
        Cell::Time(Some(t)) => {
            ws.write_datetime_with_format(row, col, t.naive_utc(), &styles.time)?;
        }
        Cell::Date(Some(d)) => {
            ws.write_datetime_with_format(row, col, *d, &styles.date)?;
        }
        Cell::Number(Some(n)) => {
            ws.write_number_with_format(row, col, *n as f64, &styles.number)?;
        }
        Cell::Time(None) | Cell::Date(None) | Cell::Number(None) | Cell::Label("") => {}
        Cell::Label(l) => match styles.labels.get(l) {
            Some(style) => {
                ws.write_string_with_format(row, col, *l, style)?;
            }
            None => {
                ws.write_string(row, col, *l)?;
            }
        },
    }
    Ok(())
}

/// `text`, cut to Excel's cell limit with a note when longer.
fn fit(text: &str) -> Cow<'_, str> {
    // Byte length bounds the character count: most cells skip the count.
    if text.len() <= MAX_TEXT || text.chars().count() <= MAX_TEXT {
        return Cow::Borrowed(text);
    }
    let note = format!(
        " … [cut at Excel's {MAX_TEXT}-character limit; {} characters in all: see the CSV or JSON report]",
        text.chars().count()
    );
    let keep = MAX_TEXT - note.chars().count();
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(&note);
    Cow::Owned(out)
}

/// Starts a sheet: name, column widths, header row, frozen header.
pub(super) fn new_sheet(
    workbook: &mut Workbook,
    name: &str,
    columns: &[(&str, f64)],
    styles: &Styles,
) -> Result<Worksheet, XlsxError> {
    let mut ws = workbook.new_worksheet_with_constant_memory()?;
    ws.set_name(name)?;
    for (i, (header, width)) in columns.iter().enumerate() {
        let col = i as u16;
        ws.set_column_width(col, *width)?;
        ws.write_string_with_format(0, col, *header, &styles.header)?;
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(ws)
}

/// Ends a table sheet: the autofilter over its header and rows.
pub(super) fn end_table(
    ws: &mut Worksheet,
    last_row: u32,
    columns: usize,
) -> Result<(), XlsxError> {
    ws.autofilter(0, 0, last_row, columns.saturating_sub(1) as u16)?;
    Ok(())
}

/// A table written over as many sheets as Excel's row limit needs.
struct Table {
    base: &'static str,
    columns: Vec<(&'static str, f64)>,
    done: Vec<Worksheet>,
    current: Worksheet,
    /// The next row to write on `current`.
    row: u32,
}

impl Table {
    fn new<F>(
        workbook: &mut Workbook,
        base: &'static str,
        cols: &[Column<F>],
        styles: &Styles,
    ) -> Result<Table, XlsxError> {
        let columns: Vec<(&'static str, f64)> = cols.iter().map(|c| (c.name, c.width)).collect();
        let current = new_sheet(workbook, base, &columns, styles)?;
        Ok(Table {
            base,
            columns,
            done: Vec::new(),
            current,
            row: 1,
        })
    }

    /// The sheet and row for the next record, starting a new sheet when full.
    fn next(
        &mut self,
        workbook: &mut Workbook,
        styles: &Styles,
    ) -> Result<(&mut Worksheet, u32), XlsxError> {
        if self.row > MAX_ROW {
            let name = format!("{} ({})", self.base, self.done.len() + 2);
            let next = new_sheet(workbook, &name, &self.columns, styles)?;
            let mut full = std::mem::replace(&mut self.current, next);
            end_table(&mut full, MAX_ROW, self.columns.len())?;
            self.done.push(full);
            self.row = 1;
        }
        let row = self.row;
        self.row += 1;
        Ok((&mut self.current, row))
    }

    fn into_sheets(mut self) -> Result<Vec<Worksheet>, XlsxError> {
        end_table(&mut self.current, self.row - 1, self.columns.len())?;
        self.done.push(self.current);
        Ok(self.done)
    }
}

/// Streaming writer of `STEM.xlsx`.
pub(crate) struct XlsxWriter {
    /// The final file, created (empty) at the start so that its name is reserved.
    out: AtomicFile,
    path: PathBuf,
    workbook: Workbook,
    styles: Styles,
    findings: Table,
    lines: Table,
    run: RunCells,
    meta: RunMeta,
    policies: Arc<PolicySet>,
    filter: FindingsFilter,
    warn_expiring_days: u32,
}

impl std::fmt::Debug for XlsxWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XlsxWriter")
            .field("path", &self.path)
            .finish()
    }
}

impl XlsxWriter {
    /// Opens `dir/.STEM.xlsx.tmp` and starts the Findings and Lines sheets.
    pub(crate) fn create(o: &Opening<'_>) -> Result<XlsxWriter, ReportError> {
        let out = AtomicFile::create(o.dir, &file_name(o.stem, ".xlsx"))?;
        let path = out.temp_path().to_path_buf();
        let err_path = path.clone();
        let err = xlsx_error(&err_path);
        let mut workbook = Workbook::new();
        workbook.set_tempdir(o.dir).map_err(&err)?;
        workbook.set_zip_compression_level(ZIP_LEVEL);
        let styles = Styles::new();
        let findings = Table::new(&mut workbook, "Findings", &FINDINGS, &styles).map_err(&err)?;
        let lines = Table::new(&mut workbook, "Lines", &LINES, &styles).map_err(&err)?;
        Ok(XlsxWriter {
            out,
            path,
            workbook,
            styles,
            findings,
            lines,
            run: RunCells::new(o.meta),
            meta: o.meta.clone(),
            policies: Arc::clone(o.policies),
            filter: o.options.findings,
            warn_expiring_days: o.options.warn_expiring_days,
        })
    }
}

fn xlsx_error(path: &std::path::Path) -> impl Fn(XlsxError) -> ReportError + '_ {
    move |e| ReportError::Xlsx {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Writes one record of a table.
fn write_record<'c>(
    table: &mut Table,
    workbook: &mut Workbook,
    styles: &Styles,
    cells: impl Iterator<Item = Cell<'c>>,
) -> Result<(), XlsxError> {
    let (ws, row) = table.next(workbook, styles)?;
    for (col, cell) in cells.enumerate() {
        put(ws, row, col as u16, &cell, styles)?;
    }
    Ok(())
}

impl ReportWriter for XlsxWriter {
    fn write_line(&mut self, line: &LineReport) -> Result<(), ReportError> {
        let XlsxWriter {
            path,
            workbook,
            styles,
            findings,
            lines,
            run,
            policies,
            filter,
            ..
        } = self;
        let err = xlsx_error(path);
        columns::rows(
            run,
            policies,
            line,
            *filter,
            workbook,
            |workbook, row| {
                let cells = FINDINGS.iter().map(|c| (c.cell)(row));
                write_record(findings, workbook, styles, cells).map_err(&err)
            },
            |workbook, row| {
                let cells = LINES.iter().map(|c| (c.cell)(row));
                write_record(lines, workbook, styles, cells).map_err(&err)
            },
        )
    }

    fn finish(self: Box<Self>, closing: &Closing<'_>) -> Result<Vec<Sealed>, ReportError> {
        let XlsxWriter {
            mut out,
            path,
            mut workbook,
            styles,
            findings,
            lines,
            meta,
            policies,
            warn_expiring_days,
            ..
        } = *self;
        let err = xlsx_error(&path);
        let book = summary_sheet::Book {
            workbook: &mut workbook,
            styles: &styles,
            meta: &meta,
            policies: &policies,
            closing,
            warn_expiring_days,
        };
        let [summary, rules, waivers] = book.sheets().map_err(&err)?;
        workbook.push_worksheet(summary);
        for ws in findings.into_sheets().map_err(&err)? {
            workbook.push_worksheet(ws);
        }
        for ws in lines.into_sheets().map_err(&err)? {
            workbook.push_worksheet(ws);
        }
        workbook.push_worksheet(rules);
        workbook.push_worksheet(waivers);
        workbook.save_to_writer(&mut out).map_err(&err)?;
        Ok(vec![out.seal()?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_to_the_cell_limit_with_a_note() {
        assert!(matches!(fit("short"), Cow::Borrowed("short")));
        let exact = "é".repeat(MAX_TEXT);
        assert!(
            matches!(fit(&exact), Cow::Borrowed(_)),
            "at the limit: kept"
        );
        let long = "é".repeat(MAX_TEXT + 1);
        let cut = fit(&long);
        assert_eq!(cut.chars().count(), MAX_TEXT);
        assert!(
            cut.ends_with("see the CSV or JSON report]"),
            "{}",
            &cut[cut.len() - 80..]
        );
    }

    #[test]
    fn every_label_of_the_contract_has_a_colour() {
        let styles = Styles::new();
        let labels = crate::model::RuleStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .chain(crate::model::Severity::ALL.iter().map(|s| s.as_str()))
            .chain(["compliant", "non_compliant", "invalid", "not_audited"])
            .chain(["regressed", "resolved", "new", "changed"])
            .chain(["applied", "expired", "unused"]);
        for l in labels {
            assert!(styles.labels.contains_key(l), "{l}");
        }
    }
}
