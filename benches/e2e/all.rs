//! The `all` scenario: `audit --all` against an ID file of the same lines.

use std::path::Path;

use ptt_audit::simulator::RunningSimulator;

use super::{
    audit_input, mb, med_best, median, write_ids, Launcher, Table, RSS_TARGET_MB,
    THROUGHPUT_CONCURRENCY,
};

/// `--all` may be this much slower than reading the same lines from an ID file.
const ALL_SLOWDOWN: f64 = 0.10;

/// `--all` against an ID file of the same lines, runs interleaved so that a busy
/// machine slows both alike.
pub(super) fn all(
    launcher: &mut Launcher,
    sim: &RunningSimulator,
    dir: &Path,
    runs: usize,
    table: &mut Table,
) {
    let n = sim.ids.len();
    let ids = write_ids(dir, "ids-all.txt", &sim.ids);
    let from_file = vec!["--lines".to_string(), ids.display().to_string()];
    let listed = vec!["--all".to_string()];
    let (mut file_rate, mut all_rate, mut file_rss, mut all_rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut unread = 0;
    for _ in 0..runs {
        for (input, rate, rss, label) in [
            (&from_file, &mut file_rate, &mut file_rss, "ID file"),
            (&listed, &mut all_rate, &mut all_rss, "--all"),
        ] {
            let (u, lines) = audit_input(launcher, sim, input, n, dir, 0.0, THROUGHPUT_CONCURRENCY);
            eprintln!(
                "  all, {label}: {:.2} s wall, {:.2} s CPU, {:.1} MB peak RSS, {} of {} lines read",
                u.wall.as_secs_f64(),
                u.cpu.as_secs_f64(),
                mb(u.max_rss_bytes as f64),
                lines.read,
                lines.total
            );
            rate.push(lines.read as f64 / u.wall.as_secs_f64());
            rss.push(mb(u.max_rss_bytes as f64));
            unread = unread.max(n as u64 - lines.read);
        }
    }
    let k = n / 1000;
    table.add(
        "all",
        format!("{k}k lines from an ID file: lines/s"),
        med_best(&file_rate, true, 0),
        "",
        None,
    );
    let ratio = median(all_rate.clone()) / median(file_rate.clone());
    table.add(
        "all",
        format!("{k}k lines with --all: lines/s"),
        format!("{} ({ratio:.2}x the ID file)", med_best(&all_rate, true, 0)),
        format!(">= {:.2}x", 1.0 - ALL_SLOWDOWN),
        Some(ratio >= 1.0 - ALL_SLOWDOWN && unread == 0),
    );
    table.add(
        "all",
        format!("{k}k lines from an ID file: peak RSS, MB"),
        med_best(&file_rss, false, 1),
        "",
        None,
    );
    table.add(
        "all",
        format!("{k}k lines with --all: peak RSS, MB"),
        med_best(&all_rss, false, 1),
        format!("<= {RSS_TARGET_MB:.0}"),
        Some(median(all_rss.clone()) <= RSS_TARGET_MB),
    );
    if unread > 0 {
        table.add(
            "all",
            "lines not read",
            unread.to_string(),
            "0",
            Some(false),
        );
    }
}
