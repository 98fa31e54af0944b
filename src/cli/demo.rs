//! `ptt-audit demo`: its options and its presentation; the run itself is the library's
//! [`ptt_audit::demo::run`].

use std::path::PathBuf;
use std::sync::Arc;

use ptt_audit::demo::{DemoSettings, DEMO_FAULTS, DEMO_LINES, DEMO_RATE, DEMO_SEED};
use ptt_audit::exit::Exit;
use ptt_audit::job::Progress;
use ptt_audit::settings::{Rate, DEFAULT_OUT, DEFAULT_POLICIES};
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
    /// Policies to audit with.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_POLICIES)]
    pub policies: PathBuf,
    /// Folder for the reports.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_OUT)]
    pub out: PathBuf,
    /// Requests per second (the real API's default in `audit` is 10; the simulator
    /// is local, so the demo goes faster). 0 turns the limiter off.
    #[arg(long, value_name = "N", default_value_t = Rate::Fixed(DEMO_RATE), value_parser = Rate::parse)]
    pub rate: Rate,
    /// Faults the simulated API injects (`none` for a clean run).
    #[arg(long, value_name = "SPEC", default_value = DEMO_FAULTS)]
    pub faults: Faults,
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
    ui.print_outcome(&demo.audit, &demo.policies);
    let stats = &demo.stats;
    ui.print(&format!(
        "\nWhat you just saw: ptt-audit listed and read {} simulated virtual lines from a local \
         stand-in for the Webex API, which answered {} requests with these troubles: {} throttled (429), \
         {} server errors, {} dropped connections, {} broken bodies, {} slow answers. It paced, \
         paused and retried through them and evaluated {} with {}.\n\
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
        match stats.not_found {
            0 => "every line".to_string(),
            1 => "every line but one that does not exist (404)".to_string(),
            n => format!("every line but {n} that do not exist (404)"),
        },
        demo.policies_origin,
    ));
    Ok(demo.exit())
}
