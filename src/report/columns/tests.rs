use super::*;
use serde_json::json;

#[test]
fn headers_follow_the_tables() {
    assert_eq!(FINDINGS_HEADER.len(), 21);
    assert_eq!(FINDINGS_HEADER[0], "run_id");
    assert_eq!(FINDINGS_HEADER[13], "change");
    // The waiver metadata after the §6 columns, the identity columns (§7) last.
    assert_eq!(
        FINDINGS_HEADER[14..],
        [
            "waiver_ticket",
            "waiver_owner",
            "waiver_label",
            "location_id",
            "location_name",
            "phone_number",
            "extension"
        ]
    );
    assert_eq!(LINES_HEADER.len(), 21);
    assert_eq!(LINES_HEADER[10], "members");
    assert_eq!(
        LINES_HEADER[17..],
        ["location_id", "location_name", "phone_number", "extension"]
    );
    for w in FINDINGS
        .iter()
        .map(|c| c.width)
        .chain(LINES.iter().map(|c| c.width))
    {
        assert!((6.0..=60.0).contains(&w), "{w}");
    }
}

#[test]
fn member_formats() {
    let full = json!({"id": "p1", "displayName": "Alice Little", "firstName": "A",
                      "email": "alice@example.com"});
    assert_eq!(format_member(&full), "Alice Little <alice@example.com>");
    let names = json!({"id": "p2", "firstName": "Bob", "lastName": "Johnson"});
    assert_eq!(format_member(&names), "Bob Johnson");
    let last_only = json!({"lastName": "Johnson", "email": "b@x.org"});
    assert_eq!(format_member(&last_only), "Johnson <b@x.org>");
    let email = json!({"id": "p3", "displayName": "  ", "email": "c@x.org"});
    assert_eq!(format_member(&email), "c@x.org");
    assert_eq!(format_member(&json!({"id": "p4"})), "p4");
    assert_eq!(
        format_member(&json!({"type": "PEOPLE"})),
        r#"{"type":"PEOPLE"}"#
    );
    assert_eq!(
        format_members(&json!([full, {"id": "p4"}])),
        "Alice Little <alice@example.com>; p4"
    );
    assert_eq!(format_members(&json!([])), "");
}

fn line(settings: Option<Value>) -> LineReport {
    LineReport {
        index: 0,
        id: "L".into(),
        identity: crate::model::LineIdentity::unknown(),
        status: crate::model::LineStatus::Compliant,
        read_at: None,
        settings,
        findings: vec![],
        error: None,
    }
}

#[test]
fn setting_cells() {
    let l = line(Some(
        json!({"allowAutoAnswer": false, "connectionType": "ONE_WAY", "n": null}),
    ));
    assert_eq!(setting(&l, "allowAutoAnswer").to_text(), "false");
    assert_eq!(setting(&l, "connectionType").to_text(), "ONE_WAY");
    assert_eq!(setting(&l, "n").to_text(), "");
    assert_eq!(setting(&l, "accessType").to_text(), "");
    assert_eq!(setting(&line(None), "accessType").to_text(), "");
}

#[test]
fn cells_as_text() {
    let t = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 2, 3, 4, 5).unwrap();
    assert_eq!(Cell::Time(Some(t)).to_text(), "2026-01-02T03:04:05Z");
    assert_eq!(Cell::Time(None).to_text(), "");
    let d = NaiveDate::from_ymd_opt(2027, 1, 31);
    assert_eq!(Cell::Date(d).to_text(), "2027-01-31");
    assert_eq!(Cell::Number(Some(404)).to_text(), "404");
    assert_eq!(Cell::Number(None).to_text(), "");
    assert_eq!(Cell::Label("fail").to_text(), "fail");
}

#[test]
fn the_failing_filter_keeps_fail_waived_and_error() {
    let kept: Vec<RuleStatus> = RuleStatus::ALL
        .into_iter()
        .filter(|s| FindingsFilter::Failing.keeps(*s))
        .collect();
    assert_eq!(
        kept,
        [RuleStatus::Fail, RuleStatus::Waived, RuleStatus::Error]
    );
    assert!(RuleStatus::ALL
        .into_iter()
        .all(|s| FindingsFilter::All.keeps(s)));
}
