//! The command line: clap types, their resolution into the library's checked settings,
//! and one short driver per command. Nothing in the library sees a clap type; nothing
//! below this layer prints.
//!
//! Each command's file holds its arguments (`…Args`, what was typed), a `resolve`
//! that checks them once into `ptt_audit::settings` types, and its driver.

mod audit;
mod auth;
mod check;
pub mod config;
#[cfg(feature = "simulator")]
mod demo;
mod evaluate;
mod init;
mod lines;
pub mod log;
pub mod progress;
mod report_args;
#[cfg(feature = "simulator")]
mod simulate;
pub mod ui;

use clap::{Parser, Subcommand, ValueEnum};
use ptt_audit::exit::Exit;

pub use self::ui::Ui;

/// Audits the Push-to-Talk settings of Webex Calling virtual lines against your
/// policies, and writes JSON, CSV, xlsx and HTML reports.
///
/// Start with `ptt-audit demo` (no token needed), then `ptt-audit check-policies`, then
/// `ptt-audit audit --all --token-file token.txt`.
#[derive(Debug, Parser)]
#[command(name = "ptt-audit", version, about, long_about)]
pub struct Cli {
    /// More log detail on stderr (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, help_heading = "Logging")]
    pub verbose: u8,
    /// Only warnings and errors on stderr, no progress line (for cron).
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Logging"
    )]
    pub quiet: bool,
    /// Log format on stderr: `text` for people, `json` for log shippers.
    #[arg(
        long,
        value_enum,
        default_value = "text",
        global = true,
        help_heading = "Logging"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Plain lines for people.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Audit virtual lines: read their PTT settings, evaluate the policies, write reports.
    ///
    /// Exit codes: 0 all lines read and no failure at or above --fail-on; 1 some failure
    /// at or above --fail-on; 2 bad invocation, configuration, policy or token; 3 the
    /// audit is incomplete (some line is error, invalid or not_audited).
    #[command(after_long_help = audit::CONFIG_EXAMPLE)]
    Audit(audit::AuditArgs),
    /// Check a token or credentials file: does it work, and until when.
    Auth(auth::AuthArgs),
    /// Validate policy files and list their rules and waivers (exit 0 valid, 2 invalid).
    CheckPolicies(check::CheckArgs),
    /// List the org's virtual lines as CSV (id,name,location_id,location_name,
    /// phone_number,extension), ready for `audit --lines`.
    ///
    /// Exit codes: 0 every page listed; 2 bad invocation or token; 3 listing failed
    /// part-way (a file given with --out is then not written).
    Lines(lines::LinesArgs),
    /// Write the baseline policy pack, an example site policy and an example config
    /// file into DIR, to start from (never overwrites a file).
    Init(init::InitArgs),
    /// Evaluate the settings saved in a JSON report again, against the current
    /// policies: no token, no request; writes a new report set.
    ///
    /// Exit codes as for `audit`: 0, 1, 2 (also for a missing, truncated or foreign
    /// report) or 3 (the saved report had lines that were not read).
    Evaluate(evaluate::EvaluateArgs),
    /// Run the whole job against a built-in simulated Webex API on 127.0.0.1 (no token
    /// needed); reports go to `reports/`.
    #[cfg(feature = "simulator")]
    Demo(demo::DemoArgs),
    /// Serve the simulated Webex API until Ctrl-C (prints its base URL first).
    #[cfg(feature = "simulator")]
    Simulate(simulate::SimulateArgs),
}

impl Cli {
    /// Runs the chosen command. `Err` means exit 2 after `main` prints it.
    pub fn run(self, ui: &Ui) -> anyhow::Result<Exit> {
        match self.command {
            Command::CheckPolicies(args) => check::run(args, ui),
            Command::Init(args) => init::run(args, ui),
            Command::Audit(args) => ui::run_async(ui::Threads::One, audit::run(args, ui)),
            Command::Lines(args) => ui::run_async(ui::Threads::One, lines::run(args, ui)),
            Command::Evaluate(args) => ui::run_async(ui::Threads::One, evaluate::run(args, ui)),
            Command::Auth(args) => ui::run_async(ui::Threads::One, auth::run(args, ui)),
            #[cfg(feature = "simulator")]
            Command::Demo(args) => ui::run_async(ui::Threads::One, demo::run(args, ui)),
            #[cfg(feature = "simulator")]
            Command::Simulate(args) => ui::run_async(ui::Threads::PerCore, simulate::run(args)),
        }
    }
}
