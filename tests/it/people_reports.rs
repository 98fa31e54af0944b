//! The reports for people (`CONTRACT.md` §9): the xlsx workbook read back as a
//! spreadsheet reads it (calamine, and the sheets' XML), and the HTML page parsed as a
//! browser parses it (html5ever), with hostile text from the API and the policies.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use calamine::{open_workbook, Data, Reader, Xlsx};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use crate::common::{self, names_in, read_csv};
use crate::html_dom::Dom;

use ptt_audit::model::{ErrorKind, Finding, LineError, LineReport, LineStatus, RuleStatus};
use ptt_audit::policy::PolicySet;
use ptt_audit::report::{FindingsFilter, Format, Reports, RunEnd, RunMeta, WriteOptions};

const STEM: &str = "ptt-audit-20261129T032056Z";
const IMG: &str = "<img src=x onerror=alert(1)>";
const CLOSE_SCRIPT: &str = "</script><script>alert(2)</script>";
const QUOTES: &str = "x\" onmouseover=\"alert(3)\" data-x='y";
const FORMULA: &str = "=HYPERLINK(\"http://evil.example\",\"click\")";

/// Titles, messages and remediations with markup in them: policy text is escaped too.
const POLICY: &str = r#"
[[rule]]
id = "PTT-A"
title = "Rule <i>A</i> & \"quoted\""
severity = "high"
require = "true"
remediation = "Fix it <script>alert(4)</script>"

[[rule]]
id = "PTT-C"
title = "Title of PTT-C"
severity = "critical"
require = "true"

[[waiver]]
rule = "PTT-A"
line = "L2"
reason = "approved <b>in</b> SEC-1 \"yes\""
expires = 2026-12-02
"#;

/// An identity with a name only.
fn named(name: &str) -> std::sync::Arc<ptt_audit::model::LineIdentity> {
    std::sync::Arc::new(ptt_audit::model::LineIdentity {
        name: Some(name.into()),
        ..Default::default()
    })
}

fn policies() -> Arc<PolicySet> {
    Arc::new(
        ptt_audit::policy::load_str(Path::new("policies/site.toml"), POLICY)
            .expect("test policy loads"),
    )
}

fn meta() -> RunMeta {
    RunMeta {
        run_id: "run-1".into(),
        started_at: Utc.with_ymd_and_hms(2026, 11, 29, 3, 20, 56).unwrap(),
        org_id: Some("ORG <x>".into()),
        base_url: "http://127.0.0.1:9/v1".into(),
        tool_version: "0.1.0".into(),
        source_report: None,
    }
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

fn read_at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 3, 20, 57).unwrap()
}

/// L1 compliant (formula-like name, hostile members), L2 waived and failing, L3 a 404.
fn lines() -> Vec<LineReport> {
    let members = json!([
        {"id": "p1", "displayName": IMG, "email": "a@example.com"},
        {"id": "p2", "displayName": CLOSE_SCRIPT},
        {"id": "p3", "displayName": QUOTES, "type": "PEOPLE"},
    ]);
    let l1_findings = vec![
        finding(0, RuleStatus::Pass, None, None),
        finding(1, RuleStatus::Pass, None, None),
    ];
    let l2_findings = vec![
        finding(0, RuleStatus::Waived, Some("open <u>to</u> all"), Some(0)),
        finding(1, RuleStatus::Fail, Some(IMG), None),
    ];
    vec![
        LineReport {
            index: 0,
            id: "L1".into(),
            identity: named(FORMULA),
            status: LineReport::status_from_findings(&l1_findings),
            read_at: Some(read_at()),
            settings: Some(
                json!({"allowAutoAnswer": false, "connectionType": "ONE_WAY",
                                  "accessType": "ALLOW_MEMBERS", "members": members}),
            ),
            findings: l1_findings,
            error: None,
        },
        LineReport {
            index: 1,
            id: "L2".into(),
            identity: named(CLOSE_SCRIPT),
            status: LineReport::status_from_findings(&l2_findings),
            read_at: Some(read_at()),
            settings: Some(json!({"allowAutoAnswer": true, "connectionType": "TWO_WAY",
                                  "accessType": QUOTES})),
            findings: l2_findings,
            error: None,
        },
        LineReport {
            index: 2,
            id: "L3".into(),
            identity: named(QUOTES),
            status: LineStatus::Error,
            read_at: None,
            settings: None,
            findings: vec![],
            error: Some(LineError {
                kind: ErrorKind::Http,
                http_status: Some(404),
                message: format!("HTTP 404: {IMG}"),
                tracking_id: Some("TRK_1".into()),
                attempts: 1,
            }),
        },
    ]
}

fn write_reports(formats: &[Format], options: &WriteOptions) -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = Reports::create_with(dir.path(), formats, options, meta(), policies(), None)
        .expect("create");
    for l in lines() {
        r.write(l).expect("write");
    }
    let end = RunEnd {
        finished_at: Utc.with_ymd_and_hms(2026, 11, 29, 3, 21, 0).unwrap(),
        complete: true,
        exit_code: 3,
        discovery: None,
    };
    let (_, paths) = r.finish(end).expect("finish");
    (dir, paths)
}

fn cells(range: &calamine::Range<Data>, row: usize) -> Vec<String> {
    (0..range.width())
        .map(|c| {
            range
                .get((row, c))
                .map(|d| d.to_string())
                .unwrap_or_default()
        })
        .collect()
}

/// The sheets' XML, by sheet file name (`sheet1.xml`…).
fn sheet_xml(path: &Path) -> HashMap<String, String> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).expect("xlsx")).expect("a zip");
    let mut out = HashMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).expect("entry");
        let name = f.name().expect("a name").to_string();
        if let Some(sheet) = name.strip_prefix("xl/worksheets/") {
            let mut text = String::new();
            f.read_to_string(&mut text).expect("XML text");
            out.insert(sheet.to_string(), text);
        }
    }
    out
}

#[test]
fn the_workbook_has_the_contracts_sheets_columns_and_cell_types() {
    let (dir, _) = write_reports(&[Format::Csv, Format::Xlsx], &WriteOptions::default());
    let path = dir.path().join(format!("{STEM}.xlsx"));
    let mut book: Xlsx<_> = open_workbook(&path).expect("opens as a workbook");
    assert_eq!(
        book.sheet_names(),
        ["Summary", "Findings", "Lines", "Rules", "Waivers"]
    );

    let findings = book.worksheet_range("Findings").expect("Findings");
    assert_eq!(cells(&findings, 0).join(","), common::FINDINGS_HEADER);
    assert_eq!(
        findings.height(),
        1 + 3 * 2,
        "one row per line and enabled rule"
    );
    let lines = book.worksheet_range("Lines").expect("Lines");
    assert_eq!(cells(&lines, 0).join(","), common::LINES_HEADER);
    assert_eq!(lines.height(), 1 + 3);

    let col = |name: &str| {
        common::LINES_HEADER
            .split(',')
            .position(|h| h == name)
            .expect("a column")
    };
    // Text exactly as read: no `'` prefix, and a string cell, never a formula.
    assert_eq!(
        lines.get((1, col("line_name"))),
        Some(&Data::String(FORMULA.into()))
    );
    assert_eq!(
        lines.get((2, col("line_name"))),
        Some(&Data::String(CLOSE_SCRIPT.into()))
    );
    // Times are date-times, counts and statuses numbers.
    match lines.get((1, col("audited_at"))) {
        Some(Data::DateTime(t)) => assert_eq!(t.as_datetime(), Some(read_at().naive_utc())),
        other => panic!("audited_at is not a date-time: {other:?}"),
    }
    assert_eq!(lines.get((1, col("member_count"))), Some(&Data::Float(3.0)));
    assert_eq!(
        lines.get((3, col("http_status"))),
        Some(&Data::Float(404.0))
    );
    assert_eq!(lines.get((3, col("audited_at"))), Some(&Data::Empty));
    assert_eq!(
        lines.get((3, col("error_message"))),
        Some(&Data::String(format!("HTTP 404: {IMG}")))
    );

    // The same cells as the CSV, but as text exactly (the CSV neutralises).
    let (_, csv_rows) = read_csv(&dir.path().join(format!("{STEM}-lines.csv")));
    assert_eq!(csv_rows[0][col("line_name")], format!("'{FORMULA}"));
    assert_eq!(
        csv_rows[0][col("members")],
        cells(&lines, 1)[col("members")]
    );

    let waivers = book.worksheet_range("Waivers").expect("Waivers");
    assert_eq!(
        cells(&waivers, 0),
        ["rule", "line", "reason", "expires", "days_left", "state"]
    );
    assert_eq!(
        waivers.get((1, 4)),
        Some(&Data::Float(3.0)),
        "2026-11-29 to 2026-12-02"
    );
    assert!(matches!(waivers.get((1, 3)), Some(Data::DateTime(_))));
    assert_eq!(waivers.get((1, 5)), Some(&Data::String("applied".into())));

    let summary = book.worksheet_range("Summary").expect("Summary");
    let text: Vec<String> = summary
        .rows()
        .flat_map(|r| r.iter().map(|d| d.to_string()))
        .collect();
    assert!(
        text.iter().any(|t| t.starts_with("Exit code 3")),
        "{text:?}"
    );
    assert!(
        text.contains(&"Waivers expiring within 14 days".to_string()),
        "{text:?}"
    );

    let xml = sheet_xml(&path);
    for sheet in ["sheet2.xml", "sheet3.xml", "sheet4.xml", "sheet5.xml"] {
        let x = &xml[sheet];
        assert!(
            x.contains("state=\"frozen\"") && x.contains("ySplit=\"1\""),
            "{sheet}: header frozen"
        );
        assert!(x.contains("<autoFilter ref=\"A1:"), "{sheet}: autofilter");
    }
    for (sheet, x) in &xml {
        assert!(
            !x.contains("<f>") && !x.contains("<f "),
            "{sheet} has a formula"
        );
    }
}

#[test]
fn findings_failing_keeps_fail_waived_and_error_rows_and_csv_bom_marks_the_csvs() {
    let options = WriteOptions {
        findings: FindingsFilter::Failing,
        csv_bom: true,
        ..WriteOptions::default()
    };
    let (dir, _) = write_reports(&[Format::Csv, Format::Xlsx], &options);
    let csv = dir.path().join(format!("{STEM}-findings.csv"));
    let raw = std::fs::read(&csv).expect("read");
    assert!(raw.starts_with("\u{feff}run_id,".as_bytes()), "BOM first");
    let lines_raw = std::fs::read(dir.path().join(format!("{STEM}-lines.csv"))).expect("read");
    assert!(lines_raw.starts_with("\u{feff}run_id,".as_bytes()));
    let (_, rows) = read_csv(&csv);
    let statuses: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r[3].as_str(), r[8].as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("L2", "waived"),
            ("L2", "fail"),
            ("L3", "error"),
            ("L3", "error")
        ],
        "no pass rows"
    );
    let mut book: Xlsx<_> = open_workbook(dir.path().join(format!("{STEM}.xlsx"))).expect("xlsx");
    let findings = book.worksheet_range("Findings").expect("Findings");
    assert_eq!(findings.height(), 1 + 4);
    let lines = book.worksheet_range("Lines").expect("Lines");
    assert_eq!(lines.height(), 1 + 3, "every line still has its row");
}

#[test]
fn the_page_is_self_contained_and_shows_hostile_text_as_text() {
    let (dir, paths) = write_reports(&[Format::Json, Format::Html], &WriteOptions::default());
    assert_eq!(names_in(dir.path()).len(), 2, "{paths:?}");
    let html = std::fs::read_to_string(dir.path().join(format!("{STEM}.html"))).expect("read");
    let dom = Dom::parse(&html);

    // Nothing from elsewhere: no element that loads, no link, no handler.
    for el in dom.elements() {
        for (name, value) in &el.attrs {
            assert!(!name.starts_with("on"), "<{} {name}={value:?}>", el.name);
            if matches!(
                name.as_str(),
                "src" | "href" | "action" | "srcset" | "poster" | "data"
            ) {
                assert!(
                    value.starts_with('#'),
                    "<{} {name}={value:?}> loads something",
                    el.name
                );
            }
        }
        assert!(
            !matches!(
                el.name.as_str(),
                "img" | "link" | "iframe" | "object" | "embed" | "base" | "form"
            ),
            "a <{}> element",
            el.name
        );
    }
    let scripts = dom.by_name("script");
    assert_eq!(scripts.len(), 1, "only the page's own script");
    assert!(!scripts[0].attrs.iter().any(|(n, _)| n == "src"));
    for style in dom.by_name("style") {
        assert!(!style.text.contains("url(") && !style.text.contains("@import"));
    }
    let csp = dom
        .by_name("meta")
        .into_iter()
        .find(|m| m.attr("http-equiv") == Some("Content-Security-Policy"))
        .and_then(|m| m.attr("content").map(str::to_string))
        .expect("a content security policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'sha256-"),
        "{csp}"
    );

    // Hostile names, members, messages and policy text show as the text they are.
    let body = dom.text();
    for hostile in [
        IMG,
        CLOSE_SCRIPT,
        QUOTES,
        FORMULA,
        "Rule <i>A</i> & \"quoted\"",
        "approved <b>in</b> SEC-1 \"yes\"",
    ] {
        assert!(body.contains(hostile), "{hostile:?} not shown as text");
    }
    let became_markup = |tag: &str, text: &str| dom.by_name(tag).iter().any(|e| e.text == text);
    assert!(!became_markup("i", "A"), "a policy title became markup");
    assert!(!became_markup("u", "to"), "an API message became markup");
    assert!(!became_markup("b", "in"), "a waiver reason became markup");
    assert!(body.contains("ORG <x>"));
}

#[test]
fn the_page_counts_are_the_json_counts() {
    let (dir, _) = write_reports(&[Format::Json, Format::Html], &WriteOptions::default());
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(format!("{STEM}.json"))).expect("read"),
    )
    .expect("JSON");
    let html = std::fs::read_to_string(dir.path().join(format!("{STEM}.html"))).expect("read");
    let dom = Dom::parse(&html);
    // The summary's card rows: lines, then results. Each card is
    // `<div class="card …"><b>N</b><span>label</span></div>`.
    let groups: Vec<HashMap<String, u64>> = dom
        .by_class("cards")
        .iter()
        .map(|group| {
            group
                .children
                .iter()
                .filter_map(|card| {
                    let n = card.child_text("b")?.parse::<u64>().expect("a count");
                    Some((card.child_text("span")?, n))
                })
                .collect()
        })
        .collect();
    let (lines, results) = (&groups[0], &groups[1]);
    let summary = &json["summary"];
    for key in [
        "compliant",
        "non_compliant",
        "error",
        "invalid",
        "not_audited",
    ] {
        assert_eq!(
            Some(lines[key]),
            summary["lines"][key].as_u64(),
            "lines {key}"
        );
    }
    assert_eq!(Some(lines["lines"]), summary["lines"]["total"].as_u64());
    for key in ["pass", "fail", "waived", "not_applicable", "error"] {
        assert_eq!(
            Some(results[key]),
            summary["results"][key].as_u64(),
            "results {key}"
        );
    }
    assert_eq!(results["results"], 6);
    // Every line has its row, in the list of every line.
    let rows = dom
        .by_name("tr")
        .into_iter()
        .filter(|r| r.attr("data-s").is_some())
        .count();
    let attention = json["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter(|l| l["status"] != "compliant")
        .count();
    assert_eq!(
        rows,
        3 + attention,
        "every line, and those needing attention again"
    );
    // The waiver is listed with its days left.
    let waiver_row = dom
        .by_name("tr")
        .into_iter()
        .find(|r| r.text.contains("SEC-1"))
        .expect("the waiver's row");
    assert!(waiver_row.text.contains("2026-12-02") && waiver_row.text.contains('3'));
    assert_eq!(
        waiver_row.attr("class"),
        Some("soon"),
        "expires within 14 days"
    );
}
