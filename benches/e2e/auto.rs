//! The scenarios of issue 12: `--rate auto` against servers of unknown pace, and the
//! CPU per line side by side with a wxc_sdk script on one static nginx.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ptt_audit::settings::DEFAULT_MAX_RATE;
use ptt_audit::simulator::SimConfig;
use tokio::runtime::Runtime;

use super::{report_lines, start, write_ids, Job, Launcher, Table, BIN, POLICIES, SCRIPT};

/// The servers' limits, in requests per second.
pub(super) const LIMITS: [f64; 3] = [5.0, 20.0, 100.0];
const LINES: usize = 1_000;
const LATENCY: Duration = Duration::from_millis(250);
/// Wall time against `LINES / min(L, --max-rate)`.
const WALL_TARGET: f64 = 1.15;
/// Share of answers that are 429.
const REFUSED_TARGET: f64 = 0.03;
/// perf.py's targets.
const NGINX_LINES_PER_S: f64 = 10_000.0;
const NGINX_CPU_RATIO: f64 = 8.0;
const NGINX_CPU_STRETCH: f64 = 10.0;

/// The scenario's name, for the filter and the table.
pub(super) fn name(limit: f64) -> &'static str {
    match limit as u32 {
        5 => "auto-5",
        20 => "auto-20",
        _ => "auto-100",
    }
}

/// The Python that runs the wxc_sdk scripts: `PTT_BENCH_PYTHON`, else the venv perf.py
/// makes under `target/`, else `python3`.
pub(super) fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PTT_BENCH_PYTHON") {
        return p.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-venv/bin/python");
    if venv.exists() {
        return venv;
    }
    "python3".into()
}

fn have_wxc_sdk() -> bool {
    Command::new(python())
        .args(["-c", "import wxc_sdk"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn server(limit: f64) -> SimConfig {
    SimConfig {
        lines: LINES,
        rate_limit: Some(limit),
        latency: LATENCY,
        ..SimConfig::default()
    }
}

/// `auto-L`: ptt-audit with its default settings against a server allowing `limit`
/// requests a second, then the wxc_sdk script (its default concurrency) against a
/// fresh one.
pub(super) fn auto_pace(
    launcher: &mut Launcher,
    rt: &Runtime,
    dir: &Path,
    limit: f64,
    table: &mut Table,
) {
    let scenario = name(limit);
    let ideal = LINES as f64 / limit.min(DEFAULT_MAX_RATE);
    let timeout = Duration::from_secs_f64(ideal * 3.0 + 60.0);
    let sim = start(rt, server(limit));
    let ids = write_ids(dir, &format!("ids-{scenario}.txt"), &sim.ids);
    let out = dir.join("reports");
    let _ = std::fs::remove_dir_all(&out);
    // No --rate, no --concurrency: what a new user runs.
    let job = Job::new(BIN, &dir.join("audit.log"), timeout)
        .args(["-q", "audit", "--lines"])
        .arg(&ids)
        .args(["--base-url", &sim.base_url, "--policies", POLICIES])
        .arg("--out")
        .arg(&out);
    let usage = launcher.run(&job);
    let lines = report_lines(&out);
    let _ = std::fs::remove_dir_all(&out);
    let stats = sim.stats();
    rt.block_on(sim.shutdown());
    let wall = usage.wall.as_secs_f64();
    let refused = stats.throttled as f64 / stats.requests.max(1) as f64;
    eprintln!(
        "  {scenario}: {wall:.1} s (ideal {ideal:.0} s), {} requests, {} refused, {} of {} lines read",
        stats.requests, stats.throttled, lines.read, lines.total
    );
    table.add(
        scenario,
        format!("server {limit:.0}/s, 250 ms, default settings: wall / ideal ({ideal:.0} s)"),
        format!("{:.3} ({wall:.1} s)", wall / ideal),
        format!("<= {WALL_TARGET}"),
        Some(wall / ideal <= WALL_TARGET && lines.read == LINES as u64),
    );
    table.add(
        scenario,
        "answers that were 429",
        format!(
            "{:.1}% ({} of {})",
            refused * 100.0,
            stats.throttled,
            stats.requests
        ),
        format!("<= {:.0}%", REFUSED_TARGET * 100.0),
        Some(refused <= REFUSED_TARGET),
    );

    if !have_wxc_sdk() {
        table.add(
            scenario,
            "wxc_sdk script, same server",
            "skipped: no wxc_sdk (run perf.py once, or pip install wxc-sdk)",
            "",
            None,
        );
        return;
    }
    let sim = start(rt, server(limit));
    let csv = dir.join("wxc-auto.csv");
    let job = Job::new(python(), &dir.join("wxc.log"), timeout)
        .arg(SCRIPT)
        .arg("--lines")
        .arg(&ids)
        .arg("--out")
        .arg(&csv)
        .args(["--base-url", &sim.base_url]);
    let script = launcher.run(&job);
    let stats = sim.stats();
    rt.block_on(sim.shutdown());
    let rows = std::fs::read_to_string(&csv)
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0);
    let script_wall = script.wall.as_secs_f64();
    eprintln!(
        "  {scenario}: wxc_sdk script {script_wall:.1} s, exit {}, {rows} rows, {} requests, {} refused",
        script.exit_code, stats.requests, stats.throttled
    );
    table.add(
        scenario,
        "wall, ptt-audit / wxc_sdk script (its default concurrency)",
        format!(
            "{:.2} ({wall:.1} s / {script_wall:.1} s)",
            wall / script_wall
        ),
        "<= 1 (no slower)",
        Some(wall <= script_wall && rows == LINES),
    );
}

/// `nginx`: runs `../shared/bench/perf.py` on this build and reads its figures.
pub(super) fn nginx_cpu(table: &mut Table) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("../shared/bench/perf.py");
    let missing: Vec<&str> = [("nginx", "nginx"), ("wrk", "wrk")]
        .into_iter()
        .filter(|(bin, _)| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {bin}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(|(_, pkg)| pkg)
        .collect();
    if !script.exists() || !missing.is_empty() {
        let why = if script.exists() {
            format!("skipped: apt-get install {}", missing.join(" "))
        } else {
            format!("skipped: no {}", script.display())
        };
        table.add("nginx", "perf.py CPU side by side", why, "", None);
        return;
    }
    let output = Command::new("python3")
        .arg(&script)
        .args([
            "--bin",
            BIN,
            "--min-wall-ratio",
            "0",
            "--min-cpu-ratio",
            "0",
        ])
        .current_dir(root)
        .output();
    let text = match output {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("{e}"),
    };
    eprint!("{text}");
    // "ours: exit 0, wall 1.52 s, cpu 1.20 s, rss 21.0 MB, 13158 lines/s"
    let figures = |prefix: &str| -> Option<(f64, f64)> {
        let line = text.lines().find(|l| l.starts_with(prefix))?;
        let number_after = |key: &str| -> Option<f64> {
            let rest = &line[line.find(key)? + key.len()..];
            rest.split_whitespace().next()?.parse().ok()
        };
        let cpu = number_after("cpu")?;
        let lines_per_s = line
            .rsplit(", ")
            .next()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some((cpu, lines_per_s))
    };
    let (Some((cpu, rate)), Some((peer_cpu, _))) = (figures("ours:"), figures("peer:")) else {
        table.add(
            "nginx",
            "perf.py CPU side by side",
            "no figures (see its output above)",
            "",
            Some(false),
        );
        return;
    };
    let lines = text
        .lines()
        .find_map(|l| l.strip_prefix("perf: "))
        .unwrap_or("");
    eprintln!("  nginx: {lines}");
    table.add(
        "nginx",
        "perf.py, 20,000 lines at 32 in flight: ptt-audit lines/s",
        format!("{rate:.0}"),
        format!(">= {NGINX_LINES_PER_S:.0}"),
        Some(rate >= NGINX_LINES_PER_S),
    );
    let ratio = peer_cpu / cpu.max(1e-9);
    table.add(
        "nginx",
        "CPU, async wxc_sdk script / ptt-audit",
        format!("{ratio:.1}x ({peer_cpu:.2} s / {cpu:.2} s)"),
        format!(">= {NGINX_CPU_RATIO:.0}x (stretch {NGINX_CPU_STRETCH:.0}x)"),
        Some(ratio >= NGINX_CPU_RATIO),
    );
}
