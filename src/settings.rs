//! Checked settings: what the command line (and, later, a config file) resolve into,
//! once, before any work starts. The job, `demo` and the drivers take these types and
//! never see how they were spelt; every default is a named constant here.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::model::Severity;
use crate::report::{FindingsFilter, Format, WriteOptions};
use crate::webex::TokenSource;

/// Default `--policies`.
pub const DEFAULT_POLICIES: &str = "policies";
/// Default `--out`.
pub const DEFAULT_OUT: &str = "reports";
/// Default `--format`.
pub const DEFAULT_FORMATS: &[Format] = &[Format::Json, Format::Csv];
/// Default `--max-rate`: the ceiling of `--rate auto`, in requests per second.
pub const DEFAULT_MAX_RATE: f64 = 50.0;
/// Default `--rate`: find the server's pace, up to `--max-rate`. Webex publishes no
/// limit for these endpoints, so no user knows what number to give.
pub const DEFAULT_RATE: Rate = Rate::Auto {
    max: DEFAULT_MAX_RATE,
};
/// Where `--rate auto` starts, in requests per second: slow enough for any server, and
/// doubled each second, so 50/s is reached in under 4 s.
pub const AUTO_START_RATE: f64 = 5.0;
/// Slowest `--rate` (and `--max-rate`) accepted (one request every 100 s), besides 0
/// for no limit.
pub(crate) const MIN_RATE: f64 = 0.01;
/// Default `--concurrency`: enough for 50 requests/s at 300 ms per answer.
pub const DEFAULT_CONCURRENCY: usize = 16;
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
/// Default `--max-body`: far above any real PTT settings answer (a few kilobytes, a
/// few hundred kilobytes with thousands of members), far below what hurts.
pub const DEFAULT_MAX_BODY: u64 = 8 * 1024 * 1024;
/// Default `--max-stall`.
pub const DEFAULT_MAX_STALL: Duration = Duration::from_secs(10 * 60);
/// Default `--fail-on`.
pub const DEFAULT_FAIL_ON: FailOn = FailOn::Low;
/// Lines asked for per page of the listing (`max`) with `--all` and `ptt-audit lines`.
/// The API may answer fewer; listing follows `next` links until there is none.
pub const LIST_PAGE_SIZE: usize = 1000;
/// Default `--findings`: every result.
pub const DEFAULT_FINDINGS: FindingsFilter = FindingsFilter::All;
/// Default `--warn-expiring`: waivers expiring within this many days are named.
pub const DEFAULT_WARN_EXPIRING_DAYS: u32 = 14;
/// Environment variable holding the token when `--token-file` is not given.
pub const TOKEN_ENV: &str = "WEBEX_TOKEN";
/// Environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "PTT_AUDIT_CONFIG";
/// The `--previous` value that means "the newest complete report in `--out`".
pub const PREVIOUS_LATEST: &str = "latest";

/// How fast requests may start, all lines and retries together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// At most this many requests per second, evenly spaced (at least `MIN_RATE`, 0.01).
    Fixed(f64),
    /// No ceiling (for local test servers); the pace still backs off after a 429.
    Off,
    /// Find the server's pace: start at [`AUTO_START_RATE`], at most double each second
    /// while no 429 arrives, never above `max`; after a 429, as for a fixed rate.
    Auto {
        /// `--max-rate`: the ceiling, in requests per second.
        max: f64,
    },
}

impl Rate {
    /// Reads a `--rate` value: `auto` (with the default `--max-rate`), requests per
    /// second, or `0` for no limit.
    pub fn parse(s: &str) -> Result<Rate, String> {
        if s.trim().eq_ignore_ascii_case("auto") {
            return Ok(DEFAULT_RATE);
        }
        match s.trim().parse::<f64>() {
            Ok(0.0) => Ok(Rate::Off),
            Ok(r) if r.is_finite() && r >= MIN_RATE => Ok(Rate::Fixed(r)),
            _ => Err(format!(
                "`{s}` is not a rate: give auto, requests per second from {MIN_RATE} (e.g. 10 \
                 or 0.5), or 0 for no limit"
            )),
        }
    }

    /// Reads a `--max-rate` value: requests per second, `0.01` or more.
    pub fn parse_max(s: &str) -> Result<f64, String> {
        match s.trim().parse::<f64>() {
            Ok(r) if r.is_finite() && r >= MIN_RATE => Ok(r),
            _ => Err(format!(
                "`{s}` is not a maximum rate: give requests per second from {MIN_RATE}, e.g. 50"
            )),
        }
    }

    /// This rate with `--max-rate` applied: only `auto` has a maximum, so a fixed rate
    /// or `0` stays as given.
    pub fn with_max(self, max: f64) -> Rate {
        match self {
            Rate::Auto { .. } => Rate::Auto { max },
            other => other,
        }
    }

    /// The ceiling in requests per second, `None` when off.
    pub(crate) fn ceiling(self) -> Option<f64> {
        match self {
            Rate::Fixed(r) | Rate::Auto { max: r } => Some(r),
            Rate::Off => None,
        }
    }
}

impl std::fmt::Display for Rate {
    /// The `--rate` spelling (`auto` with its ceiling).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::Fixed(r) => write!(f, "{r}"),
            Rate::Off => f.write_str("0"),
            Rate::Auto { max } => write!(f, "auto (at most {max}/s)"),
        }
    }
}

/// `--fail-on`: the lowest severity whose failures make the exit code 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, strum::Display)]
#[strum(serialize_all = "lowercase")]
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
    /// Where the bearer token comes from: fixed, or refreshed from credentials
    /// (redacted in `Debug`).
    pub token: TokenSource,
    /// Requests per second for the whole run.
    pub rate: Rate,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries per line after the first attempt (429s have their own budget).
    pub max_retries: u32,
    /// Largest answer body read, in bytes.
    pub max_body: u64,
    /// The run stops when no answer has been a 2xx for this long.
    pub max_stall: Duration,
}

/// Reads a size: plain bytes (`8388608`) or a number with a unit, `B`, `KiB`, `MiB`,
/// `GiB` (powers of 1024) or `kB`, `MB`, `GB` (powers of 1000), case-insensitive, a
/// space allowed (`512KiB`, `8 MiB`, `1.5MB`). Zero is refused.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "`{s}` is not a size: give bytes or a number with a unit, e.g. 8MiB, 512KiB, 1000000"
        )
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim());
    let unit_bytes: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    let bytes = match number.parse::<u64>() {
        Ok(n) => n.checked_mul(unit_bytes).ok_or_else(bad)?,
        Err(_) => {
            let n: f64 = number.parse().map_err(|_| bad())?;
            let b = (n * unit_bytes as f64).round();
            if !(b.is_finite() && b < u64::MAX as f64) {
                return Err(bad());
            }
            b as u64
        }
    };
    if bytes == 0 {
        return Err(format!("`{s}` is not a size: it must be more than zero"));
    }
    Ok(bytes)
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
    /// A previous report to compare with: a report file, or a folder, meaning the
    /// newest complete report in it written before this run.
    pub previous: Option<PathBuf>,
    /// Which rows the findings CSV and the xlsx Findings sheet hold (`--findings`).
    pub findings: FindingsFilter,
    /// Start each CSV with a UTF-8 byte-order mark (`--csv-bom`).
    pub csv_bom: bool,
    /// Name waivers that expire within this many days (`--warn-expiring`).
    pub warn_expiring_days: u32,
    /// After the run, keep only the newest this many report sets in `out`.
    pub keep: Option<usize>,
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
            findings: DEFAULT_FINDINGS,
            csv_bom: false,
            warn_expiring_days: DEFAULT_WARN_EXPIRING_DAYS,
            keep: None,
        }
    }

    /// What the report writers need to know of these settings.
    pub(crate) fn write_options(&self) -> WriteOptions {
        WriteOptions {
            findings: self.findings,
            csv_bom: self.csv_bom,
            warn_expiring_days: self.warn_expiring_days,
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
        for bad in ["-1", "0.001", "inf", "NaN", "ten", "", "automatic"] {
            let err = Rate::parse(bad).expect_err(bad);
            assert!(err.contains("is not a rate"), "{bad}: {err}");
        }
        assert_eq!(Rate::Off.ceiling(), None);
        assert_eq!(Rate::Fixed(3.0).ceiling(), Some(3.0));
    }

    #[test]
    fn auto_is_the_default_and_takes_its_maximum() {
        assert_eq!(Rate::parse("auto"), Ok(DEFAULT_RATE));
        assert_eq!(Rate::parse(" AUTO "), Ok(Rate::Auto { max: 50.0 }));
        assert_eq!(DEFAULT_RATE.with_max(20.0), Rate::Auto { max: 20.0 });
        assert_eq!(DEFAULT_RATE.with_max(20.0).ceiling(), Some(20.0));
        // Only auto has a maximum: a fixed rate is its own ceiling.
        assert_eq!(Rate::Fixed(80.0).with_max(20.0), Rate::Fixed(80.0));
        assert_eq!(Rate::Off.with_max(20.0), Rate::Off);
        assert_eq!(Rate::parse_max("12.5"), Ok(12.5));
        for bad in ["0", "-3", "auto", "inf", ""] {
            let err = Rate::parse_max(bad).expect_err(bad);
            assert!(err.contains("is not a maximum rate"), "{bad}: {err}");
        }
        assert_eq!(DEFAULT_RATE.to_string(), "auto (at most 50/s)");
    }

    #[test]
    fn sizes_in_bytes_or_with_a_unit() {
        for (text, bytes) in [
            ("8MiB", DEFAULT_MAX_BODY),
            ("8 mib", 8 << 20),
            ("512KiB", 512 << 10),
            ("1GiB", 1 << 30),
            ("1000", 1000),
            ("1000B", 1000),
            ("2kB", 2000),
            ("1.5MB", 1_500_000),
            (" 3 MB ", 3_000_000),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in [
            "",
            "0",
            "0MiB",
            "-1",
            "8 MiBs",
            "MiB",
            "1e3",
            "99999999999999999999GiB",
            "1..5MB",
        ] {
            let err = parse_size(bad).expect_err(bad);
            assert!(err.contains("is not a size"), "{bad}: {err}");
        }
    }
}
