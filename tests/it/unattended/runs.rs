//! One run per report folder (two processes), `--keep`, `--previous latest`, and the
//! config file's place between the environment and the defaults.

use std::time::{Duration, Instant};

use ptt_audit::simulator::{RunningSimulator, SimConfig};

use super::*;

const TOKEN: &str = "runs-token-4b7e19";

async fn fixed_sim(lines: usize) -> RunningSimulator {
    crate::common::start_sim(SimConfig {
        lines,
        seed: 3,
        token: Some(TOKEN.into()),
        ..SimConfig::default()
    })
    .await
}

/// `ptt-audit audit` with the token in the environment.
fn audit_with_token(
    base_url: &str,
    lines: &Path,
    out: &Path,
    args: &[&str],
) -> std::process::Command {
    let mut cmd = ptt_audit();
    cmd.env("WEBEX_TOKEN", TOKEN)
        .arg("audit")
        .arg("--base-url")
        .arg(base_url)
        .arg("--lines")
        .arg(lines)
        .arg("--out")
        .arg(out)
        .args(["--policies", POLICIES])
        .args(args);
    cmd
}

/// Waits until `sim` has answered something (the run holding the lock is working).
fn wait_for_requests(sim: &RunningSimulator) {
    let started = Instant::now();
    while sim.stats().requests == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the first run never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_into_the_same_folder_exits_2_at_once_and_a_killed_run_leaves_no_lock() {
    let slow = fixed_sim(12).await;
    let other = fixed_sim(12).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = ids(d, &slow, 12);
    let out = d.join("reports");

    // The first run takes a few seconds at 4 requests a second.
    let mut first = audit_with_token(&slow.base_url, &lines, &out, &["--rate", "4", "-q"])
        .spawn()
        .unwrap();
    wait_for_requests(&slow);
    let second = run(audit_with_token(
        &other.base_url,
        &lines,
        &out,
        &["--rate", "0"],
    ))
    .await;
    assert_eq!(second.status.code(), Some(2), "{}", shown(&second));
    let stderr = text(&second.stderr);
    assert!(stderr.contains("another ptt-audit run (pid "), "{stderr}");
    assert!(stderr.contains(&format!("pid {},", first.id())), "{stderr}");
    assert!(stderr.contains(".ptt-audit.lock"), "{stderr}");
    assert_eq!(
        other.stats().requests,
        0,
        "the second run requested nothing"
    );
    let status = first.wait().unwrap();
    assert!(matches!(status.code(), Some(0 | 1)), "{status:?}");
    assert_eq!(reports_in(&out).len(), 3, "only the first run's reports");

    // A run killed while it holds the lock leaves nothing that stops the next one.
    let mut killed = audit_with_token(&slow.base_url, &lines, &out, &["--rate", "2", "-q"])
        .spawn()
        .unwrap();
    let before = slow.stats().requests;
    let started = Instant::now();
    while slow.stats().requests == before {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the run never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    let next = run(audit_with_token(
        &other.base_url,
        &lines,
        &out,
        &["--rate", "0"],
    ))
    .await;
    read_all(&next);
    assert_eq!(reports_in(&out).len(), 6);
}

#[tokio::test]
async fn keep_deletes_all_but_the_newest_report_sets_and_nothing_else() {
    let sim = fixed_sim(4).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = ids(d, &sim, 4);
    let out = d.join("reports");
    std::fs::create_dir(&out).unwrap();
    let old = [
        "ptt-audit-20200101T000000Z",
        "ptt-audit-20200102T000000Z",
        "ptt-audit-20200103T000000Z",
        "ptt-audit-20200103T000000Z-2",
        "ptt-audit-20200104T000000Z",
    ];
    for stem in old {
        for suffix in [".json", "-findings.csv", "-lines.csv"] {
            std::fs::write(out.join(format!("{stem}{suffix}")), "{}").unwrap();
        }
    }
    std::fs::write(out.join("ptt-audit-20200101T000000Z.html"), "x").unwrap();
    let untouched = [
        "notes.txt",
        "ptt-audit-20200101T000000Z-notes.txt",
        "ptt-audit-20200101T000000Z.json.bak",
        ".ptt-audit-20200101T000000Z.json.tmp",
    ];
    for name in untouched {
        std::fs::write(out.join(name), "mine").unwrap();
    }
    std::fs::create_dir(out.join("ptt-audit-20200102T000000Z-lines.csv.d")).unwrap();

    let done = run(audit_with_token(
        &sim.base_url,
        &lines,
        &out,
        &["--keep", "3", "--rate", "0"],
    ))
    .await;
    read_all(&done);
    let mut left = reports_in(&out);
    left.retain(|n| !untouched.contains(&n.as_str()) && !n.ends_with(".d"));
    let ours: Vec<&String> = left
        .iter()
        .filter(|n| n.starts_with("ptt-audit-202"))
        .collect();
    let kept_old: Vec<&String> = left
        .iter()
        .filter(|n| n.starts_with("ptt-audit-2020"))
        .collect();
    assert_eq!(
        kept_old,
        [
            "ptt-audit-20200103T000000Z-2-findings.csv",
            "ptt-audit-20200103T000000Z-2-lines.csv",
            "ptt-audit-20200103T000000Z-2.json",
            "ptt-audit-20200104T000000Z-findings.csv",
            "ptt-audit-20200104T000000Z-lines.csv",
            "ptt-audit-20200104T000000Z.json",
        ]
    );
    assert_eq!(ours.len() - kept_old.len(), 3, "this run's set: {left:?}");
    for name in untouched {
        assert!(out.join(name).exists(), "{name} was removed");
    }
    assert!(out.join("ptt-audit-20200102T000000Z-lines.csv.d").is_dir());
    assert!(
        !out.join(".ptt-audit.lock").exists(),
        "a finished run removes its lock file"
    );
}

/// Every findings row's `change` in the run's findings CSV in `out`, newest run.
fn changes(out: &Path) -> Vec<String> {
    let (_, rows) = crate::common::read_csv_maps(&newest_findings(out));
    rows.into_iter().map(|r| r["change"].clone()).collect()
}

#[tokio::test]
async fn previous_latest_is_the_newest_complete_report_and_none_is_no_comparison() {
    let sim = fixed_sim(6).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lines = ids(d, &sim, 6);
    let out = d.join("reports");
    let latest = ["--previous", "latest", "--rate", "0"];

    // First night: nothing to compare with, not an error.
    let first = run(audit_with_token(&sim.base_url, &lines, &out, &latest)).await;
    read_all(&first);
    assert!(
        changes(&out).iter().all(String::is_empty),
        "{:?}",
        changes(&out)
    );

    // A run cut short by a 401: incomplete, never a baseline.
    let mut refused = audit_with_token(&sim.base_url, &lines, &out, &["--rate", "0"]);
    refused.env("WEBEX_TOKEN", "not-the-token");
    let refused = run(refused).await;
    assert_eq!(refused.status.code(), Some(2), "{}", shown(&refused));

    let third = run(audit_with_token(&sim.base_url, &lines, &out, &latest)).await;
    read_all(&third);
    let seen = changes(&out);
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|c| c == "unchanged"),
        "compared with the incomplete run: {seen:?}"
    );

    // A folder as --previous: the same within it; a JSON-only report is read too.
    let json_only = d.join("json-only");
    read_all(
        &run(audit_with_token(
            &sim.base_url,
            &lines,
            &json_only,
            &["--format", "json", "--rate", "0"],
        ))
        .await,
    );
    let elsewhere = d.join("elsewhere");
    let by_dir = run(audit_with_token(
        &sim.base_url,
        &lines,
        &elsewhere,
        &["--previous", json_only.to_str().unwrap(), "--rate", "0"],
    ))
    .await;
    read_all(&by_dir);
    let seen = changes(&elsewhere);
    assert!(
        !seen.is_empty() && seen.iter().all(|c| c == "unchanged"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn command_line_beats_environment_beats_config_file_beats_defaults() {
    let sim = fixed_sim(3).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let etc = d.join("etc");
    std::fs::create_dir(&etc).unwrap();
    ids(&etc, &sim, 3);
    private(&etc, "token.txt", "wrong-token-from-config\n");
    private(&etc, "right.txt", &format!("{TOKEN}\n"));
    let config = crate::common::write(
        &etc,
        "config.toml",
        &format!(
            "# as in the README\nbase_url = \"http://127.0.0.1:1/v1\"\nlines = \"ids.txt\"\nout = \"reports\"\npolicies = \"{POLICIES}\"\nrate = 0\ntoken_file = \"right.txt\"\nquiet = true\n"
        ),
    );
    // cron's working folder is not the config's.
    let cron_dir = d.join("cron");
    std::fs::create_dir(&cron_dir).unwrap();
    let cron = |args: &[&str]| {
        let mut cmd = ptt_audit();
        cmd.current_dir(&cron_dir)
            .env("PTT_AUDIT_CONFIG", &config)
            .arg("audit")
            .args(args);
        cmd
    };

    // Environment (WEBEX_BASE_URL) over the file's base_url; paths from the file's folder.
    let mut env_url = cron(&[]);
    env_url.env("WEBEX_BASE_URL", &sim.base_url);
    let done = run(env_url).await;
    read_all(&done);
    assert!(
        text(&done.stdout).is_empty(),
        "quiet from the file: {}",
        shown(&done)
    );
    assert_eq!(reports_in(&etc.join("reports")).len(), 3);

    // The command line over the environment and the file.
    let mut cli = cron(&["--base-url", &sim.base_url, "--out", "here"]);
    cli.env("WEBEX_BASE_URL", "http://127.0.0.1:1/v1");
    read_all(&run(cli).await);
    assert_eq!(reports_in(&cron_dir.join("here")).len(), 3);

    // WEBEX_TOKEN (environment) over the file's token_file.
    let wrong = crate::common::write(
        &etc,
        "wrong.toml",
        &format!(
            "base_url = \"{}\"\nlines = \"ids.txt\"\nout = \"r2\"\npolicies = \"{POLICIES}\"\nrate = 0\ntoken_file = \"token.txt\"\n",
            sim.base_url
        ),
    );
    let mut env_token = ptt_audit();
    env_token
        .current_dir(&cron_dir)
        .args(["audit", "--config"])
        .arg(&wrong);
    let refused = run(env_token).await;
    assert_eq!(
        refused.status.code(),
        Some(2),
        "the file's wrong token: {}",
        shown(&refused)
    );
    let mut env_token = ptt_audit();
    env_token
        .current_dir(&cron_dir)
        .env("WEBEX_TOKEN", TOKEN)
        .args(["audit", "--config"])
        .arg(&wrong);
    read_all(&run(env_token).await);

    // A bad key through PTT_AUDIT_CONFIG: exit 2 naming file, line and key, as JSON.
    let bad = crate::common::write(&etc, "bad.toml", "out = \"r\"\nconcurency = 4\n");
    let mut refused = ptt_audit();
    refused
        .env("PTT_AUDIT_CONFIG", &bad)
        .args(["--log-format", "json", "audit"]);
    let refused = run(refused).await;
    assert_eq!(refused.status.code(), Some(2), "{}", shown(&refused));
    let stderr = text(&refused.stderr);
    let event: serde_json::Value =
        serde_json::from_str(stderr.lines().next().unwrap()).expect("JSON");
    let message = event["fields"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "{}:2:1: `concurency`: unknown key (did you mean `concurrency`?)",
            bad.display()
        )),
        "{message}"
    );
}
