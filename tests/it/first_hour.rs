//! The first hour of a new user (issue 10's command-line part): the built-in baseline
//! outside the repository, `init`, a quiet cron run, JSON on stdout, and summaries
//! that say what they judged.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use serde_json::{json, Value};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "first-hour-token-3b9e1f";

fn compliant() -> Value {
    json!({"allowAutoAnswer": false, "connectionType": "ONE_WAY", "accessType": "ALLOW_MEMBERS",
           "members": [{"id": "p1", "type": "PEOPLE", "displayName": "A B", "email": "a@example.com"}]})
}

fn two_way_block() -> Value {
    json!({"allowAutoAnswer": true, "connectionType": "TWO_WAY", "accessType": "BLOCK_MEMBERS"})
}

async fn server_with(lines: &[(&str, Value)]) -> MockServer {
    let server = MockServer::start().await;
    for (id, body) in lines {
        Mock::given(method("GET"))
            .and(path_regex(format!(
                "^/v1/telephony/config/virtualLines/{id}/pushToTalk$"
            )))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
    }
    server
}

/// `ptt-audit ARGS` run in `cwd`, with the token in the environment and nothing else
/// from a developer's environment.
fn ptt_audit(cwd: &Path, args: &[&str]) -> Output {
    Command::cargo_bin("ptt-audit")
        .unwrap()
        .current_dir(cwd)
        .env("WEBEX_TOKEN", TOKEN)
        .env_remove("WEBEX_BASE_URL")
        .env_remove("WEBEX_ORG_ID")
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn without_policies_outside_the_repository_the_built_in_baseline_is_used_and_said() {
    let server = server_with(&[("A", two_way_block())]).await;
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/v1", server.uri());
    let out = ptt_audit(
        dir.path(),
        &["audit", "--line", "A", "--rate", "0", "--base-url", &base],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("built into ptt-audit"), "{stderr}");
    let reports: Vec<_> = std::fs::read_dir(dir.path().join("reports"))
        .expect("reports/ created in the current folder")
        .map(|e| e.unwrap().path())
        .collect();
    let json = reports
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a JSON report");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(
        report["run"]["policies"][0]["path"], "(built-in baseline)",
        "{}",
        report["run"]
    );
    let failed: Vec<&str> = report["lines"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail")
        .map(|r| r["rule_id"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"PTT-TWO-WAY-ALLOW-LIST"), "{failed:?}");

    // check-policies without a path checks the same pack, and says which.
    let check = ptt_audit(dir.path(), &["check-policies"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert!(
        text(&check.stdout).contains("policies are valid: the baseline pack built into ptt-audit"),
        "{}",
        text(&check.stdout)
    );
}

#[test]
fn init_writes_a_starting_point_that_checks_clean_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("audit-home");
    let first = ptt_audit(dir.path(), &["init", target.to_str().unwrap()]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    for file in [
        "policies/baseline.toml",
        "policies/site.toml",
        "ptt-audit.toml",
    ] {
        assert!(target.join(file).is_file(), "{file} written");
    }
    let policies = target.join("policies");
    let check = ptt_audit(dir.path(), &["check-policies", policies.to_str().unwrap()]);
    let listing = text(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert!(listing.contains("SITE-NO-AUTO-ANSWER"), "{listing}");
    assert!(listing.contains("PTT-TWO-WAY-ALLOW-LIST"), "{listing}");
    assert!(
        listing.contains(&format!("policies are valid: {}", policies.display())),
        "{listing}"
    );

    // A second init refuses, names the file, and leaves every file as it was.
    let edited = "# my own edits\n";
    std::fs::write(target.join("policies/site.toml"), edited).unwrap();
    std::fs::remove_file(target.join("ptt-audit.toml")).unwrap();
    let again = ptt_audit(dir.path(), &["init", target.to_str().unwrap()]);
    let stderr = text(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("site.toml"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(target.join("policies/site.toml")).unwrap(),
        edited
    );
    assert!(
        !target.join("ptt-audit.toml").exists(),
        "nothing written when anything exists"
    );
}

#[tokio::test]
async fn quiet_clean_run_prints_nothing_at_all() {
    let server = server_with(&[("A", compliant()), ("B", compliant())]).await;
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/v1", server.uri());
    let out = ptt_audit(
        dir.path(),
        &[
            "audit",
            "-q",
            "--line",
            "A",
            "--line",
            "B",
            "--rate",
            "0",
            "--base-url",
            &base,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "", "stdout");
    assert_eq!(text(&out.stderr), "", "stderr");
    assert!(dir.path().join("reports").read_dir().unwrap().count() >= 3);
}

#[tokio::test]
async fn json_logs_make_every_stdout_and_stderr_line_json() {
    let server = server_with(&[("A", compliant()), ("B", two_way_block())]).await;
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/v1", server.uri());
    let out = ptt_audit(
        dir.path(),
        &[
            "audit",
            "--log-format",
            "json",
            "-v",
            "--line",
            "A",
            "--line",
            "B",
            "--line",
            "bad id",
            "--rate",
            "0",
            "--base-url",
            &base,
        ],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(!stderr.trim().is_empty(), "some log lines");
    for line in stderr.lines() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"));
    }
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON object on stdout: {stdout}");
    let summary: Value = serde_json::from_str(lines[0]).expect("stdout is JSON");
    assert_eq!(summary["summary"]["lines"]["total"], 3);
    assert_eq!(summary["summary"]["lines"]["invalid"], 1);
    assert_eq!(summary["run"]["exit_code"], 3);
    assert_eq!(summary["run"]["complete"], true);
    let reports = summary["reports"].as_array().expect("report paths");
    assert_eq!(reports.len(), 3);
    // Paths as given to --out (here the default, relative to where the run started).
    assert!(reports
        .iter()
        .all(|p| dir.path().join(p.as_str().unwrap()).is_file()));
}

#[tokio::test]
async fn the_exit_code_line_names_the_fail_on_level() {
    let server = server_with(&[("B", two_way_block())]).await;
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/v1", server.uri());
    let out = ptt_audit(
        dir.path(),
        &[
            "audit",
            "--line",
            "B",
            "--rate",
            "0",
            "--fail-on",
            "critical",
            "--base-url",
            &base,
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        stdout.contains("Exit code 1: some rule failed at or above --fail-on critical."),
        "{stdout}"
    );
}

#[test]
fn demo_quiet_prints_no_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = ptt_audit(
        dir.path(),
        &[
            "demo", "-q", "--lines", "20", "--faults", "none", "--rate", "0",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "");
}
