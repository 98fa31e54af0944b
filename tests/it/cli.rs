//! The binary as users and cron run it: exit codes, reports, stopping, secrets.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::{json, Value};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::write;

const TOKEN: &str = "cli-secret-token-1d8e6b";
const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cli-policy.toml"
);

fn compliant() -> Value {
    json!({"allowAutoAnswer": false, "connectionType": "ONE_WAY", "accessType": "ALLOW_MEMBERS",
           "members": [{"id": "p1", "type": "PEOPLE", "displayName": "Zoë Ångström", "email": "zoe@example.com"}]})
}

fn two_way_block() -> Value {
    json!({"allowAutoAnswer": true, "connectionType": "TWO_WAY", "accessType": "BLOCK_MEMBERS"})
}

fn big_allow_list() -> Value {
    json!({"allowAutoAnswer": false, "connectionType": "ONE_WAY", "accessType": "ALLOW_MEMBERS",
           "members": [{"id": "a"}, {"id": "b"}, {"id": "c"}]})
}

async fn serve(server: &MockServer, id: &str, status: u16, body: Value) {
    Mock::given(method("GET"))
        .and(path_regex(format!(
            "^/v1/telephony/config/virtualLines/{id}/pushToTalk$"
        )))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(server)
        .await;
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    out: tempfile::TempDir,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.report(".json")).unwrap()).unwrap()
    }
    /// The report whose name ends in `suffix`.
    fn report(&self, suffix: &str) -> PathBuf {
        self.files()
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("a *{suffix} report"))
    }
    fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(self.out.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }
    fn assert_no_token(&self) {
        assert!(!self.stdout.contains(TOKEN), "token on stdout");
        assert!(!self.stderr.contains(TOKEN), "token on stderr");
        for f in self.files() {
            assert!(
                !std::fs::read_to_string(&f).unwrap().contains(TOKEN),
                "token in {}",
                f.display()
            );
        }
    }
}

/// The line IDs of a JSON report, in report order.
fn ids(report: &Value) -> Vec<String> {
    report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect()
}

/// Runs `ptt-audit check-policies <path>`.
fn check_policies(path: impl AsRef<Path>) -> Output {
    Command::cargo_bin("ptt-audit")
        .unwrap()
        .arg("check-policies")
        .arg(path.as_ref())
        .output()
        .unwrap()
}

fn audit(server: &MockServer, args: &[&str]) -> Run {
    let out = tempfile::tempdir().unwrap();
    let output = Command::cargo_bin("ptt-audit")
        .unwrap()
        .env("WEBEX_TOKEN", TOKEN)
        .env_remove("WEBEX_BASE_URL")
        .env_remove("WEBEX_ORG_ID")
        .args(["audit", "--base-url"])
        .arg(format!("{}/v1", server.uri()))
        .args(if args.contains(&"--policies") {
            vec![]
        } else {
            vec!["--policies", POLICY]
        })
        .args(if args.contains(&"--rate") {
            vec![]
        } else {
            vec!["--rate", "0"]
        })
        .arg("--out")
        .arg(out.path())
        .args(args)
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into(),
        stderr: String::from_utf8_lossy(&output.stderr).into(),
        out,
    }
}

#[tokio::test]
async fn all_compliant_exits_0_and_writes_three_reports() {
    let server = MockServer::start().await;
    serve(&server, "A", 200, compliant()).await;
    let run = audit(&server, &["--line", "A", "-vv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let names: Vec<_> = run
        .files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().any(|n| n.ends_with("-findings.csv")));
    assert!(names.iter().any(|n| n.ends_with("-lines.csv")));
    assert!(
        names.iter().all(|n| n.starts_with("ptt-audit-")),
        "{names:?}"
    );
    assert_eq!(run.json()["summary"]["lines"]["compliant"], 1);
    assert!(run.stdout.contains("compliant"), "{}", run.stdout);
    run.assert_no_token();
}

#[tokio::test]
async fn a_failure_exits_1_unless_below_fail_on() {
    let server = MockServer::start().await;
    serve(&server, "BAD", 200, two_way_block()).await;
    serve(&server, "BIG", 200, big_allow_list()).await;
    let run = audit(&server, &["--line", "BAD", "--line", "BIG"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.json()["summary"]["fail_by_severity"]["high"], 1);
    assert!(run.stdout.contains("TEST-TWO-WAY-ALLOW"), "{}", run.stdout);
    run.assert_no_token();

    let run = audit(&server, &["--line", "BIG", "--fail-on", "medium"]);
    assert_eq!(run.code, 0, "a low failure below --fail-on medium");
    let run = audit(&server, &["--line", "BAD", "--fail-on", "critical"]);
    assert_eq!(run.code, 0);
    let run = audit(&server, &["--line", "BAD", "--fail-on", "never"]);
    assert_eq!(run.code, 0);
    let run = audit(&server, &["--line", "BAD", "--fail-on", "high"]);
    assert_eq!(run.code, 1);
}

#[tokio::test]
async fn an_unreadable_line_exits_3_and_is_never_passing() {
    let server = MockServer::start().await;
    serve(&server, "OK", 200, compliant()).await;
    serve(
        &server,
        "GONE",
        404,
        json!({"message": "not found", "trackingId": "TRK404"}),
    )
    .await;
    let run = audit(
        &server,
        &["--line", "OK", "--line", "GONE", "--line", "BAD ID"],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    let report = run.json();
    let lines = report["lines"].as_array().unwrap();
    assert_eq!(ids(&report), ["OK", "GONE", "BAD ID"]);
    assert_eq!(lines[1]["status"], "error");
    assert_eq!(lines[1]["error"]["tracking_id"], "TRK404");
    assert_eq!(lines[1]["error"]["http_status"], 404);
    assert_eq!(lines[2]["status"], "invalid");
    assert_eq!(lines[2]["error"]["kind"], "invalid_id");
    for l in &lines[1..] {
        for r in l["results"].as_array().unwrap() {
            assert_eq!(r["status"], "error", "{l}");
        }
    }
    assert_eq!(
        report["summary"]["results"]["pass"], 1,
        "only the readable line's rules pass"
    );
    assert_eq!(report["summary"]["results"]["not_applicable"], 1);
    assert_eq!(
        report["summary"]["results"]["error"], 4,
        "2 rules x 2 unread lines"
    );
    // The invalid ID was never requested.
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| !r.url.path().contains("BAD")));
}

#[tokio::test]
async fn duplicates_are_requested_once_and_org_id_goes_everywhere() {
    let server = MockServer::start().await;
    serve(&server, "[A-C]", 200, compliant()).await;
    let dir = tempfile::tempdir().unwrap();
    let list = write(dir.path(), "ids.txt", "# nightly\nA\nB\n\nA\n  C  \nB\n");
    let run = audit(
        &server,
        &[
            "--lines",
            list.to_str().unwrap(),
            "--line",
            "C",
            "--org-id",
            "ORG/9",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let reqs = server.received_requests().await.unwrap();
    let mut paths: Vec<_> = reqs.iter().map(|r| r.url.path().to_string()).collect();
    paths.sort();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert!(
        reqs.iter().all(|r| r.url.query() == Some("orgId=ORG%2F9")),
        "{:?}",
        reqs.iter().map(|r| r.url.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(ids(&run.json()), ["A", "B", "C"]);
}

#[tokio::test]
async fn unauthorized_stops_the_run_writes_reports_and_exits_2() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "The request requires a valid access token set in the Authorization request header.", "trackingId": "T401"})))
        .mount(&server)
        .await;
    let ids: Vec<String> = (0..40).map(|i| format!("L{i}")).collect();
    let mut args = vec!["--concurrency", "2"];
    for id in &ids {
        args.extend(["--line", id.as_str()]);
    }
    let run = audit(&server, &args);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("token"), "{}", run.stderr);
    let requests = server.received_requests().await.unwrap().len();
    assert!(requests <= 2, "{requests} requests after a 401");
    let report = run.json();
    assert_eq!(report["run"]["complete"], false);
    assert_eq!(report["run"]["exit_code"], 2);
    let not_audited = report["summary"]["lines"]["not_audited"].as_u64().unwrap();
    assert!(not_audited >= 38, "{not_audited}");
    assert_eq!(report["lines"].as_array().unwrap().len(), 40);
    run.assert_no_token();
}

#[tokio::test]
async fn bad_invocations_exit_2_before_any_request() {
    let server = MockServer::start().await;
    serve(&server, ".*", 200, compliant()).await;
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.txt", "# nothing\n");
    let csv = write(dir.path(), "noid.csv", "name,status\nx,y\n");
    let bad_policy = write(
        dir.path(),
        "bad.toml",
        "[[rule]]\nid = \"X\"\ntitle = \"t\"\nseverity = \"urgent\"\nrequire = \"true\"\n",
    );

    for (args, expect) in [
        (
            vec!["--lines", empty.to_str().unwrap()],
            "no virtual-line IDs",
        ),
        (vec!["--lines", csv.to_str().unwrap()], "no ID column"),
        (
            vec!["--line", "A", "--policies", bad_policy.to_str().unwrap()],
            "urgent",
        ),
        (vec!["--line", "A", "--rate", "fast"], "fast"),
        (vec!["--line", "A", "--format", "xml"], "xml"),
    ] {
        let run = audit(&server, &args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(expect), "{args:?}: {}", run.stderr);
    }
    assert!(server.received_requests().await.unwrap().is_empty());

    // Plain http to a non-loopback host would send the token in clear.
    let out = Command::cargo_bin("ptt-audit")
        .unwrap()
        .env("WEBEX_TOKEN", TOKEN)
        .args([
            "audit",
            "--line",
            "A",
            "--policies",
            POLICY,
            "--base-url",
            "http://example.com/v1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));

    // No token at all.
    let out = Command::cargo_bin("ptt-audit")
        .unwrap()
        .env_remove("WEBEX_TOKEN")
        .args(["audit", "--line", "A", "--policies", POLICY, "--base-url"])
        .arg(format!("{}/v1", server.uri()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WEBEX_TOKEN"));
}

#[test]
fn check_policies_exit_codes() {
    let ok = check_policies(POLICY);
    assert_eq!(ok.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        stdout.contains("TEST-TWO-WAY-ALLOW") && stdout.contains("high"),
        "{stdout}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.toml", "[[rule]]\nid = \"X\"\ntitle = \"t\"\nseverity = \"high\"\nrequire = \"conectionType == 'TWO_WAY'\"\n");
    let out = check_policies(&bad);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml:5") && stderr.contains("conectionType"),
        "{stderr}"
    );
}

#[test]
fn the_shipped_policies_are_valid() {
    let out = check_policies(Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn previous_report_fills_the_change_column() {
    let first = MockServer::start().await;
    serve(&first, "A", 200, two_way_block()).await;
    serve(&first, "B", 200, compliant()).await;
    let before = audit(
        &first,
        &["--line", "A", "--line", "B", "--fail-on", "never"],
    );
    assert_eq!(before.code, 0, "{}", before.stderr);
    let json = before.report(".json");

    // Overnight: A was fixed, B was opened up, C is new.
    let second = MockServer::start().await;
    serve(&second, "A", 200, compliant()).await;
    serve(&second, "[BC]", 200, two_way_block()).await;
    let after = audit(
        &second,
        &[
            "--line",
            "A",
            "--line",
            "B",
            "--line",
            "C",
            "--fail-on",
            "never",
            "--previous",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(after.code, 0, "{}", after.stderr);
    let mut reader = csv::Reader::from_path(after.report("-findings.csv")).unwrap();
    let rows: Vec<(String, String, String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[3].to_string(),
                r[5].to_string(),
                r[8].to_string(),
                r[13].to_string(),
            )
        })
        .collect();
    let change = |line: &str, rule: &str| {
        rows.iter()
            .find(|r| r.0 == line && r.1 == rule)
            .map(|r| r.3.clone())
            .unwrap()
    };
    assert_eq!(change("A", "TEST-TWO-WAY-ALLOW"), "resolved", "{rows:?}");
    assert_eq!(change("B", "TEST-TWO-WAY-ALLOW"), "regressed");
    assert_eq!(change("C", "TEST-TWO-WAY-ALLOW"), "new");
    assert_eq!(change("B", "TEST-ALLOW-SIZE"), "changed");
    assert_eq!(after.json()["summary"]["changes"]["regressed"], 1);
    assert!(
        after
            .stdout
            .contains("Since the previous report: 1 regressed"),
        "{}",
        after.stdout
    );

    let missing = audit(
        &second,
        &["--line", "A", "--previous", "/nonexistent/x.json"],
    );
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("x.json"), "{}", missing.stderr);
}

#[tokio::test]
async fn policies_without_an_enabled_rule_are_refused_by_audit_only() {
    let server = MockServer::start().await;
    serve(&server, "A", 200, compliant()).await;
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.toml", "# nothing yet\n");
    let run = audit(
        &server,
        &["--line", "A", "--policies", empty.to_str().unwrap()],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("no enabled rule"), "{}", run.stderr);
    assert!(server.received_requests().await.unwrap().is_empty());
    // The file itself is valid: check-policies says so, with a warning.
    let checked = check_policies(&empty);
    assert_eq!(checked.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&checked.stderr).contains("no enabled rule"));
}

#[tokio::test]
async fn a_401_on_the_only_line_still_marks_the_run_incomplete() {
    let server = MockServer::start().await;
    serve(&server, "A", 401, json!({"message": "expired"})).await;
    let run = audit(&server, &["--line", "A"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["run"]["complete"], false);
    assert_eq!(report["lines"][0]["error"]["kind"], "auth");
    assert!(!run.stderr.contains("marked not_audited"), "{}", run.stderr);
}

#[test]
fn demo_works_outside_the_repository_with_the_built_in_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("ptt-audit")
        .unwrap()
        .current_dir(dir.path())
        .args(["demo", "--lines", "20", "--faults", "none"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("baseline pack built into ptt-audit"),
        "{stdout}"
    );
    assert!(dir.path().join("reports").read_dir().unwrap().count() == 3);
}

#[tokio::test]
async fn every_line_404_hints_at_the_base_url() {
    let server = MockServer::start().await;
    let run = audit(&server, &["--line", "A", "--line", "B"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("--base-url ends in /v1"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn format_chooses_the_files_and_stdin_feeds_ids() {
    let server = MockServer::start().await;
    serve(&server, "[AB]", 200, compliant()).await;
    let run = audit(&server, &["--line", "A", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let files = run.files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].to_string_lossy().ends_with(".json"));

    let run = audit(&server, &["--line", "A", "--format", "CSV"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.files().len(), 2, "{:?}", run.files());
    assert!(run
        .files()
        .iter()
        .all(|p| p.extension().is_some_and(|e| e == "csv")));

    let out = tempfile::tempdir().unwrap();
    let output = Command::cargo_bin("ptt-audit")
        .unwrap()
        .env("WEBEX_TOKEN", TOKEN)
        .args([
            "audit",
            "--rate",
            "0",
            "--lines",
            "-",
            "--policies",
            POLICY,
            "--base-url",
        ])
        .arg(format!("{}/v1", server.uri()))
        .arg("--out")
        .arg(out.path())
        .write_stdin("# from a pipe\nB\nA\nB\n")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(ids(&report), ["B", "A"]);
}
