//! End-to-end benchmark of `ptt-audit audit` against the simulator on 127.0.0.1.
//!
//! ```text
//! cargo bench --bench e2e                   # every scenario, about 2 minutes
//! cargo bench --bench e2e -- pace wxc       # only these (throughput, all, formats, wxc, pace, throttled)
//! PTT_BENCH_RUNS=5 cargo bench --bench e2e  # repeat throughput and wxc runs (default 3)
//! ```
//!
//! The simulator runs inside this process (a tokio runtime on every core); ptt-audit
//! runs as a child process, exactly as a user runs it, and is measured with `wait4`:
//! its own user+system CPU time and peak RSS, nothing of the simulator's. Line counts
//! come from the summary of the JSON report each run writes.
//!
//! The children are started by a small launcher process (this same binary, started
//! first): Linux's `ru_maxrss` of a child counts the memory of the process it was
//! forked from, so forking ptt-audit straight from a process that holds a 100,000-line
//! simulator would report the simulator's size.
//!
//! Scenarios:
//! - `throughput`: `--rate 0 --concurrency 64`, 10,000 and 100,000 lines: lines/s, CPU
//!   seconds per 1,000 lines, peak RSS, and how much RSS grows per extra line.
//! - `all`: `audit --all` (the lines listed from the API, page by page, audited as
//!   they arrive) against an ID file of the same 100,000 lines, runs interleaved: peak
//!   RSS (target: the same 64 MB), and throughput within 10% of the ID-file run's.
//! - `pace`: `--rate 50`, 1,000 lines (20 s): achieved rate over configured (from the
//!   server-side arrival times), and the most requests that started in any one second.
//! - `throttled`: a server allowing 20 requests/s, `--rate 100`, 1,000 lines: wall time
//!   against the ideal 50 s, share of requests refused with 429, lines not read.
//! - `formats`: 100,000 lines with `--format all` (JSON, CSVs, xlsx, HTML) against
//!   `--format json,csv`, runs interleaved: wall time ratio, peak RSS, file sizes.
//! - `wxc`: `benches/wxc_sdk_audit.py` (a wxc_sdk script, concurrency 8) against
//!   ptt-audit `--concurrency 8` on the same 2,000 lines: CPU per 1,000 lines and wall
//!   time. Skipped when `python3 -c 'import wxc_sdk'` fails.
//!
//! - `auto-5`, `auto-20`, `auto-100` (see `e2e/auto.rs`): the default `--rate auto`
//!   against a server allowing L requests/s with 250 ms per answer, 1,000 lines, and
//!   the wxc_sdk script against the same server. About 1000 / min(L, 50) s each, twice:
//!   `auto-5` alone takes 7 minutes.
//! - `nginx`: `../shared/bench/perf.py`, the CPU side by side with an async wxc_sdk
//!   script on one static nginx (skipped, saying why, without nginx, wrk or perf.py).
//!
//! `cargo bench --bench e2e -- throughput pace throttled wxc` skips the slow auto-pace
//! scenarios; `cargo bench --bench e2e -- auto-20 nginx` runs only those. The wxc_sdk
//! script runs with `PTT_BENCH_PYTHON`, else `target/bench-venv/bin/python` (the venv
//! perf.py makes), else `python3`.
//!
//! Every figure is printed next to its target with PASS or MISS; the process exits 0
//! either way (it measures, it does not gate).

#[path = "e2e/auto.rs"]
mod auto;

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ptt_audit::simulator::{self, RunningSimulator, SimConfig};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

const BIN: &str = env!("CARGO_BIN_EXE_ptt-audit");
const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/wxc_sdk_audit.py");
/// Any bearer token works against the simulator; this one is made up.
const TOKEN: &str = "bench-token";

const THROUGHPUT_CONCURRENCY: usize = 64;
const THROUGHPUT_TARGET: f64 = 5_000.0;
const RSS_TARGET_MB: f64 = 64.0;
/// What the list of IDs read at the start may cost per line (an 88-character Webex
/// ID, its `file:line` origin and the entry holding them): all the growth allowed.
const RSS_GROWTH_TARGET_BYTES_PER_LINE: f64 = 256.0;
const PACE_RATE: f64 = 50.0;
const PACE_LINES: usize = 1_000;
const SERVER_LIMIT: f64 = 20.0;
const THROTTLED_RATE: f64 = 100.0;
const THROTTLED_LINES: usize = 1_000;
const WXC_LINES: usize = 2_000;
const ALL_LINES: usize = 100_000;

// The root of a bench target looks for modules beside it, not in `e2e/`.
#[path = "e2e/all.rs"]
mod all;
const FORMATS_LINES: usize = 100_000;
/// `--format all` may take at most this much longer than `--format json,csv`.
const FORMATS_TIME_RATIO: f64 = 1.5;
const WXC_CONCURRENCY: usize = 8;

/// What one child process cost, from `wait4`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Usage {
    wall: Duration,
    cpu: Duration,
    max_rss_bytes: u64,
    exit_code: i32,
}

/// A process for the launcher to run: stdout and stderr go to `log`; after
/// `timeout` it gets SIGTERM (ptt-audit then writes its reports and exits), so the
/// benchmark always ends.
#[derive(Debug, Serialize, Deserialize)]
struct Job {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    timeout: Duration,
}

impl Job {
    fn new(program: impl Into<PathBuf>, log: &Path, timeout: Duration) -> Job {
        Job {
            program: program.into(),
            args: Vec::new(),
            env: vec![("WEBEX_TOKEN".into(), TOKEN.into())],
            log: log.to_path_buf(),
            timeout,
        }
    }

    fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Job {
        self.args.push(a.as_ref().to_string_lossy().into_owned());
        self
    }

    fn args<const N: usize>(mut self, a: [&str; N]) -> Job {
        self.args.extend(a.iter().map(|s| s.to_string()));
        self
    }
}

const LAUNCHER_ENV: &str = "PTT_BENCH_LAUNCHER";

/// The launcher's side: runs each job read from stdin (one JSON per line) and
/// answers with its [`Usage`], until stdin closes.
fn launcher_main() {
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let job: Job = serde_json::from_str(&line).expect("a job from the benchmark");
        let mut cmd = Command::new(&job.program);
        cmd.args(&job.args)
            .envs(job.env.iter().map(|(k, v)| (k, v)))
            .env_remove("WEBEX_BASE_URL")
            .env_remove("WEBEX_ORG_ID");
        let usage = measure(cmd, &job.log, job.timeout);
        serde_json::to_writer(&mut out, &usage).expect("answer the benchmark");
        out.write_all(b"\n").expect("answer the benchmark");
        out.flush().expect("answer the benchmark");
    }
}

/// The benchmark's handle on the launcher.
struct Launcher {
    child: std::process::Child,
    to: std::process::ChildStdin,
    from: BufReader<std::process::ChildStdout>,
}

impl Launcher {
    /// Starts the launcher: do it before this process grows.
    fn start() -> Launcher {
        let mut child = Command::new(std::env::current_exe().expect("this binary"))
            .env(LAUNCHER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the launcher");
        let to = child.stdin.take().expect("piped stdin");
        let from = BufReader::new(child.stdout.take().expect("piped stdout"));
        Launcher { child, to, from }
    }

    fn run(&mut self, job: &Job) -> Usage {
        let mut line = serde_json::to_string(job).expect("a job serialises");
        line.push('\n');
        self.to.write_all(line.as_bytes()).expect("send a job");
        self.to.flush().expect("send a job");
        line.clear();
        self.from
            .read_line(&mut line)
            .expect("the launcher answers");
        serde_json::from_str(&line).expect("a usage from the launcher")
    }

    fn stop(self) {
        let Launcher {
            mut child,
            to,
            from,
        } = self;
        drop((to, from));
        let _ = child.wait();
    }
}

/// The line counts of a report's `summary.lines`.
#[derive(Debug, Clone, Copy, Default)]
struct Lines {
    total: u64,
    read: u64,
}

/// One row of the result table.
struct Row {
    scenario: &'static str,
    measure: String,
    value: String,
    target: String,
    pass: Option<bool>,
}

#[derive(Default)]
struct Table(Vec<Row>);

impl Table {
    fn add(
        &mut self,
        scenario: &'static str,
        measure: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        pass: Option<bool>,
    ) {
        let row = Row {
            scenario,
            measure: measure.into(),
            value: value.into(),
            target: target.into(),
            pass,
        };
        eprintln!("  {:<11} {:<42} {}", row.scenario, row.measure, row.value);
        self.0.push(row);
    }

    fn render(&self) -> String {
        let head = ["scenario", "measure", "value", "target", "result"];
        let cells: Vec<[String; 5]> = self
            .0
            .iter()
            .map(|r| {
                [
                    r.scenario.to_string(),
                    r.measure.clone(),
                    r.value.clone(),
                    r.target.clone(),
                    match r.pass {
                        Some(true) => "PASS".into(),
                        Some(false) => "MISS".into(),
                        None => String::new(),
                    },
                ]
            })
            .collect();
        let mut width = head.map(str::len);
        for row in &cells {
            for (w, c) in width.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cols: &[String]| {
            let mut s = String::from("|");
            for (c, w) in cols.iter().zip(width) {
                let _ = write!(s, " {c}{} |", " ".repeat(w - c.chars().count()));
            }
            s.push('\n');
            s
        };
        let mut out = line(&head.map(String::from));
        out.push('|');
        for w in width {
            out.push_str(&"-".repeat(w + 2));
            out.push('|');
        }
        out.push('\n');
        for row in &cells {
            out.push_str(&line(row));
        }
        out
    }
}

fn main() {
    if std::env::var_os(LAUNCHER_ENV).is_some() {
        return launcher_main();
    }
    let mut launcher = Launcher::start();
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    let runs: usize = std::env::var("PTT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(3);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temporary folder");
    let started = Instant::now();
    let mut table = Table::default();
    eprintln!(
        "ptt-audit end-to-end benchmark ({} cores, ptt-audit at {BIN})",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if wanted("throughput") || wanted("wxc") || wanted("all") || wanted("formats") {
        let lines = if wanted("throughput") || wanted("all") || wanted("formats") {
            ALL_LINES
        } else {
            WXC_LINES
        };
        let t = Instant::now();
        let sim = start(
            &rt,
            SimConfig {
                lines,
                ..SimConfig::default()
            },
        );
        eprintln!(
            "simulator: {lines} lines generated and serving in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        if wanted("throughput") {
            throughput(&mut launcher, &sim, dir.path(), runs, &mut table);
        }
        if wanted("all") {
            all::all(&mut launcher, &sim, dir.path(), runs, &mut table);
        }
        if wanted("formats") {
            formats(&mut launcher, &sim, dir.path(), runs, &mut table);
        }
        if wanted("wxc") {
            wxc(&mut launcher, &sim, dir.path(), runs, &mut table);
        }
        rt.block_on(sim.shutdown());
    }
    if wanted("pace") {
        pace(&mut launcher, &rt, dir.path(), &mut table);
    }
    if wanted("throttled") {
        throttled(&mut launcher, &rt, dir.path(), &mut table);
    }
    for limit in auto::LIMITS {
        if wanted(auto::name(limit)) {
            auto::auto_pace(&mut launcher, &rt, dir.path(), limit, &mut table);
        }
    }
    if wanted("nginx") {
        auto::nginx_cpu(&mut table);
    }
    launcher.stop();
    println!();
    print!("{}", table.render());
    let misses = table.0.iter().filter(|r| r.pass == Some(false)).count();
    println!(
        "\n{} targets, {misses} missed; benchmark took {:.0} s",
        table.0.iter().filter(|r| r.pass.is_some()).count(),
        started.elapsed().as_secs_f64()
    );
}

fn start(rt: &Runtime, config: SimConfig) -> RunningSimulator {
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("address");
    rt.block_on(simulator::start(config, listen))
        .expect("simulator starts")
}

fn write_ids(dir: &Path, name: &str, ids: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut text = ids.join("\n");
    text.push('\n');
    std::fs::write(&path, text).expect("write IDs");
    path
}

/// Runs `ptt-audit audit` on `ids` and returns what it cost and what its report says.
fn audit(
    launcher: &mut Launcher,
    sim: &RunningSimulator,
    ids: &Path,
    dir: &Path,
    rate: f64,
    concurrency: usize,
) -> (Usage, Lines) {
    let (usage, lines, _) = audit_with(launcher, sim, ids, dir, rate, concurrency, &[]);
    (usage, lines)
}

/// [`audit`] with more arguments; also returns the size of each report file by its
/// suffix (`.json`, `-findings.csv`, `.xlsx`…).
fn audit_with(
    launcher: &mut Launcher,
    sim: &RunningSimulator,
    ids: &Path,
    dir: &Path,
    rate: f64,
    concurrency: usize,
    extra: &[&str],
) -> (Usage, Lines, Vec<(String, u64)>) {
    let input = vec!["--lines".to_string(), ids.display().to_string()];
    audit_run(
        launcher,
        sim,
        &input,
        lines_in(ids),
        dir,
        (rate, concurrency),
        extra,
    )
}

/// Runs `ptt-audit audit` with `input` (`--lines FILE`, `--all`, …) for about `lines`
/// lines, and returns what it cost and what its report says.
fn audit_input(
    launcher: &mut Launcher,
    sim: &RunningSimulator,
    input: &[String],
    lines: usize,
    dir: &Path,
    rate: f64,
    concurrency: usize,
) -> (Usage, Lines) {
    let (usage, lines, _) = audit_run(launcher, sim, input, lines, dir, (rate, concurrency), &[]);
    (usage, lines)
}

/// [`audit_input`] with more arguments (`extra`, after the others) and the size of each
/// report file by its suffix.
fn audit_run(
    launcher: &mut Launcher,
    sim: &RunningSimulator,
    input: &[String],
    lines: usize,
    dir: &Path,
    (rate, concurrency): (f64, usize),
    extra: &[&str],
) -> (Usage, Lines, Vec<(String, u64)>) {
    let out = dir.join("reports");
    let _ = std::fs::remove_dir_all(&out);
    let log = dir.join("audit.log");
    // Twice the slowest expected run, and at least a minute.
    let expected = match rate {
        r if r > 0.0 => Duration::from_secs_f64(lines as f64 / r.min(SERVER_LIMIT)),
        _ => Duration::from_secs_f64(lines as f64 / 1_000.0),
    };
    let mut job =
        Job::new(BIN, &log, (expected * 2).max(Duration::from_secs(60))).args(["-q", "audit"]);
    for a in input {
        job = job.arg(a);
    }
    let job = job
        .args(["--base-url", &sim.base_url])
        .args(["--rate", &rate.to_string()])
        .args(["--concurrency", &concurrency.to_string()])
        .arg("--out")
        .arg(&out)
        .args(["--policies", POLICIES]);
    let mut job = job;
    job.args.extend(extra.iter().map(|a| a.to_string()));
    let usage = launcher.run(&job);
    // 0 (all compliant) and 1 (some rule failed) are the exit codes of a complete run.
    if !matches!(usage.exit_code, 0 | 1) {
        let mut text = String::new();
        let _ = std::fs::File::open(&log).map(|mut f| f.read_to_string(&mut text));
        eprintln!("ptt-audit exited {}:\n{text}", usage.exit_code);
    }
    let lines = report_lines(&out);
    let sizes = report_sizes(&out);
    let _ = std::fs::remove_dir_all(&out);
    (usage, lines, sizes)
}

/// The report files in `out` by suffix after the stem, with their sizes.
fn report_sizes(out: &Path) -> Vec<(String, u64)> {
    let mut sizes: Vec<(String, u64)> = std::fs::read_dir(out)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let suffix = name
                        .strip_prefix("ptt-audit-")?
                        .split_once('Z')?
                        .1
                        .to_string();
                    Some((suffix, e.metadata().ok()?.len()))
                })
                .collect()
        })
        .unwrap_or_default();
    sizes.sort();
    sizes
}

/// Spawns `cmd` (stdout and stderr to `log`) and waits for it with `wait4`, which
/// reports the CPU time and peak RSS of exactly that child.
fn measure(mut cmd: Command, log: &Path, timeout: Duration) -> Usage {
    let log = std::fs::File::create(log).expect("log file");
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log);
    let t = Instant::now();
    let child = cmd.spawn().expect("spawn the child");
    let pid = child.id() as libc::pid_t;
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(timeout) == Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
            eprintln!("  (timed out after {timeout:?}: stopping it)");
            // SAFETY: kill only sends a signal; the child is not reaped before this
            // thread ends (see below), so the pid is still ours.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    });
    // Wait for the exit without reaping, so the pid stays ours (a zombie) until the
    // watchdog is gone: it can never signal a recycled pid.
    loop {
        // SAFETY: `info` is plain data that waitid fills in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.kind(), std::io::ErrorKind::Interrupted, "waitid: {err}");
    }
    let wall = t.elapsed();
    drop(done);
    let _ = watchdog.join();
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; the pid is our own exited
    // child, reaped here and nowhere else (`child` is never waited on).
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.kind(), std::io::ErrorKind::Interrupted, "wait4: {err}");
    }
    drop(child);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Usage {
        wall,
        cpu: tv(rusage.ru_utime) + tv(rusage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        max_rss_bytes: rusage.ru_maxrss as u64 * 1024,
        exit_code: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
    }
}

fn lines_in(ids: &Path) -> usize {
    std::fs::read_to_string(ids).map_or(0, |t| t.lines().count())
}

/// `summary.lines` of the JSON report in `out`. The summary comes before the (large)
/// `lines` array, so only the start of the file is read.
fn report_lines(out: &Path) -> Lines {
    let Some(path) = std::fs::read_dir(out).ok().and_then(|entries| {
        entries.filter_map(Result::ok).map(|e| e.path()).find(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
    }) else {
        return Lines::default();
    };
    let mut head = vec![0; 64 * 1024];
    let n = std::fs::File::open(&path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    head.truncate(n);
    let text = String::from_utf8_lossy(&head);
    let Some(at) = text.find("\"summary\":") else {
        return Lines::default();
    };
    let rest = &text.as_bytes()[at + "\"summary\":".len()..];
    let summary: serde_json::Value = serde_json::Deserializer::from_slice(rest)
        .into_iter()
        .next()
        .and_then(Result::ok)
        .unwrap_or_default();
    let get = |k: &str| summary["lines"][k].as_u64().unwrap_or(0);
    Lines {
        total: get("total"),
        read: get("compliant") + get("non_compliant"),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn mb(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

/// `median (best)` of several runs; `higher` says which end is best.
fn med_best(v: &[f64], higher: bool, digits: usize) -> String {
    let best = if higher {
        v.iter().copied().fold(f64::MIN, f64::max)
    } else {
        v.iter().copied().fold(f64::MAX, f64::min)
    };
    if v.len() == 1 {
        format!("{:.digits$}", v[0])
    } else {
        format!("{:.digits$} (best {best:.digits$})", median(v.to_vec()))
    }
}

fn throughput(
    launcher: &mut Launcher,
    sim: &RunningSimulator,
    dir: &Path,
    runs: usize,
    table: &mut Table,
) {
    let mut peak = Vec::new();
    for n in [10_000, 100_000] {
        let ids = write_ids(dir, &format!("ids-{n}.txt"), &sim.ids[..n]);
        let mut rate = Vec::new();
        let mut cpu = Vec::new();
        let mut rss = Vec::new();
        let mut unread = 0;
        for _ in 0..runs {
            let (u, lines) = audit(launcher, sim, &ids, dir, 0.0, THROUGHPUT_CONCURRENCY);
            eprintln!(
                "  throughput {n}: {:.2} s wall, {:.2} s CPU, {:.1} MB peak RSS, {} of {} lines read",
                u.wall.as_secs_f64(),
                u.cpu.as_secs_f64(),
                mb(u.max_rss_bytes as f64),
                lines.read,
                lines.total
            );
            rate.push(lines.read as f64 / u.wall.as_secs_f64());
            cpu.push(u.cpu.as_secs_f64() * 1000.0 / n as f64);
            rss.push(u.max_rss_bytes as f64);
            unread = unread.max(n as u64 - lines.read);
        }
        let scenario = "throughput";
        let k = n / 1000;
        table.add(
            scenario,
            format!("{k}k lines, --rate 0 -c {THROUGHPUT_CONCURRENCY}: lines/s"),
            med_best(&rate, true, 0),
            format!(">= {THROUGHPUT_TARGET:.0}"),
            Some(median(rate.clone()) >= THROUGHPUT_TARGET && unread == 0),
        );
        table.add(
            scenario,
            format!("{k}k lines: CPU s per 1,000 lines"),
            med_best(&cpu, false, 3),
            "",
            None,
        );
        let rss_mb: Vec<f64> = rss.iter().map(|b| mb(*b)).collect();
        table.add(
            scenario,
            format!("{k}k lines: peak RSS, MB"),
            med_best(&rss_mb, false, 1),
            if n == 100_000 {
                format!("<= {RSS_TARGET_MB:.0}")
            } else {
                String::new()
            },
            (n == 100_000).then(|| median(rss_mb.clone()) <= RSS_TARGET_MB),
        );
        if unread > 0 {
            table.add(
                scenario,
                format!("{k}k lines: lines not read"),
                unread.to_string(),
                "0",
                Some(false),
            );
        }
        peak.push((n, median(rss)));
    }
    if let [(n1, r1), (n2, r2)] = peak[..] {
        let per_line = (r2 - r1) / (n2 - n1) as f64;
        table.add(
            "throughput",
            "peak RSS growth 10k -> 100k, bytes per line",
            format!("{per_line:.0}"),
            format!("<= {RSS_GROWTH_TARGET_BYTES_PER_LINE:.0} (the ID list)"),
            Some(per_line <= RSS_GROWTH_TARGET_BYTES_PER_LINE),
        );
    }
}

/// `--format all` against `--format json,csv` on the same 100,000 lines, interleaved so
/// that a busy machine slows both alike.
fn formats(
    launcher: &mut Launcher,
    sim: &RunningSimulator,
    dir: &Path,
    runs: usize,
    table: &mut Table,
) {
    let ids = write_ids(dir, "ids-formats.txt", &sim.ids[..FORMATS_LINES]);
    let (mut base_wall, mut all_wall, mut all_rss, mut base_rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut sizes = Vec::new();
    let mut unread = 0;
    for _ in 0..runs {
        for (list, wall, rss) in [
            ("json,csv", &mut base_wall, &mut base_rss),
            ("all", &mut all_wall, &mut all_rss),
        ] {
            let (u, lines, s) = audit_with(
                launcher,
                sim,
                &ids,
                dir,
                0.0,
                THROUGHPUT_CONCURRENCY,
                &["--format", list],
            );
            eprintln!(
                "  formats {list}: {:.2} s wall, {:.2} s CPU, {:.1} MB peak RSS, {} of {} lines read",
                u.wall.as_secs_f64(),
                u.cpu.as_secs_f64(),
                mb(u.max_rss_bytes as f64),
                lines.read,
                lines.total
            );
            wall.push(u.wall.as_secs_f64());
            rss.push(mb(u.max_rss_bytes as f64));
            unread = unread.max(FORMATS_LINES as u64 - lines.read);
            if list == "all" {
                sizes = s;
            }
        }
    }
    let k = FORMATS_LINES / 1000;
    table.add(
        "formats",
        format!("{k}k lines --format json,csv: wall s"),
        med_best(&base_wall, false, 2),
        "",
        None,
    );
    table.add(
        "formats",
        format!("{k}k lines --format all: wall s"),
        med_best(&all_wall, false, 2),
        "",
        None,
    );
    let ratio = median(all_wall) / median(base_wall);
    table.add(
        "formats",
        "wall time, all / json,csv",
        format!("{ratio:.2}x"),
        format!("<= {FORMATS_TIME_RATIO}x"),
        Some(ratio <= FORMATS_TIME_RATIO && unread == 0),
    );
    table.add(
        "formats",
        "--format all: peak RSS, MB",
        med_best(&all_rss, false, 1),
        format!("<= {RSS_TARGET_MB:.0}"),
        Some(median(all_rss) <= RSS_TARGET_MB),
    );
    table.add(
        "formats",
        "--format json,csv: peak RSS, MB",
        med_best(&base_rss, false, 1),
        "",
        None,
    );
    for (suffix, bytes) in sizes {
        table.add(
            "formats",
            format!("{suffix} size, MB"),
            format!("{:.1}", mb(bytes as f64)),
            "",
            None,
        );
    }
}

fn pace(launcher: &mut Launcher, rt: &Runtime, dir: &Path, table: &mut Table) {
    let sim = start(
        rt,
        SimConfig {
            lines: PACE_LINES,
            record_arrivals: true,
            ..SimConfig::default()
        },
    );
    let ids = write_ids(dir, "ids-pace.txt", &sim.ids);
    let (u, lines) = audit(launcher, &sim, &ids, dir, PACE_RATE, 8);
    let mut arrivals = sim.arrivals();
    rt.block_on(sim.shutdown());
    arrivals.sort();
    let n = arrivals.len();
    let span = match (arrivals.first(), arrivals.last()) {
        (Some(a), Some(b)) if n > 1 => (*b - *a).as_secs_f64(),
        _ => f64::NAN,
    };
    // Requests per second between the first and the last: n - 1 gaps.
    let achieved = (n as f64 - 1.0) / span;
    let ratio = achieved / PACE_RATE;
    // Most arrivals in any window [t, t + 1 s): such a window can always slide right
    // to start at an arrival, so only those windows need checking.
    let mut most = 0;
    let mut j = 0;
    for i in 0..n {
        while j < n && arrivals[j] < arrivals[i] + Duration::from_secs(1) {
            j += 1;
        }
        most = most.max(j - i);
    }
    eprintln!(
        "  pace: {n} requests over {span:.2} s, {:.2} s wall, {} of {} lines read",
        u.wall.as_secs_f64(),
        lines.read,
        lines.total
    );
    let limit = PACE_RATE as usize + 1;
    table.add(
        "pace",
        format!("--rate {PACE_RATE:.0}, {PACE_LINES} lines: achieved / configured"),
        format!("{ratio:.3} ({achieved:.2}/s)"),
        ">= 0.98",
        Some(ratio >= 0.98 && lines.read == PACE_LINES as u64),
    );
    table.add(
        "pace",
        "most requests started in any 1 s window",
        most.to_string(),
        format!("<= {limit}"),
        Some(most <= limit),
    );
}

fn throttled(launcher: &mut Launcher, rt: &Runtime, dir: &Path, table: &mut Table) {
    let sim = start(
        rt,
        SimConfig {
            lines: THROTTLED_LINES,
            rate_limit: Some(SERVER_LIMIT),
            ..SimConfig::default()
        },
    );
    let ids = write_ids(dir, "ids-throttled.txt", &sim.ids);
    let (u, lines) = audit(launcher, &sim, &ids, dir, THROTTLED_RATE, 8);
    let stats = sim.stats();
    rt.block_on(sim.shutdown());
    let ideal = THROTTLED_LINES as f64 / SERVER_LIMIT;
    let wall = u.wall.as_secs_f64();
    let refused = stats.throttled as f64 / stats.requests.max(1) as f64;
    let unread = THROTTLED_LINES as u64 - lines.read;
    eprintln!(
        "  throttled: {wall:.1} s, {} requests, {} refused (429)",
        stats.requests, stats.throttled
    );
    table.add(
        "throttled",
        format!(
            "server {SERVER_LIMIT:.0}/s, --rate {THROTTLED_RATE:.0}: wall / ideal ({ideal:.0} s)"
        ),
        format!("{:.3} ({wall:.1} s)", wall / ideal),
        "<= 1.2",
        Some(wall / ideal <= 1.2),
    );
    table.add(
        "throttled",
        "requests refused with 429",
        format!(
            "{:.1}% ({} of {})",
            refused * 100.0,
            stats.throttled,
            stats.requests
        ),
        "<= 10%",
        Some(refused <= 0.10),
    );
    table.add(
        "throttled",
        "lines not read",
        unread.to_string(),
        "0",
        Some(unread == 0),
    );
}

fn wxc(
    launcher: &mut Launcher,
    sim: &RunningSimulator,
    dir: &Path,
    runs: usize,
    table: &mut Table,
) {
    let have = Command::new(auto::python())
        .args(["-c", "import wxc_sdk"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        table.add(
            "wxc_sdk",
            "Python wxc_sdk script",
            "skipped: pip install wxc-sdk",
            "",
            None,
        );
        return;
    }
    let ids = write_ids(dir, "ids-wxc.txt", &sim.ids[..WXC_LINES]);
    let (mut rust_cpu, mut rust_wall, mut py_cpu, mut py_wall) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut failed_runs = 0;
    for _ in 0..runs {
        let (u, lines) = audit(launcher, sim, &ids, dir, 0.0, WXC_CONCURRENCY);
        assert_eq!(lines.read, WXC_LINES as u64, "ptt-audit read every line");
        rust_cpu.push(u.cpu.as_secs_f64() * 1000.0 / WXC_LINES as f64);
        rust_wall.push(u.wall.as_secs_f64());

        let csv = dir.join("wxc.csv");
        let log = dir.join("wxc.log");
        let job = Job::new(auto::python(), &log, Duration::from_secs(120))
            .arg(SCRIPT)
            .arg("--lines")
            .arg(&ids)
            .arg("--out")
            .arg(&csv)
            .args(["--base-url", &sim.base_url])
            .args(["--concurrency", &WXC_CONCURRENCY.to_string()]);
        let u = launcher.run(&job);
        let rows = std::fs::read_to_string(&csv)
            .map(|t| t.lines().count().saturating_sub(1))
            .unwrap_or(0);
        if u.exit_code != 0 || rows != WXC_LINES {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            eprintln!(
                "wxc_sdk script exited {} with {rows} rows:\n{text}",
                u.exit_code
            );
            // A run that did not read every line proves nothing either way.
            failed_runs += 1;
            continue;
        }
        py_cpu.push(u.cpu.as_secs_f64() * 1000.0 / WXC_LINES as f64);
        py_wall.push(u.wall.as_secs_f64());
        eprintln!(
            "  wxc: ptt-audit {:.2} s wall {:.3} s CPU/1k; script {:.2} s wall {:.3} s CPU/1k",
            rust_wall.last().copied().unwrap_or_default(),
            rust_cpu.last().copied().unwrap_or_default(),
            u.wall.as_secs_f64(),
            py_cpu.last().copied().unwrap_or_default(),
        );
    }
    if py_cpu.is_empty() {
        table.add(
            "wxc_sdk",
            "wxc_sdk script runs that read every line",
            format!("0 of {failed_runs}"),
            "all",
            Some(false),
        );
        return;
    }
    let label = format!("{WXC_LINES} lines, concurrency {WXC_CONCURRENCY}");
    table.add(
        "wxc_sdk",
        format!("{label}: ptt-audit CPU s per 1,000 lines"),
        med_best(&rust_cpu, false, 3),
        "",
        None,
    );
    table.add(
        "wxc_sdk",
        "wxc_sdk script CPU s per 1,000 lines",
        med_best(&py_cpu, false, 3),
        "",
        None,
    );
    let cpu_ratio = median(py_cpu.clone()) / median(rust_cpu.clone());
    table.add(
        "wxc_sdk",
        "CPU per line, script / ptt-audit",
        format!("{cpu_ratio:.1}x"),
        ">= 10x",
        Some(cpu_ratio >= 10.0),
    );
    table.add(
        "wxc_sdk",
        "wall time, ptt-audit / script, s",
        format!(
            "{:.2} / {:.2}",
            median(rust_wall.clone()),
            median(py_wall.clone())
        ),
        "",
        None,
    );
    let wall_ratio = median(py_wall) / median(rust_wall);
    table.add(
        "wxc_sdk",
        "wall time, script / ptt-audit",
        format!("{wall_ratio:.1}x"),
        ">= 2x (well ahead)",
        Some(wall_ratio >= 2.0),
    );
}
