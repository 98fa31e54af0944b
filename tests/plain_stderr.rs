//! Cron mails and log files get stderr through a pipe: the text log format must not
//! put terminal colour codes there.

use std::time::Duration;

use assert_cmd::Command;
use ptt_audit::simulator::SimConfig;

const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_to_a_pipe_carry_no_terminal_escape_codes() {
    let sim = ptt_audit::simulator::start(
        SimConfig {
            lines: 5,
            seed: 3,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("an address"),
    )
    .await
    .expect("simulator starts");
    let out = tempfile::tempdir().expect("a temp dir");
    let args: Vec<String> = vec![
        "audit".into(),
        "--line".into(),
        sim.ids[0].clone(),
        // An unknown line: the run logs a warning about it.
        "--line".into(),
        "no-such-line".into(),
        "--base-url".into(),
        sim.base_url.clone(),
        "--rate".into(),
        "0".into(),
        "--policies".into(),
        POLICIES.into(),
        "--out".into(),
        out.path().to_string_lossy().into_owned(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::cargo_bin("ptt-audit")
            .expect("the binary")
            .env("WEBEX_TOKEN", "any")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .args(&args)
            .timeout(Duration::from_secs(30))
            .output()
            .expect("ptt-audit runs")
    })
    .await
    .expect("the blocking task finishes");
    sim.shutdown().await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "the unknown line is an error"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WARN") && stderr.contains("no-such-line"),
        "the 404 is logged: {stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "stderr is a pipe, yet it holds ANSI escape codes: {stderr:?}"
    );
}
