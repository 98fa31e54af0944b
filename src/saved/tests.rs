use super::*;

fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("r.json");
    std::fs::write(&path, text).expect("write");
    (dir, path)
}

const REPORT: &str = r#"{"schema_version": 1, "tool": {"name": "ptt-audit", "version": "0"},
    "run": {"id": "R", "started_at": "2026-11-29T03:20:56Z", "org_id": null,
            "base_url": "http://x/v1", "complete": true},
    "summary": {}, "rules": [], "waivers": [],
    "lines": [
      {"id": "L1", "status": "compliant", "read_at": "2026-11-29T03:20:57Z",
       "settings": {"a": 1}, "results": [], "error": null, "name": "One"},
      {"id": "L2", "status": "error", "read_at": null, "settings": null, "results": [],
       "error": {"kind": "http", "http_status": 404, "message": "gone",
                 "tracking_id": null, "attempts": 1}, "line": {"name": "Two"}}
    ]}"#;

#[test]
fn reads_the_header_and_streams_the_lines() {
    let (_d, path) = file(REPORT);
    let h = read_header(&path).expect("a report");
    assert_eq!(h.run.id, "R");
    assert!(h.run.complete);
    assert_eq!(h.lines, 2);
    let mut seen = Vec::new();
    for_each_line(&path, |l: SavedLine| -> Result<(), SavedError> {
        seen.push((l.id.clone(), l.status, l.name(), l.settings.is_some()));
        Ok(())
    })
    .expect("reads");
    assert_eq!(
        seen,
        [
            ("L1".into(), LineStatus::Compliant, Some("One".into()), true),
            ("L2".into(), LineStatus::Error, Some("Two".into()), false)
        ]
    );
}

#[test]
fn key_order_does_not_matter() {
    let sorted = r#"{"lines": [{"id": "L1", "status": "invalid"}],
        "run": {"id": "R", "started_at": "2026-11-29T03:20:56Z"},
        "schema_version": 1, "tool": {"name": "ptt-audit"}}"#;
    let (_d, path) = file(sorted);
    read_header(&path).expect("a report");
    let mut n = 0;
    for_each_line(&path, |_: SavedLine| -> Result<(), SavedError> {
        n += 1;
        Ok(())
    })
    .expect("reads");
    assert_eq!(n, 1);
}

#[test]
fn bad_files_are_named_and_explained() {
    let cases: [(&str, &str); 6] = [
        (&REPORT[..REPORT.len() / 2], "truncated"),
        ("not json", "not valid JSON"),
        (r#"{"a": 1}"#, "no `schema_version` and no `tool.name`"),
        (
            r#"{"schema_version": 0, "tool": {"name": "ptt-audit"}, "run": {}, "lines": []}"#,
            "schema_version 0 is not supported",
        ),
        (
            r#"{"schema_version": 1, "tool": {"name": "other"}, "lines": []}"#,
            "`tool.name` is not",
        ),
        (
            r#"{"schema_version": 1, "tool": {"name": "ptt-audit"}, "run": {"id": "R", "started_at": "2026-11-29T03:20:56Z"}}"#,
            "no `lines`",
        ),
    ];
    for (text, want) in cases {
        let (_d, path) = file(text);
        let e = read_header(&path).expect_err(want).to_string();
        assert!(e.contains(want), "{e}");
        assert!(e.contains("r.json"), "{e}");
    }
    let e = read_header(Path::new("/nonexistent/x.json"))
        .expect_err("missing")
        .to_string();
    assert!(e.contains("/nonexistent/x.json"), "{e}");
}

#[test]
fn a_malformed_line_and_a_callback_error_stop_the_pass() {
    let bad = REPORT.replace("\"status\": \"error\"", "\"status\": \"weird\"");
    let (_d, path) = file(&bad);
    let e = for_each_line(&path, |_: SavedLine| -> Result<(), SavedError> { Ok(()) })
        .expect_err("bad status")
        .to_string();
    assert!(e.contains("lines[1]") && e.contains("r.json"), "{e}");

    let (_d, path) = file(REPORT);
    let mut calls = 0;
    let e = for_each_line(&path, |_: SavedLine| {
        calls += 1;
        Err(SavedError::NotReport {
            path: "cb".into(),
            what: "from the callback".into(),
        })
    })
    .expect_err("the callback's error");
    assert!(e.to_string().contains("from the callback"), "{e}");
    assert_eq!(calls, 1);
}
