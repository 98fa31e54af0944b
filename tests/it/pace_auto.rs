//! `--rate auto` (the default) through the binary, against the simulator whose rate
//! limit changes during the run: 20 requests/s, then 5/s, then 50/s. The run must
//! follow a fall within seconds and a rise once its pace has been quiet for a while,
//! with few 429s. Proportions only, with wide margins; no wall-clock upper bound (a
//! busy machine can only make the run slower, which the windows below tolerate).
//!
//! This takes 80 to 100 s: the pace is real time, and a rise is only looked for after
//! 20 s without a 429 (40 s if a probe in the 5/s phase met one).

use std::time::{Duration, Instant};

use ptt_audit::simulator::{SimConfig, SimStatsSnapshot};

use crate::common::{start_sim, write};

const BIN: &str = env!("CARGO_BIN_EXE_ptt-audit");
const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

/// The simulator's counters once a second, as time since it started.
struct Samples(Vec<(Duration, SimStatsSnapshot)>);

impl Samples {
    /// Requests answered 200 per second, and the share of requests refused with 429,
    /// between the samples nearest `from` and `to` seconds.
    fn window(&self, from: u64, to: u64) -> (f64, f64) {
        let at = |t: u64| {
            self.0
                .iter()
                .min_by_key(|(d, _)| d.abs_diff(Duration::from_secs(t)))
                .expect("samples")
        };
        let ((t0, a), (t1, b)) = (at(from), at(to));
        let secs = (*t1 - *t0).as_secs_f64().max(1e-9);
        let requests = (b.requests - a.requests).max(1) as f64;
        let ok = (b.ok - a.ok) as f64 / secs;
        let refused = (b.throttled - a.throttled) as f64 / requests;
        eprintln!(
            "{from:>3} s to {to:>3} s: {ok:5.1}/s accepted, {:4.1}% refused",
            refused * 100.0
        );
        (ok, refused)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_pace_follows_a_server_whose_limit_changes() {
    let sim = start_sim(SimConfig {
        // Enough lines to last past 76 s even when the rise is found at once (the first
        // probe after the fall, some 20 s after it), at 50/s from about 45 s.
        lines: 2200,
        rate_limit: Some(20.0),
        rate_limit_changes: vec![
            (Duration::from_secs(20), 5.0),
            (Duration::from_secs(40), 50.0),
        ],
        latency: Duration::from_millis(100),
        ..SimConfig::default()
    })
    .await;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let ids = write(dir.path(), "ids.txt", &(sim.ids.join("\n") + "\n"));
    let mut cmd = std::process::Command::new(BIN);
    cmd.env("WEBEX_TOKEN", "pace-token")
        .env_remove("WEBEX_BASE_URL")
        .env_remove("RUST_LOG")
        .args(["audit", "--base-url", &sim.base_url, "--policies", POLICIES])
        .arg("--lines")
        .arg(&ids)
        .arg("--out")
        .arg(dir.path().join("out"));
    let run = tokio::task::spawn_blocking(move || cmd.output().expect("ptt-audit runs"));
    let mut samples = Samples(Vec::new());
    while !run.is_finished() {
        samples.0.push((started.elapsed(), sim.stats()));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let output = run.await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "every line read: {:?}\n{stderr}",
        output.status
    );
    let total = sim.stats();
    samples.0.push((started.elapsed(), total));
    let end = started.elapsed().as_secs();

    // 20/s: found from the 5/s start within seconds.
    let (ok, refused) = samples.window(6, 20);
    assert!(
        ok >= 14.0 && refused <= 0.10,
        "at 20/s: {ok:.1}/s, {refused:.3}"
    );
    // 5/s: a few 429s just after the fall, then hardly any, at nearly the limit.
    let (ok, refused) = samples.window(25, 40);
    assert!(
        ok >= 3.5 && refused <= 0.10,
        "at 5/s: {ok:.1}/s, {refused:.3}"
    );
    // 50/s: looked for after a quiet spell (20 s, or 40 s after a probe that met a
    // 429 at 5/s), found within seconds of it.
    assert!(
        end >= 76,
        "the run ended at {end} s, before the pace could be judged"
    );
    let (ok, refused) = samples.window(70, 76);
    assert!(
        ok >= 35.0 && refused <= 0.05,
        "at 50/s: {ok:.1}/s, {refused:.3}"
    );
    let share = total.throttled as f64 / total.requests as f64;
    assert!(
        share <= 0.05,
        "{} of {} requests refused",
        total.throttled,
        total.requests
    );
    assert!(
        stderr.contains("pace at its ceiling (--max-rate)"),
        "the pace is logged when it reaches the ceiling:\n{stderr}"
    );
}
