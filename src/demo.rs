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
    DEFAULT_EVAL_TIMEOUT, DEFAULT_MAX_BODY, DEFAULT_MAX_RETRIES, DEFAULT_MAX_STALL,
};
use crate::simulator::{self, Faults, OAuthConfig, SimConfig, SimStatsSnapshot};
use crate::webex::{parse_base_url, Credentials, Stop, TokenSource};

/// Faults the demo's simulated API injects: a realistic sprinkling of the failures
/// the real API shows, all transient except the 404s.
pub const DEMO_FAULTS: &str =
    "5xx=0.03,timeout=0.005,reset=0.01,malformed=0.01,404=0.01,oversized=0.003,echo=0.005,wrongtype=0.005";
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

/// Lifetime of the demo's access tokens: long enough that the first is not refreshed
/// before the run (under 30 minutes it would be).
const DEMO_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// What `ptt-audit demo` takes.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    /// How many simulated virtual lines to audit.
    pub lines: usize,
    /// Seed of the simulated data and faults (same seed, same results).
    pub seed: u64,
    /// Policies to audit with; `None`: `policies/` here, else the built-in pack.
    pub policies: Option<PathBuf>,
    /// Folder for the reports.
    pub out: PathBuf,
    /// The audit's pace.
    pub rate: Rate,
    /// Faults the simulated API injects.
    pub faults: Faults,
    /// Report formats.
    pub formats: Vec<crate::report::Format>,
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
    let origin = job::choose_policies(settings.policies.as_deref());
    let policies = job::load_policies(&origin)?;
    let policies_origin = origin.to_string();
    let made_up = || uuid::Uuid::new_v4().simple().to_string();
    let oauth = OAuthConfig {
        client_id: format!("demo-client-{}", made_up()),
        client_secret: format!("demo-secret-{}", made_up()),
        refresh_token: format!("demo-refresh-{}", made_up()),
        access_token: Some(format!("demo-access-{}", made_up())),
        access_token_lifetime: DEMO_TOKEN_LIFETIME,
        // The first token gives out two thirds of the way through, as if it expired
        // mid-run: the demo shows one refresh for all the requests in flight.
        access_token_requests: Some((settings.lines as u64 * 2 / 3).max(1)),
        refresh_token_lifetime: Duration::from_secs(90 * 86_400),
        rotate: true,
    };
    // The demo runs from a credentials file, as a cron job would; it lives in a
    // private temporary folder, removed at the end.
    let creds_dir = tempfile::tempdir()?;
    let creds_file = creds_dir.path().join("credentials.toml");
    write_credentials(&creds_file, &oauth)?;
    let sim = simulator::start(
        SimConfig {
            lines: settings.lines,
            seed: settings.seed,
            oauth: Some(oauth),
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
    let base_url = parse_base_url(&sim.base_url)?;
    let token = TokenSource::refreshing(Credentials::load(&creds_file)?, &base_url, DEMO_TIMEOUT)?;
    let audit_settings = AuditSettings {
        api: ApiSettings {
            base_url,
            org_id: None,
            token,
            rate: settings.rate,
            concurrency: DEFAULT_CONCURRENCY,
            timeout: DEMO_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            max_body: DEFAULT_MAX_BODY,
            max_stall: DEFAULT_MAX_STALL,
        },
        report: ReportSettings {
            formats: settings.formats,
            ..ReportSettings::defaults(settings.out)
        },
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
    drop(creds_dir);
    Ok(DemoOutcome {
        audit: audit?,
        policies,
        policies_origin,
        stats,
    })
}

/// Writes the demo's credentials file as a person would (client and refresh token), plus
/// the access token the simulated API already handed out, readable by its owner only.
fn write_credentials(path: &Path, oauth: &OAuthConfig) -> std::io::Result<()> {
    let quoted = |s: &str| toml::Value::String(s.to_string()).to_string();
    let expires = chrono::Utc::now() + DEMO_TOKEN_LIFETIME;
    let mut text = format!(
        "client_id = {}\nclient_secret = {}\nrefresh_token = {}\n",
        quoted(&oauth.client_id),
        quoted(&oauth.client_secret),
        quoted(&oauth.refresh_token)
    );
    if let Some(token) = &oauth.access_token {
        text.push_str(&format!(
            "access_token = {}\naccess_token_expires_at = {}\n",
            quoted(token),
            expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, text.as_bytes())
}
