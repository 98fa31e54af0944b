//! `ptt-audit demo`: the whole job against the built-in simulator, no token needed.
//! The job is the audit's own ([`crate::job::run`]) with settings the demo fills in:
//! `--all`, as a new user would run it, so no ID appears anywhere.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::exit::Exit;
use crate::job::{self, Outcome, Progress};
use crate::policy::PolicySet;
use crate::settings::{
    ApiSettings, AuditSettings, DiscoverySettings, Rate, ReportSettings, DEFAULT_CONCURRENCY,
    DEFAULT_EVAL_TIMEOUT, DEFAULT_MAX_RETRIES, DEFAULT_POLICIES,
};
use crate::simulator::{self, Faults, SimConfig, SimStatsSnapshot};
use crate::webex::{parse_base_url, Stop, Token};

/// Faults the demo's simulated API injects: a realistic sprinkling of the failures
/// the real API shows, all transient except the 404s.
pub const DEMO_FAULTS: &str = "5xx=0.03,timeout=0.005,reset=0.01,malformed=0.01,404=0.01";
/// How many simulated lines the demo audits by default.
pub const DEMO_LINES: usize = 300;
/// The demo's default seed.
pub const DEMO_SEED: u64 = 7;
/// The demo's default pace: the simulator is local, so it may go faster than a real
/// API would allow.
pub const DEMO_RATE: f64 = 100.0;
/// The demo's per-request timeout: short, so its injected stalls cost little.
pub(crate) const DEMO_TIMEOUT: Duration = Duration::from_secs(1);
/// Most lines a page of the demo's simulated listing holds, whatever `max` asks: the
/// demo's few hundred lines then take several pages, as a real org's do.
pub(crate) const DEMO_PAGE_LIMIT: usize = 100;

/// What `ptt-audit demo` takes.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    /// How many simulated virtual lines to audit.
    pub lines: usize,
    /// Seed of the simulated data and faults (same seed, same results).
    pub seed: u64,
    /// Policies to audit with.
    pub policies: PathBuf,
    /// Folder for the reports.
    pub out: PathBuf,
    /// The audit's pace.
    pub rate: Rate,
    /// Faults the simulated API injects.
    pub faults: Faults,
}

/// What a demo run produced, for the caller to present.
#[derive(Debug)]
pub struct DemoOutcome {
    /// The audit's own outcome.
    pub audit: Outcome,
    /// The policies it ran with.
    pub policies: Arc<PolicySet>,
    /// Where they came from: a path, or the pack built into the binary.
    pub policies_origin: String,
    /// What the simulated API answered.
    pub stats: SimStatsSnapshot,
}

impl DemoOutcome {
    /// 0 when the audit listed and read every line the simulated API has (its
    /// permanent 404s aside), whatever the policies found; 3 otherwise.
    pub fn exit(&self) -> Exit {
        let l = &self.audit.summary.lines;
        let listed = self.audit.discovery.as_ref().is_none_or(|d| d.complete);
        let all_read =
            listed && l.not_audited == 0 && l.invalid == 0 && l.error <= self.stats.not_found;
        if all_read {
            Exit::Ok
        } else {
            Exit::Incomplete
        }
    }
}

/// Runs the demo: starts the simulator, audits all its lines, stops it.
/// `started` is told the simulator's base URL once it listens.
pub async fn run(
    settings: DemoSettings,
    stop: &Stop,
    progress: &Progress,
    started: impl FnOnce(&str, usize),
) -> anyhow::Result<DemoOutcome> {
    // Outside the repository there is no `policies/` folder: the demo then uses the
    // baseline pack built into the binary, so that it works from anywhere.
    let builtin = settings.policies == Path::new(DEFAULT_POLICIES) && !settings.policies.exists();
    let (policies, policies_origin) = if builtin {
        let set =
            crate::policy::load_str(Path::new("(built-in baseline)"), crate::policy::BASELINE)?;
        (set, "the baseline pack built into ptt-audit".to_string())
    } else {
        let set = job::load_policies(&settings.policies)?;
        (set, settings.policies.display().to_string())
    };
    let secret = format!("demo-{}", uuid::Uuid::new_v4().simple());
    let sim = simulator::start(
        SimConfig {
            lines: settings.lines,
            seed: settings.seed,
            token: Some(secret.clone()),
            faults: settings.faults,
            // One throttling episode, early in the run, as a busy API would answer.
            throttle_windows: vec![(Duration::from_millis(800), Duration::from_secs(1))],
            slow_delay: Duration::from_secs(3),
            listing: simulator::ListQuirks {
                page_limit: Some(DEMO_PAGE_LIMIT),
                ..simulator::ListQuirks::default()
            },
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    started(&sim.base_url, sim.ids.len());
    let audit_settings = AuditSettings {
        api: ApiSettings {
            base_url: parse_base_url(&sim.base_url)?,
            org_id: None,
            token: Token::new(&secret, "demo")?,
            rate: settings.rate,
            concurrency: DEFAULT_CONCURRENCY,
            timeout: DEMO_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
        },
        report: ReportSettings::defaults(settings.out),
        discovery: Some(DiscoverySettings::new(Vec::new())),
        eval_timeout: DEFAULT_EVAL_TIMEOUT,
    };
    let policies = Arc::new(policies);
    let audit = job::run(
        &audit_settings,
        policies.clone(),
        Vec::new(),
        stop,
        progress,
    )
    .await;
    let stats = sim.stats();
    sim.shutdown().await;
    Ok(DemoOutcome {
        audit: audit?,
        policies,
        policies_origin,
        stats,
    })
}
