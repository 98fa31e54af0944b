//! Hardening of the binary's edges (issue 7): closed stderr and stdout, server text
//! in text logs, temporary files of killed runs, broken CSV input.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{names_in, read_csv_maps, write};

const TOKEN: &str = "hardening-io-secret-7c1f";
const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/cli-policy.toml"
);

/// The binary, set up for `audit` against `server` with the test policy.
fn audit(server: &MockServer, out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ptt-audit"));
    cmd.env("WEBEX_TOKEN", TOKEN)
        .env_remove("WEBEX_BASE_URL")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .args(["audit", "--rate", "0", "--policies", POLICY, "--base-url"])
        .arg(format!("{}/v1", server.uri()))
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null());
    cmd
}

async fn answer(server: &MockServer, id: &str, template: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path_regex(format!(
            "^/v1/telephony/config/virtualLines/{id}/pushToTalk$"
        )))
        .respond_with(template)
        .mount(server)
        .await;
}

/// A server with 30 lines: compliant, non-compliant, and 404 with a tracking ID.
async fn mixed_server() -> (MockServer, Vec<String>) {
    let server = MockServer::start().await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let id = format!("L{i:02}");
        let template = match i % 3 {
            0 => ResponseTemplate::new(200).set_body_json(json!({
                "allowAutoAnswer": false, "connectionType": "ONE_WAY",
                "accessType": "ALLOW_MEMBERS", "members": [{"id": "p1"}]})),
            1 => ResponseTemplate::new(200).set_body_json(json!({
                "allowAutoAnswer": true, "connectionType": "TWO_WAY",
                "accessType": "BLOCK_MEMBERS"})),
            _ => ResponseTemplate::new(404).set_body_json(json!({
                "message": "Line not found", "trackingId": format!("TRK_{id}")})),
        };
        answer(&server, &id, template).await;
        ids.push(id);
    }
    (server, ids)
}

/// Each line's `(status, error_kind, tracking_id)` in the lines CSV of `out`.
fn line_outcomes(out: &Path) -> Vec<(String, String, String, String)> {
    let csv = names_in(out)
        .into_iter()
        .find(|n| n.ends_with("-lines.csv"))
        .unwrap_or_else(|| panic!("no lines report in {}", out.display()));
    let (_, rows) = read_csv_maps(&out.join(csv));
    rows.into_iter()
        .map(|r| {
            (
                r["line_id"].clone(),
                r["status"].clone(),
                r["error_kind"].clone(),
                r["tracking_id"].clone(),
            )
        })
        .collect()
}

/// A pipe nobody reads: every write to it fails (EPIPE), from the first byte on.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    Stdio::from(writer)
}

#[tokio::test]
async fn a_closed_stderr_and_stdout_change_no_result_and_no_exit_code() {
    let (server, ids) = mixed_server().await;
    let lines = tempfile::tempdir().expect("tempdir");
    let list = write(lines.path(), "ids.txt", &ids.join("\n"));

    let open_out = tempfile::tempdir().expect("tempdir");
    let open = audit(&server, open_out.path())
        .arg("--lines")
        .arg(&list)
        .arg("-vv")
        .output()
        .expect("runs");
    let open_stderr = String::from_utf8_lossy(&open.stderr);
    assert_eq!(open.status.code(), Some(3), "{open_stderr}");
    // The closed runs below would have written these, so the test means something.
    assert!(open_stderr.contains("line not read"), "{open_stderr}");
    assert!(!open.stdout.is_empty());
    let expected = line_outcomes(open_out.path());
    assert_eq!(expected.len(), 30);
    for (id, status, kind, tracking) in &expected {
        let want = match id[1..].parse::<u32>().expect("a number") % 3 {
            0 => ("compliant", "", String::new()),
            1 => ("non_compliant", "", String::new()),
            _ => ("error", "http", format!("TRK_{id}")),
        };
        assert_eq!(
            (status.as_str(), kind.as_str(), tracking),
            (want.0, want.1, &want.2)
        );
    }

    for log_format in ["text", "json"] {
        let out = tempfile::tempdir().expect("tempdir");
        let status = audit(&server, out.path())
            .arg("--lines")
            .arg(&list)
            .args(["-vv", "--log-format", log_format])
            .stdout(closed_pipe())
            .stderr(closed_pipe())
            .status()
            .expect("runs");
        assert_eq!(status.code(), Some(3), "--log-format {log_format}");
        assert_eq!(
            line_outcomes(out.path()),
            expected,
            "--log-format {log_format}"
        );
        let report = names_in(out.path())
            .into_iter()
            .find(|n| n.ends_with(".json"))
            .expect("a JSON report");
        let text = std::fs::read_to_string(out.path().join(report)).expect("read");
        let report: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(report["run"]["exit_code"], 3);
        for needle in ["panicked", "failed printing", "internal"] {
            assert!(!text.contains(needle), "{needle:?} in the report");
        }
    }
}

#[tokio::test]
async fn server_text_cannot_forge_a_text_log_line_or_reach_the_terminal() {
    let server = MockServer::start().await;
    answer(
        &server,
        "EVIL",
        ResponseTemplate::new(404).set_body_json(json!({
            "message": "gone\nERROR forged line \u{1b}[31mred\u{1b}]0;title\u{7}",
            "trackingId": "T1\r\nERROR forged tracking"})),
    )
    .await;
    let out = tempfile::tempdir().expect("tempdir");
    let run = audit(&server, out.path())
        .args(["--line", "EVIL", "-v"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8(run.stderr).expect("UTF-8");
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    for raw in ['\u{1b}', '\r', '\u{7}'] {
        assert!(!stderr.contains(raw), "raw {raw:?} on stderr: {stderr}");
    }
    let forged: Vec<&str> = stderr.lines().filter(|l| l.contains("forged")).collect();
    assert_eq!(forged.len(), 1, "{stderr}");
    assert!(forged[0].contains("line not read"), "{stderr}");
    assert!(
        forged[0].contains("gone\\nERROR forged line \\u{1b}[31mred"),
        "{stderr}"
    );
    assert!(!stderr.lines().any(|l| l.starts_with("ERROR")), "{stderr}");
    // The reports keep the text as the server sent it: escaping is for text logs.
    let outcomes = line_outcomes(out.path());
    assert_eq!(outcomes[0].3, "T1\r\nERROR forged tracking");
}

/// Sets the last-written time of `path` to `age` ago.
fn age(path: &Path, age: Duration) {
    File::options()
        .write(true)
        .open(path)
        .expect("open")
        .set_modified(SystemTime::now() - age)
        .expect("set mtime");
}

#[tokio::test]
async fn temporary_files_of_killed_runs_are_removed_and_nothing_else() {
    let server = MockServer::start().await;
    answer(
        &server,
        "A",
        ResponseTemplate::new(200).set_body_json(json!({
            "allowAutoAnswer": false, "connectionType": "ONE_WAY",
            "accessType": "ALLOW_MEMBERS", "members": [{"id": "p1"}]})),
    )
    .await;
    let out = tempfile::tempdir().expect("tempdir");
    let d = out.path();
    let hour = Duration::from_secs(3600);
    let stem = "ptt-audit-20200101T000000Z";
    let stale = [
        format!(".{stem}.json.tmp"),
        format!(".{stem}.json.lines.tmp"),
        format!(".{stem}-findings.csv.tmp"),
        format!(".{stem}-2-lines.csv.tmp"),
    ];
    let unrelated = [
        format!("{stem}.json"),
        format!("{stem}-lines.csv.tmp"),
        ".ptt-audit-notes.tmp".to_string(),
        "keep.tmp".to_string(),
    ];
    for name in stale.iter().chain(&unrelated) {
        write(d, name, "left over");
        age(&d.join(name), hour);
    }
    // A killed run's folder lock: unlocked, so this run takes it over (and removes it
    // when it is done, see `unattended::runs`).
    write(d, ".ptt-audit.lock", "pid 1, started 2020-01-01T00:00:00Z");
    // A run still writing: its file is old but locked by a live process (this one).
    let live_name = ".ptt-audit-20200101T000001Z.json.tmp";
    write(d, live_name, "in progress");
    age(&d.join(live_name), hour);
    let live = File::open(d.join(live_name)).expect("open");
    live.try_lock().expect("lock");
    // Just written by a run that may not have locked it yet.
    let fresh_name = ".ptt-audit-20200101T000002Z.json.tmp";
    write(d, fresh_name, "just created");

    let run = audit(&server, d)
        .args(["--line", "A"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("removed temporary report files"),
        "{stderr}"
    );

    let names = names_in(d);
    for name in &stale {
        assert!(!names.contains(name), "{name} is still there: {names:?}");
    }
    for name in unrelated
        .iter()
        .map(String::as_str)
        .chain([live_name, fresh_name])
    {
        assert!(names.iter().any(|n| n == name), "{name} was removed");
    }
    // And this run's own files are whole and in place, with no temporary left.
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("ptt-audit-") && !n.starts_with(stem))
            .count(),
        3,
        "{names:?}"
    );
    drop(live);
}

#[tokio::test]
async fn broken_csv_input_is_refused_naming_file_and_line_before_any_request() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "unclosed.csv",
            b"id,name\nA,Lobby\nB,\"Warehouse\nC,Dock\nD,Gate\n",
            "unclosed.csv:3: malformed CSV: the quoted value opened on line 3 is never closed",
        ),
        (
            "shifted.csv",
            b"id,name\nA,Lobby\n\nB,Lobby, north\n",
            "shifted.csv:4: malformed CSV: 3 fields where the header has 2",
        ),
        (
            "short.csv",
            b"# export\nid,name,site\nA,Lobby,HQ\nB,Dock\n",
            "short.csv:4: malformed CSV: 2 fields where the header has 3",
        ),
        (
            "latin1.csv",
            b"id,name\nA,Lobby\nB,Caf\xe9\n",
            "latin1.csv:3: not UTF-8 text",
        ),
    ];
    for (name, content, want) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        let out = tempfile::tempdir().expect("tempdir");
        let run = audit(&server, out.path())
            .arg("--lines")
            .arg(&path)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(want), "{name}: {stderr}");
    }
    let requests = server.received_requests().await.expect("recorded");
    assert!(requests.is_empty(), "{} requests were sent", requests.len());
}
