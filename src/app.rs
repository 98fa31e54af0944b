//! The commands as the binary runs them: gather inputs, run, print, map to exit codes.
//! Everything here is glue; the work is in the modules it calls.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::audit::{self, exit, Outcome, RunOptions};
use crate::config::{AuditArgs, TOKEN_ENV};
use crate::policy::{self, PolicySet};
use crate::webex::{StopReason, Token};

/// Loads policies, printing every problem to stderr; `None` means exit 2.
pub fn load_policies(path: &Path) -> Option<PolicySet> {
    match policy::load(path) {
        Ok(set) => Some(set),
        Err(errors) => {
            eprintln!("{errors}");
            None
        }
    }
}

/// `ptt-audit audit`: returns the process exit code.
pub async fn audit(args: AuditArgs, options: RunOptions) -> anyhow::Result<i32> {
    let Some(policies) = load_policies(&args.policies) else {
        return Ok(exit::USAGE);
    };
    // Checked before any request so that a typo costs nothing.
    if let Err(e) = crate::webex::parse_base_url(&args.base_url) {
        eprintln!("error: {e}");
        return Ok(exit::USAGE);
    }
    let lines = match crate::input::collect(&args.lines, &args.line) {
        Ok(lines) => lines,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
    };
    let token = match Token::resolve(args.token_file.as_deref(), std::env::var(TOKEN_ENV).ok()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::USAGE);
        }
    };
    let policies = Arc::new(policies);
    let outcome = audit::run(&args, &token, policies.clone(), lines, options).await?;
    print_outcome(&outcome, &policies)?;
    Ok(outcome.exit_code)
}

/// Prints the human summary to stdout, and what went wrong to stderr.
pub fn print_outcome(outcome: &Outcome, policies: &PolicySet) -> anyhow::Result<()> {
    let text = crate::report::render_summary(
        &outcome.summary,
        policies,
        &outcome.paths,
        outcome.exit_code,
    );
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    match outcome.stopped {
        Some(StopReason::Unauthorized) => eprintln!(
            "error: the Webex API refused the token (401 Unauthorized). It is missing, wrong or \
             expired (personal tokens last 12 hours; use a service-app or integration token for \
             cron). Lines not read are marked not_audited; reports were written."
        ),
        Some(StopReason::Interrupted) => {
            eprintln!("interrupted: lines not read are marked not_audited; reports were written.")
        }
        None => {}
    }
    Ok(())
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
    text.push_str(&format!("\n{} rules:\n", set.rules.len()));
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
    let today = chrono::Utc::now().date_naive();
    text.push_str(&format!("\n{} waivers:\n", set.waivers.len()));
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
    exit::OK
}
