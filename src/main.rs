//! The `ptt-audit` binary: parses the command line, sets up logging, and hands over to
//! the library. Exit codes are the contract's (see `ptt_audit::audit::exit`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ptt_audit::app::Tone;
use ptt_audit::audit::{exit, RunOptions};
use ptt_audit::config::{AuditArgs, DEFAULT_POLICIES};

/// Audits the Push-to-Talk settings of Webex Calling virtual lines against your
/// policies, and writes JSON and CSV reports.
///
/// Start with `ptt-audit demo` (no token needed), then `ptt-audit check-policies`, then
/// `ptt-audit audit --lines ids.txt --token-file token.txt`.
#[derive(Debug, Parser)]
#[command(name = "ptt-audit", version, about, long_about)]
struct Cli {
    /// More log detail on stderr (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, help_heading = "Logging")]
    verbose: u8,
    /// Only warnings and errors on stderr, no progress line (for cron).
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Logging"
    )]
    quiet: bool,
    /// Log format on stderr: `text` for people, `json` for log shippers.
    #[arg(
        long,
        value_enum,
        default_value = "text",
        global = true,
        help_heading = "Logging"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Audit virtual lines: read their PTT settings, evaluate the policies, write reports.
    ///
    /// Exit codes: 0 all lines read and no failure at or above --fail-on; 1 some failure
    /// at or above --fail-on; 2 bad invocation, configuration, policy or token; 3 the
    /// audit is incomplete (some line is error, invalid or not_audited).
    Audit(AuditArgs),
    /// Validate policy files and list their rules and waivers (exit 0 valid, 2 invalid).
    CheckPolicies {
        /// A policy `.toml` file or a folder of them.
        #[arg(default_value = DEFAULT_POLICIES)]
        path: PathBuf,
    },
    /// Run the whole job against a built-in simulated Webex API on 127.0.0.1 (no token
    /// needed); reports go to `reports/`.
    Demo(ptt_audit::demo::DemoArgs),
    /// Serve the simulated Webex API until Ctrl-C (prints its base URL first).
    Simulate(ptt_audit::simulator::SimulateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let code = match cli.command {
        Command::CheckPolicies { path } => ptt_audit::app::check_policies(&path),
        Command::Audit(args) => {
            let options = RunOptions {
                progress: !cli.quiet,
            };
            run_async(Threads::One, ptt_audit::app::audit(args, options))
        }
        Command::Demo(args) => {
            let options = RunOptions {
                progress: !cli.quiet,
            };
            run_async(Threads::One, ptt_audit::demo::run(args, options))
        }
        Command::Simulate(args) => {
            let (config, listen, ids_out) = args.into_config();
            run_async(Threads::PerCore, async move {
                ptt_audit::simulator::run_cli(config, listen, ids_out).await?;
                Ok(exit::OK)
            })
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(exit::USAGE as u8))
}

/// How many threads a command's async runtime runs on.
#[derive(Debug, Clone, Copy)]
enum Threads {
    /// Everything on the calling thread. For `audit` (and `demo`): its work per line is
    /// small and its pace is set by the rate limit, so one thread does it all, and
    /// avoiding hand-offs between threads halves its CPU time per line and its memory
    /// (results are made, written and freed on the same thread: no allocator
    /// contention, no per-thread heaps). See `benches/e2e.rs`.
    One,
    /// One worker per core: for `simulate`, a server answering many clients.
    PerCore,
}

fn run_async(threads: Threads, fut: impl std::future::Future<Output = anyhow::Result<i32>>) -> i32 {
    let mut builder = match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread(),
        Threads::PerCore => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            ptt_audit::app::tell(Tone::Error, &format!("cannot start the async runtime: {e}"));
            return exit::USAGE;
        }
    };
    match runtime.block_on(fut) {
        Ok(code) => code,
        Err(e) => {
            ptt_audit::app::tell(Tone::Error, &error_chain(&e));
            exit::USAGE
        }
    }
}

/// `context: cause: cause`, leaving out a cause whose text the line already holds
/// (some errors print their source in their own message).
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // Our own crate at the chosen level; dependencies stay at warn unless RUST_LOG says.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,ptt_audit={level}")));
    // Colours only for a person at a terminal: cron mails and log files get plain text.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let colour = terminal && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(move || {
            let mut stderr = std::io::stderr();
            if terminal {
                // Wipe the progress line first, so a log event never lands on it.
                let _ = std::io::Write::write_all(&mut stderr, b"\r\x1b[2K");
            }
            stderr
        });
    ptt_audit::app::set_json_logs(matches!(cli.log_format, LogFormat::Json));
    match cli.log_format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().with_current_span(false).init(),
    }
}
