//! `ptt-audit evaluate`: the settings saved in a JSON report, evaluated again against
//! the current policies, with no token and no request (`CONTRACT.md` §9).
//!
//! The saved report is read one line at a time (`saved`) and each line goes through
//! the same report set as an audit's (`job::open_reports`, `job::finish_reports`): the
//! same formats, the same comparison with a previous report, the same exit codes.
//! What the new reports keep of each line: its ID, name, `read_at` and settings (the
//! settings are what is evaluated again); a line that was not read (`error`,
//! `invalid`, `not_audited`) stays exactly as it was, its error included, and is
//! reported with one `error` result per rule, never a pass. Waivers are judged on the
//! day of the re-evaluation.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{NaiveDate, Utc};

use crate::eval;
use crate::exit::UsageError;
use crate::job::{self, Outcome, Progress};
use crate::model::{ErrorKind, LineError, LineReport, LineStatus};
use crate::policy::PolicySet;
use crate::report::{RunMeta, SourceReport};
use crate::saved::{self, SavedLine};
use crate::settings::ReportSettings;
use crate::webex::Stop;

/// What `ptt-audit evaluate` takes.
#[derive(Debug, Clone)]
pub struct EvaluateSettings {
    /// The saved `STEM.json` to re-evaluate.
    pub from: PathBuf,
    /// Where and how to write the new reports.
    pub report: ReportSettings,
}

/// Re-evaluates the report `settings.from` against `policies` and writes a new report
/// set. Blocking (it reads and writes files only): run it off the async threads.
///
/// A report that cannot be used (missing, truncated, not a report, another schema
/// version) is an error naming the file, before any report is created. When `stop` is
/// triggered, the lines not yet evaluated are reported `not_audited`, as an
/// interrupted audit's are.
pub fn run(
    settings: &EvaluateSettings,
    policies: Arc<PolicySet>,
    stop: &Stop,
    progress: &Progress,
) -> anyhow::Result<Outcome> {
    let from = &settings.from;
    let header = saved::read_header(from).map_err(UsageError::from)?;
    progress.set_total(header.lines);
    let started_at = Utc::now();
    let today = started_at.date_naive();
    let meta = RunMeta {
        run_id: uuid::Uuid::new_v4().to_string(),
        started_at,
        org_id: header.run.org_id.clone(),
        base_url: header.run.base_url.clone(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        source_report: Some(SourceReport {
            path: from.display().to_string(),
            run_id: header.run.id.clone(),
            started_at: header.run.started_at,
        }),
    };
    let mut reports = job::open_reports(&settings.report, meta.clone(), &policies)?;
    tracing::info!(
        from = %from.display(),
        lines = header.lines,
        rules = policies.rules.len(),
        "re-evaluation started"
    );
    let mut index = 0;
    saved::for_each_line(from, |line: SavedLine| -> anyhow::Result<()> {
        let report = match stop.reason() {
            None => reevaluate(index, line, &policies, today),
            Some(_) => interrupted(index, line),
        };
        reports.write(report).context("cannot write the reports")?;
        progress.advance();
        index += 1;
        Ok(())
    })?;
    let stopped = stop.reason();
    // Nothing is listed: the saved lines are all there is.
    let (exit, end, summary, paths) =
        job::finish_reports(reports, settings.report.fail_on, stopped, None)?;
    tracing::info!(exit_code = exit.code(), "re-evaluation finished");
    Ok(Outcome {
        run: crate::report::run_object(&meta, &end, &policies),
        fail_on: settings.report.fail_on,
        summary,
        paths,
        exit,
        stopped,
        all_not_found: false,
        discovery: None,
        auth_failure: None,
    })
}

/// One saved line as the new report has it.
fn reevaluate(
    index: usize,
    mut line: SavedLine,
    policies: &PolicySet,
    today: NaiveDate,
) -> LineReport {
    let identity = line.identity();
    match line.settings {
        Some(settings) if !settings.is_null() => {
            let at = eval::LineRef {
                id: &line.id,
                identity: &identity,
            };
            let findings = eval::evaluate_line(policies, at, &settings, today);
            LineReport {
                index,
                status: LineReport::status_from_findings(&findings),
                findings,
                id: line.id,
                identity: identity.clone(),
                read_at: line.read_at,
                settings: Some(settings),
                error: None,
            }
        }
        _ => {
            let (status, error) = match (line.status, line.error) {
                // Never read: kept as it was.
                (
                    status @ (LineStatus::Error | LineStatus::Invalid | LineStatus::NotAudited),
                    Some(e),
                ) => (status, e),
                // Read, the report says, but its settings are not in it.
                _ => (
                    LineStatus::Error,
                    LineError::unrequested(
                        ErrorKind::Decode,
                        "the saved report holds no settings for this line: it cannot be \
                         evaluated again (audit it again)",
                    ),
                ),
            };
            LineReport {
                index,
                id: line.id,
                identity,
                status,
                read_at: line.read_at,
                settings: None,
                findings: Vec::new(),
                error: Some(error),
            }
        }
    }
}

/// A line the re-evaluation did not get to before an interrupt.
fn interrupted(index: usize, mut line: SavedLine) -> LineReport {
    LineReport {
        index,
        identity: line.identity(),
        id: line.id,
        status: LineStatus::NotAudited,
        read_at: None,
        settings: None,
        findings: Vec::new(),
        error: Some(LineError::unrequested(
            ErrorKind::NotAudited,
            "not evaluated: the re-evaluation was interrupted before this line",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RuleStatus;

    fn policies() -> PolicySet {
        crate::policy::load_str(
            std::path::Path::new("t.toml"),
            "[[rule]]\nid = \"ONE-WAY\"\ntitle = \"t\"\nseverity = \"high\"\n\
             require = \"connectionType == 'ONE_WAY'\"\n",
        )
        .expect("loads")
    }

    fn saved(json: serde_json::Value) -> SavedLine {
        serde_json::from_value(json).expect("a saved line")
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 29).expect("a day")
    }

    #[test]
    fn a_read_line_is_evaluated_again_and_keeps_read_at_and_name() {
        let line = saved(serde_json::json!({
            "id": "L1", "status": "compliant", "read_at": "2026-11-01T10:00:00Z",
            "settings": {"connectionType": "TWO_WAY"},
            "line": {"name": "Lobby", "location_id": null, "location_name": "HQ",
                     "phone_number": null, "extension": "2002"}, "results": []}));
        let r = reevaluate(4, line, &policies(), today());
        assert_eq!((r.index, r.status), (4, LineStatus::NonCompliant));
        assert_eq!(r.findings[0].status, RuleStatus::Fail);
        assert_eq!(r.name(), Some("Lobby"));
        // The whole identity is kept, not only the name.
        assert_eq!(r.identity.location_name.as_deref(), Some("HQ"));
        assert_eq!(r.identity.extension.as_deref(), Some("2002"));
        assert_eq!(
            r.read_at.map(|t| t.to_rfc3339()),
            Some("2026-11-01T10:00:00+00:00".into())
        );
    }

    #[test]
    fn an_unread_line_stays_as_it_was() {
        let error = serde_json::json!({"kind": "http", "http_status": 404, "message": "gone",
                                       "tracking_id": "T", "attempts": 1});
        let line = saved(serde_json::json!({
            "id": "L2", "status": "error", "read_at": null, "settings": null, "error": error}));
        let r = reevaluate(0, line, &policies(), today());
        assert_eq!(r.status, LineStatus::Error);
        assert_eq!(serde_json::to_value(&r.error).expect("json"), error);
        assert!(
            r.findings.is_empty(),
            "reported as one error per rule, never a pass"
        );
    }

    #[test]
    fn a_read_line_without_its_settings_is_an_error_not_a_pass() {
        let line = saved(serde_json::json!({"id": "L3", "status": "compliant", "settings": null}));
        let r = reevaluate(0, line, &policies(), today());
        assert_eq!(r.status, LineStatus::Error);
        let e = r.error.expect("an error");
        assert_eq!(e.kind, ErrorKind::Decode);
        assert!(e.message.contains("no settings"), "{}", e.message);
        let stopped = interrupted(
            1,
            saved(serde_json::json!({"id": "L4", "status": "compliant"})),
        );
        assert_eq!(stopped.status, LineStatus::NotAudited);
    }
}
