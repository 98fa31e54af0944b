//! `ptt-audit audit`: its options, their resolution into [`AuditSettings`], its driver.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ptt_audit::exit::{Exit, UsageError};
use ptt_audit::job::{self, Progress};
use ptt_audit::report::Format;
use ptt_audit::settings::{
    parse_size, ApiSettings, AuditSettings, DiscoverySettings, FailOn, Rate, ReportSettings,
    CONFIG_ENV, DEFAULT_CONCURRENCY, DEFAULT_FINDINGS, DEFAULT_MAX_RATE, DEFAULT_MAX_RETRIES,
    DEFAULT_OUT, DEFAULT_WARN_EXPIRING_DAYS, MAX_CONCURRENCY, PREVIOUS_LATEST, TOKEN_ENV,
};
use ptt_audit::webex::{
    loose_token_file, parse_base_url, Credentials, Stop, Token, TokenSource, DEFAULT_BASE_URL,
};

use super::Ui;

/// Everything `ptt-audit audit` takes, as typed.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// File of virtual-line IDs, one per line (`#` comments and blank lines skipped),
    /// or a CSV with a header row and an `id`/`virtualLineId`/`virtual_line_id`/`line_id`
    /// column (a previous lines report works). `-` reads stdin. Repeatable.
    #[arg(long = "lines", value_name = "FILE")]
    pub lines: Vec<PathBuf>,

    /// A virtual-line ID to audit. Repeatable.
    #[arg(long = "line", value_name = "ID")]
    pub line: Vec<String>,

    /// Audit every virtual line of the org, listed from the API page by page (after
    /// any given with --lines/--line; each line once).
    #[arg(long)]
    pub all: bool,

    /// With --all: only lines of this location (its ID). Repeatable.
    #[arg(long = "location-id", value_name = "ID", requires = "all", value_parser = parse_location_id)]
    pub location_id: Vec<String>,

    /// Organization to audit, sent as `orgId` on every request (partner admins).
    #[arg(long, value_name = "ORG", env = "WEBEX_ORG_ID")]
    pub org_id: Option<String>,

    /// A policy `.toml` file or a folder of them [default: `policies` in the current
    /// folder if it exists, else the baseline pack built into ptt-audit].
    #[arg(long, value_name = "PATH")]
    pub policies: Option<PathBuf>,

    /// Folder for the reports (created if missing).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
    pub out: PathBuf,

    /// Report formats: any of `json,csv,xlsx,html`, or `all`.
    #[arg(long, value_name = "LIST", default_value = "json,csv", value_parser = parse_formats)]
    pub format: FormatList,

    /// Requests per second for the whole run, retries included, evenly spaced: `auto`
    /// starts at 5/s and doubles each second up to --max-rate, slowing down when the
    /// server answers 429; a number is a fixed ceiling; 0 turns the limiter off (for
    /// local test servers).
    #[arg(long, value_name = "N|auto", default_value = "auto", value_parser = Rate::parse)]
    pub rate: Rate,

    /// The most requests per second `--rate auto` goes up to (ignored with a fixed
    /// `--rate`).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_RATE, value_parser = Rate::parse_max)]
    pub max_rate: f64,

    /// Requests in flight at most.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONCURRENCY, value_parser = parse_concurrency)]
    pub concurrency: usize,

    /// Per-request timeout (`30s`, `2m`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Retries per line after the first attempt, for 408/423/5xx, timeouts, connection
    /// errors and garbled answers. 429s have their own, larger budget.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_RETRIES)]
    pub max_retries: u32,

    /// How long one rule may run on one line (`2s`, `500ms`); past it that result is
    /// `error` ("evaluation took too long") and the run goes on.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_eval_timeout)]
    pub eval_timeout: Duration,

    /// Largest answer body read, in bytes or with a unit (`8MiB`, `512KiB`); a larger
    /// one is a `decode` error for that line and is never held in memory whole.
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = parse_size)]
    pub max_body: u64,

    /// Stop the run when no answer has been a success (2xx) for this long (a server
    /// that throttles or fails forever): unread lines become `not_audited`, exit 3.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_max_stall)]
    pub max_stall: Duration,

    /// Lowest severity of a failure that makes the exit code 1.
    #[arg(long, value_name = "SEVERITY", value_enum, default_value = "low")]
    pub fail_on: FailOn,

    /// API base URL. `http://` only for loopback hosts.
    #[arg(long, value_name = "URL", env = "WEBEX_BASE_URL", default_value = DEFAULT_BASE_URL)]
    pub base_url: String,

    /// A previous report to compare with (`STEM.json`, or a `-findings.csv` or
    /// `-lines.csv`): fills the findings' `change` column (`new`, `unchanged`,
    /// `regressed`, `resolved`, `changed`), counts the lines added and removed, and
    /// names the removed ones. `latest`: the newest complete report in --out (none
    /// yet: no comparison); a folder: the same within it.
    #[arg(long, value_name = "FILE|DIR|latest")]
    pub previous: Option<PathBuf>,

    /// After this run's reports are in place, delete all but the newest N report sets
    /// in --out (only files named like reports).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,

    /// File holding the API token (else the WEBEX_TOKEN environment variable). There is
    /// deliberately no flag that takes the token itself: command lines are visible to
    /// every user of the machine.
    #[arg(long, value_name = "FILE", conflicts_with = "credentials")]
    pub token_file: Option<PathBuf>,

    #[command(flatten)]
    pub report_extras: super::report_args::ReportExtras,

    /// Credentials of an integration or service app (TOML: client_id, client_secret,
    /// refresh_token; mode 600): the access token is refreshed when needed and the
    /// file rewritten with it. For unattended runs.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,

    /// A TOML file of options (keys: the long options with `_` for `-`); the command
    /// line and the environment win over it. See the example below.
    #[arg(long, value_name = "FILE", env = CONFIG_ENV)]
    pub config: Option<PathBuf>,
}

/// The example config of `audit --help`; the README shows the same (a test checks
/// that both are accepted).
pub const CONFIG_EXAMPLE: &str = "\
Unattended runs (see the README, \"Running unattended\"): put the options in a config file,
e.g. /etc/ptt-audit/config.toml (keys are the long options with _ for -; relative paths
are relative to the file's folder; the command line and the environment win over it):

    credentials = \"credentials.toml\"   # client_id, client_secret, refresh_token; chmod 600
    lines = \"ids.csv\"
    policies = \"policies\"
    out = \"/var/lib/ptt-audit/reports\"
    previous = \"latest\"                # compare with the newest complete report in out
    keep = 60                          # keep the newest 60 report sets
    fail_on = \"high\"
    quiet = true
    log_format = \"json\"

and the cron line becomes:

    15 2 * * *  ptt-audit audit --config /etc/ptt-audit/config.toml >> /var/log/ptt-audit.log 2>&1";

/// The parsed `--format` list (a newtype so clap treats it as one value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatList(pub Vec<Format>);

/// Parses `--format` (shared with `evaluate` and `demo`).
pub(crate) fn parse_formats(s: &str) -> Result<FormatList, String> {
    Format::parse_list(s)
        .map(FormatList)
        .map_err(|e| e.to_string())
}

/// A `--location-id`: sent as a query parameter, so anything but blank will do.
pub(super) fn parse_location_id(s: &str) -> Result<String, String> {
    let id = s.trim();
    if id.is_empty() || id.chars().any(char::is_control) {
        return Err("a location ID must not be empty or hold control characters".into());
    }
    Ok(id.to_string())
}

fn parse_concurrency(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_CONCURRENCY).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}` is not a concurrency: give a whole number from 1 to {MAX_CONCURRENCY}"
        )),
    }
}

pub(super) fn parse_timeout(s: &str) -> Result<Duration, String> {
    parse_duration(s, "the timeout", "30s or 2m")
}

pub(super) fn parse_max_stall(s: &str) -> Result<Duration, String> {
    parse_duration(s, "--max-stall", "10m or 1h")
}

fn parse_duration(s: &str, what: &str, example: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(format!("{what} must be longer than zero")),
        Err(e) => Err(format!("`{s}` is not a duration ({e}); try {example}")),
    }
}

fn parse_eval_timeout(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("the evaluation timeout must be longer than zero".into()),
        Err(e) => Err(format!("`{s}` is not a duration ({e}); try 2s or 500ms")),
    }
}

impl AuditArgs {
    /// Checks what clap could not (the base URL, the token) and resolves the options
    /// into settings, before any request. `token_env` is `WEBEX_TOKEN`'s value.
    pub fn resolve(&self, token_env: Option<String>) -> Result<AuditSettings, UsageError> {
        let base_url = parse_base_url(&self.base_url)?;
        let token = token_source(
            self.credentials.as_deref(),
            self.token_file.as_deref(),
            token_env,
            &base_url,
            self.timeout,
        )?;
        let previous = self.previous.as_ref().map(|p| {
            if p.as_os_str() == PREVIOUS_LATEST {
                self.out.clone()
            } else {
                p.clone()
            }
        });
        let mut report = ReportSettings {
            out: self.out.clone(),
            formats: self.format.0.clone(),
            fail_on: self.fail_on,
            previous,
            keep: self.keep.map(|n| n as usize),
            findings: DEFAULT_FINDINGS,
            csv_bom: false,
            warn_expiring_days: DEFAULT_WARN_EXPIRING_DAYS,
        };
        self.report_extras.apply(&mut report);
        Ok(AuditSettings {
            api: ApiSettings {
                base_url,
                org_id: self.org_id.clone(),
                token,
                rate: self.rate.with_max(self.max_rate),
                concurrency: self.concurrency,
                timeout: self.timeout,
                max_retries: self.max_retries,
                max_body: self.max_body,
                max_stall: self.max_stall,
            },
            report,
            discovery: self
                .all
                .then(|| DiscoverySettings::new(self.location_id.clone())),
            eval_timeout: self.eval_timeout,
        })
    }
}

/// The token of a run: refreshed from `--credentials`, else fixed from `--token-file`
/// or `WEBEX_TOKEN` (`token_env`). Reads the files, requests nothing.
pub fn token_source(
    credentials: Option<&std::path::Path>,
    token_file: Option<&std::path::Path>,
    token_env: Option<String>,
    base_url: &url::Url,
    timeout: Duration,
) -> Result<TokenSource, UsageError> {
    match credentials {
        Some(path) => Ok(TokenSource::refreshing(
            Credentials::load(path)?,
            base_url,
            timeout,
        )?),
        None => Ok(Token::resolve(token_file, token_env)?.into()),
    }
}

/// Runs `ptt-audit audit`.
pub async fn run(args: AuditArgs, ui: &Ui) -> anyhow::Result<Exit> {
    // Cheapest and most likely mistakes first, each before any request.
    let policies = policies_or_hint(args.policies.as_deref(), ui)?;
    let today = chrono::Utc::now().date_naive();
    let dated = policies.waiver_warnings(today, i64::from(args.report_extras.warn_expiring));
    // Advice about the policies themselves (check-policies shows it as warnings):
    // information here, so that a quiet nightly run on an unchanged policy set stays
    // silent; the reports carry every waiver's state.
    for warning in policies.warnings.iter().chain(&dated) {
        ui.tell(super::ui::Tone::Info, &format!("policy warning: {warning}"));
    }
    let settings = args.resolve(std::env::var(TOKEN_ENV).ok())?;
    if let Some(loose) = args.token_file.as_deref().and_then(loose_token_file) {
        ui.tell(super::ui::Tone::Warn, &format!("warning: {loose}"));
    }
    // With --all the listing may be all there is: no explicit ID is fine then.
    let lines = if args.all {
        ptt_audit::input::collect_any(&args.lines, &args.line)
    } else {
        ptt_audit::input::collect(&args.lines, &args.line)
    }
    .map_err(UsageError::from)?;
    let policies = Arc::new(policies);
    let (stop, progress) = (Stop::default(), Arc::new(Progress::default()));
    let mut attended = ui.attend(&stop, &progress);
    let outcome = job::run(&settings, policies.clone(), lines, &stop, &progress).await?;
    attended.clear_progress();
    drop(attended);
    ui.print_outcome(&outcome, &policies, settings.report.warn_expiring_days);
    Ok(outcome.exit)
}

/// Loads the policies to audit with, saying where they came from; when a given path
/// does not exist, adds a hint for cron users, whose working folder is rarely the
/// repository.
pub fn policies_or_hint(
    given: Option<&std::path::Path>,
    ui: &Ui,
) -> Result<ptt_audit::policy::PolicySet, UsageError> {
    let origin = job::choose_policies(given);
    if origin == job::PolicyOrigin::BuiltIn {
        tracing::info!("no --policies and no `policies` folder here: using {origin}");
    }
    job::load_policies(&origin).inspect_err(|_| {
        if given.is_some_and(|p| !p.exists()) {
            ui.tell(
                super::ui::Tone::Info,
                "hint: --policies names a path that does not exist; in cron, give an absolute \
                 path (or leave --policies out to use the built-in baseline pack)",
            );
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: AuditArgs,
    }

    fn parse(extra: &[&str]) -> AuditArgs {
        let argv = ["audit"].iter().chain(extra).copied();
        Wrapper::try_parse_from(argv).expect("parses").args
    }

    #[test]
    fn defaults_resolve_to_the_named_constants() {
        let s = parse(&[]).resolve(Some("tok".into())).expect("resolves");
        assert_eq!(s.api.base_url.as_str(), "https://webexapis.com/v1");
        assert_eq!(s.api.rate, ptt_audit::settings::DEFAULT_RATE);
        assert_eq!(s.api.concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(s.api.timeout, ptt_audit::settings::DEFAULT_TIMEOUT);
        assert_eq!(s.report.formats, ptt_audit::settings::DEFAULT_FORMATS);
        assert_eq!(s.report.fail_on, ptt_audit::settings::DEFAULT_FAIL_ON);
        assert_eq!(s.report.out, PathBuf::from(DEFAULT_OUT));
        assert_eq!(s.eval_timeout, ptt_audit::settings::DEFAULT_EVAL_TIMEOUT);
        assert_eq!(s.api.max_body, ptt_audit::settings::DEFAULT_MAX_BODY);
        assert_eq!(s.api.max_stall, ptt_audit::settings::DEFAULT_MAX_STALL);
    }

    #[test]
    fn eval_timeout_takes_a_duration_above_zero() {
        let s = parse(&["--eval-timeout", "250ms"])
            .resolve(Some("tok".into()))
            .expect("resolves");
        assert_eq!(s.eval_timeout, Duration::from_millis(250));
        for bad in ["0s", "soon", "5"] {
            let err = Wrapper::try_parse_from(["audit", "--eval-timeout", bad])
                .expect_err(bad)
                .to_string();
            assert!(err.contains("--eval-timeout"), "{bad}: {err}");
        }
    }

    #[test]
    fn all_and_location_ids_resolve_to_discovery() {
        let s = parse(&[]).resolve(Some("tok".into())).expect("resolves");
        assert_eq!(s.discovery, None);
        let s = parse(&["--all", "--location-id", " L1 ", "--location-id", "L2"])
            .resolve(Some("tok".into()))
            .expect("resolves");
        let d = s.discovery.expect("--all");
        assert_eq!(d.location_ids, ["L1", "L2"]);
        assert_eq!(d.page_size, ptt_audit::settings::LIST_PAGE_SIZE);
    }

    #[test]
    fn location_id_without_all_or_blank_is_refused() {
        let err = Wrapper::try_parse_from(["audit", "--location-id", "L1"])
            .expect_err("needs --all")
            .to_string();
        assert!(err.contains("--all"), "{err}");
        let err = Wrapper::try_parse_from(["audit", "--all", "--location-id", " "])
            .expect_err("blank")
            .to_string();
        assert!(err.contains("must not be empty"), "{err}");
    }

    #[test]
    fn max_body_and_max_stall_are_read_and_checked() {
        let s = parse(&["--max-body", "512KiB", "--max-stall", "2s"])
            .resolve(Some("tok".into()))
            .expect("resolves");
        assert_eq!(
            (s.api.max_body, s.api.max_stall),
            (512 * 1024, Duration::from_secs(2))
        );
        for bad in [
            ["--max-body", "0"],
            ["--max-body", "lots"],
            ["--max-stall", "0s"],
        ] {
            let argv = ["audit"].iter().chain(&bad).copied();
            assert!(Wrapper::try_parse_from(argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn max_rate_caps_auto_and_leaves_a_fixed_rate_alone() {
        let resolve = |extra: &[&str]| parse(extra).resolve(Some("tok".into())).unwrap();
        assert_eq!(
            resolve(&["--max-rate", "20"]).api.rate,
            Rate::Auto { max: 20.0 }
        );
        assert_eq!(
            resolve(&["--rate", "auto", "--max-rate", "7.5"]).api.rate,
            Rate::Auto { max: 7.5 }
        );
        assert_eq!(
            resolve(&["--rate", "80", "--max-rate", "20"]).api.rate,
            Rate::Fixed(80.0)
        );
        for bad in [["--max-rate", "0"], ["--max-rate", "fast"]] {
            let argv = ["audit"].iter().chain(&bad).copied();
            let err = Wrapper::try_parse_from(argv)
                .expect_err("refused")
                .to_string();
            assert!(err.contains("--max-rate"), "{err}");
        }
    }

    #[test]
    fn rate_zero_resolves_to_off() {
        let s = parse(&["--rate", "0"])
            .resolve(Some("tok".into()))
            .expect("resolves");
        assert_eq!(s.api.rate, Rate::Off);
    }

    #[test]
    fn plain_http_elsewhere_than_loopback_is_a_usage_error() {
        let err = parse(&["--base-url", "http://example.com/v1"])
            .resolve(Some("tok".into()))
            .expect_err("refused");
        assert!(matches!(err, UsageError::Client(_)), "{err:?}");
    }

    #[test]
    fn no_token_is_a_usage_error() {
        let err = parse(&[]).resolve(None).expect_err("refused");
        assert!(matches!(err, UsageError::Token(_)), "{err:?}");
    }
}
