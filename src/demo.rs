//! `ptt-audit demo`: the whole job against the built-in simulator, no token needed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::{self, exit, RunOptions};
use crate::config::{AuditArgs, FailOn, FormatList, DEFAULT_OUT, DEFAULT_POLICIES};
use crate::input::InputLine;
use crate::report::Format;
use crate::simulator::{self, Faults, SimConfig};
use crate::webex::Token;

/// Faults the demo's simulated API injects: a realistic sprinkling of the failures
/// the real API shows, all transient except the 404s.
pub const DEMO_FAULTS: &str = "5xx=0.03,timeout=0.005,reset=0.01,malformed=0.01,404=0.01";

/// Everything `ptt-audit demo` takes.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// How many simulated virtual lines to audit.
    #[arg(long, value_name = "N", default_value_t = 300)]
    pub lines: usize,
    /// Seed of the simulated data and faults (same seed, same results).
    #[arg(long, value_name = "N", default_value_t = 7)]
    pub seed: u64,
    /// Policies to audit with.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_POLICIES)]
    pub policies: PathBuf,
    /// Folder for the reports.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
    pub out: PathBuf,
    /// Requests per second (the real API's default in `audit` is 10; the simulator
    /// is local, so the demo goes faster).
    #[arg(long, value_name = "N", default_value_t = 100.0)]
    pub rate: f64,
    /// Faults the simulated API injects (`none` for a clean run).
    #[arg(long, value_name = "SPEC", default_value = DEMO_FAULTS)]
    pub faults: Faults,
}

/// Runs the demo; returns the exit code: 0 when the audit read every line the
/// simulated API has (its permanent 404s aside), whatever the policies found.
pub async fn run(args: DemoArgs, options: RunOptions) -> anyhow::Result<i32> {
    // Outside the repository there is no `policies/` folder: the demo then uses the
    // baseline pack built into the binary, so that it works from anywhere.
    let builtin =
        args.policies == std::path::Path::new(DEFAULT_POLICIES) && !args.policies.exists();
    let policies = if builtin {
        crate::policy::load_str(
            std::path::Path::new("(built-in baseline)"),
            crate::policy::BASELINE,
        )?
    } else {
        let Some(policies) = crate::app::load_policies_to_audit(&args.policies) else {
            return Ok(exit::USAGE);
        };
        policies
    };
    let secret = format!("demo-{}", uuid::Uuid::new_v4().simple());
    let sim = simulator::start(
        SimConfig {
            lines: args.lines,
            seed: args.seed,
            token: Some(secret.clone()),
            faults: args.faults,
            // One throttling episode, early in the run, as a busy API would answer.
            throttle_windows: vec![(Duration::from_millis(800), Duration::from_secs(1))],
            slow_delay: Duration::from_secs(3),
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    crate::app::tell(
        crate::app::Tone::Info,
        &format!(
            "demo: simulated Webex API with {} virtual lines at {} (faults: {})",
            sim.ids.len(),
            sim.base_url,
            args.faults
        ),
    );
    let audit_args = AuditArgs {
        lines: Vec::new(),
        line: Vec::new(),
        org_id: None,
        policies: args.policies.clone(),
        out: args.out.clone(),
        format: FormatList(vec![Format::Json, Format::Csv]),
        rate: args.rate,
        concurrency: crate::config::DEFAULT_CONCURRENCY,
        timeout: Duration::from_secs(1),
        max_retries: crate::config::DEFAULT_MAX_RETRIES,
        fail_on: FailOn::Low,
        base_url: sim.base_url.clone(),
        token_file: None,
        previous: None,
    };
    let lines = sim
        .ids
        .iter()
        .map(|id| InputLine {
            id: id.clone(),
            name: None,
            invalid: None,
            origin: "simulator".into(),
        })
        .collect();
    let token = Token::new(&secret, "demo")?;
    let policies = Arc::new(policies);
    let outcome = audit::run(&audit_args, &token, policies.clone(), lines, options).await?;
    let stats = sim.stats();
    sim.shutdown().await;
    crate::app::print_outcome(&outcome, &policies);
    println!(
        "\nWhat you just saw: ptt-audit read {} simulated virtual lines from a local stand-in \
         for the Webex API, which answered {} requests with these troubles: {} throttled (429), \
         {} server errors, {} dropped connections, {} broken bodies, {} slow answers. It paced, \
         paused and retried through them and evaluated {} with {}.",
        outcome.summary.lines.total,
        stats.requests,
        stats.throttled,
        stats.server_errors,
        stats.resets,
        stats.malformed,
        stats.timeouts,
        match stats.not_found {
            0 => "every line".to_string(),
            1 => "every line but one that does not exist (404)".to_string(),
            n => format!("every line but {n} that do not exist (404)"),
        },
        if builtin {
            "the baseline pack built into ptt-audit".to_string()
        } else {
            args.policies.display().to_string()
        },
    );
    println!(
        "(The exit code above is what `audit` would return for these results; the demo itself \
         exits 0 when every line that exists was read.)"
    );
    println!(
        "To audit your real lines: put their IDs in ids.txt and your token in token.txt, then run\n  \
         ptt-audit audit --lines ids.txt --token-file token.txt"
    );
    let l = &outcome.summary.lines;
    let all_read = l.not_audited == 0 && l.invalid == 0 && l.error <= stats.not_found;
    Ok(if all_read { exit::OK } else { exit::INCOMPLETE })
}
