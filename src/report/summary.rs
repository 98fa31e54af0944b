//! The readable summary printed to stdout at the end of a run.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::Summary;
use crate::discovery::DiscoveryReport;
use crate::model::Severity;
use crate::policy::PolicySet;

/// Renders the end-of-run summary: lines by status, results by status, the failing
/// rules (most severe first, then most failures), the report files, and what the exit
/// code means. Plain ASCII, so cron mail and any terminal show it as is.
pub fn render_summary(
    summary: &Summary,
    policies: &PolicySet,
    paths: &[PathBuf],
    exit_code: i32,
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

    let spot = &summary.spotlight;
    if !spot.failing.is_empty() {
        let shown = spot.failing.len();
        let failing_lines = l.non_compliant;
        let _ = writeln!(
            out,
            "\nLines with the most severe failures ({shown} of {failing_lines}):"
        );
        let w = spot
            .failing
            .iter()
            .map(|n| n.label.chars().count())
            .max()
            .unwrap_or(0);
        for n in &spot.failing {
            let sev = n.severity.map_or("", Severity::as_str);
            let pad = w - n.label.chars().count();
            let _ = writeln!(
                out,
                "  {sev:<8}  {}{}  {}",
                n.label,
                " ".repeat(pad),
                n.detail
            );
        }
    }
    if !spot.unread.is_empty() {
        let _ = writeln!(
            out,
            "\nLines not read ({} of {}):",
            spot.unread.len(),
            l.error + l.invalid
        );
        for n in &spot.unread {
            let _ = writeln!(out, "  {}: {}", n.label, n.detail);
        }
    }

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
        0 => "all lines were read and no rule failed at or above --fail-on".to_string(),
        1 => "some rule failed at or above --fail-on".to_string(),
        2 => "bad invocation, configuration, policy or credentials; nothing useful was audited"
            .to_string(),
        3 if not_read == 0 => {
            "the audit is incomplete: listing the lines (--all) failed, see above".to_string()
        }
        3 => {
            format!("the audit is incomplete: {not_read} line(s) are error, invalid or not_audited")
        }
        _ => "unexpected exit code".to_string(),
    };
    let _ = writeln!(out, "Exit code {exit_code}: {meaning}.");
    out
}

/// One line for the summary about `--all`'s listing: how many lines on how many
/// pages, or why it stopped early. Printed before [`render_summary`]'s text.
pub fn render_discovery(d: &DiscoveryReport) -> String {
    let scope = match d.location_ids.len() {
        0 => "every location".to_string(),
        1 => "1 location".to_string(),
        n => format!("{n} locations"),
    };
    let pages = match d.pages {
        1 => "1 page".to_string(),
        n => format!("{n} pages"),
    };
    let mut out = match &d.error {
        None if d.listed == 0 => {
            format!(
                "Listed:  no virtual lines ({scope}): the org has none there, nothing to audit.\n"
            )
        }
        None => format!(
            "Listed:  {} virtual lines ({scope}) on {pages}.\n",
            d.listed
        ),
        Some(e) => format!(
            "Listed:  {} virtual lines ({scope}) on {pages}, then listing FAILED: {}\n         \
             The lines listed were audited; the audit is incomplete.\n",
            d.listed, e.message
        ),
    };
    if d.skipped > 0 {
        let _ = writeln!(
            out,
            "         {} listed item(s) had no id and were skipped.",
            d.skipped
        );
    }
    out
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
        let text = render_summary(&s, &policies, &[PathBuf::from("reports/x.json")], 3);
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
    fn discovery_says_what_was_listed_or_why_it_stopped() {
        let mut d = DiscoveryReport {
            all: true,
            location_ids: Vec::new(),
            listed: 250,
            pages: 3,
            complete: true,
            error: None,
            skipped: 0,
        };
        assert_eq!(
            render_discovery(&d),
            "Listed:  250 virtual lines (every location) on 3 pages.\n"
        );
        d.listed = 0;
        d.pages = 1;
        d.location_ids = vec!["L".into()];
        assert!(render_discovery(&d).contains("no virtual lines (1 location)"));
        d.complete = false;
        d.skipped = 2;
        d.error = Some(crate::model::LineError::unrequested(
            crate::model::ErrorKind::Http,
            "listing page 2 failed: HTTP 503",
        ));
        let text = render_discovery(&d);
        assert!(
            text.contains("then listing FAILED: listing page 2 failed"),
            "{text}"
        );
        assert!(text.contains("incomplete"), "{text}");
        assert!(text.contains("2 listed item(s) had no id"), "{text}");
    }

    #[test]
    fn no_failures_and_exit_zero() {
        let policies = policies(&[]);
        let text = render_summary(&Summary::default(), &policies, &[], 0);
        assert!(text.contains("No rule failed."), "{text}");
        assert!(text.contains("Exit code 0: all lines were read"), "{text}");
        assert!(text.contains("Lines:   0 total"), "{text}");
    }
}
