//! The columns of the findings and lines tables (`CONTRACT.md` §6), defined once for
//! every tabular format: the CSVs and the xlsx sheets read the same tables, so their
//! columns cannot drift apart. A column is its header name, a display width (for the
//! xlsx) and the function that makes its cell; a new column is one entry here.
//!
//! A [`Cell`] says what a value *is* (text, a time, a date, a number, a label from a
//! fixed vocabulary); each format decides how to write it: the CSV as neutralised text,
//! the xlsx as a real date-time, number or colour-coded label.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::{effective_findings, ReportError, RunMeta};
use crate::model::{Finding, LineReport, RuleStatus, Severity};
use crate::policy::{PolicySet, Rule, Waiver};

/// One cell, by what it holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell<'a> {
    /// Text exactly as read (from the API, a policy or the input).
    Text(Cow<'a, str>),
    /// A moment (UTC); `None` is an empty cell.
    Time(Option<DateTime<Utc>>),
    /// A calendar day; `None` is an empty cell.
    Date(Option<NaiveDate>),
    /// A count or an HTTP status; `None` is an empty cell.
    Number(Option<u64>),
    /// A status, severity or change, spelt as the contract does; `""` is empty.
    Label(&'static str),
}

impl<'a> Cell<'a> {
    fn text(s: &'a str) -> Cell<'a> {
        Cell::Text(Cow::Borrowed(s))
    }

    /// The cell as CSV text (before neutralising).
    pub(crate) fn to_text(&self) -> Cow<'a, str> {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Time(t) => Cow::Owned(t.as_ref().map(super::rfc3339).unwrap_or_default()),
            Cell::Date(d) => Cow::Owned(d.map(|d| d.to_string()).unwrap_or_default()),
            Cell::Number(n) => Cow::Owned(n.map(|n| n.to_string()).unwrap_or_default()),
            Cell::Label(l) => Cow::Borrowed(l),
        }
    }
}

/// A column of a table whose rows are `R`.
pub(crate) struct Column<F> {
    /// The header cell, as the contract spells it.
    pub(crate) name: &'static str,
    /// A readable width in characters (for the xlsx).
    pub(crate) width: f64,
    /// Makes the column's cell from a row.
    pub(crate) cell: F,
}

/// Makes a findings cell.
pub(crate) type FindingCell = for<'r> fn(&'r FindingRow<'r>) -> Cell<'r>;
/// Makes a lines cell.
pub(crate) type LineCell = for<'r> fn(&'r LineRow<'r>) -> Cell<'r>;

/// What every row of a run shares.
#[derive(Debug)]
pub(crate) struct RunCells {
    run_id: String,
    org_id: String,
}

impl RunCells {
    pub(crate) fn new(meta: &RunMeta) -> RunCells {
        RunCells {
            run_id: meta.run_id.clone(),
            org_id: meta.org_id.clone().unwrap_or_default(),
        }
    }
}

/// One row of the findings table: one line and one rule.
pub(crate) struct FindingRow<'r> {
    run: &'r RunCells,
    line: &'r LineReport,
    rule: &'r Rule,
    finding: &'r Finding,
    waiver: Option<&'r Waiver>,
}

impl FindingRow<'_> {
    /// The rule's index in the policy set: cells of [`rule_only`] columns are the same
    /// for every row with the same index.
    pub(crate) fn rule_index(&self) -> usize {
        self.finding.rule
    }
}

/// The findings columns whose cell depends on the rule alone, by name: a writer may
/// make their cells once per rule. (About half the findings file's bytes.)
pub(crate) fn rule_only(name: &str) -> bool {
    matches!(name, "rule_id" | "rule_title" | "severity" | "remediation")
}

/// One row of the lines table.
pub(crate) struct LineRow<'r> {
    run: &'r RunCells,
    line: &'r LineReport,
    /// IDs of the rules that failed, joined by `;`.
    failed_rules: String,
    /// The most severe failing rule's severity.
    highest: Option<Severity>,
    /// Members, `None` when the line was not read or `members` is not a list.
    member_count: Option<u64>,
    /// Every member as `Display Name <email>`, joined by `; `.
    members: String,
}

fn name_of(line: &LineReport) -> &str {
    line.identity.name.as_deref().unwrap_or("")
}

fn location_id_of(line: &LineReport) -> &str {
    line.identity.location_id.as_deref().unwrap_or("")
}

fn location_name_of(line: &LineReport) -> &str {
    line.identity.location_name.as_deref().unwrap_or("")
}

fn phone_number_of(line: &LineReport) -> &str {
    line.identity.phone_number.as_deref().unwrap_or("")
}

fn extension_of(line: &LineReport) -> &str {
    line.identity.extension.as_deref().unwrap_or("")
}

/// The findings table, in contract order.
pub(crate) const FINDINGS: [Column<FindingCell>; 21] = [
    Column {
        name: "run_id",
        width: 36.0,
        cell: |r| Cell::text(&r.run.run_id),
    },
    Column {
        name: "audited_at",
        width: 20.0,
        cell: |r| Cell::Time(r.line.read_at),
    },
    Column {
        name: "org_id",
        width: 16.0,
        cell: |r| Cell::text(&r.run.org_id),
    },
    Column {
        name: "line_id",
        width: 40.0,
        cell: |r| Cell::text(&r.line.id),
    },
    Column {
        name: "line_name",
        width: 26.0,
        cell: |r| Cell::text(name_of(r.line)),
    },
    Column {
        name: "rule_id",
        width: 30.0,
        cell: |r| Cell::text(&r.rule.id),
    },
    Column {
        name: "rule_title",
        width: 44.0,
        cell: |r| Cell::text(&r.rule.title),
    },
    Column {
        name: "severity",
        width: 10.0,
        cell: |r| Cell::Label(r.rule.severity.as_str()),
    },
    Column {
        name: "status",
        width: 15.0,
        cell: |r| Cell::Label(r.finding.status.as_str()),
    },
    Column {
        name: "message",
        width: 50.0,
        cell: |r| Cell::text(r.finding.message.as_deref().unwrap_or("")),
    },
    Column {
        name: "remediation",
        width: 44.0,
        cell: |r| Cell::text(r.rule.remediation.as_deref().unwrap_or("")),
    },
    Column {
        name: "waiver_reason",
        width: 32.0,
        cell: |r| Cell::text(r.waiver.map(|w| w.reason.as_str()).unwrap_or("")),
    },
    Column {
        name: "waiver_expires",
        width: 14.0,
        cell: |r| Cell::Date(r.waiver.map(|w| w.expires)),
    },
    Column {
        name: "change",
        width: 12.0,
        cell: |r| Cell::Label(r.finding.change.map(|c| c.as_str()).unwrap_or("")),
    },
    // The waiver's free-text metadata: after the contract's §6 columns, before the
    // identity columns, which §7 puts at the very end.
    Column {
        name: "waiver_ticket",
        width: 14.0,
        cell: |r| Cell::text(r.waiver.and_then(|w| w.ticket.as_deref()).unwrap_or("")),
    },
    Column {
        name: "waiver_owner",
        width: 18.0,
        cell: |r| Cell::text(r.waiver.and_then(|w| w.owner.as_deref()).unwrap_or("")),
    },
    Column {
        name: "waiver_label",
        width: 24.0,
        cell: |r| Cell::text(r.waiver.and_then(|w| w.label.as_deref()).unwrap_or("")),
    },
    // The line's identity (`CONTRACT.md` §7): the last four columns.
    Column {
        name: "location_id",
        width: 36.0,
        cell: |r| Cell::text(location_id_of(r.line)),
    },
    Column {
        name: "location_name",
        width: 24.0,
        cell: |r| Cell::text(location_name_of(r.line)),
    },
    Column {
        name: "phone_number",
        width: 16.0,
        cell: |r| Cell::text(phone_number_of(r.line)),
    },
    Column {
        name: "extension",
        width: 10.0,
        cell: |r| Cell::text(extension_of(r.line)),
    },
];

/// The lines table, in contract order.
pub(crate) const LINES: [Column<LineCell>; 21] = [
    Column {
        name: "run_id",
        width: 36.0,
        cell: |r| Cell::text(&r.run.run_id),
    },
    Column {
        name: "audited_at",
        width: 20.0,
        cell: |r| Cell::Time(r.line.read_at),
    },
    Column {
        name: "org_id",
        width: 16.0,
        cell: |r| Cell::text(&r.run.org_id),
    },
    Column {
        name: "line_id",
        width: 40.0,
        cell: |r| Cell::text(&r.line.id),
    },
    Column {
        name: "line_name",
        width: 26.0,
        cell: |r| Cell::text(name_of(r.line)),
    },
    Column {
        name: "status",
        width: 15.0,
        cell: |r| Cell::Label(r.line.status.as_str()),
    },
    Column {
        name: "allow_auto_answer",
        width: 12.0,
        cell: |r| setting(r.line, "allowAutoAnswer"),
    },
    Column {
        name: "connection_type",
        width: 15.0,
        cell: |r| setting(r.line, "connectionType"),
    },
    Column {
        name: "access_type",
        width: 16.0,
        cell: |r| setting(r.line, "accessType"),
    },
    Column {
        name: "member_count",
        width: 10.0,
        cell: |r| Cell::Number(r.member_count),
    },
    Column {
        name: "members",
        width: 50.0,
        cell: |r| Cell::text(&r.members),
    },
    Column {
        name: "failed_rules",
        width: 40.0,
        cell: |r| Cell::text(&r.failed_rules),
    },
    Column {
        name: "highest_severity",
        width: 12.0,
        cell: |r| Cell::Label(r.highest.map(Severity::as_str).unwrap_or("")),
    },
    Column {
        name: "error_kind",
        width: 12.0,
        cell: |r| Cell::Label(r.line.error.as_ref().map(|e| e.kind.as_str()).unwrap_or("")),
    },
    Column {
        name: "http_status",
        width: 8.0,
        cell: |r| {
            Cell::Number(
                r.line
                    .error
                    .as_ref()
                    .and_then(|e| e.http_status)
                    .map(u64::from),
            )
        },
    },
    Column {
        name: "tracking_id",
        width: 30.0,
        cell: |r| {
            Cell::text(
                r.line
                    .error
                    .as_ref()
                    .and_then(|e| e.tracking_id.as_deref())
                    .unwrap_or(""),
            )
        },
    },
    Column {
        name: "error_message",
        width: 50.0,
        cell: |r| {
            Cell::text(
                r.line
                    .error
                    .as_ref()
                    .map(|e| e.message.as_str())
                    .unwrap_or(""),
            )
        },
    }, // The line's identity (`CONTRACT.md` §7), at the end.
    Column {
        name: "location_id",
        width: 36.0,
        cell: |r| Cell::text(location_id_of(r.line)),
    },
    Column {
        name: "location_name",
        width: 24.0,
        cell: |r| Cell::text(location_name_of(r.line)),
    },
    Column {
        name: "phone_number",
        width: 16.0,
        cell: |r| Cell::text(phone_number_of(r.line)),
    },
    Column {
        name: "extension",
        width: 10.0,
        cell: |r| Cell::text(extension_of(r.line)),
    },
];

/// The header names of a table, at compile time (so the public header constants follow
/// the tables).
const fn names<F, const N: usize>(cols: &[Column<F>; N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = cols[i].name;
        i += 1;
    }
    out
}

/// The findings CSV's header (and the xlsx Findings sheet's), in contract order.
pub const FINDINGS_HEADER: [&str; FINDINGS.len()] = names(&FINDINGS);
/// The lines CSV's header (and the xlsx Lines sheet's), in contract order.
pub const LINES_HEADER: [&str; LINES.len()] = names(&LINES);

/// Which findings rows the findings tables hold (`--findings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FindingsFilter {
    /// One row per line and enabled rule, every status.
    #[default]
    All,
    /// Only rows whose status is `fail`, `waived` or `error`.
    Failing,
}

impl FindingsFilter {
    fn keeps(self, status: RuleStatus) -> bool {
        match self {
            FindingsFilter::All => true,
            FindingsFilter::Failing => matches!(
                status,
                RuleStatus::Fail | RuleStatus::Waived | RuleStatus::Error
            ),
        }
    }
}

/// Makes the rows of one line: each findings row the filter keeps goes to `on_finding`
/// (in rule order), then the lines row to `on_line`; both get `sink`, the writer.
pub(crate) fn rows<S, E>(
    run: &RunCells,
    policies: &PolicySet,
    line: &LineReport,
    filter: FindingsFilter,
    sink: &mut S,
    mut on_finding: impl FnMut(&mut S, &FindingRow<'_>) -> Result<(), E>,
    on_line: impl FnOnce(&mut S, &LineRow<'_>) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<ReportError>,
{
    let findings = effective_findings(line, policies);
    let mut failed_rules = Vec::new();
    let mut highest = None;
    for finding in findings.iter() {
        let (rule, waiver) = super::resolve(policies, line, finding)?;
        if finding.status == RuleStatus::Fail {
            failed_rules.push(rule.id.as_str());
            highest = highest.max(Some(rule.severity));
        }
        if filter.keeps(finding.status) {
            on_finding(
                sink,
                &FindingRow {
                    run,
                    line,
                    rule,
                    finding,
                    waiver,
                },
            )?;
        }
    }
    let (member_count, members) = match line.settings.as_ref() {
        None => (None, String::new()),
        Some(s) => match s.get("members") {
            // The contract treats absent members as `[]`.
            None | Some(Value::Null) => (Some(0), String::new()),
            Some(m @ Value::Array(a)) => (Some(a.len() as u64), format_members(m)),
            Some(other) => (None, format_members(other)),
        },
    };
    on_line(
        sink,
        &LineRow {
            run,
            line,
            failed_rules: failed_rules.join(";"),
            highest,
            member_count,
            members,
        },
    )
}

/// A settings field as a cell: strings as they are, booleans and numbers as JSON,
/// absent or null as empty, anything else as compact JSON.
fn setting<'r>(line: &'r LineReport, key: &str) -> Cell<'r> {
    match line.settings.as_ref().and_then(|s| s.get(key)) {
        None | Some(Value::Null) => Cell::text(""),
        Some(Value::String(s)) => Cell::text(s),
        Some(other) => Cell::Text(Cow::Owned(other.to_string())),
    }
}

/// One member as `Display Name <email>`: the name is `displayName`, else `firstName`
/// and `lastName`; with only a name or only an email, that one; with neither, the
/// member's `id`; with no `id` either, the member's JSON.
pub(crate) fn format_member(member: &Value) -> String {
    let mut out = String::new();
    push_member(&mut out, member);
    out
}

/// Appends [`format_member`]'s text to `out` (one buffer for a whole member list).
fn push_member(out: &mut String, member: &Value) {
    let Some(fields) = member.as_object() else {
        out.push_str(&member.to_string());
        return;
    };
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let email = text("email");
    let name_at = out.len();
    match text("displayName") {
        Some(d) => out.push_str(d),
        None => {
            for part in [text("firstName"), text("lastName")].into_iter().flatten() {
                if out.len() > name_at {
                    out.push(' ');
                }
                out.push_str(part);
            }
        }
    }
    let has_name = out.len() > name_at;
    match (has_name, email) {
        (true, Some(e)) => {
            out.push_str(" <");
            out.push_str(e);
            out.push('>');
        }
        (true, None) => {}
        (false, Some(e)) => out.push_str(e),
        (false, None) => match text("id") {
            Some(id) => out.push_str(id),
            None => out.push_str(&member.to_string()),
        },
    }
}

/// The `members` cell: every member formatted by [`format_member`], joined by `; `.
pub(crate) fn format_members(members: &Value) -> String {
    match members {
        Value::Array(a) => {
            let mut out = String::with_capacity(48 * a.len());
            for (i, m) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str("; ");
                }
                push_member(&mut out, m);
            }
            out
        }
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
