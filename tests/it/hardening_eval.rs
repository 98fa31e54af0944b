//! Expensive rules and signals, through the binary: a rule that would run for hours is
//! cut at `--eval-timeout` while the run goes on, an interrupt is honoured while such a
//! rule runs, SIGHUP stops a run like SIGTERM, and a rule whose cost grows with the
//! square of the members is a load warning.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::write;

const TOKEN: &str = "hardening-eval-token-7b";
const BIN: &str = env!("CARGO_BIN_EXE_ptt-audit");

/// Cubic in the members: about 8·10⁹ steps on 2,000 members, hours of CPU.
const RUNAWAY: &str = "members.all(a, members.all(b, members.all(c, a.id != '')))";

/// How long a run may take here before the test calls it hung: far more than any run
/// needs, far less than the runaway rule would take.
const BOUND: Duration = Duration::from_secs(20);

fn policy(dir: &Path) -> std::path::PathBuf {
    write(
        dir,
        "policy.toml",
        &format!(
            r#"
[[rule]]
id = "RUNAWAY"
title = "every member is there (slowly)"
severity = "low"
require = "{RUNAWAY}"

[[rule]]
id = "NO-AUTO-ANSWER"
title = "no auto-answer"
severity = "high"
require = "!allowAutoAnswer"
"#
        ),
    )
}

fn settings(auto_answer: bool, members: usize) -> Value {
    let members: Vec<Value> = (0..members)
        .map(|i| json!({"id": format!("P{i}"), "type": "PEOPLE"}))
        .collect();
    json!({"allowAutoAnswer": auto_answer, "connectionType": "ONE_WAY",
           "accessType": "ALLOW_MEMBERS", "members": members})
}

async fn serve(server: &MockServer, id: &str, body: Value, delay: Duration) {
    Mock::given(method("GET"))
        .and(path_regex(format!(
            "^/v1/telephony/config/virtualLines/{id}/pushToTalk$"
        )))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(body)
                .set_delay(delay),
        )
        .mount(server)
        .await;
}

/// `ptt-audit audit` against `server`, unpaced, one line at a time (unless `args`
/// say otherwise), reports in `out`, started and not waited for.
fn spawn_audit(server: &MockServer, policy: &Path, out: &Path, args: &[&str]) -> Child {
    Command::new(BIN)
        .env("WEBEX_TOKEN", TOKEN)
        .env_remove("WEBEX_BASE_URL")
        .env_remove("WEBEX_ORG_ID")
        .env_remove("RUST_LOG")
        .arg("audit")
        .arg("--base-url")
        .arg(format!("{}/v1", server.uri()))
        .args(["--rate", "0"])
        .args(if args.contains(&"--concurrency") {
            &[][..]
        } else {
            &["--concurrency", "1"][..]
        })
        .arg("--policies")
        .arg(policy)
        .arg("--out")
        .arg(out)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ptt-audit starts")
}

/// Waits for `child` at most [`BOUND`] (then kills it and fails), and returns its
/// status, stderr and how long it took from `since`.
async fn finish(mut child: Child, since: Instant) -> (ExitStatus, String, Duration) {
    let status = loop {
        if let Some(status) = child.try_wait().expect("ptt-audit can be waited for") {
            break status;
        }
        if since.elapsed() > BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ptt-audit still ran {BOUND:?} later");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let elapsed = since.elapsed();
    let mut stderr = String::new();
    if let Some(mut s) = child.stderr.take() {
        std::io::Read::read_to_string(&mut s, &mut stderr).expect("stderr readable");
    }
    (status, stderr, elapsed)
}

/// Waits until `server` has received `n` requests.
async fn requests(server: &MockServer, n: usize) {
    let deadline = Instant::now() + BOUND;
    while server.received_requests().await.unwrap_or_default().len() < n {
        assert!(Instant::now() < deadline, "fewer than {n} requests arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{name}");
}

fn report(out: &Path) -> Value {
    let json = std::fs::read_dir(out)
        .expect("the report folder exists")
        .map(|e| e.expect("a dir entry").path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("a JSON report");
    serde_json::from_str(&std::fs::read_to_string(json).expect("readable")).expect("JSON")
}

fn line<'r>(report: &'r Value, id: &str) -> &'r Value {
    report["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .find(|l| l["id"] == id)
        .unwrap_or_else(|| panic!("line {id} in the report"))
}

/// `(status, message)` of each result of a line, by rule ID.
fn results(line: &Value) -> Vec<(String, String, String)> {
    line["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or("").to_string();
            (text("rule_id"), text("status"), text("message"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_rule_is_error_after_eval_timeout_and_the_run_goes_on() {
    let server = MockServer::start().await;
    serve(&server, "SMALL-1", settings(false, 1), Duration::ZERO).await;
    serve(&server, "BIG", settings(false, 2000), Duration::ZERO).await;
    serve(&server, "SMALL-2", settings(true, 2), Duration::ZERO).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let (policy, out) = (policy(dir.path()), dir.path().join("out"));

    let started = Instant::now();
    let child = spawn_audit(
        &server,
        &policy,
        &out,
        &[
            "--line",
            "SMALL-1",
            "--line",
            "BIG",
            "--line",
            "SMALL-2",
            "--eval-timeout",
            "200ms",
        ],
    );
    // Ends although the runaway rule's thread is still busy: nothing waits for it.
    let (status, stderr, took) = finish(child, started).await;
    assert_eq!(
        status.code(),
        Some(3),
        "an error result: incomplete\n{stderr}"
    );
    eprintln!("the run took {took:?}");

    let report = report(&out);
    assert_eq!(report["run"]["complete"], true);
    let big = line(&report, "BIG");
    assert_eq!(big["status"], "error");
    assert_eq!(
        results(big),
        [
            (
                "RUNAWAY".into(),
                "error".into(),
                "evaluation took too long (over 200ms)".into()
            ),
            // The line's other rules still run.
            ("NO-AUTO-ANSWER".into(), "pass".into(), String::new()),
        ]
    );
    assert_eq!(line(&report, "SMALL-1")["status"], "compliant");
    let small_2 = line(&report, "SMALL-2");
    assert_eq!(small_2["status"], "non_compliant");
    assert_eq!(results(small_2)[1].1, "fail");
    assert_eq!(report["summary"]["results"]["error"], 1);

    // The load-time warning, logged at the start of the audit.
    let warning = stderr
        .lines()
        .find(|l| l.contains("warning:") && l.contains("rule RUNAWAY"))
        .unwrap_or_else(|| panic!("a cost warning on stderr:\n{stderr}"));
    assert!(warning.contains("policy.toml:6:"), "{warning}");
    assert!(
        warning.contains("the cube of the number of members"),
        "{warning}"
    );
    assert!(stderr.contains("evaluation took too long"), "{stderr}");
    assert!(!stderr.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_while_a_runaway_rule_runs_ends_the_run_with_reports() {
    let server = MockServer::start().await;
    serve(&server, "BIG", settings(false, 2000), Duration::ZERO).await;
    // Slow answers: the line after BIG is in flight when the signal comes.
    let slow: Vec<String> = (1..=5).map(|i| format!("SLOW-{i}")).collect();
    for id in &slow {
        serve(&server, id, settings(false, 1), Duration::from_secs(30)).await;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let (policy, out) = (policy(dir.path()), dir.path().join("out"));
    // Two requests at a time: a line holds its place while it is evaluated.
    let mut args = vec![
        "--line",
        "BIG",
        "--eval-timeout",
        "1h",
        "--concurrency",
        "2",
    ];
    for id in &slow {
        args.extend(["--line", id.as_str()]);
    }
    let child = spawn_audit(&server, &policy, &out, &args);

    // BIG is answered at once, SLOW-1 in 30 s; BIG's rule has hours to go.
    requests(&server, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(&child, "INT");
    let (status, stderr, took) = finish(child, Instant::now()).await;
    eprintln!("stopped {took:?} after SIGINT");
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");

    let report = report(&out);
    assert_eq!(report["run"]["complete"], false);
    assert_eq!(report["run"]["exit_code"], 3);
    let big = line(&report, "BIG");
    assert_eq!(big["status"], "error", "read, but its verdict is unknown");
    assert_eq!(
        results(big),
        [
            (
                "RUNAWAY".into(),
                "error".into(),
                "not evaluated: the run was interrupted while this rule ran".into()
            ),
            (
                "NO-AUTO-ANSWER".into(),
                "error".into(),
                "not evaluated: the run was interrupted".into()
            ),
        ]
    );
    for id in &slow {
        let l = line(&report, id);
        assert_eq!(l["status"], "not_audited", "{l}");
        assert_eq!(l["error"]["kind"], "not_audited", "{l}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_stops_a_run_like_sigterm() {
    let server = MockServer::start().await;
    serve(&server, "FIRST", settings(false, 1), Duration::ZERO).await;
    let slow: Vec<String> = (1..=5).map(|i| format!("SLOW-{i}")).collect();
    for id in &slow {
        serve(&server, id, settings(false, 1), Duration::from_secs(30)).await;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let (policy, out) = (
        write(
            dir.path(),
            "policy.toml",
            "[[rule]]\nid = \"A\"\ntitle = \"t\"\nseverity = \"low\"\nrequire = \"!allowAutoAnswer\"\n",
        ),
        dir.path().join("out"),
    );
    let mut args = vec!["--line", "FIRST"];
    for id in &slow {
        args.extend(["--line", id.as_str()]);
    }
    let child = spawn_audit(&server, &policy, &out, &args);

    requests(&server, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&child, "HUP");
    let (status, stderr, took) = finish(child, Instant::now()).await;
    eprintln!("stopped {took:?} after SIGHUP");
    // Killed by the signal, the process would have no exit code and no reports.
    assert_eq!(status.code(), Some(3), "{status:?}\n{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");

    let report = report(&out);
    assert_eq!(report["run"]["complete"], false);
    assert_eq!(line(&report, "FIRST")["status"], "compliant");
    for id in &slow {
        assert_eq!(line(&report, id)["status"], "not_audited");
    }
}

#[test]
fn check_policies_warns_about_a_quadratic_rule_and_still_exits_0() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = write(
        dir.path(),
        "unique.toml",
        r#"[[rule]]
id = "UNIQUE-MEMBERS"
title = "no member twice"
severity = "low"
when = "size(members) > 0"
require = "members.all(a, members.exists_one(b, b.id == a.id))"
message_expr = "'duplicates: ' + members.filter(a, members.filter(b, b.id == a.id).size() > 1).map(m, m.id).join(', ')"
"#,
    );
    let output = Command::new(BIN)
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
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(
        warnings.len(),
        2,
        "require and message_expr, not when:\n{stderr}"
    );
    let at = file.display().to_string();
    assert!(
        warnings[0].contains(&format!(
            "{at}:6:11: rule UNIQUE-MEMBERS: `require` loops over `members` inside another"
        )),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("the square of the number of members"));
    assert!(
        warnings[1].contains(&format!("{at}:7:")) && warnings[1].contains("`message_expr`"),
        "{}",
        warnings[1]
    );
}
