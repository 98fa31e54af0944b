//! `ptt-audit auth check`: does the token work, and until when (exit 0 works, 2 not).

use ptt_audit::simulator::OAuthConfig;

use super::*;

fn check(args: &[&str]) -> std::process::Command {
    let mut cmd = ptt_audit();
    cmd.args(["auth", "check"]).args(args);
    cmd
}

#[tokio::test]
async fn credentials_that_work_are_refreshed_if_needed_and_their_expiry_shown() {
    let sim = sim_with(3, oauth()).await;
    let dir = tempfile::tempdir().unwrap();
    let creds = credentials(dir.path(), "");
    let creds_arg = creds.to_str().unwrap();
    let done = run(check(&[
        "--base-url",
        &sim.base_url,
        "--credentials",
        creds_arg,
    ]))
    .await;
    assert_eq!(done.status.code(), Some(0), "{}", shown(&done));
    let stdout = text(&done.stdout);
    assert!(
        stdout.contains("works: GET …/telephony/config/virtualLines?max=1 answered 200"),
        "{stdout}"
    );
    assert!(stdout.contains("refreshed (1 time)"), "{stdout}");
    assert!(stdout.contains("Access token:  expires "), "{stdout}");
    assert!(stdout.contains("(in 13 days)"), "{stdout}");
    assert!(stdout.contains("Refresh token: expires "), "{stdout}");
    assert!(stdout.contains("(in 89 days)"), "{stdout}");
    assert_eq!(sim.stats().tokens_issued, 1);

    // As one JSON object, and without another refresh: the token is fresh now.
    let done = run(check(&[
        "--base-url",
        &sim.base_url,
        "--credentials",
        creds_arg,
        "--log-format",
        "json",
    ]))
    .await;
    assert_eq!(done.status.code(), Some(0), "{}", shown(&done));
    let report: serde_json::Value = serde_json::from_str(&text(&done.stdout)).expect("JSON");
    assert_eq!(report["works"], true);
    assert_eq!(report["status"], 200);
    assert_eq!(report["refreshes"], 0);
    assert!(report["access_token_expires_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert_eq!(report["refresh_token_expiring"], false);
    assert_eq!(sim.stats().tokens_issued, 1);
}

#[tokio::test]
async fn a_token_file_that_works_and_one_that_does_not() {
    let sim = crate::common::start_sim(ptt_audit::simulator::SimConfig {
        lines: 2,
        token: Some("fixed-token-2c81".into()),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let good = private(dir.path(), "good.txt", "fixed-token-2c81\n");
    let bad = private(dir.path(), "bad.txt", "wrong-token-6e02\n");
    let done = run(check(&[
        "--base-url",
        &sim.base_url,
        "--token-file",
        good.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(done.status.code(), Some(0), "{}", shown(&done));
    assert!(
        text(&done.stdout).contains("expiry unknown"),
        "{}",
        shown(&done)
    );
    let done = run(check(&[
        "--base-url",
        &sim.base_url,
        "--token-file",
        bad.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(done.status.code(), Some(2), "{}", shown(&done));
    assert!(
        text(&done.stdout).contains("does NOT work"),
        "{}",
        shown(&done)
    );
    assert!(
        text(&done.stderr).contains("refused the token (401"),
        "{}",
        shown(&done)
    );
    assert!(!text(&done.stderr).contains("wrong-token-6e02"));
}

#[tokio::test]
async fn a_refresh_token_the_server_no_longer_honours_is_exit_2_with_what_to_renew() {
    let sim = sim_with(
        2,
        OAuthConfig {
            refresh_token: "some-other-refresh".into(),
            ..oauth()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let creds = credentials(dir.path(), "");
    let done = run(check(&[
        "--base-url",
        &sim.base_url,
        "--credentials",
        creds.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(done.status.code(), Some(2), "{}", shown(&done));
    let stderr = text(&done.stderr);
    assert!(stderr.contains("refused the refresh token in"), "{stderr}");
    assert!(stderr.contains("invalid_grant"), "{stderr}");
    assert_eq!(api_requests(&sim), 0);
}

#[tokio::test]
async fn the_demo_runs_from_credentials_and_shows_one_refresh_mid_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = ptt_audit();
    demo.current_dir(dir.path())
        .args(["demo", "--lines", "30", "--faults", "none"]);
    let done = run(demo).await;
    assert_eq!(done.status.code(), Some(0), "{}", shown(&done));
    let stdout = text(&done.stdout);
    assert!(
        stdout.contains("ptt-audit refreshed it once from its credentials file"),
        "{stdout}"
    );
    assert!(stdout.contains("(1 token request(s)"), "{stdout}");
    assert_eq!(reports_in(&dir.path().join("reports")).len(), 3);
}
