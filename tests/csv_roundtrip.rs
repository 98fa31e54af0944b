//! The contract says a previous lines report can be fed back as `--lines`. A line ID
//! that starts with `=`, `+`, `-` or `@` is written to the CSV with a `'` in front (so
//! that no spreadsheet runs it); reading the report back must give the original ID,
//! not the neutralised cell.

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use ptt_audit::simulator::SimConfig;
use serde_json::Value;

const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

async fn audit(base_url: &str, out: &Path, input: &[&str]) -> Value {
    let mut args: Vec<String> = vec![
        "audit".into(),
        "--base-url".into(),
        base_url.into(),
        "--rate".into(),
        "0".into(),
        "--policies".into(),
        POLICIES.into(),
        "--out".into(),
        out.to_string_lossy().into_owned(),
        "-q".into(),
    ];
    args.extend(input.iter().map(|s| s.to_string()));
    let output = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("ptt-audit")
            .expect("the binary")
            .env("WEBEX_TOKEN", "any")
            .args(&args)
            .timeout(Duration::from_secs(30))
            .output()
            .expect("ptt-audit runs")
    })
    .await
    .expect("the blocking task finishes");
    // The simulator does not know these IDs: 404, so the audit is incomplete.
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = std::fs::read_dir(out)
        .expect("out dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a JSON report");
    serde_json::from_str(&std::fs::read_to_string(json).expect("readable")).expect("JSON")
}

fn ids(report: &Value) -> Vec<String> {
    report["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lines_report_fed_back_audits_the_same_ids_even_when_neutralised() {
    let sim =
        ptt_audit::simulator::start(SimConfig::default(), "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("simulator starts");
    let work = tempfile::tempdir().expect("a temp dir");
    let first_out = work.path().join("first");
    let first = audit(
        &sim.base_url,
        &first_out,
        &["--line=-abc", "--line=@team", "--line=plain"],
    )
    .await;
    assert_eq!(ids(&first), ["-abc", "@team", "plain"]);

    let lines_csv = std::fs::read_dir(&first_out)
        .expect("out dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.to_string_lossy().ends_with("-lines.csv"))
        .expect("a lines CSV");
    let second = audit(
        &sim.base_url,
        &work.path().join("second"),
        &["--lines", lines_csv.to_str().expect("utf-8 path")],
    )
    .await;
    sim.shutdown().await;
    assert_eq!(
        ids(&second),
        ids(&first),
        "feeding the lines report back must audit the same IDs"
    );
}
