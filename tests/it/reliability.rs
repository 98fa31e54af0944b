//! The binary against a faulty simulated Webex API: thousands of lines, transient
//! faults, a throttling episode, permanent 404s, invalid and duplicate IDs, a SIGTERM
//! mid-run and a refused token. What must hold: every input line is reported exactly
//! once with a definite status, transient faults never end up in the reports, the
//! counts add up across the JSON summary, the JSON lines and both CSVs, and the token
//! appears nowhere.
//!
//! Also what the binary writes on the side: stderr under either log format, and a
//! lines report fed back as input.
//!
//! The simulator runs in-process on the test's tokio runtime, which keeps serving
//! while the audit subprocess runs on a blocking thread.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::Response;
use axum::Router;
use futures::StreamExt as _;
use ptt_audit::report::neutralise;
use ptt_audit::simulator::{Faults, SimConfig, Simulator};
use serde_json::Value;

use crate::common::{files_in, loopback, read_csv_maps, start_sim, FINDINGS_HEADER, LINES_HEADER};

const TOKEN: &str = "reliability-token-5f0c2a9e";
const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
const BIN: &str = env!("CARGO_BIN_EXE_ptt-audit");

const LINE_STATUSES: [&str; 5] = [
    "compliant",
    "non_compliant",
    "error",
    "invalid",
    "not_audited",
];
const RESULT_STATUSES: [&str; 5] = ["pass", "fail", "waived", "not_applicable", "error"];
const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// How long a run may take before the test calls it hung: the slowest here (the
/// faulty 3000-line audit) takes about 9 s on two cores.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// `ptt-audit` with `token`, and without what a developer's environment could slip
/// in: a base URL, an org ID, a log filter, or a `NO_COLOR` that would hide colour
/// codes sent to a pipe.
fn ptt_audit(token: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    cmd.env("WEBEX_TOKEN", token)
        .env_remove("WEBEX_BASE_URL")
        .env_remove("WEBEX_ORG_ID")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR");
    cmd
}

/// Runs `ptt-audit` with `args` on a blocking thread, so that the simulator on this
/// runtime keeps answering meanwhile.
async fn run_binary(args: Vec<String>, token: &str) -> Output {
    let mut cmd = Command::from_std(ptt_audit(token));
    cmd.args(&args).timeout(RUN_LIMIT);
    tokio::task::spawn_blocking(move || cmd.output().expect("ptt-audit runs"))
        .await
        .expect("the blocking task finishes")
}

/// Runs `ptt-audit <global> audit` against `base_url` with the shipped policies,
/// unpaced, writing its reports to `out`, and with `args`: every audit here but the
/// interrupted one.
async fn run_audit(
    token: &str,
    global: &[&str],
    base_url: &str,
    out: &Path,
    args: &[&str],
) -> Output {
    let out = out.to_str().expect("utf-8 path");
    let common = [
        "audit",
        "--base-url",
        base_url,
        "--rate",
        "0",
        "--policies",
        POLICIES,
        "--out",
        out,
    ];
    let all = global.iter().chain(&common).chain(args);
    run_binary(all.map(|s| s.to_string()).collect(), token).await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn file_with_suffix(dir: &Path, suffix: &str) -> PathBuf {
    let found: Vec<_> = files_in(dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one *{suffix} in {}: {found:?}",
        dir.display()
    );
    found.into_iter().next().expect("one file")
}

fn read_json(dir: &Path) -> Value {
    let path = file_with_suffix(dir, ".json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("JSON report readable"))
        .expect("JSON report parses")
}

fn lines_of(report: &Value) -> &Vec<Value> {
    report["lines"].as_array().expect("lines is an array")
}

/// The line IDs of a JSON report, in report order.
fn ids_of(report: &Value) -> Vec<String> {
    lines_of(report)
        .iter()
        .map(|l| l["id"].as_str().expect("id is a string").to_string())
        .collect()
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a count"))
}

/// Asserts the invariants every finished report holds, whatever happened in the run,
/// and returns the number of enabled rules.
fn assert_report_consistent(report: &Value, dir: &Path, expected_ids: &[String]) -> usize {
    let lines = lines_of(report);
    assert_eq!(
        ids_of(report),
        expected_ids,
        "one entry per unique input ID, in input order"
    );

    let enabled: Vec<&Value> = report["rules"]
        .as_array()
        .expect("rules is an array")
        .iter()
        .filter(|r| r.get("enabled").and_then(Value::as_bool).unwrap_or(true))
        .collect();
    assert!(!enabled.is_empty(), "the policy pack has rules");
    let severity_of: HashMap<&str, &str> = enabled
        .iter()
        .map(|r| {
            (
                r["id"].as_str().expect("rule id"),
                r["severity"].as_str().expect("rule severity"),
            )
        })
        .collect();

    let mut line_counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut result_counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut fail_counts: BTreeMap<&str, u64> = BTreeMap::new();
    for l in lines {
        let status = l["status"].as_str().expect("line status");
        assert!(LINE_STATUSES.contains(&status), "line status {status}");
        *line_counts.entry(status).or_default() += 1;
        let results = l["results"].as_array().expect("results");
        assert_eq!(
            results.len(),
            enabled.len(),
            "one result per enabled rule: {l}"
        );
        let rule_ids: HashSet<&str> = results
            .iter()
            .map(|r| r["rule_id"].as_str().expect("rule_id"))
            .collect();
        assert_eq!(rule_ids.len(), enabled.len(), "each rule once: {l}");
        for r in results {
            let rs = r["status"].as_str().expect("result status");
            assert!(RESULT_STATUSES.contains(&rs), "result status {rs}");
            *result_counts.entry(rs).or_default() += 1;
            if rs == "fail" {
                let sev = severity_of[r["rule_id"].as_str().expect("rule_id")];
                *fail_counts.entry(sev).or_default() += 1;
            }
        }
        let read = matches!(status, "compliant" | "non_compliant");
        // A line that could not be read is never passing, and is never shown as read.
        if read {
            assert!(l["error"].is_null(), "{l}");
            assert!(l["read_at"].is_string(), "{l}");
            assert!(l["settings"].is_object(), "{l}");
            let fails = results.iter().any(|r| r["status"] == "fail");
            assert_eq!(fails, status == "non_compliant", "{l}");
        } else {
            assert!(l["read_at"].is_null(), "{l}");
            assert!(l["settings"].is_null(), "{l}");
            assert!(l["error"].is_object(), "{l}");
            assert!(
                results.iter().all(|r| r["status"] == "error"),
                "every rule of an unread line is error: {l}"
            );
        }
    }

    let summary = &report["summary"];
    let total = count(&summary["lines"]["total"]);
    assert_eq!(total, lines.len() as u64);
    let mut sum = 0;
    for s in LINE_STATUSES {
        let n = count(&summary["lines"][s]);
        assert_eq!(n, line_counts.get(s).copied().unwrap_or(0), "lines.{s}");
        sum += n;
    }
    assert_eq!(sum, total, "summary.lines adds up to total");

    let mut sum = 0;
    for s in RESULT_STATUSES {
        let n = count(&summary["results"][s]);
        assert_eq!(n, result_counts.get(s).copied().unwrap_or(0), "results.{s}");
        sum += n;
    }
    assert_eq!(
        sum,
        total * enabled.len() as u64,
        "results = lines x enabled rules"
    );

    let mut sum = 0;
    for s in SEVERITIES {
        let n = count(&summary["fail_by_severity"][s]);
        assert_eq!(
            n,
            fail_counts.get(s).copied().unwrap_or(0),
            "fail_by_severity.{s}"
        );
        sum += n;
    }
    assert_eq!(sum, count(&summary["results"]["fail"]));

    assert_eq!(
        report["run"]["complete"],
        !line_counts.contains_key("not_audited"),
        "complete is false exactly when some line is not_audited"
    );

    // The lines CSV: one row per line, same order, IDs and statuses.
    let (header, rows) = read_csv_maps(&file_with_suffix(dir, "-lines.csv"));
    assert_eq!(header.join(","), LINES_HEADER);
    assert_eq!(rows.len(), lines.len(), "one lines-CSV row per line");
    for (row, l) in rows.iter().zip(lines) {
        let id = l["id"].as_str().expect("id");
        assert_eq!(row["line_id"], neutralise(id), "{row:?}");
        assert_eq!(row["status"], l["status"].as_str().expect("status"));
        assert_eq!(row["run_id"], report["run"]["id"].as_str().expect("run id"));
        assert_eq!(
            row["audited_at"].is_empty(),
            l["read_at"].is_null(),
            "{row:?}"
        );
    }

    // The findings CSV: one row per line and enabled rule, agreeing with the JSON.
    let (header, rows) = read_csv_maps(&file_with_suffix(dir, "-findings.csv"));
    assert_eq!(header.join(","), FINDINGS_HEADER);
    assert_eq!(
        rows.len(),
        lines.len() * enabled.len(),
        "findings CSV has lines x enabled rules rows"
    );
    let mut json_results: HashMap<(String, String), String> = HashMap::new();
    for l in lines {
        for r in l["results"].as_array().expect("results") {
            json_results.insert(
                (
                    neutralise(l["id"].as_str().expect("id")).into_owned(),
                    r["rule_id"].as_str().expect("rule_id").to_string(),
                ),
                r["status"].as_str().expect("status").to_string(),
            );
        }
    }
    let mut seen = HashSet::new();
    for row in &rows {
        let key = (row["line_id"].clone(), row["rule_id"].clone());
        assert_eq!(
            json_results.get(&key),
            Some(&row["status"]),
            "findings row agrees with JSON: {row:?}"
        );
        assert!(seen.insert(key), "duplicate findings row {row:?}");
    }

    assert_no_temporaries(dir);
    enabled.len()
}

fn assert_no_temporaries(dir: &Path) {
    for f in files_in(dir) {
        let name = f
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        assert!(
            !name.ends_with(".tmp") && !name.starts_with('.'),
            "temporary file left behind: {name}"
        );
    }
}

/// Which simulator lines answer 404 for good, found by asking a twin simulator
/// (same configuration, same seed, so the same permanent 404s) until every line gave
/// a definite answer. The twin's stalls are shortened so that probing is quick; the
/// simulator under test is not touched, so its fault schedule is not disturbed.
async fn permanent_404s(config: &SimConfig) -> HashSet<String> {
    let twin = start_sim(SimConfig {
        slow_delay: Duration::from_millis(1),
        throttle_windows: Vec::new(),
        ..config.clone()
    })
    .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client");
    let token = config.token.clone().unwrap_or_else(|| "any".into());
    let base = twin.base_url.clone();
    let probes = twin.ids.iter().cloned().map(|id| {
        let (http, token, base) = (&http, token.clone(), base.clone());
        async move {
            // The simulator never sends more than MAX_FAULT_STREAK faults in a row.
            for _ in 0..=ptt_audit::simulator::MAX_FAULT_STREAK + 2 {
                let url = format!("{base}/telephony/config/virtualLines/{id}/pushToTalk");
                let Ok(resp) = http.get(url).bearer_auth(&token).send().await else {
                    continue;
                };
                let status = resp.status().as_u16();
                let body = resp.bytes().await.unwrap_or_default();
                if status == 404 {
                    return Some(id);
                }
                if status == 200 && serde_json::from_slice::<Value>(&body).is_ok() {
                    return None;
                }
            }
            panic!("the twin simulator never gave line {id} a definite answer");
        }
    });
    let missing: HashSet<String> = futures::stream::iter(probes)
        .buffer_unordered(32)
        .filter_map(|x| async move { x })
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect();
    // Idle keep-alive connections would hold up the twin's graceful shutdown.
    drop(http);
    twin.shutdown().await;
    missing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_api_every_line_reported_once_and_transient_faults_are_read() {
    let started = Instant::now();
    let faults: Faults = "5xx=0.05,timeout=0.01,reset=0.02,malformed=0.02,404=0.01"
        .parse()
        .expect("fault spec parses");
    let config = SimConfig {
        lines: 3000,
        seed: 20_240_611,
        token: Some(TOKEN.into()),
        faults,
        slow_delay: Duration::from_secs(2),
        // One throttling episode, shortly after the audit starts sending.
        throttle_windows: vec![(Duration::from_millis(400), Duration::from_secs(1))],
        ..SimConfig::default()
    };
    let missing = permanent_404s(&config).await;
    assert!(
        !missing.is_empty(),
        "with 404=0.01 over 3000 lines some line is missing"
    );

    let sim = Simulator::new(config).expect("simulator config is valid");
    let expected_settings: HashMap<String, Value> = sim
        .line_ids()
        .iter()
        .map(|id| (id.clone(), sim.settings(id).expect("settings").clone()))
        .collect();
    let sim = sim.start(loopback()).await.expect("simulator starts");

    // The IDs, with duplicates (of an early, a middle and a 404 line) and two
    // invalid IDs in between.
    let ids: Vec<String> = sim.ids.iter().cloned().collect();
    let a_missing = ids
        .iter()
        .find(|id| missing.contains(*id))
        .expect("a 404 line")
        .clone();
    let mut input = vec!["# reliability run".to_string()];
    for (i, id) in ids.iter().enumerate() {
        input.push(id.clone());
        match i {
            10 => input.push("bad id".into()),
            1500 => {
                input.push("..".into());
                input.push(ids[3].clone());
            }
            2000 => input.push(format!("  {}  ", ids[1500])),
            _ => {}
        }
    }
    input.push(a_missing.clone());
    input.push(ids[0].clone());
    let mut expected_ids = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        expected_ids.push(id.clone());
        if i == 10 {
            expected_ids.push("bad id".into());
        }
        if i == 1500 {
            expected_ids.push("..".into());
        }
    }

    let work = tempfile::tempdir().expect("a temp dir");
    let list = work.path().join("ids.txt");
    std::fs::write(&list, input.join("\n") + "\n").expect("ID list written");
    let out = work.path().join("out");

    let audit_started = Instant::now();
    let output = run_audit(
        TOKEN,
        &[],
        &sim.base_url,
        &out,
        &[
            "--lines",
            list.to_str().expect("utf-8 path"),
            "--concurrency",
            "32",
            "--timeout",
            "500ms",
            "--max-retries",
            "5",
        ],
    )
    .await;
    let audit_secs = audit_started.elapsed().as_secs_f64();
    let stats = sim.stats();
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(
        output.status.code(),
        Some(3),
        "404s and invalid IDs make the audit incomplete\nstdout: {stdout}\nstderr: {stderr}"
    );

    let report = read_json(&out);
    assert_report_consistent(&report, &out, &expected_ids);
    assert_eq!(report["run"]["complete"], true);
    assert_eq!(report["run"]["exit_code"], 3);

    let mut errors = HashSet::new();
    for l in lines_of(&report) {
        let id = l["id"].as_str().expect("id");
        match l["status"].as_str().expect("status") {
            "error" => {
                let e = &l["error"];
                assert_eq!(
                    e["kind"], "http",
                    "only permanent 404s stay unread, transient faults are retried: {l}"
                );
                assert_eq!(e["http_status"], 404, "{l}");
                assert!(
                    e["tracking_id"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("ROUTERGW_")),
                    "the API's tracking ID is kept: {l}"
                );
                // A 404 is not retried; a 429 before it counts as an attempt too.
                assert!(count(&e["attempts"]) >= 1, "{l}");
                errors.insert(id.to_string());
            }
            "invalid" => {
                assert!(id == "bad id" || id == "..", "{l}");
                assert_eq!(l["error"]["kind"], "invalid_id", "{l}");
            }
            "compliant" | "non_compliant" => {
                assert_eq!(
                    &l["settings"], &expected_settings[id],
                    "settings are the API's JSON as served, never a broken body: {id}"
                );
            }
            other => panic!("line {id} is {other} in a complete run"),
        }
    }
    assert_eq!(
        errors, missing,
        "lines with status error are exactly the simulator's permanent 404s"
    );
    let summary = &report["summary"]["lines"];
    assert_eq!(summary["invalid"], 2);
    assert_eq!(summary["not_audited"], 0);
    assert_eq!(count(&summary["error"]), missing.len() as u64);

    // Each 404 line was asked once, and the invalid IDs never (they would be 404s
    // too); nothing else was refused.
    assert_eq!(
        stats.not_found,
        missing.len() as u64,
        "404 answers = permanent-404 lines: invalid IDs never requested; {stats}"
    );
    assert_eq!(stats.bad_request, 0, "{stats}");
    assert_eq!(stats.unauthorized, 0, "{stats}");
    assert_eq!(stats.forbidden, 0, "{stats}");
    // The run met every kind of trouble it claims to survive.
    assert!(stats.server_errors > 0, "{stats}");
    assert!(stats.resets > 0, "{stats}");
    assert!(stats.malformed > 0, "{stats}");
    assert!(stats.timeouts > 0, "{stats}");
    assert!(stats.throttled > 0, "the throttle window was hit: {stats}");
    // Every read line needed one clean 200; malformed 200s were re-asked.
    let read = (ids.len() - missing.len()) as u64;
    assert_eq!(
        stats.ok - stats.malformed,
        read,
        "exactly one clean answer per read line ({stats})"
    );

    assert!(
        stdout.contains("ptt-audit-"),
        "stdout names the reports: {stdout}"
    );
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
    eprintln!(
        "faulty run: audit {audit_secs:.1}s, test {:.1}s, {stats}",
        started.elapsed().as_secs_f64()
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_writes_complete_reports_with_not_audited_lines() {
    let sim = start_sim(SimConfig {
        lines: 500,
        seed: 5,
        token: Some(TOKEN.into()),
        ..SimConfig::default()
    })
    .await;
    let ids: Vec<String> = sim.ids.iter().cloned().collect();
    let work = tempfile::tempdir().expect("a temp dir");
    let list = work.path().join("ids.txt");
    std::fs::write(&list, ids.join("\n")).expect("ID list written");
    let out = work.path().join("out");

    // Spawned rather than run: the test signals it mid-run, and paces it to 20/s.
    let mut child = ptt_audit(TOKEN)
        .arg("audit")
        .arg("--lines")
        .arg(&list)
        .args([
            "--base-url",
            &sim.base_url,
            "--rate",
            "20",
            "--policies",
            POLICIES,
        ])
        .arg("--out")
        .arg(&out)
        .arg("-q")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ptt-audit starts");

    // Wait until the audit is sending (its signal handler is installed by then), then
    // let it run about a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.stats().requests == 0 {
        assert!(Instant::now() < deadline, "the audit never sent a request");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let signalled = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
        // Read stderr/stdout to the end, then reap.
        let mut child_out = String::new();
        let mut child_err = String::new();
        use std::io::Read;
        if let Some(mut s) = child.stdout.take() {
            s.read_to_string(&mut child_out).ok();
        }
        if let Some(mut s) = child.stderr.take() {
            s.read_to_string(&mut child_err).ok();
        }
        let status = child.wait().expect("ptt-audit exits");
        (status, child_out, child_err)
    })
    .await
    .expect("the blocking task finishes");
    let (status, stdout, stderr) = output;
    let stop_secs = signalled.elapsed().as_secs_f64();
    let requests = sim.stats().requests;
    sim.shutdown().await;

    assert_eq!(
        status.code(),
        Some(3),
        "an interrupted audit is incomplete\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stop_secs < 5.0,
        "stopped {stop_secs:.1}s after SIGTERM: a cron stop must be prompt"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");

    let report = read_json(&out);
    assert_report_consistent(&report, &out, &ids);
    assert_eq!(report["run"]["complete"], false);
    assert_eq!(report["run"]["exit_code"], 3);
    let lines = lines_of(&report);
    let not_audited: Vec<&Value> = lines
        .iter()
        .filter(|l| l["status"] == "not_audited")
        .collect();
    let read = lines
        .iter()
        .filter(|l| matches!(l["status"].as_str(), Some("compliant" | "non_compliant")))
        .count();
    assert!(
        not_audited.len() > 400,
        "at 20/s about a second's worth of 500 lines is read, the rest not: {} not_audited",
        not_audited.len()
    );
    assert!(read > 0, "some lines were read before the signal");
    assert_eq!(
        read + not_audited.len(),
        ids.len(),
        "no line is error or invalid"
    );
    for l in not_audited {
        assert_eq!(l["error"]["kind"], "not_audited", "{l}");
    }
    // A request cut short by the signal may have reached the server without its
    // line being read, but no more than the few in flight.
    assert!(
        requests as usize <= read + 8,
        "{requests} requests for {read} read lines"
    );
    assert!(!stdout.contains(TOKEN) && !stderr.contains(TOKEN));
}

/// A stand-in for a token that expires mid-run: forwards the first `allow` requests
/// to the simulator (with the simulator's own token), answers every later one 401, and
/// remembers which bearer token the audit sent.
struct ExpiringProxy {
    upstream: String,
    sim_token: String,
    allow: u64,
    http: reqwest::Client,
    requests: AtomicU64,
    refused: AtomicU64,
    bearer_seen: Mutex<HashSet<String>>,
}

async fn proxy(State(p): State<Arc<ExpiringProxy>>, req: Request) -> Response {
    let n = p.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(auth) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        p.bearer_seen
            .lock()
            .expect("not poisoned")
            .insert(auth.to_string());
    }
    if n >= p.allow {
        p.refused.fetch_add(1, Ordering::SeqCst);
        let body = r#"{"message":"The request requires a valid access token set in the Authorization request header.","errors":[{"description":"The request requires a valid access token set in the Authorization request header."}],"trackingId":"ROUTERGW_expired"}"#;
        return Response::builder()
            .status(401)
            .header(header::CONTENT_TYPE, "application/json")
            .header("trackingid", "ROUTERGW_expired")
            .body(Body::from(body))
            .expect("a response");
    }
    let path = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_default();
    let sent = p
        .http
        .get(format!("{}{path}", p.upstream))
        .bearer_auth(&p.sim_token)
        .send()
        .await;
    let Ok(resp) = sent else {
        // The simulator dropped the connection (a reset fault): a gateway would say 502.
        return Response::builder()
            .status(502)
            .body(Body::from(r#"{"message":"Bad Gateway"}"#))
            .expect("a response");
    };
    let mut out = Response::builder().status(resp.status().as_u16());
    for name in ["content-type", "retry-after", "trackingid"] {
        if let Some(v) = resp.headers().get(name) {
            out = out.header(name, v.as_bytes());
        }
    }
    let body = resp.bytes().await.unwrap_or_default();
    out.body(Body::from(body)).expect("a response")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_refused_mid_run_never_leaks_even_in_verbose_json_logs() {
    const SECRET: &str = "expiring-token-Zq81xK3vP0-do-not-log";
    let sim = start_sim(SimConfig {
        lines: 200,
        seed: 11,
        token: Some("sim-only".into()),
        faults: "5xx=0.1,malformed=0.05".parse().expect("fault spec parses"),
        ..SimConfig::default()
    })
    .await;
    let state = Arc::new(ExpiringProxy {
        upstream: format!("http://{}", sim.addr),
        sim_token: "sim-only".into(),
        allow: 60,
        http: reqwest::Client::new(),
        requests: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        bearer_seen: Mutex::new(HashSet::new()),
    });
    let listener = tokio::net::TcpListener::bind(loopback())
        .await
        .expect("proxy binds");
    let proxy_url = format!("http://{}/v1", listener.local_addr().expect("an address"));
    let app = Router::new().fallback(proxy).with_state(state.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let ids: Vec<String> = sim.ids.iter().cloned().collect();
    let work = tempfile::tempdir().expect("a temp dir");
    let list = work.path().join("ids.txt");
    std::fs::write(&list, ids.join("\n")).expect("ID list written");
    let out = work.path().join("out");
    let concurrency = 4;

    let output = run_audit(
        SECRET,
        &["-vv", "--log-format", "json"],
        &proxy_url,
        &out,
        &[
            "--lines",
            list.to_str().expect("utf-8 path"),
            "--concurrency",
            &concurrency.to_string(),
        ],
    )
    .await;
    server.abort();
    sim.shutdown().await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(
        output.status.code(),
        Some(2),
        "a refused token exits 2\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert_eq!(
        *state.bearer_seen.lock().expect("not poisoned"),
        HashSet::from([format!("Bearer {SECRET}")]),
        "the token went out, in the Authorization header only"
    );
    let refused = state.refused.load(Ordering::SeqCst);
    assert!(
        (1..=concurrency).contains(&refused),
        "the run stops sending after the first 401 ({refused} refused)"
    );
    assert!(
        stderr.contains("token") && stderr.contains("401"),
        "stderr says what is wrong: {stderr}"
    );

    // Everything the tracing logger wrote is one JSON object a line, and -vv shows
    // the retries at debug level.
    let mut levels = HashSet::new();
    for line in stderr.lines().filter(|l| l.starts_with('{')) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["fields"].is_object(),
            "{line}"
        );
        levels.insert(v["level"].as_str().expect("a level").to_string());
    }
    assert!(
        levels.contains("DEBUG") && levels.contains("WARN"),
        "-vv logs retries at debug and the refused line at warn: {levels:?}"
    );

    // The token, or any recognisable piece of it, appears nowhere.
    let mut places = vec![("stdout", stdout.clone()), ("stderr", stderr.clone())];
    for f in files_in(&out) {
        let content = std::fs::read_to_string(&f).expect("report readable");
        places.push(("report", content));
    }
    assert_eq!(places.len(), 5, "the three reports were written");
    for (where_, content) in &places {
        for piece in [SECRET, "Zq81xK3vP0", "Bearer expiring"] {
            assert!(!content.contains(piece), "{piece:?} appears in {where_}");
        }
    }

    let report = read_json(&out);
    assert_report_consistent(&report, &out, &ids);
    assert_eq!(report["run"]["complete"], false);
    assert_eq!(report["run"]["exit_code"], 2);
    let lines = lines_of(&report);
    let status_count = |s: &str| lines.iter().filter(|l| l["status"] == s).count();
    assert!(
        status_count("compliant") + status_count("non_compliant") > 0,
        "lines read before the 401 are reported with their results"
    );
    assert!(
        status_count("not_audited") > 100,
        "the rest are not_audited"
    );
    let auth: Vec<&Value> = lines
        .iter()
        .filter(|l| l["error"]["kind"] == "auth")
        .collect();
    assert!(!auth.is_empty(), "the refused line says auth");
    for l in auth {
        assert_eq!(l["status"], "error", "{l}");
        assert_eq!(l["error"]["http_status"], 401, "{l}");
        assert_eq!(l["error"]["tracking_id"], "ROUTERGW_expired", "{l}");
    }
}

/// `--log-format json` is "for log shippers": every line the binary writes to stderr
/// must then be one JSON object, or the shipper drops or mangles it, including the
/// end-of-run messages (a refused token, an interruption).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_format_keeps_every_stderr_line_json_even_when_the_token_is_refused() {
    let sim = start_sim(SimConfig {
        lines: 20,
        seed: 3,
        token: Some("right".into()),
        ..SimConfig::default()
    })
    .await;
    let out = tempfile::tempdir().expect("a temp dir");
    let output = run_audit(
        "wrong",
        &["--log-format", "json"],
        &sim.base_url,
        out.path(),
        &[
            "--line",
            &sim.ids[0],
            "--line",
            &sim.ids[1],
            "--timeout",
            "5s",
        ],
    )
    .await;
    sim.shutdown().await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    for line in stderr.lines() {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(
            parsed.is_ok_and(|v| v.is_object()),
            "stderr line is not a JSON object under --log-format json: {line}"
        );
    }
}

/// Cron mails and log files get stderr through a pipe: the text log format must not
/// put terminal colour codes there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_to_a_pipe_carry_no_terminal_escape_codes() {
    let sim = start_sim(SimConfig {
        lines: 5,
        seed: 3,
        ..SimConfig::default()
    })
    .await;
    let out = tempfile::tempdir().expect("a temp dir");
    let output = run_audit(
        "any",
        &[],
        &sim.base_url,
        out.path(),
        // An unknown line: the run logs a warning about it.
        &["--line", &sim.ids[0], "--line", "no-such-line"],
    )
    .await;
    sim.shutdown().await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "the unknown line is an error"
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("WARN") && stderr.contains("no-such-line"),
        "the 404 is logged: {stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "stderr is a pipe, yet it holds ANSI escape codes: {stderr:?}"
    );
}

/// Audits IDs the simulator does not know, given as `input` arguments, and returns
/// the JSON report.
async fn audit_unknown_ids(base_url: &str, out: &Path, input: &[&str]) -> Value {
    let mut args = vec!["-q"];
    args.extend_from_slice(input);
    let output = run_audit("any", &[], base_url, out, &args).await;
    // The simulator does not know these IDs: 404, so the audit is incomplete.
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    read_json(out)
}

/// The contract says a previous lines report can be fed back as `--lines`. A line ID
/// that starts with `=`, `+`, `-` or `@` is written to the CSV with a `'` in front (so
/// that no spreadsheet runs it); reading the report back must give the original ID,
/// not the neutralised cell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lines_report_fed_back_audits_the_same_ids_even_when_neutralised() {
    let sim = start_sim(SimConfig::default()).await;
    let work = tempfile::tempdir().expect("a temp dir");
    let first_out = work.path().join("first");
    let first = audit_unknown_ids(
        &sim.base_url,
        &first_out,
        &["--line=-abc", "--line=@team", "--line=plain"],
    )
    .await;
    assert_eq!(ids_of(&first), ["-abc", "@team", "plain"]);

    let lines_csv = file_with_suffix(&first_out, "-lines.csv");
    let second = audit_unknown_ids(
        &sim.base_url,
        &work.path().join("second"),
        &["--lines", lines_csv.to_str().expect("utf-8 path")],
    )
    .await;
    sim.shutdown().await;
    assert_eq!(
        ids_of(&second),
        ids_of(&first),
        "feeding the lines report back must audit the same IDs"
    );
}
