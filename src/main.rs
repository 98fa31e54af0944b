//! The `ptt-audit` binary: parses the command line, sets up logging, runs the command,
//! and is the one place that prints an error and picks the exit code
//! (`CONTRACT.md` §5; see [`ptt_audit::exit::Exit`]).

#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use ptt_audit::exit::{Exit, UsageError};

use cli::log::EscapedFields;
use cli::progress::StderrWriter;
use cli::ui::Tone;
use cli::{Cli, LogFormat, Ui};

/// mimalloc instead of the system allocator: a run allocates and frees small objects
/// for every line (JSON values, CEL values, report rows), and glibc's malloc and free
/// were a fifth of the CPU per line. Measured with `valgrind --tool=callgrind` over
/// the same 3,000 lines (see the README's performance section).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The command line with the config file (`--config`) merged in; a bad config file
    // is reported once logging is set up as the command line asks.
    let (cli, config_error) = cli::config::parse();
    init_logging(&cli);
    let ui = Ui::new(cli.log_format, cli.quiet);
    if let Some(e) = config_error {
        report_error(&ui, &e);
        return ExitCode::from(Exit::Usage.code());
    }
    let exit = match cli.run(&ui) {
        Ok(exit) => exit,
        Err(e) => {
            report_error(&ui, &e);
            Exit::Usage
        }
    };
    ExitCode::from(exit.code())
}

/// Prints a command's error. Policy problems come one per line (one log event each
/// in JSON logs) so that every file, line and rule is named.
fn report_error(ui: &Ui, e: &anyhow::Error) {
    if let Some(UsageError::Policies(errors)) = e.downcast_ref::<UsageError>() {
        if ui.json {
            for d in &errors.diagnostics {
                ui.tell(Tone::Error, &d.to_string());
            }
        } else {
            // Several lines on purpose (TOML's own messages point at the spot in the
            // file); the text comes from the user's own policy files, not from a server.
            cli::progress::write_stderr(format!("{errors}\n").as_bytes());
        }
        return;
    }
    ui.tell(Tone::Error, &error_chain(e));
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
        // A log write that fails (a closed stderr) is lost quietly: by default the
        // subscriber reports it with `eprintln!`, which panics on that same stderr.
        .log_internal_errors(false)
        // Takes the progress bar off the screen around each event, so none lands on it;
        // failed writes are lost quietly there too.
        .with_writer(|| StderrWriter);
    match cli.log_format {
        // Text from servers is in the fields: escaped, so one event stays one line.
        LogFormat::Text => builder.with_target(false).fmt_fields(EscapedFields).init(),
        LogFormat::Json => builder.json().with_current_span(false).init(),
    }
}
