//! The report formats against the contract (`CONTRACT.md` §6).

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::common::{self, names_in, read_csv};

use ptt_audit::model::{
    ErrorKind, Finding, LineError, LineIdentity, LineReport, LineStatus, RuleStatus, Severity,
};
use ptt_audit::policy::PolicySet;
use ptt_audit::report::{
    csv::{FINDINGS_HEADER, LINES_HEADER},
    neutralise, Format, Reports, RunEnd, RunMeta,
};

const STEM: &str = "ptt-audit-20261129T032056Z";

const POLICY: &str = r#"
[[rule]]
id = "PTT-A"
title = "Title of PTT-A"
severity = "high"
require = "true"
description = "why"
remediation = "fix PTT-A"

[[rule]]
id = "PTT-OFF"
title = "Title of PTT-OFF"
severity = "low"
require = "true"
description = "why"
remediation = "fix PTT-OFF"
enabled = false

[[rule]]
id = "PTT-C"
title = "Title of PTT-C"
severity = "critical"
require = "true"
description = "why"
remediation = "fix PTT-C"

[[waiver]]
rule = "PTT-A"
line = "L2"
reason = "approved for L2"
expires = 2027-01-31

[[waiver]]
rule = "PTT-C"
line = "L3"
reason = "approved for L3"
expires = 2025-01-01

[[waiver]]
rule = "PTT-C"
line = "nobody"
reason = "approved for nobody"
expires = 2027-01-01
"#;

/// Rules 0 and 2 enabled (high, critical), rule 1 disabled; waiver 0 applies to L2,
/// waiver 1 is expired on L3, waiver 2 matches nothing.
fn policies() -> Arc<PolicySet> {
    Arc::new(
        ptt_audit::policy::load_str(std::path::Path::new("policies/baseline.toml"), POLICY)
            .expect("test policy loads"),
    )
}

fn meta() -> RunMeta {
    RunMeta {
        run_id: "run-1".into(),
        started_at: Utc.with_ymd_and_hms(2026, 11, 29, 3, 20, 56).unwrap(),
        org_id: Some("ORG".into()),
        base_url: "http://127.0.0.1:9/v1".into(),
        tool_version: "0.1.0".into(),
        source_report: None,
    }
}

fn end(exit_code: i32) -> RunEnd {
    RunEnd {
        finished_at: Utc.with_ymd_and_hms(2026, 11, 29, 3, 21, 0).unwrap(),
        complete: true,
        exit_code,
        discovery: None,
    }
}

/// An identity with only a name.
fn named(name: &str) -> Arc<LineIdentity> {
    Arc::new(LineIdentity {
        name: Some(name.into()),
        ..LineIdentity::default()
    })
}

fn finding(
    rule: usize,
    status: RuleStatus,
    message: Option<&str>,
    waiver: Option<usize>,
) -> Finding {
    Finding {
        rule,
        status,
        message: message.map(str::to_string),
        waiver,
        change: None,
    }
}

fn read_line(index: usize, id: &str, findings: Vec<Finding>, settings: Value) -> LineReport {
    LineReport {
        index,
        id: id.into(),
        identity: LineIdentity::unknown(),
        status: LineReport::status_from_findings(&findings),
        read_at: Some(Utc.with_ymd_and_hms(2026, 11, 29, 3, 20, 57).unwrap()),
        settings: Some(settings),
        findings,
        error: None,
    }
}

fn unread_line(index: usize, id: &str, status: LineStatus, error: Option<LineError>) -> LineReport {
    LineReport {
        index,
        id: id.into(),
        identity: LineIdentity::unknown(),
        status,
        read_at: None,
        settings: None,
        findings: vec![],
        error,
    }
}

/// L1 compliant, L2 waived + pass, L3 fail (expired waiver) + fail, L4 http 404, L5 invalid.
fn sample_lines() -> Vec<LineReport> {
    let mut l1 = read_line(
        0,
        "L1",
        vec![
            finding(0, RuleStatus::Pass, None, None),
            finding(2, RuleStatus::NotApplicable, None, None),
        ],
        json!({"allowAutoAnswer": true, "connectionType": "ONE_WAY", "accessType": "ALLOW_MEMBERS"}),
    );
    l1.identity = named("Lobby");
    let l2 = read_line(
        1,
        "L2",
        vec![
            finding(0, RuleStatus::Waived, Some("open"), Some(0)),
            finding(2, RuleStatus::Pass, None, None),
        ],
        json!({"allowAutoAnswer": false, "connectionType": "TWO_WAY", "accessType": "BLOCK_MEMBERS",
               "members": [{"id": "p1", "displayName": "Alice Little", "email": "alice@example.com"},
                           {"id": "p2", "firstName": "Bob", "lastName": "Johnson"}]}),
    );
    let l3 = read_line(
        2,
        "L3",
        vec![
            finding(0, RuleStatus::Fail, Some("access is BLOCK_MEMBERS"), None),
            finding(2, RuleStatus::Fail, Some("auto answer on"), Some(1)),
        ],
        json!({"allowAutoAnswer": true, "connectionType": "TWO_WAY", "accessType": "BLOCK_MEMBERS",
               "members": []}),
    );
    let l4 = unread_line(
        3,
        "L4",
        LineStatus::Error,
        Some(LineError {
            kind: ErrorKind::Http,
            http_status: Some(404),
            message: "HTTP 404: no such line".into(),
            tracking_id: Some("TRK_1".into()),
            attempts: 1,
        }),
    );
    let l5 = unread_line(
        4,
        "bad id",
        LineStatus::Invalid,
        Some(LineError::unrequested(
            ErrorKind::InvalidId,
            "contains whitespace",
        )),
    );
    vec![l1, l2, l3, l4, l5]
}

/// Runs a whole report with `lines`, returning the output folder and the paths.
fn run(formats: &[Format], lines: &[LineReport]) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = Reports::create(dir.path(), formats, meta(), policies()).expect("create");
    for l in lines {
        r.write_line(l).expect("write_line");
    }
    let (_, paths) = r.finish(end(1)).expect("finish");
    (dir, paths)
}

#[test]
fn csv_header_lines_are_exactly_the_contracts() {
    let (dir, _) = run(&[Format::Csv], &sample_lines());
    let findings =
        fs::read_to_string(dir.path().join(format!("{STEM}-findings.csv"))).expect("read");
    let lines = fs::read_to_string(dir.path().join(format!("{STEM}-lines.csv"))).expect("read");
    assert_eq!(findings.lines().next(), Some(common::FINDINGS_HEADER));
    assert_eq!(lines.lines().next(), Some(common::LINES_HEADER));
    assert_eq!(FINDINGS_HEADER.join(","), common::FINDINGS_HEADER);
    assert_eq!(LINES_HEADER.join(","), common::LINES_HEADER);
    // No BOM: the first bytes are the first header cell.
    assert!(findings.as_bytes().starts_with(b"run_id,"));
    assert!(lines.as_bytes().starts_with(b"run_id,"));
}

#[test]
fn findings_have_one_row_per_line_and_enabled_rule() {
    let lines = sample_lines();
    let (dir, _) = run(&[Format::Csv], &lines[..3]);
    let (_, rows) = read_csv(&dir.path().join(format!("{STEM}-findings.csv")));
    assert_eq!(rows.len(), 3 * 2, "3 lines x 2 enabled rules");
    let pairs: Vec<(String, String)> = rows.iter().map(|r| (r[3].clone(), r[5].clone())).collect();
    let expected: Vec<(String, String)> = ["L1", "L2", "L3"]
        .iter()
        .flat_map(|l| ["PTT-A", "PTT-C"].map(|r| (l.to_string(), r.to_string())))
        .collect();
    assert_eq!(pairs, expected);
}

#[test]
fn unread_lines_get_an_error_row_per_enabled_rule() {
    let (dir, _) = run(&[Format::Csv, Format::Json], &sample_lines());
    let (_, rows) = read_csv(&dir.path().join(format!("{STEM}-findings.csv")));
    assert_eq!(rows.len(), 5 * 2);
    let l4: Vec<&Vec<String>> = rows.iter().filter(|r| r[3] == "L4").collect();
    assert_eq!(l4.len(), 2);
    for r in &l4 {
        assert_eq!(r[8], "error");
        assert_eq!(r[9], "HTTP 404: no such line");
        assert_eq!(r[1], "", "never read: audited_at empty");
    }
    let invalid: Vec<&Vec<String>> = rows.iter().filter(|r| r[3] == "bad id").collect();
    assert_eq!(
        invalid.iter().map(|r| r[8].as_str()).collect::<Vec<_>>(),
        ["error", "error"]
    );

    let doc: Value = serde_json::from_str(
        &fs::read_to_string(dir.path().join(format!("{STEM}.json"))).expect("read"),
    )
    .expect("valid JSON");
    let results = &doc["lines"][3]["results"];
    assert_eq!(results.as_array().map(Vec::len), Some(2));
    assert_eq!(results[0]["status"], "error");
    assert_eq!(results[1]["rule_id"], "PTT-C");
    assert_eq!(doc["summary"]["results"]["error"], 4);
}

#[test]
fn findings_and_lines_rows_carry_the_right_cells() {
    let (dir, _) = run(&[Format::Csv], &sample_lines());
    let (h, rows) = read_csv(&dir.path().join(format!("{STEM}-findings.csv")));
    let col = |name: &str| h.iter().position(|c| c == name).expect("column");
    let waived = rows
        .iter()
        .find(|r| r[col("line_id")] == "L2" && r[col("rule_id")] == "PTT-A")
        .expect("row");
    assert_eq!(waived[col("run_id")], "run-1");
    assert_eq!(waived[col("org_id")], "ORG");
    assert_eq!(waived[col("audited_at")], "2026-11-29T03:20:57Z");
    assert_eq!(waived[col("status")], "waived");
    assert_eq!(waived[col("severity")], "high");
    assert_eq!(waived[col("rule_title")], "Title of PTT-A");
    assert_eq!(waived[col("remediation")], "fix PTT-A");
    assert_eq!(waived[col("waiver_reason")], "approved for L2");
    assert_eq!(waived[col("waiver_expires")], "2027-01-31");
    assert_eq!(waived[col("change")], "");
    let expired = rows
        .iter()
        .find(|r| r[col("line_id")] == "L3" && r[col("rule_id")] == "PTT-C")
        .expect("row");
    assert_eq!(expired[col("status")], "fail");
    assert_eq!(expired[col("waiver_expires")], "2025-01-01");
    let pass = rows
        .iter()
        .find(|r| r[col("line_id")] == "L1" && r[col("rule_id")] == "PTT-A")
        .expect("row");
    assert_eq!(pass[col("line_name")], "Lobby");
    assert_eq!(pass[col("message")], "");
    assert_eq!(pass[col("waiver_reason")], "");

    let (h, rows) = read_csv(&dir.path().join(format!("{STEM}-lines.csv")));
    let col = |name: &str| h.iter().position(|c| c == name).expect("column");
    assert_eq!(rows.len(), 5);
    let ids: Vec<&str> = rows.iter().map(|r| r[col("line_id")].as_str()).collect();
    assert_eq!(ids, ["L1", "L2", "L3", "L4", "bad id"]);
    let l1 = &rows[0];
    assert_eq!(l1[col("status")], "compliant");
    assert_eq!(l1[col("allow_auto_answer")], "true");
    assert_eq!(l1[col("member_count")], "0", "absent members count as []");
    let l2 = &rows[1];
    assert_eq!(l2[col("allow_auto_answer")], "false");
    assert_eq!(l2[col("connection_type")], "TWO_WAY");
    assert_eq!(l2[col("access_type")], "BLOCK_MEMBERS");
    assert_eq!(l2[col("member_count")], "2");
    assert_eq!(
        l2[col("members")],
        "Alice Little <alice@example.com>; Bob Johnson"
    );
    assert_eq!(l2[col("failed_rules")], "", "waived is not failed");
    let l3 = &rows[2];
    assert_eq!(l3[col("status")], "non_compliant");
    assert_eq!(l3[col("failed_rules")], "PTT-A;PTT-C");
    assert_eq!(l3[col("highest_severity")], "critical");
    let l4 = &rows[3];
    assert_eq!(l4[col("status")], "error");
    assert_eq!(l4[col("audited_at")], "");
    assert_eq!(l4[col("member_count")], "");
    assert_eq!(l4[col("error_kind")], "http");
    assert_eq!(l4[col("http_status")], "404");
    assert_eq!(l4[col("tracking_id")], "TRK_1");
    assert_eq!(l4[col("error_message")], "HTTP 404: no such line");
    assert_eq!(rows[4][col("error_kind")], "invalid_id");
    assert_eq!(rows[4][col("http_status")], "");
}

/// The CSV writer makes the rule's own cells (id, title, severity, remediation) once
/// per rule: every line's rows must still carry them, quoted and neutralised.
#[test]
fn rule_cells_are_the_same_on_every_line_and_quoted() {
    let policy = r#"
[[rule]]
id = "R-1"
title = "Quotes \"and\", commas"
severity = "high"
require = "true"
remediation = "=HYPERLINK(\"x\"), then\nrestart"

[[rule]]
id = "R-2"
title = "plain"
severity = "low"
require = "true"
"#;
    let policies = Arc::new(
        ptt_audit::policy::load_str(std::path::Path::new("p.toml"), policy).expect("loads"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = Reports::create(dir.path(), &[Format::Csv], meta(), policies).expect("create");
    for (i, id) in ["L1", "L2", "L3"].into_iter().enumerate() {
        let findings = vec![
            finding(0, RuleStatus::Fail, Some("m, \"q\""), None),
            finding(1, RuleStatus::Pass, None, None),
        ];
        r.write_line(&read_line(i, id, findings, json!({})))
            .expect("write_line");
    }
    r.finish(end(1)).expect("finish");
    let (_, rows) = read_csv(&dir.path().join(format!("{STEM}-findings.csv")));
    let col = |name: &str| FINDINGS_HEADER.iter().position(|h| *h == name).unwrap();
    assert_eq!(rows.len(), 6);
    for (n, row) in rows.iter().enumerate() {
        assert_eq!(row[col("line_id")], ["L1", "L2", "L3"][n / 2]);
        if n % 2 == 0 {
            assert_eq!(row[col("rule_id")], "R-1");
            assert_eq!(row[col("rule_title")], "Quotes \"and\", commas");
            assert_eq!(row[col("severity")], "high");
            assert_eq!(row[col("remediation")], "'=HYPERLINK(\"x\"), then\nrestart");
            assert_eq!(row[col("message")], "m, \"q\"");
        } else {
            assert_eq!(row[col("rule_id")], "R-2");
            assert_eq!(row[col("rule_title")], "plain");
            assert_eq!(row[col("severity")], "low");
            assert_eq!(row[col("remediation")], "");
        }
    }
}

#[test]
fn csv_round_trips_non_ascii_and_special_characters() {
    let tricky_name = "Zoë \"Ops\", Köln\nFloor 2 – 東京";
    let mut line = read_line(
        0,
        "L-ü",
        vec![
            finding(
                0,
                RuleStatus::Fail,
                Some("Ünïcödé, \"quoted\"\r\nnext"),
                None,
            ),
            finding(2, RuleStatus::Pass, None, None),
        ],
        json!({"members": [{"displayName": "José Müller, Jr.", "email": "jöse@exämple.com"},
                           {"displayName": "李雷", "email": "li@example.cn"}]}),
    );
    line.identity = named(tricky_name);
    let (dir, _) = run(&[Format::Csv], &[line]);
    let findings_path = dir.path().join(format!("{STEM}-findings.csv"));
    let raw = fs::read(&findings_path).expect("read");
    assert!(std::str::from_utf8(&raw).is_ok(), "valid UTF-8");
    let (_, rows) = read_csv(&findings_path);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][3], "L-ü");
    assert_eq!(rows[0][4], tricky_name);
    assert_eq!(rows[0][9], "Ünïcödé, \"quoted\"\r\nnext");
    let (_, rows) = read_csv(&dir.path().join(format!("{STEM}-lines.csv")));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][4], tricky_name);
    assert_eq!(
        rows[0][10],
        "José Müller, Jr. <jöse@exämple.com>; 李雷 <li@example.cn>"
    );
}

#[test]
fn every_csv_cell_is_neutralised() {
    let mut line = read_line(
        0,
        "-L1",
        vec![
            finding(
                0,
                RuleStatus::Fail,
                Some("=HYPERLINK(\"http://evil\")"),
                None,
            ),
            finding(2, RuleStatus::Pass, None, None),
        ],
        json!({"connectionType": "+SUM(1)", "accessType": "@x",
               "members": [{"displayName": "=cmd|' /C calc'!A0"}]}),
    );
    line.identity = named("\tTabbed");
    let (dir, _) = run(&[Format::Csv], &[line]);
    let (_, rows) = read_csv(&dir.path().join(format!("{STEM}-findings.csv")));
    assert_eq!(rows[0][3], "'-L1");
    assert_eq!(rows[0][4], "'\tTabbed");
    assert_eq!(rows[0][9], "'=HYPERLINK(\"http://evil\")");
    let (_, rows) = read_csv(&dir.path().join(format!("{STEM}-lines.csv")));
    assert_eq!(rows[0][7], "'+SUM(1)");
    assert_eq!(rows[0][8], "'@x");
    assert_eq!(rows[0][10], "'=cmd|' /C calc'!A0");
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "dangerous cell {cell:?}"
            );
        }
    }
}

proptest! {
    #[test]
    fn neutralise_is_safe_and_reversible(s in any::<String>()) {
        let out = neutralise(&s);
        let dangerous = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
        prop_assert!(!out.starts_with(['=', '+', '-', '@', '\t', '\r']));
        if dangerous {
            prop_assert!(out.starts_with('\''));
            prop_assert_eq!(&out[1..], s.as_str());
        } else {
            prop_assert_eq!(out.as_ref(), s.as_str());
        }
    }

    #[test]
    fn neutralise_leaves_formula_prefixed_strings_quoted(
        c in prop::sample::select(vec!['=', '+', '-', '@', '\t', '\r']),
        rest in ".*",
    ) {
        let s = format!("{c}{rest}");
        prop_assert_eq!(neutralise(&s).into_owned(), format!("'{s}"));
    }
}

/// Asserts that `v` is an object whose keys are exactly `keys`, in that order, allowing
/// only the listed `extra` keys after them.
fn assert_keys(v: &Value, keys: &[&str], extra: &[&str], at: &str) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{at} is not an object: {v}"));
    let got: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(&got[..keys.len().min(got.len())], keys, "keys of {at}");
    for k in &got[keys.len()..] {
        assert!(extra.contains(k), "unexpected key {k} in {at}");
    }
}

#[test]
fn json_has_exactly_the_contracts_keys() {
    let (dir, paths) = run(&[Format::Json], &sample_lines());
    let path = dir.path().join(format!("{STEM}.json"));
    assert_eq!(paths, vec![path.clone()]);
    let doc: Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("read")).expect("valid JSON");
    assert_keys(
        &doc,
        &[
            "schema_version",
            "tool",
            "run",
            "summary",
            "rules",
            "waivers",
            "lines",
        ],
        &[],
        "root",
    );
    assert_eq!(doc["schema_version"], 1);
    assert_keys(&doc["tool"], &["name", "version"], &[], "tool");
    assert_eq!(doc["tool"]["name"], "ptt-audit");
    assert_eq!(doc["tool"]["version"], "0.1.0");
    let run = &doc["run"];
    assert_keys(
        run,
        &[
            "id",
            "started_at",
            "finished_at",
            "org_id",
            "base_url",
            "complete",
            "exit_code",
            "policies",
        ],
        &["discovery", "source_report"],
        "run",
    );
    assert_eq!(run["discovery"], Value::Null, "no --all, no discovery");
    assert_eq!(
        run["source_report"],
        Value::Null,
        "an audit, not a re-evaluation"
    );
    assert_eq!(run["id"], "run-1");
    assert_eq!(run["started_at"], "2026-11-29T03:20:56Z");
    assert_eq!(run["finished_at"], "2026-11-29T03:21:00Z");
    assert_eq!(run["org_id"], "ORG");
    assert_eq!(run["complete"], true);
    assert_eq!(run["exit_code"], 1);
    assert_keys(
        &run["policies"][0],
        &["path", "sha256"],
        &[],
        "run.policies[0]",
    );
    assert_eq!(
        run["policies"][0]["sha256"].as_str().map(str::len),
        Some(64),
        "hex SHA-256"
    );

    let s = &doc["summary"];
    assert_keys(s, &["lines", "results", "fail_by_severity"], &[], "summary");
    assert_keys(
        &s["lines"],
        &[
            "total",
            "compliant",
            "non_compliant",
            "error",
            "invalid",
            "not_audited",
        ],
        &[],
        "summary.lines",
    );
    assert_keys(
        &s["results"],
        &["pass", "fail", "waived", "not_applicable", "error"],
        &[],
        "summary.results",
    );
    assert_keys(
        &s["fail_by_severity"],
        &["low", "medium", "high", "critical"],
        &[],
        "summary.fail_by_severity",
    );

    let rules = doc["rules"].as_array().expect("rules");
    assert_eq!(rules.len(), 3, "disabled rules are listed too");
    for (i, r) in rules.iter().enumerate() {
        assert_keys(
            r,
            &["id", "title", "severity"],
            &["enabled", "description", "remediation", "references"],
            &format!("rules[{i}]"),
        );
    }
    assert_eq!(rules[1]["enabled"], false);
    assert_eq!(rules[2]["severity"], "critical");

    let waivers = doc["waivers"].as_array().expect("waivers");
    assert_eq!(waivers.len(), 3);
    for (i, w) in waivers.iter().enumerate() {
        assert_keys(
            w,
            &["rule", "line", "reason", "expires", "state"],
            &["ticket", "owner", "label", "days_left"],
            &format!("waivers[{i}]"),
        );
    }
    assert_eq!(waivers[0]["expires"], "2027-01-31");
    // From the findings (applied) and the run's start date (expired).
    let states: Vec<&str> = waivers
        .iter()
        .map(|w| w["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["applied", "expired", "unused"]);

    let lines = doc["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 5);
    for (i, l) in lines.iter().enumerate() {
        assert_keys(
            l,
            &["id", "status", "read_at", "settings", "results", "error"],
            &["name", "line"],
            &format!("lines[{i}]"),
        );
        assert_keys(
            &l["line"],
            &[
                "name",
                "location_id",
                "location_name",
                "phone_number",
                "extension",
            ],
            &[],
            &format!("lines[{i}].line"),
        );
        for (j, r) in l["results"].as_array().expect("results").iter().enumerate() {
            assert_keys(
                r,
                &["rule_id", "status", "severity", "message"],
                &["waiver"],
                &format!("lines[{i}].results[{j}]"),
            );
        }
    }
    assert_eq!(lines[0]["read_at"], "2026-11-29T03:20:57Z");
    assert_eq!(lines[0]["name"], "Lobby");
    assert_eq!(
        lines[0]["line"],
        json!({"name": "Lobby", "location_id": null, "location_name": null,
               "phone_number": null, "extension": null})
    );
    assert_eq!(lines[0]["error"], Value::Null);
    assert_eq!(
        lines[1]["settings"]["members"][0]["displayName"],
        "Alice Little"
    );
    assert_eq!(
        lines[1]["results"][0]["waiver"],
        json!({"reason": "approved for L2", "expires": "2027-01-31", "state": "applied",
               "ticket": null, "owner": null, "label": null})
    );
    assert_eq!(lines[2]["status"], "non_compliant");
    assert_eq!(lines[2]["results"][1]["waiver"]["state"], "expired");
    assert_eq!(lines[3]["read_at"], Value::Null);
    assert_eq!(lines[3]["settings"], Value::Null);
    assert_keys(
        &lines[3]["error"],
        &["kind", "http_status", "message", "tracking_id", "attempts"],
        &[],
        "lines[3].error",
    );
    assert_eq!(
        lines[3]["error"],
        json!({"kind": "http", "http_status": 404, "message": "HTTP 404: no such line", "tracking_id": "TRK_1", "attempts": 1})
    );
    assert_eq!(lines[4]["status"], "invalid");
    assert_eq!(lines[4]["error"]["kind"], "invalid_id");
}

#[test]
fn json_run_end_and_waiver_states_with_no_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = Reports::create(dir.path(), &[Format::Json], meta(), policies()).expect("create");
    let mut e = end(3);
    e.complete = false;
    let (_, paths) = r.finish(e).expect("finish");
    let doc: Value =
        serde_json::from_str(&fs::read_to_string(&paths[0]).expect("read")).expect("json");
    // Nothing was waived: the unexpired waivers are unused, the expired one expired.
    let states: Vec<&str> = doc["waivers"]
        .as_array()
        .expect("waivers")
        .iter()
        .map(|w| w["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["unused", "expired", "unused"]);
    assert_eq!(doc["run"]["complete"], false);
    assert_eq!(doc["run"]["exit_code"], 3);
}

#[test]
fn json_with_no_lines_and_no_policies_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = Arc::new(
        ptt_audit::policy::load_str(std::path::Path::new("empty.toml"), "").expect("loads"),
    );
    let mut m = meta();
    m.org_id = None;
    let r = Reports::create(dir.path(), &[Format::Json, Format::Csv], m, empty).expect("create");
    let (summary, paths) = r.finish(end(0)).expect("finish");
    assert_eq!(summary.lines.total, 0);
    assert_eq!(paths.len(), 3);
    let doc: Value =
        serde_json::from_str(&fs::read_to_string(&paths[0]).expect("read")).expect("json");
    assert_eq!(doc["lines"], json!([]));
    assert_eq!(doc["run"]["org_id"], Value::Null);
    assert_eq!(doc["rules"], json!([]));
}

#[test]
fn lines_keep_input_order_in_every_format() {
    let ids: Vec<String> = (0..50).map(|i| format!("line-{:02}", 49 - i)).collect();
    let lines: Vec<LineReport> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            read_line(
                i,
                id,
                vec![
                    finding(0, RuleStatus::Pass, None, None),
                    finding(2, RuleStatus::Pass, None, None),
                ],
                json!({}),
            )
        })
        .collect();
    let (dir, _) = run(&[Format::Json, Format::Csv], &lines);
    let doc: Value = serde_json::from_str(
        &fs::read_to_string(dir.path().join(format!("{STEM}.json"))).expect("read"),
    )
    .expect("json");
    let json_ids: Vec<&str> = doc["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["id"].as_str().expect("id"))
        .collect();
    assert_eq!(json_ids, ids);
    let (_, rows) = read_csv(&dir.path().join(format!("{STEM}-lines.csv")));
    let csv_ids: Vec<&str> = rows.iter().map(|r| r[3].as_str()).collect();
    assert_eq!(csv_ids, ids);
}

#[test]
fn reports_are_atomic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = Reports::create(dir.path(), &[Format::Json, Format::Csv], meta(), policies())
        .expect("create");
    for l in &sample_lines() {
        r.write_line(l).expect("write");
    }
    let before = names_in(dir.path());
    assert!(!before.is_empty());
    for n in &before {
        assert!(
            n.starts_with('.') && n.ends_with(".tmp"),
            "only temporary files before finish, got {n}"
        );
    }
    let (_, paths) = r.finish(end(1)).expect("finish");
    let after = names_in(dir.path());
    assert_eq!(
        after,
        [
            format!("{STEM}-findings.csv"),
            format!("{STEM}-lines.csv"),
            format!("{STEM}.json")
        ]
    );
    assert_eq!(paths.len(), 3);
    for p in &paths {
        assert!(p.exists());
    }
}

#[test]
fn dropping_unfinished_reports_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = Reports::create(dir.path(), &[Format::Json, Format::Csv], meta(), policies())
        .expect("create");
    for l in &sample_lines() {
        r.write_line(l).expect("write");
    }
    assert!(!names_in(dir.path()).is_empty());
    drop(r);
    assert_eq!(names_in(dir.path()), Vec::<String>::new());
}

#[test]
fn out_dir_is_created_and_stem_gets_a_suffix_when_taken() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("nested/reports");
    let r1 = Reports::create(&dir, &[Format::Csv], meta(), policies()).expect("create");
    assert_eq!(r1.stem(), STEM);
    // An unfinished run's temporary files also claim the stem.
    let r2 = Reports::create(&dir, &[Format::Json], meta(), policies()).expect("create");
    assert_eq!(r2.stem(), format!("{STEM}-2"));
    r1.finish(end(0)).expect("finish");
    r2.finish(end(0)).expect("finish");
    let r3 =
        Reports::create(&dir, &[Format::Json, Format::Csv], meta(), policies()).expect("create");
    assert_eq!(r3.stem(), format!("{STEM}-3"));
    let (_, paths) = r3.finish(end(0)).expect("finish");
    assert_eq!(paths[0], dir.join(format!("{STEM}-3.json")));
    assert_eq!(paths[1], dir.join(format!("{STEM}-3-findings.csv")));

    // Any one file of a stem is enough to skip it.
    let other = root.path().join("other");
    fs::create_dir(&other).expect("mkdir");
    fs::write(other.join(format!("{STEM}-lines.csv")), "x").expect("write");
    let r = Reports::create(&other, &[Format::Json], meta(), policies()).expect("create");
    assert_eq!(r.stem(), format!("{STEM}-2"));
    drop(r);
    assert_eq!(
        fs::read_to_string(other.join(format!("{STEM}-lines.csv"))).expect("read"),
        "x"
    );
}

#[test]
fn summary_counts_add_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = Reports::create(dir.path(), &[Format::Json], meta(), policies()).expect("create");
    let mut lines = sample_lines();
    lines.push(unread_line(5, "L6", LineStatus::NotAudited, None));
    for l in &lines {
        r.write_line(l).expect("write");
    }
    let s = r.summary().clone();
    assert_eq!(s.lines.total, 6);
    assert_eq!(
        s.lines.compliant
            + s.lines.non_compliant
            + s.lines.error
            + s.lines.invalid
            + s.lines.not_audited,
        s.lines.total
    );
    assert_eq!(
        (
            s.lines.compliant,
            s.lines.non_compliant,
            s.lines.error,
            s.lines.invalid,
            s.lines.not_audited
        ),
        (2, 1, 1, 1, 1)
    );
    assert_eq!(
        s.results.total(),
        6 * 2,
        "one result per line and enabled rule"
    );
    assert_eq!(
        (
            s.results.pass,
            s.results.fail,
            s.results.waived,
            s.results.not_applicable,
            s.results.error
        ),
        (2, 2, 1, 1, 6)
    );
    assert_eq!(
        (
            s.fail_by_severity.high,
            s.fail_by_severity.critical,
            s.fail_by_severity.low
        ),
        (1, 1, 0)
    );
    assert_eq!(s.fails_at_or_above(Severity::Critical), 1);
    assert!(s.is_incomplete());
    assert_eq!(s.failing_rules.get(&0), Some(&1));
    assert_eq!(s.failing_rules.get(&2), Some(&1));

    let (final_summary, paths) = r.finish(end(3)).expect("finish");
    // The counts are final; finishing adds the waivers' states.
    assert_eq!(
        serde_json::to_value(&final_summary).expect("to_value"),
        serde_json::to_value(&s).expect("to_value")
    );
    assert_eq!(final_summary.failing_rules, s.failing_rules);
    assert_eq!(final_summary.waivers.len(), 3);
    let doc: Value =
        serde_json::from_str(&fs::read_to_string(&paths[0]).expect("read")).expect("json");
    assert_eq!(doc["summary"], serde_json::to_value(&s).expect("to_value"));
    assert_eq!(doc["summary"]["results"]["error"], 6);
    let text = ptt_audit::report::render_summary(
        &s,
        &policies(),
        &paths,
        3,
        ptt_audit::settings::FailOn::Low,
        14,
    );
    assert!(
        text.contains("6 total: 2 compliant, 1 non_compliant, 1 error, 1 invalid, 1 not_audited"),
        "{text}"
    );
    assert!(
        text.find("PTT-C") < text.find("PTT-A"),
        "critical before high: {text}"
    );
}

#[test]
fn many_lines_stream_into_valid_reports() {
    let n = 5_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = Reports::create(dir.path(), &[Format::Json, Format::Csv], meta(), policies())
        .expect("create");
    for i in 0..n {
        let l = read_line(
            i,
            &format!("id-{i}"),
            vec![
                finding(0, RuleStatus::Fail, Some("x"), None),
                finding(2, RuleStatus::Pass, None, None),
            ],
            json!({"allowAutoAnswer": true, "members": [{"id": "p", "email": "a@b.c"}]}),
        );
        r.write_line(&l).expect("write");
    }
    let (s, paths) = r.finish(end(1)).expect("finish");
    assert_eq!(s.lines.non_compliant, n as u64);
    let doc: Value =
        serde_json::from_str(&fs::read_to_string(&paths[0]).expect("read")).expect("json");
    assert_eq!(doc["lines"].as_array().map(Vec::len), Some(n));
    assert_eq!(doc["lines"][n - 1]["id"], format!("id-{}", n - 1));
    assert_eq!(read_csv(&paths[1]).1.len(), 2 * n);
    assert_eq!(read_csv(&paths[2]).1.len(), n);
}
