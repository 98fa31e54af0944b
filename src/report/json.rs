//! `STEM.json` (`CONTRACT.md` §6).
//!
//! The contract puts `lines` last, after `summary`, which is known only at the end.
//! So each line object is written, one per text line, to a hidden spool file
//! (`.STEM.json.lines.tmp`) as it arrives; [`finish`](ReportWriter::finish) writes the
//! header keys pretty-printed in contract order, then `"lines": [`, copies the spool,
//! and closes the array and the object. Memory holds one line at a time.
//!
//! Extra keys (allowed by the contract, never renamed): `rules[].enabled`,
//! `description`, `remediation`, `references`; `lines[].name` (the input's name, or
//! null); `results[].waiver` (`{reason, expires, state}`, only when a waiver matched).

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::atomic::{temp_name, AtomicFile, TempFile};
use super::naming::file_name;
use super::{
    effective_findings, rfc3339, ReportError, ReportWriter, RunEnd, RunMeta, Summary, WaiverState,
};
use crate::model::{Change, LineError, LineReport, LineStatus, RuleStatus, Severity};
use crate::policy::PolicySet;

/// The `schema_version` this writer produces.
pub const SCHEMA_VERSION: u32 = 1;

/// Streaming writer of `STEM.json`.
#[derive(Debug)]
pub struct JsonWriter {
    /// The final file, created (empty) at the start so that its name is reserved.
    out: AtomicFile,
    /// Line objects so far, comma-separated.
    spool: TempFile,
    lines_written: u64,
    meta: RunMeta,
    policies: Arc<PolicySet>,
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
}

#[derive(Serialize)]
struct JsonResult<'a> {
    rule_id: &'a str,
    status: RuleStatus,
    severity: Severity,
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    waiver: Option<JsonWaiver<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    change: Option<Change>,
}

#[derive(Serialize)]
struct JsonWaiver<'a> {
    reason: &'a str,
    expires: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<WaiverState>,
}

impl JsonWriter {
    /// Opens `dir/.STEM.json.tmp` and the spool `dir/.STEM.json.lines.tmp`.
    pub fn create(
        dir: &Path,
        stem: &str,
        meta: RunMeta,
        policies: Arc<PolicySet>,
    ) -> Result<JsonWriter, ReportError> {
        let out = AtomicFile::create(dir, &file_name(stem, ".json"))?;
        let spool = TempFile::create_new(dir.join(temp_name(&file_name(stem, ".json.lines"))))?;
        Ok(JsonWriter {
            out,
            spool,
            lines_written: 0,
            meta,
            policies,
        })
    }

    fn header(
        &self,
        summary: &Summary,
        end: &RunEnd,
        waivers: &[WaiverState],
    ) -> Result<Map<String, Value>, ReportError> {
        let p = &*self.policies;
        let json_err = |source| ReportError::Json {
            path: self.out.final_path().to_path_buf(),
            source,
        };
        let rules: Vec<Value> = p
            .rules
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "title": r.title,
                    "severity": r.severity,
                    "enabled": r.enabled,
                    "description": r.description,
                    "remediation": r.remediation,
                    "references": r.references,
                })
            })
            .collect();
        let waivers: Vec<Value> = p
            .waivers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let state = waivers.get(i).copied().unwrap_or(WaiverState::Unused);
                json!({
                    "rule": w.rule,
                    "line": w.line,
                    "reason": w.reason,
                    "expires": w.expires.format("%Y-%m-%d").to_string(),
                    "state": state,
                })
            })
            .collect();
        let mut h = Map::new();
        h.insert("schema_version".into(), json!(SCHEMA_VERSION));
        h.insert(
            "tool".into(),
            json!({"name": "ptt-audit", "version": self.meta.tool_version}),
        );
        h.insert(
            "run".into(),
            json!({
                "id": self.meta.run_id,
                "started_at": rfc3339(&self.meta.started_at),
                "finished_at": rfc3339(&end.finished_at),
                "org_id": self.meta.org_id,
                "base_url": self.meta.base_url,
                "complete": end.complete,
                "exit_code": end.exit_code,
                "policies": p.sources,
            }),
        );
        h.insert(
            "summary".into(),
            serde_json::to_value(summary).map_err(json_err)?,
        );
        h.insert("rules".into(), Value::Array(rules));
        h.insert("waivers".into(), Value::Array(waivers));
        Ok(h)
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
            });
            results.push(JsonResult {
                rule_id: &rule.id,
                status: f.status,
                severity: rule.severity,
                message: f.message.clone(),
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
            name: line.name.as_deref(),
        };
        let sep: &[u8] = if self.lines_written == 0 {
            b"\n    "
        } else {
            b",\n    "
        };
        let path = self.spool.path().to_path_buf();
        self.spool
            .write_all(sep)
            .map_err(|source| ReportError::Io {
                path: path.clone(),
                source,
            })?;
        serde_json::to_writer(&mut self.spool, &obj)
            .map_err(|source| ReportError::Json { path, source })?;
        self.lines_written += 1;
        Ok(())
    }

    fn finish(
        mut self: Box<Self>,
        summary: &Summary,
        end: &RunEnd,
        waivers: &[WaiverState],
    ) -> Result<Vec<super::atomic::Sealed>, ReportError> {
        let header = self.header(summary, end, waivers)?;
        let out_path = self.out.temp_path().to_path_buf();
        let io_err = |source| ReportError::Io {
            path: out_path.clone(),
            source,
        };
        let mut head = serde_json::to_vec_pretty(&Value::Object(header)).map_err(|source| {
            ReportError::Json {
                path: out_path.clone(),
                source,
            }
        })?;
        // Reopen the pretty-printed object to append `lines` as its last key: drop the
        // closing brace (and the newline before it).
        if let Some(pos) = head.iter().rposition(|&b| b == b'}') {
            head.truncate(pos);
        }
        while head.last().is_some_and(|b| b.is_ascii_whitespace()) {
            head.pop();
        }
        let this = &mut *self;
        this.out.write_all(&head).map_err(io_err)?;
        this.out.write_all(b",\n  \"lines\": [").map_err(io_err)?;
        let mut reader = this.spool.reader()?;
        io::copy(&mut reader, &mut this.out).map_err(io_err)?;
        drop(reader);
        let close: &[u8] = if this.lines_written == 0 {
            b"]\n}\n"
        } else {
            b"\n  ]\n}\n"
        };
        this.out.write_all(close).map_err(io_err)?;
        let JsonWriter { out, spool, .. } = *self;
        let sealed = out.seal()?;
        drop(spool);
        Ok(vec![sealed])
    }
}
