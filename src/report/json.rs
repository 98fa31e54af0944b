//! `STEM.json` (`CONTRACT.md` §6).
//!
//! The contract puts `lines` last, after `summary`, which is known only at the end.
//! So each line object is written, compact and one per text line, to a hidden spool
//! file (`.STEM.json.lines.tmp`) as it arrives. [`finish`](ReportWriter::finish)
//! serialises the whole report, pretty-printed in contract order, with `lines` copied
//! from the spool one object at a time, byte for byte as it was written (the spool is
//! this writer's own compact serde output, so it is neither parsed nor checked again):
//! memory holds one line at a time.
//!
//! `lines[].line` is the line's identity (`name`, `location_id`, `location_name`,
//! `phone_number`, `extension`, each a string or null) and `run.discovery` what
//! `--all`'s listing did (null without `--all`), as `CONTRACT.md` §7 says.
//!
//! Extra keys (allowed by the contract, never renamed): `rules[].enabled`,
//! `description`, `remediation`, `references`; `lines[].name` (the line's name, or
//! null: the same as `lines[].line.name`); `results[].waiver` (`{reason, expires,
//! state, ticket, owner, label}`, only when a waiver matched); `waivers[].ticket`,
//! `owner`, `label` (null when not given) and `days_left`; `run.discovery.skipped`;
//! `run.source_report` (`evaluate`, else null); with a previous report,
//! `removed_lines` (before `lines`, which stays last).

use std::io::{self, BufRead, Write};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use super::atomic::{temp_name, AtomicFile, Sealed, TempFile};
use super::format::{Closing, Opening};
use super::naming::file_name;
use super::{
    effective_findings, rfc3339, ReportError, ReportWriter, RunEnd, RunMeta, Summary, WaiverState,
};
use crate::compare::RemovedLine;
use crate::discovery::DiscoveryReport;
use crate::model::{Change, LineError, LineIdentity, LineReport, LineStatus, RuleStatus, Severity};
use crate::policy::{PolicySet, PolicySource, Waiver};

/// The `schema_version` this writer produces.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// Streaming writer of `STEM.json`.
#[derive(Debug)]
pub(crate) struct JsonWriter {
    /// The final file, created (empty) at the start so that its name is reserved.
    out: AtomicFile,
    /// Line objects so far, one per text line.
    spool: TempFile,
    meta: RunMeta,
    policies: Arc<PolicySet>,
}

/// The whole report, keys in contract order.
#[derive(Serialize)]
struct JsonReport<'a> {
    schema_version: u32,
    tool: JsonTool<'a>,
    run: JsonRun<'a>,
    summary: &'a Summary,
    rules: Vec<JsonRule<'a>>,
    waivers: Vec<JsonWaiverEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    removed_lines: Option<&'a [RemovedLine]>,
    /// Always empty: the lines are spliced in from the spool by [`write_report`].
    lines: [(); 0],
}

#[derive(Serialize)]
struct JsonTool<'a> {
    name: &'static str,
    version: &'a str,
}

#[derive(Serialize)]
struct JsonRun<'a> {
    id: &'a str,
    started_at: String,
    finished_at: String,
    org_id: Option<&'a str>,
    base_url: &'a str,
    complete: bool,
    exit_code: i32,
    policies: &'a [PolicySource],
    discovery: Option<&'a DiscoveryReport>,
    source_report: Option<&'a super::SourceReport>,
}

impl<'a> JsonRun<'a> {
    fn new(meta: &'a RunMeta, end: &'a RunEnd, policies: &'a PolicySet) -> JsonRun<'a> {
        JsonRun {
            id: &meta.run_id,
            started_at: rfc3339(&meta.started_at),
            finished_at: rfc3339(&end.finished_at),
            org_id: meta.org_id.as_deref(),
            base_url: &meta.base_url,
            complete: end.complete,
            exit_code: end.exit_code,
            policies: &policies.sources,
            discovery: end.discovery.as_ref(),
            source_report: meta.source_report.as_ref(),
        }
    }
}

/// The report's `run` object, exactly as the JSON report holds it: for the one-object
/// stdout summary of `--log-format json`.
pub fn run_object(meta: &RunMeta, end: &RunEnd, policies: &PolicySet) -> serde_json::Value {
    serde_json::to_value(JsonRun::new(meta, end, policies)).unwrap_or_default()
}

#[derive(Serialize)]
struct JsonRule<'a> {
    id: &'a str,
    title: &'a str,
    severity: Severity,
    enabled: bool,
    description: Option<&'a str>,
    remediation: Option<&'a str>,
    references: &'a [String],
}

/// An entry of the top-level `waivers`.
#[derive(Serialize)]
struct JsonWaiverEntry<'a> {
    rule: &'a str,
    line: &'a str,
    reason: &'a str,
    expires: String,
    state: WaiverState,
    days_left: i64,
    #[serde(flatten)]
    about: WaiverAbout<'a>,
}

/// A waiver's free-text metadata, null when not given.
#[derive(Serialize)]
struct WaiverAbout<'a> {
    ticket: Option<&'a str>,
    owner: Option<&'a str>,
    label: Option<&'a str>,
}

impl<'a> WaiverAbout<'a> {
    fn of(w: &'a Waiver) -> Self {
        WaiverAbout {
            ticket: w.ticket.as_deref(),
            owner: w.owner.as_deref(),
            label: w.label.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    id: &'a str,
    status: LineStatus,
    read_at: Option<String>,
    settings: Option<&'a Value>,
    results: Vec<JsonResult<'a>>,
    error: Option<&'a LineError>,
    name: Option<&'a str>,
    line: &'a LineIdentity,
}

#[derive(Serialize)]
struct JsonResult<'a> {
    rule_id: &'a str,
    status: RuleStatus,
    severity: Severity,
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waiver: Option<JsonWaiver<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    change: Option<Change>,
}

/// A result's `waiver`.
#[derive(Serialize)]
struct JsonWaiver<'a> {
    reason: &'a str,
    expires: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<WaiverState>,
    #[serde(flatten)]
    about: WaiverAbout<'a>,
}

/// How serde_json's pretty printer ends a document whose last key is an empty array.
const EMPTY_LINES_END: &[u8] = b"[]\n}";

/// Writes `head` (a pretty-printed report whose last key, `lines`, is empty) with the
/// spooled line objects spliced into that array, each on its own text line, exactly
/// as serde_json's pretty printer lays out an array of compact raw values. Returns
/// which side failed: `Err(Ok(e))` writing `out`, `Err(Err(e))` reading the spool.
fn write_report(
    out: &mut dyn Write,
    head: &[u8],
    spool: &mut dyn BufRead,
) -> Result<(), Result<io::Error, io::Error>> {
    let Some(prefix) = head.strip_suffix(EMPTY_LINES_END) else {
        return Err(Ok(io::Error::other(
            "the report does not end with its lines array",
        )));
    };
    out.write_all(prefix).map_err(Ok)?;
    out.write_all(b"[").map_err(Ok)?;
    let mut line = Vec::new();
    let mut first = true;
    loop {
        line.clear();
        if spool.read_until(b'\n', &mut line).map_err(Err)? == 0 {
            break;
        }
        let object = line.trim_ascii_end();
        if object.is_empty() {
            continue;
        }
        out.write_all(if first { b"\n    " } else { b",\n    " })
            .map_err(Ok)?;
        out.write_all(object).map_err(Ok)?;
        first = false;
    }
    out.write_all(if first { b"]\n}" } else { b"\n  ]\n}" })
        .map_err(Ok)
}

impl JsonWriter {
    /// Opens `dir/.STEM.json.tmp` and the spool `dir/.STEM.json.lines.tmp`.
    pub(crate) fn create(o: &Opening<'_>) -> Result<JsonWriter, ReportError> {
        let out = AtomicFile::create(o.dir, &file_name(o.stem, ".json"))?;
        let spool = TempFile::create_new(o.dir.join(temp_name(&file_name(o.stem, ".json.lines"))))?;
        Ok(JsonWriter {
            out,
            spool,
            meta: o.meta.clone(),
            policies: Arc::clone(o.policies),
        })
    }
}

impl ReportWriter for JsonWriter {
    fn write_line(&mut self, line: &LineReport) -> Result<(), ReportError> {
        let p = &*self.policies;
        let findings = effective_findings(line, p);
        let mut results = Vec::with_capacity(findings.len());
        for f in findings.iter() {
            let (rule, waiver) = super::resolve(p, line, f)?;
            let waiver = waiver.map(|w| JsonWaiver {
                reason: &w.reason,
                expires: w.expires.format("%Y-%m-%d").to_string(),
                state: match f.status {
                    RuleStatus::Waived => Some(WaiverState::Applied),
                    RuleStatus::Fail => Some(WaiverState::Expired),
                    _ => None,
                },
                about: WaiverAbout::of(w),
            });
            results.push(JsonResult {
                rule_id: &rule.id,
                status: f.status,
                severity: rule.severity,
                message: f.message.as_deref(),
                waiver,
                change: f.change,
            });
        }
        let obj = JsonLine {
            id: &line.id,
            status: line.status,
            read_at: line.read_at.as_ref().map(rfc3339),
            settings: line.settings.as_ref(),
            results,
            error: line.error.as_ref(),
            name: line.name(),
            line: &line.identity,
        };
        let path = self.spool.path().to_path_buf();
        // Compact JSON escapes every newline inside strings, so the spool holds exactly
        // one object per text line.
        serde_json::to_writer(&mut self.spool, &obj).map_err(|source| ReportError::Json {
            path: path.clone(),
            source,
        })?;
        self.spool
            .write_all(b"\n")
            .map_err(|source| ReportError::Io { path, source })
    }

    fn finish(mut self: Box<Self>, closing: &Closing<'_>) -> Result<Vec<Sealed>, ReportError> {
        let (summary, end): (&Summary, _) = (closing.summary, closing.end);
        let this = &mut *self;
        let p = &*this.policies;
        let meta = &this.meta;
        let spool_path = this.spool.path().to_path_buf();
        let out_path = this.out.temp_path().to_path_buf();
        let mut spooled = this.spool.reader()?;
        let report = JsonReport {
            schema_version: SCHEMA_VERSION,
            tool: JsonTool {
                name: "ptt-audit",
                version: &meta.tool_version,
            },
            run: JsonRun::new(meta, end, p),
            summary,
            rules: p
                .rules
                .iter()
                .map(|r| JsonRule {
                    id: &r.id,
                    title: &r.title,
                    severity: r.severity,
                    enabled: r.enabled,
                    description: r.description.as_deref(),
                    remediation: r.remediation.as_deref(),
                    references: &r.references,
                })
                .collect(),
            waivers: p
                .waivers
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let entry = summary.waivers.get(i);
                    JsonWaiverEntry {
                        rule: &w.rule,
                        line: &w.line,
                        reason: &w.reason,
                        expires: w.expires.format("%Y-%m-%d").to_string(),
                        state: entry.map_or(WaiverState::Unused, |e| e.state),
                        days_left: entry.map_or_else(
                            || (w.expires - meta.started_at.date_naive()).num_days(),
                            |e| e.days_left,
                        ),
                        about: WaiverAbout::of(w),
                    }
                })
                .collect(),
            removed_lines: summary
                .changes
                .is_some()
                .then_some(summary.removed_lines.as_slice()),
            lines: [],
        };
        let head = serde_json::to_vec_pretty(&report).map_err(|source| ReportError::Json {
            path: out_path.clone(),
            source,
        })?;
        write_report(&mut this.out, &head, &mut spooled).map_err(|e| match e {
            Ok(source) => ReportError::Io {
                path: out_path.clone(),
                source,
            },
            // The cause is the spool, not the report.
            Err(source) => ReportError::Io {
                path: spool_path,
                source,
            },
        })?;
        drop(spooled);
        this.out
            .write_all(b"\n")
            .map_err(|source| ReportError::Io {
                path: out_path,
                source,
            })?;
        let JsonWriter { out, spool, .. } = *self;
        let sealed = out.seal()?;
        drop(spool);
        Ok(vec![sealed])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Doc {
        before: u8,
        lines: [(); 0],
    }

    fn pretty(spool: &mut dyn BufRead) -> Result<String, Result<io::Error, io::Error>> {
        let head = serde_json::to_vec_pretty(&Doc {
            before: 1,
            lines: [],
        })
        .expect("serialises");
        let mut out = Vec::new();
        write_report(&mut out, &head, spool)?;
        Ok(String::from_utf8(out).expect("UTF-8"))
    }

    #[test]
    fn spooled_lines_stay_compact_inside_the_pretty_document() {
        let mut spool: &[u8] = b"{\"id\":\"a\",\"n\":[1,2]}\n{\"id\":\"b\"}\n";
        let text = pretty(&mut spool).expect("written");
        // Exactly what serde_json's pretty printer makes of the same raw values.
        let raw: Vec<Box<serde_json::value::RawValue>> = vec![
            serde_json::from_str("{\"id\":\"a\",\"n\":[1,2]}").unwrap(),
            serde_json::from_str("{\"id\":\"b\"}").unwrap(),
        ];
        #[derive(Serialize)]
        struct Raw {
            before: u8,
            lines: Vec<Box<serde_json::value::RawValue>>,
        }
        let by_serde = serde_json::to_string_pretty(&Raw {
            before: 1,
            lines: raw,
        })
        .unwrap();
        assert_eq!(text, by_serde);
        assert_eq!(
            text,
            "{\n  \"before\": 1,\n  \"lines\": [\n    {\"id\":\"a\",\"n\":[1,2]},\n    {\"id\":\"b\"}\n  ]\n}"
        );
        let mut empty: &[u8] = b"";
        assert_eq!(
            pretty(&mut empty).expect("written"),
            "{\n  \"before\": 1,\n  \"lines\": []\n}"
        );
    }

    #[test]
    fn a_spool_read_error_is_kept_as_the_io_error() {
        struct Failing;
        impl io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk gone"))
            }
        }
        let mut reader = io::BufReader::new(Failing);
        match pretty(&mut reader) {
            Err(Err(e)) => assert_eq!(e.to_string(), "disk gone"),
            other => panic!("not the spool's error: {other:?}"),
        }
    }
}
