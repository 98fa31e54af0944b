//! `STEM-findings.csv` and `STEM-lines.csv` (`CONTRACT.md` §6).
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
use serde_json::Value;

use super::atomic::{AtomicFile, Sealed};
use super::naming::file_name;
use super::{
    effective_findings, rfc3339, ReportError, ReportWriter, RunEnd, RunMeta, Summary, WaiverState,
};
use crate::model::{LineReport, RuleStatus};
use crate::policy::PolicySet;

/// The findings CSV's header, in contract order; the waiver's ticket, owner and label
/// come after the contract's columns, as the contract allows.
pub const FINDINGS_HEADER: [&str; 17] = [
    "run_id",
    "audited_at",
    "org_id",
    "line_id",
    "line_name",
    "rule_id",
    "rule_title",
    "severity",
    "status",
    "message",
    "remediation",
    "waiver_reason",
    "waiver_expires",
    "change",
    "waiver_ticket",
    "waiver_owner",
    "waiver_label",
];

/// The lines CSV's header, in contract order.
pub const LINES_HEADER: [&str; 17] = [
    "run_id",
    "audited_at",
    "org_id",
    "line_id",
    "line_name",
    "status",
    "allow_auto_answer",
    "connection_type",
    "access_type",
    "member_count",
    "members",
    "failed_rules",
    "highest_severity",
    "error_kind",
    "http_status",
    "tracking_id",
    "error_message",
];

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

/// One member as `Display Name <email>`: the name is `displayName`, else `firstName`
/// and `lastName`; with only a name or only an email, that one; with neither, the
/// member's `id`; with no `id` either, the member's JSON.
pub(crate) fn format_member(member: &Value) -> String {
    let text = |key: &str| {
        member
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let name = match text("displayName") {
        Some(d) => Some(d.to_string()),
        None => {
            let parts: Vec<&str> = [text("firstName"), text("lastName")]
                .into_iter()
                .flatten()
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        }
    };
    match (name, text("email")) {
        (Some(n), Some(e)) => format!("{n} <{e}>"),
        (Some(n), None) => n,
        (None, Some(e)) => e.to_string(),
        (None, None) => match text("id") {
            Some(id) => id.to_string(),
            None => member.to_string(),
        },
    }
}

/// The `members` cell: every member formatted by [`format_member`], joined by `; `.
pub(crate) fn format_members(members: &Value) -> String {
    match members {
        Value::Array(a) => a.iter().map(format_member).collect::<Vec<_>>().join("; "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A settings field as a cell: strings as they are, booleans and numbers as JSON,
/// absent or null as empty, anything else as compact JSON.
fn setting_cell(settings: Option<&Value>, key: &str) -> String {
    match settings.and_then(|s| s.get(key)) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Streaming writer of both CSV files.
pub(crate) struct CsvWriter {
    findings: Writer<AtomicFile>,
    findings_path: PathBuf,
    lines: Writer<AtomicFile>,
    lines_path: PathBuf,
    run_id: String,
    org_id: String,
    policies: Arc<PolicySet>,
}

impl std::fmt::Debug for CsvWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvWriter")
            .field("findings_path", &self.findings_path)
            .field("lines_path", &self.lines_path)
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
            findings,
            findings_path,
            lines,
            lines_path,
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
    cells: &[Cow<'_, str>],
) -> Result<(), ReportError> {
    let csv_err = |source| ReportError::Csv {
        path: path.to_path_buf(),
        source,
    };
    for c in cells {
        w.write_field(neutralise(c).as_bytes()).map_err(csv_err)?;
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
        let p = &*self.policies;
        let audited_at = line.read_at.as_ref().map(rfc3339).unwrap_or_default();
        let name = line.name.as_deref().unwrap_or("");
        let findings = effective_findings(line, p);
        let mut failed_rules = Vec::new();
        let mut highest = None;
        for f in findings.iter() {
            let (rule, waiver) = super::resolve(p, line, f)?;
            if f.status == RuleStatus::Fail {
                failed_rules.push(rule.id.as_str());
                highest = highest.max(Some(rule.severity));
            }
            let about = |field: fn(&crate::policy::Waiver) -> &Option<String>| {
                Cow::Borrowed(waiver.and_then(|w| field(w).as_deref()).unwrap_or(""))
            };
            let row: [Cow<'_, str>; 17] = [
                Cow::Borrowed(&self.run_id),
                Cow::Borrowed(&audited_at),
                Cow::Borrowed(&self.org_id),
                Cow::Borrowed(&line.id),
                Cow::Borrowed(name),
                Cow::Borrowed(&rule.id),
                Cow::Borrowed(&rule.title),
                Cow::Borrowed(rule.severity.as_str()),
                Cow::Borrowed(f.status.as_str()),
                Cow::Borrowed(f.message.as_deref().unwrap_or("")),
                Cow::Borrowed(rule.remediation.as_deref().unwrap_or("")),
                Cow::Borrowed(waiver.map(|w| w.reason.as_str()).unwrap_or("")),
                waiver
                    .map(|w| Cow::Owned(w.expires.format("%Y-%m-%d").to_string()))
                    .unwrap_or(Cow::Borrowed("")),
                Cow::Borrowed(f.change.map(|c| c.as_str()).unwrap_or("")),
                about(|w| &w.ticket),
                about(|w| &w.owner),
                about(|w| &w.label),
            ];
            write_row(&mut self.findings, &self.findings_path, &row)?;
        }

        let settings = line.settings.as_ref();
        let (member_count, members) = match settings {
            None => (String::new(), String::new()),
            Some(s) => match s.get("members") {
                // The contract treats absent members as `[]`.
                None | Some(Value::Null) => ("0".to_string(), String::new()),
                Some(m @ Value::Array(a)) => (a.len().to_string(), format_members(m)),
                Some(other) => (String::new(), format_members(other)),
            },
        };
        let err = line.error.as_ref();
        let row: [Cow<'_, str>; 17] = [
            Cow::Borrowed(&self.run_id),
            Cow::Borrowed(&audited_at),
            Cow::Borrowed(&self.org_id),
            Cow::Borrowed(&line.id),
            Cow::Borrowed(name),
            Cow::Borrowed(line.status.as_str()),
            Cow::Owned(setting_cell(settings, "allowAutoAnswer")),
            Cow::Owned(setting_cell(settings, "connectionType")),
            Cow::Owned(setting_cell(settings, "accessType")),
            Cow::Owned(member_count),
            Cow::Owned(members),
            Cow::Owned(failed_rules.join(";")),
            Cow::Borrowed(highest.map(|s| s.as_str()).unwrap_or("")),
            Cow::Borrowed(err.map(|e| e.kind.as_str()).unwrap_or("")),
            Cow::Owned(
                err.and_then(|e| e.http_status)
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
            ),
            Cow::Borrowed(err.and_then(|e| e.tracking_id.as_deref()).unwrap_or("")),
            Cow::Borrowed(err.map(|e| e.message.as_str()).unwrap_or("")),
        ];
        write_row(&mut self.lines, &self.lines_path, &row)
    }

    fn finish(
        self: Box<Self>,
        _summary: &Summary,
        _end: &RunEnd,
        _waivers: &[WaiverState],
    ) -> Result<Vec<Sealed>, ReportError> {
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
    use serde_json::json;

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
    fn member_formats() {
        let full = json!({"id": "p1", "displayName": "Alice Little", "firstName": "A",
                          "email": "alice@example.com"});
        assert_eq!(format_member(&full), "Alice Little <alice@example.com>");
        let names = json!({"id": "p2", "firstName": "Bob", "lastName": "Johnson"});
        assert_eq!(format_member(&names), "Bob Johnson");
        let last_only = json!({"lastName": "Johnson", "email": "b@x.org"});
        assert_eq!(format_member(&last_only), "Johnson <b@x.org>");
        let email = json!({"id": "p3", "displayName": "  ", "email": "c@x.org"});
        assert_eq!(format_member(&email), "c@x.org");
        assert_eq!(format_member(&json!({"id": "p4"})), "p4");
        assert_eq!(
            format_member(&json!({"type": "PEOPLE"})),
            r#"{"type":"PEOPLE"}"#
        );
        assert_eq!(
            format_members(&json!([full, {"id": "p4"}])),
            "Alice Little <alice@example.com>; p4"
        );
        assert_eq!(format_members(&json!([])), "");
    }

    #[test]
    fn setting_cells() {
        let s = json!({"allowAutoAnswer": false, "connectionType": "ONE_WAY", "n": null});
        assert_eq!(setting_cell(Some(&s), "allowAutoAnswer"), "false");
        assert_eq!(setting_cell(Some(&s), "connectionType"), "ONE_WAY");
        assert_eq!(setting_cell(Some(&s), "n"), "");
        assert_eq!(setting_cell(Some(&s), "accessType"), "");
        assert_eq!(setting_cell(None, "accessType"), "");
    }
}
