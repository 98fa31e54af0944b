//! Policy authoring, part two: waivers carry a ticket, an owner and a label into every
//! report; `check-policies` (and `audit`, once, at its start) warns about expired and
//! expiring waivers, names the lines waivers cover, and finds rules that cannot fail.

use std::path::Path;

use assert_cmd::Command;
use chrono::{Days, Utc};
use ptt_audit::policy::{self, PolicySet};
use serde_json::{json, Value};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{read_csv_maps, write};

/// `today` plus `days` (negative: before), as a TOML date.
fn date(days: i64) -> String {
    let today = Utc::now().date_naive();
    let d = if days < 0 {
        today.checked_sub_days(Days::new(days.unsigned_abs()))
    } else {
        today.checked_add_days(Days::new(days.unsigned_abs()))
    };
    d.expect("a date").to_string()
}

/// A rule that fails on auto-answer, a rule that cannot fail (no domain is listed),
/// and three waivers: with all metadata, unused, expired.
fn policy_with_waivers() -> String {
    format!(
        r#"[vars]
domains = []

[[rule]]
id = "NO-AUTO-ANSWER"
title = "No auto-answer"
severity = "high"
require = "!allowAutoAnswer"

[[rule]]
id = "DOMAINS"
title = "Members from listed domains"
severity = "low"
require = "size(vars.domains) == 0 || members.all(m, !has(m.email) || vars.domains.exists(d, m.email.endsWith('@' + d)))"

[[waiver]]
rule = "NO-AUTO-ANSWER"
line = "L1"
reason = "Warehouse intercom"
expires = 2099-12-31
ticket = "SEC-142"
owner = "facilities@example.com"
label = "Warehouse, dock 4"

[[waiver]]
rule = "NO-AUTO-ANSWER"
line = "L2"
reason = "Lobby"
expires = 2099-12-31

[[waiver]]
rule = "NO-AUTO-ANSWER"
line = "L3"
reason = "Old exception"
expires = {expired}
ticket = "SEC-9"
"#,
        expired = date(-3)
    )
}

#[tokio::test]
async fn waiver_metadata_reaches_json_csv_and_summary_and_audit_warns_once() {
    let server = MockServer::start().await;
    for (id, auto) in [("L1", true), ("L2", false), ("L3", true)] {
        Mock::given(method("GET"))
            .and(path_regex(format!(
                "^/v1/telephony/config/virtualLines/{id}/pushToTalk$"
            )))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "allowAutoAnswer": auto, "connectionType": "ONE_WAY",
                "accessType": "ALLOW_MEMBERS", "members": []
            })))
            .mount(&server)
            .await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let policies = write(dir.path(), "site.toml", &policy_with_waivers());
    let out = dir.path().join("reports");
    let output = Command::cargo_bin("ptt-audit")
        .expect("the binary")
        .env("WEBEX_TOKEN", "waiver-test-token")
        .args([
            "audit", "--rate", "0", "--line", "L1", "--line", "L2", "--line", "L3",
        ])
        .arg("--base-url")
        .arg(format!("{}/v1", server.uri()))
        .arg("--policies")
        .arg(&policies)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("ptt-audit runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "L3 fails\n{stdout}\n{stderr}"
    );

    // Logged once, at the start: the expired waiver and the rule that cannot fail.
    for needle in [
        "waiver of line L3 expired on",
        "rule DOMAINS: `require` holds on all",
    ] {
        assert_eq!(stderr.matches(needle).count(), 1, "{needle}:\n{stderr}");
    }

    let report = |suffix: &str| {
        std::fs::read_dir(&out)
            .expect("reports")
            .map(|e| e.expect("entry").path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("a {suffix} report"))
    };
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(report(".json")).expect("read"))
        .expect("JSON");
    let mut first = doc["waivers"][0].clone();
    let days_left = first
        .as_object_mut()
        .and_then(|o| o.remove("days_left"))
        .and_then(|d| d.as_i64())
        .expect("days_left");
    assert!(days_left > 365, "expires 2099-12-31: {days_left}");
    assert_eq!(
        first,
        json!({"rule": "NO-AUTO-ANSWER", "line": "L1", "reason": "Warehouse intercom",
               "expires": "2099-12-31", "state": "applied", "ticket": "SEC-142",
               "owner": "facilities@example.com", "label": "Warehouse, dock 4"})
    );
    assert_eq!(doc["waivers"][1]["state"], "unused");
    assert_eq!(doc["waivers"][1]["ticket"], Value::Null);
    assert_eq!(doc["waivers"][2]["state"], "expired");
    assert_eq!(doc["waivers"][2]["ticket"], "SEC-9");
    let l1 = &doc["lines"][0]["results"][0];
    assert_eq!(l1["status"], "waived");
    assert_eq!(l1["waiver"]["ticket"], "SEC-142");
    assert_eq!(l1["waiver"]["label"], "Warehouse, dock 4");

    let (header, rows) = read_csv_maps(&report("-findings.csv"));
    assert_eq!(
        header[14..17],
        ["waiver_ticket", "waiver_owner", "waiver_label"]
    );
    let row = |line: &str, rule: &str| {
        rows.iter()
            .find(|r| r["line_id"] == line && r["rule_id"] == rule)
            .unwrap_or_else(|| panic!("a row for {line} {rule}"))
    };
    let waived = row("L1", "NO-AUTO-ANSWER");
    assert_eq!(
        (
            waived["status"].as_str(),
            waived["waiver_reason"].as_str(),
            waived["waiver_ticket"].as_str(),
            waived["waiver_owner"].as_str(),
            waived["waiver_label"].as_str()
        ),
        (
            "waived",
            "Warehouse intercom",
            "SEC-142",
            "facilities@example.com",
            "Warehouse, dock 4"
        )
    );
    let expired = row("L3", "NO-AUTO-ANSWER");
    assert_eq!(expired["status"], "fail");
    assert_eq!(
        (
            expired["waiver_ticket"].as_str(),
            expired["waiver_owner"].as_str()
        ),
        ("SEC-9", "")
    );
    assert_eq!(row("L2", "NO-AUTO-ANSWER")["waiver_ticket"], "");

    // The summary counts the waivers and names those that need a look.
    assert!(
        stdout.contains("Waivers: 1 applied, 1 unused, 1 expired"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  unused   NO-AUTO-ANSWER on L2  until 2099-12-31\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "  expired  NO-AUTO-ANSWER on L3  until {}  [ticket SEC-9]",
            date(-3)
        )),
        "{stdout}"
    );
    assert!(
        !stdout.contains("on L1 (Warehouse"),
        "applied waivers are only counted"
    );
}

#[test]
fn check_policies_warns_about_waivers_and_rules_that_cannot_fail_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}\n[[waiver]]\nrule = \"NO-AUTO-ANSWER\"\nline = \"L4\"\nreason = \"Renewal due\"\nexpires = {}\nowner = \"ops@example.com\"\nlabel = \"Front desk\"\n\n[[rule]]\nid = \"OFF\"\ntitle = \"t\"\nseverity = \"low\"\nrequire = \"!allowAutoAnswer\"\nenabled = false\n\n[[waiver]]\nrule = \"OFF\"\nline = \"L5\"\nreason = \"r\"\nexpires = 2099-01-01\n\n[[waiver]]\nrule = \"NO-AUTO-ANSWER\"\nline = \"L2\"\nreason = \"again\"\nexpires = 2099-06-30\n",
        policy_with_waivers(),
        date(5)
    );
    let file = write(dir.path(), "site.toml", &text);
    let output = Command::cargo_bin("ptt-audit")
        .expect("the binary")
        .arg("check-policies")
        .arg(&file)
        .output()
        .expect("ptt-audit runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("policies are valid"), "{stdout}");

    // The listing shows each waiver's label, ticket, owner and state.
    for needle in [
        "NO-AUTO-ANSWER on L1 (Warehouse, dock 4)  until 2099-12-31 (active)  Warehouse intercom  [ticket SEC-142, owner facilities@example.com]",
        "(EXPIRED)",
        &format!("NO-AUTO-ANSWER on L4 (Front desk)  until {} (expires in 5 day(s))", date(5)),
    ] {
        assert!(stdout.contains(needle), "{needle}:\n{stdout}");
    }

    let at = file.display().to_string();
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    let find = |needle: &str| {
        warnings
            .iter()
            .find(|w| w.contains(needle))
            .unwrap_or_else(|| panic!("a warning with {needle}:\n{stderr}"))
    };
    assert!(find("rule DOMAINS: `require` holds on all")
        .contains("it cannot fail as configured (it reads vars.domains = [])"));
    assert!(find("waiver of line L3 expired on")
        .starts_with(&format!("warning: {at}:31: rule NO-AUTO-ANSWER:")));
    assert!(find("waiver of line L4 (Front desk) expires on")
        .contains("(in 5 days); owner ops@example.com"));
    assert!(find("waiver of line L5: rule `OFF` is disabled").contains("never applies"));
    assert!(find("a second waiver of line L2").contains(&format!("(the first is at {at}:25)")));
    assert!(find("the waivers name 5 line(s): L1, L2, L3, L4, L5").contains("only in an audit"));
    assert_eq!(warnings.len(), 6, "{stderr}");
}

fn cannot_fail(set: &PolicySet) -> Vec<String> {
    set.warnings
        .iter()
        .filter(|w| w.message.contains("cannot fail as configured"))
        .map(|w| format!("{}: {}", w.rule.as_deref().unwrap_or("?"), w.message))
        .collect()
}

/// An empty `approved_domains` switches PTT-MEMBER-DOMAIN off: warned about, until a
/// site file lists the domains.
#[test]
fn the_baseline_with_no_approved_domain_is_warned_about_until_a_site_file_sets_them() {
    let alone = policy::load_str(Path::new("baseline.toml"), policy::BASELINE).expect("loads");
    let warned = cannot_fail(&alone);
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert!(
        warned[0].starts_with("PTT-MEMBER-DOMAIN: `require` holds on all"),
        "{}",
        warned[0]
    );
    assert!(
        warned[0].ends_with("(it reads vars.approved_domains = [])"),
        "{}",
        warned[0]
    );

    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "baseline.toml", policy::BASELINE);
    write(
        dir.path(),
        "site.toml",
        "[vars]\napproved_domains = [\"example.com\"]\n",
    );
    let tuned = policy::load(dir.path()).expect("loads");
    assert_eq!(cannot_fail(&tuned), Vec::<String>::new());
}

fn judged(require: &str, when: Option<&str>, vars: &str) -> Vec<String> {
    let when = when
        .map(|w| format!("when = \"{w}\"\n"))
        .unwrap_or_default();
    let text = format!(
        "[vars]\n{vars}\n[[rule]]\nid = \"R\"\ntitle = \"t\"\nseverity = \"low\"\n{when}require = \"{require}\"\n"
    );
    let set = policy::load_str(Path::new("p.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    cannot_fail(&set)
}

#[test]
fn rules_that_cannot_fail_are_found_and_rules_that_can_are_left_alone() {
    // Cannot fail: always true, a vacuous `||`, a `when` that never holds.
    assert_eq!(judged("true", None, "").len(), 1);
    assert_eq!(judged("size(members) >= 0", None, "").len(), 1);
    let never = judged(
        "false",
        Some("connectionType == 'ONE_WAY' && connectionType == 'TWO_WAY'"),
        "",
    );
    assert_eq!(never.len(), 1);
    assert!(never[0].contains("`when` is false on all"), "{}", never[0]);

    // Can fail, each only on a sample built from what the rule spells.
    for (require, vars) in [
        ("connectionType != 'THREE_WAY'", ""),
        (
            "members.all(m, !has(m.displayName) || !m.displayName.contains('Test'))",
            "",
        ),
        (
            "members.all(m, !has(m.email) || !m.email.endsWith(vars.blocked))",
            "blocked = \"evil.com\"",
        ),
        ("size(members) <= vars.max", "max = 500"),
        (
            "members.all(m, !has(m.numbers) || size(m.numbers) <= 40)",
            "",
        ),
        (
            "accessType == 'ALLOW_MEMBERS' || accessType == 'BLOCK_MEMBERS'",
            "",
        ),
        ("members.all(m, !has(m.type) || m.type == 'PEOPLE')", ""),
        (
            "size(members.map(m, m.id)) == size(members.map(m, m.id).filter(i, i != ''))",
            "",
        ),
    ] {
        assert_eq!(
            judged(require, None, vars),
            Vec::<String>::new(),
            "{require}"
        );
    }

    // Not judged: a particular line, a limit past what is sampled, a quadratic rule.
    assert!(judged("line.id != 'L-NOT-SAMPLED'", None, "").is_empty());
    assert!(judged("size(members) <= vars.max", None, "max = 5000").is_empty());
    assert!(judged("members.all(a, members.all(b, true))", None, "").is_empty());
}
