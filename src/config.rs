//! The audit's settings: one type that clap reads, with every default a named constant.

use std::path::PathBuf;
use std::time::Duration;

use crate::model::Severity;
use crate::report::Format;

/// Default `--policies`.
pub const DEFAULT_POLICIES: &str = "policies";
/// Default `--out`.
pub const DEFAULT_OUT: &str = "reports";
/// Default `--format`.
pub const DEFAULT_FORMATS: &str = "json,csv";
/// Default `--rate` (requests per second, whole run).
pub const DEFAULT_RATE: f64 = 10.0;
/// Default `--concurrency`.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Default `--timeout`.
pub const DEFAULT_TIMEOUT: &str = "30s";
/// Default `--max-retries`.
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// Default `--fail-on`.
pub const DEFAULT_FAIL_ON: &str = "low";
/// Environment variable holding the token when `--token-file` is not given.
pub const TOKEN_ENV: &str = "WEBEX_TOKEN";

/// `--fail-on`: the lowest severity whose failures make the exit code 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Any failure.
    Low,
    /// Medium and above.
    Medium,
    /// High and critical.
    High,
    /// Critical only.
    Critical,
    /// Failures never change the exit code (incomplete audits still exit 3).
    Never,
}

impl FailOn {
    /// The threshold as a severity; `None` for `never`.
    pub fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Low => Some(Severity::Low),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::High => Some(Severity::High),
            FailOn::Critical => Some(Severity::Critical),
            FailOn::Never => None,
        }
    }
}

/// Everything `ptt-audit audit` takes.
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
    #[arg(long, value_name = "LIST", default_value = DEFAULT_FORMATS, value_parser = parse_formats)]
    pub format: FormatList,

    /// Requests per second for the whole run, retries included, evenly spaced; 0 turns
    /// the limiter off (for local test servers).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_RATE, value_parser = parse_rate)]
    pub rate: f64,

    /// Requests in flight at most.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONCURRENCY, value_parser = parse_concurrency)]
    pub concurrency: usize,

    /// Per-request timeout (`30s`, `2m`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_TIMEOUT, value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Retries per line after the first attempt, for 408/423/5xx, timeouts, connection
    /// errors and garbled answers. 429s have their own, larger budget.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_RETRIES)]
    pub max_retries: u32,

    /// Lowest severity of a failure that makes the exit code 1.
    #[arg(long, value_name = "SEVERITY", value_enum, default_value = DEFAULT_FAIL_ON)]
    pub fail_on: FailOn,

    /// API base URL. `http://` only for loopback hosts.
    #[arg(long, value_name = "URL", env = "WEBEX_BASE_URL",
          default_value = crate::webex::DEFAULT_BASE_URL)]
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

/// Slowest `--rate` accepted (one request every 100 s), besides 0 for no limit.
pub const MIN_RATE: f64 = 0.01;

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r == 0.0 || (r.is_finite() && r >= MIN_RATE) => Ok(r),
        _ => Err(format!(
            "`{s}` is not a rate: give requests per second from {MIN_RATE}, e.g. 10 or 0.5, \
             or 0 for no limit"
        )),
    }
}

fn parse_concurrency(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=4096).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}` is not a concurrency: give a whole number from 1 to 4096"
        )),
    }
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("the timeout must be longer than zero".into()),
        Err(e) => Err(format!("`{s}` is not a duration ({e}); try 30s or 2m")),
    }
}
