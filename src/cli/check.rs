//! `ptt-audit check-policies`: loads, validates and lists the policies.

use std::fmt::Write as _;
use std::path::PathBuf;

use ptt_audit::exit::Exit;
use ptt_audit::job::{self, PolicyOrigin};

use super::ui::{Tone, Ui};

/// What `ptt-audit check-policies` takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// A policy `.toml` file or a folder of them [default: `policies` in the current
    /// folder if it exists, else the baseline pack built into ptt-audit].
    pub path: Option<PathBuf>,
}

/// Validates and lists; invalid policies are an error (exit 2). Warnings go to
/// stderr and leave the exit code 0.
pub fn run(args: CheckArgs, ui: &Ui) -> anyhow::Result<Exit> {
    let origin = job::choose_policies(args.path.as_deref());
    let set = match job::load_from(&origin) {
        Ok(set) => set,
        Err(e) => {
            if args.path.as_deref().is_some_and(|p| !p.exists()) {
                ui.tell(Tone::Info, "hint: the path given does not exist");
            }
            return Err(e.into());
        }
    };
    let mut text = String::new();
    for source in &set.sources {
        let _ = writeln!(
            text,
            "loaded {} (sha256 {})",
            source.path,
            &source.sha256[..12]
        );
    }
    let _ = writeln!(text, "\n{} rule(s):", set.rules.len());
    let width = set.rules.iter().map(|r| r.id.len()).max().unwrap_or(0);
    for r in &set.rules {
        let _ = writeln!(
            text,
            "  {:width$}  {:8}  {}{}",
            r.id,
            r.severity.as_str(),
            r.title,
            if r.enabled { "" } else { "  (disabled)" },
        );
    }
    if !set.vars.is_empty() {
        text.push_str("\nvars:\n");
        for (name, value) in &set.vars {
            let _ = writeln!(text, "  {name} = {value}");
        }
    }
    let today = chrono::Utc::now().date_naive();
    let _ = writeln!(text, "\n{} waiver(s):", set.waivers.len());
    for w in &set.waivers {
        let state = if w.expires < today {
            "EXPIRED"
        } else {
            "active"
        };
        let _ = writeln!(
            text,
            "  {} on {}  until {} ({state})  {}",
            w.rule, w.line, w.expires, w.reason
        );
    }
    let _ = writeln!(text, "\npolicies are valid: {origin}");
    ui.print(&text);
    for warning in &set.warnings {
        ui.tell(Tone::Warn, &format!("warning: {warning}"));
    }
    if !set.rules.iter().any(|r| r.enabled) {
        let path = match &origin {
            PolicyOrigin::Path(p) => p.clone(),
            PolicyOrigin::BuiltIn => PathBuf::from(job::BUILT_IN_NAME),
        };
        let problem = ptt_audit::exit::UsageError::NoEnabledRule { path };
        ui.tell(Tone::Warn, &format!("warning: {problem}"));
    }
    Ok(Exit::Ok)
}
