//! Shared by the integration tests: the contract's CSV headers (typed here once, from
//! `CONTRACT.md` §6, independently of the library's own constants), CSV and folder
//! readers, files, and the simulator harness.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ptt_audit::simulator::{RunningSimulator, SimConfig};

/// The findings CSV header, as `CONTRACT.md` §6 spells it, then the waiver metadata
/// of §4 (`ticket`, `owner`, `label`), added at the end as the contract allows.
pub const FINDINGS_HEADER: &str = "run_id,audited_at,org_id,line_id,line_name,rule_id,rule_title,severity,status,message,remediation,waiver_reason,waiver_expires,change,waiver_ticket,waiver_owner,waiver_label";
/// The lines CSV header, as `CONTRACT.md` §6 spells it.
pub const LINES_HEADER: &str = "run_id,audited_at,org_id,line_id,line_name,status,allow_auto_answer,connection_type,access_type,member_count,members,failed_rules,highest_severity,error_kind,http_status,tracking_id,error_message";

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
