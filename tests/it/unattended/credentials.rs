//! `--credentials` against the simulator's token endpoint: refresh before the first
//! request, one refresh for a wave of 401s, rotation saved, a save that fails, a kill
//! right after the token endpoint answered, warnings, bad files, and secrets nowhere.

use std::time::{Duration, Instant};

use ptt_audit::simulator::OAuthConfig;

use super::*;

#[tokio::test]
async fn a_missing_token_is_refreshed_before_the_first_request_and_the_rotation_saved() {
    let sim = sim_with(
        30,
        OAuthConfig {
            rotate: true,
            ..oauth()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let creds = credentials(d, "");
    let lines = ids(d, &sim, 30);
    let out = d.join("reports");

    let first = run(audit(&sim.base_url, &creds, &lines, &out, &[])).await;
    read_all(&first);
    let stats = sim.stats();
    assert_eq!((stats.token_requests, stats.tokens_issued), (1, 1));
    assert_eq!(stats.unauthorized, 0, "no request went out without a token");
    assert_eq!(api_requests(&sim), 30);
    let saved = values(&creds);
    let issued = sim.issued_tokens();
    assert_eq!(saved["access_token"].as_str(), Some(issued[0].as_str()));
    assert_eq!(saved["refresh_token"].as_str(), Some(issued[1].as_str()));
    assert_ne!(saved["refresh_token"].as_str(), Some(REFRESH), "rotated");
    for key in ["access_token_expires_at", "refresh_token_expires_at"] {
        assert!(saved[key].is_datetime(), "{key}: {:?}", saved[key]);
    }
    assert_eq!(saved["client_secret"].as_str(), Some(CLIENT_SECRET));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // A fresh token is used as it is: no second refresh.
    std::fs::remove_dir_all(&out).unwrap();
    read_all(&run(audit(&sim.base_url, &creds, &lines, &out, &[])).await);
    assert_eq!(sim.stats().token_requests, 1);

    // Once the saved (rotated) refresh token is used, the first one is dead: the file
    // really holds the token that counts now.
    let body = std::fs::read_to_string(&creds).unwrap();
    let expiring = body.replace(
        &saved["access_token_expires_at"].to_string(),
        &in_seconds(60),
    );
    private(d, "credentials.toml", &expiring);
    std::fs::remove_dir_all(&out).unwrap();
    read_all(&run(audit(&sim.base_url, &creds, &lines, &out, &[])).await);
    assert_eq!(sim.stats().tokens_issued, 2);
    let old = tempfile::tempdir().unwrap();
    let old_creds = credentials(old.path(), "");
    let mut check = ptt_audit();
    check
        .args([
            "auth",
            "check",
            "--base-url",
            &sim.base_url,
            "--credentials",
        ])
        .arg(&old_creds);
    let refused = run(check).await;
    assert_eq!(refused.status.code(), Some(2), "{}", shown(&refused));
    assert!(
        text(&refused.stderr).contains("invalid_grant"),
        "{}",
        shown(&refused)
    );
}

#[tokio::test]
async fn a_token_expiring_within_30_minutes_is_refreshed_first_and_a_later_one_is_not() {
    for (expires_in, refreshes) in [(10 * 60, 1), (2 * 3600, 0)] {
        let sim = sim_with(
            5,
            OAuthConfig {
                access_token: Some("preissued-access-3b9d".into()),
                access_token_lifetime: Duration::from_secs(3 * 3600),
                ..oauth()
            },
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let creds = credentials(
            dir.path(),
            &format!(
                "access_token = \"preissued-access-3b9d\"\naccess_token_expires_at = \"{}\"\n",
                in_seconds(expires_in)
            ),
        );
        let lines = ids(dir.path(), &sim, 5);
        let done = run(audit(
            &sim.base_url,
            &creds,
            &lines,
            &dir.path().join("r"),
            &[],
        ))
        .await;
        read_all(&done);
        assert_eq!(
            sim.stats().tokens_issued,
            refreshes,
            "expires in {expires_in} s"
        );
        assert_eq!(sim.stats().unauthorized, 0);
    }
}

#[tokio::test]
async fn a_token_that_expires_mid_run_is_refreshed_once_for_every_request_in_flight() {
    let sim = sim_with(
        90,
        OAuthConfig {
            access_token: Some("preissued-access-8e1c".into()),
            // Every token gives out after 50 requests: the first one mid-run, the next
            // one never (40 lines are left, the refused ones included).
            access_token_requests: Some(50),
            rotate: true,
            ..oauth()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let creds = credentials(
        dir.path(),
        &format!(
            "access_token = \"preissued-access-8e1c\"\naccess_token_expires_at = \"{}\"\n",
            in_seconds(86_400)
        ),
    );
    let lines = ids(dir.path(), &sim, 90);
    let out = dir.path().join("reports");
    let done = run(audit(
        &sim.base_url,
        &creds,
        &lines,
        &out,
        &["--concurrency", "32"],
    ))
    .await;
    read_all(&done);
    let stats = sim.stats();
    assert_eq!(stats.token_requests, 1, "{stats}");
    assert_eq!(stats.tokens_issued, 1, "{stats}");
    assert!(stats.unauthorized >= 1, "{stats}");
    let report = json_report(&out);
    assert_eq!(report["run"]["complete"], true);
    assert_eq!(report["summary"]["lines"]["error"], 0);
    assert_eq!(report["summary"]["lines"]["not_audited"], 0);
    // Every refused request was sent again: 90 read, each 401 on top.
    assert_eq!(stats.ok, 90 + stats.tokens_issued);
    assert_eq!(api_requests(&sim), 90 + stats.unauthorized);
    assert_eq!(
        values(&creds)["refresh_token"].as_str(),
        sim.issued_tokens().last().map(String::as_str)
    );
}

#[tokio::test]
async fn a_disk_that_refuses_the_rewrite_stops_the_run_before_the_new_token_is_used() {
    let sim = sim_with(
        10,
        OAuthConfig {
            rotate: true,
            ..oauth()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let creds = credentials(d, "");
    let before = std::fs::read(&creds).unwrap();
    let lines = ids(d, &sim, 10);
    let out = d.join("reports");
    // Where the new file must be written first, something that is not a file.
    let blocker = d.join(".credentials.toml.tmp");
    std::fs::create_dir(&blocker).unwrap();

    let stopped = run(audit(&sim.base_url, &creds, &lines, &out, &[])).await;
    assert_eq!(stopped.status.code(), Some(2), "{}", shown(&stopped));
    let stderr = text(&stopped.stderr);
    assert!(
        stderr.contains("cannot save the refreshed tokens to"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the new access token was not used"),
        "{stderr}"
    );
    assert_eq!(sim.stats().tokens_issued, 1, "the server did rotate");
    assert_eq!(api_requests(&sim), 0, "the unsaved token was never sent");
    assert_eq!(
        std::fs::read(&creds).unwrap(),
        before,
        "the old file is intact"
    );
    assert!(reports_in(&out).is_empty(), "{:?}", reports_in(&out));

    // The next night the disk is fine: the old refresh token still works.
    std::fs::remove_dir(&blocker).unwrap();
    read_all(&run(audit(&sim.base_url, &creds, &lines, &out, &[])).await);
    assert_eq!(sim.stats().tokens_issued, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_right_after_the_token_endpoint_answered_leaves_a_working_refresh_token() {
    let sim = sim_with(
        40,
        OAuthConfig {
            rotate: true,
            ..oauth()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let creds = credentials(d, "");
    let lines = ids(d, &sim, 40);
    let out = d.join("reports");
    for round in 1..=4u64 {
        // Every round starts with a token to refresh.
        let body = std::fs::read_to_string(&creds).unwrap();
        let saved = values(&creds);
        let body = match saved.get("access_token_expires_at") {
            Some(at) => body.replace(&at.to_string(), &in_seconds(-60)),
            None => body,
        };
        private(d, "credentials.toml", &body);
        let issued = sim.stats().tokens_issued;
        let mut child = audit(&sim.base_url, &creds, &lines, &out, &[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while sim.stats().tokens_issued == issued {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "round {round}: no refresh"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        // The token endpoint has answered: kill now, before or after the save.
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            values(&creds).contains_key("refresh_token"),
            "round {round}: a whole file"
        );
    }
    // The next (complete) run refreshes with whichever refresh token the file kept.
    let body = std::fs::read_to_string(&creds).unwrap();
    if let Some(at) = values(&creds).get("access_token_expires_at") {
        private(
            d,
            "credentials.toml",
            &body.replace(&at.to_string(), &in_seconds(-60)),
        );
    }
    std::fs::remove_dir_all(&out).ok();
    let done = run(audit(&sim.base_url, &creds, &lines, &out, &[])).await;
    read_all(&done);
    assert_eq!(json_report(&out)["run"]["complete"], true);
    assert!(!d.join(".credentials.toml.tmp").exists());
}

#[tokio::test]
async fn a_refresh_token_that_expires_within_14_days_is_warned_about_on_every_run() {
    let sim = sim_with(
        3,
        OAuthConfig {
            access_token: Some("preissued-access-77aa".into()),
            ..oauth()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let creds = credentials(
        dir.path(),
        &format!(
            "access_token = \"preissued-access-77aa\"\naccess_token_expires_at = \"{}\"\nrefresh_token_expires_at = \"{}\"\n",
            in_seconds(7 * 86_400),
            in_seconds(5 * 86_400 + 3600)
        ),
    );
    let lines = ids(dir.path(), &sim, 3);
    for night in 0..2 {
        let out = dir.path().join(format!("r{night}"));
        let done = run(audit(&sim.base_url, &creds, &lines, &out, &["-q"])).await;
        read_all(&done);
        let stderr = text(&done.stderr);
        assert!(
            stderr.contains("the refresh token expires in 5 days"),
            "{stderr}"
        );
        assert!(stderr.contains("credentials.toml"), "{stderr}");
    }
    assert_eq!(sim.stats().token_requests, 0);
}

#[tokio::test]
async fn unusable_credentials_files_stop_before_any_request_naming_the_file() {
    let sim = sim_with(3, oauth()).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = ids(d, &sim, 3);
    let good = format!(
        "client_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\nrefresh_token = \"{REFRESH}\"\n"
    );
    let cases = [
        (
            "missing",
            good.replace(&format!("refresh_token = \"{REFRESH}\"\n"), ""),
            "has no `refresh_token`",
        ),
        (
            "syntax",
            good.replace("\"\nclient_secret", "\nclient_secret"),
            "is not valid TOML",
        ),
        (
            "unknown",
            format!("{good}acess_token = \"x\"\n"),
            ":4:1: unknown key `acess_token` (did you mean `access_token`?)",
        ),
        (
            "type",
            format!("{good}access_token_expires_at = 5\n"),
            ":4:27: `access_token_expires_at` must be an RFC 3339",
        ),
    ];
    for (name, body, want) in cases {
        let creds = private(d, &format!("{name}.toml"), &body);
        let done = run(audit(&sim.base_url, &creds, &lines, &d.join("r"), &[])).await;
        assert_eq!(done.status.code(), Some(2), "{name}: {}", shown(&done));
        let stderr = text(&done.stderr);
        assert!(stderr.contains(&format!("{name}.toml")), "{name}: {stderr}");
        assert!(stderr.contains(want), "{name}: {stderr}");
        assert!(
            !stderr.contains(CLIENT_SECRET) && !stderr.contains(REFRESH),
            "{stderr}"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let creds = private(d, "shared.toml", &good);
        std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
        let done = run(audit(&sim.base_url, &creds, &lines, &d.join("r"), &[])).await;
        assert_eq!(done.status.code(), Some(2), "{}", shown(&done));
        let stderr = text(&done.stderr);
        assert!(
            stderr.contains("may be read by group or others (mode 644)"),
            "{stderr}"
        );
        assert!(stderr.contains("chmod 600"), "{stderr}");
    }
    assert_eq!(sim.stats().requests, 0, "nothing requested");
}

#[tokio::test]
async fn no_secret_appears_in_any_output_of_a_verbose_json_logged_run() {
    let sim = sim_with(
        60,
        OAuthConfig {
            access_token_requests: Some(20),
            rotate: true,
            ..oauth()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let creds = credentials(d, "");
    let lines = ids(d, &sim, 60);
    let out = d.join("reports");
    let mut outputs = Vec::new();
    let done = run(audit(
        &sim.base_url,
        &creds,
        &lines,
        &out,
        &["-vv", "--log-format", "json", "--concurrency", "16"],
    ))
    .await;
    read_all(&done);
    outputs.push(("audit stdout".to_string(), text(&done.stdout)));
    outputs.push(("audit stderr".to_string(), text(&done.stderr)));
    let mut check = ptt_audit();
    check
        .args([
            "-vv",
            "--log-format",
            "json",
            "auth",
            "check",
            "--base-url",
            &sim.base_url,
            "--credentials",
        ])
        .arg(&creds);
    let checked = run(check).await;
    assert_eq!(checked.status.code(), Some(0), "{}", shown(&checked));
    outputs.push(("auth check stdout".to_string(), text(&checked.stdout)));
    outputs.push(("auth check stderr".to_string(), text(&checked.stderr)));
    for file in crate::common::files_in(&out) {
        outputs.push((
            file.display().to_string(),
            std::fs::read_to_string(&file).unwrap(),
        ));
    }
    let issued = sim.issued_tokens();
    assert!(sim.stats().tokens_issued >= 3, "{}", sim.stats());
    let mut secrets = vec![CLIENT_SECRET.to_string(), REFRESH.to_string()];
    secrets.extend(issued);
    for (place, content) in &outputs {
        for secret in &secrets {
            assert!(!content.contains(secret.as_str()), "a secret in {place}");
        }
    }
    // The logs did say what happened, as JSON.
    let stderr = &outputs[1].1;
    assert!(
        stderr.contains("refreshed the access token and saved it"),
        "{stderr}"
    );
    for line in stderr.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("every stderr line is JSON");
    }
}
