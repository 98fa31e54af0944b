//! Shared by the integration tests: the contract's CSV headers (typed here once, from
//! `CONTRACT.md` §6, independently of the library's own constants), CSV and folder
//! readers, files, and the simulator harness.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ptt_audit::simulator::{RunningSimulator, SimConfig};

/// The findings CSV header, as `CONTRACT.md` §6 spells it, then §7's identity columns
/// (at the end of the contract's, in its order), then the waiver metadata of §4
/// (`ticket`, `owner`, `label`), added at the end as the contract allows.
pub const FINDINGS_HEADER: &str = "run_id,audited_at,org_id,line_id,line_name,rule_id,rule_title,severity,status,message,remediation,waiver_reason,waiver_expires,change,waiver_ticket,waiver_owner,waiver_label,location_id,location_name,phone_number,extension";
/// The lines CSV header, as `CONTRACT.md` §6 spells it, with §7's identity columns.
pub const LINES_HEADER: &str = "run_id,audited_at,org_id,line_id,line_name,status,allow_auto_answer,connection_type,access_type,member_count,members,failed_rules,highest_severity,error_kind,http_status,tracking_id,error_message,location_id,location_name,phone_number,extension";
/// The inventory CSV header of `ptt-audit lines`, as `CONTRACT.md` §7 spells it.
pub const INVENTORY_HEADER: &str = "id,name,location_id,location_name,phone_number,extension";

/// 127.0.0.1 on a free port.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The simulator with `config`, serving on the calling test's runtime.
pub async fn start_sim(config: SimConfig) -> RunningSimulator {
    ptt_audit::simulator::start(config, loopback())
        .await
        .expect("simulator starts")
}

/// Writes `content` to `dir/name` and returns that path.
pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write a test file");
    path
}

/// The files of a folder, sorted.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("the folder exists")
        .map(|e| e.expect("a dir entry").path())
        .collect();
    v.sort();
    v
}

/// The file names of a folder, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    files_in(dir)
        .iter()
        .map(|p| {
            p.file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// Header and rows of a CSV file; every row as long as the header.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).expect("CSV opens");
    let header: Vec<String> = reader
        .headers()
        .expect("CSV header")
        .iter()
        .map(String::from)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            let r = r.expect("CSV record parses");
            assert_eq!(r.len(), header.len(), "ragged CSV row {r:?}");
            r.iter().map(String::from).collect()
        })
        .collect();
    (header, rows)
}

/// Header and rows of a CSV file, each row keyed by column name.
pub fn read_csv_maps(path: &Path) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let (header, rows) = read_csv(path);
    let rows = rows
        .into_iter()
        .map(|r| header.iter().cloned().zip(r).collect())
        .collect();
    (header, rows)
}

/// How long one run of the binary may take before a test calls it hung.
pub const BINARY_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `ptt-audit` with `args` and `WEBEX_TOKEN=token`, without what a developer's
/// environment could slip in, on a blocking thread so that a server on the calling
/// test's runtime keeps answering meanwhile.
pub async fn run_binary(args: Vec<String>, token: &str) -> std::process::Output {
    let mut cmd = assert_cmd::Command::cargo_bin("ptt-audit").expect("the binary");
    cmd.env("WEBEX_TOKEN", token)
        .env_remove("WEBEX_BASE_URL")
        .env_remove("WEBEX_ORG_ID")
        .env_remove("RUST_LOG")
        .args(&args)
        .timeout(BINARY_LIMIT);
    tokio::task::spawn_blocking(move || cmd.output().expect("ptt-audit runs"))
        .await
        .expect("the blocking task finishes")
}

/// The one file of `dir` whose name ends in `suffix` (hidden files left out).
pub fn file_ending(dir: &Path, suffix: &str) -> PathBuf {
    let found: Vec<PathBuf> = files_in(dir)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| n.ends_with(suffix) && !n.starts_with('.'))
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one *{suffix} in {}: {found:?}",
        dir.display()
    );
    found.into_iter().next().expect("one file")
}

/// The JSON report in `dir`.
pub fn read_report(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(file_ending(dir, ".json")).expect("JSON report readable");
    serde_json::from_str(&text).expect("JSON report parses")
}
