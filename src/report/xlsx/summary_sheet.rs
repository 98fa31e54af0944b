//! The small sheets, made when the run ends: Summary (run facts, counts, failing
//! rules, changes, expiring waivers, removed lines), Rules and Waivers.

use std::borrow::Cow;

use rust_xlsxwriter::{Workbook, Worksheet, XlsxError};

use super::{end_table, new_sheet, put, Styles};
use crate::policy::PolicySet;
use crate::report::columns::Cell;
use crate::report::format::Closing;
use crate::report::summary::{exit_meaning, failing_rules};
use crate::report::RunMeta;

/// What the small sheets are made from.
pub(super) struct Book<'a> {
    pub(super) workbook: &'a mut Workbook,
    pub(super) styles: &'a Styles,
    pub(super) meta: &'a RunMeta,
    pub(super) policies: &'a PolicySet,
    pub(super) closing: &'a Closing<'a>,
    pub(super) warn_expiring_days: u32,
}

/// A sheet written top to bottom (constant-memory sheets cannot go back).
struct Writer<'s> {
    ws: Worksheet,
    row: u32,
    styles: &'s Styles,
}

fn text(s: &str) -> Cell<'_> {
    Cell::Text(Cow::Borrowed(s))
}

fn count(n: u64) -> Cell<'static> {
    Cell::Number(Some(n))
}

impl Writer<'_> {
    fn row(&mut self, cells: &[Cell<'_>]) -> Result<(), XlsxError> {
        for (col, cell) in cells.iter().enumerate() {
            put(&mut self.ws, self.row, col as u16, cell, self.styles)?;
        }
        self.row += 1;
        Ok(())
    }

    fn heading(&mut self, cells: &[&str]) -> Result<(), XlsxError> {
        self.row += 1;
        for (col, c) in cells.iter().enumerate() {
            self.ws
                .write_string_with_format(self.row, col as u16, *c, &self.styles.header)?;
        }
        self.row += 1;
        Ok(())
    }
}

impl Book<'_> {
    /// Summary, Rules and Waivers.
    pub(super) fn sheets(mut self) -> Result<[Worksheet; 3], XlsxError> {
        let summary = self.summary()?;
        let rules = self.rules()?;
        let waivers = self.waivers()?;
        Ok([summary, rules, waivers])
    }

    fn summary(&mut self) -> Result<Worksheet, XlsxError> {
        let (styles, meta, closing) = (self.styles, self.meta, self.closing);
        let (summary, end) = (closing.summary, closing.end);
        let mut ws = self.workbook.new_worksheet_with_constant_memory()?;
        ws.set_name("Summary")?;
        for (col, width) in [30.0, 48.0, 48.0, 12.0].into_iter().enumerate() {
            ws.set_column_width(col as u16, width)?;
        }
        ws.write_string_with_format(0, 0, "Push-to-Talk audit", &styles.title)?;
        let verdict = format!(
            "Exit code {}: {}.",
            end.exit_code,
            exit_meaning(end.exit_code, summary, None)
        );
        ws.write_string_with_format(1, 0, &verdict, &styles.bold)?;
        let mut w = Writer { ws, row: 2, styles };

        w.heading(&["Run", ""])?;
        w.row(&[text("Run ID"), text(&meta.run_id)])?;
        w.row(&[text("Started (UTC)"), Cell::Time(Some(meta.started_at))])?;
        w.row(&[text("Finished (UTC)"), Cell::Time(Some(end.finished_at))])?;
        w.row(&[text("Org ID"), text(meta.org_id.as_deref().unwrap_or(""))])?;
        w.row(&[text("Base URL"), text(&meta.base_url)])?;
        w.row(&[
            text("Complete"),
            text(if end.complete { "yes" } else { "no" }),
        ])?;
        w.row(&[text("Exit code"), count(end.exit_code.max(0) as u64)])?;
        w.row(&[text("ptt-audit version"), text(&meta.tool_version)])?;
        if let Some(src) = &meta.source_report {
            w.row(&[text("Re-evaluated from"), text(&src.path)])?;
            w.row(&[text("Its run ID"), text(&src.run_id)])?;
            w.row(&[text("Its start (UTC)"), Cell::Time(Some(src.started_at))])?;
        }
        for p in &self.policies.sources {
            w.row(&[text("Policy file"), text(&p.path), text(&p.sha256)])?;
        }

        let l = &summary.lines;
        w.heading(&["Lines", "Count"])?;
        for (label, n) in [
            ("compliant", l.compliant),
            ("non_compliant", l.non_compliant),
            ("error", l.error),
            ("invalid", l.invalid),
            ("not_audited", l.not_audited),
        ] {
            w.row(&[Cell::Label(label), count(n)])?;
        }
        w.row(&[text("total"), count(l.total)])?;

        let r = &summary.results;
        w.heading(&["Results", "Count"])?;
        for (label, n) in [
            ("pass", r.pass),
            ("fail", r.fail),
            ("waived", r.waived),
            ("not_applicable", r.not_applicable),
            ("error", r.error),
        ] {
            w.row(&[Cell::Label(label), count(n)])?;
        }
        w.row(&[text("total"), count(r.total())])?;

        let s = &summary.fail_by_severity;
        w.heading(&["Failures by severity", "Count"])?;
        for (label, n) in [
            ("critical", s.critical),
            ("high", s.high),
            ("medium", s.medium),
            ("low", s.low),
        ] {
            w.row(&[Cell::Label(label), count(n)])?;
        }

        let failing = failing_rules(summary, self.policies);
        w.heading(&["Failing rules", "Title", "Rule", "Failures"])?;
        if failing.is_empty() {
            w.row(&[text("No rule failed.")])?;
        }
        for (n, rule) in failing {
            w.row(&[
                Cell::Label(rule.severity.as_str()),
                text(&rule.title),
                text(&rule.id),
                count(n),
            ])?;
        }

        if let Some(c) = &summary.changes {
            let r = &c.results;
            w.heading(&["Changes since the previous report", "Count"])?;
            for (label, n) in [
                ("regressed", r.regressed),
                ("resolved", r.resolved),
                ("changed", r.changed),
                ("new", r.new),
            ] {
                w.row(&[Cell::Label(label), count(n)])?;
            }
            w.row(&[text("unchanged"), count(r.unchanged)])?;
            w.row(&[text("lines added"), count(c.lines_added)])?;
            w.row(&[text("lines removed"), count(c.lines_removed)])?;
        }

        let days = self.warn_expiring_days;
        let title = format!("Waivers expiring within {days} days");
        w.heading(&[&title, "Reason", "Line", "Days left"])?;
        let mut any = false;
        for e in summary.waivers.iter().filter(|e| e.expires_within(days)) {
            if let Some(wv) = self.policies.waivers.get(e.index) {
                any = true;
                w.row(&[
                    text(&wv.rule),
                    text(&wv.reason),
                    text(&wv.line),
                    count(e.days_left as u64),
                ])?;
            }
        }
        if !any {
            w.row(&[text("none")])?;
        }

        if summary.changes.is_some() {
            w.heading(&["Removed since the previous report", "Name", "Status before"])?;
            if summary.removed_lines.is_empty() {
                w.row(&[text("none")])?;
            }
            for gone in &summary.removed_lines {
                w.row(&[
                    text(&gone.id),
                    text(gone.name.as_deref().unwrap_or("")),
                    Cell::Label(gone.status.map_or("", |s| s.as_str())),
                ])?;
            }
        }
        Ok(w.ws)
    }

    fn rules(&mut self) -> Result<Worksheet, XlsxError> {
        let cols = [
            ("id", 32.0),
            ("title", 48.0),
            ("severity", 10.0),
            ("enabled", 9.0),
            ("failures", 10.0),
            ("description", 50.0),
            ("remediation", 50.0),
            ("references", 40.0),
        ];
        let ws = self.table_sheet("Rules", &cols)?;
        let mut w = Writer {
            ws,
            row: 1,
            styles: self.styles,
        };
        let failing = &self.closing.summary.failing_rules;
        for (i, r) in self.policies.rules.iter().enumerate() {
            let refs = r.references.join("; ");
            w.row(&[
                text(&r.id),
                text(&r.title),
                Cell::Label(r.severity.as_str()),
                text(if r.enabled { "yes" } else { "no" }),
                Cell::Number(r.enabled.then(|| failing.get(&i).copied().unwrap_or(0))),
                text(r.description.as_deref().unwrap_or("")),
                text(r.remediation.as_deref().unwrap_or("")),
                Cell::Text(Cow::Owned(refs)),
            ])?;
        }
        end_table(&mut w.ws, w.row - 1, cols.len())?;
        Ok(w.ws)
    }

    fn waivers(&mut self) -> Result<Worksheet, XlsxError> {
        let cols = [
            ("rule", 32.0),
            ("line", 40.0),
            ("reason", 50.0),
            ("expires", 12.0),
            ("days_left", 10.0),
            ("state", 10.0),
        ];
        let ws = self.table_sheet("Waivers", &cols)?;
        let mut w = Writer {
            ws,
            row: 1,
            styles: self.styles,
        };
        let entries = &self.closing.summary.waivers;
        for (i, wv) in self.policies.waivers.iter().enumerate() {
            let entry = entries.get(i);
            let days_left = entry.map_or(0, |e| e.days_left);
            w.row(&[
                text(&wv.rule),
                text(&wv.line),
                text(&wv.reason),
                Cell::Date(Some(wv.expires)),
            ])?;
            // Days left may be negative (expired), which `Cell::Number` cannot hold;
            // soon-to-expire waivers stand out.
            let row = w.row - 1;
            let soon = entry.is_some_and(|e| e.expires_within(self.warn_expiring_days));
            let style = if soon {
                &self.styles.soon
            } else {
                &self.styles.number
            };
            w.ws.write_number_with_format(row, 4, days_left as f64, style)?;
            put(
                &mut w.ws,
                row,
                5,
                &Cell::Label(entry.map_or("", |e| e.state.as_str())),
                self.styles,
            )?;
        }
        end_table(&mut w.ws, w.row - 1, cols.len())?;
        Ok(w.ws)
    }

    fn table_sheet(&mut self, name: &str, cols: &[(&str, f64)]) -> Result<Worksheet, XlsxError> {
        new_sheet(self.workbook, name, cols, self.styles)
    }
}
