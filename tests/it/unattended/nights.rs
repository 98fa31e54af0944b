//! The "Done when" of unattended runs: a cron job set up as the README says (a
//! credentials file a person wrote once, a config file, a short cron line) runs every
//! night for more than 90 simulated days without anyone touching it. Each night the
//! simulator's clock moves a day on, so the access token saved the night before has
//! expired on the server (while the file still says it is good): every run meets a
//! 401, refreshes once, rotates the refresh token and saves it, and the refresh token
//! of day one (good for 90 days) is long gone by the end.

use std::time::Duration;

use ptt_audit::simulator::OAuthConfig;

use super::*;

const NIGHTS: u64 = 95;
const DAY: Duration = Duration::from_secs(86_400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_job_from_the_readme_runs_95_nights_without_a_person() {
    let sim = sim_with(
        20,
        OAuthConfig {
            access_token_lifetime: DAY,
            refresh_token_lifetime: 90 * DAY,
            rotate: true,
            ..oauth()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let creds = credentials(&etc, "");
    ids(&etc, &sim, 20);
    let config = crate::common::write(
        &etc,
        "config.toml",
        &format!(
            "credentials = \"credentials.toml\"\nlines = \"ids.txt\"\npolicies = \"{POLICIES}\"\nout = \"reports\"\nprevious = \"latest\"\nkeep = 7\nquiet = true\nbase_url = \"{}\"\nrate = 0\n",
            sim.base_url
        ),
    );
    let cron_dir = dir.path().join("cron");
    std::fs::create_dir(&cron_dir).unwrap();

    for night in 1..=NIGHTS {
        sim.advance_clock(DAY);
        let issued = sim.stats().tokens_issued;
        let mut cron = ptt_audit();
        cron.current_dir(&cron_dir)
            .args(["audit", "--config"])
            .arg(&config);
        let done = run(cron).await;
        read_all(&done);
        // A quiet cron job prints nothing unless something is wrong.
        assert!(
            done.stdout.is_empty() && done.stderr.is_empty(),
            "night {night}: {}",
            shown(&done)
        );
        assert_eq!(
            sim.stats().tokens_issued,
            issued + 1,
            "night {night}: one refresh"
        );
    }

    let stats = sim.stats();
    assert_eq!(stats.tokens_issued, NIGHTS);
    assert_eq!(
        stats.ok - stats.tokens_issued,
        20 * NIGHTS,
        "every line read every night"
    );
    let saved = values(&creds);
    assert_ne!(saved["refresh_token"].as_str(), Some(REFRESH));
    assert_eq!(
        saved["refresh_token"].as_str(),
        sim.issued_tokens().last().map(String::as_str)
    );
    // Seven report sets left, the newest compared with the night before.
    let reports = reports_in(&etc.join("reports"));
    assert_eq!(reports.len(), 7 * 3, "{reports:?}");
    let (_, rows) = crate::common::read_csv_maps(&newest_findings(&etc.join("reports")));
    assert!(rows.iter().all(|r| r["change"] == "unchanged"));
    // Day one's refresh token expired on day 90: only rotation kept the job alive.
    let first = tempfile::tempdir().unwrap();
    let mut check = ptt_audit();
    check
        .args([
            "auth",
            "check",
            "--base-url",
            &sim.base_url,
            "--credentials",
        ])
        .arg(credentials(first.path(), ""));
    assert_eq!(run(check).await.status.code(), Some(2));
}
