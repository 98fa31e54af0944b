//! The readable summary printed to stdout at the end of a run.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::{Summary, WaiverState};
use crate::model::Severity;
use crate::policy::PolicySet;
use crate::settings::FailOn;

/// Renders the end-of-run summary: lines by status, results by status, the failing
/// rules (most severe first, then most failures), the waivers (expired and unused ones
/// named), the report files, and what the exit code means. Plain ASCII, so cron mail and any terminal show it as is.
pub fn render_summary(
    summary: &Summary,
    policies: &PolicySet,
    paths: &[PathBuf],
    exit_code: i32,
    fail_on: FailOn,
) -> String {
    let mut out = String::new();
    let l = &summary.lines;
    let r = &summary.results;
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(
        out,
        "Lines:   {} total: {} compliant, {} non_compliant, {} error, {} invalid, {} not_audited",
        l.total, l.compliant, l.non_compliant, l.error, l.invalid, l.not_audited
    );
    let _ = writeln!(
        out,
        "Results: {} total: {} pass, {} fail, {} waived, {} not_applicable, {} error",
        r.total(),
        r.pass,
        r.fail,
        r.waived,
        r.not_applicable,
        r.error
    );
    if let Some(c) = &summary.changes {
        let _ = writeln!(
            out,
            "Since the previous report: {} regressed, {} resolved, {} changed, {} new, {} unchanged",
            c.regressed, c.resolved, c.changed, c.new, c.unchanged
        );
    }

    let mut failing: Vec<(Severity, u64, &str, &str)> = summary
        .failing_rules
        .iter()
        .filter_map(|(&i, &n)| {
            policies
                .rules
                .get(i)
                .map(|rule| (rule.severity, n, rule.id.as_str(), rule.title.as_str()))
        })
        .collect();
    failing.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
    out.push('\n');
    if failing.is_empty() {
        out.push_str("No rule failed.\n");
    } else {
        out.push_str("Failing rules (severity, rule, failures, title):\n");
        let id_w = failing.iter().map(|f| f.2.len()).max().unwrap_or(0);
        let n_w = failing
            .iter()
            .map(|f| f.1.to_string().len())
            .max()
            .unwrap_or(1);
        for (sev, n, id, title) in &failing {
            let _ = writeln!(
                out,
                "  {:<8}  {:<id_w$}  {:>n_w$}  {}",
                sev.as_str(),
                id,
                n,
                title
            );
        }
    }

    waivers(&mut out, summary, policies);

    out.push('\n');
    if paths.is_empty() {
        out.push_str("No report files were written.\n");
    } else {
        out.push_str("Reports:\n");
        for p in paths {
            let _ = writeln!(out, "  {}", p.display());
        }
    }

    out.push('\n');
    let not_read = l.error + l.invalid + l.not_audited;
    let meaning = match exit_code {
        0 => format!("all lines were read and no rule failed at or above --fail-on {fail_on}"),
        1 => format!("some rule failed at or above --fail-on {fail_on}"),
        2 => "bad invocation, configuration, policy or credentials; nothing useful was audited"
            .to_string(),
        3 => {
            format!("the audit is incomplete: {not_read} line(s) are error, invalid or not_audited")
        }
        _ => "unexpected exit code".to_string(),
    };
    let _ = writeln!(out, "Exit code {exit_code}: {meaning}.");
    out
}

/// The waivers' fate: counts, then the ones that need a look (expired or unused) with
/// their line's label, ticket and owner.
fn waivers(out: &mut String, summary: &Summary, policies: &PolicySet) {
    if summary.waivers.is_empty() {
        return;
    }
    let count = |state| summary.waivers.iter().filter(|s| **s == state).count();
    let _ = writeln!(
        out,
        "\nWaivers: {} applied, {} unused, {} expired",
        count(WaiverState::Applied),
        count(WaiverState::Unused),
        count(WaiverState::Expired)
    );
    for (w, state) in policies.waivers.iter().zip(&summary.waivers) {
        let state = match state {
            WaiverState::Applied => continue,
            WaiverState::Unused => "unused ",
            WaiverState::Expired => "expired",
        };
        let meta = match w.metadata() {
            m if m.is_empty() => String::new(),
            m => format!("  [{m}]"),
        };
        let _ = writeln!(
            out,
            "  {state}  {} on {}  until {}{meta}",
            w.rule,
            w.line_and_label(),
            w.expires
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policies(rules: &[(&str, &str)]) -> PolicySet {
        let text: String = rules
            .iter()
            .map(|(id, sev)| {
                format!(
                    "[[rule]]\nid = \"{id}\"\ntitle = \"title of {id}\"\nseverity = \"{sev}\"\nrequire = \"true\"\n"
                )
            })
            .collect();
        crate::policy::load_str(std::path::Path::new("p.toml"), &text).expect("test policy loads")
    }

    #[test]
    fn failing_rules_sorted_by_severity_then_count() {
        let policies = policies(&[
            ("A-LOW", "low"),
            ("B-HIGH-FEW", "high"),
            ("C-HIGH-MANY", "high"),
            ("D-CRIT", "critical"),
            ("E-NEVER", "critical"),
        ]);
        let mut s = Summary::default();
        s.failing_rules.insert(0, 50);
        s.failing_rules.insert(1, 2);
        s.failing_rules.insert(2, 7);
        s.failing_rules.insert(3, 1);
        s.lines.total = 3;
        s.lines.not_audited = 1;
        let text = render_summary(
            &s,
            &policies,
            &[PathBuf::from("reports/x.json")],
            3,
            FailOn::Low,
        );
        let pos = |needle: &str| text.find(needle).unwrap_or(usize::MAX);
        assert!(pos("D-CRIT") < pos("C-HIGH-MANY"), "{text}");
        assert!(pos("C-HIGH-MANY") < pos("B-HIGH-FEW"), "{text}");
        assert!(pos("B-HIGH-FEW") < pos("A-LOW"), "{text}");
        assert!(pos("A-LOW") < usize::MAX, "{text}");
        assert!(!text.contains("E-NEVER"), "{text}");
        assert!(text.contains("title of C-HIGH-MANY"), "{text}");
        assert!(text.contains("reports/x.json"), "{text}");
        assert!(
            text.contains("Exit code 3: the audit is incomplete: 1 line(s)"),
            "{text}"
        );
    }

    #[test]
    fn no_failures_and_exit_zero() {
        let policies = policies(&[]);
        let text = render_summary(&Summary::default(), &policies, &[], 0, FailOn::High);
        assert!(text.contains("No rule failed."), "{text}");
        assert!(
            text.contains(
                "Exit code 0: all lines were read and no rule failed at or above --fail-on high."
            ),
            "{text}"
        );
        assert!(text.contains("Lines:   0 total"), "{text}");
    }
}
