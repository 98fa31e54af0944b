//! Checked settings: what the command line (and, later, a config file) resolve into,
//! once, before any work starts. The job, `demo` and the drivers take these types and
//! never see how they were spelt; every default is a named constant here.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::model::Severity;
use crate::report::Format;
use crate::webex::Token;

/// Default `--policies`.
pub const DEFAULT_POLICIES: &str = "policies";
/// Default `--out`.
pub const DEFAULT_OUT: &str = "reports";
/// Default `--format`.
pub const DEFAULT_FORMATS: &[Format] = &[Format::Json, Format::Csv];
/// Default `--rate` (requests per second, whole run).
pub const DEFAULT_RATE: f64 = 10.0;
/// Slowest `--rate` accepted (one request every 100 s), besides 0 for no limit.
pub(crate) const MIN_RATE: f64 = 0.01;
/// Default `--concurrency`.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Most requests in flight `--concurrency` accepts.
pub const MAX_CONCURRENCY: usize = 4096;
/// Default `--timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `--max-retries`.
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// Default `--eval-timeout`: how long one rule may run on one line. The baseline
/// rules take microseconds; two seconds is far beyond any sensible rule on any real
/// member list, and short enough that a runaway rule costs a run little.
pub const DEFAULT_EVAL_TIMEOUT: Duration = Duration::from_secs(2);
/// Default `--fail-on`.
pub const DEFAULT_FAIL_ON: FailOn = FailOn::Low;
/// Lines asked for per page of the listing (`max`) with `--all` and `ptt-audit lines`.
/// The API may answer fewer; listing follows `next` links until there is none.
pub const LIST_PAGE_SIZE: usize = 1000;
/// Environment variable holding the token when `--token-file` is not given.
pub const TOKEN_ENV: &str = "WEBEX_TOKEN";

/// How fast requests may start, all lines and retries together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// At most this many requests per second, evenly spaced (at least `MIN_RATE`, 0.01).
    Fixed(f64),
    /// No ceiling (for local test servers); the pace still backs off after a 429.
    Off,
}

impl Rate {
    /// Reads a `--rate` value: requests per second, `0` for no limit.
    pub fn parse(s: &str) -> Result<Rate, String> {
        match s.trim().parse::<f64>() {
            Ok(0.0) => Ok(Rate::Off),
            Ok(r) if r.is_finite() && r >= MIN_RATE => Ok(Rate::Fixed(r)),
            _ => Err(format!(
                "`{s}` is not a rate: give requests per second from {MIN_RATE}, e.g. 10 or 0.5, \
                 or 0 for no limit"
            )),
        }
    }

    /// The ceiling in requests per second, `None` when off.
    pub(crate) fn per_second(self) -> Option<f64> {
        match self {
            Rate::Fixed(r) => Some(r),
            Rate::Off => None,
        }
    }
}

impl std::fmt::Display for Rate {
    /// The `--rate` spelling.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::Fixed(r) => write!(f, "{r}"),
            Rate::Off => f.write_str("0"),
        }
    }
}

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
    pub(crate) fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Low => Some(Severity::Low),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::High => Some(Severity::High),
            FailOn::Critical => Some(Severity::Critical),
            FailOn::Never => None,
        }
    }
}

/// How to reach the API and how hard to push it.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Checked base URL (`https://`, or `http://` on loopback).
    pub base_url: Url,
    /// Sent as `orgId` on every request.
    pub org_id: Option<String>,
    /// The bearer token (redacted in `Debug`).
    pub token: Token,
    /// Requests per second for the whole run.
    pub rate: Rate,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries per line after the first attempt (429s have their own budget).
    pub max_retries: u32,
}

/// What to write and what the exit code means.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// Report folder.
    pub out: PathBuf,
    /// Formats to write, no duplicates, in the order given.
    pub formats: Vec<Format>,
    /// Lowest severity of a failure that makes the exit code 1.
    pub fail_on: FailOn,
    /// A previous report to compare with.
    pub previous: Option<PathBuf>,
}

impl ReportSettings {
    /// The defaults, writing into `out` (what `demo` runs with).
    #[cfg(feature = "simulator")]
    pub(crate) fn defaults(out: PathBuf) -> ReportSettings {
        ReportSettings {
            out,
            formats: DEFAULT_FORMATS.to_vec(),
            fail_on: DEFAULT_FAIL_ON,
            previous: None,
        }
    }
}

/// `--all` (and `ptt-audit lines`): list the org's virtual lines from the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoverySettings {
    /// `--location-id`: only lines of these locations; empty = every location.
    pub location_ids: Vec<String>,
    /// Lines asked for per page (`max`).
    pub page_size: usize,
}

impl DiscoverySettings {
    /// Every line of the org, or of `location_ids` when there are some.
    pub fn new(location_ids: Vec<String>) -> DiscoverySettings {
        DiscoverySettings {
            location_ids,
            page_size: LIST_PAGE_SIZE,
        }
    }
}

/// Everything one audit run needs besides its policies and its lines: shared by
/// `audit` and `demo`.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// The API side.
    pub api: ApiSettings,
    /// The report side.
    pub report: ReportSettings,
    /// `--all`: the lines listed from the API are audited too (after the explicit ones).
    pub discovery: Option<DiscoverySettings>,
    /// How long one rule may run on one line before its result is `error`.
    pub eval_timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_zero_is_off_and_others_are_checked() {
        assert_eq!(Rate::parse("0"), Ok(Rate::Off));
        assert_eq!(Rate::parse(" 2.5 "), Ok(Rate::Fixed(2.5)));
        assert_eq!(Rate::parse("0.01"), Ok(Rate::Fixed(0.01)));
        for bad in ["-1", "0.001", "inf", "NaN", "ten", ""] {
            let err = Rate::parse(bad).expect_err(bad);
            assert!(err.contains("is not a rate"), "{bad}: {err}");
        }
        assert_eq!(Rate::Off.per_second(), None);
        assert_eq!(Rate::Fixed(3.0).per_second(), Some(3.0));
    }
}
