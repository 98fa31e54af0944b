//! The commands as the binary runs them: gather inputs, run, print, map to exit codes.
//! Everything here is glue; the work is in the modules it calls.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::audit::{self, exit, Outcome, RunOptions};
use crate::config::{AuditArgs, TOKEN_ENV};
use crate::policy::{self, PolicySet};
use crate::webex::{StopReason, Token};

static JSON_LOGS: AtomicBool = AtomicBool::new(false);

/// Makes [`tell`] write JSON log events instead of plain lines (`--log-format json`).
pub fn set_json_logs(on: bool) {
    JSON_LOGS.store(on, Ordering::Relaxed);
}

/// How much a message to the user matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Something failed.
    Error,
    /// Something the user should know.
    Warn,
    /// Information.
    Info,
}

/// Tells the user something on stderr: a plain line for a person, or one log event when
/// the logs are JSON, so that a log shipper never sees a line that is not JSON.
pub fn tell(tone: Tone, text: &str) {
    if JSON_LOGS.load(Ordering::Relaxed) {
        match tone {
            Tone::Error => tracing::error!("{text}"),
            Tone::Warn => tracing::warn!("{text}"),
            Tone::Info => tracing::info!("{text}"),
        }
    } else {
        match tone {
            Tone::Error => eprintln!("error: {text}"),
            Tone::Warn | Tone::Info => eprintln!("{text}"),
        }
    }
}

/// Loads policies, telling every problem; `None` means exit 2.
pub fn load_policies(path: &Path) -> Option<PolicySet> {
    match policy::load(path) {
        Ok(set) => Some(set),
        Err(errors) => {
            if JSON_LOGS.load(Ordering::Relaxed) {
                for d in &errors.diagnostics {
                    tell(Tone::Error, &d.to_string());
                }
            } else {
                eprintln!("{errors}");
            }
            if !path.exists() {
                tell(
                    Tone::Info,
                    "hint: --policies defaults to `policies` in the current directory; in cron, \
                     pass --policies /path/to/policies",
                );
            }
            None
        }
    }
}

/// Loads policies to audit with: valid, and with at least one enabled rule, since an
/// audit against nothing would report every line compliant. `None` means exit 2.
pub fn load_policies_to_audit(path: &Path) -> Option<PolicySet> {
    let set = load_policies(path)?;
    if set.rules.iter().any(|r| r.enabled) {
        return Some(set);
    }
    tell(Tone::Error, &no_enabled_rule(path));
    None
}

fn no_enabled_rule(path: &Path) -> String {
    format!(
        "{} holds no enabled rule: an audit against it would pass every line",
        path.display()
    )
}

/// `ptt-audit audit`: returns the process exit code.
pub async fn audit(args: AuditArgs, options: RunOptions) -> anyhow::Result<i32> {
    let Some(policies) = load_policies_to_audit(&args.policies) else {
        return Ok(exit::USAGE);
    };
    // Checked before any request so that a typo costs nothing.
    if let Err(e) = crate::webex::parse_base_url(&args.base_url) {
        tell(Tone::Error, &e.to_string());
        return Ok(exit::USAGE);
    }
    let lines = match crate::input::collect(&args.lines, &args.line) {
        Ok(lines) => lines,
        Err(e) => {
            tell(Tone::Error, &e.to_string());
            return Ok(exit::USAGE);
        }
    };
    let token = match Token::resolve(args.token_file.as_deref(), std::env::var(TOKEN_ENV).ok()) {
        Ok(t) => t,
        Err(e) => {
            tell(Tone::Error, &e.to_string());
            return Ok(exit::USAGE);
        }
    };
    let policies = Arc::new(policies);
    let outcome = audit::run(&args, &token, policies.clone(), lines, options).await?;
    print_outcome(&outcome, &policies);
    Ok(outcome.exit_code)
}

/// Prints the human summary to stdout, and what went wrong to stderr. A stdout that
/// cannot be written (a closed pipe) is only logged: the reports and the exit code
/// already say what happened.
pub fn print_outcome(outcome: &Outcome, policies: &PolicySet) {
    let text = crate::report::render_summary(
        &outcome.summary,
        policies,
        &outcome.paths,
        outcome.exit_code,
    );
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        tracing::warn!("cannot print the summary: {e}");
    }
    let unread = if outcome.summary.lines.not_audited > 0 {
        "Lines not read are marked not_audited; reports were written."
    } else {
        "Reports were written."
    };
    if outcome.all_not_found {
        tell(
            Tone::Warn,
            "hint: every line requested answered 404 Not Found: check that --base-url ends in /v1 \
             (https://webexapis.com/v1) and that --org-id names the org the lines belong to",
        );
    }
    match outcome.stopped {
        Some(StopReason::Unauthorized) => tell(
            Tone::Error,
            &format!(
                "the Webex API refused the token (401 Unauthorized). It is missing, wrong or \
                 expired (personal tokens last 12 hours; use a service-app or integration token \
                 for cron). {unread}"
            ),
        ),
        Some(StopReason::Interrupted) => tell(Tone::Warn, &format!("interrupted. {unread}")),
        None => {}
    }
}

/// `ptt-audit check-policies [PATH]`: validates and lists; returns the exit code.
pub fn check_policies(path: &Path) -> i32 {
    let Some(set) = load_policies(path) else {
        return exit::USAGE;
    };
    let mut text = String::new();
    for source in &set.sources {
        text.push_str(&format!(
            "loaded {} (sha256 {})\n",
            source.path,
            &source.sha256[..12]
        ));
    }
    text.push_str(&format!("\n{} rule(s):\n", set.rules.len()));
    let width = set.rules.iter().map(|r| r.id.len()).max().unwrap_or(0);
    for r in &set.rules {
        text.push_str(&format!(
            "  {:width$}  {:8}  {}{}\n",
            r.id,
            r.severity.as_str(),
            r.title,
            if r.enabled { "" } else { "  (disabled)" },
        ));
    }
    if !set.vars.is_empty() {
        text.push_str("\nvars:\n");
        for (name, value) in &set.vars {
            text.push_str(&format!("  {name} = {value}\n"));
        }
    }
    let today = chrono::Utc::now().date_naive();
    text.push_str(&format!("\n{} waiver(s):\n", set.waivers.len()));
    for w in &set.waivers {
        let state = if w.expires < today {
            "EXPIRED"
        } else {
            "active"
        };
        text.push_str(&format!(
            "  {} on {}  until {} ({state})  {}\n",
            w.rule, w.line, w.expires, w.reason
        ));
    }
    text.push_str("\npolicies are valid\n");
    print!("{text}");
    if !set.rules.iter().any(|r| r.enabled) {
        tell(Tone::Warn, &format!("warning: {}", no_enabled_rule(path)));
    }
    exit::OK
}
