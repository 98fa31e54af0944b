//! The readable summary printed to stdout at the end of a run.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::{Summary, WaiverState};
use crate::discovery::DiscoveryReport;
use crate::model::Severity;
use crate::policy::{PolicySet, Rule};
use crate::settings::FailOn;

/// How many removed lines the summary names before it says "and N more".
const REMOVED_SHOWN: usize = 10;

/// Renders the end-of-run summary: lines by status, results by status, changes since
/// the previous report (with the removed lines), the failing rules (most severe first,
/// then most failures), the waivers (expired and unused ones named, and those that
/// expire within `warn_expiring_days`), the report files, and what the exit code means
/// (with the `--fail-on` level it was judged by). Plain text, so cron mail and any
/// terminal show it as is.
pub fn render_summary(
    summary: &Summary,
    policies: &PolicySet,
    paths: &[PathBuf],
    exit_code: i32,
    fail_on: FailOn,
    warn_expiring_days: u32,
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
        let r = &c.results;
        let _ = writeln!(
            out,
            "Since the previous report: {} regressed, {} resolved, {} changed, {} new, {} unchanged; \
             {} line(s) added, {} removed",
            r.regressed, r.resolved, r.changed, r.new, r.unchanged, c.lines_added, c.lines_removed
        );
        for gone in summary.removed_lines.iter().take(REMOVED_SHOWN) {
            let status = gone.status.map_or("status unknown", |s| s.as_str());
            match &gone.name {
                Some(name) => {
                    let _ = writeln!(out, "  removed: {} ({name}), was {status}", gone.id);
                }
                None => {
                    let _ = writeln!(out, "  removed: {}, was {status}", gone.id);
                }
            }
        }
        if summary.removed_lines.len() > REMOVED_SHOWN {
            let _ = writeln!(
                out,
                "  and {} more removed line(s): see `removed_lines` in the JSON report",
                summary.removed_lines.len() - REMOVED_SHOWN
            );
        }
    }

    let failing: Vec<(Severity, u64, &str, &str)> = failing_rules(summary, policies)
        .into_iter()
        .map(|(n, rule)| (rule.severity, n, rule.id.as_str(), rule.title.as_str()))
        .collect();
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
    waivers(&mut out, summary, policies);
    let expiring: Vec<_> = summary
        .waivers
        .iter()
        .filter(|w| w.expires_within(warn_expiring_days))
        .filter_map(|e| policies.waivers.get(e.index).map(|w| (e, w)))
        .collect();
    if !expiring.is_empty() {
        let _ = writeln!(
            out,
            "\nWaivers expiring within {warn_expiring_days} days (--warn-expiring):"
        );
        for (e, w) in expiring {
            let left = match e.days_left {
                0 => "last day today".to_string(),
                1 => "1 day left".to_string(),
                n => format!("{n} days left"),
            };
            let _ = writeln!(
                out,
                "  {} on {}: expires {} ({left}, {}): {}",
                w.rule,
                w.line,
                w.expires,
                e.state.as_str(),
                w.reason
            );
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
    let meaning = exit_meaning(exit_code, summary, Some(fail_on));
    let _ = writeln!(out, "Exit code {exit_code}: {meaning}.");
    out
}

/// The rules that failed with their number of failures: most severe first, then most
/// failures, then by ID.
pub(crate) fn failing_rules<'p>(
    summary: &Summary,
    policies: &'p PolicySet,
) -> Vec<(u64, &'p Rule)> {
    let mut failing: Vec<(u64, &Rule)> = summary
        .failing_rules
        .iter()
        .filter_map(|(&i, &n)| policies.rules.get(i).map(|rule| (n, rule)))
        .collect();
    failing.sort_by(|a, b| {
        b.1.severity
            .cmp(&a.1.severity)
            .then(b.0.cmp(&a.0))
            .then(a.1.id.cmp(&b.1.id))
    });
    failing
}

/// What an exit code means for this run, as a sentence without the final stop.
pub(crate) fn exit_meaning(exit_code: i32, summary: &Summary, fail_on: Option<FailOn>) -> String {
    let fail_on = match fail_on {
        Some(level) => format!("--fail-on {level}"),
        None => "--fail-on".to_string(),
    };
    let l = &summary.lines;
    let not_read = l.error + l.invalid + l.not_audited;
    match exit_code {
        0 => format!("all lines were read and no rule failed at or above {fail_on}"),
        1 => format!("some rule failed at or above {fail_on}"),
        2 => "bad invocation, configuration, policy or credentials; nothing useful was audited"
            .to_string(),
        3 if not_read == 0 => {
            "the audit is incomplete: listing the lines (--all) failed, see above".to_string()
        }
        3 => {
            format!("the audit is incomplete: {not_read} line(s) are error, invalid or not_audited")
        }
        _ => "unexpected exit code".to_string(),
    }
}

/// The waivers' fate: counts, then the ones that need a look (expired or unused) with
/// their line's label, ticket and owner.
fn waivers(out: &mut String, summary: &Summary, policies: &PolicySet) {
    if summary.waivers.is_empty() {
        return;
    }
    let count = |state| summary.waivers.iter().filter(|e| e.state == state).count();
    let _ = writeln!(
        out,
        "\nWaivers: {} applied, {} unused, {} expired",
        count(WaiverState::Applied),
        count(WaiverState::Unused),
        count(WaiverState::Expired)
    );
    for entry in &summary.waivers {
        let Some(w) = policies.waivers.get(entry.index) else {
            continue;
        };
        let state = match entry.state {
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
        let text = render_summary(
            &s,
            &policies,
            &[PathBuf::from("reports/x.json")],
            3,
            FailOn::Low,
            14,
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
        let text = render_summary(&Summary::default(), &policies, &[], 0, FailOn::High, 14);
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
