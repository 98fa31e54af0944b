//! `ptt-audit audit`: its options, their resolution into [`AuditSettings`], its driver.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ptt_audit::exit::{Exit, UsageError};
use ptt_audit::job::{self, Progress};
use ptt_audit::report::Format;
use ptt_audit::settings::{
    ApiSettings, AuditSettings, DiscoverySettings, FailOn, Rate, ReportSettings,
    DEFAULT_CONCURRENCY, DEFAULT_MAX_RETRIES, DEFAULT_OUT, DEFAULT_POLICIES, MAX_CONCURRENCY,
    TOKEN_ENV,
};
use ptt_audit::webex::{parse_base_url, Stop, Token, DEFAULT_BASE_URL};

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

    /// A policy `.toml` file or a folder of them.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_POLICIES)]
    pub policies: PathBuf,

    /// Folder for the reports (created if missing).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
    pub out: PathBuf,

    /// Report formats: any of `json,csv`.
    #[arg(long, value_name = "LIST", default_value = "json,csv", value_parser = parse_formats)]
    pub format: FormatList,

    /// Requests per second for the whole run, retries included, evenly spaced; 0 turns
    /// the limiter off (for local test servers).
    #[arg(long, value_name = "N", default_value = "10", value_parser = Rate::parse)]
    pub rate: Rate,

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

    /// Lowest severity of a failure that makes the exit code 1.
    #[arg(long, value_name = "SEVERITY", value_enum, default_value = "low")]
    pub fail_on: FailOn,

    /// API base URL. `http://` only for loopback hosts.
    #[arg(long, value_name = "URL", env = "WEBEX_BASE_URL", default_value = DEFAULT_BASE_URL)]
    pub base_url: String,

    /// A previous report to compare with (its `-findings.csv`, or its `.json` next to
    /// one): fills the findings' `change` column (`new`, `unchanged`, `regressed`,
    /// `resolved`, `changed`) and adds the counts to the summary.
    #[arg(long, value_name = "FILE")]
    pub previous: Option<PathBuf>,

    /// File holding the API token (else the WEBEX_TOKEN environment variable). There is
    /// deliberately no flag that takes the token itself: command lines are visible to
    /// every user of the machine.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// The parsed `--format` list (a newtype so clap treats it as one value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatList(pub Vec<Format>);

fn parse_formats(s: &str) -> Result<FormatList, String> {
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
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("the timeout must be longer than zero".into()),
        Err(e) => Err(format!("`{s}` is not a duration ({e}); try 30s or 2m")),
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
        let token = Token::resolve(self.token_file.as_deref(), token_env)?;
        Ok(AuditSettings {
            api: ApiSettings {
                base_url,
                org_id: self.org_id.clone(),
                token,
                rate: self.rate,
                concurrency: self.concurrency,
                timeout: self.timeout,
                max_retries: self.max_retries,
            },
            report: ReportSettings {
                out: self.out.clone(),
                formats: self.format.0.clone(),
                fail_on: self.fail_on,
                previous: self.previous.clone(),
            },
            discovery: self
                .all
                .then(|| DiscoverySettings::new(self.location_id.clone())),
            eval_timeout: self.eval_timeout,
        })
    }
}

/// Runs `ptt-audit audit`.
pub async fn run(args: AuditArgs, ui: &Ui) -> anyhow::Result<Exit> {
    // Cheapest and most likely mistakes first, each before any request.
    let policies = policies_or_hint(&args.policies, ui)?;
    for warning in &policies.warnings {
        ui.tell(super::ui::Tone::Warn, &format!("warning: {warning}"));
    }
    let settings = args.resolve(std::env::var(TOKEN_ENV).ok())?;
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
    ui.print_outcome(&outcome, &policies);
    Ok(outcome.exit)
}

/// Loads the policies; when the path does not exist, adds a hint for cron users,
/// whose working folder is rarely the repository.
pub fn policies_or_hint(
    path: &std::path::Path,
    ui: &Ui,
) -> Result<ptt_audit::policy::PolicySet, UsageError> {
    job::load_policies(path).inspect_err(|_| {
        if !path.exists() {
            ui.tell(
                super::ui::Tone::Info,
                "hint: --policies defaults to `policies` in the current directory; in cron, \
                 pass --policies /path/to/policies",
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
        assert_eq!(s.api.rate, Rate::Fixed(ptt_audit::settings::DEFAULT_RATE));
        assert_eq!(s.api.concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(s.api.timeout, ptt_audit::settings::DEFAULT_TIMEOUT);
        assert_eq!(s.report.formats, ptt_audit::settings::DEFAULT_FORMATS);
        assert_eq!(s.report.fail_on, ptt_audit::settings::DEFAULT_FAIL_ON);
        assert_eq!(s.report.out, PathBuf::from(DEFAULT_OUT));
        assert_eq!(s.eval_timeout, ptt_audit::settings::DEFAULT_EVAL_TIMEOUT);
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
