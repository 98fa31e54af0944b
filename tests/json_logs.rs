//! `--log-format json` is "for log shippers": every line the binary writes to stderr
//! must then be one JSON object, or the shipper drops or mangles it, including the
//! end-of-run messages (a refused token, an interruption).

use std::time::Duration;

use assert_cmd::Command;
use ptt_audit::simulator::SimConfig;
use serde_json::Value;

const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_format_keeps_every_stderr_line_json_even_when_the_token_is_refused() {
    let sim = ptt_audit::simulator::start(
        SimConfig {
            lines: 20,
            seed: 3,
            token: Some("right".into()),
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("an address"),
    )
    .await
    .expect("simulator starts");
    let out = tempfile::tempdir().expect("a temp dir");
    let args: Vec<String> = vec![
        "--log-format".into(),
        "json".into(),
        "audit".into(),
        "--line".into(),
        sim.ids[0].clone(),
        "--line".into(),
        sim.ids[1].clone(),
        "--base-url".into(),
        sim.base_url.clone(),
        "--rate".into(),
        "0".into(),
        "--timeout".into(),
        "5s".into(),
        "--policies".into(),
        POLICIES.into(),
        "--out".into(),
        out.path().to_string_lossy().into_owned(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("ptt-audit")
            .expect("the binary")
            .env("WEBEX_TOKEN", "wrong")
            .env_remove("RUST_LOG")
            .args(&args)
            .timeout(Duration::from_secs(30))
            .output()
            .expect("ptt-audit runs")
    })
    .await
    .expect("the blocking task finishes");
    sim.shutdown().await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    for line in stderr.lines() {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(
            parsed.is_ok_and(|v| v.is_object()),
            "stderr line is not a JSON object under --log-format json: {line}"
        );
    }
}
