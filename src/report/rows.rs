//! The rows of the findings and lines tables: their columns, in the one place they are
//! defined, and each cell's value, typed. The CSV writer renders them as text; a
//! spreadsheet writer can render the same cells as numbers and date-times, so every
//! tabular format has the same columns in the same order with the same values.
//!
//! Columns are `CONTRACT.md` §6's, with §7's identity columns
//! (`location_id,location_name,phone_number,extension`) at the end of both tables.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::{effective_findings, resolve, ReportError};
use crate::model::{LineReport, RuleStatus};
use crate::policy::PolicySet;

/// The findings table's columns, in contract order.
pub const FINDINGS_HEADER: [&str; 18] = [
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
    "location_id",
    "location_name",
    "phone_number",
    "extension",
];

/// The lines table's columns, in contract order.
pub const LINES_HEADER: [&str; 21] = [
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
    "location_id",
    "location_name",
    "phone_number",
    "extension",
];

/// One cell, typed: text exactly as read (a CSV writer neutralises it, a spreadsheet
/// writes it as a text cell), or a value a spreadsheet can compute with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell<'a> {
    /// Text; empty for an absent value.
    Text(Cow<'a, str>),
    /// A point in time (`audited_at`); `None` when empty.
    Time(Option<DateTime<Utc>>),
    /// A day (`waiver_expires`); `None` when empty.
    Date(Option<NaiveDate>),
    /// A count or an HTTP status; `None` when empty.
    Number(Option<u64>),
}

impl<'a> Cell<'a> {
    fn text(s: &'a str) -> Cell<'a> {
        Cell::Text(Cow::Borrowed(s))
    }

    fn opt(s: Option<&'a str>) -> Cell<'a> {
        Cell::text(s.unwrap_or(""))
    }

    /// The cell as CSV text (before neutralising): times in RFC 3339 UTC, days as
    /// `YYYY-MM-DD`, empty for absent values.
    pub(crate) fn to_text(&self) -> Cow<'_, str> {
        match self {
            Cell::Text(t) => Cow::Borrowed(t),
            Cell::Time(t) => Cow::Owned(t.as_ref().map(super::rfc3339).unwrap_or_default()),
            Cell::Date(d) => Cow::Owned(
                d.map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
            ),
            Cell::Number(n) => Cow::Owned(n.map(|n| n.to_string()).unwrap_or_default()),
        }
    }
}

/// Where a tabular format puts the rows of one line.
pub(crate) trait RowSink {
    /// One findings row, cells in [`FINDINGS_HEADER`] order.
    fn finding(&mut self, cells: &[Cell<'_>]) -> Result<(), ReportError>;
    /// The line's row, cells in [`LINES_HEADER`] order.
    fn line(&mut self, cells: &[Cell<'_>]) -> Result<(), ReportError>;
}

/// What every row of a run shares.
#[derive(Debug)]
pub(crate) struct RunCells<'a> {
    /// The run's ID.
    pub(crate) run_id: &'a str,
    /// `--org-id`, or empty.
    pub(crate) org_id: &'a str,
    /// The policies the findings refer to.
    pub(crate) policies: &'a PolicySet,
}

/// Hands `sink` one findings row per (effective) result of `line`, then its lines row.
pub(crate) fn line_rows(
    run: &RunCells<'_>,
    line: &LineReport,
    sink: &mut impl RowSink,
) -> Result<(), ReportError> {
    let p = run.policies;
    let audited_at = Cell::Time(line.read_at);
    let identity = line.identity.values();
    let [name, location_id, location_name, phone_number, extension] = identity.map(Cell::opt);
    let findings = effective_findings(line, p);
    let mut failed_rules = Vec::new();
    let mut highest = None;
    for f in findings.iter() {
        let (rule, waiver) = resolve(p, line, f)?;
        if f.status == RuleStatus::Fail {
            failed_rules.push(rule.id.as_str());
            highest = highest.max(Some(rule.severity));
        }
        sink.finding(&[
            Cell::text(run.run_id),
            audited_at.clone(),
            Cell::text(run.org_id),
            Cell::text(&line.id),
            name.clone(),
            Cell::text(&rule.id),
            Cell::text(&rule.title),
            Cell::text(rule.severity.as_str()),
            Cell::text(f.status.as_str()),
            Cell::opt(f.message.as_deref()),
            Cell::opt(rule.remediation.as_deref()),
            Cell::opt(waiver.map(|w| w.reason.as_str())),
            Cell::Date(waiver.map(|w| w.expires)),
            Cell::opt(f.change.map(|c| c.as_str())),
            location_id.clone(),
            location_name.clone(),
            phone_number.clone(),
            extension.clone(),
        ])?;
    }

    let settings = line.settings.as_ref();
    let (member_count, members) = match settings {
        None => (None, String::new()),
        Some(s) => match s.get("members") {
            // The contract treats absent members as `[]`.
            None | Some(Value::Null) => (Some(0), String::new()),
            Some(m @ Value::Array(a)) => (Some(a.len() as u64), format_members(m)),
            Some(other) => (None, format_members(other)),
        },
    };
    let err = line.error.as_ref();
    sink.line(&[
        Cell::text(run.run_id),
        audited_at,
        Cell::text(run.org_id),
        Cell::text(&line.id),
        name,
        Cell::text(line.status.as_str()),
        Cell::Text(Cow::Owned(setting_cell(settings, "allowAutoAnswer"))),
        Cell::Text(Cow::Owned(setting_cell(settings, "connectionType"))),
        Cell::Text(Cow::Owned(setting_cell(settings, "accessType"))),
        Cell::Number(member_count),
        Cell::Text(Cow::Owned(members)),
        Cell::Text(Cow::Owned(failed_rules.join(";"))),
        Cell::opt(highest.map(|s| s.as_str())),
        Cell::opt(err.map(|e| e.kind.as_str())),
        Cell::Number(err.and_then(|e| e.http_status).map(u64::from)),
        Cell::opt(err.and_then(|e| e.tracking_id.as_deref())),
        Cell::opt(err.map(|e| e.message.as_str())),
        location_id,
        location_name,
        phone_number,
        extension,
    ])
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn typed_cells_render_as_csv_text() {
        let t = "2026-11-29T03:20:56Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(Cell::Time(Some(t)).to_text(), "2026-11-29T03:20:56Z");
        assert_eq!(Cell::Time(None).to_text(), "");
        let d = NaiveDate::from_ymd_opt(2027, 1, 31).unwrap();
        assert_eq!(Cell::Date(Some(d)).to_text(), "2027-01-31");
        assert_eq!(Cell::Number(Some(404)).to_text(), "404");
        assert_eq!(Cell::Number(None).to_text(), "");
        assert_eq!(Cell::text("=1").to_text(), "=1");
    }

    #[test]
    fn identity_columns_end_both_tables() {
        let tail = ["location_id", "location_name", "phone_number", "extension"];
        assert_eq!(FINDINGS_HEADER[14..], tail);
        assert_eq!(LINES_HEADER[17..], tail);
    }
}
