//! `ptt-audit evaluate`: its options, their resolution into [`EvaluateSettings`], its
//! driver. The work is the library's [`ptt_audit::evaluate::run`].

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use ptt_audit::evaluate::{self, EvaluateSettings};
use ptt_audit::exit::Exit;
use ptt_audit::job::Progress;
use ptt_audit::settings::{
    FailOn, ReportSettings, DEFAULT_FINDINGS, DEFAULT_OUT, DEFAULT_WARN_EXPIRING_DAYS,
};
use ptt_audit::webex::Stop;

use super::audit::{parse_formats, policies_or_hint, FormatList};
use super::report_args::ReportExtras;
use super::Ui;

/// Everything `ptt-audit evaluate` takes, as typed.
#[derive(Debug, Clone, clap::Args)]
pub struct EvaluateArgs {
    /// The JSON report (`STEM.json`) whose saved settings to evaluate again.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,

    /// A policy `.toml` file or a folder of them [default: `policies` in the current
    /// folder if it exists, else the baseline pack built into ptt-audit].
    #[arg(long, value_name = "PATH")]
    pub policies: Option<PathBuf>,

    /// Folder for the new reports (created if missing).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
    pub out: PathBuf,

    /// Report formats: any of `json,csv,xlsx,html`, or `all`.
    #[arg(long, value_name = "LIST", default_value = "json,csv", value_parser = parse_formats)]
    pub format: FormatList,

    /// Lowest severity of a failure that makes the exit code 1.
    #[arg(long, value_name = "SEVERITY", value_enum, default_value = "low")]
    pub fail_on: FailOn,

    /// A previous report to compare with (`STEM.json`, or a `-findings.csv` or
    /// `-lines.csv`); `--from`'s own report shows what the policy change changed.
    #[arg(long, value_name = "FILE")]
    pub previous: Option<PathBuf>,

    #[command(flatten)]
    pub extras: ReportExtras,
}

impl EvaluateArgs {
    /// The checked settings.
    pub fn resolve(&self) -> EvaluateSettings {
        let mut report = ReportSettings {
            out: self.out.clone(),
            formats: self.format.0.clone(),
            fail_on: self.fail_on,
            previous: self.previous.clone(),
            keep: None,
            findings: DEFAULT_FINDINGS,
            csv_bom: false,
            warn_expiring_days: DEFAULT_WARN_EXPIRING_DAYS,
        };
        self.extras.apply(&mut report);
        EvaluateSettings {
            from: self.from.clone(),
            report,
        }
    }
}

/// Runs `ptt-audit evaluate`.
pub async fn run(args: EvaluateArgs, ui: &Ui) -> anyhow::Result<Exit> {
    let policies = Arc::new(policies_or_hint(args.policies.as_deref(), ui)?);
    let settings = args.resolve();
    let (stop, progress) = (Stop::default(), Arc::new(Progress::default()));
    let mut attended = ui.attend(&stop, &progress);
    // Reading and writing files only: on a blocking thread, so that interrupts and the
    // progress line keep running on this one.
    let outcome = {
        let (settings, policies, stop, progress) = (
            settings.clone(),
            policies.clone(),
            stop.clone(),
            progress.clone(),
        );
        tokio::task::spawn_blocking(move || evaluate::run(&settings, policies, &stop, &progress))
            .await
            .context("the re-evaluation stopped unexpectedly")??
    };
    attended.clear_progress();
    drop(attended);
    ui.print_outcome(&outcome, &policies, settings.report.warn_expiring_days);
    Ok(outcome.exit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use ptt_audit::report::{FindingsFilter, Format};

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: EvaluateArgs,
    }

    fn parse(extra: &[&str]) -> EvaluateSettings {
        let argv = ["evaluate", "--from", "r.json"]
            .iter()
            .chain(extra)
            .copied();
        Wrapper::try_parse_from(argv)
            .expect("parses")
            .args
            .resolve()
    }

    #[test]
    fn defaults_resolve_to_the_named_constants() {
        let s = parse(&[]);
        assert_eq!(s.from, PathBuf::from("r.json"));
        assert_eq!(s.report.out, PathBuf::from(DEFAULT_OUT));
        assert_eq!(s.report.formats, ptt_audit::settings::DEFAULT_FORMATS);
        assert_eq!(s.report.findings, DEFAULT_FINDINGS);
        assert!(!s.report.csv_bom);
        assert_eq!(s.report.warn_expiring_days, DEFAULT_WARN_EXPIRING_DAYS);
    }

    #[test]
    fn report_options_resolve() {
        let s = parse(&[
            "--format",
            "all",
            "--findings",
            "failing",
            "--csv-bom",
            "--warn-expiring",
            "3",
            "--fail-on",
            "high",
            "--previous",
            "p.json",
        ]);
        assert_eq!(
            s.report.formats,
            [Format::Json, Format::Csv, Format::Xlsx, Format::Html]
        );
        assert_eq!(s.report.findings, FindingsFilter::Failing);
        assert!(s.report.csv_bom);
        assert_eq!(s.report.warn_expiring_days, 3);
        assert_eq!(s.report.fail_on, FailOn::High);
        assert_eq!(s.report.previous, Some(PathBuf::from("p.json")));
    }

    #[test]
    fn from_is_required() {
        assert!(Wrapper::try_parse_from(["evaluate"]).is_err());
    }
}
