//! `ptt-audit demo`: its options and its presentation; the run itself is the library's
//! [`ptt_audit::demo::run`].

use std::path::PathBuf;
use std::sync::Arc;

use ptt_audit::demo::{DemoSettings, DEMO_FAULTS, DEMO_LINES, DEMO_RATE, DEMO_SEED};
use ptt_audit::exit::Exit;
use ptt_audit::job::Progress;
use ptt_audit::settings::{Rate, DEFAULT_OUT};
use ptt_audit::simulator::Faults;
use ptt_audit::webex::Stop;

use super::ui::{Tone, Ui};

/// Everything `ptt-audit demo` takes.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// How many simulated virtual lines to audit.
    #[arg(long, value_name = "N", default_value_t = DEMO_LINES)]
    pub lines: usize,
    /// Seed of the simulated data and faults (same seed, same results).
    #[arg(long, value_name = "N", default_value_t = DEMO_SEED)]
    pub seed: u64,
    /// Policies to audit with [default: `policies` in the current folder if it exists,
    /// else the baseline pack built into ptt-audit].
    #[arg(long, value_name = "PATH")]
    pub policies: Option<PathBuf>,
    /// Folder for the reports.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
    pub out: PathBuf,
    /// Requests per second (a fixed pace: the simulator is local and its one throttling
    /// episode shows the back-off; `auto` as in `audit`). 0 turns the limiter off.
    #[arg(long, value_name = "N", default_value_t = Rate::Fixed(DEMO_RATE), value_parser = Rate::parse)]
    pub rate: Rate,
    /// Faults the simulated API injects (`none` for a clean run).
    #[arg(long, value_name = "SPEC", default_value = DEMO_FAULTS)]
    pub faults: Faults,
    /// Report formats: any of `json,csv,xlsx,html`, or `all`.
    #[arg(long, value_name = "LIST", default_value = "json,csv", value_parser = super::audit::parse_formats)]
    pub format: super::audit::FormatList,
}

impl DemoArgs {
    fn resolve(self) -> DemoSettings {
        DemoSettings {
            lines: self.lines,
            seed: self.seed,
            policies: self.policies,
            out: self.out,
            rate: self.rate,
            faults: self.faults,
            formats: self.format.0,
        }
    }
}

/// Runs the demo and explains what it showed.
pub async fn run(args: DemoArgs, ui: &Ui) -> anyhow::Result<Exit> {
    let faults = args.faults;
    let (stop, progress) = (Stop::default(), Arc::new(Progress::default()));
    let mut attended = ui.attend(&stop, &progress);
    let demo = ptt_audit::demo::run(args.resolve(), &stop, &progress, |url, lines| {
        ui.tell(
            Tone::Info,
            &format!(
                "demo: simulated Webex API with {lines} virtual lines at {url} (faults: {faults})"
            ),
        );
    })
    .await?;
    attended.clear_progress();
    drop(attended);
    let stats = &demo.stats;
    let stats_json = serde_json::to_value(stats).unwrap_or_default();
    ui.print_summary(
        &demo.audit,
        &demo.policies,
        ptt_audit::settings::DEFAULT_WARN_EXPIRING_DAYS,
        Some(("demo", stats_json)),
    );
    ui.tell_problems(&demo.audit);
    if ui.quiet || ui.json {
        return Ok(demo.exit());
    }
    ui.print(&format!(
        "\nWhat you just saw: ptt-audit listed and read {} simulated virtual lines from a \
         local stand-in for the Webex API, which answered {} requests with these troubles: {} \
         throttled (429), {} server errors, {} dropped connections, {} broken bodies, {} slow \
         answers, {} bodies over --max-body, {} error messages echoing the token, {} \
         wrong-typed fields. It paced, paused and retried through them (no echoed token \
         reached a log or report) and evaluated {} with {}.\n\
         {}\
         (The exit code above is what `audit` would return for these results; the demo itself \
         exits 0 when every line that exists was read.)\n\
         To audit your real lines: put your token in token.txt, then run\n  \
         ptt-audit audit --all --token-file token.txt\n\
         (`ptt-audit lines --out lines.csv` lists them first, to trim in a spreadsheet and \
         audit with --lines lines.csv.)\n",
        demo.audit.summary.lines.total,
        stats.requests,
        stats.throttled,
        stats.server_errors,
        stats.resets,
        stats.malformed,
        stats.timeouts,
        stats.oversized,
        stats.echoed,
        stats.wrong_type,
        match stats.not_found {
            0 => "every line".to_string(),
            1 => "every line but one that does not exist (404)".to_string(),
            n => format!("every line but {n} that do not exist (404)"),
        },
        demo.policies_origin,
        refreshes(stats),
    ));
    Ok(demo.exit())
}

/// What the demo showed of token refresh: the simulated API expires the first access
/// token mid-run, and the audit refreshes it from its credentials file.
fn refreshes(stats: &ptt_audit::simulator::SimStatsSnapshot) -> String {
    match stats.tokens_issued {
        0 => "The access token lasted the whole run (too few lines for the simulated API to \
              expire it), so it was not refreshed.\n"
            .to_string(),
        n => format!(
            "Mid-run the simulated API expired the access token ({} request(s) refused with \
             401): ptt-audit refreshed it {} from its credentials file ({} token request(s) \
             for all the requests in flight), saved the rotated tokens before using them, and \
             sent the refused requests again. Unattended runs work this way; see the README, \
             \"Running unattended\".\n",
            stats.unauthorized,
            if n == 1 {
                "once".to_string()
            } else {
                format!("{n} times")
            },
            stats.token_requests,
        ),
    }
}
