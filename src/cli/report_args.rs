//! Report options that `audit` and `evaluate` share, beyond `--out`, `--format`,
//! `--fail-on` and `--previous`.

use ptt_audit::report::FindingsFilter;
use ptt_audit::settings::{ReportSettings, DEFAULT_WARN_EXPIRING_DAYS};

/// `--findings`, `--csv-bom`, `--warn-expiring`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportExtras {
    /// Rows of the findings CSV and of the xlsx Findings sheet: `all` (one per line and
    /// rule) or `failing` (only fail, waived and error).
    #[arg(long, value_name = "WHICH", value_enum, default_value = "all")]
    pub findings: FindingsFilter,

    /// Start each CSV with a UTF-8 byte-order mark, for spreadsheets that otherwise
    /// guess the encoding wrong when the file is double-clicked.
    #[arg(long)]
    pub csv_bom: bool,

    /// Name the waivers that expire within DAYS days in the summary (and highlight them
    /// in the xlsx and HTML reports).
    #[arg(long, value_name = "DAYS", default_value_t = DEFAULT_WARN_EXPIRING_DAYS)]
    pub warn_expiring: u32,
}

impl ReportExtras {
    /// Copies the options into `report`.
    pub fn apply(&self, report: &mut ReportSettings) {
        report.findings = self.findings;
        report.csv_bom = self.csv_bom;
        report.warn_expiring_days = self.warn_expiring;
    }
}
