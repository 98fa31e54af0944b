//! `--config FILE` (env `PTT_AUDIT_CONFIG`): options from a TOML file, under the
//! command line and the environment, over the defaults.
//!
//! The keys are `audit`'s long options with `_` for `-`, found by asking clap, so an
//! option added to `AuditArgs` tomorrow can be set in the file with no code here. Each
//! entry of the file becomes `--option=value` appended to the command line, unless the
//! command line or the environment already set that option (or one it conflicts
//! with), and the whole is parsed again: clap's own parsers, checks and defaults apply
//! to what came from the file exactly as to what was typed. Every value is first
//! parsed on its own, so a bad one is reported with its file, line and key.
//!
//! Relative paths (options whose values are paths, as clap knows from their types)
//! are made relative to the file's folder, so that cron's working folder does not
//! matter.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::builder::ValueHint;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, CommandFactory, FromArgMatches};
use ptt_audit::config::{ConfigEntry, ConfigFile, ConfigValue};
use ptt_audit::settings::{PREVIOUS_LATEST, TOKEN_ENV};

use super::Cli;

/// Values of path options that are not paths, so never made relative to the file.
const NOT_PATHS: [(&str, &str); 2] = [("previous", PREVIOUS_LATEST), ("lines", "-")];

/// Environment variables that stand for options besides clap's own `env`: when set, the
/// file's value for these options is not used (the environment wins over the file).
const ENV_OPTIONS: [(&str, &[&str]); 1] = [(TOKEN_ENV, &["token_file", "credentials"])];

/// Options that a config file cannot set.
const NOT_IN_FILE: [&str; 3] = ["config", "help", "version"];

/// Parses the command line, with the config file merged in when the command takes one
/// and one is named. A problem with the file comes back beside the command line as
/// parsed without it, so that logging can be set up before the problem is reported.
pub fn parse() -> (Cli, Option<anyhow::Error>) {
    let argv: Vec<OsString> = std::env::args_os().collect();
    parse_from(argv)
}

/// [`parse`] for a given command line.
pub fn parse_from(argv: Vec<OsString>) -> (Cli, Option<anyhow::Error>) {
    let mut command = Cli::command();
    command.build();
    let matches = command.clone().get_matches_from(&argv);
    let cli = |m: &ArgMatches| Cli::from_arg_matches(m).unwrap_or_else(|e| e.exit());
    match merged(&command, &matches, &argv) {
        Ok(Some(merged)) => (cli(&merged), None),
        Ok(None) => (cli(&matches), None),
        Err(e) => (cli(&matches), Some(e)),
    }
}

/// The matches with the config file merged in; `None` when there is no file to merge.
fn merged(
    command: &Command,
    matches: &ArgMatches,
    argv: &[OsString],
) -> anyhow::Result<Option<ArgMatches>> {
    let (mut cmd, mut m) = (command, matches);
    while let Some((name, sub)) = m.subcommand() {
        match cmd.find_subcommand(name) {
            Some(c) => (cmd, m) = (c, sub),
            None => return Ok(None),
        }
    }
    if !cmd.get_arguments().any(|a| a.get_id() == "config") {
        return Ok(None);
    }
    let Some(path) = m.get_one::<PathBuf>("config") else {
        return Ok(None);
    };
    let file = ptt_audit::config::read(path)?;
    let schema = command
        .find_subcommand("audit")
        .ok_or_else(|| anyhow!("the audit command is missing"))?;
    let extra = arguments(&file, schema, cmd, m)?;
    if extra.is_empty() {
        return Ok(None);
    }
    let mut full = argv.to_vec();
    full.extend(extra);
    command
        .clone()
        .try_get_matches_from(full)
        .map(Some)
        .map_err(|e| anyhow!("config file {}: {}", path.display(), clap_message(&e)))
}

/// The command-line arguments the file adds for `cmd`, already running with matches
/// `m`. Keys are checked against `schema` (`audit`'s options), so a key that `audit`
/// knows is accepted for every command and used by those that have it.
fn arguments(
    file: &ConfigFile,
    schema: &Command,
    cmd: &Command,
    m: &ArgMatches,
) -> anyhow::Result<Vec<OsString>> {
    let mut problems = Vec::new();
    let mut extra = Vec::new();
    for entry in &file.entries {
        let at = |(line, column): (usize, usize)| {
            format!("{}:{line}:{column}: `{}`", file.path.display(), entry.key)
        };
        let Some(arg) = option_for(schema, &entry.key) else {
            problems.push(format!(
                "{}: unknown key{}",
                at(entry.key_at),
                unknown_hint(schema, &entry.key)
            ));
            continue;
        };
        let Some(arg) = cmd.get_arguments().find(|a| a.get_id() == arg.get_id()) else {
            // An option of `audit` that this command does not have.
            continue;
        };
        if set_elsewhere(cmd, m, arg) {
            continue;
        }
        match values(file, entry, arg) {
            Ok(args) => {
                if let Err(problem) = check(cmd, &args) {
                    problems.push(format!("{}: {problem}", at(entry.value_at)));
                } else {
                    extra.extend(args);
                }
            }
            Err(problem) => problems.push(format!("{}: {problem}", at(entry.value_at))),
        }
    }
    match problems.len() {
        0 => Ok(extra),
        1 => Err(anyhow!("{}", problems[0])),
        n => Err(anyhow!(
            "{} (and {} more problem{} in this file)",
            problems[0],
            n - 1,
            if n == 2 { "" } else { "s" }
        )),
    }
}

/// The option a key names: its long name with `-` for `_`.
fn option_for<'c>(schema: &'c Command, key: &str) -> Option<&'c Arg> {
    if key.contains('-') || NOT_IN_FILE.contains(&key) {
        return None;
    }
    let long = key.replace('_', "-");
    schema.get_arguments().find(|a| {
        a.get_long() == Some(long.as_str()) && !NOT_IN_FILE.contains(&a.get_id().as_str())
    })
}

/// Every key a file may hold.
fn keys(schema: &Command) -> impl Iterator<Item = String> + '_ {
    schema
        .get_arguments()
        .filter(|a| !NOT_IN_FILE.contains(&a.get_id().as_str()))
        .filter_map(|a| a.get_long().map(|l| l.replace('-', "_")))
}

/// ` (did you mean …?)`, or a word on what the keys are.
fn unknown_hint(schema: &Command, key: &str) -> String {
    if key == "config" {
        return ": a config file cannot name another one".into();
    }
    let norm = |s: &str| s.replace('-', "_").to_lowercase();
    let best = keys(schema)
        .map(|k| {
            let d = if norm(&k) == norm(key) {
                0
            } else {
                strsim::osa_distance(key, &k)
            };
            (d, k)
        })
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, k)) => format!(" (did you mean `{k}`?)"),
        None => " (keys are the long options of `ptt-audit audit` with _ for -)".into(),
    }
}

/// Whether the command line or the environment set `arg`, or an option it conflicts
/// with: then the file's value is not used.
fn set_elsewhere(cmd: &Command, m: &ArgMatches, arg: &Arg) -> bool {
    let explicit = |id: &str| {
        matches!(
            m.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    let id = arg.get_id().as_str();
    if explicit(id) {
        return true;
    }
    // Conflicts may be declared on either side.
    let conflicting = |a: &Arg, b: &Arg| {
        cmd.get_arg_conflicts_with(a)
            .iter()
            .any(|c| c.get_id() == b.get_id())
    };
    if cmd
        .get_arguments()
        .filter(|other| explicit(other.get_id().as_str()))
        .any(|other| conflicting(arg, other) || conflicting(other, arg))
    {
        return true;
    }
    ENV_OPTIONS
        .iter()
        .any(|(var, ids)| ids.contains(&id) && std::env::var_os(var).is_some_and(|v| !v.is_empty()))
}

/// The arguments that say what `entry` says, or why its value does not fit `arg`.
fn values(file: &ConfigFile, entry: &ConfigEntry, arg: &Arg) -> Result<Vec<OsString>, String> {
    let long = format!("--{}", arg.get_long().unwrap_or_default());
    let flag = |n: usize| vec![OsString::from(&long); n];
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => match entry.value {
            ConfigValue::Boolean(b) => {
                let on = b == matches!(arg.get_action(), ArgAction::SetTrue);
                Ok(flag(usize::from(on)))
            }
            ref other => Err(format!(
                "expected true or false, found {}",
                other.type_name()
            )),
        },
        ArgAction::Count => match entry.value {
            ConfigValue::Integer(n @ 0..=255) => Ok(flag(n as usize)),
            ConfigValue::Boolean(b) => Ok(flag(usize::from(b))),
            ref other => Err(format!(
                "expected a count from 0 to 255, found {}",
                other.type_name()
            )),
        },
        ArgAction::Append => {
            let items = match &entry.value {
                ConfigValue::Array(items) => items.as_slice(),
                single => std::slice::from_ref(single),
            };
            items
                .iter()
                .map(|v| scalar(file, arg, v).map(|s| with_value(&long, s)))
                .collect()
        }
        _ => scalar(file, arg, &entry.value).map(|s| vec![with_value(&long, s)]),
    }
}

fn with_value(long: &str, value: OsString) -> OsString {
    let mut arg = OsString::from(format!("{long}="));
    arg.push(value);
    arg
}

/// One value for `arg`: text as written, numbers as written, paths relative to the file.
fn scalar(file: &ConfigFile, arg: &Arg, value: &ConfigValue) -> Result<OsString, String> {
    let is_path = matches!(
        arg.get_value_hint(),
        ValueHint::AnyPath | ValueHint::FilePath | ValueHint::DirPath | ValueHint::ExecutablePath
    );
    let text = match value {
        ConfigValue::String(s) => s.clone(),
        ConfigValue::Integer(i) if !is_path => i.to_string(),
        ConfigValue::Float(f) if !is_path => f.to_string(),
        other => {
            let expected = if is_path {
                "a path (a string)"
            } else {
                "a string or a number"
            };
            return Err(format!("expected {expected}, found {}", other.type_name()));
        }
    };
    let keyword = NOT_PATHS
        .iter()
        .any(|(id, word)| arg.get_id() == *id && text == *word);
    if is_path && !keyword && !text.is_empty() && Path::new(&text).is_relative() {
        return Ok(file.folder().join(&text).into_os_string());
    }
    Ok(text.into())
}

/// Parses `args` alone with `cmd`'s own parsers: a value a parser refuses is a problem
/// of this entry. Problems that are not about the value (a missing input, a
/// conflict) are left to the whole command line.
fn check(cmd: &Command, args: &[OsString]) -> Result<(), String> {
    use clap::error::ErrorKind;
    let argv = std::iter::once(OsString::from(cmd.get_name())).chain(args.iter().cloned());
    match cmd.clone().try_get_matches_from(argv) {
        Ok(_) => Ok(()),
        Err(e) => match e.kind() {
            ErrorKind::InvalidValue
            | ErrorKind::ValueValidation
            | ErrorKind::InvalidUtf8
            | ErrorKind::NoEquals
            | ErrorKind::TooManyValues
            | ErrorKind::TooFewValues
            | ErrorKind::WrongNumberOfValues => Err(clap_message(&e)),
            _ => Ok(()),
        },
    }
}

/// The first line of a clap error, without its `error: ` prefix and styling.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

#[cfg(test)]
mod tests;
