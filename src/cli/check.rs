//! `ptt-audit check-policies`: loads, validates and lists the policies.

use std::fmt::Write as _;
use std::path::PathBuf;

use ptt_audit::exit::Exit;
use ptt_audit::job::{self, PolicyOrigin};
use ptt_audit::policy::PolicySet;
use ptt_audit::settings::DEFAULT_WARN_EXPIRING_DAYS;

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
        text.push_str("\nvars (a later file's value wins):\n");
        let shown: Vec<(String, String)> = set
            .vars
            .iter()
            .map(|(name, value)| (format!("{name} = {value}"), var_origin(&set, name)))
            .collect();
        let width = shown.iter().map(|(v, _)| v.len()).max().unwrap_or(0);
        for (var, origin) in shown {
            let _ = writeln!(text, "  {var:width$}  {origin}");
        }
    }
    let today = chrono::Utc::now().date_naive();
    let _ = writeln!(text, "\n{} waiver(s):", set.waivers.len());
    for w in &set.waivers {
        let days = (w.expires - today).num_days();
        let state = if days < 0 {
            "EXPIRED".to_string()
        } else if days <= i64::from(DEFAULT_WARN_EXPIRING_DAYS) {
            format!("expires in {days} day(s)")
        } else {
            "active".to_string()
        };
        let meta = match w.metadata() {
            m if m.is_empty() => String::new(),
            m => format!("  [{m}]"),
        };
        let _ = writeln!(
            text,
            "  {} on {}  until {} ({state})  {}{meta}",
            w.rule,
            w.line_and_label(),
            w.expires,
            w.reason
        );
    }
    let _ = writeln!(text, "\npolicies are valid: {origin}");
    ui.print(&text);
    let dated = set.waiver_warnings(today, i64::from(DEFAULT_WARN_EXPIRING_DAYS));
    for warning in set.warnings.iter().chain(&dated) {
        ui.tell(Tone::Warn, &format!("warning: {warning}"));
    }
    let lines = set.waived_lines();
    if !lines.is_empty() {
        ui.tell(
            Tone::Warn,
            &format!(
                "warning: whether a waiver is still used shows only in an audit of its line \
                 (the report lists unused waivers); the waivers name {} line(s): {}",
                lines.len(),
                lines.join(", ")
            ),
        );
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

/// `from FILE:LINE (overrides FILE:LINE, …)`.
fn var_origin(set: &PolicySet, name: &str) -> String {
    let Some(origin) = set.var_origins.get(name) else {
        return String::new();
    };
    let mut out = format!("from {}:{}", origin.file.display(), origin.line);
    if !origin.overrides.is_empty() {
        let earlier: Vec<String> = origin
            .overrides
            .iter()
            .map(|(file, line)| format!("{}:{line}", file.display()))
            .collect();
        let _ = write!(out, " (overrides {})", earlier.join(", "));
    }
    out
}
