//! The page's parts as maud templates. maud escapes every value interpolated with
//! `(…)` in text and in attributes (`&`, `<`, `>`, `"`), so text from the API or a
//! policy can only ever show as text; nothing here builds markup by concatenation, and
//! no value is ever placed inside the `<script>` or `<style>` elements.

use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde_json::Value;

use crate::model::{LineReport, LineStatus, RuleStatus};
use crate::policy::PolicySet;
use crate::report::columns::format_member;
use crate::report::format::Closing;
use crate::report::summary::{exit_meaning, failing_rules};
use crate::report::{effective_findings, resolve, ReportError, RunMeta};

/// The stylesheet, inline (no external resource).
pub(super) const STYLE: &str = include_str!("style.css");
/// The script: sorting, filtering, printing. The page reads fine without it.
pub(super) const SCRIPT: &str = include_str!("script.js");

/// Members shown per line before "and N more" (the CSV, xlsx and JSON have them all,
/// with their e-mail addresses).
const MEMBERS_SHOWN: usize = 4;

/// Line statuses in report order.
pub(super) const LINE_STATUSES: [LineStatus; 5] = [
    LineStatus::Compliant,
    LineStatus::NonCompliant,
    LineStatus::Error,
    LineStatus::Invalid,
    LineStatus::NotAudited,
];

fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `<!DOCTYPE html><html><head>…</head>`: the start of the page, up to `<body>`.
pub(super) fn head(meta: &RunMeta, csp: &str) -> Markup {
    let title = match &meta.org_id {
        Some(org) => format!("PTT audit of {org}, {}", time(&meta.started_at)),
        None => format!("PTT audit, {}", time(&meta.started_at)),
    };
    html! {
        (DOCTYPE)
        html lang="en";
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta http-equiv="Content-Security-Policy" content=(csp);
            meta name="generator" content={ "ptt-audit " (meta.tool_version) };
            title { (title) }
            style { (PreEscaped(STYLE)) }
        }
    }
}

/// The header, navigation, summary, failing rules, changes and waivers.
pub(super) fn top(meta: &RunMeta, policies: &PolicySet, c: &Closing<'_>, warn_days: u32) -> Markup {
    let (s, end) = (c.summary, c.end);
    let seconds = (end.finished_at - meta.started_at).num_seconds().max(0);
    let l = &s.lines;
    let r = &s.results;
    let pct = |n: u64| {
        if l.total == 0 {
            0.0
        } else {
            n as f64 * 100.0 / l.total as f64
        }
    };
    let failing = failing_rules(s, policies);
    let expiring = s
        .waivers
        .iter()
        .filter(|w| w.expires_within(warn_days))
        .count();
    html! {
        header {
            h1 {
                "Push-to-Talk audit"
                @if let Some(org) = &meta.org_id { small { "org " (org) } }
            }
            div class={ "verdict v" (end.exit_code) } {
                "Exit code " (end.exit_code) ": " (exit_meaning(end.exit_code, s, None)) "."
            }
            dl.facts {
                dt { "Started" } dd { (time(&meta.started_at)) }
                dt { "Finished" } dd { (time(&end.finished_at)) " (" (seconds) " s)" }
                dt { "Complete" } dd {
                    @if end.complete { "yes: every line was read or tried" }
                    @else { "no: the run stopped early; unread lines are not_audited" }
                }
                @if let Some(src) = &meta.source_report {
                    dt { "Re-evaluated from" }
                    dd { code { (src.path) } " (run " code { (src.run_id) } ", read " (time(&src.started_at)) ")" }
                }
                dt { "API" } dd { code { (meta.base_url) } }
                dt { "Policies" } dd {
                    @for (i, p) in policies.sources.iter().enumerate() {
                        @if i > 0 { br; }
                        code { (p.path) } " " span.id { "sha256 " (p.sha256.get(..12).unwrap_or(&p.sha256)) "…" }
                    }
                }
                dt { "Run ID" } dd { code { (meta.run_id) } }
            }
        }
        nav.toc {
            a href="#summary" { "Summary" }
            a href="#rules" { "Failing rules" }
            @if s.changes.is_some() { a href="#changes" { "Changes" } }
            a href="#waivers" { "Waivers" @if expiring > 0 { " (" (expiring) " expiring)" } }
            a href="#attention" { "Needs attention" }
            a href="#lines" { "All lines" }
        }
        section #summary {
            h2 { "Summary" }
            div.cards {
                div.card { b { (l.total) } span { "lines" } }
                @for st in LINE_STATUSES {
                    @let n = LineCountsExt::get(l, st);
                    div class=(card(st.as_str(), n)) {
                        b { (n) } span { (st.as_str()) }
                    }
                }
            }
            div.bar title="lines by status" {
                @for st in LINE_STATUSES {
                    @let n = LineCountsExt::get(l, st);
                    @if n > 0 {
                        i class=(st.as_str()) style={ "width:" (format!("{:.3}", pct(n))) "%" } title={ (st.as_str()) ": " (n) } {}
                    }
                }
            }
            div.cards {
                div.card { b { (r.total()) } span { "results" } }
                @for (label, n) in [("pass", r.pass), ("fail", r.fail), ("waived", r.waived), ("not_applicable", r.not_applicable), ("error", r.error)] {
                    div class=(card(label, n)) { b { (n) } span { (label) } }
                }
            }
        }
        section #rules {
            h2 { "Failing rules by severity" }
            p.note {
                "Failures: "
                span class="sev critical" { "critical " (s.fail_by_severity.critical) } " "
                span class="sev high" { "high " (s.fail_by_severity.high) } " "
                span class="sev medium" { "medium " (s.fail_by_severity.medium) } " "
                span class="sev low" { "low " (s.fail_by_severity.low) }
            }
            @if failing.is_empty() {
                p { "No rule failed." }
            } @else {
                table {
                    thead { tr {
                        th data-sort="t" { "Severity" } th data-sort="t" { "Rule" } th data-sort="t" { "Title" }
                        th.num data-sort="n" { "Failing lines" } th { "Remediation" }
                    } }
                    tbody {
                        @for (n, rule) in &failing {
                            tr {
                                td data-v=(rule.severity as u8) { span class={ "sev " (rule.severity.as_str()) } { (rule.severity.as_str()) } }
                                td { code { (rule.id) } }
                                td { (rule.title) }
                                td.num { (n) }
                                td { (rule.remediation.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
            details.chunk {
                summary { "Every rule (" (policies.rules.len()) ")" }
                table {
                    thead { tr {
                        th data-sort="t" { "Rule" } th data-sort="t" { "Severity" } th { "Title" }
                        th data-sort="t" { "Enabled" } th.num data-sort="n" { "Failures" } th { "Description" }
                    } }
                    tbody {
                        @for (i, rule) in policies.rules.iter().enumerate() {
                            tr {
                                td { code { (rule.id) } }
                                td { span class={ "sev " (rule.severity.as_str()) } { (rule.severity.as_str()) } }
                                td { (rule.title) }
                                td { @if rule.enabled { "yes" } @else { "no" } }
                                td.num { (s.failing_rules.get(&i).copied().unwrap_or(0)) }
                                td { (rule.description.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(ch) = &s.changes {
            section #changes {
                h2 { "Changes since the previous report" }
                div.cards {
                    @for (label, n) in [("regressed", ch.results.regressed), ("resolved", ch.results.resolved), ("changed", ch.results.changed), ("new", ch.results.new), ("unchanged", ch.results.unchanged)] {
                        div class=(card("", n)) { b { (n) } span { (label) " results" } }
                    }
                    div class=(card("", ch.lines_added)) { b { (ch.lines_added) } span { "lines added" } }
                    div class=(card("", ch.lines_removed)) { b { (ch.lines_removed) } span { "lines removed" } }
                }
                @if !s.removed_lines.is_empty() {
                    h3 { "Lines removed since the previous report" }
                    table {
                        thead { tr { th data-sort="t" { "Line" } th data-sort="t" { "Status before" } } }
                        tbody {
                            @for gone in &s.removed_lines {
                                tr {
                                    td {
                                        @if let Some(n) = &gone.name { div.line-name { (n) } }
                                        div.id { (gone.id) }
                                    }
                                    td { @match gone.status {
                                        Some(st) => span class={ "b " (st.as_str()) } { (st.as_str()) },
                                        None => "unknown",
                                    } }
                                }
                            }
                        }
                    }
                }
                p.note { "Each line below marks results that regressed or are new since then." }
            }
        }
        section #waivers {
            h2 { "Waivers " span.n { "(" (policies.waivers.len()) ")" } }
            @if policies.waivers.is_empty() {
                p { "No waivers." }
            } @else {
                @if expiring > 0 {
                    p.note { (expiring) " waiver(s) expire within " (warn_days) " days (highlighted)." }
                }
                table {
                    thead { tr {
                        th data-sort="t" { "Rule" } th data-sort="t" { "Line" } th { "Reason" }
                        th data-sort="t" { "Expires" } th.num data-sort="n" { "Days left" } th data-sort="t" { "State" }
                    } }
                    tbody {
                        @for (i, w) in policies.waivers.iter().enumerate() {
                            @let entry = s.waivers.get(i);
                            tr class=[entry.filter(|e| e.expires_within(warn_days)).map(|_| "soon")] {
                                td { code { (w.rule) } }
                                td.id { (w.line) }
                                td { (w.reason) }
                                td { (w.expires) }
                                td.num { (entry.map_or(0, |e| e.days_left)) }
                                td { @if let Some(e) = entry { span class={ "b " (e.state.as_str()) } { (e.state.as_str()) } } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A summary card's classes: its label's colour, dimmed when the count is zero.
fn card(label: &str, n: u64) -> String {
    match (label.is_empty(), n == 0) {
        (true, true) => "card zero".to_string(),
        (true, false) => "card".to_string(),
        (false, true) => format!("card {label} zero"),
        (false, false) => format!("card {label}"),
    }
}

/// Lets the template read a line count by status.
trait LineCountsExt {
    fn get(&self, status: LineStatus) -> u64;
}

impl LineCountsExt for crate::report::LineCounts {
    fn get(&self, status: LineStatus) -> u64 {
        match status {
            LineStatus::Compliant => self.compliant,
            LineStatus::NonCompliant => self.non_compliant,
            LineStatus::Error => self.error,
            LineStatus::Invalid => self.invalid,
            LineStatus::NotAudited => self.not_audited,
        }
    }
}

/// The header row of a lines table.
pub(super) fn lines_head() -> Markup {
    html! {
        thead { tr {
            th data-sort="n" { "#" } th data-sort="t" { "Line" } th data-sort="t" { "Status" }
            th { "Settings" } th { "Results" }
        } }
    }
}

/// The filter bar (shown only when the script runs).
pub(super) fn filter_bar(total: u64) -> Markup {
    html! {
        div.filter #filter {
            input type="search" placeholder="Filter lines by name, ID, rule, message…" aria-label="Filter lines";
            @for st in LINE_STATUSES {
                label { input type="checkbox" value=(st.as_str()) checked; " " (st.as_str()) }
            }
            output { (total) " lines" }
        }
    }
}

/// One line as a table row: name, ID, status, settings, and every result that is not
/// a pass (with its message, waiver and change).
pub(super) fn line_row(line: &LineReport, policies: &PolicySet) -> Result<Markup, ReportError> {
    let findings = effective_findings(line, policies);
    let mut tally = [0u32; 5];
    let mut shown = Vec::new();
    for f in findings.iter() {
        let (rule, waiver) = resolve(policies, line, f)?;
        let i = RuleStatus::ALL
            .iter()
            .position(|s| *s == f.status)
            .unwrap_or(0);
        tally[i] += 1;
        if !matches!(f.status, RuleStatus::Pass | RuleStatus::NotApplicable) {
            shown.push((f, rule, waiver));
        }
    }
    let unread = line.read_at.is_none() && line.settings.is_none();
    let status = line.status.as_str();
    Ok(html! {
        tr data-s=(status) {
            td { (line.index + 1) }
            td {
                @if let Some(n) = line.name() { div.line-name { (n) } }
                @if let Some(loc) = line.identity.location_name.as_deref().or(line.identity.location_id.as_deref()) {
                    div.line-loc { (loc) }
                }
                @if let Some(number) = line.identity.phone_number.as_deref().or(line.identity.extension.as_deref()) {
                    div.line-loc { (number) }
                }
                div.id { (line.id) }
            }
            td { span class={ "b " (status) } { (status) } }
            td { (settings(line.settings.as_ref())) }
            td {
                @if let (true, Some(e)) = (unread, &line.error) {
                    div {
                        span class="b error" { (e.kind.as_str()) @if let Some(h) = e.http_status { " " (h) } }
                        " " span.msg { (e.message) }
                    }
                    @if let Some(t) = &e.tracking_id { div.tally { "tracking ID " code { (t) } } }
                    div.tally { "every rule: error (not read, never a pass)" }
                } @else {
                    @if !shown.is_empty() { ul.res {
                        @for (f, rule, waiver) in &shown {
                            li {
                                @if f.status == RuleStatus::Fail {
                                    span class={ "sev " (rule.severity.as_str()) } { (rule.severity.as_str()) }
                                } @else {
                                    span class={ "b " (f.status.as_str()) } { (f.status.as_str()) }
                                }
                                " " code { (rule.id) }
                                @if let Some(m) = &f.message { " " span.msg { (m) } }
                                @if let Some(c) = f.change.filter(|c| matches!(c, crate::model::Change::Regressed | crate::model::Change::New)) {
                                    " " span class={ "b " (c.as_str()) } { (c.as_str()) }
                                }
                                @if let Some(w) = waiver {
                                    span.waiver {
                                        @if f.status == RuleStatus::Waived { "waived until " } @else { "waiver expired " }
                                        (w.expires) ": " (w.reason)
                                    }
                                }
                            }
                        }
                    } }
                    div.tally {
                        (tally[0]) " pass"
                        @if tally[1] > 0 { " · " (tally[1]) " fail" }
                        @if tally[2] > 0 { " · " (tally[2]) " waived" }
                        @if tally[3] > 0 { " · " (tally[3]) " n/a" }
                        @if tally[4] > 0 { " · " (tally[4]) " error" }
                    }
                }
            }
        }
    })
}

/// A member as the page names it: its name (`displayName`, else `firstName
/// lastName`), else its e-mail, else its ID, plus its type when it is not a person.
fn member_label(m: &Value) -> String {
    let full = format_member(m);
    // `Name <email>` -> `Name`: the page is for reading, the tables keep the e-mail.
    let name = match full.rfind(" <") {
        Some(i) if full.ends_with('>') => full[..i].to_string(),
        _ => full,
    };
    match m.get("type").and_then(Value::as_str) {
        Some(t) if t != "PEOPLE" => format!("{name} ({t})"),
        _ => name,
    }
}

/// The settings cell: the three documented scalars, then the members.
fn settings(s: Option<&Value>) -> Markup {
    let Some(s) = s else {
        return html! { span.tally { "not read" } };
    };
    let text = |key: &str| match s.get(key) {
        None | Some(Value::Null) => "—".to_string(),
        Some(Value::String(v)) => v.clone(),
        Some(other) => other.to_string(),
    };
    let auto = match s.get("allowAutoAnswer") {
        Some(Value::Bool(true)) => "auto-answer on".to_string(),
        Some(Value::Bool(false)) => "auto-answer off".to_string(),
        other => format!(
            "auto-answer {}",
            other.map_or("—".to_string(), Value::to_string)
        ),
    };
    let members: &[Value] = match s.get("members") {
        Some(Value::Array(a)) => a,
        _ => &[],
    };
    html! {
        div.settings { (text("connectionType")) " · " (text("accessType")) " · " (auto) }
        div.members {
            @if members.is_empty() {
                "no members"
            } @else {
                (members.len()) @if members.len() == 1 { " member: " } @else { " members: " }
                @for (i, m) in members.iter().take(MEMBERS_SHOWN).enumerate() {
                    @if i > 0 { "; " }
                    (member_label(m))
                }
                @if members.len() > MEMBERS_SHOWN { "; and " (members.len() - MEMBERS_SHOWN) " more" }
            }
        }
    }
}
