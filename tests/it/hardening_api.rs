//! Hostile or broken servers (`CONTRACT.md` §3), each finding of issue 7 reproduced
//! against a local misbehaving server (wiremock) and run through the binary as users
//! run it: redirects, wrong-typed fields, a password in the base URL, a server that
//! echoes the token, a run that makes no progress, the token file. Oversized bodies,
//! which need a raw TCP server, are in `hardening_body.rs`; both share [`audit`].

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::{header, method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common::{files_in, write};

const BIN: &str = env!("CARGO_BIN_EXE_ptt-audit");
const TOKEN: &str = "hardening-secret-token-5c1e77b2";
const PTT_PATH: &str = "^/v1/telephony/config/virtualLines/[^/]+/pushToTalk$";

/// One critical rule on `allowAutoAnswer`, one low rule on `members`.
const POLICY: &str = r#"
[[rule]]
id = "T-AUTO-ANSWER"
title = "No auto-answer"
severity = "critical"
require = "!allowAutoAnswer"

[[rule]]
id = "T-FEW-MEMBERS"
title = "Few members"
severity = "low"
require = "size(members) < 100"
"#;

fn settings() -> Value {
    json!({"allowAutoAnswer": false, "connectionType": "ONE_WAY",
           "accessType": "ALLOW_MEMBERS", "members": []})
}

/// A finished `ptt-audit audit`: its output, how long it took, and its report folder.
pub(crate) struct Run {
    output: Output,
    took: Duration,
    out: tempfile::TempDir,
}

impl Run {
    pub(crate) fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    pub(crate) fn reports(&self) -> Vec<PathBuf> {
        files_in(self.out.path())
    }
    pub(crate) fn json(&self) -> Value {
        let path = self
            .reports()
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "json"))
            .expect("a JSON report");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }
    pub(crate) fn lines(&self) -> Vec<Value> {
        self.json()["lines"].as_array().unwrap().clone()
    }
    /// The token is nowhere: stdout, stderr, any report.
    pub(crate) fn assert_no_token(&self) {
        assert!(!self.stdout().contains(TOKEN), "token on stdout");
        assert!(!self.stderr().contains(TOKEN), "token on stderr");
        for f in self.reports() {
            let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
            assert!(!text.contains(TOKEN), "token in {}", f.display());
        }
    }
}

/// Runs `ptt-audit audit --base-url BASE` with the test policy, the token in
/// `WEBEX_TOKEN` (unless `args` name a token file) and `args`, on a blocking thread so
/// that servers on this runtime keep answering.
pub(crate) async fn audit(base: &str, args: &[&str]) -> Run {
    let out = tempfile::tempdir().unwrap();
    // Outside the report folder, which then holds only reports.
    let policies = tempfile::tempdir().unwrap();
    let policy = write(policies.path(), "policy.toml", POLICY);
    let mut cmd = std::process::Command::new(BIN);
    cmd.env_remove("WEBEX_BASE_URL")
        .env_remove("WEBEX_ORG_ID")
        .env_remove("RUST_LOG")
        .args(["audit", "--base-url", base, "--policies"])
        .arg(&policy)
        .arg("--out")
        .arg(out.path())
        .args(args);
    if args.contains(&"--token-file") {
        cmd.env_remove("WEBEX_TOKEN");
    } else {
        cmd.env("WEBEX_TOKEN", TOKEN);
    }
    let start = Instant::now();
    let output = tokio::task::spawn_blocking(move || cmd.output().expect("ptt-audit runs"))
        .await
        .unwrap();
    Run {
        output,
        took: start.elapsed(),
        out,
    }
}

fn v1(server: &MockServer) -> String {
    format!("{}/v1", server.uri())
}

// 1. Redirects -----------------------------------------------------------------------

/// A 302 to another server: reqwest would have followed it (with the token stripped)
/// and evaluated that server's answer as the line's settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_an_http_error_and_the_other_server_is_never_asked() {
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(settings()))
        .mount(&elsewhere)
        .await;
    let api = MockServer::start().await;
    let target = format!(
        "{}/v1/telephony/config/virtualLines/R1/pushToTalk",
        elsewhere.uri()
    );
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(302).insert_header("Location", target.as_str()))
        .mount(&api)
        .await;

    let run = audit(&v1(&api), &["--line", "R1", "-vv"]).await;
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert_eq!(elsewhere.received_requests().await.unwrap().len(), 0);
    let line = &run.lines()[0];
    assert_eq!(line["status"], "error");
    assert_eq!(line["settings"], Value::Null);
    assert_eq!(line["error"]["kind"], "http");
    assert_eq!(line["error"]["http_status"], 302);
    assert_eq!(line["error"]["attempts"], 1, "a redirect is not retried");
    let message = line["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("redirect not followed") && message.contains(&target),
        "{message}"
    );
    run.assert_no_token();
}

// 3. Documented fields of the wrong type ----------------------------------------------

/// `allowAutoAnswer: "true"` turned the critical rule into `error`, the other rules
/// passed, and `--fail-on critical` exited 0 saying no rule failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_typed_field_is_a_decode_error_never_evaluated() {
    let server = MockServer::start().await;
    let cases = [
        (
            "AUTO",
            json!({"allowAutoAnswer": "true", "connectionType": "TWO_WAY", "accessType": "BLOCK_MEMBERS"}),
        ),
        (
            "CONN",
            json!({"allowAutoAnswer": true, "connectionType": 2, "accessType": "BLOCK_MEMBERS"}),
        ),
        (
            "ACCESS",
            json!({"allowAutoAnswer": true, "connectionType": "TWO_WAY", "accessType": {"v": 1}}),
        ),
        (
            "MEMBERS",
            json!({"allowAutoAnswer": true, "connectionType": "TWO_WAY", "accessType": "BLOCK_MEMBERS", "members": "everyone"}),
        ),
    ];
    for (id, body) in &cases {
        Mock::given(method("GET"))
            .and(path_regex(format!(
                "^/v1/telephony/config/virtualLines/{id}/pushToTalk$"
            )))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
    }
    let mut args = vec!["--fail-on", "critical", "--max-retries", "1", "--rate", "0"];
    for (id, _) in &cases {
        args.extend(["--line", id]);
    }
    let run = audit(&v1(&server), &args).await;
    assert_eq!(run.code(), 3, "{}", run.stderr());
    for (line, (id, _)) in run.lines().iter().zip(&cases) {
        assert_eq!(line["id"], *id);
        assert_eq!(line["status"], "error", "{id}");
        assert_eq!(line["settings"], Value::Null, "{id}");
        assert_eq!(line["error"]["kind"], "decode", "{id}");
        assert_eq!(
            line["error"]["attempts"], 2,
            "{id}: retried like any decode error"
        );
        let results = line["results"].as_array().unwrap();
        assert!(
            results.iter().all(|r| r["status"] == "error"),
            "{id}: {results:?}"
        );
    }
    let message = run.lines()[0]["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("allowAutoAnswer is a string, expected a boolean"),
        "{message}"
    );
    assert_eq!(run.json()["summary"]["results"]["pass"], 0);
}

// 4. A user or password in the base URL ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_url_with_a_password_is_refused_without_echoing_it() {
    for base in [
        "https://admin:pa55w0rd-9@webexapis.com/v1",
        "http://admin:pa55w0rd-9@127.0.0.1:9/v1",
    ] {
        let run = audit(base, &["--line", "A"]).await;
        assert_eq!(run.code(), 2, "{base}: {}", run.stderr());
        let stderr = run.stderr();
        assert!(stderr.contains("user name or password"), "{stderr}");
        assert!(!stderr.contains("pa55w0rd-9"), "{stderr}");
        assert!(!run.stdout().contains("pa55w0rd-9"));
        assert!(run.reports().is_empty(), "nothing audited");
    }
}

// 5. A server that echoes the token ---------------------------------------------------

/// Puts the request's `Authorization` header into every answer: the error message,
/// the tracking IDs (body and header), and a 200's settings (a value, a member's name,
/// a key).
struct Echo;

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let auth = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let id = request.url.path().split('/').nth(5).unwrap_or("");
        match id {
            "ERR" => ResponseTemplate::new(404)
                .insert_header("TrackingID", format!("HDR {auth}").as_str())
                .set_body_json(json!({
                    "message": format!("no line for {auth}"),
                    "trackingId": format!("TRK-{auth}"),
                })),
            "FLAKY" => ResponseTemplate::new(503)
                .insert_header("TrackingID", format!("HDR {auth}").as_str())
                .set_body_json(json!({"message": format!("busy, {auth}")})),
            _ => ResponseTemplate::new(200).set_body_json(json!({
                "allowAutoAnswer": false,
                "connectionType": "ONE_WAY",
                "accessType": "ALLOW_MEMBERS",
                "members": [{"id": "p1", "displayName": auth, "email": format!("{auth}@example.com")}],
                "note": format!("you sent {auth}"),
                auth.clone(): "a key",
            })),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_echoes_the_token_never_gets_it_into_logs_or_reports() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex(PTT_PATH))
        .respond_with(Echo)
        .mount(&server)
        .await;
    for log_format in ["text", "json"] {
        let run = audit(
            &v1(&server),
            &[
                "--line",
                "ERR",
                "--line",
                "FLAKY",
                "--line",
                "OK",
                "--max-retries",
                "1",
                "--rate",
                "0",
                "--format",
                "json,csv",
                "-vv",
                "--log-format",
                log_format,
            ],
        )
        .await;
        assert_eq!(run.code(), 3, "{}", run.stderr());
        run.assert_no_token();
        // The echo did happen, and was redacted where it landed.
        let lines = run.lines();
        let err = &lines[0]["error"];
        assert_eq!(
            err["message"],
            "HTTP 404 Not Found: no line for Bearer [REDACTED]"
        );
        assert_eq!(err["tracking_id"], "TRK-Bearer [REDACTED]");
        assert!(
            lines[1]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("busy, Bearer [REDACTED]"),
            "{}",
            lines[1]["error"]
        );
        let settings = &lines[2]["settings"];
        assert_eq!(settings["note"], "you sent Bearer [REDACTED]");
        assert_eq!(settings["members"][0]["displayName"], "Bearer [REDACTED]");
        assert_eq!(settings["Bearer [REDACTED]"], "a key");
        assert!(
            run.stderr().contains("[REDACTED]"),
            "{log_format}: the 404 is logged"
        );
    }
}

// 6. A run that makes no progress stops -----------------------------------------------

/// A server answering 429 forever with `Retry-After: 1`: one line took 50 s (its
/// throttle budget), and at the one-hour cap days. `--max-stall 2s` ends the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_throttles_forever_stops_the_run_after_max_stall() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .mount(&server)
        .await;
    let mut args = vec!["--max-stall", "2s", "--rate", "0"];
    let ids: Vec<String> = (0..5).map(|i| format!("L{i}")).collect();
    for id in &ids {
        args.extend(["--line", id.as_str()]);
    }
    let run = audit(&v1(&server), &args).await;
    assert_eq!(run.code(), 3, "{}", run.stderr());
    // Five lines would take 50 s each on their throttle budget; stopping takes 2 s.
    assert!(run.took < Duration::from_secs(20), "took {:?}", run.took);
    let report = run.json();
    assert_eq!(report["run"]["complete"], false);
    assert_eq!(report["summary"]["lines"]["not_audited"], 5);
    for line in run.lines() {
        assert_eq!(line["status"], "not_audited");
        assert_eq!(line["error"]["kind"], "not_audited");
        let message = line["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("no answer was a success (2xx) for 2s (--max-stall)"),
            "{message}"
        );
    }
    assert!(run.stderr().contains("--max-stall"), "{}", run.stderr());
}

/// Nothing listening on the port: 100 lines took 108 s of retries before exit 3. A run
/// whose connection attempts all fail, and that never had a 2xx, stops after a few.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_ends_the_run_fast() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let ids = (0..100).map(|i| format!("L{i}\n")).collect::<String>();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "ids.txt", &ids);
    let base = format!("http://127.0.0.1:{port}/v1");
    let run = audit(&base, &["--lines", file.to_str().unwrap()]).await;
    assert_eq!(run.code(), 3, "{}", run.stderr());
    assert!(run.took < Duration::from_secs(20), "took {:?}", run.took);
    let lines = run.lines();
    assert_eq!(lines.len(), 100);
    for line in &lines {
        assert_eq!(line["status"], "not_audited", "{line}");
        let message = line["error"]["message"].as_str().unwrap();
        assert!(message.contains("could not be reached"), "{message}");
    }
    assert!(
        run.stderr().contains("Check --base-url"),
        "{}",
        run.stderr()
    );
    eprintln!("nothing listening: 100 lines ended in {:?}", run.took);
}

// 8. The token file -------------------------------------------------------------------

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_with_a_bom_works_and_one_others_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(settings()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "token.txt", &format!("\u{feff}{TOKEN}\r\n"));
    let token_file = file.to_str().unwrap();

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = audit(&v1(&server), &["--line", "A", "--token-file", token_file]).await;
    assert_eq!(run.code(), 0, "the BOM is not sent: {}", run.stderr());
    let stderr = run.stderr();
    assert!(
        stderr.contains(&format!(
            "token file {token_file} can be read by group or others"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("chmod 600 {token_file}")),
        "{stderr}"
    );
    run.assert_no_token();

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = audit(&v1(&server), &["--line", "A", "--token-file", token_file]).await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(!run.stderr().contains("chmod"), "{}", run.stderr());
}
