//! Unattended runs (`CONTRACT.md` §8): credentials that refresh, the config file, one
//! run per folder, retention, `--previous latest`, and many nights in a row. The binary
//! runs as cron runs it, against the simulator's token endpoint or a wiremock one.

mod auth_check;
mod credentials;
mod nights;
mod runs;
mod token_endpoint;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use ptt_audit::simulator::{OAuthConfig, RunningSimulator, SimConfig};

pub const BIN: &str = env!("CARGO_BIN_EXE_ptt-audit");
pub const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
pub const CLIENT_ID: &str = "client-id-unattended";
pub const CLIENT_SECRET: &str = "client-secret-5e1f0a93";
pub const REFRESH: &str = "refresh-first-7c2d41be";

/// How long one run may take before the test calls it hung (each takes well under a
/// second; a busy machine gets a wide margin).
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A token endpoint accepting [`CLIENT_ID`], [`CLIENT_SECRET`] and [`REFRESH`].
pub fn oauth() -> OAuthConfig {
    OAuthConfig {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        refresh_token: REFRESH.into(),
        ..OAuthConfig::default()
    }
}

/// A simulator of `lines` lines with `oauth` as its token endpoint, no faults.
pub async fn sim_with(lines: usize, oauth: OAuthConfig) -> RunningSimulator {
    crate::common::start_sim(SimConfig {
        lines,
        seed: 9,
        oauth: Some(oauth),
        ..SimConfig::default()
    })
    .await
}

/// The credentials file a person writes, plus `extra` lines, mode 0600.
pub fn credentials(dir: &Path, extra: &str) -> PathBuf {
    let text = format!(
        "client_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\nrefresh_token = \"{REFRESH}\"\n{extra}"
    );
    private(dir, "credentials.toml", &text)
}

/// Writes `dir/name`, readable by its owner only.
pub fn private(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    path
}

/// An RFC 3339 time `from_now` seconds from now (negative: in the past).
pub fn in_seconds(from_now: i64) -> String {
    (chrono::Utc::now() + chrono::TimeDelta::seconds(from_now))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A file of the simulator's first `n` line IDs.
pub fn ids(dir: &Path, sim: &RunningSimulator, n: usize) -> PathBuf {
    let mut text = sim.ids[..n].join("\n");
    text.push('\n');
    crate::common::write(dir, "ids.txt", &text)
}

/// `ptt-audit` without what a developer's environment could slip in.
pub fn ptt_audit() -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    for var in [
        "WEBEX_TOKEN",
        "WEBEX_BASE_URL",
        "WEBEX_ORG_ID",
        "PTT_AUDIT_CONFIG",
        "RUST_LOG",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `cmd` on a blocking thread (the simulator keeps serving on this runtime).
pub async fn run(cmd: std::process::Command) -> Output {
    let mut cmd = assert_cmd::Command::from_std(cmd);
    cmd.timeout(RUN_LIMIT);
    tokio::task::spawn_blocking(move || cmd.output().expect("ptt-audit runs"))
        .await
        .expect("the blocking task finishes")
}

/// `ptt-audit audit` with credentials against `base_url`, unpaced, the shipped
/// policies, reports into `out`, then `args`.
pub fn audit(
    base_url: &str,
    creds: &Path,
    lines: &Path,
    out: &Path,
    args: &[&str],
) -> std::process::Command {
    let mut cmd = ptt_audit();
    cmd.arg("audit")
        .arg("--base-url")
        .arg(base_url)
        .arg("--credentials")
        .arg(creds)
        .arg("--lines")
        .arg(lines)
        .arg("--out")
        .arg(out)
        .args(["--rate", "0", "--policies", POLICIES])
        .args(args);
    cmd
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Stdout and stderr, for assertion messages.
pub fn shown(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Exit 0 or 1: every line read (whatever the policies found).
pub fn read_all(out: &Output) {
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", shown(out));
}

/// The credentials file's values, by key.
pub fn values(path: &Path) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(path).expect("read")).expect("TOML")
}

/// Requests the simulator answered on the API (the token endpoint's left out).
pub fn api_requests(sim: &RunningSimulator) -> u64 {
    let s = sim.stats();
    s.requests - s.token_requests
}

/// The JSON report in `out` (exactly one).
pub fn json_report(out: &Path) -> serde_json::Value {
    let reports: Vec<PathBuf> = crate::common::files_in(out)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    serde_json::from_str(&std::fs::read_to_string(&reports[0]).expect("read")).expect("JSON")
}

/// The report files in `out` (hidden files, such as the lock, left out).
pub fn reports_in(out: &Path) -> Vec<String> {
    crate::common::names_in(out)
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect()
}

/// The findings CSV written last into `out`.
pub fn newest_findings(out: &Path) -> PathBuf {
    crate::common::files_in(out)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("-findings.csv"))
        .max_by_key(|p| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .expect("mtime")
        })
        .expect("a findings CSV")
}
